"""Entity frames: read whatever the caller passed into Arrow, keyed and checked.

Accepted: a pandas, pyarrow or polars frame, a path to a Parquet or CSV file, or an SQL
query string run by the offline engine. The timestamp column must hold timestamps (or
dates); naive timestamps are taken as UTC. Errors name the column or row at fault.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from parity.clock import MAX_TIME, MAX_US, MIN_TIME, MIN_US
from parity.errors import RetrievalError
from parity.offline.base import ENTITY_TS, ROW_ID
from parity.types import ValueType

_SQL_START = ("select", "with", "from", "(", "values", "table")


def read_entity_frame(entity_df: Any, run_sql: Callable[[str], pa.Table]) -> pa.Table:
    """The caller's entity frame as an Arrow table, columns and order untouched."""
    if isinstance(entity_df, pa.Table):
        return entity_df
    if isinstance(entity_df, pa.RecordBatch):
        return pa.Table.from_batches([entity_df])
    mod = type(entity_df).__module__
    if mod.startswith("pandas"):
        return pa.Table.from_pandas(entity_df, preserve_index=False)
    if mod.startswith("polars"):
        return entity_df.to_arrow()
    if isinstance(entity_df, Path) or (
        isinstance(entity_df, str) and not entity_df.lstrip().lower().startswith(_SQL_START)
    ):
        return _read_file(Path(entity_df))
    if isinstance(entity_df, str):
        try:
            return run_sql(entity_df)
        except Exception as exc:
            raise RetrievalError(f"entity query failed: {exc}") from None
    raise RetrievalError(
        "entity_df must be a pandas/pyarrow/polars frame, a Parquet or CSV path, or an SQL "
        f"query string; got {type(entity_df).__name__}"
    )


def _read_file(path: Path) -> pa.Table:
    if not path.exists():
        raise RetrievalError(f"entity file {str(path)!r} does not exist")
    try:
        if path.suffix.lower() in (".csv", ".tsv"):
            return pacsv.read_csv(path)
        return pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise RetrievalError(f"entity file {str(path)!r} cannot be read: {exc}") from None


def utc_naive(column: pa.ChunkedArray, what: str) -> pa.ChunkedArray:
    """Timestamps as naive UTC microseconds; naive input is taken as UTC already."""
    t = column.type
    if pa.types.is_date(t):
        column = column.cast(pa.timestamp("us"))
        t = column.type
    if not pa.types.is_timestamp(t):
        raise RetrievalError(
            f"{what} must hold timestamps, but its type is {t}; "
            "convert it (e.g. pandas.to_datetime) before retrieval"
        )
    if t.tz is not None:
        # The stored integers of a zoned timestamp are UTC already: reinterpret them.
        column = column.cast(pa.timestamp(t.unit))
    if t.unit != "us":
        column = pc.cast(column, pa.timestamp("us"), safe=False)
    return column


def key_entity_frame(
    table: pa.Table,
    *,
    timestamp_column: str,
    join_keys: Sequence[str],
    reserved: Sequence[str],
    key_types: Mapping[str, ValueType | None] | None = None,
) -> pa.Table:
    """The columns an engine joins on: row id, naive-UTC timestamp and the join keys.

    Raises RetrievalError for a missing timestamp column or join key, a null timestamp,
    or an entity column that a requested feature would overwrite.
    """
    cols = table.column_names
    if timestamp_column not in cols:
        raise RetrievalError(
            f"entity frame has no timestamp column {timestamp_column!r} (columns: {cols}); "
            "pass timestamp_column= to name another"
        )
    missing = [k for k in join_keys if k not in cols]
    if missing:
        raise RetrievalError(
            f"entity frame lacks join key column(s) {missing} needed by the requested "
            f"features (columns: {cols})"
        )
    internal = [c for c in cols if c.startswith("__parity")]
    if internal:
        raise RetrievalError(f"entity frame columns {internal} use the reserved prefix __parity")
    clash = sorted(set(reserved) & set(cols))
    if clash:
        raise RetrievalError(
            f"entity frame already has column(s) {clash}, which the requested features would "
            "overwrite; rename them or pass full_feature_names=True"
        )
    ts = utc_naive(table.column(timestamp_column), f"entity column {timestamp_column!r}")
    if ts.null_count:
        first = pc.index(pc.is_null(ts), True).as_py()
        raise RetrievalError(
            f"entity row {first} has a null {timestamp_column!r}; every row needs a timestamp"
        )
    us = ts.cast(pa.int64())
    bad = pc.or_(pc.less(us, MIN_US), pc.greater_equal(us, MAX_US))
    if pc.any(bad).as_py():
        first = pc.index(bad, True).as_py()
        raise RetrievalError(
            f"entity row {first}: {timestamp_column!r} is {ts[first].as_py()}, outside the "
            f"times Parity stores ({MIN_TIME:%Y-%m-%d} up to {MAX_TIME:%Y-%m-%d}, UTC)"
        )
    arrays: list[Any] = [pa.array(np.arange(table.num_rows, dtype=np.int64)), ts]
    names = [ROW_ID, ENTITY_TS]
    for k in join_keys:
        col = table.column(k)
        if pa.types.is_dictionary(col.type):
            col = col.cast(col.type.value_type)
        want = (key_types or {}).get(k)
        if want is not None and not want.accepts(col.type):
            raise RetrievalError(
                f"entity column {k!r} has type {col.type}, but its entity's join keys are "
                f"{want}; convert the column"
            )
        arrays.append(col)
        names.append(k)
    return pa.Table.from_arrays(arrays, names=names)
