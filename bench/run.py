"""Run every benchmark in bench/ and print its figures next to the reference.

python -m bench.run [--runs N] [--scale S] [--only reference|parity]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from collections.abc import Callable
from pathlib import Path

from bench import datagen, historical
from bench.report import BenchReport, render

# Each benchmark: run(data_dir, runs=..., only=...) -> BenchReport.
BENCHMARKS: list[Callable[..., BenchReport]] = [historical.run]


def _machine() -> str:
    """One line about the machine and its current load, to judge how noisy the figures are."""
    import duckdb

    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{os.cpu_count()} CPUs, load average {load}; Python {platform.python_version()},"
        f" DuckDB {duckdb.__version__}"
    )


def main(argv: list[str] | None = None) -> None:
    """Command line: generate the data if needed, run the benchmarks, print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="timed runs per contender")
    parser.add_argument("--scale", type=float, default=1.0, help="data size (1.0 = full)")
    parser.add_argument("--seed", type=int, default=42, help="data generator seed")
    parser.add_argument("--only", choices=("reference", "parity"), help="run one contender")
    parser.add_argument("--data-dir", type=Path, default=datagen.DATA_DIR)
    args = parser.parse_args(argv)
    data_dir = datagen.ensure(args.data_dir.resolve(), scale=args.scale, seed=args.seed)
    print(f"before: {_machine()}\n")
    reports = [bench(data_dir, runs=args.runs, only=args.only) for bench in BENCHMARKS]
    for report in reports:
        render(report)
    print(f"after: {_machine()}")
    sys.exit(0 if all(report.ok for report in reports) else 1)


if __name__ == "__main__":
    main()
