"""``store.profile``: statistics of a view's source rows (in DuckDB SQL, and in Arrow when the
engine has no ``SupportsProfile``) and of its online values, checked against numpy/pandas on
the same data; the stored history; bad input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from parity import FeatureStore
from parity.errors import MonitoringError, ObjectNotFoundError
from parity.monitoring.profile_arrow import profile_table
from parity.monitoring.sources import fields_of, read_rows
from parity.offline.base import PROFILE_QUANTILES, PROFILE_SCHEMA
from repo_utils import write_parquet, write_repo

N = 3_000
START = datetime(2024, 3, 1, tzinfo=UTC)
QUANTILES = {f"p{round(q * 100)}": q for q in PROFILE_QUANTILES}

DEFS = """
from datetime import timedelta
from parity import (
    Bool, Entity, FeatureView, Field, FileSource, Float32, Float64, Int64, String, Timestamp,
)

rider = Entity(name="rider", join_keys=["rider_id"], dtype=Int64)
rides = FeatureView(
    name="rides", entities=[rider], ttl=timedelta(days=36500),
    schema=[
        Field(name="fare", dtype=Float64),
        Field(name="speed", dtype=Float32),
        Field(name="trips", dtype=Int64),
        Field(name="city", dtype=String),
        Field(name="vip", dtype=Bool),
        Field(name="last_seen", dtype=Timestamp),
    ],
    source=FileSource(
        name="rides_src", path="data/rides.parquet", timestamp_field="ts",
        field_mapping={"fare_raw": "fare"},
    ),
)
"""
NUMERIC = ("fare", "speed", "trips", "last_seen")
CATEGORICAL = ("city", "vip")


def _data() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    riders = rng.integers(1, 400, N)
    ts = pd.to_datetime(START) + pd.to_timedelta(rng.integers(0, 30 * 86_400, N), unit="s")
    frame = pd.DataFrame(
        {
            "rider_id": riders,
            "ts": ts,
            "fare_raw": rng.gamma(2.0, 7.5, N),
            "speed": rng.normal(40, 12, N).astype(np.float32),
            "trips": rng.integers(-50, 500, N),
            "city": rng.choice(
                ["Oslo", "Lima", "Rome", "Kyiv", "Pune"], N, p=[0.4, 0.2, 0.2, 0.1, 0.1]
            ),
            "vip": rng.random(N) < 0.3,
            "last_seen": ts - pd.to_timedelta(rng.integers(0, 86_400, N), unit="s"),
        }
    )
    for column, share in (("fare_raw", 0.05), ("trips", 0.1), ("city", 0.02), ("vip", 0.3)):
        frame[column] = frame[column].astype(object)
        frame.loc[rng.random(N) < share, column] = None
    return frame


def _table(frame: pd.DataFrame) -> pa.Table:
    return pa.table(
        {
            "rider_id": pa.array(frame["rider_id"], pa.int64()),
            "ts": pa.array(frame["ts"], pa.timestamp("us", tz="UTC")),
            "fare_raw": pa.array(frame["fare_raw"], pa.float64()),
            "speed": pa.array(frame["speed"], pa.float32()),
            "trips": pa.array(frame["trips"], pa.int64()),
            "city": pa.array(frame["city"], pa.string()),
            "vip": pa.array(frame["vip"], pa.bool_()),
            "last_seen": pa.array(frame["last_seen"], pa.timestamp("us", tz="UTC")),
        }
    )


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    return _data()


@pytest.fixture
def repo(tmp_path: Path, data: pd.DataFrame) -> Path:
    root = write_repo(tmp_path / "repo", {"features.py": DEFS})
    write_parquet(root / "data/rides.parquet", _table(data))
    with FeatureStore(root) as store:
        store.apply()
    return root


def _numbers(values: pd.Series, name: str) -> np.ndarray:
    """The non-null values as float64, as a profile reads them (times: epoch seconds)."""
    if name == "last_seen":
        stamps = pd.to_datetime(values.dropna(), utc=True)
        return (stamps.astype("int64") // 1000).to_numpy().astype(np.float64) / 1e6
    if name == "speed":  # the Float32 feature: its float32 values, widened
        return values.dropna().to_numpy(np.float32).astype(np.float64)
    return values.dropna().to_numpy(np.float64)


def _expected(frame: pd.DataFrame, name: str, column: str, bins: int = 20) -> dict[str, Any]:
    values = frame[column]
    count = int(values.notna().sum())
    out: dict[str, Any] = {
        "rows": len(frame),
        "nulls": len(frame) - count,
        "null_ratio": (len(frame) - count) / len(frame),
        "distinct": int(values.dropna().nunique()),
    }
    if name in NUMERIC:
        x = _numbers(values, name)
        out.update(mean=x.mean(), std=x.std(ddof=1), min=x.min(), max=x.max())
        for label, q in QUANTILES.items():
            out[label] = np.quantile(x, q)  # numpy's default: linear
        counts, edges = np.histogram(x, bins=bins, range=(x.min(), x.max()))
        out["histogram"] = (counts.tolist(), edges)
    else:
        texts = values.dropna().map(lambda v: str(v).lower() if isinstance(v, bool) else str(v))
        top = sorted(texts.value_counts().items(), key=lambda kv: (-kv[1], kv[0]))
        out["top"] = [{"value": v, "count": int(c)} for v, c in top[:10]]
    return out


def _assert_profile(row: dict[str, Any], expected: dict[str, Any]) -> None:
    for key in ("rows", "nulls", "distinct"):
        assert row[key] == expected[key], key
    assert row["null_ratio"] == pytest.approx(expected["null_ratio"])
    if "mean" in expected:
        for key in ("mean", "std", "min", "max", *QUANTILES):
            assert row[key] == pytest.approx(expected[key], rel=1e-9, abs=1e-9), key
        counts, edges = expected["histogram"]
        assert [b["count"] for b in row["histogram"]] == counts
        assert [b["lower"] for b in row["histogram"]] == pytest.approx(edges[:-1].tolist())
        assert row["histogram"][-1]["upper"] == pytest.approx(edges[-1])
        assert row["top"] is None
    else:
        assert row["top"] == expected["top"]
        assert row["histogram"] is None
        assert all(row[k] is None for k in ("mean", "std", "min", "max", "p50"))


def test_offline_profile_matches_numpy_for_every_statistic(repo: Path, data: pd.DataFrame):
    with FeatureStore(repo) as store:
        result = store.profile("rides")
    assert result.kind == "profile" and result.scope == "offline" and result.id is not None
    assert result.table.schema == PROFILE_SCHEMA
    rows = {r["feature"]: r for r in result.to_pylist()}
    assert list(rows) == ["fare", "speed", "trips", "city", "vip", "last_seen"]
    columns = {"fare": "fare_raw"}
    for name, row in rows.items():
        _assert_profile(row, _expected(data, name, columns.get(name, name)))
        assert row["distinct_exact"] is True
    assert rows["speed"]["dtype"] == "Float32" and rows["last_seen"]["dtype"] == "Timestamp"
    assert result.summary["rows"] == N and result.summary["computed"] == "engine"


def test_a_time_range_profiles_only_the_rows_in_it(repo: Path, data: pd.DataFrame):
    lo, hi = START + timedelta(days=3), START + timedelta(days=11, hours=5)
    inside = data[(data["ts"] >= pd.Timestamp(lo)) & (data["ts"] <= pd.Timestamp(hi))]
    assert 0 < len(inside) < N
    with FeatureStore(repo) as store:
        result = store.profile("rides", lo.isoformat(), hi, features=["trips", "city"], save=False)
    assert result.id is None and (result.start, result.end) == (lo, hi)
    rows = {r["feature"]: r for r in result.to_pylist()}
    assert list(rows) == ["trips", "city"]
    for name, row in rows.items():
        _assert_profile(row, _expected(inside, name, name))


def test_the_arrow_fallback_agrees_with_the_engine(repo: Path):
    with FeatureStore(repo) as store:
        engine = store.profile("rides", save=False).to_pylist()
        view = store.catalog().view("rides")
        fields = fields_of(view)
        rows = read_rows(store, view, fields, None, None)
        arrow = profile_table(rows, [(f.name, f.dtype) for f in fields]).to_pylist()
    for a, b in zip(engine, arrow, strict=True):
        for key, value in a.items():
            if isinstance(value, float):
                assert b[key] == pytest.approx(value, rel=1e-9), (a["feature"], key)
            else:
                assert b[key] == value, (a["feature"], key)


def test_approximate_distinct_counts_say_so(repo: Path, data: pd.DataFrame):
    with FeatureStore(repo) as store:
        result = store.profile("rides", distinct="approx", features=["fare", "trips"])
    for row, column in zip(result.to_pylist(), ("fare_raw", "trips"), strict=True):
        exact = data[column].dropna().nunique()
        assert row["distinct_exact"] is False
        assert abs(row["distinct"] - exact) <= 0.1 * exact
    assert result.summary["distinct"] == "approx"


def test_profiles_are_stored_and_listed_newest_first(repo: Path):
    with FeatureStore(repo) as store:
        first = store.profile("rides", START, START + timedelta(days=5))
        store.profile("rides", save=False)
        second = store.profile("rides", features=["city"])
        records = store.profiles("rides")
        assert [r.id for r in records] == [second.id, first.id]
        old = records[1]
        assert (old.start, old.end) == (START, START + timedelta(days=5))
        assert old.scope == "offline" and old.view_version == 1
        assert old.summary["rows"] == first.summary["rows"] and old.summary["features"] == 6
        from parity.registry.monitoring import MonitorRecords

        assert MonitorRecords(store.registry).table(first.id).equals(first.table)
        with pytest.raises(ObjectNotFoundError, match="nope"):
            store.profiles("nope")


def test_online_profile_reads_the_latest_value_of_each_key(repo: Path, data: pd.DataFrame):
    cutoff = START + timedelta(days=20)
    with FeatureStore(repo) as store:
        store.materialize(START - timedelta(days=1), cutoff)
        result = store.profile("rides", online=True, features=["trips", "city"])
    seen = data.sort_values("ts").groupby("rider_id").tail(1)
    before = data[data["ts"] <= pd.Timestamp(cutoff)].sort_values("ts")
    latest = before.groupby("rider_id").tail(1).set_index("rider_id")
    online = latest.reindex(seen["rider_id"].unique())  # riders only seen later: missing
    missing = int(online["ts"].isna().sum())
    assert result.scope == "online" and result.summary["rows"] == len(online)
    assert result.summary["missing"] == missing and missing > 0
    rows = {r["feature"]: r for r in result.to_pylist()}
    for name in ("trips", "city"):
        _assert_profile(rows[name], _expected(online.reset_index(), name, name))
    with FeatureStore(repo) as store:
        assert store.profiles("rides")[0].scope == "online"


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"view": "nope"}, ObjectNotFoundError, "'nope'"),
        ({"features": ["fare", "colour"]}, MonitoringError, r"no feature\(s\) \['colour'\]"),
        ({"features": ["colour"], "online": True}, MonitoringError, "colour"),
        ({"features": []}, MonitoringError, "at least one feature"),
        ({"start": "2024-03-05", "end": "2024-03-01"}, MonitoringError, "after end"),
        ({"start": "2025-01-01"}, MonitoringError, "no source rows in the range from 2025"),
        ({"end": "2020-01-01", "online": True}, MonitoringError, "no entity keys"),
        ({"distinct": "fuzzy"}, MonitoringError, "fuzzy"),
    ],
)
def test_bad_input_is_refused_and_nothing_is_stored(
    repo: Path, kwargs: dict[str, Any], error: type[Exception], match: str
):
    args = {"view": "rides", **kwargs}
    with FeatureStore(repo) as store:
        with pytest.raises(error, match=match):
            store.profile(args.pop("view"), **args)
        assert store.profiles("rides") == []
