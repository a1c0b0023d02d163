"""What a write accepts, on every online store: one rule per kind of value, checked before
anything is written, and a refused batch leaves nothing behind (online or offline).

- times: 1900-01-01 up to 2100-01-01 UTC (``parity.clock``), for event, created and
  Timestamp feature values, and for entity frames of historical retrievals;
- integers: Int64, whatever the input (a Python int, a uint64 column);
- floats: finite or null (NaN and infinity are refused);
- nulls: a feature value may be null, in any number of rows; keys and event times may not;
- an aggregated view's integer sum that would leave Int64 is refused before anything is
  written, naming the entity and the feature; a read never fails for the other entities;
- columns no view reads are reported as ignored;
- join keys of the wrong type are refused by reads and deletes alike.
"""

from __future__ import annotations

import math
import shutil
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from backends import ONLINE_STORES, online_store_yaml, params
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parity import DataSourceError, FeatureStore, RetrievalError
from parity.clock import MAX_TIME, MAX_US, MIN_TIME, MIN_US
from parity.ingest import IngestError
from parity.online.encoding import from_micros
from repo_utils import write_parquet, write_repo

REDIS_DB = 6  # this module's own database number on the shared local Redis
NOW = datetime(2024, 6, 1, 12, tzinfo=UTC)
T = NOW - timedelta(hours=1)

DEFS = """
from datetime import timedelta
from parity import (Aggregation, Array, Entity, FeatureView, Field, FileSource, Float64, Int64,
                    PushSource, RequestSource, String, Timestamp, on_demand_feature_view)

driver = Entity(name="driver", join_keys=["driver_id"], dtype=Int64)
src = FileSource(name="src", path="data/src.parquet", created_timestamp_field="created")
push = PushSource(name="push", batch_source=src)
stats = FeatureView(name="stats", entities=[driver], source=push, ttl=timedelta(days=1),
                    schema=[Field(name="rate", dtype=Float64), Field(name="qty", dtype=Int64),
                            Field(name="seen", dtype=Timestamp),
                            Field(name="vec", dtype=Array(Float64))])
forever = FeatureView(name="forever", entities=[driver], source=push,
                      schema=[Field(name="qty", dtype=Int64)])
agg_src = FileSource(name="agg_src", path="data/agg.parquet")
agg_push = PushSource(name="agg_push", batch_source=agg_src)
totals = FeatureView(name="totals", entities=[driver], source=agg_push,
                     schema=[Field(name="qty", dtype=Int64)],
                     aggregations=[Aggregation(column="qty", function="sum", window=timedelta(days=1)),
                                   Aggregation(column="qty", function="sum", window=timedelta(hours=1))])

@on_demand_feature_view(
    sources=[stats[["rate"]], RequestSource(name="req", schema=[Field(name="boost", dtype=Float64)])],
    schema=[Field(name="boosted", dtype=Float64)],
)
def boosted(row):
    return {"boosted": (row["rate"] or 0.0) * row["boost"]}
"""


def _src_table() -> pa.Table:
    ts = pa.timestamp("us", tz="UTC")
    return pa.table(
        {
            "driver_id": pa.array([1], pa.int64()),
            "event_timestamp": pa.array([T], ts),
            "created": pa.array([T], ts),
            "rate": [0.5],
            "qty": pa.array([1], pa.int64()),
            "seen": pa.array([T], ts),
            "vec": pa.array([[1.0]], pa.list_(pa.float64())),
        }
    )


@pytest.fixture(scope="module", params=params("online_store", ONLINE_STORES))
def store(request, tmp_path_factory):
    root = write_repo(tmp_path_factory.mktemp(f"rules_{request.param}"), {"features.py": DEFS})
    online = online_store_yaml(
        request.param, request, redis_db=REDIS_DB, extra="expire_grace_seconds: 1000000000"
    )
    (root / "parity.yaml").write_text(
        (root / "parity.yaml").read_text() + f"online_store: {online}\n"
    )
    write_parquet(root / "data/src.parquet", _src_table())
    write_parquet(
        root / "data/agg.parquet",
        pa.table(
            {
                "driver_id": pa.array([1], pa.int64()),
                "event_timestamp": pa.array([T], pa.timestamp("us", tz="UTC")),
                "qty": pa.array([1], pa.int64()),
            }
        ),
    )
    fs = FeatureStore(root, clock=lambda: NOW)
    fs.apply()
    yield fs
    fs.teardown()
    fs.close()


@pytest.fixture
def clean(store):
    store.teardown()
    store.online.setup([])
    shutil.rmtree(store.config.resolve(store.config.offline_log), ignore_errors=True)
    return store


def row(driver_id=1, ts=T, **values):
    out = {"driver_id": [driver_id], "event_timestamp": [ts], "rate": [0.25], "qty": [3]}
    out["seen"], out["vec"] = [T], [[1.0, 2.0]]
    out.update({k: [v] for k, v in values.items()})
    return out


def read(store, ids, refs=("stats:rate", "stats:qty")):
    return store.get_online_features(list(refs), entities={"driver_id": list(ids)})


def offline_files(store) -> list:
    folder = store.config.resolve(store.config.offline_log)
    return sorted(folder.rglob("*.parquet")) if folder.exists() else []


def assert_nothing_written(store, ids=(1,)):
    resp = read(store, ids)
    assert resp.statuses["rate"] == ["missing"] * len(ids)
    assert offline_files(store) == []


# -- times --------------------------------------------------------------------------------

outside = st.one_of(
    st.datetimes(max_value=MIN_TIME.replace(tzinfo=None) - timedelta(microseconds=1)),
    st.datetimes(min_value=MAX_TIME.replace(tzinfo=None)),
).map(lambda d: d.replace(tzinfo=UTC))


@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(when=outside, column=st.sampled_from(["event_timestamp", "created", "seen"]))
def test_times_outside_the_range_are_refused_naming_row_and_column(clean, when, column):
    rows = {**row(), **{"driver_id": [1, 2]}}
    rows = {k: v * 2 if k != "driver_id" else v for k, v in rows.items()}
    rows[column] = [T, when]
    with pytest.raises(IngestError, match=rf"row 1: '?{column}'?.*outside the times Parity stores"):
        clean.push("push", rows, to="online_and_offline")
    assert_nothing_written(clean, [1, 2])


@pytest.mark.parametrize(
    "when",
    [MIN_TIME, MIN_TIME + timedelta(microseconds=1), datetime(1950, 6, 1, tzinfo=UTC),
     datetime(2099, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)],
    ids=["min", "min+1us", "1950", "max-1us"],
)  # fmt: skip
def test_every_time_inside_the_range_is_stored_exactly(clean, when):
    clean.push("push", row(ts=when, seen=when, created=when), to="online_and_offline")
    resp = clean.get_online_features(["forever:qty"], entities={"driver_id": [1]})
    assert resp.statuses["qty"] == ["present"]
    assert resp.event_timestamps["qty"] == [when]
    ttl = read(clean, [1], ["stats:seen"])  # a day's ttl: fresh only near "now"
    fresh = timedelta(0) <= NOW - when <= timedelta(days=1)
    assert ttl.statuses["seen"] == ["present" if fresh or when > NOW else "expired"]
    job = clean.get_historical_features(
        pd.DataFrame({"driver_id": [1], "event_timestamp": [when]}), ["forever:qty"]
    )
    assert job.to_arrow().column("qty").to_pylist() == [3]
    # an earlier write does not replace it; a later one (when there is a later time) does
    clean.push("push", row(ts=when - timedelta(microseconds=1) if when > MIN_TIME else when, qty=5))
    later = when + timedelta(microseconds=1)
    if later < MAX_TIME:
        clean.push("push", row(ts=later, qty=7))
    got = clean.get_online_features(["forever:qty"], entities={"driver_id": [1]}).to_dict()
    assert got["qty"] == [7 if later < MAX_TIME else 3]


def test_historical_entity_times_outside_the_range_are_refused(store):
    frame = pd.DataFrame({"driver_id": [1, 1], "event_timestamp": [T, datetime(2150, 1, 1)]})
    with pytest.raises(RetrievalError, match=r"entity row 1.*outside the times Parity stores"):
        store.get_historical_features(frame, ["forever:qty"]).to_arrow()


def test_range_constants_agree():
    assert from_micros(MIN_US) == MIN_TIME and from_micros(MAX_US) == MAX_TIME


# -- integers -----------------------------------------------------------------------------


@pytest.mark.parametrize("column", ["driver_id", "qty"])
@pytest.mark.parametrize("value", [2**63, 2**64 - 1, 2**64, -(2**63) - 1])
def test_integers_beyond_int64_are_refused_naming_the_column(clean, column, value):
    rows = row()
    rows = {k: v * 3 for k, v in rows.items()}
    rows["driver_id"] = [1, 2, 3]
    rows[column] = [*rows[column][:2], value]
    with pytest.raises(IngestError, match=rf"row 2: column '{column}'.*outside Int64"):
        clean.push("push", rows, to="online_and_offline")
    assert_nothing_written(clean, [1, 2, 3])


def test_uint64_columns_are_taken_when_they_fit_and_refused_when_not(clean):
    frame = pa.table(
        {
            "driver_id": pa.array([1, 2**64 - 1], pa.uint64()),
            "event_timestamp": pa.array([T, T], pa.timestamp("us", tz="UTC")),
            "rate": [0.1, 0.2], "qty": pa.array([1, 2], pa.uint64()),
            "seen": pa.array([T, T], pa.timestamp("us", tz="UTC")),
            "vec": pa.array([[1.0], [2.0]], pa.list_(pa.float64())),
        }
    )  # fmt: skip
    with pytest.raises(IngestError, match=r"row 1: join key 'driver_id'.*does not fit int64"):
        clean.push("push", frame)
    assert_nothing_written(clean, [1])
    clean.push("push", frame.slice(0, 1))
    assert read(clean, [1]).to_dict()["qty"] == [1]


@settings(max_examples=30, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(v=st.integers(-(2**63), 2**63 - 1))
def test_every_int64_is_stored_exactly(clean, v):
    clean.push("push", row(driver_id=v, qty=v))
    assert read(clean, [v]).to_dict()["qty"] == [v]


# -- nulls and non-finite floats -------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 3])
def test_a_null_feature_value_is_accepted_in_any_number_of_rows(clean, n):
    rows = {"driver_id": list(range(1, n + 1)), "event_timestamp": [T] * n,
            "rate": [None] * n, "qty": [None] + [5] * (n - 1),
            "seen": [None] * n, "vec": [None] * n}  # fmt: skip
    assert clean.push("push", rows) == n
    resp = read(clean, range(1, n + 1))
    assert resp.to_dict()["rate"] == [None] * n
    assert resp.to_dict()["qty"] == [None] + [5] * (n - 1)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("column", ["rate", "vec"])
def test_non_finite_floats_are_refused_on_every_write(clean, bad, column):
    rows = {k: v * 2 for k, v in row().items()}
    rows["driver_id"] = [1, 2]
    rows[column] = [0.5, bad] if column == "rate" else [[1.0], [2.0, bad]]
    for write in (
        lambda r: clean.push("push", r, to="online_and_offline"),
        lambda r: clean.write_to_online_store("stats", r),
    ):
        with pytest.raises(IngestError, match=f"row 1: column '{column}'.*finite floats only"):
            write(rows)
        assert_nothing_written(clean, [1, 2])


def test_rows_without_created_times_or_list_elements_are_typed_as_declared(clean):
    rows = {**row(), "created": [None], "vec": [[]]}
    assert clean.push("push", rows, to="online_and_offline") == 1
    assert read(clean, [1], ["stats:vec"]).to_dict()["vec"] == [[]]
    logged = pa.parquet.read_table(offline_files(clean)[0])
    assert logged.column("created").null_count == 0  # stamped, as when the column is absent


def test_pandas_nan_is_a_missing_value(clean):
    frame = pd.DataFrame({"driver_id": [1, 2], "event_timestamp": [T, T],
                          "rate": [np.nan, 0.5], "qty": [1, 2], "seen": [T, T],
                          "vec": [[1.0], [2.0]]})  # fmt: skip
    assert clean.push("push", frame) == 2
    assert read(clean, [1, 2]).to_dict()["rate"] == [None, 0.5]


def test_materializing_a_non_finite_source_value_is_refused_naming_it(clean):
    table = _src_table()
    table = table.set_column(table.schema.get_field_index("rate"), "rate", pa.array([math.inf]))
    write_parquet(clean.repo_path / "data/src.parquet", table)
    try:
        with pytest.raises(DataSourceError, match=r"driver_id=1 .*'rate' is inf.*finite floats"):
            clean.materialize(T - timedelta(days=1), NOW, views=["stats"])
        assert read(clean, [1]).statuses["rate"] == ["missing"]
    finally:
        write_parquet(clean.repo_path / "data/src.parquet", _src_table())


def test_materializing_a_source_time_outside_the_range_is_refused_naming_it(clean):
    table = _src_table()
    at = table.schema.get_field_index("created")
    late = pa.array([datetime(2150, 1, 1, tzinfo=UTC)], pa.timestamp("us", tz="UTC"))
    write_parquet(clean.repo_path / "data/src.parquet", table.set_column(at, "created", late))
    try:
        with pytest.raises(DataSourceError, match=r"driver_id=1: its created time .*outside"):
            clean.materialize(T - timedelta(days=1), NOW, views=["forever"])
        assert read(clean, [1], ["forever:qty"]).statuses["qty"] == ["missing"]
    finally:
        write_parquet(clean.repo_path / "data/src.parquet", _src_table())


# -- aggregated integer sums -----------------------------------------------------------------


def agg_rows(ids, qty, ts=T):
    return {"driver_id": list(ids), "event_timestamp": [ts] * len(ids), "qty": list(qty)}


def totals(store, ids):
    return store.get_online_features(
        ["totals:qty_sum_1d", "totals:qty_sum_1h"], entities={"driver_id": list(ids)}
    )


def test_a_sum_beyond_int64_is_refused_before_anything_is_written(clean):
    with pytest.raises(
        IngestError, match=r"entity driver_id=1.*'qty_sum_1d' would sum beyond Int64"
    ):
        clean.push("agg_push", agg_rows([1, 1], [2**62, 2**62]), to="online_and_offline")
    assert offline_files(clean) == []
    assert totals(clean, [1]).to_dict()["qty_sum_1d"] == [0] or totals(clean, [1]).statuses[
        "qty_sum_1d"
    ] == ["missing"]
    clean.push("agg_push", agg_rows([1, 2], [2**62, 5]), to="online_and_offline")
    with pytest.raises(IngestError, match=r"entity driver_id=1.*beyond Int64"):
        clean.push("agg_push", agg_rows([2, 1], [1, 2**62]), to="online_and_offline")
    assert len(offline_files(clean)) == 1  # only the accepted push
    got = totals(clean, [1, 2, 3])
    assert got.to_dict()["qty_sum_1d"][:2] == [2**62, 5]  # entity 2 untouched by the refusal
    # negatives cancel: the same entity can take more once its total comes back down
    clean.push("agg_push", agg_rows([1], [-(2**62)]))
    clean.push("agg_push", agg_rows([1], [2**62 - 1]))
    assert totals(clean, [1]).to_dict()["qty_sum_1d"] == [2**62 - 1]


def test_events_that_leave_the_short_window_do_not_count_against_it(clean):
    old = NOW - timedelta(hours=2)  # in the 1d window, out of the 1h one
    clean.push("agg_push", agg_rows([1], [2**62], ts=old))
    clean.push("agg_push", agg_rows([1], [2**62 - 2], ts=NOW - timedelta(minutes=5)))
    got = totals(clean, [1]).to_dict()
    # 1d: 2**63 - 2 fits; 1h: only the newer event
    assert got["qty_sum_1d"] == [2**63 - 2] and got["qty_sum_1h"] == [2**62 - 2]
    with pytest.raises(IngestError, match="qty_sum_1d"):
        clean.push("agg_push", agg_rows([1], [2], ts=NOW - timedelta(minutes=1)))


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(qty=st.lists(st.integers(-(2**62), 2**62), min_size=1, max_size=5))
def test_a_push_is_accepted_exactly_when_every_window_sum_fits(clean, qty):
    # one event per push, all at one time: every read sums them all
    clean.teardown()
    clean.online.setup([])
    total, accepted = 0, []
    for q in qty:
        if -(2**63) <= total + q < 2**63:
            clean.push("agg_push", agg_rows([1], [q]))
            total += q
            accepted.append(q)
        else:
            with pytest.raises(IngestError, match="beyond Int64"):
                clean.push("agg_push", agg_rows([1], [q]))
    assert totals(clean, [1]).to_dict()["qty_sum_1d"] == [total]


# -- ignored columns, keys of the wrong type ---------------------------------------------------


def test_columns_no_view_reads_are_reported_as_ignored(clean):
    written = clean.push("push", {**row(), "junk": [1], "note": ["x"]}, to="online_and_offline")
    assert written == 1 and written.ignored_columns == ("junk", "note")
    assert clean.push("push", row()).ignored_columns == ()
    logged = pa.concat_tables(pa.parquet.read_table(p) for p in offline_files(clean))
    assert "junk" not in logged.column_names


@pytest.mark.parametrize("key", ["1", 1.0, True, 2**63, None])
def test_keys_of_the_wrong_type_are_refused_by_reads_and_deletes(clean, key):
    clean.push("push", row())
    with pytest.raises(RetrievalError, match=r"driver_id\[1\]"):
        read(clean, [1, key])
    with pytest.raises(RetrievalError, match=r"driver_id\[1\]"):
        clean.delete_entities("stats", [1, key])
    assert read(clean, [1]).statuses["rate"] == ["present"]  # nothing deleted


# -- rows named in errors --------------------------------------------------------------------


def test_a_bad_value_names_its_row(clean):
    rows = {k: v * 3 for k, v in row().items()}
    rows["driver_id"] = [1, 2, 3]
    rows["rate"] = [0.1, 0.2, "x"]
    with pytest.raises(IngestError, match=r"row 2: column 'rate': 'x' \(str\)"):
        clean.push("push", rows)
    for bad, what in ((None, "is null"), (1700000000, r"is 1700000000 \(int64\), not a time")):
        rows = row()
        rows["event_timestamp"] = [bad]
        with pytest.raises(IngestError, match=f"row 0: 'event_timestamp' {what}"):
            clean.push("push", rows)
    assert_nothing_written(clean, [1, 2, 3])


def test_a_null_request_value_is_refused_naming_the_field(clean):
    from parity import RequestDataError

    clean.push("push", row())
    with pytest.raises(RequestDataError, match="'boost' is null in entity row 1"):
        clean.get_online_features(
            ["boosted:boosted"], entities={"driver_id": [1, 1], "boost": [2.0, None]}
        )
