"""What monitoring reads: a view's input columns in a time range, and the view's version.

A plain view's inputs are its features; an aggregated view's are the source columns its
aggregations read (its ``schema``): monitoring watches what comes in, before it is summed.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from parity.clock import parse_time
from parity.definitions import FeatureView, Field
from parity.errors import MonitoringError
from parity.offline.base import SupportsSourceRows, ViewJoin

if TYPE_CHECKING:
    from parity.registry.catalog import Catalog
    from parity.store import FeatureStore

__all__ = [
    "EVENT_US",
    "fields_of",
    "input_join",
    "keep",
    "read_rows",
    "time_range",
    "view_version",
]

EVENT_US = "__event_us"


def fields_of(view: FeatureView, features: Sequence[str] | None = None) -> list[Field]:
    """The view's input fields (all, or ``features`` in that order); MonitoringError naming
    an unknown one."""
    fields = view.schema_ if view.is_aggregated else view.features
    if features is None:
        return list(fields)
    by_name = {f.name: f for f in fields}
    unknown = [f for f in features if f not in by_name]
    if unknown:
        raise MonitoringError(
            f"feature view {view.name!r} has no feature(s) {unknown}; it has {sorted(by_name)}"
        )
    return [by_name[f] for f in features]


def input_join(catalog: Catalog, view: FeatureView, fields: Sequence[Field]) -> ViewJoin:
    """A ``ViewJoin`` over ``fields`` of the view's source (what ``source_rows`` reads)."""
    return ViewJoin(
        view=view,
        source=catalog.source_of(view),
        join_keys=tuple(catalog.join_keys_of(view)),
        features=tuple(f.name for f in fields),
        output_names=tuple(f.name for f in fields),
        dtypes=tuple(f.dtype for f in fields),
    )


def time_range(
    start: datetime | str | None, end: datetime | str | None, *, now: Any = None
) -> tuple[datetime | None, datetime | None]:
    """(start, end) as aware datetimes (None: unbounded); MonitoringError when start is
    after end."""
    lo = None if start is None else parse_time(start, "start", now=now)
    hi = None if end is None else parse_time(end, "end", now=now)
    if lo is not None and hi is not None and lo > hi:
        raise MonitoringError(
            f"the range is empty: start {lo.isoformat()} is after end {hi.isoformat()}"
        )
    return lo, hi


def read_rows(
    store: FeatureStore,
    view: FeatureView,
    fields: Sequence[Field],
    start: datetime | None,
    end: datetime | None,
) -> pa.Table:
    """The source rows of ``view`` in [start, end]: join keys, ``fields``, ``__event_us``."""
    engine = store.offline
    if not isinstance(engine, SupportsSourceRows):
        raise MonitoringError(
            f"feature view {view.name!r}: the offline engine {type(engine).__name__} cannot "
            "read source rows in a range, which monitoring needs"
        )
    vj = input_join(store.catalog(), view, fields)
    return engine.source_rows(vj, start, end, columns=vj.features)


def view_version(store: FeatureStore, view: str) -> int | None:
    """The registry's current version of the view (None when it has no history)."""
    records = [r for r in store.history(view, "feature_view") if r.action != "delete"]
    return records[-1].number if records else None


def keep(
    store: FeatureStore,
    kind: str,
    view: str,
    table: pa.Table,
    summary: dict[str, Any],
    start: datetime | None,
    end: datetime | None,
    *,
    scope: str = "offline",
    save: bool = True,
) -> int | None:
    """Store a view's result in the registry with the view's current version; its id, or
    None when ``save`` is false."""
    if not save:
        return None
    from parity.registry.monitoring import MonitorRecords

    return MonitorRecords(store.registry).save(
        kind,
        view,
        table,
        summary=summary,
        start=start,
        end=end,
        scope=scope,
        view_version=view_version(store, view),
    )
