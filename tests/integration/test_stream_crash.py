"""Exactly once in effect: ``parity stream run`` killed with SIGKILL at random points while a
producer sends, restarted, drained, then every event counted once, nothing lost.

Per broker (``stream_utils.BROKERS``), one repo with two stream sources read by the same
consumer process: ``orders`` (no event id: the broker's message id dedups; bad messages of
every kind mixed in) and ``orders_eid`` (``event_id_field``; the producer also resends a few
events as new messages, which must count once). The consumer is SIGKILLed at least three
times, each after it made progress since its start and while the stream still had work,
and restarted; a new process takes over what the killed one held (``--claim-idle 1``).
After the drain a SIGTERM stops it with exit code 0, and:

- online, per entity: ``count_1d`` and ``amount_sum_1h`` are the producer's exact totals,
  ``amount`` / ``items`` the latest event's;
- ``get_historical_features`` at the same instant equals online, for every feature;
- the offline log holds each message that carried a good event exactly once;
- the dead-letter stream holds every bad message, with its payload and reason. Dead letters
  are at least once: the runner publishes them before it commits the batch, so a kill in
  between makes the next consumer dead-letter the message again. So the test asserts the
  *set* of dead-lettered offsets equals the bad messages' offsets (none lost, none
  invented) and that every copy carries the original payload and the right reason; how
  many copies there are is not promised (at least one).
"""

from __future__ import annotations

import itertools
import random
import threading
import time
from collections.abc import Iterator

import pytest

from stream_brokers import BROKERS, Broker, make_broker, wait_for
from stream_utils import (
    BAD,
    Consumer,
    SourceSpec,
    check_landed,
    consumers,
    events,
    payload,
    teardown_repo,
    write_repo,
)

N_EVENTS = 2500
"""Good events per source (two sources: 5,000 and the bad ones, a few seconds to send)."""
KILLS = 4
BATCH = 100
CHUNK = 100
BURST = 0.7
"""Of each phase, sent at once: a backlog the next consumer is busy with when it dies."""
TRICKLE = 10
PACE_S = 0.05
"""The rest of each phase, paced: the producer is still sending when the kill lands."""
RESENT = 8
"""Events of ``orders_eid`` the producer sends twice (a producer's retry: a new message)."""
BAD_EACH = 2
MARGIN = 300
"""A kill lands at least this many messages before the end of its phase (a consumer
commits a few hundred in the ≤ 20 ms between the progress seen and the kill)."""
WAIT = 120.0


@pytest.fixture
def brokers(request: pytest.FixtureRequest) -> Iterator[dict[str, Broker]]:
    kind = request.param
    made = {"orders": make_broker(kind), "orders_eid": make_broker(kind, filtered=True)}
    yield made
    for b in made.values():
        b.close()


class Producer(threading.Thread):
    """Sends ``plan`` ((source, payload, label) in order) in ``KILLS + 1`` phases, each a
    burst then a trickle; phase ``k + 1`` starts once the ``k``-th kill is done
    (``next_phase``), so every consumer process has a backlog to be killed in. Records each
    message's offset by label."""

    def __init__(self, brokers: dict[str, Broker], plan: list[tuple[str, bytes, str]]):
        super().__init__(daemon=True)
        self.brokers = brokers
        size = -(-len(plan) // (KILLS + 1))
        self.phases = [plan[i : i + size] for i in range(0, len(plan), size)]
        self.ends = list(itertools.accumulate(len(p) for p in self.phases))
        """Messages sent once each phase is."""
        self.next_phase = [threading.Event() for _ in self.phases]
        self.sent: dict[str, list[tuple[str, str]]] = {s: [] for s in brokers}
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            for k, phase in enumerate(self.phases):
                if k and not self.next_phase[k - 1].wait(WAIT):
                    raise AssertionError(f"kill {k} never came")
                burst = int(len(phase) * BURST)
                for start in range(0, burst, CHUNK):
                    self._send(phase[start : min(start + CHUNK, burst)])
                for start in range(burst, len(phase), TRICKLE):
                    self._send(phase[start : start + TRICKLE])
                    time.sleep(PACE_S)
        except BaseException as exc:
            self.error = exc

    def _send(self, chunk: list[tuple[str, bytes, str]]) -> None:
        for source, broker in self.brokers.items():
            mine = [(p, label) for s, p, label in chunk if s == source]
            offsets = broker.publish([p for p, _ in mine])
            self.sent[source] += zip(offsets, [label for _, label in mine], strict=True)

    def count(self) -> int:
        return sum(len(v) for v in self.sent.values())


def _plan(rng: random.Random) -> tuple[list[tuple[str, bytes, str]], dict[str, list]]:
    """What the producer sends, in order ((source, payload, label): "good" or a ``BAD``
    name), and the good events of each source."""
    plain = events(rng.randrange(1 << 30), N_EVENTS)
    with_ids = events(rng.randrange(1 << 30), N_EVENTS, event_id=True)
    a: list[tuple[bytes, str]] = [(payload(e), "good") for e in plain]
    for name, (body, _reason) in BAD.items():
        for _ in range(BAD_EACH):
            a.insert(rng.randrange(len(a) + 1), (body, name))
    b: list[tuple[bytes, str]] = [(payload(e), "good") for e in with_ids]
    for i in rng.sample(range(N_EVENTS - 100), RESENT):  # resent a little later
        b.insert(i + rng.randrange(1, 100), (payload(with_ids[i]), "good"))
    # the two sources interleaved at random, each in its own order (event times increase)
    todo = {"orders": a[::-1], "orders_eid": b[::-1]}
    plan = []
    while todo:
        source = rng.choices(list(todo), [len(v) for v in todo.values()])[0]
        body, label = todo[source].pop()
        plan.append((source, body, label))
        if not todo[source]:
            del todo[source]
    return plan, {"orders": plain, "orders_eid": with_ids}


def _acked(brokers: dict[str, Broker]) -> int:
    return sum(b.progress().acked for b in brokers.values())


def _wait_acked(brokers: dict[str, Broker], n: int, proc: Consumer, producer: Producer) -> None:
    """Until ``n`` messages are acknowledged (or the consumer died), polled closely."""
    wait_for(
        lambda: _acked(brokers) >= n or not proc.alive,
        lambda: f"{n} acknowledged; {_state(brokers, producer, proc)}",
        interval=0.005,
    )


def _holding(brokers: dict[str, Broker]) -> None:
    """Until a batch is in hand (delivered, not acknowledged), or 2 s: a kill then lands in
    the middle of the work more often than in an idle wait (either is a fair kill)."""
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline and not any(b.progress().pending for b in brokers.values()):
        time.sleep(0.002)


def _state(brokers: dict[str, Broker], producer: Producer, proc: Consumer) -> str:
    p = {s: b.progress() for s, b in brokers.items()}
    return f"sent {producer.count()}, broker says {p}; consumer:\n{proc.output()}"


@pytest.mark.slow
@pytest.mark.parametrize("brokers", BROKERS, indirect=True)
def test_sigkill_at_random_points_counts_every_event_once(brokers, tmp_path) -> None:
    kind = next(iter(brokers.values())).kind
    rng = random.Random(f"crash-{kind}")
    plan, good = _plan(rng)
    repo = write_repo(
        tmp_path / "repo",
        [
            SourceSpec("orders", brokers["orders"]),
            SourceSpec("orders_eid", brokers["orders_eid"], event_id=True),
        ],
    )
    total = len(plan)
    producer = Producer(brokers, plan)
    try:
        with consumers() as procs:
            procs.append(Consumer(repo, batch_size=BATCH))
            producer.start()
            kills = []
            for k in range(KILLS):
                proc = procs[-1]
                # progress since its start, and a kill before this phase is all committed
                need = min(_acked(brokers) + rng.randrange(50, 400), producer.ends[k] - MARGIN)
                _wait_acked(brokers, need, proc, producer)
                assert proc.alive, f"consumer exited {proc.proc.returncode}:\n{proc.output()}"
                _holding(brokers)
                time.sleep(rng.uniform(0.0, 0.02))  # a random point of its work, not a wait
                proc.kill()
                after = [b.progress() for b in brokers.values()]
                kills.append((sum(p.acked for p in after), sum(p.pending for p in after)))
                producer.next_phase[k].set()
                procs.append(Consumer(repo, batch_size=BATCH))
            producer.join(WAIT)
            assert producer.error is None, producer.error
            assert not producer.is_alive(), "the producer did not finish"
            last = procs[-1].wait_started()
            wait_for(
                lambda: all(b.progress().drained for b in brokers.values()) or not last.alive,
                lambda: f"the group drained; {_state(brokers, producer, last)}",
            )
            assert last.alive, f"consumer exited {last.proc.returncode}:\n{last.output()}"
            assert last.term() == 0, last.output()
        # (acknowledged, held unacknowledged) at each kill: work was left, and redelivered
        assert all(acked < total for acked, _ in kills), f"a kill after the drain: {kills}"
        assert any(held for _, held in kills), f"no kill left a message to redeliver: {kills}"
        for source, evs in good.items():
            check_landed(repo, source, brokers[source], evs, producer.sent[source])
    finally:
        teardown_repo(repo)
