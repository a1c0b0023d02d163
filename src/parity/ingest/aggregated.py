"""Aggregated views in the online store: events in (push, materialize), values out (read).

Events are grouped by entity and merged into each entity's record with the store's atomic
read-modify-write (``SupportsUpdate``), so concurrent pushes never lose an event.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from parity.aggregates.state import (
    AggregatePlan,
    Event,
    apply_events,
    int_sum_outputs,
    sum_beyond_int64,
)
from parity.errors import OnlineStoreError
from parity.ingest.rows import IngestError
from parity.online.base import OnlineStore, OnlineView, SupportsUpdate
from parity.online.encoding import describe_key, encode_key


class SumRangeError(IngestError):
    """A write would make an integer sum leave Int64; nothing of the batch was written."""


def _checked(
    plan: AggregatePlan, ov: OnlineView, key: bytes, record: bytes | None, now_us: int
) -> bytes | None:
    out = sum_beyond_int64(plan, record, now_us)
    if out is not None:
        raise SumRangeError(
            f"view {plan.view!r}: entity {describe_key(key, ov.join_keys)}: feature "
            f"{out.name!r} would sum beyond Int64 (-2**63 to 2**63 - 1); nothing was written"
        )
    return record


def _values(column: pa.ChunkedArray | pa.Array) -> list[Any]:
    if pa.types.is_timestamp(column.type):  # kept as µs, like every online timestamp
        column = column.cast(pa.timestamp("us")).cast(pa.int64())
    if pa.types.is_floating(column.type):  # -0.0 counts as 0.0, as offline
        return [None if v is None else v + 0.0 for v in column.to_pylist()]
    return column.to_pylist()


def events_by_entity(
    plan: AggregatePlan,
    ov: OnlineView,
    table: pa.Table,
    event_us: pa.ChunkedArray | pa.Array,
    created_us: pa.ChunkedArray | pa.Array,
) -> dict[bytes, list[Event]]:
    """The rows of ``table`` as events, grouped by encoded entity key in row order."""
    key_cols = [table.column(k).to_pylist() for k in ov.join_keys]
    value_cols = [_values(table.column(c)) for c in plan.columns]

    ids = table.column(plan.event_id).to_pylist() if plan.event_id else None
    ts = event_us.to_pylist()
    cr = created_us.to_pylist()
    names = ov.join_keys
    groups: dict[bytes, list[Event]] = {}
    rows = zip(*value_cols, strict=True) if value_cols else iter([()] * table.num_rows)
    for i, (values, *kv) in enumerate(zip(rows, *key_cols, strict=True)):
        key = encode_key(kv, names)
        groups.setdefault(key, []).append(
            Event(ts[i], cr[i], None if ids is None else ids[i], tuple(values))
        )
    return groups


def write_events(
    store: OnlineStore,
    ov: OnlineView,
    plan: AggregatePlan,
    groups: dict[bytes, list[Event]],
    now_us: int,
    *,
    replace_until: int | None = None,
) -> int:
    """Merge each entity's events into its record; returns records written.

    ``replace_until``: entries at or before it are rebuilt from ``groups`` alone (a
    materialization recomputing history); later ones are kept.
    """
    if not isinstance(store, SupportsUpdate):
        raise OnlineStoreError(
            f"view {plan.view!r} aggregates events, which needs an online store that can "
            f"update records in place; {type(store).__name__} cannot"
        )

    check = bool(int_sum_outputs(plan))

    def fn(keys: Sequence[bytes], records: list[bytes | None]) -> list[bytes | None]:
        out = [
            apply_events(plan, rec, groups[k], now_us, replace_until=replace_until)
            for k, rec in zip(keys, records, strict=True)
        ]
        if check:  # every record checked before the store writes any
            for k, rec in zip(keys, out, strict=True):
                _checked(plan, ov, k, rec, now_us)
        return out

    return store.update(ov, list(groups), fn)


def check_events(
    store: OnlineStore,
    ov: OnlineView,
    plan: AggregatePlan,
    groups: dict[bytes, list[Event]],
    now_us: int,
) -> None:
    """Refuse, before anything is written anywhere, events whose merge into the stored
    records would take an integer sum beyond Int64 (``write_events`` checks again under
    the store's atomic update)."""
    if not int_sum_outputs(plan):
        return
    keys = list(groups)
    (records,) = store.read([(ov, keys)])
    for k, rec in zip(keys, records, strict=True):
        _checked(plan, ov, k, apply_events(plan, rec, groups[k], now_us), now_us)


def chunks(groups: dict[bytes, list[Event]], size: int) -> Sequence[dict[bytes, list[Event]]]:
    items = list(groups.items())
    return [dict(items[i : i + size]) for i in range(0, len(items), size)]
