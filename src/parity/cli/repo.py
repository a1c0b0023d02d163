"""The commands that make and change a repo's registration: ``init``, ``plan``, ``apply``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from parity.cli import render
from parity.cli.common import RepoOption, VerboseOption, handles_errors, open_store, working


@handles_errors
def init(
    name: Annotated[
        str, typer.Argument(metavar="NAME", help="The project name; also the folder's name.")
    ],
    directory: Annotated[
        Path | None,
        typer.Option(
            "--dir",
            "--repo",
            "-r",
            help="The folder to create the repo in.",
            show_default="./NAME",
            file_okay=False,
        ),
    ] = None,
    verbose: VerboseOption = False,
) -> None:
    """Create a working feature repo: config, definitions, sample data and a README.

    Refuses to write into a folder that exists and is not empty.
    """
    from rich.text import Text

    from parity.cli.scaffold import create_repo

    made = create_repo(name, directory)
    out = render.console()
    out.print(Text(f"Created feature repo {made.project!r} in {made.path}", style="bold green"))
    for f in made.files:
        out.print(Text(f"  {f}"))
    out.print(Text("\nNext: cd into it, then `parity plan` and `parity apply`."))


@handles_errors
def plan(repo: RepoOption = Path("."), verbose: VerboseOption = False) -> None:
    """Show what `parity apply` would create, change or delete, field by field.

    Writes nothing: with no registry yet, everything is to be created and none is made.
    """
    from rich.text import Text

    with open_store(repo) as store, working("Reading and validating definitions…"):
        planned = store.plan()  # a registry that does not exist plans as an empty one
        missing = None if store.registry.exists() else store.registry.location
        violations = store.governance.violations()
    out = render.console()
    if not planned.has_changes:
        out.print(Text(planned.render()))
    else:
        out.print(render.plan_text(planned))
        unchanged = len(planned.of("unchanged"))
        tail = f"Plan: {planned.summary()}" + (f" ({unchanged} unchanged)." if unchanged else ".")
        out.print(Text(tail, style="bold"))
    if missing is not None:
        out.print(Text(f"The registry at {missing} does not exist yet; `parity apply` creates it."))
    from parity.cli.keys import print_violations

    print_violations(out, violations)


@handles_errors
def apply(
    repo: RepoOption = Path("."),
    author: Annotated[
        str | None,
        typer.Option(
            help="Who applies, recorded in the history.", show_default="$PARITY_USER or login"
        ),
    ] = None,
    verbose: VerboseOption = False,
) -> None:
    """Validate the repo's definitions and register them, all or nothing.

    Objects registered but no longer in the repo's files are deleted.
    """
    from rich.text import Text

    with open_store(repo) as store, working("Validating definitions against the data…"):
        done = store.apply(author=author)
    out = render.console()
    if not done.has_changes:
        out.print(Text("No changes.", style="bold"))
        return
    out.print(render.plan_text(done))
    out.print(Text(render.applied_summary(done), style="bold green"))
