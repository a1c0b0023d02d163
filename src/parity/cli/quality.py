"""``parity check``: placeholder until the command is built."""

from __future__ import annotations

from pathlib import Path

from parity.cli.common import RepoOption, VerboseOption, handles_errors
from parity.errors import ParityError


@handles_errors
def check(repo: RepoOption = Path("."), verbose: VerboseOption = False) -> None:
    """Evaluate a view's quality checks (to be built)."""
    raise ParityError("parity check is not built yet")
