"""The offline engine contract and the retrieval job every engine returns.

The point-in-time rule, identical for every engine (tests/contract holds the proof):
for each entity row stamped ``t`` and each view, take the source row with the same join-key
values whose event timestamp ``ts`` satisfies ``t - ttl <= ts <= t`` (no lower bound when
``ttl`` is None). The latest ``ts`` wins; ties go to the latest created timestamp (a null created
timestamp is older than any other). Rows equal in keys and both timestamps are duplicates:
if their values differ, which one is used is unspecified (Parity's own writes stamp a unique
created time, so they never make such rows).
Every entity row comes back exactly once, in input order, with nulls where nothing matched.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from parity.definitions import DataSource, FeatureView
from parity.types import ValueType

if TYPE_CHECKING:
    import pandas as pd

ROW_ID = "__parity_row"
"""Internal column: the entity row's position in the caller's frame (int64)."""
ENTITY_TS = "__parity_ts"
"""Internal column: the entity row's timestamp as naive UTC ``timestamp[us]``."""


@dataclass(frozen=True)
class ViewJoin:
    """One view's part of a point-in-time join: which features, under which output names."""

    view: FeatureView
    source: DataSource
    join_keys: tuple[str, ...]
    features: tuple[str, ...]
    output_names: tuple[str, ...]
    dtypes: tuple[ValueType, ...]

    @property
    def ttl(self) -> timedelta | None:
        return self.view.ttl


@dataclass(frozen=True)
class PointInTimeJoin:
    """A whole historical retrieval: the keyed entity rows and every view to join.

    ``keys`` holds only ``ROW_ID``, ``ENTITY_TS`` and the join-key columns; the engine
    returns the feature columns aligned with it, and ``entities`` (the caller's own frame)
    is put back beside them untouched.
    """

    keys: pa.Table
    entities: pa.Table
    views: tuple[ViewJoin, ...]


class RetrievalJob(ABC):
    """A historical retrieval, run when its result is asked for."""

    @abstractmethod
    def to_arrow(self) -> pa.Table:
        """The entity frame's columns followed by the requested features, in input order."""

    def to_pandas(self) -> pd.DataFrame:
        """As a pandas frame; timestamps stay timezone-aware where the input was."""
        return self.to_arrow().to_pandas()

    def to_polars(self) -> Any:
        from parity.plugins import require

        require(("polars",), "polars", "to_polars()")
        import polars as pl

        return pl.from_arrow(self.to_arrow())

    def to_parquet(self, path: str | Path) -> Path:
        """Write the result as one Parquet file; returns its path."""
        out = Path(path)
        import pyarrow.parquet as pq

        out.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(self.to_arrow(), out)
        return out


class ArrowRetrievalJob(RetrievalJob):
    """A job whose result is computed once by a callable and then kept."""

    def __init__(self, compute: Any):
        self._compute = compute
        self._result: pa.Table | None = None

    def to_arrow(self) -> pa.Table:
        if self._result is None:
            self._result = self._compute()
        return self._result


class OfflineEngine(ABC):
    """What every offline engine does; optional abilities are the ``Supports*`` mixins below,
    checked with ``isinstance`` (an engine lists the ones it has in its class line)."""

    @abstractmethod
    def source_schema(self, source: DataSource) -> pa.Schema:
        """The source's columns as they are in the data (before field_mapping).

        Raises DataSourceNotFoundError when the files are missing, DataSourceError when
        they cannot be read.
        """

    @abstractmethod
    def point_in_time_join(self, join: PointInTimeJoin) -> RetrievalJob:
        """Features for every entity row by the rule in this module's docstring."""

    @abstractmethod
    def latest(
        self, view: ViewJoin, start: datetime, end: datetime, *, batch_rows: int = 100_000
    ) -> pa.RecordBatchReader:
        """The latest row per entity key with ``start <= event time <= end``, streamed.

        Columns: the join keys, the features (by the view's names, cast to their types),
        ``__event_us`` and ``__created_us`` (int64 µs since the epoch; created null when the
        source has none). "Latest" is the historical join's order: event, then created time.
        """

    def close(self) -> None:  # noqa: B027 - engines without resources need nothing
        """Release connections and files."""


class SupportsSQL(ABC):
    """Queries in the engine's own SQL: entity frames given as an SQL query."""

    @abstractmethod
    def query(self, sql: str) -> pa.Table:
        """Run a query in the engine's own SQL and return its rows."""


class SupportsCountedLatest(ABC):
    """``latest`` that also says how many rows it will stream, before the first: what a
    progress bar with a total and a time remaining needs. It may cost the engine some work
    (DuckDB: a copy of the result, one row per key), so it is asked for only when a bar is
    shown."""

    @abstractmethod
    def latest_counted(
        self, view: ViewJoin, start: datetime, end: datetime, *, batch_rows: int = 100_000
    ) -> tuple[int, pa.RecordBatchReader]:
        """The number of rows ``latest`` streams for the same arguments, and the stream."""


class SupportsEvents(ABC):
    """Raw events in a time range: what materializing an aggregated view reads."""

    @abstractmethod
    def events(self, view: ViewJoin, after_us: int, until_us: int) -> pa.Table:
        """The raw events of an aggregated view with ``after_us < event time <= until_us``.

        Columns: the join keys and the columns the aggregations read (by the view's names),
        the event id column when the source has one (replays already dropped: the first by
        created time is kept), ``__event_us`` and ``__created_us``.
        """


class SupportsSourceRows(ABC):
    """Source rows in a time range, as a view names them: what monitoring reads (drift,
    checks, the skew replay's inputs)."""

    @abstractmethod
    def source_rows(
        self,
        view: ViewJoin,
        start: datetime | None,
        end: datetime | None,
        *,
        columns: tuple[str, ...] | None = None,
    ) -> pa.Table:
        """The rows of the view's source with ``start <= event time <= end`` (None: no
        bound), every row (no "latest" rule), in no particular order.

        Columns: the join keys, the view's features (or ``columns``, by the view's names,
        source columns renamed by ``field_mapping`` and cast to their types) and
        ``__event_us`` (int64 µs since the epoch).
        """


PROFILE_QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
"""The quantiles a profile reports, as columns ``p1`` ... ``p99``."""
PROFILE_BIN = pa.struct([("lower", pa.float64()), ("upper", pa.float64()), ("count", pa.int64())])
PROFILE_TOP = pa.struct([("value", pa.string()), ("count", pa.int64())])
PROFILE_SCHEMA = pa.schema(
    [
        ("feature", pa.string()),
        ("dtype", pa.string()),
        ("rows", pa.int64()),
        ("nulls", pa.int64()),
        ("null_ratio", pa.float64()),
        ("distinct", pa.int64()),
        ("distinct_exact", pa.bool_()),
        ("mean", pa.float64()),
        ("std", pa.float64()),
        ("min", pa.float64()),
        ("max", pa.float64()),
        *((f"p{round(q * 100)}", pa.float64()) for q in PROFILE_QUANTILES),
        ("histogram", pa.list_(PROFILE_BIN)),
        ("top", pa.list_(PROFILE_TOP)),
    ]
)
"""One row per feature; what every ``SupportsProfile.profile`` returns."""
_NUMERIC = frozenset({"Int32", "Int64", "Float32", "Float64"})


def profile_kind(dtype: ValueType) -> str:
    """``numeric`` | ``timestamp`` | ``categorical`` (strings, bools) | ``bytes`` | ``array``:
    which statistics a profile gives a feature of this type."""
    if getattr(dtype, "element", None) is not None:
        return "array"
    if dtype.name in _NUMERIC:
        return "numeric"
    if dtype.name == "Timestamp":
        return "timestamp"
    if dtype.name in ("String", "Bool"):
        return "categorical"
    return "bytes"


def profile_bins(lo: float, hi: float, bins: int) -> list[tuple[float, float]]:
    """A profile's equal-width bins (lower, upper) from ``lo`` to ``hi``, the last ending
    at ``hi`` exactly; one bin when they are equal. A value ``x`` falls in bin
    ``min(floor((x - lo) / (hi - lo) * bins), bins - 1)``."""
    if lo == hi:
        return [(lo, hi)]
    width = (hi - lo) / bins
    return [(lo + k * width, hi if k == bins - 1 else lo + (k + 1) * width) for k in range(bins)]


class SupportsProfile(ABC):
    """Statistics of a view's source rows computed inside the engine: what
    ``store.profile`` runs (without it, monitoring computes them in Arrow over
    ``SupportsSourceRows.source_rows``)."""

    @abstractmethod
    def profile(
        self,
        view: ViewJoin,
        start: datetime | None,
        end: datetime | None,
        *,
        distinct: str = "exact",
        bins: int = 20,
        top_k: int = 10,
    ) -> pa.Table:
        """``PROFILE_SCHEMA``, one row per feature of ``view`` in its order, over the rows
        ``source_rows`` returns for the same arguments (zero rows: every count 0).

        ``distinct``: ``"exact"`` (count distinct) or ``"approx"`` (HyperLogLog).
        Numeric and timestamp features (timestamps as seconds since the epoch, UTC) get
        mean, sample std (ddof 1, null below two values), min, max, the quantiles by linear
        interpolation (numpy's default) and ``bins`` equal-width bins from min to max (the
        last closed; one bin when min equals max). Strings and bools get the ``top_k``
        most frequent values (ties by value), bools as ``"true"``/``"false"``.
        Bytes and arrays get counts only.
        """
