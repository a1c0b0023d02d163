"""Every time Parity stores (``parity.clock``: 1900-01-01 <= t < 2100-01-01 UTC) on every
online store: written, read back exactly, expired by the reader's rule, newest-wins.

Runs on every store in ``backends.ONLINE_STORES``, for views without a ttl and with a ttl
of 1 s, 10 years and 200 years, and for an aggregated view. Redis keeps its default grace
here (1 h), so a record whose ttl ran out long before the real clock's now is written as
"already expired" (kept for the grace, then reclaimed) rather than refused.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from backends import ONLINE_STORES, online_store_yaml, params
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parity import FeatureStore
from parity.clock import MAX_TIME, MAX_US, MIN_TIME, MIN_US
from parity.online.encoding import from_micros, to_micros
from repo_utils import write_repo

REDIS_DB = 11  # this suite's own database number on the shared local Redis
US = timedelta(microseconds=1)
TTLS = {
    "ttl_none": None,
    "ttl_1s": timedelta(seconds=1),
    "ttl_10y": timedelta(days=3650),
    "ttl_200y": timedelta(days=73_000),
}
WINDOW = timedelta(hours=1)

DEFS = """
from datetime import timedelta
from parity import (Aggregation, Entity, FeatureView, Field, FileSource, Float64, Int64,
                    PushSource)

driver = Entity(name="driver", join_keys=["driver_id"], dtype=Int64)
src = FileSource(name="src", path="data/driver.parquet", created_timestamp_field="created")
push = PushSource(name="push", batch_source=src)
FIELDS = [Field(name="rate", dtype=Float64), Field(name="trips", dtype=Int64)]
ttl_none = FeatureView(name="ttl_none", entities=[driver], source=push, schema=FIELDS)
ttl_1s = FeatureView(name="ttl_1s", entities=[driver], source=push, schema=FIELDS,
                     ttl=timedelta(seconds=1))
ttl_10y = FeatureView(name="ttl_10y", entities=[driver], source=push, schema=FIELDS,
                      ttl=timedelta(days=3650))
ttl_200y = FeatureView(name="ttl_200y", entities=[driver], source=push, schema=FIELDS,
                       ttl=timedelta(days=73000))
agg = FeatureView(name="agg", entities=[driver], source=push, aggregations=[
    Aggregation(function="count", window=timedelta(hours=1)),
    Aggregation(column="trips", function="sum", window=timedelta(hours=1)),
])
"""

TS = pa.timestamp("us", tz="UTC")
CLOCK = [datetime(2024, 1, 1, tzinfo=UTC)]


def rows(*items: tuple[int, datetime, datetime, float, int]) -> pa.Table:
    """(driver_id, event time, created time, rate, trips) rows as a push takes them."""
    return pa.table(
        {
            "driver_id": pa.array([r[0] for r in items], pa.int64()),
            "event_timestamp": pa.array([r[1] for r in items], TS),
            "created": pa.array([r[2] for r in items], TS),
            "rate": pa.array([r[3] for r in items], pa.float64()),
            "trips": pa.array([r[4] for r in items], pa.int64()),
        }
    )


@pytest.fixture(scope="module", params=params("online_times", ONLINE_STORES))
def store(request, tmp_path_factory):
    root = write_repo(tmp_path_factory.mktemp(f"times_{request.param}"), {"features.py": DEFS})
    online = online_store_yaml(request.param, request, redis_db=REDIS_DB)
    (root / "parity.yaml").write_text(
        (root / "parity.yaml").read_text() + f"online_store: {online}\n"
    )
    (root / "data").mkdir(exist_ok=True)
    pq.write_table(rows((0, MIN_TIME, MIN_TIME, 0.0, 0)), root / "data/driver.parquet")
    fs = FeatureStore(root, clock=lambda: CLOCK[0])
    fs.apply()
    yield fs
    fs.teardown()
    fs.close()


def read(store: FeatureStore, view: str, ids: list[int], now: datetime):
    CLOCK[0] = now
    return store.get_online_features([f"{view}:rate", f"{view}:trips"], entities={"driver_id": ids})


def expected_status(event: datetime, ttl: timedelta | None, now: datetime) -> str:
    """The reader's rule: expired when the event is older than now minus the ttl."""
    if ttl is not None and to_micros(event) < to_micros(now) - ttl // US:
        return "expired"
    return "present"


EXTREMES = [
    MIN_TIME,
    MIN_TIME + US,
    datetime(1969, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),  # the µs before the epoch
    datetime(1970, 1, 1, tzinfo=UTC),
    datetime(2038, 1, 19, 3, 14, 8, tzinfo=UTC),  # past 2**31 seconds
    MAX_TIME - timedelta(days=1),
    MAX_TIME - US,  # 2099-12-31T23:59:59.999999
]


@pytest.mark.parametrize("view", list(TTLS))
def test_extremes_of_the_range_read_back_exactly(store, view):
    ttl = TTLS[view]
    store.teardown()
    store.online.setup([])
    items = [(i, t, t, float(i) / 4, i) for i, t in enumerate(EXTREMES)]
    assert store.push("push", rows(*items), to="online") == len(items)
    ids = list(range(len(EXTREMES)))
    for now in (MIN_TIME, datetime(2024, 1, 1, tzinfo=UTC), MAX_TIME - US, MAX_TIME):
        resp = read(store, view, ids, now)
        got = resp.to_dict()
        for i, t in enumerate(EXTREMES):
            status = expected_status(t, ttl, now)
            where = f"{view}, event {t.isoformat()}, now {now.isoformat()}"
            assert resp.statuses["rate"][i] == status, where
            assert resp.event_timestamps["rate"][i] == t, where
            assert got["rate"][i] == (float(i) / 4 if status == "present" else None), where
            assert got["trips"][i] == (i if status == "present" else None), where


@pytest.mark.parametrize("view", list(TTLS))
def test_a_later_write_replaces_an_extreme_one(store, view):
    store.teardown()
    store.online.setup([])
    top, bottom = MAX_TIME - US, MIN_TIME
    now = MAX_TIME - US
    # The newest possible record, then the same times again: the later write wins.
    store.push("push", rows((1, top, top, 1.0, 1)), to="online")
    store.push("push", rows((1, top, top, 2.0, 2)), to="online")
    # The oldest possible record, then one a µs newer (by its created time, then its event).
    store.push("push", rows((2, bottom, bottom, 1.0, 1)), to="online")
    store.push("push", rows((2, bottom, bottom + US, 2.0, 2)), to="online")
    store.push("push", rows((3, bottom, top, 1.0, 1)), to="online")
    store.push("push", rows((3, bottom + US, bottom, 2.0, 2)), to="online")
    # An older record never replaces the newest one.
    store.push("push", rows((4, top, top, 2.0, 2)), to="online")
    store.push("push", rows((4, top - US, top, 1.0, 1)), to="online")
    store.push("push", rows((4, top, top - US, 1.0, 1)), to="online")
    stamps = read(store, view, [1, 2, 3, 4], now).event_timestamps["trips"]
    assert stamps == [top, bottom, bottom + US, top], view
    # Read at a now where each record is fresh: the values are the newest writes'.
    for i, stamp in zip([1, 2, 3, 4], stamps, strict=True):
        one = read(store, view, [i], stamp)
        assert one.to_dict()["trips"] == [2], f"{view}: driver {i}"
        assert one.statuses["trips"] == ["present"], f"{view}: driver {i}"


times = st.integers(MIN_US, MAX_US - 1).map(from_micros)
edge_times = st.sampled_from(EXTREMES)
any_time = st.one_of(times, edge_times)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    view=st.sampled_from(list(TTLS)),
    writes=st.lists(st.tuples(any_time, any_time), min_size=1, max_size=4),
    now=st.one_of(any_time, st.sampled_from([MIN_TIME, MAX_TIME])),
)
def test_any_time_in_range_round_trips_with_newest_wins(store, view, writes, now):
    """Several pushes of one entity at drawn (event, created) times: the read gives the
    newest by (event, created), a later write winning a tie, with its exact event time, and
    the status the ttl gives at ``now``."""
    entity = 100
    store.delete_entities(view, [entity])
    best = None
    for n, (event, created) in enumerate(writes):
        store.push("push", rows((entity, event, created, n / 8, n)), to="online")
        if best is None or (event, created) >= best[:2]:
            best = (event, created, n)
    assert best is not None
    resp = read(store, view, [entity], now)
    status = expected_status(best[0], TTLS[view], now)
    assert resp.statuses["trips"] == [status]
    assert resp.event_timestamps["trips"] == [best[0]]
    assert resp.to_dict()["trips"] == [best[2] if status == "present" else None]
    assert resp.to_dict()["rate"] == [best[2] / 8 if status == "present" else None]


@pytest.mark.parametrize(
    "event", [MIN_TIME, datetime(2038, 1, 19, 3, 14, 8, tzinfo=UTC), MAX_TIME - US]
)
def test_aggregated_view_at_the_extremes(store, event):
    store.teardown()
    store.online.setup([])
    CLOCK[0] = event  # an event older than now minus the horizon is dropped as too late
    store.push("push", rows((1, event, event, 0.5, 7), (1, event, event, 0.5, 5)), to="online")
    refs = ["agg:count_1h", "agg:trips_sum_1h"]
    for now in (event, min(event + WINDOW / 2, MAX_TIME - US)):
        CLOCK[0] = now
        resp = store.get_online_features(refs, entities={"driver_id": [1, 2]})
        got = resp.to_dict()
        assert got["count_1h"] == [2, 0], now
        assert got["trips_sum_1h"] == [12, None], now
        assert resp.statuses["count_1h"][0] == "present"


def test_redis_gives_every_key_of_a_ttl_view_a_reclaim_time_redis_accepts():
    """Redis only: an expiry already past is reclaimed ``grace`` after the server's now (not
    refused, not dropped), one past 2100 at 2100 plus the grace; the records read back."""
    import uuid

    import redis as redis_py

    from parity.online.base import OnlineView, RecordBatch
    from parity.online.encoding import encode_key_part, encode_record
    from parity.online.redis import RedisOnlineConfig
    from parity.online.redis.scripts import END_MS
    from parity.online.redis.store import RedisOnlineStore

    url = f"redis://127.0.0.1:6379/{REDIS_DB}"
    prefix = f"parity_test_{uuid.uuid4().hex[:10]}:"
    cfg = RedisOnlineConfig(url=url, key_prefix=prefix, expire_grace_seconds=60)
    store = RedisOnlineStore(cfg, "times")
    view = OnlineView("v", ("driver_id",), ("rate",), timedelta(days=3650))
    store.setup([view])
    client = redis_py.Redis.from_url(url)
    try:
        events = [MIN_US, to_micros(datetime(1950, 1, 1, tzinfo=UTC)), MAX_US - 1]
        keys = [encode_key_part(i, "driver_id") for i in range(3)]
        records = [encode_record(ev, ev, {"rate": 0.5}) for ev in events]
        before = client.time()
        assert store.write(view, RecordBatch(keys, events, events, records)) == 3
        after = client.time()
        assert store.read([(view, keys)]) == [records]
        expiry = [client.pexpiretime(prefix.encode() + b"times:v:" + k) for k in keys]
        low = before[0] * 1000 + before[1] // 1000 + 60_000
        high = after[0] * 1000 + after[1] // 1000 + 60_000
        assert low <= expiry[0] <= high and low <= expiry[1] <= high, (expiry, low, high)
        assert expiry[2] == END_MS + 60_000
    finally:
        store.teardown()
        store.close()
        client.close()
