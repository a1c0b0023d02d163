"""``parity materialize``, ``materialize-incremental``, ``materialize-reset`` and ``teardown``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

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
    from parity.ingest.materialize import MaterializeResult

ViewsOption = Annotated[
    list[str] | None,
    typer.Option("--views", help="Only these feature views (repeat or comma-separate)."),
]


def _views(values: list[str] | None) -> list[str] | None:
    if not values:
        return None
    return [v for item in values for v in item.split(",") if v]


def _report(result: MaterializeResult) -> None:
    from rich.table import Table

    table = Table(title="Materialized", title_justify="left")
    for col in ("View", "From", "To", "Entity keys", "Stored", "Seconds", "Keys/s"):
        table.add_column(col, justify="right" if col[0] in "EKSs" else "left")
    for v in result.views:
        rate = v.rows / v.seconds if v.seconds else 0.0
        table.add_row(
            v.view,
            f"{v.start:%Y-%m-%d %H:%M:%S}",
            f"{v.end:%Y-%m-%d %H:%M:%S}",
            f"{v.rows:,}",
            f"{v.stored:,}",
            f"{v.seconds:.2f}",
            f"{rate:,.0f}",
        )
    render.console().print(table)


@handles_errors
def materialize(
    start: Annotated[
        str, typer.Argument(help="Start of the event-time window (ISO 8601, UTC if naive).")
    ],
    end: Annotated[str, typer.Argument(help="End of the window (inclusive), or 'now'.")],
    views: ViewsOption = None,
    repo: RepoOption = Path("."),
    verbose: VerboseOption = False,
) -> None:
    """Load the latest value per entity in [START, END] into the online store."""
    from parity.clock import parse_time

    begin, finish = parse_time(start, "START"), parse_time(end, "END")
    with open_store(repo) as store:
        require_registry(store)
        result = store.materialize(begin, finish, _views(views), progress=True)
    _report(result)


@handles_errors
def materialize_incremental(
    end: Annotated[str, typer.Argument(help="End of the window (inclusive), or 'now'.")],
    views: ViewsOption = None,
    repo: RepoOption = Path("."),
    verbose: VerboseOption = False,
) -> None:
    """Materialize each view from where its last run ended up to END (first run: END - ttl).

    END may not be in the future (5 minutes of clock skew allowed) nor before a view's
    recorded end: `parity materialize-reset VIEW` starts a view afresh.
    """
    from parity.clock import parse_time

    finish = parse_time(end, "END")
    with open_store(repo) as store:
        require_registry(store)
        result = store.materialize_incremental(finish, _views(views), progress=True)
    _report(result)


@handles_errors
def materialize_reset(
    views: Annotated[
        list[str],
        typer.Argument(metavar="VIEW...", help="The feature views whose windows to forget."),
    ],
    repo: RepoOption = Path("."),
    verbose: VerboseOption = False,
) -> None:
    """Forget the recorded materialization windows of these views (online values stay).

    The next `parity materialize-incremental` starts each of them afresh, from END - ttl.
    """
    from rich.text import Text

    names = _views(views) or []
    with open_store(repo) as store:
        require_registry(store)
        previous = store.reset_materialization(names)
    out = render.console()
    for name, until in previous.items():
        if until is None:
            out.print(Text(f"{name}: no recorded window, nothing to forget"))
        else:
            out.print(Text(f"{name}: forgot the windows recorded up to {until:%Y-%m-%d %H:%M:%S}"))
    out.print(Text("The next incremental run starts these views from END - ttl.", style="bold"))


@handles_errors
def teardown(
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    repo: RepoOption = Path("."),
    verbose: VerboseOption = False,
) -> None:
    """Remove everything the project keeps in the online store (definitions stay)."""
    with open_store(repo) as store:
        if not yes:
            typer.confirm(f"Remove all online data of project {store.project!r}?", abort=True)
        store.teardown()
    render.console().print("Online store cleared; materialization history reset.")
