"""Root cause: the sources and columns a feature is computed from, and when each last had
data.

``upstream_sources(store, "driver_stats:conv_rate")`` walks the lineage upstream without a
depth limit and, for each source reached, finds its **last data time** (aware UTC), cheaply:

- a Parquet file source: the largest ``max`` statistic of its timestamp column over every row
  group of its files' footers (no data page is read); files are read newest first;
- a push or stream source: the later of its batch source's files (as above), its offline log
  (Parity's own Parquet files, as above) and the freshness marks of the views over it (the
  newest event time each write delivered, ``parity.monitoring.watermarks``);
- a CSV source, or Parquet without usable statistics (a timestamp kept as text, a
  partition column): a ``max`` in the offline engine, only when the files total at most
  ``SCAN_LIMIT_BYTES``; else unknown.

Everything is bounded by ``budget_seconds`` (default 2 s): footers left unread when it is
spent make the time a lower bound (``complete`` False). Unknown is ``None``, with the reason
in ``how``. With a ``Catalog`` instead of a store there are no offline log, marks or engine:
only footers, of files under ``repo_path`` when their paths are relative.
"""

from __future__ import annotations

import glob
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import networkx as nx

from parity.definitions import DataSource, FileSource, PushSource
from parity.errors import ParityError
from parity.lineage.query import lineage
from parity.registry.catalog import Catalog

if TYPE_CHECKING:
    from parity.store import FeatureStore

__all__ = ["SCAN_LIMIT_BYTES", "SourceOrigin", "parquet_newest", "upstream_sources"]

log = logging.getLogger("parity.lineage")

SCAN_LIMIT_BYTES = 128 * 1024 * 1024
"""The most file bytes a source may hold for its last data time to be found by a scan in the
offline engine (when its files carry no statistics)."""
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class SourceOrigin:
    """One source a feature is computed from.

    ``columns``: its columns upstream of the feature (values, join keys, timestamps), as
    named in its data. ``last_data_time``: the newest event time it holds (aware UTC), None
    when unknown; ``how`` says where it came from, or why it is unknown; ``complete`` is
    False when the time budget ran out first (the time is then a lower bound).
    ``distance``: edges from the feature.
    """

    source: str
    source_type: str
    columns: tuple[str, ...]
    timestamp_field: str | None
    last_data_time: datetime | None
    how: str
    distance: int
    complete: bool = True


@dataclass(frozen=True)
class _Newest:
    """What one look found: the time (None: nothing), how, whether every file was read."""

    time: datetime | None
    how: str
    complete: bool = True
    usable: bool = True  # False: the look could not tell (no statistics); try another


def upstream_sources(
    source: FeatureStore | Catalog,
    feature: str,
    *,
    repo_path: str | Path | None = None,
    budget_seconds: float = 2.0,
) -> list[SourceOrigin]:
    """The sources ``feature`` (any name ``lineage`` accepts) is computed from, nearest first,
    each with its columns and last data time (see the module). ``source``: a store (with
    auth on, only what the actor may describe) or a catalog."""
    graph = lineage(source, feature, "upstream", None)
    store = None if isinstance(source, Catalog) else source
    catalog = source if isinstance(source, Catalog) else source.catalog()
    repo = Path(repo_path) if repo_path is not None else (store.repo_path if store else None)
    look = _Look(store, catalog, repo, time.monotonic() + budget_seconds)
    out = []
    for n, attrs in graph.nodes(data=True):
        if attrs["kind"] != "source":
            continue
        definition = catalog.objects.get("source", {}).get(attrs["name"])
        found = (
            look.newest(definition)
            if isinstance(definition, DataSource)
            else _Newest(None, "unknown: not registered")
        )
        out.append(
            SourceOrigin(
                source=attrs["name"],
                source_type=attrs.get("source_type", "?"),
                columns=_columns(graph, n),
                timestamp_field=attrs.get("timestamp_field"),
                last_data_time=found.time,
                how=found.how,
                distance=int(attrs.get("distance", 0)),
                complete=found.complete,
            )
        )
    return sorted(out, key=lambda o: (o.distance, o.source))


def _columns(graph: nx.DiGraph, source_node: str) -> tuple[str, ...]:
    return tuple(
        sorted(
            graph.nodes[c]["name"]
            for c in graph.successors(source_node)
            if graph.nodes[c]["kind"] == "column"
        )
    )


class _Look:
    """Finds sources' last data times within one deadline (``time.monotonic()``)."""

    def __init__(
        self, store: FeatureStore | None, catalog: Catalog, repo: Path | None, deadline: float
    ):
        self.store = store
        self.catalog = catalog
        self.repo = repo
        self.deadline = deadline
        self._marks: dict[tuple[str, str], datetime] | None = None

    def newest(self, source: DataSource) -> _Newest:
        if isinstance(source, PushSource):
            return self._push(source)
        if isinstance(source, FileSource):
            return self._file(source, source)
        return _Newest(None, f"unknown: a {source.source_type} source has no files to read")

    def _file(self, source: FileSource, reader: DataSource) -> _Newest:
        """The newest time in a file source's files; ``reader``: the source whose view the
        engine reads when there are no statistics (a push source reads its log too)."""
        files = source_files(source, self.repo)
        if files is None:
            return _Newest(None, "unknown: a relative path and no repo folder")
        if not files:
            return _Newest(None, f"unknown: no files at {source.path!r}")
        if source.file_format != "csv":
            found = parquet_newest(files, source.timestamp_field, self.deadline)
            if found.usable:
                return found
        return self._scan(reader, files)

    def _scan(self, source: DataSource, files: list[Path]) -> _Newest:
        """``max`` of the event time in the offline engine, when the files are small."""
        size = sum(f.stat().st_size for f in files)
        if self.store is None:
            return _Newest(None, "unknown: no statistics, and no store to scan with")
        if size > SCAN_LIMIT_BYTES:
            return _Newest(None, f"unknown: no statistics, and {size:,} bytes is too much to scan")
        if time.monotonic() >= self.deadline:
            return _Newest(None, "unknown: the time budget was spent", complete=False)
        try:
            value = _engine_newest(self.store, self.catalog, source.name)
        except ParityError as exc:
            log.warning("lineage: source %r cannot be read: %s", source.name, exc)
            return _Newest(None, f"unknown: cannot be read ({exc})")
        if value is None:
            return _Newest(None, "unknown: the engine cannot read it, or it has no rows")
        return _Newest(value, f"offline engine max ({len(files)} file{'s' * (len(files) != 1)})")

    def _push(self, source: PushSource) -> _Newest:
        looks: list[tuple[str, _Newest]] = []
        batch = source.batch_source
        if isinstance(batch, str):
            found = self.catalog.objects.get("source", {}).get(batch)
            batch = found if isinstance(found, FileSource) else batch
        if isinstance(batch, FileSource):
            looks.append(("batch files", self._file(batch, source)))
        if self.store is not None:
            folder = self.store.config.resolve(self.store.config.offline_log) / source.name
            logged = sorted(folder.glob("*.parquet")) if folder.is_dir() else []
            if logged:
                looks.append(
                    ("offline log", parquet_newest(logged, source.timestamp_field, self.deadline))
                )
            marks = self._view_marks(source.name)
            if marks is not None:
                looks.append(("freshness marks", marks))
        known = [(label, n) for label, n in looks if n.time is not None]
        if not known:
            why = "; ".join(f"{label}: {n.how}" for label, n in looks) or "nothing recorded"
            return _Newest(None, f"unknown: {why}", all(n.complete for _, n in looks))
        label, best = max(known, key=lambda k: k[1].time or _EPOCH)
        others = [other for other, _ in looks if other != label]
        how = f"{label}: {best.how}" + (f"; also read: {', '.join(others)}" if others else "")
        return _Newest(best.time, how, all(n.complete for _, n in looks))

    def _view_marks(self, source: str) -> _Newest | None:
        """The newest freshness mark (online or offline) of the views over ``source``."""
        if self._marks is None:
            self._marks = _marks(self.store)
        views = [
            v.name
            for v in self.catalog.views()
            if (v.source if isinstance(v.source, str) else v.source.name) == source
        ]
        times = [
            t
            for v in views
            for target in ("online", "offline")
            if (t := self._marks.get((v, target)))
        ]
        if not times:
            return None
        return _Newest(max(times), f"newest of {len(views)} view{'s' * (len(views) != 1)}")


def _marks(store: Any) -> dict[tuple[str, str], datetime]:
    from parity.monitoring.hooks import settle
    from parity.registry.monitoring import MonitorRecords

    settle(store)  # this process's marks held back, first
    try:
        return MonitorRecords(store.registry).newest()
    except ParityError as exc:
        log.warning("lineage: the freshness marks cannot be read: %s", exc)
        return {}


def source_files(source: FileSource, repo: Path | None) -> list[Path] | None:
    """The files a file source reads, as the DuckDB engine finds them (a relative path under
    the repo folder, a folder read recursively, a glob); None when the path is relative and
    there is no repo folder."""
    path = Path(source.path).expanduser()
    if not path.is_absolute():
        if repo is None:
            return None
        path = repo / path
    ext = "csv" if source.file_format == "csv" else "parquet"
    pattern = str(path / "**" / f"*.{ext}") if path.is_dir() else str(path)
    return sorted(Path(p) for p in glob.glob(pattern, recursive=True))


def parquet_newest(files: list[Path], column: str, deadline: float) -> _Newest:
    """The largest ``max`` statistic of ``column`` in the files' footers (newest files
    first, until ``deadline``); ``usable`` False when a file lacks the column or statistics
    (or cannot be read) and the footers cannot tell."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    newest: datetime | None = None
    ordered = sorted(files, key=_mtime, reverse=True)
    read = 0
    for path in ordered:
        if time.monotonic() >= deadline:
            break
        try:
            meta = pq.read_metadata(path)
        except (OSError, pa.ArrowException) as exc:
            return _Newest(None, f"unreadable footer in {path.name} ({exc})", usable=False)
        read += 1
        paths = [meta.schema.column(i).path for i in range(meta.num_columns)]
        if column not in paths:
            return _Newest(None, f"no column {column!r} in {path.name}", usable=False)
        idx = paths.index(column)
        for rg in range(meta.num_row_groups):
            group = meta.row_group(rg)
            if group.num_rows == 0:
                continue
            stats = group.column(idx).statistics
            value = _as_time(stats.max) if stats is not None and stats.has_min_max else None
            if value is None:
                return _Newest(None, f"no time statistics in {path.name}", usable=False)
            newest = value if newest is None or value > newest else newest
    files_read = f"{read} of {len(ordered)} files" if read < len(ordered) else _count(read)
    how = f"parquet statistics ({files_read})"
    return _Newest(newest, how, complete=read == len(ordered))


def _count(n: int) -> str:
    return f"{n} file{'s' * (n != 1)}"


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _as_time(value: Any) -> datetime | None:
    """A footer statistic as an aware UTC datetime (naive means UTC); None if not a time."""
    if not isinstance(value, datetime):
        return None
    to_py = getattr(value, "to_pydatetime", None)  # a pandas Timestamp (nanosecond columns)
    if callable(to_py):
        value = to_py()
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _engine_newest(store: FeatureStore, catalog: Catalog, source: str) -> datetime | None:
    """The newest event time of ``source`` by one ``max`` in the offline engine, read as
    its first view reads it (as ``parity.monitoring.freshness`` does)."""
    from parity.monitoring.sources import EVENT_US, input_join
    from parity.offline.base import SupportsSourceRows, SupportsSQL

    view = next((v for v in catalog.views() if catalog.source_of(v).name == source), None)
    if view is None:
        return None
    engine = store.offline
    vj = input_join(catalog, view, [])
    sql_of = getattr(engine, "source_rows_sql", None)
    if isinstance(engine, SupportsSQL) and callable(sql_of):
        sql = f"SELECT max({EVENT_US}) AS newest FROM ({sql_of(vj, None, None, columns=())})"
        value = engine.query(sql).column(0)[0].as_py()
    elif isinstance(engine, SupportsSourceRows):
        import pyarrow.compute as pc

        value = pc.max(engine.source_rows(vj, None, None, columns=()).column(EVENT_US)).as_py()
    else:
        return None
    return None if value is None else _EPOCH + timedelta(microseconds=int(value))
