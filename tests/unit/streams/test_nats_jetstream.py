"""NatsJetStreamConsumer against the real NATS server (JetStream enabled).

The server is ``PARITY_TEST_NATS_URL`` (default nats://127.0.0.1:4222); a missing server
fails, never skips. Each test uses streams of its own (``PT<hex>`` and ``PT<hex>_dead``),
deleted at the end. Waits are bounded loops on a deadline, generous for a busy machine.
The broker-neutral contract is ``tests/contract/test_stream_consumers.py``.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import nats
import pytest
from nats.js import JetStreamContext, api

from parity.definitions import FileSource, StreamSource
from parity.errors import DataSourceError
from parity.streams import ConsumerOptions, DeadLetter, Message, consumer
from parity.streams.nats_jetstream import MAX_ACK_PENDING, NatsJetStreamConsumer
from parity.streams.nats_tools import delete_streams, publish_events

URL = os.environ.get("PARITY_TEST_NATS_URL", "nats://127.0.0.1:4222")
FILES = FileSource(name="events_files", path="events.parquet")
WAIT_S = 20.0  # the longest any expected delivery may take on a loaded machine

T = TypeVar("T")


def js_run(step: Callable[[JetStreamContext], Awaitable[T]]) -> T:
    """Run ``step`` with a JetStream context on a connection of its own."""

    async def main() -> T:
        nc = await nats.connect(URL, connect_timeout=2, max_reconnect_attempts=1)
        try:
            return await step(nc.jetstream())
        finally:
            await nc.close()

    return asyncio.run(main())


@pytest.fixture
def name() -> Iterator[str]:
    """A fresh stream name; the stream and its dead-letter stream are deleted afterwards."""
    n = f"PT{uuid.uuid4().hex[:12].upper()}"
    yield n
    delete_streams(URL, [n, f"{n}_dead"])


@pytest.fixture
def consumers() -> Iterator[Callable[..., NatsJetStreamConsumer]]:
    """Makes open consumers; every one is closed at the end."""
    made: list[NatsJetStreamConsumer] = []

    def make(source: StreamSource, *, claim_idle: float = 30.0, block: float = 0.2) -> Any:
        options = ConsumerOptions(
            consumer=f"c{len(made)}-{uuid.uuid4().hex[:6]}", claim_idle=claim_idle, block=block
        )
        c = consumer(source, options)
        assert isinstance(c, NatsJetStreamConsumer)
        c.open()
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


def source(name: str, **fields: Any) -> StreamSource:
    fields.setdefault("subject", f"{name}.events")
    return StreamSource(
        name="s", kind="nats_jetstream", url=URL, stream=name, batch_source=FILES, **fields
    )


def publish(src: StreamSource, payloads: list[bytes], subject: str | None = None) -> list[int]:
    return publish_events(URL, src.stream, subject or src.subject or f"{src.stream}.x", payloads)


def poll_until(c: NatsJetStreamConsumer, count: int, *, batch: int = 100) -> list[Message]:
    """Poll until ``count`` messages came (or the deadline passed: the caller asserts)."""
    got: list[Message] = []
    deadline = time.monotonic() + WAIT_S
    while len(got) < count and time.monotonic() < deadline:
        got += c.poll(min(batch, count - len(got)))
    return got


def status_until(c: NatsJetStreamConsumer, **expected: Any) -> Any:
    """The status once its fields equal ``expected`` (acks are applied asynchronously)."""
    deadline = time.monotonic() + WAIT_S
    while True:
        st = c.status()
        if all(getattr(st, k) == v for k, v in expected.items()) or time.monotonic() > deadline:
            return st
        time.sleep(0.05)


# -- open ------------------------------------------------------------------------------


def test_open_creates_the_stream_the_durable_and_the_dead_letter_stream(name, consumers):
    src = source(name, group="readers")
    consumers(src, claim_idle=7)

    async def look(js: JetStreamContext) -> tuple[Any, Any, Any]:
        return (
            await js.stream_info(name),
            await js.consumer_info(name, "readers"),
            await js.stream_info(f"{name}_dead"),
        )

    stream, durable, dead = js_run(look)
    assert stream.config.subjects == [f"{name}.events"]
    assert durable.config.filter_subject == f"{name}.events"
    assert durable.config.ack_policy == api.AckPolicy.EXPLICIT
    assert durable.config.ack_wait == 7
    assert durable.config.deliver_policy == api.DeliverPolicy.ALL
    assert durable.config.max_deliver == -1
    assert durable.config.max_ack_pending == MAX_ACK_PENDING
    assert dead.config.subjects == [f"{name}.events.dead"]


def test_open_binds_to_an_existing_stream_and_durable(name, consumers):
    src = source(name)
    publish(src, [b"1"])  # the helper made the stream: subjects [f"{name}.>"]
    first = consumers(src)
    second = consumers(src)  # the durable exists now
    assert first.status().unconsumed == 1
    assert second.status().unconsumed == 1
    # "<name>.>" holds the dead-letter subject: no stream of its own
    assert first.dead_stream == name


def test_a_group_made_for_another_subject_is_refused(name, consumers):
    publish_events(URL, name, f"{name}.a", [b"1"])
    consumers(source(name, subject=f"{name}.a", group="g"))
    c = NatsJetStreamConsumer(source(name, subject=f"{name}.b", group="g"), ConsumerOptions("x"))
    with pytest.raises(DataSourceError, match=r"'g'.*filters subject .*\.a.*name another group"):
        c.open()


def test_an_unreachable_server_is_a_data_source_error_naming_the_source():
    src = StreamSource(
        name="orders", kind="nats_jetstream", url="nats://127.0.0.1:1", stream="S",
        batch_source=FILES,
    )  # fmt: skip
    c = NatsJetStreamConsumer(src, ConsumerOptions("x"))
    started = time.monotonic()
    with pytest.raises(
        DataSourceError, match=r"'orders'.*nats://127\.0\.0\.1:1.*ConnectionRefused"
    ):
        c.open()
    assert time.monotonic() - started < 10
    with pytest.raises(DataSourceError, match="before open"):
        c.poll(1)


def test_the_password_in_the_url_is_not_in_the_error():
    src = StreamSource(
        name="orders", kind="nats_jetstream", url="nats://app:s3cret@127.0.0.1:1", stream="S",
        batch_source=FILES,
    )  # fmt: skip
    with pytest.raises(DataSourceError) as caught:
        NatsJetStreamConsumer(src, ConsumerOptions("x")).open()
    assert "s3cret" not in str(caught.value)
    assert "app:***@127.0.0.1:1" in str(caught.value)


# -- poll and commit ---------------------------------------------------------------------


def test_poll_returns_messages_in_order_with_offsets_and_append_times(name, consumers):
    src = source(name)
    c = consumers(src)
    before_us = time.time_ns() // 1000
    seqs = publish(src, [b'{"a": 1}', b"", b'{"a": 3}'])
    after_us = time.time_ns() // 1000
    got = poll_until(c, 3)
    assert [m.offset for m in got] == [str(s) for s in seqs]
    assert [m.payload for m in got] == [b'{"a": 1}', b"", b'{"a": 3}']
    assert all(m.subject == f"{name}.events" and not m.redelivered for m in got)
    # the server's clock is this machine's: its store times fall in the publish window
    assert all(before_us - 1_000_000 <= m.append_us <= after_us + 1_000_000 for m in got)
    assert [m.append_us for m in got] == sorted(m.append_us for m in got)


def test_an_empty_poll_waits_about_block_seconds(name, consumers):
    c = consumers(source(name), block=0.3)
    started = time.monotonic()
    assert c.poll(10) == []
    assert 0.25 <= time.monotonic() - started < 5


def test_a_message_published_during_a_poll_is_returned_by_it(name, consumers):
    src = source(name)
    c = consumers(src, block=5)
    c.poll(1)  # nothing yet
    publish(src, [b"late"])
    started = time.monotonic()
    assert [m.payload for m in c.poll(10)] == [b"late"]
    assert time.monotonic() - started < 5


def test_polls_fill_their_batches_when_the_stream_has_the_messages(name, consumers):
    src = source(name)
    publish(src, [b"%d" % i for i in range(3000)])
    c = consumers(src)
    first = c.poll(1000)
    assert len(first) == 1000
    rest = poll_until(c, 2000, batch=1000)
    assert [m.offset for m in first + rest] == [str(i) for i in range(1, 3001)]


def test_a_poll_for_nothing_is_refused(name, consumers):
    c = consumers(source(name))
    with pytest.raises(ValueError, match="max_messages must be at least 1, got 0"):
        c.poll(0)


def test_committed_messages_are_never_delivered_again(name, consumers):
    src = source(name)
    publish(src, [b"1", b"2"])
    c = consumers(src, claim_idle=1)
    got = poll_until(c, 2)
    c.commit(got)
    c.commit(got)  # a second ack of the same messages is a no-op
    other = consumers(src, claim_idle=1)
    deadline = time.monotonic() + 2.5  # well past the 1 s ack wait
    while time.monotonic() < deadline:
        assert other.poll(10) == [] and c.poll(10) == []
    st = c.status()
    assert (st.pending, st.last_committed) == (0, "2")


def test_uncommitted_messages_go_to_another_consumer_after_claim_idle(name, consumers):
    src = source(name)
    seqs = publish(src, [b"a", b"b", b"c"])
    dead = consumers(src, claim_idle=1)
    assert len(poll_until(dead, 3)) == 3  # and never committed: a consumer that died
    alive = consumers(src, claim_idle=1)
    got = poll_until(alive, 3)
    assert [m.offset for m in got] == [str(s) for s in seqs]
    assert [m.payload for m in got] == [b"a", b"b", b"c"]
    assert all(m.redelivered for m in got)
    alive.commit(got)
    assert status_until(alive, pending=0).pending == 0


def test_two_consumers_of_a_group_split_the_messages(name, consumers):
    src = source(name)
    seqs = publish(src, [b"%d" % i for i in range(300)])
    one, two = consumers(src), consumers(src)
    seen: dict[str, list[str]] = {"one": [], "two": []}
    deadline = time.monotonic() + WAIT_S
    while len(seen["one"]) + len(seen["two"]) < 300 and time.monotonic() < deadline:
        for who, c in (("one", one), ("two", two)):
            got = c.poll(7)
            seen[who] += [m.offset for m in got]
            c.commit(got)
    assert seen["one"] and seen["two"]
    assert not set(seen["one"]) & set(seen["two"])
    assert sorted(seen["one"] + seen["two"], key=int) == [str(s) for s in seqs]


def test_start_latest_skips_what_the_stream_held(name, consumers):
    src = source(name, start="latest")
    publish(src, [b"old1", b"old2"])
    c = consumers(src)
    publish(src, [b"new"])
    assert [m.payload for m in poll_until(c, 1)] == [b"new"]
    assert c.poll(10) == []


def test_closing_without_commit_leaves_the_messages_pending(name, consumers):
    src = source(name)
    publish(src, [b"%d" % i for i in range(5)])
    c = consumers(src)
    assert len(poll_until(c, 5)) == 5
    c.close()
    fresh = consumers(src)  # as `parity stream status` does: open, status, close
    st = fresh.status()
    assert (st.pending, st.unconsumed, st.last_delivered, st.last_committed) == (5, 0, "5", "0")


def test_status_after_a_partial_commit(name, consumers):
    src = source(name)
    publish(src, [b"%d" % i for i in range(10)])
    c = consumers(src)
    st = c.status()
    assert (st.group, st.stream_length, st.pending, st.unconsumed) == ("parity", 10, 0, 10)
    got = poll_until(c, 6)
    c.commit(got[:4])  # commit returns once the durable applied the acks
    st = c.status()
    assert (st.stream_length, st.pending, st.unconsumed) == (10, 2, 4)
    assert (st.last_delivered, st.last_committed, st.dead_letters) == ("6", "4", 0)
    assert st.consumers is None


# -- dead letters ------------------------------------------------------------------------


def test_dead_letters_keep_payload_and_reason_and_are_counted(name, consumers):
    src = source(name)
    c = consumers(src)  # makes the stream ([subject]) and one for dead letters
    assert c.dead_stream == f"{name}_dead"
    publish(src, [b"not json", b""])
    bad, empty = poll_until(c, 2)
    c.dead_letter(
        [
            DeadLetter(bad, "decode", "not a JSON object:\nline 1"),
            DeadLetter(empty, "missing_field", "no driver_id", field="driver_id"),
        ]
    )
    c.commit([bad, empty])

    async def read(js: JetStreamContext) -> list[Any]:
        return [await js.get_msg(f"{name}_dead", seq) for seq in (1, 2)]

    first, second = js_run(read)
    assert (first.subject, first.data) == (f"{name}.events.dead", b"not json")
    assert first.headers == {
        "Parity-Reason": "decode",
        "Parity-Detail": "not a JSON object: line 1",
        "Parity-Field": "",
        "Parity-Source": "s",
        "Parity-Offset": bad.offset,
        "Parity-Subject": f"{name}.events",
    }
    assert (second.data or b"", second.headers["Parity-Field"]) == (b"", "driver_id")
    assert c.status().dead_letters == 2


def test_a_consumer_never_reads_its_own_dead_letters(name, consumers):
    src = source(name, subject=None)  # the whole stream, whose "<name>.>" holds "<name>.dead"
    publish(src, [b"1", b"2"], subject=f"{name}.x")
    c = consumers(src)
    assert c.dead_stream == name
    got = poll_until(c, 2)
    c.dead_letter([DeadLetter(got[0], "type", "conv_rate is not a number", "conv_rate")])
    c.commit(got)
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:
        assert c.poll(10) == []
    st = status_until(c, pending=0, unconsumed=0)
    assert (st.stream_length, st.pending, st.unconsumed, st.dead_letters) == (3, 0, 0, 1)


# -- publish_events ----------------------------------------------------------------------


def test_publish_events_returns_the_sequences_and_creates_the_stream(name):
    assert publish_events(URL, name, f"{name}.a", [b"x", b"y"]) == [1, 2]
    assert publish_events(URL, name, f"{name}.b", [b"z"]) == [3]
    info = js_run(lambda js: js.stream_info(name))
    assert info.config.subjects == [f"{name}.>"]


def test_publish_events_without_create_needs_a_stream(name):
    with pytest.raises(DataSourceError, match="holds subject"):
        publish_events(URL, name, f"{name}.a", [b"x"], create=False)
