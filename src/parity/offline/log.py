"""The offline log: rows pushed to a push source's offline side, one Parquet file per push.

Files live in ``<offline_log>/<push source name>/`` and are written atomically (a temporary
file, fsync, rename, fsync of the folder), so a crash leaves either the whole push or none
of it, and an accepted push survives a restart. Engines read them together with the push
source's batch files.

A push is named by its **push id** (the caller's, or a fresh one): its file is
``push-<id>.parquet`` and holds a digest of the rows in its metadata, so a retry of the same
push finds it there and appends nothing twice (the same id with other rows is refused). While
a push's online writes are under way, ``push-<id>.pending.json`` lists the views already
written online; it is removed when they all are, so a retry after a failure (or a crash)
writes online only what did not land.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa

from parity.lazy import LazyModule

if TYPE_CHECKING:
    import pyarrow.parquet as pq
else:
    pq = LazyModule("pyarrow.parquet", globals(), "pq")

PUSH_ID = re.compile(r"[A-Za-z0-9_.-]{1,128}")
"""What a push id may be: letters, digits, ``_``, ``.``, ``-``; at most 128."""
_DIGEST = b"parity.push_digest"


def new_push_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ-") + uuid.uuid4().hex[:12]


def push_file(folder: Path, push_id: str) -> Path:
    return folder / f"push-{push_id}.parquet"


def logged_digest(folder: Path, push_id: str) -> str | None:
    """The digest of the rows the log holds for ``push_id``; None when it holds none."""
    path = push_file(folder, push_id)
    if not path.exists():
        return None
    meta = pq.read_schema(path).metadata or {}
    return meta.get(_DIGEST, b"").decode()


def pending_views(folder: Path, push_id: str) -> list[str] | None:
    """The views a push wrote online before it stopped; None when none is pending."""
    path = folder / f"push-{push_id}.pending.json"
    try:
        return list(json.loads(path.read_text())["online_views_written"])
    except FileNotFoundError:
        return None


def set_pending(folder: Path, push_id: str, views_written: list[str] | None) -> None:
    """Record the views written online so far (None: the push is complete)."""
    path = folder / f"push-{push_id}.pending.json"
    if views_written is None:
        path.unlink(missing_ok=True)
        return
    tmp = folder / f".{path.name}.tmp"
    tmp.write_text(json.dumps({"online_views_written": views_written}))
    os.replace(tmp, path)


def log_dir(root: Path, source_name: str) -> Path:
    return root / source_name


def has_files(folder: Path) -> bool:
    return folder.is_dir() and any(folder.glob("*.parquet"))


def append(folder: Path, table: pa.Table, push_id: str | None = None, digest: str = "") -> Path:
    """Write ``table`` as one new file of the log, durably; returns its path."""
    folder.mkdir(parents=True, exist_ok=True)
    final = push_file(folder, push_id or new_push_id())
    if digest:
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), _DIGEST: digest})
    write_atomically(final, table)
    return final


def write_atomically(final: Path, table: pa.Table) -> None:
    """``table`` as the Parquet file ``final``: a temporary file, fsync, rename, fsync of the
    folder; a crash leaves the old file or the new one, never a mix."""
    folder = final.parent
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


def log_files(root: Path) -> list[Path]:
    """Every Parquet file of the offline log under ``root`` (all push sources), sorted."""
    return sorted(root.glob("*/*.parquet")) if root.is_dir() else []


@contextmanager
def rewriting(folder: Path) -> Iterator[None]:
    """Hold the folder's rewrite lock (``.parity-rewrite.lock``, an ``flock``): rewrites of
    its files by erase, retention and key rotation, in any process on this host, run one
    at a time, so none writes back rows another has just removed."""
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / ".parity-rewrite.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def rewrite(path: Path, change: Callable[[pa.Table], pa.Table]) -> tuple[int, int]:
    """Replace one log file by ``change(its table)``, atomically, keeping its metadata (the
    push digest, so a retry of that push still appends nothing); returns the rows before and
    after. A file left with no rows stays, empty, for the same reason. Used by erase,
    retention and key rotation; holds the folder's ``rewriting`` lock while it reads,
    changes and writes."""
    with rewriting(path.parent):
        table = pq.read_table(path)
        changed = change(table)
        meta = table.schema.metadata or {}
        if meta:
            changed = changed.replace_schema_metadata({**(changed.schema.metadata or {}), **meta})
        if changed.num_rows != table.num_rows or not changed.equals(table):
            write_atomically(path, changed)
    return table.num_rows, changed.num_rows
