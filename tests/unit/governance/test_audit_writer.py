"""The audit log's group commit, its loop waker, and what a record may hold: callers get
their commit or an ``AuditError``, concurrent callers share commits, a failed log refuses
until it takes writes again, and no secret reaches a record."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from parity.errors import AuditError, GovernanceError
from parity.governance.audit import Commits, make_entry, redact
from parity.governance.audit_writer import GroupCommit
from parity.governance.context import Actor

WAIT = 30.0  # bound on every wait below; a healthy run takes milliseconds


class Sink:
    """A commit function that keeps batches, and fails while ``broken`` is set."""

    def __init__(self, delay: float = 0.0):
        self.batches: list[list[int]] = []
        self.broken: str | None = None
        self.delay = delay
        self.probes = 0

    def commit(self, items):
        if self.delay:
            time.sleep(self.delay)
        if self.broken:
            raise OSError(self.broken)
        self.batches.append(list(items))

    def probe(self):
        self.probes += 1
        if self.broken:
            raise OSError(self.broken)


def writer(sink: Sink, window_s: float = 0.002, *, inline: bool = False) -> GroupCommit[int]:
    return GroupCommit(
        sink.commit,
        sink.probe,
        window_s=window_s,
        timeout_s=WAIT,
        describe=lambda exc, n: f"could not write {n}: {exc}",
        inline=inline,
    )


def test_every_item_is_committed_once_in_order_and_concurrent_callers_share_commits():
    sink = Sink(delay=0.005)
    w = writer(sink)
    barrier = threading.Barrier(8)

    def caller(base: int) -> None:
        barrier.wait(WAIT)
        for i in range(25):
            w.wait(w.submit(base + i))

    threads = [threading.Thread(target=caller, args=(k * 100,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT)
    items = [i for b in sink.batches for i in b]
    assert sorted(items) == sorted(k * 100 + i for k in range(8) for i in range(25))
    for k in range(8):  # each caller's items committed in the order it submitted them
        mine = [i for i in items if i // 100 == k]
        assert mine == sorted(mine)
    assert len(sink.batches) < len(items)  # commits were shared
    assert w.committed == len(items)


def test_a_lone_caller_is_not_kept_waiting_for_company():
    sink = Sink()
    w = writer(sink, window_s=20.0)  # a window no test could sit out
    started = time.monotonic()
    for i in range(3):
        w.wait(w.submit(i))
    assert time.monotonic() - started < 10.0
    assert sink.batches == [[0], [1], [2]]


def test_a_failed_commit_fails_its_callers_and_the_log_refuses_until_a_probe_succeeds():
    sink = Sink()
    w = writer(sink)
    w.wait(w.submit(1))
    sink.broken = "disk full"
    fut = w.submit(2)
    with pytest.raises(AuditError, match="could not write 1: disk full"):
        w.wait(fut)
    assert w.failure is not None
    deadline = time.monotonic() + WAIT
    while sink.probes < 2:  # the writer keeps probing while broken
        assert time.monotonic() < deadline, "the writer did not probe"
        time.sleep(0.01)
    assert w.failure is not None
    sink.broken = None
    while w.failure is not None:
        assert time.monotonic() < deadline, "the log did not recover"
        time.sleep(0.01)
    w.wait(w.submit(3))
    assert [i for b in sink.batches for i in b] == [1, 3]  # the failed item was not written


def test_a_commit_that_takes_too_long_is_an_audit_error():
    sink = Sink(delay=1.0)
    w = GroupCommit(sink.commit, sink.probe, window_s=0.001, timeout_s=0.05,
                    describe=lambda e, n: str(e))  # fmt: skip
    with pytest.raises(AuditError, match="did not commit within"):
        w.wait(w.submit(1))


def test_the_server_awaits_commits_without_blocking_its_loop():
    sink = Sink(delay=0.05)
    w = writer(sink)

    async def request(i: int) -> float:
        commits = Commits(asyncio.get_running_loop())
        assert commits.add(w.submit(i))
        began = time.perf_counter()
        await commits.settle()
        return time.perf_counter() - began

    async def main():
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.001)

        tick = asyncio.create_task(ticker())
        waited = await asyncio.wait_for(asyncio.gather(*(request(i) for i in range(20))), WAIT)
        tick.cancel()
        return waited, ticks

    waited, ticks = asyncio.run(main())
    assert sorted(i for b in sink.batches for i in b) == list(range(20))
    assert ticks > 5  # the loop kept running while requests waited for the commit
    assert max(waited) >= 0.04  # ...and they did wait for it


def test_on_the_loop_requests_of_one_iteration_share_one_commit_and_no_thread_runs():
    sink = Sink()
    threads: list[int] = []
    sink_commit = sink.commit
    sink.commit = lambda items: (threads.append(threading.get_ident()), sink_commit(items))
    w = writer(sink, inline=True)

    async def request(i: int) -> None:
        loop = asyncio.get_running_loop()
        commits = Commits(loop)
        assert commits.add(w.submit(i, loop))
        await commits.settle()

    async def main() -> int:
        await asyncio.wait_for(asyncio.gather(*(request(i) for i in range(20))), WAIT)
        return threading.get_ident()

    loop_thread = asyncio.run(main())
    assert sink.batches == [list(range(20))]  # every request of the iteration, one commit
    assert threads == [loop_thread]
    assert not w._running  # no writer thread was started


def test_on_the_loop_a_failed_commit_fails_the_requests_then_the_thread_probes_it_back():
    sink = Sink()
    w = writer(sink, inline=True)
    sink.broken = "locked"

    async def request(i: int, raise_errors: bool = True) -> None:
        loop = asyncio.get_running_loop()
        commits = Commits(loop)
        commits.add(w.submit(i, loop))
        await asyncio.wait_for(commits.settle(raise_errors=raise_errors), WAIT)

    async def main() -> None:
        with pytest.raises(AuditError, match="could not write 1: locked"):
            await request(1)
        assert w.failure is not None
        sink.broken = None
        deadline = time.monotonic() + WAIT
        while w.failure is not None:  # the writer thread probes until it can write
            assert time.monotonic() < deadline, "the log did not recover"
            await asyncio.sleep(0.01)
        await request(2)

    asyncio.run(main())
    assert sink.probes >= 1
    assert [i for b in sink.batches for i in b] == [2]


def test_a_thread_item_joining_a_loop_batch_is_committed_with_it_once():
    sink = Sink()
    w = writer(sink, inline=True)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        commits = Commits(loop)
        commits.add(w.submit(1, loop))  # the loop's flush is scheduled, not run yet
        other = threading.Thread(target=lambda: w.wait(w.submit(2)))
        other.start()  # wakes the writer thread: whichever takes the batch writes it
        await asyncio.wait_for(commits.settle(), WAIT)
        await asyncio.to_thread(other.join, WAIT)
        assert not other.is_alive()

    asyncio.run(main())
    assert sorted(i for b in sink.batches for i in b) == [1, 2]


def test_a_settled_collection_takes_nothing_more_and_failures_reach_the_request():
    sink = Sink()
    w = writer(sink)
    sink.broken = "gone"

    async def main():
        commits = Commits(asyncio.get_running_loop())
        commits.add(w.submit(1))
        with pytest.raises(AuditError, match="gone"):
            await asyncio.wait_for(commits.settle(), WAIT)
        assert not commits.add(w.submit(2))  # a late record: its caller waits itself

    asyncio.run(main())


# -- what a record may hold ------------------------------------------------------------------
secrets = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-",
                  min_size=8, max_size=40)  # fmt: skip


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=30), st.text(alphabet="abcdef0123456789", min_size=4, max_size=16),
       secrets, st.text(max_size=30))  # fmt: skip
def test_a_token_secret_never_reaches_a_record(before, token_id, secret, after):
    assume(secret not in before + after)
    token = f"parity_{token_id}.{secret}"
    entry = make_entry(
        Actor(f"{before}{token}", token_id=token_id),
        "read_online",
        [f"token:{token}"],
        {"keys": 1},
        "ok",
        f"{before} {token} {after}",
    )
    for text in (entry.principal, entry.detail, *entry.resources):
        assert secret not in text.replace(f"parity_{token_id}", "")
    assert entry.token_id == token_id
    assert f"parity_{token_id}" in entry.detail  # the public id stays, for the reader


@pytest.mark.parametrize(
    "text",
    [
        "Authorization: Bearer abc.def-ghi",
        "jwt eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.c2lnbmF0dXJl here",
    ],
)
def test_bearer_credentials_and_jwts_are_redacted(text):
    assert "abc.def-ghi" not in redact(text)
    assert "c2lnbmF0dXJl" not in redact(text)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (dict(action=""), "action must be"),
        (dict(action="x" * 33), "action must be"),
        (dict(outcome="maybe"), "outcome must be one of"),
        (dict(resources="feature_view:a"), "resources must be a list"),
        (dict(resources=[3]), "resource 3 is not text"),
        (dict(counts={"rows": 1.5}), "count 'rows' must be an integer"),
        (dict(counts={"rows": True}), "count 'rows' must be an integer"),
        (dict(counts={"@token": 1}), "count name '@token'"),
    ],
)
def test_a_bad_record_is_refused_naming_the_field(args, message):
    fields = dict(action="apply", resources=[], counts=None, outcome="ok", detail="")
    fields.update(args)
    with pytest.raises(GovernanceError, match=message):
        make_entry(Actor("alice"), **fields)
