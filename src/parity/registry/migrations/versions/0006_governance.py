"""Governance: access tokens, the hash-chained audit log, restricted entity keys.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
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
        "parity_tokens",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("project", sa.String(128), nullable=False),
        sa.Column("principal", sa.String(128), nullable=False),
        sa.Column("roles", sa.JSON(), nullable=False),
        sa.Column("salt", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(128), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("expires_at", _TS, nullable=True),
        sa.Column("revoked_at", _TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_parity_tokens"),
        _project_fk("parity_tokens"),
    )
    op.create_index("ix_parity_tokens_project_principal", "parity_tokens", ["project", "principal"])
    op.create_table(
        "parity_audit_heads",
        sa.Column("project", sa.String(128), nullable=False),
        sa.Column("seq", _ID, nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("project", name="pk_parity_audit_heads"),
        _project_fk("parity_audit_heads"),
    )
    op.create_table(
        "parity_audit",
        sa.Column("project", sa.String(128), nullable=False),
        sa.Column("seq", _ID, nullable=False),
        sa.Column("at", _TS, nullable=False),
        sa.Column("principal", sa.String(128), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("resources", sa.JSON(), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("project", "seq", name="pk_parity_audit"),
        _project_fk("parity_audit"),
    )
    op.create_index("ix_parity_audit_project_at", "parity_audit", ["project", "at"])
    op.create_index(
        "ix_parity_audit_project_principal_at", "parity_audit", ["project", "principal", "at"]
    )
    op.create_table(
        "parity_restrictions",
        sa.Column("project", sa.String(128), nullable=False),
        sa.Column("entity", sa.String(128), nullable=False),
        sa.Column("entity_key", sa.String(512), nullable=False),
        sa.Column("restricted_at", _TS, nullable=False),
        sa.Column("restricted_by", sa.String(128), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("project", "entity", "entity_key", name="pk_parity_restrictions"),
        _project_fk("parity_restrictions"),
    )


def downgrade() -> None:
    op.drop_table("parity_restrictions")
    op.drop_index("ix_parity_audit_project_principal_at", "parity_audit")
    op.drop_index("ix_parity_audit_project_at", "parity_audit")
    op.drop_table("parity_audit")
    op.drop_table("parity_audit_heads")
    op.drop_index("ix_parity_tokens_project_principal", "parity_tokens")
    op.drop_table("parity_tokens")
