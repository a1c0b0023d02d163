"""Each view's freshness against its SLA: how far behind now the newest event it holds is.

``freshness(store)`` returns one row per feature view:

- ``newest_event_time`` / ``lag_seconds``: the newest event time that reached the online
  store (the ``Watermarks`` hook's record of every write, materialization, push and stream
  batch) and now minus it. Null when nothing was written online since the marks began (a
  view served from before, an offline-only view): there is no event time to measure from,
  so such a view is never breached (materialize or push to start its clock).
- ``offline_newest_event_time`` / ``offline_lag_seconds``: the same for the offline side:
  the newest event time of the view's source (a ``max`` in the offline engine; pushes to a
  push source's offline log are in it) or the newest recorded offline write if later.
- ``sla_seconds`` (the view's ``sla.freshness``), ``grace_seconds`` (``sla.grace``, else
  ``monitoring.grace``, default 2 min), ``score`` = ``max(0, 1 - lag / sla)`` (clipped to
  [0, 1]) and ``breached`` = lag > sla + grace: what fires the ``freshness`` alert. A view
  without an SLA has null sla, score and compliance and is never breached. The SLA of a
  view with ``online: false`` is measured on its offline lag (column ``sla_on``).
- ``compliance``: the share of the stored evaluations (each monitor round saves one, a
  ``freshness`` result of view ``""``) within ``window`` (default 1 day) in which the view
  was within its SLA, lag <= sla (grace only delays the alert; it does not make a late view
  compliant); ``samples`` says how many evaluations that is (null compliance: none).

Now is the store's clock (``FeatureStore(clock=...)``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from parity.definitions.base import parse_duration
from parity.errors import MonitoringError, ParityError
from parity.monitoring.hooks import settle
from parity.monitoring.result import MonitorResult
from parity.monitoring.sources import EVENT_US, input_join
from parity.offline.base import SupportsSourceRows, SupportsSQL

if TYPE_CHECKING:
    from parity.definitions import FeatureView
    from parity.registry.catalog import Catalog
    from parity.registry.monitoring import MonitorRecords
    from parity.store import FeatureStore

__all__ = [
    "DEFAULT_WINDOW",
    "SCHEMA",
    "ViewFreshness",
    "evaluate",
    "freshness",
    "judge",
    "parse_window",
]

log = logging.getLogger("parity.monitoring.freshness")

DEFAULT_WINDOW = timedelta(days=1)
"""The compliance window when none is given."""
_TS = pa.timestamp("us", tz="UTC")
SCHEMA = pa.schema(
    [
        ("view", pa.string()),
        ("newest_event_time", _TS),
        ("lag_seconds", pa.float64()),
        ("sla_seconds", pa.float64()),
        ("grace_seconds", pa.float64()),
        ("score", pa.float64()),
        ("breached", pa.bool_()),
        ("compliance", pa.float64()),
        ("samples", pa.int64()),
        ("offline_newest_event_time", _TS),
        ("offline_lag_seconds", pa.float64()),
        ("sla_on", pa.string()),
    ]
)
"""The columns of a freshness result."""
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class ViewFreshness:
    """One view's row (what the runner turns into alerts and gauges)."""

    view: str
    newest_event_time: datetime | None
    lag_seconds: float | None
    sla_seconds: float | None
    grace_seconds: float
    score: float | None
    breached: bool
    offline_newest_event_time: datetime | None
    offline_lag_seconds: float | None
    sla_on: str
    compliance: float | None = None
    samples: int = 0

    @property
    def measured_lag(self) -> float | None:
        """The lag the SLA is judged on (online, or offline for an offline-only view)."""
        return self.lag_seconds if self.sla_on == "online" else self.offline_lag_seconds


def judge(lag: float | None, sla: float | None, grace: float) -> tuple[float | None, bool]:
    """(score, breached) of a lag against an SLA: ``max(0, 1 - lag / sla)`` clipped to
    [0, 1] (an event stamped ahead of now scores 1), and lag > sla + grace. No SLA or no
    lag: (None, False)."""
    if sla is None or lag is None:
        return None, False
    return min(1.0, max(0.0, 1.0 - lag / sla)), lag > sla + grace


def parse_window(window: Any) -> timedelta:
    """``window`` (a timedelta, seconds, or text like ``"1h"``; None: 1 day) as a positive
    timedelta; MonitoringError otherwise."""
    if window is None:
        return DEFAULT_WINDOW
    try:
        value = parse_duration(window)
    except ValueError as exc:
        raise MonitoringError(f"freshness window: {exc}") from None
    if value <= timedelta(0):
        raise MonitoringError(f"freshness window must be positive, got {window!r}")
    return value


def freshness(store: FeatureStore, *, window: Any = None, save: bool = False) -> MonitorResult:
    """One row per feature view (see the module); ``save=True`` stores this evaluation as a
    sample the compliance of later calls counts (what each monitor round does)."""
    span = parse_window(window)
    now = _EPOCH + timedelta(microseconds=store.clock.now_us())
    rows = evaluate(store, now)
    kept = _records(store)
    summary = _summary(rows, now, span)
    samples = _samples(kept, now, span)
    if save:
        samples.append(summary["views"])  # this evaluation counts too
    rows = _with_compliance(rows, samples)
    table = _table(rows)
    rid = None
    if save:
        rid = kept.save("freshness", "", table, summary=summary, start=now, end=now)
    return MonitorResult(
        "freshness",
        table,
        view=None,
        start=now - span,
        end=now,
        scope="online",
        id=rid,
        summary=summary,
    )


def evaluate(store: FeatureStore, now: datetime) -> list[ViewFreshness]:
    """Every view's freshness at ``now`` (without compliance)."""
    settle(store)  # what this process wrote and held back, first
    marks = _records(store).newest()
    catalog = store.catalog()
    default_grace = store.config.monitoring.grace.total_seconds()
    offline_by_source: dict[str, datetime | None] = {}
    rows = []
    for view in sorted(catalog.views(), key=lambda v: v.name):
        online = marks.get((view.name, "online")) if view.online else None
        offline = _later(
            _source_newest(store, catalog, view, offline_by_source),
            marks.get((view.name, "offline")),
        )
        sla = view.sla.freshness if view.sla is not None else None
        grace = view.sla.grace if view.sla is not None and view.sla.grace is not None else None
        grace_s = grace.total_seconds() if grace is not None else default_grace
        sla_s = sla.total_seconds() if sla is not None and sla > timedelta(0) else None
        lag = _lag(now, online)
        offline_lag = _lag(now, offline)
        sla_on = "online" if view.online else "offline"
        measured = lag if view.online else offline_lag
        score, breached = judge(measured, sla_s, grace_s)
        rows.append(
            ViewFreshness(
                view=view.name,
                newest_event_time=online,
                lag_seconds=lag,
                sla_seconds=sla_s,
                grace_seconds=grace_s,
                score=score,
                breached=breached,
                offline_newest_event_time=offline,
                offline_lag_seconds=offline_lag,
                sla_on=sla_on,
            )
        )
    return rows


# -- the offline side ------------------------------------------------------------------------
def _source_newest(
    store: FeatureStore,
    catalog: Catalog,
    view: FeatureView,
    cache: dict[str, datetime | None],
) -> datetime | None:
    """The newest event time in the view's source (None: no rows, or it cannot be read,
    which is logged: one unreadable source must not hide the other views)."""
    source = catalog.source_of(view)
    if source.name in cache:
        return cache[source.name]
    engine = store.offline
    newest = None
    try:
        vj = input_join(catalog, view, [])
        sql_of = getattr(engine, "source_rows_sql", None)
        if isinstance(engine, SupportsSQL) and callable(sql_of):
            # one aggregate in the engine: no row leaves it
            sql = f"SELECT max({EVENT_US}) AS newest FROM ({sql_of(vj, None, None, columns=())})"
            value = engine.query(sql).column(0)[0].as_py()
        elif isinstance(engine, SupportsSourceRows):
            col = engine.source_rows(vj, None, None, columns=()).column(EVENT_US)
            value = pc.max(col).as_py()
        else:
            value = None
        newest = None if value is None else _EPOCH + timedelta(microseconds=int(value))
    except ParityError as exc:
        log.warning(
            "freshness of %r: its source %r cannot be read: %s", view.name, source.name, exc
        )
    cache[source.name] = newest
    return newest


# -- compliance ------------------------------------------------------------------------------
def _summary(rows: list[ViewFreshness], now: datetime, span: timedelta) -> dict[str, Any]:
    return {
        "at": now.isoformat(),
        "window_seconds": span.total_seconds(),
        "breached": [r.view for r in rows if r.breached],
        "views": {
            r.view: {"lag": r.measured_lag, "sla": r.sla_seconds, "grace": r.grace_seconds}
            for r in rows
            if r.sla_seconds is not None
        },
    }


def _samples(kept: MonitorRecords, now: datetime, span: timedelta) -> list[dict[str, Any]]:
    """The stored evaluations of the window ending ``now`` (by the store's clock, which is
    what they were stamped with; the registry's created time is the wall clock's)."""
    since = min(now, datetime.now(UTC)) - span - timedelta(minutes=1)
    lo = now - span
    out = []
    for record in kept.results("freshness", "", since=since):
        at = record.end
        if at is not None and lo <= at <= now:
            out.append(record.summary.get("views") or {})
    return out


def _with_compliance(
    rows: list[ViewFreshness], samples: list[dict[str, Any]]
) -> list[ViewFreshness]:
    out = []
    for r in rows:
        if r.sla_seconds is None:
            out.append(r)
            continue
        within = total = 0
        for views in samples:
            entry = views.get(r.view)
            if not entry or entry.get("lag") is None or entry.get("sla") is None:
                continue  # not measured then (no SLA yet, nothing written yet)
            total += 1
            within += float(entry["lag"]) <= float(entry["sla"])
        compliance = within / total if total else None
        out.append(_replace(r, compliance=compliance, samples=total))
    return out


# -- helpers ---------------------------------------------------------------------------------
def _replace(r: ViewFreshness, **changes: Any) -> ViewFreshness:
    from dataclasses import replace

    return replace(r, **changes)


def _records(store: FeatureStore) -> MonitorRecords:
    from parity.registry.monitoring import MonitorRecords

    return MonitorRecords(store.registry)


def _later(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)


def _lag(now: datetime, newest: datetime | None) -> float | None:
    return None if newest is None else (now - newest).total_seconds()


def _table(rows: list[ViewFreshness]) -> pa.Table:
    names = SCHEMA.names
    data = {n: [getattr(r, n) for r in rows] for n in names}
    return pa.table(data, schema=SCHEMA)
