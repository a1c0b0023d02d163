"""``parity skew``: placeholder until the command is built."""

from __future__ import annotations

from pathlib import Path

from parity.cli.common import RepoOption, VerboseOption, handles_errors
from parity.errors import ParityError


@handles_errors
def skew(repo: RepoOption = Path("."), verbose: VerboseOption = False) -> None:
    """Training/serving skew from the serving log (to be built)."""
    raise ParityError("parity skew is not built yet")
