"""The content digest of a table (``parity.snapshots.digest``): the values, their order, the
columns' names and types, and nothing else: not the chunks, not Parquet, not what lies
under a null; and the fingerprints of source files telling what changed."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from parity.snapshots.digest import table_digest
from parity.snapshots.fingerprint import FileFingerprint, SourceFiles, compare

TABLE = pa.table(
    {
        "driver_id": pa.array([1, 2, None, 4], pa.int64()),
        "at": pa.array(
            [datetime(2024, 1, d, tzinfo=UTC) for d in (1, 2, 3, 4)], pa.timestamp("us", tz="UTC")
        ),
        "rate": pa.array([0.5, None, 1.5, -0.0], pa.float32()),
        "ok": pa.array([True, None, False, True]),
        "city": pa.array(["Lisbon", None, "", "Porto"]),
        "blob": pa.array([b"a", b"", None, b"\x00"], pa.binary()),
        "tags": pa.array([[1], None, [], [2, 3]], pa.list_(pa.int32())),
        "day": pa.array([0, 1, None, 3], pa.int32()).cast(pa.date32()),
    }
)


def test_the_digest_ignores_chunks_parquet_and_metadata(tmp_path: Path):
    whole = table_digest(TABLE)
    chunked = pa.concat_tables([TABLE.slice(0, 1), TABLE.slice(1, 2), TABLE.slice(3)])
    assert table_digest(chunked) == whole
    pq.write_table(TABLE, tmp_path / "t.parquet", row_group_size=3, compression="zstd")
    assert table_digest(pq.read_table(tmp_path / "t.parquet")) == whole
    assert table_digest(TABLE.replace_schema_metadata({"pandas": "{}"})) == whole
    dictionary = TABLE.set_column(4, "city", TABLE.column("city").dictionary_encode())
    assert table_digest(dictionary).columns[4].sha256 == whole.columns[4].sha256


def test_the_bytes_under_a_null_do_not_count():
    values = pa.array([7, 8, 9], pa.int64())
    under = pa.Array.from_buffers(
        pa.int64(), 3, [pa.array([True, False, True]).buffers()[1], values.buffers()[1]]
    )
    zero = pa.array([7, None, 9], pa.int64())
    assert under.to_pylist() == zero.to_pylist()
    assert table_digest(pa.table({"x": under})) == table_digest(pa.table({"x": zero}))


@pytest.mark.parametrize(
    ("changed", "difference"),
    [
        (TABLE.set_column(2, "rate", pa.array([0.5, None, 1.25, -0.0], pa.float32())),
         "values changed in: rate"),
        (TABLE.set_column(4, "city", pa.array(["Lisbon", "", "", "Porto"])),
         "values changed in: city"),  # a null is not an empty text
        (TABLE.slice(0, 3), "rows: 4 expected, 3 found"),
        (TABLE.drop_columns(["ok"]), "columns missing: ok"),
        (TABLE.set_column(0, "driver_id", TABLE.column("driver_id").cast(pa.int32())),
         "column types changed: driver_id (int64 -> int32)"),
        (TABLE.take([1, 0, 2, 3]), "values changed in: driver_id, at, rate, ok, city, blob, tags, day"),
        (TABLE.select([1, 0, 2, 3, 4, 5, 6, 7]), "the columns are in another order"),
    ],
)  # fmt: skip
def test_a_change_is_named(changed: pa.Table, difference: str):
    found = table_digest(changed)
    assert found.sha256 != table_digest(TABLE).sha256
    assert difference in found.differences(table_digest(TABLE))


def test_fingerprints_name_files_added_removed_and_changed(tmp_path: Path):
    def fp(path: str, size: int = 10, mtime: int = 1, digest: str = "a") -> FileFingerprint:
        return FileFingerprint(path, size, mtime, "parquet-footer", digest, 5)

    before = [SourceFiles("s", (fp("a.parquet"), fp("b.parquet"), fp("c.parquet")))]
    after = [SourceFiles("s", (fp("a.parquet"), fp("b.parquet", 12, 2, "b"), fp("d.parquet")))]
    changes = {(c.path, c.change): c.detail for c in compare(before, after)}
    assert set(changes) == {
        ("b.parquet", "changed"),
        ("c.parquet", "removed"),
        ("d.parquet", "added"),
    }
    assert "size 10 -> 12 bytes" in changes[("b.parquet", "changed")]
    assert "footer (row-group statistics) differs" in changes[("b.parquet", "changed")]
    assert compare(before, before) == []
    touched = [SourceFiles("s", (fp("a.parquet", mtime=2), fp("b.parquet"), fp("c.parquet")))]
    (only,) = compare(before, touched)
    assert only.detail.startswith("modified ")
