"""``parity monitor run | report``: placeholder until the commands are built."""

from __future__ import annotations

from pathlib import Path

import typer

from parity.cli.common import RepoOption, VerboseOption, handles_errors
from parity.errors import ParityError

app = typer.Typer(
    name="monitor",
    help="Evaluate freshness, checks and drift on a schedule, and report on them.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


@app.command("run")
@handles_errors
def run(repo: RepoOption = Path("."), verbose: VerboseOption = False) -> None:
    """Evaluate the monitoring rules on a schedule (to be built)."""
    raise ParityError("parity monitor run is not built yet")


@app.command("report")
@handles_errors
def report(repo: RepoOption = Path("."), verbose: VerboseOption = False) -> None:
    """Write the HTML monitoring report (to be built)."""
    raise ParityError("parity monitor report is not built yet")
