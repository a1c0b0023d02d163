"""Messages one of a runner's threads is writing, so a sibling handed them again waits.

A broker delivers a message again when its consumer holds it longer than the claim time
(Redis: a sibling's ``XAUTOCLAIM``; JetStream: the ack wait runs out). The runner's
keepalive extends batches in hand to avoid that, but a keepalive is a timer: on a loaded
machine it can be late. When the second delivery reaches another thread of the same runner
while the first is still writing, the two would each find the events absent from the
offline log and append them twice. ``InFlight`` closes that window inside a process: a
batch claims its offsets before it is written; offsets another batch holds are waited for
(that batch has then written them, or given them up), and the runner then checks the offline
log for them like any redelivery. Claims are taken in one step under a lock, so a batch only
ever waits for batches that claimed before it: no cycle, no deadlock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

__all__ = ["Claim", "InFlight"]


class Claim:
    """What one batch holds: ``offsets`` it claimed, ``shared`` ones another batch held."""

    __slots__ = ("_waits", "done", "offsets", "shared")

    def __init__(self, offsets: list[str], shared: set[str], waits: list[threading.Event]) -> None:
        self.done = threading.Event()
        self.offsets = offsets
        self.shared = shared
        self._waits = waits

    def wait(self, stopping: Callable[[], bool], poll: float = 0.1) -> bool:
        """Wait until every batch holding a shared offset is done; False when ``stopping()``
        turned true first (the batch is then left for redelivery)."""
        for event in self._waits:
            while not event.wait(poll):
                if stopping():
                    return False
        return True


class InFlight:
    """Offsets claimed by batches of one source being written, across a runner's threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._owner: dict[str, Claim] = {}

    def claim(self, offsets: Sequence[str]) -> Claim:
        mine: list[str] = []
        shared: set[str] = set()
        waits: dict[int, threading.Event] = {}
        claim = Claim(mine, shared, [])
        with self._lock:
            for offset in offsets:
                owner = self._owner.get(offset)
                if owner is None:
                    self._owner[offset] = claim
                    mine.append(offset)
                elif owner is not claim:
                    shared.add(offset)
                    waits[id(owner)] = owner.done
        claim._waits = list(waits.values())
        return claim

    def release(self, claim: Claim) -> None:
        with self._lock:
            for offset in claim.offsets:
                if self._owner.get(offset) is claim:
                    del self._owner[offset]
        claim.done.set()

    def __len__(self) -> int:
        with self._lock:
            return len(self._owner)
