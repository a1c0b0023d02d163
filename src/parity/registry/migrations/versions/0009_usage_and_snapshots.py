"""Usage statistics per feature and consumer, and training snapshots.

- ``parity_usage``: reads of each feature (``feature`` "" for an object read as a whole)
  by each consumer (a principal, or ``service:NAME`` / ``model:NAME`` when a read named
  one), online and offline, with the last read time: what ``parity describe`` shows and
  ``parity unused`` weighs. Counts are added, never overwritten.
- ``parity_snapshots``: training snapshots (``store.create_snapshot``): the result's
  content-addressed Parquet file, its digest, and the manifest that makes it reproducible
  (registry revision, object versions, source fingerprints, code hashes, the entity
  frame's hash, a profile).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)


def _project_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["project"],
        ["parity_projects.project"],
        name=f"fk_{table}_parity_projects",
        ondelete="CASCADE",
    )


def upgrade() -> None:
    op.create_table(
        "parity_usage",
        sa.Column("project", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("feature", sa.String(128), nullable=False),
        sa.Column("consumer", sa.String(160), nullable=False),
        sa.Column("reads_online", sa.BigInteger(), nullable=False),
        sa.Column("reads_offline", sa.BigInteger(), nullable=False),
        sa.Column("keys_online", sa.BigInteger(), nullable=False),
        sa.Column("rows_offline", sa.BigInteger(), nullable=False),
        sa.Column("first_read_at", _TS, nullable=False),
        sa.Column("last_read_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint(
            "project", "kind", "name", "feature", "consumer", name="pk_parity_usage"
        ),
        _project_fk("parity_usage"),
    )
    op.create_index(
        "ix_parity_usage_project_last_read_at", "parity_usage", ["project", "last_read_at"]
    )
    op.create_table(
        "parity_snapshots",
        sa.Column("project", sa.String(128), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("created_by", sa.String(256), nullable=False),
        sa.Column("revision", sa.BigInteger(), nullable=False),
        sa.Column("features", sa.JSON(), nullable=False),
        sa.Column("manifest", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("project", "name", name="pk_parity_snapshots"),
        _project_fk("parity_snapshots"),
    )
    op.create_index("ix_parity_snapshots_project_digest", "parity_snapshots", ["project", "digest"])


def downgrade() -> None:
    op.drop_index("ix_parity_snapshots_project_digest", "parity_snapshots")
    op.drop_table("parity_snapshots")
    op.drop_index("ix_parity_usage_project_last_read_at", "parity_usage")
    op.drop_table("parity_usage")
