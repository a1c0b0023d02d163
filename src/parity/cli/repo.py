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
        if planned.breaking:
            out.print(
                Text(
                    f"{len(planned.breaking)} breaking change(s) reach a feature service or a"
                    " model: `parity apply` refuses them unless given --allow-breaking.",
                    style="bold red",
                )
            )
    if missing is not None:
        out.print(Text(f"The registry at {missing} does not exist yet; `parity apply` creates it."))
    from parity.cli.keys import print_violations

    print_violations(out, violations)


AuthorOption = Annotated[
    str | None,
    typer.Option(
        help="Who applies, recorded in the history.", show_default="$PARITY_USER or login"
    ),
]
OneKind = Annotated[
    str | None,
    typer.Option("--kind", "-k", help="Needed only when NAME is used by several kinds."),
]
AllowBreaking = Annotated[
    bool,
    typer.Option(
        "--allow-breaking",
        help="Apply breaking changes to what feature services or models read (recorded).",
    ),
]


@handles_errors
def apply(
    repo: RepoOption = Path("."),
    author: AuthorOption = None,
    allow_breaking: AllowBreaking = False,
    verbose: VerboseOption = False,
) -> None:
    """Validate the repo's definitions and register them, all or nothing.

    Objects registered but no longer in the repo's files are deleted. A breaking change
    (a major version bump) to what a feature service or model reads is refused unless
    --allow-breaking is given (the override is recorded in the version's history).
    """
    from rich.text import Text

    with open_store(repo) as store, working("Validating definitions against the data…"):
        done = store.apply(author=author, allow_breaking=allow_breaking)
    out = render.console()
    if not done.has_changes:
        out.print(Text("No changes.", style="bold"))
        return
    out.print(render.plan_text(done))
    out.print(Text(render.applied_summary(done), style="bold green"))


@handles_errors
def rollback(
    name: Annotated[str, typer.Argument(metavar="NAME", help="The object's name.")],
    to: Annotated[str, typer.Option("--to", help="The version to apply again, e.g. 1.2.0.")],
    kind: OneKind = None,
    author: AuthorOption = None,
    allow_breaking: AllowBreaking = False,
    repo: RepoOption = Path("."),
    verbose: VerboseOption = False,
) -> None:
    """Apply an old version of an object again, as a new version noted as a rollback.

    The old spec is validated and its impact weighed like any apply. The repo's files are
    not changed: edit them too, or the next `parity apply` brings the newer definition back.
    """
    from rich.text import Text

    from parity.cli.common import parse_kind

    wanted = parse_kind(kind)
    with open_store(repo) as store, working(f"Rolling {name} back to {to}…"):
        done = store.rollback(name, to, kind=wanted, author=author, allow_breaking=allow_breaking)
        record = store.history(name, wanted)[-1] if done.has_changes else None
    out = render.console()
    if record is None:
        out.print(Text(f"No changes: {name} already has the spec of version {to}.", style="bold"))
        return
    out.print(render.plan_text(done))
    out.print(
        Text(f"{name} is now at version {record.version} ({record.note}).", style="bold green")
    )


@handles_errors
def lifecycle(
    name: Annotated[str, typer.Argument(metavar="NAME", help="The object's name.")],
    state: Annotated[
        str, typer.Argument(metavar="STATE", help="draft, active, deprecated or retired.")
    ],
    reason: Annotated[str, typer.Option(help="Why, shown to readers and kept.")] = "",
    successor: Annotated[
        str | None, typer.Option(help="What replaces it (named in warnings and errors).")
    ] = None,
    kind: OneKind = None,
    author: AuthorOption = None,
    allow_breaking: AllowBreaking = False,
    repo: RepoOption = Path("."),
    verbose: VerboseOption = False,
) -> None:
    """Move an object to draft, active, deprecated or retired (a new version, noted).

    A deprecated object is still served, with a warning; a retired one is refused, naming
    its successor; a draft is served only to readers that ask for drafts. Retiring or
    drafting what a service or model reads needs --allow-breaking.
    """
    from rich.text import Text

    from parity.cli.common import parse_kind

    wanted = parse_kind(kind)
    with open_store(repo) as store, working(f"Setting {name} to {state}…"):
        done = store.set_lifecycle(
            name,
            state.strip().lower(),
            reason=reason,
            successor=successor,
            kind=wanted,
            author=author,
            allow_breaking=allow_breaking,
        )
        record = store.history(name, wanted)[-1]
    out = render.console()
    if not done.has_changes:
        out.print(Text(f"No changes: {name} is {state} already.", style="bold"))
        return
    out.print(render.plan_text(done))
    out.print(Text(f"{name} is now {state}, version {record.version}.", style="bold green"))
