"""The online contract: every store gives the same answers, by the historical join's rule.

Runs on every store in ``backends.ONLINE_STORES``: add one there and this suite runs on it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from backends import ONLINE_STORES, online_store_yaml, params
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oracle import expected_choices
from parity import FeatureStore, RetrievalError
from parity.ingest import IngestError
from repo_utils import write_repo

T0 = datetime(2024, 1, 1, tzinfo=UTC)
NOW = T0 + timedelta(hours=1)
REDIS_DB = 3  # the test suite's own database number on the shared local Redis

DEFS = """
from datetime import timedelta
from parity import (Entity, FeatureService, FeatureView, Field, FileSource, Float64, Int64,
                    PushSource, String)

driver = Entity(name="driver", join_keys=["driver_id"], dtype=Int64)
route = Entity(name="route", join_keys=["origin", "dest"], dtype=Int64)
driver_src = FileSource(name="driver_src", path="data/driver.parquet",
                        created_timestamp_field="created")
route_src = FileSource(name="route_src", path="data/route.parquet")
driver_push = PushSource(name="driver_push", batch_source=driver_src)

FIELDS = [Field(name="conv_rate", dtype=Float64), Field(name="trips", dtype=Int64),
          Field(name="city", dtype=String)]
driver_stats = FeatureView(name="driver_stats", entities=[driver], source=driver_push,
                           schema=FIELDS, ttl=timedelta(minutes=30))
driver_forever = FeatureView(name="driver_forever", entities=[driver], source=driver_src,
                             schema=[Field(name="city", dtype=String)])
route_stats = FeatureView(name="route_stats", entities=[route], source=route_src,
                          schema=[Field(name="eta", dtype=Float64)], ttl=timedelta(days=1))
svc = FeatureService(name="svc", features=[driver_stats[["conv_rate"]], route_stats])
"""


def driver_table(rows: list[dict]) -> pa.Table:
    ts = pa.timestamp("us", tz="UTC")
    return pa.table(
        {
            "driver_id": pa.array([r["driver_id"] for r in rows], pa.int64()),
            "event_timestamp": pa.array([r["event_timestamp"] for r in rows], ts),
            "created": pa.array([r.get("created") for r in rows], ts),
            "conv_rate": pa.array([r.get("conv_rate") for r in rows], pa.float64()),
            "trips": pa.array([r.get("trips") for r in rows], pa.int64()),
            "city": pa.array([r.get("city") for r in rows], pa.string()),
        }
    )


def online_config(kind: str, request) -> str:
    # The suite reads with a clock fixed in 2024; Redis expires keys by the real clock, so
    # the grace is set far out here and only the reader's ttl rule is under test
    # (tests/unit/online checks that keys get their expiry).
    grace = "expire_grace_seconds: 1000000000"
    return online_store_yaml(kind, request, redis_db=REDIS_DB, extra=grace)


@pytest.fixture(scope="module", params=params("online_store", ONLINE_STORES))
def store(request, tmp_path_factory):
    root = write_repo(tmp_path_factory.mktemp(f"online_{request.param}"), {"features.py": DEFS})
    text = (root / "parity.yaml").read_text()
    (root / "parity.yaml").write_text(
        text + f"online_store: {online_config(request.param, request)}\n"
    )
    set_driver_rows(root, [dict(driver_id=1, event_timestamp=T0)])
    pq.write_table(
        pa.table(
            {
                "origin": pa.array([1, 1], pa.int64()),
                "dest": pa.array([2, 3], pa.int64()),
                "event_timestamp": pa.array([T0, T0], pa.timestamp("us", tz="UTC")),
                "eta": [12.0, 13.0],
            }
        ),
        root / "data/route.parquet",
    )
    fs = FeatureStore(root, clock=lambda: NOW)
    fs.apply()
    yield fs
    fs.teardown()
    fs.close()


@pytest.fixture
def clean(store):
    """The module's store with an empty online store and offline log."""
    import shutil

    store.teardown()
    store.online.setup([])
    shutil.rmtree(store.config.resolve(store.config.offline_log), ignore_errors=True)
    return store


def set_driver_rows(root, rows):
    (root / "data").mkdir(exist_ok=True)
    pq.write_table(driver_table(rows), root / "data/driver.parquet")


def online(store, ids, features=("conv_rate", "trips", "city"), view="driver_stats"):
    resp = store.get_online_features([f"{view}:{f}" for f in features], entities={"driver_id": ids})
    return resp


# -- the parity property: online equals the historical join for a row stamped "now" --------

minute = st.integers(0, 59).map(lambda m: T0 + timedelta(minutes=m))
source_row = st.fixed_dictionaries(
    {
        "driver_id": st.integers(1, 3),
        "event_timestamp": minute,
        "created": st.one_of(st.none(), minute),
        "conv_rate": st.one_of(st.none(), st.integers(0, 99).map(lambda x: x / 100)),
        "trips": st.one_of(st.none(), st.integers(0, 9)),
        "city": st.one_of(st.none(), st.sampled_from(["a", "b"])),
    }
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(rows=st.lists(source_row, max_size=20), split=st.integers(0, 20))
def test_online_equals_historical_at_now(store, rows, split):
    store.teardown()  # each generated case starts from an empty online store
    # Materialize in two windows, in reverse order (newer first), to exercise newer-wins.
    set_driver_rows(store.repo_path, rows)
    middle = T0 + timedelta(minutes=split * 3)
    store.materialize(middle, T0 + timedelta(hours=1))
    store.materialize(T0 - timedelta(days=1), middle)
    ids = [1, 2, 3, 4]
    got = online(store, ids).to_dict()
    features = ["conv_rate", "trips", "city"]
    entity_rows = [{"driver_id": i, "event_timestamp": NOW} for i in ids]
    choices = expected_choices(entity_rows, rows, ["driver_id"], features, timedelta(minutes=30))
    for i, allowed in enumerate(choices):
        row = tuple(got[f][i] for f in features)
        assert row in allowed, f"driver {ids[i]}: online {row}, historical allows {allowed}"
    hist = store.get_historical_features(
        pd.DataFrame(entity_rows), [f"driver_stats:{f}" for f in features]
    )
    assert hist.to_arrow().num_rows == len(ids)


# -- statuses, ttl, response shapes -------------------------------------------------------


def test_status_and_event_time_per_value(clean):
    store = clean
    set_driver_rows(
        store.repo_path,
        [
            dict(
                driver_id=1,
                event_timestamp=NOW - timedelta(minutes=5),
                conv_rate=0.5,
                trips=1,
                city="a",
            ),
            dict(
                driver_id=2,
                event_timestamp=NOW - timedelta(minutes=31),
                conv_rate=0.7,
                trips=2,
                city="b",
            ),
            dict(
                driver_id=3,
                event_timestamp=NOW - timedelta(minutes=30),
                conv_rate=0.9,
                trips=3,
                city="c",
            ),
        ],
    )
    store.materialize(T0 - timedelta(days=1), NOW)
    resp = online(store, [1, 2, 3, 4])
    assert resp.to_dict()["conv_rate"] == [0.5, None, 0.9, None]
    assert resp.statuses["conv_rate"] == ["present", "expired", "present", "missing"]
    stamps = resp.event_timestamps["trips"]
    assert stamps[:3] == [
        NOW - timedelta(minutes=5),
        NOW - timedelta(minutes=31),
        NOW - timedelta(minutes=30),
    ]
    assert stamps[3] is None
    table = resp.to_arrow(include_metadata=True)
    assert table.schema.field("trips").type == pa.int64()
    assert table.column("conv_rate__status").to_pylist()[1] == "expired"
    frame = resp.to_pandas()
    assert list(frame.columns) == ["driver_id", "conv_rate", "trips", "city"]


def test_several_views_and_composite_keys_in_one_call(clean):
    store = clean
    set_driver_rows(store.repo_path, [dict(driver_id=1, event_timestamp=NOW, conv_rate=0.5)])
    store.materialize(T0 - timedelta(days=1), NOW)
    resp = store.get_online_features(
        "svc",
        entity_rows=[
            {"driver_id": 1, "origin": 1, "dest": 3},
            {"driver_id": 2, "origin": 1, "dest": 2},
        ],
    )
    d = resp.to_dict()
    assert d["conv_rate"] == [0.5, None]
    assert d["eta"] == [13.0, 12.0]


def test_bad_entities_are_refused(clean):
    store = clean
    with pytest.raises(RetrievalError, match="driver_id"):
        store.get_online_features(["driver_stats:trips"], entity_rows=[{"driver": 1}])
    with pytest.raises(RetrievalError, match="null"):
        store.get_online_features(["driver_stats:trips"], entities={"driver_id": [None]})
    with pytest.raises(RetrievalError, match="no feature 'speed'"):
        store.get_online_features(["driver_stats:speed"], entities={"driver_id": [1]})


# -- writes: newer wins on every path ----------------------------------------------------


def rows_df(*rows):
    return pd.DataFrame(
        [
            {
                "driver_id": d,
                "event_timestamp": T0 + timedelta(minutes=m),
                "created": None if c is None else T0 + timedelta(minutes=c),
                "conv_rate": v,
                "trips": 1,
                "city": "x",
            }
            for d, m, c, v in rows
        ]
    ).astype({"created": "datetime64[us, UTC]"})


def test_older_write_never_replaces_newer(clean):
    store = clean
    store.write_to_online_store("driver_stats", rows_df((1, 50, 1, 0.5)))
    store.write_to_online_store("driver_stats", rows_df((1, 40, 2, 0.4)))
    assert online(store, [1]).to_dict()["conv_rate"] == [0.5]
    # same event time: the later created wins, whatever the order of writes
    store.write_to_online_store("driver_stats", rows_df((1, 50, 9, 0.9)))
    store.write_to_online_store("driver_stats", rows_df((1, 50, 8, 0.8)))
    assert online(store, [1]).to_dict()["conv_rate"] == [0.9]
    # equal in both: the later write wins
    store.write_to_online_store("driver_stats", rows_df((1, 50, 9, 0.95)))
    assert online(store, [1]).to_dict()["conv_rate"] == [0.95]
    # within one batch too
    store.write_to_online_store(
        "driver_stats", rows_df((2, 55, 1, 0.1), (2, 56, 1, 0.2), (2, 54, 1, 0.3))
    )
    assert online(store, [2]).to_dict()["conv_rate"] == [0.2]
    # a write without a created time is stamped "now": it wins over any earlier created time
    store.write_to_online_store("driver_stats", rows_df((1, 50, None, 0.7)))
    assert online(store, [1]).to_dict()["conv_rate"] == [0.7]


def test_materialize_does_not_overwrite_a_newer_push(clean):
    store = clean
    set_driver_rows(
        store.repo_path,
        [dict(driver_id=1, event_timestamp=T0 + timedelta(minutes=40), conv_rate=0.4)],
    )
    store.push("driver_push", rows_df((1, 50, None, 0.5)), to="online")
    store.materialize(T0, NOW)
    assert online(store, [1]).to_dict()["conv_rate"] == [0.5]


# -- push ---------------------------------------------------------------------------------


def test_push_offline_is_seen_by_historical_queries_and_online_by_reads(clean):
    store = clean
    set_driver_rows(store.repo_path, [dict(driver_id=7, event_timestamp=T0, conv_rate=0.1)])
    entity = pd.DataFrame({"driver_id": [7], "event_timestamp": [NOW]})
    before = (
        store.get_historical_features(entity, ["driver_stats:conv_rate"])
        .to_pandas()
        .conv_rate.tolist()
    )
    assert before == [None] or pd.isna(before[0])
    n = store.push("driver_push", rows_df((7, 45, None, 0.45)), to="offline")
    assert n == 1
    assert online(store, [7]).statuses["conv_rate"] == ["missing"]
    after = store.get_historical_features(entity, ["driver_stats:conv_rate"]).to_pandas()
    assert after.conv_rate.tolist() == [0.45]
    store.push("driver_push", rows_df((7, 55, None, 0.55)), to="online_and_offline")
    assert online(store, [7]).to_dict()["conv_rate"] == [0.55]
    again = store.get_historical_features(entity, ["driver_stats:conv_rate"]).to_pandas()
    assert again.conv_rate.tolist() == [0.55]


def test_push_repeated_key_and_time_later_row_wins_offline_and_online(clean):
    store = clean
    df = rows_df((8, 50, None, 0.1), (8, 50, None, 0.2))
    store.push("driver_push", df, to="online_and_offline")
    entity = pd.DataFrame({"driver_id": [8], "event_timestamp": [NOW]})
    offline = (
        store.get_historical_features(entity, ["driver_stats:conv_rate"])
        .to_pandas()
        .conv_rate.tolist()
    )
    assert offline == [0.2]
    assert online(store, [8]).to_dict()["conv_rate"] == [0.2]


def test_bad_push_names_row_and_column_and_writes_nothing(clean):
    store = clean
    log = store.config.resolve(store.config.offline_log) / "driver_push"
    files_before = sorted(log.glob("*.parquet")) if log.exists() else []
    bad = rows_df((9, 10, None, 0.1), (9, 11, None, 0.2)).astype({"trips": "object"})
    bad.loc[1, "trips"] = "many"
    with pytest.raises(IngestError, match="trips"):
        store.push("driver_push", bad, to="online_and_offline")
    nulls = rows_df((9, 10, None, 0.1), (9, 11, None, 0.2))
    nulls["driver_id"] = pd.array([9, None], dtype="Int64")
    with pytest.raises(IngestError, match="row 1: join key 'driver_id' is null"):
        store.push("driver_push", nulls, to="online_and_offline")
    with pytest.raises(IngestError, match="no column 'city'"):
        store.push("driver_push", rows_df((9, 10, None, 0.1)).drop(columns=["city"]), to="online")
    with pytest.raises(IngestError, match="trips"):
        _float_into_int(store)
    assert online(store, [9]).statuses["conv_rate"] == ["missing"]
    assert (sorted(log.glob("*.parquet")) if log.exists() else []) == files_before


def _float_into_int(store):
    # An Int64 feature fed a float column is refused, naming the column.
    df = pd.DataFrame(
        {
            "driver_id": [9, 9],
            "event_timestamp": [T0, T0],
            "conv_rate": [0.1, 0.2],
            "trips": [1.0, 2.5],
            "city": ["x", "y"],
        }
    )
    store.write_to_online_store("driver_stats", df)


def test_unknown_push_source_and_target(clean):
    with pytest.raises(RetrievalError, match="not a push source"):
        clean.push("driver_src", rows_df((1, 1, None, 0.1)))
    with pytest.raises(RetrievalError, match="to must be"):
        clean.push("driver_push", rows_df((1, 1, None, 0.1)), to="both")


# -- deletion, cleanup, incremental ---------------------------------------------------------


def test_delete_entities(clean):
    store = clean
    store.write_to_online_store("driver_stats", rows_df((1, 50, None, 0.5), (2, 50, None, 0.6)))
    assert store.delete_entities("driver_stats", [1]) == 1
    assert online(store, [1, 2]).statuses["conv_rate"] == ["missing", "present"]
    assert store.delete_entities("driver", [{"driver_id": 2}, 3]) == 1
    assert online(store, [2]).statuses["conv_rate"] == ["missing"]


def test_incremental_continues_from_the_last_window(clean):
    store = clean
    set_driver_rows(
        store.repo_path,
        [
            dict(driver_id=1, event_timestamp=T0 + timedelta(minutes=35), conv_rate=0.1),
            dict(driver_id=2, event_timestamp=T0 + timedelta(minutes=45), conv_rate=0.4),
        ],
    )
    first = store.materialize_incremental(T0 + timedelta(minutes=40), views=["driver_stats"])
    assert first.views[0].start == T0 + timedelta(minutes=40) - timedelta(minutes=30)
    assert first.rows == 1
    second = store.materialize_incremental(T0 + timedelta(minutes=50), views=["driver_stats"])
    assert second.views[0].start == T0 + timedelta(minutes=40)
    assert second.rows == 1
    assert online(store, [1, 2]).to_dict()["conv_rate"] == [0.1, 0.4]
    windows = [(m.start, m.end) for m in store.registry.materializations("driver_stats")]
    assert windows[-2:] == [
        (T0 + timedelta(minutes=10), T0 + timedelta(minutes=40)),
        (T0 + timedelta(minutes=40), T0 + timedelta(minutes=50)),
    ]


def test_removing_a_view_cleans_its_online_data(store):
    store.write_to_online_store("driver_stats", rows_df((5, 50, None, 0.5)))
    set_driver_rows(store.repo_path, [dict(driver_id=5, event_timestamp=NOW, city="z")])
    store.materialize(T0, NOW, views=["driver_forever"])
    keep = [o for o in store.load_repo() if o.name != "driver_forever"]
    store.apply(keep, delete_missing=True)
    from parity.online.base import OnlineView

    gone = OnlineView("driver_forever", ("driver_id",), ("city",), None)
    assert store.online.read([(gone, [b"i5"])]) == [[None]]
    assert online(store, [5]).to_dict()["conv_rate"] == [0.5]
    store.apply()  # put it back for the other tests


def test_timestamp_and_array_features_round_trip(tmp_path):
    """Every value type comes back online as it went in (SQLite: the encoding is shared)."""
    root = write_repo(
        tmp_path / "repo",
        {
            "features.py": """
            from parity import Array, Entity, FeatureView, Field, FileSource, Float32, Int64, Timestamp, Bool, Bytes
            e = Entity(name="e", join_keys=["k"], dtype=Int64)
            src = FileSource(name="s", path="data/s.parquet")
            v = FeatureView(name="v", entities=[e], source=src, schema=[
                Field(name="when", dtype=Timestamp), Field(name="emb", dtype=Array(Float32)),
                Field(name="flag", dtype=Bool), Field(name="raw", dtype=Bytes)])
            """
        },
    )
    when = datetime(2023, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
    (root / "data").mkdir()
    pq.write_table(
        pa.table(
            {
                "k": pa.array([1], pa.int64()),
                "event_timestamp": pa.array([T0], pa.timestamp("us", tz="UTC")),
                "when": pa.array([when], pa.timestamp("us", tz="UTC")),
                "emb": pa.array([[0.5, 1.5]], pa.list_(pa.float32())),
                "flag": [True],
                "raw": [b"\\x00\\xff"],
            }
        ),
        root / "data/s.parquet",
    )
    with FeatureStore(root, clock=lambda: NOW) as fs:
        fs.apply()
        fs.materialize(T0, NOW)
        resp = fs.get_online_features(["v:when", "v:emb", "v:flag", "v:raw"], entities={"k": [1]})
        assert resp.to_dict() == {
            "k": [1],
            "when": [when],
            "emb": [[0.5, 1.5]],
            "flag": [True],
            "raw": [b"\\x00\\xff"],
        }
        table = resp.to_arrow()
        assert table.schema.field("when").type == pa.timestamp("us", tz="UTC")
        assert table.schema.field("emb").type == pa.list_(pa.float32())


# -- read-modify-write (SupportsUpdate: what aggregated views need) -------------------------


def _counter_view():
    from parity.online.base import OnlineView

    return OnlineView("counters", ("k",), ("n",), None)


def _add(step: int):
    def fn(keys, records):
        return [str(int(r or b"0") + step).encode() for r in records]

    return fn


def test_update_creates_changes_and_deletes_records(clean) -> None:
    from parity.online.base import SupportsUpdate

    online = clean.online
    assert isinstance(online, SupportsUpdate)
    view = _counter_view()
    keys = [b"i1", b"i2", b"i3"]
    assert online.update(view, keys, _add(2)) == 3
    assert online.read([(view, keys)]) == [[b"2", b"2", b"2"]]
    online.update(view, keys[:2], _add(5))
    assert online.read([(view, keys)]) == [[b"7", b"7", b"2"]]
    # None deletes; an unchanged record is not written again.
    assert (
        online.update(
            view,
            keys,
            lambda ks, rs: [None if k == b"i1" else r for k, r in zip(ks, rs, strict=True)],
        )
        == 1
    )
    assert online.read([(view, keys)]) == [[None, b"7", b"2"]]


def test_concurrent_updates_lose_nothing(clean) -> None:
    """Four threads add to the same keys at once: every addition lands exactly once (Redis
    retries the keys whose compare-and-set lost, SQLite serializes the transactions)."""
    import threading

    view = _counter_view()
    keys = [b"i%d" % i for i in range(10)]
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(25):
                clean.online.update(view, keys, _add(1))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert clean.online.read([(view, keys)]) == [[b"100"] * 10]
