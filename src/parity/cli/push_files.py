"""Rows of a CSV, Parquet or JSON file, typed as the push source's views declare them.

The file's kind comes from its extension (``.csv``, ``.tsv``, ``.parquet``/``.pq``,
``.json``, ``.jsonl``/``.ndjson``), else from its first bytes (Parquet's magic, ``[`` or
``{`` for JSON, CSV otherwise). A ``.json`` file holds an array of records, an object of
columns, or one record per line (JSON lines).

Text has no types, so the columns the views read (join keys, features, the source's
timestamp fields) are converted from it by their declared type: CSV cells by Arrow's casts
(an empty cell is null, a quoted empty one an empty string), JSON values as JSON gives them
with times as ISO 8601 text (naive = UTC) and bytes as base64 text, as over HTTP. A value
that does not convert is refused with its row (counted from 0, the header not counted, as
the push path counts) and column; other columns are left as read (the push reports them as
ignored). Parquet keeps its own types. The push path then checks every row as it does for
any push.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from parity import types as T
from parity.clock import iso_time
from parity.definitions import DataSource
from parity.errors import ParityError
from parity.ingest import IngestError
from parity.registry.catalog import Catalog

__all__ = ["declared_types", "file_kind", "read_rows"]

_EXTENSIONS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}


def declared_types(catalog: Catalog, source: DataSource) -> dict[str, T.ValueType]:
    """Every column the source's views read, with its declared type."""
    types: dict[str, T.ValueType] = {}
    for view in catalog.views():
        if view.source_name != source.name:
            continue
        for name in view.entity_names:
            entity = catalog.entity(name)
            if entity.dtype is not None:
                for key in entity.join_keys:
                    types.setdefault(key, entity.dtype)
        for field in view.schema:
            types.setdefault(field.name, field.dtype)
    for ts in (source.timestamp_field, source.created_timestamp_field):
        if ts:
            types[ts] = T.Timestamp
    return types


def file_kind(path: Path) -> str:
    """``csv``, ``tsv``, ``parquet``, ``json`` or ``jsonl``: by extension, else content."""
    kind = _EXTENSIONS.get(path.suffix.lower())
    if kind is not None:
        return kind
    with path.open("rb") as f:
        head = f.read(4096)
    if head.startswith(b"PAR1"):
        return "parquet"
    if head.lstrip()[:1] in (b"[", b"{"):
        return "json"
    return "csv"


def read_rows(path: Path, types: Mapping[str, T.ValueType]) -> pa.Table:
    """The file's rows, the ``types`` columns converted to their types (see the module)."""
    if not path.is_file():
        raise ParityError(f"push: {str(path)!r} is not a file")
    kind = file_kind(path)
    label = f"{path.name}"
    try:
        if kind == "parquet":
            import pyarrow.parquet as pq

            return pq.read_table(path)
        if kind in ("csv", "tsv"):
            return _csv(path, types, label, "\t" if kind == "tsv" else ",")
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError, pa.ArrowException) as exc:
        raise ParityError(f"push: cannot read {path} as {kind}: {exc}") from None
    return _json(text, types, label, lines=kind == "jsonl")


# -- CSV -----------------------------------------------------------------------------------


def _csv(path: Path, types: Mapping[str, T.ValueType], label: str, delimiter: str) -> pa.Table:
    import pyarrow.csv as pacsv

    convert = pacsv.ConvertOptions(
        column_types={name: pa.string() for name in types},
        strings_can_be_null=True,  # an empty cell is null; a quoted empty one is ""
        quoted_strings_can_be_null=False,
    )
    table = pacsv.read_csv(
        path, parse_options=pacsv.ParseOptions(delimiter=delimiter), convert_options=convert
    )
    for i, name in enumerate(table.column_names):
        if name in types:
            col = _from_text(table.column(i), types[name], name, label)
            table = table.set_column(i, name, col)
    return table


def _from_text(col: pa.ChunkedArray, dtype: T.ValueType, name: str, label: str) -> Any:
    """A text column as ``dtype``: Arrow's cast, or the first value that fails, named."""
    target = dtype.to_arrow()
    if pa.types.is_string(target):
        return col
    if pa.types.is_binary(target):
        return col.cast(pa.binary())
    if pa.types.is_timestamp(target):
        return _times(col.to_pylist(), name, label)
    if pa.types.is_list(target) or pa.types.is_large_list(target):
        values = [
            None if v is None else _json_cell(v, i, name, label)
            for i, v in enumerate(col.to_pylist())
        ]
        return _typed(values, dtype, name, label)
    trimmed = pc.utf8_trim_whitespace(col)
    try:
        return trimmed.cast(target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    for i, value in enumerate(trimmed.to_pylist()):
        try:
            pa.array([value], pa.string()).cast(target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise IngestError(
                f"{label}: row {i}: column {name!r}: {value!r} is not {dtype}"
            ) from None
    raise IngestError(f"{label}: column {name!r} cannot be read as {dtype}")  # pragma: no cover


def _json_cell(text: str, row: int, name: str, label: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        raise IngestError(
            f"{label}: row {row}: column {name!r}: {text!r} is not a JSON list"
        ) from None


def _times(values: list[Any], name: str, label: str) -> pa.Array:
    """ISO 8601 text (naive = UTC) as UTC µs timestamps; the first other value is named."""
    out: list[Any] = []
    for i, v in enumerate(values):
        if v is None:
            out.append(None)
            continue
        try:
            out.append(iso_time(v) if isinstance(v, str) else _not_text(v))
        except (ValueError, TypeError):
            raise IngestError(
                f"{label}: row {i}: column {name!r}: {v!r} is not a time (ISO 8601 text "
                "such as 2024-01-31T12:00:00Z; UTC when naive)"
            ) from None
    try:
        return pa.array(out, pa.timestamp("us", tz="UTC"))
    except (pa.ArrowInvalid, OverflowError) as exc:
        raise IngestError(f"{label}: column {name!r}: {exc}") from None


def _not_text(value: Any) -> Any:
    raise TypeError(value)


# -- JSON ----------------------------------------------------------------------------------


def _json(text: str, types: Mapping[str, T.ValueType], label: str, *, lines: bool) -> pa.Table:
    columns = _json_columns(text, label, lines=lines)
    lengths = {len(v) for v in columns.values()}
    if len(lengths) > 1:
        sizes = {k: len(v) for k, v in columns.items()}
        raise IngestError(f"{label}: the columns differ in length: {sizes}")
    arrays = {}
    for name, values in columns.items():
        dtype = types.get(name)
        arrays[name] = _json_column(values, dtype, name, label) if dtype else _loose(values)
    return pa.table(arrays)


def _json_columns(text: str, label: str, *, lines: bool) -> dict[str, list[Any]]:
    """Columns from an array of records, an object of columns, or JSON lines."""
    if not lines:
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            if exc.msg != "Extra data":  # several documents: JSON lines
                raise IngestError(f"{label}: not JSON: {exc}") from None
            lines = True
        else:
            if isinstance(doc, list):
                return _records(doc, label, "item")
            if isinstance(doc, dict) and all(isinstance(v, list) for v in doc.values()):
                return {str(k): v for k, v in doc.items()}
            if isinstance(doc, dict):
                return _records([doc], label, "item")
            raise IngestError(
                f"{label}: expected an array of records, an object of columns or JSON lines, "
                f"not {type(doc).__name__}"
            )
    records = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise IngestError(f"{label}: line {number}: not JSON: {exc}") from None
    return _records(records, label, "record")


def _records(records: list[Any], label: str, what: str) -> dict[str, list[Any]]:
    names: dict[str, None] = {}
    for i, rec in enumerate(records):
        if not isinstance(rec, dict):
            raise IngestError(f"{label}: {what} {i} is {type(rec).__name__}, not an object")
        names.update(dict.fromkeys(rec))
    return {n: [rec.get(n) for rec in records] for n in names}


def _json_column(values: list[Any], dtype: T.ValueType, name: str, label: str) -> Any:
    target = dtype.to_arrow()
    if pa.types.is_timestamp(target):
        return _times(values, name, label)
    if pa.types.is_binary(target):
        values = [_b64(v, i, name, label) for i, v in enumerate(values)]
    return _typed(values, dtype, name, label)


def _b64(value: Any, row: int, name: str, label: str) -> Any:
    if value is None:
        return None
    try:
        if not isinstance(value, str):
            raise TypeError(value)
        return base64.b64decode(value, validate=True)
    except (binascii.Error, TypeError, ValueError):
        raise IngestError(
            f"{label}: row {row}: column {name!r}: {value!r} is not base64 text (bytes are "
            "sent as base64, as over HTTP)"
        ) from None


def _typed(values: list[Any], dtype: T.ValueType, name: str, label: str) -> pa.Array:
    target = dtype.to_arrow()
    if pa.types.is_integer(target):  # Arrow would truncate 1.5 to 1
        for i, v in enumerate(values):
            if v is not None and type(v) is not int:
                raise IngestError(
                    f"{label}: row {i}: column {name!r}: {v!r} ({type(v).__name__}) is not {dtype}"
                )
    try:
        return pa.array(values, target)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError):
        pass
    for i, v in enumerate(values):
        try:
            pa.array([v], target)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError):
            raise IngestError(
                f"{label}: row {i}: column {name!r}: {v!r} ({type(v).__name__}) is not {dtype}"
            ) from None
    raise IngestError(f"{label}: column {name!r} cannot be read as {dtype}")  # pragma: no cover


def _loose(values: list[Any]) -> pa.Array:
    """A column no view reads, as Arrow makes it, else as JSON text (it is not written)."""
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError):
        return pa.array([None if v is None else json.dumps(v) for v in values], pa.string())
