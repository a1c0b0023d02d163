"""``parity drift``: placeholder until the command is built."""

from __future__ import annotations

from pathlib import Path

from parity.cli.common import RepoOption, VerboseOption, handles_errors
from parity.errors import ParityError


@handles_errors
def drift(repo: RepoOption = Path("."), verbose: VerboseOption = False) -> None:
    """Drift of a view's features (to be built)."""
    raise ParityError("parity drift is not built yet")
