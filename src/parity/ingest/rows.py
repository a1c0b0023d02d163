"""Rows as the stores take them: read any frame into Arrow, then check and type every row.

Every row is checked before anything is written: the columns a view needs are there, of a
type its schema accepts, join keys and event times are not null, each value converts to its
declared type, times are inside the supported range (``parity.clock``: 1900-01-01 up to
2100-01-01 UTC), integers fit Int64 and floats are finite. A bad row gets an error naming
the row and column, and nothing of the batch is written. A feature value may be null (all
rows of a column included). Columns no view reads are not written; they are named in
``ConformedRows.ignored``. Pushed rows without a created timestamp (when the source has that
column) are stamped with unique, increasing times, so the later of two rows for the same key
and event time always wins, offline as online.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from parity.aggregates.exact import FIXED_MAX
from parity.clock import MAX_TIME, MAX_US, MIN_TIME, MIN_US, unique_stamps
from parity.definitions import DataSource, FeatureView
from parity.errors import RetrievalError
from parity.offline.entity_frame import read_entity_frame, utc_naive
from parity.online.base import OnlineView
from parity.online.writer import CREATED_US, EVENT_US
from parity.registry.catalog import Catalog


class IngestError(RetrievalError):
    """Pushed or written rows were refused; nothing of the batch was written.

    ``row``: the index of the first refused row when one row is to blame (None when the
    whole batch is), so a stream consumer can set that event aside and go on."""

    def __init__(self, message: str, *, row: int | None = None) -> None:
        super().__init__(message)
        if row is None:
            found = _ROW.search(message)
            row = int(found.group(1)) if found else None
        self.row = row


_ROW = re.compile(r"(?:^|: )row (\d+):")

MESSAGE_ID = "_parity_message_id"
"""The column holding each stream event's broker identity (a Redis stream entry id, a
JetStream stream sequence): kept in the offline log, and the dedup id of aggregated views
whose source declares no ``event_id_field``."""


@dataclass(frozen=True)
class ConformedRows:
    """Rows checked and typed for some views: columns under the views' names (join keys,
    features, the event id), and each row's event and created time in µs (int64; created
    null when the source has no created timestamp)."""

    table: pa.Table
    times: dict[str, pa.ChunkedArray]
    ignored: tuple[str, ...] = ()
    """Columns of the input that no view reads (not written anywhere)."""
    event_id: str | None = None
    """The column of ``table`` that identifies each event, for aggregated views to count a
    replayed event once: the source's ``event_id_field``, else the broker's message identity
    (``MESSAGE_ID``) for events read from a stream."""

    @property
    def num_rows(self) -> int:
        return int(self.table.num_rows)

    @property
    def event_us(self) -> pa.ChunkedArray:
        return self.times[EVENT_US]

    @property
    def created_us(self) -> pa.ChunkedArray:
        return self.times[CREATED_US]


def _stamps(n: int) -> pa.Array:
    return pa.array(unique_stamps(n), pa.int64())


def _no_sql(_sql: str) -> pa.Table:
    raise IngestError("rows must be a frame, a dict of columns or a file, not an SQL query")


def as_table(df: Any) -> pa.Table:
    """Rows as Arrow: a pandas/pyarrow/polars frame, a dict of columns, or a file path."""
    if isinstance(df, dict):
        columns = {str(name): _column(str(name), values) for name, values in df.items()}
        lengths = {name: len(col) for name, col in columns.items()}
        if len(set(lengths.values())) > 1:
            raise IngestError(f"rows cannot be read: columns differ in length: {lengths}")
        return pa.table(columns)
    try:
        return read_entity_frame(df, _no_sql)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as exc:
        raise IngestError(f"rows cannot be read: {exc}") from None


_INT64 = 2**63


def _column(name: str, values: Any) -> Any:
    """One column of a dict of columns as Arrow; a value that fits none is named by row."""
    if isinstance(values, pa.Array | pa.ChunkedArray):
        return values
    try:
        arr = pa.array(values)
        if pa.types.is_timestamp(arr.type) or pa.types.is_date(arr.type):
            _only_times(name, values)  # pyarrow would read a number among times as one
        return arr
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, TypeError) as exc:
        if not isinstance(values, list | tuple):
            values = list(values) if hasattr(values, "__iter__") else [values]
        for i, v in enumerate(values):
            if type(v) is int and not -_INT64 <= v < _INT64:
                raise IngestError(
                    f"row {i}: column {name!r}: {v} is outside Int64 "
                    f"(-2**63 to 2**63 - 1); integers beyond it are not stored"
                ) from None
        first = next((v for v in values if v is not None), None)
        for i, v in enumerate(values):
            if v is not None and not _same_kind(v, first):
                raise IngestError(
                    f"row {i}: column {name!r}: {v!r} ({type(v).__name__}) does not match the "
                    f"column's other values ({type(first).__name__}, as in row "
                    f"{values.index(first)})"
                ) from None
        raise IngestError(f"column {name!r} cannot be read: {exc}") from None


def _only_times(name: str, values: Any) -> None:
    for i, v in enumerate(values):
        if (
            v is not None
            and not isinstance(v, datetime | date)
            and type(v).__name__ != "datetime64"
        ):
            raise IngestError(
                f"row {i}: column {name!r}: {v!r} ({type(v).__name__}) is not a time, unlike "
                "the column's other values"
            )


def _same_kind(a: Any, b: Any) -> bool:
    numbers = (int, float)
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b)
    if isinstance(a, numbers) and isinstance(b, numbers):
        return True
    return isinstance(a, type(b)) or isinstance(b, type(a))


def _first_null(column: pa.ChunkedArray) -> int:
    return int(pc.index(pc.is_null(column), True).as_py())


def _cast(column: pa.ChunkedArray, target: pa.DataType, what: str) -> pa.ChunkedArray:
    try:
        return column.cast(target, safe=True)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        for i, value in enumerate(column.to_pylist()):
            try:
                pa.array([value], column.type).cast(target, safe=True)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                raise IngestError(
                    f"row {i}: {what} value {value!r} does not fit {target}"
                ) from None
        raise IngestError(f"{what}: {exc}") from None


def conform(
    table: pa.Table,
    views: Sequence[FeatureView],
    source: DataSource,
    catalog: Catalog,
    *,
    label: str,
    message_ids: pa.Array | None = None,
) -> ConformedRows:
    """The rows checked and typed for ``views``; ``IngestError`` naming the row and column.

    ``table``'s columns are named as the views see them (join keys, features) plus the
    source's timestamp (and optional created timestamp) field. ``message_ids``: each row's
    broker identity (rows read from a stream), kept as ``MESSAGE_ID``.
    """
    if table.num_rows == 0:
        raise IngestError(f"{label}: no rows")
    cols = set(table.column_names)
    ts = source.timestamp_field
    if ts not in cols:
        raise IngestError(
            f"{label}: no {ts!r} column (the source's timestamp_field); columns: {sorted(cols)}"
        )
    event = _times(table.column(ts), ts, label)
    if event.null_count:
        raise IngestError(f"{label}: row {_first_null(event)}: {ts!r} is null")
    times = {EVENT_US: event}
    cr = source.created_timestamp_field
    if cr and cr in cols and pa.types.is_null(table.column(cr).type):
        times[CREATED_US] = pa.chunked_array([_stamps(table.num_rows)])  # none given: stamped
    elif cr and cr in cols:
        created = _times(table.column(cr), cr, label)
        if created.null_count:  # rows without a created time get a unique one
            created = pc.coalesce(created, _stamps(table.num_rows))
        times[CREATED_US] = created
    elif cr:
        times[CREATED_US] = pa.chunked_array([_stamps(table.num_rows)])
    else:
        times[CREATED_US] = pa.chunked_array([pa.nulls(table.num_rows, pa.int64())])

    out: dict[str, pa.ChunkedArray] = {}
    for view in views:
        for e in view.entity_names:
            entity = catalog.entity(e)
            for key in entity.join_keys:
                if key in out:
                    continue
                if key not in cols:
                    raise IngestError(
                        f"{label}: no join key column {key!r} (needed by view {view.name!r})"
                    )
                col = table.column(key)
                if col.null_count:
                    raise IngestError(f"{label}: row {_first_null(col)}: join key {key!r} is null")
                if entity.dtype is not None:
                    if not entity.dtype.accepts(col.type):
                        raise IngestError(
                            f"{label}: column {key!r} is {col.type}, entity {e!r} keys are {entity.dtype}"
                        )
                    col = _cast(col, entity.dtype.to_arrow(), f"join key {key!r}")
                out[key] = col
        for field in view.schema:
            if field.name in out:
                continue
            if field.name not in cols:
                raise IngestError(
                    f"{label}: no column {field.name!r} (a feature of view {view.name!r})"
                )
            col = table.column(field.name)
            if col.null_count == len(col):  # no value in any row: typed as declared
                col = pa.chunked_array([pa.nulls(len(col), field.dtype.to_arrow())])
            elif _empty_lists(col.type) and _is_list(field.dtype.to_arrow()):
                # lists with no element to infer a type from: typed as declared
                col = _cast(col, field.dtype.to_arrow(), f"column {field.name!r}")
            if not field.dtype.accepts(col.type):
                raise IngestError(
                    f"{label}: column {field.name!r} is {col.type}, but view {view.name!r} declares {field.dtype}"
                )
            col = _cast(col, field.dtype.to_arrow(), f"column {field.name!r}")
            _check_value(col, field.name, label)
            out[field.name] = col
    _check_sums(views, out, label)
    eid = source.event_id_field
    dedup: str | None = None
    if eid and any(v.is_aggregated for v in views):
        if eid not in cols:
            raise IngestError(f"{label}: no {eid!r} column (the source's event_id_field)")
        out[eid] = table.column(eid)
        dedup = eid
    if message_ids is not None:
        out[MESSAGE_ID] = pa.chunked_array([message_ids])
        dedup = dedup or MESSAGE_ID
    used = {*out, ts, cr, eid}
    ignored = tuple(c for c in table.column_names if c not in used)
    return ConformedRows(pa.table(out), times, ignored, dedup)


def _times(column: pa.ChunkedArray, name: str, label: str) -> pa.ChunkedArray:
    """A time column as int64 µs since the epoch (naive = UTC), every value in range."""
    t = column.type
    if pa.types.is_null(t):
        raise IngestError(f"{label}: row 0: {name!r} is null")
    if not (pa.types.is_timestamp(t) or pa.types.is_date(t)):
        first = next((v for v in column.to_pylist() if v is not None), None)
        row = column.to_pylist().index(first)
        raise IngestError(
            f"{label}: row {row}: {name!r} is {first!r} ({t}), not a time; send timestamps "
            "(ISO 8601 text over HTTP, datetimes or a timestamp column in Python)"
        )
    us = utc_naive(column, f"{label}: column {name!r}").cast(pa.int64())
    _check_range(us, name, label)
    return us


def _check_range(us: pa.ChunkedArray, name: str, label: str) -> None:
    """Every non-null time in ``[MIN_US, MAX_US)``; else the first one outside is named."""
    bad = pc.or_(pc.less(us, MIN_US), pc.greater_equal(us, MAX_US))
    if pc.any(bad).as_py():
        row = int(pc.index(bad, True).as_py())
        value = us[row].as_py()
        raise IngestError(
            f"{label}: row {row}: {name!r} is {_describe_us(value)}, outside the times Parity "
            f"stores ({MIN_TIME:%Y-%m-%d} up to {MAX_TIME:%Y-%m-%d}, UTC)"
        )


def _describe_us(us: int) -> str:
    try:
        return pa.scalar(us, pa.timestamp("us", tz="UTC")).as_py().isoformat()
    except (OverflowError, ValueError, pa.ArrowInvalid):
        return f"{us} µs from 1970"


def _check_value(col: pa.ChunkedArray, name: str, label: str) -> None:
    """A typed feature column's values are storable: finite floats, times in range."""
    t = col.type
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        if not pa.types.is_floating(t.value_type):
            return
        arr = col.combine_chunks()
        at = _first_non_finite(arr.flatten())
        if at is not None:
            row = int(pc.list_parent_indices(arr)[at].as_py())
            value = arr.flatten()[at].as_py()
            raise IngestError(
                f"{label}: row {row}: column {name!r} holds {value!r}; Parity stores finite "
                "floats only (send null for a missing value)"
            )
        return
    if pa.types.is_floating(t):
        bad = _first_non_finite(col)
        if bad is not None:
            raise IngestError(
                f"{label}: row {bad}: column {name!r} is {col[bad].as_py()!r}; Parity stores "
                "finite floats only (send null for a missing value)"
            )
    elif pa.types.is_timestamp(t):
        _check_range(col.cast(pa.timestamp("us", tz=t.tz)).cast(pa.int64()), name, label)


def _is_list(t: pa.DataType) -> bool:
    return pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t)


def _empty_lists(t: pa.DataType) -> bool:
    """A list column whose element type could not be inferred (no list held an element)."""
    return _is_list(t) and pa.types.is_null(t.value_type)


def _first_non_finite(col: pa.ChunkedArray) -> int | None:
    bad = pc.invert(pc.fill_null(pc.is_finite(col), True))
    if not pc.any(bad).as_py():
        return None
    return int(pc.index(bad, True).as_py())


def _check_sums(views: Sequence[FeatureView], columns: dict[str, Any], label: str) -> None:
    """Float columns an aggregated view sums hold finite values below 2**63 in magnitude
    (what its exact fixed-point sums take); checked before anything is written."""
    for view in views:
        for a in view.aggregations:
            if a.function not in ("sum", "mean", "stddev") or a.column not in columns:
                continue
            col = columns[a.column]
            if not pa.types.is_floating(col.type):
                continue
            values = pc.abs(pc.fill_null(col, 0.0))
            bad = pc.invert(pc.less(values, FIXED_MAX))  # NaN compares false: bad too
            if pc.any(bad).as_py():
                row = int(pc.index(bad, True).as_py())
                raise IngestError(
                    f"{label}: row {row}: column {a.column!r} is {col[row].as_py()!r}, which "
                    f"view {view.name!r} cannot sum (finite values below 2**63 only)"
                )


def online_batch(rows: ConformedRows, ov: OnlineView) -> pa.Table:
    """One view's columns and the times, as ``parity.online.writer.encode_batch`` takes them."""
    cols = {k: rows.table.column(k) for k in itertools.chain(ov.join_keys, ov.features)}
    cols.update(rows.times)
    return pa.table(cols)


def log_table(rows: ConformedRows, source: DataSource) -> pa.Table:
    """The rows as the source's files hold them: source column names, UTC timestamps."""
    table = rows.table
    cols: dict[str, Any] = {source.column_for(k): table.column(k) for k in table.column_names}
    utc_us = pa.timestamp("us", tz="UTC")
    cols[source.timestamp_field] = rows.event_us.cast(utc_us)
    if source.created_timestamp_field:
        cols[source.created_timestamp_field] = rows.created_us.cast(utc_us)
    return pa.table(cols)
