"""Benchmark: what a training snapshot costs over the training data it holds.

The baseline is what a person does without snapshots: ``get_historical_features(entity_df,
refs).to_arrow()`` written to Parquet with ``pyarrow.parquet.write_table``. The candidate is
``store.create_snapshot(name, entity_df, refs, replace=True)`` on the same store: the same
retrieval, plus the entity frame's digest, two fingerprints of the source files, the
result's content digest, a profile of every feature, an atomic (fsynced) write of the file
and the manifest row. Both run in one process, alternating run by run (so they share the
page cache and the machine's noise), after one untimed warm-up each; the figure is the ratio
of the medians, measured in the same run. The goal (issue 15): at most 1.10.

Data: ``bench.datagen`` (seeded), the historical benchmark's repo and features (8 features of
two views; at scale 1.0 one million entity rows over 12.5 million source rows). Once,
untimed, the snapshot is verified and recreated identical, and the parts of its overhead are
timed alone on the result (digest, profile, fingerprints).

    python -m bench.snapshots --scale 0.1 --runs 5
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import datagen, historical
from bench.report import TableReport, render, verdict

GOAL = 1.10
NAME = "bench_snapshot"


def _repo(data_dir: Path) -> Path:
    """The historical benchmark's repo, in a folder of its own (its own registry)."""
    import json

    repo = data_dir / "snapshots_repo"
    (repo / "data").mkdir(parents=True, exist_ok=True)
    (repo / "parity.yaml").write_text(historical.PARITY_YAML)
    (repo / "features.py").write_text(
        historical.FEATURES_PY.format(
            driver_path=json.dumps(str((data_dir / "driver_stats.parquet").resolve())),
            customer_path=json.dumps(str((data_dir / "customer_stats.parquet").resolve())),
        )
    )
    historical.apply_repo(repo)
    return repo


def _timed(fn: Any) -> float:
    began = time.perf_counter()
    fn()
    return time.perf_counter() - began


def run(data_dir: Path, runs: int = 5, only: str | None = None) -> TableReport:
    """``bench.run``'s entry: this benchmark at the scale of ``data_dir``'s data."""
    import pyarrow.parquet as pq

    from parity import FeatureStore
    from parity.monitoring.profile_arrow import profile_table
    from parity.snapshots.digest import table_digest
    from parity.snapshots.fingerprint import fingerprint_sources

    repo = _repo(data_dir)
    entities = str(data_dir / "entity_df.parquet")
    refs = historical.FEATURE_REFS
    store = FeatureStore(repo)
    scratch = tempfile.TemporaryDirectory(prefix="parity-bench-snapshots-")
    out = Path(scratch.name) / "train.parquet"

    def baseline() -> None:
        pq.write_table(store.get_historical_features(entities, refs).to_arrow(), out)

    def candidate() -> None:
        store.create_snapshot(NAME, entities, refs, replace=True)

    try:
        baseline(), candidate()  # warm-up: the engine's connection, the page cache
        base, cand = [], []
        for i in range(runs):
            pair = [(base, baseline), (cand, candidate)]
            for times, fn in pair if i % 2 == 0 else reversed(pair):
                times.append(_timed(fn))
        snap = store.get_snapshot(NAME)
        verified = store.verify_snapshot(NAME).ok
        recreated = store.recreate_snapshot(NAME).identical
        result = pq.read_table(store.config.resolve(snap.path))
        digest_s = _timed(lambda: table_digest(result))
        features = [(p["feature"], _dtype(p["dtype"])) for p in snap.profile]
        profile_s = _timed(lambda: profile_table(result, features))
        views = [store.get_feature_view(v) for v in ("driver_stats", "customer_stats")]
        sources = [store.catalog().source_of(v) for v in views]
        fingerprint_s = _timed(lambda: fingerprint_sources(store, sources))
    finally:
        store.close()
        scratch.cleanup()
    b, c = statistics.median(base), statistics.median(cand)
    ratio = c / b
    report = TableReport(
        f"Training snapshots: {snap.rows:,} rows x {len(refs)} features "
        f"(median of {runs}, alternating)",
        headers=("", "median s", "min s", "x baseline", "target", "met"),
        about=[
            f"data: {data_dir} ({snap.rows:,} entity rows); file {snap.path}",
            "baseline: get_historical_features(...).to_arrow() + pyarrow.parquet.write_table",
        ],
    )
    report.rows.append(("baseline", f"{b:.3f}", f"{min(base):.3f}", "1.00", "", ""))
    report.rows.append(
        (
            "create_snapshot",
            f"{c:.3f}",
            f"{min(cand):.3f}",
            f"{ratio:.3f}",
            f"<= {GOAL:.2f}",
            verdict(ratio <= GOAL),
        )
    )
    for label, seconds in (
        ("  of which: content digest", digest_s),
        ("  of which: profile", profile_s),
        ("  of which: source fingerprints (x2)", fingerprint_s * 2),
    ):
        report.rows.append((label, f"{seconds:.3f}", "", f"{seconds / b:.3f}", "", ""))
    report.notes.append(
        f"ratio of the fastest runs: {min(cand) / min(base):.3f} (the machine's noise shows "
        "in the spread between median and minimum)"
    )
    report.check = verified and recreated
    report.check_lines.append(
        f"verify: {'ok' if verified else 'FAILED'}; recreate: "
        f"{'identical' if recreated else 'NOT identical'}"
    )
    return report


def _dtype(text: str) -> Any:
    from parity.types import parse

    return parse(text)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--scale", type=float, default=0.1, help="data size (1.0 = 1 M rows)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--data-dir", type=Path, default=datagen.DATA_DIR)
    args = parser.parse_args(argv)
    data_dir = datagen.ensure(args.data_dir.resolve(), scale=args.scale, seed=args.seed)
    report = run(data_dir, runs=args.runs)
    render(report)
    raise SystemExit(0 if report.ok else 1)


if __name__ == "__main__":
    main()
