"""Aggregated views over HTTP: pushes through the server update the windows at once, reads
equal ``get_online_features``, and an on-demand view reads an aggregated one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.integration.test_server import (
    DRIVERS,
    ONLINE_STORES,
    Server,
    columns,
    make_repo,
    online,
    push_rows,
    teardown,
)

from parity import FeatureStore

AGG = """
from datetime import timedelta
from parity import Aggregation, FeatureView, Field, Float64, on_demand_feature_view
from live import live_push

driver_windows = FeatureView(
    name="driver_windows", entities=["driver"], source=live_push, hop=timedelta(minutes=5),
    aggregations=[
        Aggregation(column="conv_rate", function="sum", window=timedelta(hours=1)),
        Aggregation(function="count", window=timedelta(hours=1), name="events_1h"),
        Aggregation(column="conv_rate", function="last_n", n=3, window=timedelta(hours=1)),
    ],
)


@on_demand_feature_view(
    sources=[driver_windows[["conv_rate_sum_1h", "events_1h"]]],
    schema=[Field(name="mean_conv", dtype=Float64)],
)
def mean_conv(row):
    n = row["events_1h"]
    return {"mean_conv": row["conv_rate_sum_1h"] / n if n else None}
"""
FEATURES = [
    "driver_windows:conv_rate_sum_1h",
    "driver_windows:events_1h",
    "driver_windows:conv_rate_last_3_1h",
    "mean_conv:mean_conv",
]


@pytest.fixture(
    scope="module", params=ONLINE_STORES, ids=lambda p: "sqlite" if p is None else p["type"]
)
def agg_repo(request, tmp_path_factory) -> Iterator[Path]:
    root = make_repo(tmp_path_factory.mktemp("srv_agg") / "repo", request.param)
    (root / "windows.py").write_text(AGG)
    with FeatureStore(root) as store:
        store.apply()
    yield root
    teardown(root)


@pytest.fixture(scope="module")
def agg_server(agg_repo) -> Iterator[Server]:
    srv = Server(agg_repo)
    yield srv
    assert srv.stop() == 0, srv.output()


def test_pushes_update_windows_and_reads_match_the_store(agg_server, agg_repo):
    for conv in (0.5, 1.5):
        r = agg_server.post(
            "/push", {"push_source_name": "driver_live_push", "df": push_rows(DRIVERS, conv)}
        )
        assert r.status_code == 200, r.text
    entities = {"driver_id": [*DRIVERS[:2], 9]}
    got = columns(online(agg_server, features=FEATURES, entities=entities))
    # driver 1001 got 0.5 and 1.5 (first row of each push), 1002 got 1.5 and 2.5; 9 none.
    assert got["events_1h"]["values"] == [2, 2, 0]
    assert got["conv_rate_sum_1h"]["values"] == [2.0, 4.0, None]
    assert got["conv_rate_sum_1h"]["statuses"] == ["PRESENT", "PRESENT", "NOT_FOUND"]
    assert got["conv_rate_last_3_1h"]["values"][0] == [1.5, 0.5]
    assert got["mean_conv"]["values"] == [1.0, 2.0, None]
    with FeatureStore(agg_repo) as store:
        expected = store.get_online_features(FEATURES, entities=entities).to_dict()
    for name in ("conv_rate_sum_1h", "events_1h", "conv_rate_last_3_1h", "mean_conv"):
        assert got[name]["values"] == expected[name], name
