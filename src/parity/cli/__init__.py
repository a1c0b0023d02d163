"""The ``parity`` command line; ``main`` is the console script, ``app`` the typer app."""

from parity.cli.app import app, main

__all__ = ["app", "main"]
