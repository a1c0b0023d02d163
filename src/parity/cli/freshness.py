"""``parity freshness``: every view's lag against its freshness SLA.

One row per feature view: the newest event time online and its lag, the offline source's
lag, the SLA and grace, the score ``max(0, 1 - lag / SLA)``, whether it is breached (lag
past SLA + grace: what alerts) and the SLA compliance over ``--window`` (the share of the
monitor's evaluations in it that were within the SLA). Breached rows are red.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from parity.cli import render
from parity.cli.common import (
    RepoOption,
    VerboseOption,
    handles_errors,
    open_store,
    require_registry,
)


@handles_errors
def freshness(
    window: Annotated[
        str,
        typer.Option("--window", "-w", help="The compliance window (e.g. 1h, 1d, 7d)."),
    ] = "1d",
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of a table.")] = False,
    repo: RepoOption = Path("."),
    verbose: VerboseOption = False,
) -> None:
    """Every view's freshness: its lag, SLA, score, breach and SLA compliance over --window."""
    with open_store(repo) as store:
        require_registry(store)
        result = store.freshness(window=window)
    rows = result.to_pylist()
    if as_json:
        import json

        typer.echo(json.dumps([_jsonable(r) for r in rows], indent=2))
        return
    _table(rows, window)


def _table(rows: list[dict[str, Any]], window: str) -> None:
    from rich.table import Table
    from rich.text import Text

    table = Table(title=f"Freshness ({len(rows)} views)", title_justify="left")
    for col, right in (
        ("View", False),
        ("Newest online", False),
        ("Lag", True),
        ("Offline lag", True),
        ("SLA (+grace)", True),
        ("Score", True),
        ("Breached", False),
        (f"Compliance ({window})", True),
    ):
        table.add_column(col, justify="right" if right else "left", overflow="fold")
    for r in rows:
        sla = r["sla_seconds"]
        newest = r["newest_event_time"]
        table.add_row(
            Text(r["view"]),
            render.when(newest) if newest is not None else "never written",
            _secs(r["lag_seconds"]),
            _secs(r["offline_lag_seconds"]),
            "-" if sla is None else f"{_secs(sla)} (+{_secs(r['grace_seconds'])})",
            "-" if r["score"] is None else f"{r['score']:.2f}",
            "yes" if r["breached"] else ("no" if sla is not None else "-"),
            "-" if r["compliance"] is None else f"{r['compliance']:.1%} of {r['samples']:,}",
            style="red" if r["breached"] else None,
        )
    render.console().print(table)


def _secs(s: float | None) -> str:
    if s is None:
        return "-"
    sign, s = ("-" if s < 0 else ""), abs(s)
    if s < 120:
        return f"{sign}{s:.1f} s"
    if s < 7200:
        return f"{sign}{s / 60:.1f} min"
    if s < 172_800:
        return f"{sign}{s / 3600:.1f} h"
    return f"{sign}{s / 86400:.1f} d"


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    from datetime import datetime

    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in row.items()}
