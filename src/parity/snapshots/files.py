"""The snapshots' files: ``<digest>.parquet`` in the folder ``snapshots.path`` names.

A file is written under a temporary name (``.pending-<random>.parquet.tmp``, fsynced) while
its digest is computed, then renamed to its digest's name and the folder fsynced: a crash
leaves a whole file or none. Two snapshots of the same rows share one file; a file is removed
once no snapshot holds it (``drop_unreferenced``).
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa

from parity.snapshots import manifest as mf

if TYPE_CHECKING:
    from parity.store import FeatureStore

__all__ = ["discard", "drop_unreferenced", "publish", "store_file", "write_pending"]


def write_pending(store: FeatureStore, table: pa.Table) -> Path:
    """``table`` written and fsynced under a temporary name in the snapshots' folder."""
    import pyarrow.parquet as pq

    folder = mf.folder(store)
    folder.mkdir(parents=True, exist_ok=True)
    pending = folder / f".pending-{uuid.uuid4().hex}.parquet.tmp"
    try:
        with open(pending, "wb") as fh:
            pq.write_table(table, fh)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        pending.unlink(missing_ok=True)
        raise
    return pending


def publish(pending: Path, digest: str) -> Path:
    """The pending file renamed to ``<digest>.parquet`` (replacing one of the same rows)."""
    final = pending.parent / f"{digest}.parquet"
    os.replace(pending, final)
    fd = os.open(pending.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return final


def discard(pending: Path) -> None:
    pending.unlink(missing_ok=True)


def store_file(store: FeatureStore, table: pa.Table, digest: str) -> Path:
    """``table`` as ``<digest>.parquet`` in the snapshots' folder, atomically."""
    return publish(write_pending(store, table), digest)


def drop_unreferenced(store: FeatureStore, path: str, digest: str) -> None:
    """Remove a snapshot file no snapshot holds any more."""
    if not mf.referenced(store, digest):
        store.config.resolve(path).unlink(missing_ok=True)
