"""Arrow batches to encoded online records: one path for materialize, push and direct writes.

Input columns: the view's join keys and features under their own names, ``__event_us``
(int64, µs since the epoch) and ``__created_us`` (int64, null when absent).
"""

from __future__ import annotations

import msgpack
import pyarrow as pa

from parity.online.base import OnlineView, RecordBatch
from parity.online.encoding import encode_key, encode_key_part, header

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


def encode_batch(batch: pa.RecordBatch | pa.Table, view: OnlineView) -> RecordBatch:
    """Keys and records for every row of ``batch``, in row order."""
    names = view.join_keys
    key_cols = [batch.column(k).to_pylist() for k in names]
    if len(key_cols) == 1:
        name = names[0]
        keys = [encode_key_part(v, name) for v in key_cols[0]]
    else:
        keys = [encode_key(vals, names) for vals in zip(*key_cols, strict=True)]
    events = batch.column(EVENT_US).to_pylist()
    created = batch.column(CREATED_US).to_pylist()
    features = view.features
    cols = [_pylist(batch.column(f)) for f in features]
    pack = msgpack.Packer(use_bin_type=True).pack
    records = [
        header(ev, cr) + pack(dict(zip(features, vals, strict=True)))
        for ev, cr, *vals in zip(events, created, *cols, strict=True)
    ]
    return RecordBatch(keys=keys, event_us=events, created_us=created, records=records)
