"""Alerts: what the monitor's rules found, kept open in the registry, sent to webhooks.

A round of the monitor (``parity.monitoring.runner``) turns its evaluations into
``Finding``s, one per (rule, view, feature), failing or holding:

- ``freshness``       a view's lag is past its SLA plus grace (feature ``""``)
- ``check.<rule>``    a declared check failed over the checks window (``check.max_null_ratio``)
- ``drift.<test>``    a drift test passed its threshold (``drift.psi``, ``drift.ks``...)

``Alerts.apply`` fires the failing ones (``MonitorRecords.fire``: an open alert is seen
again, or a new one opens) and resolves the open alerts the round found holding again, or
no longer monitored (the view or its SLA, check or drift policy is gone). An alert whose
rule could not be evaluated this round (its view's rows could not be read) stays as it is.

``Notifier`` posts each NEW alert, and each resolution, to every configured webhook
(``monitoring.webhooks``) as JSON::

    {"rule": "freshness", "view": "driver_stats", "feature": null, "state": "firing",
     "observed": 901.5, "threshold": 420.0, "time": "2024-05-01T12:00:00+00:00",
     "message": "...", "project": "demo", "alert_id": 7, "opened_at": "..."}

``observed`` and ``threshold`` are the rule's numbers (seconds of lag and SLA + grace; the
check's observed value and limit; the drift statistic, or p-value for ks/chi2, and its
threshold). An alert seen again is not sent again. A post that fails (no answer within the
webhook's ``timeout_seconds``, a non-2xx status) is logged and retried at the next round,
in order, at most ``MAX_PENDING`` per webhook kept; it never stops the monitor.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from parity.config import WebhookConfig
    from parity.monitoring.freshness import ViewFreshness
    from parity.monitoring.result import MonitorResult
    from parity.registry.monitoring import AlertRecord, MonitorRecords

__all__ = [
    "FAMILIES",
    "MAX_PENDING",
    "Alert",
    "Alerts",
    "Finding",
    "Notifier",
    "check_findings",
    "drift_findings",
    "freshness_findings",
]

log = logging.getLogger("parity.monitoring.alerts")

FAMILIES = ("freshness", "check", "drift")
"""The rule families the monitor owns (``check.<rule>``, ``drift.<test>``)."""
MAX_PENDING = 1000
"""Undelivered posts kept per webhook; past it the oldest are dropped (and logged)."""
_P_VALUE_TESTS = ("ks", "chi2")


@dataclass(frozen=True)
class Finding:
    """What one rule found for one view (and feature) this round."""

    rule: str
    view: str
    feature: str
    failing: bool
    observed: float | None
    threshold: float | None
    message: str

    @property
    def family(self) -> str:
        return self.rule.split(".", 1)[0]


@dataclass(frozen=True)
class Alert:
    """An alert that opened (``state`` ``firing``, ``new``), is still open (``firing``, not
    new) or resolved this round; what a webhook receives (``body``)."""

    state: str
    new: bool
    record: AlertRecord
    time: datetime

    def body(self, project: str) -> dict[str, Any]:
        r = self.record
        return {
            "rule": r.rule,
            "view": r.view,
            "feature": r.feature or None,
            "state": self.state,
            "observed": r.observed,
            "threshold": r.threshold,
            "time": self.time.isoformat(),
            "message": r.message,
            "project": project,
            "alert_id": r.id,
            "opened_at": r.opened_at.isoformat(),
            "resolved_at": None if r.resolved_at is None else r.resolved_at.isoformat(),
        }

    @property
    def notify(self) -> bool:
        """Whether webhooks hear of it: a new alert or a resolution."""
        return self.new or self.state == "resolved"


# -- findings from evaluations --------------------------------------------------------------
def freshness_findings(rows: Sequence[ViewFreshness]) -> list[Finding]:
    """One finding per view with an SLA and a measured lag."""
    out = []
    for r in rows:
        lag = r.measured_lag
        if r.sla_seconds is None or lag is None:
            continue
        limit = r.sla_seconds + r.grace_seconds
        out.append(
            Finding(
                "freshness",
                r.view,
                "",
                r.breached,
                lag,
                limit,
                f"feature view {r.view!r} lags {lag:.0f} s ({r.sla_on}), past its freshness "
                f"SLA of {r.sla_seconds:.0f} s plus {r.grace_seconds:.0f} s grace"
                if r.breached
                else f"feature view {r.view!r} lags {lag:.0f} s, within {limit:.0f} s",
            )
        )
    return out


def check_findings(view: str, result: MonitorResult) -> list[Finding]:
    """One finding per feature and rule of a check result (columns feature, rule,
    threshold, observed, passed, offending_rows)."""
    out = []
    for row in result.table.to_pylist():
        limit = _number(row.get("threshold"))
        passed = bool(row.get("passed"))
        offending = row.get("offending_rows")
        what = f"{view}:{row['feature']} check {row['rule']}"
        out.append(
            Finding(
                f"check.{row['rule']}",
                view,
                str(row["feature"]),
                not passed,
                row.get("observed"),
                limit,
                f"{what} failed: observed {row.get('observed')}, limit {row.get('threshold')}"
                + (f", {offending} offending row(s)" if offending else "")
                if not passed
                else f"{what} passes",
            )
        )
    return out


def drift_findings(view: str, result: MonitorResult) -> list[Finding]:
    """One finding per feature and test of a drift result with a threshold (report-only
    tests, threshold null, never alert)."""
    out = []
    for row in result.table.to_pylist():
        if row.get("threshold") is None:
            continue
        test = str(row["test"])
        observed = row.get("p_value") if test in _P_VALUE_TESTS else row.get("statistic")
        drifted = bool(row.get("drifted"))
        what = f"{view}:{row['feature']} drift {test}"
        out.append(
            Finding(
                f"drift.{test}",
                view,
                str(row["feature"]),
                drifted,
                observed,
                float(row["threshold"]),
                f"{what}: {observed} against threshold {row['threshold']}"
                + (" (drifted)" if drifted else ""),
            )
        )
    return out


# -- the alert states -----------------------------------------------------------------------
class Alerts:
    """Findings to the registry's alerts (see the module)."""

    def __init__(self, records: MonitorRecords):
        self.records = records

    def apply(
        self,
        findings: Iterable[Finding],
        *,
        unknown: Iterable[tuple[str, str]] = (),
        time: datetime,
    ) -> list[Alert]:
        """Fire the failing findings, resolve the rest and every open alert of the monitor's
        families not found failing, except those of ``unknown`` (family, view) pairs (not
        evaluated this round). Returns the alerts that fired or resolved."""
        out = []
        failing: set[tuple[str, str, str]] = set()
        for f in findings:
            if f.failing:
                record, new = self.records.fire(
                    f.rule,
                    f.view,
                    f.feature,
                    observed=_finite(f.observed),
                    threshold=_finite(f.threshold),
                    message=f.message,
                )
                failing.add((f.rule, f.view, f.feature))
                out.append(Alert("firing", new, record, time))
        skip = set(unknown)
        for open_ in self.records.alerts(state="open"):
            key = (open_.rule, open_.view, open_.feature)
            family = open_.rule.split(".", 1)[0]
            if key in failing or family not in FAMILIES or (family, open_.view) in skip:
                continue
            resolved = self.records.resolve(open_.rule, open_.view, open_.feature)
            if resolved is not None:
                out.append(Alert("resolved", False, resolved, time))
        return out


# -- webhooks -------------------------------------------------------------------------------
class Notifier:
    """Posts alerts to webhooks, keeping what failed for the next ``deliver``."""

    def __init__(self, webhooks: Sequence[WebhookConfig], project: str):
        self.webhooks = list(webhooks)
        self.project = project
        self._pending: list[deque[bytes]] = [deque() for _ in self.webhooks]
        self.sent = 0
        self.failed = 0

    def send(self, alerts: Iterable[Alert]) -> None:
        """Queue the alerts webhooks hear of (new and resolved), then deliver."""
        bodies = [
            json.dumps(a.body(self.project), allow_nan=False).encode() for a in alerts if a.notify
        ]
        for i, hook in enumerate(self.webhooks):
            queue = self._pending[i]
            for body in bodies:
                if len(queue) >= MAX_PENDING:
                    queue.popleft()
                    log.warning(
                        "webhook %s: more than %d alerts undelivered; dropped the oldest",
                        hook.url,
                        MAX_PENDING,
                    )
                queue.append(body)
        self.deliver()

    def deliver(self) -> int:
        """Post what is queued, in order; a webhook that fails keeps the rest for the next
        call. Returns how many posts were delivered."""
        done = 0
        for hook, queue in zip(self.webhooks, self._pending, strict=True):
            while queue:
                if not self._post(hook, queue[0]):
                    self.failed += 1
                    break
                queue.popleft()
                done += 1
        self.sent += done
        return done

    @property
    def pending(self) -> int:
        return sum(len(q) for q in self._pending)

    @staticmethod
    def _post(hook: WebhookConfig, body: bytes) -> bool:
        headers = {"Content-Type": "application/json", "User-Agent": "parity-monitor"}
        headers.update(hook.headers)
        request = urllib.request.Request(hook.url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=hook.timeout_seconds) as answer:
                answer.read()
                return True  # urlopen raises for every status >= 400; 3xx are followed
        except urllib.error.HTTPError as exc:
            log.warning("webhook %s answered %s; retried next round", hook.url, exc.code)
        except (OSError, ValueError) as exc:  # refused, timed out, unreachable
            log.warning("webhook %s failed (%s); retried next round", hook.url, exc)
        return False


def _number(text: Any) -> float | None:
    """A check's threshold (JSON text) as a number when it is one."""
    if text is None:
        return None
    try:
        value = json.loads(text) if isinstance(text, str) else text
    except ValueError:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if v == v and v not in (float("inf"), float("-inf")) else None
