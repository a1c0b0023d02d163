"""``parity restrict`` and ``parity restrictions``: restrict processing of entity keys (the
data subject's right to restrict or object), lift it, list what is restricted
(``parity.governance.restrict``)."""

from __future__ import annotations

import json
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

EntityOption = Annotated[str, typer.Option("--entity", "-e", help="The entity the keys are of.")]


@handles_errors
def restrict(
    entity: EntityOption,
    keys: Annotated[
        str,
        typer.Option(
            "--keys",
            "-k",
            help="Comma-separated keys, typed by the entity (1,2; a:b per key for an entity "
            "with two join keys).",
        ),
    ],
    lift: Annotated[
        bool, typer.Option("--lift", help="Lift the restriction of these keys instead.")
    ] = False,
    reason: Annotated[
        str, typer.Option("--reason", help="Why (kept with the restriction; no personal data).")
    ] = "",
    repo: RepoOption = Path("."),
    verbose: VerboseOption = False,
) -> None:
    """Restrict processing of entity keys: from now on their features are served masked on
    every path (Python, HTTP, historical) unless the reader has admin. --lift undoes it.
    Recorded in the audit log. Exit 0 also when nothing changed (already so)."""
    from parity.governance.restrict import parse_keys

    with open_store(repo) as store:
        require_registry(store)
        typed = parse_keys(store.catalog().entity(entity), keys)
        gov = store.governance
        if lift:
            n = gov.lift(entity, typed)
            done = f"lifted the restriction of {n} of {len(typed)} key(s) of {entity!r}"
        else:
            n = gov.restrict(entity, typed, reason=reason)
            done = f"restricted {n} new key(s) of {entity!r} ({len(typed) - n} already were)"
    render.console().print(done, highlight=False)


@handles_errors
def restrictions(
    entity: Annotated[
        str | None, typer.Option("--entity", "-e", help="Only this entity's keys.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of a table.")] = False,
    repo: RepoOption = Path("."),
    verbose: VerboseOption = False,
) -> None:
    """The restricted entity keys: entity, key, when, by whom and why."""
    with open_store(repo) as store:
        require_registry(store)
        found = store.governance.restrictions(entity)
    if as_json:
        doc = [
            {
                "entity": r.entity,
                "key": list(r.key) if isinstance(r.key, tuple) else r.key,
                "restricted_at": r.restricted_at.isoformat(),
                "restricted_by": r.restricted_by,
                "reason": r.reason,
            }
            for r in found
        ]
        typer.echo(json.dumps(doc, indent=2))
        return
    from rich.table import Table

    table = Table(title=f"{len(found)} restricted key(s)", title_justify="left")
    for col in ("Entity", "Key", "Restricted at (UTC)", "By", "Reason"):
        table.add_column(col)
    for r in found:
        key = ":".join(map(str, r.key)) if isinstance(r.key, tuple) else str(r.key)
        table.add_row(
            r.entity, key, r.restricted_at.strftime("%Y-%m-%d %H:%M:%S"), r.restricted_by, r.reason
        )
    render.console().print(table)
