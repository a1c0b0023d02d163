"""The registry's first tables: projects (revision counter), live objects, versions.

Revision ID: 0001
Revises:
Create Date: 2024-06-01

Tables are created without a schema; the connection's schema_translate_map places them.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "parity_projects",
        sa.Column("project", sa.String(128), nullable=False),
        sa.Column("revision", sa.BigInteger(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("project", name="pk_parity_projects"),
    )
    op.create_table(
        "parity_versions",
        sa.Column("project", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("diff", sa.JSON(), nullable=False),
        sa.Column("author", sa.String(256), nullable=False),
        sa.Column("applied_at", _TS, nullable=False),
        sa.Column("revision", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("project", "kind", "name", "version", name="pk_parity_versions"),
        sa.CheckConstraint(
            "action IN ('create', 'update', 'delete')", name="ck_parity_versions_action"
        ),
        sa.CheckConstraint("version >= 1", name="ck_parity_versions_version_positive"),
        sa.ForeignKeyConstraint(
            ["project"],
            ["parity_projects.project"],
            name="fk_parity_versions_parity_projects",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_parity_versions_project_name", "parity_versions", ["project", "name"])
    op.create_index(
        "ix_parity_versions_project_revision", "parity_versions", ["project", "revision"]
    )
    op.create_table(
        "parity_objects",
        sa.Column("project", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("project", "kind", "name", name="pk_parity_objects"),
        sa.ForeignKeyConstraint(
            ["project", "kind", "name", "version"],
            [
                "parity_versions.project",
                "parity_versions.kind",
                "parity_versions.name",
                "parity_versions.version",
            ],
            name="fk_parity_objects_parity_versions",
        ),
    )
    op.create_index("ix_parity_objects_project_name", "parity_objects", ["project", "name"])


def downgrade() -> None:
    op.drop_table("parity_objects")
    op.drop_table("parity_versions")
    op.drop_table("parity_projects")
