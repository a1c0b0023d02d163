"""Benchmark: ``store.materialize`` into Redis (and SQLite) against raw pipelined redis-py writes.

Every timed run is a fresh subprocess (``--child KIND``) starting from an empty store: the
parent FLUSHDBs the benchmark's own Redis database (db 11, never another) or deletes the
SQLite file first. Kinds, interleaved run by run: ``parity-redis``, ``raw-set``,
``raw-hset``, ``raw-mset``, ``parity-sqlite``. Each Parity run then checks 1,000 random
entities (untimed). The goal compares Parity with the faster of SET and HSET; MSET (1,000 keys
per command, so far fewer commands for redis-py to build) shows what the wire allows.

This module also holds what the online-read benchmark (``bench.online``) shares with it: the
two feature repos, the data window and emptying the stores; the correctness check (a read)
lives there.

    python -m bench.materialize --runs 3
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench import datagen, historical
from bench.harness import ChildError, Series, finish_child, measure, run_child, to_measurement
from bench.report import TableReport, render, verdict

MODULE = "bench.materialize"
REDIS_URL = "redis://127.0.0.1:6379/11"
REDIS_DB = 11  # the benchmarks' own database: FLUSHDB'd before and after, no other is touched
KEY_PREFIX = "parity_bench:"
RAW_PREFIX = KEY_PREFIX.encode() + b"raw:"  # the raw redis-py references' keys
PIPELINE = 1_000  # commands per raw pipeline
VALUE_BYTES = 80  # size of a raw SET value
STORES = ("redis", "sqlite")

KEYS_GOAL = 150_000  # Parity into Redis: at least this many entity keys per second
RAW_GOAL = 3.0  # and at most this multiple of the faster raw redis-py write's time
INCUMBENT_S, INCUMBENT_KEYS_S = 108.0, 14_000  # Feast 0.67, 1.5 M keys into Redis (ROADMAP)

YAML = """\
project: bench_online
registry: data/registry.db
offline_store: {{ type: duckdb }}
online_store: {store}
"""
GRACE_S = 10 * 365 * 86_400
ONLINE_STORE = {
    # The Redis store expires a key at event time + ttl + expire_grace_seconds by the wall
    # clock; the data is from 2024, so with the default grace (1 h) every key would vanish
    # on write and reads would say "missing". Ten years keeps the records readable.
    "redis": f'{{ type: redis, url: "{REDIS_URL}", key_prefix: "{KEY_PREFIX}",'
    f" expire_grace_seconds: {GRACE_S} }}",
    "sqlite": "{ type: sqlite, path: data/online.db }",
}
VIEWS = {  # view: (join key, source file, features, ttl)
    "driver_stats": (
        "driver_id",
        "driver_stats.parquet",
        historical.DRIVER_FEATURES,
        historical.DRIVER_TTL,
    ),
    "customer_stats": (
        "customer_id",
        "customer_stats.parquet",
        historical.CUSTOMER_FEATURES,
        historical.CUSTOMER_TTL,
    ),
}


# --- repos, stores and the data window (shared with bench.online) ----------------------------


def repo_dir(data_dir: Path, store: str) -> Path:
    """The feature repo of one online store, next to the data."""
    return data_dir / f"online_repo_{store}"


def setup_repo(data_dir: Path, store: str) -> Path:
    """Write the repo (historical's features.py, this store's parity.yaml) and apply it."""
    repo = repo_dir(data_dir, store)
    (repo / "data").mkdir(parents=True, exist_ok=True)
    (repo / "parity.yaml").write_text(YAML.format(store=ONLINE_STORE[store]))
    features = historical.FEATURES_PY.format(
        driver_path=json.dumps(str((data_dir / "driver_stats.parquet").resolve())),
        customer_path=json.dumps(str((data_dir / "customer_stats.parquet").resolve())),
    )
    (repo / "features.py").write_text(features)
    historical.apply_repo(repo)
    return repo


def redis_client(**settings: Any) -> Any:
    """A redis-py client on the benchmark database; ChildError when Redis is not reachable."""
    import redis

    client = redis.Redis.from_url(REDIS_URL, **settings)
    if client.connection_pool.connection_kwargs.get("db") != REDIS_DB:  # never another db
        raise AssertionError(f"{REDIS_URL} does not select db {REDIS_DB}")
    try:
        client.ping()
    except redis.RedisError as exc:
        raise ChildError(f"Redis at {REDIS_URL} is not reachable ({exc}); `make services`") from exc
    return client


def redis_activity() -> str:
    """Other load now: the machine's 1-minute load average and the shared Redis's other clients
    and ops/s, to judge how noisy the figures are."""
    load = f"load average {os.getloadavg()[0]:.2f}"
    try:
        client = redis_client()
        info = {**client.info("clients"), **client.info("stats")}
        client.close()
    except ChildError:
        return f"{load}, Redis not reachable"
    others = int(info.get("connected_clients", 1)) - 1
    ops = int(info.get("instantaneous_ops_per_sec", 0))
    return f"{load}, Redis {others} other client(s) and {ops:,} ops/s"


def empty_store(data_dir: Path, store: str) -> None:
    """Start a store from nothing: FLUSHDB of db 11, or delete the SQLite file."""
    if store == "redis":
        client = redis_client()
        client.flushdb()
        client.close()
        return
    db = repo_dir(data_dir, store) / "data" / "online.db"
    for path in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
        path.unlink(missing_ok=True)


@dataclass(frozen=True)
class Window:
    """The data's time range and sizes, from the Parquet files (all times UTC)."""

    start: datetime  # earliest event time in either file
    end: datetime  # latest event time in either file
    driver_end: datetime  # latest driver event time: reading "as of" it, every value is fresh
    keys: dict[str, int]  # view name: distinct entity keys
    max_id: dict[str, int]  # view name: largest key (ids run from 1)

    @property
    def total_keys(self) -> int:
        """Entity keys over both views."""
        return sum(self.keys.values())

    def to_json(self) -> str:
        """For a child's command line."""
        return json.dumps(
            {
                "start": self.start.isoformat(),
                "end": self.end.isoformat(),
                "driver_end": self.driver_end.isoformat(),
                "keys": self.keys,
                "max_id": self.max_id,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> Window:
        """Inverse of ``to_json``."""
        raw = json.loads(text)
        times = {k: datetime.fromisoformat(raw[k]) for k in ("start", "end", "driver_end")}
        return cls(**times, keys=raw["keys"], max_id=raw["max_id"])


def data_window(data_dir: Path) -> Window:
    """Read the time range and key counts of both sources with DuckDB."""
    import duckdb

    con = duckdb.connect()
    con.execute("SET TimeZone='UTC'")
    found: dict[str, Any] = {}
    for view, (key, file, _, _) in VIEWS.items():
        path = historical._sql_path(data_dir / file)
        found[view] = con.execute(
            f"SELECT epoch_us(min(event_timestamp)), epoch_us(max(event_timestamp)),"
            f" count(DISTINCT {key}),"
            f" max({key}) FROM read_parquet({path})"
        ).fetchone()
    con.close()
    epoch = datetime(1970, 1, 1, tzinfo=UTC)  # DuckDB gives µs: no pytz needed

    def at(micros: int) -> datetime:
        return epoch + timedelta(microseconds=micros)

    return Window(
        start=at(min(row[0] for row in found.values())),
        end=at(max(row[1] for row in found.values())),
        driver_end=at(found["driver_stats"][1]),
        keys={view: int(row[2]) for view, row in found.items()},
        max_id={view: int(row[3]) for view, row in found.items()},
    )


# --- children --------------------------------------------------------------------------------


def _parity_child(store: str, data_dir: Path, window: Window) -> dict[str, Any]:
    """Time one materialization of both views into an empty store, then check it."""
    from bench.harness import preload_parity
    from parity import FeatureStore

    preload_parity()

    repo = repo_dir(data_dir, store)
    summary: dict[str, Any] = {}

    def materialize() -> Any:
        with FeatureStore(repo) as fs:
            result = fs.materialize(window.start, window.end)
        summary.update(keys=result.keys, stored=result.stored)
        return result

    payload = measure(materialize, rows=lambda result: result.keys)
    if summary["keys"] != window.total_keys:
        raise ChildError(
            f"materialized {summary['keys']:,} keys, the data has {window.total_keys:,}"
        )
    payload["stored"] = summary["stored"]
    from bench.online import check_online  # the reading side lives there; it imports this

    payload["problems"], payload["covered"] = check_online(repo, data_dir, window)
    if store == "redis":
        client = redis_client()
        payload["db_keys"] = client.dbsize()
        payload["sample_key"] = repr(client.randomkey())
        client.close()
    return payload


def _raw_rows(data_dir: Path, window: Window, hashes: bool) -> tuple[list[bytes], Any]:
    """Keys (one per entity of both views) and their values, built before the clock starts.

    SET: distinct ``VALUE_BYTES``-byte values. HSET: per key, the view's features as
    ``(names, columns)`` taken from the source rows (nulls are left out when writing).
    """
    import pyarrow.parquet as pq

    keys: list[bytes] = []
    parts = []
    for view, (_, file, features, _) in VIEWS.items():
        n = window.keys[view]
        keys.extend(RAW_PREFIX + b"%s:%d" % (view.encode(), i) for i in range(1, n + 1))
        if hashes:
            table = pq.read_table(data_dir / file, columns=list(features)).slice(0, n)
            parts.append((features, [table[name].to_pylist() for name in features]))
    if hashes:
        return keys, parts
    return keys, [b"%0*d" % (VALUE_BYTES, i) for i in range(len(keys))]


def _raw_mset(keys: list[bytes], values: list[bytes]) -> int:
    """MSET the keys PIPELINE at a time, one command each (no pipeline needed)."""
    client = redis_client()
    for lo in range(0, len(keys), PIPELINE):
        client.mset(dict(zip(keys[lo : lo + PIPELINE], values[lo : lo + PIPELINE], strict=True)))
    client.close()
    return len(keys)


def _raw_set(keys: list[bytes], values: list[bytes]) -> int:
    """SET every key in pipelines of PIPELINE commands (no transaction)."""
    client = redis_client()
    pipe = client.pipeline(transaction=False)
    for lo in range(0, len(keys), PIPELINE):
        for key, value in zip(keys[lo : lo + PIPELINE], values[lo : lo + PIPELINE], strict=True):
            pipe.set(key, value)
        pipe.execute()
    client.close()
    return len(keys)


def _raw_hset(keys: list[bytes], parts: list[tuple[tuple[str, ...], list[list[Any]]]]) -> int:
    """HSET every key's features as fields, in pipelines of PIPELINE commands."""
    client = redis_client()
    pipe = client.pipeline(transaction=False)
    at = 0
    for names, columns in parts:
        for values in zip(*columns, strict=True):
            mapping = {n: v for n, v in zip(names, values, strict=True) if v is not None}
            pipe.hset(keys[at], mapping=mapping)
            at += 1
            if at % PIPELINE == 0:
                pipe.execute()
    pipe.execute()
    client.close()
    return at


def _child(kind: str, data_dir: Path, window: Window) -> dict[str, Any]:
    """Do one child's work and return its JSON payload."""
    if kind.startswith("parity-"):
        historical._import_parity()
        return _parity_child(kind.removeprefix("parity-"), data_dir, window)
    import redis  # noqa: F401  (imported before timing, like parity)

    keys, values = _raw_rows(data_dir, window, hashes=kind == "raw-hset")
    writers: dict[str, Callable[[list[bytes], Any], int]] = {
        "raw-set": _raw_set,
        "raw-hset": _raw_hset,
        "raw-mset": _raw_mset,
    }
    return measure(lambda: writers[kind](keys, values), rows=lambda written: written)


def child_main(kind: str, data_dir: Path, window: Window) -> None:
    """Entry point of a child process: print the payload, or ``{"error": ...}``, as JSON."""
    finish_child(kind, lambda: _child(kind, data_dir, window))


# --- the parent ------------------------------------------------------------------------------

KINDS = ("parity-redis", "raw-set", "raw-hset", "raw-mset", "parity-sqlite")
PARITY_KINDS = ("parity-redis", "parity-sqlite")


def _store_of(kind: str) -> str:
    return "sqlite" if kind == "parity-sqlite" else "redis"


def run(data_dir: Path, runs: int = 3, only: str | None = None) -> TableReport:
    """Run the materialization benchmark on the files in ``data_dir``; return its report.

    ``only`` is None for every contender, "reference" for the raw redis-py writes alone, or
    "parity" for Parity's materializations alone.
    """
    window = data_window(data_dir)
    report = TableReport(
        "Materialization (both views, whole data range, into an empty store)",
        headers=(
            "",
            "Parity Redis",
            "raw SET",
            "raw HSET",
            "raw MSET",
            "Parity SQLite",
            "Feast 0.67 Redis",
            "target",
            "",
        ),
        about=[
            f"{window.total_keys:,} entity keys ({window.keys['driver_stats']:,} drivers,"
            f" {window.keys['customer_stats']:,} customers), window {window.start:%Y-%m-%d %H:%M}"
            f" .. {window.end:%Y-%m-%d %H:%M} UTC. Raw = redis-py pipelines of {PIPELINE:,}"
            f" commands (transaction=False) into the same Redis: SET of {VALUE_BYTES}-byte values,"
            " HSET of the view's features as fields (values prepared before timing).",
            f"{runs} timed runs each, interleaved, each in a fresh process on an empty store"
            f" (Redis db {REDIS_DB}, FLUSHDB before every run and at the end). Feast: ROADMAP.md,"
            " for 1.5 M keys.",
        ],
    )
    kinds = [k for k in KINDS if only is None or (only == "parity") == (k in PARITY_KINDS)]
    series = {kind: Series(kind) for kind in kinds}
    problems: dict[str, list[str]] = {}
    extra: dict[str, Any] = {}
    for kind in PARITY_KINDS:
        if kind in series:
            try:
                setup_repo(data_dir, _store_of(kind))
            except ChildError as exc:
                series[kind].error = f"setup failed: {exc}"
    args = ["--data-dir", str(data_dir), "--window", window.to_json()]
    activity = [redis_activity()]
    try:
        for _ in range(runs):
            for kind, s in series.items():
                if s.error is not None:
                    continue
                try:
                    empty_store(data_dir, _store_of(kind))
                    payload = run_child(MODULE, ["--child", kind, *args])
                except ChildError as exc:
                    s.error = str(exc)
                    continue
                s.runs.append(to_measurement(payload))
                problems.setdefault(kind, []).extend(payload.get("problems", []))
                extra[kind] = payload
    finally:  # also when interrupted: leave db 11 empty
        activity.append(redis_activity())
        with contextlib.suppress(ChildError):  # Redis down: the errors say so already
            empty_store(data_dir, "redis")
    _fill(report, series, window, problems, extra)
    report.notes.append(f"other load before the runs: {activity[0]}; after: {activity[1]}")
    return report


def _keys_s(s: Series | None, keys: int) -> float | None:
    """Median keys per second, or None when the contender did not run."""
    return keys / s.median_s if s is not None and s.ok else None


def _fill(
    report: TableReport,
    series: dict[str, Series],
    window: Window,
    problems: dict[str, list[str]],
    extra: dict[str, Any],
) -> None:
    """Rows, errors, check verdict and notes of the report."""
    got = [series.get(kind) for kind in KINDS]
    n = window.total_keys

    def cells(value: Callable[[Series], str]) -> list[str]:
        return [value(s) if s is not None and s.ok else "-" for s in got]

    rate = [_keys_s(s, n) for s in got]
    raw = [r for r in rate[1:3] if r is not None]
    fastest_raw = max(raw) if raw else None
    parity = rate[0]
    keys_met = None if parity is None else parity >= KEYS_GOAL
    ratio = None if parity is None or fastest_raw is None else fastest_raw / parity
    report.rows = [
        (
            "keys/s (median)",
            *[f"{r:,.0f}" if r is not None else "-" for r in rate],
            f"{INCUMBENT_KEYS_S:,}",
            f">= {KEYS_GOAL:,}",
            verdict(keys_met),
        ),
        (
            "time / faster of SET, HSET",
            *[f"{fastest_raw / r:.2f}x" if r is not None and fastest_raw else "-" for r in rate],
            f"{fastest_raw / INCUMBENT_KEYS_S:.1f}x" if fastest_raw else "-",
            f"<= {RAW_GOAL:g}x",
            verdict(None if ratio is None else ratio <= RAW_GOAL),
        ),
        ("wall s (median)", *cells(lambda s: f"{s.median_s:.2f}"), f"{INCUMBENT_S:.0f}", "", ""),
        ("wall s (min-max)", *cells(lambda s: f"{s.min_s:.2f}-{s.max_s:.2f}"), "", "", ""),
        ("CPU s (median)", *cells(lambda s: f"{s.median_cpu_s:.2f}"), "", "", ""),
        ("peak MiB (max)", *cells(lambda s: f"{s.max_rss_mib:,.0f}"), "", "", ""),
    ]
    for kind, s in series.items():
        if s.error:
            report.errors.append(f"{kind}: {s.error}")
    checked = [kind for kind in PARITY_KINDS if kind in problems]
    if checked:
        found = [f"{kind}: {line}" for kind in checked for line in problems[kind][:8]]
        report.check = not found
        report.check_lines = found
        from bench.online import CHECK_ENTITIES

        covered = "; ".join(extra[checked[0]].get("covered", []))
        report.notes.append(
            f"check: after every Parity run, {CHECK_ENTITIES:,} random entity rows read back"
            f" and compared with the source's latest rows (values expected: {covered})"
        )
    if "parity-redis" in extra:
        last = extra["parity-redis"]
        report.notes.append(
            f"Redis db {REDIS_DB} held {last.get('db_keys', 0):,} keys after a Parity run"
            f" (e.g. {last.get('sample_key')})"
        )
    report.notes.append(
        f"keys/s = {n:,} keys / median wall seconds; CPU s = the client process's user + system"
        " time (the Redis server's is not included, and it shares the machine's cores)"
    )


def main(argv: list[str] | None = None) -> None:
    """Command line: run the materialization benchmark (or, with --child, one measurement)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="timed runs per contender")
    parser.add_argument("--only", choices=("reference", "parity"), help="run one side")
    parser.add_argument("--data-dir", type=Path, default=datagen.DATA_DIR)
    parser.add_argument("--scale", type=float, default=1.0, help="data scale to generate")
    parser.add_argument("--child", choices=KINDS, help=argparse.SUPPRESS)
    parser.add_argument("--window", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    data_dir = args.data_dir.resolve()
    if args.child:
        child_main(args.child, data_dir, Window.from_json(args.window))
        return
    datagen.ensure(data_dir, scale=args.scale)
    report = run(data_dir, runs=args.runs, only=args.only)
    render(report)
    sys.exit(0 if report.ok else 1)


if __name__ == "__main__":
    main()
