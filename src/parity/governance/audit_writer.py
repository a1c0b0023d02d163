"""Group commit for the audit log: one writer thread appends what callers hand it.

``submit(item)`` queues an item and returns a ``concurrent.futures.Future`` that completes
when the transaction holding it commits (or fails with ``AuditError``). The writer takes
everything queued; when the last transaction held more than one item (callers arrive
together: a busy server) it first gathers for up to ``window_s`` (``audit.flush_ms``), so
one commit serves many requests, while a lone caller (a script, the CLI) is not kept
waiting for company.

After a failed commit ``failure`` is set and callers should refuse new operations up front
(``AuditLog.check_available``); the writer then probes the database every
``PROBE_INTERVAL_S`` (a real append, rolled back) and clears ``failure`` once it succeeds.

Waiting on an event loop never blocks it: ``LoopWaker`` resolves asyncio futures from the
writer thread with one ``call_soon_threadsafe`` per batch, not one per request.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Generic, TypeVar

from parity.errors import AuditError

__all__ = ["GroupCommit", "LoopWaker"]

log = logging.getLogger("parity.audit")

T = TypeVar("T")

MAX_BATCH = 2000
"""Items in one transaction at most."""
IDLE_EXIT_S = 10.0
"""The writer thread ends after this long without work (a new submit starts another)."""
PROBE_INTERVAL_S = 0.5


class GroupCommit(Generic[T]):
    """The writer thread of one audit log (see the module docstring).

    ``commit(items)`` writes the items in one transaction or raises; ``probe()`` raises
    while the log cannot be written; ``describe(exc)`` is the message callers get.
    """

    def __init__(
        self,
        commit: Callable[[Sequence[T]], object],
        probe: Callable[[], object],
        *,
        window_s: float,
        timeout_s: float,
        describe: Callable[[BaseException, int], str],
    ):
        self._commit = commit
        self._probe = probe
        self._describe = describe
        self.window_s = window_s
        self.timeout_s = timeout_s
        self._queue: deque[tuple[T, Future[None]]] = deque()
        self._cond = threading.Condition()
        self._running = False
        self._last_batch = 0
        self.failure: BaseException | None = None
        """The last commit's error while the log cannot be written; None when it can."""
        self.commits = 0
        self.committed = 0

    def submit(self, item: T) -> Future[None]:
        fut: Future[None] = Future()
        with self._cond:
            self._queue.append((item, fut))
            if not self._running:
                self._running = True
                threading.Thread(target=self._run, name="parity-audit", daemon=True).start()
            elif len(self._queue) == 1 or len(self._queue) >= MAX_BATCH:
                self._cond.notify()
        return fut

    def wait(self, fut: Future[None]) -> None:
        """Block until ``fut``'s transaction committed; ``AuditError`` if it failed or took
        longer than ``timeout_s``."""
        try:
            fut.result(timeout=self.timeout_s)
        except FutureTimeout:
            raise AuditError(
                f"the audit log did not commit within {self.timeout_s:g}s; the operation failed"
            ) from None

    # -- the thread ---------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            if batch:
                self._write(batch)

    def _next_batch(self) -> list[tuple[T, Future[None]]] | None:
        """What to write next; [] after a probe; None when the thread should end."""
        with self._cond:
            while not self._queue:
                if self.failure is not None:
                    self._cond.wait(PROBE_INTERVAL_S)
                    if not self._queue:
                        self._cond.release()
                        try:
                            self._try_probe()
                        finally:
                            self._cond.acquire()
                    continue
                if not self._cond.wait(IDLE_EXIT_S) and not self._queue:
                    self._running = False
                    return None
            if self._last_batch > 1 and len(self._queue) < MAX_BATCH:
                self._cond.wait(self.window_s)  # submit() notifies only when the batch is full
            batch = [self._queue.popleft() for _ in range(min(len(self._queue), MAX_BATCH))]
        return batch

    def _write(self, batch: list[tuple[T, Future[None]]]) -> None:
        self._last_batch = len(batch)
        try:
            self._commit([item for item, _ in batch])
        except Exception as exc:
            self.failure = exc
            message = self._describe(exc, len(batch))
            log.error("%s", message)
            for _, fut in batch:
                fut.set_exception(AuditError(message))
            return
        if self.failure is not None:
            log.warning("the audit log is writable again")
        self.failure = None
        self.commits += 1
        self.committed += len(batch)
        for _, fut in batch:
            fut.set_result(None)

    def _try_probe(self) -> None:
        try:
            self._probe()
        except Exception as exc:
            self.failure = exc
            return
        log.warning("the audit log is writable again")
        self.failure = None


class LoopWaker:
    """Completes asyncio futures of one event loop when the writer's futures complete,
    waking the loop once per batch."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self._lock = threading.Lock()
        self._ready: list[tuple[asyncio.Future[None], Future[None]]] = []

    def watch(self, fut: Future[None]) -> asyncio.Future[None]:
        """An asyncio future (of this loop) completing as ``fut`` does."""
        waiter: asyncio.Future[None] = self.loop.create_future()
        fut.add_done_callback(lambda done: self._done(waiter, done))
        return waiter

    def _done(self, waiter: asyncio.Future[None], fut: Future[None]) -> None:
        with self._lock:
            first = not self._ready
            self._ready.append((waiter, fut))
        if first:
            self.loop.call_soon_threadsafe(self._drain)

    def _drain(self) -> None:
        with self._lock:
            ready, self._ready = self._ready, []
        for waiter, fut in ready:
            if waiter.done():
                continue
            exc = fut.exception()
            if exc is None:
                waiter.set_result(None)
            else:
                waiter.set_exception(exc)
