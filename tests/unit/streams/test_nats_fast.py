"""The JetStream consumer's read fast path (``parity.streams.nats_fast``) and its fallback.

The parser property compares ``FastParser`` with nats-py's own ``Parser`` on the same bytes
cut anywhere. The consumer tests run against the real NATS server
(``PARITY_TEST_NATS_URL``, default nats://127.0.0.1:4222; a missing server fails) on both
paths: the fast one (what the installed nats-py gets) and the public-API one (what any
other version gets). Each test uses streams of its own, deleted at the end; waits are
bounded loops on a deadline.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import nats
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.protocol.parser import Parser

from parity.definitions import FileSource, StreamSource
from parity.errors import DataSourceError
from parity.streams import ConsumerOptions, DeadLetter, Message
from parity.streams.nats_fast import FastClient, FastParser, ack_commands, supported
from parity.streams.nats_jetstream import NatsJetStreamConsumer
from parity.streams.nats_tools import delete_streams, publish_events

URL = os.environ.get("PARITY_TEST_NATS_URL", "nats://127.0.0.1:4222")
FILES = FileSource(name="events_files", path="events.parquet")
WAIT_S = 20.0
ROUTED = 7  # the sid the parser tests route


# -- which path ------------------------------------------------------------------------


def test_the_installed_nats_py_gets_the_fast_path():
    assert supported()


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("2.9.0", True),
        ("2.16.0", True),
        ("2.99.1", True),
        ("2.8.4", False),
        ("3.0.0", False),
        ("1.0", False),
        ("nightly", False),
    ],
)
def test_only_tested_versions_get_the_fast_path(version, expected):
    assert supported(version) is expected


def test_ack_commands_are_pub_commands_one_per_reply():
    assert ack_commands([]) == b""
    assert ack_commands([b"$JS.ACK.a.1", b"$JS.ACK.b.2"]) == (
        b"PUB $JS.ACK.a.1 4\r\n+ACK\r\nPUB $JS.ACK.b.2 4\r\n+ACK\r\n"
    )
    assert ack_commands([b"r"], b"+WPI") == b"PUB r 4\r\n+WPI\r\n"


# -- the parser ------------------------------------------------------------------------


class _FastRecorder(FastClient):
    """A FastClient never connected: records what its parser hands over."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[Any] = []
        self.route(ROUTED, self._record_deliveries, self._record_status)

    def _record_deliveries(self, routed: list[tuple[bytes, bytes, bytes]]) -> None:
        self.seen += [("delivery", s, r, d) for s, r, d in routed]

    def _record_status(self, subject: bytes, headers: dict[str, str]) -> None:
        self.seen.append(("status", subject, headers))

    async def _process_msg(self, sid, subject, reply, data, headers):  # type: ignore[no-untyped-def]
        if sid == ROUTED:
            await super()._process_msg(sid, subject, reply, data, headers)
        else:
            self.seen.append(("other", sid, subject, reply, data, headers))

    async def _process_ping(self) -> None:
        self.seen.append("PING")

    async def _process_pong(self) -> None:
        self.seen.append("PONG")


class _PlainRecorder(Client):
    """The same record, from nats-py's own parser (the reference)."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[Any] = []

    async def _process_msg(self, sid, subject, reply, data, headers):  # type: ignore[no-untyped-def]
        if sid != ROUTED:
            self.seen.append(("other", sid, subject, reply, data, headers))
        elif reply:
            self.seen.append(("delivery", subject, reply, data))
        else:
            self.seen.append(("status", subject, await self._process_headers(headers) or {}))

    async def _process_ping(self) -> None:
        self.seen.append("PING")

    async def _process_pong(self) -> None:
        self.seen.append("PONG")


_token = st.text("abcXYZ09_-$", min_size=1, max_size=12)
_subject = st.lists(_token, min_size=1, max_size=4).map(".".join).map(str.encode)
_payload = st.one_of(
    st.binary(max_size=200), st.sampled_from([b"", b"\r\n", b"MSG a 7 1\r\nx\r\n", b"PING\r\n"])
)
_STATUSES = [
    b"NATS/1.0 404 No Messages\r\n\r\n",
    b"NATS/1.0 408 Request Timeout\r\nNats-Pending-Messages: 1\r\nNats-Pending-Bytes: 0\r\n\r\n",
    b"NATS/1.0 409 Consumer Deleted\r\n\r\n",
    b"NATS/1.0 100 Idle Heartbeat\r\nNats-Last-Consumer: 0\r\nNats-Last-Stream: 0\r\n\r\n",
    b"NATS/1.0 404\r\n\r\n",
]


@st.composite
def _op(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["msg", "hmsg", "status", "ping", "pong", "ok"]))
    if kind in ("ping", "pong", "ok"):
        return {"ping": b"PING\r\n", "pong": b"PONG\r\n", "ok": b"+OK\r\n"}[kind]
    sid = draw(st.sampled_from([ROUTED, 3]))
    subject, payload = draw(_subject), draw(_payload)
    reply = draw(st.one_of(st.just(b""), _subject))
    if kind == "status":
        head, payload, reply = draw(st.sampled_from(_STATUSES)), b"", b""
    elif kind == "hmsg":
        head = b"NATS/1.0\r\nNats-Msg-Id: %b\r\n\r\n" % draw(_token).encode()
    else:
        line = b"MSG %b %d %b%d\r\n" % (subject, sid, reply + b" " if reply else b"", len(payload))
        return line + payload + b"\r\n"
    sizes = b"%d %d" % (len(head), len(head) + len(payload))
    line = b"HMSG %b %d %b%b\r\n" % (subject, sid, reply + b" " if reply else b"", sizes)
    return line + head + payload + b"\r\n"


def _parse(parser: Parser, chunks: list[bytes]) -> None:
    async def feed() -> None:
        for chunk in chunks:
            await parser.parse(chunk)

    asyncio.run(feed())


@settings(deadline=None, max_examples=300)
@given(ops=st.lists(_op(), max_size=25), cuts=st.lists(st.integers(0, 5000), max_size=8))
@example(ops=[b"MSG a 7 r 2\r\nhi\r\n"] * 3, cuts=[1, 5, 14, 15, 16])
def test_the_fast_parser_hands_over_what_nats_py_parses(ops, cuts):
    wire = b"".join(ops)
    points = sorted({c % (len(wire) + 1) for c in cuts})
    chunks = [wire[a:b] for a, b in zip([0, *points], [*points, len(wire)], strict=True)]
    fast, plain = _FastRecorder(), _PlainRecorder()
    _parse(fast._ps, chunks)
    _parse(plain._ps, [wire])
    assert isinstance(fast._ps, FastParser)
    assert fast.seen == plain.seen
    assert not fast._ps.buf  # everything whole was consumed


def test_a_malformed_line_is_nats_py_protocol_error():
    from nats.errors import ProtocolError

    with pytest.raises(ProtocolError):
        _parse(_FastRecorder()._ps, [b"MSG a 7 r notanumber\r\nxx\r\n"])


# -- the consumer on both paths ----------------------------------------------------------


class _PublicPath(NatsJetStreamConsumer):
    fast_path = False


@pytest.fixture
def name() -> Iterator[str]:
    n = f"PT{uuid.uuid4().hex[:12].upper()}"
    yield n
    delete_streams(URL, [n, f"{n}_dead"])


@pytest.fixture(params=["fast", "public"])
def consumers(request: pytest.FixtureRequest) -> Iterator[Callable[..., NatsJetStreamConsumer]]:
    kind = NatsJetStreamConsumer if request.param == "fast" else _PublicPath
    made: list[NatsJetStreamConsumer] = []

    def make(src: StreamSource, *, claim_idle: float = 30.0, block: float = 0.3) -> Any:
        options = ConsumerOptions(
            consumer=f"c{len(made)}-{uuid.uuid4().hex[:6]}", claim_idle=claim_idle, block=block
        )
        c = kind(src, options)
        c.open()
        made.append(c)
        assert c.fast is (request.param == "fast")
        return c

    yield make
    for c in made:
        c.close()


def _source(name: str, **fields: Any) -> StreamSource:
    fields.setdefault("subject", f"{name}.events")
    return StreamSource(
        name="s", kind="nats_jetstream", url=URL, stream=name, batch_source=FILES, **fields
    )


def _poll_until(c: NatsJetStreamConsumer, count: int, batch: int = 100) -> list[Message]:
    got: list[Message] = []
    deadline = time.monotonic() + WAIT_S
    while len(got) < count and time.monotonic() < deadline:
        got += c.poll(min(batch, count - len(got)))
    return got


def _status_until(c: NatsJetStreamConsumer, **expected: Any) -> Any:
    deadline = time.monotonic() + WAIT_S
    while True:
        s = c.status()
        if all(getattr(s, k) == v for k, v in expected.items()) or time.monotonic() > deadline:
            return s
        time.sleep(0.05)


def _js(step: Callable[[Any, JetStreamContext], Any]) -> Any:
    async def main() -> Any:
        nc = await nats.connect(URL, connect_timeout=2, max_reconnect_attempts=1)
        try:
            return await step(nc, nc.jetstream())
        finally:
            await nc.close()

    return asyncio.run(main())


def test_poll_extend_commit_in_batches(name, consumers):
    src = _source(name)
    seqs = publish_events(URL, name, src.subject, [b"%d" % i for i in range(2500)])
    c = consumers(src)
    got = _poll_until(c, 2500, batch=1000)
    assert [m.offset for m in got] == [str(s) for s in seqs]
    assert [m.payload for m in got] == [b"%d" % i for i in range(2500)]
    assert all(m.subject == src.subject and not m.redelivered for m in got)
    c.extend(got[:10])
    c.commit(got[:1000])
    st_ = _status_until(c, pending=1500)
    assert (st_.pending, st_.last_committed) == (1500, "1000")
    c.commit(got)
    c.commit(got)  # again: a no-op
    st_ = _status_until(c, pending=0)
    assert (st_.pending, st_.unconsumed, st_.last_committed) == (0, 0, "2500")


def test_extend_keeps_messages_from_being_redelivered(name, consumers):
    src = _source(name)
    publish_events(URL, name, src.subject, [b"a", b"b"])
    c = consumers(src, claim_idle=1.5)
    got = _poll_until(c, 2)
    other = consumers(src, claim_idle=1.5)
    deadline = time.monotonic() + 3.5  # past the ack wait twice over, extended meanwhile
    while time.monotonic() < deadline:
        c.extend(got)
        assert other.poll(10) == []
    c.commit(got)
    assert _status_until(c, pending=0).pending == 0


def test_uncommitted_messages_are_redelivered_marked_so(name, consumers):
    src = _source(name)
    publish_events(URL, name, src.subject, [b"x"])
    dead = consumers(src, claim_idle=1)
    assert len(_poll_until(dead, 1)) == 1
    alive = consumers(src, claim_idle=1)
    (again,) = _poll_until(alive, 1)
    assert (again.payload, again.offset, again.redelivered) == (b"x", "1", True)
    alive.commit([again])
    assert _status_until(alive, pending=0).pending == 0


def test_own_dead_letters_are_acknowledged_and_dropped(name, consumers):
    src = _source(name, subject=None)
    publish_events(URL, name, f"{name}.x", [b"1", b"2"])
    c = consumers(src)
    got = _poll_until(c, 2)
    c.dead_letter([DeadLetter(got[0], "type", "not a number", "f")])
    c.commit(got)
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        assert c.poll(10) == []
    s = _status_until(c, pending=0, unconsumed=0)
    assert (s.stream_length, s.pending, s.unconsumed, s.dead_letters) == (3, 0, 0, 1)


def test_server_heartbeats_are_not_messages(name, consumers):
    """A pull with idle heartbeats answered into the consumer's inbox: the server's "100 Idle
    Heartbeat" statuses are skipped, and what comes after is delivered."""
    src = _source(name)
    c = consumers(src, block=0.3)
    assert c.poll(5) == []

    async def ask(nc: Any, js: JetStreamContext) -> None:
        body = {"batch": 1, "expires": int(2.5e9), "idle_heartbeat": int(0.2e9)}
        subject = f"$JS.API.CONSUMER.MSG.NEXT.{name}.{src.group}"
        await nc.publish(subject, json.dumps(body).encode(), reply=f"{c._inbox}.hb")
        await nc.flush()

    before = c._nc_.stats["in_msgs"]
    _js(ask)
    deadline = time.monotonic() + WAIT_S  # heartbeats arrive every 0.2 s from now
    while c._nc_.stats["in_msgs"] < before + 3 and time.monotonic() < deadline:
        assert c.poll(5) == []
    assert c._nc_.stats["in_msgs"] >= before + 3
    publish_events(URL, name, src.subject, [b"after"])
    assert [m.payload for m in _poll_until(c, 1)] == [b"after"]


def test_a_deleted_durable_ends_a_waiting_poll_with_an_error(name, consumers):
    src = _source(name, group="doomed")
    c = consumers(src, block=10)
    failed: list[BaseException] = []

    def poll() -> None:
        try:
            c.poll(5)
        except DataSourceError as e:
            failed.append(e)

    thread = threading.Thread(target=poll)
    started = time.monotonic()
    thread.start()

    async def waiting(nc: Any, js: JetStreamContext) -> int:
        return (await js.consumer_info(name, "doomed")).num_waiting

    deadline = time.monotonic() + WAIT_S
    while _js(waiting) < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    _js(lambda nc, js: js.delete_consumer(name, "doomed"))
    thread.join(WAIT_S)
    assert not thread.is_alive()
    assert time.monotonic() - started < 10  # ended by the server, not by the poll's block
    assert failed and "409" in str(failed[0]) and "'s'" in str(failed[0])
