"""Aggregated views: what a definition may say, and the errors that name what is wrong."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from parity import (
    Aggregation,
    DefinitionError,
    Entity,
    FeatureStore,
    FeatureView,
    FileSource,
    ValidationError,
)
from parity.definitions.aggregation import aggregation_from_yaml

USER = Entity(name="user", join_keys=["user_id"], dtype="Int64")
SRC = FileSource(name="orders", path="data/orders.parquet")
DAY = timedelta(days=1)


def view(*aggs: Aggregation, **kw) -> FeatureView:
    return FeatureView(name="v", entities=[USER], source=SRC, aggregations=list(aggs), **kw)


def test_names_types_and_spec_round_trip() -> None:
    v = view(
        Aggregation(column="amount", function="sum", window=timedelta(days=30)),
        Aggregation(function="count", window="7d", name="orders_7d"),
        Aggregation(column="amount", function="last_n", n=5, window="90m"),
        hop="5m",
        schema=[{"name": "amount", "dtype": "Float32"}],
    )
    assert v.feature_names == ["amount_sum_30d", "orders_7d", "amount_last_5_90m"]
    assert [str(f.dtype) for f in v.features] == ["Float64", "Int64", "Array(Float32)"]
    again = FeatureView.from_spec(v.to_spec())
    assert again.to_spec() == v.to_spec() and again.content_hash() == v.content_hash()
    assert v.hop == timedelta(minutes=5)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"function": "median", "window": DAY, "column": "x"}, "function 'median' is not one of"),
        ({"function": "sum", "window": DAY}, "sum needs a column"),
        ({"function": "count", "window": timedelta(0)}, "window must be positive"),
        ({"function": "last_n", "window": DAY, "column": "x"}, "last_n needs n"),
        ({"function": "max", "window": DAY, "column": "x", "n": 3}, "n is only for last_n"),
    ],
)
def test_bad_aggregations_are_refused_by_name(kwargs: dict, fragment: str) -> None:
    with pytest.raises(DefinitionError, match=fragment):
        Aggregation(**kwargs)


def test_bad_views_are_refused() -> None:
    with pytest.raises(DefinitionError, match="output names repeat"):
        view(Aggregation(function="count", window=DAY), Aggregation(function="count", window=DAY))
    with pytest.raises(DefinitionError, match="drop the ttl"):
        view(Aggregation(function="count", window=DAY), ttl=DAY)
    with pytest.raises(DefinitionError, match="only a view with aggregations has a hop"):
        FeatureView(
            name="p", entities=[USER], source=SRC, schema=[{"name": "a", "dtype": "Int64"}], hop=DAY
        )
    with pytest.raises(DefinitionError, match="needs a number column"):
        view(
            Aggregation(column="tag", function="mean", window=DAY),
            schema=[{"name": "tag", "dtype": "String"}],
        )


def test_yaml_transformations() -> None:
    a = aggregation_from_yaml("window_sum(7d)", "amount", None)
    assert (a.function, a.window, a.column) == ("sum", timedelta(days=7), "amount")
    assert aggregation_from_yaml("window_last_n(1h, 4)", "x", "l4").n == 4
    with pytest.raises(ValueError, match="expected window_<function>"):
        aggregation_from_yaml("sum(7d)", "amount", None)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / "data").mkdir()
    t = datetime(2024, 1, 1, tzinfo=UTC)
    pq.write_table(
        pa.table(
            {
                "user_id": pa.array([1], pa.int64()),
                "amount": pa.array([1.5], pa.float64()),
                "tag": pa.array(["a"], pa.string()),
                "event_timestamp": pa.array([t], pa.timestamp("us", tz="UTC")),
            }
        ),
        tmp_path / "data" / "orders.parquet",
    )
    (tmp_path / "parity.yaml").write_text("project: aggdefs\nregistry: {path: data/registry.db}\n")
    return tmp_path


def test_apply_fills_in_column_types_from_the_source(repo: Path) -> None:
    with FeatureStore(repo) as store:
        store.apply([USER, SRC, view(Aggregation(column="amount", function="max", window=DAY))])
        stored = store.get_feature_view("v")
        assert [(f.name, str(f.dtype)) for f in stored.schema] == [("amount", "Float64")]
        assert str(stored.field("amount_max_1d").dtype) == "Float64"
        # Applying the same repo object again changes nothing (the stored form is complete).
        plan = store.plan([view(Aggregation(column="amount", function="max", window=DAY))])
        assert not plan.changes or all(c.action == "unchanged" for c in plan.changes)


@pytest.mark.parametrize(
    ("agg", "fragment"),
    [
        (
            Aggregation(column="nope", function="sum", window=DAY),
            "reads 'nope', which is not a column",
        ),
        (Aggregation(column="tag", function="sum", window=DAY), "sum needs a number column"),
        (
            Aggregation(column="amount", function="approx_count_distinct", window=DAY),
            "approx_count_distinct hashes Int32, Int64, String or Bool",
        ),
    ],
)
def test_apply_refuses_aggregations_the_source_cannot_feed(
    repo: Path, agg: Aggregation, fragment: str
) -> None:
    with FeatureStore(repo) as store:
        with pytest.raises(ValidationError, match=fragment):
            store.apply([USER, SRC, view(agg)])
        assert store.list_feature_views() == []  # nothing registered


def test_apply_refuses_a_missing_event_id_column(repo: Path) -> None:
    src = FileSource(name="orders", path="data/orders.parquet", event_id_field="order_id")
    v = FeatureView(
        name="v",
        entities=[USER],
        source=src,
        aggregations=[Aggregation(function="count", window=DAY)],
    )
    with (
        FeatureStore(repo) as store,
        pytest.raises(ValidationError, match="event_id_field 'order_id'"),
    ):
        store.apply([USER, src, v])


def test_historical_mixes_plain_and_aggregated_views_and_takes_empty_frames(repo: Path) -> None:
    plain = FeatureView(
        name="plain", entities=[USER], source=SRC, schema=[{"name": "tag", "dtype": "String"}]
    )
    agg = view(
        Aggregation(column="amount", function="sum", window=DAY),
        Aggregation(function="count", window=DAY),
    )
    ts = pa.timestamp("us", tz="UTC")
    t = datetime(2024, 1, 1, 12, tzinfo=UTC)
    with FeatureStore(repo) as store:
        store.apply([USER, SRC, plain, agg])
        refs = ["v:amount_sum_1d", "plain:tag", "v:count_1d"]
        frame = pa.table({"user_id": [1, 2], "event_timestamp": pa.array([t, t], ts)})
        got = store.get_historical_features(frame, refs).to_arrow()
        # Features come grouped by view, in first-seen order (as for plain views).
        assert got.column_names == [
            "user_id",
            "event_timestamp",
            "amount_sum_1d",
            "count_1d",
            "tag",
        ]
        assert got.to_pydict()["amount_sum_1d"] == [1.5, None]
        assert got.to_pydict()["count_1d"] == [1, 0]
        assert got.to_pydict()["tag"] == ["a", None]
        empty = frame.slice(0, 0)
        assert store.get_historical_features(empty, refs).to_arrow().num_rows == 0


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), 2.0**63])
def test_values_a_sum_cannot_hold_exactly_are_refused_before_writing(
    repo: Path, bad: float
) -> None:
    from parity.ingest import IngestError

    agg = view(Aggregation(column="amount", function="mean", window=DAY))
    t = datetime(2024, 1, 1, tzinfo=UTC)
    rows = {
        "user_id": [1, 2],
        "amount": [1.0, bad],
        "event_timestamp": pa.array([t, t], pa.timestamp("us", tz="UTC")),
    }
    with FeatureStore(repo) as store:
        store.apply([USER, SRC, agg])
        with pytest.raises(IngestError, match="row 1: column 'amount'"):
            store.write_to_online_store("v", rows)
        got = store.get_online_features(["v:amount_mean_1d"], entities={"user_id": [1]})
        assert got.statuses["amount_mean_1d"] == ["missing"]  # nothing of the batch landed
