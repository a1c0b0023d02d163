"""Access checks in the Python API: the first governance hook of every store with auth on.

Each operation is checked for ``store.actor`` (the request's actor in the feature server,
else who the store runs as) before any work is done, on every resource it touches:

=================  ==============================================================
apply              ``apply`` on each object given (the repo's when none), and on
                   each registered object the apply would delete
online read        ``read_online`` on each feature view read (also the ones an
                   on-demand view reads) and each on-demand view computed
historical         ``read_offline`` on the same
write              push, ``write_to_online_store`` and stream batches:
                   ``write_online`` and/or ``write_offline`` by where they go (``to``);
                   materialize: ``materialize``; ``delete_entities``: ``write_online``;
                   erase: ``admin``
listing, reading   ``describe``: ``store.list_*`` leave out what the actor may not
definitions        describe, ``store.get_*`` refuse it (``visible``, ``describable``)
=================  ==============================================================

A refusal is a ``PermissionDeniedError`` naming the principal, action and resources, and is
recorded in the audit log. The check is a dict lookup per resource once decided
(``parity.governance.access``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from parity.definitions import Definition
from parity.governance.access import Resource, resources_of
from parity.hooks import Hooks

if TYPE_CHECKING:
    from parity.query.plan import FeaturePlan
    from parity.store import FeatureStore

__all__ = ["AccessHooks", "check_plan", "describable", "readable_history", "visible"]

D = TypeVar("D", bound=Definition)

_WRITE_ACTIONS = {
    "online": ("write_online",),
    "offline": ("write_offline",),
    "online_and_offline": ("write_online", "write_offline"),
}


def _read_resources(plan: FeaturePlan) -> list[Resource]:
    out = [Resource("feature_view", r.view.name, r.view.tags) for r in plan.fetch]
    out += [Resource("on_demand_feature_view", s.view.name, s.view.tags) for s in plan.steps]
    return out


def _resource(obj: Definition) -> Resource:
    return Resource(obj.kind, obj.name, obj.tags)


class AccessHooks(Hooks):
    """Refuses what ``store.actor`` may not do (see the module docstring)."""

    def __init__(self, store: FeatureStore):
        self._store = store

    def _check(self, action: str, resources: Sequence[Resource]) -> None:
        access = self._store.governance.access
        access.check(self._store.actor, action, resources)

    def before_apply(
        self,
        *,
        objects: Sequence[Definition] | None,
        delete_missing: bool | None,
        **_: Any,
    ) -> None:
        given = list(objects) if objects is not None else self._store.load_repo()
        resources = {(o.kind, o.name): _resource(o) for o in given}
        if delete_missing or (delete_missing is None and objects is None):
            for obj in self._store.catalog().all():
                resources.setdefault((obj.kind, obj.name), _resource(obj))
        self._check("apply", list(resources.values()))

    def before_online_read(self, *, plan: FeaturePlan, **_: Any) -> None:
        self._check_plan("read_online", plan)

    def before_historical(self, *, plan: FeaturePlan, **_: Any) -> None:
        self._check_plan("read_offline", plan)

    def _check_plan(self, action: str, plan: FeaturePlan) -> None:
        """``_check`` of the views a read plan touches, remembered on the plan per roles and
        purpose that passed (plans live until the registry changes; a change of roles starts
        the memory afresh). A denial is never remembered: it is checked, and audited, each
        time."""
        access = self._store.governance.access
        if not access.enabled:
            return
        actor = self._store.actor
        generation = access.generation()
        passed: tuple[object, set[tuple[Any, ...]]] | None = plan.__dict__.get("_access_passed")
        if passed is None or passed[0] is not generation:
            passed = plan.__dict__["_access_passed"] = (generation, set())
        key = (actor.roles, actor.purpose, action)
        if key in passed[1]:
            return
        access.check(actor, action, _read_resources(plan))
        passed[1].add(key)

    def before_write(
        self,
        *,
        kind: str,
        views: Sequence[str],
        to: str | None = None,
        catalog: Any = None,
        **_: Any,
    ) -> None:
        if kind == "materialize":
            actions: tuple[str, ...] = ("materialize",)
        elif kind == "delete":
            actions = ("write_online",)
        elif kind == "erase":
            actions = ("admin",)
        else:
            actions = _WRITE_ACTIONS.get(
                to or "online_and_offline", _WRITE_ACTIONS["online_and_offline"]
            )
        cat = catalog if catalog is not None else self._store.catalog()
        resources = resources_of(cat, "feature_view", views)
        for action in actions:
            self._check(action, resources)


def check_plan(
    store: FeatureStore, objects: Sequence[Definition] | None, delete_missing: bool | None
) -> None:
    """``store.plan`` is a dry-run apply (it shows registered specs): it needs ``apply``
    on the same objects."""
    if store.config.auth.enabled:
        AccessHooks(store).before_apply(objects=objects, delete_missing=delete_missing)


def readable_history(store: FeatureStore, records: list[Any]) -> list[Any]:
    """The version records (``store.history``) of objects the actor may ``describe``;
    ``PermissionDeniedError`` when there were some and none may be described."""
    access = store.governance.access
    if not access.enabled or not records:
        return records
    actor = store.actor
    seen = [
        r
        for r in records
        if access.allows(actor, "describe", Resource(r.kind, r.name, r.spec.get("tags") or {}))
    ]
    if not seen:
        last = records[-1]
        raise access.denial(actor, "describe", [Resource(last.kind, last.name)])
    return seen


def visible(store: FeatureStore, objects: Iterable[D]) -> list[D]:
    """``objects`` the actor may describe (all of them with auth off)."""
    access = store.governance.access
    objects = list(objects)
    if not access.enabled:
        return objects
    actor = store.actor
    return [o for o in objects if access.allows(actor, "describe", _resource(o))]


def describable(store: FeatureStore, obj: D) -> D:
    """``obj`` if the actor may describe it; else ``PermissionDeniedError`` (audited)."""
    access = store.governance.access
    if access.enabled:
        access.check(store.actor, "describe", [_resource(obj)])
    return obj
