"""The incumbent's SDK (Feast 0.67), unmodified, against ``parity serve``.

A Feast repo in tmp (``online_store: {type: remote, path: <parity serve>}``, a file offline
store over a seeded parquet) and the equivalent Parity repo, written by hand over the same
parquet, both applied. One ``parity serve --errors feast`` per online store for the module.
The SDK is driven in-process for every call its users make (``get_online_features`` by
references, by a service and with ``full_feature_names``; ``push``; ``write_to_online_store``;
``materialize``; ``materialize_incremental``) and its CLI's ``get-online-features`` as a
subprocess; each answer is checked against what Parity's own ``FeatureStore`` reads, and
what was written against the rows the test wrote (the parquet's, for materializations).

The view's source names its times ``event_ts`` / ``created_ts``: the SDK always sends them
as ``event_timestamp`` / ``created``, which the server must map.
"""

from __future__ import annotations

import json
import subprocess
import textwrap
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from tests.integration.test_server import BIN, Server, wait_for

from feast_sdk import import_feast
from parity import FeatureStore as ParityStore

DRIVERS = [1001, 1002, 1003, 1004, 1005]
NOW = datetime.now(UTC).replace(microsecond=0)
HOURS = 6
REDIS_DB = 12  # this module's own database on the shared local Redis (keys under a prefix)
ONLINE_STORES = ["sqlite", "redis"]
FEATURES = [
    "driver_hourly_stats:conv_rate",
    "driver_hourly_stats:acc_rate",
    "driver_hourly_stats:avg_daily_trips",
]

FEAST_DEFS = """
from datetime import timedelta

from feast import Entity, FeatureService, FeatureView, Field, FileSource, PushSource, ValueType
from feast.types import Float64, Int64

driver = Entity(name="driver", join_keys=["driver_id"], value_type=ValueType.INT64)
stats_source = FileSource(
    name="driver_stats_source",
    path="PARQUET",
    timestamp_field="event_ts",
    created_timestamp_column="created_ts",
)
stats_push = PushSource(name="driver_stats_push", batch_source=stats_source)
schema = [
    Field(name="conv_rate", dtype=Float64),
    Field(name="acc_rate", dtype=Float64),
    Field(name="avg_daily_trips", dtype=Int64),
]
driver_hourly_stats = FeatureView(
    name="driver_hourly_stats",
    entities=[driver],
    ttl=timedelta(days=2),
    schema=schema,
    source=stats_push,
)
feast_only = FeatureView(  # known to Feast's registry, never applied to Parity
    name="feast_only", entities=[driver], ttl=timedelta(days=2), schema=schema,
    source=stats_source,
)
driver_activity = FeatureService(
    name="driver_activity", features=[driver_hourly_stats[["conv_rate", "avg_daily_trips"]]]
)
"""

PARITY_DEFS = """
from datetime import timedelta

from parity import Entity, FeatureService, FeatureView, Field, FileSource, Float64, Int64, PushSource

driver = Entity(name="driver", join_keys=["driver_id"], dtype=Int64)
stats_source = FileSource(
    name="driver_stats_source",
    path="PARQUET",
    timestamp_field="event_ts",
    created_timestamp_field="created_ts",
)
stats_push = PushSource(name="driver_stats_push", batch_source=stats_source)
driver_hourly_stats = FeatureView(
    name="driver_hourly_stats",
    entities=[driver],
    ttl=timedelta(days=2),
    schema=[
        Field(name="conv_rate", dtype=Float64),
        Field(name="acc_rate", dtype=Float64),
        Field(name="avg_daily_trips", dtype=Int64),
    ],
    source=stats_push,
)
driver_activity = FeatureService(
    name="driver_activity", features=[driver_hourly_stats[["conv_rate", "avg_daily_trips"]]]
)
"""


def seed_rows() -> pd.DataFrame:
    """HOURS hourly rows per driver ending an hour ago; values exact in binary (x / 8)."""
    rows = []
    for h in range(HOURS):
        for i, d in enumerate(DRIVERS):
            when = NOW - timedelta(hours=HOURS - h)
            rows.append(
                {
                    "driver_id": d,
                    "event_ts": when,
                    "created_ts": when + timedelta(minutes=1),
                    "conv_rate": (h * 5 + i) / 8,
                    "acc_rate": (i + 1) / 8,
                    "avg_daily_trips": 100 * h + i,
                }
            )
    return pd.DataFrame(rows)


# -- the two repos and the server ---------------------------------------------------------------
def online_yaml(kind: str) -> str:
    if kind == "sqlite":
        return "{ type: sqlite, path: data/online.db }"
    prefix = f"parity_feast_{uuid.uuid4().hex[:10]}:"
    return f"{{ type: redis, url: 'redis://127.0.0.1:6379/{REDIS_DB}', key_prefix: '{prefix}' }}"


def make_parity_repo(root: Path, parquet: Path, online: str) -> Path:
    root.mkdir(parents=True)
    (root / "parity.yaml").write_text(
        f"project: feast_compat\nregistry: data/registry.db\nonline_store: {online}\n"
        "server: { errors: feast }\n"
    )
    (root / "features.py").write_text(PARITY_DEFS.replace("PARQUET", str(parquet)))
    with ParityStore(root) as store:
        store.apply()
    return root


def make_feast_repo(root: Path, parquet: Path, url: str) -> Path:
    root.mkdir(parents=True)
    (root / "data").mkdir()
    (root / "feature_store.yaml").write_text(
        textwrap.dedent(
            f"""\
            project: feast_compat
            registry: data/registry.db
            provider: local
            online_store:
              type: remote
              path: {url}
            offline_store:
              type: file
            entity_key_serialization_version: 3
            """
        )
    )
    (root / "features.py").write_text(FEAST_DEFS.replace("PARQUET", str(parquet)))
    result = subprocess.run(
        [str(BIN / "feast"), "-c", str(root), "apply"], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return root


@pytest.fixture(scope="module", params=ONLINE_STORES)
def setup(request: pytest.FixtureRequest, tmp_path_factory: Any) -> Iterator[dict[str, Any]]:
    import_feast("feast", "feast.errors", "feast.data_source")  # before any server starts
    base = tmp_path_factory.mktemp(f"feast_{request.param}")
    parquet = base / "driver_stats.parquet"
    rows = seed_rows()
    rows.to_parquet(parquet, index=False)
    parity_repo = make_parity_repo(base / "parity", parquet, online_yaml(request.param))
    server = Server(parity_repo)
    try:
        feast_repo = make_feast_repo(base / "feast", parquet, server.url)
        yield {"server": server, "parity": parity_repo, "feast": feast_repo, "rows": rows}
    finally:
        code = server.stop()
        with ParityStore(parity_repo) as store:  # Redis keys outlive the tmp folder
            store.teardown()
        assert code == 0, server.output()


@pytest.fixture(scope="module")
def feast(setup: dict[str, Any]) -> Iterator[Any]:
    from feast import FeatureStore

    store = FeatureStore(repo_path=str(setup["feast"]))
    yield store


@pytest.fixture(scope="module")
def parity(setup: dict[str, Any]) -> Iterator[ParityStore]:
    with ParityStore(setup["parity"]) as store:
        yield store


# -- helpers ------------------------------------------------------------------------------------
def parity_read(parity: ParityStore, features: Any, ids: list[int], full: bool = False) -> dict:
    resp = parity.get_online_features(
        features, entities={"driver_id": ids}, full_feature_names=full
    )
    return resp.to_dict()


def latest(rows: pd.DataFrame, start: datetime, end: datetime) -> dict[int, dict[Any, Any]]:
    """Per driver, the row with the latest event time in [start, end] (ties: created)."""
    window = rows[(rows.event_ts >= start) & (rows.event_ts <= end)]
    best = window.sort_values(["event_ts", "created_ts"]).groupby("driver_id").tail(1)
    return {int(r["driver_id"]): r for r in best.to_dict("records")}


def frame(ids: list[int], conv: float, when: datetime) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "driver_id": ids,
            "event_ts": [when] * len(ids),
            "created_ts": [when] * len(ids),
            "conv_rate": [conv + i / 8 for i in range(len(ids))],
            "acc_rate": [0.25] * len(ids),
            "avg_daily_trips": [7 + i for i in range(len(ids))],
        }
    )


# -- reads --------------------------------------------------------------------------------------
def test_materialize_through_the_sdk_then_reads_equal_parity(feast, parity, setup):
    start, end = NOW - timedelta(hours=HOURS + 1), NOW - timedelta(hours=3)
    feast.materialize(start, end, feature_views=["driver_hourly_stats"])
    want = latest(setup["rows"], start, end)
    got = parity_read(parity, FEATURES, DRIVERS)
    assert got["conv_rate"] == [want[d]["conv_rate"] for d in DRIVERS]
    assert got["avg_daily_trips"] == [want[d]["avg_daily_trips"] for d in DRIVERS]
    stamps = parity.get_online_features(FEATURES, entities={"driver_id": DRIVERS}).event_timestamps[
        "conv_rate"
    ]
    assert stamps == [want[d]["event_ts"].to_pydatetime() for d in DRIVERS]

    # by references, with a key Parity has no record for
    ids = [*DRIVERS, 9999]
    sdk = feast.get_online_features(FEATURES, entity_rows=[{"driver_id": d} for d in ids])
    assert sdk.to_dict() == parity_read(parity, FEATURES, ids)
    # a feature service, full feature names
    service = feast.get_feature_service("driver_activity")
    sdk = feast.get_online_features(
        service, entity_rows=[{"driver_id": d} for d in ids], full_feature_names=True
    )
    expected = parity_read(parity, "driver_activity", ids, full=True)
    assert sdk.to_dict() == expected
    assert "driver_hourly_stats__conv_rate" in expected


def test_materialize_incremental_through_the_sdk(feast, parity, setup):
    feast.materialize_incremental(NOW, feature_views=["driver_hourly_stats"])
    want = latest(setup["rows"], NOW - timedelta(days=30), NOW)
    got = parity_read(parity, FEATURES, DRIVERS)
    assert got["conv_rate"] == [want[d]["conv_rate"] for d in DRIVERS]
    assert got["acc_rate"] == [want[d]["acc_rate"] for d in DRIVERS]
    sdk = feast.get_online_features(FEATURES, entity_rows=[{"driver_id": d} for d in DRIVERS])
    assert sdk.to_dict() == got


def test_the_feast_cli_reads_with_a_string_key(setup, parity):
    result = subprocess.run(
        [
            str(BIN / "feast"),
            "-c",
            str(setup["feast"]),
            "get-online-features",
            "-f",
            "driver_hourly_stats:conv_rate",
            "-f",
            "driver_hourly_stats:avg_daily_trips",
            "-e",
            "driver_id=1001",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    printed = json.loads(result.stdout[result.stdout.index("{") :])
    expected = parity_read(
        parity, ["driver_hourly_stats:conv_rate", "driver_hourly_stats:avg_daily_trips"], [1001]
    )
    assert printed == expected
    assert printed["conv_rate"][0] is not None


def test_python_refuses_a_string_key_that_http_converts(parity, setup):
    from parity.errors import RetrievalError

    for rows in ({"entities": {"driver_id": [1001, "1002"]}},
                 {"entity_rows": [{"driver_id": 1001}, {"driver_id": "1002"}]}):  # fmt: skip
        with pytest.raises(RetrievalError) as caught:
            parity.get_online_features(FEATURES, **rows)
        message = str(caught.value)
        assert "driver_id[1] (row 1)" in message and "'1002' (str)" in message
        assert "Int64" in message
    for bad in (1002.0, True, b"1002"):
        with pytest.raises(RetrievalError, match=r"driver_id\[0\] \(row 0\)"):
            parity.get_online_features(FEATURES, entities={"driver_id": [bad]})
    r = setup["server"].post(
        "/get-online-features", {"features": FEATURES, "entities": {"driver_id": ["1002"]}}
    )
    assert r.status_code == 200
    got = dict(zip(r.json()["metadata"]["feature_names"], r.json()["results"], strict=True))
    expected = parity_read(parity, FEATURES, [1002])
    assert {k: v["values"] for k, v in got.items()} == expected


# -- writes -------------------------------------------------------------------------------------
def test_push_through_the_sdk(feast, parity):
    from feast.data_source import PushMode

    when = NOW - timedelta(minutes=5)
    df = frame([1001, 1002], 3.0, when)
    feast.push("driver_stats_push", df, to=PushMode.ONLINE)
    resp = parity.get_online_features(FEATURES, entities={"driver_id": [1001, 1002]})
    got = resp.to_dict()
    assert got["conv_rate"] == df.conv_rate.tolist()
    assert got["avg_daily_trips"] == df.avg_daily_trips.tolist()
    assert resp.event_timestamps["conv_rate"] == [when, when]
    sdk = feast.get_online_features(
        FEATURES, entity_rows=[{"driver_id": 1001}, {"driver_id": 1002}]
    )
    assert sdk.to_dict() == got


def test_write_to_online_store_through_the_sdk(feast, parity):
    when = NOW - timedelta(minutes=2)
    df = frame([1003], 5.5, when)
    feast.write_to_online_store("driver_hourly_stats", df)
    resp = parity.get_online_features(FEATURES, entities={"driver_id": [1003]})
    assert resp.to_dict()["conv_rate"] == [5.5]
    assert resp.to_dict()["avg_daily_trips"] == [7]
    assert resp.event_timestamps["conv_rate"] == [when]
    sdk = feast.get_online_features(FEATURES, entity_rows=[{"driver_id": 1003}])
    assert sdk.to_dict() == resp.to_dict()


def test_a_null_feature_value_reads_as_null(feast, parity, setup):
    df = frame([1004], 1.0, NOW - timedelta(minutes=1))
    df["acc_rate"] = [None]
    feast.write_to_online_store("driver_hourly_stats", df)
    resp = parity.get_online_features(FEATURES, entities={"driver_id": [1004]})
    assert resp.to_dict()["acc_rate"] == [None] and resp.statuses["acc_rate"] == ["present"]
    r = setup["server"].post(
        "/get-online-features", {"features": FEATURES, "entities": {"driver_id": [1004]}}
    )
    by_name = dict(zip(r.json()["metadata"]["feature_names"], r.json()["results"], strict=True))
    assert by_name["acc_rate"]["statuses"] == ["NULL_VALUE"]
    assert by_name["conv_rate"]["statuses"] == ["PRESENT"]
    sdk = feast.get_online_features(FEATURES, entity_rows=[{"driver_id": 1004}]).to_dict()
    assert sdk["acc_rate"] == [None] and sdk["conv_rate"] == resp.to_dict()["conv_rate"]


# -- failures, as the SDK sees them -------------------------------------------------------------
def test_a_view_parity_does_not_know_raises_the_feast_class(feast):
    from feast.errors import FeatureViewNotFoundException

    with pytest.raises(FeatureViewNotFoundException) as caught:
        feast.get_online_features(["feast_only:conv_rate"], entity_rows=[{"driver_id": 1001}])
    assert "feast_only" in str(caught.value)
    assert "unknown_feature_view" in str(caught.value)


def test_a_bad_row_pushed_raises_and_writes_nothing(feast, parity):
    from feast.data_source import PushMode
    from feast.errors import FeastError

    before = parity.get_online_features(FEATURES, entities={"driver_id": [1005]}).to_dict()
    df = frame([1005, 1005], 9.0, NOW - timedelta(seconds=30))
    df["event_ts"] = [NOW - timedelta(seconds=30), datetime(2150, 1, 1, tzinfo=UTC)]
    with pytest.raises(FeastError) as caught:  # Parity's range: 1900 up to 2100
        feast.push("driver_stats_push", df, to=PushMode.ONLINE)
    assert type(caught.value) is FeastError
    assert "invalid_rows" in str(caught.value) and "row 1" in str(caught.value)
    after = parity.get_online_features(FEATURES, entities={"driver_id": [1005]}).to_dict()
    assert after == before


def test_errors_keep_parity_s_shape_when_asked(setup):
    server = setup["server"]
    body = {"features": ["feast_only:conv_rate"], "entities": {"driver_id": [1001]}}
    r = server.post("/get-online-features", body)  # the server's setting: feast
    assert r.status_code == 404
    detail = json.loads(r.json())
    assert detail["module"] == "feast.errors"
    assert detail["class"] == "FeatureViewNotFoundException"
    assert r.headers["x-parity-error-code"] == "unknown_feature_view"
    assert r.headers["x-request-id"] in detail["message"]
    r = server.post("/get-online-features", body, headers={"X-Parity-Errors": "parity"})
    assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_feature_view"


# -- materializing on the server ----------------------------------------------------------------
def test_async_materialize_is_followed_to_its_end(setup, parity):
    server = setup["server"]
    start, end = NOW - timedelta(hours=HOURS + 1), NOW - timedelta(hours=HOURS - 1)
    body = {"start_ts": start.isoformat(), "end_ts": end.isoformat()}
    r = server.post("/materialize?async=true", body)
    assert r.status_code == 202, r.text
    accepted = r.json()
    assert accepted["status"] == "accepted"
    assert accepted["feature_views"] == ["driver_hourly_stats"]
    url = f"/materializations/{accepted['id']}"
    assert accepted["url"] == url == r.headers["location"]
    states = []

    def done() -> bool:
        job = server.client.get(url).json()
        states.append(job["state"])
        return job["state"] in ("succeeded", "failed")

    before = parity_read(parity, FEATURES, DRIVERS)
    wait_for(done, f"job {accepted['id']} to finish", server.output)
    job = server.client.get(url).json()
    assert job["state"] == "succeeded", job
    assert set(states) <= {"queued", "running", "succeeded"}
    want = latest(setup["rows"], start, end)
    (view,) = job["views"]
    assert view["feature_view"] == "driver_hourly_stats" and view["state"] == "succeeded"
    assert view["rows"] == len(want) == job["rows"]
    assert view["stored"] == 0  # older than what is stored: nothing replaced
    assert parity_read(parity, FEATURES, DRIVERS) == before
    listed = server.client.get("/materializations").json()["materializations"]
    assert listed[0]["id"] == accepted["id"]


def test_sync_materialize_answers_each_view(setup, parity):
    server = setup["server"]
    r = server.post("/materialize", {"disable_event_timestamp": True})
    assert r.status_code == 200, r.text
    (view,) = r.json()["views"]
    assert view["feature_view"] == "driver_hourly_stats"
    assert view["start"] == "1900-01-01T00:00:00Z"
    assert datetime.fromisoformat(view["end"]) >= NOW
    assert view["rows"] == len(DRIVERS)
    # 1005 holds the parquet's latest row (the other drivers were pushed newer ones since)
    want = latest(setup["rows"], NOW - timedelta(days=30), NOW)[1005]
    got = parity_read(parity, FEATURES, [1005])
    assert got["conv_rate"] == [want["conv_rate"]] and got["acc_rate"] == [want["acc_rate"]]


def test_writing_to_an_unknown_view_is_refused(setup):
    rows = {"driver_id": [1], "event_timestamp": [NOW.isoformat()], "conv_rate": [0.5]}
    r = setup["server"].post(
        "/write-to-online-store",
        {"feature_view_name": "nope", "df": rows},
        headers={"X-Parity-Errors": "parity"},
    )
    assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_feature_view"
    assert "nope" in r.json()["error"]["message"]
