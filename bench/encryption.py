"""Benchmark: materialization throughput with two ``encrypt=True`` features against none.

Two repos over the same generated Parquet file (one row per entity, 8 features: 6 floats,
2 strings), identical but for ``encrypt=True`` on one float and one string in the second.
Each round materializes the whole window of both into an empty SQLite online store (the
file deleted first), the order alternating round by round; medians over the rounds, their
ratio in the same run. Then (untimed) 1,000 random entities are read back from both and
must be equal, and the encrypted store's file must not hold the strings in plaintext.
The goal: encryption costs at most 20% of the throughput (ratio of medians <= 1.20).

    python -m bench.encryption --runs 3 --rows 200000
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench import datagen
from bench.report import TableReport, render, verdict

RUNS = 5
ROWS = 200_000
GOAL = 1.20  # encrypted / plain, medians of materialization time
START = datetime(2024, 1, 1, tzinfo=UTC)
SIDES = ("plain", "encrypted")

FEATURES = """
from datetime import timedelta
from parity import Entity, FeatureView, Field, FileSource, Float64, Int64, String
user = Entity(name="user", join_keys=["user_id"], dtype=Int64)
src = FileSource(name="users", path={path!r})
users = FeatureView(name="users", entities=[user], source=src, ttl=timedelta(days=3650),
    schema=[Field(name="f0", dtype=Float64{enc}), Field(name="f1", dtype=Float64),
            Field(name="f2", dtype=Float64), Field(name="f3", dtype=Float64),
            Field(name="f4", dtype=Float64), Field(name="f5", dtype=Float64),
            Field(name="name", dtype=String{enc}), Field(name="city", dtype=String)])
"""
YAML = """\
project: bench_encryption
registry: data/registry.db
offline_store: { type: duckdb }
online_store: { type: sqlite, path: data/online.db }
"""


def make_data(folder: Path, rows: int, seed: int = 7) -> Path:
    """One row per user: 6 random floats, a unique name and one of 50 cities."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = folder / f"users_{rows}.parquet"
    if path.exists():
        return path
    rng = np.random.default_rng(seed)
    cols: dict[str, Any] = {"user_id": pa.array(np.arange(1, rows + 1), pa.int64())}
    stamps = START + timedelta(seconds=1) * rng.integers(0, 86_400 * 30, rows)
    cols["event_timestamp"] = pa.array(stamps, pa.timestamp("us", tz="UTC"))
    for i in range(6):
        cols[f"f{i}"] = pa.array(rng.random(rows))
    cols["name"] = pa.array([f"person-{i:08d}-{i * 7919 % 100_003:06d}" for i in range(rows)])
    cols["city"] = pa.array([f"city-{i % 50}" for i in range(rows)])
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(cols), path)
    return path


def make_repo(folder: Path, data: Path, encrypted: bool) -> Path:
    import base64
    import json
    import os

    repo = folder / ("repo_encrypted" if encrypted else "repo_plain")
    (repo / "data").mkdir(parents=True, exist_ok=True)
    yaml = YAML
    if encrypted:
        key = base64.b64encode(os.urandom(32)).decode()
        (repo / "keys.json").write_text(json.dumps({"active": "k1", "keys": {"k1": key}}))
        yaml += "encryption: { key_file: keys.json }\n"
    (repo / "parity.yaml").write_text(yaml)
    enc = ", encrypt=True" if encrypted else ""
    (repo / "features.py").write_text(FEATURES.format(path=str(data.resolve()), enc=enc))
    return repo


def empty(repo: Path) -> None:
    db = repo / "data" / "online.db"
    for path in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
        path.unlink(missing_ok=True)


def one_run(repo: Path) -> tuple[float, int]:
    """Seconds to materialize the whole window into an empty store, and the keys written."""
    from parity import FeatureStore

    empty(repo)
    with FeatureStore(repo) as store:
        store.apply()
        store.catalog()  # the registry read, outside the timing
        gc.collect()
        began = time.perf_counter()
        result = store.materialize(START - timedelta(days=1), START + timedelta(days=31))
        seconds = time.perf_counter() - began
    return seconds, result.stored


def check(repos: dict[str, Path], rows: int) -> list[str]:
    """Equal answers from both stores; no plaintext name in the encrypted store's file."""
    from parity import FeatureStore

    ids = random.Random(3).sample(range(1, rows + 1), min(1_000, rows))
    refs = [f"users:{f}" for f in ("f0", "f1", "name", "city")]
    answers = {}
    for side, repo in repos.items():
        with FeatureStore(repo) as store:
            answers[side] = store.get_online_features(refs, entities={"user_id": ids}).to_dict()
    problems = []
    if answers["plain"] != answers["encrypted"]:
        problems.append("the encrypted store answers differently from the plain one")
    raw = b"".join(
        p.read_bytes() for p in (repos["encrypted"] / "data").glob("online.db*") if p.is_file()
    )
    if b"person-00000001" in raw:
        problems.append("a name is in plaintext in the encrypted store's file")
    return problems


def run(data_dir: Path, runs: int = RUNS, only: str | None = None, rows: int = ROWS) -> TableReport:
    """Run the encryption benchmark (its own data under ``data_dir``); return its report."""
    folder = data_dir / "encryption"
    data = make_data(folder, rows)
    repos = {side: make_repo(folder, data, side == "encrypted") for side in SIDES}
    report = TableReport(
        f"Encryption at rest: materialization of {rows:,} entities, 2 of 8 features encrypted"
        " vs none (SQLite online store)",
        headers=("", "no encryption", "2 encrypted", "target", "met"),
        about=[
            "store.materialize of the whole window into an empty SQLite store, in process;"
            f" {runs} round(s), the order alternating, medians. Encrypted: one Float64 and one"
            " String feature, sealed together into one AES-256-GCM value per record.",
        ],
    )
    if only == "reference":  # both sides are Parity: there is no reference to run alone
        report.notes.append("skipped: --only reference (both sides are Parity)")
        return report
    times: dict[str, list[float]] = {side: [] for side in SIDES}
    stored: dict[str, int] = {}
    try:
        for r in range(runs):
            for side in SIDES if r % 2 == 0 else SIDES[::-1]:
                seconds, stored[side] = one_run(repos[side])
                times[side].append(seconds)
    except Exception as exc:
        report.errors.append(f"{type(exc).__name__}: {exc}")
        return report
    med = {side: statistics.median(times[side]) for side in SIDES}
    ratio = med["encrypted"] / med["plain"]
    report.rows.append(("median seconds", f"{med['plain']:.2f}", f"{med['encrypted']:.2f}", "", ""))
    report.rows.append(
        (
            "entities / s",
            f"{stored['plain'] / med['plain']:,.0f}",
            f"{stored['encrypted'] / med['encrypted']:,.0f}",
            "",
            "",
        )
    )
    report.rows.append(
        ("time ratio", "1.00", f"{ratio:.3f}", f"<= {GOAL:.2f}", verdict(ratio <= GOAL))
    )
    problems = check(repos, rows)
    report.check = not problems
    report.check_lines = problems or ["both stores answer 1,000 random entities alike"]
    report.notes.append(
        "runs (s): "
        + "; ".join(f"{side} " + ", ".join(f"{t:.2f}" for t in times[side]) for side in SIDES)
    )
    for side in SIDES:
        empty(repos[side])
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=RUNS)
    parser.add_argument("--rows", type=int, default=ROWS)
    parser.add_argument("--data-dir", type=Path, default=datagen.DATA_DIR)
    args = parser.parse_args()
    report = run(args.data_dir.resolve(), runs=args.runs, rows=args.rows)
    render(report)
    raise SystemExit(0 if report.ok else 1)


if __name__ == "__main__":
    main()
