"""The server's wrapper around the online store: a record-level LRU cache with a TTL.

Entries are ``(view content hash, entity key) -> record bytes`` (``None`` for "no record",
so misses are cached too). The hash is of the view's definition, so after an apply changes a
view its old entries are never served again (they age out of the LRU). Every read is still
ONE ``read`` call to the store, for the keys the cache lacks.

Writes through this wrapper (push, materialize, write_to_online_store, delete) drop the
entries they touch. A write made elsewhere (another process or worker, ``parity
materialize``) is seen once the entry's TTL ran out: that is the staleness bound.
A read that overlapped a write does not fill the cache, so a value older than a write
finished through this wrapper is never cached after it.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from parity.errors import OnlineStoreError
from parity.online.base import (
    OnlineStore,
    OnlineView,
    RecordBatch,
    SupportsAsyncRead,
    SupportsUpdate,
    Updater,
)


@dataclass(frozen=True)
class CacheSettings:
    """``ttl_seconds``: how long an entry is served; ``max_entries``: the LRU's bound."""

    ttl_seconds: float
    max_entries: int


_Found = tuple[list[list[bytes | None]], list[tuple[int, str | None, list[int]]], int, float]


def _missing(
    requests: Sequence[tuple[OnlineView, Sequence[bytes]]],
    wanted: list[tuple[int, str | None, list[int]]],
) -> list[tuple[OnlineView, list[bytes]]]:
    return [(requests[r][0], [requests[r][1][i] for i in pos]) for r, _, pos in wanted]


class ServingOnlineStore(OnlineStore, SupportsUpdate, SupportsAsyncRead):
    """Forwards to ``inner``; caches records when ``cache`` is set.

    ``view_hashes()`` gives the current ``{view name: content hash}``; a view it lacks is
    read without the cache. ``on_read(view, n)`` is called per view and read with the number
    of keys (the server's per-view read counts: here rather than in a hook, since this is on
    the server's hottest path); ``on_cache(hits, misses)`` once per cached read.
    ``read_async`` awaits the inner store's round trip when it ``SupportsAsyncRead`` and
    reads blocking otherwise.
    """

    def __init__(
        self,
        inner: OnlineStore,
        *,
        view_hashes: Callable[[], Mapping[str, str]],
        cache: CacheSettings | None = None,
        on_read: Callable[[str, int], None] | None = None,
        on_cache: Callable[[int, int], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.inner = inner
        self._on_read = on_read
        self._async_read = inner.read_async if isinstance(inner, SupportsAsyncRead) else None
        self.cache = cache
        self._view_hashes = view_hashes
        self._on_cache = on_cache
        self._clock = clock
        self._entries: OrderedDict[tuple[str, bytes], tuple[float, bytes | None]] = OrderedDict()
        self._lock = threading.Lock()
        self._epoch = 0  # bumped by every write; a read that saw it move does not fill
        self._writing = 0

    def __len__(self) -> int:
        return len(self._entries)

    # -- reads --------------------------------------------------------------------------
    def read(
        self, requests: Sequence[tuple[OnlineView, Sequence[bytes]]]
    ) -> list[list[bytes | None]]:
        found = self._lookup(requests)
        if found is None:
            return self.inner.read(requests)
        out, wanted, epoch, now = found
        if wanted:
            fetched = self.inner.read(_missing(requests, wanted))
            self._fill(requests, out, wanted, fetched, epoch, now)
        return out

    async def read_async(
        self, requests: Sequence[tuple[OnlineView, Sequence[bytes]]]
    ) -> list[list[bytes | None]]:
        """``read`` for the event loop: the inner store's round trip awaited where it can be."""
        read = self._async_read
        if read is None:
            return self.read(requests)
        found = self._lookup(requests)
        if found is None:
            return await read(requests)
        out, wanted, epoch, now = found
        if wanted:
            fetched = await read(_missing(requests, wanted))
            self._fill(requests, out, wanted, fetched, epoch, now)
        return out

    def _lookup(self, requests: Sequence[tuple[OnlineView, Sequence[bytes]]]) -> _Found | None:
        """With the cache on, what it holds: (records so far, what to fetch as (request index,
        view hash, positions), the write epoch, now). None: read it all from the store,
        uncached."""
        if self._on_read is not None:
            for view, keys in requests:
                self._on_read(view.name, len(keys))
        if self.cache is None:
            return None
        try:
            hashes = self._view_hashes()
        except Exception:  # registry unreadable: serve from the store, uncached
            return None
        now = self._clock()
        out: list[list[bytes | None]] = []
        wanted: list[tuple[int, str | None, list[int]]] = []
        hits = 0
        entries = self._entries
        with self._lock:
            for r, (view, keys) in enumerate(requests):
                h = hashes.get(view.name)
                row: list[bytes | None] = [None] * len(keys)
                missing: list[int] = []
                for i, key in enumerate(keys):
                    entry = entries.get((h, key)) if h is not None else None
                    if entry is not None and entry[0] > now:
                        row[i] = entry[1]
                        entries.move_to_end((h, key))  # type: ignore[arg-type]
                        hits += 1
                    else:
                        missing.append(i)
                out.append(row)
                if missing:
                    wanted.append((r, h, missing))
            epoch = self._epoch if self._writing == 0 else -1
        if self._on_cache is not None:
            self._on_cache(hits, sum(len(m) for _, _, m in wanted))
        return out, wanted, epoch, now

    def _fill(
        self,
        requests: Sequence[tuple[OnlineView, Sequence[bytes]]],
        out: list[list[bytes | None]],
        wanted: list[tuple[int, str | None, list[int]]],
        fetched: list[list[bytes | None]],
        epoch: int,
        now: float,
    ) -> None:
        """Put the fetched records in ``out`` and, unless a write overlapped, in the cache."""
        assert self.cache is not None
        expires = now + self.cache.ttl_seconds
        entries = self._entries
        with self._lock:
            fill = epoch == self._epoch and self._writing == 0
            for (r, h, pos), records in zip(wanted, fetched, strict=True):
                keys = requests[r][1]
                row = out[r]
                for i, rec in zip(pos, records, strict=True):
                    row[i] = rec
                    if fill and h is not None:
                        entries[(h, keys[i])] = (expires, rec)
                        entries.move_to_end((h, keys[i]))
            while len(entries) > self.cache.max_entries:
                entries.popitem(last=False)

    # -- writes: forward, then drop what they touched -------------------------------------
    def _begin_write(self) -> None:
        with self._lock:
            self._writing += 1
            self._epoch += 1

    def _end_write(self, view: str | None, keys: Sequence[bytes] | None) -> None:
        # the hash first: it may read the registry, which must not happen under the lock
        h = None
        if view is not None:
            try:
                h = self._view_hashes().get(view)
            except Exception:  # registry unreadable: dropping everything is always safe
                h = None
        with self._lock:
            self._writing -= 1
            self._epoch += 1
            if h is None or keys is None:
                self._entries.clear()  # a whole view, or one we cannot name: drop it all
                return
            for key in keys:
                self._entries.pop((h, key), None)

    def _write_through(self, view: str, keys: Sequence[bytes], call: Callable[[], int]) -> int:
        """``call()`` (a write to these keys), with their cache entries dropped after."""
        if self.cache is None:
            return call()
        self._begin_write()
        try:
            return call()
        finally:
            self._end_write(view, keys)

    def write(self, view: OnlineView, batch: RecordBatch) -> int:
        return self._write_through(view.name, batch.keys, lambda: self.inner.write(view, batch))

    def update(self, view: OnlineView, keys: Sequence[bytes], fn: Updater) -> int:
        inner = self.inner
        if not isinstance(inner, SupportsUpdate):
            raise OnlineStoreError(
                f"view {view.name!r}: {type(inner).__name__} cannot update records in place"
            )
        return self._write_through(view.name, keys, lambda: inner.update(view, keys, fn))

    def delete(self, view: OnlineView, keys: Sequence[bytes]) -> int:
        return self._write_through(view.name, keys, lambda: self.inner.delete(view, keys))

    def drop_views(self, names: Sequence[str]) -> None:
        self._begin_write()
        try:
            self.inner.drop_views(names)
        finally:
            self._end_write(None, None)

    def teardown(self) -> None:
        self._begin_write()
        try:
            self.inner.teardown()
        finally:
            self._end_write(None, None)

    def setup(self, views: Sequence[OnlineView]) -> None:
        self.inner.setup(views)

    def close(self) -> None:
        self.inner.close()
