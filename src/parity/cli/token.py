"""``parity token create | list | revoke``: the project's API tokens (``parity.governance.tokens``).

``create`` prints the new token alone on the last line of its output, once (scripts take it
with ``| tail -n1``); only a salted hash is kept. ``list`` never shows a secret. With
``auth`` on, each needs ``admin`` (the command acts as ``PARITY_TOKEN``), except creating
the project's first ``admin`` token as a local user (no ``PARITY_TOKEN``)::

    parity token create --principal root --role admin      # the bootstrap, audited
    export PARITY_TOKEN=parity_...; parity apply
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from parity.cli import render
from parity.cli.common import RepoOption, VerboseOption, handles_errors, open_store

app = typer.Typer(
    name="token",
    help="Create, list and revoke the project's API tokens.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


@app.command("create")
@handles_errors
def create(
    principal: Annotated[str, typer.Option("--principal", "-p", help="Who the token stands for.")],
    role: Annotated[
        list[str],
        typer.Option("--role", help="A role of the repo (or admin); repeat for several."),
    ],
    expires: Annotated[
        str | None,
        typer.Option("--expires", help="Lifetime, e.g. 30d, 12h (default: never expires)."),
    ] = None,
    description: Annotated[
        str, typer.Option("--description", "-d", help="What the token is for.")
    ] = "",
    repo: RepoOption = Path("."),
    verbose: VerboseOption = False,
) -> None:
    """Create a token; it is printed once, alone on the last line."""
    with open_store(repo) as store:
        issued = store.governance.create_token(
            principal, role, expires=expires, description=description
        )
    rec = issued.record
    err = render.console(stderr=True)
    until = rec.expires_at.isoformat(timespec="seconds") if rec.expires_at else "never"
    err.print(
        f"token {rec.id} for {rec.principal!r} (roles: {', '.join(rec.roles)}; expires: "
        f"{until}); shown once, keep it secret:",
        highlight=False,
    )
    typer.echo(issued.token)


@app.command("list")
@handles_errors
def list_(
    all_: Annotated[bool, typer.Option("--all", "-a", help="Include revoked tokens.")] = False,
    repo: RepoOption = Path("."),
    verbose: VerboseOption = False,
) -> None:
    """List the project's tokens (ids and metadata; never a secret)."""
    from rich.table import Table

    with open_store(repo) as store:
        found = store.governance.tokens(include_revoked=all_)
    now = datetime.now(UTC)
    table = Table(title=f"Tokens ({len(found)})", title_justify="left")
    for col in ("Id", "Principal", "Roles", "State", "Expires", "Created", "By", "Description"):
        table.add_column(col)
    for t in found:
        table.add_row(
            t.id,
            t.principal,
            ", ".join(t.roles),
            t.state(now),
            t.expires_at.isoformat(timespec="seconds") if t.expires_at else "never",
            t.created_at.isoformat(timespec="seconds"),
            t.created_by,
            t.description,
        )
    render.console().print(table)


@app.command("revoke")
@handles_errors
def revoke(
    token_id: Annotated[str, typer.Argument(metavar="ID", help="The token's id (see list).")],
    repo: RepoOption = Path("."),
    verbose: VerboseOption = False,
) -> None:
    """Revoke a token: refused at once by this process, elsewhere within
    auth.token_cache_seconds."""
    with open_store(repo) as store:
        rec = store.governance.revoke_token(token_id)
    render.console().print(f"revoked token {rec.id} of {rec.principal!r}", highlight=False)
