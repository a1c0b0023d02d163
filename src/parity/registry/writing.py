"""Writing an apply's plan: a version row per change, the live objects, the revision counter.

Runs inside the registry's write transaction, under its lock (``Registry.apply``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from parity.definitions import spec_hash
from parity.registry.models import objects, projects, versions
from parity.registry.plan import Plan

__all__ = ["write_plan"]


def write_plan(conn: Connection, project: str, plan: Plan, revision: int, author: str) -> None:
    """Write a plan's changes as ``revision``: new versions, the live rows, the counter."""
    changed = plan.of("create", "update", "delete")
    now = datetime.now(UTC)
    # Continue numbering after a delete: the next version follows the last one written.
    last = _last_versions(conn, project, {c.name for c in changed})
    version_rows, creates, updates, deletes = [], [], [], []
    for c in changed:
        version = last.get((c.kind, c.name), 0) + 1
        spec = c.new if c.action != "delete" else c.old
        assert spec is not None
        digest = spec_hash(spec)
        version_rows.append(
            {
                "project": project,
                "kind": c.kind,
                "name": c.name,
                "version": version,
                "action": c.action,
                "spec": spec,
                "content_hash": digest,
                "diff": [fc.to_dict() for fc in c.diff],
                "author": author,
                "applied_at": now,
                "revision": revision,
            }
        )
        live = {"project": project, "kind": c.kind, "name": c.name}
        if c.action == "create":
            creates.append(
                {
                    **live,
                    "version": version,
                    "spec": spec,
                    "content_hash": digest,
                    "created_at": now,
                    "updated_at": now,
                }
            )
        elif c.action == "update":
            updates.append(
                {
                    "k_kind": c.kind,
                    "k_name": c.name,
                    "version": version,
                    "spec": spec,
                    "content_hash": digest,
                    "updated_at": now,
                }
            )
        else:
            deletes.append({"k_kind": c.kind, "k_name": c.name})
    # Versions first: a live row references the version it shows.
    conn.execute(versions.insert(), version_rows)
    if deletes:
        conn.execute(objects.delete().where(*_row_is(objects, project)), deletes)
    if updates:
        conn.execute(objects.update().where(*_row_is(objects, project)), updates)
    if creates:
        conn.execute(objects.insert(), creates)
    conn.execute(
        projects.update()
        .where(projects.c.project == project)
        .values(revision=revision, updated_at=now)
    )


def _row_is(table: sa.Table, project: str) -> tuple[Any, ...]:
    return (
        table.c.project == project,
        table.c.kind == sa.bindparam("k_kind"),
        table.c.name == sa.bindparam("k_name"),
    )


def _last_versions(conn: Connection, project: str, names: set[str]) -> dict[tuple[str, str], int]:
    rows = conn.execute(
        sa.select(versions.c.kind, versions.c.name, sa.func.max(versions.c.version))
        .where(versions.c.project == project, versions.c.name.in_(sorted(names)))
        .group_by(versions.c.kind, versions.c.name)
    ).all()
    return {(kind, name): int(v) for kind, name, v in rows}
