"""The stream consumer contract (``parity.streams.base``), on every broker in
``STREAM_CONSUMERS``: Redis Streams (db 7) and NATS JetStream, real servers, never skipped.

What the runner relies on: messages come in order with stable offsets and append times;
a committed message is never delivered again; one left unacknowledged goes to another
consumer of the group once ``claim_idle`` passed, marked redelivered; the consumers of a
group share the messages (each to one); ``start="latest"`` skips what was there; dead
letters are counted; ``status()`` tells pending, unconsumed and committed, also to a fresh
consumer. Each test has streams of its own, deleted at the end; waits are bounded loops.
Broker specifics (headers, stream creation) are in ``tests/unit/streams/``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from backends import STREAM_CONSUMERS, drop_stream, params, publish_to, stream_source_for

from parity.definitions import StreamSource
from parity.errors import DataSourceError
from parity.streams import ConsumerOptions, DeadLetter, Message, StreamConsumer, consumer

WAIT_S = 20.0  # the longest an expected delivery may take on a loaded machine
UNREACHABLE = {"redis_streams": "redis://127.0.0.1:1/7", "nats_jetstream": "nats://127.0.0.1:1"}


@pytest.fixture(params=params("stream_consumers", STREAM_CONSUMERS))
def broker(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def new_source(broker: str) -> Iterator[Callable[..., StreamSource]]:
    """Makes sources on fresh streams of ``broker``; their streams are dropped at the end."""
    made: list[StreamSource] = []

    def make(**fields: Any) -> StreamSource:
        made.append(stream_source_for(broker, **fields))
        return made[-1]

    yield make
    for s in made:
        drop_stream(s)


@pytest.fixture
def consumers() -> Iterator[Callable[..., StreamConsumer]]:
    """Makes open consumers (each its own name in the group); all closed at the end."""
    made: list[StreamConsumer] = []

    def make(source: StreamSource, *, claim_idle: float = 30.0, block: float = 0.2) -> Any:
        name = f"contract-{len(made)}-{uuid.uuid4().hex[:6]}"
        c = consumer(source, ConsumerOptions(name, claim_idle=claim_idle, block=block))
        c.open()
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


def poll_until(c: StreamConsumer, count: int, *, batch: int = 100) -> list[Message]:
    """Poll until ``count`` messages came, or the deadline passed (the caller asserts)."""
    got: list[Message] = []
    deadline = time.monotonic() + WAIT_S
    while len(got) < count and time.monotonic() < deadline:
        got += c.poll(min(batch, count - len(got)))
    return got


def nothing_for(seconds: float, *cs: StreamConsumer) -> bool:
    """Whether polling ``cs`` for ``seconds`` delivers nothing."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if any(c.poll(10) for c in cs):
            return False
    return True


def test_poll_returns_messages_in_order_with_offsets_and_append_times(new_source, consumers):
    src = new_source()
    c = consumers(src)
    before_us = time.time_ns() // 1000
    offsets = publish_to(src, [b'{"n": 1}', b"", b'{"n": 3}'])
    after_us = time.time_ns() // 1000
    got = poll_until(c, 3)
    assert [m.offset for m in got] == offsets
    assert [m.payload for m in got] == [b'{"n": 1}', b"", b'{"n": 3}']
    assert not any(m.redelivered for m in got)
    # The broker's clock is this machine's (Redis ids have ms): within the publish window.
    assert all(before_us - 1_000_000 <= m.append_us <= after_us + 1_000_000 for m in got)


def test_an_empty_poll_returns_within_about_block_seconds(new_source, consumers):
    c = consumers(new_source(), block=0.3)
    started = time.monotonic()
    assert c.poll(10) == []
    assert time.monotonic() - started < 5


def test_committed_messages_are_never_delivered_again(new_source, consumers):
    src = new_source()
    offsets = publish_to(src, [b"1", b"2"])
    c = consumers(src, claim_idle=1)
    got = poll_until(c, 2)
    c.commit(got)
    c.commit(got)  # twice: no error
    other = consumers(src, claim_idle=1)
    assert nothing_for(2.5, c, other)  # well past claim_idle
    st = c.status()
    assert (st.pending, st.unconsumed, st.last_committed) == (0, 0, offsets[-1])


def test_uncommitted_messages_go_to_another_consumer_after_claim_idle(new_source, consumers):
    src = new_source()
    offsets = publish_to(src, [b"a", b"b", b"c"])
    died = consumers(src, claim_idle=1)
    assert len(poll_until(died, 3)) == 3  # never committed
    alive = consumers(src, claim_idle=1)
    got = poll_until(alive, 3)
    assert [m.offset for m in got] == offsets
    assert [m.payload for m in got] == [b"a", b"b", b"c"]
    assert all(m.redelivered for m in got)
    alive.commit(got)
    assert alive.status().pending == 0


def test_the_consumers_of_a_group_share_the_messages(new_source, consumers):
    src = new_source()
    offsets = publish_to(src, [b"%d" % i for i in range(300)])
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
    assert sorted(seen["one"] + seen["two"]) == sorted(offsets)


def test_groups_read_independently(new_source, consumers):
    src = new_source()
    publish_to(src, [b"x", b"y"])
    first = consumers(src)
    second = consumers(src.model_copy(update={"group": "others"}))
    first.commit(poll_until(first, 2))
    assert [m.payload for m in poll_until(second, 2)] == [b"x", b"y"]


def test_start_latest_skips_what_the_stream_held(new_source, consumers):
    src = new_source(start="latest")
    publish_to(src, [b"old"])
    c = consumers(src)
    publish_to(src, [b"new"])
    assert [m.payload for m in poll_until(c, 1)] == [b"new"]
    assert nothing_for(0.5, c)


def test_dead_letters_are_counted_and_not_delivered_again(new_source, consumers):
    src = new_source()
    publish_to(src, [b"not json", b"{}", b'{"ok": 1}'])
    c = consumers(src)
    got = poll_until(c, 3)
    assert c.status().dead_letters == 0
    c.dead_letter(
        [
            DeadLetter(got[0], "decode", "not a JSON object"),
            DeadLetter(got[1], "missing_field", "no driver_id", field="driver_id"),
        ]
    )
    c.commit(got)
    st = c.status()
    assert (st.dead_letters, st.pending) == (2, 0)
    assert nothing_for(0.5, c)


def test_status_counts_pending_and_unconsumed(new_source, consumers):
    src = new_source()
    offsets = publish_to(src, [b"%d" % i for i in range(10)])
    c = consumers(src)
    st = c.status()
    assert (st.group, st.stream_length, st.pending, st.unconsumed) == (src.group, 10, 0, 10)
    got = poll_until(c, 6)
    c.commit(got[:4])
    st = c.status()
    assert (st.stream_length, st.pending, st.unconsumed) == (10, 2, 4)
    assert st.last_delivered == offsets[5]
    c.commit(got[4:])
    assert c.status().last_committed == offsets[5]


def test_closing_without_commit_leaves_the_messages_pending(new_source, consumers):
    src = new_source()
    publish_to(src, [b"%d" % i for i in range(5)])
    c = consumers(src)
    assert len(poll_until(c, 5)) == 5
    c.close()
    fresh = consumers(src)  # what `parity stream status` does: open, status, close
    st = fresh.status()
    assert (st.pending, st.unconsumed, st.stream_length) == (5, 0, 5)


def test_an_unreachable_broker_is_a_data_source_error_naming_the_source(broker):
    src = stream_source_for(broker, url=UNREACHABLE[broker])
    c = consumer(src, ConsumerOptions("contract-unreachable"))
    started = time.monotonic()
    with pytest.raises(DataSourceError, match=r"'events'.*127\.0\.0\.1:1"):
        c.open()
    c.close()
    assert time.monotonic() - started < 15
