"""Redis and Redis Cluster as the online store (``type: redis``, extra ``[redis]``).

This module is what the ``parity.online_stores`` entry point loads: the config class and a
factory; redis-py is imported only when a store is built. A plain Redis reached over TCP or a
Unix socket gets a store that also reads without blocking an event loop
(``SupportsAsyncRead``, ``async_reads.py``); TLS and Cluster keep the blocking read.
"""

from __future__ import annotations

from typing import Any

from parity.online.redis.config import RedisOnlineConfig
from parity.plugins import Backend, BackendContext


def _create(config: RedisOnlineConfig, context: BackendContext) -> Any:
    from parity.online.redis.async_reads import AsyncReadRedisOnlineStore, supports_async
    from parity.online.redis.store import RedisOnlineStore

    cls = AsyncReadRedisOnlineStore if supports_async(config) else RedisOnlineStore
    return cls(config, context.project)


BACKEND = Backend(
    kind="online_store",
    name="redis",
    config=RedisOnlineConfig,
    factory=_create,
    extra="redis",
    requires=("redis", "hiredis"),
    description="Redis or Redis Cluster: one string per entity and view, one round trip a read",
)

__all__ = ["BACKEND", "RedisOnlineConfig"]
