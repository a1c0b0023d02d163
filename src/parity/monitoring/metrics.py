"""The monitor's Prometheus gauges, set at each round.

::

    parity_feature_freshness_lag_seconds{view, store="online"|"offline"}  now - newest event
    parity_feature_freshness_sla_seconds{view}                            the SLA
    parity_feature_freshness_grace_seconds{view}                          its grace
    parity_feature_freshness_score{view}                                  max(0, 1 - lag / SLA)
    parity_feature_freshness_breached{view}                               1 past SLA + grace
    parity_feature_null_ratio{view, feature}       observed by the max_null_ratio check
    parity_feature_drift_psi{view, feature}        PSI, current window against the one before
    parity_feature_drift_ks_pvalue{view, feature}  the KS test's p-value, same windows
    parity_check_violations{view, feature, rule}   0 passing; else the offending rows (>= 1)
    parity_monitor_alerts_open                     alerts open after the round
    parity_monitor_last_round_timestamp_seconds    when the last round ended (wall clock)
    parity_monitor_round_errors                    evaluations that failed in the last round

The gauges live in their own ``CollectorRegistry`` (one per runner, so several runners in
one process do not collide); ``render()`` gives the text exposition the feature server
appends to its ``/metrics`` and ``serve(port)`` serves it alone (``parity monitor run
--metrics-port``). A series whose subject is gone (a view deleted, a lag no longer known)
is removed, not left at its last value.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Gauge
from prometheus_client.exposition import generate_latest

if TYPE_CHECKING:
    from parity.monitoring.freshness import ViewFreshness
    from parity.monitoring.result import MonitorResult

__all__ = ["EXPORTED", "MonitorMetrics"]

EXPORTED = (
    "parity_feature_freshness_lag_seconds",
    "parity_feature_freshness_sla_seconds",
    "parity_feature_freshness_grace_seconds",
    "parity_feature_freshness_score",
    "parity_feature_freshness_breached",
    "parity_feature_null_ratio",
    "parity_feature_drift_psi",
    "parity_feature_drift_ks_pvalue",
    "parity_check_violations",
    "parity_monitor_alerts_open",
    "parity_monitor_last_round_timestamp_seconds",
    "parity_monitor_round_errors",
)
"""Every metric name the monitor exports (what the alerting rules and dashboard may use)."""


class _Family:
    """A labelled gauge whose series are replaced as a set (per ``scope``)."""

    def __init__(self, gauge: Gauge):
        self.gauge = gauge
        self._seen: dict[Any, set[tuple[str, ...]]] = {}

    def replace(self, scope: Any, values: dict[tuple[str, ...], float]) -> None:
        """Set ``values`` as ``scope``'s series; its series not in them are removed."""
        for labels in self._seen.get(scope, set()) - values.keys():
            with contextlib.suppress(KeyError):
                self.gauge.remove(*labels)
        for labels, value in values.items():
            self.gauge.labels(*labels).set(value)
        self._seen[scope] = set(values)

    def scopes(self) -> list[Any]:
        return list(self._seen)


class MonitorMetrics:
    """The gauges (see the module)."""

    def __init__(self) -> None:
        reg = self.registry = CollectorRegistry(auto_describe=True)

        def gauge(name: str, text: str, labels: Sequence[str] = ()) -> Gauge:
            return Gauge(name, text, list(labels), registry=reg)

        self.lag = _Family(
            gauge(
                EXPORTED[0], "Seconds from the newest event a view holds to now", ["view", "store"]
            )
        )
        self.sla = _Family(gauge(EXPORTED[1], "A view's freshness SLA in seconds", ["view"]))
        self.grace = _Family(gauge(EXPORTED[2], "Seconds past the SLA before alerting", ["view"]))
        self.score = _Family(gauge(EXPORTED[3], "max(0, 1 - lag / SLA)", ["view"]))
        self.breached = _Family(gauge(EXPORTED[4], "1 when lag > SLA + grace", ["view"]))
        self.null_ratio = _Family(
            gauge(EXPORTED[5], "Null ratio seen by the max_null_ratio check", ["view", "feature"])
        )
        self.psi = _Family(gauge(EXPORTED[6], "Population stability index", ["view", "feature"]))
        self.ks = _Family(gauge(EXPORTED[7], "KS test p-value", ["view", "feature"]))
        self.violations = _Family(
            gauge(
                EXPORTED[8],
                "Offending rows of a failing check (0: passes)",
                ["view", "feature", "rule"],
            )
        )
        self.alerts_open = gauge(EXPORTED[9], "Monitoring alerts open")
        self.last_round = gauge(EXPORTED[10], "When the last monitor round ended (unix time)")
        self.errors = gauge(EXPORTED[11], "Evaluations that failed in the last round")

    def freshness(self, rows: Sequence[ViewFreshness]) -> None:
        lags: dict[tuple[str, ...], float] = {}
        sla: dict[tuple[str, ...], float] = {}
        grace: dict[tuple[str, ...], float] = {}
        score: dict[tuple[str, ...], float] = {}
        breached: dict[tuple[str, ...], float] = {}
        for r in rows:
            if r.lag_seconds is not None:
                lags[(r.view, "online")] = r.lag_seconds
            if r.offline_lag_seconds is not None:
                lags[(r.view, "offline")] = r.offline_lag_seconds
            if r.sla_seconds is not None:
                sla[(r.view,)] = r.sla_seconds
                grace[(r.view,)] = r.grace_seconds
                breached[(r.view,)] = float(r.breached)
                if r.score is not None:
                    score[(r.view,)] = r.score
        self.lag.replace(None, lags)
        self.sla.replace(None, sla)
        self.grace.replace(None, grace)
        self.score.replace(None, score)
        self.breached.replace(None, breached)

    def checks(self, view: str, result: MonitorResult | None) -> None:
        """A view's check result (None: its checks are no longer run: series removed)."""
        nulls: dict[tuple[str, ...], float] = {}
        bad: dict[tuple[str, ...], float] = {}
        for row in [] if result is None else result.table.to_pylist():
            feature, rule = str(row["feature"]), str(row["rule"])
            if rule == "max_null_ratio" and row.get("observed") is not None:
                nulls[(view, feature)] = float(row["observed"])
            offending = int(row.get("offending_rows") or 0)
            bad[(view, feature, rule)] = 0.0 if row.get("passed") else float(max(offending, 1))
        self.null_ratio.replace(view, nulls)
        self.violations.replace(view, bad)

    def drift(self, view: str, result: MonitorResult | None) -> None:
        """A view's drift result (None: drift is no longer run for it)."""
        psi: dict[tuple[str, ...], float] = {}
        ks: dict[tuple[str, ...], float] = {}
        for row in [] if result is None else result.table.to_pylist():
            if row["test"] == "psi" and row.get("statistic") is not None:
                psi[(view, str(row["feature"]))] = float(row["statistic"])
            elif row["test"] == "ks" and row.get("p_value") is not None:
                ks[(view, str(row["feature"]))] = float(row["p_value"])
        self.psi.replace(view, psi)
        self.ks.replace(view, ks)

    def forget(self, kind: str, keep: set[str]) -> None:
        """Remove the ``checks`` or ``drift`` series of views not in ``keep``."""
        family = self.null_ratio if kind == "checks" else self.psi
        for view in family.scopes():
            if view not in keep:
                (self.checks if kind == "checks" else self.drift)(view, None)

    def round(self, *, alerts_open: int, errors: int) -> None:
        self.alerts_open.set(alerts_open)
        self.errors.set(errors)
        self.last_round.set(time.time())

    def render(self) -> bytes:
        """The text exposition of every gauge."""
        return generate_latest(self.registry)

    def serve(self, port: int, host: str = "127.0.0.1") -> Any:
        """Serve ``render()`` at http://host:port/metrics in a thread; returns the server
        (``.server_port``, ``.shutdown()``)."""
        from prometheus_client import start_http_server

        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        return server
