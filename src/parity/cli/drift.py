"""``parity drift VIEW``: whether a view's features drifted from a baseline, and saving one.

::

    parity drift VIEW --baseline START..END|NAME [--current START..END|online]
                      [--features a,b] [--json] [--no-save]
    parity drift VIEW --save-baseline NAME --start START --end END [--features a,b] [--replace]

One table row per feature and test, drifted rows in red. Exit status: 0 when no feature
drifted, 3 when one did (so a script can tell drift from an error, 1, or a usage error, 2).
The result is kept in the registry unless ``--no-save``. Times are ISO 8601 (naive = UTC)
or ``now``; either end of ``START..END`` may be left out.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Any

import typer

from parity.cli import render
from parity.cli.common import RepoOption, VerboseOption, handles_errors, open_store
from parity.errors import MonitoringError

DRIFTED_EXIT = 3
"""The exit status when any feature drifted."""


def _names(value: str | None) -> list[str] | None:
    if value is None:
        return None
    names = [n.strip() for n in value.split(",") if n.strip()]
    if not names:
        raise typer.BadParameter("name at least one feature", param_hint="--features")
    return names


@handles_errors
def drift(
    view: Annotated[str, typer.Argument(help="The feature view.")],
    baseline: Annotated[
        str | None,
        typer.Option(
            "--baseline", "-b", help="START..END of source rows, or a saved baseline's name."
        ),
    ] = None,
    current: Annotated[
        str,
        typer.Option(
            "--current", "-c", help="START..END of source rows, or 'online' (the online store)."
        ),
    ] = "online",
    features: Annotated[
        str | None,
        typer.Option("--features", "-f", help="Comma-separated features (default: all)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of a table.")] = False,
    no_save: Annotated[
        bool, typer.Option("--no-save", help="Do not keep the result in the registry.")
    ] = False,
    save_baseline: Annotated[
        str | None,
        typer.Option(
            "--save-baseline",
            help="Save the view's values in --start..--end as this baseline instead.",
        ),
    ] = None,
    start: Annotated[
        str | None, typer.Option("--start", help="With --save-baseline: the range's start.")
    ] = None,
    end: Annotated[
        str | None, typer.Option("--end", help="With --save-baseline: the range's end.")
    ] = None,
    replace: Annotated[
        bool, typer.Option("--replace", help="With --save-baseline: overwrite one of that name.")
    ] = False,
    repo: RepoOption = Path("."),
    verbose: VerboseOption = False,
) -> None:
    """Drift of a view's features: KS, PSI, chi-squared, Jensen-Shannon, Wasserstein.

    Exits 3 when any feature drifted."""
    names = _names(features)
    if save_baseline is not None:
        if baseline is not None:
            raise MonitoringError("--save-baseline saves one; it does not take --baseline")
        if start is None or end is None:
            raise MonitoringError("--save-baseline NAME needs --start and --end")
        _save(repo, save_baseline, view, start, end, names, replace, as_json)
        return
    if start is not None or end is not None:
        raise MonitoringError("--start/--end go with --save-baseline; compare with --baseline")
    if baseline is None:
        raise MonitoringError("give --baseline START..END or a saved baseline's name")
    with open_store(repo) as store:
        result = store.drift(view, baseline, current, features=names, save=not no_save)
    if as_json:
        payload = {
            "view": view,
            "id": result.id,
            "summary": result.summary,
            "rows": [_json_row(r) for r in result.to_pylist()],
        }
        typer.echo(json.dumps(payload, indent=2, default=str))
    else:
        _print(view, result)
    if result.summary["drifted"]:
        raise typer.Exit(DRIFTED_EXIT)


def _save(
    repo: Path,
    name: str,
    view: str,
    start: str,
    end: str,
    features: list[str] | None,
    replace: bool,
    as_json: bool,
) -> None:
    from parity.monitoring.baselines import baseline_path, save_baseline

    with open_store(repo) as store:
        kept = save_baseline(store, name, view, start, end, features=features, replace=replace)
        path = baseline_path(store, name)
    if as_json:
        typer.echo(json.dumps({**kept.to_json(), "path": str(path)}, indent=2))
        return
    render.console().print(
        f"saved baseline {kept.name!r}: {kept.rows:,} rows of {kept.view} "
        f"({', '.join(kept.features)}) in {path}",
        markup=False,
    )


def _json_row(row: dict[str, Any]) -> dict[str, Any]:
    """NaN (a statistic that could not be computed) as null: JSON has no NaN."""
    return {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in row.items()}


def _side(info: dict[str, Any]) -> str:
    if info.get("online"):
        return "online"
    span = f"{info.get('start') or '…'}..{info.get('end') or '…'}"
    return f"{info['name']} ({span})" if info.get("name") else span


def _print(view: str, result: Any) -> None:
    from rich.table import Table
    from rich.text import Text

    summary = result.summary
    drifted = summary["drifted"]
    title = (
        f"Drift of {view}: {_side(summary['baseline'])} vs {_side(summary['current'])}; "
        f"{len(drifted)} of {summary['features']} feature(s) drifted"
    )
    table = Table(title=Text(title), title_justify="left")
    for name, right in [
        ("feature", False),
        ("test", False),
        ("statistic", True),
        ("p-value", True),
        ("threshold", True),
        ("drifted", False),
        ("rows (baseline / current)", True),
    ]:
        table.add_column(name, justify="right" if right else "left")
    for row in result.to_pylist():
        style = "bold red" if row["drifted"] else None
        table.add_row(
            Text(row["feature"]),
            row["test"],
            _num(row["statistic"]),
            _num(row["p_value"]),
            "report only" if row["threshold"] is None else _num(row["threshold"]),
            "DRIFTED" if row["drifted"] else "no",
            f"{row['baseline_rows']:,} / {row['current_rows']:,}",
            style=style,
        )
    out = render.console()
    out.print(table)
    for feature, reason in summary.get("skipped", {}).items():
        out.print(Text(f"skipped {feature}: {reason}", style="dim"))
    if result.id is not None:
        out.print(Text(f"kept as drift result {result.id}", style="dim"))


def _num(value: float | None) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    return f"{value:.4g}"
