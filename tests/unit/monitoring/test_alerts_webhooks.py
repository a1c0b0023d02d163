"""Alerts: findings fire and resolve in a real registry; webhooks (a real local HTTP server)
hear of new and resolved alerts only; a failing webhook is retried, in order, with bounded
waits."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from parity.config import WebhookConfig
from parity.monitoring.alerts import (
    Alerts,
    Finding,
    Notifier,
    check_findings,
    drift_findings,
    freshness_findings,
)
from parity.monitoring.freshness import ViewFreshness
from parity.monitoring.result import MonitorResult
from parity.registry import Registry
from parity.registry.monitoring import MonitorRecords

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


class Receiver:
    """A webhook on 127.0.0.1: records each POST's JSON body; answers ``status``; holds
    each answer while ``hold`` is set."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.status = 200
        self.hold = threading.Event()
        self.release = threading.Event()
        self.got = threading.Condition()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if owner.hold.is_set():
                    owner.release.wait(10)
                with owner.got:
                    owner.bodies.append(json.loads(body))
                    owner.headers.append(dict(self.headers))
                    owner.got.notify_all()
                self.send_response(owner.status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def kept(tmp_path: Path) -> MonitorRecords:
    return MonitorRecords(Registry.from_location(str(tmp_path / "r.db"), "demo", base_dir=tmp_path))


def stale(view: str, lag: float, *, sla: float = 300.0, grace: float = 120.0) -> ViewFreshness:
    return ViewFreshness(
        view=view,
        newest_event_time=NOW,
        lag_seconds=lag,
        sla_seconds=sla,
        grace_seconds=grace,
        score=None,
        breached=lag > sla + grace,
        offline_newest_event_time=None,
        offline_lag_seconds=None,
        sla_on="online",
    )


def test_freshness_findings_fire_then_resolve(kept: MonitorRecords) -> None:
    alerts = Alerts(kept)
    found = freshness_findings([stale("old", 900.0), stale("ok", 10.0)])
    assert [(f.view, f.failing, f.observed, f.threshold) for f in found] == [
        ("old", True, 900.0, 420.0),
        ("ok", False, 10.0, 420.0),
    ]
    first = alerts.apply(found, time=NOW)
    assert [(a.state, a.new, a.record.view) for a in first] == [("firing", True, "old")]
    again = alerts.apply(freshness_findings([stale("old", 960.0)]), time=NOW)
    assert [(a.state, a.new) for a in again] == [("firing", False)]
    assert kept.alerts(state="open")[0].observed == 960.0
    healed = alerts.apply(freshness_findings([stale("old", 5.0)]), time=NOW)
    assert [(a.state, a.record.view) for a in healed] == [("resolved", "old")]
    assert kept.alerts(state="open") == []


def test_unknown_evaluations_keep_their_alerts_and_foreign_rules_are_left(
    kept: MonitorRecords,
) -> None:
    alerts = Alerts(kept)
    alerts.apply([Finding("check.min", "v", "x", True, -1.0, 0.0, "below")], time=NOW)
    kept.fire("skew", "v", "x", observed=0.5, threshold=0.9, message="someone else's rule")
    # the checks of v could not run this round: its check alert stays open
    assert alerts.apply([], unknown={("check", "v")}, time=NOW) == []
    assert {a.rule for a in kept.alerts(state="open")} == {"check.min", "skew"}
    # a round that did not find it failing (the view lost its checks) resolves it
    done = alerts.apply([], time=NOW)
    assert [(a.state, a.record.rule) for a in done] == [("resolved", "check.min")]
    assert [a.rule for a in kept.alerts(state="open")] == ["skew"]


def test_check_and_drift_results_become_findings() -> None:
    checks = MonitorResult(
        "check",
        pa.table(
            {
                "feature": ["rate", "rate", "city"],
                "rule": ["max_null_ratio", "min", "allowed"],
                "threshold": ["0.1", "0", '["a", "b"]'],
                "observed": [0.25, 3.0, None],
                "passed": [False, True, False],
                "offending_rows": [25, 0, 4],
                "sample": ["[]", "[]", "[]"],
            }
        ),
        view="v",
    )
    got = check_findings("v", checks)
    assert [(f.rule, f.feature, f.failing, f.observed, f.threshold) for f in got] == [
        ("check.max_null_ratio", "rate", True, 0.25, 0.1),
        ("check.min", "rate", False, 3.0, 0.0),
        ("check.allowed", "city", True, None, None),  # a list is no number
    ]
    assert "4 offending row(s)" in got[2].message
    drift = MonitorResult(
        "drift",
        pa.table(
            {
                "feature": ["rate", "rate", "rate"],
                "test": ["ks", "psi", "js"],
                "statistic": [0.4, 0.35, 0.01],
                "p_value": [0.001, None, None],
                "threshold": [0.01, 0.2, None],
                "drifted": [True, True, False],
            }
        ),
        view="v",
    )
    got = drift_findings("v", drift)
    assert [(f.rule, f.failing, f.observed, f.threshold) for f in got] == [
        ("drift.ks", True, 0.001, 0.01),  # p-value tests report the p-value
        ("drift.psi", True, 0.35, 0.2),
    ]  # js is report-only (no threshold): never an alert


def test_webhooks_hear_new_and_resolved_alerts_only(
    kept: MonitorRecords, receiver: Receiver
) -> None:
    hook = WebhookConfig(url=receiver.url, headers={"Authorization": "Bearer t0k"})
    notifier = Notifier([hook], "demo")
    alerts = Alerts(kept)
    notifier.send(alerts.apply(freshness_findings([stale("old", 900.0)]), time=NOW))
    notifier.send(alerts.apply(freshness_findings([stale("old", 901.0)]), time=NOW))
    notifier.send(alerts.apply(freshness_findings([stale("old", 1.0)]), time=NOW))
    assert [b["state"] for b in receiver.bodies] == ["firing", "resolved"]
    body = receiver.bodies[0]
    assert {k: body[k] for k in ("rule", "view", "feature", "observed", "threshold", "time")} == {
        "rule": "freshness",
        "view": "old",
        "feature": None,
        "observed": 900.0,
        "threshold": 420.0,
        "time": NOW.isoformat(),
    }
    assert body["project"] == "demo" and "900" in body["message"]
    assert receiver.headers[0]["Authorization"] == "Bearer t0k"
    assert receiver.headers[0]["Content-Type"] == "application/json"
    assert notifier.pending == 0 and notifier.sent == 2


def test_a_failing_webhook_is_retried_in_order(kept: MonitorRecords, receiver: Receiver) -> None:
    notifier = Notifier([WebhookConfig(url=receiver.url)], "demo")
    alerts = Alerts(kept)
    receiver.status = 500
    notifier.send(alerts.apply(freshness_findings([stale("a", 900.0)]), time=NOW))
    both = [stale("a", 900.0), stale("b", 900.0)]  # a seen again (not re-sent), b new
    notifier.send(alerts.apply(freshness_findings(both), time=NOW))
    assert notifier.pending == 2 and notifier.failed == 2
    assert [b["view"] for b in receiver.bodies] == ["a", "a"]  # a tried twice, b held behind it
    receiver.status = 200
    receiver.bodies.clear()
    assert notifier.deliver() == 2
    assert [b["view"] for b in receiver.bodies] == ["a", "b"]
    assert notifier.pending == 0


def test_an_unreachable_webhook_does_not_stop_the_others(
    kept: MonitorRecords, receiver: Receiver
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/hook"  # nothing listens there
    notifier = Notifier([WebhookConfig(url=dead), WebhookConfig(url=receiver.url)], "demo")
    notifier.send(Alerts(kept).apply(freshness_findings([stale("a", 900.0)]), time=NOW))
    assert [b["view"] for b in receiver.bodies] == ["a"]
    assert notifier.pending == 1  # kept for the dead one


def test_a_webhook_that_does_not_answer_is_given_up_on_after_its_timeout(
    kept: MonitorRecords, receiver: Receiver
) -> None:
    receiver.hold.set()
    notifier = Notifier([WebhookConfig(url=receiver.url, timeout_seconds=0.3)], "demo")
    began = time.monotonic()
    notifier.send(Alerts(kept).apply(freshness_findings([stale("a", 900.0)]), time=NOW))
    assert time.monotonic() - began < 5.0
    assert notifier.pending == 1 and notifier.failed == 1
