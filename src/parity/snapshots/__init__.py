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

from parity.snapshots.digest import ColumnDigest, TableDigest
from parity.snapshots.fingerprint import FileChange, FileFingerprint, SourceFiles
from parity.snapshots.manifest import Snapshot
from parity.snapshots.recreate import Recreation
from parity.snapshots.verify import Verification

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
