"""Message payloads into rows for the one ingestion path; what cannot be read, set aside.

A payload is one event: a JSON object (or msgpack map) of the event's fields, named as the
source's columns (``field_mapping`` renames them to the views' names, as for the batch
files). ``decode`` returns the rows (Arrow, columns under the views' names plus the source's
timestamp fields, as ``parity.ingest.conform`` takes them) and, per message that cannot
become a row, a ``DeadLetter`` whose reason is one of:

- ``decode``: not JSON / msgpack, or not an object / map, or no payload at all;
- ``missing_field``: a join key, a feature a view reads, the event time or the declared
  event id is absent;
- ``null_key``: a join key or the event id is null;
- ``timestamp``: the event (or created) time is not ISO 8601 text or an epoch number in
  ``timestamp_unit``, or is outside the times Parity stores;
- ``type``: a value is not of its field's declared type (``"abc"`` for a Float64, ``1.5``
  for an Int64, an integer beyond Int64).

Rows are built column by column with Arrow; only a column that fails as a whole is looked
at value by value, so a good batch costs no per-value Python beyond the payload decoding.
Created times: the message's own when the source declares a created timestamp field and the
message has it, else the broker's append time (the same on every delivery, so a redelivered
event never looks newer than it is).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any

import msgpack
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from parity import types as T
from parity.clock import MAX_US, MIN_US, iso_time
from parity.definitions import FeatureView, StreamSource
from parity.registry.catalog import Catalog
from parity.streams.base import DeadLetter, Message

__all__ = ["Decoded", "Needs", "decode", "needs_of"]

_UNIT_US = {"s": 1_000_000, "ms": 1_000, "us": 1}
_UTC_US = pa.timestamp("us", tz="UTC")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

try:  # orjson is several times faster; json is the fallback when it is not installed
    import orjson

    _loads: Callable[[Any], Any] = orjson.loads
    _JSON_ERRORS: tuple[type[Exception], ...] = (orjson.JSONDecodeError, UnicodeDecodeError)
except ImportError:  # pragma: no cover - orjson comes with the streams extra
    _loads = json.loads
    _JSON_ERRORS = (ValueError, UnicodeDecodeError)
_DECODE_ERRORS = (
    *_JSON_ERRORS,
    ValueError,
    TypeError,
    msgpack.ExtraData,
    msgpack.FormatError,
    msgpack.StackError,
)


@dataclass(frozen=True)
class Needs:
    """What a source's views read from each event: source column -> (view name, type)."""

    keys: dict[str, tuple[str, T.ValueType | None]]
    features: dict[str, tuple[str, T.ValueType]]
    timestamp: str
    created: str | None
    event_id: str | None

    @property
    def required(self) -> frozenset[str]:
        """Every field an event must have."""
        extra = [self.timestamp] + ([self.event_id] if self.event_id else [])
        return frozenset([*self.keys, *self.features, *extra])

    @property
    def not_null(self) -> tuple[str, ...]:
        """The fields that may not be null: join keys, the event time, the event id."""
        extra = [self.timestamp] + ([self.event_id] if self.event_id else [])
        return (*self.keys, *extra)


def needs_of(source: StreamSource, views: Sequence[FeatureView], catalog: Catalog) -> Needs:
    """The fields ``views`` read from ``source``'s events, by source column name."""
    keys: dict[str, tuple[str, T.ValueType | None]] = {}
    features: dict[str, tuple[str, T.ValueType]] = {}
    for view in views:
        for e in view.entity_names:
            entity = catalog.entity(e)
            for k in entity.join_keys:
                keys.setdefault(source.column_for(k), (k, entity.dtype))
        for f in view.schema:
            if f.name not in {name for name, _ in keys.values()}:
                features.setdefault(source.column_for(f.name), (f.name, f.dtype))
    eid = source.event_id_field
    return Needs(
        keys,
        features,
        source.timestamp_field,
        source.created_timestamp_field,
        source.column_for(eid) if eid else None,
    )


@dataclass(frozen=True)
class Decoded:
    """The rows of the messages that could be read, and the letters of those that could not."""

    table: pa.Table
    messages: list[Message]
    """The messages of ``table``'s rows, in row order."""
    letters: list[DeadLetter]

    @property
    def message_ids(self) -> pa.Array:
        return pa.array([m.offset for m in self.messages], pa.string())


def decode(messages: Sequence[Message], source: StreamSource, needs: Needs) -> Decoded:
    """The events of ``messages`` as rows (see the module docstring)."""
    load = _loads if source.format == "json" else _unpack
    required = needs.required
    not_null = itemgetter(*needs.not_null)  # at least a key and the event time: a tuple
    try:  # the usual batch: every payload decodes (one C loop, no Python frame per message)
        bodies: list[Any] | None = list(map(load, [m.payload for m in messages]))
    except (*_DECODE_ERRORS, AttributeError):
        bodies = None
    if bodies is not None:
        odd = [
            i
            for i, b in enumerate(bodies)
            if type(b) is not dict or not required <= b.keys() or None in not_null(b)
        ]
        if not odd:
            return _columns(bodies, list(messages), [], source, needs)
    letters: list[DeadLetter] = []
    events: list[dict[str, Any]] = []
    kept: list[Message] = []
    for i, m in enumerate(messages):
        if bodies is not None:
            body = bodies[i]
        elif m.payload is None:
            where = (
                f" (no {source.payload_field!r} field)" if source.broker == "redis_streams" else ""
            )
            letters.append(DeadLetter(m, "decode", f"the message has no payload{where}"))
            continue
        else:
            try:
                body = load(m.payload)
            except _DECODE_ERRORS as exc:
                letters.append(DeadLetter(m, "decode", f"not {source.format}: {exc}"))
                continue
        if not isinstance(body, dict):
            letters.append(
                DeadLetter(m, "decode", f"a {source.format} {type(body).__name__}, not an object")
            )
            continue
        problem = _missing(body, needs)
        if problem is not None:
            letters.append(DeadLetter(m, *problem))
            continue
        events.append(body)
        kept.append(m)
    return _columns(events, kept, letters, source, needs)


def _unpack(payload: Any) -> Any:
    return msgpack.unpackb(payload, raw=False, strict_map_key=False, timestamp=3)


def _missing(body: dict[str, Any], needs: Needs) -> tuple[str, str, str] | None:
    """(reason, detail, field) when a field the views need is absent or a key is null."""
    for col in needs.keys:
        if col not in body:
            return "missing_field", f"no join key field {col!r}", col
        if body[col] is None:
            return "null_key", f"join key {col!r} is null", col
    if needs.timestamp not in body:
        return "missing_field", f"no event time field {needs.timestamp!r}", needs.timestamp
    if body[needs.timestamp] is None:
        return "timestamp", f"event time {needs.timestamp!r} is null", needs.timestamp
    eid = needs.event_id
    if eid is not None:
        if eid not in body:
            return "missing_field", f"no event id field {eid!r}", eid
        if body[eid] is None:
            return "null_key", f"event id {eid!r} is null", eid
    for col in needs.features:
        if col not in body:
            return "missing_field", f"no field {col!r}", col
    return None


def _columns(
    events: list[dict[str, Any]],
    messages: list[Message],
    letters: list[DeadLetter],
    source: StreamSource,
    needs: Needs,
) -> Decoded:
    """Arrow columns of ``events``; rows with a bad value leave (as letters) and the rest
    are built again, until every column converts."""
    unit = source.timestamp_unit
    while True:
        cols: dict[str, pa.Array] = {}
        bad: dict[int, tuple[str, str, str]] = {}
        ts = needs.timestamp
        cols[ts], errs = _times(_column(events, ts), unit, nullable=False)
        bad.update({i: ("timestamp", f"event time {ts!r}: {why}", ts) for i, why in errs.items()})
        if needs.created:
            cr = needs.created
            values = [e.get(cr) for e in events]
            cols[cr], errs = _times(values, unit, nullable=True)
            bad.update({i: ("timestamp", f"created time {cr!r}: {w}", cr) for i, w in errs.items()})
            if cols[cr].null_count:  # the broker's append time: the same on every delivery
                appended = pa.array([m.append_us for m in messages], pa.int64()).cast(_UTC_US)
                cols[cr] = pc.coalesce(cols[cr], appended)
        for col, (name, dtype) in needs.keys.items():
            cols[name], errs = _values(_column(events, col), dtype)
            bad.update({i: ("type", f"join key {col!r}: {w}", col) for i, w in errs.items()})
        for col, (name, dtype) in needs.features.items():
            values = _column(events, col)
            if pa.types.is_timestamp(dtype.to_arrow()):
                cols[name], errs = _times(values, unit, nullable=True)
            else:
                cols[name], errs = _values(values, dtype)
            bad.update({i: ("type", f"field {col!r}: {w}", col) for i, w in errs.items()})
        if needs.event_id:
            eid = needs.event_id
            name = source.event_id_field or eid
            cols[name], errs = _values([e[eid] for e in events], None)
            bad.update({i: ("type", f"event id {eid!r}: {w}", eid) for i, w in errs.items()})
        if not bad:
            return Decoded(pa.table(cols), messages, letters)
        for i in sorted(bad):
            letters.append(DeadLetter(messages[i], *bad[i]))
        events = [e for i, e in enumerate(events) if i not in bad]
        messages = [m for i, m in enumerate(messages) if i not in bad]


def _column(events: list[dict[str, Any]], name: str) -> list[Any]:
    return list(map(itemgetter(name), events))


def _values(values: list[Any], dtype: T.ValueType | None) -> tuple[pa.Array, dict[int, str]]:
    """``values`` as one Arrow array of a type ``dtype`` accepts; else the rows that are not."""
    try:
        arr = pa.array(values)
        if dtype is None or arr.null_count == len(arr) or dtype.accepts(arr.type):
            return arr, {}
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, TypeError, ValueError):
        pass
    bad: dict[int, str] = {}
    for i, v in enumerate(values):
        if v is None:
            continue
        why = _value_problem(v, dtype)
        if why is not None:
            bad[i] = why
    if not bad:  # every value fits alone, not together (a list of mixed element types...)
        bad = {i: f"{v!r} does not fit the other values" for i, v in enumerate(values)}
    return pa.nulls(len(values)), bad


def _value_problem(v: Any, dtype: T.ValueType | None) -> str | None:
    if type(v) is int and not -(2**63) <= v < 2**63:
        return f"{v} is outside Int64"
    try:
        arr = pa.array([v])
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, TypeError, ValueError) as exc:
        return f"{v!r} cannot be read: {exc}"
    if dtype is not None and not dtype.accepts(arr.type):
        return f"{v!r} ({type(v).__name__}) is not {dtype}"
    return None


def _times(values: list[Any], unit: str, *, nullable: bool) -> tuple[pa.Array, dict[int, str]]:
    """Times given as ISO 8601 text or epoch numbers in ``unit``, as timestamp[us, UTC]."""
    if values and all(type(v) is str for v in values):
        try:
            arr = pa.array(values).cast(_UTC_US)
            return _ranged(arr.cast(pa.int64()).to_numpy(zero_copy_only=False), values)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass  # naive text, or other forms: one by one
    elif values and all(type(v) is int for v in values):
        try:
            us = _int_us(np.asarray(values, dtype=np.int64), unit)
            return _ranged(us, values)
        except OverflowError:
            pass
    elif values and all(type(v) is float or type(v) is int for v in values):
        f = np.asarray(values, dtype=np.float64)
        if np.isfinite(f).all() and np.abs(f).max() * _UNIT_US.get(unit, 1) < 2**62:
            factor = _UNIT_US[unit] if unit != "ns" else 1e-3
            return _ranged(np.round(f * factor).astype(np.int64), values)
    out: list[int | None] = []
    bad: dict[int, str] = {}
    for i, v in enumerate(values):
        if v is None:
            if not nullable:
                bad[i] = "null"
            out.append(None)
            continue
        try:
            one = _one_time(v, unit)
        except (ValueError, OverflowError) as exc:
            bad[i] = str(exc)
            out.append(None)
            continue
        if not MIN_US <= one < MAX_US:
            bad[i] = f"{v!r} is outside the times Parity stores (1900-01-01 up to 2100-01-01 UTC)"
        out.append(one)
    return pa.array(out, pa.int64()).cast(_UTC_US), bad


def _int_us(values: np.ndarray, unit: str) -> np.ndarray:
    if unit == "ns":
        return values // 1000
    factor = _UNIT_US[unit]
    limit = np.iinfo(np.int64).max // factor
    if len(values) and int(np.abs(values).max()) > limit:
        raise OverflowError
    return values * factor


def _ranged(us: np.ndarray, values: list[Any]) -> tuple[pa.Array, dict[int, str]]:
    outside = np.flatnonzero((us < MIN_US) | (us >= MAX_US))
    bad = {
        int(i): f"{values[i]!r} is outside the times Parity stores "
        "(1900-01-01 up to 2100-01-01 UTC)"
        for i in outside
    }
    return pa.array(us, pa.int64()).cast(_UTC_US), bad


def _one_time(v: Any, unit: str) -> int:
    if isinstance(v, str | datetime):  # text, or a msgpack timestamp
        dt = iso_time(v) if isinstance(v, str) else v if v.tzinfo else v.replace(tzinfo=UTC)
        delta = dt - _EPOCH
        return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise ValueError(f"{v!r} ({type(v).__name__}) is not a time (ISO 8601 text or a number)")
    if isinstance(v, float) and not math.isfinite(v):
        raise ValueError(f"{v!r} is not a time")
    if unit == "ns":
        return int(v // 1000) if isinstance(v, int) else round(v / 1000)
    return v * _UNIT_US[unit] if isinstance(v, int) else round(v * _UNIT_US[unit])
