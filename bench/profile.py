"""Benchmark: ``store.profile`` of the ``driver_stats`` source against a hand-written DuckDB
query computing the same statistics on the same Parquet file.

Both run in one process, alternating run by run (so they share the machine's noise and the
page cache), each on its own DuckDB connection kept across runs. The statistics: for the four
numeric features count, nulls, exact distinct, mean, sample std, min, max, seven quantiles
(``quantile_cont``) and 20 equal-width bins; for ``city`` count, nulls, exact distinct and the
10 most frequent values. The reference is what a person would write: one aggregate pass over
``read_parquet``, one ``histogram()`` pass for the bins, one ``GROUP BY`` for the top values.
The goal (issue 13): Parity's median within 1.5x of the reference's. Once, untimed, both
results are compared statistic by statistic.

At scale 1.0 ``driver_stats`` has 10 M rows (1 M drivers x 10 hours).

    python -m bench.profile --scale 0.1 --runs 5
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from pathlib import Path
from typing import Any

from bench import datagen, historical
from bench.report import TableReport, render, verdict

GOAL = 1.5
FEATURES = historical.DRIVER_FEATURES  # conv_rate, acc_rate, avg_daily_trips, rating_count, city
NUMERIC = FEATURES[:4]
QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
BINS = 20
TOP_K = 10


# --- the reference ---------------------------------------------------------------------------


def reference(con: Any, path: Path) -> dict[str, dict[str, Any]]:
    """The hand-written statistics: {feature: {statistic: value}}."""
    scan = f"read_parquet({historical._sql_path(path)})"
    qs = "[" + ", ".join(str(q) for q in QUANTILES) + "]"
    parts = ["count(*)"]
    for c in NUMERIC:
        parts += [
            f"count({c}), count(DISTINCT {c}), avg({c}), stddev_samp({c}), min({c}), max({c}),"
            f" quantile_cont({c}, {qs})"
        ]
    parts.append("count(city), count(DISTINCT city)")
    row = con.execute(f"SELECT {', '.join(parts)} FROM {scan}").fetchone()
    rows, at, out = row[0], 1, {}
    for c in NUMERIC:
        count, distinct, mean, std, lo, hi, quantiles = row[at : at + 7]
        at += 7
        out[c] = {"rows": rows, "nulls": rows - count, "distinct": distinct, "mean": mean,
                  "std": std, "min": float(lo), "max": float(hi), "quantiles": list(quantiles)}  # fmt: skip
    out["city"] = {"rows": rows, "nulls": rows - row[at], "distinct": row[at + 1]}
    bins = ", ".join(
        f"histogram(least(floor(({c} - {out[c]['min']!r}) / ({out[c]['max']!r} - {out[c]['min']!r})"
        f" * {BINS}), {BINS - 1})::INTEGER) FILTER (WHERE {c} IS NOT NULL)"  # least() skips NULL
        for c in NUMERIC
    )
    hist = con.execute(f"SELECT {bins} FROM {scan}").fetchone()
    for c, counts in zip(NUMERIC, hist, strict=True):
        out[c]["histogram"] = [int(counts.get(k, 0)) for k in range(BINS)]
    out["city"]["top"] = [
        (v, int(n))
        for v, n in con.execute(
            f"SELECT city, count(*) AS n FROM {scan} WHERE city IS NOT NULL GROUP BY city"
            f" ORDER BY n DESC, city LIMIT {TOP_K}"
        ).fetchall()
    ]
    return out


def parity_stats(store: Any) -> dict[str, dict[str, Any]]:
    """``store.profile`` of the view (not stored), in the reference's shape."""
    result = store.profile("driver_stats", save=False)
    out = {}
    for r in result.to_pylist():
        s = {"rows": r["rows"], "nulls": r["nulls"], "distinct": r["distinct"]}
        if r["histogram"] is not None:
            s.update(mean=r["mean"], std=r["std"], min=r["min"], max=r["max"])
            s["quantiles"] = [r[f"p{round(q * 100)}"] for q in QUANTILES]
            s["histogram"] = [b["count"] for b in r["histogram"]]
        if r["top"] is not None:
            s["top"] = [(t["value"], t["count"]) for t in r["top"]]
        out[r["feature"]] = s
    return out


def compare(ref: dict[str, dict[str, Any]], got: dict[str, dict[str, Any]]) -> list[str]:
    """What differs (floats within a relative 1e-6: summation order and float32 widening)."""
    problems = []
    for feature, want in ref.items():
        have = got.get(feature, {})
        for key, value in want.items():
            other = have.get(key)
            if isinstance(value, list) and value and isinstance(value[0], float):
                same = len(value) == len(other or []) and all(
                    math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9)
                    for a, b in zip(value, other, strict=True)
                )
            elif isinstance(value, float):
                same = other is not None and math.isclose(value, other, rel_tol=1e-6)
            else:
                same = value == other
            if not same:
                problems.append(f"{feature}.{key}: reference {value!r}, parity {other!r}")
    return problems


# --- the run ---------------------------------------------------------------------------------


def _timed(call: Any) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def run(data_dir: Path, runs: int = 5, only: str | None = None) -> TableReport:
    """``bench.run``'s entry: this benchmark at the scale of ``data_dir``'s data."""
    import duckdb

    from parity import FeatureStore

    path = data_dir / "driver_stats.parquet"
    repo = historical.write_repo(data_dir)
    historical.apply_repo(repo)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    rows = con.execute(f"SELECT count(*) FROM read_parquet({historical._sql_path(path)})")
    n_rows = rows.fetchone()[0]
    report = TableReport(
        "Feature statistics: store.profile vs hand-written DuckDB",
        headers=("", "Parity", "reference", "ratio", "goal", "verdict"),
        about=[
            f"driver_stats: {n_rows:,} rows, 5 features (4 numeric, 1 string); exact distinct,"
            f" 7 quantiles, {BINS} bins, top {TOP_K}; medians of {runs} alternating runs in one"
            " process."
        ],
    )
    times: dict[str, list[float]] = {"parity": [], "reference": []}
    with FeatureStore(repo) as store:
        got = parity_stats(store)  # untimed warm-up and the correctness check
        problems = compare(reference(con, path), got)
        report.check = not problems
        report.check_lines = problems[:10]
        for _ in range(runs):
            if only != "parity":
                times["reference"].append(_timed(lambda: reference(con, path)))
            if only != "reference":
                times["parity"].append(_timed(lambda: parity_stats(store)))
    con.close()
    med = {k: statistics.median(v) if v else None for k, v in times.items()}
    ratio = med["parity"] / med["reference"] if med["parity"] and med["reference"] else None
    report.rows.append(
        (
            "median s",
            "-" if med["parity"] is None else f"{med['parity']:.3f}",
            "-" if med["reference"] is None else f"{med['reference']:.3f}",
            "-" if ratio is None else f"{ratio:.2f}x",
            f"<= {GOAL}x",
            verdict(None if ratio is None else ratio <= GOAL),
        )
    )
    if times["parity"] and times["reference"]:
        pairs = [p / r for p, r in zip(times["parity"], times["reference"], strict=True)]
        report.notes.append(
            f"paired ratios: median {statistics.median(pairs):.2f}x, range"
            f" {min(pairs):.2f}x-{max(pairs):.2f}x; runs (s): parity "
            + ", ".join(f"{t:.2f}" for t in times["parity"])
            + "; reference "
            + ", ".join(f"{t:.2f}" for t in times["reference"])
        )
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="timed runs per contender")
    parser.add_argument("--scale", type=float, default=1.0, help="data size (1.0 = 10 M rows)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--data-dir", type=Path, default=datagen.DATA_DIR)
    parser.add_argument("--only", choices=("reference", "parity"))
    args = parser.parse_args(argv)
    data_dir = datagen.ensure(args.data_dir.resolve(), scale=args.scale, seed=args.seed)
    report = run(data_dir, runs=args.runs, only=args.only)
    render(report)
    raise SystemExit(0 if report.ok else 1)


if __name__ == "__main__":
    main()
