"""The audit log's token id in a column of its own.

Until now a record's token id was kept in its ``counts`` JSON under the reserved key
``@token``. It moves to ``parity_audit.token_id``; existing records are moved over (their
hashes do not change: the token id was always a field of its own in the hashed form).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_KEY = "@token"


def _schema() -> str | None:
    """The registry's PostgreSQL schema (None: the default). DDL needs it spelled out: the
    connection's schema translation applies to tables, not to ALTER statements."""
    return op.get_context().version_table_schema  # type: ignore[no-any-return]


def _audit() -> sa.TableClause:
    return sa.table(
        "parity_audit",
        sa.column("project", sa.String),
        sa.column("seq", sa.BigInteger),
        sa.column("counts", sa.JSON),
        sa.column("token_id", sa.String),
        schema=_schema(),
    )


def _counts(value: Any) -> dict[str, Any]:
    return dict(json.loads(value) if isinstance(value, str) else value or {})


def upgrade() -> None:
    op.add_column(
        "parity_audit", sa.Column("token_id", sa.String(64), nullable=True), schema=_schema()
    )
    conn = op.get_bind()
    audit = _audit()
    a = audit.c
    rows = conn.execute(
        sa.select(a.project, a.seq, a.counts).where(sa.cast(a.counts, sa.Text).like(f'%"{_KEY}"%'))
    ).all()
    for project, seq, stored in rows:
        counts = _counts(stored)
        token = counts.pop(_KEY, None)
        conn.execute(
            audit.update()
            .where(a.project == project, a.seq == seq)
            .values(counts=counts, token_id=None if token is None else str(token))
        )


def downgrade() -> None:
    conn = op.get_bind()
    audit = _audit()
    a = audit.c
    rows = conn.execute(
        sa.select(a.project, a.seq, a.counts, a.token_id).where(a.token_id.is_not(None))
    ).all()
    for project, seq, stored, token in rows:
        counts = {**_counts(stored), _KEY: token}
        conn.execute(audit.update().where(a.project == project, a.seq == seq).values(counts=counts))
    with op.batch_alter_table("parity_audit", schema=_schema()) as batch:
        batch.drop_column("token_id")
