"""The monitor: freshness, checks and drift evaluated on a schedule, alerts sent out.

::

    runner = store.monitor_runner(every="60s", metrics_port=9108)
    done = runner.run_once()        # one round: a MonitorRound
    runner.run()                    # rounds every `every` until stop() or SIGTERM / SIGINT
    runner.start(); ...; runner.stop()   # the same in a background thread (parity serve)

Each round, at the store's clock's now:

1. ``freshness`` of every view, saved as a sample (the compliance of later calls);
   a view past its SLA + grace fires the ``freshness`` alert.
2. ``checks`` of every view with declared checks, over the source rows of the last
   ``monitoring.checks_window`` (default 1 day; None: off), saved; each failing rule fires
   ``check.<rule>`` (``parity.monitoring.checks``).
3. ``drift`` when ``monitoring.drift_window`` is set, of every view that declares a drift
   policy (on the view or a field): the last window against the one before it, saved;
   each drifted test fires ``drift.<test>`` (``parity.monitoring.drift``).
4. alerts that hold again resolve; new and resolved ones are posted to the webhooks
   (``parity.monitoring.alerts``), what failed to post is retried next round; the gauges
   are set (``parity.monitoring.metrics``).

An evaluation that fails (a source that cannot be read, a window without rows) is logged
and listed in the round's ``errors``; its view's open alerts of that kind stay open, and
the other evaluations go on. A round never raises out of ``run``.
"""

from __future__ import annotations

import importlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from parity.definitions.base import parse_duration
from parity.errors import MonitoringError, ParityError
from parity.monitoring import freshness as fresh
from parity.monitoring.alerts import (
    Alert,
    Alerts,
    Finding,
    Notifier,
    check_findings,
    drift_findings,
    freshness_findings,
)
from parity.monitoring.metrics import MonitorMetrics
from parity.monitoring.sources import fields_of
from parity.stopping import stop_on_signals

if TYPE_CHECKING:
    from parity.config import WebhookConfig
    from parity.definitions import FeatureView
    from parity.monitoring.result import MonitorResult
    from parity.store import FeatureStore

__all__ = ["MonitorRound", "MonitorRunner"]

log = logging.getLogger("parity.monitoring.runner")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class MonitorRound:
    """What one round evaluated and what it alerted."""

    time: datetime
    freshness: MonitorResult | None
    checks: dict[str, MonitorResult] = field(default_factory=dict)
    drift: dict[str, MonitorResult] = field(default_factory=dict)
    alerts: tuple[Alert, ...] = ()
    """Alerts that fired (new or seen again) or resolved this round."""
    errors: tuple[str, ...] = ()
    seconds: float = 0.0

    @property
    def new(self) -> list[Alert]:
        return [a for a in self.alerts if a.new]

    @property
    def firing(self) -> list[Alert]:
        return [a for a in self.alerts if a.state == "firing"]

    @property
    def resolved(self) -> list[Alert]:
        return [a for a in self.alerts if a.state == "resolved"]

    def to_json(self) -> dict[str, Any]:
        rows = [] if self.freshness is None else self.freshness.to_pylist()
        return {
            "time": self.time.isoformat(),
            "seconds": round(self.seconds, 3),
            "freshness": [_jsonable(r) for r in rows],
            "checks": {v: r.summary for v, r in self.checks.items()},
            "drift": {v: r.summary for v, r in self.drift.items()},
            "alerts": [{**a.body(""), "new": a.new} for a in self.alerts],
            "errors": list(self.errors),
        }


class MonitorRunner:
    """Rounds of monitoring (see the module). Options default to parity.yaml's
    ``monitoring``: ``every`` (a duration), ``webhooks``, ``checks_window`` and
    ``drift_window`` (None in the config turns a kind off; pass ``False`` to turn it off
    here). ``metrics_port``: serve the gauges there (0: a free port, see ``metrics_port``).
    """

    def __init__(
        self,
        store: FeatureStore,
        every: Any = None,
        metrics_port: int | None = None,
        *,
        metrics_host: str = "127.0.0.1",
        webhooks: Sequence[WebhookConfig] | None = None,
        checks_window: Any = None,
        drift_window: Any = None,
        metrics: MonitorMetrics | None = None,
    ):
        cfg = store.config.monitoring
        self.store = store
        self.every = _duration(cfg.every if every is None else every, "every")
        self.checks_window = _window(cfg.checks_window, checks_window, "checks_window")
        self.drift_window = _window(cfg.drift_window, drift_window, "drift_window")
        self.metrics = metrics or MonitorMetrics()
        self.notifier = Notifier(cfg.webhooks if webhooks is None else webhooks, store.project)
        self._metrics_at = (metrics_host, metrics_port)
        self._metrics_server: Any = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # one round at a time (run_once from another thread)
        self.rounds = 0
        self.last: MonitorRound | None = None
        self.on_round: Callable[[MonitorRound], None] | None = None
        """Called after each scheduled round (the CLI prints it); what it raises is logged."""

    # -- one round ------------------------------------------------------------------------
    def run_once(self) -> MonitorRound:
        """Evaluate everything once, alert, export; returns what it did."""
        with self._lock:
            return self._round()

    def _round(self) -> MonitorRound:
        began = time.perf_counter()
        store = self.store
        now = _EPOCH + timedelta(microseconds=store.clock.now_us())
        self.notifier.deliver()  # last round's failed posts first, in order
        errors: list[str] = []
        unknown: set[tuple[str, str]] = set()
        findings: list[Finding] = []
        result = None
        try:
            catalog = store.catalog(fresh=True)
            views = sorted(catalog.views(), key=lambda v: v.name)
        except ParityError as exc:
            views = []
            errors.append(f"reading the definitions: {exc}")
            unknown.update((f, "*") for f in ("freshness", "check", "drift"))
        try:
            result = fresh.freshness(store, save=True)
            rows = _freshness_rows(result)
            findings += freshness_findings(rows)
            self.metrics.freshness(rows)
        except ParityError as exc:
            errors.append(f"freshness: {exc}")
            unknown.update(("freshness", v.name) for v in views)
        checks = self._each(
            "check", [v for v in views if _has_checks(v)], self.checks_window, now, errors, unknown
        )
        for name, res in checks.items():
            findings += check_findings(name, res)
            self.metrics.checks(name, res)
        self.metrics.forget("checks", set(checks) | {v for k, v in unknown if k == "check"})
        drifts = self._each(
            "drift", [v for v in views if _has_drift(v)], self.drift_window, now, errors, unknown
        )
        for name, res in drifts.items():
            findings += drift_findings(name, res)
            self.metrics.drift(name, res)
        self.metrics.forget("drift", set(drifts) | {v for k, v in unknown if k == "drift"})
        alerts: list[Alert] = []
        if ("freshness", "*") not in unknown:
            try:
                alerts = Alerts(_records(store)).apply(findings, unknown=unknown, time=now)
            except ParityError as exc:
                errors.append(f"recording alerts: {exc}")
        self.notifier.send(alerts)
        try:
            open_ = len(_records(store).alerts(state="open"))
        except ParityError:
            open_ = sum(1 for a in alerts if a.state == "firing")
        self.metrics.round(alerts_open=open_, errors=len(errors))
        self.rounds += 1
        done = MonitorRound(
            now, result, checks, drifts, tuple(alerts), tuple(errors), time.perf_counter() - began
        )
        self.last = done
        for a in done.new:
            log.warning("alert %s on %s: %s", a.record.rule, a.record.view, a.record.message)
        for a in done.resolved:
            log.info("resolved %s on %s", a.record.rule, a.record.view)
        return done

    def _each(
        self,
        kind: str,
        views: list[FeatureView],
        window: timedelta | None,
        now: datetime,
        errors: list[str],
        unknown: set[tuple[str, str]],
    ) -> dict[str, MonitorResult]:
        """``check`` or ``drift`` of each view (its module imported here: absent, the kind
        is skipped)."""
        if window is None or not views:
            return {}
        module = "checks" if kind == "check" else "drift"
        try:
            mod = importlib.import_module(f"parity.monitoring.{module}")
        except ImportError:
            log.debug("parity.monitoring.%s is not available; %s skipped", module, kind)
            unknown.update((kind, v.name) for v in views)
            return {}
        out = {}
        for view in views:
            try:
                if kind == "check":
                    out[view.name] = mod.check(self.store, view.name, now - window, now, save=True)
                else:
                    out[view.name] = mod.drift(
                        self.store,
                        view.name,
                        baseline=(now - 2 * window, now - window),
                        current=(now - window, now),
                        save=True,
                    )
            except (ParityError, ValueError) as exc:
                log.warning("%s of %r failed: %s", kind, view.name, exc)
                errors.append(f"{kind} of {view.name!r}: {exc}")
                unknown.add((kind, view.name))
        return out

    # -- the schedule ---------------------------------------------------------------------
    def start(self) -> MonitorRunner:
        """Run rounds in a background thread until ``stop()``; returns at once."""
        if self._thread is not None:
            raise RuntimeError("this monitor runner was started already")
        self._serve_metrics()
        self._thread = threading.Thread(target=self._loop, name="parity-monitor", daemon=True)
        self._thread.start()
        return self

    def run(self, *, started: Callable[[MonitorRunner], None] | None = None) -> None:
        """Rounds every ``every`` until ``stop()`` or SIGTERM / SIGINT (the round in hand
        finishes first)."""
        restore = self._signals()
        try:
            self._serve_metrics()
            if started is not None:
                started(self)
            self._loop()
        finally:
            self._close_metrics()
            restore()

    def stop(self, timeout: float = 60.0) -> None:
        """Stop after the round in hand (waits up to ``timeout`` seconds for it)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        self._close_metrics()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    @property
    def metrics_port(self) -> int | None:
        """The port the gauges are served on (None: not served)."""
        s = self._metrics_server
        return None if s is None else int(s.server_port)

    def _loop(self) -> None:
        every = self.every.total_seconds()
        while not self._stop.is_set():
            began = time.monotonic()
            try:
                done = self.run_once()
                if self.on_round is not None:
                    self.on_round(done)
            except Exception:
                log.exception("monitor round failed")  # the next round tries again
            # the schedule: the next round `every` after this one began
            self._stop.wait(max(0.0, every - (time.monotonic() - began)))

    def _serve_metrics(self) -> None:
        host, port = self._metrics_at
        if port is not None and self._metrics_server is None:
            self._metrics_server = self.metrics.serve(port, host)

    def _close_metrics(self) -> None:
        if self._metrics_server is not None:
            self._metrics_server.shutdown()
            self._metrics_server.server_close()
            self._metrics_server = None

    def _signals(self) -> Callable[[], None]:
        return stop_on_signals(self._stop, log, "stopping after the round in hand")


# -- helpers ---------------------------------------------------------------------------------
def _duration(value: Any, what: str) -> timedelta:
    try:
        out = parse_duration(value)
    except ValueError as exc:
        raise MonitoringError(f"monitor {what}: {exc}") from None
    if out <= timedelta(0):
        raise MonitoringError(f"monitor {what} must be positive, got {value!r}")
    return out


def _window(config: timedelta | None, given: Any, what: str) -> timedelta | None:
    if given is False:
        return None
    if given is None:
        return config
    return _duration(given, what)


def _has_checks(view: FeatureView) -> bool:
    return any(f.checks is not None and f.checks.rules for f in fields_of(view))


def _has_drift(view: FeatureView) -> bool:
    return view.drift is not None or any(f.drift is not None for f in fields_of(view))


def _freshness_rows(result: MonitorResult) -> list[fresh.ViewFreshness]:
    names = {f.name for f in fresh.ViewFreshness.__dataclass_fields__.values()}
    return [
        fresh.ViewFreshness(**{k: v for k, v in row.items() if k in names})
        for row in result.to_pylist()
    ]


def _records(store: FeatureStore) -> Any:
    from parity.registry.monitoring import MonitorRecords

    return MonitorRecords(store.registry)


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in row.items()}
