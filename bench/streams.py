"""Benchmark: stream ingestion, Redis Streams and NATS JetStream into the Redis online store.

Per broker and round (``--runs``), on one machine (producer, broker, consumer, Redis):

1. Throughput, plain view (8 features): the stream is filled with ``--events`` seeded events
   over ``--entities`` keys; then Parity's runner (``store.stream_runner``) and the
   hand-written reference (``bench.stream_reference``) each consume all of it with their own
   group, in a fresh process: events/s = events / seconds from the consumer being told to go
   to the broker saying every event is delivered and acknowledged. Goals: >= 50,000
   events/s and >= 1.0x the reference.
2. Throughput, aggregated view (sum, count, mean over 1 h and 1 d, hop 5 min), same stream,
   another group: >= 20,000 events/s.
3. Freshness: a producer process appends 10,000 events/s, paced in 5 ms batches; a reader
   process polls the online store for every 10th event and records when its value first
   shows; latency = that time - the broker's append time. Goal: p99 <= 500 ms.

Figures are medians of the rounds; the consumer's CPU share is its process's user + system
CPU seconds over the wall seconds of the measure. Redis db 10 only (keys under
``parity_bench_stream:``), emptied before each round and at the end; NATS streams
``PARITY_BENCH_...`` are deleted after.

    python -m bench.streams --runs 3 [--events 200000] [--broker redis,nats]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import queue
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench import stream_reference as ref
from bench.harness import ROOT, ChildError, child_env, emit
from bench.report import TableReport, render, verdict

MODULE = "bench.streams"
BROKERS = ("redis", "nats")
PARTS = ("plain", "agg", "fresh")
GOALS = {"plain_eps": 50_000, "plain_ratio": 1.0, "agg_eps": 20_000, "fresh_p99_ms": 500.0}
GROUPS = {"plain": "parity", "agg": "parity_agg"}
SOURCES = {"plain": "orders", "agg": "orders_agg"}
HOP = timedelta(minutes=5)
WINDOWS = {"1h": timedelta(hours=1), "1d": timedelta(days=1)}
AGG_FEATURES = [f"{f}_{w}" for w in WINDOWS for f in ("price_sum", "count", "price_mean")]
FRESH_WARMUP_S = 1.0  # events due in the producer's first second are not counted
CONSUME_TIMEOUT_S = 300.0
PROFILE_GIL = False  # set by --profile-gil
STALL_S = 20.0  # no progress this long: the consumer is stuck, say why
DEFAULTS = {
    "runs": 3,
    "events": 200_000,
    "entities": 20_000,
    "rate": 10_000,
    "fresh_seconds": 6.0,
    "sample_every": 10,
}

FEATURES_PY = '''\
"""Written by bench.streams: one stream, a plain view and an aggregated view."""

from datetime import timedelta

from parity import Aggregation, Entity, FeatureView, Field, FileSource, StreamSource

order = Entity(name="order", join_keys=["order_key"], dtype="Int64")
batch = FileSource(name="orders_batch", path="data/orders.parquet", timestamp_field="event_ts")
common = dict(
    kind={kind!r}, url={url!r}, stream={stream!r}, subject={subject!r}, format="json",
    payload_field="data", timestamp_unit="ms", batch_source=batch, to="online",
)
orders = StreamSource(name="orders", group="parity", **common)
orders_agg = StreamSource(name="orders_agg", group="parity_agg", **common)
orders_plain = FeatureView(
    name="orders_plain",
    entities=[order],
    source=orders,
    ttl=timedelta(days=1),
    schema=[{schema}],
)
orders_aggregated = FeatureView(
    name="orders_agg",
    entities=[order],
    source=orders_agg,
    hop=timedelta(minutes=5),
    aggregations=[{aggregations}],
)
'''

YAML = """\
project: bench_stream_{broker}
registry: data/registry.db
offline_store: {{ type: duckdb }}
online_store: {{ type: redis, url: "{url}", key_prefix: "{prefix}" }}
"""


# --- the repo ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """Where one broker's benchmark stream is: Redis key, or JetStream stream and subject."""

    broker: str
    stream: str
    subject: str | None = None

    @staticmethod
    def make(broker: str) -> Target:
        if broker == "redis":
            return Target("redis", f"{ref.KEY_PREFIX}orders")
        suffix = uuid.uuid4().hex[:8]
        return Target("nats", f"PARITY_BENCH_{suffix.upper()}", f"parity_bench.{suffix}.orders")

    def broker_client(self) -> Any:
        if self.broker == "redis":
            return ref.RedisBroker(self.stream)
        return ref.NatsBroker(self.stream, self.subject or "")


def write_repo(folder: Path, target: Target) -> Path:
    """The feature repo of ``target``'s broker (``parity.yaml``, ``features.py``, a small
    batch file); applied with ``parity apply``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from bench.historical import apply_repo

    repo = folder / f"repo_{target.broker}"
    (repo / "data").mkdir(parents=True, exist_ok=True)
    (repo / "parity.yaml").write_text(
        YAML.format(broker=target.broker, url=ref.REDIS_URL, prefix=ref.KEY_PREFIX)
    )
    schema = ", ".join(
        f"Field(name={name!r}, dtype={'Float64' if name in ref.FLOATS else 'Int64'!r})"
        for name in ref.FEATURES
    )
    aggregations = ", ".join(
        f"Aggregation(name={f'{fn_name}_{w}'!r}, function={fn!r}, window=timedelta({arg}),"
        f"{' column=' + repr('price') + ',' if fn != 'count' else ''})"
        for w, arg in (("1h", "hours=1"), ("1d", "days=1"))
        for fn_name, fn in (("price_sum", "sum"), ("count", "count"), ("price_mean", "mean"))
    )
    url = ref.REDIS_URL if target.broker == "redis" else ref.NATS_URL
    kind = "redis_streams" if target.broker == "redis" else "nats_jetstream"
    (repo / "features.py").write_text(
        FEATURES_PY.format(
            kind=kind,
            url=url,
            stream=target.stream,
            subject=target.subject,
            schema=schema,
            aggregations=aggregations,
        )
    )
    # History the stream's events would be appended to; a few old rows of the same shape.
    old = datetime(2024, 1, 1, tzinfo=UTC)
    columns: dict[str, Any] = {
        "order_key": pa.array([1, 2], pa.int64()),
        "event_ts": pa.array([old, old + timedelta(hours=1)], pa.timestamp("ms", tz="UTC")),
    }
    for name in ref.FEATURES:
        kind_ = pa.float64() if name in ref.FLOATS else pa.int64()
        columns[name] = pa.array([1, 2], kind_)
    pq.write_table(pa.table(columns), repo / "data" / "orders.parquet")
    apply_repo(repo)
    return repo


# --- children: one process per consumer, producer, reader --------------------------------------


class Child:
    """``python -m bench.streams --child KIND`` with a line protocol: it prints
    ``{"ready": true}`` when set up, starts on ``go [t0]``, and prints its result (one JSON
    line) after ``stop`` or when its work is done."""

    def __init__(self, kind: str, config: dict[str, Any]) -> None:
        self.kind = kind
        # The child's stderr, kept for error messages; closed with the child (kill()).
        self._err = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115
        cmd = [sys.executable, "-m", MODULE, "--child", kind, "--config", json.dumps(config)]
        self.proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=child_env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._err,
            text=True,
            bufsize=1,
        )
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def _next_json(self, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                self.kill()
                raise ChildError(f"{self.kind}: no answer after {timeout:.0f} s") from None
            if line is None:
                self.proc.wait()
                raise ChildError(f"{self.kind}: exited with {self.proc.returncode}\n{self.tail()}")
            if line.startswith("{"):
                payload: dict[str, Any] = json.loads(line)
                if payload.get("error"):
                    raise ChildError(f"{self.kind}: {payload['error']}")
                return payload

    def ready(self, timeout: float = 120.0) -> None:
        self._next_json(timeout)

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def result(self, timeout: float = 120.0) -> dict[str, Any]:
        payload = self._next_json(timeout)
        self.proc.wait(timeout=30)
        return payload

    def alive(self) -> bool:
        return self.proc.poll() is None

    def cpu_s(self) -> float:
        """User + system seconds of the child so far (all its threads)."""
        import psutil

        times = psutil.Process(self.proc.pid).cpu_times()
        return float(times.user + times.system)

    def tail(self) -> str:
        self._err.seek(0)
        return "\n".join(self._err.read().strip().splitlines()[-15:])

    def kill(self) -> None:
        """End the child if it still runs (it is ours), and release its pipes."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for stream in (self.proc.stdin, self._err):
            with contextlib.suppress(OSError):
                if stream is not None:
                    stream.close()


def _wait_for(word: str) -> list[str]:
    """Block until stdin gives a line starting with ``word``; its other words."""
    for line in sys.stdin:
        parts = line.split()
        if parts and parts[0] == word:
            return parts[1:]
    raise SystemExit(f"stdin closed before {word!r}")


def _usage() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def child_consume(cfg: dict[str, Any]) -> dict[str, Any]:
    """A consumer (Parity's runner or the reference) from ``go`` until ``stop``; then, for
    Parity when asked, the untimed correctness check."""
    target = Target(**cfg["target"])
    if cfg["contender"] == "reference":
        stop = threading.Event()
        out: dict[str, Any] = {}

        def work() -> None:
            if target.broker == "redis":
                out.update(ref.reference_redis(target.stream, stop))
            else:
                out.update(ref.reference_nats(target.stream, target.subject or "", stop))

        emit({"ready": True})
        _wait_for("go")
        worker = threading.Thread(target=work)
        worker.start()
        _wait_for("stop")
        stop.set()
        worker.join()
        return out
    from parity import FeatureStore

    store = FeatureStore(cfg["repo"])
    source = SOURCES[cfg["part"]]
    runner = store.stream_runner(sources=[source], batch_size=ref.BATCH)
    emit({"ready": True})
    _wait_for("go")
    runner.start()
    _wait_for("stop")
    runner.stop(timeout=30)
    stats = runner.stats()[source]
    out = {
        "consumed": stats.consumed,
        "written": stats.written,
        "batches": stats.batches,
        "dead_letters": dict(stats.dead_letters),
        "runner_error": stats.error,
    }
    if cfg.get("check"):
        out["check"] = check_values(cfg)
    store.close()
    return out


def child_produce(cfg: dict[str, Any]) -> dict[str, Any]:
    emit({"ready": True})
    t0 = float(_wait_for("go")[0])
    started = _usage()
    target = Target(**cfg["target"])
    out = ref.produce(
        target.broker,
        (target.stream, target.subject),
        cfg["rate"],
        cfg["seconds"],
        cfg["entities"],
        t0,
        cfg["sample_every"],
    )
    return out | {"cpu_s": _usage() - started}


def child_read(cfg: dict[str, Any]) -> dict[str, Any]:
    """The freshness reader: Parity's ``get_online_features`` of ``orders_plain:seq``, or the
    reference's MGET of its own keys."""
    lookup = _parity_lookup(cfg["repo"]) if cfg["contender"] == "parity" else ref.reference_lookup()
    lookup([1, 2, 3])  # connect, and load what the first read loads, before the clock
    emit({"ready": True})
    t0 = float(_wait_for("go")[0])
    started = _usage()
    out = ref.read_fresh(
        lookup, cfg["rate"], cfg["seconds"], cfg["entities"], t0, cfg["sample_every"]
    )
    return out | {"cpu_s": _usage() - started}


def _parity_lookup(repo: str) -> Callable[[list[int]], list[int | None]]:
    from parity import FeatureStore

    store = FeatureStore(repo)

    def lookup(keys: list[int]) -> list[int | None]:
        got = store.get_online_features(["orders_plain:seq"], entities={"order_key": keys})
        return list(got.to_dict()["seq"])

    return lookup


def check_values(cfg: dict[str, Any], sample: int = 1_000) -> dict[str, Any]:
    """Parity's online values for ``sample`` keys against the events' own answer: the last
    event's 8 features (plain view), or sum/count/mean per window at a fixed read time
    (aggregated view)."""
    import random

    from parity import FeatureStore

    events = ref.make_events(cfg["events"], cfg["entities"], cfg["seed"], cfg["end_ms"])
    keys = random.Random(cfg["seed"]).sample(
        range(1, cfg["entities"] + 1), min(sample, cfg["entities"])
    )
    now = datetime.now(UTC)
    store = FeatureStore(cfg["repo"], clock=lambda: now)
    if cfg["part"] == "plain":
        refs = [f"orders_plain:{name}" for name in ref.FEATURES]
        want = _last_values(events)
    else:
        refs = [f"orders_agg:{name}" for name in AGG_FEATURES]
        want = _window_values(events, now)
    got = store.get_online_features(refs, entities={"order_key": keys}).to_dict()
    store.close()
    bad, examples = 0, list[str]()
    names = [r.split(":", 1)[1] for r in refs]
    for i, key in enumerate(keys):
        expected = want.get(key, {})
        for name in names:
            a, b = got[name][i], expected.get(name, 0 if name.startswith("count") else None)
            same = a == b if a is None or b is None else abs(a - b) <= 1e-6 * max(1.0, abs(b))
            if not same:
                bad += 1
                if len(examples) < 3:
                    examples.append(f"key {key} {name}: got {a!r}, want {b!r}")
    return {"values": len(keys) * len(names), "differ": bad, "examples": examples}


def _last_values(events: ref.Events) -> dict[int, dict[str, Any]]:
    last: dict[int, int] = {}
    for i, key in enumerate(events.keys):
        last[key] = i  # stream order is time order
    return {k: {n: events.columns[n][i] for n in ref.FEATURES} for k, i in last.items()}


def _window_values(events: ref.Events, now: datetime) -> dict[int, dict[str, Any]]:
    """Sum, count, mean of ``price`` per key over ``(start, now]``, ``start = now - window``
    rounded down to the hop (from the epoch), for each window."""
    now_ms = int(now.timestamp() * 1000)
    hop_ms = int(HOP.total_seconds() * 1000)
    out: dict[int, dict[str, Any]] = {}
    for w, span in WINDOWS.items():
        start = (now_ms - int(span.total_seconds() * 1000)) // hop_ms * hop_ms
        sums: dict[int, float] = {}
        counts: dict[int, int] = {}
        for key, ts, price in zip(events.keys, events.ts_ms, events.columns["price"], strict=True):
            if start < ts <= now_ms:
                sums[key] = sums.get(key, 0.0) + price
                counts[key] = counts.get(key, 0) + 1
        for key, total in sums.items():
            row = out.setdefault(key, {})
            row[f"price_sum_{w}"] = total
            row[f"count_{w}"] = counts[key]
            row[f"price_mean_{w}"] = total / counts[key]
    return out


def child_main(kind: str, config: str) -> None:
    cfg = json.loads(config)
    work = {"consume": child_consume, "produce": child_produce, "read": child_read}[kind]
    try:
        payload = work(cfg)
    except Exception as exc:
        import traceback

        frames = "".join(traceback.format_exception(exc)[-6:])
        payload = {"error": f"{kind} raised {type(exc).__name__}: {exc}\n{frames}"}
    emit(payload)
    sys.exit(1 if "error" in payload else 0)


# --- measures (parent) ---------------------------------------------------------------------------


@dataclass
class Settings:
    runs: int
    events: int
    entities: int
    rate: int
    fresh_seconds: float
    sample_every: int
    seed: int = 42
    brokers: tuple[str, ...] = BROKERS
    parts: tuple[str, ...] = PARTS
    contenders: tuple[str, ...] = ("reference", "parity")
    profile: Path | None = None


@dataclass
class Figures:
    """Every round's figures of one broker, by measure and contender."""

    broker: str
    runs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    checks: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def add(self, measure: str, figures: dict[str, Any]) -> None:
        self.runs.setdefault(measure, []).append(figures)

    def median(self, measure: str, key: str) -> float | None:
        values = [r[key] for r in self.runs.get(measure, []) if r.get(key) is not None]
        return statistics.median(values) if values else None


def throughput(
    broker: Any, target: Target, repo: Path, contender: str, part: str, cfg: dict[str, Any]
) -> dict[str, Any]:
    """One consumer over the filled stream: seconds from ``go`` until the broker has every
    event delivered to its group and acknowledged; its CPU share and the broker's."""
    group = ref.REFERENCE_GROUP if contender == "reference" else GROUPS[part]
    child = Child(
        "consume",
        cfg | {"contender": contender, "part": part, "repo": str(repo), "target": vars(target)},
    )
    profiler = None
    try:
        child.ready()
        n = cfg["events"]
        cpu0, server0 = child.cpu_s(), broker.server_cpu_s()
        started = time.perf_counter()
        child.send("go")
        if cfg.get("profile"):
            profiler = _profile(child.proc.pid, Path(cfg["profile"]))
        deadline = time.monotonic() + CONSUME_TIMEOUT_S
        last, moved = None, time.monotonic()
        tenth: float | None = None  # when a tenth of the events was acknowledged
        first: float | None = None  # when the first one was
        while not broker.done(group, n):
            if not child.alive():
                raise ChildError(f"{contender} consumer exited early\n{child.tail()}")
            state = broker.progress(group)
            if state != last:
                last, moved = state, time.monotonic()
                acked = 0 if state is None else state[0] - state[1]
                if first is None and acked > 0:
                    first = time.perf_counter()
                if tenth is None and acked >= n // 10:
                    tenth = time.perf_counter()
            if time.monotonic() > min(deadline, moved + STALL_S):
                raise ChildError(
                    f"{contender}: (delivered, pending) = {state} of {n} events, no progress"
                    f" for {time.monotonic() - moved:.0f} s\n{child.tail()}"
                )
            time.sleep(0.005)
        wall = time.perf_counter() - started
        cpu, server = child.cpu_s() - cpu0, broker.server_cpu_s() - server0
        if profiler is not None:
            _stop_profile(profiler)
        child.send("stop")
        result = child.result()
    finally:
        if profiler is not None:
            _stop_profile(profiler)
        child.kill()
    return result | {
        "per_batch": _per_batch(result),
        "wall_s": wall,
        "eps": n / wall,
        "steady_eps": (n - n // 10) / (started + wall - tenth) if tenth else None,
        "first_ack_s": first - started if first else None,
        "cpu_share": cpu / wall,
        "cpu_us_per_event": cpu / n * 1e6,
        "broker_cpu_share": server / wall,
        "broker_cpu_us_per_event": server / n * 1e6,
    }


def _profile(pid: int, folder: Path) -> subprocess.Popen[bytes]:
    """py-spy sampling the consumer (collapsed stacks, one line per stack with its count):
    every thread's wall time, or with ``PROFILE_GIL`` set only the thread holding the GIL."""
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / f"consumer-{pid}.txt"
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    # --idle --threads: where the wall time goes per thread, waiting included.
    cmd = [spy, "record", "--pid", str(pid), "--format", "raw", "-o", str(out), "-r", "200"]
    cmd += ["--threads", "--gil"] if PROFILE_GIL else ["--threads", "--idle"]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _stop_profile(proc: subprocess.Popen[bytes]) -> None:
    import signal

    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=30)


def freshness(
    broker: Any, target: Target, repo: Path, contender: str, cfg: dict[str, Any]
) -> dict[str, Any]:
    """Producer, consumer and reader processes at once for ``fresh_seconds``; latency of each
    sampled event = first seen by the reader - appended by the broker (ms)."""
    broker.reset()
    base = cfg | {"repo": str(repo), "target": vars(target), "contender": contender}
    base |= {"seconds": cfg["fresh_seconds"], "part": "plain"}
    consumer = Child("consume", base)
    reader = Child("read", base)
    producer = Child("produce", base)
    children = (consumer, reader, producer)
    profiler = None
    try:
        for c in children:
            c.ready()
        t0 = time.time() + 0.5
        cpu0 = consumer.cpu_s()
        consumer.send("go")
        reader.send(f"go {t0}")
        producer.send(f"go {t0}")
        if cfg.get("profile"):
            profiler = _profile(consumer.proc.pid, Path(cfg["profile"]))
        produced = producer.result(timeout=cfg["fresh_seconds"] + 60)
        read = reader.result(timeout=cfg["fresh_seconds"] + ref.GIVE_UP_S + 60)
        cpu = consumer.cpu_s() - cpu0
        wall = time.time() - t0
        if profiler is not None:
            _stop_profile(profiler)
        consumer.send("stop")
        consumed = consumer.result()
    finally:
        if profiler is not None:
            _stop_profile(profiler)
        for c in children:
            c.kill()
    sampled = set(range(0, int(cfg["rate"] * cfg["fresh_seconds"]), cfg["sample_every"]))
    if target.broker == "redis":
        appended = {int(k): float(v) for k, v in produced["appended_ms"].items()}
    else:
        appended = broker.append_times_ms(sampled)
    first = int(FRESH_WARMUP_S * cfg["rate"])
    seen = {int(k): v * 1000.0 for k, v in read["seen_s"].items()}
    latencies = sorted(
        seen[s] - appended[s] if s in seen else float("inf")
        for s in sampled
        if s >= first and s in appended
    )
    unseen = sum(1 for x in latencies if x == float("inf"))
    return {
        "p50_ms": _rank(latencies, 0.50),
        "p99_ms": _rank(latencies, 0.99),
        "max_ms": latencies[-1] if latencies else None,
        "samples": len(latencies),
        "unseen": unseen,
        "producer_rate": produced["rate"],
        "late_batches": produced["late_batches"],
        "cpu_share": cpu / wall,
        "reader_cpu_share": read["cpu_s"] / wall,
        "producer_cpu_share": produced["cpu_s"] / wall,
        "consumed": consumed.get("consumed"),
        "per_batch": _per_batch(consumed),
        "dead_letters": consumed.get("dead_letters"),
    }


def _per_batch(result: dict[str, Any]) -> float | None:
    """Mean messages per batch the consumer handled."""
    batches = result.get("batches")
    return result["consumed"] / batches if batches else None


def _rank(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile of sorted ``values`` (inf stays inf: never seen)."""
    if not values:
        return None
    return values[min(len(values) - 1, max(0, int(q * len(values) + 0.5) - 1))]


def measure_broker(name: str, s: Settings, folder: Path) -> Figures:
    """Every round of one broker's measures."""
    target = Target.make(name)
    figures = Figures(name)
    broker = target.broker_client()
    try:
        broker.reset()
        repo = write_repo(folder, target) if "parity" in s.contenders else folder
        end_ms = int(time.time() * 1000) | 1
        events = ref.make_events(s.events, s.entities, s.seed, end_ms)
        cfg: dict[str, Any] = {
            "events": s.events,
            "entities": s.entities,
            "seed": s.seed,
            "end_ms": end_ms,
            "rate": s.rate,
            "fresh_seconds": s.fresh_seconds,
            "sample_every": s.sample_every,
        }
        for r in range(s.runs):
            order = list(s.contenders) if r % 2 == 0 else list(reversed(s.contenders))
            if "plain" in s.parts or "agg" in s.parts:
                broker.reset()
                started = time.perf_counter()
                broker.fill(events.payloads)
                figures.notes.append(
                    f"round {r + 1}: filled {s.events:,} events in"
                    f" {time.perf_counter() - started:.1f} s"
                )
            for part in ("plain", "agg"):
                if part not in s.parts:
                    continue
                for contender in order:
                    if part == "agg" and contender == "reference":
                        continue
                    extra: dict[str, Any] = {"check": r == 0 and contender == "parity"}
                    if s.profile and r == 0 and contender == "parity":
                        extra["profile"] = str(s.profile / f"{name}-{part}")
                    got = throughput(broker, target, repo, contender, part, cfg | extra)
                    figures.add(f"{part}:{contender}", got)
                    if "check" in got:
                        figures.checks[part] = got["check"]
                    print(
                        f"  {name} {part} {contender}: {got['eps']:,.0f} events/s,"
                        f" CPU share {got['cpu_share']:.2f}",
                        flush=True,
                    )
            if "fresh" in s.parts:
                for contender in order:
                    extra = {}
                    if s.profile and r == 0 and contender == "parity":
                        extra["profile"] = str(s.profile / f"{name}-fresh")
                    got = freshness(broker, target, repo, contender, cfg | extra)
                    figures.add(f"fresh:{contender}", got)
                    print(
                        f"  {name} freshness {contender}: p50 {got['p50_ms']:.1f} ms,"
                        f" p99 {got['p99_ms']:.1f} ms ({got['unseen']} unseen)",
                        flush=True,
                    )
    finally:
        broker.close()
    return figures


# --- the report ----------------------------------------------------------------------------------


def _fmt(value: float | None, spec: str = ",.0f") -> str:
    if value is None:
        return "-"
    return "never" if value == float("inf") else format(value, spec)


def _rows(f: Figures) -> list[tuple[str, ...]]:
    label = {"redis": "Redis Streams", "nats": "NATS JetStream"}[f.broker]
    rows: list[tuple[str, ...]] = []
    p_eps, r_eps = f.median("plain:parity", "eps"), f.median("plain:reference", "eps")
    ratio = p_eps / r_eps if p_eps and r_eps else None
    if p_eps is not None or r_eps is not None:
        goal = GOALS["plain_eps"]
        rows.append(
            (
                f"{label}: plain view, events/s",
                _fmt(p_eps),
                _fmt(r_eps),
                _fmt(ratio, ".2f") + ("x" if ratio else ""),
                f">= {goal:,}",
                verdict(None if p_eps is None else p_eps >= goal),
            )
        )
        rows.append(
            (
                f"{label}: plain view, Parity / reference",
                "",
                "",
                _fmt(ratio, ".2f") + ("x" if ratio else ""),
                f">= {GOALS['plain_ratio']:.1f}x",
                verdict(None if ratio is None else ratio >= GOALS["plain_ratio"]),
            )
        )
        rows.append(
            _info(f, "plain", "events/s after the first 10 % acked", "steady_eps", ",.0f", label)
        )
        rows.append(_info(f, "plain", "seconds to the first ack", "first_ack_s", ".2f", label))
        rows.append(_info(f, "plain", "consumer CPU share", "cpu_share", ".2f", label))
        rows.append(_info(f, "plain", "consumer CPU µs/event", "cpu_us_per_event", ".1f", label))
        rows.append(_info(f, "plain", "broker CPU share", "broker_cpu_share", ".2f", label))
        rows.append(
            _info(f, "plain", "broker CPU µs/event", "broker_cpu_us_per_event", ".1f", label)
        )
        rows.append(_info(f, "plain", "messages per batch", "per_batch", ",.0f", label))
    a_eps = f.median("agg:parity", "eps")
    if a_eps is not None:
        rows.append(
            (
                f"{label}: aggregated view, events/s",
                _fmt(a_eps),
                "",
                "",
                f">= {GOALS['agg_eps']:,}",
                verdict(a_eps >= GOALS["agg_eps"]),
            )
        )
        rows.append(
            _info(f, "agg", "aggregated: after the first 10 %", "steady_eps", ",.0f", label)
        )
        rows.append(_info(f, "agg", "aggregated: consumer CPU share", "cpu_share", ".2f", label))
        rows.append(
            _info(
                f, "agg", "aggregated: broker CPU µs/event", "broker_cpu_us_per_event", ".1f", label
            )
        )
    p99 = f.median("fresh:parity", "p99_ms")
    r99 = f.median("fresh:reference", "p99_ms")
    if p99 is not None or r99 is not None:
        rows.append(_info(f, "fresh", "freshness p50 ms", "p50_ms", ",.1f", label))
        rows.append(
            (
                f"{label}: freshness p99 ms @ {DEFAULTS['rate']:,}/s",
                _fmt(p99, ",.1f"),
                _fmt(r99, ",.1f"),
                "",
                f"<= {GOALS['fresh_p99_ms']:.0f}",
                verdict(None if p99 is None else p99 <= GOALS["fresh_p99_ms"]),
            )
        )
        rows.append(_info(f, "fresh", "freshness: consumer CPU share", "cpu_share", ".2f", label))
        rows.append(_info(f, "fresh", "freshness: messages per batch", "per_batch", ",.0f", label))
    return rows


def _info(f: Figures, part: str, what: str, key: str, spec: str, label: str) -> tuple[str, ...]:
    p, r = f.median(f"{part}:parity", key), f.median(f"{part}:reference", key)
    return (f"{label}: {what}", _fmt(p, spec), _fmt(r, spec), "", "", "")


def _notes(f: Figures) -> list[str]:
    notes = []
    for measure, rounds in f.runs.items():
        key = "p99_ms" if measure.startswith("fresh") else "eps"
        values = ", ".join(_fmt(r.get(key), ",.0f" if key == "eps" else ",.1f") for r in rounds)
        notes.append(f"{f.broker} {measure} {key} by round: {values}")
        for r in rounds:
            if r.get("dead_letters"):
                notes.append(f"{f.broker} {measure}: dead letters {r['dead_letters']}")
            if r.get("runner_error"):
                notes.append(f"{f.broker} {measure}: runner error {r['runner_error']}")
        if measure.startswith("fresh"):
            last = rounds[-1]
            notes.append(
                f"{f.broker} {measure}: producer {last['producer_rate']:,.0f} events/s"
                f" ({last['late_batches']} batches > 50 ms late), {last['samples']} samples,"
                f" {last['unseen']} never seen; CPU shares: reader"
                f" {last['reader_cpu_share']:.2f}, producer {last['producer_cpu_share']:.2f}"
            )
    return notes + [f"{f.broker}: {n}" for n in f.notes]


def build_report(s: Settings, figures: list[Figures], errors: list[str]) -> TableReport:
    report = TableReport(
        "Stream ingestion: Redis Streams and NATS JetStream into the Redis online store",
        headers=("", "Parity", "reference", "ratio", "goal", "verdict"),
        about=[
            f"{s.events:,} pre-filled events over {s.entities:,} keys, 8 features (plain view);"
            " sum/count/mean over 1 h and 1 d, hop 5 min (aggregated view); batches of"
            f" {ref.BATCH:,}. Freshness: {s.rate:,} events/s for {s.fresh_seconds:g} s"
            f" (first {FRESH_WARMUP_S:g} s not counted), every {s.sample_every}th event"
            " polled (Parity: get_online_features; reference: MGET) until seen, minus the"
            " broker's append time. Reference: XREADGROUP / JetStream fetch, orjson, pipelined"
            " SET of msgpack, XACK / ack (redis-py, nats-py). Medians of"
            f" {s.runs} rounds, each consumer a fresh process; CPU share = the consumer's"
            " user+sys CPU s / wall s (1.0 = one core of 2).",
        ],
        errors=list(errors),
    )
    for f in figures:
        report.rows.extend(_rows(f))
        report.notes.extend(_notes(f))
        for part, check in f.checks.items():
            report.check_lines.append(
                f"{f.broker} {part}: {check['differ']} of {check['values']} values differ"
                + (f" ({'; '.join(check['examples'])})" if check["examples"] else "")
            )
    if any(f.checks for f in figures):
        report.check = all(c["differ"] == 0 for f in figures for c in f.checks.values())
    report.notes.append(f"load average after: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return report


def measure(s: Settings, folder: Path) -> TableReport:
    figures, errors = [], []
    before = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    for name in s.brokers:
        print(f"{name}:", flush=True)
        try:
            figures.append(measure_broker(name, s, folder))
        except (ChildError, OSError, RuntimeError) as exc:
            errors.append(f"{name}: {exc}")
            print(f"  {name} failed: {exc}", file=sys.stderr, flush=True)
        except Exception as exc:  # a broker that is down: say so, go on with the other
            errors.append(f"{name}: {type(exc).__name__}: {exc}")
            print(f"  {name} failed: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
    report = build_report(s, figures, errors)
    report.notes.insert(0, f"load average before: {before} (2 cores: above 2, others were busy)")
    return report


def run(data_dir: Path, runs: int = 3, only: str | None = None) -> TableReport:
    """``bench.run``'s entry: the benchmark with its defaults (``only``: one side)."""
    contenders = (only,) if only in ("reference", "parity") else ("reference", "parity")
    settings = Settings(
        runs=runs,
        events=int(DEFAULTS["events"]),
        entities=int(DEFAULTS["entities"]),
        rate=int(DEFAULTS["rate"]),
        fresh_seconds=float(DEFAULTS["fresh_seconds"]),
        sample_every=int(DEFAULTS["sample_every"]),
        contenders=contenders,
    )
    folder = data_dir / "streams"
    folder.mkdir(parents=True, exist_ok=True)
    return measure(settings, folder)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=DEFAULTS["runs"], help="rounds (default 3)")
    p.add_argument("--events", type=int, default=DEFAULTS["events"], help="pre-filled events")
    p.add_argument("--entities", type=int, default=DEFAULTS["entities"])
    p.add_argument("--broker", default=",".join(BROKERS), help="redis,nats (default both)")
    p.add_argument("--parts", default=",".join(PARTS), help="plain,agg,fresh (default all)")
    p.add_argument("--only", choices=("reference", "parity"), help="one side only")
    p.add_argument("--rate", type=int, default=DEFAULTS["rate"], help="freshness events/s")
    p.add_argument("--fresh-seconds", type=float, default=DEFAULTS["fresh_seconds"])
    p.add_argument("--sample-every", type=int, default=DEFAULTS["sample_every"])
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--profile", type=Path, help="py-spy the Parity consumer's first rounds here")
    p.add_argument(
        "--profile-gil",
        action="store_true",
        help="profile only the thread holding the GIL (Python CPU), not every thread's wall",
    )
    p.add_argument("--data-dir", type=Path, default=ROOT / "bench" / "data")
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--config", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.child:
        child_main(a.child, a.config)
        return 0
    global PROFILE_GIL
    PROFILE_GIL = a.profile_gil
    brokers = tuple(b.strip() for b in a.broker.split(",") if b.strip())
    parts = tuple(x.strip() for x in a.parts.split(",") if x.strip())
    for value, known, flag in ((brokers, BROKERS, "--broker"), (parts, PARTS, "--parts")):
        unknown = [v for v in value if v not in known]
        if unknown:
            p.error(f"{flag}: unknown {', '.join(unknown)} (choose from {', '.join(known)})")
    settings = Settings(
        runs=a.runs,
        events=a.events,
        entities=a.entities,
        rate=a.rate,
        fresh_seconds=a.fresh_seconds,
        sample_every=a.sample_every,
        seed=a.seed,
        brokers=brokers,
        parts=parts,
        contenders=(a.only,) if a.only else ("reference", "parity"),
        profile=a.profile.resolve() if a.profile else None,
    )
    folder = a.data_dir.resolve() / "streams"
    folder.mkdir(parents=True, exist_ok=True)
    report = measure(settings, folder)
    render(report)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
