"""``parity profile VIEW``: statistics of a view's features, and the profiles stored before.

::

    parity profile driver_hourly_stats --start 2024-01-01 --end now
    parity profile driver_hourly_stats --features conv_rate,acc_rate --json
    parity profile driver_hourly_stats --online          # the online store's current values
    parity profile driver_hourly_stats --history         # stored profiles, newest first

One table row per feature: type, nulls, distinct values, mean, std, min, median, max and a
histogram (numbers, times) or the most frequent values (strings, bools). Each profile is
stored in the registry (``--no-save``: not); ``--json`` prints the whole result, every
quantile and bin included (``parity.monitoring.profile``).
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from parity.cli import render
from parity.cli.common import (
    RepoOption,
    VerboseOption,
    handles_errors,
    open_store,
    require_registry,
)

if TYPE_CHECKING:
    from rich.table import Table

    from parity.monitoring.result import MonitorResult
    from parity.registry.monitoring import ResultRecord

_BARS = "▁▂▃▄▅▆▇█"


@handles_errors
def profile(
    view: Annotated[str, typer.Argument(help="The feature view to profile.", show_default=False)],
    start: Annotated[
        str | None,
        typer.Option("--start", help="Earliest event time (ISO 8601 or 'now'; naive = UTC)."),
    ] = None,
    end: Annotated[
        str | None, typer.Option("--end", help="Latest event time (ISO 8601 or 'now').")
    ] = None,
    features: Annotated[
        str | None,
        typer.Option("--features", "-f", help="Comma-separated features (default: all)."),
    ] = None,
    online: Annotated[
        bool,
        typer.Option(
            "--online",
            help="Profile the online store's current values (of the entities in the source "
            "rows of the range) instead of the source rows.",
        ),
    ] = False,
    history: Annotated[
        bool, typer.Option("--history", help="List the view's stored profiles instead.")
    ] = False,
    distinct: Annotated[
        str,
        typer.Option("--distinct", help="Distinct counts: exact, or approx (HyperLogLog)."),
    ] = "exact",
    save: Annotated[
        bool, typer.Option("--save/--no-save", help="Store the profile in the registry.")
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON, no table.")] = False,
    repo: RepoOption = Path("."),
    verbose: VerboseOption = False,
) -> None:
    """Statistics of a view's features: counts, nulls, distinct, mean, quantiles, histogram."""
    names = None
    if features is not None:
        names = [n.strip() for n in features.split(",") if n.strip()]
        if not names:
            raise typer.BadParameter("name at least one feature", param_hint="--features")
    with open_store(repo) as store:
        require_registry(store)
        if history:
            records = store.profiles(view)
            if as_json:
                typer.echo(json.dumps([r.to_json() for r in records], indent=2))
            else:
                render.console().print(history_table(view, records))
            return
        result = store.profile(
            view, start, end, online=online, save=save, features=names, distinct=distinct
        )
    if as_json:
        typer.echo(json.dumps(result_json(result), indent=2, default=str))
    else:
        render.console().print(profile_table(result))


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _clean(value: Any) -> Any:
    """JSON has no NaN or infinity: they are written as strings."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    return value


def result_json(result: MonitorResult) -> dict[str, Any]:
    """``id``, ``view``, ``scope``, ``start``, ``end``, ``summary`` and ``features`` (the
    table's rows)."""
    return {
        "id": result.id,
        "view": result.view,
        "scope": result.scope,
        "start": _time(result.start),
        "end": _time(result.end),
        "summary": result.summary,
        "features": _clean(result.to_pylist()),
    }


def number(value: float | None) -> str:
    """A statistic as a short cell: 6 significant digits, ``-`` when there is none."""
    if value is None:
        return "-"
    return f"{value:.6g}"


def sparkline(bins: list[dict[str, Any]] | None) -> str:
    """A histogram as one bar per bin, tallest = the largest count."""
    if not bins:
        return ""
    top = max(b["count"] for b in bins) or 1
    # An empty bin is a blank, so a gap shows; any other count gets at least the lowest bar.
    return "".join(
        " " if not b["count"] else _BARS[min(len(_BARS) - 1, b["count"] * len(_BARS) // top)]
        for b in bins
    )


def top_text(top: list[dict[str, Any]] | None, shown: int = 3) -> str:
    """The most frequent values with their counts, the first ``shown`` of them."""
    if not top:
        return ""
    text = ", ".join(f"{t['value']} ({t['count']:,})" for t in top[:shown])
    return text + (f", … {len(top) - shown} more" if len(top) > shown else "")


def _range_title(result: MonitorResult) -> str:
    if result.start is None and result.end is None:
        return "all rows"
    a = result.start.isoformat(sep=" ") if result.start else "…"
    b = result.end.isoformat(sep=" ") if result.end else "…"
    return f"{a} .. {b}"


def profile_table(result: MonitorResult) -> Table:
    """One row per feature."""
    from rich.table import Table
    from rich.text import Text

    rows = int(result.summary.get("rows", 0))
    what = "online values" if result.scope == "online" else "source rows"
    stored = f", stored as #{result.id}" if result.id is not None else ""
    table = Table(
        title=f"Profile of {result.view}: {rows:,} {what}, {_range_title(result)}{stored}",
        title_justify="left",
    )
    table.add_column("Feature", style="bold cyan", overflow="fold")
    table.add_column("Type")
    for header in ("Nulls", "Distinct", "Mean", "Std", "Min", "P50", "Max"):
        table.add_column(header, justify="right")
    table.add_column("Histogram / top values", overflow="fold")
    for row in result.to_pylist():
        nulls = f"{row['nulls']:,} ({row['null_ratio']:.1%})"
        distinct = f"{row['distinct']:,}" if row["distinct"] is not None else "-"
        if row["distinct"] is not None and not row["distinct_exact"]:
            distinct = "~" + distinct
        shape = sparkline(row["histogram"]) if row["histogram"] else top_text(row["top"])
        table.add_row(
            Text(row["feature"]),
            Text(row["dtype"]),
            nulls,
            distinct,
            *(number(row[k]) for k in ("mean", "std", "min", "p50", "max")),
            Text(shape),
        )
    return table


def history_table(view: str, records: list[ResultRecord]) -> Table:
    """One row per stored profile, newest first."""
    from rich.table import Table
    from rich.text import Text

    table = Table(title=f"Stored profiles of {view} ({len(records)})", title_justify="left")
    for header in ("Id", "Created", "Scope", "Start", "End", "View version", "Rows", "Features"):
        table.add_column(header, justify="right" if header in ("Id", "Rows") else "left")
    for r in records:
        table.add_row(
            str(r.id),
            r.created_at.isoformat(sep=" ", timespec="seconds"),
            r.scope,
            Text(_time(r.start) or "-"),
            Text(_time(r.end) or "-"),
            "-" if r.view_version is None else str(r.view_version),
            f"{int(r.summary.get('rows', 0)):,}",
            str(r.summary.get("features", "")),
        )
    return table
