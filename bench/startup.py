"""Benchmark: start-up time of ``parity --help``, ``import parity`` and ``parity serve``.

Every measure is a fresh process started with ``subprocess.Popen``, timed from just before
the start to its end (wall seconds; CPU seconds are the child's user + system time, from
``RUSAGE_CHILDREN``). The contenders are interleaved: each round runs every contender once,
the order reversed every other round; one untimed round first (it warms the file cache),
then ``--runs`` timed rounds (15), medians over them.

- ``parity --help`` (the venv's console script) against ``python -c "import typer, rich"`` on
  the same interpreter: what the CLI costs on top of the libraries it is built on. Goal: its
  median at most 1.5x the reference's median, both from the same session.
- ``python -c "import parity"`` against ``python -c "pass"`` (a bare interpreter): reported,
  no goal.
- ``parity serve``: a repo made by ``parity init demo`` in a temporary folder and applied once
  (untimed); then per round ``parity serve --repo <repo> --port <free loopback port>`` with 1
  and with 2 workers, ``GET /health`` every 10 ms (at most 60 s), seconds from the start to
  the first 200. With 2 workers the benchmark then waits for both workers to log "Application
  startup complete", holds 1 s more and reads the server's log for a worker lost or replaced
  (uvicorn's "Child process [...] died", "killed", "restart", "failed to start", or more
  "Started server process" lines than workers). The server is stopped with SIGTERM and waited
  for (at most 30 s); a process of its group still running 5 s after it exited is reported
  (and killed). Goal: 1 worker, median under 2 s.

    python -m bench.startup --runs 15
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import platform
import re
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.harness import ROOT, ChildError, child_env
from bench.report import TableReport, render, verdict
from bench.serve import free_port

RUNS = 15
HELP_RATIO_GOAL = 1.5  # parity --help median over the reference's median, at most
SERVE_GOAL_S = 2.0  # 1 worker: median seconds to the first 200 on /health, under
HOST = "127.0.0.1"
POLL_S = 0.01  # between two /health requests
SERVE_TIMEOUT_S = 60.0  # from the start to the first 200 (and to every worker started)
HOLD_S = 1.0  # with several workers: time left to the supervisor to lose one, after all are up
STOP_TIMEOUT_S = 30.0  # from SIGTERM to the server's exit
LEFT_GRACE_S = 5.0  # after the server's exit, for the rest of its process group to end
COMMAND_TIMEOUT_S = 120.0
STARTED = "Application startup complete"  # uvicorn's line, once per worker
LOST_WORKER = re.compile(r"died|killed|restart|failed to start|not ready in time", re.IGNORECASE)
REFERENCE, PARITY = "reference", "parity"


@dataclass
class Timings:
    """The runs of one contender: wall (and CPU) seconds per round, or why it stopped."""

    label: str
    side: str  # REFERENCE or PARITY, for ``only``
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    error: str | None = None
    # parity serve only, per round: seconds until every worker started (None: not in time),
    # seconds from SIGTERM to exit, and the log lines telling of a worker lost or replaced.
    all_up: list[float | None] = field(default_factory=list)
    stop: list[float] = field(default_factory=list)
    lost: list[list[str]] = field(default_factory=list)
    exit_codes: list[int] = field(default_factory=list)
    left: list[str] = field(default_factory=list)  # processes still running after the exit

    @property
    def ok(self) -> bool:
        return self.error is None and bool(self.wall)


def load_line() -> str:
    """The CPU count and the load average, to judge how noisy the figures are."""
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"{os.cpu_count()} CPUs, load average {load}"


def parity_script() -> Path:
    """The venv's ``parity`` console script, beside this interpreter."""
    return Path(sys.executable).parent / "parity"


def _children_cpu_s() -> float:
    """User + system seconds of this process's children that have been waited for."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _tail(text: str, lines: int = 10) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


# --- one command to its end --------------------------------------------------------------------


def time_command(cmd: list[str]) -> tuple[float, float]:
    """Run ``cmd`` to its end in a fresh process: (wall s, CPU s); ChildError if it fails."""
    with tempfile.TemporaryFile() as out:
        cpu = _children_cpu_s()
        started = time.perf_counter()
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env=child_env(), stdin=subprocess.DEVNULL, stdout=out, stderr=out
        )
        try:
            code = proc.wait(timeout=COMMAND_TIMEOUT_S)
        except subprocess.TimeoutExpired as exc:
            proc.kill()
            proc.wait()
            raise ChildError(
                f"`{shlex.join(cmd)}` timed out after {COMMAND_TIMEOUT_S:g} s"
            ) from exc
        wall = time.perf_counter() - started
        cpu = _children_cpu_s() - cpu
        if code != 0:
            out.seek(0)
            text = out.read().decode(errors="replace")
            raise ChildError(f"`{shlex.join(cmd)}` exited with {code}:\n{_tail(text)}")
    return wall, cpu


# --- parity serve ------------------------------------------------------------------------------


def make_repo(folder: Path) -> Path:
    """``parity init demo`` in ``folder``, then ``parity apply``; return the repo folder."""
    repo = folder / "demo"
    for args in (["init", "demo", "--dir", str(repo)], ["apply", "--repo", str(repo)]):
        cmd = [str(parity_script()), *args]
        proc = subprocess.run(
            cmd, cwd=folder, env=child_env(), capture_output=True, text=True, timeout=300
        )
        if proc.returncode != 0:
            raise ChildError(
                f"`{shlex.join(cmd)}` exited with {proc.returncode}:\n"
                + _tail(proc.stderr or proc.stdout)
            )
    return repo


def _health(port: int) -> int | None:
    """The status of one ``GET /health``, or None when nothing answers yet."""
    conn = http.client.HTTPConnection(HOST, port, timeout=2)
    try:
        conn.request("GET", "/health")
        return conn.getresponse().status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()


def _first_200(proc: subprocess.Popen[bytes], port: int, started: float, log: Path) -> float:
    """Seconds from ``started`` to the first 200 on /health, polling every POLL_S."""
    deadline = started + SERVE_TIMEOUT_S
    while True:
        if proc.poll() is not None:
            raise ChildError(
                f"parity serve exited with {proc.returncode} before answering:\n"
                + _tail(log.read_text(errors="replace"))
            )
        if _health(port) == 200:
            return time.perf_counter() - started
        if time.perf_counter() > deadline:
            raise ChildError(
                f"parity serve: no 200 on /health within {SERVE_TIMEOUT_S:g} s:\n"
                + _tail(log.read_text(errors="replace"))
            )
        time.sleep(POLL_S)


def _all_up(proc: subprocess.Popen[bytes], workers: int, started: float, log: Path) -> float | None:
    """Seconds from ``started`` until every worker logged its start; None if not in time."""
    deadline = started + SERVE_TIMEOUT_S
    while time.perf_counter() < deadline and proc.poll() is None:
        if log.read_text(errors="replace").count(STARTED) >= workers:
            return time.perf_counter() - started
        time.sleep(POLL_S)
    return None


def _stop(proc: subprocess.Popen[bytes]) -> float | None:
    """SIGTERM the server and wait: seconds until it exited, None if it had to be killed.

    The server runs in its own process group (``start_new_session``), so a worker left behind
    is killed with the group and reported.
    """
    if proc.poll() is not None:
        return None
    started = time.perf_counter()
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        return None
    return time.perf_counter() - started


def _left_behind(pgid: int) -> list[str]:
    """Processes of the server's group still running (not zombies) LEFT_GRACE_S after it
    exited; they are then killed. (multiprocessing's resource tracker exits just after.)"""
    import psutil

    deadline = time.perf_counter() + LEFT_GRACE_S
    while True:
        alive = []
        for proc in psutil.process_iter(["status", "cmdline"]):
            with contextlib.suppress(OSError, psutil.Error):
                if os.getpgid(proc.pid) == pgid and proc.info["status"] != psutil.STATUS_ZOMBIE:
                    alive.append(f"[{proc.pid}] {' '.join(proc.info['cmdline'] or [])[:120]}")
        if not alive or time.perf_counter() > deadline:
            break
        time.sleep(0.05)
    if alive:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
    return alive


def lost_workers(log_text: str, workers: int) -> list[str]:
    """The log lines that tell of a worker lost or replaced (read before the SIGTERM)."""
    lines = log_text.splitlines()
    found = [line.strip() for line in lines if LOST_WORKER.search(line)]
    started = sum("Started server process" in line for line in lines)
    if started > workers:
        found.append(f"{started} worker processes started for {workers} workers")
    return found


def serve_once(repo: Path, workers: int, log: Path, timings: Timings, record: bool) -> None:
    """Start ``parity serve``, time its first 200 on /health, check its workers, stop it."""
    port = free_port()
    cmd = [str(parity_script()), "serve", "--repo", str(repo), "--host", HOST]
    cmd += ["--port", str(port), "--workers", str(workers), "--log-level", "info"]
    with log.open("wb") as out:
        started = time.perf_counter()
        proc = subprocess.Popen(
            cmd,
            cwd=repo,
            env=child_env(),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            first = _first_200(proc, port, started, log)
            all_up = first if workers == 1 else _all_up(proc, workers, started, log)
            if workers > 1:
                time.sleep(HOLD_S)
            text = log.read_text(errors="replace")
        except BaseException:
            _stop(proc)
            _left_behind(proc.pid)
            raise
        stop_s = _stop(proc)
    if stop_s is None:
        raise ChildError(
            f"parity serve did not exit within {STOP_TIMEOUT_S:g} s of SIGTERM (killed):\n"
            + _tail(log.read_text(errors="replace"))
        )
    lost = lost_workers(text, workers)
    if all_up is None:
        lost.append(f"not every worker logged {STARTED!r} within {SERVE_TIMEOUT_S:g} s")
    left = _left_behind(proc.pid)
    if record:
        timings.wall.append(first)
        timings.all_up.append(all_up)
        timings.stop.append(stop_s)
        timings.lost.append(lost)
        timings.exit_codes.append(proc.returncode)
        timings.left.extend(left)


# --- the parent --------------------------------------------------------------------------------


def run(data_dir: Path | None = None, runs: int = RUNS, only: str | None = None) -> TableReport:
    """Run the start-up benchmark; return its report.

    ``data_dir`` is not used (nothing here reads the benchmark data). ``only`` is None for
    everything, "reference" for the bare interpreter and ``import typer, rich`` alone, or
    "parity" for Parity's commands alone.
    """
    before = load_line()
    py = sys.executable
    commands = {
        "pass": [py, "-c", "pass"],
        "typer": [py, "-c", "import typer, rich"],
        "help": [str(parity_script()), "--help"],
        "import": [py, "-c", "import parity"],
    }
    timings = {
        "pass": Timings('python -c "pass"', REFERENCE),
        "typer": Timings('python -c "import typer, rich" (reference)', REFERENCE),
        "help": Timings("parity --help", PARITY),
        "import": Timings('python -c "import parity"', PARITY),
        "serve1": Timings("parity serve, 1 worker: first 200 on /health", PARITY),
        "serve2": Timings("parity serve, 2 workers: first 200 on /health", PARITY),
    }
    active = [key for key, t in timings.items() if only in (None, t.side)]
    if any(timings[key].side == PARITY for key in active) and not parity_script().is_file():
        for key in active:
            if timings[key].side == PARITY:
                timings[key].error = f"no console script at {parity_script()} (`make install`)"
    with tempfile.TemporaryDirectory(prefix="parity-bench-startup-") as tmp:
        folder = Path(tmp)
        repo = folder / "demo"
        serves = [key for key in active if key.startswith("serve") and not timings[key].error]
        if serves:
            try:
                repo = make_repo(folder)
            except ChildError as exc:
                for key in serves:
                    timings[key].error = f"setup: {exc}"
        for round_ in range(runs + 1):  # round 0 warms up, untimed
            order = active if round_ % 2 else active[::-1]
            for key in order:
                t = timings[key]
                if t.error:
                    continue
                try:
                    if key.startswith("serve"):
                        workers = int(key.removeprefix("serve"))
                        log = folder / f"serve_{workers}_{round_}.log"
                        serve_once(repo, workers, log, t, record=round_ > 0)
                        continue
                    wall, cpu = time_command(commands[key])
                except ChildError as exc:
                    t.error = str(exc)
                    continue
                if round_ > 0:
                    t.wall.append(wall)
                    t.cpu.append(cpu)
    return _report(timings, runs, only, before, load_line())


def _med(values: list[float]) -> float:
    return statistics.median(values)


def _cells(t: Timings, target: str = "", met: bool | None = None, cpu: bool = True) -> tuple:
    """A contender's row: runs, median, min, max, CPU, target and verdict."""
    if not t.ok:
        status = "FAILED" if t.error else "not run"
        return (t.label, "0", status, "", "", "", target, verdict(None) if target else "")
    return (
        t.label,
        str(len(t.wall)),
        f"{_med(t.wall):.3f}",
        f"{min(t.wall):.3f}",
        f"{max(t.wall):.3f}",
        f"{_med(t.cpu):.3f}" if cpu and t.cpu else "",
        target,
        verdict(met) if target else "",
    )


def _ratio(label: str, cand: Timings, ref: Timings, goal: float | None = None) -> tuple:
    """Candidate over reference: of medians, of minimums and of median CPU seconds."""
    target = f"<= {goal:g}x" if goal else ""
    if not (cand.ok and ref.ok):
        return (label, "", "-", "", "", "", target, verdict(None) if goal else "")
    ratio = _med(cand.wall) / _med(ref.wall)
    return (
        label,
        "",
        f"{ratio:.2f}x",
        f"{min(cand.wall) / min(ref.wall):.2f}x",
        "",
        f"{_med(cand.cpu) / _med(ref.cpu):.2f}x",
        target,
        verdict(ratio <= goal) if goal else "",
    )


def _paired(cand: Timings, ref: Timings) -> float | None:
    """Median over the rounds of candidate / reference of the same round."""
    if not (cand.ok and ref.ok) or len(cand.wall) != len(ref.wall):
        return None
    return _med([c / r for c, r in zip(cand.wall, ref.wall, strict=True)])


def _report(
    timings: dict[str, Timings], runs: int, only: str | None, before: str, after: str
) -> TableReport:
    t = timings
    report = TableReport(
        "Start-up: parity --help, import parity, parity serve to its first answer",
        headers=("", "runs", "median s", "min s", "max s", "CPU s (median)", "target", "verdict"),
        about=[
            f"Fresh processes, interleaved (one of each per round, the order reversed every other"
            f" round), one untimed warm-up round, then {runs} timed; medians. Interpreter"
            f" {sys.executable} (Python {platform.python_version()}), {os.cpu_count()} CPUs.",
            f"parity serve: a `parity init demo` repo (SQLite online store) applied once; GET"
            f" /health every {POLL_S * 1000:g} ms from the process start to the first 200 (at"
            f" most {SERVE_TIMEOUT_S:g} s); then SIGTERM.",
        ],
    )
    report.rows.extend(
        [
            _cells(t["pass"]),
            _cells(t["typer"]),
            _cells(t["help"]),
            _ratio("parity --help / reference", t["help"], t["typer"], HELP_RATIO_GOAL),
            _cells(t["import"]),
            _ratio('import parity / python -c "pass"', t["import"], t["pass"]),
        ]
    )
    if only != REFERENCE:
        one, two = t["serve1"], t["serve2"]
        met = _med(one.wall) < SERVE_GOAL_S if one.ok else None
        report.rows.append(_cells(one, f"< {SERVE_GOAL_S:g} s", met, cpu=False))
        report.rows.append(_cells(two, cpu=False))
        up = [s for s in two.all_up if s is not None]
        if two.ok and up:
            report.rows.append(_seconds("parity serve, 2 workers: every worker started", up))
        for workers, serve in ((1, one), (2, two)):
            if serve.ok:
                label = (
                    f"parity serve, {workers} worker{'s' if workers > 1 else ''}: SIGTERM to exit"
                )
                report.rows.append(_seconds(label, serve.stop))
        if two.ok:
            kept = sum(not lines for lines in two.lost)
            word = "yes" if kept == len(two.lost) else f"no: {len(two.lost) - kept} lost one"
            cells = ("parity serve, 2 workers: kept both workers", str(len(two.lost)), word)
            report.rows.append((*cells, "", "", "", "", ""))
            bad = next((lines for lines in two.lost if lines), None)
            if bad:
                report.notes.append(
                    "2 workers, first run that lost a worker: " + " | ".join(bad[:5])
                )
        for workers, serve in ((1, one), (2, two)):
            codes = sorted(set(serve.exit_codes) - {0})
            if codes:
                report.notes.append(
                    f"parity serve, {workers} worker(s): exit codes after SIGTERM {codes}"
                )
            if serve.left:
                report.notes.append(
                    f"parity serve, {workers} worker(s): {len(serve.left)} process(es) still"
                    f" running {LEFT_GRACE_S:g} s after the server exited (killed): {serve.left[0]}"
                )
    report.errors.extend(f"{x.label}: {x.error}" for x in timings.values() if x.error)
    paired = []
    help_ratio = _paired(t["help"], t["typer"])
    if help_ratio is not None:
        paired.append(f"parity --help / reference {help_ratio:.2f}x")
    import_ratio = _paired(t["import"], t["pass"])
    if import_ratio is not None:
        extra = _med([a - b for a, b in zip(t["import"].wall, t["pass"].wall, strict=True)])
        paired.append(
            f"import parity / pass {import_ratio:.2f}x (import parity costs {extra * 1000:.0f} ms"
            " over a bare interpreter)"
        )
    if paired:
        report.notes.append(
            "paired ratios (each run over the same round's), median: " + "; ".join(paired)
        )
    report.notes.append(f"before the runs: {before}; after: {after}")
    return report


def _seconds(label: str, values: list[float]) -> tuple:
    """A row of seconds without CPU, target or verdict."""
    return (
        label,
        str(len(values)),
        f"{_med(values):.3f}",
        f"{min(values):.3f}",
        f"{max(values):.3f}",
        "",
        "",
        "",
    )


def main(argv: list[str] | None = None) -> None:
    """Command line: run the start-up benchmark and print its table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--runs", type=int, default=RUNS, help="timed rounds, one run of each contender per round"
    )
    parser.add_argument("--only", choices=(REFERENCE, PARITY), help="run one side")
    parser.add_argument(
        "--data-dir", type=Path, help="not used (no data needed); accepted like the others"
    )
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    print(f"before: {load_line()}\n")
    report = run(args.data_dir, args.runs, args.only)
    render(report)
    print(f"after: {load_line()}")
    sys.exit(0 if report.ok else 1)


if __name__ == "__main__":
    main()
