"""Benchmark: Parity's point-in-time historical join against a hand-written DuckDB ASOF JOIN.

Each timed run happens in a fresh subprocess (``--child reference|parity``) that prints its
wall time and peak RSS as JSON; the parent interleaves reference and Parity runs, checks once
that both give the same table, and reports medians and ratios.

    python -m bench.historical --only reference --runs 5
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa

from bench import datagen
from bench.compare import compare_tables
from bench.harness import (
    ChildError,
    Series,
    child_env,
    finish_child,
    measure,
    preload_parity,
    run_child,
    to_measurement,
)
from bench.report import BenchReport, Goal, render

MODULE = "bench.historical"
DRIVER_TTL = timedelta(hours=2)
CUSTOMER_TTL = timedelta(days=2)
DRIVER_FEATURES = ("conv_rate", "acc_rate", "avg_daily_trips", "rating_count", "city")
CUSTOMER_FEATURES = ("current_balance", "lifetime_trip_count", "tier")
FEATURE_REFS = [f"driver_stats:{name}" for name in DRIVER_FEATURES] + [
    f"customer_stats:{name}" for name in CUSTOMER_FEATURES
]
TIME_GOAL = 1.3  # Parity's median wall time at most this multiple of the reference's
MEMORY_GOAL_MIB = 2048  # Parity's peak RSS under 2 GiB

REFERENCE = "reference"
REFERENCE_ONLY_HINT = "(run the reference alone with `python -m bench.historical --only reference`)"
PARITY = "parity"


# --- the reference ---------------------------------------------------------------------------


def _sql_path(path: Path) -> str:
    """A file path as a SQL string literal."""
    return "'" + str(path).replace("'", "''") + "'"


def _ttl_features(alias: str, names: tuple[str, ...], ttl: timedelta) -> str:
    """Select list of features nulled when their row is older than entity time minus ``ttl``."""
    seconds = int(ttl.total_seconds())
    fresh = f"{alias}.event_timestamp >= e.event_timestamp - INTERVAL {seconds} SECOND"
    return ",\n    ".join(f"CASE WHEN {fresh} THEN {alias}.{name} END AS {name}" for name in names)


def reference_sql(data_dir: Path) -> str:
    """The hand-written point-in-time join: two ASOF LEFT JOINs, TTL, input order kept."""
    driver_cols = ", ".join(DRIVER_FEATURES)
    customer_cols = ", ".join(CUSTOMER_FEATURES)
    return f"""
SELECT
    e.* EXCLUDE (file_row_number),
    {_ttl_features("d", DRIVER_FEATURES, DRIVER_TTL)},
    {_ttl_features("c", CUSTOMER_FEATURES, CUSTOMER_TTL)}
FROM read_parquet({_sql_path(data_dir / "entity_df.parquet")}, file_row_number = true) AS e
ASOF LEFT JOIN (
    SELECT driver_id, event_timestamp, {driver_cols}
    FROM read_parquet({_sql_path(data_dir / "driver_stats.parquet")})
) AS d
    ON e.driver_id = d.driver_id AND e.event_timestamp >= d.event_timestamp
ASOF LEFT JOIN (
    SELECT customer_id, event_timestamp, {customer_cols}
    FROM read_parquet({_sql_path(data_dir / "customer_stats.parquet")})
) AS c
    ON e.customer_id = c.customer_id AND e.event_timestamp >= c.event_timestamp
ORDER BY e.file_row_number
"""


def reference_table(data_dir: Path) -> pa.Table:
    """Run the reference query on a new DuckDB connection and return the Arrow table."""
    import duckdb

    con = duckdb.connect()
    try:
        con.execute("SET TimeZone='UTC'")
        relation = con.sql(reference_sql(data_dir))
        fetch = getattr(relation, "to_arrow_table", None) or relation.fetch_arrow_table
        return fetch()
    finally:
        con.close()


# --- the Parity side -------------------------------------------------------------------------

PARITY_YAML = """\
project: bench
registry: data/registry.db
offline_store: { type: duckdb }
"""

FEATURES_PY = '''\
"""Feature definitions for the historical-retrieval benchmark (written by bench.historical)."""

from datetime import timedelta

from parity import Entity, FeatureView, Field, FileSource, Float32, Int32, Int64, String

driver = Entity(name="driver", join_keys=["driver_id"], dtype=Int64)
customer = Entity(name="customer", join_keys=["customer_id"], dtype=Int64)

driver_src = FileSource(
    name="driver_stats_src",
    path={driver_path},
    timestamp_field="event_timestamp",
    created_timestamp_field="created",
)
customer_src = FileSource(
    name="customer_stats_src",
    path={customer_path},
    timestamp_field="event_timestamp",
    created_timestamp_field="created",
)

driver_stats = FeatureView(
    name="driver_stats",
    entities=[driver],
    source=driver_src,
    ttl=timedelta(hours=2),
    schema=[
        Field(name="conv_rate", dtype=Float32),
        Field(name="acc_rate", dtype=Float32),
        Field(name="avg_daily_trips", dtype=Int64),
        Field(name="rating_count", dtype=Int32),
        Field(name="city", dtype=String),
    ],
)
customer_stats = FeatureView(
    name="customer_stats",
    entities=[customer],
    source=customer_src,
    ttl=timedelta(days=2),
    schema=[
        Field(name="current_balance", dtype=Float32),
        Field(name="lifetime_trip_count", dtype=Int64),
        Field(name="tier", dtype=String),
    ],
)
'''


def repo_dir(data_dir: Path) -> Path:
    """The feature repository folder the benchmark builds next to the data."""
    return data_dir / "repo"


def write_repo(data_dir: Path) -> Path:
    """Write ``parity.yaml`` and ``features.py`` pointing at the data; return the repo folder."""
    repo = repo_dir(data_dir)
    (repo / "data").mkdir(parents=True, exist_ok=True)
    (repo / "parity.yaml").write_text(PARITY_YAML)
    features = FEATURES_PY.format(
        driver_path=json.dumps(str((data_dir / "driver_stats.parquet").resolve())),
        customer_path=json.dumps(str((data_dir / "customer_stats.parquet").resolve())),
    )
    (repo / "features.py").write_text(features)
    return repo


def _parity_cli() -> list[str]:
    """Command prefix for the ``parity`` CLI: the venv's script, else the entry point."""
    script = Path(sys.executable).with_name("parity")
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from parity.cli import main; sys.exit(main())"]


def apply_repo(repo: Path) -> None:
    """Register the repo's definitions with ``parity apply --repo``; raise ChildError on failure."""
    cmd = [*_parity_cli(), "apply", "--repo", str(repo)]
    proc = subprocess.run(
        cmd, cwd=repo, env=child_env(), capture_output=True, text=True, timeout=600
    )
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-10:])
        raise ChildError(f"`{' '.join(cmd)}` exited with {proc.returncode}:\n{tail}")


def parity_table(data_dir: Path) -> pa.Table:
    """Run Parity's historical retrieval for the benchmark's features; return the Arrow table."""
    try:
        from parity import FeatureStore
    except ImportError:  # not re-exported at the top level (yet)
        from parity.store import FeatureStore

    store = FeatureStore(repo_dir(data_dir))
    job = store.get_historical_features(
        entity_df=str(data_dir / "entity_df.parquet"), features=FEATURE_REFS
    )
    return job.to_arrow()


# --- children --------------------------------------------------------------------------------


def _import_parity() -> None:
    """Import parity before timing, turning failure into a clear ChildError."""
    try:
        preload_parity()
    except Exception as exc:
        raise ChildError(
            f"the parity package cannot be imported ({type(exc).__name__}: {exc});"
            f" {REFERENCE_ONLY_HINT}"
        ) from exc


def _child(kind: str, data_dir: Path) -> dict[str, Any]:
    """Do one child's work and return its JSON payload."""
    if kind == "reference":
        import duckdb  # noqa: F401  (imported before timing, like parity)

        return measure(lambda: reference_table(data_dir))
    _import_parity()
    os.chdir(repo_dir(data_dir))  # in case relative paths in parity.yaml follow the cwd
    if kind == "parity":
        return measure(lambda: parity_table(data_dir))
    expected = reference_table(data_dir)
    comparison = compare_tables(expected, parity_table(data_dir))
    found = {
        name: 1 - expected[name].null_count / max(expected.num_rows, 1)
        for name in ("conv_rate", "current_balance")
    }
    return {
        "match": comparison.match,
        "problems": comparison.problems,
        "notes": comparison.notes,
        "rows": expected.num_rows,
        "columns": expected.num_columns,
        "found": found,
    }


def child_main(kind: str, data_dir: Path) -> None:
    """Entry point of a child process: print the payload, or ``{"error": ...}``, as JSON."""
    finish_child(kind, lambda: _child(kind, data_dir))


# --- the parent ------------------------------------------------------------------------------


def _child_args(kind: str, data_dir: Path) -> list[str]:
    """Arguments for one child of this module."""
    return ["--child", kind, "--data-dir", str(data_dir)]


def _check(data_dir: Path, report: BenchReport) -> None:
    """Run the correctness check child once and record its verdict in ``report``."""
    try:
        result = run_child(MODULE, _child_args("check", data_dir))
    except ChildError as exc:
        report.candidate.error = str(exc)
        return
    report.check = bool(result["match"])
    report.check_lines = [*result["problems"], *result["notes"]]
    found = result["found"]
    report.notes.append(
        f"{result['rows']:,} entity rows x {result['columns']} columns; reference finds driver"
        f" features for {found['conv_rate']:.0%} and customer features for"
        f" {found['current_balance']:.0%} of rows"
    )


def _goals(report: BenchReport) -> list[Goal]:
    """Evaluate the time and memory goals for Parity."""
    ref, cand = report.reference, report.candidate
    if not cand.ok:
        return [
            Goal(f"time <= {TIME_GOAL}x reference", None, "parity did not run"),
            Goal(f"peak memory < {MEMORY_GOAL_MIB:,} MiB", None, "parity did not run"),
        ]
    ratio = cand.median_s / ref.median_s if ref.ok else None
    time_goal = Goal(
        f"time <= {TIME_GOAL}x reference",
        None if ratio is None else ratio <= TIME_GOAL,
        "reference did not run" if ratio is None else f"{ratio:.2f}x of medians",
    )
    memory_goal = Goal(
        f"peak memory < {MEMORY_GOAL_MIB:,} MiB",
        cand.max_rss_mib < MEMORY_GOAL_MIB,
        f"max {cand.max_rss_mib:,.0f} MiB over {len(cand.runs)} run(s)",
    )
    return [time_goal, memory_goal]


def _paired_note(ref: Series, cand: Series) -> str | None:
    """Median and range of per-pair time ratios (runs were interleaved, so pairs share noise)."""
    if not (ref.ok and cand.ok):
        return None
    ratios = [c.wall_s / r.wall_s for r, c in zip(ref.runs, cand.runs, strict=False)]
    return (
        f"paired time ratios (parity/reference, run by run): median"
        f" {statistics.median(ratios):.2f}x, range {min(ratios):.2f}x-{max(ratios):.2f}x"
    )


def _cpu_note(ref: Series, cand: Series) -> str | None:
    """Median CPU time per contender (user + system, all threads) and their ratio."""
    parts = [f"{s.name} {s.median_cpu_s:.2f} s" for s in (ref, cand) if s.ok]
    if not parts:
        return None
    ratio = f" (ratio {cand.median_cpu_s / ref.median_cpu_s:.2f}x)" if ref.ok and cand.ok else ""
    return "median CPU time (user + system): " + ", ".join(parts) + ratio


def _baseline_note(ref: Series, cand: Series) -> str | None:
    """Peak RSS already reached before the timed call (interpreter and imports), per contender."""
    parts = [
        f"{series.name} {statistics.median(m.baseline_rss_kib for m in series.runs) / 1024:,.0f}"
        " MiB"
        for series in (ref, cand)
        if series.ok
    ]
    return "RSS before the timed call (imports): " + ", ".join(parts) if parts else None


def run(data_dir: Path, runs: int = 5, only: str | None = None) -> BenchReport:
    """Run the historical benchmark on the files in ``data_dir`` and return its report.

    ``only`` is None for both contenders, or "reference" / "parity" for one of them.
    """
    ref, cand = Series(REFERENCE), Series(PARITY)
    manifest = datagen.read_manifest(data_dir)
    rows = manifest.get("rows", {}).get("entity_df.parquet", 0) if manifest else 0
    report = BenchReport(
        "Historical retrieval (point-in-time join)",
        ref,
        cand,
        about=[
            f"{rows:,} entity rows x 2 feature views (8 features); reference = hand-written"
            " DuckDB ASOF JOIN on the same Parquet files.",
            f"{runs} timed runs each, interleaved, each in a fresh process; wall time of the"
            " query until the Arrow table is in hand, peak RSS of that process;"
            " ratio = parity / reference.",
        ],
    )
    kinds = [k for k in ("reference", "parity") if only in (None, k)]
    if "parity" in kinds:
        try:
            apply_repo(write_repo(data_dir))
        except ChildError as exc:
            cand.error = f"setup failed: {exc}\n{REFERENCE_ONLY_HINT}"
        if cand.error is None and "reference" in kinds:
            _check(data_dir, report)  # also warms the page cache for both sides
    if report.check is None:  # no check ran: one untimed warm-up run per contender instead
        for kind, series in zip(("reference", "parity"), (ref, cand), strict=True):
            if kind in kinds and series.error is None:
                _try_run(kind, data_dir, series, record=False)
    for _ in range(runs):
        for kind, series in zip(("reference", "parity"), (ref, cand), strict=True):
            if kind in kinds and series.error is None:
                _try_run(kind, data_dir, series)
    if only is None or only == "parity":
        report.goals = _goals(report)
    notes = (_paired_note(ref, cand), _cpu_note(ref, cand), _baseline_note(ref, cand))
    report.notes.extend(note for note in notes if note)
    return report


def _try_run(kind: str, data_dir: Path, series: Series, record: bool = True) -> None:
    """Run one child and append its measurement to ``series``, or record its error."""
    try:
        payload = run_child(MODULE, _child_args(kind, data_dir))
    except ChildError as exc:
        series.error = str(exc)
        return
    if record:
        series.runs.append(to_measurement(payload))


def main(argv: list[str] | None = None) -> None:
    """Command line: run the historical benchmark (or, with --child, one measurement)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="timed runs per contender")
    parser.add_argument("--only", choices=("reference", "parity"), help="run one contender")
    parser.add_argument("--data-dir", type=Path, default=datagen.DATA_DIR)
    parser.add_argument("--scale", type=float, default=1.0, help="data scale to generate")
    parser.add_argument("--child", choices=("reference", "parity", "check"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    data_dir = args.data_dir.resolve()
    if args.child:
        child_main(args.child, data_dir)
        return
    datagen.ensure(data_dir, scale=args.scale)
    report = run(data_dir, runs=args.runs, only=args.only)
    render(report)
    sys.exit(0 if report.ok else 1)


if __name__ == "__main__":
    main()
