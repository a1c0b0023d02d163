"""Arrow batches to encoded online records: one path for materialize, push and direct writes.

Input columns: the view's join keys and features under their own names, ``__event_us``
(int64, µs since the epoch) and ``__created_us`` (int64, null when absent).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgpack
import pyarrow as pa

from parity.clock import MAX_US, MIN_US
from parity.errors import DataSourceError
from parity.lazy import LazyModule
from parity.online.base import OnlineView, RecordBatch
from parity.online.encoding import OFFSET, describe_key, encode_key, encode_key_part, from_micros

if TYPE_CHECKING:
    import pyarrow.compute as pc
else:
    pc = LazyModule("pyarrow.compute", globals(), "pc")  # a plan never writes

EVENT_US = "__event_us"
CREATED_US = "__created_us"


def _pylist(column: pa.ChunkedArray | pa.Array) -> list:
    t = column.type
    if pa.types.is_timestamp(t):
        # Timestamps travel as µs integers (msgpack has no datetime); the reader turns them back.
        column = column.cast(pa.timestamp("us", tz=t.tz)).cast(pa.int64())
    elif pa.types.is_date(t):
        column = column.cast(pa.timestamp("us")).cast(pa.int64())
    return column.to_pylist()


def _int_keys(column: pa.ChunkedArray | pa.Array) -> list[bytes] | None:
    """Entity keys of an integer key column without nulls, built in bulk; else None."""
    if not pa.types.is_integer(column.type) or column.null_count:
        return None
    return [b"i%d" % v for v in column.to_pylist()]


def _headers(events: list[int], created: list[int | None]) -> list[bytes]:
    # Inlined ``encoding.header`` (a call per row costs as much as the formatting).
    off = OFFSET
    return [
        b"%016d%016d" % (ev + off, 0 if cr is None else cr + off)
        for ev, cr in zip(events, created)  # noqa: B905 - equal lengths by construction
    ]


def encode_batch(
    batch: pa.RecordBatch | pa.Table, view: OnlineView, *, checked: bool = False
) -> RecordBatch:
    """Keys and records for every row of ``batch``, in row order.

    Times outside the supported range and non-finite floats are refused
    (``DataSourceError`` naming the entity) unless ``checked``: rows conformed by
    ``parity.ingest.rows.conform`` (pushes, direct writes) were checked there already."""
    names = view.join_keys
    fast = _int_keys(batch.column(names[0])) if len(names) == 1 else None
    if fast is not None:
        keys = fast
    elif len(names) == 1:
        name = names[0]
        keys = [encode_key_part(v, name) for v in batch.column(name).to_pylist()]
    else:
        key_cols = [batch.column(k).to_pylist() for k in names]
        keys = [encode_key(vals, names) for vals in zip(*key_cols, strict=True)]
    events = batch.column(EVENT_US).to_pylist()
    created = batch.column(CREATED_US).to_pylist()
    features = view.features
    if not checked:
        _check_times(batch, view, keys)
        for f in features:
            _check_finite(batch, f, view, keys)
    cols = [_pylist(batch.column(f)) for f in features]
    pack = msgpack.Packer(use_bin_type=True).pack
    # Rows are zipped without strict= (every column has the batch's length): the per-row
    # check is measurable at a million rows.
    bodies = [pack(dict(zip(features, vals))) for vals in zip(*cols)]  # noqa: B905
    records = [h + b for h, b in zip(_headers(events, created), bodies)]  # noqa: B905
    return RecordBatch(keys=keys, event_us=events, created_us=created, records=records)


def _check_times(batch: pa.RecordBatch | pa.Table, view: OnlineView, keys: list[bytes]) -> None:
    """Event and created times inside the supported range (what a record's header holds)."""
    for name in (EVENT_US, CREATED_US):
        column = batch.column(name)
        if not len(column) or column.null_count == len(column):
            continue
        bounds = pc.min_max(column)
        low, high = bounds["min"].as_py(), bounds["max"].as_py()
        if low >= MIN_US and high < MAX_US:
            continue
        bad = pc.or_(pc.less(column, MIN_US), pc.greater_equal(column, MAX_US))
        row = int(pc.index(pc.fill_null(bad, False), True).as_py())
        what = "event" if name == EVENT_US else "created"
        raise DataSourceError(
            f"view {view.name!r}: entity {describe_key(keys[row], view.join_keys)}: its {what} "
            f"time ({column[row].as_py()} µs from 1970) is outside the times Parity stores "
            "(1900-01-01 up to 2100-01-01 UTC): fix the source's rows"
        )


def _check_finite(
    batch: pa.RecordBatch | pa.Table, name: str, view: OnlineView, keys: list[bytes]
) -> None:
    """Float features are finite or null online (JSON has no NaN or infinity): a batch
    holding another value is refused, naming the entity, its event time and the column."""
    column = batch.column(name)
    t = column.type
    nested = pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t)
    if nested:
        if not pa.types.is_floating(t.value_type):
            return
        if isinstance(column, pa.ChunkedArray):
            column = column.combine_chunks()
        bad = pc.invert(pc.fill_null(pc.is_finite(column.flatten()), True))
        if not pc.any(bad).as_py():
            return
        at = int(pc.index(bad, True).as_py())
        row = int(pc.list_parent_indices(column)[at].as_py())
        value = column.flatten()[at].as_py()
    elif pa.types.is_floating(t):
        bad = pc.invert(pc.fill_null(pc.is_finite(column), True))
        if not pc.any(bad).as_py():
            return
        row = int(pc.index(bad, True).as_py())
        value = column[row].as_py()
    else:
        return
    event = from_micros(batch.column(EVENT_US)[row].as_py())
    raise DataSourceError(
        f"view {view.name!r}: entity {describe_key(keys[row], view.join_keys)} at "
        f"{event.isoformat()}: {name!r} is {value!r}; the online store holds finite floats "
        "only (null for a missing value): fix the source's rows"
    )
