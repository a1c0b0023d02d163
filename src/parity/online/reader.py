"""Online reads: entity rows in, latest values with a status and event time per value out.

Status of each value: ``present``; ``missing`` (no record, or the record predates the
feature); ``expired`` (the record's event time is older than now minus the view's ttl: the
value is null, its event time is still given so a caller can see how stale it was). That is
the historical rule for an entity row stamped "now".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Any

import msgpack
import pyarrow as pa

from parity.aggregates.state import INVALID as INVALID_VALUE
from parity.aggregates.state import AggregatePlan, read_values
from parity.errors import RetrievalError
from parity.online.base import OnlineStore, OnlineView
from parity.online.encoding import HEADER, OFFSET, encode_key, encode_key_part, from_micros
from parity.types import Timestamp, ValueType

PRESENT, MISSING, EXPIRED, INVALID = "present", "missing", "expired", "invalid"
_OFFSET = OFFSET
_ABSENT = object()  # a feature the record lacks
_EXPIRED: Any = {}  # stands for the body of an expired record (read as empty)


@dataclass(frozen=True)
class ViewRead:
    """What one view contributes to a read."""

    online: OnlineView
    features: tuple[str, ...]
    outputs: tuple[str, ...]
    dtypes: tuple[ValueType, ...]
    ttl_us: int | None
    aggregate: AggregatePlan | None = None
    """Set for an aggregated view: its records hold partial aggregates, not values."""


@dataclass(frozen=True)
class ReadPlan:
    """A resolved request, reusable until the registry changes."""

    views: tuple[ViewRead, ...]
    join_keys: tuple[str, ...]

    @cached_property  # the plan is reused for every read until the registry changes
    def dtypes(self) -> dict[str, ValueType]:
        """Each output's declared type, in output order."""
        return {
            out: dtype
            for vr in self.views
            for out, dtype in zip(vr.outputs, vr.dtypes, strict=True)
        }


class OnlineResponse:
    """Values, statuses and event times per requested feature, in entity order."""

    def __init__(
        self,
        entities: dict[str, list[Any]],
        dtypes: Mapping[str, ValueType],
        values: dict[str, list[Any]],
        statuses: dict[str, list[str]],
        event_us: dict[str, list[int | None]],
    ):
        """``dtypes``: each feature's declared type, by output name, in output order."""
        self._entities = entities
        self._dtypes = dtypes
        self._values = values
        self._statuses = statuses
        self._event_us = event_us

    def __len__(self) -> int:
        return len(next(iter(self._entities.values()), []))

    def __repr__(self) -> str:
        """A bounded table: the first rows' entity keys and values, statuses when not
        present (``parity.online.preview``)."""
        from parity.online.preview import preview

        return preview(type(self).__name__, self._entities, self._values, self._statuses)

    def with_values(self, values: Mapping[str, list[Any]]) -> OnlineResponse:
        """This response with some features' values replaced (masking, decryption); the
        statuses and event times stay."""
        return OnlineResponse(
            self._entities,
            self._dtypes,
            {**self._values, **values},
            self._statuses,
            self._event_us,
        )

    @property
    def values(self) -> dict[str, list[Any]]:
        """The feature values by output name (entity columns not included)."""
        return self._values

    @property
    def statuses(self) -> dict[str, list[str]]:
        """``present`` / ``missing`` / ``expired`` per feature and entity row."""
        return self._statuses

    @property
    def event_micros(self) -> dict[str, list[int | None]]:
        """``event_timestamps`` as µs since the epoch; features of one view share one list."""
        return self._event_us

    @property
    def event_timestamps(self) -> dict[str, list[datetime | None]]:
        """The event time (UTC) of each value's record; None when missing."""
        return {
            k: [None if u is None else from_micros(u) for u in v] for k, v in self._event_us.items()
        }

    def to_dict(self, *, include_metadata: bool = False) -> dict[str, list[Any]]:
        """Column-oriented, like the historical frame: entity columns, then features.

        With ``include_metadata``, each feature ``f`` also gets ``f__status`` and
        ``f__event_timestamp`` columns.
        """
        out: dict[str, list[Any]] = dict(self._entities)
        out.update(self._values)
        if include_metadata:
            stamps = self.event_timestamps
            for name in self._values:
                out[f"{name}__status"] = self._statuses[name]
                out[f"{name}__event_timestamp"] = stamps[name]
        return out

    def to_arrow(self, *, include_metadata: bool = False) -> pa.Table:
        """Typed as the views declare them."""
        arrays: dict[str, pa.Array] = {k: pa.array(v) for k, v in self._entities.items()}
        stamps = self.event_timestamps if include_metadata else {}
        for out, dtype in self._dtypes.items():
            arrays[out] = _typed(self._values[out], dtype)
            if include_metadata:
                arrays[f"{out}__status"] = pa.array(self._statuses[out], pa.string())
                arrays[f"{out}__event_timestamp"] = pa.array(
                    stamps[out], pa.timestamp("us", tz="UTC")
                )
        return pa.table(arrays)

    def to_pandas(self, *, include_metadata: bool = False) -> Any:
        return self.to_arrow(include_metadata=include_metadata).to_pandas()


def _typed(values: list[Any], dtype: ValueType) -> pa.Array:
    return pa.array(values, dtype.to_arrow())


def entity_columns(
    entity_rows: Sequence[Mapping[str, Any]] | None,
    entities: Mapping[str, Sequence[Any]] | None,
    join_keys: Sequence[str],
) -> dict[str, list[Any]]:
    """The caller's entities as equal-length columns; errors name the row or key."""
    if (entity_rows is None) == (entities is None):
        raise RetrievalError("pass exactly one of entity_rows=[{...}] or entities={key: [...]}")
    if entities is not None:
        cols = {k: list(v) for k, v in entities.items()}
        lengths = {k: len(v) for k, v in cols.items()}
        if len(set(lengths.values())) > 1:
            raise RetrievalError(f"entity columns differ in length: {lengths}")
    else:
        assert entity_rows is not None
        names: dict[str, None] = {}
        for row in entity_rows:
            names.update(dict.fromkeys(row))
        cols = {}
        for k in names:
            col = []
            for i, row in enumerate(entity_rows):
                if k not in row:
                    raise RetrievalError(f"entity row {i} lacks {k!r}, which other rows have")
                col.append(row[k])
            cols[k] = col
    missing = [k for k in join_keys if k not in cols]
    if missing:
        raise RetrievalError(
            f"entities lack join key(s) {missing} needed by the requested features "
            f"(given: {sorted(cols)})"
        )
    return cols


_INT64 = 2**63
_KIND_TYPES: dict[str, tuple[type, ...]] = {"int": (int,), "string": (str,), "bytes": (bytes,)}


def check_key_types(
    cols: Mapping[str, Sequence[Any]], key_types: Mapping[str, Any], where: str = "entities"
) -> None:
    """Join-key values of their entity's declared type (Int64 keys within Int64): a key of
    another type could never match a stored one, so it is refused, naming it."""
    for name, dtype in key_types.items():
        kind = getattr(dtype, "kind", None)
        values = cols.get(name)
        if values is None or kind not in _KIND_TYPES:
            continue
        want = _KIND_TYPES[kind][0]
        if all(type(v) is want for v in values) and (
            kind != "int" or not values or (min(values) >= -_INT64 and max(values) < _INT64)
        ):
            continue
        for i, v in enumerate(values):
            if hasattr(v, "item") and not isinstance(v, bytes | str):  # numpy scalars
                v = v.item()
            if v is None:
                raise RetrievalError(f"{where}.{name}[{i}] is null; every entity needs a key")
            if type(v) is not want:
                hint = ""
                if kind == "int" and isinstance(v, str):  # the HTTP API converts such text
                    hint = f"; pass integers (int({v!r}) if it is one)"
                raise RetrievalError(
                    f"{where}.{name}[{i}] (row {i}) is {v!r} ({type(v).__name__}); join key "
                    f"{name!r} is {dtype}{hint}"
                )
            if kind == "int" and not -_INT64 <= v < _INT64:  # type: ignore[operator]
                raise RetrievalError(
                    f"{where}.{name}[{i}] is {v}, outside Int64; join key {name!r} is {dtype}"
                )


def read_online(
    store: OnlineStore,
    plan: ReadPlan,
    entities: dict[str, list[Any]],
    now_us: int,
) -> OnlineResponse:
    """One round trip to the store for every view and entity, then decoding."""
    return decode_online(plan, entities, store.read(online_requests(plan, entities)), now_us)


def online_requests(
    plan: ReadPlan, entities: dict[str, list[Any]]
) -> list[tuple[OnlineView, list[bytes]]]:
    """The store read for a plan: each view with its entity keys, in entity order."""
    requests = []
    for vr in plan.views:
        names = vr.online.join_keys
        if len(names) == 1:
            name = names[0]
            # integers inline (encode_key_part's own format for them), anything else through it
            keys = [
                b"i%d" % v if type(v) is int else encode_key_part(v, name) for v in entities[name]
            ]
        else:
            cols = [entities[k] for k in names]
            keys = [encode_key(vals, names) for vals in zip(*cols, strict=True)]
        requests.append((vr.online, keys))
    return requests


def decode_online(
    plan: ReadPlan,
    entities: dict[str, list[Any]],
    results: Sequence[Sequence[bytes | None]],
    now_us: int,
) -> OnlineResponse:
    """The response for the records ``store.read(online_requests(plan, entities))`` gave."""
    n = len(next(iter(entities.values()), []))
    values: dict[str, list[Any]] = {}
    statuses: dict[str, list[str]] = {}
    stamps: dict[str, list[int | None]] = {}
    unpack = msgpack.unpackb
    for vr, records in zip(plan.views, results, strict=True):
        if vr.aggregate is not None:
            _read_aggregates(vr, vr.aggregate, records, now_us, values, statuses, stamps)
            continue
        fresh_after = None if vr.ttl_us is None else now_us - vr.ttl_us
        times: list[int | None] = [None] * n
        bodies: list[Any] = [None] * n  # the decoded map of each fresh record
        expired = False
        for i, rec in enumerate(records):
            if rec is None:
                continue
            ev = int(rec[:16]) - _OFFSET
            times[i] = ev
            if fresh_after is not None and ev < fresh_after:
                bodies[i] = _EXPIRED
                expired = True
            else:
                bodies[i] = unpack(rec[HEADER:])
        # Column by column: one comprehension per feature is much cheaper than per-value
        # stores into preallocated lists.
        for f, out, dtype in zip(vr.features, vr.outputs, vr.dtypes, strict=True):
            col = [_ABSENT if b is None else b.get(f, _ABSENT) for b in bodies]
            stats = [PRESENT if v is not _ABSENT else MISSING for v in col]
            if expired:
                stats = [
                    EXPIRED if b is _EXPIRED else s for b, s in zip(bodies, stats, strict=True)
                ]
            vals: list[Any] = [None if v is _ABSENT else v for v in col]
            if dtype is Timestamp:  # stored as µs integers (msgpack has no datetime)
                vals = [None if u is None else from_micros(u) for u in vals]
            values[out] = vals
            statuses[out] = stats
            stamps[out] = times
    return OnlineResponse(entities, plan.dtypes, values, statuses, stamps)


def _read_aggregates(
    vr: ViewRead,
    plan: AggregatePlan,
    records: Sequence[bytes | None],
    now_us: int,
    values: dict[str, list[Any]],
    statuses: dict[str, list[str]],
    stamps: dict[str, list[int | None]],
) -> None:
    """Window values at ``now_us``: present when not null (a count is never null), with the
    time they were computed for as their event time."""
    rows = [read_values(plan, rec, now_us) for rec in records]
    times: list[int | None] = [now_us] * len(rows)
    for f, out, dtype in zip(vr.features, vr.outputs, vr.dtypes, strict=True):
        col = [r[f] for r in rows]
        statuses[out] = [MISSING if v is None else PRESENT for v in col]
        if any(v is INVALID_VALUE for v in col):  # beyond its type: null, this entity only
            statuses[out] = [
                INVALID if v is INVALID_VALUE else s
                for v, s in zip(col, statuses[out], strict=True)
            ]
            col = [None if v is INVALID_VALUE else v for v in col]
        if dtype is Timestamp:
            col = [None if u is None else from_micros(u) for u in col]
        values[out] = col
        stamps[out] = times
