"""``parity erase``, ``parity export`` and ``parity retention run``: a data subject's rows
removed or written out, and rows past their retention deleted (``parity.governance``).

Keys are given as ``--keys 1,2`` (repeatable) and typed as the entity's join key (its
``dtype``; integers when every key reads as one and the entity declares none); a composite
entity's key is ``k1=v1;k2=v2``. Exit status 0 when done (also a dry run), 1 on an error
(nothing changed), 2 for a usage error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from parity.cli import render
from parity.cli.common import RepoOption, VerboseOption, handles_errors, open_store

app = typer.Typer(
    help="Delete rows older than their retention.", no_args_is_help=True, rich_markup_mode=None
)

EntityOption = Annotated[
    str, typer.Option("--entity", "-e", help="The entity the keys belong to (e.g. user).")
]
KeysOption = Annotated[
    list[str],
    typer.Option(
        "--keys",
        "-k",
        help="Key values, comma-separated or repeated (a composite key: k1=v1;k2=v2).",
    ),
]


def _keys(store: Any, entity: str, given: list[str]) -> list[Any]:
    from parity.governance.subjects import parse_keys

    texts = [part.strip() for item in given for part in item.split(",") if part.strip()]
    if not texts:
        raise typer.BadParameter("give at least one key", param_hint="--keys")
    return parse_keys(store.catalog(fresh=True), entity, texts)


@handles_errors
def erase(
    entity: EntityOption,
    keys: KeysOption,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count what would be erased; change nothing.")
    ] = False,
    rewrite_sources: Annotated[
        bool,
        typer.Option(
            "--rewrite-sources",
            help="Also rewrite the batch source files (owned outside Parity) without the keys.",
        ),
    ] = False,
    repo: RepoOption = Path("."),
    verbose: VerboseOption = False,
) -> None:
    """Remove these keys' data from the online store, the offline log and the serving log,
    following lineage to every view keyed by the entity; prints the receipt (rows per place;
    batch source files are listed as not erased unless --rewrite-sources)."""
    with open_store(repo) as store:
        receipt = store.governance.erase(
            entity, _keys(store, entity, keys), dry_run=dry_run, rewrite_sources=rewrite_sources
        )
    _receipt(receipt)


def _receipt(receipt: Any) -> None:
    from rich.table import Table
    from rich.text import Text

    out = render.console()
    what = "Dry run: would erase" if receipt.dry_run else "Erased"
    table = Table(
        title=f"{what} {len(receipt.keys)} key(s) of entity {receipt.entity!r}",
        title_justify="left",
    )
    for col in ("Place", "Target", "Rows", "Files", "Status"):
        table.add_column(col, justify="right" if col in ("Rows", "Files") else "left")
    for c in receipt.counts:
        style = "yellow" if c.rows and c.status.startswith("not erased") else None
        table.add_row(
            Text(c.place),
            Text(c.target),
            f"{c.rows:,}",
            f"{c.files:,}" if c.files else "-",
            Text(c.status),
            style=style,
        )
    out.print(table)
    out.print(Text(f"views keyed by {receipt.entity!r}: {', '.join(receipt.views) or 'none'}"))
    for c in receipt.not_erased:
        out.print(
            Text(
                f"not erased: {c.rows:,} row(s) in source {c.target!r} ({c.note}); owned "
                "outside Parity, and the next materialization would write them back online: "
                "erase them there, or run again with --rewrite-sources",
                style="yellow",
            )
        )


@handles_errors
def export(
    entity: EntityOption,
    keys: KeysOption,
    out: Annotated[Path, typer.Option("--out", "-o", help="The file to write.", dir_okay=False)],
    format: Annotated[
        str | None,
        typer.Option("--format", "-f", help="json or parquet.", show_default="from --out's suffix"),
    ] = None,
    repo: RepoOption = Path("."),
    verbose: VerboseOption = False,
) -> None:
    """Write everything Parity holds about these keys (online values, offline-log rows,
    serving-log rows, batch source rows) to one JSON or Parquet file."""
    from rich.text import Text

    with open_store(repo) as store:
        result = store.governance.export(entity, _keys(store, entity, keys), out, format=format)
    console = render.console()
    for c in result.counts:
        console.print(Text(f"{c.place:<13} {c.target:<30} {c.rows:>8,} row(s)"))
    console.print(Text(f"wrote {result.rows:,} row(s) to {result.path} ({result.format})"))


@app.command("run")
@handles_errors
def retention_run(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count what would be deleted; change nothing.")
    ] = False,
    repo: RepoOption = Path("."),
    verbose: VerboseOption = False,
) -> None:
    """Delete offline-log and serving-log rows older than their view's (else its source's)
    retention; prints the rows per view and place."""
    from rich.table import Table
    from rich.text import Text

    with open_store(repo) as store:
        report = store.governance.run_retention(dry_run=dry_run)
    what = "Dry run: rows that would be deleted" if report.dry_run else "Rows deleted"
    table = Table(title=f"{what} (now {report.at.isoformat()})", title_justify="left")
    for col in ("View", "Place", "Target", "Retention", "Older than", "Rows", "Files"):
        table.add_column(col, justify="right" if col in ("Rows", "Files") else "left")
    for c in report.counts:
        table.add_row(
            Text(c.view),
            c.place,
            Text(c.target),
            _duration(c.retention),
            c.cutoff.isoformat(),
            f"{c.rows:,}",
            f"{c.files:,}",
        )
    console = render.console()
    if not report.counts:
        console.print(Text("no view or source declares a retention: nothing to delete"))
        return
    console.print(table)


def _duration(value: Any) -> str:
    seconds = int(value.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
