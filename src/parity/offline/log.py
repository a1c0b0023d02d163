"""The offline log: rows pushed to a push source's offline side, one Parquet file per push.

Files live in ``<offline_log>/<push source name>/`` and are written atomically (a temporary
file, fsync, rename, fsync of the folder), so a crash leaves either the whole push or none
of it, and an accepted push survives a restart. Engines read them together with the push
source's batch files.
"""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq


def log_dir(root: Path, source_name: str) -> Path:
    return root / source_name


def has_files(folder: Path) -> bool:
    return folder.is_dir() and any(folder.glob("*.parquet"))


def append(folder: Path, table: pa.Table) -> Path:
    """Write ``table`` as one new file of the log, durably; returns its path."""
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    final = folder / f"part-{stamp}-{uuid.uuid4().hex[:12]}.parquet"
    tmp = folder / f".{final.name}.tmp"
    with open(tmp, "wb") as fh:
        pq.write_table(table, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, final)
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return final
