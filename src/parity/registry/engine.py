"""Engines, transactions and locks for the two supported databases, SQLite and PostgreSQL.

SQLite: the ``sqlite3`` driver's own transaction handling is switched off (it does not BEGIN
before a SELECT or DDL) and SQLAlchemy's ``begin`` event emits ``BEGIN``, or
``BEGIN IMMEDIATE`` for writers, which takes the database's write lock up front so two
writers serialize instead of failing on lock upgrade. The journal is WAL, so readers never
block the writer and a read transaction sees one consistent snapshot; waits for the lock are
bounded by the busy timeout.

PostgreSQL: writers lock their project's row (``SELECT ... FOR UPDATE``); migrations take a
transaction-scoped advisory lock. A ``schema`` is applied with ``schema_translate_map``.

Every database error leaves this package as ``RegistryError`` naming the URL and the step.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.exc import ArgumentError, OperationalError, SQLAlchemyError
from sqlalchemy.pool import StaticPool

from parity.errors import ConfigError, RegistryError
from parity.plugins import require

__all__ = [
    "advisory_lock_key",
    "check_folder",
    "connect",
    "create_engine",
    "database_errors",
    "insert_for",
    "is_sqlite",
    "make_folder",
    "parse_url",
    "safe_url",
    "sqlite_path",
]

_BEGIN_OPTION = "parity_sqlite_begin"
_DRIVERLESS = {"postgresql": "postgresql+psycopg", "postgres": "postgresql+psycopg"}


def parse_url(url: str | URL) -> URL:
    """A SQLAlchemy URL; ``postgresql://`` without a driver means psycopg 3."""
    try:
        parsed = sa.make_url(url)
    except ArgumentError as exc:
        raise ConfigError(f"registry: {url!r} is not a database URL: {exc}") from None
    if parsed.drivername in _DRIVERLESS:
        parsed = parsed.set(drivername=_DRIVERLESS[parsed.drivername])
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise ConfigError(
            f"registry: unsupported database {parsed.get_backend_name()!r} in "
            f"{safe_url(parsed)}; use sqlite:///path/registry.db or postgresql+psycopg://..."
        )
    if parsed.get_driver_name() == "psycopg":
        require(("psycopg",), "postgres", "a PostgreSQL registry")
    return parsed


def safe_url(url: URL) -> str:
    return url.render_as_string(hide_password=True)


def is_sqlite(url: URL) -> bool:
    return url.get_backend_name() == "sqlite"


def _sqlite_in_memory(url: URL) -> bool:
    return url.database in (None, "", ":memory:") or "mode=memory" in str(url)


def create_engine(url: URL, *, schema: str | None, timeout: float) -> Engine:
    """An engine set up for the registry's transactions; no connection is made yet."""
    if is_sqlite(url):
        if schema is not None:
            raise ConfigError(
                f"registry: schema={schema!r} is for PostgreSQL; a SQLite registry is one file"
            )
        kwargs: dict[str, Any] = {"connect_args": {"timeout": timeout}}
        if _sqlite_in_memory(url):
            # One shared connection, or every checkout would see its own empty database.
            kwargs["poolclass"] = StaticPool
            kwargs["connect_args"]["check_same_thread"] = False
        engine = sa.create_engine(url, **kwargs)
        _install_sqlite_hooks(engine, timeout)
        return engine
    engine = sa.create_engine(
        url,
        pool_pre_ping=True,
        connect_args={"connect_timeout": max(1, int(timeout))},
    )
    if schema is not None:
        engine = engine.execution_options(schema_translate_map={None: schema})
    return engine


def sqlite_path(url: URL) -> Path | None:
    """The file of a SQLite registry; None for PostgreSQL or an in-memory database."""
    if not is_sqlite(url) or _sqlite_in_memory(url):
        return None
    return Path(url.database or "").expanduser()


def check_folder(url: URL) -> None:
    """Refuse a SQLite file whose folder could never be made (a parent is a file)."""
    path = sqlite_path(url)
    if path is None:
        return
    folder = path.parent
    existing = next(p for p in (folder, *folder.parents) if p.exists())
    if not existing.is_dir():
        raise RegistryError(
            f"registry at {safe_url(url)}: could not create its folder {folder}: "
            f"{existing} is a file"
        )


def make_folder(url: URL) -> None:
    """Create the folder of a SQLite registry's file (when writing to it the first time)."""
    path = sqlite_path(url)
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RegistryError(
            f"registry at {safe_url(url)}: could not create its folder {path.parent}: {exc}"
        ) from exc


def _install_sqlite_hooks(engine: Engine, timeout: float) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves, below
        cur = dbapi_conn.cursor()
        try:
            cur.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
            cur.execute("PRAGMA foreign_keys = ON")
            # Switching a new file to WAL needs a brief exclusive lock, which the busy
            # handler does not always wait for; retry until the timeout.
            deadline = time.monotonic() + timeout
            while True:
                try:
                    cur.execute("PRAGMA journal_mode = WAL")
                    break
                except Exception as exc:
                    if "locked" not in str(exc) or time.monotonic() > deadline:
                        raise
                    time.sleep(0.01)
            cur.execute("PRAGMA synchronous = NORMAL")
        finally:
            cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get(_BEGIN_OPTION)
        conn.exec_driver_sql(f"BEGIN {mode}" if mode else "BEGIN")


@contextlib.contextmanager
def connect(engine: Engine, *, write: bool, snapshot: bool = False) -> Iterator[Connection]:
    """A connection inside one transaction, committed on success, rolled back on error.

    ``write=True`` on SQLite begins with ``BEGIN IMMEDIATE`` (the database write lock); on
    PostgreSQL the caller locks what it needs. ``snapshot=True`` makes every statement of a
    PostgreSQL transaction see the same snapshot (REPEATABLE READ; READ COMMITTED takes one
    per statement); a SQLite transaction always reads one snapshot.
    """
    with engine.connect() as conn:
        if write and engine.dialect.name == "sqlite":
            conn.execution_options(**{_BEGIN_OPTION: "IMMEDIATE"})
        if snapshot and engine.dialect.name == "postgresql":
            conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            yield conn


@contextlib.contextmanager
def database_errors(url: URL, action: str, *, timeout: float | None = None) -> Iterator[None]:
    """Re-raise database errors as ``RegistryError("registry at URL: could not ACTION: ...")``."""
    try:
        yield
    except SQLAlchemyError as exc:
        raise RegistryError(_describe(url, action, exc, timeout)) from exc


def _describe(url: URL, action: str, exc: SQLAlchemyError, timeout: float | None) -> str:
    orig = getattr(exc, "orig", None)
    detail = str(orig if orig is not None else exc).strip().splitlines()
    reason = detail[0] if detail else type(exc).__name__
    if isinstance(exc, OperationalError) and "locked" in reason and timeout is not None:
        reason += f" (waited {timeout:g}s for another writer; raise the timeout or retry)"
    return f"registry at {safe_url(url)}: could not {action}: {reason}"


def advisory_lock_key(*parts: str) -> int:
    """A stable signed 64-bit key for ``pg_advisory_xact_lock`` from some text."""
    digest = hashlib.sha256("\x00".join(("parity.registry", *parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def insert_for(conn: Connection) -> Any:
    """The dialect's ``insert`` (with ``on_conflict_do_*``): PostgreSQL's or SQLite's,
    imported when first needed (the PostgreSQL dialect is dear to import)."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert
