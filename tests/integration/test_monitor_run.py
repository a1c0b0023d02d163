"""The monitor end to end: a stale view alerts and a fresh one does not, the webhook being a
real HTTP server on 127.0.0.1; the alert is sent once, resolves when data arrives, the gauges
are served, and `parity monitor run` / `parity serve` run it."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from cli_utils import parity, table_rows
from parity import FeatureStore
from repo_utils import write_parquet, write_repo

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
DEFS = """
kind: entity
name: driver
join_keys: [driver_id]
---
kind: source
name: stats
path: data/stats.parquet
timestamp_field: event_timestamp
---
kind: feature_view
name: fresh_view
entities: [driver]
source: stats
ttl: 1d
sla: { freshness: 5m }
schema: [{ name: rate, dtype: Float64 }]
---
kind: feature_view
name: stale_view
entities: [driver]
source: stats
ttl: 1d
sla: { freshness: 5m }
schema: [{ name: rate, dtype: Float64 }]
"""


class Receiver:
    """The webhook: a real HTTP server on a free 127.0.0.1 port, recording JSON bodies."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.cond = threading.Condition()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with owner.cond:
                    owner.bodies.append(body)
                    owner.cond.notify_all()
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/alerts"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, n: int, timeout: float = 30.0) -> list[dict[str, Any]]:
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.bodies) >= n, timeout), self.bodies
            return list(self.bodies)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def make_repo(root: Path, receiver: Receiver, *, extra: str = "") -> Path:
    write_repo(root, {"features.yaml": DEFS})
    with (root / "parity.yaml").open("a") as f:
        f.write(f"monitoring: {{ webhooks: [{receiver.url}]{extra} }}\n")
    write_parquet(
        root / "data" / "stats.parquet",
        {"driver_id": [1], "rate": [0.5], "event_timestamp": [T0 - timedelta(days=1)]},
    )
    with FeatureStore(root) as store:
        store.apply()
    return root


def write(store: FeatureStore, view: str, at: datetime) -> None:
    store.write_to_online_store(view, {"driver_id": [1], "rate": [0.1], "event_timestamp": [at]})


class Clock:
    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def test_a_stale_view_alerts_once_and_resolves_and_a_fresh_one_never_does(
    tmp_path: Path, receiver: Receiver
) -> None:
    root = make_repo(tmp_path / "repo", receiver)
    clock = Clock(T0)
    with FeatureStore(root, clock=clock) as store:
        write(store, "fresh_view", T0 - timedelta(seconds=30))
        write(store, "stale_view", T0 - timedelta(hours=1))
        runner = store.monitor_runner(metrics_port=0)
        runner._serve_metrics()
        try:
            first = runner.run_once()
            bodies = receiver.wait(1)
            assert [(b["rule"], b["view"], b["state"]) for b in bodies] == [
                ("freshness", "stale_view", "firing")
            ]
            body = bodies[0]
            assert body["observed"] == 3600.0 and body["threshold"] == 420.0
            assert body["feature"] is None and body["time"] == T0.isoformat()
            assert [a.record.view for a in first.new] == ["stale_view"]
            assert first.errors == ()

            # the gauges, over HTTP
            url = f"http://127.0.0.1:{runner.metrics_port}/metrics"
            with urllib.request.urlopen(url, timeout=10) as answer:
                text = answer.read().decode()
            assert (
                'parity_feature_freshness_lag_seconds{store="online",view="stale_view"} 3600.0'
                in text
            )
            assert 'parity_feature_freshness_breached{view="fresh_view"} 0.0' in text
            assert "parity_monitor_alerts_open 1.0" in text

            # a minute later: still stale, but the webhook is not told again
            clock.now = T0 + timedelta(minutes=1)
            again = runner.run_once()
            assert again.new == [] and [a.record.view for a in again.firing] == ["stale_view"]
            assert len(receiver.bodies) == 1

            # data arrives: the alert resolves, and the webhook hears of it
            write(store, "stale_view", clock.now - timedelta(seconds=5))
            healed = runner.run_once()
            assert [a.record.view for a in healed.resolved] == ["stale_view"]
            assert [(b["view"], b["state"]) for b in receiver.wait(2)] == [
                ("stale_view", "firing"),
                ("stale_view", "resolved"),
            ]
            # compliance over the three rounds: fresh always within, stale once
            rows = {r["view"]: r for r in store.freshness(window="1h").to_pylist()}
            assert rows["fresh_view"]["compliance"] == 1.0
            assert rows["stale_view"]["compliance"] == pytest.approx(1 / 3)
            assert rows["stale_view"]["samples"] == 3
        finally:
            runner.stop()


def test_checks_of_views_with_checks_alert(tmp_path: Path, receiver: Receiver) -> None:
    root = make_repo(tmp_path / "repo", receiver)
    text = (
        (root / "features.yaml")
        .read_text()
        .replace(
            "name: stale_view\nentities: [driver]\nsource: stats\nttl: 1d\nsla: { freshness: 5m }\n"
            "schema: [{ name: rate, dtype: Float64 }]",
            "name: stale_view\nentities: [driver]\nsource: stats\nttl: 1d\n"
            "schema: [{ name: rate, dtype: Float64, checks: { max: 0.1 } }]",
        )
    )
    (root / "features.yaml").write_text(text)
    with FeatureStore(root, clock=Clock(T0)) as store:
        store.apply()
        done = store.monitor_runner(checks_window="7d").run_once()
        assert "stale_view" in done.checks
        assert [(a.record.rule, a.record.view, a.record.feature) for a in done.new] == [
            ("check.max", "stale_view", "rate")
        ]
    assert [b["rule"] for b in receiver.wait(1)] == ["check.max"]


def test_parity_monitor_run_once_and_parity_freshness(tmp_path: Path, receiver: Receiver) -> None:
    root = make_repo(tmp_path / "repo", receiver)
    now = datetime.now(UTC)
    with FeatureStore(root) as store:
        # real time: 10 s behind against 5 min + 2 min, and an hour behind
        write(store, "fresh_view", now - timedelta(seconds=10))
        write(store, "stale_view", now - timedelta(hours=1))
    out = parity("monitor", "run", "--once", "--json", "--repo", root, code=3).stdout
    done = json.loads(out.strip().splitlines()[-1])
    assert [(a["view"], a["state"], a["new"]) for a in done["alerts"]] == [
        ("stale_view", "firing", True)
    ]
    assert [b["view"] for b in receiver.wait(1)] == ["stale_view"]

    table = parity("freshness", "--window", "1h", "--repo", root).stdout
    rows = {r[0]: r for r in table_rows(table)}
    assert rows["stale_view"][6] == "yes" and rows["fresh_view"][6] == "no"
    as_json = json.loads(parity("freshness", "--json", "--repo", root).stdout)
    assert [r["breached"] for r in as_json] == [False, True]
    assert as_json[1]["sla_seconds"] == 300.0 and as_json[1]["compliance"] == 0.0


def test_parity_monitor_run_serves_metrics_until_sigterm(
    tmp_path: Path, receiver: Receiver
) -> None:
    root = make_repo(tmp_path / "repo", receiver)
    with FeatureStore(root) as store:
        write(store, "stale_view", datetime.now(UTC) - timedelta(hours=1))
    src = Path(__file__).resolve().parents[2] / "src"
    env = {**os.environ, "PYTHONPATH": str(src), "COLUMNS": "200"}
    cmd = [sys.executable, "-m", "parity.cli", "monitor", "run", "--every", "1s", "--json"]
    cmd += ["--metrics-port", "0", "--repo", str(root)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        lines: queue.Queue[str] = queue.Queue()
        stdout = proc.stdout
        threading.Thread(target=lambda: [lines.put(x) for x in stdout], daemon=True).start()
        rounds = [json.loads(lines.get(timeout=60)) for _ in range(2)]  # two scheduled rounds
        assert [len(r["alerts"]) for r in rounds] == [1, 1]
        assert rounds[0]["alerts"][0]["new"] and not rounds[1]["alerts"][0]["new"]
        assert len(receiver.wait(1)) == 1
        proc.send_signal(signal.SIGTERM)
        err = proc.stderr.read() if proc.wait(60) is not None and proc.stderr else ""
        assert proc.returncode == 0, err
        assert "metrics on 127.0.0.1:" in err and "stopped after" in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_parity_serve_runs_the_monitor_when_enabled(tmp_path: Path, receiver: Receiver) -> None:
    from parity.server.app import AppSettings, create_app

    root = make_repo(tmp_path / "repo", receiver, extra=", enabled: true, every: 1h")
    with FeatureStore(root) as store:
        write(store, "stale_view", datetime.now(UTC) - timedelta(hours=1))
    app = create_app(root, settings=AppSettings(warm_up=False))
    app.startup()
    try:
        assert app.monitor is not None
        deadline = time.monotonic() + 60
        while app.monitor.rounds < 1 and time.monotonic() < deadline:
            app.monitor._stop.wait(0.05)
        assert app.monitor.rounds >= 1
        text = app._metrics().decode()
        assert "parity_http_requests" in text  # the server's own, still there
        assert 'parity_feature_freshness_breached{view="stale_view"} 1.0' in text
        assert [b["view"] for b in receiver.wait(1)] == ["stale_view"]
    finally:
        app.shutdown()
    assert not app.monitor._thread.is_alive()


def test_drift_between_the_last_two_windows_alerts(tmp_path: Path, receiver: Receiver) -> None:
    root = make_repo(tmp_path / "repo", receiver, extra=", drift_window: 1d, checks_window: null")
    text = (
        (root / "features.yaml")
        .read_text()
        .replace(
            "name: stale_view\nentities: [driver]\nsource: stats\nttl: 1d\nsla: { freshness: 5m }\n",
            "name: stale_view\nentities: [driver]\nsource: stats\nttl: 1d\ndrift: { psi: 0.2 }\n",
        )
    )
    (root / "features.yaml").write_text(text)
    n = 200
    times = [T0 - timedelta(hours=47) + timedelta(minutes=14 * i) for i in range(n)]
    write_parquet(
        root / "data" / "stats.parquet",
        {  # the day before: rates near 0.1; the last day: near 0.9
            "driver_id": list(range(n)),
            "rate": [
                (0.1 if t < T0 - timedelta(days=1) else 0.9) + (i % 10) / 100
                for i, t in enumerate(times)
            ],
            "event_timestamp": times,
        },
    )
    with FeatureStore(root, clock=Clock(T0)) as store:
        store.apply()
        runner = store.monitor_runner()
        done = runner.run_once()
        assert list(done.drift) == ["stale_view"], done.errors
        rules = {(a.record.rule, a.record.feature) for a in done.new}
        assert ("drift.psi", "rate") in rules
        text = runner.metrics.render().decode()
        assert 'parity_feature_drift_psi{feature="rate",view="stale_view"}' in text
    assert "drift.psi" in {b["rule"] for b in receiver.wait(1)}
