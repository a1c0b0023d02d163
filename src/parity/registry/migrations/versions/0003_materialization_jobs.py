"""Background materialization jobs of the feature server, visible to all of its workers.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "parity_materialization_jobs",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("project", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("views", sa.JSON(), nullable=False),
        sa.Column("request", sa.JSON(), nullable=False),
        sa.Column("progress", sa.JSON(), nullable=False),
        sa.Column("error", sa.JSON(), nullable=True),
        sa.Column("owner", sa.String(256), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("started_at", _TS, nullable=True),
        sa.Column("finished_at", _TS, nullable=True),
        sa.Column("heartbeat_at", _TS, nullable=False),
        sa.CheckConstraint(
            "state IN ('queued', 'running', 'succeeded', 'failed')",
            name="ck_parity_materialization_jobs_state",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_parity_materialization_jobs"),
        sa.ForeignKeyConstraint(
            ["project"],
            ["parity_projects.project"],
            name="fk_parity_materialization_jobs_parity_projects",
            ondelete="CASCADE",
        ),
    )
    op.create_index(
        "ix_parity_materialization_jobs_project_created_at",
        "parity_materialization_jobs",
        ["project", "created_at"],
    )


def downgrade() -> None:
    op.drop_table("parity_materialization_jobs")
