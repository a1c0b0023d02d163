"""Reproducible training snapshots: a historical retrieval stored as content-addressed
Parquet, with the manifest that lets it be verified and made again.

::

    snap = store.create_snapshot("train_v1", "data/driver_entities.parquet",
                                 ["driver_hourly_stats:conv_rate"], description="ranker v1")
    store.list_snapshots()                      # every snapshot, by name
    store.get_snapshot("train_v1").manifest     # revision, versions, fingerprints, profile...
    store.verify_snapshot("train_v1").ok        # the file still holds the same rows
    store.recreate_snapshot("train_v1").identical   # the join at that revision, run again

The parts: ``digest`` (the content digest that names a file), ``fingerprint`` (source
files: what was read, what changed), ``manifest`` (the ``parity_snapshots`` rows),
``pinned`` (definitions rebuilt at a revision, and the join run with them), ``create``,
``verify``, ``recreate``, ``place`` (erase and export reach snapshots) and ``lineage``
(snapshots as nodes of the lineage graph).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from parity.snapshots.digest import ColumnDigest, TableDigest
    from parity.snapshots.fingerprint import FileChange, FileFingerprint, SourceFiles
    from parity.snapshots.manifest import Snapshot
    from parity.snapshots.recreate import Recreation
    from parity.snapshots.verify import Verification

_HOMES = {
    "ColumnDigest": "digest",
    "TableDigest": "digest",
    "FileChange": "fingerprint",
    "FileFingerprint": "fingerprint",
    "SourceFiles": "fingerprint",
    "Snapshot": "manifest",
    "Recreation": "recreate",
    "Verification": "verify",
}


def __getattr__(name: str) -> Any:
    """The names below, each imported from its module when first asked for (a plan reads
    the snapshot rows and never digests a file)."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)


__all__ = [
    "ColumnDigest",
    "FileChange",
    "FileFingerprint",
    "Recreation",
    "Snapshot",
    "SourceFiles",
    "TableDigest",
    "Verification",
]
