"""Run the ``parity`` command in process and read its tables, for the CLI tests."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from parity.cli import app

wide = CliRunner(env={"COLUMNS": "200"})
"""A terminal wide enough that no cell is cut."""


def parity(*args: str | Path, code: int = 0, runner: CliRunner = wide):
    """Invoke the CLI in process; fail the test unless it exits with ``code``."""
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == code, (
        f"parity {' '.join(map(str, args))} exited {result.exit_code}, wanted {code}\n"
        f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}\n{result.exception!r}"
    )
    return result


def table_rows(text: str) -> list[list[str]]:
    """The body rows of rich tables in ``text``, as lists of stripped cells."""
    return [
        [c.strip() for c in line.strip().strip("│").split("│")]
        for line in text.splitlines()
        if line.startswith("│")
    ]
