"""On-demand features over HTTP: request data comes as extra ``entities`` columns (as in the
incumbent's feature server), the answer equals ``get_online_features``, errors have codes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.integration.test_server import (
    DRIVERS,
    ONLINE_STORES,
    Server,
    assert_same_as_store,
    columns,
    error_of,
    make_repo,
    online,
    push_rows,
    teardown,
)

from parity import FeatureStore

ODFV = """
from parity import Field, Float64, Int64, RequestSource, on_demand_feature_view
from live import driver_live


@on_demand_feature_view(
    sources=[driver_live[["conv_rate"]], RequestSource(name="req", schema=[Field(name="val_to_add", dtype=Int64)])],
    schema=[Field(name="conv_plus_val", dtype=Float64)],
)
def conv_plus(row):
    if row["val_to_add"] == 13:
        raise ValueError("unlucky")
    if row["conv_rate"] is None:
        return {"conv_plus_val": None}
    return {"conv_plus_val": row["conv_rate"] + row["val_to_add"]}
"""


@pytest.fixture(
    scope="module", params=ONLINE_STORES, ids=lambda p: "sqlite" if p is None else p["type"]
)
def od_repo(request, tmp_path_factory) -> Iterator[Path]:
    root = make_repo(tmp_path_factory.mktemp("srv_od") / "repo", request.param)
    (root / "odfv.py").write_text(ODFV)
    with FeatureStore(root) as store:
        store.apply()
    yield root
    teardown(root)


@pytest.fixture(scope="module")
def od_server(od_repo) -> Iterator[Server]:
    srv = Server(od_repo)
    r = srv.post("/push", {"push_source_name": "driver_live_push", "df": push_rows(DRIVERS, 0.5)})
    assert r.status_code == 200, f"{r.text}\n{srv.output()}"
    yield srv
    assert srv.stop() == 0, srv.output()


def test_request_data_in_entities(od_server, od_repo):
    body = {
        "features": ["conv_plus:conv_plus_val", "driver_live:conv_rate"],
        "entities": {"driver_id": [1001, 1002, 9], "val_to_add": [1, 2, 3]},
    }
    answer = online(od_server, **body)
    got = columns(answer)
    assert got["conv_plus_val"]["values"] == [1.5, 3.5, None]
    assert got["conv_plus_val"]["statuses"] == ["PRESENT", "PRESENT", "NOT_FOUND"]
    assert got["val_to_add"]["values"] == [1, 2, 3]
    with FeatureStore(od_repo) as store:
        assert_same_as_store(
            answer, store.get_online_features(body["features"], entities=body["entities"])
        )


def test_errors_have_codes(od_server):
    r = od_server.post(
        "/get-online-features",
        {"features": ["conv_plus:conv_plus_val"], "entities": {"driver_id": [1001]}},
    )
    assert "val_to_add" in error_of(r, 400, "missing_request_data")["message"]
    r = od_server.post(
        "/get-online-features",
        {"features": ["conv_plus:conv_plus_val"], "entities": {"val_to_add": [1]}},
    )
    error_of(r, 400, "missing_join_key")
    r = od_server.post(
        "/get-online-features",
        {"features": ["conv_plus:nope"], "entities": {"driver_id": [1001], "val_to_add": [1]}},
    )
    error_of(r, 400, "unknown_feature")  # as for a feature view's unknown feature
    r = od_server.post(
        "/get-online-features",
        {
            "features": ["conv_plus:conv_plus_val"],
            "entities": {"driver_id": [1001], "val_to_add": [13]},
        },
    )
    err = error_of(r, 500, "transformation_failed")
    assert "conv_plus" in err["message"] and "ValueError: unlucky" in err["message"]


def test_on_demand_views_are_listed_with_their_kind(od_server, od_repo):
    listed = od_server.client.get("/feature-views").json()["feature_views"]
    with FeatureStore(od_repo) as store:
        catalog = store.catalog()
        expected = [{"kind": "feature_view", **v.to_spec()} for v in catalog.views()] + [
            {"kind": "on_demand_feature_view", **v.to_spec()} for v in catalog.on_demand_views()
        ]
    assert listed == expected
    assert [v["name"] for v in listed if v["kind"] == "on_demand_feature_view"] == ["conv_plus"]
    one = od_server.client.get("/feature-views/conv_plus")
    assert one.status_code == 200 and one.json() == expected[-1]


def test_an_on_demand_view_cannot_be_written(od_server):
    rows = {"driver_id": [1001], "event_timestamp": ["2024-01-01T00:00:00"], "conv_plus_val": [1.0]}
    r = od_server.post("/write-to-online-store", {"feature_view_name": "conv_plus", "df": rows})
    err = error_of(r, 400, "view_not_writable")
    assert "on-demand" in err["message"] and "conv_plus" in err["message"]
