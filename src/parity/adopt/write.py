"""Write the converted repo: all of it, or nothing.

Files go to a fresh folder beside ``out`` and that folder is renamed to ``out`` at the end,
so a failure part-way leaves no half-written repo. An ``out`` that exists and is not empty
is refused before anything is written.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import yaml

from parity.adopt.convert import Converted
from parity.adopt.model import FeastImportError
from parity.adopt.report import REPORT_FILE, markdown

__all__ = ["CONFIG_FILE", "DEFINITIONS_FILE", "ON_DEMAND_FILE", "check_out_dir", "write_repo"]

CONFIG_FILE = "parity.yaml"
DEFINITIONS_FILE = "features.yaml"
ON_DEMAND_FILE = "on_demand.py"


def check_out_dir(out: Path) -> None:
    """Refuse an ``out`` that is a file, or a folder with something in it."""
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise FeastImportError(f"--out {out}: exists and is not a folder; choose another")
    if out.is_dir() and any(out.iterdir()):
        raise FeastImportError(f"--out {out}: the folder exists and is not empty; choose another")
    if not out.parent.exists():
        raise FeastImportError(f"--out {out}: its parent folder {out.parent} does not exist")


def files_of(converted: Converted, source: str) -> dict[str, str]:
    """Each file of the new repo, by name, with its text."""
    config = (
        f"# Imported from the Feast repo at {source} by `parity import-feast`.\n"
        "# Relative paths are relative to this folder.\n"
        + yaml.safe_dump(converted.config, sort_keys=False, default_flow_style=False)
    )
    elsewhere = f"On-demand views are in {ON_DEMAND_FILE}; w" if converted.on_demand_module else "W"
    definitions = (
        "# Entities, sources, feature views and feature services imported from the Feast repo\n"
        f"# at {source}. {elsewhere}hat was not converted is listed in {REPORT_FILE}.\n"
        + yaml.safe_dump(
            converted.definitions, sort_keys=False, default_flow_style=False, allow_unicode=True
        )
    )
    out = {CONFIG_FILE: config, DEFINITIONS_FILE: definitions}
    if converted.on_demand_module:
        out[ON_DEMAND_FILE] = converted.on_demand_module
    out[REPORT_FILE] = markdown(converted.problems, source, converted.counts)
    out[".gitignore"] = "data/\n__pycache__/\n"
    return out


def write_repo(converted: Converted, out: Path, source: str) -> list[str]:
    """Write the repo to ``out`` all at once; the names of the files written."""
    out = out.absolute()
    check_out_dir(out)
    files = files_of(converted, source)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        for name, text in files.items():
            (tmp / name).write_text(text, encoding="utf-8")
        (tmp / "data").mkdir()
        os.chmod(tmp, 0o777 & ~_umask())
        if out.is_dir():
            out.rmdir()  # empty, checked above; rmdir refuses if something arrived since
        os.rename(tmp, out)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise FeastImportError(f"--out {out}: cannot write the repo: {exc}") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return sorted(files)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
