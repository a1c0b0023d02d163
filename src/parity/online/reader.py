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
from typing import Any

import msgpack
import pyarrow as pa

from parity.errors import RetrievalError
from parity.online.base import OnlineStore, OnlineView
from parity.online.encoding import HEADER, encode_key, encode_key_part, from_micros
from parity.types import Timestamp, ValueType

PRESENT, MISSING, EXPIRED = "present", "missing", "expired"
_OFFSET = 2**52


@dataclass(frozen=True)
class ViewRead:
    """What one view contributes to a read."""

    online: OnlineView
    features: tuple[str, ...]
    outputs: tuple[str, ...]
    dtypes: tuple[ValueType, ...]
    ttl_us: int | None


@dataclass(frozen=True)
class ReadPlan:
    """A resolved request, reusable until the registry changes."""

    views: tuple[ViewRead, ...]
    join_keys: tuple[str, ...]


class OnlineResponse:
    """Values, statuses and event times per requested feature, in entity order."""

    def __init__(
        self,
        entities: dict[str, list[Any]],
        plan: ReadPlan,
        values: dict[str, list[Any]],
        statuses: dict[str, list[str]],
        event_us: dict[str, list[int | None]],
    ):
        self._entities = entities
        self._plan = plan
        self._values = values
        self._statuses = statuses
        self._event_us = event_us

    def __len__(self) -> int:
        return len(next(iter(self._entities.values()), []))

    @property
    def statuses(self) -> dict[str, list[str]]:
        """``present`` / ``missing`` / ``expired`` per feature and entity row."""
        return self._statuses

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
        for vr in self._plan.views:
            for out, dtype in zip(vr.outputs, vr.dtypes, strict=True):
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


def read_online(
    store: OnlineStore,
    plan: ReadPlan,
    entities: dict[str, list[Any]],
    now_us: int,
) -> OnlineResponse:
    """One round trip to the store for every view and entity, then decoding."""
    n = len(next(iter(entities.values()), []))
    requests = []
    for vr in plan.views:
        names = vr.online.join_keys
        if len(names) == 1:
            col, name = entities[names[0]], names[0]
            keys = [encode_key_part(v, name) for v in col]
        else:
            cols = [entities[k] for k in names]
            keys = [encode_key(vals, names) for vals in zip(*cols, strict=True)]
        requests.append((vr.online, keys))
    results = store.read(requests)

    values: dict[str, list[Any]] = {}
    statuses: dict[str, list[str]] = {}
    stamps: dict[str, list[int | None]] = {}
    unpack = msgpack.unpackb
    for vr, records in zip(plan.views, results, strict=True):
        fresh_after = None if vr.ttl_us is None else now_us - vr.ttl_us
        vals = {o: [None] * n for o in vr.outputs}
        stats = {o: [MISSING] * n for o in vr.outputs}
        times: list[int | None] = [None] * n
        pairs = list(zip(vr.features, vr.outputs, strict=True))
        for i, rec in enumerate(records):
            if rec is None:
                continue
            ev = int(rec[:16]) - _OFFSET
            times[i] = ev
            if fresh_after is not None and ev < fresh_after:
                for _, o in pairs:
                    stats[o][i] = EXPIRED
                continue
            body = unpack(rec[HEADER:])
            for f, o in pairs:
                if f in body:
                    vals[o][i] = body[f]
                    stats[o][i] = PRESENT
        for out, dtype in zip(vr.outputs, vr.dtypes, strict=True):
            if dtype is Timestamp:  # stored as µs integers (msgpack has no datetime)
                vals[out] = [None if u is None else from_micros(u) for u in vals[out]]
        values.update(vals)
        statuses.update(stats)
        for o in vr.outputs:
            stamps[o] = times
    return OnlineResponse(entities, plan, values, statuses, stamps)
