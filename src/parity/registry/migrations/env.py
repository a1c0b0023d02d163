"""Alembic environment for the registry's own tables; run through ``parity.registry.migrate``.

It never opens a connection itself: ``migrate.upgrade`` passes one in
``config.attributes["connection"]`` that is already inside a locked transaction, which Alembic
joins (and the caller commits). With a PostgreSQL schema, the connection translates the
tables' schema and Alembic's version table lives in that schema too.
"""

from __future__ import annotations

from alembic import context

from parity.registry.models import ALEMBIC_VERSION_TABLE, metadata

config = context.config
connection = config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "the registry's migrations run through parity.registry.migrate.upgrade(), "
        "which passes a locked connection; the alembic command line is not supported"
    )

context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table=ALEMBIC_VERSION_TABLE,
    version_table_schema=config.attributes.get("schema"),
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)

with context.begin_transaction():
    context.run_migrations()
