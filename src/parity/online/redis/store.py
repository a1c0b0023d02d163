"""The Redis online store: one STRING per (view, entity key), on plain Redis or Redis Cluster.

Key ``{key_prefix}{project}:{view}:`` + entity key bytes; value: the record bytes as given
(``parity.online.encoding``). Writes go through one Lua script (``redis_scripts``) run with
EVALSHA over chunks of ``_CHUNK`` keys: compare and SET are atomic per key, and keys
repeated in a batch resolve in order. A view with a ttl gets ``PXAT event + ttl + grace``
(an expiry already past: ``now + grace``; one past 2100: capped there, see ``scripts.py``);
that expiry only reclaims memory, the reader decides ``expired`` from the record's header.

A batch is not all-or-nothing: each chunk is atomic, the chunks are pipelined without MULTI.
Reads are one MGET (plain Redis) or one MGET per slot, pipelined per node (cluster). Plain
Redis is spoken over one connection per thread, bypassing redis-py's pool and command layer
(about 20 µs per call in redis-py 8) on the hot paths. Server and connection errors surface
as ``OnlineStoreError`` naming the server, caused by the client's error; ``setup`` raises
``ConfigError`` when it does not answer. Needs Redis >= 6.2.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import timedelta
from functools import partial
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis
from redis.backoff import NoBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.connection import parse_url
from redis.exceptions import (
    ConnectionError,
    NoScriptError,
    RedisClusterException,
    RedisError,
    ResponseError,
)
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from parity.errors import ConfigError, OnlineStoreError
from parity.online.base import (
    OnlineStore,
    OnlineView,
    RecordBatch,
    SupportsScan,
    SupportsUpdate,
    Updater,
)
from parity.online.redis.cluster_calls import cas_cluster, mget_cluster, write_cluster
from parity.online.redis.config import RedisOnlineConfig
from parity.online.redis.scripts import (
    CAS_SCRIPT,
    CAS_SHA,
    MAX_TTL_MS,
    NEVER,
    WRITE_SCRIPT,
    WRITE_SHA,
)
from parity.online.redis.wire import CHUNK as _CHUNK
from parity.online.redis.wire import pack as _pack

_PAGE = 1000  # keys per UNLINK and per SCAN page
_ERRORS = (RedisError, RedisClusterException)
_GLOB = str.maketrans({c: "\\" + c for c in "\\*?[]"})


class RedisOnlineStore(OnlineStore, SupportsUpdate, SupportsScan):
    """Latest records per (view, entity key) in Redis or a Redis Cluster."""

    def __init__(self, config: RedisOnlineConfig, project: str):
        self.config = config
        self.project = project
        self.cluster = config.cluster is not False
        if isinstance(config.cluster, list):
            self.where = "Redis Cluster " + ", ".join(config.cluster)
        else:
            self.where = ("Redis Cluster " if self.cluster else "Redis ") + _mask(config.url)
        self._base = f"{config.key_prefix}{project}:"
        self._prefixes: dict[str, bytes] = {}
        self._grace_ms = config.expire_grace_seconds * 1000
        self._grace = b"%d" % self._grace_ms
        self._sha = WRITE_SHA
        self._lock = threading.Lock()
        self._local = threading.local()
        self._conns: list[Any] = []  # every thread's connection, closed by close()
        self._generation = 0  # bumped by close(): threads then make new connections
        self._client: redis.Redis | RedisCluster | None = None
        if not self.cluster:  # connects on first use; a cluster client connects when made
            self._client = redis.Redis.from_url(
                config.url,
                decode_responses=False,
                retry=_once_on_lost_connection(),
                **_timeouts(config),
            )

    # -- the contract ----------------------------------------------------------------------

    def setup(self, views: Sequence[OnlineView]) -> None:
        """Check the server answers and load the write script (on every primary)."""
        try:
            client = self.client()
            client.ping()
            client.script_load(WRITE_SCRIPT)
            client.script_load(CAS_SCRIPT)
        except _ERRORS as exc:
            raise ConfigError(f"online store: cannot use {self.where}: {exc}") from None
        for view in views:
            self._prefix(view.name)

    def write(self, view: OnlineView, batch: RecordBatch) -> int:
        if not batch.keys:
            return 0
        prefix = self._prefixes.get(view.name) or self._prefix(view.name)
        keys = [prefix + k for k in batch.keys]
        ttl = NEVER if view.ttl is None else b"%d" % _ttl_ms(view.ttl)
        try:
            if self.cluster:
                return self._write_cluster(keys, batch.records, ttl)
            return self._write_plain(keys, batch.records, ttl)
        except _ERRORS as exc:
            raise self._error(f"write to view {view.name!r}", exc) from _root(exc)

    def read(
        self, requests: Sequence[tuple[OnlineView, Sequence[bytes]]]
    ) -> list[list[bytes | None]]:
        prefixes = self._prefixes
        keys: list[bytes] = []
        for view, entity_keys in requests:
            prefix = prefixes.get(view.name) or self._prefix(view.name)
            keys += [prefix + k for k in entity_keys]
        if not keys:
            return [[] for _ in requests]
        try:
            values = self._mget_cluster(keys) if self.cluster else self._mget(keys)
        except _ERRORS as exc:
            raise self._error("read", exc) from _root(exc)
        if len(requests) == 1:
            return [values]
        out: list[list[bytes | None]] = []
        start = 0
        for _, entity_keys in requests:
            end = start + len(entity_keys)
            out.append(values[start:end])
            start = end
        return out

    def update(self, view: OnlineView, keys: Sequence[bytes], fn: Updater) -> int:
        """Optimistic: read, compute, compare-and-set per key; keys another writer changed
        meanwhile are read and computed again (up to 50 rounds)."""
        prefix = self._prefix(view.name)
        pending = list(dict.fromkeys(keys))
        written = 0
        # A record lives its view's ttl (for an aggregated view, the horizon) plus the grace
        # after its last write, by the real clock.
        px = b"-1" if view.ttl is None else b"%d" % max(_ttl_ms(view.ttl) + self._grace_ms, 1)
        try:
            for _ in range(50):
                if not pending:
                    return written
                full = [prefix + k for k in pending]
                old = self._mget_cluster(full) if self.cluster else self._mget(full)
                new = fn(pending, old)
                todo = [(i, o, n) for i, (o, n) in enumerate(zip(old, new, strict=True)) if o != n]
                calls = [
                    (
                        full[i],
                        hashlib.sha1(o).hexdigest() if o is not None else "",
                        n if n is not None else b"",
                        px,
                    )
                    for i, o, n in todo
                ]
                replies = self._cas(calls)
                again = []
                for (i, _, _), reply in zip(todo, replies, strict=True):
                    if isinstance(reply, NoScriptError):  # a restarted or flushed server
                        again.append(pending[i])
                    elif isinstance(reply, Exception):
                        raise reply
                    elif reply:
                        written += 1
                    else:  # another writer changed it: read and compute again
                        again.append(pending[i])
                if any(isinstance(r, NoScriptError) for r in replies):
                    self.client().script_load(CAS_SCRIPT)  # on every primary of a cluster
                pending = again
        except _ERRORS as exc:
            raise self._error(f"update of view {view.name!r}", exc) from _root(exc)
        raise OnlineStoreError(
            f"online store {self.where}: update of view {view.name!r} kept conflicting "
            f"with other writers on {len(pending)} keys; try again"
        )

    def scan(self, view: OnlineView, chunk: int = 1000) -> Iterator[list[bytes]]:
        """SCAN over the view's prefix (every primary of a cluster)."""
        prefix = self._prefix(view.name)
        pattern = prefix.decode().translate(_GLOB).encode() + b"*"
        n = len(prefix)
        keys: list[bytes] = []
        try:
            for key in self.client().scan_iter(match=pattern, count=chunk):
                keys.append(key[n:])
                if len(keys) >= chunk:
                    yield keys
                    keys = []
        except _ERRORS as exc:
            raise self._error(f"scan of view {view.name!r}", exc) from _root(exc)
        if keys:
            yield keys

    def _cas(self, calls: list[tuple[bytes, str, bytes, bytes]]) -> list[Any]:
        """One compare-and-set per (key, expected sha1, new record, ttl ms), pipelined (per node on a
        cluster, whose client refuses scripts in its own pipelines); errors as values."""
        client = self.client()
        if not isinstance(client, RedisCluster):
            return self._send_all(
                [
                    (b"EVALSHA", CAS_SHA.encode(), b"1", k, e.encode(), n, px)
                    for k, e, n, px in calls
                ]
            )
        return cas_cluster(self, calls)

    def delete(self, view: OnlineView, keys: Sequence[bytes]) -> int:
        prefix = self._prefix(view.name)
        try:
            return self._unlink([prefix + k for k in keys])
        except _ERRORS as exc:
            raise self._error(f"delete from view {view.name!r}", exc) from _root(exc)

    def drop_views(self, names: Sequence[str]) -> None:
        for name in names:
            self._unlink_matching(f"{self._base}{name}:".translate(_GLOB) + "*")
            self._prefixes.pop(name, None)

    def teardown(self) -> None:
        self._unlink_matching(self._base.translate(_GLOB) + "*")
        self._prefixes.clear()

    def close(self) -> None:
        """Close every connection (call it when no call is in flight); used again, it reconnects."""
        with self._lock:
            conns, self._conns = self._conns, []
            self._generation += 1
        for conn in conns:
            conn.disconnect()
        client = self._client
        if client is not None:
            client.close()
        if self.cluster:
            self._client = None

    # -- plumbing ----------------------------------------------------------------------------

    def client(self) -> redis.Redis | RedisCluster:
        """The redis-py client (made on first use for a cluster)."""
        client = self._client
        if client is None:
            with self._lock:
                if self._client is None:
                    self._client = self._connect_cluster()
                client = self._client
        return client

    def _connect_cluster(self) -> RedisCluster:
        cfg = self.config
        # No retry of the cluster client's own: it would send a call that timed out again
        # (its retries cannot tell a timeout from a lost connection); the next call finds
        # the slots again.
        options: dict[str, Any] = {
            "decode_responses": False,
            "retry": Retry(NoBackoff(), 0),
            **_timeouts(cfg),
        }
        try:
            if not isinstance(cfg.cluster, list):
                return RedisCluster.from_url(cfg.url, **options)
            # The URL still carries credentials and TLS; its host is not a start node.
            url = parse_url(cfg.url)
            options.update({k: url[k] for k in ("username", "password") if url.get(k)})
            if urlsplit(cfg.url).scheme == "rediss":
                options["ssl"] = True
            nodes = [ClusterNode(*_host_port(n)) for n in cfg.cluster]
            return RedisCluster(startup_nodes=nodes, **options)
        except _ERRORS as exc:
            raise ConfigError(f"online store: cannot connect to {self.where}: {exc}") from None

    def _error(self, action: str, exc: Exception) -> OnlineStoreError:
        return OnlineStoreError(f"online store {self.where}: {action} failed: {exc}")

    def _prefix(self, view: str) -> bytes:
        prefix = self._prefixes.get(view)
        if prefix is None:
            prefix = self._prefixes[view] = f"{self._base}{view}:".encode()
        return prefix

    def _reload(self) -> None:
        sha = self.client().script_load(WRITE_SCRIPT)
        self._sha = sha.decode() if isinstance(sha, bytes) else sha

    # -- plain Redis: this thread's own connection -----------------------------------------

    def _conn(self) -> Any:
        """This thread's connection for reads (replies bounded by ``socket_timeout``)."""
        local = self._local
        conn = getattr(local, "conn", None)
        # A forked child, or a thread whose connection close() took, makes a new one.
        if conn is None or local.owner != (os.getpid(), self._generation):
            conn = self._new_conn(self.config.socket_timeout)
            local.conn, local.owner = conn, (os.getpid(), self._generation)
        return conn

    def _write_conn(self) -> Any:
        """This thread's connection for writes (replies bounded by ``write_timeout``)."""
        local = self._local
        conn = getattr(local, "wconn", None)
        if conn is None or local.wowner != (os.getpid(), self._generation):
            conn = self._new_conn(self.config.write_timeout)
            local.wconn, local.wowner = conn, (os.getpid(), self._generation)
        return conn

    def _new_conn(self, timeout: float) -> Any:
        pool = self.client().connection_pool  # type: ignore[union-attr]
        conn = pool.connection_class(**{**pool.connection_kwargs, "socket_timeout": timeout})
        self._track(conn)
        return conn

    def _mget(self, keys: list[bytes]) -> list[bytes | None]:
        args = (b"MGET", *keys)
        for attempt in (1, 2):
            conn = self._conn()
            try:
                conn.send_packed_command(_pack(args, conn), check_health=False)
                return conn.read_response()
            except ResponseError:
                raise  # the reply was read: the connection is fine
            except ConnectionError:
                conn.disconnect()  # e.g. left over from before a server restart: once more
                if attempt == 2:
                    raise
            except BaseException:
                conn.disconnect()
                raise
        raise AssertionError("unreachable")

    def _pipeline(self, commands: Callable[[], Iterable[tuple[bytes, ...]]]) -> list[Any]:
        """Send every command ``commands()`` yields, then read every reply (errors as values).

        Each command is built and packed while the server runs the ones before it (redis-py's
        pipeline packs everything first, leaving the server idle meanwhile).
        """
        for attempt in (1, 2):
            conn = self._write_conn()
            sent = 0
            try:
                for args in commands():
                    conn.send_packed_command(_pack(args, conn), check_health=False)
                    sent += 1
                return _replies(conn, sent)
            except ConnectionError:
                # Sending the commands again is safe (newer-wins, UNLINK); a count may then
                # be high by what the lost connection had done.
                conn.disconnect()
                if attempt == 2:
                    raise
            except BaseException:
                conn.disconnect()  # replies may be unread: never reuse it
                raise
        raise AssertionError("unreachable")

    def _send_all(self, commands: list[tuple[bytes, ...]]) -> list[Any]:
        """Every command in a few large writes, then every reply (errors as values). Never
        sent twice: a compare-and-set that landed before a lost connection must not be
        applied again, so a connection error is raised to the caller."""
        conn = self._write_conn()
        try:
            for i in range(0, len(commands), 512):
                packed = b"".join(b"".join(_pack(c, conn)) for c in commands[i : i + 512])
                conn.send_packed_command([packed], check_health=False)
            return _replies(conn, len(commands))
        except BaseException:
            conn.disconnect()  # replies may be unread: never reuse it
            raise

    def _write_plain(self, keys: list[bytes], records: list[bytes], ttl: bytes) -> int:
        spans = [(i, min(i + _CHUNK, len(keys))) for i in range(0, len(keys), _CHUNK)]
        stored = 0
        while spans:
            sha = self._sha.encode()
            commands = partial(_evalsha_commands, sha, spans, keys, records, ttl, self._grace)
            replies = self._pipeline(commands)
            # NOSCRIPT (a restarted or flushed server): load the script and go on from the
            # first chunk that missed it, so repeated keys keep their order.
            missed = len(spans)
            for i, reply in enumerate(replies):
                if isinstance(reply, NoScriptError):
                    missed = i
                    break
                if isinstance(reply, Exception):
                    raise reply
                stored += reply
            spans = spans[missed:]
            if spans:
                self._reload()
        return stored

    # -- cluster -------------------------------------------------------------------------------

    def _mget_cluster(self, keys: list[bytes]) -> list[bytes | None]:
        return mget_cluster(self, keys)  # one MGET per slot, all nodes at once

    def _track(self, conn: Any) -> None:
        """Close ``conn`` with the store (``close()``)."""
        with self._lock:
            self._conns.append(conn)

    def _write_cluster(self, keys: list[bytes], records: list[bytes], ttl: bytes) -> int:
        return write_cluster(self, keys, records, ttl)

    # -- removing keys ---------------------------------------------------------------------

    def _unlink(self, keys: list[bytes]) -> int:
        if not keys:
            return 0
        pages = [keys[i : i + _PAGE] for i in range(0, len(keys), _PAGE)]
        if self.cluster:  # the cluster client splits by slot and pipelines per node
            client = self.client()
            return sum(client.unlink(*page) for page in pages)
        replies = self._pipeline(lambda: ((b"UNLINK", *page) for page in pages))
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        return sum(replies)

    def _unlink_matching(self, pattern: str) -> None:
        """SCAN every primary for ``pattern`` and UNLINK what it finds, a page at a time."""
        try:
            client = self.client()
            if isinstance(client, RedisCluster):
                nodes = [node.redis_connection for node in client.get_primaries()]
            else:
                nodes = [client]
            for node in nodes:
                found: list[bytes] = []
                for key in node.scan_iter(match=pattern.encode(), count=_PAGE):
                    found.append(key)
                    if len(found) >= _PAGE:
                        self._unlink(found)
                        found = []
                self._unlink(found)
        except _ERRORS as exc:
            raise self._error(f"removing keys matching {pattern!r}", exc) from _root(exc)


def _root(exc: BaseException) -> BaseException:
    """The timeout or lost connection behind ``exc`` (redis-py's cluster client wraps them in
    a ``RedisClusterException``), else ``exc``: what an error of the store is caused by."""
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            break
        if isinstance(seen, ConnectionError | RedisTimeoutError | OSError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return exc


def _timeouts(config: RedisOnlineConfig) -> dict[str, float]:
    return {
        "socket_timeout": config.write_timeout,  # reads use their own connections
        "socket_connect_timeout": config.socket_connect_timeout,
    }


def _once_on_lost_connection() -> Retry:
    """redis-py's retry for the plain client: a lost connection (e.g. a restarted server) is
    tried once more at once; a timeout is not (redis-py's default, three retries with
    backoff on timeouts too, makes a frozen server cost four timeouts and more per call)."""
    return Retry(NoBackoff(), 1, supported_errors=(ConnectionError,))


def _ttl_ms(ttl: timedelta) -> int:
    """A view's ttl in ms for the scripts: rounded up (a key is never reclaimed before its
    record expired), at most ``MAX_TTL_MS`` (longer changes nothing inside the range)."""
    return min(-(-ttl // timedelta(milliseconds=1)), MAX_TTL_MS)


def _evalsha_commands(
    sha: bytes,
    spans: list[tuple[int, int]],
    keys: list[bytes],
    records: list[bytes],
    ttl: bytes,
    grace: bytes,
) -> Iterator[tuple[bytes, ...]]:
    for lo, hi in spans:
        yield (b"EVALSHA", sha, b"%d" % (hi - lo), *keys[lo:hi], ttl, grace, *records[lo:hi])


def _replies(conn: Any, n: int) -> list[Any]:
    """The next ``n`` replies on ``conn``; a command's error is its reply, not raised."""
    replies: list[Any] = []
    for _ in range(n):
        try:
            replies.append(conn.read_response())
        except ResponseError as exc:
            replies.append(exc)
    return replies


def _mask(url: str) -> str:
    """The URL without its password, fit for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username or ''}:***@{parts.hostname or ''}"
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


def _host_port(node: str) -> tuple[str, int]:
    host, _, port = node.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"online store: cluster node {node!r} is not 'host:port'")
    return host.strip("[]"), int(port)
