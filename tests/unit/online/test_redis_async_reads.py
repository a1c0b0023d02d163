"""The server's pipelined Redis reads: the same records as the blocking read, concurrent reads
on one connection, reconnecting after the server closed it, and errors as OnlineStoreError.

Plain Redis at ``PARITY_TEST_REDIS_URL`` (default 127.0.0.1:6379, db 9, as the Redis store's
unit tests), keys under ``parity_test_<hex>:``, removed at the end.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
import redis

from parity.errors import OnlineStoreError
from parity.online.base import OnlineView, RecordBatch
from parity.online.encoding import encode_key_part, encode_record
from parity.online.redis import RedisOnlineConfig
from parity.online.redis.async_reads import AsyncRedisReads
from parity.online.redis.store import RedisOnlineStore

REDIS_URL = os.environ.get("PARITY_TEST_REDIS_URL", "redis://127.0.0.1:6379/9")
PREFIX = f"parity_test_{uuid.uuid4().hex[:12]}:"
NOW_US = int(time.time()) * 1_000_000
STATS = OnlineView("driver_stats", ("driver_id",), ("rate",), timedelta(hours=2))
DAILY = OnlineView("driver_daily", ("driver_id",), ("rate",), None)


def key(i: int) -> bytes:
    return encode_key_part(i, "driver_id")


@pytest.fixture
def store() -> Iterator[RedisOnlineStore]:
    s = RedisOnlineStore(RedisOnlineConfig(url=REDIS_URL, key_prefix=PREFIX), "proj")
    s.setup([STATS, DAILY])
    for view, ids in ((STATS, range(1, 51)), (DAILY, range(1, 51, 2))):
        records = [encode_record(NOW_US - i, None, {"rate": i / 10}) for i in ids]
        keys = [key(i) for i in ids]
        s.write(view, RecordBatch(keys, [NOW_US - i for i in ids], [None] * len(keys), records))
    yield s
    s.teardown()
    s.close()


def test_same_records_as_the_blocking_read_and_concurrent_reads_share_a_connection(
    store: RedisOnlineStore,
) -> None:
    reads = AsyncRedisReads.for_store(store)
    assert reads is not None
    requests = [
        [(STATS, [key(i), key(1000 + i)]), (DAILY, [key(i), key(i + 1)])] for i in range(1, 40)
    ]

    async def main() -> list[list[list[bytes | None]]]:
        got = await asyncio.gather(*(reads(r) for r in requests))
        assert reads._conn is not None and not reads._conn.closed  # one connection, reused
        reads.close()
        return list(got)

    got = asyncio.run(main())
    assert got == [store.read(r) for r in requests]
    assert got[0][0][1] is None  # a key without a record


def test_reconnects_after_the_server_dropped_the_connection(store: RedisOnlineStore) -> None:
    reads = AsyncRedisReads.for_store(store)
    assert reads is not None
    request = [(STATS, [key(3)])]

    async def main() -> None:
        first = await reads(request)
        assert reads._conn is not None
        assert reads._conn.transport is not None
        host, port = reads._conn.transport.get_extra_info("sockname")[:2]
        client = redis.Redis.from_url(REDIS_URL)
        assert client.client_kill_filter(addr=f"{host}:{port}") == 1  # this reader's only
        client.close()
        await asyncio.sleep(0.05)
        assert await reads(request) == first
        reads.close()

    asyncio.run(main())


def test_unreachable_server_is_an_online_store_error() -> None:
    store = RedisOnlineStore(
        RedisOnlineConfig(url="redis://127.0.0.1:1/0", key_prefix=PREFIX, socket_timeout=1.0),
        "proj",
    )
    reads = AsyncRedisReads.for_store(store)
    assert reads is not None
    with pytest.raises(OnlineStoreError, match="read failed"):
        asyncio.run(reads([(STATS, [key(1)])]))


def test_tls_and_non_redis_stores_keep_the_blocking_read() -> None:
    tls = RedisOnlineStore(RedisOnlineConfig(url="rediss://127.0.0.1:6380/0"), "proj")
    assert AsyncRedisReads.for_store(tls) is None
    assert AsyncRedisReads.for_store(object()) is None
