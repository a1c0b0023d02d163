"""Batch materialization: the latest value per entity in a window, offline to online.

Data streams through as Arrow record batches (the engine's aggregate keeps one row per key;
Python holds at most two batches: one being encoded, one being written), so memory stays
bounded by the batch size. Each view's
window is recorded in the registry once its rows are all written, and
``materialize_incremental`` continues from there.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from parity.aggregates.online import chunks, events_by_entity, write_events
from parity.aggregates.state import AggregatePlan
from parity.catalog import Catalog
from parity.definitions import FeatureView
from parity.errors import RetrievalError
from parity.ingest import online_view
from parity.offline.base import OfflineEngine, ViewJoin
from parity.online.base import OnlineStore, OnlineView
from parity.online.writer import CREATED_US, EVENT_US, encode_batch
from parity.registry import Registry

BATCH_ROWS = 50_000


@dataclass(frozen=True)
class ViewMaterialization:
    """What one view's run did."""

    view: str
    start: datetime
    end: datetime
    rows: int
    stored: int
    seconds: float


@dataclass(frozen=True)
class MaterializeResult:
    views: tuple[ViewMaterialization, ...]

    @property
    def rows(self) -> int:
        """Entity keys read from the offline engine (one latest row each)."""
        return sum(v.rows for v in self.views)

    @property
    def stored(self) -> int:
        """Records written (not replaced by a newer one already stored)."""
        return sum(v.stored for v in self.views)

    @property
    def keys(self) -> int:
        return self.rows


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def online_views(catalog: Catalog, names: Sequence[str] | None) -> list[FeatureView]:
    if names is None:
        return [v for v in catalog.views() if v.online]
    views = [catalog.view(n) for n in names]
    offline_only = [v.name for v in views if not v.online]
    if offline_only:
        raise RetrievalError(f"feature views {offline_only} are offline only (online=False)")
    return views


Progress = Callable[[str, int], None]
"""Called with (view name, rows just written) after every batch."""


def materialize_view(
    view: FeatureView,
    start: datetime,
    end: datetime,
    *,
    catalog: Catalog,
    offline: OfflineEngine,
    online: OnlineStore,
    registry: Registry,
    on_batch: Progress | None = None,
    now_us: int | None = None,
) -> ViewMaterialization:
    began = time.perf_counter()
    ov = online_view(view, catalog)
    if view.is_aggregated:
        rows, stored = _materialize_aggregates(
            view,
            ov,
            end,
            catalog=catalog,
            offline=offline,
            online=online,
            now_us=now_us,
            on_batch=on_batch,
        )
        registry.record_materialization(view.name, start, end, rows=rows, stored=stored)
        return ViewMaterialization(view.name, start, end, rows, stored, time.perf_counter() - began)
    vj = ViewJoin(
        view=view,
        source=catalog.source_of(view),
        join_keys=ov.join_keys,
        features=ov.features,
        output_names=ov.features,
        dtypes=tuple(f.dtype for f in view.schema),
    )
    rows = stored = 0
    # Encoding batch n+1 (Python, holds the GIL) overlaps writing batch n (mostly waiting
    # on the store's socket or disk, GIL released): at most two batches are in memory.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="parity-write") as writer:
        pending: Future[int] | None = None
        for batch in offline.latest(vj, start, end, batch_rows=BATCH_ROWS):
            if batch.num_rows == 0:
                continue
            encoded = encode_batch(batch, ov)
            if pending is not None:
                stored += pending.result()
            pending = writer.submit(online.write, ov, encoded)
            rows += batch.num_rows
            if on_batch is not None:
                on_batch(view.name, batch.num_rows)
        if pending is not None:
            stored += pending.result()
    registry.record_materialization(view.name, start, end, rows=rows, stored=stored)
    return ViewMaterialization(view.name, start, end, rows, stored, time.perf_counter() - began)


def _materialize_aggregates(
    view: FeatureView,
    ov: OnlineView,
    end: datetime,
    *,
    catalog: Catalog,
    offline: OfflineEngine,
    online: OnlineStore,
    now_us: int | None,
    on_batch: Progress | None,
) -> tuple[int, int]:
    """Rebuild the partial aggregates of every entity with events in the windows' horizon
    up to ``end``; entries after it, pushed since, are kept. When ``end`` lies in a hop bucket
    that has already closed, the rebuild stops at that bucket's start (a closed bucket is one
    entry and cannot be split). Returns (events read, records written)."""
    source = catalog.source_of(view)
    plan = AggregatePlan.of(view, source.event_id_field)
    now = time.time_ns() // 1000 if now_us is None else now_us
    until = (end - EPOCH) // timedelta(microseconds=1)
    hop = plan.hop_us
    if hop is not None and until % hop and -(-until // hop) * hop <= now:
        # The bucket holding ``end`` has closed: its entry also holds later events, so it
        # cannot be rebuilt up to ``end`` alone; stop at the bucket's start instead.
        until = until // hop * hop
    vj = ViewJoin(
        view=view,
        source=source,
        join_keys=ov.join_keys,
        features=ov.features,
        output_names=ov.features,
        dtypes=tuple(f.dtype for f in view.features),
    )
    # Older events are outside every window a read at or after ``now`` can ask for.
    table = offline.events(vj, now - plan.horizon_us, until)
    groups = events_by_entity(plan, ov, table, table.column(EVENT_US), table.column(CREATED_US))
    stored = 0
    for part in chunks(groups, 1000):
        stored += write_events(online, ov, plan, part, now, replace_until=until)
        if on_batch is not None:
            on_batch(view.name, sum(len(v) for v in part.values()))
    return table.num_rows, stored
