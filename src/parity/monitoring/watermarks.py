"""The newest event time that reached each view, online and offline: the freshness marks.

``Watermarks`` is a write hook every ``FeatureStore`` carries (``parity.monitoring.hooks``).
After each successful write it notes, per view written, the newest event time that reached
the online store (writes to ``online`` or ``online_and_offline`` of an online view) and the
offline side (writes to ``offline`` or ``online_and_offline``), and records it in the
registry (``MonitorRecords.advance``, which only moves forward) for ``parity freshness``
and the monitor to read, from any process.

Registry writes are throttled so a stream never pays one per batch: the newest time is kept
in memory and written once ``STEP_SECONDS`` (1 s) of wall time passed since the last write,
or sooner, once ``MIN_GAP_SECONDS`` (0.25 s) passed, when it is at least ``STEP_US`` (1 s)
of event time ahead. So what is held back is at most 1 s old, and less than 1 s of event
time unless it is younger than a quarter second, and a backfill (hours of event time a
second) writes at most four times a second, not once per batch (that cost a stream about
1 µs an event, a tenth of its throughput). The next write, ``flush()`` (called by
``store.freshness()`` and the monitor before they read, and by ``store.close()``) settles
it; a process that exits without closing its store loses at most that last second.

A failing registry write is logged and retried with the next write at most once per
``STEP``; it never fails the data write.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from parity.hooks import Hooks

if TYPE_CHECKING:
    from parity.registry import Registry
    from parity.registry.catalog import Catalog
    from parity.registry.monitoring import MonitorRecords

__all__ = ["MIN_GAP_SECONDS", "STEP_SECONDS", "STEP_US", "Watermarks"]

log = logging.getLogger("parity.monitoring.watermarks")

STEP_US = 1_000_000
"""How far (µs of event time) the newest may run ahead of the registry before it is written
(once ``MIN_GAP_SECONDS`` passed since the last write)."""
STEP_SECONDS = 1.0
"""How long (wall seconds) a newer time may wait before it is written."""
MIN_GAP_SECONDS = 0.25
"""Wall seconds between two writes at least, however far event time runs ahead."""


@dataclass
class _Mark:
    """One (view, target): the newest seen, the newest written, when a write was tried."""

    newest_us: int
    written_us: int | None = None
    tried_at: float = float("-inf")
    failed: bool = False


class Watermarks(Hooks):
    """Records the newest event time written per view and target (see the module)."""

    def __init__(
        self,
        registry: Callable[[], Registry],
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ):
        self._registry = registry
        self._monotonic = monotonic
        self._records: MonitorRecords | None = None
        self._marks: dict[tuple[str, str], _Mark] = {}
        self._lock = threading.Lock()
        self.writes = 0
        """Registry writes made (what a test of the throttle counts)."""

    def after_write(
        self,
        *,
        kind: str,
        views: tuple[str, ...],
        newest_event_us: int | None = None,
        to: str = "online",
        catalog: Catalog | None = None,
        error: BaseException | None,
        **_: Any,
    ) -> None:
        if error is not None or newest_event_us is None or kind == "delete" or not views:
            return
        due = []
        now = self._monotonic()
        with self._lock:
            for view in views:
                for target in _targets(view, to, catalog):
                    mark = self._note(view, target, int(newest_event_us))
                    if self._due(mark, now):
                        mark.tried_at = now
                        due.append((view, target, mark.newest_us))
        self._write(due)

    def flush(self) -> None:
        """Write every newest time held back (what a reader calls before it reads)."""
        with self._lock:
            due = [
                (view, target, m.newest_us)
                for (view, target), m in self._marks.items()
                if m.written_us is None or m.newest_us > m.written_us
            ]
            now = self._monotonic()
            for view, target, _ in due:
                self._marks[(view, target)].tried_at = now
        self._write(due)

    def pending(self) -> dict[tuple[str, str], datetime]:
        """``{(view, target): newest}`` seen but not yet written to the registry."""
        with self._lock:
            return {
                key: _time(m.newest_us)
                for key, m in self._marks.items()
                if m.written_us is None or m.newest_us > m.written_us
            }

    # -- helpers --------------------------------------------------------------------------
    def _note(self, view: str, target: str, newest_us: int) -> _Mark:
        mark = self._marks.get((view, target))
        if mark is None:
            mark = self._marks[(view, target)] = _Mark(newest_us)
        elif newest_us > mark.newest_us:
            mark.newest_us = newest_us
        return mark

    @staticmethod
    def _due(mark: _Mark, now: float) -> bool:
        if mark.written_us is not None and mark.newest_us <= mark.written_us:
            return False  # nothing new: an older or equal time never moves the mark
        since = now - mark.tried_at
        if mark.failed or mark.written_us is None:
            return since >= STEP_SECONDS  # the first write at once; after a failure, once per STEP
        if since >= STEP_SECONDS:
            return True
        return since >= MIN_GAP_SECONDS and mark.newest_us - mark.written_us >= STEP_US

    def _write(self, due: list[tuple[str, str, int]]) -> None:
        for view, target, newest_us in due:
            try:
                self._kept().advance(view, target, _time(newest_us))
            except Exception as exc:
                # the data is written; the mark is retried with a later write or flush()
                log.warning("recording the freshness of %r (%s) failed: %s", view, target, exc)
                with self._lock:
                    self._marks[(view, target)].failed = True
                continue
            with self._lock:
                self.writes += 1
                mark = self._marks[(view, target)]
                mark.failed = False
                if mark.written_us is None or newest_us > mark.written_us:
                    mark.written_us = newest_us

    def _kept(self) -> MonitorRecords:
        if self._records is None:
            from parity.registry.monitoring import MonitorRecords

            self._records = MonitorRecords(self._registry())
        return self._records


def _targets(view: str, to: str, catalog: Catalog | None) -> tuple[str, ...]:
    """Where a write to ``to`` took ``view``'s rows: online only when the view serves online."""
    out = []
    if to != "offline" and _is_online(view, catalog):
        out.append("online")
    if to != "online":
        out.append("offline")
    return tuple(out)


def _is_online(view: str, catalog: Catalog | None) -> bool:
    if catalog is None:
        return True
    try:
        return bool(catalog.view(view).online)
    except Exception:
        return True  # not a plain view the catalog knows (it was written, so count it)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _time(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)  # exact, where a float of seconds is not
