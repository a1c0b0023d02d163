"""Writing an apply's plan: a version row per change, the live objects, the revision counter.

Runs inside the registry's write transaction, under its lock (``Registry.apply``). Each
version row gets its number (the object's last plus one) and its semantic version, bumped
from the object's last recorded one by ``registry.semver``'s rules.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from parity.definitions import spec_hash
from parity.registry.models import objects, projects, versions
from parity.registry.plan import Plan
from parity.registry.semver import next_version, parse

__all__ = ["write_plan"]


def write_plan(
    conn: Connection,
    project: str,
    plan: Plan,
    revision: int,
    author: str,
    notes: Mapping[tuple[str, str], str] | None = None,
    code: Mapping[tuple[str, str], str | None] | None = None,
) -> None:
    """Write a plan's changes as ``revision``: new versions, the live rows, the counter.
    ``notes``: why a (kind, name) changed, kept with its version (an override, a rollback);
    ``code``: on-demand views' function sources."""
    changed = plan.of("create", "update", "delete")
    now = datetime.now(UTC)
    # Continue numbering after a delete: the next version follows the last one written.
    last = _last_versions(conn, project, {c.name for c in changed})
    version_rows, creates, updates, deletes = [], [], [], []
    for c in changed:
        number, semver, action = last.get((c.kind, c.name), (0, None, None))
        version = number + 1
        spec = c.new if c.action != "delete" else c.old
        assert spec is not None
        digest = spec_hash(spec)
        previous = None if semver is None else parse(semver)
        sem = next_version(c.kind, c.action, previous, c.diff, deleted=action == "delete")
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
                "semver": str(sem),
                "note": (notes or {}).get((c.kind, c.name), ""),
                "code": (code or {}).get((c.kind, c.name)),
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


def _last_versions(
    conn: Connection, project: str, names: set[str]
) -> dict[tuple[str, str], tuple[int, str, str]]:
    """(number, semantic version, action) of the last version of each object named."""
    v = versions.c
    last = (
        sa.select(v.kind, v.name, sa.func.max(v.version).label("number"))
        .where(v.project == project, v.name.in_(sorted(names)))
        .group_by(v.kind, v.name)
        .subquery()
    )
    rows = conn.execute(
        sa.select(v.kind, v.name, v.version, v.semver, v.action).join(
            last,
            sa.and_(
                v.project == project,
                v.kind == last.c.kind,
                v.name == last.c.name,
                v.version == last.c.number,
            ),
        )
    ).all()
    return {(r.kind, r.name): (int(r.version), str(r.semver), str(r.action)) for r in rows}
