"""Polling a consumer while the last batch is written, and riding out broker outages.

``Poller.next()`` hands the runner its next batch. For a consumer whose ``poll`` may run on
another thread while the runner writes (``StreamConsumer.concurrent_poll``, Redis), one
batch is fetched ahead on a thread of its own, so the broker's round trip overlaps the
write of the batch before it; otherwise ``next()`` polls in place. A poll that fails
(the broker restarting) is retried with backoff and logged; it never ends the runner.
Fetched batches are never dropped: after ``stop``, ``drain()`` returns what was fetched
ahead so the runner writes and commits it too.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable

from parity.streams.base import Message, StreamConsumer

__all__ = ["Poller"]

log = logging.getLogger("parity.streams")

_BACKOFF_MAX_S = 5.0


class Poller:
    """Batches of up to ``size`` messages from ``consumer`` until ``stop`` is set."""

    def __init__(
        self,
        consumer: StreamConsumer,
        size: int,
        stop: threading.Event,
        name: str,
        *,
        on_fetch: Callable[[list[Message]], None] | None = None,
    ):
        self.consumer = consumer
        self.on_fetch = on_fetch
        self.size = size
        self.stop = stop
        self.name = name
        self.error: str | None = None
        self._delay = 0.05
        self._ahead: queue.Queue[list[Message]] | None = None
        self._thread: threading.Thread | None = None
        if consumer.concurrent_poll:
            self._ahead = queue.Queue(maxsize=1)
            self._thread = threading.Thread(
                target=self._fetch_ahead, name=f"parity-poll-{name}", daemon=True
            )
            self._thread.start()

    def next(self) -> list[Message]:
        """The next batch; empty when none came within the consumer's block time."""
        if self._ahead is None:
            return self._poll()
        try:
            return self._ahead.get(timeout=self.consumer.options.block + 0.5)
        except queue.Empty:
            return []

    @property
    def fetching_ahead(self) -> bool:
        """Whether the next batch is fetched already (the poll after it starts as soon as
        it is taken), rather than a poll being under way that may block for ``block``."""
        return self._ahead is not None and not self._ahead.empty()

    def drain(self) -> list[list[Message]]:
        """After ``stop``: the batches fetched ahead and not handed out yet (taken while the
        fetching thread finishes its last poll, which may hand over one more)."""
        out: list[list[Message]] = []
        if self._thread is None or self._ahead is None:
            return out
        deadline = time.monotonic() + self.consumer.options.block + 30.0
        while self._thread.is_alive() and time.monotonic() < deadline:
            try:
                out.append(self._ahead.get(timeout=0.05))
            except queue.Empty:
                continue
        while not self._ahead.empty():
            out.append(self._ahead.get_nowait())
        return out

    def _poll(self) -> list[Message]:
        try:
            messages = self.consumer.poll(self.size)
        except Exception as exc:  # a broker outage: wait and try again, never give up
            self.error = f"{type(exc).__name__}: {exc}"
            log.warning(
                "source %r: poll failed (%s); retrying in %.2f s", self.name, exc, self._delay
            )
            self.stop.wait(self._delay)
            self._delay = min(self._delay * 2, _BACKOFF_MAX_S)
            return []
        self.error = None
        self._delay = 0.05
        if messages and self.on_fetch is not None:
            self.on_fetch(messages)
        return messages

    def _fetch_ahead(self) -> None:
        assert self._ahead is not None
        while not self.stop.is_set():
            messages = self._poll()
            if not messages:
                continue
            while True:  # hand it over; never drop it, even when stopping
                try:
                    self._ahead.put(messages, timeout=0.2)
                    break
                except queue.Full:
                    if self.stop.is_set():
                        self._ahead.put(messages)  # the runner drains before it exits
                        break
