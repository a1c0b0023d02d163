"""Shared plumbing: run one measurement in a fresh subprocess and summarise repeated runs."""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent  # the project folder, where `-m bench...` runs
CHILD_TIMEOUT_S = 1800


class ChildError(RuntimeError):
    """A benchmark subprocess failed; the message says why."""


@dataclass
class Measurement:
    """One timed run in its own process."""

    wall_s: float
    cpu_s: float  # user + system time of all the process's threads during the call
    peak_rss_kib: int
    baseline_rss_kib: int
    rows: int


@dataclass
class Series:
    """All timed runs of one contender, or the reason it could not run."""

    name: str
    runs: list[Measurement] = field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Whether there is at least one run and no error."""
        return self.error is None and bool(self.runs)

    @property
    def median_s(self) -> float:
        """Median wall time in seconds."""
        return statistics.median(m.wall_s for m in self.runs)

    @property
    def min_s(self) -> float:
        """Fastest wall time in seconds."""
        return min(m.wall_s for m in self.runs)

    @property
    def max_s(self) -> float:
        """Slowest wall time in seconds."""
        return max(m.wall_s for m in self.runs)

    @property
    def median_cpu_s(self) -> float:
        """Median CPU time (user + system) in seconds; less sensitive to other load."""
        return statistics.median(m.cpu_s for m in self.runs)

    @property
    def median_rss_mib(self) -> float:
        """Median of the runs' peak resident set sizes, in MiB."""
        return statistics.median(m.peak_rss_kib for m in self.runs) / 1024

    @property
    def max_rss_mib(self) -> float:
        """Largest peak resident set size over all runs, in MiB."""
        return max(m.peak_rss_kib for m in self.runs) / 1024


def child_env() -> dict[str, str]:
    """Environment for children: the project's ``src`` on the path, so an uninstalled package
    works; an existing PYTHONPATH keeps precedence."""
    env = dict(os.environ)
    paths = [env["PYTHONPATH"]] if env.get("PYTHONPATH") else []
    env["PYTHONPATH"] = os.pathsep.join([*paths, str(ROOT / "src"), str(ROOT)])
    return env


def run_child(module: str, args: list[str], timeout: float = CHILD_TIMEOUT_S) -> dict[str, Any]:
    """Run ``python -m module *args`` and return the JSON object on its last stdout line.

    The child reports failures as ``{"error": "..."}``; those, a crash, or a timeout raise
    ChildError with a readable message.
    """
    cmd = [sys.executable, "-m", module, *args]
    try:
        proc = subprocess.run(
            cmd, cwd=ROOT, env=child_env(), capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired as exc:
        raise ChildError(f"timed out after {timeout:.0f} s: {' '.join(cmd)}") from exc
    payload = _last_json(proc.stdout)
    if payload is None:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-15:]
        raise ChildError(f"exit code {proc.returncode}, no result\n" + "\n".join(tail))
    if payload.get("error"):
        raise ChildError(str(payload["error"]))
    return payload


def _last_json(stdout: str) -> dict[str, Any] | None:
    """The last stdout line that parses as a JSON object, if any."""
    for line in reversed(stdout.strip().splitlines()):
        if line.startswith("{"):
            try:
                value = json.loads(line)
            except ValueError:
                continue
            if isinstance(value, dict):
                return value
    return None


def peak_rss_kib() -> int:
    """This process's peak resident set size so far, in KiB.

    Reads ``VmHWM`` from /proc/self/status on Linux. ``ru_maxrss`` is only the fallback: Linux
    carries it over from the parent across fork and exec, so a child of a large parent would
    report the parent's peak instead of its own.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def measure(
    call: Callable[[], Any], rows: Callable[[Any], int] = lambda table: table.num_rows
) -> dict[str, Any]:
    """Time ``call()`` and record peak memory; ``rows(result)`` counts what it produced
    (by default the ``num_rows`` of the table it returns)."""
    baseline = peak_rss_kib()
    cpu_started = _cpu_s()
    started = time.perf_counter()
    result = call()
    wall = time.perf_counter() - started
    return {
        "wall_s": wall,
        "cpu_s": _cpu_s() - cpu_started,
        "peak_rss_kib": peak_rss_kib(),
        "baseline_rss_kib": baseline,
        "ru_maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "rows": rows(result),
    }


def _cpu_s() -> float:
    """User plus system CPU seconds used by this process so far, all threads."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def emit(payload: dict[str, Any]) -> None:
    """Print a child's result as one JSON line on stdout."""
    sys.stdout.flush()
    print(json.dumps(payload), flush=True)


def finish_child(kind: str, compute: Callable[[], dict[str, Any]]) -> None:
    """Run a child's measurement, print its payload (or ``{"error": ...}``) and exit."""
    try:
        payload = compute()
    except ChildError as exc:
        payload = {"error": str(exc)}
    except Exception as exc:
        frames = traceback.format_exception(exc)[-6:]
        payload = {"error": f"{kind} run raised {type(exc).__name__}: {exc}\n" + "".join(frames)}
    emit(payload)
    sys.exit(1 if "error" in payload else 0)


def to_measurement(payload: dict[str, Any]) -> Measurement:
    """Build a Measurement from a child's JSON result."""
    return Measurement(
        wall_s=float(payload["wall_s"]),
        cpu_s=float(payload["cpu_s"]),
        peak_rss_kib=int(payload["peak_rss_kib"]),
        baseline_rss_kib=int(payload["baseline_rss_kib"]),
        rows=int(payload["rows"]),
    )


RUNTIME_MODULES = (
    "pyarrow",
    "duckdb",
    "parity.store",
    "parity.registry",
    "parity.registry.apply",
    "parity.query.online",
    "parity.query.historical",
    "parity.ingest",
    "parity.offline.duckdb.engine",
    "parity.online.sqlite.store",
    "parity.online.redis.async_reads",
)
"""What a running application has loaded: ``import parity`` itself loads none of it (so
``parity --help`` stays fast), and a benchmark of an operation must not time its imports."""


def preload_parity() -> None:
    """Import Parity's runtime modules before timing (``bench.startup`` times imports)."""
    import importlib

    for name in RUNTIME_MODULES:
        importlib.import_module(name)
