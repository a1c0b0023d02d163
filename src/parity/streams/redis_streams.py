"""Redis Streams: a consumer group read with XREADGROUP, dead consumers' entries taken over
with XAUTOCLAIM, acknowledged with XACK.

A new group starts at the stream's first entry (``start="earliest"``, ``XGROUP CREATE .. 0
MKSTREAM``: nothing produced before the first run is skipped) or at its end (``"latest"``,
``$``). Each process is a new consumer of the group (``consumer_name()``); an entry another
consumer has held unacknowledged for ``claim_idle`` seconds (it died, or was killed) is
claimed and delivered again, before new entries. Entries trimmed from the stream while
pending cannot be read back: they are acknowledged and reported (a warning), since nothing
is left of them to apply. Dead letters are XADDed to ``<stream>.dead`` with the original
payload (field ``data``) and ``reason``, ``detail``, ``field``, ``source``, ``offset``.
The stream itself is never trimmed by Parity: producers bound it (``XADD MAXLEN ~``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

import redis

from parity.definitions import StreamSource
from parity.errors import DataSourceError
from parity.streams.base import (
    ConsumerOptions,
    ConsumerStatus,
    DeadLetter,
    Message,
    StreamConsumer,
)

__all__ = ["RedisStreamsConsumer"]

log = logging.getLogger("parity.streams.redis")

_ACK_CHUNK = 10_000
_IDLE_CONSUMER_S = 3600.0
"""A consumer holding nothing and silent this long is removed from the group (restarted
processes would otherwise pile up in XINFO CONSUMERS)."""


class RedisStreamsConsumer(StreamConsumer):
    """One member of a stream source's consumer group on Redis (see the module docstring)."""

    broker = "redis_streams"
    concurrent_poll = True  # redis-py's client is thread-safe (a connection per call)

    def __init__(self, source: StreamSource, options: ConsumerOptions) -> None:
        super().__init__(source, options)
        self._client: redis.Redis | None = None
        self._stream = source.stream.encode()
        self._group = source.group.encode()
        self._name = options.consumer.encode()
        self._payload = source.payload_field.encode()
        self._dead = source.dead_letter_stream.encode()
        self._claim_cursor: bytes | None = b"0-0"  # claim from the start at the first poll
        self._acks: list[str] = []  # committed, the XACK not sent yet (commit(wait=False))
        self._acks_lock = threading.Lock()
        self._next_claim = 0.0

    # -- connection ---------------------------------------------------------------------

    def open(self) -> None:
        """Connect and create the group (and the stream) when missing."""
        try:
            self._client = redis.Redis.from_url(
                self.source.url,
                socket_timeout=self.options.block + 10.0,
                socket_connect_timeout=5.0,
                health_check_interval=30,
            )
            # Replies as Redis sends them (entries' fields a flat list): redis-py's dict per
            # entry costs more than the rest of reading.
            self._client.set_response_callback("XREADGROUP", _raw)
            self._client.set_response_callback("XAUTOCLAIM", _raw)
            start = "0" if self.source.start == "earliest" else "$"
            if not self.options.create:
                return
            try:
                self._client.xgroup_create(self._stream, self._group, id=start, mkstream=True)
                log.info(
                    "source %r: created consumer group %r on stream %r (from %s)",
                    self.source.name,
                    self.source.group,
                    self.source.stream,
                    self.source.start,
                )
            except redis.ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise
            self._forget_idle_consumers()
        except redis.RedisError as exc:
            raise self._error("cannot open the stream", exc) from exc

    def close(self) -> None:
        if self._client is not None:
            try:
                self.flush()
            finally:
                self._client.close()
            self._client = None

    def _error(self, what: str, exc: BaseException) -> DataSourceError:
        return DataSourceError(
            f"stream source {self.source.name!r}: {what} {self.source.stream!r} at "
            f"{_mask(self.source.url)}: {type(exc).__name__}: {exc}"
        )

    @property
    def client(self) -> redis.Redis:
        if self._client is None:
            raise DataSourceError(f"stream source {self.source.name!r}: consumer is not open")
        return self._client

    def _forget_idle_consumers(self) -> None:
        try:
            consumers = self.client.xinfo_consumers(self._stream, self._group)
        except redis.ResponseError:
            return
        for c in consumers:
            idle_s = int(c.get("idle", 0)) / 1000
            if int(c.get("pending", 0)) == 0 and idle_s > _IDLE_CONSUMER_S:
                self.client.xgroup_delconsumer(self._stream, self._group, c["name"])

    # -- reading ------------------------------------------------------------------------

    def poll(self, max_messages: int) -> list[Message]:
        try:
            claimed = self._claim(max_messages)
            if claimed:
                return claimed
            acks = self._take_acks()
            if not acks:
                reply = self.client.xreadgroup(
                    self.source.group,
                    self.options.consumer,
                    {self._stream: b">"},
                    count=max_messages,
                    block=max(1, int(self.options.block * 1000)),
                )
            else:  # the acks committed since the last poll ride on this round trip
                pipe = self.client.pipeline(transaction=False)
                pipe.xack(self._stream, self._group, *acks)
                pipe.xreadgroup(
                    self.source.group,
                    self.options.consumer,
                    {self._stream: b">"},
                    count=max_messages,
                    block=max(1, int(self.options.block * 1000)),
                )
                try:
                    reply = pipe.execute()[1]
                except BaseException:
                    self._return_acks(acks)  # sent again with the next call (XACK is idempotent)
                    raise
        except redis.ResponseError as exc:
            if "NOGROUP" in str(exc):  # the stream or group was deleted under us: recreate
                self.open()
                return []
            raise self._error("cannot read", exc) from exc
        except redis.RedisError as exc:
            raise self._error("cannot read", exc) from exc
        if not reply:
            return []
        # RESP3 (redis-py 8's default) answers a map {stream: entries}; RESP2 a list.
        entries = reply[self._stream] if isinstance(reply, dict) else reply[0][1]
        return self._messages(entries, redelivered=False)

    def _messages(self, entries: Sequence[Any], *, redelivered: bool) -> list[Message]:
        """Entries (``[id, [field, value, ...]]``) as messages."""
        payload = self._payload
        out = []
        for entry_id, fields in entries:
            if fields is None:  # claimed, but trimmed meanwhile (handled by the caller)
                continue
            if fields and fields[0] == payload:  # the usual entry: the payload field alone
                body = fields[1]
            else:
                body = next(
                    (fields[i + 1] for i in range(0, len(fields), 2) if fields[i] == payload), None
                )
            ms = int(entry_id[: entry_id.index(b"-")])
            out.append(Message(entry_id.decode(), body, ms * 1000, redelivered))
        return out

    def _claim(self, count: int) -> list[Message]:
        """Entries idle at other consumers beyond ``claim_idle``, delivered to this one."""
        now = time.monotonic()
        if self._claim_cursor is None:
            if now < self._next_claim:
                return []
            self._claim_cursor = b"0-0"
        reply = self.client.xautoclaim(
            self._stream,
            self._group,
            self._name,
            min_idle_time=int(self.options.claim_idle * 1000),
            start_id=self._claim_cursor,
            count=count,
        )
        cursor, entries = reply[0], reply[1]
        deleted = reply[2] if len(reply) > 2 else []
        if deleted:
            log.warning(
                "source %r: %d pending entries were trimmed from stream %r before they were "
                "applied; acknowledged (nothing is left of them): %s",
                self.source.name,
                len(deleted),
                self.source.stream,
                [d.decode() for d in deleted[:5]],
            )
            self.client.xack(self._stream, self._group, *deleted)
        if cursor in (b"0-0", "0-0"):
            self._claim_cursor = None
            self._next_claim = now + max(self.options.claim_idle / 2, 0.05)
        else:
            self._claim_cursor = cursor
        messages = self._messages(entries, redelivered=True)
        if messages:
            log.info(
                "source %r: claimed %d entries another consumer left unacknowledged",
                self.source.name,
                len(messages),
            )
        return messages

    # -- acknowledging ------------------------------------------------------------------

    def commit(self, messages: Sequence[Message], *, wait: bool = True) -> None:
        """XACK ``messages``; with ``wait=False`` the XACK goes with the next poll's
        XREADGROUP (one round trip less per batch; ``status`` and ``close`` send it first)."""
        if not wait:
            with self._acks_lock:
                self._acks.extend(m.offset for m in messages)
            return
        ids = self._take_acks() + [m.offset for m in messages]
        try:
            for i in range(0, len(ids), _ACK_CHUNK):
                self.client.xack(self._stream, self._group, *ids[i : i + _ACK_CHUNK])
        except redis.RedisError as exc:
            self._return_acks(ids)
            raise self._error("cannot acknowledge on", exc) from exc

    def extend(self, messages: Sequence[Message]) -> None:
        """XCLAIM (JUSTID) the entries this consumer still holds and that have been idle for
        a third of ``claim_idle``: their idle time starts again, so no other consumer's
        XAUTOCLAIM takes them while this one writes (an entry another consumer claimed
        since is idle for less than that and stays with it)."""
        ids: list[Any] = [m.offset for m in messages]
        min_idle = max(1, int(self.options.claim_idle * 1000 / 3))
        try:
            for i in range(0, len(ids), _ACK_CHUNK):
                self.client.xclaim(
                    self._stream,
                    self._group,
                    self._name,
                    min_idle,
                    ids[i : i + _ACK_CHUNK],
                    justid=True,
                )
        except redis.RedisError as exc:
            raise self._error("cannot extend the claim on", exc) from exc

    def _take_acks(self) -> list[str]:
        with self._acks_lock:
            acks, self._acks = self._acks, []
        return acks

    def _return_acks(self, acks: list[str]) -> None:
        with self._acks_lock:
            self._acks[:0] = acks

    def flush(self) -> None:
        """Send the acknowledgements ``commit(wait=False)`` left for the next poll."""
        if self._acks:
            self.commit([])

    def dead_letter(self, letters: Sequence[DeadLetter]) -> None:
        if not letters:
            return
        try:
            pipe = self.client.pipeline(transaction=False)
            for letter in letters:
                m = letter.message
                pipe.xadd(
                    self._dead,
                    {
                        b"data": m.payload if m.payload is not None else b"",
                        b"reason": letter.reason,
                        b"detail": letter.detail,
                        b"field": letter.field or "",
                        b"source": self.source.name,
                        b"offset": m.offset,
                    },
                )
            pipe.execute()
        except redis.RedisError as exc:
            raise self._error("cannot write dead letters of", exc) from exc

    # -- status -------------------------------------------------------------------------

    def status(self) -> ConsumerStatus:
        self.flush()
        c = self.client
        try:
            length = int(c.xlen(self._stream))
            groups = c.xinfo_groups(self._stream)
            dead = int(c.xlen(self._dead))
        except redis.ResponseError:  # no stream yet
            return ConsumerStatus(group=self.source.group, stream_length=0, dead_letters=0)
        except redis.RedisError as exc:
            raise self._error("cannot read the status of", exc) from exc
        info = next((g for g in groups if _text(g.get("name")) == self.source.group), None)
        if info is None:
            return ConsumerStatus(group=self.source.group, stream_length=length, dead_letters=dead)
        pending = int(info.get("pending", 0))
        delivered = _text(info.get("last-delivered-id"))
        lag = info.get("lag")
        if lag is None:  # Redis cannot count after deletions: zero when nothing is newer
            last = c.xrevrange(self._stream, count=1)
            newest = _text(last[0][0]) if last else None
            if newest is None or (delivered and _entry(newest) <= _entry(delivered)):
                lag = 0
        committed = delivered
        if pending:
            summary = c.xpending(self._stream, self._group)
            oldest = _text(summary.get("min"))
            committed = f"before {oldest}" if oldest else None
        return ConsumerStatus(
            group=self.source.group,
            stream_length=length,
            pending=pending,
            unconsumed=None if lag is None else int(lag),
            last_delivered=delivered,
            last_committed=committed,
            consumers=int(info.get("consumers", 0)),
            dead_letters=dead,
        )


def _entry(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def _raw(response: Any, **_options: Any) -> Any:
    return response


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)


def _mask(url: str) -> str:
    """The URL without its password."""
    if "@" not in url:
        return url
    scheme, rest = url.split("://", 1) if "://" in url else ("", url)
    creds, host = rest.rsplit("@", 1)
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if scheme else f"{user}:***@{host}"
