"""Source forms and time types: every engine reads them to the same answer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from backends import OFFLINE_ENGINES

from parity import FeatureStore
from repo_utils import write_repo

T0 = datetime(2024, 1, 1, 12, 0, 0, 123456)


def _repo(tmp_path, engine, path, **src_kw):
    extra = ", ".join(f"{k}={v!r}" for k, v in src_kw.items())
    root = write_repo(
        tmp_path / "repo",
        {
            "features.py": f"""
            from datetime import timedelta
            from parity import Entity, FeatureView, Field, FileSource, Float64, Int64
            driver = Entity(name="driver", join_keys=["driver_id"], dtype=Int64)
            src = FileSource(name="src", path={path!r}{", " + extra if extra else ""})
            v = FeatureView(name="v", entities=[driver], source=src, ttl=timedelta(hours=1),
                            schema=[Field(name="x", dtype=Float64)])
            """
        },
    )
    if engine != "duckdb":
        text = (root / "parity.yaml").read_text().replace("duckdb", engine)
        (root / "parity.yaml").write_text(text)
    return root


def _table(ts_type: pa.DataType, times: list[datetime]) -> pa.Table:
    if pa.types.is_date(ts_type):
        values = pa.array([t.date() for t in times], ts_type)
    else:
        zone = ts_type.tz
        values = pa.array(
            [t.replace(tzinfo=UTC) if zone else t for t in times],
            pa.timestamp("us", tz=zone) if zone else pa.timestamp("us"),
        ).cast(ts_type, safe=False)
    return pa.table(
        {"driver_id": pa.array([1, 1], pa.int64()), "event_timestamp": values, "x": [1.0, 2.0]}
    )


def _ask(root, times):
    entities = pd.DataFrame(
        {"driver_id": [1] * len(times), "event_timestamp": pd.to_datetime(times, utc=True)}
    )
    with FeatureStore(root) as fs:
        fs.apply()
        return fs.get_historical_features(entities, ["v:x"]).to_arrow().column("x").to_pylist()


@pytest.mark.parametrize("engine", OFFLINE_ENGINES)
@pytest.mark.parametrize(
    "ts_type",
    [
        pa.timestamp("us"),
        pa.timestamp("ns"),
        pa.timestamp("ms"),
        pa.timestamp("us", tz="UTC"),
        pa.timestamp("ns", tz="UTC"),
        pa.timestamp("us", tz="Asia/Kolkata"),
    ],
    ids=str,
)
def test_time_types_read_alike(tmp_path, engine, ts_type):
    pq.write_table(_table(ts_type, [T0, T0 + timedelta(minutes=30)]), tmp_path / "s.parquet")
    root = _repo(tmp_path, engine, str(tmp_path / "s.parquet"))
    # ms precision truncates T0's microseconds: the stored time is at or before T0 either way
    asks = [T0 - timedelta(seconds=1), T0, T0 + timedelta(minutes=45), T0 + timedelta(hours=2)]
    assert _ask(root, asks) == [None, 1.0, 2.0, None]


@pytest.mark.parametrize("engine", OFFLINE_ENGINES)
def test_date_typed_event_times_are_midnight_utc(tmp_path, engine):
    pq.write_table(_table(pa.date32(), [T0, T0 + timedelta(days=1)]), tmp_path / "s.parquet")
    root = _repo(tmp_path, engine, str(tmp_path / "s.parquet"))
    midnight = datetime(2024, 1, 1)
    assert _ask(
        root, [midnight - timedelta(microseconds=1), midnight, midnight + timedelta(minutes=59)]
    ) == [None, 1.0, 1.0]


@pytest.mark.parametrize("engine", OFFLINE_ENGINES)
def test_glob_hive_folder_and_csv(tmp_path, engine):
    times = [T0, T0 + timedelta(minutes=30)]
    table = _table(pa.timestamp("us", tz="UTC"), times)
    # glob over two files
    (tmp_path / "g").mkdir()
    pq.write_table(table.slice(0, 1), tmp_path / "g" / "a.parquet")
    pq.write_table(table.slice(1, 1), tmp_path / "g" / "b.parquet")
    # hive-partitioned folder
    hive = tmp_path / "hive"
    pq.write_to_dataset(
        table.append_column("day", pa.array(["2024-01-01", "2024-01-02"])),
        hive,
        partition_cols=["day"],
    )
    # CSV
    pacsv.write_csv(table, tmp_path / "s.csv")
    asks = [T0 + timedelta(minutes=10), T0 + timedelta(minutes=40)]
    for path in (str(tmp_path / "g" / "*.parquet"), str(hive), str(tmp_path / "s.csv")):
        root = _repo(tmp_path / path.replace("/", "_").replace("*", "x")[-20:], engine, path)
        assert _ask(root, asks) == [1.0, 2.0], path


@pytest.mark.parametrize("engine", OFFLINE_ENGINES)
def test_field_mapping_and_relative_path(tmp_path, engine):
    table = _table(pa.timestamp("us", tz="UTC"), [T0, T0]).rename_columns(["drv", "ts", "raw_x"])
    root = _repo(
        tmp_path,
        engine,
        "data/s.parquet",
        timestamp_field="ts",
        field_mapping={"drv": "driver_id", "raw_x": "x"},
    )
    (root / "data").mkdir()
    pq.write_table(table.slice(1, 1), root / "data" / "s.parquet")
    assert _ask(root, [T0]) == [2.0]
