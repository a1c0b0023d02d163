"""Verifying a snapshot: its file read back and its digest computed again.

``verify(store, "train_v1")`` reads the snapshot's Parquet file and recomputes its digest
(``parity.snapshots.digest``: the values, not the file's bytes) and every column's. The
snapshot is intact when the digest is the manifest's (after an erase: the new one the erase
recorded); otherwise the result names what differs (the file is missing or unreadable, the
rows, the columns added, missing or retyped, the columns whose values changed). Nothing is
changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import pyarrow as pa

from parity.snapshots import manifest as mf
from parity.snapshots.digest import table_digest

if TYPE_CHECKING:
    from parity.store import FeatureStore

__all__ = ["Verification", "read_stored", "verify"]


@dataclass(frozen=True)
class Verification:
    """Whether a snapshot's file still holds the rows it was made with."""

    name: str
    path: str
    expected: str
    found: str | None
    """The digest of the file as it is now; None when it is missing or unreadable."""
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(store: FeatureStore, name: str) -> Verification:
    """See the module docstring; ``ObjectNotFoundError`` for an unknown name."""
    snap = mf.shown(store, name)
    table, problems = read_stored(store, snap)
    found = None
    if table is not None:
        digest = table_digest(table)
        found = digest.sha256
        problems = digest.differences(snap.content)
    return Verification(snap.name, snap.path, snap.digest, found, tuple(problems))


def read_stored(store: FeatureStore, snap: mf.Snapshot) -> tuple[pa.Table | None, list[str]]:
    """The snapshot's file as a table, or None and why it cannot be read."""
    import pyarrow.parquet as pq

    path = snap.file(store)
    if not path.is_file():
        return None, [f"the file {snap.path} is missing"]
    try:
        return pq.read_table(path, partitioning=None), []
    except (OSError, pa.ArrowException) as exc:
        return None, [f"the file {snap.path} is not a readable Parquet file: {exc}"]
