"""Seeded, vectorised generator of the benchmark's Parquet files.

Writes ``driver_stats.parquet`` (10 hourly rows per driver), ``customer_stats.parquet``
(5 daily rows per customer) and ``entity_df.parquet`` (the rows to enrich) into one folder,
plus ``manifest.json`` recording the parameters so that a later call with the same parameters
reuses the files instead of writing them again.

    python -m bench.datagen --scale 0.01
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

DATA_DIR = Path(__file__).resolve().parent / "data"
FORMAT_VERSION = 1  # bump when the generated data changes for the same parameters

N_DRIVERS = 1_000_000
DRIVER_ROWS = 10  # hourly rows per driver
N_CUSTOMERS = 500_000
CUSTOMER_ROWS = 5  # daily rows per customer
N_ENTITY_ROWS = 1_000_000

NULL_FRACTION = 0.01  # share of nulls in every feature column
MISS_FRACTION = 0.05  # share of entity keys outside the generated id ranges
DUP_FRACTION = 0.01  # share of entity rows that repeat another row's keys and time

DRIVER_START = datetime(2024, 1, 1, tzinfo=UTC)
CUSTOMER_START = datetime(2023, 12, 28, tzinfo=UTC)
ENTITY_START = datetime(2023, 12, 31, tzinfo=UTC)
ENTITY_END = datetime(2024, 1, 1, 12, tzinfo=UTC)

US = 1_000_000  # microseconds per second
HOUR_US = 3600 * US
DAY_US = 86_400 * US
TS_TYPE = pa.timestamp("us", tz="UTC")

CITIES = [
    "Amsterdam", "Athens", "Auckland", "Austin", "Bangkok", "Barcelona", "Berlin", "Bogota",
    "Boston", "Brussels", "Budapest", "Buenos Aires", "Cairo", "Cape Town", "Chicago",
    "Copenhagen", "Delhi", "Dubai", "Dublin", "Helsinki", "Hong Kong", "Istanbul", "Jakarta",
    "Johannesburg", "Kyiv", "Lagos", "Lima", "Lisbon", "London", "Los Angeles", "Madrid",
    "Manila", "Melbourne", "Mexico City", "Milan", "Montreal", "Mumbai", "Nairobi", "New York",
    "Oslo", "Paris", "Prague", "Rome", "San Francisco", "Santiago", "Seoul", "Singapore",
    "Stockholm", "Tokyo", "Toronto",
]  # fmt: skip
TIERS = ["bronze", "silver", "gold", "platinum"]

FILES = ("driver_stats.parquet", "customer_stats.parquet", "entity_df.parquet")
MANIFEST = "manifest.json"


def _epoch_us(moment: datetime) -> int:
    """Return a timezone-aware datetime as integer microseconds since the Unix epoch."""
    return int(moment.timestamp()) * US


def _ts(values_us: np.ndarray) -> pa.Array:
    """Turn int64 microseconds since the epoch into a timestamp[us, UTC] array."""
    return pa.array(values_us.astype(np.int64, copy=False), type=TS_TYPE)


def _nullable(values: np.ndarray, rng: np.random.Generator, type_: pa.DataType) -> pa.Array:
    """Build an Arrow array of ``values`` with about NULL_FRACTION of entries null."""
    mask = rng.random(len(values)) < NULL_FRACTION
    return pa.array(values, type=type_, mask=mask)


def _nullable_labels(labels: list[str], codes: np.ndarray, rng: np.random.Generator) -> pa.Array:
    """Build a string array by code lookup into ``labels``, about NULL_FRACTION null."""
    mask = rng.random(len(codes)) < NULL_FRACTION
    indices = pa.array(codes.astype(np.int32), mask=mask)
    return pa.array(labels, type=pa.string()).take(indices)


def _scaled(count: int, scale: float) -> int:
    """Scale an entity count, keeping at least one."""
    return max(1, round(count * scale))


def driver_stats(n_drivers: int, rng: np.random.Generator) -> pa.Table:
    """Hourly driver rows: hours 0..9 from DRIVER_START plus a per-driver offset, shuffled."""
    n = n_drivers * DRIVER_ROWS
    ids = np.repeat(np.arange(1, n_drivers + 1, dtype=np.int64), DRIVER_ROWS)
    offset_us = np.repeat(rng.integers(0, 3600, n_drivers, dtype=np.int64) * US, DRIVER_ROWS)
    hour_us = np.tile(np.arange(DRIVER_ROWS, dtype=np.int64) * HOUR_US, n_drivers)
    event_us = _epoch_us(DRIVER_START) + hour_us + offset_us
    created_us = event_us + rng.integers(0, 601, n, dtype=np.int64) * US
    order = rng.permutation(n)
    return pa.table(
        {
            "driver_id": ids[order],
            "event_timestamp": _ts(event_us[order]),
            "created": _ts(created_us[order]),
            "conv_rate": _nullable(rng.random(n, dtype=np.float32), rng, pa.float32()),
            "acc_rate": _nullable(rng.random(n, dtype=np.float32), rng, pa.float32()),
            "avg_daily_trips": _nullable(rng.integers(0, 1000, n), rng, pa.int64()),
            "rating_count": _nullable(rng.integers(0, 100_000, n, dtype=np.int32), rng, pa.int32()),
            "city": _nullable_labels(CITIES, rng.integers(0, len(CITIES), n), rng),
        }
    )


def customer_stats(n_customers: int, rng: np.random.Generator) -> pa.Table:
    """Daily customer rows: days 0..4 from CUSTOMER_START plus a random time of day, shuffled."""
    n = n_customers * CUSTOMER_ROWS
    ids = np.repeat(np.arange(1, n_customers + 1, dtype=np.int64), CUSTOMER_ROWS)
    day_us = np.tile(np.arange(CUSTOMER_ROWS, dtype=np.int64) * DAY_US, n_customers)
    event_us = _epoch_us(CUSTOMER_START) + day_us + rng.integers(0, 86_400, n) * US
    created_us = event_us + rng.integers(0, 601, n, dtype=np.int64) * US
    order = rng.permutation(n)
    return pa.table(
        {
            "customer_id": ids[order],
            "event_timestamp": _ts(event_us[order]),
            "created": _ts(created_us[order]),
            "current_balance": _nullable(
                (rng.random(n) * 10_000).astype(np.float32), rng, pa.float32()
            ),
            "lifetime_trip_count": _nullable(rng.integers(0, 5000, n), rng, pa.int64()),
            "tier": _nullable_labels(TIERS, rng.integers(0, len(TIERS), n), rng),
        }
    )


def _keys(n: int, n_ids: int, rng: np.random.Generator) -> np.ndarray:
    """Entity keys in 1..n_ids, with about MISS_FRACTION drawn from outside that range."""
    keys = rng.integers(1, n_ids + 1, n, dtype=np.int64)
    miss = rng.random(n) < MISS_FRACTION
    keys[miss] = rng.integers(n_ids + 1, 2 * n_ids + 2, int(miss.sum()), dtype=np.int64)
    return keys


def entity_df(n_rows: int, n_drivers: int, n_customers: int, rng: np.random.Generator) -> pa.Table:
    """Entity rows at whole-second times uniform over ENTITY_START..ENTITY_END, ~1% repeated."""
    driver_ids = _keys(n_rows, n_drivers, rng)
    customer_ids = _keys(n_rows, n_customers, rng)
    span_s = int((ENTITY_END - ENTITY_START).total_seconds())
    event_us = _epoch_us(ENTITY_START) + rng.integers(0, span_s + 1, n_rows) * US
    dup = np.flatnonzero(rng.random(n_rows) < DUP_FRACTION)
    source = rng.integers(0, n_rows, len(dup))
    for column in (driver_ids, customer_ids, event_us):
        column[dup] = column[source]
    return pa.table(
        {
            "driver_id": driver_ids,
            "customer_id": customer_ids,
            "event_timestamp": _ts(event_us),
            "label": rng.integers(0, 2, n_rows, dtype=np.int8),
            "request_id": np.arange(n_rows, dtype=np.int64),
        }
    )


def _manifest(scale: float, seed: int) -> dict[str, object]:
    """The parameters that determine the generated files."""
    return {"format_version": FORMAT_VERSION, "scale": scale, "seed": seed}


def read_manifest(out_dir: Path | str) -> dict[str, Any] | None:
    """The manifest written with the files in ``out_dir``, or None if absent or unreadable."""
    try:
        value = json.loads((Path(out_dir) / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def is_current(out_dir: Path | str, scale: float = 1.0, seed: int = 42) -> bool:
    """Whether ``out_dir`` already holds all files generated with these parameters."""
    recorded = read_manifest(out_dir)
    if recorded is None or not all((Path(out_dir) / name).is_file() for name in FILES):
        return False
    return {key: recorded.get(key) for key in ("format_version", "scale", "seed")} == _manifest(
        scale, seed
    )


def generate(
    out_dir: Path | str = DATA_DIR, scale: float = 1.0, seed: int = 42, force: bool = False
) -> Path:
    """Write the three Parquet files into ``out_dir`` unless they exist with these parameters.

    ``scale`` multiplies the number of drivers, customers and entity rows; each driver keeps 10
    rows and each customer 5. Returns ``out_dir``.
    """
    out = Path(out_dir)
    if not force and is_current(out, scale, seed):
        return out
    out.mkdir(parents=True, exist_ok=True)
    (out / MANIFEST).unlink(missing_ok=True)  # invalid until every file is written
    rng = np.random.default_rng(seed)
    n_drivers, n_customers = _scaled(N_DRIVERS, scale), _scaled(N_CUSTOMERS, scale)
    counts: dict[str, int] = {}
    builders = (
        ("driver_stats.parquet", lambda: driver_stats(n_drivers, rng)),
        ("customer_stats.parquet", lambda: customer_stats(n_customers, rng)),
        (
            "entity_df.parquet",
            lambda: entity_df(_scaled(N_ENTITY_ROWS, scale), n_drivers, n_customers, rng),
        ),
    )
    for name, build in builders:
        table = build()
        pq.write_table(table, out / name)
        counts[name] = table.num_rows
        del table
    manifest = {**_manifest(scale, seed), "rows": counts}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return out


def ensure(out_dir: Path | str = DATA_DIR, scale: float = 1.0, seed: int = 42) -> Path:
    """Generate the data in a subprocess unless current, keeping the caller's memory small."""
    out = Path(out_dir)
    if not is_current(out, scale, seed):
        print(f"generating benchmark data in {out} (scale={scale}, seed={seed}) ...", flush=True)
        cmd = [sys.executable, "-m", "bench.datagen", "--out", str(out), "--scale", str(scale)]
        subprocess.run([*cmd, "--seed", str(seed)], check=True, cwd=Path(__file__).parent.parent)
    return out


def main(argv: list[str] | None = None) -> None:
    """Command line: generate the benchmark data."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DATA_DIR, help="output folder")
    parser.add_argument("--scale", type=float, default=1.0, help="entity count multiplier")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--force", action="store_true", help="regenerate even if current")
    args = parser.parse_args(argv)
    if not args.force and is_current(args.out, args.scale, args.seed):
        print(f"{args.out}: up to date (scale={args.scale}, seed={args.seed})")
        return
    started = time.perf_counter()
    generate(args.out, args.scale, args.seed, force=True)
    print(f"{args.out}: generated in {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
