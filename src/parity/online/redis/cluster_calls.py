"""Calls to a Redis Cluster whose worst case is one timeout, not one per node and more.

redis-py's cluster pipelines read the nodes' replies one after another, each waiting up to
the socket timeout, and on a timeout ask every start-up node for the slot map again, each
waiting as long: a frozen 3-node cluster made one read wait 3.5 s, and one write 3 s, with a
0.5 s timeout. Here (``call_by_slot``) every node's commands go out first, on this thread's
own connection to the node, then the replies are read: nodes answer in parallel, and the
first timeout ends the call. A command whose slot moved (MOVED, ASK, TRYAGAIN, CLUSTERDOWN)
comes back as that error, for the caller to send again through redis-py, which follows
redirects and refreshes its slot map. After a timeout the slot map is refreshed in the
background (a frozen primary may be failed over), so later calls are not stuck on a stale
map.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from redis.cluster import ClusterNode, RedisCluster
from redis.crc import key_slot
from redis.exceptions import (
    AskError,
    ClusterDownError,
    ConnectionError,
    NoScriptError,
    RedisClusterException,
    ResponseError,
    TryAgainError,
)
from redis.exceptions import TimeoutError as RedisTimeoutError

from parity.online.redis.scripts import CAS_SHA
from parity.online.redis.wire import CHUNK, pack

if TYPE_CHECKING:
    from parity.online.redis.store import RedisOnlineStore

REDIRECTED = (AskError, ClusterDownError, TryAgainError)  # MovedError is an AskError
"""Replies saying the command must go elsewhere (or later): redis-py's client sends it."""

_ROUND = 50_000  # keys per round of writes: bounds the client's buffers
_Chunk = tuple[int, list[bytes], list[bytes]]  # (slot, keys, records) of one EVALSHA
_refreshing = threading.Lock()  # one background slot-map refresh at a time


class SlotsUnknown(Exception):  # a signal to fall back, never shown
    """No node is known for a slot: the caller lets redis-py find the cluster's map."""


def call_by_slot(
    store: RedisOnlineStore, commands: Sequence[tuple[int, tuple[bytes, ...]]], *, write: bool
) -> list[Any]:
    """Each (slot, command) sent to the primary of its slot, every node's at once; the
    replies in order, a command's error as its reply. Raises redis-py's ``TimeoutError``
    (after the first timeout: ``write_timeout`` for writes, else ``socket_timeout``) or
    ``ConnectionError``; ``SlotsUnknown``."""
    client = store.client()
    assert isinstance(client, RedisCluster)
    by_node: dict[str, tuple[ClusterNode, list[int]]] = {}
    try:
        for i, (slot, _) in enumerate(commands):
            node = client.nodes_manager.get_node_from_slot(slot)
            by_node.setdefault(node.name, (node, []))[1].append(i)
    except RedisClusterException as exc:
        raise SlotsUnknown(str(exc)) from exc
    replies: list[Any] = [None] * len(commands)
    conns: list[Any] = []
    try:
        for node, idx in by_node.values():
            conn = _conn(store, client, node, write)
            conns.append(conn)
            packed = b"".join(b"".join(pack(commands[i][1], conn)) for i in idx)
            conn.send_packed_command([packed], check_health=False)
        for conn, (_, idx) in zip(conns, by_node.values(), strict=True):
            for i in idx:
                try:
                    replies[i] = conn.read_response()
                except ResponseError as exc:  # the reply was read: the connection is fine
                    replies[i] = exc
    except BaseException as exc:
        for conn in conns:
            conn.disconnect()  # replies may be unread: never reuse them
        if isinstance(exc, RedisTimeoutError):
            _refresh_in_background(client)
        raise
    return replies


def mget_cluster(store: RedisOnlineStore, keys: list[bytes]) -> list[bytes | None]:
    """The values of ``keys`` (None: none stored), in order: one MGET per slot."""
    by_slot: dict[int, list[int]] = {}
    for i, key in enumerate(keys):
        by_slot.setdefault(key_slot(key), []).append(i)
    client = store.client()
    assert isinstance(client, RedisCluster)
    groups = list(by_slot.items())
    try:
        replies = call_by_slot(
            store, [(slot, (b"MGET", *[keys[i] for i in idx])) for slot, idx in groups], write=False
        )
    except (ConnectionError, SlotsUnknown):  # e.g. a node restarted: redis-py re-maps
        return client.mget_nonatomic(keys)
    out: list[bytes | None] = [None] * len(keys)
    again: list[int] = []
    for (_, idx), reply in zip(groups, replies, strict=True):
        if isinstance(reply, REDIRECTED):
            again += idx
        elif isinstance(reply, Exception):
            raise reply
        else:
            for i, value in zip(idx, reply, strict=True):
                out[i] = value
    if again:
        for i, value in zip(again, client.mget_nonatomic([keys[i] for i in again]), strict=True):
            out[i] = value
    return out


def write_cluster(
    store: RedisOnlineStore, keys: list[bytes], records: list[bytes], ttl: bytes
) -> int:
    """``store.write`` on a cluster: EVALSHA of the write script over chunks of one slot's
    keys, every node's at once; returns how many records were stored."""
    client = store.client()
    assert isinstance(client, RedisCluster)
    groups: dict[int, tuple[list[bytes], list[bytes]]] = {}
    for key, record in zip(keys, records, strict=True):
        slot = key_slot(key)
        group = groups.get(slot)
        if group is None:
            group = groups[slot] = ([], [])
        group[0].append(key)
        group[1].append(record)
    pending: list[_Chunk] = [
        (slot, ks[i : i + CHUNK], rs[i : i + CHUNK])
        for slot, (ks, rs) in groups.items()
        for i in range(0, len(ks), CHUNK)
    ]
    stored = 0
    while pending:
        # A slot that missed the script (NOSCRIPT) runs all its later chunks again after
        # the reload, so repeated keys keep their order; so does a slot whose chunk must
        # go elsewhere (moved or migrating), through redis-py's client, which follows.
        missed: set[int] = set()
        moved: set[int] = set()
        retry: list[_Chunk] = []
        redirected: list[_Chunk] = []
        start = 0
        while start < len(pending):
            sent: list[_Chunk] = []
            size = 0
            while start < len(pending) and size < _ROUND:
                chunk = pending[start]
                start += 1
                if chunk[0] in missed:
                    retry.append(chunk)
                elif chunk[0] in moved:
                    redirected.append(chunk)
                else:
                    sent.append(chunk)
                    size += len(chunk[1])
            try:
                replies = call_by_slot(store, [_evalsha(store, c, ttl) for c in sent], write=True)
            except SlotsUnknown:
                replies = [AskError("no node known for the slot")] * len(sent)
            for chunk, reply in zip(sent, replies, strict=True):
                slot = chunk[0]
                if slot in moved or isinstance(reply, REDIRECTED):
                    moved.add(slot)
                    redirected.append(chunk)
                elif slot in missed or isinstance(reply, NoScriptError):
                    missed.add(slot)
                    retry.append(chunk)
                elif isinstance(reply, Exception):
                    raise reply
                else:
                    stored += reply
        for _, ks, rs in redirected:  # rare: one call each, redis-py routes by key
            try:
                stored += client.execute_command(
                    "EVALSHA", store._sha, len(ks), *ks, ttl, store._grace, *rs
                )
            except NoScriptError:
                store._reload()
                stored += client.execute_command(
                    "EVALSHA", store._sha, len(ks), *ks, ttl, store._grace, *rs
                )
        if retry:
            store._reload()  # SCRIPT LOAD goes to every primary
        pending = retry
    return stored


def cas_cluster(store: RedisOnlineStore, calls: list[tuple[bytes, str, bytes, bytes]]) -> list[Any]:
    """``store._cas`` on a cluster: one compare-and-set per (key, expected sha1, new, px),
    every node's at once; replies in order, errors as values."""
    client = store.client()
    sha = CAS_SHA.encode()
    commands = [
        (key_slot(k), (b"EVALSHA", sha, b"1", k, e.encode(), n, px)) for k, e, n, px in calls
    ]
    try:
        replies = call_by_slot(store, commands, write=True)
    except SlotsUnknown:
        replies = [AskError("no node known for the slot")] * len(calls)
    for i, reply in enumerate(replies):
        if isinstance(reply, REDIRECTED):  # rare: redis-py follows the redirect
            try:
                replies[i] = client.execute_command(*commands[i][1])
            except ResponseError as exc:
                replies[i] = exc
    return replies


def _evalsha(store: RedisOnlineStore, chunk: _Chunk, ttl: bytes) -> tuple[int, tuple[bytes, ...]]:
    slot, ks, rs = chunk
    return slot, (b"EVALSHA", store._sha.encode(), b"%d" % len(ks), *ks, ttl, store._grace, *rs)


def _conn(store: RedisOnlineStore, client: RedisCluster, node: ClusterNode, write: bool) -> Any:
    """This thread's connection to ``node`` for writes or for reads (a new one after a fork
    or ``store.close()``)."""
    local = store._local
    owner = (os.getpid(), store._generation)
    conns: dict[tuple[str, bool], Any] | None = getattr(local, "nodes", None)
    if conns is None or getattr(local, "nodes_owner", None) != owner:
        conns = local.nodes = {}
        local.nodes_owner = owner
    conn = conns.get((node.name, write))
    if conn is None:
        pool = client.get_redis_connection(node).connection_pool
        timeout = store.config.write_timeout if write else store.config.socket_timeout
        kwargs = {**pool.connection_kwargs, "socket_timeout": timeout}
        conn = conns[(node.name, write)] = pool.connection_class(**kwargs)
        store._track(conn)
    return conn


def _refresh_in_background(client: RedisCluster) -> None:
    if not _refreshing.acquire(blocking=False):
        return

    def refresh() -> None:
        try:
            client.nodes_manager.initialize()
        except Exception:  # the next call that falls back to redis-py tries again
            pass
        finally:
            _refreshing.release()

    threading.Thread(target=refresh, name="parity-redis-cluster-refresh", daemon=True).start()
