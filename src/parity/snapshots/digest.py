"""The content digest of a table: what names a snapshot's file and what verify re-computes.

``table_digest(table)`` is a SHA-256 that depends on the rows' values, their order, the
columns' names, order and Arrow types, and on nothing else: not on how the table is split
into chunks or row groups, not on the Parquet writer, its compression or its version, not
on schema metadata, not on the bytes under a null. So a table written to Parquet and read
back has the digest it had in memory, and the same retrieval run again has the same digest
when it returns the same rows.

The scheme (``SCHEME``), column by column in schema order:

- a column's digest is the SHA-256 of three SHA-256s: of its validity (one byte per row, 1
  for null; empty when it has no null), of its values, and of its lengths;
- values: fixed-width types (integers, floats, booleans, dates, times, timestamps,
  durations) as their little-endian bytes with nulls read as 0; strings and binaries as
  their bytes one after the other (nulls empty), each row's length (int64) in the lengths;
  a dictionary column as its values; any other type (lists, structs, decimals...) as the
  text ``repr`` of each value;
- the table's digest is the SHA-256 of ``SCHEME``, the row count, then for each column its
  name, its type (``type_text``: ``str(type)``, list items unnamed) and its digest.

``ColumnDigest`` keeps each column's digest, so a changed file or a recreated result can
name the columns that differ.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from parity.lazy import LazyModule

if TYPE_CHECKING:
    import pyarrow.compute as pc
else:
    pc = LazyModule("pyarrow.compute", globals(), "pc")  # imported on first use

__all__ = [
    "SCHEME",
    "ColumnDigest",
    "TableDigest",
    "column_digest",
    "table_digest",
    "type_text",
]

SCHEME = "parity-table-sha256/1"


@dataclass(frozen=True)
class ColumnDigest:
    """One column: its name, its Arrow type as text, and the SHA-256 of its values."""

    name: str
    type: str
    sha256: str

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "type": self.type, "sha256": self.sha256}


@dataclass(frozen=True)
class TableDigest:
    """A table's digest (``sha256``), its row count and every column's digest, in order."""

    sha256: str
    rows: int
    columns: tuple[ColumnDigest, ...]

    def differences(self, other: TableDigest) -> list[str]:
        """What differs from ``other`` (the expected one), as readable lines; [] when equal."""
        if self.sha256 == other.sha256:
            return []
        out = []
        if self.rows != other.rows:
            out.append(f"rows: {other.rows:,} expected, {self.rows:,} found")
        mine = {c.name: c for c in self.columns}
        theirs = {c.name: c for c in other.columns}
        gone = [n for n in theirs if n not in mine]
        new = [n for n in mine if n not in theirs]
        if gone:
            out.append(f"columns missing: {', '.join(gone)}")
        if new:
            out.append(f"columns added: {', '.join(new)}")
        retyped = [
            f"{n} ({theirs[n].type} -> {mine[n].type})"
            for n in theirs
            if n in mine and theirs[n].type != mine[n].type
        ]
        if retyped:
            out.append(f"column types changed: {', '.join(retyped)}")
        changed = [
            n
            for n in theirs
            if n in mine and theirs[n].type == mine[n].type and theirs[n].sha256 != mine[n].sha256
        ]
        if changed:
            out.append(f"values changed in: {', '.join(changed)}")
        if not out:
            out.append("the columns are in another order")
        return out


def table_digest(table: pa.Table) -> TableDigest:
    """The digest of ``table`` (see the module docstring)."""
    columns = tuple(
        ColumnDigest(f.name, type_text(f.type), column_digest(table.column(i)))
        for i, f in enumerate(table.schema)
    )
    h = hashlib.sha256(SCHEME.encode())
    h.update(struct.pack("<q", table.num_rows))
    for c in columns:
        for text in (c.name, c.type):
            raw = text.encode()
            h.update(struct.pack("<q", len(raw)))
            h.update(raw)
        h.update(bytes.fromhex(c.sha256))
    return TableDigest(h.hexdigest(), table.num_rows, columns)


def column_digest(column: pa.ChunkedArray | pa.Array) -> str:
    """The SHA-256 of one column's values (see the module docstring), as hex."""
    if isinstance(column, pa.Array):
        column = pa.chunked_array([column], column.type)
    typ = column.type
    if pa.types.is_dictionary(typ):
        column = column.cast(typ.value_type)
        typ = typ.value_type
    validity, values, lengths = hashlib.sha256(), hashlib.sha256(), hashlib.sha256()
    nulls = column.null_count
    if nulls:
        validity.update(pc.is_null(column).to_numpy(zero_copy_only=False).view(np.uint8).data)
    if pa.types.is_null(typ):
        pass
    elif _fixed_width(typ):
        filled = pc.fill_null(column, _zero(typ)) if nulls else column
        for chunk in filled.chunks:
            arr = np.ascontiguousarray(chunk.to_numpy(zero_copy_only=False))
            values.update(arr.view(np.uint8).data)
    elif _binary_like(typ):
        wide = column.cast(pa.large_binary())
        if nulls:
            wide = pc.fill_null(wide, pa.scalar(b"", pa.large_binary()))
        for chunk in wide.chunks:
            _, offsets_buf, data_buf = chunk.buffers()
            offsets = np.frombuffer(offsets_buf, dtype="<i8")[
                chunk.offset : chunk.offset + len(chunk) + 1
            ]
            lengths.update(np.diff(offsets).astype("<i8").data)
            if data_buf is not None and len(offsets):
                values.update(memoryview(data_buf)[int(offsets[0]) : int(offsets[-1])])
    else:  # nested and rare types: slow, but exact and chunk-independent
        for chunk in column.chunks:
            for value in chunk.to_pylist():
                raw = repr(value).encode()
                lengths.update(struct.pack("<q", len(raw)))
                values.update(raw)
    return hashlib.sha256(validity.digest() + values.digest() + lengths.digest()).hexdigest()


def type_text(typ: pa.DataType) -> str:
    """The type as text, without the names of list items (Parquet renames ``item`` to
    ``element``) or the nullability of nested fields."""
    if pa.types.is_list(typ) or pa.types.is_large_list(typ):
        kind = "list" if pa.types.is_list(typ) else "large_list"
        return f"{kind}<{type_text(typ.value_type)}>"
    if pa.types.is_fixed_size_list(typ):
        return f"fixed_size_list<{type_text(typ.value_type)}>[{typ.list_size}]"
    if pa.types.is_map(typ):
        return f"map<{type_text(typ.key_type)}, {type_text(typ.item_type)}>"
    if pa.types.is_struct(typ):
        fields = ", ".join(f"{f.name}: {type_text(f.type)}" for f in typ)
        return f"struct<{fields}>"
    return str(typ)


def _fixed_width(typ: pa.DataType) -> bool:
    return (
        pa.types.is_integer(typ)
        or pa.types.is_floating(typ)
        or pa.types.is_boolean(typ)
        or (pa.types.is_temporal(typ) and not pa.types.is_interval(typ))
    )


def _binary_like(typ: pa.DataType) -> bool:
    return (
        pa.types.is_string(typ)
        or pa.types.is_large_string(typ)
        or pa.types.is_binary(typ)
        or pa.types.is_large_binary(typ)
    )


def _zero(typ: pa.DataType) -> pa.Scalar:
    """The value a null reads as: 0 (False, the epoch) of the column's own type."""
    if pa.types.is_boolean(typ):
        return pa.scalar(False)
    if pa.types.is_floating(typ):
        return pa.scalar(0.0, typ)
    if pa.types.is_integer(typ):
        return pa.scalar(0, typ)
    width = pa.int32() if typ in (pa.date32(),) or pa.types.is_time32(typ) else pa.int64()
    return pa.scalar(0, width).cast(typ)
