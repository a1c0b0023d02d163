"""``parity audit [filters]`` and ``parity audit verify``: read and check the audit log.

``parity audit`` lists records newest first (``--limit``, default 50) matching every filter
given: ``--since``/``--until`` (ISO 8601 or a duration back from now such as ``1h``),
``--principal``, ``--resource`` (``kind:name`` or a name), ``--action``, ``--outcome``.

``parity audit verify`` walks the whole hash chain: exit 0 when it is intact (printing the
head as ``SEQ:HASH``, worth keeping elsewhere: ``--expect-head`` then proves the log was
not rewritten since), exit 3 naming the first broken record (edited, deleted, inserted).
With auth on, both need the ``admin`` action.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from parity.cli import render
from parity.cli.common import RepoOption, VerboseOption, handles_errors, open_store

if TYPE_CHECKING:
    from parity.governance.audit_chain import AuditRecord

BROKEN_EXIT = 3
"""``verify``'s exit status when the chain is broken."""

app = typer.Typer(
    name="audit",
    help="Read the audit log (who did what, when) and verify its hash chain.",
    invoke_without_command=True,
    rich_markup_mode=None,
)


@app.callback(invoke_without_command=True)
@handles_errors
def audit(
    ctx: typer.Context,
    since: Annotated[
        str | None, typer.Option("--since", help="From this time (ISO 8601) or e.g. 1h, 7d ago.")
    ] = None,
    until: Annotated[str | None, typer.Option("--until", help="Before this time.")] = None,
    principal: Annotated[str | None, typer.Option("--principal", help="Only this one.")] = None,
    resource: Annotated[
        str | None, typer.Option("--resource", help="kind:name, or a name of any kind.")
    ] = None,
    action: Annotated[
        str | None, typer.Option("--action", help="apply, read_online, push, ...")
    ] = None,
    outcome: Annotated[str | None, typer.Option("--outcome", help="ok, denied or error.")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="Records at most.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines instead of a table.")] = False,
    repo: RepoOption = Path("."),
    verbose: VerboseOption = False,
) -> None:
    """List audit records, newest first, matching every filter given."""
    if ctx.invoked_subcommand is not None:
        return
    with open_store(repo) as store:
        records = store.governance.audit.records(
            since=since,
            until=until,
            principal=principal,
            resource=resource,
            action=action,
            outcome=outcome,
            limit=limit,
        )
    if as_json:
        for r in records:
            typer.echo(json.dumps(r.to_json()))
        return
    _table(records)


@app.command("verify")
@handles_errors
def verify(
    expect_head: Annotated[
        str | None,
        typer.Option("--expect-head", help="A head kept earlier (SEQ:HASH) the log must hold."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="The verdict as JSON.")] = False,
    repo: RepoOption = Path("."),
    verbose: VerboseOption = False,
) -> None:
    """Check the hash chain: exit 0 intact, 3 naming the first broken record."""
    with open_store(repo) as store:
        result = store.governance.audit.verify(expect_head=expect_head)
    if as_json:
        typer.echo(json.dumps(result.to_json()))
    elif result.ok:
        render.console().print(
            f"audit log intact: {result.records:,} records; head {result.head_seq}:"
            f"{result.head_hash}",
            highlight=False,
        )
    else:
        render.error(f"audit log broken at record {result.broken_seq}: {result.problem}")
    if not result.ok:
        raise typer.Exit(BROKEN_EXIT)


def _table(records: list[AuditRecord]) -> None:
    from rich.table import Table
    from rich.text import Text

    table = Table(title=f"Audit log ({len(records)} records)", title_justify="left")
    for col, right in (
        ("Seq", True),
        ("Time", False),
        ("Principal", False),
        ("Action", False),
        ("Resources", False),
        ("Counts", False),
        ("Outcome", False),
        ("Detail", False),
    ):
        table.add_column(col, justify="right" if right else "left", overflow="fold")
    styles = {"denied": "red", "error": "yellow"}
    for r in records:
        who = r.principal + (f" ({r.token_id})" if r.token_id else "")
        table.add_row(
            str(r.seq),
            render.when(r.at),
            Text(who),
            Text(r.action),
            Text(", ".join(r.resources) or "-"),
            Text(", ".join(f"{k}={v:,}" for k, v in r.counts.items()) or "-"),
            Text(r.outcome, style=styles.get(r.outcome, "")),
            Text(r.detail or "-"),
        )
    render.console().print(table)
