"""Every kind of bad message is set aside, acknowledged and counted, and the stream goes on.

One test per kind (``CASES``): two good events, the bad message, two good events, sent to a
stream of the test's own, read by an in-process runner (``store.stream_runner``). Each
asserts the bad message is in the dead-letter stream with its original payload, its reason
and a detail naming the field; nothing is left pending; ``runner.stats()`` counts it under
its reason; and the four good events around it were written (online, the exact count and
sum). Every case runs on Redis; a representative few (``NATS_CASES``) on NATS too. Also here:
the runner's Prometheus metrics after such a run.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import msgpack
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from parity import FeatureStore
from stream_brokers import BROKERS, Broker, make_broker, wait_for
from stream_utils import SourceSpec, teardown_repo, write_repo


@dataclass(frozen=True)
class Case:
    name: str
    bad: Any
    """The bad message: bytes as they are, a dict encoded in the source's format, or None
    (a Redis entry without the ``data`` field)."""
    reason: str
    named: str | None = None
    """The field the detail must name."""
    options: dict[str, Any] = field(default_factory=dict)
    event_id: bool = False


def _event(ts: Any = "2024-01-01T00:00:00+00:00", **over: Any) -> dict[str, Any]:
    return {"customer_id": 7, "amount": 1.0, "items": 1, "ts": ts, **over}


def _without(key: str) -> dict[str, Any]:
    e = _event()
    del e[key]
    return e


MSGPACK = {"format": "msgpack"}
CASES = [
    Case("not_json", b'{"customer_id": 7,', "decode"),
    Case("not_an_object", b"[7, 1.0]", "decode"),
    Case("msgpack_garbage", b"\xc1\xc1", "decode", options=MSGPACK),
    Case("no_data_field", None, "decode", "data"),
    Case("missing_feature", _without("amount"), "missing_field", "amount"),
    Case("missing_key", _without("customer_id"), "missing_field", "customer_id"),
    Case("missing_time", _without("ts"), "missing_field", "ts"),
    Case("null_key", _event(customer_id=None), "null_key", "customer_id"),
    Case("null_event_id", _event(event_id=None), "null_key", "event_id", event_id=True),
    Case("time_unparseable", _event(ts="yesterday"), "timestamp", "ts"),
    Case("time_out_of_range", _event(ts="2200-01-01T00:00:00+00:00"), "timestamp", "ts"),
    Case("time_epoch_out_of_range", _event(ts=10**12), "timestamp", "ts"),
    Case("text_for_float", _event(amount="abc"), "type", "amount"),
    Case("fraction_for_int", _event(items=1.5), "type", "items"),
    Case("int_beyond_int64", _event(items=2**63), "type", "items"),
    Case("unsummable_float", _event(amount=1e300), "value", "amount"),
    Case("nan_literal", b'{"customer_id": 7, "amount": NaN, "items": 1, "ts": 0}', "decode"),
    Case("infinity_literal", b'{"customer_id": 7, "amount": Infinity, "items": 1}', "decode"),
    Case("msgpack_nan", _event(amount=math.nan), "value", "amount", options=MSGPACK),
    Case("msgpack_infinity", _event(amount=-math.inf), "value", "amount", options=MSGPACK),
    Case("late", _event(), "late", "ts", options={"max_lateness": "10m"}),
]
NATS_CASES = {"not_json", "missing_feature", "late"}
"""The kinds run on NATS too (decoding is the broker's and the runner's, not the broker's)."""


def _params() -> list[Any]:
    out = []
    for kind in BROKERS:
        for c in CASES:
            if kind == "redis_streams" or c.name in NATS_CASES:
                out.append(pytest.param(kind, c, id=f"{kind}-{c.name}"))
    return out


PARAMS = _params()


@pytest.fixture(scope="module")
def repos(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Per broker: one repo, a source (own stream) per case, and the open store."""
    made: dict[str, Any] = {}
    brokers: list[Broker] = []
    try:
        for kind in BROKERS:
            cases = [c for k, c in (p.values for p in PARAMS) if k == kind]
            specs = []
            for c in [*cases, Case("metrics", None, "")]:
                b = make_broker(kind, filtered=True)  # dead letters in a stream of their own
                brokers.append(b)
                specs.append(SourceSpec(f"bad_{c.name}", b, c.event_id, dict(c.options)))
            repo = write_repo(tmp_path_factory.mktemp(f"bad-{kind}") / "repo", specs)
            made[kind] = {"repo": repo, "store": FeatureStore(repo), "specs": specs}
        yield made
    finally:
        for m in made.values():
            m["store"].close()
            teardown_repo(m["repo"])
        for b in brokers:
            b.close()


def _encode(value: Any, fmt: str) -> bytes | None:
    if value is None or isinstance(value, bytes):
        return value
    return msgpack.packb(value) if fmt == "msgpack" else orjson.dumps(value)


def _good(n: int) -> list[dict[str, Any]]:
    """``n`` good events of customer 7, a minute apart, ending two minutes ago: amounts
    1, 2, 3..."""
    end = datetime.now(UTC) - timedelta(minutes=2)
    return [
        _event((end - timedelta(minutes=n - 1 - i)).isoformat(), amount=float(i + 1), items=i)
        for i in range(n)
    ]


@contextlib.contextmanager
def running(store: FeatureStore, source: str, **options: Any) -> Iterator[Any]:
    runner = store.stream_runner([source], batch_size=options.pop("batch_size", 50), **options)
    runner.start()
    try:
        yield runner
    finally:
        runner.stop()


def _settled(runner: Any, source: str, written: int, dead: int) -> Any:
    """The source's stats once ``written`` events are written and ``dead`` dead-lettered
    (counted after the commit)."""
    st = runner.stats()[source]
    wait_for(
        lambda: st.written >= written and sum(st.dead_letters.values()) >= dead,
        lambda: f"{written} written and {dead} dead-lettered: {st}",
    )
    return st


@pytest.mark.parametrize(("kind", "case"), PARAMS)
def test_bad_message_is_set_aside_and_the_stream_goes_on(repos, kind: str, case: Case) -> None:
    m = repos[kind]
    source = f"bad_{case.name}"
    spec = next(s for s in m["specs"] if s.name == source)
    fmt = case.options.get("format", "json")
    good = _good(4)
    if case.event_id:
        good = [{**e, "event_id": i} for i, e in enumerate(good)]
    bad = case.bad
    if case.reason == "late":  # an hour behind the newest event before it
        bad = {**bad, "ts": (datetime.now(UTC) - timedelta(hours=1)).isoformat()}
    elif case.event_id and isinstance(bad, dict):
        bad = {"event_id": 99, **bad}
    payloads = [_encode(e, fmt) for e in good[:2]] + [_encode(bad, fmt)]
    payloads += [_encode(e, fmt) for e in good[2:]]
    offsets = spec.broker.publish(payloads)

    with running(m["store"], source) as runner:
        st = _settled(runner, source, 4, 1)
    assert (st.written, dict(st.dead_letters), st.error) == (4, {case.reason: 1}, None)
    assert spec.broker.progress().drained, spec.broker.progress()

    [letter] = spec.broker.dead_letters()
    assert letter.offset == offsets[2]
    assert letter.payload == (payloads[2] or b"")
    assert letter.reason == case.reason
    if case.named is not None:
        assert repr(case.named) in letter.detail, letter
    online = (
        m["store"]
        .get_online_features(
            [
                f"{source}_latest:amount",
                f"{source}_windows:count_1d",
                f"{source}_windows:amount_sum_1h",
            ],
            entities={"customer_id": [7]},
        )
        .to_dict()
    )
    assert (online["count_1d"], online["amount_sum_1h"], online["amount"]) == ([4], [10.0], [4.0])


def _samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


@pytest.mark.parametrize("kind", BROKERS)
def test_metrics_count_what_the_runner_did(repos, kind: str) -> None:
    m = repos[kind]
    source = "bad_metrics"
    spec = next(s for s in m["specs"] if s.name == source)
    good = _good(6)
    payloads = [_encode(e, "json") for e in good[:3]] + [b"not json"]
    payloads += [_encode(e, "json") for e in good[3:]] + [_encode(_without("amount"), "json")]
    spec.broker.publish(payloads)
    with running(m["store"], source, metrics_port=0) as runner:
        _settled(runner, source, 6, 2)
        port = runner.metrics_port
        assert port
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=30).text
    got = _samples(text)

    def value(name: str, **labels: str) -> float:
        key = (name, frozenset({"source": source, **labels}.items()))
        assert key in got, f"{name}{labels} not in /metrics:\n{text}"
        return got[key]

    assert value("parity_stream_events_consumed_total") == 8
    assert value("parity_stream_events_written_total", view=f"{source}_latest") == 6
    assert value("parity_stream_events_written_total", view=f"{source}_windows") == 6
    assert value("parity_stream_dead_letters_total", reason="decode") == 1
    assert value("parity_stream_dead_letters_total", reason="missing_field") == 1
    for since in ("append", "event"):
        assert value("parity_stream_freshness_seconds_bucket", since=since, le="+Inf") == 6
        assert value("parity_stream_freshness_seconds_count", since=since) == 6
    # the events are two minutes old or more: none lands within 60 s of its event time
    assert value("parity_stream_freshness_seconds_bucket", since="event", le="60.0") == 0
