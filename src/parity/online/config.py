"""Configs of the online stores; each store owns its class, told apart by ``type``."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict


class SqliteOnlineConfig(BaseModel):
    """The embedded store: one SQLite file beside the repo."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["sqlite"] = "sqlite"
    path: str = "data/online.db"


OnlineConfig = SqliteOnlineConfig
