"""In-flight claims: a batch waits only for batches that claimed its offsets before it."""

from __future__ import annotations

import threading

from hypothesis import given, settings
from hypothesis import strategies as st

from parity.streams.inflight import InFlight

batches = st.lists(st.lists(st.integers(0, 20).map(str), max_size=8), max_size=8)


@settings(deadline=None)
@given(batches)
def test_a_claim_shares_exactly_the_offsets_an_earlier_unreleased_claim_holds(bs) -> None:
    inflight = InFlight()
    held: set[str] = set()
    for offsets in bs:
        claim = inflight.claim(offsets)
        assert claim.shared == set(offsets) & held
        assert set(claim.offsets) == set(offsets) - held
        assert len(claim.offsets) == len(set(claim.offsets))
        held |= set(offsets)
    assert len(inflight) == len(held)


@settings(deadline=None)
@given(batches)
def test_releasing_every_claim_leaves_nothing_held_and_unblocks_every_wait(bs) -> None:
    inflight = InFlight()
    claims = [inflight.claim(offsets) for offsets in bs]
    for claim in claims:  # in claim order, as each runner thread handles its batches
        assert claim.wait(lambda: False, poll=0.01)
        inflight.release(claim)
    assert len(inflight) == 0


def test_a_wait_ends_when_the_holder_releases() -> None:
    inflight = InFlight()
    first = inflight.claim(["1", "2"])
    second = inflight.claim(["2", "3"])
    assert second.shared == {"2"}
    result: list[bool] = []
    waiter = threading.Thread(target=lambda: result.append(second.wait(lambda: False, 0.01)))
    waiter.start()
    waiter.join(0.2)
    assert waiter.is_alive(), "the second batch went on while the first held offset 2"
    inflight.release(first)
    waiter.join(30)
    assert result == [True]
    third = inflight.claim(["1"])  # released: free again
    assert third.shared == set()


def test_a_wait_gives_up_when_stopping() -> None:
    inflight = InFlight()
    inflight.claim(["7"])
    later = inflight.claim(["7"])
    stop = threading.Event()
    stop.set()
    assert later.wait(stop.is_set, poll=0.01) is False
