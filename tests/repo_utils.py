"""Build small feature repos on disk for tests."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq


def write_repo(
    root: Path, files: dict[str, str], *, project: str = "test", registry: str | None = None
) -> Path:
    """A repo folder with parity.yaml and the given definition files (dedented)."""
    root.mkdir(parents=True, exist_ok=True)
    reg = registry or "data/registry.db"
    (root / "parity.yaml").write_text(
        f"project: {project}\nregistry: {reg}\noffline_store: {{ type: duckdb }}\n"
    )
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


def write_parquet(path: Path, table: pa.Table | dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(table, dict):
        table = pa.table(table)
    pq.write_table(table, path)
    return path
