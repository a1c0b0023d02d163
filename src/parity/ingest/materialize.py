"""Batch materialization: the latest value per entity in a window, offline to online.

``materialize(ctx, starts, end)`` runs each view (two at a time) and records its window in
the registry; ``window_starts`` and ``incremental_starts`` say where each view starts;
``materialize_window`` and ``materialize_since`` do both for the facade, taking times as
datetimes or ISO 8601 text (``parity.clock.parse_time``: naive = UTC, ``"now"`` is the
store's clock).

Windows are checked before anything runs, and a refused run records nothing: every time
inside the supported range (``parity.clock.MIN_TIME`` to ``MAX_TIME``), start not after
end, an end no later than the store's clock plus ``CLOCK_SKEW`` (a window ending in the
future cannot be complete, events up to its end may still arrive, and recording it would
make later incremental runs skip until then), and for an incremental run an end not before
the view's recorded one. ``reset_intervals`` forgets a view's recorded windows.

Data streams through as Arrow record batches (the engine's aggregate keeps one row per key;
Python holds at most two batches: one being encoded, one being written), so memory stays
bounded by the batch size. Each view's
window is recorded in the registry once its rows are all written, and
``materialize_incremental`` continues from there.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pyarrow.compute as pc

from parity.aggregates.state import AggregatePlan
from parity.clock import MAX_TIME, MIN_TIME, parse_time, utc
from parity.definitions import FeatureView
from parity.errors import OnlineStoreError, RetrievalError
from parity.governance.context import carry
from parity.ingest.aggregated import chunks, events_by_entity, write_events
from parity.ingest.write import WriteContext
from parity.offline.base import SupportsCountedLatest, SupportsEvents, ViewJoin
from parity.online.base import OnlineView
from parity.online.writer import CREATED_US, EVENT_US
from parity.progress import RowCounter, progress_bar
from parity.registry.catalog import Catalog

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
    newest_event_us: int | None = None
    """The newest event time written online (µs since the epoch); None when nothing was."""


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

CLOCK_SKEW = timedelta(minutes=5)
"""How far past the store's clock a window may end: the caller's clock may run ahead."""


def checked_time(value: datetime, what: str) -> datetime:
    """``value`` as aware UTC, refused unless it is a datetime inside the supported range."""
    if not isinstance(value, datetime):
        raise RetrievalError(
            f"materialize: {what} must be a datetime, not {type(value).__name__} {value!r}"
        )
    try:
        value = utc(value)
    except OverflowError:  # an offset that takes it past year 1 or 9999
        raise RetrievalError(
            f"materialize: {what} {value.isoformat()} is outside the supported time range"
            f" {MIN_TIME.isoformat()} to {MAX_TIME.isoformat()} (exclusive)"
        ) from None
    if not MIN_TIME <= value < MAX_TIME:
        raise RetrievalError(
            f"materialize: {what} {value.isoformat()} is outside the supported time range"
            f" {MIN_TIME.isoformat()} to {MAX_TIME.isoformat()} (exclusive)"
        )
    return value


def _check_not_future(ctx: WriteContext, end: datetime) -> None:
    now = EPOCH + timedelta(microseconds=ctx.clock.now_us())
    if end > now + CLOCK_SKEW:
        minutes = CLOCK_SKEW // timedelta(minutes=1)
        raise RetrievalError(
            f"materialize: end {end.isoformat()} is in the future (now is {now.isoformat()}, "
            f"{minutes} minutes of clock skew allowed): a window that has not ended yet "
            "cannot be complete, since events up to its end may still arrive; give an end "
            "no later than now"
        )


TimeLike = datetime | str
"""A datetime (naive = UTC), or ISO 8601 text or ``"now"``."""


def _time(ctx: WriteContext, value: TimeLike, what: str) -> datetime:
    def now() -> datetime:
        return EPOCH + timedelta(microseconds=ctx.clock.now_us())

    return parse_time(value, f"materialize: {what}", now=now)


def materialize_window(
    ctx: WriteContext,
    views: Sequence[str] | None,
    start: TimeLike,
    end: TimeLike,
    *,
    progress: bool = False,
) -> MaterializeResult:
    """Every named (default: every online) view over ``[start, end]``."""
    begin, finish = _time(ctx, start, "start"), _time(ctx, end, "end")
    return materialize(
        ctx, window_starts(ctx.catalog, views, begin, finish), finish, progress=progress
    )


def materialize_since(
    ctx: WriteContext, views: Sequence[str] | None, end: TimeLike, *, progress: bool = False
) -> MaterializeResult:
    """Each view from where its last run ended (first run: ``end - ttl``) up to ``end``."""
    finish = _time(ctx, end, "end")
    return materialize(ctx, incremental_starts(ctx, views, finish), finish, progress=progress)


def window_starts(
    catalog: Catalog, views: Sequence[str] | None, start: datetime, end: datetime
) -> dict[str, datetime]:
    """Every named (default: every online) view starting at ``start``."""
    start, end = checked_time(start, "start"), checked_time(end, "end")
    if end < start:
        raise RetrievalError(
            f"materialize: end {end.isoformat()} is before start {start.isoformat()}"
        )
    return {v.name: start for v in online_views(catalog, views)}


def incremental_starts(
    ctx: WriteContext, views: Sequence[str] | None, end: datetime
) -> dict[str, datetime]:
    """Each view from where its last run ended (first run: ``end - ttl``, or the start of
    the supported range), refused when ``end`` is in the future or before a recorded end."""
    end = checked_time(end, "end")
    _check_not_future(ctx, end)
    done = ctx.registry().materialized_until()
    starts, behind = {}, []
    for view in online_views(ctx.catalog, views):
        if view.name in done:
            starts[view.name] = done[view.name]
            if end < done[view.name]:
                behind.append(view.name)
        elif view.ttl is not None and view.ttl < end - MIN_TIME:
            starts[view.name] = end - view.ttl
        else:
            starts[view.name] = MIN_TIME
    if behind:
        lines = "; ".join(f"{n!r} up to {done[n].isoformat()}" for n in behind)
        raise RetrievalError(
            f"materialize-incremental: end {end.isoformat()} is before the end recorded for "
            f"feature view(s) {lines}; an incremental run continues from its view's recorded "
            "end. To load an earlier window, materialize(start, end); to start a view's "
            "incremental runs afresh (from end - ttl), reset its recorded interval: "
            f"store.reset_materialization({behind!r}) or "
            f"`parity materialize-reset {' '.join(behind)}`"
        )
    return starts


def reset_intervals(ctx: WriteContext, views: Sequence[str]) -> dict[str, datetime | None]:
    """Forget the recorded materialization windows of these feature views, so the next
    incremental run starts afresh; online values stay. Returns each view's recorded end
    before the reset (None when it had none); an unknown name changes nothing."""
    names = [views] if isinstance(views, str) else list(views)
    if not names:
        raise RetrievalError("reset_materialization: name at least one feature view")
    for name in names:
        ctx.catalog.view(name)  # ObjectNotFoundError naming it, before anything changes
    registry = ctx.registry()
    done = registry.materialized_until()
    registry.forget_materializations(names)
    return {name: done.get(name) for name in names}


def materialize(
    ctx: WriteContext, starts: dict[str, datetime], end: datetime, *, progress: bool = False
) -> MaterializeResult:
    """Materialize each view from its start up to ``end`` (a progress bar when asked).

    Refused before anything runs, recording nothing, when a time is outside the supported
    range, a start is after ``end``, or ``end`` is in the future (beyond ``CLOCK_SKEW``)."""
    end = checked_time(end, "end")
    for name, start in starts.items():
        if checked_time(start, f"start of {name!r}") > end:
            raise RetrievalError(
                f"materialize: feature view {name!r} would start at {utc(start).isoformat()}, "
                f"after the end {end.isoformat()}"
            )
    _check_not_future(ctx, end)
    now_us = ctx.clock.now_us()
    # Views run two at a time: one view's engine aggregate (native, GIL released)
    # overlaps another's encoding and writing, so the cores stay busy.
    with (
        progress_bar(progress) as on_batch,
        ThreadPoolExecutor(max_workers=2, thread_name_prefix="parity-materialize") as pool,
    ):
        futures = [
            # carry: each view's hooks see the caller's actor (access checks, the audit log)
            pool.submit(
                carry(_observed_view), ctx, ctx.catalog.view(name), start, end, on_batch, now_us
            )
            for name, start in starts.items()
        ]
        runs, errors = [], []
        for f in futures:  # every view runs: one refused (its checks) leaves the others be
            try:
                runs.append(f.result())
            except Exception as exc:
                errors.append(exc)
    if errors:
        for other in errors[1:]:
            errors[0].add_note(f"also: {type(other).__name__}: {other}")
        raise errors[0]
    return MaterializeResult(tuple(runs))


def _observed_view(
    ctx: WriteContext,
    view: FeatureView,
    start: datetime,
    end: datetime,
    on_batch: Progress | None,
    now_us: int,
) -> ViewMaterialization:
    result: list[ViewMaterialization] = []
    read: Read | None = None
    if _gated(view):  # the gate sees every row before any is written
        read = _read_all(ctx, view, start, end, now_us)
    data = None if read is None else read.table

    def run() -> tuple[int, int, int | None]:
        result.append(
            materialize_view(ctx, view, start, end, on_batch=on_batch, now_us=now_us, read=read)
        )
        return result[0].rows, result[0].stored, result[0].newest_event_us

    rows = None if data is None else data.num_rows
    ctx.observed("materialize", view.name, [view.name], rows, data, run)
    return result[0]


def _gated(view: FeatureView) -> bool:
    """Whether writes to the view are checked (``on_check_failure`` and some checks)."""
    return view.on_check_failure is not None and any(f.checks is not None for f in view.schema)


@dataclass(frozen=True)
class Read:
    """A view's rows read before its write, for the ``before_write`` hooks to see them: the
    latest rows of a plain view, or an aggregated view's raw events."""

    table: pa.Table
    until: int | None = None
    """An aggregated view's rebuild end (µs)."""


def _read_all(
    ctx: WriteContext, view: FeatureView, start: datetime, end: datetime, now_us: int
) -> Read:
    """Everything the view's run would write, read at once (memory: the whole window's
    latest rows, or events): a view whose writes are checked is checked as a whole."""
    ov = OnlineView.of(view, ctx.catalog.join_keys_of(view))
    if view.is_aggregated:
        table, until = _events(ctx, view, ov, end, now_us=now_us)
        return Read(table, until)
    reader = ctx.offline().latest(
        _plain_join(ctx.catalog, view, ov), start, end, batch_rows=BATCH_ROWS
    )
    return Read(reader.read_all())


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
    ctx: WriteContext,
    view: FeatureView,
    start: datetime,
    end: datetime,
    *,
    on_batch: Progress | None = None,
    now_us: int | None = None,
    read: Read | None = None,
) -> ViewMaterialization:
    """One view's run: the engine's latest rows (or events) written online, then recorded.
    ``read``: the rows read already (``_read_all``), written instead of reading again."""
    began = time.perf_counter()
    catalog, online, registry = ctx.catalog, ctx.online(), ctx.registry()
    ov = OnlineView.of(view, catalog.join_keys_of(view))
    if view.is_aggregated:
        rows, stored, top = _materialize_aggregates(
            ctx, view, ov, end, now_us=now_us, on_batch=on_batch, read=read
        )
        registry.record_materialization(view.name, start, end, rows=rows, stored=stored)
        seconds = time.perf_counter() - began
        return ViewMaterialization(view.name, start, end, rows, stored, seconds, top)
    vj = _plain_join(catalog, view, ov)
    rows = stored = 0
    newest: int | None = None
    # Encoding batch n+1 (Python, holds the GIL) overlaps writing batch n (mostly waiting
    # on the store's socket or disk, GIL released): at most two batches are in memory.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="parity-write") as writer:
        pending: Future[int] | None = None
        offline = ctx.offline()
        reader: Iterable[pa.RecordBatch]
        if read is not None:
            reader = read.table.to_batches(max_chunksize=BATCH_ROWS)
            if isinstance(on_batch, RowCounter):
                on_batch.set_total(view.name, read.table.num_rows)
        elif (
            isinstance(on_batch, RowCounter)
            and on_batch.wants_totals
            and isinstance(offline, SupportsCountedLatest)
        ):  # a bar is drawn: its total and ETA are worth a count
            total, reader = offline.latest_counted(vj, start, end, batch_rows=BATCH_ROWS)
            on_batch.set_total(view.name, total)
        else:
            reader = offline.latest(vj, start, end, batch_rows=BATCH_ROWS)
        for batch in reader:
            if batch.num_rows == 0:
                continue
            encoded = ctx.encode(view, ov, batch, False)
            top = pc.max(batch.column("__event_us")).as_py()
            newest = top if newest is None or (top is not None and top > newest) else newest
            if pending is not None:
                stored += pending.result()
            pending = writer.submit(online.write, ov, encoded)
            rows += batch.num_rows
            if on_batch is not None:
                on_batch(view.name, batch.num_rows)
        if pending is not None:
            stored += pending.result()
    registry.record_materialization(view.name, start, end, rows=rows, stored=stored)
    seconds = time.perf_counter() - began
    return ViewMaterialization(view.name, start, end, rows, stored, seconds, newest)


def _plain_join(catalog: Catalog, view: FeatureView, ov: OnlineView) -> ViewJoin:
    return ViewJoin(
        view=view,
        source=catalog.source_of(view),
        join_keys=ov.join_keys,
        features=ov.features,
        output_names=ov.features,
        dtypes=tuple(f.dtype for f in view.schema),
    )


def _materialize_aggregates(
    ctx: WriteContext,
    view: FeatureView,
    ov: OnlineView,
    end: datetime,
    *,
    now_us: int | None,
    on_batch: Progress | None,
    read: Read | None = None,
) -> tuple[int, int, int | None]:
    """Rebuild the partial aggregates of every entity with events in the windows' horizon
    up to ``end``; entries after it, pushed since, are kept. When ``end`` lies in a hop bucket
    that has already closed, the rebuild stops at that bucket's start (a closed bucket is one
    entry and cannot be split). Returns (events read, records written, newest event µs)."""
    plan = AggregatePlan.of(view, ctx.catalog.source_of(view).event_id_field)
    now = time.time_ns() // 1000 if now_us is None else now_us
    if read is None or read.until is None:
        table, until = _events(ctx, view, ov, end, now_us=now)
    else:
        table, until = read.table, read.until
    groups = events_by_entity(plan, ov, table, table.column(EVENT_US), table.column(CREATED_US))
    if isinstance(on_batch, RowCounter):  # the events are read: their count is free
        on_batch.set_total(view.name, table.num_rows)
    stored = 0
    for part in chunks(groups, 1000):
        stored += write_events(ctx.online(), ov, plan, part, now, replace_until=until)
        if on_batch is not None:
            on_batch(view.name, sum(len(v) for v in part.values()))
    top = pc.max(table.column(EVENT_US)).as_py() if table.num_rows else None
    return table.num_rows, stored, top


def _events(
    ctx: WriteContext, view: FeatureView, ov: OnlineView, end: datetime, *, now_us: int | None
) -> tuple[pa.Table, int]:
    """An aggregated view's raw events to rebuild from, and the rebuild's end (µs)."""
    catalog, offline = ctx.catalog, ctx.offline()
    if not isinstance(offline, SupportsEvents):
        raise OnlineStoreError(
            f"view {view.name!r} aggregates events; materializing it needs an offline engine "
            f"that reads raw events, which {type(offline).__name__} cannot"
        )
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
    return offline.events(vj, now - plan.horizon_us, until), until
