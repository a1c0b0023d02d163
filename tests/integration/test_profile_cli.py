"""``parity profile``: the table, ``--json`` (what ``store.profile`` returns), ``--history``,
``--online`` and errors that name what is wrong."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest

from cli_utils import parity, table_rows
from parity import FeatureStore
from repo_utils import write_parquet, write_repo

NOW = datetime.now(UTC).replace(microsecond=0)
DEFS = """
from datetime import timedelta
from parity import Entity, FeatureView, Field, FileSource, Float64, Int64, String

driver = Entity(name="driver", join_keys=["driver_id"], dtype=Int64)
stats = FeatureView(
    name="stats", entities=[driver], ttl=timedelta(days=30),
    schema=[
        Field(name="rate", dtype=Float64),
        Field(name="trips", dtype=Int64),
        Field(name="city", dtype=String),
    ],
    source=FileSource(name="stats_src", path="data/stats.parquet", timestamp_field="ts"),
)
"""


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = write_repo(tmp_path / "repo", {"features.py": DEFS})
    hours = [NOW - timedelta(hours=h) for h in (1, 2, 3, 4, 5, 6)]
    write_parquet(
        root / "data/stats.parquet",
        {
            "driver_id": pa.array([1, 2, 3, 1, 2, 3], pa.int64()),
            "ts": pa.array(hours, pa.timestamp("us", tz="UTC")),
            "rate": [0.5, 1.5, None, 2.5, 3.5, 4.5],
            "trips": pa.array([10, 20, 30, 40, None, 60], pa.int64()),
            "city": ["Oslo", "Lima", "Oslo", None, "Oslo", "Lima"],
        },
    )
    with FeatureStore(root) as store:
        store.apply()
    return root


def test_the_table_has_a_row_per_feature(repo: Path):
    out = parity("profile", "stats", "--repo", repo).stdout
    assert "Profile of stats: 6 source rows, all rows, stored as #1" in out
    rows = {r[0]: r for r in table_rows(out)}
    assert set(rows) == {"rate", "trips", "city"}
    # Feature, Type, Nulls, Distinct, Mean, Std, Min, P50, Max, Histogram / top values
    assert rows["rate"][1:4] == ["Float64", "1 (16.7%)", "5"]
    assert rows["rate"][4] == "2.5" and rows["rate"][6:9] == ["0.5", "2.5", "4.5"]
    assert rows["trips"][4] == "32" and rows["trips"][7] == "30"
    assert rows["city"][4:9] == ["-"] * 5
    assert rows["city"][9] == "Oslo (3), Lima (2)"


def test_json_is_the_stored_result(repo: Path):
    out = parity(
        "profile", "stats", "--features", "trips,city", "--start",
        (NOW - timedelta(hours=3, minutes=30)).isoformat(), "--end", "now", "--json",
        "--repo", repo,
    ).stdout  # fmt: skip
    got = json.loads(out)
    assert got["scope"] == "offline" and got["summary"]["rows"] == 3
    trips, city = got["features"]
    assert (trips["feature"], trips["rows"], trips["nulls"], trips["mean"]) == ("trips", 3, 0, 20)
    assert trips["p50"] == 20 and trips["p25"] == 15
    assert sum(b["count"] for b in trips["histogram"]) == 3
    assert city["top"] == [{"value": "Oslo", "count": 2}, {"value": "Lima", "count": 1}]
    with FeatureStore(repo) as store:
        (record,) = store.profiles("stats")
    assert record.id == got["id"] and record.summary == got["summary"]


def test_history_lists_stored_profiles_newest_first(repo: Path):
    parity("profile", "stats", "--repo", repo)
    parity("profile", "stats", "--no-save", "--repo", repo)
    parity("materialize", (NOW - timedelta(days=1)).isoformat(), "now", "--repo", repo)
    online = parity("profile", "stats", "--online", "--repo", repo).stdout
    assert "Profile of stats: 3 online values" in online
    rows = {r[0]: r for r in table_rows(online)}
    assert rows["trips"][4] == "20"  # the latest of each driver: 10, 20, 30
    out = parity("profile", "stats", "--history", "--repo", repo).stdout
    listed = table_rows(out)
    assert [(r[0], r[2], r[6]) for r in listed] == [("2", "online", "3"), ("1", "offline", "6")]
    as_json = json.loads(parity("profile", "stats", "--history", "--json", "--repo", repo).stdout)
    assert [r["id"] for r in as_json] == [2, 1] and as_json[0]["view_version"] == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nope"], "feature view 'nope' not found"),
        (["stats", "--features", "rate,speed"], "no feature(s) ['speed']"),
        (["stats", "--start", "now", "--end", "2020-01-01"], "the range is empty"),
        (["stats", "--start", "2099-01-01"], "no source rows in the range from 2099-01-01"),
        (["stats", "--distinct", "some"], "distinct must be one of"),
        (["stats", "--start", "yesterday-ish"], "yesterday-ish"),
    ],
)
def test_bad_input_is_an_error_naming_it(repo: Path, args: list[str], message: str):
    result = parity("profile", *args, "--repo", repo, code=1)
    assert message in result.stderr.replace("\n", " ")
    assert "Traceback" not in result.stderr
    with FeatureStore(repo) as store:
        assert store.profiles("stats") == []
