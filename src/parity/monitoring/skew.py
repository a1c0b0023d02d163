"""Training/serving skew: the serving log replayed through the point-in-time join.

``skew(store, since, until=, out=)`` reads the serving log's files whose request times fall in
[since, until] (``parity.monitoring.serving_log``), runs ``get_historical_features`` for each
request shape with the logged entity keys stamped at their request times, and compares each
served value with the offline one. When the store is consistent (the online values are what
materialization or pushes wrote from the same source rows) the two agree: the online read
answers "the latest record, unless older than the ttl", which is the join's rule for an
entity row stamped with the request time; an expired value is null on both sides.

Per feature (``view:feature``), over the logged rows:

- ``matched``: both null, or equal (floats within 1e-9 relative, everything else exactly);
- ``missing_rate``: served null (missing or expired) while offline has a value;
- ``extra_rate``: served a value the offline join lacks;
- ``mean_abs_diff``: mean |served - offline| over rows where both are numbers (else null);
- ``consistency``: the mean per-row score: ``1 - |on - off| / max(|on|, |off|)`` for two
  numbers (0/0 = 1, floored at 0 when the signs differ), 1 for equal and 0 for unequal
  values of other types, 1 when both are null and 0 when only one is.

Rows that do not match are written to ``out`` (default: the repo's
``data/monitoring/skew/<UTC time>.parquet``; a file is written even when none mismatched): feature, request time, entity keys (JSON),
served and offline values (JSON), the served status and event time, the kind of mismatch
(``missing``, ``extra``, ``different``) and the absolute difference. The result is stored in
the registry (kind ``skew``, view ``""``).
"""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from parity.clock import to_micros
from parity.discovery.usage import uncounted
from parity.errors import MonitoringError
from parity.monitoring.result import MonitorResult
from parity.monitoring.serving_log import (
    FEATURES_KEY,
    FULL_NAMES_KEY,
    REQUEST_TIME,
    file_bounds,
    log_folder,
)
from parity.monitoring.sources import time_range

if TYPE_CHECKING:
    from parity.store import FeatureStore

__all__ = ["MISMATCH_SCHEMA", "SKEW_SCHEMA", "log_files", "read_log", "skew"]

RELATIVE_TOLERANCE = 1e-9
SKEW_SCHEMA = pa.schema(
    [
        ("feature", pa.string()),
        ("rows", pa.int64()),
        ("matched", pa.int64()),
        ("match_rate", pa.float64()),
        ("missing_rate", pa.float64()),
        ("extra_rate", pa.float64()),
        ("mean_abs_diff", pa.float64()),
        ("consistency", pa.float64()),
    ]
)
MISMATCH_SCHEMA = pa.schema(
    [
        ("feature", pa.string()),
        ("request_time", pa.timestamp("us", tz="UTC")),
        ("entity", pa.string()),
        ("served", pa.string()),
        ("offline", pa.string()),
        ("served_status", pa.string()),
        ("served_event_timestamp", pa.timestamp("us", tz="UTC")),
        ("kind", pa.string()),
        ("abs_diff", pa.float64()),
    ]
)

Shape = tuple[tuple[str, ...], bool]
"""A request shape: the ``view:feature`` references and ``full_feature_names``."""


def skew(
    store: FeatureStore,
    since: datetime | str | None = None,
    *,
    until: datetime | str | None = None,
    out: str | Path | None = None,
) -> MonitorResult:
    """The skew report of the logged requests in [since, until] (None: unbounded); see the
    module docstring. MonitoringError when the range is empty or holds no logged rows."""
    lo, hi = time_range(since, until)
    root = log_folder(store.config.serving_log, store.repo_path)
    shapes = read_log(root, lo, hi)
    totals: dict[str, _Tally] = {}
    mismatches: list[pa.Table] = []
    rows = 0
    for (refs, full), logged in shapes.items():
        rows += logged.num_rows
        names = [_output_name(r, full) for r in refs]
        produced = set(names) | {f"{n}__status" for n in names}
        produced |= {f"{n}__event_timestamp" for n in names}
        keys = [c for c in logged.column_names if c not in produced]  # entities + time
        with uncounted():  # the replay is monitoring's read, not a consumer's
            offline = store.get_historical_features(
                logged.select(keys),
                list(refs),
                full_feature_names=full,
                timestamp_column=REQUEST_TIME,
            ).to_arrow()
        entity_keys = [k for k in keys if k != REQUEST_TIME]
        for ref, name in zip(refs, names, strict=True):
            tally, bad = _compare(ref, logged, name, offline.column(name), entity_keys)
            totals.setdefault(ref, _Tally()).add(tally)
            if bad is not None:
                mismatches.append(bad)
    table = pa.Table.from_pylist([t.row(ref) for ref, t in totals.items()], schema=SKEW_SCHEMA)
    mismatched = pa.concat_tables(mismatches) if mismatches else MISMATCH_SCHEMA.empty_table()
    path = _write_mismatches(store, mismatched, out)
    summary = {
        "rows": rows,
        "features": table.num_rows,
        "mismatched": mismatched.num_rows,
        "skewed": [t["feature"] for t in table.to_pylist() if t["matched"] < t["rows"]],
        "out": str(path),
    }
    from parity.registry.monitoring import MonitorRecords

    rid = MonitorRecords(store.registry).save(
        "skew", "", table, summary=summary, start=lo, end=hi, scope="serving_log"
    )
    return MonitorResult(
        kind="skew",
        table=table,
        view=None,
        start=lo,
        end=hi,
        scope="serving_log",
        id=rid,
        summary=summary,
    )


# -- reading the log ---------------------------------------------------------------------------


def log_files(root: Path, lo: datetime | None, hi: datetime | None) -> list[Path]:
    """The log files under ``root`` that may hold requests in [lo, hi], by their names."""
    lo_us = None if lo is None else to_micros(lo)
    hi_us = None if hi is None else to_micros(hi)
    found = []
    for path in sorted(root.rglob("*.parquet")):
        bounds = file_bounds(path)
        if bounds is None:
            continue
        first, last = bounds
        if (lo_us is None or last >= lo_us) and (hi_us is None or first <= hi_us):
            found.append(path)
    return found


def read_log(root: Path, lo: datetime | None, hi: datetime | None) -> dict[Shape, pa.Table]:
    """The logged rows in [lo, hi] by request shape; MonitoringError when there are none."""
    if not root.is_dir():
        raise MonitoringError(
            f"there is no serving log at {root}: set serving_log (sample_rate, path) in "
            "parity.yaml and serve requests with parity serve first"
        )
    parts: dict[Shape, list[pa.Table]] = {}
    for path in log_files(root, lo, hi):
        table = pq.read_table(path, partitioning=None)
        meta = table.schema.metadata or {}
        if FEATURES_KEY not in meta:
            continue  # not a serving log file
        times = table.column(REQUEST_TIME)
        if lo is not None:
            table = table.filter(pc.greater_equal(times, pa.scalar(lo, times.type)))
            times = table.column(REQUEST_TIME)
        if hi is not None:
            table = table.filter(pc.less_equal(times, pa.scalar(hi, times.type)))
        if table.num_rows:
            shape = (tuple(json.loads(meta[FEATURES_KEY])), meta.get(FULL_NAMES_KEY) == b"true")
            parts.setdefault(shape, []).append(table.replace_schema_metadata(None))
    if not parts:
        span = f"from {_iso(lo)} to {_iso(hi)}"
        raise MonitoringError(f"the serving log at {root} has no requests {span}")
    return {
        shape: pa.concat_tables(tables, promote_options="permissive")
        for shape, tables in parts.items()
    }


def _iso(t: datetime | None) -> str:
    return "(open)" if t is None else t.isoformat()


def _output_name(ref: str, full: bool) -> str:
    view, feature = ref.split(":", 1)
    return f"{view}__{feature}" if full else feature


# -- comparing ---------------------------------------------------------------------------------


class _Tally:
    """One feature's counts, summed over request shapes."""

    def __init__(self) -> None:
        self.rows = self.matched = self.missing = self.extra = 0
        self.pairs = 0  # numeric pairs, for the mean absolute difference
        self.abs_diff = 0.0
        self.score = 0.0

    def add(self, other: _Tally) -> None:
        for name in ("rows", "matched", "missing", "extra", "pairs", "abs_diff", "score"):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def row(self, feature: str) -> dict[str, Any]:
        n = self.rows
        return {
            "feature": feature,
            "rows": n,
            "matched": self.matched,
            "match_rate": self.matched / n if n else None,
            "missing_rate": self.missing / n if n else None,
            "extra_rate": self.extra / n if n else None,
            "mean_abs_diff": self.abs_diff / self.pairs if self.pairs else None,
            "consistency": self.score / n if n else None,
        }


def _numeric(t: pa.DataType) -> bool:
    return pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t)


def _compare(
    ref: str, logged: pa.Table, name: str, offline: pa.ChunkedArray, entity_keys: list[str]
) -> tuple[_Tally, pa.Table | None]:
    """One feature's tally and its mismatched rows (None when every row matched)."""
    on = logged.column(name).combine_chunks()
    off = offline.combine_chunks()
    if off.type != on.type:
        # compared as they are when the cast fails: unequal types never match
        with contextlib.suppress(pa.ArrowInvalid, pa.ArrowNotImplementedError):
            off = off.cast(on.type)
    on_null, off_null = pc.is_null(on), pc.is_null(off)
    both = pc.and_(pc.invert(on_null), pc.invert(off_null))
    missing = pc.and_(on_null, pc.invert(off_null))
    extra = pc.and_(pc.invert(on_null), off_null)
    numeric = _numeric(on.type) and _numeric(off.type)
    diff: pa.Array | None = None
    if numeric:
        a, b = on.cast(pa.float64()), off.cast(pa.float64())
        diff = pc.abs(pc.subtract(a, b))
        scale = pc.max_element_wise(pc.abs(a), pc.abs(b))
        if pa.types.is_floating(on.type) or pa.types.is_floating(off.type):
            close = pc.less_equal(diff, pc.multiply(scale, RELATIVE_TOLERANCE))
            nans = pc.and_(pc.is_nan(a), pc.is_nan(b))
            equal = pc.or_(pc.or_(pc.equal(a, b), close), nans)
        else:
            equal = pc.equal(on, off)
        # 1 - |on - off| / max(|on|, |off|): 1 when equal (0/0 included), floored at 0
        ratio = pc.subtract(1.0, pc.divide(diff, scale))
        pair_score = pc.if_else(equal, 1.0, pc.max_element_wise(pc.fill_null(ratio, 0.0), 0.0))
        pair_score = pc.if_else(pc.is_nan(pair_score), 0.0, pair_score)
    else:
        equal = _equal(on, off)
        pair_score = pc.if_else(equal, 1.0, 0.0)
    equal = pc.fill_null(equal, False)
    same = pc.and_(both, equal)
    matched = pc.or_(pc.and_(on_null, off_null), same)
    score = pc.if_else(both, pc.fill_null(pair_score, 0.0), pc.if_else(matched, 1.0, 0.0))
    tally = _Tally()
    tally.rows = len(on)
    tally.matched = _count(matched)
    tally.missing = _count(missing)
    tally.extra = _count(extra)
    tally.score = pc.sum(score).as_py() or 0.0
    if diff is not None:
        tally.pairs = _count(both)
        tally.abs_diff = pc.sum(pc.filter(diff, both)).as_py() or 0.0
    if tally.matched == tally.rows:
        return tally, None
    bad = pc.invert(matched)
    kind = pc.if_else(missing, "missing", pc.if_else(extra, "extra", "different"))
    mism = pa.table(
        {
            "feature": pa.array([ref] * (tally.rows - tally.matched), pa.string()),
            "request_time": pc.filter(logged.column(REQUEST_TIME), bad),
            "entity": _entity_json(logged.select(entity_keys).filter(bad)),
            "served": _json(pc.filter(on, bad)),
            "offline": _json(pc.filter(off, bad)),
            "served_status": pc.filter(_column(logged, f"{name}__status"), bad),
            "served_event_timestamp": pc.filter(_column(logged, f"{name}__event_timestamp"), bad),
            "kind": pc.filter(kind, bad),
            "abs_diff": pc.filter(diff, bad)
            if diff is not None
            else pa.nulls(tally.rows - tally.matched, pa.float64()),
        },
        schema=MISMATCH_SCHEMA,
    )
    return tally, mism


def _equal(on: pa.Array, off: pa.Array) -> pa.Array:
    """Element-wise equality; types Arrow cannot compare (lists, maps) by their values."""
    if on.type == off.type:
        try:
            return pc.equal(on, off)
        except pa.ArrowNotImplementedError:
            pass
    return pa.array(
        [a == b for a, b in zip(on.to_pylist(), off.to_pylist(), strict=True)], pa.bool_()
    )


def _count(mask: pa.Array) -> int:
    return int(pc.sum(pc.cast(mask, pa.int64())).as_py() or 0)


def _column(table: pa.Table, name: str) -> pa.Array:
    if name in table.column_names:
        return table.column(name).combine_chunks()
    return pa.nulls(table.num_rows)


def _json(values: pa.Array) -> pa.Array:
    """Values as JSON text for inspection (few: only mismatched rows get here)."""
    return pa.array(
        [None if v is None else json.dumps(v, default=str) for v in values.to_pylist()],
        pa.string(),
    )


def _entity_json(rows: pa.Table) -> pa.Array:
    """Each (mismatched) row's entity keys and request data as a JSON object."""
    keys = rows.column_names
    if not keys:
        return pa.nulls(rows.num_rows, pa.string())
    columns = [rows.column(k).to_pylist() for k in keys]
    return pa.array(
        [
            json.dumps(dict(zip(keys, row, strict=True)), default=str)
            for row in zip(*columns, strict=True)
        ],
        pa.string(),
    )


def _write_mismatches(store: FeatureStore, table: pa.Table, out: str | Path | None) -> Path:
    if out is None:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        path = store.repo_path / "data" / "monitoring" / "skew" / f"{stamp}.parquet"
    else:
        path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return path
