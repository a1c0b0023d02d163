"""The read checks of the lifecycle (see the package docstring)."""

from __future__ import annotations

import sys
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from parity.definitions import Definition, FeatureService
from parity.errors import LifecycleError
from parity.hooks import Hooks
from parity.lifecycle.context import ParityDeprecationWarning, drafts_requested, notice

if TYPE_CHECKING:
    from parity.query.plan import FeaturePlan
    from parity.store import FeatureStore

__all__ = ["LifecycleHooks", "lifecycle_hooks"]


def lifecycle_hooks(store: FeatureStore) -> list[Hooks]:
    return [LifecycleHooks(store)]


@dataclass(frozen=True)
class _Found:
    """What one plan reads, by state (each entry ``kind name``-labelled objects)."""

    retired: tuple[Definition, ...]
    drafts: tuple[Definition, ...]
    deprecated: tuple[Definition, ...]
    pinned: str  # why a pinned service refuses the read ("" when it does not)

    @property
    def plain(self) -> bool:
        return not (self.retired or self.drafts or self.deprecated or self.pinned)


class LifecycleHooks(Hooks):
    """Refuses retired, unrequested draft and moved-pin reads; warns of deprecated ones."""

    def __init__(self, store: FeatureStore):
        self._store = store

    def before_online_read(self, *, plan: FeaturePlan, **_: Any) -> None:
        self._check(plan)

    def before_historical(self, *, plan: FeaturePlan, **_: Any) -> None:
        self._check(plan)

    def _check(self, plan: FeaturePlan) -> None:
        found: _Found | None = plan.__dict__.get("_lifecycle")
        if found is None:
            found = plan.__dict__["_lifecycle"] = self._look(plan)
        if found.plain:
            return
        if found.retired:
            raise LifecycleError("feature_retired", "; ".join(_retired(o) for o in found.retired))
        if found.pinned:
            raise LifecycleError("version_pinned", found.pinned)
        if found.drafts and not drafts_requested():
            names = ", ".join(f"{o.kind} {o.name!r}" for o in found.drafts)
            raise LifecycleError(
                "draft_not_requested",
                f"{names}: a draft, served only to readers that ask for drafts"
                " (include_drafts=True; over HTTP the header X-Parity-Include-Drafts: true)",
            )
        for obj in found.deprecated:
            text = f"{obj.kind}:{obj.name}"
            assert obj.lifecycle is not None
            if obj.lifecycle.successor:
                text += f" (use {obj.lifecycle.successor})"
            if not notice(text):  # a Python caller: a warning (an HTTP one: headers)
                warnings.warn(
                    f"{obj.kind} {obj.name!r} is deprecated"
                    + (f": {obj.lifecycle.reason}" if obj.lifecycle.reason else "")
                    + (f"; use {obj.lifecycle.successor}" if obj.lifecycle.successor else ""),
                    ParityDeprecationWarning,
                    stacklevel=_outside_parity(),
                )

    def _look(self, plan: FeaturePlan) -> _Found:
        catalog = self._store.catalog()
        objects: list[Definition] = [r.view for r in plan.fetch]
        objects += [s.view for s in plan.steps]
        service = catalog.service(plan.service) if plan.service else None
        if service is not None:
            objects.append(service)
        by_state: dict[str, list[Definition]] = {}
        for obj in objects:
            by_state.setdefault(obj.state, []).append(obj)
        pinned = ""
        if isinstance(service, FeatureService) and service.pin_versions:
            pinned = self._moved_pins(service, objects)
        return _Found(
            tuple(by_state.get("retired", ())),
            tuple(by_state.get("draft", ())),
            tuple(by_state.get("deprecated", ())),
            pinned,
        )

    def _moved_pins(self, service: FeatureService, objects: list[Definition]) -> str:
        """Why ``service``'s pins refuse the read: views whose major version moved since the
        service's last version was applied ("" when none did)."""
        history = self._store.registry.history(service.name, "feature_service")
        applied_at = history[-1].revision
        moved = []
        for obj in objects:
            if obj is service:
                continue
            records = [
                r for r in self._store.registry.history(obj.name, obj.kind) if r.action != "delete"
            ]
            then = [r for r in records if r.revision <= applied_at]
            if not then or not records:
                continue
            was, now = then[-1].version, records[-1].version
            if was.split(".")[0] != now.split(".")[0]:
                moved.append(f"{obj.kind} {obj.name!r} is at {now}, the service pinned {was}")
        if not moved:
            return ""
        return (
            f"feature service {service.name!r} pins the major versions it was applied with: "
            + "; ".join(moved)
            + ". Apply the service again with a change (its new version pins the views'"
            " current versions), or roll the views back"
        )


def _outside_parity() -> int:
    """The ``stacklevel`` of the first caller outside Parity (whose line the warning names)."""
    frame, level = sys._getframe(1), 1
    while frame.f_back is not None and frame.f_globals.get("__name__", "").startswith("parity"):
        frame, level = frame.f_back, level + 1
    return level


def _retired(obj: Definition) -> str:
    assert obj.lifecycle is not None
    text = f"{obj.kind} {obj.name!r} is retired"
    if obj.lifecycle.reason:
        text += f" ({obj.lifecycle.reason})"
    if obj.lifecycle.successor:
        text += f"; use {obj.lifecycle.successor} instead"
    return text
