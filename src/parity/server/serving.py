"""What the server serves: a plain ``FeatureStore`` with the server's parts handed in.

The store is built with a seam, not subclassed: an online wrapper (``ServingOnlineStore``: the
record cache and the per-view read counts for ``/metrics``) handed in at construction, and,
with ``serving_log`` in parity.yaml, the serving log's hook (``parity.monitoring.serving_log``,
written out at shutdown). Everything
else is the facade itself, so the server returns exactly what ``get_online_features``
returns; the event loop uses ``get_online_features_async`` (the store's round trip awaited
where the store allows it).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from parity.config import RepoConfig
from parity.online.base import OnlineStore
from parity.server.cache import CacheSettings, ServingOnlineStore
from parity.store import FeatureStore
from parity.types import ValueType

if TYPE_CHECKING:
    from parity.monitoring.serving_log import ServingLog


def cache_settings(config: RepoConfig) -> CacheSettings | None:
    """``cache: {ttl_seconds, max_entries}`` from parity.yaml; None (off) when absent."""
    cfg = config.cache
    if cfg is None:
        return None
    return CacheSettings(float(cfg.ttl_seconds), int(cfg.max_entries))


class Serving:
    """The server's store (``store``), its record cache and the per-revision lookups its
    handlers need."""

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
        self._on_read = on_read
        self._on_cache = on_cache
        self._cached: ServingOnlineStore | None = None
        self.store = FeatureStore(repo_path, config=config, online_wrapper=self._wrap)
        self.cache_settings = (
            cache_settings(self.store.config) if cache is None else (cache or None)
        )
        self.serving_log: ServingLog | None = None  # parity.yaml's serving_log; None: off
        if self.store.config.serving_log is not None:
            from parity.monitoring.serving_log import ServingLog

            # paused until the app is warm: warm-up reads are not what it served
            self.serving_log = ServingLog.from_config(
                self.store.config.serving_log, self.store.repo_path, paused=True
            ).start()
            self.store.hooks.add(self.serving_log)
        self._hashes: tuple[Any, dict[str, str]] = (None, {})
        self._key_types: tuple[Any, dict[str, ValueType | None]] = (None, {})

    def _wrap(self, inner: OnlineStore) -> OnlineStore:
        self._cached = ServingOnlineStore(
            inner,
            view_hashes=self.view_hashes,
            cache=self.cache_settings,
            on_read=self._on_read,
            on_cache=self._on_cache,
        )
        return self._cached

    @property
    def raw_online(self) -> OnlineStore:
        """The store itself, past the cache (readiness checks)."""
        self.store.online  # noqa: B018 - builds the wrapper
        assert self._cached is not None
        return self._cached.inner

    def view_hashes(self) -> dict[str, str]:
        """``{view name: content hash}`` at the current registry revision."""
        catalog = self.store.catalog()
        seen, hashes = self._hashes
        if seen is not catalog:
            hashes = {v.name: v.content_hash() for v in catalog.views()}
            self._hashes = (catalog, hashes)
        return hashes

    def join_key_types(self) -> dict[str, ValueType | None]:
        """The declared type of every join key (None: undeclared, or entities disagree)."""
        catalog = self.store.catalog()
        seen, types = self._key_types
        if seen is not catalog:
            types = {}
            for entity in self.store.list_entities():
                for key in entity.join_keys:
                    if key in types and types[key] != entity.dtype:
                        types[key] = None
                    else:
                        types[key] = entity.dtype
            self._key_types = (catalog, types)
        return types

    def plans_cached(self) -> int:
        """Read plans the store's online planner holds now (``/metrics``: warm-up fills it)."""
        return len(self.store._online_reads.planner)

    def close(self) -> None:
        if self.serving_log is not None:  # what is buffered is written before the exit
            self.serving_log.close()
        self.store.close()
