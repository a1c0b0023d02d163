"""The stream consumers Parity ships, as ``parity.plugins`` backends (light to import: the
factories import the broker clients when called)."""

from __future__ import annotations

from typing import Any

from parity.definitions import StreamSource
from parity.plugins import Backend

__all__ = ["NATS_JETSTREAM", "REDIS_STREAMS"]


def _redis(source: StreamSource, options: Any) -> Any:
    from parity.streams.redis_streams import RedisStreamsConsumer

    return RedisStreamsConsumer(source, options)


def _nats(source: StreamSource, options: Any) -> Any:
    from parity.streams.nats_jetstream import NatsJetStreamConsumer

    return NatsJetStreamConsumer(source, options)


REDIS_STREAMS = Backend(
    kind="stream_consumer",
    name="redis_streams",
    config=StreamSource,
    factory=_redis,
    extra="streams",
    requires=("redis",),
    description="Redis Streams: a consumer group, XREADGROUP, XAUTOCLAIM, XACK",
)
NATS_JETSTREAM = Backend(
    kind="stream_consumer",
    name="nats_jetstream",
    config=StreamSource,
    factory=_nats,
    extra="streams",
    requires=("nats",),
    description="NATS JetStream: a durable pull consumer, explicit acks",
)
