"""``parity monitor run | report``: the monitor on a schedule, and its report.

``run`` evaluates freshness, checks and drift every ``--every`` (default parity.yaml's
``monitoring.every``, 60 s) until SIGTERM or Ctrl-C, posts new and resolved alerts to the
configured webhooks and, with ``--metrics-port``, serves the Prometheus gauges. ``--once``
runs one round and exits: 0 when nothing is firing, 3 when an alert is (for cron and CI).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from parity.cli import render
from parity.cli.common import (
    RepoOption,
    VerboseOption,
    configure_logging,
    handles_errors,
    open_store,
    require_registry,
)

if TYPE_CHECKING:
    from parity.monitoring.runner import MonitorRound

app = typer.Typer(
    name="monitor",
    help="Evaluate freshness, checks and drift on a schedule, and report on them.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

FIRING_EXIT = 3
"""``--once``'s exit status when an alert is firing after the round."""


@app.command("run")
@handles_errors
def run(
    every: Annotated[
        str | None,
        typer.Option("--every", help="Time between rounds (e.g. 60s, 5m; default: parity.yaml)."),
    ] = None,
    once: Annotated[bool, typer.Option("--once", help="Run one round and exit.")] = False,
    metrics_port: Annotated[
        int | None,
        typer.Option("--metrics-port", min=0, help="Serve the Prometheus gauges on this port."),
    ] = None,
    metrics_host: Annotated[
        str, typer.Option("--metrics-host", help="Address the metrics port binds.")
    ] = "127.0.0.1",
    as_json: Annotated[
        bool, typer.Option("--json", help="Print each round as one line of JSON.")
    ] = False,
    log_level: Annotated[str, typer.Option("--log-level", help="debug, info, warning...")] = "info",
    repo: RepoOption = Path("."),
    verbose: VerboseOption = False,
) -> None:
    """Evaluate the monitoring rules every --every until SIGTERM or Ctrl-C (--once: one
    round, exit status 3 when an alert is firing)."""
    configure_logging(log_level)
    with open_store(repo) as store:
        require_registry(store)
        runner = store.monitor_runner(
            every=every, metrics_port=None if once else metrics_port, metrics_host=metrics_host
        )
        if once:
            done = runner.run_once()
            _show(done, as_json)
            if done.firing:
                raise typer.Exit(FIRING_EXIT)
            return
        err = render.console(stderr=True)
        seen = [0]

        def started(r: Any) -> None:
            where = f", metrics on {metrics_host}:{r.metrics_port}" if r.metrics_port else ""
            err.print(
                f"monitoring {store.project!r} every {r.every.total_seconds():g} s{where} "
                "(Ctrl-C or SIGTERM to stop)",
                highlight=False,
            )

        def each_round(done: MonitorRound) -> None:
            seen[0] += 1
            _show(done, as_json)

        runner.on_round = each_round
        runner.run(started=started)
        err.print(f"stopped after {seen[0]:,} round(s)", highlight=False)


def _show(done: MonitorRound, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(done.to_json(), default=str))
        return
    from rich.text import Text

    out = render.console()
    firing = done.firing
    line = Text(
        f"{done.time.isoformat(sep=' ', timespec='seconds')}: "
        f"{len(done.freshness or [])} view(s), {len(done.checks)} checked, "
        f"{len(done.drift)} drift-tested; {len(firing)} firing "
        f"({len(done.new)} new), {len(done.resolved)} resolved"
    )
    out.print(line)
    for a in done.alerts:
        if a.new or a.state == "resolved":
            style = "red" if a.state == "firing" else "green"
            tag = "FIRING" if a.state == "firing" else "resolved"
            out.print(Text(f"  {tag} {a.record.rule} {a.record.message}", style=style))
    for e in done.errors:
        out.print(Text(f"  error: {e}", style="yellow"))


@app.command("report")
@handles_errors
def report(
    out: Annotated[Path, typer.Option("--out", "-o", help="The HTML file to write.")] = Path(
        "report.html"
    ),
    views: Annotated[
        str | None, typer.Option("--views", help="Comma-separated views (default: all).")
    ] = None,
    window: Annotated[
        str,
        typer.Option(
            "--window",
            help="Length of the current window (up to each source's newest event) and of "
            "the baseline before it.",
        ),
    ] = "1d",
    baseline: Annotated[
        str | None, typer.Option("--baseline", help="START..END instead of the window before.")
    ] = None,
    current: Annotated[
        str | None, typer.Option("--current", help="START..END instead of the last window.")
    ] = None,
    repo: RepoOption = Path("."),
    verbose: VerboseOption = False,
) -> None:
    """Write one self-contained HTML page: per view, histograms of baseline vs current,
    freshness lag over time, null ratios, drift scores, and the open alerts."""
    from rich.text import Text

    from parity.definitions.base import parse_duration
    from parity.monitoring.report import write_report

    names = [v.strip() for v in views.split(",") if v.strip()] if views else None
    if (baseline is None) != (current is None):
        raise typer.BadParameter("give both --baseline and --current, or neither")
    try:
        length = parse_duration(window)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--window") from None
    with open_store(repo) as store:
        require_registry(store)
        path = write_report(
            store,
            out,
            views=names,
            window=length,
            baseline=_span(baseline, "--baseline") if baseline else None,
            current=_span(current, "--current") if current else None,
        )
    render.console().print(Text(f"Wrote {path}"))


def _span(text: str, option: str) -> tuple[str, str]:
    start, sep, end = text.partition("..")
    if not sep or not start or not end:
        raise typer.BadParameter(f"expected START..END, got {text!r}", param_hint=option)
    return start, end
