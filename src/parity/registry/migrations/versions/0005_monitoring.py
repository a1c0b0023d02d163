"""Monitoring: stored results (profiles, drift, checks, skew), view freshness, alerts.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _project_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["project"],
        ["parity_projects.project"],
        name=f"fk_{table}_parity_projects",
        ondelete="CASCADE",
    )


def upgrade() -> None:
    op.create_table(
        "parity_monitor_results",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("project", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("view", sa.String(128), nullable=False),
        sa.Column("view_version", sa.Integer(), nullable=True),
        sa.Column("start_at", _TS, nullable=True),
        sa.Column("end_at", _TS, nullable=True),
        sa.Column("scope", sa.String(64), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("summary", sa.JSON(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_parity_monitor_results"),
        _project_fk("parity_monitor_results"),
    )
    op.create_index(
        "ix_parity_monitor_results_project_kind_view_created_at",
        "parity_monitor_results",
        ["project", "kind", "view", "created_at"],
    )
    op.create_table(
        "parity_view_freshness",
        sa.Column("project", sa.String(128), nullable=False),
        sa.Column("view", sa.String(128), nullable=False),
        sa.Column("target", sa.String(16), nullable=False),
        sa.Column("newest_event_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("project", "view", "target", name="pk_parity_view_freshness"),
        _project_fk("parity_view_freshness"),
    )
    op.create_table(
        "parity_alerts",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("project", sa.String(128), nullable=False),
        sa.Column("rule", sa.String(64), nullable=False),
        sa.Column("view", sa.String(128), nullable=False),
        sa.Column("feature", sa.String(128), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("observed", sa.Float(), nullable=True),
        sa.Column("threshold", sa.Float(), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("opened_at", _TS, nullable=False),
        sa.Column("last_seen_at", _TS, nullable=False),
        sa.Column("resolved_at", _TS, nullable=True),
        sa.CheckConstraint("state IN ('open', 'resolved')", name="ck_parity_alerts_state"),
        sa.PrimaryKeyConstraint("id", name="pk_parity_alerts"),
        _project_fk("parity_alerts"),
    )
    op.create_index(
        "ix_parity_alerts_project_state_rule_view_feature",
        "parity_alerts",
        ["project", "state", "rule", "view", "feature"],
    )


def downgrade() -> None:
    op.drop_table("parity_alerts")
    op.drop_table("parity_view_freshness")
    op.drop_index(
        "ix_parity_monitor_results_project_kind_view_created_at", "parity_monitor_results"
    )
    op.drop_table("parity_monitor_results")
