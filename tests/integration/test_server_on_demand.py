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
    assert r.status_code == 200, r.text
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
