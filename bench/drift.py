"""Benchmark: drift of one numeric feature, 1 M baseline values against 1 M current values.

- **statistics**: ``parity.monitoring.drift_stats.numeric`` (KS, PSI, JS, Wasserstein over
  10 equal-frequency bins), timed per run against ``scipy.stats.ks_2samp`` alone (the
  reference). Goal: the median under 1 s.
- **equality**: the KS statistic and p-value against ``scipy.stats.ks_2samp`` (to 1e-9, the
  p-value relative), the PSI against a hand computation on the same bins (edges from
  ``np.quantile``, counts from ``np.digitize``, the sum in plain Python with ``math.fsum``),
  the Wasserstein distance against ``scipy.stats.wasserstein_distance`` (relative 1e-9).
  Two cases: the same distribution (p-value near 1, SciPy's Pelz-Good branch) and a shift
  of 0.01 sd (p ~ 1e-8, the Smirnov branch SciPy spends most of a second on).
- **end to end**: ``store.drift(view, baseline, current, features=["x"], save=False)`` on a
  repo whose Parquet source holds both periods (2 M rows; DuckDB reads the ranges). Reported.

    python -m bench.drift --runs 3
"""

from __future__ import annotations

import argparse
import math
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from bench.report import TableReport, render, verdict

N = 1_000_000
GOAL_S = 1.0
TOLERANCE = 1e-9
BINS = 10
EPSILON = 1e-4


def _hand_psi(baseline: np.ndarray, current: np.ndarray) -> float:
    edges = np.unique(np.quantile(baseline, np.arange(1, BINS) / BINS))
    b = np.bincount(np.digitize(baseline, edges), minlength=edges.size + 1)
    c = np.bincount(np.digitize(current, edges), minlength=edges.size + 1)
    terms = []
    for cb, cc in zip(b.tolist(), c.tolist(), strict=True):
        pb = cb / baseline.size if cb else EPSILON
        pc = cc / current.size if cc else EPSILON
        terms.append((pc - pb) * math.log(pc / pb))
    return math.fsum(terms)


def _timed(fn, runs: int) -> tuple[list[float], object]:
    out = None
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return times, out


def _end_to_end(a: np.ndarray, b: np.ndarray, runs: int) -> list[float]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from parity.store import FeatureStore

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "parity.yaml").write_text(
            "project: bench\nregistry: data/registry.db\noffline_store: { type: duckdb }\n"
        )
        (root / "defs.py").write_text(
            "from parity import Entity, FeatureView, Field, FileSource, Float64, Int64\n"
            "e = Entity(name='e', join_keys=['k'], dtype=Int64)\n"
            "s = FileSource(name='s', path='data/s.parquet', timestamp_field='ts')\n"
            "v = FeatureView(name='v', entities=[e], source=s, schema=[Field(name='x', "
            "dtype=Float64)])\n"
        )
        t0 = datetime(2024, 1, 1, tzinfo=UTC)
        step = np.int64(1_000_000)  # one event a second
        ts = np.arange(a.size + b.size, dtype=np.int64) * step + int(t0.timestamp() * 1e6)
        table = pa.table(
            {
                "k": np.arange(a.size + b.size, dtype=np.int64) % 10_000,
                "ts": pa.array(ts, pa.timestamp("us", tz="UTC")),
                "x": np.concatenate([a, b]),
            }
        )
        (root / "data").mkdir()
        pq.write_table(table, root / "data" / "s.parquet")
        split = t0 + timedelta(seconds=a.size)
        with FeatureStore(root) as store:
            store.apply()
            baseline = (t0, split - timedelta(microseconds=1))
            current = (split, split + timedelta(seconds=b.size))
            times, result = _timed(
                lambda: store.drift("v", baseline, current, features=["x"], save=False), runs
            )
            rows = {r["test"]: r for r in result.to_pylist()}  # type: ignore[attr-defined]
            assert rows["ks"]["baseline_rows"] == a.size and rows["ks"]["current_rows"] == b.size
    return times


def run(data_dir: Path | None = None, runs: int = 3, only: str | None = None) -> TableReport:
    """The drift benchmark's report (``data_dir`` and ``only`` unused: it makes its data)."""
    from scipy import stats

    from parity.monitoring import drift_stats

    rng = np.random.default_rng(42)
    report = TableReport(
        f"Drift of one feature, {N:,} vs {N:,} values (seconds, median of {runs})",
        headers=("", "scipy ks_2samp", "Parity (KS+PSI+JS+W)", "target", "verdict"),
        about=["Parity: parity.monitoring.drift_stats.numeric; equality against SciPy/by hand"],
    )
    ok = True
    baseline = rng.normal(0.0, 1.0, N)
    for label, shift in (("same distribution", 0.0), ("shift 0.01 sd", 0.01)):
        current = rng.normal(shift, 1.0, N)
        ref_times, ref = _timed(lambda c=current: stats.ks_2samp(baseline, c), runs)
        got_times, got = _timed(
            lambda c=current: drift_stats.numeric(baseline, c, bins=BINS, epsilon=EPSILON), runs
        )
        figs = {f.test: f for f in got[0]}  # type: ignore[index]
        med = statistics.median(got_times)
        report.rows.append(
            (
                label,
                f"{statistics.median(ref_times):.3f}",
                f"{med:.3f}",
                f"< {GOAL_S:g}",
                verdict(med < GOAL_S),
            )
        )
        d_err = abs(figs["ks"].statistic - ref.statistic)  # type: ignore[attr-defined]
        p_ref = float(ref.pvalue)  # type: ignore[attr-defined]
        p_err = abs(figs["ks"].p_value - p_ref) / max(p_ref, 1e-300)  # type: ignore[operator]
        psi_hand = _hand_psi(baseline, current)
        psi_err = abs(figs["psi"].statistic - psi_hand)
        w_ref = stats.wasserstein_distance(baseline, current)
        w_err = abs(figs["wasserstein"].statistic - w_ref) / w_ref
        fine = max(d_err, p_err, psi_err, w_err) <= TOLERANCE
        ok = ok and fine
        report.check_lines.append(
            f"{label}: D {figs['ks'].statistic:.6g} (|diff| {d_err:.1e}), p {p_ref:.6g} "
            f"(rel diff {p_err:.1e}), PSI {psi_hand:.6g} (|diff| {psi_err:.1e}), "
            f"W {w_ref:.6g} (rel diff {w_err:.1e}): {'equal' if fine else 'DIFFERENT'}"
        )
    e2e = _end_to_end(baseline, rng.normal(0.01, 1.0, N), runs)
    report.rows.append(
        ("store.drift end to end (DuckDB reads)", "", f"{statistics.median(e2e):.3f}", "", "")
    )
    report.check = ok
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    report = run(None, runs=args.runs)
    render(report)
    raise SystemExit(0 if report.ok else 1)


if __name__ == "__main__":
    main()
