"""``parity stream run | status``: the repo's stream consumers, and what they have done.

``run`` consumes until SIGTERM or Ctrl-C, then finishes the batch in hand, commits it and
exits 0. ``status`` prints one row per stream source: what the broker says of its group
(pending, unconsumed, committed) and what the consumers recorded in the registry (events
written, dead letters by reason, freshness percentiles of the last minutes).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer

from parity.cli import render
from parity.cli.common import (
    RepoOption,
    VerboseOption,
    configure_logging,
    handles_errors,
    open_store,
)

app = typer.Typer(
    name="stream",
    help="Run the repo's stream consumers, or see their status.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

SourcesOption = Annotated[
    str | None,
    typer.Option("--sources", "-s", help="Comma-separated stream sources (default: all)."),
]


def _names(value: str | None) -> list[str] | None:
    if value is None:
        return None
    names = [n.strip() for n in value.split(",") if n.strip()]
    if not names:
        raise typer.BadParameter("name at least one source", param_hint="--sources")
    return names


@app.command("run")
@handles_errors
def run(
    sources: SourcesOption = None,
    metrics_port: Annotated[
        int | None,
        typer.Option("--metrics-port", min=0, help="Serve Prometheus metrics on this port."),
    ] = None,
    metrics_host: Annotated[
        str, typer.Option("--metrics-host", help="Address the metrics port binds.")
    ] = "127.0.0.1",
    batch_size: Annotated[
        int, typer.Option("--batch-size", min=1, help="Messages per poll.")
    ] = 1000,
    claim_idle: Annotated[
        float,
        typer.Option(
            "--claim-idle",
            min=0.001,
            help="Seconds a message may stay unacknowledged with another consumer before "
            "this one takes it over.",
        ),
    ] = 30.0,
    threads: Annotated[
        int, typer.Option("--threads", min=1, help="Consumer threads per source.")
    ] = 2,
    consumer: Annotated[
        str | None,
        typer.Option("--consumer", help="This consumer's name in the group (default: unique)."),
    ] = None,
    drain: Annotated[
        bool,
        typer.Option(
            "--drain", help="Exit once every source's messages are consumed (a backfill)."
        ),
    ] = False,
    log_level: Annotated[str, typer.Option("--log-level", help="debug, info, warning...")] = "info",
    repo: RepoOption = Path("."),
    verbose: VerboseOption = False,
) -> None:
    """Consume the repo's stream sources until SIGTERM or Ctrl-C (then finish the batch in
    hand, commit it and exit 0), or with --drain until nothing is left to consume."""
    configure_logging(log_level)
    with open_store(repo) as store:
        runner = store.stream_runner(
            _names(sources),
            batch_size=batch_size,
            claim_idle=claim_idle,
            consumer=consumer,
            threads=threads,
            metrics_port=metrics_port,
            metrics_host=metrics_host,
        )
        err = render.console(stderr=True)

        def started(r: Any) -> None:
            where = (
                f", metrics on {metrics_host}:{r.metrics_port}" if metrics_port is not None else ""
            )
            err.print(
                f"consuming {', '.join(r.sources)} as {r.consumer}{where} "
                "(Ctrl-C or SIGTERM to stop)",
                highlight=False,
            )

        if drain:
            runner.start()
            started(runner)
            runner.drain(timeout=float("inf"))
        else:
            runner.run(started=started)
        done = runner.stats()
        total = sum(s.written for s in done.values())
        dead = sum(sum(s.dead_letters.values()) for s in done.values())
        err.print(f"stopped: {total:,} event(s) written, {dead:,} dead letter(s)", highlight=False)


@app.command("status")
@handles_errors
def status(
    sources: SourcesOption = None,
    minutes: Annotated[
        int, typer.Option("--minutes", min=1, max=15, help="Freshness over the last N minutes.")
    ] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of a table.")] = False,
    repo: RepoOption = Path("."),
    verbose: VerboseOption = False,
) -> None:
    """Per stream source: group, pending and unconsumed messages, last committed offset,
    events written, dead letters by reason, freshness percentiles."""
    from parity.streams.status import source_status

    with open_store(repo) as store:
        rows = source_status(store, _names(sources), minutes=minutes, now_s=time.time())
    if as_json:
        import json

        typer.echo(json.dumps(rows, indent=2, default=str))
        return
    _table(rows, minutes)


def _table(rows: list[dict[str, Any]], minutes: int) -> None:
    from rich.table import Table

    out = render.console()
    table = Table(title=f"Stream sources ({len(rows)})", title_justify="left")
    for col in (
        "Source",
        "Broker / group",
        "Consumers",
        "Pending",
        "Unconsumed",
        "Committed",
        "Written",
        "Dead letters",
        f"Freshness p50/p99 ({minutes} min)",
    ):
        table.add_column(col, overflow="fold")
    for r in rows:
        dead = r["dead_letters"]
        dead_text = ", ".join(f"{k} {v:,}" for k, v in sorted(dead.items())) or "0"
        table.add_row(
            r["source"],
            f"{r['broker']} / {r['group']}",
            f"{r['consumers_running']} running",
            _n(r["pending"]),
            _n(r["unconsumed"]),
            r["last_committed"] or "-",
            f"{r['written']:,}",
            dead_text,
            _freshness(r["freshness_event"]),
        )
        if r.get("broker_error"):
            table.add_row("", f"[red]broker: {r['broker_error']}[/red]", *[""] * 7)
    out.print(table)


def _n(value: int | None) -> str:
    return "?" if value is None else f"{value:,}"


def _freshness(p: dict[str, float | None]) -> str:
    p50, p99 = p.get("p50"), p.get("p99")
    if p50 is None or p99 is None:
        return "-"
    return f"{_secs(p50)} / {_secs(p99)}"


def _secs(s: float) -> str:
    return f"{s * 1000:.0f} ms" if s < 1 else f"{s:.1f} s"
