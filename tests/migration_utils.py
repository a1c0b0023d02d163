"""Bring a registry target's database to a given migration, for the migration tests."""

from __future__ import annotations

from alembic import command

from parity.registry import engine as eng
from parity.registry.migrate import alembic_config


def at_migration(target, revision: str, action=command.upgrade) -> None:
    """Bring the target's database to ``revision`` with the registry's own migrations."""
    url = eng.parse_url(target.url)
    eng.make_folder(url)
    engine = eng.create_engine(url, schema=target.schema, timeout=30)
    try:
        with eng.connect(engine, write=True) as conn:
            if target.schema is not None:
                conn.exec_driver_sql(f'CREATE SCHEMA IF NOT EXISTS "{target.schema}"')
            action(alembic_config(target.schema, conn), revision)
    finally:
        engine.dispose()
