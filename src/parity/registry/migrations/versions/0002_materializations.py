"""Materialization intervals: which event-time windows each view loaded online, and when.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "parity_materializations",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
            autoincrement=True,
        ),
        sa.Column("project", sa.String(128), nullable=False),
        sa.Column("view", sa.String(128), nullable=False),
        sa.Column("start_at", _TS, nullable=False),
        sa.Column("end_at", _TS, nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("stored", sa.BigInteger(), nullable=False),
        sa.Column("finished_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_parity_materializations"),
        sa.ForeignKeyConstraint(
            ["project"],
            ["parity_projects.project"],
            name="fk_parity_materializations_parity_projects",
            ondelete="CASCADE",
        ),
    )
    op.create_index(
        "ix_parity_materializations_project_view_end_at",
        "parity_materializations",
        ["project", "view", "end_at"],
    )


def downgrade() -> None:
    op.drop_table("parity_materializations")
