"""Benchmark: window aggregations, offline, online read and push.

1. Offline: ``get_historical_features(...).to_arrow()`` of an aggregated view (sum, count,
   mean over 1 d; sum over 7 d; hop 1 h) against a hand-written DuckDB range join over the
   same events file; wall time ratio (goal <= 1.5x) and peak RSS of each child (goal < 3 GB).
2. Online read: p50 of ``get_online_features`` for 1 entity row, aggregated view against a
   plain view in the same Redis store (db 11, prefix ``parity_bench_agg:``); goal <= 2x.
3. Push: events/s of ``store.push(..., to="online")`` in batches of 1,000 (goal >= 50,000).

Every timed run is a fresh subprocess; figures are medians of ``--runs`` runs.

    python -m bench.aggregates --scale 0.1
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.harness import ROOT, ChildError, finish_child, measure, preload_parity, run_child

MODULE = "bench.aggregates"
REDIS_DB = 11
REDIS_URL = f"redis://127.0.0.1:6379/{REDIS_DB}"
KEY_PREFIX = "parity_bench_agg:"
EVENTS_AT_1 = 12_500_000
USERS_AT_1 = 500_000
ENTITY_ROWS_AT_1 = 1_000_000
DAYS = 14
BASE = datetime(2024, 3, 1, tzinfo=UTC)
END = BASE + timedelta(days=DAYS)
HOP = timedelta(hours=1)
DAY_US = 86_400_000_000
HOP_US = 3_600_000_000
PUSH_BATCH = 1_000
GOALS = {"offline_ratio": 1.5, "rss_gib": 3.0, "online_ratio": 2.0, "push_eps": 50_000}
AGG_REFS = [
    "agg:amount_sum_1d",
    "agg:count_1d",
    "agg:amount_mean_1d",
    "agg:amount_sum_7d",
]


def data_dir(scale: float) -> Path:
    return ROOT / "bench" / "data" / f"aggregates_s{scale:g}"


def sizes(scale: float) -> tuple[int, int, int]:
    """(events, users, entity rows) at ``scale``."""
    return (
        max(1, int(EVENTS_AT_1 * scale)),
        max(1, int(USERS_AT_1 * scale)),
        max(1, int(ENTITY_ROWS_AT_1 * scale)),
    )


# --- data and repo (untimed) -----------------------------------------------------------------


def generate(scale: float, seed: int = 42) -> Path:
    """Seeded events (14 days) and entity frame (times in the last 7 days) as Parquet files."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = data_dir(scale)
    events_path, entity_path = out / "data" / "events.parquet", out / "entity.parquet"
    if events_path.exists() and entity_path.exists():
        return out
    (out / "data").mkdir(parents=True, exist_ok=True)
    n_events, n_users, n_rows = sizes(scale)
    rng = np.random.default_rng(seed)
    base_us = int(BASE.timestamp() * 1_000_000)
    ts = base_us + rng.integers(0, DAYS * DAY_US, n_events)
    ts.sort()
    events = pa.table(
        {
            "user_id": pa.array(rng.integers(1, n_users + 1, n_events), pa.int64()),
            "amount": pa.array(np.round(rng.gamma(2.0, 20.0, n_events), 2), pa.float64()),
            "event_timestamp": pa.array(ts, pa.timestamp("us", tz="UTC")),
        }
    )
    pq.write_table(events, events_path, row_group_size=1_000_000)
    t = base_us + 7 * DAY_US + rng.integers(0, 7 * DAY_US, n_rows)
    entity = pa.table(
        {
            "user_id": pa.array(rng.integers(1, n_users + 1, n_rows), pa.int64()),
            "event_timestamp": pa.array(t, pa.timestamp("us", tz="UTC")),
        }
    )
    pq.write_table(entity, entity_path)
    return out


def open_store(repo: Path, clock: Any = None) -> Any:
    """Write the repo's config, apply the definitions and return the FeatureStore."""
    from parity import Aggregation, Entity, FeatureStore, FeatureView, Field, FileSource, PushSource

    (repo / "parity.yaml").write_text(
        "project: aggbench\nregistry: {path: data/registry.db}\n"
        f"online_store: {{type: redis, url: '{REDIS_URL}', key_prefix: '{KEY_PREFIX}'}}\n"
    )
    fs = FeatureStore(repo, clock=clock)
    user = Entity(name="user", join_keys=["user_id"], dtype="Int64")
    batch = FileSource(name="events_batch", path="data/events.parquet")
    events = PushSource(name="events", batch_source=batch)
    plain_events = PushSource(
        name="plain_events", batch_source=FileSource(name="plain_batch", path="data/events.parquet")
    )
    day, week = timedelta(days=1), timedelta(days=7)
    agg = FeatureView(
        name="agg",
        entities=[user],
        source=events,
        hop=HOP,
        aggregations=[
            Aggregation(column="amount", function="sum", window=day),
            Aggregation(function="count", window=day),
            Aggregation(column="amount", function="mean", window=day),
            Aggregation(column="amount", function="sum", window=week),
        ],
    )
    plain = FeatureView(
        name="plain",
        entities=[user],
        source=plain_events,
        schema=[Field(name="amount", dtype="Float64")],
    )
    fs.apply([user, batch, events, plain_events, agg, plain])
    return fs


def redis_client() -> Any:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    if client.connection_pool.connection_kwargs.get("db") != REDIS_DB:
        raise AssertionError(f"{REDIS_URL} does not select db {REDIS_DB}")
    client.ping()
    return client


# --- offline children --------------------------------------------------------------------------


DUCKDB_SQL = f"""
WITH k AS (
    SELECT row_number() OVER () - 1 AS rid, user_id, epoch_us(event_timestamp) AS t,
           floor((epoch_us(event_timestamp) - {DAY_US})::DOUBLE / {HOP_US})::BIGINT * {HOP_US} AS s1,
           floor((epoch_us(event_timestamp) - {7 * DAY_US})::DOUBLE / {HOP_US})::BIGINT * {HOP_US} AS s7
    FROM entity
), e AS (
    SELECT user_id, epoch_us(event_timestamp) AS ts, amount FROM read_parquet('{{path}}')
)
SELECT k.rid, any_value(k.user_id) AS user_id,
       sum(e.amount) FILTER (WHERE e.ts > k.s1) AS amount_sum_1d,
       count(e.ts) FILTER (WHERE e.ts > k.s1) AS count_1d,
       avg(e.amount) FILTER (WHERE e.ts > k.s1) AS amount_mean_1d,
       sum(e.amount) AS amount_sum_7d
FROM k LEFT JOIN e ON e.user_id = k.user_id AND e.ts > k.s7 AND e.ts <= k.t
GROUP BY k.rid ORDER BY k.rid
"""


def child_offline(kind: str, scale: float) -> dict[str, Any]:
    import pyarrow.parquet as pq

    out = data_dir(scale)
    entity = pq.read_table(out / "entity.parquet")
    if kind == "parity":
        preload_parity()
        fs = open_store(out)
        result = measure(lambda: fs.get_historical_features(entity, AGG_REFS).to_arrow())
        fs.close()
        return result
    import duckdb

    con = duckdb.connect()
    con.execute("SET TimeZone='UTC'")
    con.register("entity", entity)
    path = str(out / "data" / "events.parquet")
    sql = DUCKDB_SQL.replace("{path}", path.replace("'", "''"))
    return measure(lambda: con.sql(sql).to_arrow_table())


def check_offline(scale: float, sample: int = 2_000) -> str:
    """Compare Parity's and the hand-written query's values on the first ``sample`` rows."""
    import duckdb
    import pyarrow.parquet as pq

    out = data_dir(scale)
    entity = pq.read_table(out / "entity.parquet").slice(0, sample)
    fs = open_store(out)
    got = fs.get_historical_features(entity, AGG_REFS).to_arrow().to_pydict()
    fs.close()
    con = duckdb.connect()
    con.execute("SET TimeZone='UTC'")
    con.register("entity", entity)
    sql = DUCKDB_SQL.replace("{path}", str(out / "data" / "events.parquet").replace("'", "''"))
    want = con.sql(sql).to_arrow_table().to_pydict()
    bad = 0
    for name in ("amount_sum_1d", "count_1d", "amount_mean_1d", "amount_sum_7d"):
        for a, b in zip(got[name], want[name], strict=True):
            if name == "count_1d":
                b = b or 0
            if a is None or b is None:
                bad += a != b
            elif abs(a - b) > 1e-6 * max(1.0, abs(b)):
                bad += 1
    return f"{bad} of {4 * len(entity)} values differ (first {len(entity)} entity rows)"


# --- online children ---------------------------------------------------------------------------


def _load_online(fs: Any, scale: float, users: int) -> None:
    """Push the last 8 days of events of users 1..``users`` to both views, online."""
    import duckdb

    con = duckdb.connect()
    con.execute("SET TimeZone='UTC'")
    table = con.execute(
        "SELECT user_id, amount, event_timestamp FROM read_parquet(?) "
        "WHERE user_id <= ? AND event_timestamp > ?::TIMESTAMPTZ ORDER BY event_timestamp",
        [str(data_dir(scale) / "data" / "events.parquet"), users, END - timedelta(days=8)],
    ).to_arrow_table()
    for i in range(0, table.num_rows, PUSH_BATCH):
        batch = table.slice(i, PUSH_BATCH)
        fs.push("events", batch, to="online")
        fs.push("plain_events", batch, to="online")


def child_online(scale: float, calls: int, warmup: int, seed: int) -> dict[str, Any]:
    import random

    _, n_users, _ = sizes(scale)
    users = min(n_users, 20_000)
    client = redis_client()
    client.flushdb()
    try:
        fs = open_store(data_dir(scale), clock=lambda: END)
        _load_online(fs, scale, users)
        probe = fs.get_online_features(
            [*AGG_REFS, "plain:amount"], entities={"user_id": list(range(1, 201))}
        ).to_dict()
        present = {
            "agg_count_1d_gt0": sum(1 for c in probe["count_1d"] if c) / 200,
            "plain_non_null": sum(1 for c in probe["amount"] if c is not None) / 200,
        }
        rng = random.Random(seed)
        samples: dict[str, list[int]] = {"agg": [], "plain": []}
        refs = {"agg": AGG_REFS, "plain": ["plain:amount"]}
        clock = time.perf_counter_ns
        for i in range(warmup + calls):
            for view in ("agg", "plain") if i % 2 else ("plain", "agg"):
                uid = rng.randint(1, users)
                started = clock()
                fs.get_online_features(refs[view], entities={"user_id": [uid]}).to_dict()
                elapsed = clock() - started
                if i >= warmup:
                    samples[view].append(elapsed)
        fs.close()
    finally:
        client.flushdb()
    return {"present": present} | {
        v: {"p50_ms": statistics.median(s) / 1e6, "p99_ms": sorted(s)[int(0.99 * len(s))] / 1e6}
        for v, s in samples.items()
    }


def child_push(scale: float, events: int, seed: int) -> dict[str, Any]:
    import numpy as np
    import pyarrow as pa

    _, n_users, _ = sizes(scale)
    rng = np.random.default_rng(seed)
    end_us = int(END.timestamp() * 1_000_000)
    ts = np.sort(end_us - rng.integers(0, DAY_US, events))
    table = pa.table(
        {
            "user_id": pa.array(rng.integers(1, n_users + 1, events), pa.int64()),
            "amount": pa.array(np.round(rng.gamma(2.0, 20.0, events), 2), pa.float64()),
            "event_timestamp": pa.array(ts, pa.timestamp("us", tz="UTC")),
        }
    )
    batches = [table.slice(i, PUSH_BATCH) for i in range(0, events, PUSH_BATCH)]
    client = redis_client()
    client.flushdb()
    try:
        fs = open_store(data_dir(scale), clock=lambda: END)
        fs.push("events", batches[0], to="online")  # warm-up, untimed
        started = time.perf_counter()
        for b in batches[1:]:
            fs.push("events", b, to="online")
        wall = time.perf_counter() - started
        fs.close()
    finally:
        client.flushdb()
    pushed = events - batches[0].num_rows
    return {"wall_s": wall, "events": pushed, "events_per_s": pushed / wall}


# --- parent ------------------------------------------------------------------------------------


def _child(args: list[str]) -> dict[str, Any]:
    return run_child(MODULE, args)


def measure_parts(
    scale: float, runs_n: int, parts: set[str], calls: int, warmup: int, push_events: int
) -> dict[str, Any]:
    """Every part asked for, each in fresh child processes; figures as a dict."""
    n_events, n_users, n_rows = sizes(scale)
    print(f"scale {scale:g}: {n_events:,} events, {n_users:,} users, {n_rows:,} entity rows")
    generate(scale)
    results: dict[str, Any] = {"scale": scale, "runs": runs_n}
    base = ["--scale", str(scale)]
    try:
        if "offline" in parts:
            check = check_offline(scale)
            results["check"] = check
            results["check_ok"] = check.startswith("0 of")
            print("check:", check)
            runs: dict[str, list[dict[str, Any]]] = {"parity": [], "duckdb": []}
            for _ in range(runs_n):
                for kind in runs:  # interleaved
                    runs[kind].append(_child([*base, "--child", kind]))
            off = {}
            for kind, rs in runs.items():
                off[kind] = {
                    "median_s": statistics.median(r["wall_s"] for r in rs),
                    "rss_mib_vmhwm": max(r["peak_rss_kib"] for r in rs) / 1024,
                    "rss_mib_ru_maxrss": max(r["ru_maxrss_kib"] for r in rs) / 1024,
                    "rows": rs[0]["rows"],
                }
            off["ratio"] = off["parity"]["median_s"] / off["duckdb"]["median_s"]
            results["offline"] = off
            print(
                f"offline: parity {off['parity']['median_s']:.2f} s "
                f"(peak RSS {off['parity']['rss_mib_vmhwm']:.0f} MiB), duckdb "
                f"{off['duckdb']['median_s']:.2f} s (peak RSS {off['duckdb']['rss_mib_vmhwm']:.0f}"
                f" MiB); ratio {off['ratio']:.2f}x (goal <= {GOALS['offline_ratio']}x)"
            )
        if "online" in parts:
            rs = [
                _child(
                    [
                        *base,
                        "--child",
                        "online",
                        "--calls",
                        str(calls),
                        "--warmup",
                        str(warmup),
                        "--runs",
                        str(i),
                    ]
                )
                for i in range(runs_n)
            ]
            on = {v: statistics.median(r[v]["p50_ms"] for r in rs) for v in ("agg", "plain")}
            on["ratio"] = on["agg"] / on["plain"]
            on["runs"] = rs
            results["online"] = on
            print(
                f"online p50 (1 row): agg {on['agg']:.3f} ms, plain {on['plain']:.3f} ms; "
                f"ratio {on['ratio']:.2f}x (goal <= {GOALS['online_ratio']}x); "
                f"present: {rs[0]['present']}"
            )
        if "push" in parts:
            rs = [
                _child(
                    [
                        *base,
                        "--child",
                        "push",
                        "--push-events",
                        str(push_events),
                        "--runs",
                        str(i),
                    ]
                )
                for i in range(runs_n)
            ]
            eps = statistics.median(r["events_per_s"] for r in rs)
            results["push"] = {"events_per_s": eps, "runs": rs}
            print(f"push: {eps:,.0f} events/s (goal >= {GOALS['push_eps']:,})")
    except ChildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        results["error"] = str(exc)
    return results


def run(data_dir: Path, runs: int = 3, only: str | None = None) -> Any:
    """``bench.run``'s entry: this benchmark at the scale of ``data_dir``'s data, as a table."""
    from bench.report import TableReport, verdict

    manifest = json.loads((data_dir / "manifest.json").read_text())
    scale = float(manifest["scale"])
    parts = {"offline", "online", "push"}
    if only == "reference":
        parts = {"offline"}
    r = measure_parts(scale, runs, parts, 2_000, 200, 200_000)
    n_events, n_users, n_rows = sizes(scale)
    report = TableReport(
        "Window aggregations: offline, online read, push",
        headers=("", "Parity", "reference", "ratio", "goal", "verdict"),
        about=[
            f"{n_events:,} events of {n_users:,} users over 14 days; {n_rows:,} entity rows;"
            " sum, count, mean over 1 d and sum over 7 d, hop 1 h. Reference offline: a"
            " hand-written DuckDB range join with FILTER per window; online: a plain view's"
            f" read in the same Redis; medians of {runs} runs in fresh processes.",
        ],
    )
    if "error" in r:
        report.errors.append(r["error"])
    off = r.get("offline")
    if off:
        report.rows.append(
            (
                "offline s",
                f"{off['parity']['median_s']:.2f}",
                f"{off['duckdb']['median_s']:.2f}",
                f"{off['ratio']:.2f}x",
                f"<= {GOALS['offline_ratio']}x",
                verdict(off["ratio"] <= GOALS["offline_ratio"]),
            )
        )
        peak = off["parity"]["rss_mib_vmhwm"]
        report.rows.append(
            (
                "offline peak MiB",
                f"{peak:,.0f}",
                f"{off['duckdb']['rss_mib_vmhwm']:,.0f}",
                "",
                "< 3,072",
                verdict(peak < 3072),
            )
        )
        report.check = bool(r.get("check_ok", True))
        report.check_lines.append(str(r.get("check", "")))
    on = r.get("online")
    if on:
        report.rows.append(
            (
                "online p50 ms (1 row)",
                f"{on['agg']:.3f}",
                f"{on['plain']:.3f}",
                f"{on['ratio']:.2f}x",
                f"<= {GOALS['online_ratio']}x",
                verdict(on["ratio"] <= GOALS["online_ratio"]),
            )
        )
    push = r.get("push")
    if push:
        eps = push["events_per_s"]
        report.rows.append(
            (
                "push events/s (1,000 per batch)",
                f"{eps:,.0f}",
                "",
                "",
                f">= {GOALS['push_eps']:,}",
                verdict(eps >= GOALS["push_eps"]),
            )
        )
    return report


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scale", type=float, default=0.1)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--parts", default="offline,online,push")
    p.add_argument("--calls", type=int, default=2_000)
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--push-events", type=int, default=200_000)
    p.add_argument("--json", type=Path, default=None, help="also write the results here")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.child:
        kind = a.child
        if kind in ("parity", "duckdb"):
            finish_child(kind, lambda: child_offline(kind, a.scale))
        elif kind == "online":
            finish_child(kind, lambda: child_online(a.scale, a.calls, a.warmup, seed=a.runs))
        elif kind == "push":
            finish_child(kind, lambda: child_push(a.scale, a.push_events, seed=a.runs))
        return 0

    results = measure_parts(
        a.scale, a.runs, set(a.parts.split(",")), a.calls, a.warmup, a.push_events
    )
    if a.json:
        a.json.write_text(json.dumps(results, indent=2, default=str))
    print(json.dumps({k: v for k, v in results.items() if k != "runs"}, default=str)[:2000])
    return 1 if "error" in results else 0


if __name__ == "__main__":
    sys.exit(main())
