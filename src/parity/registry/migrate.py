"""Bring the registry's tables to the newest migration, safely when processes race to do it.

Alembic runs programmatically (no ``alembic.ini``): the scripts live in
``registry/migrations`` and ``env.py`` takes the connection from
``config.attributes["connection"]``. That connection already holds a lock, so two processes
opening a new database at once run the migrations one after the other and the second finds
nothing to do:

- SQLite: the migrations run inside a ``BEGIN IMMEDIATE`` transaction (SQLite DDL is
  transactional once the driver stops managing transactions, see ``engine.py``);
- PostgreSQL: inside a transaction holding ``pg_advisory_xact_lock``, which also covers
  ``CREATE SCHEMA IF NOT EXISTS`` (not race-free on its own).

A cheap unlocked check skips all of this when the database is already at head. ``exists``
tells whether there is a registry at all without creating one (a reader must not).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine

from parity import cache
from parity.errors import RegistryError
from parity.registry.engine import (
    advisory_lock_key,
    connect,
    database_errors,
    is_sqlite,
    safe_url,
    sqlite_path,
)
from parity.registry.models import ALEMBIC_VERSION_TABLE

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = [
    "alembic_config",
    "current_revision",
    "exists",
    "head_revision",
    "migration_of",
    "upgrade",
]

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(schema: str | None = None, connection: Connection | None = None) -> Config:
    """An Alembic config for the registry's migrations, for a connection and schema."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["schema"] = schema
    config.attributes["connection"] = connection
    return config


@functools.cache
def head_revision() -> str:
    """The newest migration. Kept in the disk cache (``parity.cache``, keyed by Parity's
    code, migrations included), so opening an up-to-date registry never imports Alembic."""
    head = cache.load("migrations", "head")
    if isinstance(head, str):
        return head
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "registry migrations have no head"
    cache.save("migrations", "head", head)
    return head


def current_revision(conn: Connection, schema: str | None) -> str | None:
    """The migration the database is at; None for a new database (or schema)."""
    if not sa.inspect(conn).has_table(ALEMBIC_VERSION_TABLE, schema=schema):
        return None
    table = sa.table(ALEMBIC_VERSION_TABLE, sa.column("version_num"), schema=schema)
    found = conn.execute(sa.select(table.c.version_num)).scalars().all()
    if len(found) <= 1:
        return found[0] if found else None
    from alembic.runtime.migration import MigrationContext  # its error names the heads

    ctx = MigrationContext.configure(
        conn,
        opts={"version_table": ALEMBIC_VERSION_TABLE, "version_table_schema": schema},
    )
    return ctx.get_current_revision()


def exists(engine: Engine, url: URL, schema: str | None, *, timeout: float) -> bool:
    """Whether the registry's tables exist (at any migration); creates nothing to find out.

    A SQLite file that is not there is not opened (opening would create it); a PostgreSQL
    schema or database without the migrations' version table holds no registry.
    """
    return migration_of(engine, url, schema, timeout=timeout) is not None


def migration_of(engine: Engine, url: URL, schema: str | None, *, timeout: float) -> str | None:
    """The migration the registry's tables are at; None when there are none (``exists``)."""
    path = sqlite_path(url)
    if path is not None and not path.is_file():
        return None
    with (
        database_errors(url, "open the registry", timeout=timeout),
        connect(engine, write=False) as conn,
    ):
        return current_revision(conn, schema)


def upgrade(engine: Engine, url: URL, schema: str | None, *, timeout: float) -> None:
    """Run every pending migration; a no-op (one small read) when already at head."""
    with (
        database_errors(url, "open the registry", timeout=timeout),
        connect(engine, write=False) as conn,
    ):
        if current_revision(conn, schema) == head_revision():
            return
    with (
        database_errors(url, "migrate the registry's tables", timeout=timeout),
        connect(engine, write=True) as conn,
    ):
        if not is_sqlite(url):
            key = advisory_lock_key("migrate", schema or "")
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(key)))
            if schema is not None:
                quoted = conn.dialect.identifier_preparer.quote_schema(schema)
                conn.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {quoted}")
        from alembic import command
        from alembic.util import CommandError

        try:
            command.upgrade(alembic_config(schema, conn), "head")
        except CommandError as exc:
            raise RegistryError(
                f"registry at {safe_url(url)}: its tables are at migration "
                f"{current_revision(conn, schema)!r}, which this version of Parity does "
                f"not know (head is {head_revision()!r}); upgrade Parity ({exc})"
            ) from exc
