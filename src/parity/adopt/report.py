"""The list of what was not converted: a rich table for the terminal, Markdown for the repo."""

from __future__ import annotations

from typing import TYPE_CHECKING

from parity.adopt.model import Problem

if TYPE_CHECKING:
    from rich.table import Table

__all__ = ["REPORT_FILE", "markdown", "table"]

REPORT_FILE = "IMPORT_REPORT.md"


def _sorted(problems: list[Problem]) -> list[Problem]:
    return sorted(problems, key=lambda p: (not p.dropped, p.kind, p.name))


def _status(p: Problem) -> str:
    return "not converted" if p.dropped else "partly converted"


def table(problems: list[Problem]) -> Table:
    """What was not converted, one row per object and reason."""
    from rich.table import Table

    t = Table(title="Not converted", title_justify="left", show_lines=False)
    t.add_column("kind", style="cyan", no_wrap=True)
    t.add_column("name", style="bold", overflow="fold")
    t.add_column("status", no_wrap=True)
    t.add_column("reason", overflow="fold")
    for p in _sorted(problems):
        style = "red" if p.dropped else "yellow"
        t.add_row(p.kind, p.name, f"[{style}]{_status(p)}[/]", p.reason)
    return t


def markdown(problems: list[Problem], source: str, counts: dict[str, int]) -> str:
    """``IMPORT_REPORT.md``: what came over, and each object or part that did not, and why."""
    lines = [
        "# Imported from Feast",
        "",
        f"Made by `parity import-feast` from the Feast repo at `{source}`.",
        "",
        "Converted: " + ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in counts.items()) + ".",
        "",
    ]
    if not problems:
        lines.append("Everything was converted.")
        return "\n".join(lines) + "\n"
    lines += [
        "## Not converted",
        "",
        "| kind | name | status | reason |",
        "| --- | --- | --- | --- |",
    ]
    for p in _sorted(problems):
        cells = [p.kind, p.name, _status(p), p.reason]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"
