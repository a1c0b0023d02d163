"""``parity keys rotate`` / ``parity keys status``, and the policy violations ``parity plan``
lists (``parity.governance.keys``, ``parity.governance.policies``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from parity.cli import render
from parity.cli.common import RepoOption, VerboseOption, handles_errors, open_store

if TYPE_CHECKING:
    from rich.console import Console

    from parity.governance.policies import Violation

app = typer.Typer(
    name="keys",
    help="Encryption keys: re-encrypt stored values with the active key, and what each key sealed.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


@app.command("rotate")
@handles_errors
def rotate(repo: RepoOption = Path("."), verbose: VerboseOption = False) -> None:
    """Re-encrypt every stored encrypted value (online and offline log) with the active key.

    Make the new key active in the keyring first and keep the old one listed: reads accept
    both while this runs. Remove the old key once `parity keys status` shows it seals nothing.
    """
    from rich.table import Table

    with open_store(repo) as store:
        done = store.governance.rotate_keys(progress=True)
    table = Table(title=f"Rotated to key {done.active!r}", title_justify="left")
    for col, right in (
        ("Place", False),
        ("Name", False),
        ("Examined", True),
        ("Re-encrypted", True),
    ):
        table.add_column(col, justify="right" if right else "left")
    for p in done.places:
        unit = "records" if p.place == "online" else "files"
        table.add_row(p.place, p.name, f"{p.examined:,} {unit}", f"{p.rewritten:,}")
    out = render.console()
    out.print(table)
    out.print(f"{done.rewritten:,} record(s) or file(s) re-encrypted.")


@app.command("status")
@handles_errors
def status(repo: RepoOption = Path("."), verbose: VerboseOption = False) -> None:
    """The keyring's key ids (never the keys) and how many stored values each one sealed."""
    from rich.table import Table

    from parity.governance.keys import status as key_status

    with open_store(repo) as store:
        found = key_status(store)
    out = render.console()
    out.print(f"Keys ({found.where}): {', '.join(found.keys)}; active: {found.active}")
    table = Table(title="Encrypted values by key", title_justify="left")
    for col in ("Place", "Name", "Field", *found.keys, "Not encrypted"):
        table.add_column(col, justify="left" if col in ("Place", "Name", "Field") else "right")
    for u in found.usage:
        table.add_row(
            u.place,
            u.name,
            u.field,
            *(f"{u.by_key.get(k, 0):,}" for k in found.keys),
            f"{u.plaintext:,}",
        )
    out.print(table)
    others = {k for u in found.usage for k in u.by_key} - set(found.keys)
    if others:
        render.error(f"values sealed with keys the keyring lacks: {', '.join(sorted(others))}")
        raise typer.Exit(3)


def print_violations(out: Console, found: Sequence[Violation]) -> None:
    """The policy violations as a table (``parity plan``)."""
    from rich.table import Table
    from rich.text import Text

    if not found:
        return
    table = Table(
        title=f"Policy violations ({len(found)}): apply refuses these", title_justify="left"
    )
    for col in ("Object", "Field", "Rule", "Problem"):
        table.add_column(col)
    for v in found:
        table.add_row(f"{v.kind} {v.name}", v.field or "", v.rule, v.message)
    out.print(table)
    out.print(
        Text(
            "Fix them (or change governance: in parity.yaml) before `parity apply`.",
            style="bold red",
        )
    )
