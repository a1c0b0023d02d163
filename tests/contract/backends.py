"""Every backend the contract suites run against: one visible list per kind.

Adding a backend means adding its name here (and, for an online store, how to configure it
in ``online_store_yaml``; for a stream consumer, a source in ``stream_source_for`` and how to
publish to it in ``publish_to``); every contract suite of its kind then runs on it. ``memory`` is a
third-party store from outside the ``parity`` package (``tests/plugins``), found through its
entry point like any installed plug-in. A suite that cannot run on a backend marks the gap
with the reason (``gap``), never skips it silently.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

ONLINE_STORES = ["sqlite", "redis", "redis_cluster", "memory"]
OFFLINE_ENGINES = ["duckdb"]
REGISTRY_BACKENDS = ["sqlite", "postgresql"]
STREAM_CONSUMERS = ["redis_streams", "nats_jetstream"]

GAPS: dict[tuple[str, str], str] = {
    (
        "aggregates_parity",
        "redis_cluster",
    ): "the property run costs minutes per store; Redis Cluster runs the same compare-and-set "
    "script as plain Redis (per slot), and its update contract (concurrent writers lose "
    "nothing) is in test_online_store.py",
    (
        "online_key_scan",
        "memory",
    ): "the third-party memory store does not list its keys (an optional ability); erase "
    "finds such keys in the offline rows instead (test_governance_erase.py runs on it)",
}
"""(suite, backend) pairs a suite does not run, with the reason shown in the test report."""


def params(suite: str, backends: list[str]) -> list[Any]:
    """``backends`` as pytest params for ``suite``, gaps marked skip with their reason."""
    out = []
    for b in backends:
        reason = GAPS.get((suite, b))
        marks = [pytest.mark.skip(reason=f"{b}: {reason}")] if reason else []
        out.append(pytest.param(b, marks=marks, id=b))
    return out


def online_store_yaml(
    kind: str, request: pytest.FixtureRequest, *, redis_db: int, extra: str = ""
) -> str:
    """``online_store:`` for parity.yaml, as inline YAML, on keys no other test uses."""
    if kind == "sqlite":
        return "{ type: sqlite, path: data/online.db }"
    if kind == "memory":
        request.getfixturevalue("memory_store_installed")
        return f"{{ type: memory, namespace: 'ns_{uuid.uuid4().hex[:10]}' }}"
    prefix = f"parity_test_{uuid.uuid4().hex[:10]}:"
    more = f", {extra}" if extra else ""
    if kind == "redis":
        url = f"redis://127.0.0.1:6379/{redis_db}"
        return f"{{ type: redis, url: '{url}', key_prefix: '{prefix}'{more} }}"
    if kind == "redis_cluster":
        nodes = request.getfixturevalue("redis_cluster_nodes")
        return f"{{ type: redis, cluster: {list(nodes)}, key_prefix: '{prefix}'{more} }}"
    raise AssertionError(f"no config for online store {kind!r}: add one in backends.py")


# -- stream consumers ---------------------------------------------------------------------

STREAM_REDIS_URL = "redis://127.0.0.1:6379/7"
STREAM_NATS_URL = "nats://127.0.0.1:4222"


def stream_source_for(broker: str, **fields: Any) -> Any:
    """A ``StreamSource`` of ``broker`` on a stream no other test uses (Redis db 7, key
    ``parity_test:<hex>``; a JetStream stream ``PT<HEX>`` read on ``<stream>.events``).
    ``fields`` override the defaults (``url``, ``group``, ``start``...)."""
    from parity.definitions import FileSource, StreamSource

    hex_ = uuid.uuid4().hex[:12]
    if broker == "redis_streams":
        fields = {"url": STREAM_REDIS_URL, "stream": f"parity_test:{hex_}", **fields}
    elif broker == "nats_jetstream":
        stream = f"PT{hex_.upper()}"
        fields = {"url": STREAM_NATS_URL, "stream": stream, "subject": f"{stream}.events", **fields}
    else:
        raise AssertionError(f"no stream source for consumer {broker!r}: add one in backends.py")
    files = FileSource(name="events_files", path="events.parquet")
    return StreamSource(name="events", kind=broker, batch_source=files, **fields)


def publish_to(source: Any, payloads: list[bytes]) -> list[str]:
    """Append ``payloads`` to ``source``'s stream; their offsets, as its consumer reports them."""
    if source.broker == "redis_streams":
        import redis

        client = redis.Redis.from_url(source.url)
        try:
            pipe = client.pipeline(transaction=False)
            for p in payloads:
                pipe.xadd(source.stream, {source.payload_field: p})
            return [i.decode() for i in pipe.execute()]
        finally:
            client.close()
    if source.broker == "nats_jetstream":
        from parity.streams.nats_tools import publish_events

        return [str(s) for s in publish_events(source.url, source.stream, source.subject, payloads)]
    raise AssertionError(f"no publisher for {source.broker!r}: add one in backends.py")


def drop_stream(source: Any) -> None:
    """Delete ``source``'s stream, its group and its dead letters."""
    if source.broker == "redis_streams":
        import redis

        client = redis.Redis.from_url(source.url)
        try:
            client.delete(source.stream, source.dead_letter_stream)
        finally:
            client.close()
    elif source.broker == "nats_jetstream":
        from parity.streams.nats_tools import delete_streams

        delete_streams(source.url, [source.stream, f"{source.stream}_dead"])
