"""The embedded online store: one SQLite file, WAL mode, one table per project.

Several processes may read while one writes (WAL). Each thread has its own connection.
Newer-wins is one ``INSERT ... ON CONFLICT DO UPDATE ... WHERE`` comparing the row-value
``(event_us, created_us)``, so a batch is one transaction and nothing is half-written.
Times are SQLite's 64-bit integers (µs): every time Parity stores fits with room to spare.
A write that finds another writer's transaction waits up to ``busy_timeout_seconds``
(default 30 s); then, like any SQLite failure, it is an ``OnlineStoreError`` caused by the
``sqlite3`` error, and nothing of it is written.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from parity.errors import OnlineStoreError
from parity.online.base import (
    OnlineStore,
    OnlineView,
    RecordBatch,
    SupportsCompact,
    SupportsKeyScan,
    SupportsUpdate,
    Updater,
)
from parity.online.sqlite.config import SqliteOnlineConfig

_NO_CREATED = -(2**62)  # a missing created time is older than any real one
_CHUNK = 500  # keys per IN (...) query: under SQLite's variable limit
_PAGE = 1000  # keys per page when listing a view's keys


class SqliteOnlineStore(OnlineStore, SupportsUpdate, SupportsKeyScan, SupportsCompact):
    """Latest records per (view, entity key) in a local SQLite file."""

    def __init__(self, config: SqliteOnlineConfig, project: str, repo_path: Path):
        path = Path(config.path).expanduser()
        self.path = path if path.is_absolute() else Path(repo_path) / path
        self.table = f'"online_{project}"'
        self.mmap_bytes = config.mmap_size_mb * 1024 * 1024
        self.busy_timeout = config.busy_timeout_seconds
        self._local = threading.local()
        self._ready = False
        self._sql_cache: dict[int, str] = {}

    def _con(self) -> sqlite3.Connection:
        con = getattr(self._local, "con", None)
        if con is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                con = sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None)
                con.execute("PRAGMA journal_mode=WAL")
                con.execute("PRAGMA synchronous=NORMAL")
                con.execute(f"PRAGMA mmap_size={int(self.mmap_bytes)}")
            except sqlite3.Error as exc:
                raise OnlineStoreError(f"online store {self.path}: cannot open: {exc}") from exc
            self._local.con = con
        if not self._ready:
            con.execute(
                f"CREATE TABLE IF NOT EXISTS {self.table} ("
                "view TEXT NOT NULL, entity_key BLOB NOT NULL, event_us INTEGER NOT NULL, "
                "created_us INTEGER NOT NULL, record BLOB NOT NULL, "
                "PRIMARY KEY (view, entity_key)) WITHOUT ROWID"
            )
            self._ready = True
        return con

    @contextmanager
    def _failing(self, action: str) -> Iterator[None]:
        """SQLite's errors as ``OnlineStoreError`` naming the file and what failed."""
        try:
            yield
        except sqlite3.Error as exc:
            hint = ""
            if "locked" in str(exc) or "busy" in str(exc):
                hint = (
                    f" (another writer held the database longer than busy_timeout_seconds="
                    f"{self.busy_timeout:g}; try again)"
                )
            raise OnlineStoreError(
                f"online store {self.path}: {action} failed: {exc}{hint}"
            ) from exc

    def setup(self, views: Sequence[OnlineView]) -> None:
        with self._failing("setup"):
            self._con()

    def write(self, view: OnlineView, batch: RecordBatch) -> int:
        with self._failing(f"write to view {view.name!r}"):
            return self._write(view, batch)

    def _write(self, view: OnlineView, batch: RecordBatch) -> int:
        con = self._con()
        rows = (
            (view.name, k, ev, _NO_CREATED if cr is None else cr, rec)
            for k, ev, cr, rec in zip(
                batch.keys, batch.event_us, batch.created_us, batch.records, strict=True
            )
        )
        before = con.total_changes
        con.execute("BEGIN IMMEDIATE")
        try:
            con.executemany(
                f"INSERT INTO {self.table} VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (view, entity_key) DO UPDATE SET event_us = excluded.event_us, "
                "created_us = excluded.created_us, record = excluded.record "
                "WHERE (excluded.event_us, excluded.created_us) >= (event_us, created_us)",
                rows,
            )
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        return con.total_changes - before

    def update(self, view: OnlineView, keys: Sequence[bytes], fn: Updater) -> int:
        if not keys:
            return 0
        with self._failing(f"update of view {view.name!r}"):
            return self._update(view, keys, fn)

    def _update(self, view: OnlineView, keys: Sequence[bytes], fn: Updater) -> int:
        con = self._con()
        con.execute("BEGIN IMMEDIATE")  # the write lock first: nothing lands in between
        try:
            old = self.read([(view, keys)])[0]
            new = fn(keys, old)
            changed = [(k, o, n) for k, o, n in zip(keys, old, new, strict=True) if o != n]
            con.executemany(
                f"INSERT INTO {self.table} VALUES (?, ?, 0, 0, ?) ON CONFLICT (view, entity_key) "
                "DO UPDATE SET record = excluded.record",
                ((view.name, k, n) for k, _, n in changed if n is not None),
            )
            con.executemany(
                f"DELETE FROM {self.table} WHERE view = ? AND entity_key = ?",
                ((view.name, k) for k, _, n in changed if n is None),
            )
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        return len(changed)

    def _in_sql(self, n: int) -> str:
        sql = self._sql_cache.get(n)
        if sql is None:
            marks = ",".join("?" * n)
            sql = (
                f"SELECT entity_key, record FROM {self.table} "
                f"WHERE view = ? AND entity_key IN ({marks})"
            )
            self._sql_cache[n] = sql
        return sql

    def read(
        self, requests: Sequence[tuple[OnlineView, Sequence[bytes]]]
    ) -> list[list[bytes | None]]:
        try:
            return self._read(requests)
        except sqlite3.Error as exc:
            raise OnlineStoreError(f"online store {self.path}: read failed: {exc}") from exc

    def _read(
        self, requests: Sequence[tuple[OnlineView, Sequence[bytes]]]
    ) -> list[list[bytes | None]]:
        con = self._con()
        out: list[list[bytes | None]] = []
        for view, keys in requests:
            if len(keys) == 1:
                row = con.execute(self._in_sql(1), (view.name, keys[0])).fetchone()
                out.append([row[1] if row else None])
                continue
            found: dict[bytes, bytes] = {}
            for i in range(0, len(keys), _CHUNK):
                part = keys[i : i + _CHUNK]
                found.update(con.execute(self._in_sql(len(part)), (view.name, *part)).fetchall())
            out.append([found.get(k) for k in keys])
        return out

    def delete(self, view: OnlineView, keys: Sequence[bytes]) -> int:
        with self._failing(f"delete from view {view.name!r}"):
            return self._delete(view, keys)

    def _delete(self, view: OnlineView, keys: Sequence[bytes]) -> int:
        con = self._con()
        before = con.total_changes
        con.execute("BEGIN IMMEDIATE")
        try:
            con.executemany(
                f"DELETE FROM {self.table} WHERE view = ? AND entity_key = ?",
                ((view.name, k) for k in keys),
            )
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        return con.total_changes - before

    def scan_keys(self, view: OnlineView) -> Iterator[bytes]:
        """Keys in key order, one query per page (no transaction held between pages)."""
        after = b""
        sql = (
            f"SELECT entity_key FROM {self.table} WHERE view = ? AND entity_key > ? "
            "ORDER BY entity_key LIMIT ?"
        )
        while True:
            with self._failing(f"listing the keys of view {view.name!r}"):
                keys = [bytes(r[0]) for r in self._con().execute(sql, (view.name, after, _PAGE))]
            if not keys:
                return
            yield from keys
            after = keys[-1]

    def compact(self) -> None:
        """Checkpoint the WAL into the file and VACUUM it: old page images (replaced or
        deleted records) leave the database file, its free pages and the WAL."""
        with self._failing("compact"):
            con = self._con()
            con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            con.execute("VACUUM")
            con.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def drop_views(self, names: Sequence[str]) -> None:
        with self._failing("removing views"):
            con = self._con()
            con.executemany(f"DELETE FROM {self.table} WHERE view = ?", ((n,) for n in names))

    def teardown(self) -> None:
        with self._failing("teardown"):
            self._con().execute(f"DROP TABLE IF EXISTS {self.table}")
        self._ready = False

    def close(self) -> None:
        con = getattr(self._local, "con", None)
        if con is not None:
            con.close()
            self._local.con = None
