"""Benchmark: what masking costs ``parity serve`` (100-row requests of 8 PII features).

Setup (untimed, one child process): a repo of its own with auth on, one ``user`` view of 8
classified features (masks: 3 ``hash``, 3 ``truncate:N``, 2 ``null``; strings and
integers), ``USERS`` users materialized into Redis **db 2** under the prefix
``parity_bench_mask:`` (only keys with that prefix are deleted, before and after), and two
tokens: a reader without ``read_pii`` and one with it. Two servers (1 worker each) serve the
same repo, one acting as each reader (its token in ``Authorization`` on every request and as
the server's ``PARITY_TOKEN``); each round runs ``wrk`` against both in turn, the order
alternating, so drifts in the machine's load fall on both alike. Figures are medians over
the rounds; the goal is a cost of at most 10%: masked / unmasked throughput, and unmasked /
masked server CPU per request (the steadier figure on a shared machine), at least 0.90. The audit log is off on both (its cost is not masking's). Before the
rounds the masked server's answer is checked: every value masked as its rule says.

    python -m bench.masking --runs 5 --duration 5
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import statistics
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench import datagen
from bench.harness import ChildError, finish_child, run_child
from bench.report import TableReport, render, verdict
from bench.serve import CONNECTIONS, THREADS, Server, side_by_side

MODULE = "bench.masking"
REDIS_DB = 2
KEY_PREFIX = "parity_bench_mask:"
REDIS_URL = f"redis://127.0.0.1:6379/{REDIS_DB}"
PROJECT = "bench_masking"
USERS = 20_000
ROWS = 100
BODIES = 200
GOAL = 0.90  # masked throughput / unmasked, at least
DURATION_S, WARMUP_S, RUNS = 5.0, 2.0, 5
PATH = "/get-online-features"
READERS = ("masked", "unmasked")
FEATURES = {  # name: (type, mask)
    "email": ("String", "hash"),
    "ssn": ("String", "hash"),
    "birth_year": ("Int64", "hash"),
    "name": ("String", "truncate:1"),
    "phone": ("String", "truncate:4"),
    "iban": ("String", "truncate:8"),
    "street": ("String", "null"),
    "income": ("Int64", "null"),
}
YAML = """\
project: {project}
registry: data/registry.db
offline_store: {{ type: duckdb }}
online_store: {{ type: redis, url: "{url}", key_prefix: "{prefix}" }}
auth:
  enabled: true
  principals: {{ ops: [admin] }}
audit: {{ enabled: false }}
"""
DEFS = """\
from datetime import timedelta
from parity import Entity, FeatureView, Field, FileSource, Int64, Permission, Role, String

user = Entity(name="user", join_keys=["user_id"], dtype=Int64)
people = FeatureView(
    name="people",
    entities=[user],
    source=FileSource(name="people_src", path="data/people.parquet"),
    schema=[{fields}],
    ttl=timedelta(days=3650),
)
READS = ["describe", "read_online"]
reader = Role(name="reader", permissions=[Permission(actions=READS, kinds=["*"])])
pii_reader = Role(name="pii_reader", permissions=[Permission(actions=[*READS, "read_pii"], kinds=["*"])])
"""
LUA = """\
-- Written by bench.masking: POST pre-built bodies in turn as one reader.
local bodies = {bodies}
local requests = {{}}
local at = 0

function init(args)
  local headers = {{["Content-Type"] = "application/json",
                   ["Authorization"] = "Bearer " .. os.getenv("PARITY_BENCH_TOKEN")}}
  for i, body in ipairs(bodies) do
    requests[i] = wrk.format("POST", "{path}", headers, body)
  end
  at = math.random(#requests)
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


def folder(data_dir: Path) -> Path:
    return data_dir / "masking"


def _redis() -> Any:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.RedisError as exc:
        raise ChildError(f"Redis at {REDIS_URL} is not reachable: {exc}") from None
    return client


def empty_prefix() -> None:
    """Delete this benchmark's keys (its prefix) and nothing else."""
    client = _redis()
    try:
        batch = []
        for key in client.scan_iter(match=f"{KEY_PREFIX}*", count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                client.delete(*batch)
                batch.clear()
        if batch:
            client.delete(*batch)
    finally:
        client.close()


# --- setup (a child) -------------------------------------------------------------------------


def _people(rng: random.Random) -> dict[str, list[Any]]:
    now = datetime.now(UTC) - timedelta(hours=1)
    ids = list(range(1, USERS + 1))
    return {
        "user_id": ids,
        "event_timestamp": [now] * USERS,
        "email": [f"person{i}@mail{i % 97}.example" for i in ids],
        "ssn": [f"{rng.randrange(10**9):09d}" for _ in ids],
        "birth_year": [rng.randint(1930, 2010) for _ in ids],
        "name": [f"Name{rng.randrange(10**6)} Surname{i}" for i in ids],
        "phone": [f"+44 20 {rng.randrange(10**8):08d}" for _ in ids],
        "iban": [f"GB{rng.randrange(100):02d}BANK{rng.randrange(10**14):014d}" for _ in ids],
        "street": [f"{rng.randint(1, 300)} High Street" for _ in ids],
        "income": [rng.randint(10_000, 200_000) for _ in ids],
    }


def _script(path: Path, rng: random.Random) -> None:
    bodies = []
    for _ in range(BODIES):
        ids = [rng.randint(1, USERS) for _ in range(ROWS)]
        body = {"features": [f"people:{f}" for f in FEATURES], "entities": {"user_id": ids}}
        bodies.append(json.dumps(body, separators=(",", ":")))
    table = "{\n" + ",\n".join(f"[[{b}]]" for b in bodies) + "\n}"
    path.write_text(LUA.format(bodies=table, path=PATH))


def _load_child(data_dir: Path, seed: int) -> dict[str, Any]:
    """The repo, its data materialized into db 2, the tokens (to files, mode 600)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from parity import FeatureStore

    started = time.perf_counter()
    rng = random.Random(seed)
    repo = folder(data_dir) / "repo"
    if repo.exists():
        shutil.rmtree(repo)
    (repo / "data").mkdir(parents=True)
    (repo / "parity.yaml").write_text(
        YAML.format(project=PROJECT, url=REDIS_URL, prefix=KEY_PREFIX)
    )
    fields = ", ".join(
        f'Field(name="{n}", dtype={t}, pii=True, mask="{m}")' for n, (t, m) in FEATURES.items()
    )
    (repo / "features.py").write_text(DEFS.format(fields=fields))
    people = _people(rng)
    pq.write_table(pa.table(people), repo / "data" / "people.parquet")
    with FeatureStore(repo, principal="ops") as ops:
        ops.apply()
        start = min(people["event_timestamp"]) - timedelta(days=1)
        keys = ops.materialize(start, datetime.now(UTC)).keys
        tokens = {
            "masked": ops.governance.create_token("bench_reader", ["reader"]).token,
            "unmasked": ops.governance.create_token("bench_pii", ["pii_reader"]).token,
        }
    for reader, token in tokens.items():
        path = folder(data_dir) / f"{reader}.token"
        path.write_text(str(token))
        path.chmod(0o600)
    _script(folder(data_dir) / "get_online_features_100.lua", rng)
    return {"keys": keys, "setup_s": time.perf_counter() - started}


def _child(kind: str, data_dir: Path, args: argparse.Namespace) -> dict[str, Any]:
    if kind == "load":
        return _load_child(data_dir, args.seed)
    raise ChildError(f"unknown child kind {kind!r}")


# --- the parent ------------------------------------------------------------------------------


@contextlib.contextmanager
def _token_env(token: str) -> Iterator[None]:
    """The reader's token for the server (PARITY_TOKEN) and wrk (PARITY_BENCH_TOKEN)."""
    saved = {k: os.environ.get(k) for k in ("PARITY_TOKEN", "PARITY_BENCH_TOKEN")}
    os.environ["PARITY_TOKEN"] = os.environ["PARITY_BENCH_TOKEN"] = token
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _check(port: int, token: str, masked: bool) -> str | None:
    """None when the answer is masked (or not) as it should be; else what is wrong."""
    ids = list(range(1, ROWS + 1))
    body = json.dumps({"features": [f"people:{f}" for f in FEATURES], "entities": {"user_id": ids}})
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{PATH}",
        data=body.encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        answer = json.loads(response.read())
    got = dict(zip(answer["metadata"]["feature_names"], answer["results"], strict=True))
    for name, (_, mask) in FEATURES.items():
        values = got[name]["values"]
        if any(v is None for v in values) and not (masked and mask == "null"):
            return f"{name}: nulls where values were expected"
        if masked and mask == "null" and any(v is not None for v in values):
            return f"{name}: values served where the mask is null"
        if masked and mask == "hash" and name == "email" and any("@" in v for v in values):
            return f"{name}: plain e-mail addresses served to a reader without read_pii"
        if masked and mask.startswith("truncate:"):
            n = int(mask.split(":")[1])
            if any(len(v) > n for v in values):
                return f"{name}: values longer than {n} characters"
        if not masked and name == "email" and not all("@" in v for v in values):
            return f"{name}: masked for a reader with read_pii"
    return None


class ReaderServer(Server):
    """``bench.serve``'s server, asked whether it is ready with the reader's token (with
    auth on every endpoint but /health wants one)."""

    def __init__(self, repo: Path, log: Path, token: str):
        self.token = token
        with _token_env(token):
            super().__init__(repo, 1, log)

    def wait_ready(self, timeout: float = 90.0, token: str | None = None) -> None:
        super().wait_ready(timeout, token=token or self.token)


def _rps(figures: dict[str, Any]) -> float:
    return figures["requests"] / (figures["duration_us"] / 1e6)


def run(
    data_dir: Path,
    runs: int = RUNS,
    only: str | None = None,
    duration: float = DURATION_S,
    warmup: float = WARMUP_S,
    connections: int = CONNECTIONS,
    threads: int = THREADS,
    seed: int = 7,
) -> TableReport:
    """Run the masking benchmark (its data is its own); return its report."""
    report = TableReport(
        f"Masking: parity serve 100-row requests of 8 PII features, a reader without read_pii"
        f" against one with it (wrk, {connections} connections, Redis db {REDIS_DB})",
        headers=("", *READERS, "target", "met"),
        about=[
            f"POST /get-online-features, 8 classified features ({USERS:,} users; masks: 3 hash,"
            f" 3 truncate, 2 null), {ROWS} random entity rows per request; two servers (1 worker"
            f" each) on one repo with auth on, acting as each reader; wrk -t{threads}"
            f" -c{connections} against each in turn, {runs} round(s) of {duration:g} s after a"
            f" {warmup:g} s warm-up, the order alternating; medians over the rounds.",
        ],
    )
    results: dict[str, list[dict[str, Any]]] = {r: [] for r in READERS}
    out = folder(data_dir)
    out.mkdir(parents=True, exist_ok=True)
    servers: dict[str, Server] = {}
    tokens: dict[str, str] = {}
    try:
        empty_prefix()
        load = run_child(
            MODULE, ["--child", "load", "--data-dir", str(data_dir), "--seed", str(seed)]
        )
        report.notes.append(f"setup: {load['keys']:,} keys materialized in {load['setup_s']:.1f} s")
        script = out / "get_online_features_100.lua"
        for reader in READERS:
            tokens[reader] = (out / f"{reader}.token").read_text()
            servers[reader] = ReaderServer(
                out / "repo", out / f"server_{reader}.log", tokens[reader]
            )
        for reader, server in servers.items():
            server.wait_ready()
            problem = _check(server.port, tokens[reader], reader == "masked")
            if problem is not None:
                raise ChildError(f"{reader} server's answer is wrong: {problem}")
        report.notes.append("check: the masked server masks every value, the other none")
        results, _ = side_by_side(
            servers,
            dict.fromkeys(servers, script),
            runs=runs,
            duration=duration,
            warmup=warmup,
            connections=connections,
            threads=threads,
            around=lambda reader: _token_env(tokens[reader]),
        )
    except ChildError as exc:
        report.errors.append(str(exc))
    finally:
        for server in servers.values():
            server.stop()
        with contextlib.suppress(ChildError):
            empty_prefix()
        for reader in READERS:
            (out / f"{reader}.token").unlink(missing_ok=True)
    _fill(report, results)
    return report


def _fill(report: TableReport, results: dict[str, list[dict[str, Any]]]) -> None:
    med = {r: statistics.median(map(_rps, runs)) if runs else None for r, runs in results.items()}
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
    report.rows.append(
        (
            "server CPU µs/request",
            *("-" if v is None else f"{v:,.0f}" for v in cpu.values()),
            "",
            "",
        )
    )
    cpu_ratio = None
    if cpu["masked"] and cpu["unmasked"] is not None:
        cpu_ratio = cpu["unmasked"] / cpu["masked"]
    report.rows.append(
        (
            "CPU-bound ratio: µs/request unmasked / masked",
            "-" if cpu_ratio is None else f"{cpu_ratio:.3f}",
            "",
            f">= {GOAL}",
            verdict(None if cpu_ratio is None else cpu_ratio >= GOAL),
        )
    )
    ratio = None
    if med["masked"] is not None and med["unmasked"]:
        ratio = med["masked"] / med["unmasked"]
    cells = ("-" if ratio is None else f"{ratio:.3f}", "")
    report.rows.append(
        (
            "throughput ratio masked / unmasked",
            *cells,
            f">= {GOAL}",
            verdict(None if ratio is None else ratio >= GOAL),
        )
    )
    for reader, runs in results.items():
        if runs:
            report.notes.append(
                f"{reader}: requests/s per round {', '.join(f'{_rps(f):,.0f}' for f in runs)}"
            )
        failed = sum(f["status_errors"] + f["socket_errors"] + f["timeouts"] for f in runs)
        if failed:
            report.errors.append(f"{reader}: {failed:,} requests failed")


def main(argv: list[str] | None = None) -> None:
    """Command line: run the masking benchmark (or, with --child, its setup)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=RUNS, help="rounds (each: both servers)")
    parser.add_argument("--duration", type=float, default=DURATION_S, help="seconds per wrk run")
    parser.add_argument("--warmup", type=float, default=WARMUP_S, help="seconds of warm-up")
    parser.add_argument("--connections", type=int, default=CONNECTIONS)
    parser.add_argument("--threads", type=int, default=THREADS, help="wrk threads")
    parser.add_argument("--data-dir", type=Path, default=datagen.DATA_DIR)
    parser.add_argument("--seed", type=int, default=7, help="seed of the data and the keys")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    data_dir = args.data_dir.resolve()
    if args.child:
        finish_child(args.child, lambda: _child(args.child, data_dir, args))
        return
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
