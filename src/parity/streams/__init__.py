"""Stream ingestion: Parity's own consumers for stream sources (``parity stream run``).

``base`` is the consumer contract (one small class per broker: ``redis_streams``,
``nats_jetstream``), ``decode`` turns message payloads into rows (or dead letters),
``runner`` polls, writes through the one ingestion path (``parity.ingest``), dead-letters,
then commits; ``metrics`` and ``stats`` make it observable.
"""

from __future__ import annotations

from parity import plugins
from parity.definitions import StreamSource
from parity.streams.base import (
    ConsumerOptions,
    ConsumerStatus,
    DeadLetter,
    Message,
    StreamConsumer,
    consumer_name,
)

__all__ = [
    "ConsumerOptions",
    "ConsumerStatus",
    "DeadLetter",
    "Message",
    "StreamConsumer",
    "consumer",
    "consumer_name",
]


def consumer(source: StreamSource, options: ConsumerOptions) -> StreamConsumer:
    """The consumer of ``source``'s broker (found by name in ``parity.stream_consumers``)."""
    found = plugins.backend("stream_consumer", source.broker, where=f"source {source.name!r}")
    plugins.require(found.requires, found.extra, f"stream source {source.name!r} ({source.broker})")
    made = found.factory(source, options)
    if not isinstance(made, StreamConsumer):
        raise TypeError(f"{found.origin or found.name}: factory did not make a StreamConsumer")
    return made
