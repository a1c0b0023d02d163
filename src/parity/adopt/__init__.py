"""Adopting Parity: ``parity import-feast`` turns a Feast repo into a Parity repo.

::

    result = import_feast("feast_repo/feature_repo", "my_repo")   # Feast's parsing if installed
    result = import_feast("feast_repo/feature_repo", "my_repo", use_feast=False)  # static
    result.problems       # what was not converted, and why

Reading: with Feast installed, its own ``parse_repo`` runs the repo's files (``feast_reader``);
without it, or with ``use_feast=False``, the files are parsed with ``ast`` and never run
(``static_reader``). Both give the same values (``model``), converted by ``convert`` and
written all at once by ``write``. ``FeastImportError`` (a ``ConfigError``) means nothing was
written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from parity.adopt.convert import Converted, convert
from parity.adopt.feast_repo import find_repo
from parity.adopt.model import FeastImportError, FeastRepo, Problem
from parity.adopt.write import check_out_dir, write_repo

__all__ = ["FeastImportError", "ImportResult", "Problem", "import_feast", "read_feast_repo"]


@dataclass(frozen=True)
class ImportResult:
    """What ``import_feast`` did: where, with which reader, what it wrote and left out."""

    out: Path | None
    reader: str
    converted: Converted
    files: list[str] = field(default_factory=list)

    @property
    def problems(self) -> list[Problem]:
        return self.converted.problems

    @property
    def written(self) -> bool:
        return self.out is not None


def read_feast_repo(path: str | Path, use_feast: bool | None = None) -> FeastRepo:
    """The Feast repo at ``path``: read by Feast when ``use_feast`` is True, or None and
    Feast is importable; else parsed statically."""
    from parity.adopt.feast_reader import feast_available, read_with_feast
    from parity.adopt.static_reader import read_static

    root = find_repo(path)
    if use_feast is None:
        use_feast = feast_available()
    elif use_feast and not feast_available():
        raise FeastImportError("Feast is not importable here; read the repo without it")
    return read_with_feast(root) if use_feast else read_static(root)


def import_feast(path: str | Path, out: str | Path, use_feast: bool | None = None) -> ImportResult:
    """Convert the Feast repo at ``path`` to a Parity repo written at ``out``.

    Writes nothing when no feature view or on-demand view converts (``result.written`` is
    False) and raises ``FeastImportError`` for a path that is not a Feast repo or an ``out``
    that is not an empty or new folder.
    """
    out_dir = Path(out).absolute()
    check_out_dir(out_dir)
    repo = read_feast_repo(path, use_feast)
    converted = convert(repo, out_dir)
    if not converted.useful:
        return ImportResult(None, repo.reader, converted)
    files = write_repo(converted, out_dir, str(repo.path))
    return ImportResult(out_dir, repo.reader, converted, files)
