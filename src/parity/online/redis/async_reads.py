"""Reads from a plain Redis online store that the event loop awaits instead of blocking on.

The blocking read (``RedisOnlineStore.read``) holds the server's only thread for a whole
round trip to Redis (tens of µs on loopback, far more across a network) while other requests
wait. Here every read of a worker goes out on ONE asyncio connection as soon as it is made,
so reads of concurrent requests are pipelined: Redis answers them in order and the loop
parses HTTP, decodes records and writes answers meanwhile. The reads made in one turn of the
loop go out in one write (one system call instead of one per request).

Same keys and the same MGET as ``RedisOnlineStore.read``, so the same records. Only plain
Redis over TCP or a Unix socket is handled (``for_store`` returns None otherwise: TLS and
Redis Cluster keep the blocking read). A connection that fails, or whose oldest waiting read
has had no reply for the store's ``socket_timeout``, is dropped with every read waiting on
it; connecting (and the connection's AUTH/SELECT) is bounded by ``socket_connect_timeout``
plus ``socket_timeout``. A read that finds the connection gone is sent once more on a new
one (reads are idempotent); a read that timed out is not. Either way it then fails with
``OnlineStoreError`` caused by the ``TimeoutError`` or ``ConnectionError``, as the blocking
read does.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence
from typing import Any

import hiredis
from redis.connection import parse_url

from parity.online.base import OnlineView, SupportsAsyncRead
from parity.online.redis.config import RedisOnlineConfig
from parity.online.redis.store import RedisOnlineStore

Requests = Sequence[tuple[OnlineView, Sequence[bytes]]]


class _Connection(asyncio.Protocol):
    """One pipelined connection: replies complete the waiting futures in order."""

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout: float):
        self.loop = loop
        self.timeout = timeout
        self.transport: asyncio.Transport | None = None
        self.reader = hiredis.Reader()
        self.waiting: deque[tuple[asyncio.Future[Any], float]] = deque()  # (future, sent at)
        self.outbox: list[bytes] = []  # packed commands not written yet
        self.closed = False
        self._watchdog: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def call(self, packed: bytes) -> asyncio.Future[Any]:
        """Queue a command; the commands of one loop iteration go out in one write."""
        future = self.loop.create_future()
        sent = self.loop.time()
        self.waiting.append((future, sent))
        if self._watchdog is None and not self.closed:
            self._watchdog = self.loop.call_at(sent + self.timeout, self._check)
        if not self.outbox:
            self.loop.call_soon(self._flush)
        self.outbox.append(packed)
        return future

    def _flush(self) -> None:
        outbox, self.outbox = self.outbox, []
        if self.transport is not None and not self.closed:
            self.transport.write(b"".join(outbox) if len(outbox) > 1 else outbox[0])

    def data_received(self, data: bytes) -> None:
        reader = self.reader
        reader.feed(data)
        waiting = self.waiting
        while (reply := reader.gets()) is not False:
            future = waiting.popleft()[0]
            if not future.done():  # a cancelled caller's reply is dropped
                future.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(ConnectionError(f"connection lost: {exc or 'closed by the server'}"))

    def _fail(self, exc: Exception) -> None:
        self.closed = True
        if self._watchdog is not None:
            self._watchdog.cancel()
        while self.waiting:
            future = self.waiting.popleft()[0]
            if not future.done():
                future.set_exception(exc)

    def _check(self) -> None:
        """At the oldest waiting read's deadline: replies come in order, so a late first one
        means a stuck link (a frozen or unreachable server)."""
        self._watchdog = None
        if self.closed or not self.waiting:
            return
        deadline = self.waiting[0][1] + self.timeout
        if self.loop.time() >= deadline:
            self._fail(TimeoutError(f"no reply within {self.timeout:g} s"))
            if self.transport is not None:
                self.transport.abort()
            return
        self._watchdog = self.loop.call_at(deadline, self._check)

    def close(self) -> None:
        if self.transport is not None and not self.loop.is_closed():
            self.transport.close()  # a closed loop closed its transports already
        self._fail(ConnectionError("closed"))


class AsyncRedisReads:
    """``await reads(requests)``: what ``store.read(requests)`` returns, without blocking."""

    def __init__(self, store: RedisOnlineStore, options: dict[str, Any]):
        self.store = store
        self._options = options
        self._timeout = store.config.socket_timeout
        self._connect_timeout = store.config.socket_connect_timeout
        self._conn: _Connection | None = None
        self._connecting: asyncio.Future[_Connection] | None = None

    @classmethod
    def for_store(cls, store: object) -> AsyncRedisReads | None:
        """The async reads for ``store``, or None when it is not plain Redis over TCP or a
        Unix socket (those keep the blocking read)."""
        if not isinstance(store, RedisOnlineStore) or not supports_async(store.config):
            return None
        return cls(store, parse_url(store.config.url))

    async def __call__(self, requests: Requests) -> list[list[bytes | None]]:
        store = self.store
        keys: list[bytes] = []
        for view, entity_keys in requests:
            prefix = store._prefix(view.name)  # the store's key layout, as its read uses
            keys += [prefix + k for k in entity_keys]
        if not keys:
            return [[] for _ in requests]
        packed = hiredis.pack_command((b"MGET", *keys))  # type: ignore[arg-type]
        for attempt in (1, 2):
            try:
                conn = await self._connection()
                reply = await conn.call(packed)
                break
            except (OSError, TimeoutError) as exc:  # ConnectionError is an OSError
                if attempt == 2 or isinstance(exc, TimeoutError):
                    raise store._error("read", exc) from exc
        else:  # pragma: no cover - the loop breaks or raises
            raise AssertionError("unreachable")
        if isinstance(reply, Exception):
            raise store._error("read", reply)
        if len(requests) == 1:
            return [reply]
        out: list[list[bytes | None]] = []
        start = 0
        for _, entity_keys in requests:
            end = start + len(entity_keys)
            out.append(reply[start:end])
            start = end
        return out

    async def _connection(self) -> _Connection:
        conn = self._conn
        if conn is not None and not conn.closed:
            return conn
        if self._connecting is None:  # the first reader connects; the others wait for it
            self._connecting = asyncio.ensure_future(self._connect())
        connecting = self._connecting
        try:
            conn = await asyncio.shield(connecting)
        finally:
            if connecting.done() and self._connecting is connecting:
                self._connecting = None
        return conn

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        opts = self._options

        def protocol() -> _Connection:
            return _Connection(loop, self._timeout)

        async with asyncio.timeout(self._connect_timeout):
            if opts.get("path"):
                _, conn = await loop.create_unix_connection(protocol, opts["path"])
            else:
                host, port = opts.get("host", "localhost"), int(opts.get("port", 6379))
                _, conn = await loop.create_connection(protocol, host, port)
        # The setup's replies are bounded by the connection's own reply timeout.
        setup = []
        if opts.get("password"):
            user = opts.get("username")
            setup.append((b"AUTH", *([user] if user else []), opts["password"]))
        if opts.get("db"):
            setup.append((b"SELECT", str(opts["db"])))
        replies = [conn.call(hiredis.pack_command(cmd)) for cmd in setup]  # type: ignore[arg-type]
        for reply in replies:
            answer = await reply
            if isinstance(answer, Exception):
                conn.close()
                raise ConnectionError(f"connection setup refused: {answer}")
        self._conn = conn
        return conn

    def close(self) -> None:
        """Close the connection (reads made later connect again)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()


def supports_async(config: RedisOnlineConfig) -> bool:
    """Whether reads can be awaited: plain Redis over TCP or a Unix socket (not TLS, not a
    cluster)."""
    if config.cluster is not False:
        return False
    return parse_url(config.url).get("connection_class") in (None, _unix_class())


class AsyncReadRedisOnlineStore(RedisOnlineStore, SupportsAsyncRead):
    """The Redis store whose reads an event loop can also await (one pipelined connection)."""

    def __init__(self, config: RedisOnlineConfig, project: str):
        super().__init__(config, project)
        self._async_reads = AsyncRedisReads(self, parse_url(config.url))
        # the reader itself is the awaitable read: no coroutine frame in between
        self.read_async = self._async_reads  # type: ignore[method-assign]

    async def read_async(
        self, requests: Sequence[tuple[OnlineView, Sequence[bytes]]]
    ) -> list[list[bytes | None]]:
        return await self._async_reads(requests)  # replaced per instance in __init__

    def close(self) -> None:
        self._async_reads.close()
        super().close()


def _unix_class() -> type:
    from redis.connection import UnixDomainSocketConnection

    return UnixDomainSocketConnection
