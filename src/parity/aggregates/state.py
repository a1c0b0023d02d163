"""Partial aggregates of one entity's events, as the online store keeps them.

A record holds *entries*: the merged partial aggregates of events keyed by an event time.
Events of a hop bucket ``(k * hop, (k + 1) * hop]`` that has closed (its end is at or before
the writer's clock) are merged into one entry keyed by the bucket's end: a window's start is
a multiple of the hop, so a closed bucket is wholly in a window or wholly out, for any read
at or after the time it closed. Events of open buckets keep one entry per event time, so a
read at ``t`` takes exactly the events at or before ``t``. Views without a hop keep one
entry per event time (a window's start can cut anywhere). Entries older than the longest
window (plus a hop) are dropped; with an event id column, the ids of the kept entries are
kept too so a replayed event counts once.

Every partial aggregate is exact (integers, extremes, sets, registers), so merging is
independent of arrival order; ``finalize`` turns the merged window into the value by the
same arithmetic as the offline engine (``parity.aggregates.exact``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgpack

from parity import types as T
from parity.aggregates import exact
from parity.definitions import FeatureView

_INT64 = 2**63
_SUMS = frozenset({"sum", "mean", "stddev"})


@dataclass(frozen=True)
class Slot:
    """One partial aggregate: a function of a column (shared by that pair's windows)."""

    function: str
    column: str | None
    n: int | None
    bits: int
    """Fixed-point bits of sums: 0 for integer columns, exact.SUM_BITS for floats."""


@dataclass(frozen=True)
class Output:
    """One feature: a slot's merge over a window, finalized."""

    name: str
    slot: int
    window_us: int
    function: str
    dtype: T.ValueType


@dataclass(frozen=True)
class AggregatePlan:
    """What the online side needs to keep and read one aggregated view."""

    view: str
    slots: tuple[Slot, ...]
    outputs: tuple[Output, ...]
    hop_us: int | None
    horizon_us: int
    event_id: str | None
    columns: tuple[str, ...] = ()
    """The source columns the slots read, in the order events carry their values."""
    slot_columns: tuple[int | None, ...] = ()
    """Per slot, the index of its column in ``columns`` (None: counts events)."""
    sum_slots: tuple[int, ...] = ()
    """Slots whose totals may pass 64 bits (stored as bytes then)."""

    @classmethod
    def of(cls, view: FeatureView, event_id: str | None = None) -> AggregatePlan:
        types = {f.name: f.dtype for f in view.schema}
        slots: list[Slot] = []
        outputs = []
        for a, field in zip(view.aggregations, view.features, strict=True):
            ctype = types.get(a.column) if a.column else None
            is_float = ctype in (T.Float32, T.Float64)
            slot = Slot(a.function, a.column, a.n, exact.SUM_BITS if is_float else 0)
            if slot not in slots:
                slots.append(slot)
            outputs.append(
                Output(field.name, slots.index(slot), a.window_us, a.function, field.dtype)
            )
        hop = view.hop_us
        longest = max(a.window_us for a in view.aggregations)
        columns = tuple(dict.fromkeys(s.column for s in slots if s.column))
        return cls(
            view=view.name,
            slots=tuple(slots),
            outputs=tuple(outputs),
            hop_us=hop,
            horizon_us=longest + (hop or 0),
            event_id=event_id,
            columns=columns,
            slot_columns=tuple(
                None if s.column is None else columns.index(s.column) for s in slots
            ),
            sum_slots=tuple(i for i, s in enumerate(slots) if s.function in _SUMS),
        )


def window_start(t_us: int, window_us: int, hop_us: int | None) -> int:
    """The exclusive start of the window ending at ``t_us``."""
    start = t_us - window_us
    return start if hop_us is None else (start // hop_us) * hop_us


# -- one slot ------------------------------------------------------------------------------
def _order(ts: int, cr: int | None, value: Any) -> tuple[Any, ...]:
    """first/last order: event time, then created time (null oldest), then the value."""
    return (ts, cr is not None, cr or 0, value)


def event_state(slot: Slot, value: Any, ts: int, cr: int | None) -> Any:
    """The partial aggregate of one event (None: the event adds nothing to this slot)."""
    fn = slot.function
    if fn == "count":
        return 1 if slot.column is None or value is not None else 0
    if value is None:
        return None
    if fn == "sum":
        return exact.fixed(value, slot.bits) if slot.bits else value
    if fn == "mean":
        return [1, exact.fixed(value, slot.bits) if slot.bits else value]
    if fn == "stddev":
        if slot.bits:
            return [1, exact.fixed(value, slot.bits), exact.fixed(value * value, exact.SQUARE_BITS)]
        return [1, value, value * value]
    if fn in ("min", "max", "count_distinct"):
        return [value] if fn == "count_distinct" else value
    if fn in ("first", "last"):
        return [ts, cr, value]
    if fn == "last_n":
        return [[ts, cr, value]]
    if fn == "approx_count_distinct":
        idx, rank = exact.hll_register(value)
        return {idx: rank}
    raise AssertionError(fn)


def merge(slot: Slot, a: Any, b: Any) -> Any:
    """Two partial aggregates of one slot as one (either may be None)."""
    if a is None:
        return b
    if b is None:
        return a
    fn = slot.function
    if fn in ("count", "sum"):
        return a + b
    if fn in ("mean", "stddev"):
        return [x + y for x, y in zip(a, b, strict=True)]
    if fn == "min":
        return a if a <= b else b
    if fn == "max":
        return a if a >= b else b
    if fn == "first":
        return a if _order(*a) <= _order(*b) else b
    if fn == "last":
        return a if _order(*a) >= _order(*b) else b
    if fn == "last_n":
        both = sorted([*a, *b], key=lambda e: _order(*e), reverse=True)
        return both[: slot.n]
    if fn == "count_distinct":
        return list({*a, *b})
    if fn == "approx_count_distinct":
        out = dict(a)
        for k, r in b.items():
            if r > out.get(k, 0):
                out[k] = r
        return out
    raise AssertionError(fn)


def finalize(out: Output, slot: Slot, state: Any) -> Any:
    """The feature value of a window's merged partial aggregate."""
    fn = out.function
    if fn in ("count",):
        return state or 0
    if fn == "count_distinct":
        return len(state) if state else 0
    if fn == "approx_count_distinct":
        return exact.hll_estimate(*exact.hll_sums(state)) if state else 0
    if state is None:
        return None
    if fn == "sum":
        if not slot.bits:
            if not -_INT64 <= state < _INT64:
                raise exact.ExactRangeError(f"{out.name}: sum {state} is beyond Int64")
            return state
        return exact.to_float(state, slot.bits)
    if fn == "mean":
        return exact.mean(exact.to_float(state[1], slot.bits), state[0])
    if fn == "stddev":
        n, s1, s2 = state
        if n < 2:
            return None
        sq_bits = exact.SQUARE_BITS if slot.bits else 0
        return exact.stddev(exact.to_float(s1, slot.bits), exact.to_float(s2, sq_bits), n)
    if fn in ("first", "last"):
        return state[2]
    if fn == "last_n":
        return [e[2] for e in state]
    return state  # min, max


# -- records -------------------------------------------------------------------------------
def _big(v: Any) -> Any:
    """A total beyond 64 bits as little-endian bytes (msgpack holds 64-bit integers)."""
    if type(v) is int and not -_INT64 <= v < _INT64:
        return v.to_bytes((v.bit_length() + 8) // 8, "little", signed=True)
    return v


def _int(v: Any) -> Any:
    return int.from_bytes(v, "little", signed=True) if type(v) is bytes else v


def pack_states(plan: AggregatePlan, states: list[Any]) -> bytes:
    if plan.sum_slots:
        states = list(states)
        for i in plan.sum_slots:
            st = states[i]
            if st is not None:
                states[i] = [_big(x) for x in st] if type(st) is list else _big(st)
    return msgpack.packb(states)


def unpack_states(plan: AggregatePlan, blob: bytes) -> list[Any]:
    states = msgpack.unpackb(blob, strict_map_key=False)
    for i in plan.sum_slots:
        st = states[i]
        if st is not None:
            states[i] = [_int(x) for x in st] if type(st) is list else _int(st)
    return states


def pack(entries: dict[int, bytes], ids: dict[Any, int] | None) -> bytes:
    """A record: each entry's partial aggregates packed on their own, so a write decodes and
    encodes only the entries it changes."""
    body: dict[str, Any] = {"e": entries}
    if ids:
        body["i"] = ids
    return msgpack.packb(body)


def unpack(record: bytes | None) -> tuple[dict[int, bytes], dict[Any, int]]:
    if record is None:
        return {}, {}
    body = msgpack.unpackb(record, strict_map_key=False)
    return body["e"], body.get("i", {})


@dataclass(frozen=True)
class Event:
    """One event of one entity, reduced to what the slots need."""

    ts: int
    cr: int | None
    event_id: Any
    values: tuple[Any, ...]
    """Per slot column, in ``AggregatePlan.columns`` order."""


def apply_events(
    plan: AggregatePlan,
    record: bytes | None,
    events: Sequence[Event],
    now_us: int,
    *,
    replace_until: int | None = None,
) -> bytes | None:
    """The record with ``events`` merged in (replays skipped), closed buckets compacted and
    entries beyond the horizon dropped. None: nothing left to keep.

    ``replace_until``: the record's entries (and ids) at or before it are dropped first, so
    ``events`` rebuild that part (materialization).
    """
    entries, ids = unpack(record)
    if replace_until is not None:
        entries = {k: v for k, v in entries.items() if k > replace_until}
        ids = {k: ts for k, ts in ids.items() if ts > replace_until}
    slot_cols = plan.slot_columns
    slots = plan.slots
    hop = plan.hop_us
    oldest = now_us - plan.horizon_us
    changed: dict[int, list[Any]] = {}  # the decoded entries this write changes

    def add(key: int, states: list[Any]) -> None:
        prev = changed.get(key)
        if prev is None and key in entries:
            prev = unpack_states(plan, entries[key])
        if prev is not None:
            states = [merge(s, a, b) for s, a, b in zip(slots, prev, states, strict=True)]
        changed[key] = states

    def canonical(key: int) -> int:
        """The entry key an event time (or an older entry's key) belongs under now."""
        if hop is None:
            return key
        end = -((-key) // hop) * hop  # the bucket (end - hop, end] holds key
        return end if end <= now_us else key

    entries = {k: v for k, v in entries.items() if k > oldest}
    for key in [k for k in entries if canonical(k) != k]:  # buckets closed since written
        add(canonical(key), unpack_states(plan, entries.pop(key)))
    for ev in events:
        if ev.ts <= oldest:
            continue  # outside every window any later read can ask for
        if plan.event_id is not None and ev.event_id is not None:
            if ev.event_id in ids:
                continue
            ids[ev.event_id] = ev.ts
        add(
            canonical(ev.ts),
            [
                event_state(s, None if c is None else ev.values[c], ev.ts, ev.cr)
                for s, c in zip(slots, slot_cols, strict=True)
            ],
        )
    for key, states in changed.items():
        entries[key] = pack_states(plan, states)
    if ids:
        ids = {k: ts for k, ts in ids.items() if ts > oldest}
    if not entries and not ids:
        return None
    return pack(entries, ids)


class _Invalid:
    __slots__ = ()

    def __repr__(self) -> str:
        return "INVALID"


INVALID: Any = _Invalid()
"""``read_values``' value for an output that cannot be represented (an integer sum beyond
Int64 in a record written before writes were checked): that entity's feature reads as
invalid, the rest of the read is unaffected."""


def int_sum_outputs(plan: AggregatePlan) -> tuple[Output, ...]:
    """The outputs whose value is an integer sum (what may leave Int64)."""
    return tuple(o for o in plan.outputs if o.function == "sum" and not plan.slots[o.slot].bits)


def sum_beyond_int64(plan: AggregatePlan, record: bytes | None, now_us: int) -> Output | None:
    """The first integer-sum output that a read of ``record`` at or after ``now_us`` would
    find beyond Int64.

    Such a read sums the entries of one window: a run of consecutive entries whose keys lie
    within the window (plus a hop, as a window's start is rounded down to one) and that
    reaches at least the last entry at or before ``now_us``. When the record's positive and
    negative totals both fit, every run fits (the common case, one pass); otherwise every
    such run is checked.
    """
    outs = int_sum_outputs(plan)
    if not outs or record is None:
        return None
    blobs, _ = unpack(record)
    keys = sorted(blobs)
    states = [unpack_states(plan, blobs[k]) for k in keys]
    first_end = max(0, sum(1 for k in keys if k <= now_us) - 1)
    for out in outs:
        vals = [st[out.slot] or 0 for st in states]
        if sum(v for v in vals if v > 0) < _INT64 and sum(v for v in vals if v < 0) >= -_INT64:
            continue
        span = out.window_us + (plan.hop_us or 0)
        for j in range(first_end, len(keys)):
            run = 0
            i = j
            while i >= 0 and keys[j] - keys[i] < span:
                run += vals[i]
                if not -_INT64 <= run < _INT64:
                    return out
                i -= 1
    return None


def read_values(plan: AggregatePlan, record: bytes | None, t_us: int) -> dict[str, Any]:
    """Every output's value at time ``t_us`` (at or after the record's last write);
    ``INVALID`` for one that cannot be represented."""
    blobs, _ = unpack(record)
    keys = sorted(k for k in blobs if k <= t_us)
    entries = {k: unpack_states(plan, blobs[k]) for k in keys}
    values: dict[str, Any] = {}
    for out in plan.outputs:
        slot = plan.slots[out.slot]
        start = window_start(t_us, out.window_us, plan.hop_us)
        state = None
        for k in keys:
            if k > start:
                state = merge(slot, state, entries[k][out.slot])
        try:
            values[out.name] = finalize(out, slot, state)
        except exact.ExactRangeError:
            values[out.name] = INVALID
    return values
