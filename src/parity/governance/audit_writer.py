"""Group commit for the audit log: callers hand records over, one transaction holds many.

``submit(item)`` appends an item to the open ``Batch`` and returns it; the batch completes
when the transaction holding it commits (or fails with ``AuditError``). Two ways a batch
reaches the database, composing freely (whichever takes the open batch first writes it):

- **The writer thread** (callers on ordinary threads: scripts, the CLI, the Python API).
  It takes the open batch; when the last transaction held more than one item (callers
  arrive together) it first gathers for up to ``window_s`` (``audit.flush_ms``), so one
  commit serves many, while a lone caller is not kept waiting for company. Handing an item
  over wakes the thread only when it sits idle.
- **On the caller's event loop** (``submit(item, loop=...)`` with ``inline``: the feature
  server on a SQLite registry). The first item of a batch schedules one flush with
  ``loop.call_soon``; it runs once the requests resumed in the same loop iteration have
  added theirs, commits them in the loop's own thread and resolves their futures there.
  No thread is woken and nothing waits for another thread to get the interpreter lock,
  which on a busy server left the loop idle while every request waited for a commit. A
  local SQLite commit of a batch takes tens of µs; a PostgreSQL one is a network round
  trip, so there the writer thread commits (``inline`` off) and the loop serves others.

Transactions never overlap (one lock). After a failed commit ``failure`` is set and
callers should refuse new operations up front (``AuditLog.check_available``); the writer
thread then probes the database every ``PROBE_INTERVAL_S`` (a real append, rolled back)
and clears ``failure`` once it succeeds.

Waiting on an event loop never blocks it: ``LoopWaker`` resolves the asyncio futures of a
batch's requests with one ``call_soon_threadsafe`` per batch (none when the batch was
committed on that loop).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from parity.errors import AuditError

__all__ = ["Batch", "GroupCommit", "LoopWaker"]

log = logging.getLogger("parity.audit")

T = TypeVar("T")

MAX_BATCH = 2000
"""Items in one transaction at most."""
IDLE_EXIT_S = 10.0
"""The writer thread ends after this long without work (a new submit starts another)."""
PROBE_INTERVAL_S = 0.5


class Batch(Generic[T]):
    """Items committed together, and the outcome their callers wait for: ``error`` is None
    once committed. Waiting is per batch, not per item, so handing an item over costs an
    append."""

    __slots__ = ("_event", "_lock", "_loops", "done", "error", "flush_scheduled", "items")

    def __init__(self) -> None:
        self.items: list[T] = []
        self.done = False
        self.flush_scheduled = False
        self.error: BaseException | None = None
        self._lock = threading.Lock()
        self._event: threading.Event | None = None
        self._loops: dict[LoopWaker, list[asyncio.Future[None]]] = {}

    def wait(self, timeout: float) -> bool:
        """Block until done; False after ``timeout`` seconds."""
        with self._lock:
            if self.done:
                return True
            if self._event is None:
                self._event = threading.Event()
            event = self._event
        return event.wait(timeout)

    def on_loop(self, waker: LoopWaker) -> asyncio.Future[None] | None:
        """An asyncio future of ``waker``'s loop completing with the batch; None when the
        batch is done already."""
        with self._lock:
            if self.done:
                return None
            waiter: asyncio.Future[None] = waker.loop.create_future()
            self._loops.setdefault(waker, []).append(waiter)
            return waiter

    def finish(self, error: BaseException | None) -> None:
        with self._lock:
            self.error, self.done = error, True
            event, loops = self._event, self._loops
        if event is not None:
            event.set()
        for waker, waiters in loops.items():
            waker.complete(waiters, error)


class GroupCommit(Generic[T]):
    """The writer thread of one audit log (see the module docstring).

    ``commit(items)`` writes the items in one transaction or raises; ``probe()`` raises
    while the log cannot be written; ``describe(exc, n)`` is the message callers get;
    ``release()`` (optional) lets go of what the thread holds when it ends.
    """

    def __init__(
        self,
        commit: Callable[[Sequence[T]], object],
        probe: Callable[[], object],
        *,
        window_s: float,
        timeout_s: float,
        describe: Callable[[BaseException, int], str],
        release: Callable[[], object] = lambda: None,
        inline: bool = False,
    ):
        self.inline = inline
        self._writing = threading.Lock()  # one transaction at a time, thread or loop
        self._commit = commit
        self._probe = probe
        self._describe = describe
        self._release = release
        self.window_s = window_s
        self.timeout_s = timeout_s
        self._open: Batch[T] = Batch()
        self._cond = threading.Condition(threading.Lock())
        self._running = False
        self._idle = False  # the thread waits for work (a submit must wake it)
        self._last_batch = 0
        self.failure: BaseException | None = None
        """The last commit's error while the log cannot be written; None when it can."""
        self.commits = 0
        self.committed = 0

    def submit(self, item: T, loop: asyncio.AbstractEventLoop | None = None) -> Batch[T]:
        """Queue ``item``; the batch it will be committed with (wait on it). ``loop``: the
        caller's running event loop, which commits the batch when ``inline``."""
        with self._cond:
            batch = self._open
            batch.items.append(item)
            if loop is not None and self.inline and self.failure is None:
                if not batch.flush_scheduled:
                    batch.flush_scheduled = True
                    loop.call_soon(self._flush_on_loop, batch)
                return batch
            self._wake(full=len(batch.items) >= MAX_BATCH)
        return batch

    def wait(self, batch: Batch[T]) -> None:
        """Block until ``batch`` committed; ``AuditError`` if it failed or took longer than
        ``timeout_s``."""
        if not batch.wait(self.timeout_s):
            raise AuditError(
                f"the audit log did not commit within {self.timeout_s:g}s; the operation failed"
            )
        if batch.error is not None:
            raise AuditError(str(batch.error))

    def _flush_on_loop(self, batch: Batch[T]) -> None:
        """(On the loop) write ``batch`` unless the writer thread took it already."""
        with self._cond:
            if self._open is not batch:
                return  # taken by the thread (a thread's item joined it): it completes there
            self._open = Batch()
        self._write(batch)
        if self.failure is not None:
            with self._cond:
                self._wake()  # the thread probes until the log is writable again

    def _wake(self, *, full: bool = False) -> None:
        """(Holding ``_cond``) start the writer thread, or wake it when idle (or ``full``)."""
        if not self._running:
            self._running = True
            threading.Thread(target=self._run, name="parity-audit", daemon=True).start()
        elif self._idle or full:
            self._idle = False
            self._cond.notify()

    # -- the thread ---------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            while True:
                batch = self._next_batch()
                if batch is None:
                    return
                if batch.items:
                    self._write(batch)
        finally:
            with self._writing:
                self._release()

    def _next_batch(self) -> Batch[T] | None:
        """What to write next (empty after a probe); None when the thread should end."""
        with self._cond:
            while not self._open.items:
                if self.failure is not None:
                    self._cond.wait(PROBE_INTERVAL_S)
                    if not self._open.items:
                        self._cond.release()
                        try:
                            self._try_probe()
                        finally:
                            self._cond.acquire()
                    continue
                self._idle = True
                woken = self._cond.wait(IDLE_EXIT_S)
                self._idle = False
                if not woken and not self._open.items:
                    self._running = False
                    return None
            gather = self._last_batch > 1 and len(self._open.items) < MAX_BATCH
        if gather:  # callers arrive together: let more join (submit wakes us when full)
            with self._cond:
                self._cond.wait(self.window_s)
        with self._cond:
            batch, self._open = self._open, Batch()
        return batch

    def _write(self, batch: Batch[T]) -> None:
        self._last_batch = len(batch.items)
        try:
            with self._writing:
                self._commit(batch.items)
        except Exception as exc:
            self.failure = exc
            message = self._describe(exc, len(batch.items))
            log.error("%s", message)
            batch.finish(AuditError(message))
            return
        if self.failure is not None:
            log.warning("the audit log is writable again")
        self.failure = None
        self.commits += 1
        self.committed += len(batch.items)
        batch.finish(None)

    def _try_probe(self) -> None:
        try:
            with self._writing:
                self._probe()
        except Exception as exc:
            self.failure = exc
            return
        log.warning("the audit log is writable again")
        self.failure = None


class LoopWaker:
    """Completes asyncio futures of one event loop from the writer thread, waking the loop
    once per batch."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.thread = threading.get_ident()  # made by ``settle``, on the loop's thread

    def complete(self, waiters: list[asyncio.Future[None]], error: BaseException | None) -> None:
        """(Any thread) resolve ``waiters`` on the loop: at once when on its thread."""
        if threading.get_ident() == self.thread:
            _resolve(waiters, error)
            return
        with contextlib.suppress(RuntimeError):  # the loop closed: nobody waits any more
            self.loop.call_soon_threadsafe(_resolve, waiters, error)


def _resolve(waiters: list[asyncio.Future[None]], error: BaseException | None) -> None:
    for waiter in waiters:
        if waiter.done():
            continue
        if error is None:
            waiter.set_result(None)
        else:
            waiter.set_exception(AuditError(str(error)))
