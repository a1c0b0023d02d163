"""``parity freshness``: placeholder until the command is built."""

from __future__ import annotations

from pathlib import Path

from parity.cli.common import RepoOption, VerboseOption, handles_errors
from parity.errors import ParityError


@handles_errors
def freshness(repo: RepoOption = Path("."), verbose: VerboseOption = False) -> None:
    """Every view's lag against its freshness SLA (to be built)."""
    raise ParityError("parity freshness is not built yet")
