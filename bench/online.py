"""Benchmark: in-process ``get_online_features`` latency on Redis and SQLite against raw MGET.

Setup (untimed): both repos are applied and the whole data range is materialized into an
empty store (Redis db 11 flushed first; a new SQLite file); 1,000 random entities are then
checked against the source. Each timed run is a fresh subprocess (``--child KIND``) that
makes ``--warmup`` untimed calls and then ``--calls`` timed calls per case (1 entity row,
100 entity rows) with random existing keys, timing each call alone with
``time.perf_counter_ns``. Kinds, interleaved: ``parity-redis``, ``mget``, ``parity-sqlite``.
The percentiles pool every run's calls.

    python -m bench.online --runs 3 --calls 5000
"""

from __future__ import annotations

import argparse
import contextlib
import math
import random
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench import datagen, historical
from bench.harness import ChildError, finish_child, run_child
from bench.materialize import (
    KEY_PREFIX,
    REDIS_DB,
    VIEWS,
    Window,
    empty_store,
    redis_activity,
    redis_client,
    repo_dir,
    setup_repo,
)
from bench.report import TableReport, render, verdict

MODULE = "bench.online"
ROWS = (1, 100)  # entity rows per call, the two cases
CALLS, WARMUP = 5_000, 500
CHECK_ENTITIES = 1_000  # random entity rows compared with the source after materializing
SCAN_COUNT = 10_000
TARGETS = {  # (rows, percentile): at most this many milliseconds, Redis and SQLite alike
    (1, 50): 0.25,
    (1, 99): 0.6,
    (100, 50): 1.5,
}
INCUMBENT = {(1, 50): 0.48, (1, 99): 0.76, (100, 50): 9.2}  # Feast 0.67 on Redis (ROADMAP)
KINDS = ("parity-redis", "mget", "parity-sqlite")


# --- the correctness check (untimed) ---------------------------------------------------------


def _expected(
    data_dir: Path, view: str, ids: list[int], window: Window
) -> dict[int, tuple[int, tuple[Any, ...]]]:
    """id: (event µs, feature values) of the latest source row in the window, by event time
    then created time; written independently of Parity, with a window function."""
    import duckdb
    import pyarrow as pa

    key, file, features, _ = VIEWS[view]
    con = duckdb.connect()
    con.execute("SET TimeZone='UTC'")
    con.register("wanted", pa.table({"id": pa.array(sorted(set(ids)), pa.int64())}))
    rows = con.execute(
        f"""
        SELECT {key}, epoch_us(event_timestamp), {", ".join(features)} FROM (
            SELECT *, row_number() OVER (
                PARTITION BY {key} ORDER BY event_timestamp DESC, created DESC NULLS LAST
            ) AS rn
            FROM read_parquet({historical._sql_path(data_dir / file)})
            WHERE {key} IN (SELECT id FROM wanted)
              AND event_timestamp BETWEEN ?::TIMESTAMPTZ AND ?::TIMESTAMPTZ
        ) WHERE rn = 1
        """,
        [window.start, window.end],
    ).fetchall()
    con.close()
    return {row[0]: (row[1], tuple(row[2:])) for row in rows}


def sample_entities(window: Window, n: int, seed: int) -> list[dict[str, int]]:
    """``n`` random entity rows (driver and customer); about 2 % of each key has no data."""
    import numpy as np

    rng = np.random.default_rng(seed)
    cols = {}
    for view, (key, *_) in VIEWS.items():
        top = window.max_id[view]
        ids = rng.integers(1, top + 1, n)
        miss = rng.random(n) < 0.02
        ids[miss] = rng.integers(top + 1, 2 * top + 2, int(miss.sum()))
        cols[key] = ids.tolist()
    return [dict(zip(cols, values, strict=True)) for values in zip(*cols.values(), strict=True)]


def check_online(
    repo: Path, data_dir: Path, window: Window, seed: int = 7
) -> tuple[list[str], list[str]]:
    """Compare ``get_online_features`` with the source for random entities: (problems, what
    was covered). No problems means every value, status and event time matched.

    Read twice: with the store's clock at the last driver time + 90 min (about half the
    drivers' values expired, customers' fresh), and with the real clock (every value from
    2024 expired). The expected values follow the source's latest row and the view's TTL.
    """
    from parity import FeatureStore

    rows = sample_entities(window, CHECK_ENTITIES, seed)
    expected = {
        view: _expected(data_dir, view, [row[key] for row in rows], window)
        for view, (key, *_) in VIEWS.items()
    }
    as_of = window.driver_end + timedelta(minutes=90)
    problems: list[str] = []
    covered: list[str] = []
    for label, clock in (
        (f"as of {as_of:%Y-%m-%d %H:%M}", lambda: as_of),
        ("as of now", None),
    ):
        now = as_of if clock else datetime.now(UTC)
        with FeatureStore(repo, clock=clock) as store:
            got = store.get_online_features(historical.FEATURE_REFS, rows).to_dict(
                include_metadata=True
            )
        found, statuses = _compare(rows, expected, got, now)
        problems.extend(f"{label}: {line}" for line in found)
        mix = ", ".join(f"{n:,} {status}" for status, n in sorted(statuses.items()))
        covered.append(f"{label}: {mix}")
    return problems, covered


def _compare(
    rows: list[dict[str, int]],
    expected: dict[str, dict[int, tuple[int, tuple[Any, ...]]]],
    got: dict[str, list[Any]],
    now: datetime,
) -> tuple[list[str], dict[str, int]]:
    """Differences between one response and the expected values at ``now``, and how many
    values of each status were expected."""
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    differ: list[str] = []
    count = 0
    statuses: dict[str, int] = {}
    for view, (key, _, features, ttl) in VIEWS.items():
        fresh_after = (now - ttl - epoch) // timedelta(microseconds=1)
        for i, row in enumerate(rows):
            hit = expected[view].get(row[key])
            for j, name in enumerate(features):
                want: tuple[Any, str, datetime | None]
                if hit is None:
                    want = (None, "missing", None)
                else:
                    event_us, values = hit
                    when = epoch + timedelta(microseconds=event_us)
                    expired = event_us < fresh_after
                    want = (
                        None if expired else values[j],
                        "expired" if expired else "present",
                        when,
                    )
                have = (got[name][i], got[f"{name}__status"][i], got[f"{name}__event_timestamp"][i])
                statuses[want[1]] = statuses.get(want[1], 0) + 1
                if have != want:
                    count += 1
                    if len(differ) < 5:
                        differ.append(f"row {i} {key}={row[key]} {name}: got {have}, want {want}")
    if count:
        return [f"{count:,} values differ, e.g.", *(f"  {line}" for line in differ)], statuses
    return [], statuses


# --- children --------------------------------------------------------------------------------


def _timed(call: Callable[[Any], Any], requests: Iterator[Any], warmup: int) -> list[int]:
    """Nanoseconds of each call after the first ``warmup`` (untimed) ones."""
    clock = time.perf_counter_ns
    samples = []
    for i, request in enumerate(requests):
        started = clock()
        call(request)
        elapsed = clock() - started
        if i >= warmup:
            samples.append(elapsed)
    return samples


def _entity_rows(window: Window, rows: int, count: int, seed: int) -> Iterator[list[dict]]:
    """``count`` requests of ``rows`` random existing (driver, customer) pairs each; built
    between calls, outside the timed part."""
    rng = random.Random(seed)
    top = {key: window.max_id[view] for view, (key, *_) in VIEWS.items()}
    for _ in range(count):
        yield [{key: rng.randint(1, hi) for key, hi in top.items()} for _ in range(rows)]


def _parity_child(
    store: str, data_dir: Path, window: Window, calls: int, warmup: int, seed: int
) -> dict[str, Any]:
    """Latencies of ``get_online_features(...).to_dict()``, store clock at the data's end."""
    from parity import FeatureStore

    as_of = window.driver_end  # every materialized value is fresh then (TTL 2 h / 2 days)
    fs = FeatureStore(repo_dir(data_dir, store), clock=lambda: as_of)
    refs = historical.FEATURE_REFS
    first = fs.get_online_features(refs, next(_entity_rows(window, 1_000, 1, seed - 1)))
    statuses = [s for name in ("conv_rate", "current_balance") for s in first.statuses[name]]
    payload: dict[str, Any] = {"present": statuses.count("present") / len(statuses)}
    for rows in ROWS:
        requests = _entity_rows(window, rows, warmup + calls, seed + rows)
        payload[str(rows)] = _timed(
            lambda r: fs.get_online_features(refs, r).to_dict(), requests, warmup
        )
    fs.close()
    return payload


def _parity_keys(client: Any) -> list[bytes]:
    """Every key Parity wrote under the benchmark's prefix (SCAN, untimed)."""
    return list(client.scan_iter(match=KEY_PREFIX.encode() + b"*", count=SCAN_COUNT))


def _mget_child(window: Window, calls: int, warmup: int, seed: int) -> dict[str, Any]:
    """Latencies of raw MGET of 2 and 200 random keys among those Parity wrote."""
    # The Redis store's client settings (RedisOnlineConfig defaults; hiredis when installed).
    client = redis_client(socket_timeout=5.0, socket_connect_timeout=5.0)
    keys = _parity_keys(client)
    if not keys:
        raise ChildError(f"no keys under {KEY_PREFIX!r} in Redis db {REDIS_DB}")
    kind = client.type(keys[0])
    payload: dict[str, Any] = {"db_keys": len(keys), "key_type": kind.decode()}
    rng = random.Random(seed)
    for rows in ROWS:
        requests = (rng.sample(keys, 2 * rows) for _ in range(warmup + calls))
        payload[str(rows)] = _timed(client.mget, requests, warmup)
    client.close()
    return payload


def _load_child(store: str, data_dir: Path, window: Window) -> dict[str, Any]:
    """Materialize the whole range into the (empty) store, then run the correctness check."""
    from parity import FeatureStore

    started = time.perf_counter()
    with FeatureStore(repo_dir(data_dir, store)) as fs:
        keys = fs.materialize(window.start, window.end).keys
    seconds = time.perf_counter() - started
    problems, covered = check_online(repo_dir(data_dir, store), data_dir, window)
    return {"keys": keys, "seconds": seconds, "problems": problems, "covered": covered}


def _child(kind: str, data_dir: Path, window: Window, args: argparse.Namespace) -> dict[str, Any]:
    """Do one child's work and return its JSON payload."""
    if kind == "mget":
        return _mget_child(window, args.calls, args.warmup, args.seed)
    historical._import_parity()
    store = kind.split("-", 1)[1]
    if kind.startswith("load-"):
        return _load_child(store, data_dir, window)
    return _parity_child(store, data_dir, window, args.calls, args.warmup, args.seed)


def child_main(kind: str, data_dir: Path, args: argparse.Namespace) -> None:
    """Entry point of a child process: print the payload, or ``{"error": ...}``, as JSON."""
    finish_child(kind, lambda: _child(kind, data_dir, Window.from_json(args.window), args))


# --- the parent ------------------------------------------------------------------------------


def percentile(samples: list[int], pct: float) -> float:
    """The ``pct`` percentile of nanosecond samples, in milliseconds (nearest rank)."""
    ordered = sorted(samples)
    rank = max(0, math.ceil(pct / 100 * len(ordered)) - 1)
    return ordered[rank] / 1e6


def run(
    data_dir: Path,
    runs: int = 3,
    only: str | None = None,
    calls: int = CALLS,
    warmup: int = WARMUP,
    seed: int = 11,
) -> TableReport:
    """Run the online-read benchmark on the files in ``data_dir``; return its report.

    ``only`` is None for every contender, "reference" for raw MGET alone (it reads the keys
    Parity wrote, so Parity's Redis store is still loaded), or "parity" for Parity alone.
    """
    from bench.materialize import data_window

    window = data_window(data_dir)
    report = TableReport(
        "Online reads in process (8 features from 2 views, ms per call)",
        headers=(
            "",
            "Parity Redis",
            "raw MGET",
            "Parity SQLite",
            "Feast 0.67 Redis",
            "target",
            "Redis",
            "SQLite",
        ),
        about=[
            f"get_online_features(...).to_dict() for random existing keys ({window.total_keys:,}"
            " materialized), store clock at the data's last driver time so every value is fresh."
            " Raw MGET = redis-py MGET of 2 keys (1 row) or 200 keys (100 rows) that Parity wrote.",
            f"{runs} run(s) each, interleaved, each a fresh process: {warmup:,} warm-up calls,"
            f" then {calls:,} timed calls per case; percentiles over all {runs * calls:,} calls."
            " Feast: ROADMAP.md.",
        ],
    )
    kinds = [k for k in KINDS if only is None or (only == "reference") == (k == "mget")]
    stores = ["redis", "sqlite"] if only != "reference" else ["redis"]
    samples: dict[str, dict[int, list[int]]] = {k: {n: [] for n in ROWS} for k in kinds}
    errors: dict[str, str] = {}
    extra: dict[str, dict[str, Any]] = {}
    base = ["--data-dir", str(data_dir), "--window", window.to_json()]
    activity = [redis_activity()]
    try:
        for store in stores:
            _load(data_dir, store, kinds, base, errors, extra)
        timing = [*base, "--calls", str(calls), "--warmup", str(warmup)]
        for n in range(runs):
            for kind in kinds:
                if kind in errors:
                    continue
                try:
                    payload = run_child(MODULE, ["--child", kind, *timing, "--seed", str(seed + n)])
                except ChildError as exc:
                    errors[kind] = str(exc)
                    continue
                for rows in ROWS:
                    samples[kind][rows].extend(payload[str(rows)])
                extra[kind] = payload
    finally:  # also when interrupted: leave db 11 empty
        activity.append(redis_activity())
        with contextlib.suppress(ChildError):  # Redis down: the errors say so already
            empty_store(data_dir, "redis")
    _fill(report, kinds, samples, errors, extra)
    report.notes.append(f"other load before the runs: {activity[0]}; after: {activity[1]}")
    return report


def _load(
    data_dir: Path,
    store: str,
    kinds: list[str],
    base: list[str],
    errors: dict[str, str],
    extra: dict[str, dict[str, Any]],
) -> None:
    """Setup of one store: apply its repo, empty it, materialize everything, check it."""
    try:
        setup_repo(data_dir, store)
        empty_store(data_dir, store)
        extra[f"load-{store}"] = run_child(MODULE, ["--child", f"load-{store}", *base])
    except ChildError as exc:
        for kind in kinds:
            if kind.endswith(store) or (store == "redis" and kind == "mget"):
                errors[kind] = f"setup of the {store} store failed: {exc}"


def _fill(
    report: TableReport,
    kinds: list[str],
    samples: dict[str, dict[int, list[int]]],
    errors: dict[str, str],
    extra: dict[str, dict[str, Any]],
) -> None:
    """Rows, errors, check verdict and notes of the report."""

    def ms(kind: str, rows: int, pct: float) -> float | None:
        if kind not in kinds or kind in errors or not samples[kind][rows]:
            return None
        return percentile(samples[kind][rows], pct)

    def cell(value: float | None) -> str:
        return "-" if value is None else f"{value:.3f}"

    for rows, pct in [(1, 50), (1, 99), (100, 50), (100, 99)]:
        got = {kind: ms(kind, rows, pct) for kind in KINDS}
        target = TARGETS.get((rows, pct))
        marks = ["", ""]
        if target is not None:
            marks = [
                verdict(None if (value := got[k]) is None else value <= target)
                for k in ("parity-redis", "parity-sqlite")
            ]
        incumbent = INCUMBENT.get((rows, pct))
        report.rows.append(
            (
                f"{rows} row{'s' if rows > 1 else ''} p{pct}",
                *(cell(got[k]) for k in KINDS),
                "-" if incumbent is None else f"{incumbent:.2f}",
                "" if target is None else f"<= {target:g}",
                *marks,
            )
        )
    for rows in ROWS:
        raw = ms("mget", rows, 50)
        ratios = [
            "-" if raw is None or (p50 := ms(k, rows, 50)) is None else f"{p50 / raw:.1f}x"
            for k in KINDS
        ]
        feast = INCUMBENT[(rows, 50)]
        report.rows.append(
            (
                f"{rows} row{'s' if rows > 1 else ''} p50 / MGET",
                *ratios,
                "-" if raw is None else f"{feast / raw:.1f}x",
                "",
                "",
                "",
            )
        )
    for kind, error in errors.items():
        report.errors.append(f"{kind}: {error}")
    loads = {k: v for k, v in extra.items() if k.startswith("load-")}
    if loads:
        problems = [f"{k[5:]}: {line}" for k, v in loads.items() for line in v["problems"][:8]]
        report.check = not problems
        report.check_lines = problems
        report.notes.append(
            "setup: "
            + ", ".join(
                f"{k[5:]} {v['keys']:,} keys materialized in {v['seconds']:.1f} s"
                for k, v in loads.items()
            )
            + f"; then {CHECK_ENTITIES:,} random entity rows checked against the source"
            f" (values expected: {'; '.join(next(iter(loads.values()))['covered'])})"
        )
    present = [f"{k} {v['present']:.0%}" for k, v in extra.items() if "present" in v]
    if present:
        report.notes.append("share of values with status present: " + ", ".join(present))
    if "mget" in extra:
        report.notes.append(
            f"MGET reads among the {extra['mget']['db_keys']:,} keys Parity wrote"
            f" (type {extra['mget']['key_type']})"
        )


def main(argv: list[str] | None = None) -> None:
    """Command line: run the online-read benchmark (or, with --child, one measurement)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="timed runs per contender")
    parser.add_argument("--calls", type=int, default=CALLS, help="timed calls per case and run")
    parser.add_argument("--warmup", type=int, default=WARMUP, help="untimed calls first")
    parser.add_argument("--only", choices=("reference", "parity"), help="run one side")
    parser.add_argument("--data-dir", type=Path, default=datagen.DATA_DIR)
    parser.add_argument("--scale", type=float, default=1.0, help="data scale to generate")
    parser.add_argument("--seed", type=int, default=11, help="seed of the random keys")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--window", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    data_dir = args.data_dir.resolve()
    if args.child:
        child_main(args.child, data_dir, args)
        return
    datagen.ensure(data_dir, scale=args.scale)
    report = run(data_dir, args.runs, args.only, args.calls, args.warmup, args.seed)
    render(report)
    sys.exit(0 if report.ok else 1)


if __name__ == "__main__":
    main()
