"""The NATS JetStream consumer: a durable pull consumer shared by every process of a group.

Every process reading a source binds to the one durable consumer named ``source.group``;
JetStream hands each message to one of them and redelivers a message left unacknowledged
for ``options.claim_idle`` seconds (the durable's ack wait) to whichever asks next, which is
how a dead process's messages reach the living. The durable is created on first use with
explicit acks, unlimited redeliveries and ``max_ack_pending`` of ``MAX_ACK_PENDING``.

nats-py is asyncio, the runner is not: the consumer owns a private event loop, run by a
thread of its own from ``open()`` to ``close()``; every call hands its coroutine to that
loop and waits for it, so calls may come from several threads at once (the runner polls on
one while it commits and extends on another), and the connection answers the server's
pings between calls. ``commit`` returns only once the server answered for its acks.

``poll`` does not use nats-py's ``fetch``, whose per-message ``wait_for`` held fetch and
ack to about 34,000 messages/s on two cores; it sends the JetStream pull requests itself to
an inbox whose callback only appends: about 90,000 messages/s polled and committed in
batches of 2,000 (55,000 with both cores busy elsewhere). One request is out at a time:
first a ``no_wait`` one (the server sends what it has, then "404 No Messages"), and when it
found nothing, one that waits until the poll's deadline; what it delivers after the poll
returned is kept for the next poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections import deque
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext, api

from parity.definitions import StreamSource
from parity.errors import DataSourceError
from parity.streams.base import (
    ConsumerOptions,
    ConsumerStatus,
    DeadLetter,
    Message,
    StreamConsumer,
)
from parity.streams.nats_tools import add_stream, close_loop, redacted_url

__all__ = ["MAX_ACK_PENDING", "NatsJetStreamConsumer"]

log = logging.getLogger("parity.streams")

T = TypeVar("T")

MAX_ACK_PENDING = 100_000
"""Unacknowledged messages the durable allows across all its processes. Each process holds
at most about two poll batches (a few thousand each), and a dead process's messages count
until they are redelivered and acknowledged; reaching the limit stalls delivery to the whole
group, so it is set well above several processes' batches."""

CONNECT_GIVE_UP = 3.0
"""Seconds ``open()`` keeps trying to reach the server before it raises. Once connected, a
lost connection is retried every second for two minutes (during calls) before calls raise."""

_API = "$JS.API"
_ACK_REPLY_TIMEOUT = 10.0
_NO_WAIT_SAFETY = 10.0  # a no_wait request unanswered this long is taken as lost
_LINGER_GRACE = 1.0  # the server's 408 for an expired request may arrive this late
_END_OF_REQUEST = {"404", "408"}  # No Messages, Request Timeout
_FATAL = ("consumer deleted", "push based")  # 409 descriptions that end the consumer


class _Refused(Exception):
    """The server ended this consumer's pulls for good (its durable was deleted...)."""


@dataclass(slots=True)
class _Pull:
    """One pull request this consumer has out: the server sends up to ``batch`` messages."""

    reply: str
    batch: int
    no_wait: bool
    ends_at: float  # loop time after which it is taken as ended without word from the server
    received: int = 0


class NatsJetStreamConsumer(StreamConsumer):
    """Reads a JetStream stream as one process of the durable consumer ``source.group``.

    ``open()`` creates the stream ``source.stream`` when it does not exist (subjects
    ``[source.subject]``, or ``[f"{stream}.>"]`` without a filter), the durable (filtered on
    ``source.subject``; ``start`` gives its deliver policy) and a stream holding the
    dead-letter subject ``source.dead_letter_stream`` when no stream does (``<stream>_dead``).
    When the source's own stream holds the dead-letter subject and the filter matches it,
    ``poll`` acknowledges and drops those messages: a consumer never reads its own dead
    letters. ``Message.offset`` is the stream sequence, ``append_us`` the server's store time.
    Broker failures raise ``DataSourceError`` naming the source and server.
    """

    broker = "nats_jetstream"
    concurrent_poll = True  # every call runs on the consumer's own loop thread

    def __init__(self, source: StreamSource, options: ConsumerOptions) -> None:
        super().__init__(source, options)
        self.dead_subject = source.dead_letter_stream
        self.dead_stream: str | None = None
        """The stream holding ``dead_subject`` (known after ``open()``)."""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._buffer: deque[Msg] = deque()
        self._pull: _Pull | None = None
        self._arrived: asyncio.Event | None = None
        self._inbox = ""
        self._requests = 0
        self._fatal: str | None = None
        self._last_error: BaseException | None = None

    # -- the contract -----------------------------------------------------------------

    def open(self) -> None:
        if self._loop is not None:
            return
        self._fatal = self._last_error = None
        loop = asyncio.new_event_loop()
        thread = threading.Thread(
            target=loop.run_forever, name=f"parity-nats-{self.source.name}", daemon=True
        )
        thread.start()
        self._loop, self._thread = loop, thread
        try:
            asyncio.run_coroutine_threadsafe(self._open(), loop).result()
        except BaseException:
            self.close()
            raise

    def poll(self, max_messages: int) -> list[Message]:
        if max_messages < 1:
            raise ValueError(f"max_messages must be at least 1, got {max_messages}")
        msgs = self._run(self._poll(max_messages), "poll")
        return [_message(m) for m in msgs]

    def commit(self, messages: Sequence[Message], *, wait: bool = True) -> None:
        # Always now (``wait`` is a permission, not a request): acks are cheap publishes and
        # the last one's reply is awaited, so "commit returned" means acknowledged.
        for m in messages:
            if not isinstance(m.token, Msg):
                raise DataSourceError(
                    f"stream source {self.source.name!r}: cannot commit message {m.offset}, "
                    "it was not delivered by JetStream"
                )
        if messages:
            self._run(self._commit(messages), "commit")

    def dead_letter(self, letters: Sequence[DeadLetter]) -> None:
        if letters:
            self._run(self._dead_letter(letters), f"dead-letter to {self.dead_subject!r}")

    def status(self) -> ConsumerStatus:
        return self._run(self._status(), "status")

    def close(self) -> None:
        loop, nc, thread = self._loop, self._nc, self._thread
        self._loop = self._nc = self._js = self._thread = None
        if loop is None:
            return
        try:
            if nc is not None and not nc.is_closed:
                closing = asyncio.wait_for(nc.close(), CONNECT_GIVE_UP)
                asyncio.run_coroutine_threadsafe(closing, loop).result()
        except (nats.errors.Error, OSError, TimeoutError) as e:
            log.debug("stream source %r: closing the connection: %s", self.source.name, e)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            if thread is not None:
                thread.join(CONNECT_GIVE_UP + 5.0)
            close_loop(loop)
            self._buffer.clear()
            self._pull = None

    def extend(self, messages: Sequence[Message]) -> None:
        """Tell JetStream these messages, and those delivered here and not polled yet, are
        still being worked on (+WPI: the ack wait starts again), so it does not deliver them
        to another consumer meanwhile."""
        tokens = [m.token for m in messages if isinstance(m.token, Msg) and not m.token.is_acked]
        self._run(self._in_progress(tokens), "extend")

    async def _in_progress(self, tokens: list[Msg]) -> None:
        # Deliveries buffered here and not polled yet wait behind the same slow batch:
        # their ack wait starts again too.
        for token in [*tokens, *self._buffer]:
            if not token.is_acked:
                await token.in_progress()
        await self._nc_.flush()

    # -- opening ----------------------------------------------------------------------

    async def _open(self) -> None:
        self._arrived = asyncio.Event()
        try:
            self._nc = await asyncio.wait_for(self._connect(), CONNECT_GIVE_UP)
        except (nats.errors.Error, OSError, TimeoutError) as e:
            cause = self._last_error or e
            raise DataSourceError(
                f"stream source {self.source.name!r}: cannot reach NATS at {self._url} "
                f"(gave up after {CONNECT_GIVE_UP:g} s): {_describe(cause)}"
            ) from cause
        self._js = self._nc.jetstream()
        if not self.options.create:  # for status(): read what exists, create nothing
            with contextlib.suppress(nats.js.errors.NotFoundError):
                self.dead_stream = await self._js.find_stream_name_by_subject(self.dead_subject)
            return
        try:
            await self._ensure_stream()
            await self._ensure_durable()
            await self._ensure_dead_stream()
            self._inbox = self._nc.new_inbox()
            await self._nc.subscribe(
                f"{self._inbox}.*",
                cb=self._on_msg,
                pending_msgs_limit=0,  # no limit: the callback only appends, drop nothing
                pending_bytes_limit=0,
            )
        except (nats.errors.Error, OSError, TimeoutError) as e:
            raise self._error("open", e) from e

    async def _connect(self) -> Client:
        async def on_error(e: Exception) -> None:
            self._last_error = e
            if self._nc is None:  # still in open(): it raises with the last cause
                return
            log.warning("stream source %r: NATS at %s: %s", self.source.name, self._url, e)

        async def on_reconnect() -> None:
            # Pull requests do not survive a reconnect: ask again on the next poll.
            self._pull = None
            log.info("stream source %r: reconnected to NATS at %s", self.source.name, self._url)

        return await nats.connect(
            self.source.url,
            name=self.options.consumer,
            connect_timeout=2,
            reconnect_time_wait=1,
            max_reconnect_attempts=120,
            error_cb=on_error,
            reconnected_cb=on_reconnect,
        )

    async def _ensure_stream(self) -> None:
        js, stream = self._jsx, self.source.stream
        try:
            await js.stream_info(stream)
            return
        except nats.js.errors.NotFoundError:
            pass
        subjects = [self.source.subject or f"{stream}.>"]
        await add_stream(js, stream, subjects)
        log.info(
            "stream source %r: created JetStream stream %r %s", self.source.name, stream, subjects
        )

    async def _ensure_durable(self) -> None:
        js, stream, group = self._jsx, self.source.stream, self.source.group
        try:
            info = await js.consumer_info(stream, group)
        except nats.js.errors.NotFoundError:
            info = None
        if info is None:
            config = api.ConsumerConfig(
                durable_name=group,
                filter_subject=self.source.subject,
                ack_policy=api.AckPolicy.EXPLICIT,
                ack_wait=self.options.claim_idle,
                deliver_policy=(
                    api.DeliverPolicy.ALL
                    if self.source.start == "earliest"
                    else api.DeliverPolicy.NEW
                ),
                max_deliver=-1,
                max_ack_pending=MAX_ACK_PENDING,
            )
            try:
                info = await js.add_consumer(stream, config)
            except nats.js.errors.BadRequestError as e:
                try:  # another process made it first?
                    info = await js.consumer_info(stream, group)
                except nats.js.errors.NotFoundError:
                    raise e from None
            else:
                log.info(
                    "stream source %r: created durable consumer %r on stream %r (from %s)",
                    self.source.name, group, stream, self.source.start,
                )  # fmt: skip
        self._check_durable(info.config)

    def _check_durable(self, config: api.ConsumerConfig) -> None:
        where = f"stream source {self.source.name!r}: durable consumer {self.source.group!r}"
        if config.deliver_subject:
            raise DataSourceError(f"{where} is a push consumer; a stream source needs a pull one")
        if config.ack_policy != api.AckPolicy.EXPLICIT:
            raise DataSourceError(
                f"{where} acknowledges {config.ack_policy}; a stream source needs explicit acks"
            )
        if (config.filter_subject or None) != self.source.subject:
            raise DataSourceError(
                f"{where} on stream {self.source.stream!r} filters subject "
                f"{config.filter_subject or '(all)'!r}, the source says "
                f"{self.source.subject or '(all)'!r}; name another group or delete the consumer"
            )
        if config.ack_wait is not None and abs(config.ack_wait - self.options.claim_idle) > 1e-3:
            # Not updated: `parity stream status` opens with default options and must not
            # change what the running consumers agreed on.
            log.warning(
                "%s redelivers after %g s (its ack wait), not this consumer's claim_idle %g s",
                where, config.ack_wait, self.options.claim_idle,
            )  # fmt: skip

    async def _ensure_dead_stream(self) -> None:
        js = self._jsx
        try:
            self.dead_stream = await js.find_stream_name_by_subject(self.dead_subject)
            return
        except nats.js.errors.NotFoundError:
            pass
        name = f"{self.source.stream}_dead"
        await add_stream(js, name, [self.dead_subject])
        self.dead_stream = name
        log.info(
            "stream source %r: created JetStream stream %r for dead letters (%s)",
            self.source.name, name, self.dead_subject,
        )  # fmt: skip

    # -- reading ----------------------------------------------------------------------

    async def _on_msg(self, msg: Msg) -> None:
        """Every delivery and pull status lands here; the inbox's only reader."""
        pull = self._pull
        if not msg.reply:  # a status (no ack subject): the end of one of our requests
            self._on_status(msg, pull)
        else:
            if pull is not None:
                pull.received += 1
                if pull.received >= pull.batch:
                    self._pull = None  # a filled request ends without a status
            if msg.subject == self.dead_subject:
                await self._nc_.publish(msg.reply, b"+ACK")  # our own dead letter: dropped
            else:
                self._buffer.append(msg)
        if self._arrived is not None:
            self._arrived.set()

    def _on_status(self, msg: Msg, pull: _Pull | None) -> None:
        headers = msg.headers or {}
        code = headers.get("Status", "")
        if code == "100":  # heartbeat
            return
        if pull is not None and msg.subject == pull.reply:
            self._pull = None
        if code in _END_OF_REQUEST:
            return
        description = headers.get("Description", "")
        if code == "409" and any(f in description.lower() for f in _FATAL):
            self._fatal = f"{code} {description}"
        else:  # e.g. 409 Exceeded MaxWaiting, Leadership Change: ask again later
            log.debug("stream source %r: pull ended %s %s", self.source.name, code, description)

    async def _poll(self, n: int) -> list[Msg]:
        loop, buffer = self._loopx, self._buffer
        deadline = loop.time() + self.options.block
        asked = False
        while len(buffer) < n and self._fatal is None:
            now = loop.time()
            pull = self._pull
            if pull is not None and now > pull.ends_at:
                self._pull = pull = None
            if pull is None:
                if not asked:
                    await self._request(n - len(buffer), no_wait=True, now=now)
                    asked = True
                    continue
                if buffer or deadline - now < 0.01:
                    break
                await self._request(n, no_wait=False, now=now, expires=deadline - now)
                continue
            if buffer and not pull.no_wait:
                break  # a waiting request has delivered: return now, the rest comes later
            if now >= deadline:
                break
            await self._wait(min(deadline, pull.ends_at))
        if self._fatal is not None:
            raise _Refused(f"JetStream ended the pull: {self._fatal}")
        return [buffer.popleft() for _ in range(min(n, len(buffer)))]

    async def _request(self, batch: int, *, no_wait: bool, now: float, expires: float = 0) -> None:
        self._requests += 1
        reply = f"{self._inbox}.{self._requests}"
        body: dict[str, Any] = {"batch": batch}
        if no_wait:  # without "expires": with one the server waits for the batch to fill
            body["no_wait"] = True
            ends_at = now + max(_NO_WAIT_SAFETY, self.options.block)
        else:
            body["expires"] = max(int(expires * 1e9) - 100_000, 1_000_000)
            ends_at = now + expires + _LINGER_GRACE
        self._pull = _Pull(reply=reply, batch=batch, no_wait=no_wait, ends_at=ends_at)
        subject = f"{_API}.CONSUMER.MSG.NEXT.{self.source.stream}.{self.source.group}"
        await self._nc_.publish(subject, json.dumps(body).encode(), reply=reply)

    async def _wait(self, until: float) -> None:
        arrived = self._arrived
        assert arrived is not None
        arrived.clear()
        timeout = until - self._loopx.time()
        if timeout > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(arrived.wait(), timeout)

    # -- acknowledging, dead letters, status ---------------------------------------------

    async def _commit(self, messages: Sequence[Message]) -> None:
        todo = [m.token for m in messages if not m.token.is_acked]  # acking twice: a no-op
        if not todo:
            return
        for token in todo[:-1]:
            await token.ack()
        # The last one waits for the server's reply: the durable handles its acks in order,
        # so when it answers every ack is applied ("commit returned" means acknowledged;
        # a flush would only mean the server has the bytes, not the consumer's state).
        await todo[-1].ack_sync(timeout=_ACK_REPLY_TIMEOUT)

    async def _dead_letter(self, letters: Sequence[DeadLetter]) -> None:
        js = self._jsx
        for start in range(0, len(letters), 1000):  # bounded concurrency
            await asyncio.gather(
                *(
                    js.publish(
                        self.dead_subject, d.message.payload or b"", headers=self._headers(d)
                    )
                    for d in letters[start : start + 1000]
                )
            )

    def _headers(self, letter: DeadLetter) -> dict[str, str]:
        m = letter.message
        return {
            "Parity-Reason": _header(letter.reason),
            "Parity-Detail": _header(letter.detail),
            "Parity-Field": _header(letter.field or ""),
            "Parity-Source": self.source.name,
            "Parity-Offset": m.offset,
            "Parity-Subject": m.subject or "",
        }

    async def _status(self) -> ConsumerStatus:
        js = self._jsx
        dead = None
        if self.dead_stream is not None:
            held = await js.stream_info(self.dead_stream, subjects_filter=self.dead_subject)
            dead = sum((held.state.subjects or {}).values())
        try:
            stream = await js.stream_info(self.source.stream)
        except nats.js.errors.NotFoundError:  # not created yet
            return ConsumerStatus(group=self.source.group, stream_length=0, dead_letters=dead)
        try:
            info = await js.consumer_info(self.source.stream, self.source.group)
        except nats.js.errors.NotFoundError:
            return ConsumerStatus(
                group=self.source.group, stream_length=stream.state.messages, dead_letters=dead
            )
        return ConsumerStatus(
            group=self.source.group,
            stream_length=stream.state.messages,
            pending=info.num_ack_pending,
            unconsumed=info.num_pending,
            last_delivered=str(info.delivered.stream_seq) if info.delivered else None,
            last_committed=str(info.ack_floor.stream_seq) if info.ack_floor else None,
            dead_letters=dead,
        )

    # -- plumbing ---------------------------------------------------------------------

    def _run(self, step: Awaitable[T], doing: str) -> T:
        if self._loop is None:
            if asyncio.iscoroutine(step):
                step.close()
            raise DataSourceError(f"stream source {self.source.name!r}: {doing} before open()")
        try:
            return asyncio.run_coroutine_threadsafe(step, self._loop).result()  # type: ignore[arg-type]
        except (nats.errors.Error, OSError, TimeoutError, _Refused) as e:
            raise self._error(doing, e) from e

    def _error(self, doing: str, cause: BaseException) -> DataSourceError:
        return DataSourceError(
            f"stream source {self.source.name!r} (NATS {self._url}, stream "
            f"{self.source.stream!r}, group {self.source.group!r}): {doing} failed: "
            f"{_describe(cause)}"
        )

    @property
    def _url(self) -> str:
        return redacted_url(self.source.url)

    @property
    def _loopx(self) -> asyncio.AbstractEventLoop:
        assert self._loop is not None
        return self._loop

    @property
    def _nc_(self) -> Client:
        assert self._nc is not None
        return self._nc

    @property
    def _jsx(self) -> JetStreamContext:
        assert self._js is not None
        return self._js


def _message(msg: Msg) -> Message:
    # The ack subject carries the metadata: $JS.ACK.<stream>.<consumer>.<delivered>.<stream
    # seq>.<consumer seq>.<ns>.<pending>, or with <domain>.<account> after ACK (and a token
    # at the end). Parsed here rather than with msg.metadata, which builds a datetime.
    t = msg.reply.split(".")
    if len(t) == 9:
        delivered, seq, ns = t[4], t[5], t[7]
    else:
        delivered, seq, ns = t[6], t[7], t[9]
    return Message(
        offset=seq,
        payload=msg.data,
        append_us=int(ns) // 1000,
        redelivered=delivered != "1",
        subject=msg.subject,
        token=msg,
    )


def _header(value: str) -> str:
    # A header value ends at the line break: keep a multi-line detail on one line.
    return value.replace("\r", " ").replace("\n", " ")


def _describe(e: BaseException) -> str:
    text = str(e) or repr(e)
    if isinstance(e, _Refused) or type(e).__name__ in text:
        return text
    return f"{type(e).__name__}: {text}"
