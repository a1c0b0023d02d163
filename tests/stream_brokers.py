"""The real brokers of the stream integration tests: one test's own stream on each.

A ``Broker`` is a stream on the real Redis (db 8) or NATS JetStream server that no other
test uses: it publishes payloads (returning each message's offset as the consumer sees it),
reads the group's progress and the dead-letter stream as the broker holds them, and deletes
what it made (``close``). An unreachable server fails the test at once, never skips it.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import uuid
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

import redis

from contract.backends import STREAM_CONSUMERS

BROKERS = list(STREAM_CONSUMERS)
"""The brokers every stream test runs on: the contract suites' one visible list."""
REDIS_URL = "redis://127.0.0.1:6379/8"
NATS_URL = "nats://127.0.0.1:4222"
WAIT_S = 60.0
"""How long any wait may take on a busy machine before the test fails saying what it was."""


def wait_for(
    condition: Callable[[], Any],
    what: str | Callable[[], str],
    seconds: float = WAIT_S,
    interval: float = 0.05,
) -> Any:
    """Poll ``condition()`` every ``interval`` s until it is truthy (returned); after
    ``seconds``, fail with ``what`` (a callable is called then, to say what was pending)."""
    deadline = time.monotonic() + seconds
    while True:
        got = condition()
        if got:
            return got
        if time.monotonic() > deadline:
            text = what() if callable(what) else what
            raise AssertionError(f"still not so after {seconds:g} s: {text}")
        time.sleep(interval)


@dataclass(frozen=True)
class Progress:
    """The group as the broker sees it: messages acknowledged, delivered and not yet
    acknowledged (pending), and not yet delivered (unconsumed)."""

    acked: int
    pending: int
    unconsumed: int

    @property
    def drained(self) -> bool:
        return self.pending == 0 and self.unconsumed == 0


@dataclass(frozen=True)
class Letter:
    """One entry of a dead-letter stream."""

    offset: str
    reason: str
    detail: str
    field: str
    payload: bytes


class Broker:
    """One test's stream on a real broker (see the module docstring)."""

    kind: str
    stream: str
    group = "parity"

    def source_kwargs(self) -> dict[str, Any]:
        """What a ``StreamSource`` needs to read this stream."""
        raise NotImplementedError

    def publish(self, payloads: Sequence[bytes | None]) -> list[str]:
        raise NotImplementedError

    def progress(self) -> Progress:
        raise NotImplementedError

    def has_group(self) -> bool:
        """Whether the group (Redis) / durable consumer (JetStream) exists."""
        raise NotImplementedError

    def dead_letters(self) -> list[Letter]:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class RedisBroker(Broker):
    kind = "redis_streams"

    def __init__(self) -> None:
        self.stream = f"parity_test_stream_{uuid.uuid4().hex[:10]}"
        self.dead = f"{self.stream}.dead"
        self.client = redis.Redis.from_url(REDIS_URL, socket_timeout=30)
        self.client.ping()  # unreachable: fail here, loudly

    def source_kwargs(self) -> dict[str, Any]:
        return {"kind": self.kind, "url": REDIS_URL, "stream": self.stream}

    def publish(self, payloads: Sequence[bytes | None]) -> list[str]:
        """XADD each payload in field ``data``; None: an entry without that field."""
        pipe = self.client.pipeline(transaction=False)
        for p in payloads:
            pipe.xadd(self.stream, {b"data": p} if p is not None else {b"note": b"no data"})
        return [i.decode() for i in pipe.execute()]

    def progress(self) -> Progress:
        try:
            groups = self.client.xinfo_groups(self.stream)
        except redis.ResponseError:  # no stream yet
            return Progress(0, 0, 0)
        g = next((g for g in groups if g["name"] == self.group.encode()), None)
        if g is None:
            return Progress(0, 0, int(self.client.xlen(self.stream)))
        read, pending = int(g["entries-read"] or 0), int(g["pending"])
        return Progress(read - pending, pending, int(g["lag"]))

    def has_group(self) -> bool:
        try:
            groups = self.client.xinfo_groups(self.stream)
        except redis.ResponseError:  # no stream
            return False
        return any(g["name"] == self.group.encode() for g in groups)

    def consumers(self) -> dict[str, int]:
        """Each consumer of the group with its pending count."""
        got = self.client.xinfo_consumers(self.stream, self.group)
        return {c["name"].decode(): int(c["pending"]) for c in got}

    def dead_letters(self) -> list[Letter]:
        out = []
        entries: Any = self.client.xrange(self.dead)
        for _id, f in entries:
            t = {k.decode(): v for k, v in f.items()}
            text = {k: v.decode() for k, v in t.items() if k != "data"}
            out.append(
                Letter(text["offset"], text["reason"], text["detail"], text["field"], t["data"])
            )
        return out

    def close(self) -> None:
        self.client.delete(self.stream, self.dead)
        self.client.close()


class _Loop:
    """An asyncio loop in a thread of its own, for nats-py from synchronous tests."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, Any], timeout: float = WAIT_S) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


class NatsBroker(Broker):
    """A JetStream stream made by the test. ``filtered``: the source names the subject
    ``<stream>.orders`` (its dead letters go to a stream of their own, which the consumer
    makes); else it reads every subject of ``<stream>.>`` (its dead letters,
    ``<stream>.dead``, land in the same stream, and the consumer skips them)."""

    kind = "nats_jetstream"

    def __init__(self, *, filtered: bool = False) -> None:
        import nats

        self.stream = f"parity_test_{uuid.uuid4().hex[:10]}"
        self.subject = f"{self.stream}.orders"
        self.filtered = filtered
        self.dead_subject = f"{self.subject if filtered else self.stream}.dead"
        self._loop = _Loop()
        self.nc = self._loop.run(nats.connect(NATS_URL, connect_timeout=5))
        self.js = self.nc.jetstream()
        subjects = [self.subject] if filtered else [f"{self.stream}.>"]
        self._loop.run(self.js.add_stream(name=self.stream, subjects=subjects))

    def source_kwargs(self) -> dict[str, Any]:
        out = {"kind": self.kind, "url": NATS_URL, "stream": self.stream}
        return {**out, "subject": self.subject} if self.filtered else out

    def publish(self, payloads: Sequence[bytes | None]) -> list[str]:
        async def go() -> list[str]:
            futures = []
            for p in payloads:
                if p is None:
                    raise ValueError("a JetStream message always has data")
                futures.append(await self.js.publish_async(self.subject, p))
            return [str(a.seq) for a in await asyncio.gather(*futures)]

        return self._loop.run(go())

    def progress(self) -> Progress:
        import nats.js.errors

        try:
            info = self._loop.run(self.js.consumer_info(self.stream, self.group))
        except nats.js.errors.NotFoundError:
            state = self._loop.run(self.js.stream_info(self.stream)).state
            return Progress(0, 0, state.messages)
        # the ack floor's stream sequence: consumer sequences count redeliveries too
        return Progress(info.ack_floor.stream_seq, info.num_ack_pending, info.num_pending)

    def has_group(self) -> bool:
        import nats.js.errors

        try:
            self._loop.run(self.js.consumer_info(self.stream, self.group))
        except nats.js.errors.NotFoundError:
            return False
        return True

    def dead_letters(self) -> list[Letter]:
        import nats.js.errors

        async def go() -> list[Letter]:
            try:
                stream = await self.js.find_stream_name_by_subject(self.dead_subject)
            except nats.js.errors.NotFoundError:
                return []
            out: list[Letter] = []
            seq = 1
            while True:
                try:
                    m = await self.js.get_msg(stream, seq, subject=self.dead_subject, next=True)
                except nats.js.errors.NotFoundError:
                    return out
                h = m.headers or {}
                out.append(
                    Letter(
                        h.get("Parity-Offset", ""),
                        h.get("Parity-Reason", ""),
                        h.get("Parity-Detail", ""),
                        h.get("Parity-Field", ""),
                        m.data or b"",
                    )
                )
                seq = m.seq + 1

        return self._loop.run(go())

    def close(self) -> None:
        import nats.js.errors

        async def go() -> None:
            for name in (self.stream, f"{self.stream}_dead"):
                with contextlib.suppress(nats.js.errors.NotFoundError):
                    await self.js.delete_stream(name)
            await self.nc.close()

        try:
            self._loop.run(go())
        finally:
            self._loop.close()


def make_broker(kind: str, *, filtered: bool = False) -> Broker:
    if kind == "redis_streams":
        return RedisBroker()
    if kind == "nats_jetstream":
        return NatsBroker(filtered=filtered)
    raise AssertionError(f"no test broker for {kind!r}: add one in stream_utils.py")
