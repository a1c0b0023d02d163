"""The embedded online store: one SQLite file beside the repo (``type: sqlite``).

This module is what the ``parity.online_stores`` entry point loads: the config class and a
factory; the store's code (``store.py``) is imported when a store is built.
"""

from __future__ import annotations

from typing import Any

from parity.online.sqlite.config import SqliteOnlineConfig
from parity.plugins import Backend, BackendContext


def _create(config: SqliteOnlineConfig, context: BackendContext) -> Any:
    from parity.online.sqlite.store import SqliteOnlineStore

    return SqliteOnlineStore(config, context.project, context.repo_path)


BACKEND = Backend(
    kind="online_store",
    name="sqlite",
    config=SqliteOnlineConfig,
    factory=_create,
    description="embedded: one SQLite file (WAL), many readers and one writer",
)

__all__ = ["BACKEND", "SqliteOnlineConfig"]
