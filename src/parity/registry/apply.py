"""``apply`` and ``plan`` end to end: read the repo, validate against the data, prepare the
online store, register all or nothing, then drop what was deleted.

Validation and the write see the same registry revision: if another apply lands in between,
validation runs again against the new state (up to three times). The online store is
prepared first, so an unreachable store fails the apply before anything is registered; the
data of views the apply deleted is dropped after.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from parity.definitions import Definition
from parity.errors import ConcurrentApplyError
from parity.hooks import HookSet
from parity.offline.base import OfflineEngine
from parity.online.base import OnlineStore, OnlineView
from parity.registry.catalog import Catalog, CatalogCache
from parity.registry.plan import Plan
from parity.registry.registry import Registry
from parity.registry.validation import validate
from parity.repo.loader import load_repo

__all__ = ["ApplyContext", "apply", "plan"]

ATTEMPTS = 3


@dataclass(frozen=True)
class ApplyContext:
    """What an apply reads and changes."""

    project: str
    repo_path: Path
    registry: Registry
    catalogs: CatalogCache
    offline: Callable[[], OfflineEngine]
    online: Callable[[], OnlineStore]
    hooks: HookSet


@dataclass(frozen=True)
class _Prepared:
    ordered: list[Definition]
    delete_missing: bool
    revision: int
    world: Catalog


def _prepare(
    ctx: ApplyContext, objects: Sequence[Definition] | None, delete_missing: bool | None
) -> _Prepared:
    """Validated objects, whether to delete the rest, the revision validated against, and
    the world the apply would leave. No objects: the repo folder, deleting what it lacks."""
    origin = None
    if objects is None:
        contents = load_repo(ctx.repo_path)
        objects, origin = contents.objects, contents.origin
        delete_missing = True if delete_missing is None else delete_missing
    current = ctx.catalogs.get(fresh=True)
    ordered, world = validate(
        objects,
        current,
        ctx.offline().source_schema,
        delete_missing=bool(delete_missing),
        origin=origin,
    )
    return _Prepared(ordered, bool(delete_missing), current.revision, world)


def plan(
    ctx: ApplyContext, objects: Sequence[Definition] | None, delete_missing: bool | None
) -> Plan:
    """What ``apply`` would create, change or delete; validates first."""
    prep = _prepare(ctx, objects, delete_missing)
    return ctx.registry.plan(prep.ordered, delete_missing=prep.delete_missing)


def apply(
    ctx: ApplyContext,
    objects: Sequence[Definition] | None,
    delete_missing: bool | None,
    author: str | None,
) -> Plan:
    """Validate and register, all or nothing; returns what was done."""
    return ctx.hooks.around(
        "apply",
        lambda: _apply(ctx, objects, delete_missing, author),
        lambda done: {"plan": done},
        project=ctx.project,
        objects=objects,
        delete_missing=delete_missing,
        author=author,
    )


def _apply(
    ctx: ApplyContext,
    objects: Sequence[Definition] | None,
    delete_missing: bool | None,
    author: str | None,
) -> Plan:
    for attempt in range(ATTEMPTS):
        prep = _prepare(ctx, objects, delete_missing)
        world = prep.world
        online = ctx.online()
        online.setup([OnlineView.of(v, world.join_keys_of(v)) for v in world.views() if v.online])
        try:
            done = ctx.registry.apply(
                prep.ordered,
                delete_missing=prep.delete_missing,
                author=author,
                expected_revision=prep.revision,
            )
        except ConcurrentApplyError:
            if attempt == ATTEMPTS - 1:
                raise
            continue
        finally:
            ctx.catalogs.invalidate()
        deleted = [
            c.name for c in done.changes if c.kind == "feature_view" and c.action == "delete"
        ]
        if deleted:  # their online data (and intervals) go too
            online.drop_views(deleted)
            ctx.registry.forget_materializations(deleted)
        return done
    raise AssertionError("unreachable")
