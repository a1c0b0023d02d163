"""Rewriting a batch source's file without a subject's rows: the other rows stay exactly as
they were (CSV: their text; Parquet: values and schema metadata), whatever they hold."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parity.definitions import Entity, FeatureView, Field, FileSource
from parity.errors import GovernanceError
from parity.governance import source_files
from parity.governance.subjects import subject
from parity.registry.catalog import Catalog
from parity.types import Int64, String

user = Entity(name="user", join_keys=["user_id"], dtype=Int64)
code = Entity(name="code", join_keys=["code"], dtype=String)


def catalog(source: FileSource) -> Catalog:
    views = [
        FeatureView(
            name="v",
            entities=["user"],
            source=source.name,
            schema=[Field(name="note", dtype=String)],
        ),
        FeatureView(
            name="w",
            entities=["code"],
            source=source.name,
            schema=[Field(name="note", dtype=String)],
        ),
    ]
    return Catalog.of([user, code, source, *views])


cells = st.text(alphabet=st.sampled_from(["a", ",", '"', ";", " ", "\n", "é", "1"]), max_size=6)


def _erase_csv(path: Path, source: FileSource, keys: list, entity: str = "user") -> pa.Table:
    s = subject(catalog(source), entity, keys)
    table = source_files._read_csv(path, s.source_columns(source), s)
    mask = s.rows_of(table, s.source_columns(source))
    source_files._rewrite_source_file(source, path, table, mask, s.source_columns(source))
    return table


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=60)
@given(
    rows=st.lists(st.tuples(st.integers(0, 5), cells), min_size=1, max_size=12),
    erased=st.lists(st.integers(0, 5), min_size=1, max_size=3),
    delimiter=st.sampled_from([",", ";", "\t"]),
    ending=st.sampled_from(["\n", "\r\n"]),
)
def test_csv_keeps_every_other_record_as_it_was(tmp_path, rows, erased, delimiter, ending):
    path = tmp_path / "src.csv"
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator=ending, quoting=csv.QUOTE_MINIMAL)
    writer.writerow(["user_id", "note"])
    writer.writerows([[u, n] for u, n in rows])
    with open(path, "w", newline="") as fh:
        fh.write(out.getvalue())
    source = FileSource(name="src", path=str(path), file_format="csv")
    _erase_csv(path, source, erased)
    kept = [[str(u), n] for u, n in rows if u not in erased]
    if not kept:
        assert not path.exists()
        return
    with open(path, newline="") as fh:
        text = fh.read()
    back = list(csv.reader(io.StringIO(text), delimiter=delimiter))
    assert back == [["user_id", "note"], *kept]
    assert ("\r\n" in text) == (ending == "\r\n")


def test_csv_text_keys_stay_text(tmp_path):
    path = tmp_path / "codes.csv"
    path.write_text("code,note\n007,a\n7,b\n0070,c\n")
    source = FileSource(name="src", path=str(path))
    _erase_csv(path, source, ["007"], entity="code")
    assert path.read_text() == "code,note\n7,b\n0070,c\n"


def test_csv_whose_records_do_not_line_up_is_refused_untouched(tmp_path):
    path = tmp_path / "odd.csv"
    path.write_text("user_id,note\n1,a\n2,b\n")
    source = FileSource(name="src", path=str(path))
    s = subject(catalog(source), "user", [1])
    table = pa.table({"user_id": [1, 2, 3], "note": ["a", "b", "c"]})
    with pytest.raises(GovernanceError, match="3 row\\(s\\) read; not rewritten"):
        source_files._rewrite_source_file(
            source, path, table, s.rows_of(table, ["user_id"]), ["user_id"]
        )
    assert path.read_text() == "user_id,note\n1,a\n2,b\n"


@given(
    users=st.lists(st.integers(0, 6), min_size=1, max_size=20),
    erased=st.lists(st.integers(0, 6), min_size=1, max_size=3),
)
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=40)
def test_parquet_keeps_the_other_rows_and_the_metadata(tmp_path, users, erased):
    path = tmp_path / "src.parquet"
    table = pa.table({"user_id": users, "n": list(range(len(users)))})
    pq.write_table(table.replace_schema_metadata({b"owner": b"them"}), path)
    source = FileSource(name="src", path=str(path))
    s = subject(catalog(source), "user", erased)
    read = pq.read_table(path)
    source_files._rewrite_source_file(source, path, read, s.rows_of(read, ["user_id"]), ["user_id"])
    left = [(u, i) for i, u in enumerate(users) if u not in erased]
    if not left:
        assert not path.exists()
        return
    back = pq.read_table(path)
    assert list(zip(back["user_id"].to_pylist(), back["n"].to_pylist(), strict=True)) == left
    assert back.schema.metadata[b"owner"] == b"them"


def test_a_folder_source_counts_partition_columns_as_columns(tmp_path):
    for u in (1, 2):
        folder = tmp_path / "events" / f"user_id={u}"
        folder.mkdir(parents=True)
        pq.write_table(pa.table({"n": [u, u]}), folder / "part-0.parquet")
    table = pq.read_table(tmp_path / "events" / "user_id=1" / "part-0.parquet")
    got = source_files._with_partitions(table, Path("user_id=1/part-0.parquet"), ["user_id"])
    assert got.column("user_id").to_pylist() == [1, 1]
    # a column the file holds wins over the folder's name
    own = pa.table({"user_id": [5]})
    assert source_files._with_partitions(own, Path("user_id=1/f.parquet"), ["user_id"]) == own
