"""The consumer contract: one small class per broker, the rest of stream ingestion shared.

A ``StreamConsumer`` reads one stream source's messages as a member of the source's
consumer group and acknowledges them; it knows nothing of features. The runner
(``parity.streams.runner``) decodes what it polls into rows, writes them through the one
ingestion path, publishes what cannot be applied to the dead-letter stream, and only then
commits. Delivery is therefore at least once; the writes make it exactly once in effect.

A consumer must:

- ``open()``: connect, and create the group (Redis) or durable consumer (JetStream) when it
  does not exist, reading from the stream's first message (``start="earliest"``) or from
  what arrives next (``"latest"``);
- ``poll(n)``: return up to ``n`` messages, waiting at most ``options.block`` seconds when
  none is there. Messages left unacknowledged are delivered again: its own pending ones
  after a restart, and those another consumer of the group has held longer than
  ``options.claim_idle`` (a consumer that died); ``Message.redelivered`` says so;
- ``commit(messages)``: acknowledge them, so the group never delivers them again;
- ``dead_letter(letters)``: append each to the source's dead-letter stream with its
  original payload and reason (before the runner commits them);
- ``status()``: what the broker says of the group (pending, unconsumed, committed).

Consumers are found by broker name through the ``parity.stream_consumers`` entry-point group
(``parity.plugins``), like online stores and offline engines; a Kafka consumer is one more
class and one more entry point.
"""

from __future__ import annotations

import os
import socket
import uuid
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

from parity.definitions import StreamSource

__all__ = [
    "ConsumerOptions",
    "ConsumerStatus",
    "DeadLetter",
    "Message",
    "StreamConsumer",
    "consumer_name",
]


class Message(NamedTuple):
    """One message as the broker delivered it (a named tuple: tens of thousands are made
    per second, and a tuple is the cheapest immutable value Python builds)."""

    offset: str
    """Its identity in the stream: a Redis entry id (``"1700000000000-3"``), a JetStream
    stream sequence (``"42"``). The same on every delivery."""
    payload: bytes | None
    """The event: JSON or msgpack bytes; None when a Redis entry has no payload field."""
    append_us: int
    """When the broker appended it, µs since the epoch (UTC)."""
    redelivered: bool = False
    """Delivered before, to this consumer or another, and not acknowledged then."""
    subject: str | None = None
    """The NATS subject it was published on (None on Redis)."""
    token: Any = None
    """What the consumer needs to acknowledge it (a JetStream message); opaque to others."""


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message set aside: it goes to the dead-letter stream, then is acknowledged."""

    message: Message
    reason: str
    """A short code: ``decode``, ``missing_field``, ``type``, ``null_key``, ``timestamp``,
    ``value``, ``late`` (see ``parity.streams.decode``)."""
    detail: str
    """What is wrong, naming the field."""
    field: str | None = None


@dataclass(frozen=True)
class ConsumerOptions:
    """How one consumer process behaves in its group."""

    consumer: str
    """This consumer's name in the group; unique per process (``consumer_name()``)."""
    claim_idle: float = 30.0
    """Seconds a message may stay unacknowledged with a consumer before another one takes
    it over (XAUTOCLAIM's min idle time; JetStream's ack wait)."""
    block: float = 0.5
    """The longest a poll waits for new messages, in seconds (a stop takes at most this)."""
    create: bool = True
    """Whether ``open()`` may create the group (and stream) when missing; a consumer opened
    only to read ``status()`` (``parity stream status``) creates nothing."""


@dataclass(frozen=True)
class ConsumerStatus:
    """What the broker reports of a source's group; None where it cannot tell."""

    group: str
    stream_length: int | None = None
    pending: int | None = None
    """Delivered to a consumer of the group, not acknowledged yet."""
    unconsumed: int | None = None
    """In the stream, not yet delivered to the group (the lag)."""
    last_delivered: str | None = None
    last_committed: str | None = None
    """The offset up to which every message is acknowledged (JetStream's ack floor; on
    Redis the entry before the oldest pending one, or the last delivered)."""
    consumers: int | None = None
    dead_letters: int | None = None
    """Messages in the dead-letter stream."""


class StreamConsumer(ABC):
    """Reads one stream source's messages for its group; see the module docstring."""

    broker: ClassVar[str]
    concurrent_poll: ClassVar[bool] = False
    """Whether ``poll`` may run on one thread while ``commit`` / ``dead_letter`` / ``status``
    run on another (the runner then fetches the next batch while it writes the last)."""

    def __init__(self, source: StreamSource, options: ConsumerOptions) -> None:
        self.source = source
        self.options = options

    @abstractmethod
    def open(self) -> None:
        """Connect; create the group / durable consumer when it does not exist."""

    @abstractmethod
    def poll(self, max_messages: int) -> list[Message]:
        """Up to ``max_messages`` messages (redeliveries first), waiting at most
        ``options.block`` seconds; an empty list when none came."""

    @abstractmethod
    def commit(self, messages: Sequence[Message], *, wait: bool = True) -> None:
        """Acknowledge ``messages``: the group never delivers them again. ``wait=False``
        lets the consumer send the acknowledgement with its next round trip to the broker
        (the next ``poll``, ``status`` or ``close``); a consumer may always send it now."""

    def extend(self, messages: Sequence[Message]) -> None:  # noqa: B027 - optional
        """Say these messages are still being worked on, so the group does not hand them
        to another consumer meanwhile (the runner calls it while a batch takes long).
        Brokers without such a signal do nothing."""

    @abstractmethod
    def dead_letter(self, letters: Sequence[DeadLetter]) -> None:
        """Append each letter to the dead-letter stream (original payload, reason)."""

    @abstractmethod
    def status(self) -> ConsumerStatus:
        """The group as the broker sees it."""

    @abstractmethod
    def close(self) -> None:
        """Disconnect (unacknowledged messages stay pending for the group)."""

    def __enter__(self) -> StreamConsumer:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def consumer_name() -> str:
    """A name unique to this process: host, pid and a random part (a restarted process is
    a new consumer; what the old one held is claimed or redelivered)."""
    host = socket.gethostname().split(".")[0] or "host"
    return f"{host}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
