"""Semantic versions: every version row carries ``semver`` (``MAJOR.MINOR.PATCH``), a
``note`` (why it was written: an ``--allow-breaking`` override, a rollback) and, for an
on-demand view, ``code``: its function's source, for ``parity diff``.

Existing histories are numbered from their stored diffs with the rules of
``parity.registry.semver`` (``1.0.0`` at the first version), so an upgraded registry shows
the versions a new one would have written. The downgrade drops both columns.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _schema() -> str | None:
    return op.get_context().version_table_schema  # type: ignore[no-any-return]


def _versions() -> sa.TableClause:
    return sa.table(
        "parity_versions",
        sa.column("project", sa.String),
        sa.column("kind", sa.String),
        sa.column("name", sa.String),
        sa.column("version", sa.Integer),
        sa.column("action", sa.String),
        sa.column("diff", sa.JSON),
        sa.column("semver", sa.String),
        schema=_schema(),
    )


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def upgrade() -> None:
    from parity.registry.diff import FieldChange
    from parity.registry.semver import next_version

    with op.batch_alter_table("parity_versions", schema=_schema()) as batch:
        batch.add_column(sa.Column("semver", sa.String(32), nullable=False, server_default="1.0.0"))
        batch.add_column(sa.Column("note", sa.Text(), nullable=False, server_default=""))
        batch.add_column(sa.Column("code", sa.Text(), nullable=True))
    conn = op.get_bind()
    t = _versions()
    c = t.c
    rows = conn.execute(
        sa.select(c.project, c.kind, c.name, c.version, c.action, c.diff).order_by(
            c.project, c.kind, c.name, c.version
        )
    ).all()
    previous: dict[tuple[str, str, str], tuple[Any, bool]] = {}
    for project, kind, name, number, action, diff in rows:
        key = (project, kind, name)
        last, deleted = previous.get(key, (None, False))
        changes = [FieldChange.from_dict(d) for d in _json(diff) or ()]
        semver = next_version(kind, action, last, changes, deleted=deleted)
        previous[key] = (semver, action == "delete")
        if str(semver) != "1.0.0":
            conn.execute(
                t.update()
                .where(c.project == project, c.kind == kind, c.name == name, c.version == number)
                .values(semver=str(semver))
            )


def downgrade() -> None:
    # ALTER TABLE ... DROP COLUMN in place (SQLite 3.35+): copying the table, as batch mode
    # would, cannot drop it while parity_objects' foreign key points at it.
    with op.batch_alter_table("parity_versions", schema=_schema(), recreate="never") as batch:
        batch.drop_column("code")
        batch.drop_column("note")
        batch.drop_column("semver")
