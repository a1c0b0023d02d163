"""The write rules over HTTP, on SQLite and Redis: what breaks an entity is a 400 naming the
row and column (and changes nothing), a read never fails for the other entities, a partial
push says exactly what landed and its retry duplicates nothing, and every failure has the
documented code."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest
from tests.integration.test_server import (
    ONLINE_STORES,
    Server,
    columns,
    error_of,
    make_repo,
    online,
    push_rows,
    teardown,
)

from parity import FeatureStore
from redis_server import RedisServer
from repo_utils import write_parquet

EXTRA = """
from datetime import timedelta
from parity import (Aggregation, FeatureView, Field, FileSource, Float64, Int64, PushSource,
                    RequestSource, on_demand_feature_view)
from live import driver_live

qty_push = PushSource(name="qty_push", batch_source=FileSource(name="qty_batch",
                      path="data/qty.parquet", timestamp_field="event_timestamp"))
qty_totals = FeatureView(name="qty_totals", entities=["driver"], source=qty_push,
                         schema=[Field(name="qty", dtype=Int64)],
                         aggregations=[Aggregation(column="qty", function="sum",
                                                   window=timedelta(days=1))])
rival = FeatureView(name="rival", entities=["driver"], source="driver_stats_source",
                    schema=[Field(name="conv_rate", dtype=Float64)])

@on_demand_feature_view(
    sources=[driver_live[["conv_rate"]],
             RequestSource(name="req", schema=[Field(name="boost", dtype=Float64)])],
    schema=[Field(name="boosted", dtype=Float64)],
)
def boosted(row):
    return {"boosted": (row["conv_rate"] or 0.0) * row["boost"]}
"""


def _repo(root: Path, online_store) -> Path:
    repo = make_repo(root, online_store)
    (repo / "extra.py").write_text(EXTRA)
    write_parquet(
        repo / "data/qty.parquet",
        pa.table({"driver_id": pa.array([1], pa.int64()),
                  "event_timestamp": pa.array([datetime(2024, 1, 1)], pa.timestamp("us", "UTC")),
                  "qty": pa.array([1], pa.int64())}),
    )  # fmt: skip
    with FeatureStore(repo) as store:
        store.apply()
    return repo


@pytest.fixture(
    scope="module", params=ONLINE_STORES, ids=lambda p: "sqlite" if p is None else p["type"]
)
def repo(request, tmp_path_factory) -> Iterator[Path]:
    root = _repo(tmp_path_factory.mktemp("srv_rules") / "repo", request.param)
    yield root
    teardown(root)


@pytest.fixture(scope="module")
def server(repo) -> Iterator[Server]:
    srv = Server(repo)
    yield srv
    assert srv.stop() == 0, srv.output()


def push(server: Server, rows, source="driver_live_push", **more):
    return server.post("/push", {"push_source_name": source, "df": rows, **more})


def now_text(minutes: int = 1) -> str:
    return (datetime.now(UTC) - timedelta(minutes=minutes)).isoformat()


def statuses(server: Server, ids, feature="driver_live:conv_rate"):
    got = columns(online(server, features=[feature], entities={"driver_id": ids}))
    return got[feature.split(":")[1]]["statuses"]


# -- 1. times outside the supported range ---------------------------------------------------


@pytest.mark.parametrize("when", ["9999-12-31T23:59:59Z", "2100-01-01T00:00:00Z",
                                  "1899-12-31T23:59:59Z", "1600-01-01T00:00:00"])  # fmt: skip
def test_times_outside_the_range_are_400_naming_row_and_column(server, when):
    rows = push_rows([7001, 7002], 0.5)
    rows["event_timestamp"][1] = when
    err = error_of(push(server, rows, to="online_and_offline"), 400, "invalid_rows")
    assert "row 1" in err["message"] and "'event_timestamp'" in err["message"]
    assert "1900-01-01 up to 2100-01-01" in err["message"]
    assert statuses(server, [7001, 7002]) == ["NOT_FOUND", "NOT_FOUND"]


def test_a_time_at_the_edges_of_the_range_is_stored(server):
    rows = push_rows([7003], 0.5)
    rows["event_timestamp"] = ["2099-12-31T23:59:59.999999Z"]
    assert push(server, rows).status_code == 200
    got = columns(
        online(server, features=["driver_live:conv_rate"], entities={"driver_id": [7003]})
    )
    assert got["conv_rate"]["event_timestamps"] == ["2099-12-31T23:59:59.999999Z"]


# -- 2. integer sums beyond Int64 --------------------------------------------------------------


def test_a_sum_beyond_int64_is_refused_and_reads_stay_whole(server):
    when = now_text()
    ok = {"driver_id": [7101], "event_timestamp": [when], "qty": [5]}
    assert push(server, ok, "qty_push").status_code == 200
    bad = {"driver_id": [7102, 7102], "event_timestamp": [when, when], "qty": [2**62, 2**62]}
    err = error_of(push(server, bad, "qty_push", to="online_and_offline"), 400, "invalid_rows")
    assert "driver_id=7102" in err["message"] and "qty_sum_1d" in err["message"]
    assert "Int64" in err["message"]
    got = columns(
        online(server, features=["qty_totals:qty_sum_1d"], entities={"driver_id": [7101, 7102]})
    )
    assert got["qty_sum_1d"]["values"] == [5, None]
    assert got["qty_sum_1d"]["statuses"] == ["PRESENT", "NOT_FOUND"]


# -- 3. integers of 2**63 or more ---------------------------------------------------------------


@pytest.mark.parametrize("column", ["driver_id", "avg_daily_trips"])
@pytest.mark.parametrize("value", [2**63, 2**64 - 1, -(2**63) - 1])
def test_integers_beyond_int64_in_a_push_are_400_naming_the_column(server, column, value):
    rows = push_rows([7201, 7202], 0.5)
    rows[column][1] = value
    body = json.dumps({"push_source_name": "driver_live_push", "df": rows})  # any size of int
    err = error_of(server.client.post("/push", content=body), 400, "invalid_rows")
    assert f"'{column}'" in err["message"] and "row 1" in err["message"]


@pytest.mark.parametrize("value", [2**63, 2**64 - 1, 2**64, -(2**63) - 1])
def test_keys_beyond_int64_in_a_read_are_wrong_value_type(server, value):
    body = {"features": ["driver_live:conv_rate"], "entities": {"driver_id": [1, value]}}
    r = server.client.post("/get-online-features", content=json.dumps(body))
    assert "driver_id" in error_of(r, 400, "wrong_value_type")["message"]


# -- 4. nulls and non-finite floats ---------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2])
def test_a_null_feature_value_is_accepted_in_one_row_as_in_many(server, n):
    ids = list(range(7301, 7301 + n))
    rows = push_rows(ids, 0.5)
    rows["conv_rate"] = [None] * n
    r = push(server, rows)
    assert r.status_code == 200, r.text
    got = columns(online(server, features=["driver_live:conv_rate"], entities={"driver_id": ids}))
    assert got["conv_rate"]["values"] == [None] * n


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity", b"1e400"])
def test_json_has_no_non_finite_numbers(server, literal):
    body = (
        b'{"push_source_name": "driver_live_push", "df": {"driver_id": [7401], '
        b'"event_timestamp": ["' + now_text().encode() + b'"], "conv_rate": [' + literal + b"], "
        b'"avg_daily_trips": [1], "city": ["x"]}}'
    )
    error_of(server.client.post("/push", content=body), 400, "malformed_json")
    assert statuses(server, [7401]) == ["NOT_FOUND"]


# -- 5. a push whose online half fails --------------------------------------------------------------


@pytest.fixture(scope="module")
def own_redis(tmp_path_factory) -> Iterator[RedisServer]:
    srv = RedisServer(tmp_path_factory.mktemp("own_redis")).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def fragile(own_redis, tmp_path_factory) -> Iterator[tuple[Server, Path]]:
    repo = _repo(
        tmp_path_factory.mktemp("fragile") / "repo", {"type": "redis", "url": own_redis.url}
    )
    srv = Server(repo)
    yield srv, repo
    assert srv.stop() == 0, srv.output()


def offline_rows(repo: Path, driver_id: int) -> int:
    import pyarrow.parquet as pq

    folder = repo / "data/offline_log/driver_live_push"
    return sum(
        pq.read_table(p).column("driver_id").to_pylist().count(driver_id)
        for p in folder.glob("*.parquet")
    )


def test_a_push_whose_online_write_fails_says_what_landed_and_its_retry_duplicates_nothing(
    fragile, own_redis
):
    server, repo = fragile
    rows = push_rows([7501, 7502], 0.5)
    own_redis.stop()
    try:
        r = push(server, rows, to="online_and_offline")
        err = error_of(r, 503, "online_write_failed")
        assert err["offline_rows"] == 2 and err["online_views_failed"] == ["driver_live"]
        assert err["online_views_written"] == []
        assert "offline log holds the 2 row(s)" in err["message"]
        push_id = err["push_id"]
        assert offline_rows(repo, 7501) == 1
        # retried while the store is still down: the same error, still one offline copy
        again = error_of(push(server, rows, to="online_and_offline", push_id=push_id), 503,
                         "online_write_failed")  # fmt: skip
        assert again["push_id"] == push_id and offline_rows(repo, 7501) == 1
    finally:
        own_redis.start()
    r = push(server, rows, to="online_and_offline", push_id=push_id)
    assert r.status_code == 200, r.text
    assert r.json()["replayed"] is True and r.json()["push_id"] == push_id
    assert offline_rows(repo, 7501) == 1
    assert statuses(server, [7501, 7502]) == ["PRESENT", "PRESENT"]
    # the same push id with other rows is refused, naming the id
    other = push_rows([7501, 7502], 0.75)
    err = error_of(
        push(server, other, to="online_and_offline", push_id=push_id), 400, "invalid_rows"
    )
    assert push_id in err["message"]
    with FeatureStore(repo) as store:  # training data sees the rows once
        import pandas as pd

        entity = pd.DataFrame({"driver_id": [7501], "event_timestamp": [datetime.now(UTC)]})
        hist = store.get_historical_features(entity, ["driver_live:conv_rate"]).to_arrow()
        assert hist.num_rows == 1 and hist.column("conv_rate").to_pylist() == [0.5]


def test_a_store_refusing_a_write_is_online_store_error(fragile, own_redis):
    server, _ = fragile
    import redis

    client = redis.Redis.from_url(own_redis.url)
    client.replicaof("127.0.0.1", 1)  # a replica of nothing: writes are refused, reads answer
    try:
        err = error_of(push(server, push_rows([7601], 0.5)), 503, "online_store_error")
        assert "READONLY" in err["message"] or "read only" in err["message"].lower()
    finally:
        client.replicaof("NO", "ONE")
        client.close()
    assert push(server, push_rows([7601], 0.5)).status_code == 200


# -- 7. error codes -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "features,entities",
    [
        (["driver_live:conv_rate", "rival:conv_rate"], {"driver_id": [1]}),
        (["driver_live:conv_rate", "rival:conv_rate", "boosted:boosted"],
         {"driver_id": [1], "boost": [1.0]}),
        (["driver_live:conv_rate"], {"driver_id": [1], "conv_rate": [1.0]}),
        (["driver_live:conv_rate", "boosted:boosted"],
         {"driver_id": [1], "boost": [1.0], "conv_rate": [1.0]}),
    ],
    ids=["two-views", "two-views-and-odfv", "entity-column", "entity-column-and-odfv"],
)  # fmt: skip
def test_a_feature_name_clash_has_one_code(server, features, entities):
    r = server.post("/get-online-features", {"features": features, "entities": entities})
    assert "conv_rate" in error_of(r, 400, "invalid_feature_reference")["message"]


def test_a_null_request_value_is_400_naming_the_field(server):
    r = server.post(
        "/get-online-features",
        {"features": ["boosted:boosted"], "entities": {"driver_id": [1, 2], "boost": [1.0, None]}},
    )
    message = error_of(r, 400, "missing_request_data")["message"]
    assert "'boost'" in message and "row 1" in message


@pytest.mark.parametrize("bad,what", [(None, "is null"), (1700000000, "not a time")])
def test_a_null_or_integer_timestamp_is_invalid_rows_naming_the_row(server, bad, what):
    rows = push_rows([7701, 7702, 7703], 0.5)
    rows["event_timestamp"][2] = bad
    message = error_of(push(server, rows), 400, "invalid_rows")["message"]
    assert "row 2" in message and what in message


def test_a_type_error_names_its_row(server):
    rows = push_rows([7801, 7802, 7803], 0.5)
    rows["conv_rate"][2] = "fast"
    message = error_of(push(server, rows), 400, "invalid_rows")["message"]
    assert "row 2" in message and "'conv_rate'" in message and "'fast'" in message


# -- 8. extra columns -------------------------------------------------------------------------------


def test_columns_no_view_reads_are_reported_as_ignored(server):
    rows = {**push_rows([7901], 0.5), "note": ["x"], "score": [1]}
    r = push(server, rows)
    assert r.status_code == 200, r.text
    assert r.json()["ignored_columns"] == ["note", "score"]


def test_the_new_codes_are_documented():
    from parity.server.errors import CODES

    readme = (Path(__file__).parents[2] / "README.md").read_text()
    for code in ("online_write_failed", "online_store_error", "too_many_entities"):
        assert code in CODES and f"`{code}`" in readme, code
