"""``parity import-feast``: a Feast repo as a Parity repo, and a list of what did not convert."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from parity.cli import render
from parity.cli.common import VerboseOption, handles_errors


@handles_errors
def import_feast(
    path: Annotated[
        Path,
        typer.Argument(
            metavar="PATH", help="The Feast repo: the folder holding feature_store.yaml."
        ),
    ],
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="The folder to write the Parity repo to (new, or empty).",
            show_default="./PROJECT_parity",
            file_okay=False,
        ),
    ] = None,
    no_feast: Annotated[
        bool,
        typer.Option(
            "--no-feast",
            help="Parse the repo's Python without running it, even when Feast is installed.",
        ),
    ] = False,
    verbose: VerboseOption = False,
) -> None:
    """Convert a Feast repo: entities, file and push sources, feature views, on-demand views,
    feature services and the store settings.

    What cannot be converted is listed, with the reason, and written to IMPORT_REPORT.md in
    the new repo. Exits with status 1 and writes nothing when no feature view converts.
    """
    from rich.text import Text

    from parity.adopt import import_feast as run
    from parity.adopt.feast_repo import find_repo, read_config
    from parity.adopt.report import REPORT_FILE, table

    if out is None:
        project = str(read_config(find_repo(path))["project"])
        out = Path(f"{project}_parity")
    result = run(path, out, use_feast=False if no_feast else None)
    console = render.console()
    reader = "Feast's repo parsing" if result.reader == "feast" else "read statically, not run"
    if result.problems:
        console.print(table(result.problems))
    counts = result.converted.counts
    summary = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in counts.items())
    if not result.written:
        render.error(f"nothing to write: no feature view of {path} converts ({summary or 'none'})")
        raise typer.Exit(1)
    console.print(Text(f"Imported {path} ({reader}) into {result.out}", style="bold green"))
    console.print(Text(f"  {summary}"))
    for name in result.files:
        console.print(Text(f"  {name}"))
    if result.problems:
        dropped = sum(p.dropped for p in result.problems)
        partly = len(result.problems) - dropped
        console.print(
            Text(f"{dropped} not converted, {partly} partly converted: see {REPORT_FILE}.")
        )
    console.print(Text(f"\nNext: cd {result.out}, then `parity plan` and `parity apply`."))
