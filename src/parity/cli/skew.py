"""``parity skew``: what the feature server served (its serving log) against the
point-in-time join at the request times, per feature (``parity.monitoring.skew``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from parity.cli import render
from parity.cli.common import RepoOption, VerboseOption, handles_errors, open_store


@handles_errors
def skew(
    since: Annotated[
        str | None,
        typer.Option("--since", help="Requests from this time (ISO 8601 or 'now'; UTC)."),
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", help="Requests up to this time (default: all).")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Where the mismatched rows go (Parquet).",
            show_default="data/monitoring/skew/<time>.parquet",
            dir_okay=False,
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of a table.")] = False,
    repo: RepoOption = Path("."),
    verbose: VerboseOption = False,
) -> None:
    """Replay the serving log through the point-in-time join: per feature, the match rate,
    missing and extra rates, mean absolute difference and consistency score; the rows that
    differ are written to --out. Exit status 0 whatever the skew (scripts read --json)."""
    with open_store(repo) as store:
        result = store.skew(since, until=until, out=out)
    if as_json:
        import json

        doc = {
            "id": result.id,
            "start": None if result.start is None else result.start.isoformat(),
            "end": None if result.end is None else result.end.isoformat(),
            "summary": result.summary,
            "features": result.to_pylist(),
        }
        typer.echo(json.dumps(doc, indent=2, default=str))
        return
    _table(result.to_pylist(), result.summary)


def _table(rows: list[dict[str, Any]], summary: dict[str, Any]) -> None:
    from rich.table import Table

    out = render.console()
    table = Table(
        title=f"Training/serving skew: {summary['rows']:,} logged row(s)", title_justify="left"
    )
    for col in ("Feature", "Rows", "Match", "Missing", "Extra", "Mean |diff|", "Consistency"):
        table.add_column(col, justify="left" if col == "Feature" else "right")
    for r in rows:
        style = None if r["matched"] == r["rows"] else "yellow"
        table.add_row(
            r["feature"],
            f"{r['rows']:,}",
            _pct(r["match_rate"]),
            _pct(r["missing_rate"]),
            _pct(r["extra_rate"]),
            "-" if r["mean_abs_diff"] is None else f"{r['mean_abs_diff']:.6g}",
            "-" if r["consistency"] is None else f"{r['consistency']:.4f}",
            style=style,
        )
    out.print(table)
    out.print(
        f"{summary['mismatched']:,} mismatched row(s) written to {summary['out']}",
        highlight=False,
    )


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.2%}"
