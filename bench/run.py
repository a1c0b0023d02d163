"""Run every benchmark in bench/ and print its figures next to the reference.

python -m bench.run [--runs N] [--scale S]
    [--only historical,materialize,online,serve,serve_large,aggregates,startup,streams,
            profile,drift,serve_log,governance,masking,encryption,lineage,registry_scale,
            discovery,snapshots,reference,parity]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from collections.abc import Callable
from pathlib import Path

from bench import (
    aggregates,
    datagen,
    discovery,
    drift,
    encryption,
    governance,
    historical,
    lineage,
    masking,
    materialize,
    online,
    profile,
    registry_scale,
    serve,
    serve_large,
    serve_log,
    snapshots,
    startup,
    streams,
)
from bench.report import Report, render

# Each benchmark: run(data_dir, runs=..., only=...) -> report; its own default number of runs.
BENCHMARKS: dict[str, Callable[..., Report]] = {
    "historical": historical.run,
    "materialize": materialize.run,
    "online": online.run,
    "serve": serve.run,
    "serve_large": serve_large.run,
    "aggregates": aggregates.run,
    "startup": startup.run,
    "streams": streams.run,
    "profile": profile.run,
    "drift": drift.run,
    "serve_log": serve_log.run,
    "masking": masking.run,
    "encryption": encryption.run,
    "governance": governance.run,
    "lineage": lineage.run,
    "registry_scale": registry_scale.run,
    "discovery": discovery.run,
    "snapshots": snapshots.run,
}
CONTENDERS = ("reference", "parity")


def _machine() -> str:
    """One line about the machine and its current load, to judge how noisy the figures are."""
    import duckdb

    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{os.cpu_count()} CPUs, load average {load}; Python {platform.python_version()},"
        f" DuckDB {duckdb.__version__}"
    )


def _selection(only: str | None) -> tuple[list[str], str | None]:
    """The benchmarks and the contender (None: both) named by ``--only``."""
    names = [n.strip() for n in (only or "").split(",") if n.strip()]
    unknown = [n for n in names if n not in BENCHMARKS and n not in CONTENDERS]
    if unknown:
        choices = ", ".join([*BENCHMARKS, *CONTENDERS])
        raise SystemExit(f"--only: unknown {', '.join(unknown)} (choose from {choices})")
    benches = [n for n in BENCHMARKS if n in names] or list(BENCHMARKS)
    sides = [n for n in CONTENDERS if n in names]
    return benches, sides[0] if len(sides) == 1 else None


def main(argv: list[str] | None = None) -> None:
    """Command line: generate the data if needed, run the benchmarks, print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--runs", type=int, help="timed runs per contender (default: historical 5, others 3)"
    )
    parser.add_argument("--scale", type=float, default=1.0, help="data size (1.0 = full)")
    parser.add_argument("--seed", type=int, default=42, help="data generator seed")
    parser.add_argument(
        "--only",
        help="comma-separated benchmarks (historical, materialize, online, serve, serve_large,"
        " aggregates, startup, streams, profile, drift, serve_log, governance, masking,"
        " encryption, lineage, registry_scale, discovery, snapshots) and/or"
        " one side"
        " (reference, parity); default: everything",
    )
    parser.add_argument("--data-dir", type=Path, default=datagen.DATA_DIR)
    args = parser.parse_args(argv)
    benches, side = _selection(args.only)
    data_dir = datagen.ensure(args.data_dir.resolve(), scale=args.scale, seed=args.seed)
    print(f"before: {_machine()}\n")
    runs = {} if args.runs is None else {"runs": args.runs}
    reports = [BENCHMARKS[name](data_dir, only=side, **runs) for name in benches]
    for report in reports:
        render(report)
    print(f"after: {_machine()}")
    sys.exit(0 if all(report.ok for report in reports) else 1)


if __name__ == "__main__":
    main()
