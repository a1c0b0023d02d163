"""Benchmark: small reads' p99 while a 150,000-row read arrives every 1.5 s on the same worker.

Setup as ``bench.serve`` (its child: time-shifted sources, the repo on Redis db 11, both views
materialized). Then one ``parity serve`` with one worker and ``--max-entity-rows 200000`` (so
the large read is allowed); per run, two ``wrk`` rounds of 1-row ``/get-online-features``
requests (``--connections``, default 16), in an order that alternates between runs: one
alone, one while a thread POSTs a read of 150,000 random existing (driver, customer) rows
every 1.5 s (the next one leaves 1.5 s after the previous one left, or when it was answered
if that took longer). The figure is the small reads' p99 with the large reads over their p99
alone, both from the same run; the goal is at most 3x. The large reads' own latency and the
number answered are reported too.

    python -m bench.serve_large --runs 3 --duration 12
"""

from __future__ import annotations

import argparse
import contextlib
import random
import statistics
import sys
import threading
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench import datagen, serve
from bench.harness import ChildError, run_child
from bench.materialize import data_window, empty_store
from bench.report import TableReport, render, verdict

LARGE_ROWS = 150_000
EVERY_S = 1.5
RATIO_GOAL = 3.0
DURATION_S, WARMUP_S = 12.0, 3.0
MAX_ENTITY_ROWS = 200_000


class LargeReads:
    """A thread POSTing one large body every ``every`` seconds until stopped."""

    def __init__(self, port: int, body: bytes, every: float):
        self.port, self.body, self.every = port, body, every
        self.seconds: list[float] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> LargeReads:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(120)

    def _run(self) -> None:
        url = f"http://127.0.0.1:{self.port}{serve.PATH}"
        while not self._stop.is_set():
            began = time.perf_counter()
            request = urllib.request.Request(
                url, data=self.body, headers={"Content-Type": "application/json"}
            )
            try:
                with urllib.request.urlopen(request, timeout=60) as response:
                    response.read()
                self.seconds.append(time.perf_counter() - began)
            except Exception as exc:
                self.failures.append(f"{type(exc).__name__}: {exc}")
            self._stop.wait(max(0.0, self.every - (time.perf_counter() - began)))


def run(
    data_dir: Path,
    runs: int = 3,
    only: str | None = None,
    duration: float = DURATION_S,
    warmup: float = WARMUP_S,
    connections: int = serve.CONNECTIONS,
    threads: int = serve.THREADS,
    seed: int = 7,
) -> TableReport:
    """Run the benchmark on the files in ``data_dir``; return its report (``only`` other than
    None or "parity" skips it: there is no reference side)."""
    report = TableReport(
        f"HTTP serving: 1-row p99 with a {LARGE_ROWS:,}-row read every {EVERY_S:g} s"
        " (parity serve, 1 worker, Redis)",
        headers=("", "alone", f"with {LARGE_ROWS:,}-row reads", "ratio", "target", "met"),
        about=[
            f"wrk -t{threads} -c{connections}, {runs} run(s) of {duration:g} s per case after a"
            f" {warmup:g} s warm-up, the two cases alternating; medians over the runs, the ratio"
            " is the median of each run's ratio (both cases of a run share its machine load).",
        ],
    )
    if only not in (None, "parity"):
        return report
    window = data_window(data_dir)
    shift_s, moved = serve.shifted(window, datetime.now(UTC))
    base = ["--data-dir", str(data_dir), "--window", moved.to_json()]
    folder = serve.serve_dir(data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    alone: list[dict[str, Any]] = []
    mixed: list[dict[str, Any]] = []
    large_s: list[float] = []
    failures: list[str] = []
    try:
        empty_store(data_dir, "redis")
        load = run_child(serve.MODULE, ["--child", "load", *base, "--shift", str(shift_s)])
        report.notes.append(
            f"setup: {load['keys']:,} keys materialized in {load['materialize_s']:.1f} s"
            f" (sources moved forward {timedelta(seconds=shift_s)})"
        )
        script = serve.write_script(folder, moved, 1, seed)
        body = serve._body(serve._entities(moved, LARGE_ROWS, random.Random(seed)))
        server = serve.Server(
            serve.repo_dir(data_dir),
            1,
            folder / "server_large.log",
            extra=("--max-entity-rows", str(MAX_ENTITY_ROWS)),
        )
        try:
            server.wait_ready()
            serve._wrk(server.port, script, warmup, connections, threads)
            with LargeReads(server.port, body, EVERY_S) as large:  # warm the large path too
                serve._wrk(server.port, script, warmup, connections, threads)
            for i in range(runs):
                for with_large in (i % 2 == 0, i % 2 != 0):
                    if with_large:
                        with LargeReads(server.port, body, EVERY_S) as large:
                            mixed.append(
                                serve.measure(server, script, duration, connections, threads)
                            )
                        large_s += large.seconds
                        failures += large.failures
                    else:
                        alone.append(serve.measure(server, script, duration, connections, threads))
        finally:
            server.stop()
    except ChildError as exc:
        report.errors.append(str(exc))
    finally:
        with contextlib.suppress(ChildError):
            empty_store(data_dir, "redis")
    _fill(report, alone, mixed, large_s, failures)
    return report


def _fill(
    report: TableReport,
    alone: list[dict[str, Any]],
    mixed: list[dict[str, Any]],
    large_s: list[float],
    failures: list[str],
) -> None:
    def med(runs: list[dict[str, Any]], key: str, scale: float = 1.0) -> str:
        return f"{statistics.median(r[key] for r in runs) * scale:,.2f}" if runs else "-"

    ratio = None
    if alone and mixed:
        ratio = statistics.median(
            m["p99_us"] / a["p99_us"] for a, m in zip(alone, mixed, strict=False)
        )
    for pct in ("p50", "p90", "p99", "p999"):
        name = "p99.9" if pct == "p999" else pct
        cells = [med(alone, f"{pct}_us", 1e-3), med(mixed, f"{pct}_us", 1e-3)]
        if pct == "p99":
            met = None if ratio is None else ratio <= RATIO_GOAL
            shown = "-" if ratio is None else f"{ratio:.2f}x"
            report.rows.append(
                (f"1 row: {name} ms", *cells, shown, f"<= {RATIO_GOAL:g}x", verdict(met))
            )
        else:
            report.rows.append((f"1 row: {name} ms", *cells, "", "", ""))

    def rps(r: dict[str, Any]) -> float:
        return r["requests"] / (r["duration_us"] / 1e6)

    cells = [f"{statistics.median(map(rps, x)):,.0f}" if x else "-" for x in (alone, mixed)]
    report.rows.append(("1 row: requests/s", *cells, "", "", ""))
    if large_s:
        report.rows.append(
            (
                f"{LARGE_ROWS:,}-row read: median s (max)",
                "",
                f"{statistics.median(large_s):.2f} ({max(large_s):.2f})",
                "",
                "",
                "",
            )
        )
        report.notes.append(f"{len(large_s)} large reads answered during the timed runs")
    failed = sum(r["status_errors"] + r["socket_errors"] + r["timeouts"] for r in alone + mixed)
    if failed:
        report.errors.append(f"{failed:,} small requests failed (non-2xx or socket)")
    if failures:
        report.errors.append(f"{len(failures)} large reads failed: {failures[0]}")


def main(argv: list[str] | None = None) -> None:
    """Command line: run this benchmark alone."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=float, default=DURATION_S)
    parser.add_argument("--warmup", type=float, default=WARMUP_S)
    parser.add_argument("--connections", type=int, default=serve.CONNECTIONS)
    parser.add_argument("--data-dir", type=Path, default=datagen.DATA_DIR)
    parser.add_argument("--scale", type=float, default=1.0, help="data scale to generate")
    args = parser.parse_args(argv)
    data_dir = datagen.ensure(args.data_dir.resolve(), scale=args.scale)
    report = run(
        data_dir, args.runs, None, args.duration, args.warmup, args.connections, serve.THREADS
    )
    render(report)
    sys.exit(0 if report.ok else 1)


if __name__ == "__main__":
    main()
