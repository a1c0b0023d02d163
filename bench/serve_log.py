"""Benchmark: what the serving log costs ``parity serve`` (1-row throughput under ``wrk``).

Setup (untimed, one child process): ``bench.serve``'s time-shifted sources and features,
applied with the Redis store on **db 15** (prefix ``parity_bench_log:``, emptied before and
after) and materialized; the repo is then copied three times, differing only in
``parity.yaml``'s ``serving_log``: off, ``sample_rate: 0.01`` and ``sample_rate: 1.0``. The
three servers (1 worker each) run side by side; each round runs ``wrk`` against each of
them in turn, the order rotating per round, so drifts in the machine's load fall on all
three alike. The figures are the medians over the rounds and their ratios to the server
without the log (goals: at least 0.95 at 0.01, 0.85 at 1.0). Afterwards each server's log
is counted: rows written against rows served, and rows dropped (its ``/metrics`` gauge).

    python -m bench.serve_log --scale 0.01 --runs 5 --duration 5
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import shutil
import statistics
import sys
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import datagen, historical
from bench.harness import ChildError, finish_child, run_child
from bench.materialize import GRACE_S, Window, data_window
from bench.report import TableReport, render, verdict
from bench.serve import (
    CONNECTIONS,
    THREADS,
    Server,
    _shift_sources,
    shifted,
    side_by_side,
    write_script,
)

MODULE = "bench.serve_log"
REDIS_DB = 15  # this benchmark's own database (bench.serve's db 11 is left alone)
KEY_PREFIX = "parity_bench_log:"
REDIS_URL = f"redis://127.0.0.1:6379/{REDIS_DB}"
PROJECT = "bench_serve_log"
RATES: tuple[float | None, ...] = (None, 0.01, 1.0)
GOALS = {0.01: 0.95, 1.0: 0.85}  # throughput with the log / without, at least
DURATION_S, WARMUP_S, RUNS = 5.0, 2.0, 5
YAML = """\
project: {project}
registry: data/registry.db
offline_store: {{ type: duckdb }}
online_store: {{ type: redis, url: "{url}", key_prefix: "{prefix}", expire_grace_seconds: {grace} }}
"""


def folder(data_dir: Path) -> Path:
    return data_dir / "serve_log"


def repo_for(data_dir: Path, rate: float | None) -> Path:
    return folder(data_dir) / ("repo_off" if rate is None else f"repo_{rate:g}")


def label(rate: float | None) -> str:
    return "log off" if rate is None else f"sample_rate {rate:g}"


def _redis() -> Any:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    if client.connection_pool.connection_kwargs.get("db") != REDIS_DB:  # never another db
        raise AssertionError(f"{REDIS_URL} does not select db {REDIS_DB}")
    try:
        client.ping()
    except redis.RedisError as exc:
        raise ChildError(f"Redis at {REDIS_URL} is not reachable: {exc}") from None
    return client


def empty_db() -> None:
    client = _redis()
    client.flushdb()
    client.close()


# --- setup (a child) -----------------------------------------------------------------------


def _load_child(data_dir: Path, window: Window, shift_s: int) -> dict[str, Any]:
    """Shifted sources, the repo applied and materialized into db 15, then its 3 copies."""
    started = time.perf_counter()
    paths = _shift_sources(data_dir, shift_s)  # bench.serve's copies (its own folder)
    base = repo_for(data_dir, None)
    if base.exists():
        shutil.rmtree(base)
    (base / "data").mkdir(parents=True)
    (base / "parity.yaml").write_text(
        YAML.format(project=PROJECT, url=REDIS_URL, prefix=KEY_PREFIX, grace=GRACE_S)
    )
    (base / "features.py").write_text(
        historical.FEATURES_PY.format(
            driver_path=json.dumps(str(paths["driver_stats"].resolve())),
            customer_path=json.dumps(str(paths["customer_stats"].resolve())),
        )
    )
    historical.apply_repo(base)
    historical._import_parity()
    from parity import FeatureStore

    with FeatureStore(base, clock=lambda: window.end) as fs:  # as bench.serve does
        keys = fs.materialize(window.start, window.end).keys
    for rate in RATES[1:]:
        copy = repo_for(data_dir, rate)
        if copy.exists():
            shutil.rmtree(copy)
        shutil.copytree(base, copy)
        with (copy / "parity.yaml").open("a") as f:
            f.write(f"serving_log: {{ sample_rate: {rate} }}\n")
    return {"keys": keys, "setup_s": time.perf_counter() - started}


def _child(kind: str, data_dir: Path, args: argparse.Namespace) -> dict[str, Any]:
    if kind == "load":
        return _load_child(data_dir, Window.from_json(args.window), args.shift)
    raise ChildError(f"unknown child kind {kind!r}")


# --- the parent ----------------------------------------------------------------------------


def _rps(figures: dict[str, Any]) -> float:
    return figures["requests"] / (figures["duration_us"] / 1e6)


def _dropped(port: int) -> float | None:
    """The server's ``parity_serving_log_dropped_rows`` gauge (None: not exported)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        text = r.read().decode()
    found = re.search(r"^parity_serving_log_dropped_rows (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else None


def _logged_rows(repo: Path) -> int:
    import pyarrow.parquet as pq

    files = (repo / "data" / "serving_log").rglob("*.parquet")
    return sum(pq.read_metadata(p).num_rows for p in files if not p.name.startswith("."))


def run(
    data_dir: Path,
    runs: int = RUNS,
    only: str | None = None,
    duration: float = DURATION_S,
    warmup: float = WARMUP_S,
    connections: int = CONNECTIONS,
    threads: int = THREADS,
    seed: int = 5,
) -> TableReport:
    """Run the serving-log benchmark on the files in ``data_dir``; return its report."""
    window = data_window(data_dir)
    shift_s, moved = shifted(window, datetime.now(UTC))
    names = [label(r) for r in RATES]
    report = TableReport(
        f"Serving log: parity serve 1-row throughput with the log off, at 0.01 and at 1.0"
        f" (wrk, {connections} connections, Redis db {REDIS_DB})",
        headers=("", *names, "target", "met"),
        about=[
            "POST /get-online-features, 8 features of driver_stats and customer_stats, 1 random"
            " existing entity row per request; three servers (1 worker each) side by side,"
            f" wrk -t{threads} -c{connections} against each in turn, {runs} round(s) of"
            f" {duration:g} s after a {warmup:g} s warm-up, the order rotating per round;"
            " medians over the rounds.",
        ],
    )
    results: dict[float | None, list[dict[str, Any]]] = {r: [] for r in RATES}
    served: dict[float | None, int] = {r: 0 for r in RATES}
    dropped: dict[float | None, float | None] = {}
    logged: dict[float | None, int] = {}
    out = folder(data_dir)
    out.mkdir(parents=True, exist_ok=True)
    servers: dict[float | None, Server] = {}
    try:
        empty_db()
        args = ["--child", "load", "--data-dir", str(data_dir), "--window", moved.to_json()]
        load = run_child(MODULE, [*args, "--shift", str(shift_s)])
        report.notes.append(
            f"setup: {load['keys']:,} keys materialized, 3 repos in {load['setup_s']:.1f} s"
        )
        script = write_script(out, moved, 1, seed)
        for rate in RATES:
            servers[rate] = Server(repo_for(data_dir, rate), 1, out / f"server_{label(rate)}.log")
        for server in servers.values():
            server.wait_ready()
        results, served = side_by_side(
            servers,
            dict.fromkeys(servers, script),
            runs=runs,
            duration=duration,
            warmup=warmup,
            connections=connections,
            threads=threads,
        )
        for rate, server in servers.items():
            dropped[rate] = _dropped(server.port)
    except ChildError as exc:
        report.errors.append(str(exc))
    finally:
        for server in servers.values():
            server.stop()  # SIGTERM: the log is written at shutdown
        with contextlib.suppress(ChildError):
            empty_db()
    for rate in RATES:
        logged[rate] = _logged_rows(repo_for(data_dir, rate))
    _fill(report, results, served, logged, dropped)
    return report


def _fill(
    report: TableReport,
    results: dict[float | None, list[dict[str, Any]]],
    served: dict[float | None, int],
    logged: dict[float | None, int],
    dropped: dict[float | None, float | None],
) -> None:
    med = {r: statistics.median(map(_rps, runs)) if runs else None for r, runs in results.items()}
    base = med[None]
    report.rows.append(
        ("requests/s (median)", *("-" if v is None else f"{v:,.0f}" for v in med.values()), "", "")
    )
    p99 = {
        r: statistics.median(f["p99_us"] / 1000 for f in runs) if runs else None
        for r, runs in results.items()
    }
    report.rows.append(
        ("p99 ms (median)", *("-" if v is None else f"{v:.2f}" for v in p99.values()), "", "")
    )
    cpu = {
        r: statistics.median(f["server_cpu_s"] / f["requests"] * 1e6 for f in runs)
        if runs
        else None
        for r, runs in results.items()
    }
    cells = ("-" if v is None else f"{v:,.0f}" for v in cpu.values())
    report.rows.append(("server CPU µs/request", *cells, "", ""))
    for rate in GOALS:
        ratio = None if cpu[None] is None or cpu[rate] is None else cpu[None] / cpu[rate]
        cells = ["" for _ in RATES]
        cells[RATES.index(rate)] = "-" if ratio is None else f"{ratio:.3f}"
        report.rows.append(
            (f"CPU-bound ratio: µs/request off / with ({label(rate)})", *cells, "", "")
        )
    for rate, goal in GOALS.items():
        ratio = None if base is None or med[rate] is None else med[rate] / base
        cells = ["" for _ in RATES]
        cells[RATES.index(rate)] = "-" if ratio is None else f"{ratio:.3f}"
        met = None if ratio is None else ratio >= goal
        report.rows.append(
            (f"throughput ratio to log off ({label(rate)})", *cells, f">= {goal}", verdict(met))
        )
    per_round = {r: [f"{_rps(f):,.0f}" for f in runs] for r, runs in results.items() if runs}
    for rate, values in per_round.items():
        report.notes.append(f"{label(rate)}: requests/s per round {', '.join(values)}")
    for rate in RATES:
        report.notes.append(
            f"{label(rate)}: {served[rate]:,} requests served, {logged[rate]:,} rows logged"
            f" ({logged[rate] / max(served[rate], 1):.2%}), dropped {dropped.get(rate)}"
        )
    for rate, runs in results.items():
        failed = sum(f["status_errors"] + f["socket_errors"] + f["timeouts"] for f in runs)
        if failed:
            report.errors.append(f"{label(rate)}: {failed:,} requests failed")


def main(argv: list[str] | None = None) -> None:
    """Command line: run the serving-log benchmark (or, with --child, its setup)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=RUNS, help="rounds (each: all 3 servers)")
    parser.add_argument("--duration", type=float, default=DURATION_S, help="seconds per wrk run")
    parser.add_argument("--warmup", type=float, default=WARMUP_S, help="seconds of warm-up")
    parser.add_argument("--connections", type=int, default=CONNECTIONS)
    parser.add_argument("--threads", type=int, default=THREADS, help="wrk threads")
    parser.add_argument("--data-dir", type=Path, default=datagen.DATA_DIR)
    parser.add_argument("--scale", type=float, default=0.1, help="data scale to generate")
    parser.add_argument("--seed", type=int, default=5, help="seed of the random keys")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--window", help=argparse.SUPPRESS)
    parser.add_argument("--shift", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    data_dir = args.data_dir.resolve()
    if args.child:
        finish_child(args.child, lambda: _child(args.child, data_dir, args))
        return
    datagen.ensure(data_dir, scale=args.scale)
    report = run(
        data_dir,
        args.runs,
        duration=args.duration,
        warmup=args.warmup,
        connections=args.connections,
        threads=args.threads,
        seed=args.seed,
    )
    render(report)
    sys.exit(0 if report.ok else 1)


if __name__ == "__main__":
    main()
