"""The config of the SQLite online store (``online_store: {type: sqlite, ...}``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class SqliteOnlineConfig(BaseModel):
    """The embedded store: one SQLite file beside the repo (WAL: many readers, one writer)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["sqlite"] = "sqlite"
    path: str = "data/online.db"
    mmap_size_mb: int = Field(
        default=1024,
        ge=0,
        description="memory-map this much of the file for reads (0 = off); random-key reads "
        "skip a read syscall per page, about 2x faster for 100-row reads",
    )
    busy_timeout_seconds: float = Field(
        default=30.0,
        ge=0.0,
        le=3600.0,
        strict=True,
        description="how long a write waits for another writer's transaction (one writer at "
        "a time; WAL readers never wait) before it fails with OnlineStoreError",
    )
