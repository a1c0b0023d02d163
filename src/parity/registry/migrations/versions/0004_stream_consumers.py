"""Stream consumers' counters and heartbeats, read by ``parity stream status``.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "parity_stream_consumers",
        sa.Column("project", sa.String(128), nullable=False),
        sa.Column("source", sa.String(128), nullable=False),
        sa.Column("consumer", sa.String(256), nullable=False),
        sa.Column("owner", sa.String(256), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("started_at", _TS, nullable=False),
        sa.Column("heartbeat_at", _TS, nullable=False),
        sa.Column("stopped_at", _TS, nullable=True),
        sa.Column("consumed", sa.BigInteger(), nullable=False),
        sa.Column("written", sa.BigInteger(), nullable=False),
        sa.Column("batches", sa.BigInteger(), nullable=False),
        sa.Column("dead_letters", sa.JSON(), nullable=False),
        sa.Column("last_offset", sa.Text(), nullable=True),
        sa.Column("freshness", sa.JSON(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "state IN ('running', 'stopped')", name="ck_parity_stream_consumers_state"
        ),
        sa.PrimaryKeyConstraint("project", "source", "consumer", name="pk_parity_stream_consumers"),
        sa.ForeignKeyConstraint(
            ["project"],
            ["parity_projects.project"],
            name="fk_parity_stream_consumers_parity_projects",
            ondelete="CASCADE",
        ),
    )


def downgrade() -> None:
    op.drop_table("parity_stream_consumers")
