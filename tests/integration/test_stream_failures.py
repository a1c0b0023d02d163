"""Writes that do not go as planned: each event still lands once, online and offline.

- A write slower than ``claim_idle``: the messages in hand are delivered again, to another
  consumer thread of the same process (Redis: a sibling claims them; JetStream: the ack wait
  runs out) while the first is still writing them. The slow write is real, not a mock: a
  ``before_write`` hook (Parity's public observer API) that takes 1.6 s the first time, as
  a store's latency spike would.
- The online store down while events arrive (a private ``redis-server``, stopped and
  started again): the runner retries until it is back, and nothing is lost or doubled. The
  source feeds a plain view only, so nothing reads the online store before a batch is
  appended to the offline log: the online write is what fails.

After the drain, ``stream_utils.check_landed``: exact totals online, each good message once
in the offline log, ``get_historical_features`` equal to online.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from parity import FeatureStore
from parity.hooks import Hooks
from parity.streams import runner as runner_module
from redis_server import RedisServer
from stream_brokers import BROKERS, Broker, make_broker, wait_for
from stream_utils import SourceSpec, check_landed, events, payload, teardown_repo, write_repo

N = 300


class SlowFirstStreamWrite(Hooks):
    """The first stream write waits ``seconds`` before it writes anything."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.slowed = threading.Event()

    def before_write(self, *, kind: str, **_: Any) -> None:
        if kind == "stream" and not self.slowed.is_set():
            self.slowed.set()
            time.sleep(self.seconds)


@pytest.fixture
def broker(request: pytest.FixtureRequest) -> Iterator[Broker]:
    b = make_broker(request.param, filtered=True)
    yield b
    b.close()


def _trickle(broker: Broker, evs: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """Publish in chunks of 10, 20 ms apart (consumers poll while it arrives)."""
    sent: list[tuple[str, str]] = []
    for i in range(0, len(evs), 10):
        offsets = broker.publish([payload(e) for e in evs[i : i + 10]])
        sent += [(o, "good") for o in offsets]
        time.sleep(0.02)
    return sent


def _drain(runner: Any, broker: Broker, source: str, n: int) -> None:
    st = runner.stats()[source]
    wait_for(
        lambda: broker.progress().drained and st.written >= n,
        lambda: f"{n} written and the group drained: {broker.progress()}, {st}",
    )


@pytest.mark.parametrize("broker", BROKERS, indirect=True)
def test_a_write_slower_than_claim_idle_lands_each_event_once(broker, tmp_path) -> None:
    repo = write_repo(tmp_path / "repo", [SourceSpec("slow", broker)])
    slow = SlowFirstStreamWrite(1.6)
    evs = events(21, N)
    try:
        with FeatureStore(repo, hooks=[slow]) as store:
            runner = store.stream_runner(["slow"], batch_size=50, claim_idle=1.0).start()
            try:
                sent = _trickle(broker, evs)
                _drain(runner, broker, "slow", N)
            finally:
                runner.stop()
        assert slow.slowed.is_set()
        check_landed(repo, "slow", broker, evs, sent)
    finally:
        teardown_repo(repo)


@pytest.mark.parametrize("broker", BROKERS, indirect=True)
def test_a_late_keepalive_still_lands_each_event_once(broker, tmp_path, monkeypatch) -> None:
    """The keepalive is a timer; on a loaded machine it can fire after the claim lapsed.
    Here it never fires (a starved thread), so the slow batch is surely handed to the
    sibling thread while it is written: the in-flight claim makes the sibling wait and then
    find the events in the offline log."""
    monkeypatch.setattr(runner_module._Keepalive, "_run", lambda self: None)
    repo = write_repo(tmp_path / "repo", [SourceSpec("late", broker)])
    slow = SlowFirstStreamWrite(2.5)
    evs = events(23, N)
    try:
        with FeatureStore(repo, hooks=[slow]) as store:
            runner = store.stream_runner(["late"], batch_size=50, claim_idle=1.0).start()
            try:
                sent = _trickle(broker, evs)
                _drain(runner, broker, "late", N)
            finally:
                runner.stop()
            consumed = runner.stats()["late"].consumed
        assert slow.slowed.is_set()
        assert consumed > N, f"the slow batch was not handed over again ({consumed} consumed)"
        check_landed(repo, "late", broker, evs, sent)
    finally:
        teardown_repo(repo)


@pytest.mark.parametrize("broker", BROKERS, indirect=True)
def test_an_online_store_outage_loses_and_doubles_nothing(broker, tmp_path) -> None:
    online = RedisServer(tmp_path / "online").start()
    try:
        repo = write_repo(
            tmp_path / "repo",
            [SourceSpec("outage", broker, aggregated=False)],
            online_url=online.url,
        )
        evs = events(22, N)
        with FeatureStore(repo) as store:
            runner = store.stream_runner(["outage"], batch_size=50).start()
            try:
                online.stop()  # down before the first event: nothing online is lost with it
                sent = _trickle(broker, evs)
                registry = runner.metrics.registry
                wait_for(
                    lambda: (
                        (
                            registry.get_sample_value(
                                "parity_stream_errors_total", {"source": "outage"}
                            )
                            or 0
                        )
                        >= 3
                    ),
                    lambda: f"three failed writes: {runner.stats()['outage']}",
                )
                online.start()
                _drain(runner, broker, "outage", N)
            finally:
                runner.stop()
        check_landed(repo, "outage", broker, evs, sent, aggregated=False)
        teardown_repo(repo)
    finally:
        online.stop()
