"""The offline side of a subject's data: the offline log's push files (Parity's own) and
the batch source files Parity reads (the user's): listing, reading, rewriting atomically.

A source's files are found as the offline engine finds them: one file, a glob, or a folder
read recursively (hive-partitioned: a partition column such as ``user_id=7`` in a folder's
name counts as a column of every file below it). Parquet files are rewritten with
``parity.offline.log.write_atomically`` (their schema metadata kept); CSV files are rewritten
record by record with the delimiter they use, every kept record's text as it was, through a
temporary file renamed over the old one. A file left with no rows is removed (a batch file;
an offline-log file stays, empty, so a retried push still appends nothing).
"""

from __future__ import annotations

import csv
import glob
import io
import os
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from parity.definitions import DataSource, FileSource, PushSource
from parity.errors import GovernanceError
from parity.governance.places import (
    NOT_OWNED,
    ErasePlace,
    Found,
    PlaceCount,
    status,
)
from parity.governance.sealing import open_log, sealed_fields
from parity.governance.subjects import Subject, batch_file_source, sources_of
from parity.offline import log

if TYPE_CHECKING:
    from parity.store import FeatureStore

__all__ = ["BatchSourcePlace", "OfflineLogPlace", "source_files", "subject_rows"]


class OfflineLogPlace(ErasePlace):
    """Rows of the offline log (every push source feeding a view keyed by the entity)."""

    name = "offline_log"

    def erase(
        self, store: FeatureStore, subject: Subject, *, dry_run: bool, rewrite_sources: bool
    ) -> list[PlaceCount]:
        out = []
        for source in _push_sources(store, subject):
            columns = subject.source_columns(source)
            rows = files = 0
            for path in _log_files(store, source):
                mask = subject.rows_of(pq.read_table(path), columns)
                hits = 0 if mask is None else int(pc.sum(mask).as_py() or 0)
                if not hits:
                    continue
                rows, files = rows + hits, files + 1
                if not dry_run:
                    log.rewrite(path, partial(_drop, subject=subject, columns=columns))
            out.append(PlaceCount(self.name, source.name, rows, status(dry_run), files))
        return out

    def export(self, store: FeatureStore, subject: Subject) -> list[Found]:
        out = []
        for source in _push_sources(store, subject):
            tables = list(_matching(_log_tables(store, source), subject, source))
            out.append(Found(self.name, source.name, _concat(tables)))
        return out


class BatchSourcePlace(ErasePlace):
    """Rows of the batch source files behind the entity's views: Parity does not own them,
    so they are counted and listed ("not erased: owned outside Parity") unless the caller
    asks for them to be rewritten (``rewrite_sources``)."""

    name = "batch_source"

    def erase(
        self, store: FeatureStore, subject: Subject, *, dry_run: bool, rewrite_sources: bool
    ) -> list[PlaceCount]:
        out = []
        for source in _file_sources(store, subject):
            columns = subject.source_columns(source)
            found: list[tuple[Path, pa.Table, pa.ChunkedArray]] = []
            for path, table in _read_files(store, source, subject):
                mask = subject.rows_of(table, columns)
                if mask is not None and pc.any(mask).as_py():
                    found.append((path, table, mask))
            rows = sum(int(pc.sum(m).as_py() or 0) for _, _, m in found)
            if rewrite_sources and not dry_run:
                for path, table, mask in found:
                    _rewrite_source_file(source, path, table, mask, columns)
            state = status(dry_run) if rewrite_sources else NOT_OWNED
            listed = ", ".join(str(p) for p, _, _ in found)
            out.append(PlaceCount(self.name, source.name, rows, state, len(found), listed))
        return out

    def export(self, store: FeatureStore, subject: Subject) -> list[Found]:
        out = []
        for source in _file_sources(store, subject):
            tables = [t for _, t in _read_files(store, source, subject)]
            out.append(Found(self.name, source.name, _concat(_matching(tables, subject, source))))
        return out


def subject_rows(store: FeatureStore, subject: Subject, source: DataSource) -> Iterator[pa.Table]:
    """The subject's rows in every file Parity reads for ``source`` (its offline log and
    its batch files), file by file."""
    tables = list(_log_tables(store, source)) if isinstance(source, PushSource) else []
    batch = batch_file_source(source)
    if batch is not None:
        tables += [t for _, t in _read_files(store, batch, subject)]
    yield from _matching(tables, subject, source)


# -- finding and reading files ---------------------------------------------------------------


def _push_sources(store: FeatureStore, subject: Subject) -> list[PushSource]:
    return [s for s in sources_of(store.catalog(), subject) if isinstance(s, PushSource)]


def _file_sources(store: FeatureStore, subject: Subject) -> list[FileSource]:
    found: dict[str, FileSource] = {}
    for source in sources_of(store.catalog(), subject):
        batch = batch_file_source(source)
        if batch is not None:
            found.setdefault(batch.name, batch)
    return [found[n] for n in sorted(found)]


def _log_files(store: FeatureStore, source: DataSource) -> list[Path]:
    folder = log.log_dir(store.config.resolve(store.config.offline_log), source.name)
    return sorted(folder.glob("*.parquet")) if folder.is_dir() else []


def _log_tables(store: FeatureStore, source: DataSource) -> Iterator[pa.Table]:
    """The log's files as tables, encrypted columns opened (an export is read by the data
    subject; erase matches on key columns, which are never encrypted)."""
    for path in _log_files(store, source):
        table = pq.read_table(path)
        if next(sealed_fields(table.schema), None) is not None:
            table = open_log(store._sealer.cipher, source.name, table, path)
        yield table.replace_schema_metadata(None)


def source_files(store: FeatureStore, source: FileSource) -> tuple[Path | None, list[Path]]:
    """(the folder when the source is one, its files) as the offline engine reads them."""
    path = Path(source.path).expanduser()
    if not path.is_absolute():
        path = store.repo_path / path
    ext = "csv" if source.file_format == "csv" else "parquet"
    if path.is_dir():
        return path, sorted(p for p in path.rglob(f"*.{ext}") if not p.name.startswith("."))
    return None, sorted(Path(p) for p in glob.glob(str(path), recursive=True))


def _read_files(
    store: FeatureStore, source: FileSource, subject: Subject
) -> Iterator[tuple[Path, pa.Table]]:
    folder, files = source_files(store, source)
    columns = subject.source_columns(source)
    for path in files:
        if source.file_format == "csv":
            table = _read_csv(path, columns, subject)
        else:
            table = pq.read_table(path, partitioning=None).replace_schema_metadata(None)
        if folder is not None:
            table = _with_partitions(table, path.relative_to(folder), columns)
        yield path, table


def _with_partitions(table: pa.Table, relative: Path, wanted: list[str]) -> pa.Table:
    """``table`` with the join-key columns its folders name (``user_id=7``) it lacks."""
    for part in relative.parts[:-1]:
        name, eq, value = part.partition("=")
        if eq and name in wanted and name not in table.column_names:
            try:
                typed: pa.Array = pa.array([int(value)] * table.num_rows, pa.int64())
            except ValueError:
                typed = pa.array([value] * table.num_rows, pa.string())
            table = table.append_column(name, typed)
    return table


def _delimiter(path: Path, columns: list[str]) -> str:
    """The delimiter that makes the header name the join-key columns (``,`` ``;`` tab
    ``|``, in that order); ``,`` when none does (the file then holds no such column)."""
    with open(path, newline="") as fh:
        header = fh.readline()
    for d in (",", ";", "\t", "|"):
        names = next(csv.reader([header], delimiter=d), [])
        if all(c in [n.strip() for n in names] for c in columns):
            return d
    return "\t" if path.suffix.lower() == ".tsv" else ","


def _read_csv(path: Path, columns: list[str], subject: Subject) -> pa.Table:
    # A text key stays text ("007"), whatever the column looks like.
    types = {
        c: pa.string() for c, v in zip(columns, subject.keys[0], strict=True) if isinstance(v, str)
    }
    return pcsv.read_csv(
        path,
        parse_options=pcsv.ParseOptions(
            delimiter=_delimiter(path, columns), newlines_in_values=True
        ),
        convert_options=pcsv.ConvertOptions(column_types=types),
    )


def _matching(
    tables: list[pa.Table] | Iterator[pa.Table], subject: Subject, source: DataSource
) -> Iterator[pa.Table]:
    columns = subject.source_columns(source)
    for table in tables:
        mask = subject.rows_of(table, columns)
        if mask is not None and pc.any(mask).as_py():
            yield table.filter(mask)


def _concat(tables: list[pa.Table] | Iterator[pa.Table]) -> pa.Table:
    tables = list(tables)
    return pa.concat_tables(tables, promote_options="permissive") if tables else pa.table({})


def _drop(table: pa.Table, subject: Subject, columns: list[str]) -> pa.Table:
    mask = subject.rows_of(table, columns)
    return table if mask is None else table.filter(pc.invert(mask))


# -- rewriting a source's file -------------------------------------------------------------


def _rewrite_source_file(
    source: FileSource, path: Path, table: pa.Table, mask: pa.ChunkedArray, columns: list[str]
) -> None:
    """``path`` without the rows ``mask`` marks, atomically; removed when none is left.
    ``columns``: the join-key columns (they tell a CSV file's delimiter)."""
    keep = pc.invert(mask)
    if not pc.any(keep).as_py():
        path.unlink()
        return
    if source.file_format == "csv":
        _rewrite_csv(path, keep.to_pylist(), _delimiter(path, columns))
        return
    original = pq.read_table(path, partitioning=None)
    if original.num_rows != table.num_rows:
        raise GovernanceError(f"source {source.name!r}: {path} changed while being erased")
    log.write_atomically(path, original.filter(keep))


def _rewrite_csv(path: Path, keep: list[bool], delimiter: str) -> None:
    with open(path, newline="") as fh:
        text = fh.read()
    records = [r for r in csv.reader(io.StringIO(text), delimiter=delimiter)]
    header, body = records[0], [r for r in records[1:] if r]
    if len(body) != len(keep):
        raise GovernanceError(
            f"{path}: {len(body)} CSV record(s) but {len(keep)} row(s) read; not rewritten"
        )
    ending = "\r\n" if "\r\n" in text[:65536] else "\n"
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator=ending)
    writer.writerow(header)
    writer.writerows(r for r, k in zip(body, keep, strict=True) if k)
    tmp = path.parent / f".{path.name}.tmp"
    with open(tmp, "w", newline="") as fh:
        fh.write(out.getvalue())
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
