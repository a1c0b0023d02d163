"""Benchmark: what governance costs ``parity serve`` (1-row throughput under ``wrk``).

Setup (untimed, one child process): ``bench.serve``'s time-shifted sources and features,
applied with the Redis store on **db 13** (keys under ``parity_bench_gov:``, deleted before
and after; no other key is touched) and materialized; the repo is then copied, differing
only in ``parity.yaml``: governance off; the audit log on (``audit: {enabled: true}``, the
SQLite registry); and, once ``parity.governance.tokens`` exists (the access part of issue
14), auth and audit on with a ``reader`` role and a token from
``store.governance.create_token``, which the wrk script sends as ``Authorization: Bearer``.
The servers (1 worker each) run side by side; each round runs ``wrk`` against each in turn,
the order rotating per round, so drifts in the machine's load fall on all alike. The
figures are medians over the rounds and their ratios to the server with governance off
(goal: at least 0.85 with auth and audit on). Afterwards each audited server's log is
counted against the requests it answered, and its chain verified.

    python -m bench.governance --scale 0.01 --runs 5 --duration 5
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import shutil
import statistics
import sys
import time
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

MODULE = "bench.governance"
REDIS_DB = 13  # this benchmark's own database; only its prefix's keys are deleted
KEY_PREFIX = "parity_bench_gov:"
REDIS_URL = f"redis://127.0.0.1:6379/{REDIS_DB}"
PROJECT = "bench_governance"
CASES = ("off", "audit", "auth+audit")
GOAL_CASE, GOAL = "auth+audit", 0.85  # throughput with / without, at least
DURATION_S, WARMUP_S, RUNS = 5.0, 2.0, 5
YAML = """\
project: {project}
registry: data/registry.db
offline_store: {{ type: duckdb }}
online_store: {{ type: redis, url: "{url}", key_prefix: "{prefix}", expire_grace_seconds: {grace} }}
"""
ROLES_PY = """\
from parity import Permission, Role

reader = Role(
    name="reader",
    permissions=[Permission(actions=["read_online", "describe"], kinds=["*"], names=["*"])],
)
auditor = Role(name="auditor", permissions=[Permission(actions=["admin"], kinds=["*"])])
"""
EXTRA_YAML = {
    "off": "",
    "audit": "audit: { enabled: true }\n",
    "auth+audit": "auth: { enabled: true }\naudit: { enabled: true }\n",
}


def auth_available() -> bool:
    """Whether Parity has tokens and roles yet (the access part of issue 14)."""
    historical._import_parity()
    import parity

    found = importlib.util.find_spec("parity.governance.tokens") is not None
    return found and hasattr(parity, "Role")


def folder(data_dir: Path) -> Path:
    return data_dir / "governance"


def repo_for(data_dir: Path, case: str) -> Path:
    return folder(data_dir) / f"repo_{case.replace('+', '_')}"


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


def empty_keys() -> None:
    """Delete this benchmark's keys (its prefix in db 13), nothing else."""
    client = _redis()
    batch = []
    for key in client.scan_iter(match=f"{KEY_PREFIX}*", count=5000):
        batch.append(key)
        if len(batch) >= 5000:
            client.delete(*batch)
            batch.clear()
    if batch:
        client.delete(*batch)
    client.close()


# --- setup (a child) -----------------------------------------------------------------------


def _load_child(data_dir: Path, window: Window, shift_s: int, cases: list[str]) -> dict[str, Any]:
    """Shifted sources, the repo applied and materialized into db 13, then its copies (and
    the auth copy's token)."""
    started = time.perf_counter()
    paths = _shift_sources(data_dir, shift_s)  # bench.serve's copies (its own folder)
    base = repo_for(data_dir, "off")
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
    token = None
    for case in cases[1:]:
        copy = repo_for(data_dir, case)
        if copy.exists():
            shutil.rmtree(copy)
        shutil.copytree(base, copy)  # its own registry, so its own audit log
        with (copy / "parity.yaml").open("a") as f:
            f.write(EXTRA_YAML[case])
        if case == "auth+audit":
            (copy / "roles.py").write_text(ROLES_PY)
            with FeatureStore(copy) as fs:  # the bootstrap: no admin token exists yet
                admin = fs.governance.create_token("bench-admin", ["admin"]).token
            with FeatureStore(copy, principal=admin) as fs:
                fs.apply()
                token = fs.governance.create_token("bench", ["reader"]).token
    return {"keys": keys, "token": token, "setup_s": time.perf_counter() - started}


def _child(kind: str, data_dir: Path, args: argparse.Namespace) -> dict[str, Any]:
    if kind == "load":
        cases = args.cases.split(",")
        return _load_child(data_dir, Window.from_json(args.window), args.shift, cases)
    raise ChildError(f"unknown child kind {kind!r}")


# --- the parent ----------------------------------------------------------------------------


def script_with_token(script: Path, token: str) -> Path:
    """A copy of the wrk script whose requests carry ``Authorization: Bearer <token>``."""
    text = script.read_text()
    plain = '["Content-Type"] = "application/json"'
    if plain not in text:
        raise ChildError(f"{script}: no request headers to add the token to")
    out = script.with_name(script.stem + "_bearer.lua")
    out.write_text(text.replace(plain, f'{plain}, ["Authorization"] = "Bearer {token}"'))
    return out


def _rps(figures: dict[str, Any]) -> float:
    return figures["requests"] / (figures["duration_us"] / 1e6)


def _audit_check(repo: Path) -> tuple[int, bool, str]:
    """(online read records, chain intact, problem) of a repo's audit log."""
    historical._import_parity()
    from parity import FeatureStore
    from parity.governance.context import Actor

    auditor = Actor("bench-auditor", roles=("auditor",))  # reading the log needs admin
    with FeatureStore(repo, principal=auditor) as fs:
        reads = len(fs.governance.audit.records(action="read_online", limit=None))
        verdict_ = fs.governance.audit.verify()
    return reads, verdict_.ok, verdict_.problem


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
    """Run the governance benchmark on the files in ``data_dir``; return its report."""
    cases = list(CASES) if auth_available() else ["off", "audit"]
    window = data_window(data_dir)
    shift_s, moved = shifted(window, datetime.now(UTC))
    report = TableReport(
        "Governance: parity serve 1-row throughput with governance off, the audit log on,"
        f" and auth + audit on (wrk, {connections} connections, Redis db {REDIS_DB})",
        headers=("", *cases, "target", "met"),
        about=[
            "POST /get-online-features, 8 features of driver_stats and customer_stats, 1 random"
            " existing entity row per request; the servers (1 worker each) side by side,"
            f" wrk -t{threads} -c{connections} against each in turn, {runs} round(s) of"
            f" {duration:g} s after a {warmup:g} s warm-up, the order rotating per round;"
            " medians over the rounds. The audit log is the SQLite registry's.",
        ],
    )
    if "auth+audit" not in cases:
        report.notes.append(
            "auth + audit not measured: parity.governance.tokens is not in this build yet"
            " (the access part); the audit log alone is compared with governance off"
        )
    results: dict[str, list[dict[str, Any]]] = {c: [] for c in cases}
    served: dict[str, int] = {c: 0 for c in cases}
    out = folder(data_dir)
    out.mkdir(parents=True, exist_ok=True)
    servers: dict[str, Server] = {}
    try:
        empty_keys()
        args = ["--child", "load", "--data-dir", str(data_dir), "--window", moved.to_json()]
        args += ["--shift", str(shift_s), "--cases", ",".join(cases)]
        load = run_child(MODULE, args)
        report.notes.append(
            f"setup: {load['keys']:,} keys materialized, {len(cases)} repos in"
            f" {load['setup_s']:.1f} s"
        )
        plain = write_script(out, moved, 1, seed)
        scripts = {c: plain for c in cases}
        if load.get("token"):
            scripts["auth+audit"] = script_with_token(plain, load["token"])
        for case in cases:
            servers[case] = Server(repo_for(data_dir, case), 1, out / f"server_{case}.log")
        for case, server in servers.items():
            server.wait_ready(token=load.get("token") if case == "auth+audit" else None)
        results, served = side_by_side(
            servers,
            scripts,
            runs=runs,
            duration=duration,
            warmup=warmup,
            connections=connections,
            threads=threads,
        )
    except ChildError as exc:
        report.errors.append(str(exc))
    finally:
        for server in servers.values():
            server.stop()
        with contextlib.suppress(ChildError):
            empty_keys()
    _fill(report, cases, results)
    for case in cases[1:]:
        if not results[case]:
            continue
        reads, ok, problem = _audit_check(repo_for(data_dir, case))
        report.notes.append(
            f"{case}: {served[case]:,} requests answered, {reads:,} read_online records"
            f" (warm-up reads included), chain {'intact' if ok else 'BROKEN: ' + problem}"
        )
        if not ok or reads < served[case]:
            report.errors.append(f"{case}: the audit log lost or broke records")
    return report


def _fill(report: TableReport, cases: list[str], results: dict[str, list[dict[str, Any]]]) -> None:
    med = {c: statistics.median(map(_rps, runs)) if runs else None for c, runs in results.items()}
    report.rows.append(
        ("requests/s (median)", *("-" if v is None else f"{v:,.0f}" for v in med.values()), "", "")
    )
    p99 = {
        c: statistics.median(f["p99_us"] / 1000 for f in runs) if runs else None
        for c, runs in results.items()
    }
    report.rows.append(
        ("p99 ms (median)", *("-" if v is None else f"{v:.2f}" for v in p99.values()), "", "")
    )
    cpu = {
        c: statistics.median(f["server_cpu_s"] / f["requests"] * 1e6 for f in runs)
        if runs
        else None
        for c, runs in results.items()
    }
    report.rows.append(
        (
            "server CPU µs/request",
            *("-" if v is None else f"{v:,.0f}" for v in cpu.values()),
            "",
            "",
        )
    )
    base = med["off"]
    for case in cases[1:]:
        ratio = None if base is None or med[case] is None else med[case] / base
        cells = ["" for _ in cases]
        cells[cases.index(case)] = "-" if ratio is None else f"{ratio:.3f}"
        goal = GOAL if case == GOAL_CASE or GOAL_CASE not in cases else None
        met = None if ratio is None or goal is None else ratio >= goal
        target = "" if goal is None else f">= {goal}"
        report.rows.append(
            (f"throughput ratio to off ({case})", *cells, target, verdict(met) if goal else "")
        )
    for case, runs in results.items():
        if runs:
            values = ", ".join(f"{_rps(f):,.0f}" for f in runs)
            report.notes.append(f"{case}: requests/s per round {values}")
        failed = sum(f["status_errors"] + f["socket_errors"] + f["timeouts"] for f in runs)
        if failed:
            report.errors.append(f"{case}: {failed:,} requests failed")


def main(argv: list[str] | None = None) -> None:
    """Command line: run the governance benchmark (or, with --child, its setup)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=RUNS, help="rounds (each: every server)")
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
    parser.add_argument("--cases", help=argparse.SUPPRESS)
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
