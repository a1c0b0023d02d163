"""The historical join contract: every offline engine gives the oracle's answer.

Runs on every engine in ``backends.OFFLINE_ENGINES``: add one there and this suite runs on it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from backends import OFFLINE_ENGINES
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oracle import expected_choices
from parity import FeatureStore, ObjectNotFoundError, RetrievalError
from parity.errors import DataSourceNotFoundError, ParityError
from repo_utils import write_parquet, write_repo

T0 = datetime(2024, 1, 1, tzinfo=UTC)
TTLS = {"none": None, "2m": timedelta(minutes=2), "5m": timedelta(minutes=5)}

DEFS = """
from datetime import timedelta
from parity import Entity, FeatureService, FeatureView, Field, FileSource, Float64, Int64, String

driver = Entity(name="driver", join_keys=["driver_id"], dtype=Int64)
customer = Entity(name="customer", join_keys=["customer_id"], dtype=Int64)
route = Entity(name="route", join_keys=["origin", "dest"], dtype=Int64)

driver_src = FileSource(name="driver_src", path="data/driver.parquet",
                        timestamp_field="event_timestamp", created_timestamp_field="created")
customer_src = FileSource(name="customer_src", path="data/customer.parquet")
route_src = FileSource(name="route_src", path="data/route.parquet")

DRIVER_FIELDS = [Field(name="conv_rate", dtype=Float64), Field(name="trips", dtype=Int64),
                 Field(name="city", dtype=String)]
driver_none = FeatureView(name="driver_none", entities=[driver], source=driver_src,
                          schema=DRIVER_FIELDS, ttl=None)
driver_2m = FeatureView(name="driver_2m", entities=[driver], source=driver_src,
                        schema=DRIVER_FIELDS, ttl=timedelta(minutes=2))
driver_5m = FeatureView(name="driver_5m", entities=[driver], source=driver_src,
                        schema=DRIVER_FIELDS, ttl=timedelta(minutes=5))
customer_stats = FeatureView(name="customer_stats", entities=[customer], source=customer_src,
                             schema=[Field(name="balance", dtype=Float64)], ttl=timedelta(days=1))
route_stats = FeatureView(name="route_stats", entities=[route], source=route_src,
                          schema=[Field(name="eta", dtype=Float64)])
model_v1 = FeatureService(name="model_v1", features=[driver_none[["conv_rate"]], customer_stats])
"""


def driver_table(rows: list[dict]) -> pa.Table:
    return pa.table(
        {
            "driver_id": pa.array([r["driver_id"] for r in rows], pa.int64()),
            "event_timestamp": pa.array(
                [r["event_timestamp"] for r in rows], pa.timestamp("us", tz="UTC")
            ),
            "created": pa.array([r["created"] for r in rows], pa.timestamp("us", tz="UTC")),
            "conv_rate": pa.array([r["conv_rate"] for r in rows], pa.float64()),
            "trips": pa.array([r["trips"] for r in rows], pa.int64()),
            "city": pa.array([r["city"] for r in rows], pa.string()),
        }
    )


@pytest.fixture(scope="module", params=OFFLINE_ENGINES)
def store(request, tmp_path_factory):
    root = write_repo(tmp_path_factory.mktemp("pit"), {"features.py": DEFS})
    if request.param != "duckdb":
        (root / "parity.yaml").write_text(
            (root / "parity.yaml").read_text().replace("duckdb", request.param)
        )
    t = T0
    write_parquet(
        root / "data/driver.parquet",
        driver_table(
            [
                dict(driver_id=1, event_timestamp=t, created=t, conv_rate=0.1, trips=1, city="a"),
            ]
        ),
    )
    write_parquet(
        root / "data/customer.parquet",
        {
            "customer_id": pa.array([10, 10, 11], pa.int64()),
            "event_timestamp": pa.array(
                [t, t + timedelta(hours=1), t], pa.timestamp("us", tz="UTC")
            ),
            "balance": [1.0, 2.0, 3.0],
        },
    )
    write_parquet(
        root / "data/route.parquet",
        {
            "origin": pa.array([1, 1, 2], pa.int64()),
            "dest": pa.array([2, 3, 2], pa.int64()),
            "event_timestamp": pa.array([t, t, t], pa.timestamp("us", tz="UTC")),
            "eta": [12.0, 13.0, 22.0],
        },
    )
    fs = FeatureStore(root)
    fs.apply()
    yield fs
    fs.close()


def set_driver_rows(store: FeatureStore, rows: list[dict]) -> None:
    pq.write_table(driver_table(rows), store.repo_path / "data/driver.parquet")


def entity_frame(rows: list[dict], *, tz: bool = True) -> pd.DataFrame:
    df = pd.DataFrame(rows)
    ts = pd.to_datetime(df["event_timestamp"], utc=True)
    df["event_timestamp"] = ts if tz else ts.dt.tz_localize(None)
    return df


# -- the property: the engine equals the oracle for random histories ---------------------

minute = st.integers(min_value=0, max_value=12).map(lambda m: T0 + timedelta(minutes=m))
source_row = st.fixed_dictionaries(
    {
        "driver_id": st.integers(1, 3),
        "event_timestamp": minute,
        "created": st.one_of(st.none(), minute),
        "conv_rate": st.one_of(
            st.none(), st.floats(0, 1, allow_nan=False).map(lambda x: round(x, 3))
        ),
        "trips": st.one_of(st.none(), st.integers(0, 100)),
        "city": st.one_of(st.none(), st.sampled_from(["a", "b", "c"])),
    }
)
entity_row = st.fixed_dictionaries(
    {"driver_id": st.integers(0, 4), "event_timestamp": minute, "label": st.integers(0, 9)}
)


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    source=st.lists(source_row, max_size=25),
    entities=st.lists(entity_row, min_size=1, max_size=25),
    ttl_name=st.sampled_from(sorted(TTLS)),
    aware=st.booleans(),
)
def test_matches_oracle(store, source, entities, ttl_name, aware):
    set_driver_rows(store, source)
    view = f"driver_{ttl_name}"
    df = entity_frame(entities, tz=aware)
    got = store.get_historical_features(
        df, [f"{view}:conv_rate", f"{view}:trips", f"{view}:city"]
    ).to_arrow()
    features = ["conv_rate", "trips", "city"]
    choices = expected_choices(entities, source, ["driver_id"], features, TTLS[ttl_name])
    assert got.num_rows == len(entities)
    assert got.column("label").to_pylist() == [e["label"] for e in entities]
    assert got.column("driver_id").to_pylist() == [e["driver_id"] for e in entities]
    rows = list(zip(*(got.column(f).to_pylist() for f in features), strict=True))
    for i, (row, allowed) in enumerate(zip(rows, choices, strict=True)):
        assert row in allowed, f"entity row {i}: got {row}, expected one of {allowed}"


# -- edge cases, each named ----------------------------------------------------------------


def row(driver_id, minutes, conv, created=None, trips=1, city="x"):
    ts = T0 + timedelta(minutes=minutes)
    cr = None if created is None else T0 + timedelta(minutes=created)
    return dict(
        driver_id=driver_id, event_timestamp=ts, created=cr, conv_rate=conv, trips=trips, city=city
    )


def ask(store, entities, view="driver_none", feature="conv_rate", **kw):
    df = entity_frame(
        [{"driver_id": d, "event_timestamp": T0 + timedelta(minutes=m)} for d, m in entities]
    )
    return (
        store.get_historical_features(df, [f"{view}:{feature}"], **kw)
        .to_arrow()
        .column(feature)
        .to_pylist()
    )


def test_tie_on_event_time_goes_to_latest_created(store):
    set_driver_rows(
        store, [row(1, 5, 0.9, created=7), row(1, 5, 0.1, created=6), row(1, 5, 0.5, created=None)]
    )
    assert ask(store, [(1, 5)]) == [0.9]


def test_full_tie_takes_all_features_from_one_row(store):
    set_driver_rows(store, [row(1, 5, 0.1, created=6, trips=1), row(1, 5, 0.2, created=6, trips=2)])
    df = entity_frame([{"driver_id": 1, "event_timestamp": T0 + timedelta(minutes=5)}])
    job = store.get_historical_features(df, ["driver_none:conv_rate", "driver_none:trips"])
    out = job.to_arrow().to_pylist()
    assert (out[0]["conv_rate"], out[0]["trips"]) in [(0.1, 1), (0.2, 2)]


def test_ttl_boundary_is_inclusive_both_ends(store):
    set_driver_rows(store, [row(1, 3, 0.3)])
    # 2-minute TTL: at t=5 the row at 3 is exactly t - ttl (kept); at 5 min + 1 µs it is out.
    assert ask(store, [(1, 3), (1, 5)], view="driver_2m") == [0.3, 0.3]
    df = pd.DataFrame(
        {
            "driver_id": [1],
            "event_timestamp": [pd.Timestamp(T0 + timedelta(minutes=5, microseconds=1))],
        }
    )
    out = store.get_historical_features(df, ["driver_2m:conv_rate"]).to_arrow()
    assert out.column("conv_rate").to_pylist() == [None]


def test_row_after_entity_time_is_never_used(store):
    set_driver_rows(store, [row(1, 5, 0.5), row(1, 6, 0.6)])
    assert ask(store, [(1, 4), (1, 5), (1, 7)]) == [None, 0.5, 0.6]


def test_entity_rows_before_any_data_come_back_with_nulls(store):
    set_driver_rows(store, [row(1, 5, 0.5)])
    out = store.get_historical_features(
        entity_frame(
            [
                {"driver_id": 1, "event_timestamp": T0},
                {"driver_id": 9, "event_timestamp": T0 + timedelta(hours=1)},
            ]
        ),
        ["driver_none:conv_rate", "driver_none:city"],
    ).to_arrow()
    assert out.num_rows == 2
    assert out.column("conv_rate").to_pylist() == [None, None]
    assert out.column("city").to_pylist() == [None, None]


def test_duplicate_entity_rows_each_come_back_in_order(store):
    set_driver_rows(store, [row(1, 1, 0.1), row(2, 1, 0.2)])
    assert ask(store, [(2, 3), (1, 3), (2, 3), (2, 3), (1, 0)]) == [0.2, 0.1, 0.2, 0.2, None]


def test_null_feature_values_are_returned_as_null_not_skipped(store):
    # The latest row holds a null: that null is the value (no falling back to older rows).
    set_driver_rows(store, [row(1, 1, 0.1), row(1, 2, None)])
    assert ask(store, [(1, 3)]) == [None]


def test_naive_timestamps_are_utc(store):
    set_driver_rows(store, [row(1, 5, 0.5)])
    naive = pd.DataFrame(
        {
            "driver_id": [1, 1],
            "event_timestamp": pd.to_datetime(["2024-01-01 00:04", "2024-01-01 00:05"]),
        }
    )
    aware = naive.assign(event_timestamp=naive.event_timestamp.dt.tz_localize("UTC"))
    other_zone = aware.assign(
        event_timestamp=aware.event_timestamp.dt.tz_convert("America/New_York")
    )
    for df in (naive, aware, other_zone):
        out = store.get_historical_features(df, ["driver_none:conv_rate"]).to_pandas()
        assert out.conv_rate.isna().tolist() == [True, False]
        assert out.event_timestamp.tolist() == df.event_timestamp.tolist()


def test_several_join_keys_and_several_entities_in_one_call(store):
    set_driver_rows(store, [row(1, 0, 0.5)])
    df = pd.DataFrame(
        {
            "driver_id": [1, 1, 2],
            "customer_id": [10, 11, 10],
            "origin": [1, 1, 2],
            "dest": [3, 2, 2],
            "event_timestamp": pd.to_datetime([T0 + timedelta(hours=2)] * 3, utc=True),
        }
    )
    out = store.get_historical_features(
        df, ["driver_none:conv_rate", "customer_stats:balance", "route_stats:eta"]
    ).to_pandas()
    assert out.conv_rate.tolist()[:2] == [0.5, 0.5] and pd.isna(out.conv_rate[2])
    assert out.balance.tolist() == [2.0, 3.0, 2.0]
    assert out.eta.tolist() == [13.0, 12.0, 22.0]
    assert list(out.columns) == [
        "driver_id",
        "customer_id",
        "origin",
        "dest",
        "event_timestamp",
        "conv_rate",
        "balance",
        "eta",
    ]


def test_feature_service_and_full_feature_names(store):
    set_driver_rows(store, [row(1, 0, 0.5)])
    df = pd.DataFrame(
        {
            "driver_id": [1],
            "customer_id": [10],
            "event_timestamp": pd.to_datetime([T0 + timedelta(minutes=30)], utc=True),
        }
    )
    by_name = store.get_historical_features(df, "model_v1").to_pandas()
    by_obj = store.get_historical_features(
        df, store.get_feature_service("model_v1"), full_feature_names=True
    ).to_pandas()
    assert by_name[["conv_rate", "balance"]].values.tolist() == [[0.5, 1.0]]
    assert list(by_obj.columns[-2:]) == ["driver_none__conv_rate", "customer_stats__balance"]


def test_same_feature_name_from_two_views_needs_full_names(store):
    df = entity_frame([{"driver_id": 1, "event_timestamp": T0}])
    with pytest.raises(RetrievalError, match="full_feature_names"):
        store.get_historical_features(df, ["driver_none:conv_rate", "driver_2m:conv_rate"])
    out = store.get_historical_features(
        df, ["driver_none:conv_rate", "driver_2m:conv_rate"], full_feature_names=True
    )
    assert out.to_arrow().column_names[-2:] == ["driver_none__conv_rate", "driver_2m__conv_rate"]


def test_output_types_follow_the_schema(store):
    set_driver_rows(store, [row(1, 0, 0.5, trips=3)])
    out = store.get_historical_features(
        entity_frame([{"driver_id": 1, "event_timestamp": T0}]), ["driver_none:*"]
    ).to_arrow()
    assert out.schema.field("conv_rate").type == pa.float64()
    assert out.schema.field("trips").type == pa.int64()
    assert out.schema.field("city").type in (pa.string(), pa.large_string(), pa.string_view())


# -- entity frame forms -----------------------------------------------------------------


def test_entity_frame_forms_give_the_same_result(store, tmp_path):
    import polars as pl

    set_driver_rows(store, [row(1, 0, 0.5), row(2, 0, 0.7)])
    df = entity_frame(
        [{"driver_id": 2, "event_timestamp": T0}, {"driver_id": 1, "event_timestamp": T0}]
    )
    path = tmp_path / "entities.parquet"
    df.to_parquet(path)
    sql = (
        "SELECT * FROM (VALUES (2::BIGINT, TIMESTAMPTZ '2024-01-01 00:00:00+00'), "
        "(1::BIGINT, TIMESTAMPTZ '2024-01-01 00:00:00+00')) t(driver_id, event_timestamp)"
    )
    forms = [df, pa.Table.from_pandas(df), pl.from_pandas(df), str(path), path, sql]
    for form in forms:
        got = store.get_historical_features(form, ["driver_none:conv_rate"]).to_arrow()
        assert got.column("conv_rate").to_pylist() == [0.7, 0.5], type(form)


def test_timestamp_column_may_be_named(store):
    set_driver_rows(store, [row(1, 0, 0.5)])
    df = pd.DataFrame({"driver_id": [1], "ts": pd.to_datetime([T0])})
    out = store.get_historical_features(
        df, ["driver_none:conv_rate"], timestamp_column="ts"
    ).to_pandas()
    assert out.conv_rate.tolist() == [0.5]


def test_to_parquet_writes_the_same_table(store, tmp_path):
    set_driver_rows(store, [row(1, 0, 0.5)])
    job = store.get_historical_features(
        entity_frame([{"driver_id": 1, "event_timestamp": T0}]), ["driver_none:conv_rate"]
    )
    path = job.to_parquet(tmp_path / "out" / "train.parquet")
    assert pq.read_table(path).equals(job.to_arrow())


# -- bad input: a clear error, nothing changed --------------------------------------------


def test_missing_timestamp_column(store):
    with pytest.raises(RetrievalError, match="no timestamp column 'event_timestamp'"):
        store.get_historical_features(pd.DataFrame({"driver_id": [1]}), ["driver_none:conv_rate"])


def test_missing_join_key(store):
    df = pd.DataFrame({"event_timestamp": pd.to_datetime([T0])})
    with pytest.raises(RetrievalError, match="driver_id"):
        store.get_historical_features(df, ["driver_none:conv_rate"])


def test_unknown_feature_and_view(store):
    df = entity_frame([{"driver_id": 1, "event_timestamp": T0}])
    with pytest.raises(RetrievalError, match="no feature 'nope'"):
        store.get_historical_features(df, ["driver_none:nope"])
    with pytest.raises(ObjectNotFoundError, match="driver_nne"):
        store.get_historical_features(df, ["driver_nne:conv_rate"])
    with pytest.raises(RetrievalError, match="view:feature"):
        store.get_historical_features(df, ["driver_none:"])


def test_wrong_key_type_and_null_timestamp(store):
    df = pd.DataFrame({"driver_id": ["1"], "event_timestamp": pd.to_datetime([T0])})
    with pytest.raises(RetrievalError, match=r"'driver_id' has type \w*string"):
        store.get_historical_features(df, ["driver_none:conv_rate"])
    df = pd.DataFrame({"driver_id": [1, 2], "event_timestamp": [pd.Timestamp(T0), pd.NaT]})
    with pytest.raises(RetrievalError, match="entity row 1 has a null"):
        store.get_historical_features(df, ["driver_none:conv_rate"])
    df = pd.DataFrame({"driver_id": [1], "event_timestamp": ["2024-01-01"]})
    with pytest.raises(RetrievalError, match="must hold timestamps"):
        store.get_historical_features(df, ["driver_none:conv_rate"])


def test_entity_column_clash_with_feature(store):
    df = entity_frame([{"driver_id": 1, "event_timestamp": T0}]).assign(conv_rate=1.0)
    with pytest.raises(RetrievalError, match="full_feature_names"):
        store.get_historical_features(df, ["driver_none:conv_rate"])


def test_missing_source_file(store):
    path = store.repo_path / "data/customer.parquet"
    moved = path.with_suffix(".bak")
    path.rename(moved)
    try:
        df = pd.DataFrame({"customer_id": [10], "event_timestamp": pd.to_datetime([T0])})
        with pytest.raises(DataSourceNotFoundError, match="customer_src"):
            store.get_historical_features(df, ["customer_stats:balance"]).to_arrow()
    finally:
        moved.rename(path)


def test_missing_entity_file(store, tmp_path):
    with pytest.raises(RetrievalError, match="does not exist"):
        store.get_historical_features(str(tmp_path / "nope.parquet"), ["driver_none:conv_rate"])
    assert issubclass(RetrievalError, ParityError)
