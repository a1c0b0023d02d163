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
import pyarrow.parquet as pq

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
