"""Usage statistics: who reads which features, counted through the read hooks.

``UsageHooks`` is on every ``FeatureStore`` (``usage: {enabled: false}`` in ``parity.yaml``
turns it off). Each successful online read and historical retrieval counts, per feature the
read returned (``plan.outputs``: a feature view's or an on-demand view's) and per consumer,
one read and its keys (online) or rows (offline). The consumer is ``service:NAME`` when the
read named a feature service, else the actor's principal (``store.actor``: the request's
token, ``FeatureStore(principal=...)``, or the OS user). Besides each feature, the view is
counted once per read (``feature`` "") and so is a service read, under the principal that
asked for it. Times are the store's clock; the last read time is when the counts were
written, at most ``flush_seconds`` after the read.

The hook observes through ``shape_online_response`` and ``shape_historical`` and returns
None (it changes nothing): those calls come once per successful read, once its answer is
complete, and every store makes them already (masking), so counting adds one more call to
a loop that runs anyway, where an ``after_*`` hook would add the whole hook machinery to
each read (about 3 µs of the feature server's CPU per request on a small machine, against
1 µs). A read that fails never reaches them; a hook added after this one that fails a read
in its own shape call finds that read counted.

A read only touches memory: one dict entry per (read plan, principal, online or offline),
a few integer additions under a lock; nothing per feature. The counts are written to the
registry (``parity.discovery.records``, counts added to what is stored, in one transaction)
by a background thread every ``usage.flush_seconds`` (5 s) once something was read (sooner
when ``MAX_PENDING`` entries wait), and by ``store.close()`` (``settle``): a process that
exits without closing its store loses at most the last interval. A failed write is logged
and retried with the next one. Nothing here ever fails a read.

Parity's own reads are not counted: the feature server's warm-up, and monitoring's online
profiles, online drift and skew's replay run inside ``uncounted()``.
"""

from __future__ import annotations

import contextvars
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from parity.governance.context import current as _current
from parity.hooks import Hooks

if TYPE_CHECKING:
    from parity.definitions import Definition
    from parity.discovery.records import UsageCount, UsageRecords, UsageReport
    from parity.query.plan import FeaturePlan
    from parity.registry import Registry
    from parity.registry.catalog import Catalog
    from parity.store import FeatureStore

__all__ = [
    "UsageHooks",
    "flush",
    "settle",
    "uncounted",
    "usage_hook",
    "usage_hooks",
    "usage_report",
]

log = logging.getLogger("parity.discovery.usage")

_UNCOUNTED: contextvars.ContextVar[bool] = contextvars.ContextVar("parity_uncounted", default=False)

MAX_PENDING = 10_000
"""Entries held in memory beyond which the writer is woken before its interval (reads whose
plans are not cached, one entry each, cannot grow the memory without bound)."""


@contextmanager
def uncounted() -> Iterator[None]:
    """Reads in this block (this thread or task, and work handed on with ``carry``) are not
    counted as usage: Parity's own reads (warm-up, monitoring)."""
    token = _UNCOUNTED.set(True)
    try:
        yield
    finally:
        _UNCOUNTED.reset(token)


class _Tally:
    """The reads of one plan by one principal, online or offline, since the last write."""

    __slots__ = ("first_us", "last_us", "online", "plan", "principal", "reads", "rows")

    def __init__(self, plan: FeaturePlan, principal: str, online: bool, rows: int, at: int):
        self.plan = plan  # held so that id(plan), the key, stays this plan's
        self.principal = principal
        self.online = online
        self.reads = 1
        self.rows = rows
        self.first_us = at
        self.last_us = at


class UsageHooks(Hooks):
    """Counts reads per feature and consumer in memory; writes them every ``flush_seconds``
    and at ``close`` (see the module). ``principal()`` names who reads when no actor is set
    for the request (``parity.governance.context``; None: not known yet); ``clock()`` is µs
    since the epoch. A plan's reads are stamped when it is first held (``first_read_at``)
    and when they are written (``last_read_at``: at most ``flush_seconds`` late)."""

    def __init__(
        self,
        registry: Callable[[], Registry],
        principal: Callable[[], str | None],
        clock: Callable[[], int],
        *,
        flush_seconds: float = 5.0,
    ):
        self._registry = registry
        self._principal = principal
        self._own: str | None = None  # principal(), once known
        self._clock = clock
        self.flush_seconds = flush_seconds
        self._pending: dict[tuple[int, str, bool], _Tally] = {}
        self._failed: dict[tuple[str, str, str, str], UsageCount] = {}
        self._lock = threading.Lock()
        self._flushing = threading.Lock()  # one write at a time (the thread, close, a reader)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._records: UsageRecords | None = None
        self.writes = 0
        """Registry writes made (what a test of the interval counts)."""

    # -- the read's side: memory only ----------------------------------------------------
    def shape_online_response(
        self,
        *,
        project: str,
        plan: FeaturePlan,
        entities: dict[str, list[Any]],
        response: Any,
        **_: Any,
    ) -> None:
        # The feature server's hot path: a dict lookup and two additions under a lock; no
        # clock (a read is stamped when its plan is first held and when it is written).
        # Every argument it gets is named, so no dict is filled for ``**_``.
        try:
            actor = _current()  # the request's actor, else the store's
            principal = (self._own or self._own_principal()) if actor is None else actor.principal
            if _UNCOUNTED.get():  # after the principal: the server's warm-up resolves it
                return None
            key = (id(plan), principal, True)
            rows = len(next(iter(entities.values()), ()))
            lock = self._lock
            lock.acquire()
            tally = self._pending.get(key)
            if tally is not None:
                tally.reads += 1
                tally.rows += rows
                lock.release()
                return None
            lock.release()
            self._first(key, plan, rows)
        except Exception:  # counting never fails a read
            log.exception("counting a read failed")
        return None

    def shape_historical(self, *, project: str, plan: FeaturePlan, table: Any, **_: Any) -> None:
        try:
            if not _UNCOUNTED.get():
                actor = _current()  # the retrieval's actor, carried to where it is computed
                principal = self._own_principal() if actor is None else actor.principal
                self._first((id(plan), principal, False), plan, int(table.num_rows))
        except Exception:  # counting never fails a read
            log.exception("counting a retrieval failed")
        return None

    def _own_principal(self) -> str:
        """The store's principal, remembered once known (its default actor never changes)."""
        found = self._principal()
        if found is None:
            return "unknown"  # a token that does not verify: the read itself says so
        self._own = found
        return found

    def _first(self, key: tuple[int, str, bool], plan: FeaturePlan, rows: int) -> None:
        """A read whose plan (and principal) is not held yet, or a retrieval (they are few)."""
        at = self._clock()
        with self._lock:
            tally = self._pending.get(key)
            if tally is None:
                self._pending[key] = _Tally(plan, key[1], key[2], rows, at)
                if self._thread is None:
                    self._start()
                elif len(self._pending) > MAX_PENDING:
                    self._wake.set()
                return
            tally.reads += 1
            tally.rows += rows

    # -- the writer's side -------------------------------------------------------------------
    def _start(self) -> None:
        """Start the writer thread (under ``_lock``, once, unless closed)."""
        if self._stop.is_set():
            return
        self._thread = threading.Thread(target=self._run, name="parity-usage", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            if not self._stop.is_set():
                try:
                    self.flush()
                except Exception:  # never let the thread die: the next round tries again
                    log.exception("usage: the writer failed")

    def flush(self) -> int:
        """Write the counts held in memory now; returns the rows written. Never raises: a
        failed write is logged and kept for the next one."""
        with self._flushing:
            with self._lock:
                pending, self._pending = self._pending, {}
            try:
                now = self._clock()  # the last read of each held plan: no later than now
            except Exception:  # a clock that fails: the times the plans were first held
                now = 0
            counts = self._failed
            self._failed = {}
            for tally in pending.values():
                tally.last_us = max(tally.last_us, now)
                for count in _counts(tally):
                    held = counts.get(count.key)
                    if held is None:
                        counts[count.key] = count
                    else:
                        held.merge(count)
            if not counts:
                return 0
            try:
                self._kept().add(list(counts.values()))
            except Exception as exc:
                log.warning("recording feature usage failed (kept for the next write): %s", exc)
                self._failed = counts
                return 0
            self.writes += 1
            return len(counts)

    def close(self) -> None:
        """Stop the writer thread and write what is held."""
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None:
            thread.join()
        self.flush()

    def pending(self) -> int:
        """Read plans counted in memory and not yet written."""
        with self._lock:
            return len(self._pending)

    def _kept(self) -> UsageRecords:
        if self._records is None:
            from parity.discovery.records import UsageRecords

            self._records = UsageRecords(self._registry())
        return self._records


def _counts(tally: _Tally) -> list[UsageCount]:
    """The rows one tally adds to: each feature returned, each view once, and the service
    once (under the principal) when the read named one."""
    from parity.discovery.records import UsageCount

    plan, on, n, rows = tally.plan, tally.online, tally.reads, tally.rows
    service = plan.service

    def count(kind: str, name: str, feature: str, consumer: str) -> UsageCount:
        return UsageCount(
            kind,
            name,
            feature,
            consumer,
            reads_online=n if on else 0,
            reads_offline=0 if on else n,
            keys_online=rows if on else 0,
            rows_offline=0 if on else rows,
            first_us=tally.first_us,
            last_us=tally.last_us,
        )

    consumer = tally.principal if service is None else f"service:{service}"
    seen: dict[tuple[str, str, str], UsageCount] = {}
    for o in plan.outputs:
        kind = "on_demand_feature_view" if o.on_demand else "feature_view"
        for key in ((kind, o.view, ""), (kind, o.view, o.feature)):
            if key not in seen:
                seen[key] = count(*key, consumer)
    out = list(seen.values())
    if service is not None:
        out.append(count("feature_service", service, "", tally.principal))
    return out


def _principal(store: FeatureStore) -> Callable[[], str | None]:
    """The store's own principal (``store.default_actor``), for reads outside a request;
    None while it cannot be known (a token that does not verify)."""

    def principal() -> str | None:
        try:
            return store.default_actor.principal
        except Exception:
            return None

    return principal


def usage_hooks(store: FeatureStore) -> list[Hooks]:
    """The usage hook a ``FeatureStore`` starts with (none with ``usage.enabled: false``)."""
    config = store.config.usage
    if not config.enabled:
        return []
    return [
        UsageHooks(
            lambda: store.registry,
            _principal(store),
            store.clock.now_us,
            flush_seconds=config.flush_seconds,
        )
    ]


def usage_hook(store: FeatureStore) -> UsageHooks | None:
    """The store's usage hook (None when usage is off)."""
    return next((h for h in store.hooks if isinstance(h, UsageHooks)), None)


def flush(store: FeatureStore) -> None:
    """Write the usage the store's hook holds in memory (before reading usage)."""
    hook = usage_hook(store)
    if hook is not None:
        hook.flush()


def settle(store: FeatureStore) -> None:
    """Stop the usage writer and write what it holds: ``store.close()`` calls it. Never
    raises (a registry that cannot be written is logged)."""
    hook = usage_hook(store)
    if hook is not None:
        hook.close()


def usage_report(store: FeatureStore, name: str, kind: str | None = None) -> UsageReport:
    """How the object ``name`` (of ``kind``; None: the first kind holding one, views
    first) was read, with what this process counted so far; with auth on, a ``describe``."""
    from parity.discovery.records import UsageRecords
    from parity.governance.enforce import describable

    obj = describable(store, _find(store.catalog(), name, kind))
    flush(store)
    return UsageRecords(store.registry).report(obj.kind, obj.name)


def _find(catalog: Catalog, name: str, kind: str | None) -> Definition:
    import difflib

    from parity.definitions import KINDS
    from parity.errors import ObjectNotFoundError

    if kind is not None:
        return catalog.get(kind, name)
    for k in ("feature_view", "on_demand_feature_view", "feature_service", *KINDS):
        if catalog.has(k, name):
            return catalog.objects[k][name]
    every = sorted({n for k in KINDS for n in catalog.names(k)})
    close = difflib.get_close_matches(name, every, n=3)
    hint = f"did you mean {', '.join(map(repr, close))}?" if close else ""
    raise ObjectNotFoundError("object", name, catalog.project, hint)
