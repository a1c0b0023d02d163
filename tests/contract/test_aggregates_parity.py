"""The promise of aggregated views: the online value at ``t`` is the historical value at ``t``.

Hypothesis generates event streams (several entities, out of order, late, future-dated,
replayed with the same event id, on window and hop boundaries, empty windows), pushes them
to online and offline in arrival order with the store's clock at the arrival time, then at
several times after the last arrival compares ``get_online_features`` with
``get_historical_features`` for entity rows stamped with that time: every function, two
windows, with and without a hop, bit for bit. Runs against every store in
``backends.ONLINE_STORES`` (gaps marked with their reason there).
"""

from __future__ import annotations

import math
import shutil
import struct
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from backends import ONLINE_STORES, online_store_yaml, params
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parity import Aggregation, Entity, FeatureStore, FeatureView, FileSource, PushSource

REDIS_DB = 13  # this suite's own Redis database
BASE = datetime(2024, 3, 1, tzinfo=UTC)
MIN = timedelta(minutes=1)
FUNCTIONS = ["sum", "mean", "min", "max", "stddev", "first", "last", "count_distinct"]
WINDOWS = [timedelta(minutes=30), timedelta(hours=2)]


def _aggregations() -> list[Aggregation]:
    out = [Aggregation(function="count", window=w) for w in WINDOWS]
    for w in WINDOWS:
        out += [Aggregation(column="amount", function=f, window=w) for f in FUNCTIONS]
        out.append(Aggregation(column="qty", function="sum", window=w))
        out.append(Aggregation(column="qty", function="stddev", window=w))
        out.append(Aggregation(column="amount", function="count", window=w))
    out.append(Aggregation(column="amount", function="last_n", n=3, window=WINDOWS[1]))
    out.append(Aggregation(column="item", function="approx_count_distinct", window=WINDOWS[1]))
    for f in ("min", "max", "first", "last", "count_distinct", "approx_count_distinct"):
        out.append(Aggregation(column="tag", function=f, window=WINDOWS[0]))
    out.append(Aggregation(column="tag", function="last_n", n=2, window=WINDOWS[1]))
    return out


def _repo(path: Path, store: str, request: pytest.FixtureRequest) -> FeatureStore:
    (path / "data").mkdir(parents=True)
    # The batch file holds one event of another user, long before: the source exists.
    pq.write_table(
        pa.table(
            {
                "user_id": pa.array([999], pa.int64()),
                "amount": pa.array([1.0], pa.float64()),
                "qty": pa.array([1], pa.int64()),
                "item": pa.array([1], pa.int64()),
                "tag": pa.array(["z"], pa.string()),
                "event_id": pa.array([-1], pa.int64()),
                "event_timestamp": pa.array(
                    [BASE - timedelta(days=30)], pa.timestamp("us", tz="UTC")
                ),
                "created": pa.array([BASE - timedelta(days=30)], pa.timestamp("us", tz="UTC")),
            }
        ),
        path / "data" / "events.parquet",
    )
    online = online_store_yaml(store, request, redis_db=REDIS_DB)
    (path / "parity.yaml").write_text(
        f"project: aggparity\nregistry: {{path: data/registry.db}}\nonline_store: {online}\n"
    )
    fs = FeatureStore(path, clock=lambda: CLOCK[0])
    user = Entity(name="user", join_keys=["user_id"], dtype="Int64")
    source = PushSource(
        name="events",
        batch_source=FileSource(
            name="events_batch",
            path="data/events.parquet",
            created_timestamp_field="created",
            event_id_field="event_id",
        ),
    )
    hopped = FeatureView(
        name="hopped", entities=[user], source=source, aggregations=_aggregations(), hop=10 * MIN
    )
    exact = FeatureView(name="exact", entities=[user], source=source, aggregations=_aggregations())
    fs.apply([user, source, hopped, exact])
    return fs


CLOCK = [BASE]


@pytest.fixture(scope="module", params=params("aggregates_parity", ONLINE_STORES))
def parity_store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    fs = _repo(tmp_path_factory.mktemp(f"agg-{request.param}"), request.param, request)
    yield fs
    fs.teardown()
    fs.close()


amounts = st.one_of(
    st.sampled_from([0.0, -0.0, 1.5, -2.25, 0.1, 0.2, 0.3, 1e-9, 1e9, 123456.789]),
    st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False),
    st.none(),
)


@st.composite
def streams(draw: st.DrawFn) -> tuple[list[dict[str, Any]], list[datetime]]:
    n = draw(st.integers(min_value=0, max_value=14))
    events = []
    for i in range(n):
        # Times on a 5-minute grid hit hop (10 min) and window (30 min, 2 h) boundaries.
        minute = draw(st.integers(min_value=0, max_value=48)) * 5 + draw(
            st.sampled_from([0, 0, 0, 1, 4])
        )
        ts = BASE + minute * MIN
        late = draw(st.sampled_from([0, 0, 1, 7, 30, 95, -10]))  # < 0: stamped in the future
        events.append(
            {
                "user_id": draw(st.sampled_from([1, 2, 3])),
                "amount": draw(amounts),
                "qty": draw(st.integers(min_value=-5, max_value=5)),
                "item": draw(st.integers(min_value=0, max_value=6)),
                "tag": draw(st.one_of(st.none(), st.sampled_from(["", "a", "b", "é", "B"]))),
                "event_id": i,
                "event_timestamp": ts,
                "arrival": ts + late * MIN,
            }
        )
    replays = draw(st.lists(st.integers(min_value=0, max_value=max(n - 1, 0)), max_size=3))
    for r in replays if n else []:
        again = dict(events[r])
        again["arrival"] = again["arrival"] + draw(st.sampled_from([0, 3, 40])) * MIN
        events.append(again)
    events.sort(key=lambda e: e["arrival"])
    last = max((e["arrival"] for e in events), default=BASE)
    times = sorted(
        {
            last + draw(st.sampled_from([0, 1, 5, 10, 29, 30, 31, 60, 120, 125, 200])) * MIN
            for _ in range(3)
        }
    )
    return events, times


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return struct.pack("<d", a) == struct.pack("<d", b) or (math.isnan(a) and math.isnan(b))
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(stream=streams())
def test_online_equals_historical_for_every_function(
    parity_store: FeatureStore, stream: tuple[list[dict[str, Any]], list[datetime]]
) -> None:
    fs = parity_store
    events, times = stream
    fs.teardown()
    shutil.rmtree(fs.config.resolve(fs.config.offline_log), ignore_errors=True)
    for e in events:
        CLOCK[0] = e["arrival"]
        row = pa.table(
            {
                "user_id": pa.array([e["user_id"]], pa.int64()),
                "amount": pa.array([e["amount"]], pa.float64()),
                "qty": pa.array([e["qty"]], pa.int64()),
                "item": pa.array([e["item"]], pa.int64()),
                "tag": pa.array([e["tag"]], pa.string()),
                "event_id": pa.array([e["event_id"]], pa.int64()),
                "event_timestamp": pa.array([e["event_timestamp"]], pa.timestamp("us", tz="UTC")),
            }
        )
        fs.push("events", row, to="online_and_offline")
    _compare(fs, events, times)


def _compare(fs: FeatureStore, events: list[dict[str, Any]], times: list[datetime]) -> None:
    users = [1, 2, 3, 4]
    for view in ("hopped", "exact"):
        refs = [f"{view}:{a.output_name}" for a in _aggregations()]
        for t in times:
            CLOCK[0] = t
            online = fs.get_online_features(refs, entities={"user_id": users}).to_dict()
            entity_df = pa.table(
                {
                    "user_id": pa.array(users, pa.int64()),
                    "event_timestamp": pa.array([t] * len(users), pa.timestamp("us", tz="UTC")),
                }
            )
            offline = fs.get_historical_features(entity_df, refs).to_arrow().to_pydict()
            for ref in refs:
                name = ref.split(":")[1]
                for i, user in enumerate(users):
                    on, off = online[name][i], offline[name][i]
                    assert _same(on, off), (
                        f"{ref} for user {user} at {t}: online {on!r} != historical {off!r}; "
                        f"events {events}"
                    )


def _write_batch(path: Path, events: list[dict[str, Any]]) -> None:
    ts = pa.timestamp("us", tz="UTC")
    pq.write_table(
        pa.table(
            {
                "user_id": pa.array([e["user_id"] for e in events], pa.int64()),
                "amount": pa.array([e["amount"] for e in events], pa.float64()),
                "qty": pa.array([e["qty"] for e in events], pa.int64()),
                "item": pa.array([e["item"] for e in events], pa.int64()),
                "tag": pa.array([e["tag"] for e in events], pa.string()),
                "event_id": pa.array([e["event_id"] for e in events], pa.int64()),
                "event_timestamp": pa.array([e["event_timestamp"] for e in events], ts),
                "created": pa.array([e["arrival"] for e in events], ts),
            }
        ),
        path,
    )


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(stream=streams(), split=st.floats(min_value=0.0, max_value=1.0))
def test_materialized_then_pushed_equals_historical(
    parity_store: FeatureStore, stream: tuple[list[dict[str, Any]], list[datetime]], split: float
) -> None:
    """History comes from the batch files (materialized), the rest is pushed after: the
    online value still equals the historical one."""
    fs = parity_store
    events, times = stream
    fs.teardown()
    shutil.rmtree(fs.config.resolve(fs.config.offline_log), ignore_errors=True)
    cut = int(len(events) * split)
    history, later = events[:cut], events[cut:]
    batch = fs.repo_path / "data" / "events.parquet"
    original = pq.read_table(batch)
    try:
        _write_batch(batch, [*_BASE_ROW, *history])
        # Materialized up to the last history event (a batch row stamped after ``end`` is
        # not materialized, for plain views too): the clock is then at least that late.
        end = max((max(e["arrival"], e["event_timestamp"]) for e in history), default=BASE)
        CLOCK[0] = end
        fs.materialize(BASE - timedelta(days=1), end)
        for e in later:
            CLOCK[0] = max(e["arrival"], end)
            row = {k: [v] for k, v in e.items() if k != "arrival"}
            table = pa.table(
                {
                    "user_id": pa.array(row["user_id"], pa.int64()),
                    "amount": pa.array(row["amount"], pa.float64()),
                    "qty": pa.array(row["qty"], pa.int64()),
                    "item": pa.array(row["item"], pa.int64()),
                    "tag": pa.array(row["tag"], pa.string()),
                    "event_id": pa.array(row["event_id"], pa.int64()),
                    "event_timestamp": pa.array(
                        row["event_timestamp"], pa.timestamp("us", tz="UTC")
                    ),
                }
            )
            fs.push("events", table, to="online_and_offline")
        last = max([CLOCK[0], *times])
        _compare(fs, events, [t for t in times if t >= CLOCK[0]] or [last])
    finally:
        pq.write_table(original, batch)


_BASE_ROW = [
    {
        "user_id": 999,
        "amount": 1.0,
        "qty": 1,
        "item": 1,
        "tag": "z",
        "event_id": -1,
        "event_timestamp": BASE - timedelta(days=30),
        "arrival": BASE - timedelta(days=30),
    }
]
