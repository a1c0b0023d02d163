"""The stream runner: one consumer thread per stream source, each event's effect once.

Per batch, in this order: poll; decode (``parity.streams.decode``; what cannot be read
becomes a dead letter); set aside events later than ``max_lateness`` behind the newest one
seen (``late``); write the rest through the one ingestion path (``parity.ingest.ingest``:
conform, the offline log when ``to="online_and_offline"``, then online); publish the dead
letters; and only then commit (XACK / ack) every message of the batch. A crash anywhere
before the commit leaves the batch pending, and the group delivers it again.

Why a redelivered message changes nothing a second time:

- a plain view keeps, per entity, the value of the latest (event time, created time), and a
  redelivered event carries the same times (its created time, when the message has none, is
  the broker's append time), so writing it again stores the same record;
- an aggregated view keeps the ids of the events it counted (inside its horizon) and skips
  an id it has seen: the source's ``event_id_field``, or else the message's own identity in
  the broker (Redis entry id, JetStream stream sequence), the same on every delivery;
- the offline log keeps each event's message id; a redelivered message already in the log
  is written online only, never appended twice. A message handed over again to another
  thread of the same runner while the first is still writing it (a keepalive that came
  late) waits for that write first (``parity.streams.inflight``), then is looked up.

A row the ingestion path refuses (a non-finite float an exact sum cannot hold, a time out
of range) is dead-lettered (``value``) and the rest of the batch written; a batch a view's
checks refuse (``on_check_failure: block``) is dead-lettered whole (``check``). A write that fails
for another reason (the online store unreachable) is retried with backoff, and nothing is
committed meanwhile: the stream waits, it loses nothing.

``stop()`` (or SIGTERM / SIGINT in ``run()``) lets each thread finish and commit the batch
in hand, then close. Every few seconds each thread records its counters in the registry
(``parity.registry.streams``: ``parity stream status`` reads them) and the broker's lag.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from parity.definitions import FeatureView, StreamSource
from parity.errors import ConfigError, ObjectNotFoundError
from parity.ingest import IngestError, WriteContext, ingest
from parity.ingest.rows import MESSAGE_ID
from parity.offline import log
from parity.stopping import stop_on_signals
from parity.streams import consumer as make_consumer
from parity.streams.base import ConsumerOptions, DeadLetter, Message, StreamConsumer, consumer_name
from parity.streams.decode import Decoded, Needs, decode, needs_of
from parity.streams.freshness import FreshnessWindow
from parity.streams.inflight import Claim, InFlight
from parity.streams.metrics import StreamMetrics
from parity.streams.poller import Poller

if TYPE_CHECKING:
    from parity.store import FeatureStore

__all__ = ["SourceStats", "StreamRunner"]

log_ = logging.getLogger("parity.streams")

HEARTBEAT_SECONDS = 2.0
_BACKOFF_MAX_S = 5.0
_US = timedelta(microseconds=1)
_CLOCK_SKEW = timedelta(minutes=10)
_STREAM_PUSH = "stream-"
"""Offline log files written by stream consumers: ``push-stream-<id>.parquet``."""


@dataclass
class SourceStats:
    """What one runner did for one source since it started."""

    source: str
    consumer: str
    consumed: int = 0
    written: int = 0
    batches: int = 0
    dead_letters: Counter[str] = field(default_factory=Counter)
    last_offset: str | None = None
    error: str | None = None
    freshness_event: FreshnessWindow = field(default_factory=FreshnessWindow)
    freshness_append: FreshnessWindow = field(default_factory=FreshnessWindow)
    newest_us: int | None = None
    """The newest event time seen (``max_lateness``)."""
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)
    threads: int = 0
    """Consumer threads of this source still running."""


class StreamRunner:
    """Consumers for the repo's stream sources (all of them, or ``sources``).

    ``run()`` blocks until ``stop()`` (or SIGTERM / SIGINT when called from the main
    thread); ``start()`` returns at once with the threads running. ``batch_size``: messages
    per poll; ``claim_idle``: seconds before a message another consumer holds is taken over;
    ``metrics_port``: serve Prometheus metrics there (0: a free port, see ``metrics_port``).
    ``threads``: consumer threads per source, each with its own connection (as members of
    the group they split the messages; while one waits for a store, another decodes).
    """

    def __init__(
        self,
        store: FeatureStore,
        sources: Sequence[str] | None = None,
        *,
        batch_size: int = 1000,
        consumer: str | None = None,
        claim_idle: float = 30.0,
        block: float = 0.5,
        metrics_port: int | None = None,
        metrics_host: str = "127.0.0.1",
        heartbeat: float = HEARTBEAT_SECONDS,
        threads: int = 2,
    ) -> None:
        if threads < 1:
            raise ConfigError(f"stream runner: threads must be at least 1, not {threads}")
        if batch_size < 1:
            raise ConfigError(f"stream runner: batch_size must be at least 1, not {batch_size}")
        if claim_idle <= 0:
            raise ConfigError(f"stream runner: claim_idle must be positive, not {claim_idle}")
        self.store = store
        self.batch_size = batch_size
        self.consumer = consumer or consumer_name()
        self.options = ConsumerOptions(self.consumer, claim_idle=claim_idle, block=block)
        self.heartbeat = heartbeat
        self.threads = threads
        self.metrics = StreamMetrics()
        self._metrics_at = (metrics_host, metrics_port)
        self._metrics_server: Any = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._failures: list[BaseException] = []
        self._sources = self._select(sources)
        # What the first batch would otherwise wait for, done while the runner is made:
        # pyarrow imports pandas the first time a zoned timestamp is made (a third of a
        # second), and the online store is built on first use.
        pa.array([0], pa.int64()).cast(pa.timestamp("us", tz="UTC"))
        _ = store.online
        self._stats = {s.name: SourceStats(s.name, self.consumer) for s in self._sources}
        self._inflight = {s.name: InFlight() for s in self._sources}

    # -- choosing -------------------------------------------------------------------------

    def _select(self, names: Sequence[str] | None) -> list[StreamSource]:
        catalog = self.store.catalog(fresh=True)
        streams = [s for s in catalog.objects["source"].values() if isinstance(s, StreamSource)]
        if names is None:
            if not streams:
                raise ConfigError(
                    f"project {self.store.project!r} has no stream source: declare a "
                    "StreamSource (kind: stream_source in YAML) and apply it"
                )
            return sorted(streams, key=lambda s: s.name)
        by_name = {s.name: s for s in streams}
        out = []
        for name in names:
            if name in by_name:
                out.append(by_name[name])
            elif catalog.has("source", name):
                kind = catalog.source(name).source_type
                raise ConfigError(f"source {name!r} is a {kind} source, not a stream source")
            else:
                raise ObjectNotFoundError(
                    "stream source",
                    name,
                    self.store.project,
                    hint=f"stream sources: {', '.join(sorted(by_name)) or 'none'}",
                )
        return out

    @property
    def sources(self) -> list[str]:
        return [s.name for s in self._sources]

    # -- running --------------------------------------------------------------------------

    def start(self) -> StreamRunner:
        """Open every consumer (a broker that cannot be reached is an error now) and start
        one thread per source; returns at once."""
        if self._threads:
            raise RuntimeError("this stream runner was started already")
        host, port = self._metrics_at
        if port is not None:
            self._metrics_server = self.metrics.serve(port, host)
        consumers: list[tuple[StreamSource, StreamConsumer]] = []
        try:
            for source in self._sources:
                for _ in range(self.threads):
                    c = make_consumer(source, self.options)
                    c.open()
                    consumers.append((source, c))
        except BaseException:
            for _, c in consumers:
                c.close()
            self._close_metrics()
            raise
        for i, (source, c) in enumerate(consumers):
            self._stats[source.name].threads += 1
            worker = _Worker(self, source, c)
            t = threading.Thread(
                target=worker.run, name=f"parity-stream-{source.name}-{i}", daemon=True
            )
            self._threads.append(t)
            t.start()
        log_.info(
            "consuming %s as %r (batch %d, claim after %.1f s)",
            ", ".join(self.sources),
            self.consumer,
            self.batch_size,
            self.options.claim_idle,
        )
        return self

    def run(self, *, started: Callable[[StreamRunner], None] | None = None) -> None:
        """Consume until ``stop()`` or SIGTERM / SIGINT, then drain and return. Raises what
        stopped a consumer thread for good (after the others drained). ``started`` is
        called once the consumers run (the signals are handled from before they start)."""
        restore = self._signals()
        try:
            if not self._threads:
                self.start()
            if started is not None:
                started(self)
            while not self._stop.wait(0.2):
                if not any(t.is_alive() for t in self._threads):
                    break
        finally:
            self.stop()
            restore()
        if self._failures:
            raise self._failures[0]

    def drain(self, timeout: float = 300.0) -> bool:
        """Consume until every source's group has nothing unconsumed or pending, then stop
        (starting first if needed). Returns False when ``timeout`` seconds passed first (the
        runner is stopped all the same). A backfill, a test, a tutorial: `run` is the
        service."""
        if not self._threads:
            self.start()
        deadline = time.monotonic() + timeout
        probe = replace(self.options, create=False)
        probes = {s.name: make_consumer(s, probe) for s in self._sources}
        try:
            for c in probes.values():
                c.open()
            while time.monotonic() < deadline and not self._failures:
                if all(_drained(c) for c in probes.values()):
                    return True
                self._stop.wait(0.1)
            return False
        finally:
            for c in probes.values():
                c.close()
            self.stop()
            if self._failures:
                raise self._failures[0]

    def stop(self, timeout: float = 60.0) -> None:
        """Let each thread finish and commit the batch in hand, then close (waits up to
        ``timeout`` seconds in all)."""
        self._stop.set()
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        self._close_metrics()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def stats(self) -> dict[str, SourceStats]:
        """Per source, what this runner did so far (live objects: read, don't change)."""
        return dict(self._stats)

    @property
    def metrics_port(self) -> int | None:
        """The port metrics are served on (None: not served)."""
        s = self._metrics_server
        return None if s is None else int(s.server_port)

    def _close_metrics(self) -> None:
        if self._metrics_server is not None:
            self._metrics_server.shutdown()
            self._metrics_server.server_close()
            self._metrics_server = None

    def _signals(self) -> Any:
        return stop_on_signals(self._stop, log_, "finishing the batches in hand")


class _Keepalive:
    """While batches are in hand (fetched, not yet committed) for longer than ``interval``,
    tells the broker they are still being worked on (``StreamConsumer.extend``) every half
    ``interval``: a slow write (a store that stalls, a hook that waits), or a batch fetched
    ahead that waits behind it, is not handed to another consumer meanwhile, which would
    write it a second time. One thread per consumer, started with the first batch."""

    def __init__(self, consumer: StreamConsumer, interval: float, name: str):
        self.consumer = consumer
        self.interval = max(interval, 0.01)
        self.name = name
        self._held: dict[int, tuple[list[Message], float]] = {}
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None

    def hold(self, messages: list[Message]) -> None:
        """``messages`` were just delivered (called by the poller)."""
        with self._lock:
            self._held[id(messages)] = (messages, time.monotonic())
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name=f"parity-keepalive-{self.name}", daemon=True
                )
                self._thread.start()

    def release(self, messages: list[Message]) -> None:
        """``messages`` are committed (or left for redelivery)."""
        with self._lock:
            self._held.pop(id(messages), None)

    def close(self) -> None:
        self._closed.set()
        if self._thread is not None:
            self._thread.join(self.interval + 5.0)

    def _run(self) -> None:
        while not self._closed.wait(self.interval / 2):
            now = time.monotonic()
            with self._lock:
                old = [m for m, since in self._held.values() if now - since >= self.interval]
            if not old:
                continue
            try:
                self.consumer.extend([m for batch in old for m in batch])
            except Exception as exc:  # the claim may lapse; the write goes on regardless
                log_.warning("source %r: cannot extend the batches in hand: %s", self.name, exc)


class _Worker:
    """One source's loop: poll, write, dead-letter, commit; heartbeat in between."""

    def __init__(self, runner: StreamRunner, source: StreamSource, consumer: StreamConsumer):
        self.runner = runner
        self.source = source
        self.consumer = consumer
        self.stats = runner._stats[source.name]
        self.metrics = runner.metrics
        self._needs: tuple[int, Needs, list[FeatureView], StreamSource] | None = None
        self._beat_at = 0.0
        self._records: Any = None
        self.poller: Poller | None = None
        self.keepalive = _Keepalive(consumer, runner.options.claim_idle / 3, source.name)
        self._started = datetime.now(UTC)
        self._warned_no_views = False
        self._inflight = runner._inflight[source.name]
        self._claims: dict[int, Claim] = {}
        """Batches fetched and not yet handled or given up, by ``id`` of the list."""

    def run(self) -> None:
        name = self.source.name
        poller: Poller | None = None
        try:
            while not self.runner.stopping:
                views = self._context()[2]
                if not views:
                    self._idle()
                    continue
                if poller is None:
                    poller = Poller(
                        self.consumer,
                        self.runner.batch_size,
                        self.runner._stop,
                        name,
                        on_fetch=self._fetched,
                    )
                    self.poller = poller
                messages = poller.next()
                if messages:
                    try:
                        self._handle(messages)
                    finally:
                        self._done(messages)
                if poller.error:
                    self.stats.error = poller.error
                self._maybe_beat()
            for messages in poller.drain() if poller is not None else []:
                try:
                    self._handle(messages)
                finally:
                    self._done(messages)
        except BaseException as exc:  # recorded, then the thread ends; run() re-raises it
            log_.exception("source %r: consumer stopped: %s", name, exc)
            self.stats.error = f"{type(exc).__name__}: {exc}"
            self.runner._failures.append(exc)
        finally:
            with self.stats.lock:
                self.stats.threads -= 1
                last = self.stats.threads == 0
            self.keepalive.close()
            for claim in list(self._claims.values()):  # fetched, never handled: let go
                self._inflight.release(claim)
            self._claims.clear()
            self.consumer.close()  # sends what commit(wait=False) left
            if last:  # one record per source and runner: the last thread out stops it
                self._beat(final=True)

    # -- one batch --------------------------------------------------------------------------

    def _context(self) -> tuple[WriteContext, StreamSource, list[FeatureView]]:
        ctx = self.runner.store._writes()
        key = id(ctx.catalog)
        if self._needs is None or self._needs[0] != key:
            source = ctx.catalog.source(self.source.name)
            if not isinstance(source, StreamSource):
                raise ConfigError(f"source {self.source.name!r} is no longer a stream source")
            views = [v for v in ctx.catalog.views() if v.source_name == source.name]
            self._needs = (key, needs_of(source, views, ctx.catalog), views, source)
        return ctx, self._needs[3], self._needs[2]

    def _idle(self) -> None:
        if not self._warned_no_views:
            log_.warning(
                "source %r: no feature view reads it; its messages stay in the stream until "
                "one is applied",
                self.source.name,
            )
            self._warned_no_views = True
        self.runner._stop.wait(1.0)
        self._maybe_beat()

    def _handle(self, messages: list[Message]) -> None:
        """Write a batch (retrying what fails for reasons outside the messages), then
        dead-letter and commit it. After a stop a failed write is not retried: the batch
        stays pending for the next consumer."""
        name = self.source.name
        self.metrics.consumed.labels(name).inc(len(messages))
        self.metrics.batch_size.labels(name).observe(len(messages))
        with self.stats.lock:
            self.stats.consumed += len(messages)
        unique = _unique(messages)  # a broker may hand one message over twice in a batch
        claim = self._claims.get(id(messages))
        if claim is None:  # not through the poller's on_fetch (claimed there otherwise)
            claim = self._claims[id(messages)] = self._inflight.claim([m.offset for m in unique])
        # Offsets a batch fetched earlier by this runner holds (handed over again because
        # its claim lapsed): wait until it is written, then check the offline log for them.
        if not claim.wait(lambda: self.runner.stopping):
            log_.warning(
                "source %r: stopping while %d message(s) of a batch are held by another "
                "batch; it is left for redelivery",
                name,
                len(claim.shared),
            )
            return
        self._write_and_commit(messages, unique, claim.shared)

    def _fetched(self, messages: list[Message]) -> None:
        """A batch was delivered (called by the poller, on its thread): claim its offsets
        before anything else can be handed them again, and keep it alive while it waits."""
        self._claims[id(messages)] = self._inflight.claim([m.offset for m in messages])
        self.keepalive.hold(messages)

    def _done(self, messages: list[Message]) -> None:
        self.keepalive.release(messages)
        claim = self._claims.pop(id(messages), None)
        if claim is not None:
            self._inflight.release(claim)

    def _write_and_commit(
        self, messages: list[Message], unique: list[Message], shared: set[str]
    ) -> None:
        name = self.source.name
        delay = 0.05
        prepared: tuple[Decoded, list[DeadLetter]] | None = None  # decoded once per batch
        while True:
            ctx, source, views = self._context()
            assert self._needs is not None
            needs = self._needs[1]
            started = time.perf_counter()
            try:
                if prepared is None:
                    prepared = self._late(decode(unique, source, needs), source)
                decoded, late = prepared
                written, letters = self._write(ctx, source, views, decoded, shared)
                letters = decoded.letters + late + letters
                self.consumer.dead_letter(letters)
                # Written: acknowledged now, or, when the next batch is fetched already,
                # with the poll that follows it (one round trip less; a crash before it only
                # redelivers). Not with a poll that may block: the ack would wait for it.
                later = self.poller is not None and self.poller.fetching_ahead
                self.consumer.commit(messages, wait=not later)
            except (ConfigError, ObjectNotFoundError):
                raise  # the definitions changed under the runner: stop, say why
            except Exception as exc:
                if self.runner.stopping:  # no retries after a stop: it stays pending
                    log_.warning("source %r: stopping with a batch not written: %s", name, exc)
                    return  # not committed: delivered again to whoever runs next
                self.metrics.errors.labels(name).inc()
                self.stats.error = f"{type(exc).__name__}: {exc}"
                fields = {
                    "event": "stream_write_failed",
                    "source": name,
                    "messages": len(messages),
                    "first_offset": messages[0].offset,
                    "error": type(exc).__name__,
                    "detail": repr(str(exc)),
                    "retry_in_seconds": delay,
                }
                log_.warning(_kv(fields), extra={"parity": fields})
                self.runner._stop.wait(delay)
                delay = min(delay * 2, _BACKOFF_MAX_S)
                self._maybe_beat()
                continue
            break
        landed = time.time()
        self.stats.error = None
        self.metrics.write_seconds.labels(name).observe(time.perf_counter() - started)
        self._count(written, views, letters, landed, messages[-1].offset)
        if log_.isEnabledFor(logging.DEBUG):
            fields = {
                "event": "stream_batch",
                "source": name,
                "consumer": self.runner.consumer,
                "messages": len(messages),
                "written": written.table.num_rows,
                "dead_letters": len(letters),
                "first_offset": messages[0].offset,
                "last_offset": messages[-1].offset,
                "redelivered": sum(1 for m in messages if m.redelivered),
                "write_seconds": round(time.perf_counter() - started, 6),
            }
            log_.debug(_kv(fields), extra={"parity": fields})

    def _late(self, decoded: Decoded, source: StreamSource) -> tuple[Decoded, list[DeadLetter]]:
        """Events more than ``max_lateness`` behind the newest one seen, set aside."""
        table = decoded.table
        if not table.num_rows:
            return decoded, []
        ts = table.column(source.timestamp_field).cast(pa.int64()).to_numpy()
        st = self.stats
        with st.lock:
            prior = st.newest_us if st.newest_us is not None else int(ts[0])
            st.newest_us = int(max(prior, int(ts.max())))
        running = np.maximum.accumulate(np.concatenate([[prior], ts]))[:-1]
        if source.max_lateness is None:
            return decoded, []
        lateness_us = source.max_lateness // _US
        late = ts < running - lateness_us
        if not late.any():
            return decoded, []
        idx = np.flatnonzero(late)
        letters = [
            DeadLetter(
                decoded.messages[i],
                "late",
                f"event time {source.timestamp_field!r} is "
                f"{(running[i] - ts[i]) / 1e6:.3f} s behind the newest event seen, more than "
                f"max_lateness ({source.max_lateness})",
                source.timestamp_field,
            )
            for i in idx
        ]
        keep = np.flatnonzero(~late)
        messages = [decoded.messages[i] for i in keep]
        return Decoded(table.take(pa.array(keep)), messages, decoded.letters), letters

    def _write(
        self,
        ctx: WriteContext,
        source: StreamSource,
        views: list[FeatureView],
        decoded: Decoded,
        shared: set[str],
    ) -> tuple[Decoded, list[DeadLetter]]:
        """Write ``decoded``'s rows; rows the ingestion path refuses become ``value`` letters.
        Returns what was written and those letters. Redelivered messages, and ``shared``
        ones (another thread of this runner wrote them meanwhile), are looked up in the
        offline log first."""
        letters: list[DeadLetter] = []
        logged: set[str] = set()
        again = [m for m in decoded.messages if m.redelivered or m.offset in shared]
        if source.to == "online_and_offline" and again:
            logged = _logged(log.log_dir(ctx.offline_log, source.name), again)
        while decoded.table.num_rows:
            try:
                self._ingest(ctx, source, views, decoded, logged)
                return decoded, letters
            except IngestError as exc:
                reason = getattr(exc, "letter_reason", None)
                if reason is not None:  # refused as a whole (a view's checks): all set aside
                    field = getattr(exc, "field", None)
                    letters += [DeadLetter(m, reason, str(exc), field) for m in decoded.messages]
                    return Decoded(decoded.table.slice(0, 0), [], []), letters
                row = exc.row
                if row is None or not 0 <= row < decoded.table.num_rows:
                    return self._one_by_one(ctx, source, views, decoded, letters, logged)
                letters.append(DeadLetter(decoded.messages[row], "value", str(exc), None))
                decoded = _without(decoded, row)
        return decoded, letters

    def _one_by_one(
        self,
        ctx: WriteContext,
        source: StreamSource,
        views: list[FeatureView],
        decoded: Decoded,
        letters: list[DeadLetter],
        logged: set[str],
    ) -> tuple[Decoded, list[DeadLetter]]:
        """A batch refused as a whole: each event alone, so only the bad ones are set aside."""
        keep: list[int] = []
        for i in range(decoded.table.num_rows):
            one = Decoded(decoded.table.slice(i, 1), [decoded.messages[i]], [])
            try:
                self._ingest(ctx, source, views, one, logged)
                keep.append(i)
            except IngestError as exc:
                why = getattr(exc, "letter_reason", None) or "value"
                letters.append(DeadLetter(decoded.messages[i], why, str(exc), None))
        messages = [decoded.messages[i] for i in keep]
        return Decoded(decoded.table.take(pa.array(keep, pa.int64())), messages, []), letters

    def _ingest(
        self,
        ctx: WriteContext,
        source: StreamSource,
        views: list[FeatureView],
        rows: Decoded,
        logged: set[str],
    ) -> None:
        """One write through the ingestion path. Events the offline log holds already (a
        redelivery after a crash) are written online only; the offline append is named by
        its events (``push-stream-<digest of their offsets>``), so a retry after a failed
        online write appends nothing twice and writes online what did not land."""
        if source.to == "online" or not logged:
            self._ingest_part(ctx, source, views, rows, source.to)
            return
        seen = [i for i, m in enumerate(rows.messages) if m.offset in logged]
        fresh = [i for i, m in enumerate(rows.messages) if m.offset not in logged]
        for part, to in ((seen, "online"), (fresh, "online_and_offline")):
            if not part:
                continue
            sub = Decoded(
                rows.table.take(pa.array(part, pa.int64())), [rows.messages[i] for i in part], []
            )
            try:
                self._ingest_part(ctx, source, views, sub, to)
            except IngestError as exc:  # name the row of ``rows``, not of the part
                if getattr(exc, "letter_reason", None) is not None:
                    raise  # the batch as a whole
                r = exc.row
                raise IngestError(
                    str(exc), row=part[r] if r is not None and 0 <= r < len(part) else -1
                ) from exc

    def _ingest_part(
        self,
        ctx: WriteContext,
        source: StreamSource,
        views: list[FeatureView],
        rows: Decoded,
        to: str,
    ) -> None:
        ingest(
            ctx,
            source,
            views,
            rows.table,
            to=to,  # type: ignore[arg-type]
            kind="stream",
            push_id=None if to == "online" else _content_id(rows.messages),
            message_ids=rows.message_ids,
        )

    # -- bookkeeping ------------------------------------------------------------------------

    def _count(
        self,
        written: Decoded,
        views: list[FeatureView],
        letters: list[DeadLetter],
        landed: float,
        last_offset: str,
    ) -> None:
        name = self.source.name
        n = written.table.num_rows
        st = self.stats
        with st.lock:
            st.batches += 1
            st.written += n
            st.last_offset = last_offset
            for letter in letters:
                st.dead_letters[letter.reason] += 1
        for letter in letters:
            self.metrics.dead.labels(name, letter.reason).inc()
        if letters:
            for letter in letters:
                fields = {
                    "event": "stream_dead_letter",
                    "source": name,
                    "offset": letter.message.offset,
                    "reason": letter.reason,
                    "field": letter.field,
                    "dead_letter_stream": self.source.dead_letter_stream,
                    "detail": repr(letter.detail),
                }
                log_.warning(_kv(fields), extra={"parity": fields})
        if not n:
            return
        for v in views:
            if v.online or self.source.to != "online":
                self.metrics.written.labels(name, v.name).inc(n)
        ts = written.table.column(self.source.timestamp_field).cast(pa.int64()).to_numpy()
        appended = np.fromiter((m.append_us for m in written.messages), np.int64, n)
        since_event = landed - ts / 1e6
        since_append = landed - appended / 1e6
        with st.lock:
            st.freshness_event.add(since_event, landed)
            st.freshness_append.add(since_append, landed)
        self.metrics.freshness.observe_many(since_event, name, "event")
        self.metrics.freshness.observe_many(since_append, name, "append")

    def _maybe_beat(self) -> None:
        if time.monotonic() - self._beat_at >= self.runner.heartbeat:
            self._beat()

    def _beat(self, *, final: bool = False) -> None:
        """Record the counters in the registry and read the broker's lag; never fatal."""
        self._beat_at = time.monotonic()
        name = self.source.name
        try:
            if final:  # the consumer is closed: the broker's figures are for status to read
                raise LookupError("closed")
            status = self.consumer.status()
            if status.unconsumed is not None:
                self.metrics.lag.labels(name).set(status.unconsumed)
            if status.pending is not None:
                self.metrics.pending.labels(name).set(status.pending)
        except Exception as exc:  # the broker may be down: the counters are still worth keeping
            log_.debug("source %r: no status from the broker: %s", name, exc)
        try:
            records = self._consumer_records()
            records.beat(self._record(final))
            if final:
                records.stop(name, self.runner.consumer)
        except Exception as exc:
            log_.warning("source %r: cannot record the consumer's counters: %s", name, exc)

    def _consumer_records(self) -> Any:
        if self._records is None:
            from parity.registry.streams import StreamConsumers

            self._records = StreamConsumers(self.runner.store.registry)
        return self._records

    def _record(self, final: bool) -> Any:
        from parity.registry.jobs import this_owner
        from parity.registry.streams import ConsumerRecord

        st = self.stats
        now = datetime.now(UTC)
        with st.lock:
            return self._record_of(st, now, final, ConsumerRecord, this_owner())

    def _record_of(self, st: SourceStats, now: datetime, final: bool, cls: Any, owner: str) -> Any:
        return cls(
            source=st.source,
            consumer=st.consumer,
            owner=owner,
            state="stopped" if final else "running",
            started_at=self._started,
            heartbeat_at=now,
            stopped_at=now if final else None,
            consumed=st.consumed,
            written=st.written,
            batches=st.batches,
            dead_letters=dict(st.dead_letters),
            last_offset=st.last_offset,
            freshness={
                "event": st.freshness_event.to_json(),
                "append": st.freshness_append.to_json(),
            },
            error=st.error,
        )


def _unique(messages: list[Message]) -> list[Message]:
    """The first delivery of each offset, in order."""
    seen: set[str] = set()
    out = [m for m in messages if not (m.offset in seen or seen.add(m.offset))]  # type: ignore[func-returns-value]
    return out if len(out) < len(messages) else messages


def _content_id(messages: Sequence[Message]) -> str:
    """A push id naming exactly these events: the same events, the same id."""
    digest = hashlib.sha256("\n".join(m.offset for m in messages).encode()).hexdigest()
    return f"{_STREAM_PUSH}{digest[:40]}"


def _kv(fields: dict[str, Any]) -> str:
    """``key=value`` pairs: one line a log shipper splits without a pattern (the same fields
    are on the record as ``record.parity`` for a JSON formatter)."""
    return " ".join(f"{k}={v}" for k, v in fields.items())


def _drained(consumer: StreamConsumer) -> bool:
    st = consumer.status()
    return st.pending == 0 and st.unconsumed == 0


def _without(decoded: Decoded, row: int) -> Decoded:
    n = decoded.table.num_rows
    keep = pa.array([i for i in range(n) if i != row], pa.int64())
    messages = decoded.messages[:row] + decoded.messages[row + 1 :]
    return Decoded(decoded.table.take(keep), messages, decoded.letters)


def _logged(folder: Path, messages: Sequence[Message]) -> set[str]:
    """Which of ``messages`` the offline log already holds. Only stream files written since
    the oldest of them reached the broker can (less ``_CLOCK_SKEW`` for clocks that
    disagree), so only those are read."""
    if not folder.is_dir():
        return set()
    wanted = pa.array([m.offset for m in messages], pa.string())
    since = min(m.append_us for m in messages) / 1e6 - _CLOCK_SKEW.total_seconds()
    found: set[str] = set()
    for path in folder.glob(f"push-{_STREAM_PUSH}*.parquet"):
        try:
            if path.stat().st_mtime < since:
                continue
            t = pq.read_table(path, columns=[MESSAGE_ID])
        except (OSError, KeyError, pa.ArrowInvalid):
            continue
        hits = t.column(MESSAGE_ID).filter(pc.is_in(t.column(MESSAGE_ID), value_set=wanted))
        found.update(hits.to_pylist())
    return found
