"""Several ``parity stream run`` processes in one group, and stopping one cleanly.

Per broker, one repo with a stream source (its own stream) per test: two consumers split a
stream and the totals are exact, and ``parity stream status`` (table and ``--json``) shows
the group, nothing pending, what each consumer wrote and the dead letters by reason; one of
two is SIGKILLed holding messages and the other takes them over (``--claim-idle 1``), the
totals still exact; SIGTERM while consuming exits 0 with every message it took committed,
and a later consumer finishes the stream with nothing lost; and ``parity stream status``
only reads the broker (it creates no group).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any

import pytest

from cli_utils import parity, table_rows
from stream_brokers import BROKERS, RedisBroker, make_broker, wait_for
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

SOURCES = ("split", "takeover", "drain", "untouched")


@pytest.fixture(scope="module", params=BROKERS)
def repo(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """(repo, {source: broker}) for one broker: a stream of its own per test."""
    brokers = {s: make_broker(request.param, filtered=True) for s in SOURCES}
    try:
        root = write_repo(
            tmp_path_factory.mktemp(f"consumers-{request.param}") / "repo",
            [SourceSpec(s, b) for s, b in brokers.items()],
        )
        yield root, brokers
        teardown_repo(root)
    finally:
        for b in brokers.values():
            b.close()


def _messages(seed: int, n: int, bad: dict[str, int]) -> tuple[list[dict], list[tuple[bytes, str]]]:
    """``n`` good events and, spread among them, ``bad[name]`` bad messages of each kind."""
    evs = events(seed, n)
    out = [(payload(e), "good") for e in evs]
    for name, count in bad.items():
        for i in range(count):
            out.insert((i + 1) * len(out) // (count + 1), (BAD[name][0], name))
    return evs, out


def _send(broker: Any, items: list[tuple[bytes, str]], chunk: int = 50, pace: float = 0.0):
    """Publish ``items`` in chunks (``pace`` s apart); (offset, label) of each."""
    sent: list[tuple[str, str]] = []
    for i in range(0, len(items), chunk):
        part = items[i : i + chunk]
        sent += zip(broker.publish([p for p, _ in part]), [label for _, label in part], strict=True)
        if pace:
            time.sleep(pace)
    return sent


def _status(repo: Any, source: str) -> dict[str, Any]:
    [row] = json.loads(
        parity("stream", "status", "--json", "--sources", source, "--repo", repo).stdout
    )
    return row


def _drained(broker: Any, *procs: Consumer) -> None:
    wait_for(
        lambda: broker.progress().drained or not all(p.alive for p in procs),
        lambda: f"the group drained: {broker.progress()}\n" + "\n".join(p.output() for p in procs),
    )
    for p in procs:
        assert p.alive, f"consumer exited {p.proc.returncode}:\n{p.output()}"


def test_two_consumers_split_the_stream_and_status_shows_it(repo) -> None:
    root, brokers = repo
    broker = brokers["split"]
    evs, items = _messages(11, 1500, {"decode": 1, "missing_field": 2})
    names = [f"split-{c}-{uuid.uuid4().hex[:6]}" for c in "ab"]
    with consumers() as procs:
        for name in names:  # the default claim idle (30 s): no message is taken over
            procs.append(Consumer(root, "--sources", "split", "--consumer", name, claim_idle=30))
        for p in procs:
            p.wait_started()
        sent = _send(broker, items, chunk=20, pace=0.01)  # both pull while it trickles in
        _drained(broker, *procs)
        assert [p.term() for p in procs] == [0, 0], [p.output() for p in procs]

    check_landed(root, "split", broker, evs, sent)
    row = _status(root, "split")
    assert (row["group"], row["pending"], row["unconsumed"]) == ("parity", 0, 0)
    assert (row["consumed"], row["written"]) == (len(items), len(evs))
    assert row["dead_letters"] == {"decode": 1, "missing_field": 2}
    assert row["dead_letters_in_stream"] == 3
    by_name = {c["consumer"]: c for c in row["consumers"]}
    assert set(by_name) == set(names), row["consumers"]
    assert all(by_name[n]["written"] > 0 for n in names), f"one consumer got nothing: {by_name}"
    # both exited 0 after SIGTERM: each says so (not "lost", a process gone without a word)
    assert [by_name[n]["state"] for n in names] == ["stopped", "stopped"], row["consumers"]
    if isinstance(broker, RedisBroker):  # the broker agrees: both members, nothing held
        assert broker.consumers() == dict.fromkeys(names, 0)

    table = parity("stream", "status", "--sources", "split", "--repo", root).stdout
    [cells] = table_rows(table)
    assert cells[0] == "split"
    assert cells[1] == f"{broker.kind} / parity"
    assert cells[3:5] == ["0", "0"]  # pending, unconsumed
    assert cells[6] == f"{len(evs):,}"
    assert cells[7] == "decode 1, missing_field 2"


def _holding(broker: Any, name: str) -> bool:
    """Whether consumer ``name`` holds messages (Redis: its own pending; NATS tells only
    the group's, which two live consumers share)."""
    if isinstance(broker, RedisBroker):
        return broker.consumers().get(name, 0) > 0
    return broker.progress().pending > 0


def test_a_killed_consumers_messages_are_taken_over(repo) -> None:
    root, brokers = repo
    broker = brokers["takeover"]
    evs, items = _messages(12, 3000, {"type": 1, "timestamp": 1})
    names = [f"takeover-{c}-{uuid.uuid4().hex[:6]}" for c in "ab"]
    with consumers() as procs:
        for name in names:
            procs.append(Consumer(root, "--sources", "takeover", "--consumer", name))
        for p in procs:
            p.wait_started()
        victim, survivor = procs
        stop = threading.Event()
        sent: list[tuple[str, str]] = []

        def produce() -> None:
            for i in range(0, len(items), 100):
                sent.extend(_send(broker, items[i : i + 100]))
                stop.wait(0.02)

        producer = threading.Thread(target=produce, daemon=True)
        producer.start()
        wait_for(
            lambda: _holding(broker, names[0]) or not victim.alive,
            lambda: f"{names[0]} holding messages: {broker.progress()}\n{victim.output()}",
            interval=0.002,
        )
        victim.kill()
        held = broker.consumers()[names[0]] if isinstance(broker, RedisBroker) else None
        producer.join(60)
        assert not producer.is_alive()
        _drained(broker, survivor)
        assert survivor.term() == 0, survivor.output()

    check_landed(root, "takeover", broker, evs, sent)
    if isinstance(broker, RedisBroker):  # what the dead one held moved to the survivor
        assert held, "the victim held nothing when it was killed"
        assert broker.consumers() == {names[0]: 0, names[1]: 0}
    states = {c["consumer"]: c["state"] for c in _status(root, "takeover")["consumers"]}
    assert states[names[1]] == "stopped", states
    # the victim, if it lived to its first heartbeat, reads as lost: its process is gone
    assert states.get(names[0], "lost") == "lost", states


def test_sigterm_finishes_the_batch_in_hand_and_commits_it(repo) -> None:
    root, brokers = repo
    broker = brokers["drain"]
    evs, items = _messages(13, 4000, {})
    with consumers() as procs:
        first = Consumer(root, "--sources", "drain", batch_size=100, claim_idle=30)
        procs.append(first)
        first.wait_started()
        sent = _send(broker, items[:1000], chunk=200)
        stop = threading.Event()

        def produce() -> None:  # still sending when the SIGTERM lands
            for i in range(1000, len(items), 50):
                sent.extend(_send(broker, items[i : i + 50]))
                if stop.wait(0.01):
                    return

        producer = threading.Thread(target=produce, daemon=True)
        producer.start()
        wait_for(lambda: broker.progress().acked >= 300, lambda: f"progress: {broker.progress()}")
        assert first.term() == 0, first.output()
        after = broker.progress()
        stop.set()
        producer.join(60)
        assert after.pending == 0, f"left unacknowledged by a clean stop: {after}"
        assert after.acked < len(sent), "it had drained everything: the stop proved nothing"

        rest = _send(broker, items[len(sent) :])
        sent += rest
        second = Consumer(root, "--sources", "drain", claim_idle=30)
        procs.append(second)
        _drained(broker, second)
        assert second.term() == 0, second.output()
    check_landed(root, "drain", broker, evs, sent)


def test_status_only_reads_the_broker(repo) -> None:
    """``parity stream status`` before any ``stream run`` leaves the broker as it was: it
    must not create the group / durable consumer, which on JetStream would fix its ack wait
    at status' default claim idle (30 s) for every later ``run --claim-idle``."""
    root, brokers = repo
    broker = brokers["untouched"]
    row = _status(root, "untouched")
    assert row["broker_error"] is None, row
    assert not broker.has_group(), f"status created the group of {broker.stream!r}"
