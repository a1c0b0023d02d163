"""Redis-specific behaviour of RedisOnlineStore, on plain Redis and on a real local cluster.

Plain Redis: the server at ``PARITY_TEST_REDIS_URL`` (default 127.0.0.1:6379, db 9), keys
under ``parity_test_<hex>:``, removed at the end. Cluster: three primaries started by
``contract.redis_cluster`` for this module. Neither is ever skipped: a missing server fails.
The contract every store keeps is tested in ``tests/contract/test_online_store.py``.
"""

from __future__ import annotations

import math
import os
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contract.redis_cluster import ClusterHandle, start_cluster
from parity.errors import ConfigError, ParityError
from parity.online.base import OnlineView, RecordBatch
from parity.online.encoding import encode_key_part, encode_record, header, record_times
from parity.online.redis import RedisOnlineConfig
from parity.online.redis.store import RedisOnlineStore

REDIS_URL = os.environ.get("PARITY_TEST_REDIS_URL", "redis://127.0.0.1:6379/9")
PREFIX = f"parity_test_{uuid.uuid4().hex[:12]}:"
NOW_US = int(time.time()) * 1_000_000
GRACE_S = 60

STATS = OnlineView("driver_stats", ("driver_id",), ("rate",), timedelta(hours=2))
DAILY = OnlineView("driver_daily", ("driver_id",), ("rate",), None)


def key(i: int | str) -> bytes:
    return encode_key_part(i, "driver_id")


def rec(event_us: int, created_us: int | None = None, rate: object = 0.5) -> bytes:
    return encode_record(event_us, created_us, {"rate": rate})


def batch(*rows: tuple[bytes, int, int | None, bytes]) -> RecordBatch:
    return RecordBatch(
        keys=[r[0] for r in rows],
        event_us=[r[1] for r in rows],
        created_us=[r[2] for r in rows],
        records=[r[3] for r in rows],
    )


def row(k: int | str, event_us: int, created_us: int | None = None, rate: object = 0.5):
    return (key(k), event_us, created_us, rec(event_us, created_us, rate))


def new_project() -> str:
    return f"proj_{uuid.uuid4().hex[:8]}"


# -- servers --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def plain_url() -> Iterator[str]:
    """The plain Redis URL after checking it answers; every key of this run removed after."""
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.fail(
            f"Redis is required by these tests but does not answer at {REDIS_URL} ({exc}); "
            "start redis-server or point PARITY_TEST_REDIS_URL at one",
            pytrace=False,
        )
    yield REDIS_URL
    for k in client.scan_iter(match=PREFIX + "*", count=1000):
        client.unlink(k)
    client.close()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterHandle]:
    with start_cluster(tmp_path_factory.mktemp("redis-cluster")) as handle:
        yield handle


def make_config(kind: str, request: pytest.FixtureRequest) -> RedisOnlineConfig:
    if kind == "redis":
        url = request.getfixturevalue("plain_url")
        return RedisOnlineConfig(url=url, key_prefix=PREFIX, expire_grace_seconds=GRACE_S)
    handle: ClusterHandle = request.getfixturevalue("cluster")
    return RedisOnlineConfig(
        url=f"redis://{handle.nodes[0]}/0",
        cluster=True,
        key_prefix=PREFIX,
        expire_grace_seconds=GRACE_S,
    )


@pytest.fixture(params=["redis", "cluster"])
def kind(request: pytest.FixtureRequest) -> str:
    return request.param


class Stores:
    """Makes set-up stores on fresh projects, and tears every one down at the end."""

    def __init__(self, kind: str, request: pytest.FixtureRequest) -> None:
        self.kind, self.request = kind, request
        self.made: list[RedisOnlineStore] = []

    def __call__(self, project: str | None = None) -> RedisOnlineStore:
        store = RedisOnlineStore(make_config(self.kind, self.request), project or new_project())
        store.setup([STATS, DAILY])
        self.made.append(store)
        return store

    def close(self) -> None:
        for store in self.made:
            store.teardown()
            store.close()


@pytest.fixture
def make_store(kind: str, request: pytest.FixtureRequest) -> Iterator[Stores]:
    stores = Stores(kind, request)
    yield stores
    stores.close()


@pytest.fixture
def store(make_store: Stores) -> RedisOnlineStore:
    return make_store()


@pytest.fixture
def plain_store(request: pytest.FixtureRequest) -> Iterator[RedisOnlineStore]:
    stores = Stores("redis", request)
    yield stores()
    stores.close()


@pytest.fixture
def cluster_store(request: pytest.FixtureRequest) -> Iterator[RedisOnlineStore]:
    stores = Stores("cluster", request)
    yield stores()
    stores.close()


def stored(store: RedisOnlineStore, view: OnlineView, k: bytes) -> bytes | None:
    return store.read([(view, [k])])[0][0]


def redis_key(store: RedisOnlineStore, view: OnlineView, k: bytes) -> bytes:
    return f"{PREFIX}{store.project}:{view.name}:".encode() + k


# -- newer wins -------------------------------------------------------------------------------


def test_newer_event_wins_and_older_is_refused(store: RedisOnlineStore) -> None:
    assert store.write(DAILY, batch(row(1, NOW_US, rate=1.0))) == 1
    assert store.write(DAILY, batch(row(1, NOW_US - 1, NOW_US + 99, rate=2.0))) == 0
    assert stored(store, DAILY, key(1)) == rec(NOW_US, rate=1.0)
    assert store.write(DAILY, batch(row(1, NOW_US + 1, rate=3.0))) == 1
    assert stored(store, DAILY, key(1)) == rec(NOW_US + 1, rate=3.0)


def test_created_time_breaks_event_ties(store: RedisOnlineStore) -> None:
    store.write(DAILY, batch(row(1, NOW_US, NOW_US + 5, rate=1.0)))
    # No created time is older than any created time.
    assert store.write(DAILY, batch(row(1, NOW_US, None, rate=2.0))) == 0
    assert store.write(DAILY, batch(row(1, NOW_US, NOW_US + 4, rate=3.0))) == 0
    assert store.write(DAILY, batch(row(1, NOW_US, NOW_US + 6, rate=4.0))) == 1
    assert stored(store, DAILY, key(1)) == rec(NOW_US, NOW_US + 6, rate=4.0)


def test_equal_times_the_later_write_wins(store: RedisOnlineStore) -> None:
    store.write(DAILY, batch(row(1, NOW_US, NOW_US, rate=1.0), row(2, NOW_US, None, rate=1.0)))
    assert store.write(DAILY, batch(row(1, NOW_US, NOW_US, rate=2.0))) == 1
    assert store.write(DAILY, batch(row(2, NOW_US, None, rate=2.0))) == 1
    assert store.read([(DAILY, [key(1), key(2)])]) == [
        [rec(NOW_US, NOW_US, rate=2.0), rec(NOW_US, None, rate=2.0)]
    ]


def test_repeated_keys_in_one_batch_resolve_in_order(store: RedisOnlineStore) -> None:
    n = store.write(
        DAILY,
        batch(
            row(1, NOW_US + 5, rate="a"),  # stored
            row(1, NOW_US + 9, rate="b"),  # stored
            row(1, NOW_US + 7, rate="c"),  # older: refused
            row(1, NOW_US + 9, rate="d"),  # tie: the later wins
            row(2, NOW_US, rate="e"),
        ),
    )
    assert n == 4
    assert store.read([(DAILY, [key(1), key(2)])]) == [
        [rec(NOW_US + 9, rate="d"), rec(NOW_US, rate="e")]
    ]


def test_out_of_order_batches(store: RedisOnlineStore) -> None:
    store.write(DAILY, batch(*(row(i, NOW_US + 100) for i in range(50))))
    n = store.write(DAILY, batch(*(row(i, NOW_US + (200 if i % 2 else 0)) for i in range(60))))
    assert n == 25 + 10  # odd keys were newer, keys 50..59 were new
    got = store.read([(DAILY, [key(i) for i in range(60)])])[0]
    assert [record_times(r)[0] - NOW_US for r in got] == [
        200 if i % 2 else (100 if i < 50 else 0) for i in range(60)
    ]


def test_batches_longer_than_a_chunk_keep_their_order(store: RedisOnlineStore) -> None:
    # 3 rounds over 1,200 keys: 3,600 records, several EVALSHA chunks (and slots) per key set.
    rows = [row(i, NOW_US + rnd // 2, rate=rnd) for rnd in range(3) for i in range(1200)]
    assert store.write(DAILY, batch(*rows)) == 3600
    got = store.read([(DAILY, [key(i) for i in range(1200)])])[0]
    assert got == [rec(NOW_US + 1, rate=2)] * 1200


# -- expiry -----------------------------------------------------------------------------------


def test_ttl_views_expire_after_ttl_plus_grace(store: RedisOnlineStore) -> None:
    event = NOW_US + 123_456  # not a whole ms: the expiry rounds up
    store.write(STATS, batch(row(1, event)))
    client = store.client()
    k = redis_key(store, STATS, key(1))
    expected_ms = math.ceil(event / 1000) + 2 * 3600 * 1000 + GRACE_S * 1000
    assert client.pexpiretime(k) == expected_ms
    assert client.pttl(k) > 0


def test_no_ttl_views_never_expire_and_drop_an_old_expiry(store: RedisOnlineStore) -> None:
    store.write(DAILY, batch(row(1, NOW_US)))
    client = store.client()
    assert client.pttl(redis_key(store, DAILY, key(1))) == -1
    # The same key written under a view that has a ttl, then under one that has none.
    with_ttl = OnlineView(DAILY.name, DAILY.join_keys, DAILY.features, timedelta(days=1))
    store.write(with_ttl, batch(row(2, NOW_US)))
    assert client.pttl(redis_key(store, DAILY, key(2))) > 0
    store.write(DAILY, batch(row(2, NOW_US + 1)))
    assert client.pttl(redis_key(store, DAILY, key(2))) == -1


def test_refused_write_keeps_the_stored_expiry(store: RedisOnlineStore) -> None:
    store.write(STATS, batch(row(1, NOW_US)))
    client = store.client()
    k = redis_key(store, STATS, key(1))
    before = client.pexpiretime(k)
    assert store.write(STATS, batch(row(1, NOW_US - 10**9))) == 0
    assert client.pexpiretime(k) == before


# -- reads ------------------------------------------------------------------------------------


def test_missing_keys_read_as_none(store: RedisOnlineStore) -> None:
    store.write(DAILY, batch(row(2, NOW_US)))
    assert store.read([(DAILY, [key(1), key(2), key(3)])]) == [[None, rec(NOW_US), None]]
    assert store.read([(STATS, [key(2)])]) == [[None]]  # same entity, other view
    assert store.read([(DAILY, [])]) == [[]]
    assert store.read([]) == []


def test_many_views_are_read_in_one_round_trip(
    store: RedisOnlineStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.write(STATS, batch(row(1, NOW_US, rate=1.0), row(2, NOW_US, rate=2.0)))
    store.write(DAILY, batch(row(2, NOW_US, rate=3.0)))
    requests = [(STATS, [key(2), key(1), key(9)]), (DAILY, [key(1), key(2)]), (STATS, [])]
    expected = [
        [rec(NOW_US, rate=2.0), rec(NOW_US, rate=1.0), None],
        [None, rec(NOW_US, rate=3.0)],
        [],
    ]
    assert store.read(requests) == expected
    calls = count_round_trips(store, monkeypatch)
    assert store.read(requests) == expected
    assert calls == [1]


def count_round_trips(store: RedisOnlineStore, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """A one-item list counting what the store sends: packets (plain) or rounds of sends to
    every node at once (cluster)."""
    calls = [0]
    if store.cluster:
        from parity.online.redis import cluster_calls

        real_call = cluster_calls.call_by_slot

        def call(*args, **kwargs):
            calls[0] += 1
            return real_call(*args, **kwargs)

        monkeypatch.setattr(cluster_calls, "call_by_slot", call)
    else:
        conn = store._conn()
        real_send = conn.send_packed_command

        def send(*args, **kwargs):
            calls[0] += 1
            return real_send(*args, **kwargs)

        monkeypatch.setattr(conn, "send_packed_command", send)
    return calls


def test_binary_and_hash_tag_keys(store: RedisOnlineStore) -> None:
    odd = [b"s{tag}", b"s}{", b"b00ff\x1fi1", b"s\xff\x00*?[x]\\", "sé".encode()]
    store.write(DAILY, batch(*((k, NOW_US, None, rec(NOW_US, rate=i)) for i, k in enumerate(odd))))
    assert store.read([(DAILY, odd)]) == [[rec(NOW_US, rate=i) for i in range(len(odd))]]
    assert store.delete(DAILY, odd) == len(odd)


# -- removing ---------------------------------------------------------------------------------


def test_delete_counts_what_existed(store: RedisOnlineStore) -> None:
    store.write(DAILY, batch(row(1, NOW_US), row(2, NOW_US)))
    store.write(STATS, batch(row(1, NOW_US)))
    assert store.delete(DAILY, [key(1), key(3), key(1)]) == 1
    assert store.delete(DAILY, []) == 0
    assert store.read([(DAILY, [key(1), key(2)]), (STATS, [key(1)])]) == [
        [None, rec(NOW_US)],
        [rec(NOW_US)],
    ]
    many = [key(i) for i in range(2500)]
    store.write(DAILY, batch(*(row(i, NOW_US) for i in range(2500))))
    assert store.delete(DAILY, many) == 2500


def test_drop_views_removes_only_those_views(make_store: Stores) -> None:
    store = make_store()
    other_project = make_store(project=store.project + "x")
    names = ["v", "vx", "v_a", "w"]
    views = {n: OnlineView(n, ("driver_id",), ("rate",), None) for n in names}
    for s in (store, other_project):
        for v in views.values():
            s.write(v, batch(*(row(i, NOW_US) for i in range(1500))))
    store.drop_views(["v", "w"])
    left = {n: store.read([(views[n], [key(0), key(1499)])])[0] for n in names}
    assert left == {
        "v": [None, None],
        "vx": [rec(NOW_US)] * 2,
        "v_a": [rec(NOW_US)] * 2,
        "w": [None, None],
    }
    for n in names:
        assert other_project.read([(views[n], [key(0)])]) == [[rec(NOW_US)]]


def test_teardown_removes_only_this_project(make_store: Stores) -> None:
    store = make_store()
    longer = make_store(project=store.project + "_2")
    store.write(DAILY, batch(*(row(i, NOW_US) for i in range(1500))))
    longer.write(DAILY, batch(row(1, NOW_US)))
    store.teardown()
    assert store.read([(DAILY, [key(0), key(1499)])]) == [[None, None]]
    assert longer.read([(DAILY, [key(1)])]) == [[rec(NOW_US)]]
    store.write(DAILY, batch(row(1, NOW_US)))  # usable again after a teardown
    assert stored(store, DAILY, key(1)) == rec(NOW_US)


def test_glob_characters_in_names_are_literal(make_store: Stores) -> None:
    # Definitions allow only identifiers, but the store must not rely on it (nor on prefixes).
    tricky = make_store(project="p[1]*?\\")
    plain = make_store(project="p1x")  # what "p[1]*" would match if not escaped
    star = OnlineView("v*", ("driver_id",), ("rate",), None)
    vx = OnlineView("vx", ("driver_id",), ("rate",), None)
    for s in (tricky, plain):
        for v in (star, vx):
            s.write(v, batch(row(1, NOW_US)))
    tricky.drop_views(["v*"])
    assert tricky.read([(star, [key(1)]), (vx, [key(1)])]) == [[None], [rec(NOW_US)]]
    tricky.teardown()
    assert tricky.read([(vx, [key(1)])]) == [[None]]
    assert plain.read([(star, [key(1)]), (vx, [key(1)])]) == [[rec(NOW_US)], [rec(NOW_US)]]


# -- scripts, connections, errors -------------------------------------------------------------


def test_a_missing_script_is_loaded_again(store: RedisOnlineStore) -> None:
    store._sha = "0" * 40  # as after SCRIPT FLUSH or a restart: every EVALSHA says NOSCRIPT
    rows = [row(i % 700, NOW_US + i) for i in range(2100)]
    assert store.write(DAILY, batch(*rows)) == 2100
    assert store.read([(DAILY, [key(0), key(699)])]) == [[rec(NOW_US + 1400), rec(NOW_US + 2099)]]


def test_script_flush_on_the_cluster(cluster_store: RedisOnlineStore) -> None:
    # Only on our own cluster: SCRIPT FLUSH would disturb other users of the shared server.
    cluster_store.client().script_flush()
    rows = [row(i % 1000, NOW_US + i // 1000) for i in range(3000)]
    assert cluster_store.write(DAILY, batch(*rows)) == 3000
    assert stored(cluster_store, DAILY, key(999)) == rec(NOW_US + 2)


def test_close_then_use_again(store: RedisOnlineStore) -> None:
    store.write(DAILY, batch(row(1, NOW_US)))
    store.close()
    assert stored(store, DAILY, key(1)) == rec(NOW_US)
    store.close()
    assert store.write(DAILY, batch(row(1, NOW_US + 1))) == 1


def test_threads_share_one_store(store: RedisOnlineStore) -> None:
    store.write(DAILY, batch(*(row(i, NOW_US) for i in range(50))))
    errors: list[BaseException] = []

    def work(t: int) -> None:
        try:
            for j in range(50):
                k = t * 1000 + j
                store.write(STATS, batch(row(k, NOW_US + j)))
                got = store.read([(DAILY, [key(j)]), (STATS, [key(k)])])
                assert got == [[rec(NOW_US)], [rec(NOW_US + j)]]
        except BaseException as exc:
            errors.append(exc)

    for ids in ([0, 1, 2, 3], [4, 5]):  # close() between rounds: the next round reconnects
        threads = [threading.Thread(target=work, args=(t,)) for t in ids]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        store.close()
    assert errors == []


def test_a_dropped_connection_is_replaced(plain_store: RedisOnlineStore) -> None:
    # Plain Redis only: the store speaks over its own connection per thread there.
    plain_store.write(DAILY, batch(row(1, NOW_US)))
    kill_connection(plain_store)  # as if the server had restarted since the last call
    assert stored(plain_store, DAILY, key(1)) == rec(NOW_US)
    kill_connection(plain_store)
    assert plain_store.write(DAILY, batch(row(1, NOW_US + 1))) == 1


def kill_connection(store: RedisOnlineStore) -> None:
    for conn in (store._conn(), store._write_conn()):  # reads and writes have their own
        try:
            conn.send_command("CLIENT", "ID")
            client_id = conn.read_response()
        except redis.ConnectionError:  # killed before and not used since: connect it first
            conn.disconnect()
            conn.send_command("CLIENT", "ID")
            client_id = conn.read_response()
        store.client().client_kill_filter(_id=client_id)


def test_reads_use_the_database_in_the_url(plain_store: RedisOnlineStore) -> None:
    plain_store.write(DAILY, batch(row(1, NOW_US)))
    db9 = redis.Redis.from_url(REDIS_URL)
    assert db9.get(redis_key(plain_store, DAILY, key(1))) == rec(NOW_US)
    db9.close()


def _dead_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_redis_is_a_config_error_naming_the_url() -> None:
    url = f"redis://:secret@127.0.0.1:{_dead_port()}/3"
    store = RedisOnlineStore(RedisOnlineConfig(url=url, socket_timeout=1), "p")
    with pytest.raises(ConfigError, match=r"127\.0\.0\.1:\d+/3") as info:
        store.setup([DAILY])
    assert "secret" not in str(info.value)
    with pytest.raises(ParityError, match="read failed"):
        store.read([(DAILY, [key(1)])])
    with pytest.raises(ParityError, match="write to view 'driver_daily' failed"):
        store.write(DAILY, batch(row(1, NOW_US)))
    store.close()


def test_unreachable_cluster_is_a_config_error() -> None:
    node = f"127.0.0.1:{_dead_port()}"
    store = RedisOnlineStore(RedisOnlineConfig(cluster=[node], socket_timeout=1), "p")
    with pytest.raises(ConfigError, match=node):
        store.setup([DAILY])


def test_cluster_from_a_node_list(cluster: ClusterHandle, plain_url: str) -> None:
    cfg = RedisOnlineConfig(cluster=list(cluster.nodes), key_prefix=PREFIX)
    store = RedisOnlineStore(cfg, new_project())
    store.setup([DAILY])
    try:
        store.write(DAILY, batch(*(row(i, NOW_US) for i in range(100))))
        assert store.read([(DAILY, [key(0), key(99)])]) == [[rec(NOW_US)] * 2]
    finally:
        store.teardown()
        store.close()


# -- newer-wins against an oracle -------------------------------------------------------------

_write = st.tuples(
    st.integers(0, 5),  # entity
    st.integers(0, 3),  # event time step
    st.one_of(st.none(), st.integers(0, 2)),  # created time step
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(batches=st.lists(st.lists(_write, max_size=12), min_size=1, max_size=6))
def test_stored_record_is_the_max_by_event_created_arrival(
    store: RedisOnlineStore, batches: list[list[tuple[int, int, int | None]]]
) -> None:
    view = OnlineView(f"v{uuid.uuid4().hex[:8]}", ("driver_id",), ("n",), None)
    best: dict[int, tuple[int, int, bytes]] = {}  # entity -> (event, created or -1, record)
    arrival = 0
    for writes in batches:
        rows, expected_count = [], 0
        for entity, ev_step, cr_step in writes:
            event = NOW_US + ev_step * 1000
            created = None if cr_step is None else NOW_US + cr_step
            record = encode_record(event, created, {"n": arrival})  # distinct per arrival
            arrival += 1
            order = (event, -1 if created is None else created)
            if entity not in best or order >= best[entity][:2]:
                best[entity] = (*order, record)
                expected_count += 1
            rows.append((key(entity), event, created, record))
        assert store.write(view, batch(*rows)) == expected_count
    entities = list(range(6))
    got = store.read([(view, [key(e) for e in entities])])[0]
    assert got == [best[e][2] if e in best else None for e in entities]
    assert all(r is None or r[:32] == header(*record_times(r)) for r in got)


def test_written_bytes_are_stored_verbatim(store: RedisOnlineStore) -> None:
    record = rec(NOW_US) + bytes(range(256))  # trailing bytes are not the store's business
    store.write(DAILY, batch((key(1), NOW_US, None, record)))
    assert store.client().get(redis_key(store, DAILY, key(1))) == record


def test_updated_records_live_their_views_ttl_plus_grace_after_the_write(
    store: RedisOnlineStore,
) -> None:
    """An aggregated view's records (written by update) expire ttl (its horizon) plus the
    grace after their last write by the real clock; without a ttl, never."""
    client = store.client()
    horizon = OnlineView("agg_horizon", ("driver_id",), ("n",), timedelta(hours=2))
    store.update(horizon, [key(1)], lambda ks, rs: [b"1" for _ in ks])
    ms = client.pttl(redis_key(store, horizon, key(1)))
    limit = (2 * 3600 + GRACE_S) * 1000
    assert limit - 60_000 < ms <= limit
    store.update(DAILY, [key(3)], lambda ks, rs: [b"1" for _ in ks])
    assert client.pttl(redis_key(store, DAILY, key(3))) == -1
