"""The embedded offline engine: DuckDB in process over Parquet and CSV (``type: duckdb``).

This module is what the ``parity.offline_engines`` entry point loads: the config class and a
factory; DuckDB itself is imported when an engine is built.
"""

from __future__ import annotations

from typing import Any

from parity.offline.duckdb.config import DuckDBOfflineConfig
from parity.plugins import Backend, BackendContext


def _create(config: DuckDBOfflineConfig, context: BackendContext) -> Any:
    from parity.offline.duckdb.engine import DuckDBOfflineEngine

    return DuckDBOfflineEngine(
        config, context.repo_path, context.offline_log, log_reader=context.log_reader
    )


BACKEND = Backend(
    kind="offline_engine",
    name="duckdb",
    config=DuckDBOfflineConfig,
    factory=_create,
    requires=("duckdb",),
    description="embedded: DuckDB in process over Parquet and CSV files",
)

__all__ = ["BACKEND", "DuckDBOfflineConfig"]
