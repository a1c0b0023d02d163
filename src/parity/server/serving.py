"""The FeatureStore the server uses: its online store wrapped by ``ServingOnlineStore``.

Everything else is the plain facade: reads, pushes and materializations go through the same
code as in Python, so the server returns exactly what ``get_online_features`` returns.
``get_online_features_async`` is that read with the store's round trip awaited (pipelined on
one connection for plain Redis, ``parity.server.redis_reads``), for the event loop.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from parity.config import RepoConfig
from parity.errors import ObjectNotFoundError, RetrievalError
from parity.online.base import OnlineStore
from parity.online.reader import OnlineResponse, decode_online, entity_columns, online_requests
from parity.retrieval import FeatureRefs
from parity.server.cache import CacheSettings, ServingOnlineStore
from parity.server.redis_reads import AsyncRedisReads
from parity.store import FeatureStore
from parity.transform import plan_on_demand
from parity.types import ValueType


def cache_settings(config: RepoConfig) -> CacheSettings | None:
    """``cache: {ttl_seconds, max_entries}`` from parity.yaml; None (off) when absent."""
    cfg = config.cache
    if cfg is None:
        return None
    return CacheSettings(float(cfg.ttl_seconds), int(cfg.max_entries))


class ServingStore(FeatureStore):
    """A FeatureStore whose online store caches records and reports per-view reads."""

    def __init__(
        self,
        repo_path: str | Path = ".",
        *,
        config: RepoConfig | None = None,
        cache: CacheSettings | Literal[False] | None = None,
        on_read: Callable[[str, int], None] | None = None,
        on_cache: Callable[[int, int], None] | None = None,
    ):
        """``cache``: None = parity.yaml's ``cache`` (off when absent), False = off."""
        super().__init__(repo_path, config=config)
        self.cache_settings = (
            cache_settings(self.config) if cache is None else (cache if cache else None)
        )
        self._on_read = on_read
        self._on_cache = on_cache
        self._serving: ServingOnlineStore | None = None
        self._async_reads: AsyncRedisReads | None = None
        self._hashes: tuple[int, dict[str, str]] = (-2, {})
        self._key_types: tuple[int, dict[str, ValueType | None]] = (-2, {})

    @property
    def online(self) -> OnlineStore:
        if self._serving is None:
            inner = super().online
            self._async_reads = AsyncRedisReads.for_store(inner)
            self._serving = ServingOnlineStore(
                inner,
                view_hashes=self.view_hashes,
                cache=self.cache_settings,
                on_read=self._on_read,
                on_cache=self._on_cache,
                async_read=self._async_reads,
            )
        return self._serving

    async def get_online_features_async(
        self,
        features: FeatureRefs,
        *,
        entities: Mapping[str, Sequence[Any]],
        full_feature_names: bool = False,
    ) -> OnlineResponse:
        """``get_online_features(features, entities=...)`` whose round trip to the store is
        awaited, so the event loop serves other requests meanwhile; same answer, same errors."""
        on_demand = plan_on_demand(features, self.catalog(), full_feature_names=full_feature_names)
        if on_demand is not None:
            return await on_demand.online_async(
                lambda refs: self.get_online_features_async(
                    refs, entities=entities, full_feature_names=True
                ),
                entities,
                self.repo_path,
            )
        try:
            plan = self._read_plan(features, full_feature_names)
        except (RetrievalError, ObjectNotFoundError):
            # Not a plain read of stored features (or a refused one): the facade's own path
            # answers it, or raises the error the caller should see.
            return self.get_online_features(
                features, entities=entities, full_feature_names=full_feature_names
            )
        cols = entity_columns(None, entities, plan.join_keys)
        now_us = self._now_us()
        online = self.online
        assert isinstance(online, ServingOnlineStore)
        records = await online.read_async(online_requests(plan, cols))
        return decode_online(plan, cols, records, now_us)

    def close(self) -> None:
        if self._async_reads is not None:
            self._async_reads.close()
        super().close()

    @property
    def raw_online(self) -> OnlineStore:
        """The store itself, past the cache (readiness checks)."""
        return super().online

    def view_hashes(self) -> dict[str, str]:
        """``{view name: content hash}`` at the current registry revision."""
        catalog = self.catalog()
        revision, hashes = self._hashes
        if revision != catalog.revision:
            hashes = {v.name: v.content_hash() for v in catalog.views()}
            self._hashes = (catalog.revision, hashes)
        return hashes

    def join_key_types(self) -> dict[str, ValueType | None]:
        """The declared type of every join key (None: undeclared, or entities disagree)."""
        catalog = self.catalog()
        revision, types = self._key_types
        if revision != catalog.revision:
            types = {}
            for entity in self.list_entities():
                for key in entity.join_keys:
                    if key in types and types[key] != entity.dtype:
                        types[key] = None
                    else:
                        types[key] = entity.dtype
            self._key_types = (catalog.revision, types)
        return types
