"""Root cause from a catalog: the sources a feature comes from, their columns, and the last
data time read from Parquet footers (never the data), bounded by a time budget."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from parity import (
    Entity,
    FeatureView,
    Field,
    FileSource,
    Float64,
    Int64,
    OnDemandFeatureView,
    PushSource,
    RequestSource,
)
from parity.definitions.on_demand import UdfLocation
from parity.lineage import upstream_sources
from parity.lineage.origins import parquet_newest
from parity.registry.catalog import Catalog

driver = Entity(name="driver", join_keys=["driver_id"], dtype=Int64)
_LOC = UdfLocation(module="m", qualname="f", source_hash="0" * 64)


def times(*days: int, unit: str = "us", tz: str | None = "UTC") -> pa.Array:
    return pa.array([datetime(2024, 1, d) for d in days], pa.timestamp(unit, tz=tz))


def write(path: Path, ts: pa.Array, *, row_group_size: int | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    n = len(ts)
    table = pa.table({"driver_id": list(range(n)), "ts": ts, "raw": [1.0] * n})
    pq.write_table(table, path, row_group_size=row_group_size)


def catalog_over(source, *extra) -> Catalog:
    view = FeatureView(
        name="stats",
        entities=[driver],
        source=source,
        schema=[Field(name="x", dtype=Float64)],
    )
    return Catalog.of([driver, source, view, *extra], project="t")


def test_the_newest_footer_statistic_over_files_and_row_groups(tmp_path: Path):
    write(tmp_path / "data" / "part" / "a.parquet", times(1, 9, 3), row_group_size=1)
    write(tmp_path / "data" / "part" / "sub" / "b.parquet", times(5, 2), row_group_size=1)
    source = FileSource(
        name="trips", path="data/part", timestamp_field="ts", field_mapping={"raw": "x"}
    )
    (origin,) = upstream_sources(catalog_over(source), "stats:x", repo_path=tmp_path)
    assert origin.source == "trips" and origin.source_type == "file"
    assert origin.last_data_time == datetime(2024, 1, 9, tzinfo=UTC)
    assert origin.how == "parquet statistics (2 files)" and origin.complete
    assert origin.columns == ("driver_id", "raw", "ts")
    assert origin.timestamp_field == "ts" and origin.distance == 2


def test_naive_nanosecond_times_are_utc(tmp_path: Path):
    write(tmp_path / "t.parquet", times(4, 6, unit="ns", tz=None))
    source = FileSource(name="s", path=str(tmp_path / "t.parquet"), timestamp_field="ts")
    (origin,) = upstream_sources(catalog_over(source), "stats")
    assert origin.last_data_time == datetime(2024, 1, 6, tzinfo=UTC)


def test_unknown_times_say_why(tmp_path: Path):
    relative = FileSource(name="s", path="data/t.parquet", timestamp_field="ts")
    (origin,) = upstream_sources(catalog_over(relative), "stats:x")
    assert origin.last_data_time is None and "relative path" in origin.how
    (origin,) = upstream_sources(catalog_over(relative), "stats:x", repo_path=tmp_path)
    assert origin.how == "unknown: no files at 'data/t.parquet'"
    text = tmp_path / "text.parquet"
    pq.write_table(pa.table({"driver_id": [1], "ts": ["2024-01-01"], "x": [1.0]}), text)
    as_text = FileSource(name="s", path=str(text), timestamp_field="ts")
    (origin,) = upstream_sources(catalog_over(as_text), "stats:x")
    assert origin.last_data_time is None
    assert origin.how == "unknown: no statistics, and no store to scan with"


def test_a_push_source_reads_its_batch_files_without_a_store(tmp_path: Path):
    write(tmp_path / "events.parquet", times(2, 8))
    batch = FileSource(
        name="events_batch", path=str(tmp_path / "events.parquet"), timestamp_field="ts"
    )
    push = PushSource(name="events", batch_source=batch)
    origins = upstream_sources(catalog_over(push, batch), "stats:x")
    assert [(o.source, o.source_type, o.distance) for o in origins] == [
        ("events", "push", 2),
        ("events_batch", "file", 3),
    ]
    assert (
        origins[0].last_data_time == origins[1].last_data_time == datetime(2024, 1, 8, tzinfo=UTC)
    )
    assert origins[0].how == "batch files: parquet statistics (1 file)"


def test_on_demand_features_reach_the_sources_of_their_inputs(tmp_path: Path):
    write(tmp_path / "t.parquet", times(3))
    source = FileSource(name="s", path=str(tmp_path / "t.parquet"), timestamp_field="ts")
    od = OnDemandFeatureView(
        name="od",
        sources=["stats:x", RequestSource(name="req", schema=[Field(name="y", dtype=Float64)])],
        schema=[Field(name="z", dtype=Float64)],
        udf=_LOC,
    )
    only_request = OnDemandFeatureView(
        name="req_only",
        sources=[RequestSource(name="req", schema=[Field(name="y", dtype=Float64)])],
        schema=[Field(name="w", dtype=Float64)],
        udf=_LOC,
    )
    catalog = catalog_over(source, od, only_request)
    (origin,) = upstream_sources(catalog, "od:z")
    assert origin.source == "s" and origin.distance == 4
    assert upstream_sources(catalog, "req_only:w") == []


def test_the_budget_bounds_the_footers_read(tmp_path: Path):
    files = []
    for day in (1, 2, 3):
        files.append(tmp_path / f"d{day}.parquet")
        write(files[-1], times(day))
    spent = parquet_newest(files, "ts", deadline=0.0)
    assert spent.time is None and not spent.complete
    assert spent.how == "parquet statistics (0 of 3 files)"
    source = FileSource(name="s", path=str(tmp_path / "d*.parquet"), timestamp_field="ts")
    (origin,) = upstream_sources(catalog_over(source), "stats:x", budget_seconds=0)
    assert origin.last_data_time is None and origin.complete is False


@pytest.mark.parametrize("column", ["missing", "raw"])
def test_footers_that_cannot_tell_are_not_usable(tmp_path: Path, column: str):
    path = tmp_path / "t.parquet"
    write(path, times(1))
    found = parquet_newest([path], column, deadline=float("inf"))
    if column == "missing":
        assert not found.usable and "no column 'missing'" in found.how
    else:  # a float column's statistics are not times
        assert not found.usable and "no time statistics" in found.how
