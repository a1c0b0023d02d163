"""``parity check VIEW``: a view's quality checks over its source rows, exit 3 on a failure.

Every rule is listed with its threshold, the observed value, how many rows offend and a
sample of them; failed rules are in red. The exit status is 3 when any rule fails (so CI can
gate on it; 1 is an error, as for every command), 0 when all pass or the view declares no
checks. The result is stored in the
registry (``parity monitor report`` reads it) unless ``--no-save``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from parity.cli import render
from parity.cli.common import RepoOption, VerboseOption, handles_errors, open_store

if TYPE_CHECKING:
    from parity.monitoring.result import MonitorResult


@handles_errors
def check(
    view: Annotated[str, typer.Argument(help="The feature view whose checks to evaluate.")],
    start: Annotated[
        str | None,
        typer.Option("--start", help="Rows from this event time (ISO 8601, naive = UTC)."),
    ] = None,
    end: Annotated[
        str | None,
        typer.Option("--end", help="Rows up to this event time (ISO 8601 or 'now')."),
    ] = None,
    save: Annotated[
        bool, typer.Option("--save/--no-save", help="Store the result in the registry.")
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of a table.")] = False,
    repo: RepoOption = Path("."),
    verbose: VerboseOption = False,
) -> None:
    """Evaluate a view's quality checks over its source rows in [--start, --end]; print each
    rule with the observed value; exit 3 when any rule fails."""
    with open_store(repo) as store:
        result = store.check(view, start, end, save=save)
    failed = int(result.summary.get("violations", 0))
    if as_json:
        typer.echo(json.dumps(_document(result), indent=2, default=str))
    else:
        _print(result)
    if failed:
        raise typer.Exit(3)


def _document(result: MonitorResult) -> dict[str, Any]:
    rows = result.to_pylist()
    for r in rows:
        r["threshold"] = json.loads(r["threshold"])
        r["sample"] = json.loads(r["sample"])
    return {
        "view": result.view,
        "start": result.start,
        "end": result.end,
        "id": result.id,
        **{k: v for k, v in result.summary.items() if k != "rules"},
        "rules": rows,
    }


def _print(result: MonitorResult) -> None:
    from rich.table import Table
    from rich.text import Text

    out = render.console()
    rules = int(result.summary.get("rules", 0))
    if not rules:
        out.print(f"feature view {result.view!r} declares no checks: nothing to evaluate")
        return
    failed = int(result.summary["violations"])
    rows = int(result.summary.get("rows", 0))
    title = f"Checks of {result.view!r} over {rows:,} row(s): {rules - failed}/{rules} passed"
    table = Table(title=title, title_justify="left")
    for col in ("Feature", "Rule", "Threshold", "Observed", "Result", "Offending", "Sample"):
        table.add_column(col, overflow="fold")
    for r in result.to_pylist():
        style = "" if r["passed"] else "bold red"
        observed = "-" if r["observed"] is None else f"{r['observed']:g}"
        sample = json.loads(r["sample"])
        table.add_row(
            r["feature"],
            r["rule"],
            r["threshold"],
            observed,
            Text("pass", style="green") if r["passed"] else Text("FAIL", style="bold red"),
            f"{r['offending_rows']:,}",
            json.dumps(sample[:3], default=str) if sample else "",
            style=style,
        )
    out.print(table)
    if failed:
        out.print(Text(f"{failed} check(s) failed", style="bold red"))
