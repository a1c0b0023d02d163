"""``python -m parity.server``: the same as ``parity serve``."""

import typer

from parity.cli.serve import serve

typer.run(serve)
