"""``apply`` and ``plan`` end to end: read the repo, validate against the data, prepare the
online store, register all or nothing, then drop what was deleted.

Validation and the write see the same registry revision: if another apply lands in between,
the plan is made and validated again against the new revision, after a backoff with jitter,
until it is registered, validation fails for a real reason, or ``RETRY_SECONDS`` have passed
(then ``ConcurrentApplyError`` says what to do). Applies of one process to one project take
turns (a lock), so only applies from other processes make it retry. The online store is
prepared first, so an unreachable store fails the apply before anything is registered; the
data of views the apply deleted is dropped after.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from parity.definitions import Definition
from parity.errors import ConcurrentApplyError
from parity.hooks import HookSet
from parity.offline.base import OfflineEngine
from parity.online.base import OnlineStore, OnlineView
from parity.registry import impact
from parity.registry.catalog import Catalog, CatalogCache
from parity.registry.plan import Plan
from parity.registry.registry import Registry
from parity.registry.validation import validate
from parity.repo.loader import load_repo

__all__ = ["ApplyContext", "apply", "plan"]

RETRY_SECONDS = 30.0
"""How long an apply keeps validating again while other applies land before its write."""
BACKOFF_SECONDS = (0.02, 1.0)
"""The first and the longest wait between attempts (doubling, each drawn with full jitter)."""

_turns: dict[tuple[str, str | None, str], threading.RLock] = {}
_turns_lock = threading.Lock()


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
    current = ctx.catalogs.get(fresh=True, known=objects)
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
    """What ``apply`` would create, change or delete, with each change's impact downstream
    (``registry.impact``); validates first."""
    prep = _prepare(ctx, objects, delete_missing)
    planned = ctx.registry.plan(prep.ordered, delete_missing=prep.delete_missing)
    from parity.snapshots.manifest import list_registry  # impact reaches them: one query

    snapshots = list_registry(ctx.registry) if planned.of("update") else []
    return replace(planned, impacts=impact.analyse(planned, prep.world, snapshots))


def apply(
    ctx: ApplyContext,
    objects: Sequence[Definition] | None,
    delete_missing: bool | None,
    author: str | None,
    *,
    allow_breaking: bool = False,
    notes: Mapping[tuple[str, str], str] | None = None,
) -> Plan:
    """Validate and register, all or nothing; returns what was done. A breaking change to
    what a feature service or model reads is refused unless ``allow_breaking`` (then the
    override is noted with the version); ``notes`` are kept with the versions written."""
    return ctx.hooks.around(
        "apply",
        lambda: _apply(ctx, objects, delete_missing, author, allow_breaking, notes or {}),
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
    allow_breaking: bool,
    notes: Mapping[tuple[str, str], str],
) -> Plan:
    began = time.monotonic()
    deadline = began + RETRY_SECONDS
    attempt = 0
    from parity.snapshots.manifest import list_registry

    with _turn(ctx, deadline):
        snapshots = list_registry(ctx.registry)  # impact shows them, never refuses: one query
        while True:
            attempt += 1
            prep = _prepare(ctx, objects, delete_missing)  # a real problem raises here
            world = prep.world
            online = ctx.online()
            online.setup(
                [OnlineView.of(v, world.join_keys_of(v)) for v in world.views() if v.online]
            )
            found: list[tuple[impact.Impact, ...]] = []

            def weigh(
                planned: Plan, world: Catalog = world, found: list[Any] = found
            ) -> Mapping[tuple[str, str], str]:
                """(Under the registry's lock) refuse what breaks a consumer, unless allowed."""
                impacts = impact.analyse(planned, world, snapshots)
                impact.guard(impacts, allow_breaking=allow_breaking)
                found.append(impacts)
                kept = dict(impact.override_notes(impacts))
                for key, note in notes.items():
                    kept[key] = f"{note}; {kept[key]}" if key in kept else note
                return kept

            try:
                done = ctx.registry.apply(
                    prep.ordered,
                    delete_missing=prep.delete_missing,
                    author=author,
                    expected_revision=prep.revision,
                    guard=weigh,
                )
            except ConcurrentApplyError as exc:
                now = time.monotonic()
                if now >= deadline:
                    raise _gave_up(ctx, attempt, now - began) from exc
                first, longest = BACKOFF_SECONDS
                wait = random.uniform(0, min(longest, first * 2 ** (attempt - 1)))
                time.sleep(min(wait, deadline - now))
                continue
            finally:
                ctx.catalogs.invalidate()
            deleted = [
                c.name for c in done.changes if c.kind == "feature_view" and c.action == "delete"
            ]
            if deleted:  # their online data (and intervals) go too
                online.drop_views(deleted)
                ctx.registry.forget_materializations(deleted)
            return replace(done, impacts=found[-1]) if found else done


@contextlib.contextmanager
def _turn(ctx: ApplyContext, deadline: float) -> Iterator[None]:
    """This process's applies to one project, one at a time: threads never make each other
    validate again (applies from other processes still may)."""
    reg = ctx.registry
    key = (reg.url.render_as_string(hide_password=False), reg.schema, reg.project)
    with _turns_lock:
        lock = _turns.setdefault(key, threading.RLock())
    if not lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
        raise ConcurrentApplyError(
            f"apply to project {reg.project!r}: waited {RETRY_SECONDS:g} s for this "
            "process's other applies to the project to finish; nothing of this apply was "
            "registered. Apply again once they are done."
        )
    try:
        yield
    finally:
        lock.release()


def _gave_up(ctx: ApplyContext, attempts: int, seconds: float) -> ConcurrentApplyError:
    return ConcurrentApplyError(
        f"apply to project {ctx.project!r}: other applies changed the registry before this "
        f"one could write, {attempts} attempt(s) in {seconds:.1f} s (each validated again "
        "against the new revision); nothing of this apply was registered. Apply again "
        "(`parity apply` or store.apply) once the other applies are done, or raise "
        "parity.registry.apply.RETRY_SECONDS for a registry this busy."
    )
