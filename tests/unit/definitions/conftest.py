"""Fixtures for the definition tests: small feature repos written to a temporary folder."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

WriteRepo = Callable[..., Path]


@pytest.fixture
def write_repo(tmp_path: Path) -> WriteRepo:
    """``write_repo({"features.py": "...", "defs/x.yaml": "..."})``: a repo with parity.yaml.

    Texts are dedented. Call it again with ``name=`` for a second repo in the same test.
    """

    def write(files: dict[str, str], name: str = "repo") -> Path:
        root = tmp_path / name
        root.mkdir(exist_ok=True)
        (root / "parity.yaml").write_text("project: demo\n")
        for rel, text in files.items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(text).lstrip("\n"))
        return root

    return write
