"""Source schemas kept by the DuckDB engine (in memory and in the disk cache) are keyed by
each Parquet file's footer: a file rewritten with other types is read again, even at the
same size and time; CSV, whose types come from its rows, is always read."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from parity import cache
from parity.definitions import FileSource
from parity.offline.duckdb.config import DuckDBOfflineConfig
from parity.offline.duckdb.engine import DuckDBOfflineEngine


def engine(repo: Path) -> DuckDBOfflineEngine:
    return DuckDBOfflineEngine(DuckDBOfflineConfig(), repo)


def write(path: Path, values: pa.Array) -> None:
    ts = pa.array([0] * len(values), pa.timestamp("us", tz="UTC"))
    pq.write_table(pa.table({"ts": ts, "x": values}), path)


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(cache.ENV, str(tmp_path / "cache"))
    (tmp_path / "repo").mkdir()
    return tmp_path / "repo"


def test_a_rewritten_file_of_the_same_size_and_time_is_read_again(repo: Path) -> None:
    path = repo / "s.parquet"
    source = FileSource(name="s", path="s.parquet", timestamp_field="ts")
    write(path, pa.array([1, 2, 3], pa.int64()))
    first = engine(repo)
    assert first.source_schema(source).field("x").type == pa.int64()
    assert engine(repo).source_schema(source).field("x").type == pa.int64()  # from disk
    stat = path.stat()
    write(path, pa.array([1.5, 2.5, 3.5], pa.float64()))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same time as before
    assert first.source_schema(source).field("x").type == pa.float64()
    assert engine(repo).source_schema(source).field("x").type == pa.float64()
    assert list((repo.parent / "cache" / "source_schema").glob("*.pickle"))


def test_csv_is_read_each_time(repo: Path) -> None:
    path = repo / "s.csv"
    source = FileSource(name="s", path="s.csv", timestamp_field="ts", file_format="csv")
    path.write_text("ts,x\n2024-01-01T00:00:00Z,1\n")
    e = engine(repo)
    assert e.source_schema(source).field("x").type == pa.int64()
    path.write_text("ts,x\n2024-01-01T00:00:00Z,a\n")
    assert e.source_schema(source).field("x").type == pa.string()
    assert not (repo.parent / "cache" / "source_schema").exists()
