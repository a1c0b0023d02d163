"""Benchmark: ``parity serve`` under load from ``wrk`` (HTTP throughput and latency, Redis store).

Setup (untimed, one child process): the two sources are copied with every time moved forward
so that the last driver event is now (so the server's real clock finds every value fresh and
the whole read path runs, decoding included); the historical benchmark's ``features.py`` is
applied over the copies with the Redis store (db 11, prefix ``parity_bench:``, emptied first);
both views are materialized over the whole range. Then, per worker count: ``parity serve`` on
a free loopback port, one check that the server answers what ``get_online_features`` answers
in process, a short warm-up, and ``--runs`` rounds of ``wrk`` (``--connections``, default 16)
POSTing ``/get-online-features`` bodies for 1 and for 100 random existing entity rows (a
Lua script cycles through pre-built bodies, so the keys vary across requests). The server's
CPU share is its processes' user + system seconds over the run's wall seconds.

Reference: ``redis-benchmark`` MGET of 2 keys on the same Redis, 16 connections: what Redis
itself allows when it shares the machine with a load generator.

    python -m bench.serve --runs 3 --duration 10 --workers 1,2
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from bench import datagen, historical
from bench.harness import ROOT, ChildError, child_env, finish_child, run_child
from bench.materialize import (
    KEY_PREFIX,
    ONLINE_STORE,
    REDIS_DB,
    VIEWS,
    Window,
    data_window,
    empty_store,
    redis_activity,
    redis_client,
)
from bench.report import TableReport, render, verdict

K = TypeVar("K")

MODULE = "bench.serve"
ROWS = (1, 100)  # entity rows per request, the two cases
CONNECTIONS = 16
THREADS = 1  # wrk threads: one keeps up with 16 connections and leaves the cores to the server
DURATION_S, WARMUP_S = 10, 3
WORKERS = (1, 2)
BODIES = {1: 2_000, 100: 200}  # distinct pre-built request bodies per case
RPS_GOAL = 10_000  # 1-row requests per second, at least
P99_GOAL_MS = {1: 10.0, 100: 20.0}  # p99 latency, at most
PROJECT = "bench_serve"
PATH = "/get-online-features"
YAML = """\
project: {project}
registry: data/registry.db
offline_store: {{ type: duckdb }}
online_store: {store}
"""

LUA = """\
-- Written by bench.serve: POST pre-built bodies in turn, report figures as one JSON line.
local bodies = {bodies}
local requests = {{}}
local at = 0

function init(args)
  local headers = {{["Content-Type"] = "application/json"}}
  for i, body in ipairs(bodies) do
    requests[i] = wrk.format("POST", "{path}", headers, body)
  end
  at = math.random(#requests)  -- threads start at different bodies
end

function request()
  at = at % #requests + 1
  return requests[at]
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '\\n{{"requests":%d,"duration_us":%d,"status_errors":%d,"socket_errors":%d,' ..
    '"timeouts":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"p999_us":%d,"max_us":%d}}\\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max))
end
"""


# The wire's status names (the incumbent's) and its time for "none", for the read check.
_WIRE = {
    "present": "PRESENT",
    "missing": "NOT_FOUND",
    "expired": "OUTSIDE_MAX_AGE",
    "invalid": "INVALID",
}
_EPOCH = "1970-01-01T00:00:00+00:00"


# --- setup: time-shifted sources, the repo, materialization (a child) ------------------------


def serve_dir(data_dir: Path) -> Path:
    """The benchmark's own folder next to the data: shifted sources, repo, scripts, logs."""
    return data_dir / "serve"


def repo_dir(data_dir: Path) -> Path:
    return serve_dir(data_dir) / "repo_redis"


def shifted(window: Window, now: datetime) -> tuple[int, Window]:
    """Whole seconds to add to every time so the last driver event is ``now``, and the
    window of the shifted copies."""
    shift_s = int((now - window.driver_end).total_seconds())
    delta = timedelta(seconds=shift_s)
    moved = Window(
        start=window.start + delta,
        end=window.end + delta,
        driver_end=window.driver_end + delta,
        keys=window.keys,
        max_id=window.max_id,
    )
    return shift_s, moved


def _shift_sources(data_dir: Path, shift_s: int) -> dict[str, Path]:
    """Copies of both sources with event and created times moved by ``shift_s`` seconds."""
    import duckdb

    out = serve_dir(data_dir)
    out.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute("SET TimeZone='UTC'")
    paths = {}
    for view, (_, file, _, _) in VIEWS.items():
        target = out / file
        con.execute(
            f"""
            COPY (
                SELECT * REPLACE (
                    event_timestamp + to_seconds({shift_s}) AS event_timestamp,
                    created + to_seconds({shift_s}) AS created
                ) FROM read_parquet({historical._sql_path(data_dir / file)})
            ) TO {historical._sql_path(target)} (FORMAT parquet)
            """
        )
        paths[view] = target
    con.close()
    return paths


def _load_child(data_dir: Path, window: Window, shift_s: int) -> dict[str, Any]:
    """Shift the sources, write and apply the repo, materialize both views into db 11."""
    started = time.perf_counter()
    paths = _shift_sources(data_dir, shift_s)
    repo = repo_dir(data_dir)
    (repo / "data").mkdir(parents=True, exist_ok=True)
    (repo / "parity.yaml").write_text(YAML.format(project=PROJECT, store=ONLINE_STORE["redis"]))
    (repo / "features.py").write_text(
        historical.FEATURES_PY.format(
            driver_path=json.dumps(str(paths["driver_stats"].resolve())),
            customer_path=json.dumps(str(paths["customer_stats"].resolve())),
        )
    )
    historical.apply_repo(repo)
    shifted_s = time.perf_counter() - started
    historical._import_parity()
    from parity import FeatureStore

    started = time.perf_counter()
    # The shifted sources end a little after "now" (the driver file ends now, the customer
    # file later); materialization refuses a window ending in the future, so this load runs
    # on a clock set to the data's end: it loads every row, as a replay would.
    with FeatureStore(repo, clock=lambda: window.end) as fs:
        keys = fs.materialize(window.start, window.end).keys
    return {"keys": keys, "shift_s": shifted_s, "materialize_s": time.perf_counter() - started}


def _check_child(data_dir: Path, window: Window, port: int, seed: int) -> dict[str, Any]:
    """One 100-row request over HTTP against ``get_online_features`` in process (same clock
    instant, roughly): values, statuses and event times must agree."""
    historical._import_parity()
    from parity import FeatureStore

    entities = _entities(window, 100, random.Random(seed))
    answer = _post(port, _body(entities))
    with FeatureStore(repo_dir(data_dir)) as fs:
        got = fs.get_online_features(historical.FEATURE_REFS, entities=entities)
        values, statuses = got.to_dict(), got.statuses
        stamps = got.event_timestamps
    names = answer["metadata"]["feature_names"]
    problems = []
    present = total = 0
    for name, result in zip(names, answer["results"], strict=True):
        if name in entities:
            continue
        # the wire sends the epoch for "no time" and the incumbent's status names
        want_times = [_EPOCH if t is None else t.isoformat() for t in stamps[name]]
        have_times = [datetime.fromisoformat(t).isoformat() for t in result["event_timestamps"]]
        if result["values"] != values[name]:
            problems.append(f"{name}: values differ")
        want_statuses = [
            "NULL_VALUE" if s == "present" and v is None else _WIRE[s]
            for s, v in zip(statuses[name], values[name], strict=True)
        ]
        if result["statuses"] != want_statuses:
            problems.append(f"{name}: statuses differ")
        if have_times != want_times:
            problems.append(f"{name}: event times differ")
        present += statuses[name].count("present")
        total += len(statuses[name])
    return {"problems": problems, "present": present / max(total, 1)}


def _child(kind: str, data_dir: Path, args: argparse.Namespace) -> dict[str, Any]:
    window = Window.from_json(args.window)
    if kind == "load":
        return _load_child(data_dir, window, args.shift)
    if kind == "check":
        return _check_child(data_dir, window, args.port, args.seed)
    raise ChildError(f"unknown child kind {kind!r}")


# --- requests and wrk ----------------------------------------------------------------------


def _entities(window: Window, rows: int, rng: random.Random) -> dict[str, list[int]]:
    """``rows`` random existing (driver, customer) pairs, as the request's entity columns."""
    return {
        key: [rng.randint(1, window.max_id[view]) for _ in range(rows)]
        for view, (key, *_) in VIEWS.items()
    }


def _body(entities: dict[str, list[int]]) -> bytes:
    return json.dumps(
        {"features": historical.FEATURE_REFS, "entities": entities}, separators=(",", ":")
    ).encode()


def _post(port: int, body: bytes, timeout: float = 10.0) -> dict[str, Any]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{PATH}", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


def write_script(folder: Path, window: Window, rows: int, seed: int) -> Path:
    """The wrk Lua script for one case: BODIES[rows] distinct bodies of random keys."""
    rng = random.Random(seed + rows)
    bodies = [_body(_entities(window, rows, rng)).decode() for _ in range(BODIES[rows])]
    # Lua long strings hold JSON as is; the bodies contain no "]]".
    table = "{\n" + ",\n".join(f"[[{b}]]" for b in bodies) + "\n}"
    path = folder / f"get_online_features_{rows}.lua"
    path.write_text(LUA.format(bodies=table, path=PATH))
    return path


def wrk_path() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise ChildError("wrk is not installed: `make bench` installs it (apt-get install -y wrk)")
    return found


def _wrk(port: int, script: Path, seconds: float, connections: int, threads: int) -> dict:
    """Run wrk once; its figures (from the script's JSON line) and its own CPU seconds."""
    cmd = [
        wrk_path(),
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds:g}s",
        "--latency",
        "--timeout",
        "5s",
        "-s",
        str(script),
        f"http://127.0.0.1:{port}{PATH}",
    ]
    before = _children_cpu_s()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-10:])
        raise ChildError(f"wrk exited with {proc.returncode}: {tail}")
    figures = json.loads(lines[-1])
    figures["cpu_s"] = _children_cpu_s() - before
    figures["text"] = proc.stdout
    return figures


def _children_cpu_s() -> float:
    """User + system seconds of this process's finished children (so: of wrk, after it)."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# --- the server ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """``parity serve`` in a subprocess: started, waited for, measured, stopped by SIGTERM."""

    def __init__(self, repo: Path, workers: int, log: Path, extra: tuple[str, ...] = ()):
        self.port = free_port()
        self.workers = workers
        self._log = log.open("w")
        cmd = [*historical._parity_cli(), "serve", "--repo", str(repo), "--host", "127.0.0.1"]
        cmd += ["--port", str(self.port), "--workers", str(workers), "--log-level", "warning"]
        cmd += extra
        self.proc = subprocess.Popen(
            cmd, cwd=ROOT, env=child_env(), stdout=self._log, stderr=subprocess.STDOUT
        )
        self.log = log

    def wait_ready(self, timeout: float = 90.0, token: str | None = None) -> None:
        """Until ``/ready`` says 200 (asked with ``token`` where auth is on)."""
        deadline = time.monotonic() + timeout
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ChildError(f"parity serve exited with {self.proc.returncode}: {self._tail()}")
            with contextlib.suppress(OSError, urllib.error.URLError):
                url = f"http://127.0.0.1:{self.port}/ready"
                ask = urllib.request.Request(url, headers=headers)
                with urllib.request.urlopen(ask, timeout=2) as response:
                    if response.status == 200 and self._all_workers_up():
                        return
            time.sleep(0.2)
        raise ChildError(f"parity serve not ready after {timeout:.0f} s: {self._tail()}")

    def _all_workers_up(self) -> bool:
        import psutil

        if self.workers == 1:
            return True
        return len(psutil.Process(self.proc.pid).children(recursive=True)) >= self.workers

    def cpu_s(self) -> float:
        """User + system seconds of the server and its worker processes so far."""
        import psutil

        total = 0.0
        root = psutil.Process(self.proc.pid)
        for proc in [root, *root.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                times = proc.cpu_times()
                total += times.user + times.system
        return total

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()

    def _tail(self) -> str:
        self._log.flush()
        return "\n".join(self.log.read_text().strip().splitlines()[-10:])


def _redis_cpu_s() -> float:
    client = redis_client()
    info = client.info("cpu")
    client.close()
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def _busy_s() -> float:
    """Busy CPU seconds of the whole machine so far (all cores; other tenants included)."""
    import psutil

    t = psutil.cpu_times()
    return sum(t) - t.idle - getattr(t, "iowait", 0.0)


def measure(server: Server, script: Path, seconds: float, connections: int, threads: int) -> dict:
    """One wrk run against the server, with the CPU seconds of everyone involved."""
    cpu, redis_cpu, busy = server.cpu_s(), _redis_cpu_s(), _busy_s()
    started = time.perf_counter()
    figures = _wrk(server.port, script, seconds, connections, threads)
    wall = time.perf_counter() - started
    figures.update(
        wall_s=wall,
        server_cpu_s=server.cpu_s() - cpu,
        redis_cpu_s=_redis_cpu_s() - redis_cpu,
        machine_busy_s=_busy_s() - busy,
    )
    return figures


def side_by_side(
    servers: dict[K, Server],
    scripts: dict[K, Path],
    *,
    runs: int,
    duration: float,
    warmup: float,
    connections: int,
    threads: int,
    around: Callable[[K], AbstractContextManager[object]] | None = None,
) -> tuple[dict[K, list[dict[str, Any]]], dict[K, int]]:
    """Servers compared in one run: each warmed up for ``warmup`` s, then ``runs`` rounds
    measuring every server in turn for ``duration`` s, the order rotating per round, so a
    ratio of medians is one of figures taken side by side. ``around(key)``: a context each
    wrk run of that server happens in (its token in the environment). Returns each
    server's figures per round and the requests it answered in all (warm-up included)."""
    results: dict[K, list[dict[str, Any]]] = {k: [] for k in servers}
    served: dict[K, int] = dict.fromkeys(servers, 0)
    enter = around or (lambda _: contextlib.nullcontext())
    for key, server in servers.items():
        with enter(key):
            served[key] += _wrk(server.port, scripts[key], warmup, connections, threads)["requests"]
    keys = list(servers)
    for i in range(runs):
        for key in keys[i % len(keys) :] + keys[: i % len(keys)]:
            with enter(key):
                figures = measure(servers[key], scripts[key], duration, connections, threads)
            results[key].append(figures)
            served[key] += figures["requests"]
    return results, served


# --- the reference ---------------------------------------------------------------------------


def redis_benchmark(window: Window, requests: int = 200_000) -> dict[str, float]:
    """redis-benchmark MGET of one driver and one customer key (random ids, 16 connections)."""
    exe = shutil.which("redis-benchmark")
    if exe is None:
        raise ChildError("redis-benchmark is not installed (Debian package redis-tools)")
    driver = f"{KEY_PREFIX}{PROJECT}:driver_stats:i__rand_int__"
    customer = f"{KEY_PREFIX}{PROJECT}:customer_stats:i__rand_int__"
    cmd = [exe, "-h", "127.0.0.1", "-p", "6379", "--dbnum", str(REDIS_DB), "-c"]
    cmd += [str(CONNECTIONS), "-n", str(requests), "-r", str(window.max_id["customer_stats"])]
    cmd += ["--csv", "MGET", driver, customer]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    rows = [line for line in proc.stdout.splitlines() if line.startswith('"MGET')]
    if proc.returncode != 0 or not rows:
        raise ChildError(f"redis-benchmark exited with {proc.returncode}: {proc.stderr[-500:]}")
    cells = [c.strip('"') for c in rows[-1].split(",")]
    # "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms",
    # "p99_latency_ms","max_latency_ms"; the random ids are zero-padded, so most keys miss.
    return {"rps": float(cells[-7]), "p50_ms": float(cells[-4]), "p99_ms": float(cells[-2])}


# --- the parent ------------------------------------------------------------------------------


def run(
    data_dir: Path,
    runs: int = 3,
    only: str | None = None,
    workers: tuple[int, ...] = WORKERS,
    duration: float = DURATION_S,
    warmup: float = WARMUP_S,
    connections: int = CONNECTIONS,
    threads: int = THREADS,
    seed: int = 5,
) -> TableReport:
    """Run the HTTP serving benchmark on the files in ``data_dir``; return its report.

    ``only`` is None for everything, "reference" for redis-benchmark alone (on the keys the
    setup materialized) or "parity" for the server alone.
    """
    window = data_window(data_dir)
    shift_s, moved = shifted(window, datetime.now(UTC))
    contenders = [f"{n} worker{'s' if n > 1 else ''}" for n in workers]
    report = TableReport(
        f"HTTP serving: parity serve + Redis under wrk ({connections} connections, loopback)",
        headers=("", *contenders, "redis-benchmark", "target", *contenders),
        about=[
            f"POST {PATH} for the 8 features of driver_stats and customer_stats, 1 or 100"
            f" random existing entity rows per request ({window.total_keys:,} keys"
            " materialized from the sources moved forward in time, so every value is fresh).",
            f"wrk -t{threads} -c{connections}, {runs} run(s) of {duration:g} s per case after a"
            f" {warmup:g} s warm-up, medians over the runs; server, Redis and wrk share the"
            f" {os.cpu_count()} CPUs. CPU shares are CPU seconds per wall second (1.0 = one"
            " core busy).",
        ],
    )
    errors: list[str] = []
    results: dict[str, dict[int, list[dict[str, Any]]]] = {
        c: {n: [] for n in ROWS} for c in contenders
    }
    reference: dict[str, float] | None = None
    folder = serve_dir(data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    base = ["--data-dir", str(data_dir), "--window", moved.to_json()]
    activity = [redis_activity()]
    notes: list[str] = []
    try:
        empty_store(data_dir, "redis")
        load = run_child(MODULE, ["--child", "load", *base, "--shift", str(shift_s)])
        notes.append(
            f"setup: sources moved forward {timedelta(seconds=shift_s)} in"
            f" {load['shift_s']:.1f} s, {load['keys']:,} keys materialized in"
            f" {load['materialize_s']:.1f} s"
        )
        if only != "reference":
            scripts = {rows: write_script(folder, moved, rows, seed) for rows in ROWS}
            for n, name in zip(workers, contenders, strict=True):
                try:
                    check = _serve(
                        data_dir,
                        n,
                        scripts,
                        runs,
                        duration,
                        warmup,
                        connections,
                        threads,
                        base,
                        seed,
                        results[name],
                    )
                except ChildError as exc:
                    errors.append(f"{name}: {exc}")
                    continue
                if check["problems"]:
                    report.check = False
                    report.check_lines.extend(f"{name}: {p}" for p in check["problems"][:8])
                elif report.check is None:
                    report.check = True
                notes.append(
                    f"{name}: HTTP answer = get_online_features in process for 100 random"
                    f" rows ({check['present']:.0%} of values present)"
                )
        if only != "parity":
            try:
                reference = redis_benchmark(moved)
            except ChildError as exc:
                errors.append(f"redis-benchmark: {exc}")
    except ChildError as exc:
        errors.append(f"setup: {exc}")
    finally:  # also when interrupted: leave db 11 empty
        activity.append(redis_activity())
        with contextlib.suppress(ChildError):
            empty_store(data_dir, "redis")
    _fill(report, contenders, results, reference)
    report.errors.extend(errors)
    report.notes.extend(notes)
    report.notes.append(f"other load before the runs: {activity[0]}; after: {activity[1]}")
    return report


def _serve(
    data_dir: Path,
    workers: int,
    scripts: dict[int, Path],
    runs: int,
    duration: float,
    warmup: float,
    connections: int,
    threads: int,
    base: list[str],
    seed: int,
    results: dict[int, list[dict[str, Any]]],
) -> dict[str, Any]:
    """Start a server with ``workers`` workers, check it, run wrk; fill ``results``."""
    server = Server(repo_dir(data_dir), workers, serve_dir(data_dir) / f"server_{workers}.log")
    try:
        server.wait_ready()
        check = run_child(
            MODULE, ["--child", "check", *base, "--port", str(server.port), "--seed", str(seed)]
        )
        for rows in ROWS:
            _wrk(server.port, scripts[rows], warmup, connections, threads)
        for _ in range(runs):
            for rows in ROWS:
                results[rows].append(measure(server, scripts[rows], duration, connections, threads))
    finally:
        server.stop()
    return check


def _median(runs: list[dict[str, Any]], value: Any) -> float | None:
    return statistics.median(value(r) for r in runs) if runs else None


def _fill(
    report: TableReport,
    contenders: list[str],
    results: dict[str, dict[int, list[dict[str, Any]]]],
    reference: dict[str, float] | None,
) -> None:
    def rps(r: dict[str, Any]) -> float:
        return r["requests"] / (r["duration_us"] / 1e6)

    def fmt(value: float | None, spec: str) -> str:
        return "-" if value is None else format(value, spec)

    for rows in ROWS:
        label = f"{rows} row{'s' if rows > 1 else ''}"
        got = {c: results[c][rows] for c in contenders}
        ref = reference if rows == 1 else None
        med = {c: _median(got[c], rps) for c in contenders}
        rps_met = [
            verdict(None if v is None else v >= RPS_GOAL) if rows == 1 else "" for v in med.values()
        ]
        report.rows.append(
            (
                f"{label}: requests/s",
                *(fmt(v, ",.0f") for v in med.values()),
                fmt(ref and ref["rps"], ",.0f"),
                f">= {RPS_GOAL:,}" if rows == 1 else "",
                *rps_met,
            )
        )
        for pct in (50, 90, 99, 999):
            key = f"p{pct}_us"
            name = "p99.9" if pct == 999 else f"p{pct}"
            med = {c: _median(got[c], lambda r, k=key: r[k] / 1000) for c in contenders}
            goal = P99_GOAL_MS[rows] if pct == 99 else None
            marks = [
                verdict(None if v is None else v <= goal) if goal else "" for v in med.values()
            ]
            ref_cell = fmt(ref and ref.get(f"{name}_ms"), ".2f")
            report.rows.append(
                (
                    f"{label}: {name} ms",
                    *(fmt(v, ".2f") for v in med.values()),
                    ref_cell,
                    f"<= {goal:g}" if goal else "",
                    *marks,
                )
            )
        blank = ("",) * len(contenders)
        for what, value in (
            ("server CPU share", lambda r: r["server_cpu_s"] / r["wall_s"]),
            ("server CPU µs/request", lambda r: r["server_cpu_s"] / r["requests"] * 1e6),
            ("Redis CPU share", lambda r: r["redis_cpu_s"] / r["wall_s"]),
            ("wrk CPU share", lambda r: r["cpu_s"] / r["wall_s"]),
            ("machine busy share", lambda r: r["machine_busy_s"] / r["wall_s"]),
        ):
            spec = ",.0f" if "µs" in what else ".2f"
            cells = tuple(fmt(_median(got[c], value), spec) for c in contenders)
            report.rows.append((f"{label}: {what}", *cells, "", "", *blank))
        failed = {
            c: sum(r["status_errors"] + r["socket_errors"] + r["timeouts"] for r in got[c])
            for c in contenders
        }
        report.rows.append(
            (f"{label}: failed requests", *(f"{v:,}" for v in failed.values()), "", "0", *blank)
        )
        for c, count in failed.items():
            if count:
                report.errors.append(f"{c}: {count:,} {label} requests failed (non-2xx or socket)")
    if reference is not None:
        report.notes.append(
            "redis-benchmark: MGET of a driver and a customer key (random ids, mostly absent"
            " keys: the ids are zero-padded), 16 connections: Redis's own ceiling here"
        )


def main(argv: list[str] | None = None) -> None:
    """Command line: run the serving benchmark (or, with --child, one setup step)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="wrk runs per case and server")
    parser.add_argument("--duration", type=float, default=DURATION_S, help="seconds per wrk run")
    parser.add_argument("--warmup", type=float, default=WARMUP_S, help="seconds of warm-up")
    parser.add_argument("--workers", default=",".join(map(str, WORKERS)), help="e.g. 1,2")
    parser.add_argument("--connections", type=int, default=CONNECTIONS)
    parser.add_argument("--threads", type=int, default=THREADS, help="wrk threads")
    parser.add_argument("--only", choices=("reference", "parity"), help="run one side")
    parser.add_argument("--data-dir", type=Path, default=datagen.DATA_DIR)
    parser.add_argument("--scale", type=float, default=1.0, help="data scale to generate")
    parser.add_argument("--seed", type=int, default=5, help="seed of the random keys")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--window", help=argparse.SUPPRESS)
    parser.add_argument("--shift", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    data_dir = args.data_dir.resolve()
    if args.child:
        finish_child(args.child, lambda: _child(args.child, data_dir, args))
        return
    datagen.ensure(data_dir, scale=args.scale)
    workers = tuple(int(n) for n in args.workers.split(",") if n.strip())
    report = run(
        data_dir,
        args.runs,
        args.only,
        workers,
        args.duration,
        args.warmup,
        args.connections,
        args.threads,
        args.seed,
    )
    render(report)
    sys.exit(0 if report.ok else 1)


if __name__ == "__main__":
    main()
