"""Per-feature statistics of a view: ``store.profile(view, start, end)`` and its history.

::

    result = store.profile("driver_hourly_stats", "2024-01-01", "now")
    result.to_pandas()          # one row per feature: rows, nulls, distinct, mean, p50...
    store.profiles("driver_hourly_stats")    # stored profiles, newest first

Offline (the default), the statistics are over the view's source rows with event time in
[start, end] (None: unbounded): computed inside the offline engine when it has
``SupportsProfile`` (DuckDB: two SQL passes), else in Arrow over ``source_rows``. A plain
view's features are profiled; an aggregated view's inputs (the columns its aggregations
read).

Online (``online=True``), they are over the online store's current values. No online store
can list what it holds, so the entities are the distinct join keys of the view's source rows
in [start, end], read through ``get_online_features`` in batches; a key the store has no
(live) record of counts as a null of every feature, and ``summary["missing"]`` says how
many there were. An aggregated view's online features are its aggregations' outputs.

Timestamps are profiled as seconds since the epoch (UTC). ``std`` is the sample standard
deviation (ddof 1). The result table's shape is ``parity.offline.base.PROFILE_SCHEMA``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from parity.definitions import FeatureView, Field
from parity.discovery.usage import uncounted
from parity.errors import MonitoringError
from parity.monitoring.profile_arrow import profile_table
from parity.monitoring.result import MonitorResult
from parity.monitoring.sources import fields_of, input_join, keep, read_rows, time_range
from parity.offline.base import PROFILE_QUANTILES, SupportsProfile, SupportsSourceRows

if TYPE_CHECKING:
    from parity.registry.monitoring import ResultRecord
    from parity.store import FeatureStore

__all__ = ["DISTINCT", "ONLINE_BATCH", "history", "profile"]

DISTINCT = ("exact", "approx")
ONLINE_BATCH = 10_000
"""Entity keys per ``get_online_features`` call of an online profile."""


def profile(
    store: FeatureStore,
    view: str,
    start: datetime | str | None = None,
    end: datetime | str | None = None,
    *,
    online: bool = False,
    save: bool = True,
    features: Sequence[str] | None = None,
    distinct: str = "exact",
    bins: int = 20,
    top_k: int = 10,
) -> MonitorResult:
    """Statistics per feature of ``view`` (all features, or ``features`` in that order).

    ``distinct``: ``"exact"`` (count distinct) or ``"approx"`` (HyperLogLog, where the
    engine has it). Stored in the registry unless ``save=False``.
    Raises ObjectNotFoundError for an unknown view and MonitoringError for an unknown
    feature, a bad option, a range with start after end, or no rows in the range.
    """
    if distinct not in DISTINCT:
        raise MonitoringError(f"profile: distinct must be one of {DISTINCT}, not {distinct!r}")
    if bins < 1 or top_k < 1:
        raise MonitoringError(f"profile: bins and top_k must be at least 1 (got {bins}, {top_k})")
    if features is not None and not list(features):
        raise MonitoringError(f"profile of {view!r}: name at least one feature")
    lo, hi = time_range(start, end)
    fv = store.catalog().view(view)
    if online:
        table, summary = _online(store, fv, _online_fields(fv, features), lo, hi, bins, top_k)
    else:
        table, summary = _offline(store, fv, fields_of(fv, features), lo, hi, distinct, bins, top_k)
    rows = int(summary["rows"])
    if rows == 0:
        what = "entity keys" if online else "source rows"
        raise MonitoringError(f"feature view {view!r} has no {what} in {_range_text(lo, hi)}")
    scope = "online" if online else "offline"
    summary = {"rows": rows, "features": table.num_rows, "scope": scope, **summary}
    table, withheld = _withhold(store, view, table)
    if withheld:
        summary["withheld"] = withheld
    rid = keep(store, "profile", view, table, summary, lo, hi, scope=scope, save=save)
    return MonitorResult(
        kind="profile", table=table, view=view, start=lo, end=hi, scope=scope, id=rid,
        summary=summary,
    )  # fmt: skip


WITHHELD = ("mean", "std", "min", "max", *(f"p{round(q * 100)}" for q in PROFILE_QUANTILES),
            "histogram", "top")  # fmt: skip
"""What a profile leaves out for a feature its caller is served masked: every statistic
that shows values (counts, nulls and the distinct count stay)."""


def _withhold(store: FeatureStore, view: str, table: pa.Table) -> tuple[pa.Table, list[str]]:
    """``table`` with the value statistics of masked features nulled, and their names. The
    profile kept in the registry is this one: never more than its caller could see."""
    from parity.governance.shaping import masked_features

    names = table.column("feature").to_pylist()
    hidden = masked_features(store, view, names)
    if not hidden:
        return table, []
    keep_row = pa.array([n not in hidden for n in names], pa.bool_())
    for column in WITHHELD:
        i = table.schema.get_field_index(column)
        col = table.column(i)
        nulls = pa.nulls(len(table), col.type)
        table = table.set_column(i, table.field(i), pc.if_else(keep_row, col, nulls))
    return table, sorted(hidden)


def history(store: FeatureStore, view: str) -> list[ResultRecord]:
    """The stored profiles of ``view``, newest first; ObjectNotFoundError when the view is
    unknown and none were stored (a deleted view's profiles stay listed)."""
    from parity.registry.monitoring import MonitorRecords

    records = MonitorRecords(store.registry).results("profile", view)
    if not records:
        store.catalog().view(view)
    return records


def _range_text(lo: datetime | None, hi: datetime | None) -> str:
    if lo is None and hi is None:
        return "its source (no range given)"
    if hi is None:
        return f"the range from {lo.isoformat()} on"  # type: ignore[union-attr]
    if lo is None:
        return f"the range up to {hi.isoformat()}"
    return f"the range {lo.isoformat()} .. {hi.isoformat()}"


def _offline(
    store: FeatureStore,
    view: FeatureView,
    fields: list[Field],
    lo: datetime | None,
    hi: datetime | None,
    distinct: str,
    bins: int,
    top_k: int,
) -> tuple[pa.Table, dict[str, Any]]:
    engine = store.offline
    if isinstance(engine, SupportsProfile):
        vj = input_join(store.catalog(), view, fields)
        table = engine.profile(vj, lo, hi, distinct=distinct, bins=bins, top_k=top_k)
        computed = "engine"
    else:
        rows = read_rows(store, view, fields, lo, hi)
        table = profile_table(rows, [(f.name, f.dtype) for f in fields], bins=bins, top_k=top_k)
        computed = "arrow"
    n = int(table.column("rows")[0].as_py()) if table.num_rows else 0
    exact = table.num_rows == 0 or all(table.column("distinct_exact").to_pylist())
    return table, {"rows": n, "computed": computed, "distinct": "exact" if exact else "approx"}


def _online_fields(view: FeatureView, features: Sequence[str] | None) -> list[Field]:
    """The view's served features (all, or ``features``); MonitoringError naming an
    unknown one."""
    by_name = {f.name: f for f in view.features}
    if features is None:
        return list(by_name.values())
    unknown = [f for f in features if f not in by_name]
    if unknown:
        raise MonitoringError(
            f"feature view {view.name!r} has no feature(s) {unknown}; it has {sorted(by_name)}"
        )
    return [by_name[f] for f in features]


def _online(
    store: FeatureStore,
    view: FeatureView,
    fields: list[Field],
    lo: datetime | None,
    hi: datetime | None,
    bins: int,
    top_k: int,
) -> tuple[pa.Table, dict[str, Any]]:
    catalog = store.catalog()
    keys = list(catalog.join_keys_of(view))
    if not isinstance(store.offline, SupportsSourceRows):
        raise MonitoringError(
            f"feature view {view.name!r}: an online profile reads its entity keys from the "
            f"offline source, which the engine {type(store.offline).__name__} cannot list"
        )
    vj = input_join(catalog, view, [])
    rows = store.offline.source_rows(vj, lo, hi, columns=())
    entities = rows.select(keys).group_by(keys).aggregate([])
    refs = [f"{view.name}:{f.name}" for f in fields]
    schema = pa.schema([(f.name, f.dtype.to_arrow()) for f in fields])
    parts: list[pa.Table] = [schema.empty_table()]
    missing = 0
    for at in range(0, entities.num_rows, ONLINE_BATCH):
        batch = entities.slice(at, ONLINE_BATCH)
        with uncounted():  # monitoring's read, not a consumer's
            response = store.get_online_features(
                refs, entities={k: batch.column(k).to_pylist() for k in keys}
            )
        # Features of one view share one record, so the first one's status is the key's.
        missing += sum(1 for s in response.statuses[fields[0].name] if s != "present")
        parts.append(response.to_arrow().select(schema.names).cast(schema))
    values = pa.concat_tables(parts)
    table = profile_table(values, [(f.name, f.dtype) for f in fields], bins=bins, top_k=top_k)
    summary = {
        "rows": entities.num_rows,
        "computed": "arrow",
        "distinct": "exact",
        "keys_from": "offline source",
        "missing": missing,
    }
    return table, summary
