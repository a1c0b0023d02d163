"""``parity registry export | import``: a project's definitions with their whole history, to
one JSON file and back, to back a registry up or move it (SQLite to PostgreSQL and back)::

    parity registry export --out registry.json             # from the repo's registry
    parity registry import registry.json --repo ../prod    # into another (empty) one

What travels and what does not is ``parity.registry.transfer``'s docstring (and the
README's "Backup and migration"). ``--out -`` writes the file to stdout, ``import -`` reads
it from stdin; the summary then goes to stderr.
"""

from __future__ import annotations

import sys
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
    working,
)

if TYPE_CHECKING:
    from parity.registry.transfer import TransferSummary

NOT_CARRIED = (
    "Not carried: the audit log, tokens, materialization windows and jobs, monitoring "
    "results and alerts, freshness marks, stream consumer offsets, restrictions, the "
    "training snapshots' Parquet files (their manifests are carried)."
)

app = typer.Typer(
    name="registry",
    help="Back up or move the registry: every definition with its whole history, as JSON. "
    + NOT_CARRIED,
    no_args_is_help=True,
    rich_markup_mode=None,
)


@app.command("export")
@handles_errors
def export(
    out: Annotated[
        Path,
        typer.Option(
            "--out", "-o", help="The file to write ('-': stdout).", dir_okay=False, metavar="PATH"
        ),
    ] = Path("registry.json"),
    repo: RepoOption = Path("."),
    verbose: VerboseOption = False,
) -> None:
    """Write every object of the project with its whole history (every version, deletes
    included) and the revision counter to one JSON file, written atomically.

    Not carried: the audit log (its hash chain belongs to its registry), tokens (their hashes
    stay with the registry that issued them), materialization windows and jobs, monitoring
    results, alerts and freshness marks (they describe data that does not move with the
    file), stream consumer offsets and restrictions (state of a deployment). Training
    snapshots' manifests are carried, their Parquet files are not (copy the folder)."""
    to_stdout = str(out) == "-"
    with open_store(repo) as store:
        require_registry(store)
        with working(f"exporting the registry of project {store.project!r}"):
            done = store.export_registry(sys.stdout if to_stdout else out)
    _print(done, f"Exported project {done.project!r} to {done.path}", stderr=to_stdout)


@app.command("import")
@handles_errors
def import_(
    path: Annotated[
        Path,
        typer.Argument(
            metavar="PATH",
            help="A file `parity registry export` wrote ('-': stdin).",
            dir_okay=False,
        ),
    ],
    replace: Annotated[
        bool,
        typer.Option(
            "--replace",
            help="Replace the project's definitions and history if it has any (in one "
            "transaction); without it, a project that has any is refused.",
        ),
    ] = False,
    repo: RepoOption = Path("."),
    verbose: VerboseOption = False,
) -> None:
    """Write an export's definitions and history into the repo's registry, all or nothing.

    The whole file is checked first; a bad one is refused with every problem named (table,
    row, field) and nothing is written. The revision counter is the file's, so exporting
    again gives the same file (with --replace, one past the project's own when the file's is
    not ahead of it, so running servers read the definitions again). The online store is not
    touched: run `parity apply` next to prepare it for the imported views (it registers
    nothing when the repo matches)."""
    from_stdin = str(path) == "-"
    with open_store(repo) as store, working(f"importing {path} into {store.project!r}"):
        done = store.import_registry(sys.stdin if from_stdin else path, replace=replace)
    head = f"Imported {done.path} into project {done.project!r}"
    if done.file_project != done.project:
        head += f" (exported from project {done.file_project!r})"
    if done.replaced:
        head += f", replacing {done.replaced} object(s)"
    _print(done, head, stderr=False)


def _print(done: TransferSummary, head: str, *, stderr: bool) -> None:
    from rich.table import Table
    from rich.text import Text

    out = render.console(stderr=stderr)
    out.print(
        Text(
            f"{head}: revision {done.revision}, schema revision {done.schema_revision}",
            style="bold green",
        )
    )
    table = Table(title_justify="left")
    for col, right in (("Kind", False), ("Objects", True), ("Versions", True)):
        table.add_column(col, justify="right" if right else "left")
    for kind, versions in done.versions.items():
        table.add_row(
            render.KIND_LABELS.get(kind, kind), f"{done.objects.get(kind, 0):,}", f"{versions:,}"
        )
    table.add_row(
        "total", f"{sum(done.objects.values()):,}", f"{sum(done.versions.values()):,}", style="bold"
    )
    out.print(table)
