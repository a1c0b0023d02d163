"""The stream benchmark's broker side: events, producers, the hand-written reference
consumers and the freshness reader (``bench.streams`` runs each in its own process).

- ``make_events``: seeded events (join key ``order_key``, ``event_ts`` in ms, 8 features, the
  last one ``seq`` = the event's sequence number), as JSON payloads in stream order;
- ``RedisBroker`` / ``NatsBroker``: fill a stream, report a group's progress (done when every
  event is delivered and acknowledged), read back append times, clean up;
- ``reference_redis`` / ``reference_nats``: what a person writes by hand: XREADGROUP COUNT
  1000 (or a JetStream pull ``fetch(1000)``), ``orjson`` decode, one pipeline of ``SET
  <prefix><key> msgpack(features)`` (and XACK on Redis), then acks;
- ``produce``: events at a steady rate, in small batches paced against the clock;
- ``read_fresh``: polls the online store for the sampled events just produced and records
  when each value is first seen.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

REDIS_DB = 10  # the stream benchmark's own database: emptied before and after, no other
REDIS_URL = f"redis://127.0.0.1:6379/{REDIS_DB}"
NATS_URL = "nats://127.0.0.1:4222"
KEY_PREFIX = "parity_bench_stream:"
REFERENCE_PREFIX = f"{KEY_PREFIX}ref:"  # the reference consumer's online keys
REFERENCE_GROUP = "reference"
PAYLOAD_FIELD = "data"
BATCH = 1_000  # messages per read, for Parity and the reference alike
FLOATS = ("price", "discount", "weight", "score")
INTS = ("quantity", "items", "status", "seq")
FEATURES = FLOATS + INTS
SPAN_MS = 90 * 60 * 1000  # the pre-filled events' times: the 90 minutes before their end
POLL_S = 0.005  # the freshness reader's pause between polls
GIVE_UP_S = 10.0  # a sampled event not seen this long after it was due counts as unseen


# --- events ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Events:
    """Seeded events in stream order; column lists (Python values) and the JSON payloads."""

    keys: list[int]
    ts_ms: list[int]
    columns: dict[str, list[Any]]
    payloads: list[bytes]

    def __len__(self) -> int:
        return len(self.keys)


def make_events(n: int, entities: int, seed: int, end_ms: int) -> Events:
    """``n`` events over ``entities`` keys (1..entities), times strictly increasing up to
    ``end_ms`` over about ``SPAN_MS`` (so stream order is time order, no ties); ``seq`` = the
    event's index."""
    import numpy as np
    import orjson

    rng = np.random.default_rng(seed)
    keys = rng.integers(1, entities + 1, n).tolist()
    # An even step from an odd end: every time is odd, so none falls on a hop boundary
    # (whole minutes), where "(start, t]" leaves no doubt which window an event is in.
    step = 2 * max(1, SPAN_MS // max(2 * n, 1))
    end_ms |= 1
    ts = (end_ms - (n - 1) * step + np.arange(n, dtype=np.int64) * step).tolist()
    columns: dict[str, list[Any]] = {
        name: np.round(rng.gamma(2.0, 20.0, n), 2).tolist() for name in FLOATS
    }
    for name in INTS[:-1]:
        columns[name] = rng.integers(0, 1_000, n).tolist()
    columns["seq"] = list(range(n))
    payloads = [
        orjson.dumps(
            {"order_key": k, "event_ts": t, **{name: columns[name][i] for name in FEATURES}}
        )
        for i, (k, t) in enumerate(zip(keys, ts, strict=True))
    ]
    return Events(keys=keys, ts_ms=ts, columns=columns, payloads=payloads)


def fresh_payload(seq: int, entities: int, now_ms: int) -> tuple[int, bytes]:
    """The freshness producer's event number ``seq``: key ``seq % entities + 1``, time now."""
    import orjson

    key = seq % entities + 1
    event = {"order_key": key, "event_ts": now_ms, **dict.fromkeys(FLOATS, 1.5)}
    event.update(quantity=seq % 1000, items=1, status=2, seq=seq)
    return key, orjson.dumps(event)


# --- Redis -----------------------------------------------------------------------------------


def redis_client(**settings: Any) -> Any:
    """A client of db 10 (checked: nothing else is ever written)."""
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_timeout=30, **settings)
    if client.connection_pool.connection_kwargs.get("db") != REDIS_DB:
        raise AssertionError(f"{REDIS_URL} does not select db {REDIS_DB}")
    client.ping()
    return client


class RedisBroker:
    """The parent's view of one Redis stream: fill it, watch a group, clean up."""

    def __init__(self, stream: str) -> None:
        self.stream = stream
        self.client = redis_client()

    def reset(self) -> None:
        """Empty db 10: the stream, its groups, every online key of the last round."""
        self.client.flushdb()

    def fill(self, payloads: Sequence[bytes]) -> None:
        pipe = self.client.pipeline(transaction=False)
        for i, payload in enumerate(payloads, 1):
            pipe.xadd(self.stream, {PAYLOAD_FIELD: payload})
            if i % BATCH == 0:
                pipe.execute()
        pipe.execute()

    def progress(self, group: str) -> tuple[int, int] | None:
        """(entries delivered to ``group``, entries pending), None before the group exists."""
        import redis

        try:
            groups = self.client.xinfo_groups(self.stream)
        except redis.ResponseError:
            return None
        for g in groups:
            name = g["name"].decode() if isinstance(g["name"], bytes) else g["name"]
            if name == group:
                return int(g.get("entries-read") or 0), int(g["pending"])
        return None

    def done(self, group: str, n: int) -> bool:
        state = self.progress(group)
        return state is not None and state[0] >= n and state[1] == 0

    def server_cpu_s(self) -> float:
        info = self.client.info("cpu")
        return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.flushdb()
        self.client.close()


# --- NATS JetStream ---------------------------------------------------------------------------


class NatsBroker:
    """The parent's view of one JetStream stream (synchronous: its own event loop)."""

    def __init__(self, stream: str, subject: str) -> None:
        import nats

        self.stream, self.subject = stream, subject
        self.online = redis_client()  # the online store: emptied with the stream
        self.loop = asyncio.new_event_loop()
        self.nc = self._run(nats.connect(NATS_URL, max_reconnect_attempts=0))
        self.js = self.nc.jetstream()

    def _run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def reset(self) -> None:
        """A new, empty stream (deleted first if it exists: every consumer goes with it), and
        an empty online store (db 10): a round must not start from the last one's records
        (the same message ids would be skipped as replays)."""
        from nats.js.errors import NotFoundError

        self.online.flushdb()
        with contextlib.suppress(NotFoundError):
            self._run(self.js.delete_stream(self.stream))
        # The subject's whole family, so dead letters (``<subject>.dead``) land in the same
        # stream, outside the consumers' filter.
        family = self.subject.rsplit(".", 1)[0] + ".>"
        self._run(self.js.add_stream(name=self.stream, subjects=[family]))

    def fill(self, payloads: Sequence[bytes]) -> None:
        """Core-NATS publishes (JetStream stores what its subjects capture), then wait until
        the stream holds them all; much faster than awaiting one ack per message."""

        async def fill() -> None:
            for i, payload in enumerate(payloads, 1):
                await self.nc.publish(self.subject, payload)
                if i % 5_000 == 0:
                    await self.nc.flush()
            await self.nc.flush()

        self._run(fill())
        deadline = time.monotonic() + 60
        while self._messages() < len(payloads):
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"JetStream stream {self.stream} holds {self._messages()} of "
                    f"{len(payloads)} published messages after 60 s"
                )
            time.sleep(0.02)

    def _messages(self) -> int:
        return int(self._run(self.js.stream_info(self.stream)).state.messages)

    def _state(self, group: str) -> tuple[int, int, int] | None:
        """(delivered, undelivered, delivered but unacknowledged) of durable ``group``."""
        from nats.js.errors import NotFoundError

        try:
            info = self._run(self.js.consumer_info(self.stream, group))
        except NotFoundError:
            return None
        delivered = int(info.delivered.stream_seq or 0) if info.delivered else 0
        return delivered, int(info.num_pending or 0), int(info.num_ack_pending or 0)

    def progress(self, group: str) -> tuple[int, int] | None:
        """(messages delivered to durable ``group``, of those not acknowledged yet), None
        before it exists."""
        state = self._state(group)
        return None if state is None else (state[0], state[2])

    def done(self, group: str, n: int) -> bool:
        state = self._state(group)
        return state is not None and state[0] >= n and state[1] == 0 and state[2] == 0

    def append_times_ms(self, seqs: set[int]) -> dict[int, float]:
        """Our ``seq`` -> the JetStream timestamp (ms since the epoch) of those messages."""
        import orjson
        from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

        async def read() -> dict[int, float]:
            config = ConsumerConfig(ack_policy=AckPolicy.NONE, deliver_policy=DeliverPolicy.ALL)
            sub = await self.js.pull_subscribe(self.subject, stream=self.stream, config=config)
            total = (await self.js.stream_info(self.stream)).state.messages
            found: dict[int, float] = {}
            seen = 0
            try:
                while seen < total:
                    try:
                        msgs = await sub.fetch(BATCH, timeout=2)
                    except Exception:  # nats' TimeoutError: nothing more on the subject
                        break
                    for msg in msgs:
                        seen += 1
                        seq = orjson.loads(msg.data)["seq"]
                        if seq in seqs:
                            found[seq] = msg.metadata.timestamp.timestamp() * 1000.0
            finally:
                await sub.unsubscribe()
            return found

        return self._run(read())  # type: ignore[no-any-return]

    def server_cpu_s(self) -> float:
        """nats-server's user + system seconds (found by name; read, never signalled)."""
        import psutil

        for proc in psutil.process_iter(["name"]):
            if proc.info["name"] == "nats-server":
                with contextlib.suppress(psutil.Error):
                    times = proc.cpu_times()
                    return float(times.user + times.system)
        return float("nan")

    def close(self) -> None:
        from nats.js.errors import NotFoundError

        with contextlib.suppress(NotFoundError):
            self._run(self.js.delete_stream(self.stream))
        self._run(self.nc.close())
        self.loop.close()
        with contextlib.suppress(Exception):
            self.online.flushdb()
        self.online.close()


# --- the reference consumers -------------------------------------------------------------------


def reference_redis(stream: str, stop: threading.Event) -> dict[str, Any]:
    """XREADGROUP COUNT 1000, orjson decode, one pipeline of SET + XACK per batch, until
    ``stop`` is set. Creates its group (from the stream's start) as its first step."""
    import msgpack
    import orjson
    import redis

    client = redis_client()
    with contextlib.suppress(redis.ResponseError):  # BUSYGROUP: it exists
        client.xgroup_create(stream, REFERENCE_GROUP, id="0", mkstream=True)
    field = PAYLOAD_FIELD.encode()
    consumed = batches = 0
    while not stop.is_set():
        reply = client.xreadgroup(
            REFERENCE_GROUP, "reference-1", {stream: ">"}, count=BATCH, block=200
        )
        if not reply:
            continue
        entries = reply[0][1]
        pipe = client.pipeline(transaction=False)
        for _, fields in entries:
            event = orjson.loads(fields[field])
            pipe.set(
                f"{REFERENCE_PREFIX}{event['order_key']}",
                msgpack.packb([event[name] for name in FEATURES]),
            )
        pipe.xack(stream, REFERENCE_GROUP, *(entry_id for entry_id, _ in entries))
        pipe.execute()
        consumed += len(entries)
        batches += 1
    client.close()
    return {"consumed": consumed, "batches": batches}


def reference_nats(stream: str, subject: str, stop: threading.Event) -> dict[str, Any]:
    """A nats-py durable pull consumer: ``fetch(1000)``, orjson decode, one pipeline of SETs
    into Redis, then an explicit ack per message, until ``stop`` is set."""
    import msgpack
    import nats
    import orjson
    from nats.errors import TimeoutError as NatsTimeout
    from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

    async def consume() -> tuple[int, int]:
        client = redis_client()
        nc = await nats.connect(NATS_URL)
        js = nc.jetstream()
        config = ConsumerConfig(
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            max_ack_pending=BATCH * 10,
        )
        sub = await js.pull_subscribe(
            subject, durable=REFERENCE_GROUP, stream=stream, config=config
        )
        consumed = batches = 0
        while not stop.is_set():
            try:
                msgs = await sub.fetch(BATCH, timeout=0.2)
            except NatsTimeout:
                continue
            pipe = client.pipeline(transaction=False)
            for msg in msgs:
                event = orjson.loads(msg.data)
                pipe.set(
                    f"{REFERENCE_PREFIX}{event['order_key']}",
                    msgpack.packb([event[name] for name in FEATURES]),
                )
            pipe.execute()
            for msg in msgs:
                await msg.ack()
            consumed += len(msgs)
            batches += 1
        await nc.flush()
        await nc.close()
        client.close()
        return consumed, batches

    consumed, batches = asyncio.run(consume())
    return {"consumed": consumed, "batches": batches}


# --- the paced producer --------------------------------------------------------------------


def produce(
    broker: str,
    target: tuple[str, str | None],
    rate: int,
    seconds: float,
    entities: int,
    t0: float,
    sample_every: int,
) -> dict[str, Any]:
    """Events at ``rate``/s for ``seconds`` from wall time ``t0``, in batches every 5 ms,
    each batch sent when the clock says it is due. Returns the achieved rate and, on Redis,
    the append time (entry id ms) of every ``sample_every``-th event."""
    batch = max(1, rate // 200)
    total = int(rate * seconds)
    clock = time.time
    while clock() < t0:
        time.sleep(min(0.01, max(0.0, t0 - clock())))
    started = clock()
    appended: dict[int, int] = {}
    late_batches = 0
    if broker == "redis":
        client = redis_client()
        stream = target[0]
        for first in range(0, total, batch):
            due = t0 + first / rate
            wait = due - clock()
            if wait > 0:
                time.sleep(wait)
            elif wait < -0.05:
                late_batches += 1
            now_ms = int(clock() * 1000)
            pipe = client.pipeline(transaction=False)
            seqs = range(first, min(first + batch, total))
            for seq in seqs:
                pipe.xadd(stream, {PAYLOAD_FIELD: fresh_payload(seq, entities, now_ms)[1]})
            for seq, entry_id in zip(seqs, pipe.execute(), strict=True):
                if seq % sample_every == 0:
                    appended[seq] = int(entry_id.split(b"-", 1)[0])
        client.close()
    else:
        late_batches = asyncio.run(_produce_nats(target, rate, total, batch, entities, t0))
    wall = clock() - started
    return {
        "produced": total,
        "rate": total / wall,
        "late_batches": late_batches,
        "appended_ms": {str(k): v for k, v in appended.items()},
    }


async def _produce_nats(
    target: tuple[str, str | None], rate: int, total: int, batch: int, entities: int, t0: float
) -> int:
    import nats

    nc = await nats.connect(NATS_URL)
    subject = target[1] or ""
    late = 0
    for first in range(0, total, batch):
        wait = t0 + first / rate - time.time()
        if wait > 0:
            await asyncio.sleep(wait)
        elif wait < -0.05:
            late += 1
        now_ms = int(time.time() * 1000)
        for seq in range(first, min(first + batch, total)):
            await nc.publish(subject, fresh_payload(seq, entities, now_ms)[1])
        await nc.flush()
    await nc.close()
    return late


# --- the freshness reader ----------------------------------------------------------------------


def reference_lookup() -> Callable[[list[int]], list[int | None]]:
    """The reference's reads: MGET of its keys, the ``seq`` feature from each msgpack value."""
    import msgpack

    client = redis_client()
    seq_at = FEATURES.index("seq")

    def lookup(keys: list[int]) -> list[int | None]:
        values = client.mget([f"{REFERENCE_PREFIX}{k}" for k in keys])
        return [None if v is None else msgpack.unpackb(v)[seq_at] for v in values]

    return lookup


def read_fresh(
    lookup: Callable[[list[int]], list[int | None]],
    rate: int,
    seconds: float,
    entities: int,
    t0: float,
    sample_every: int,
) -> dict[str, Any]:
    """Poll ``lookup`` for every ``sample_every``-th event once its send time has come, until
    its value (``seq`` >= the event's) shows; the first-seen wall times (s) by event number.

    The reader knows which events are due from the producer's schedule (``t0``, ``rate``);
    latency is computed later from the broker's append time, so a producer running late
    delays the sightings, never the figure.
    """
    total = int(rate * seconds)
    seen: dict[int, float] = {}
    waiting: dict[int, list[int]] = {}  # entity key -> sampled events it has yet to show
    next_seq = 0
    polls = 0
    clock = time.time
    while clock() < t0:
        time.sleep(min(0.01, max(0.0, t0 - clock())))
    end = t0 + seconds + GIVE_UP_S
    while clock() < end and (next_seq < total or waiting):
        upto = min(total, int((clock() - t0) * rate))
        for seq in range(next_seq + (-next_seq % sample_every), upto, sample_every):
            waiting.setdefault(seq % entities + 1, []).append(seq)
        next_seq = max(next_seq, upto)
        if waiting:
            keys = list(waiting)
            values = lookup(keys)
            polls += 1
            at = clock()
            for key, value in zip(keys, values, strict=True):
                if value is None:
                    continue
                # Values only grow per key (events in order), so a newer one shows the older.
                pending = waiting[key]
                for seq in [s for s in pending if s <= value]:
                    seen[seq] = at
                rest = [s for s in pending if s > value and at - (t0 + s / rate) < GIVE_UP_S]
                if rest:
                    waiting[key] = rest
                else:
                    del waiting[key]
        time.sleep(POLL_S)
    return {
        "seen_s": {str(k): v for k, v in seen.items()},
        "sampled": len(range(0, total, sample_every)),
        "polls": polls,
    }
