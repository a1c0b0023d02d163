"""The audit log's hooks: every apply, online and historical read and write is recorded.

Installed last among governance's hooks (``governance/hooks.py``) when ``audit`` is on.
``before_*`` calls refuse an operation up front while the log cannot be written (fail
closed); ``after_*`` calls record the outcome and, being ``must_succeed``, make the
operation fail when the record cannot be committed.

What a record holds per operation (never values, never request data):

=================  ========================  ====================================  ==========
operation          action                    resources                             counts
=================  ========================  ====================================  ==========
apply              ``apply``                 changed objects (``kind:name``)       created,
                                                                                   updated,
                                                                                   deleted
online read        ``read_online``           feature views and on-demand views     keys,
                                                                                   features
historical         ``read_offline``          feature views and on-demand views     rows,
                                                                                   features
write              its kind: ``push``,       the push source or view, the views    rows,
                   ``write``,                written                               stored
                   ``materialize``,
                   ``delete``, ``stream``,
                   ``erase``
=================  ========================  ====================================  ==========

A failed operation is recorded with outcome ``error`` (``denied`` for an access error) and
the exception's type and code as its detail, not its message (which may quote input). A
declared purpose goes in the detail as ``purpose=...``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from parity.errors import AccessError
from parity.governance.audit_store import counts_text
from parity.hooks import Hooks

if TYPE_CHECKING:
    from parity.definitions import Definition
    from parity.governance.audit import AuditLog
    from parity.query.plan import FeaturePlan
    from parity.registry.plan import Plan
    from parity.store import FeatureStore

__all__ = ["AuditHooks", "audit_hooks", "plan_resources"]


def audit_hooks(store: FeatureStore) -> list[Hooks]:
    """The audit log's hook when ``audit`` is on, else none."""
    return [AuditHooks(store)] if store.config.audit_enabled else []


def plan_resources(plan: FeaturePlan) -> tuple[str, ...]:
    """The views a read plan reads or computes, as ``kind:name``; kept with the plan (plans
    are reused for every read until the registry changes, as their cached properties are)."""
    found: tuple[str, ...] | None = plan.__dict__.get("_audit_resources")
    if found is None:
        out = [f"feature_view:{v}" for v in plan.views]
        out.extend(f"on_demand_feature_view:{s.view.name}" for s in plan.steps)
        found = plan.__dict__["_audit_resources"] = tuple(out)
    return found


def _outcome(error: BaseException | None) -> tuple[str, str]:
    if error is None:
        return "ok", ""
    code = getattr(error, "code", None)
    detail = type(error).__name__ + (f" ({code})" if isinstance(code, str) else "")
    return ("denied" if isinstance(error, AccessError) else "error"), detail


class AuditHooks(Hooks):
    """Records every operation of one store (see the module docstring)."""

    must_succeed = True

    def __init__(self, store: FeatureStore):
        self._store = store

    @cached_property
    def log(self) -> AuditLog:
        return self._store.governance.audit  # type: ignore[no-any-return]

    def _record(
        self,
        action: str,
        resources: Sequence[str],
        counts: dict[str, int],
        error: BaseException | None,
        note: str = "",
    ) -> None:
        actor = self._store.actor
        if error is None and not note and not actor.purpose:  # the hot path: a plain read
            self.log.record_checked(actor, action, tuple(resources), counts, "ok", "")
            return
        outcome, failure = _outcome(error)
        purpose = f"purpose={actor.purpose}" if actor.purpose else ""
        detail = "; ".join(part for part in (note, purpose, failure) if part)
        self.log.record_checked(actor, action, tuple(resources), counts, outcome, detail)

    # -- fail closed --------------------------------------------------------------------------
    def before_apply(self, **_: Any) -> None:
        self.log.check_available()

    def before_online_read(self, **_: Any) -> None:
        self.log.check_available()

    def before_historical(self, **_: Any) -> None:
        self.log.check_available()

    def before_write(self, **_: Any) -> None:
        self.log.check_available()

    # -- records ------------------------------------------------------------------------------
    def after_apply(
        self,
        *,
        plan: Plan | None,
        objects: Sequence[Definition] | None = None,
        error: BaseException | None,
        **_: Any,
    ) -> None:
        if plan is not None:
            changed = [c for c in plan.changes if c.action != "unchanged"]
            resources = [f"{c.kind}:{c.name}" for c in changed]
            counts = {a: sum(1 for c in changed if c.action == a) for a in ("create", "update")}
            counts["delete"] = sum(1 for c in changed if c.action == "delete")
        else:
            resources = [f"{o.kind}:{o.name}" for o in objects or ()]
            counts = {"objects": len(resources)}
        self._record("apply", resources, counts, error)

    def after_online_read(
        self, *, plan: FeaturePlan, rows: int, error: BaseException | None, **_: Any
    ) -> None:
        log = self.log
        spool = log.spooled
        if spool is not None and error is None:  # the feature server's hot path
            actor = self._store.actor
            if not actor.purpose:
                shapes: dict[int, Any] | None = plan.__dict__.get("_audit_shapes")
                if shapes is None or len(shapes) > 64:
                    shapes = plan.__dict__["_audit_shapes"] = {}
                memo = shapes.get(id(actor))
                if memo is None or memo[0] is not actor:  # (the id of another, gone, actor)
                    shape = log.shape(actor, "read_online", plan_resources(plan), "ok", "")
                    memo = shapes[id(actor)] = (actor, shape, {})
                texts: dict[int, str] = memo[2]
                text = texts.get(rows)
                if text is None:
                    text = texts[rows] = counts_text({"keys": rows, "features": len(plan.outputs)})
                spool.write(time.time_ns() // 1000, memo[1], text)
                return
        counts = {"keys": rows, "features": len(plan.outputs)}
        self._record("read_online", plan_resources(plan), counts, error)

    def after_historical(
        self, *, plan: FeaturePlan, rows: int | None, error: BaseException | None, **_: Any
    ) -> None:
        counts = {"features": len(plan.outputs)}
        if rows is not None:
            counts["rows"] = rows
        self._record("read_offline", plan_resources(plan), counts, error)

    def after_write(
        self,
        *,
        kind: str,
        target: str,
        views: tuple[str, ...],
        rows: int | None,
        stored: int | None,
        to: str | None = None,
        error: BaseException | None,
        **_: Any,
    ) -> None:
        resources = [] if target in views else [_target(kind, target)]
        resources.extend(f"feature_view:{v}" for v in views)
        counts = {k: v for k, v in (("rows", rows), ("stored", stored)) if v is not None}
        self._record(kind, resources, counts, error, f"to={to}" if to else "")


def _target(kind: str, target: str) -> str:
    if kind in ("push", "stream"):
        return f"source:{target}"
    return f"entity:{target}" if kind in ("delete", "erase") else f"feature_view:{target}"
