"""A third-party online store, outside the ``parity`` package: records in process memory.

It exists to prove the plug-in seam: it is published through the ``parity.online_stores``
entry-point group of a test-only distribution (``install_memory_store`` writes its
``.dist-info`` on ``sys.path``), configured as ``online_store: {type: memory}``, and held to
the same contract suites as Parity's own stores (``tests/contract/backends.py``). It imports
only Parity's public seams: the store contract, its abilities and ``parity.plugins``.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from parity.online.base import OnlineStore, OnlineView, RecordBatch, SupportsUpdate, Updater
from parity.online.encoding import HEADER
from parity.plugins import Backend, BackendContext

DISTRIBUTION = "parity-memory-store"
ENTRY_POINT = "memory = parity_memory_store:BACKEND"

# Shared by every store of one namespace in this process, as a server's data would be.
_DATA: dict[tuple[str, str], dict[tuple[str, bytes], bytes]] = {}
_LOCK = threading.RLock()


class MemoryOnlineConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["memory"] = "memory"
    namespace: str = "default"


class MemoryOnlineStore(OnlineStore, SupportsUpdate):
    """The newest record per (view, entity key); records compare by their 32-byte header."""

    def __init__(self, config: MemoryOnlineConfig, project: str):
        with _LOCK:
            self._data = _DATA.setdefault((config.namespace, project), {})

    def setup(self, views: Sequence[OnlineView]) -> None:
        pass

    def write(self, view: OnlineView, batch: RecordBatch) -> int:
        stored = 0
        with _LOCK:
            for key, record in zip(batch.keys, batch.records, strict=True):
                old = self._data.get((view.name, key))
                if old is None or record[:HEADER] >= old[:HEADER]:
                    self._data[(view.name, key)] = record
                    stored += 1
        return stored

    def read(
        self, requests: Sequence[tuple[OnlineView, Sequence[bytes]]]
    ) -> list[list[bytes | None]]:
        with _LOCK:
            return [[self._data.get((v.name, k)) for k in keys] for v, keys in requests]

    def update(self, view: OnlineView, keys: Sequence[bytes], fn: Updater) -> int:
        with _LOCK:  # nothing else writes in between: atomic per call
            old = [self._data.get((view.name, k)) for k in keys]
            new = fn(keys, old)
            changed = 0
            for key, before, after in zip(keys, old, new, strict=True):
                if before == after:
                    continue
                changed += 1
                if after is None:
                    self._data.pop((view.name, key), None)
                else:
                    self._data[(view.name, key)] = after
            return changed

    def delete(self, view: OnlineView, keys: Sequence[bytes]) -> int:
        with _LOCK:
            return sum(self._data.pop((view.name, k), None) is not None for k in keys)

    def drop_views(self, names: Sequence[str]) -> None:
        with _LOCK:
            for key in [k for k in self._data if k[0] in names]:
                del self._data[key]

    def teardown(self) -> None:
        with _LOCK:
            self._data.clear()


def _create(config: MemoryOnlineConfig, context: BackendContext) -> Any:
    return MemoryOnlineStore(config, context.project)


BACKEND = Backend(
    kind="online_store",
    name="memory",
    config=MemoryOnlineConfig,
    factory=_create,
    description="test-only: records in process memory",
)


def install_memory_store(site: Path) -> None:
    """Make this module an installed distribution with its entry point: a ``.dist-info`` in
    ``site``, and ``site`` and this folder on ``sys.path`` (what ``pip install`` would do)."""
    info = site / f"{DISTRIBUTION.replace('-', '_')}-0.0.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {DISTRIBUTION}\nVersion: 0.0\n")
    (info / "entry_points.txt").write_text(f"[parity.online_stores]\n{ENTRY_POINT}\n")
    for path in (str(site), str(Path(__file__).parent)):
        if path not in sys.path:
            sys.path.append(path)
