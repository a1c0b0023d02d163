"""``parity push SOURCE FILE``: rows of a CSV, Parquet or JSON file to a push source.

The file is read with the types the source's views declare (``parity.cli.push_files``),
then goes through ``store.push``, the one push path: every row is checked before anything
is written, a bad row is refused naming its row and column, and nothing of the file is
written then.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from parity.cli import render
from parity.cli.common import (
    RepoOption,
    VerboseOption,
    handles_errors,
    open_store,
    require_registry,
)
from parity.errors import RetrievalError


@handles_errors
def push(
    source: Annotated[str, typer.Argument(metavar="SOURCE", help="The push source's name.")],
    file: Annotated[
        Path,
        typer.Argument(
            metavar="FILE",
            help="CSV, TSV, Parquet or JSON (an array of records, an object of columns, or "
            "JSON lines); by extension, else by content.",
            dir_okay=False,
        ),
    ],
    to: Annotated[
        str,
        typer.Option("--to", metavar="TARGET", help="online, offline or online_and_offline."),
    ] = "online",
    push_id: Annotated[
        str | None,
        typer.Option(
            "--push-id",
            metavar="ID",
            help="Names this push: retrying with the same id writes nothing twice.",
        ),
    ] = None,
    repo: RepoOption = Path("."),
    verbose: VerboseOption = False,
) -> None:
    """Push the rows of FILE to the views fed by push source SOURCE."""
    from rich.text import Text

    from parity.cli.push_files import declared_types, read_rows
    from parity.definitions import PushSource

    with open_store(repo) as store:
        require_registry(store)
        catalog = store.catalog()
        found = catalog.source(source)
        if not isinstance(found, PushSource):
            raise RetrievalError(
                f"source {source!r} is a {found.source_type} source, not a push source"
            )
        table = read_rows(file, declared_types(catalog, found))
        written = store.push(source, table, to, push_id=push_id)
        views = [v.name for v in catalog.views() if v.source_name == source]
    out = render.console()
    head = Text(
        f"Pushed {int(written):,} row(s) from {file} to {source} ({to})", style="bold green"
    )
    pid = getattr(written, "push_id", push_id) or "-"
    if getattr(written, "replayed", False):
        head = Text(
            f"Push {pid} was made before: nothing written twice ({int(written):,} row(s))",
            style="bold yellow",
        )
    out.print(head)
    out.print(Text(f"  views: {', '.join(views) or '-'}"))
    ignored = getattr(written, "ignored_columns", ())
    out.print(Text(f"  ignored columns (no view reads them): {', '.join(ignored) or '-'}"))
    out.print(Text(f"  push id: {pid}"))
