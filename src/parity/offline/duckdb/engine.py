"""The embedded offline engine: DuckDB in process over Parquet and CSV files.

The point-in-time join is one ``ASOF LEFT JOIN`` per view. When the source has a created
timestamp, the inequality compares one 128-bit integer ``event_us * 2**64 + created_us`` so
the latest event wins and then the latest created, in a single sort-merge pass with no
separate de-duplication (a struct key or a file-position tie-break doubled the join's time). The TTL bound is applied after the match: the latest row at or before
``t`` is the only candidate, so if it is older than ``t - ttl`` nothing in the window is.
Only the join keys, the timestamps and a row id go into DuckDB; the caller's columns are put
back beside the features in Arrow, untouched.
"""

from __future__ import annotations

import functools
import glob
import hashlib
import importlib.util
import os
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from parity import cache
from parity import types as T
from parity.aggregates.exact import ExactRangeError
from parity.definitions import DataSource, FileSource, PushSource
from parity.errors import DataSourceError, DataSourceNotFoundError, RetrievalError
from parity.lazy import LazyModule
from parity.offline import log
from parity.offline.base import (
    ENTITY_TS,
    ROW_ID,
    ArrowRetrievalJob,
    OfflineEngine,
    PointInTimeJoin,
    RetrievalJob,
    SupportsCountedLatest,
    SupportsEvents,
    SupportsProfile,
    SupportsSourceRows,
    SupportsSQL,
    ViewJoin,
)
from parity.offline.duckdb.config import DuckDBOfflineConfig
from parity.offline.duckdb.windows import WindowQuery, typed_column, window_query
from parity.plugins import LogReader

if TYPE_CHECKING:
    import duckdb
    import pyarrow.compute as pc
else:  # imported on first use: a plan reads cached source schemas and runs no query
    duckdb = LazyModule("duckdb", globals(), "duckdb")
    pc = LazyModule("pyarrow.compute", globals(), "pc")

_OPENED = "__parity_log_"
_SCHEMAS_KEPT = 1024
"""Source schemas an engine keeps in memory (keyed by their files)."""

T_MICRO = timedelta(microseconds=1)
_SHIFT = 2**64
_HALF = 2**63

_DUCK_TYPES = {
    "Int32": "INTEGER",
    "Int64": "BIGINT",
    "Float32": "FLOAT",
    "Float64": "DOUBLE",
    "String": "VARCHAR",
    "Bool": "BOOLEAN",
    "Bytes": "BLOB",
    "Timestamp": "TIMESTAMPTZ",
}


def _micros(column: str, arrow_type: pa.DataType | None) -> str:
    """SQL for a time column as BIGINT microseconds since the epoch (UTC)."""
    if arrow_type is not None and pa.types.is_timestamp(arrow_type):
        if arrow_type.unit == "ns" and arrow_type.tz is not None:
            return f"(epoch_ns({column}) // 1000)"
        return f"epoch_us({column})"
    return f"epoch_us(CAST({column} AS TIMESTAMP))"


def _us(value: datetime) -> int:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return (value - datetime(1970, 1, 1, tzinfo=UTC)) // T_MICRO


def _bound(column: str, arrow_type: pa.DataType | None, op: str, micros: int) -> str:
    """``column op time``, written on the raw column when its type allows (for pushdown)."""
    when = datetime(1970, 1, 1) + timedelta(microseconds=micros)
    text = when.isoformat(sep=" ")
    if arrow_type is not None and pa.types.is_timestamp(arrow_type) and arrow_type.unit != "ns":
        if arrow_type.tz is not None:
            return f"{column} {op} TIMESTAMPTZ '{text}+00:00'"
        return f"{column} {op} TIMESTAMP '{text}'"
    return f"{_micros(column, arrow_type)} {op} {micros}"


def duck_type(t: T.ValueType) -> str:
    if isinstance(t, T.Array):
        return f"{duck_type(t.element)}[]"
    return _DUCK_TYPES[t.name]


def ident(name: str) -> str:
    """A quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def _files_key(scan: str, patterns: list[str]) -> str | None:
    """What a scan's schema depends on: its SQL, DuckDB's version and every Parquet file it
    reads (path, and a digest of the footer that holds the file's schema); None when it
    reads a decrypted log (a table of this process) or CSV (whose types DuckDB infers
    from the rows themselves), which are read each time."""
    if any(p.startswith(_OPENED) for p in patterns) or "read_csv(" in scan:
        return None
    files = []
    for pattern in patterns:
        for path in sorted(glob.glob(pattern, recursive=True)):
            footer = _parquet_footer(path)
            if footer is None:
                return None
            files.append(f"{path}|{hashlib.sha256(footer).hexdigest()}")
    return "\n".join([_duckdb_build(), scan, *files])


def _parquet_footer(path: str) -> bytes | None:
    """The file's Parquet footer (its schema and row groups' metadata, then its length
    and ``PAR1``), or None when it is not a readable Parquet file."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            if size < 12:
                return None
            f.seek(size - 8)
            tail = f.read(8)
            length = int.from_bytes(tail[:4], "little")
            if tail[4:] != b"PAR1" or length + 12 > size:
                return None
            f.seek(size - 8 - length)
            return f.read(length) + tail
    except OSError:
        return None


@functools.cache
def _duckdb_build() -> str:
    """The installed DuckDB (its package file's path, size and time), without importing it."""
    spec = importlib.util.find_spec("duckdb")
    origin = spec.origin if spec is not None else None
    if not origin:
        return "duckdb"
    info = os.stat(origin)
    return f"{origin}|{info.st_size}|{info.st_mtime_ns}"


def literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


class DuckDBOfflineEngine(
    OfflineEngine,
    SupportsSQL,
    SupportsEvents,
    SupportsCountedLatest,
    SupportsSourceRows,
    SupportsProfile,
):
    """Point-in-time joins and source reads with an in-process DuckDB."""

    def __init__(
        self,
        config: DuckDBOfflineConfig,
        repo_path: Path,
        log_root: Path | None = None,
        *,
        log_reader: LogReader | None = None,
    ):
        """``log_reader``: reads a log folder holding encrypted columns (see
        ``parity.plugins.BackendContext.log_reader``)."""
        self.config = config
        self.repo_path = Path(repo_path)
        self.log_root = log_root or self.repo_path / "data" / "offline_log"
        self.log_reader = log_reader
        self._local = threading.local()
        self._schemas: dict[str, pa.Schema] = {}

    # -- connections ---------------------------------------------------------------------
    def _con(self) -> duckdb.DuckDBPyConnection:
        # One connection per thread: DuckDB connections are not safe to share across threads.
        con = getattr(self._local, "con", None)
        if con is None:
            con = duckdb.connect(":memory:")
            con.execute("SET TimeZone = 'UTC'")
            if self.config.memory_limit:
                con.execute(f"SET memory_limit = {literal(self.config.memory_limit)}")
            if self.config.threads:
                con.execute(f"SET threads = {int(self.config.threads)}")
            if self.config.temp_directory:
                con.execute(f"SET temp_directory = {literal(self.config.temp_directory)}")
            self._local.con = con
        return con

    def close(self) -> None:
        con = getattr(self._local, "con", None)
        if con is not None:
            con.close()
            self._local.con = None
            self._local.logs = None

    def query(self, sql: str) -> pa.Table:
        return self._con().sql(sql).to_arrow_table()

    # -- sources -------------------------------------------------------------------------
    def _files(self, source: FileSource) -> tuple[str, bool]:
        """The glob to read and whether it is a hive-partitioned folder."""
        path = Path(source.path).expanduser()
        if not path.is_absolute():
            path = self.repo_path / path
        ext = "csv" if source.file_format == "csv" else "parquet"
        if path.is_dir():
            pattern, hive = str(path / "**" / f"*.{ext}"), True
        else:
            pattern, hive = str(path), False
        if not glob.glob(pattern, recursive=True):
            raise DataSourceNotFoundError(
                f"source {source.name!r}: no files at {source.path!r} (looked for {pattern})"
            )
        return pattern, hive

    def _scan(self, source: DataSource) -> str:
        """A table function reading every file of the source (and its offline log)."""
        return self._scan_sql(*self._scan_patterns(source))

    def _scan_patterns(self, source: DataSource) -> tuple[list[str], bool, FileSource]:
        """The globs (or the decrypted log's table, last) a scan of ``source`` reads, whether
        its batch files are a hive-partitioned folder, and its batch source."""
        patterns: list[str] = []
        hive = False
        if isinstance(source, PushSource):
            if isinstance(source.batch_source, str):
                raise DataSourceError(
                    f"push source {source.name!r}: batch_source {source.batch_source!r} is a "
                    "name, resolved when the push source is applied; apply it first"
                )
            file_source = source.batch_source
            folder = log.log_dir(self.log_root, source.name)
            opened = self._opened_log(source.name, folder) if log.has_files(folder) else None
            if opened is not None:
                patterns.append(opened)
            elif log.has_files(folder):
                patterns.append(str(folder / "*.parquet"))
        elif isinstance(source, FileSource):
            file_source = source
        else:
            raise DataSourceError(
                f"source {source.name!r}: the duckdb engine reads file and push sources, "
                f"not {source.source_type!r}"
            )
        try:
            pattern, hive = self._files(file_source)
            patterns.insert(0, pattern)
        except DataSourceNotFoundError:
            if not patterns:  # a push source may start with nothing but its log
                raise
        return patterns, hive, file_source

    def _scan_sql(self, patterns: list[str], hive: bool, file_source: FileSource) -> str:
        patterns = list(patterns)

        def listed(items: list[str]) -> str:
            return "[" + ", ".join(literal(p) for p in items) + "]"

        if patterns and patterns[-1].startswith(_OPENED):  # the decrypted log: a view
            opened = patterns.pop()
            if not patterns:
                return opened
            reader = "read_csv" if file_source.file_format == "csv" else "read_parquet"
            hive_opt = ", hive_partitioning = true" if hive else ""
            return (
                f"(SELECT * FROM {reader}({listed(patterns)}, union_by_name = true{hive_opt}) "
                f"UNION ALL BY NAME SELECT * FROM {opened})"
            )
        if file_source.file_format == "csv":
            csv_files, log_files = patterns[:1], patterns[1:]
            scan = f"read_csv({listed(csv_files)}, union_by_name = true)"
            if not log_files:
                return scan
            # CSV batch files plus the Parquet log: each with its own reader.
            return (
                f"(SELECT * FROM {scan} UNION ALL BY NAME "
                f"SELECT * FROM read_parquet({listed(log_files)}, union_by_name = true))"
            )
        opts = ", union_by_name = true"
        if hive:
            opts += ", hive_partitioning = true"
        return f"read_parquet({listed(patterns)}{opts})"

    def _opened_log(self, source: str, folder: Path) -> str | None:
        """The log of ``source`` decrypted and registered on this thread's connection (its
        name), or None when the files are read as they are."""
        if self.log_reader is None:
            return None
        table = self.log_reader(source, folder)
        if table is None:
            return None
        name = f"{_OPENED}{id(table):x}"
        con = self._con()
        registered = getattr(self._local, "logs", None)
        if registered is None:
            registered = self._local.logs = {}
        if registered.get(source) != name:
            # A table of this thread's database, not a registered object: queries run on
            # cursors of their own, which see the database's tables only.
            if source in registered:
                con.execute(f"DROP TABLE IF EXISTS {registered[source]}")
            con.register("__parity_opened", table)
            try:
                con.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM __parity_opened")
            finally:
                con.unregister("__parity_opened")
            registered[source] = name
        return name

    def source_schema(self, source: DataSource) -> pa.Schema:
        """The columns DuckDB reads from ``source``. Kept per set of Parquet files (each
        file's path and footer, ``_files_key``) in this engine, and for batch files alone
        (no offline log, which grows) in the disk cache (``parity.cache``): a plan of a
        large repo reads every source's schema in a fresh process."""
        patterns, hive, file_source = self._scan_patterns(source)
        scan = self._scan_sql(patterns, hive, file_source)
        key = _files_key(scan, patterns)
        on_disk = key is not None and len(patterns) == 1
        if key is not None:
            found = self._schemas.get(key)
            if found is None and on_disk:
                found = cache.load("source_schema", key)
            if isinstance(found, pa.Schema):
                self._keep_schema(key, found)
                return found
        try:
            schema = self._con().sql(f"SELECT * FROM {scan} LIMIT 0").to_arrow_table().schema
        except duckdb.Error as exc:
            raise DataSourceError(f"source {source.name!r} cannot be read: {exc}") from None
        if key is not None:
            self._keep_schema(key, schema)
            if on_disk:
                cache.save("source_schema", key, schema)
        return schema

    def _keep_schema(self, key: str, schema: pa.Schema) -> None:
        if key not in self._schemas and len(self._schemas) >= _SCHEMAS_KEPT:
            self._schemas.clear()  # file sets come and go (a growing log): start afresh
        self._schemas[key] = schema

    def _view_sql(
        self, vj: ViewJoin, alias: str, span: tuple[int, int] | None
    ) -> tuple[str, str, str]:
        """One view's source subquery, its ASOF condition, and its "within TTL" test.

        Times are compared as BIGINT microseconds since the epoch: ``epoch_us`` reads a
        TIMESTAMP or TIMESTAMPTZ as it is stored, where a cast between the two would run
        every row through time-zone code. ``span`` is the entity rows' (min, max) time.
        """
        src = vj.source
        types = {f.name: f.type for f in self.source_schema(src)}
        ts_col = src.timestamp_field
        ts = _micros(ident(ts_col), types.get(ts_col))
        ttl_us = vj.ttl // T_MICRO if vj.ttl is not None else None
        # Rows that can never match are dropped before the ASOF sort: later than every
        # entity time, older than every entity time minus the TTL, or of keys never asked
        # for. Bounds on the raw column let the Parquet reader skip row groups.
        where = [f"{ident(ts_col)} IS NOT NULL"]
        if span is not None:
            where.append(_bound(ident(ts_col), types.get(ts_col), "<=", span[1]))
            if ttl_us is not None:
                where.append(_bound(ident(ts_col), types.get(ts_col), ">=", span[0] - ttl_us))
        key_cols = ", ".join(ident(src.column_for(k)) for k in vj.join_keys)
        wanted = ", ".join(ident(k) for k in vj.join_keys)
        where.append(f"({key_cols}) IN (SELECT ({wanted}) FROM __parity_keys)")
        cols = [
            f"{ident(src.column_for(k))} AS {ident(f'k{i}')}" for i, k in enumerate(vj.join_keys)
        ]
        cols += [
            f"{ident(src.column_for(f))} AS {ident(f'f{i}')}" for i, f in enumerate(vj.features)
        ]
        cond = [f"keys.{ident(k)} = {alias}.{ident(f'k{i}')}" for i, k in enumerate(vj.join_keys)]
        oldest = f"keys.__us - {ttl_us}" if ttl_us is not None else ""
        if src.created_timestamp_field:
            # One 128-bit key orders by event time, then created time (null = oldest): a
            # single fixed-width sort key, far cheaper in the ASOF sort than a struct. The
            # event time is its high half, so the TTL test reads it too (no second column).
            cr_col = src.created_timestamp_field
            created = _micros(ident(cr_col), types.get(cr_col))
            cols.append(
                f"{ts}::HUGEINT * {_SHIFT} + COALESCE({created}::HUGEINT + {_HALF}, 0) AS __order"
            )
            cond.append(f"keys.__us::HUGEINT * {_SHIFT} + {_SHIFT - 1} >= {alias}.__order")
            fresh = f"{alias}.__order >= ({oldest})::HUGEINT * {_SHIFT}" if oldest else ""
        else:
            cols.append(f"{ts} AS __order")
            cond.append(f"keys.__us >= {alias}.__order")
            fresh = f"{alias}.__order >= {oldest}" if oldest else ""
        sub = f"(SELECT {', '.join(cols)} FROM {self._scan(src)} WHERE {' AND '.join(where)})"
        return sub, " AND ".join(cond), fresh

    def _select(self, vj: ViewJoin, alias: str, fresh: str) -> list[str]:
        out = []
        for i, (name, dtype) in enumerate(zip(vj.output_names, vj.dtypes, strict=True)):
            value = f"CAST({alias}.{ident(f'f{i}')} AS {duck_type(dtype)})"
            if fresh:
                value = f"CASE WHEN {fresh} THEN {value} END"
            out.append(f"{value} AS {ident(name)}")
        return out

    def build_sql(self, join: PointInTimeJoin) -> str:
        span = None
        if join.keys.num_rows:
            micros = join.keys.column(ENTITY_TS).cast(pa.int64())
            lo, hi = pc.min_max(micros).values()
            span = (lo.as_py(), hi.as_py())
        selects = [f"keys.{ROW_ID}"]
        joins = []
        for n, vj in enumerate(join.views):
            alias = f"v{n}"
            sub, cond, fresh = self._view_sql(vj, alias, span)
            joins.append(f"ASOF LEFT JOIN {sub} AS {alias} ON {cond}")
            selects += self._select(vj, alias, fresh)
        return (
            f"SELECT {', '.join(selects)} FROM "
            f"(SELECT *, epoch_us({ENTITY_TS}) AS __us FROM __parity_keys) AS keys "
            + " ".join(joins)
            + f" ORDER BY keys.{ROW_ID}"
        )

    def latest(
        self, view: ViewJoin, start: datetime, end: datetime, *, batch_rows: int = 100_000
    ) -> pa.RecordBatchReader:
        return self._stream(self._latest_sql(view, start, end), batch_rows, view)

    def latest_counted(
        self, view: ViewJoin, start: datetime, end: datetime, *, batch_rows: int = 100_000
    ) -> tuple[int, pa.RecordBatchReader]:
        # The aggregate is complete before its first row comes out, so a window count over
        # its result costs a copy of the result (one row per key), not a second scan.
        sql = f"SELECT *, count(*) OVER () AS __rows FROM ({self._latest_sql(view, start, end)})"
        reader = self._stream(sql, batch_rows, view)
        schema = pa.schema([f for f in reader.schema if f.name != "__rows"])
        try:
            first = next(iter(reader), None)
        except duckdb.Error as exc:
            raise DataSourceError(f"reading the latest rows of {view.view.name!r}: {exc}") from None
        total = (
            0 if first is None or first.num_rows == 0 else int(first.column("__rows")[0].as_py())
        )

        def batches() -> Iterator[pa.RecordBatch]:
            if first is not None:
                yield first.drop_columns(["__rows"])
            for batch in reader:
                yield batch.drop_columns(["__rows"])

        return total, pa.RecordBatchReader.from_batches(schema, batches())

    def _latest_sql(self, view: ViewJoin, start: datetime, end: datetime) -> str:
        src = view.source
        types = {f.name: f.type for f in self.source_schema(src)}
        ts_col = ident(src.timestamp_field)
        ts = _micros(ts_col, types.get(src.timestamp_field))
        if src.created_timestamp_field:
            cr = _micros(ident(src.created_timestamp_field), types.get(src.created_timestamp_field))
        else:
            cr = "NULL::BIGINT"
        keys = [f"{ident(src.column_for(k))} AS {ident(k)}" for k in view.join_keys]
        feats = ", ".join(
            f"{ident(f'f{i}')}: CAST({ident(src.column_for(f))} AS {duck_type(t)})"
            for i, (f, t) in enumerate(zip(view.features, view.dtypes, strict=True))
        )
        order = f"{ts}::HUGEINT * {_SHIFT} + COALESCE({cr}::HUGEINT + {_HALF}, 0)"
        lo, hi = (
            _bound(ts_col, types.get(src.timestamp_field), op, micros)
            for op, micros in ((">=", _us(start)), ("<=", _us(end)))
        )
        # arg_max over a struct keeps null features (arg_max skips a null argument).
        inner = (
            f"SELECT {', '.join(keys)}, {{'e': {ts}, 'c': {cr}, {feats}}} AS v, {order} AS o "
            f"FROM {self._scan(src)} WHERE {lo} AND {hi}"
        )
        key_list = ", ".join(ident(k) for k in view.join_keys)
        outs = [f"w.v.{ident(f'f{i}')} AS {ident(f)}" for i, f in enumerate(view.features)]
        return (
            f"SELECT {key_list}, {', '.join(outs)}, w.v.e AS __event_us, w.v.c AS __created_us "
            f"FROM (SELECT {key_list}, arg_max(v, o) AS v FROM ({inner}) GROUP BY ALL) AS w"
        )

    def _stream(self, sql: str, batch_rows: int, view: ViewJoin) -> pa.RecordBatchReader:
        try:
            # A cursor of its own: the caller may run other queries while this one streams.
            rel = self._con().cursor().sql(sql)
            if hasattr(rel, "to_arrow_reader"):  # DuckDB >= 1.4 names it so
                return rel.to_arrow_reader(batch_rows)
            return rel.fetch_record_batch(batch_rows)
        except duckdb.Error as exc:
            raise DataSourceError(f"reading the latest rows of {view.view.name!r}: {exc}") from None

    def events(self, view: ViewJoin, after_us: int, until_us: int) -> pa.Table:
        src = view.source
        types = {f.name: f.type for f in self.source_schema(src)}
        dtypes = {f.name: f.dtype for f in view.view.schema}
        ts_col = src.timestamp_field
        cols = [f"{ident(src.column_for(k))} AS {ident(k)}" for k in view.join_keys]
        wanted = (a.column for a in view.view.aggregations if a.column)
        for c in dict.fromkeys(c for c in wanted if c not in view.join_keys):
            cols.append(
                f"{typed_column(ident(src.column_for(c)), dtypes[c], duck_type)} AS {ident(c)}"
            )
        eid = src.event_id_field
        if eid:
            cols.append(f"{ident(src.column_for(eid))} AS {ident(eid)}")
        cols.append(f"{_micros(ident(ts_col), types.get(ts_col))} AS __event_us")
        cr = src.created_timestamp_field
        created = _micros(ident(cr), types.get(cr)) if cr else "NULL::BIGINT"
        cols.append(f"{created} AS __created_us")
        where = [
            f"{ident(ts_col)} IS NOT NULL",
            _bound(ident(ts_col), types.get(ts_col), ">", after_us),
            _bound(ident(ts_col), types.get(ts_col), "<=", until_us),
        ]
        sql = f"SELECT {', '.join(cols)} FROM {self._scan(src)} WHERE {' AND '.join(where)}"
        if eid:
            part = ", ".join(ident(k) for k in view.join_keys)
            sql = (
                f"SELECT * FROM ({sql}) QUALIFY {ident(eid)} IS NULL OR row_number() OVER "
                f"(PARTITION BY {part}, {ident(eid)} ORDER BY __created_us ASC NULLS FIRST, "
                "__event_us) = 1"
            )
        try:
            return self._con().cursor().sql(sql).to_arrow_table()
        except duckdb.Error as exc:
            raise DataSourceError(f"reading the events of {view.view.name!r}: {exc}") from None

    def source_rows_sql(
        self,
        view: ViewJoin,
        start: datetime | None,
        end: datetime | None,
        *,
        columns: tuple[str, ...] | None = None,
    ) -> str:
        """The SQL of ``source_rows`` (for callers that aggregate over it in SQL)."""
        src = view.source
        types = {f.name: f.type for f in self.source_schema(src)}
        dtypes = dict(zip(view.features, view.dtypes, strict=True))
        ts_col = src.timestamp_field
        cols = [f"{ident(src.column_for(k))} AS {ident(k)}" for k in view.join_keys]
        for c in columns if columns is not None else view.features:
            raw = ident(src.column_for(c))
            cols.append(
                f"CAST({raw} AS {duck_type(dtypes[c])}) AS {ident(c)}" if c in dtypes else raw
            )
        cols.append(f"{_micros(ident(ts_col), types.get(ts_col))} AS __event_us")
        where = [f"{ident(ts_col)} IS NOT NULL"]
        if start is not None:
            where.append(_bound(ident(ts_col), types.get(ts_col), ">=", _us(start)))
        if end is not None:
            where.append(_bound(ident(ts_col), types.get(ts_col), "<=", _us(end)))
        return f"SELECT {', '.join(cols)} FROM {self._scan(src)} WHERE {' AND '.join(where)}"

    def source_rows(
        self,
        view: ViewJoin,
        start: datetime | None,
        end: datetime | None,
        *,
        columns: tuple[str, ...] | None = None,
    ) -> pa.Table:
        sql = self.source_rows_sql(view, start, end, columns=columns)
        try:
            return self._con().cursor().sql(sql).to_arrow_table()
        except duckdb.Error as exc:
            raise DataSourceError(f"reading the rows of {view.view.name!r}: {exc}") from None

    def profile(
        self, view: ViewJoin, start: datetime | None, end: datetime | None, **options: Any
    ) -> pa.Table:
        from parity.offline.duckdb import profile

        sql = self.source_rows_sql(view, start, end, columns=view.features)
        return profile.profile(self._con().cursor(), sql, view, **options)

    def _window_query(self, join: PointInTimeJoin, vj: ViewJoin) -> WindowQuery:
        src = vj.source
        types = {f.name: f.type for f in self.source_schema(src)}
        return window_query(
            vj.view,
            src,
            vj.join_keys,
            vj.output_names,
            join.keys,
            row_id=ROW_ID,
            entity_us=join.keys.column(ENTITY_TS).cast(pa.int64()).to_numpy(),
            scan=self._scan(src),
            micros=lambda col: _micros(ident(col), types.get(col)),
            bound=lambda col, op, us: _bound(ident(col), types.get(col), op, us),
            duck_type=duck_type,
        )

    def point_in_time_join(self, join: PointInTimeJoin) -> RetrievalJob:
        plain = [vj for vj in join.views if not vj.view.is_aggregated]
        windowed = [vj for vj in join.views if vj.view.is_aggregated]
        sql = self.build_sql(replace(join, views=tuple(plain))) if plain else None
        queries = [self._window_query(join, vj) for vj in windowed]

        def run() -> pa.Table:
            con = self._con()
            columns: dict[str, pa.ChunkedArray | pa.Array] = {}
            if sql is not None:
                con.register("__parity_keys", join.keys)
                try:
                    features = con.sql(sql).to_arrow_table()
                except duckdb.Error as exc:
                    raise DataSourceError(f"historical retrieval failed: {exc}") from None
                finally:
                    con.unregister("__parity_keys")
                for name in features.column_names[1:]:
                    columns[name] = features.column(name)
            for vj, q in zip(windowed, queries, strict=True):
                con.register("__parity_wkeys", q.keys)
                try:
                    columns.update(q.finish(con.sql(q.sql).to_arrow_table()))
                except duckdb.Error as exc:
                    raise DataSourceError(
                        f"historical retrieval of aggregated view {vj.view.name!r} failed: {exc}"
                    ) from None
                except ExactRangeError as exc:
                    raise RetrievalError(f"aggregated view {vj.view.name!r}: {exc}") from None
                finally:
                    con.unregister("__parity_wkeys")
            result = join.entities
            for vj in join.views:
                for name in vj.output_names:
                    result = result.append_column(name, columns[name])
            return result

        return ArrowRetrievalJob(run)
