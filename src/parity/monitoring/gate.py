"""The write gate: a view's checks evaluated on each batch written to it.

A view with ``on_check_failure`` set has its fields' checks (``parity.monitoring.checks``)
evaluated on every batch a push, stream, direct write or materialization hands to
``before_write`` (the conformed rows, columns named as the views see them), over the whole
batch. ``block`` refuses the batch with ``CheckFailedError`` (an ``IngestError``): raised
in ``before_write``, so nothing of the batch is written, offline or online. ``warn`` logs
the violations (logger ``parity.monitoring``) and lets the write go on. Views with
``on_check_failure`` unset, and deletes, are not checked.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from parity.hooks import Hooks

if TYPE_CHECKING:
    import pyarrow as pa

    from parity.monitoring.checks import RuleResult
    from parity.registry.catalog import Catalog

__all__ = ["QualityGate"]

log = logging.getLogger("parity.monitoring")


class QualityGate(Hooks):
    """Evaluates ``on_check_failure`` views' checks before a write; refuses (``block``) or
    logs (``warn``) what fails."""

    def before_write(
        self,
        *,
        kind: str,
        target: str,
        views: tuple[str, ...],
        data: pa.Table | None = None,
        catalog: Catalog | None = None,
        **_: Any,
    ) -> None:
        if data is None or catalog is None or kind == "delete" or not data.num_rows:
            return
        # Imported here: a store that never writes (a plan, a read) never loads the checks.
        from parity.monitoring.checks import (
            CheckFailedError,
            checked_fields,
            evaluate,
            violations_text,
        )

        blocked: list[tuple[str, list[RuleResult]]] = []
        for name in views:
            if not catalog.has("feature_view", name):
                continue
            fv = catalog.view(name)
            if fv.on_check_failure is None:
                continue
            fields = checked_fields(fv)
            if not fields:
                continue
            results = evaluate(data, fields, keys=catalog.join_keys_of(fv), view=fv.name)
            failed = [r for r in results if not r.passed]
            if not failed:
                continue
            if fv.on_check_failure == "block":
                blocked.append((fv.name, failed))
            else:
                log.warning(
                    "%s to %r: feature view %r (on_check_failure: warn), written anyway: %s",
                    kind,
                    target,
                    fv.name,
                    violations_text(failed, rows=data.num_rows),
                    extra={"parity": _fields(kind, target, fv.name, failed)},
                )
        if blocked:
            names = [n for n, _ in blocked]
            text = "; ".join(violations_text(f, rows=data.num_rows) for _, f in blocked)
            raise CheckFailedError(
                f"{kind} to {target!r} refused by the checks of feature view(s) {names} "
                f"(on_check_failure: block), nothing of the batch was written: {text}",
                [r for _, failed in blocked for r in failed],
            )


def _fields(kind: str, target: str, view: str, failed: list[RuleResult]) -> dict[str, Any]:
    return {
        "event": "check_failed",
        "kind": kind,
        "target": target,
        "view": view,
        "rules": [f"{r.feature}:{r.rule}" for r in failed],
    }
