"""The config of the DuckDB offline engine (``offline_store: {type: duckdb, ...}``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class DuckDBOfflineConfig(BaseModel):
    """The embedded engine: DuckDB in process, reading Parquet/CSV files directly."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["duckdb"] = "duckdb"
    memory_limit: str | None = Field(
        default=None, description="DuckDB memory limit, e.g. '4GB'; None = DuckDB's default"
    )
    threads: int | None = Field(default=None, ge=1, description="None = all cores")
    temp_directory: str | None = None
