"""Usage counting through the read hooks, on real read plans and a real registry (SQLite in
memory or in a file): what a read adds per feature, view, service and consumer; nothing
written per read; uncounted reads; counting that fails never fails a read; counts added,
never overwritten; the writer thread's interval; close; a failed write kept and retried;
threads at once. (Failed reads: tests/integration/test_discovery.py, on a real store.)"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from parity.discovery import usage as usage_module
from parity.discovery.records import UsageRecords
from parity.discovery.usage import UsageHooks, uncounted
from parity.hooks import HookSet
from parity.query.plan import plan_features
from parity.registry import Registry
from parity.registry.models import usage

from .catalog import catalog

CAT = catalog()
T0 = 1_700_000_000_000_000  # µs


@pytest.fixture
def registry() -> Iterator[Registry]:
    reg = Registry("sqlite://", "disco")
    yield reg
    reg.close()


class Clock:
    """The store's clock as the hook reads it: µs since the epoch, set by the test."""

    def __init__(self) -> None:
        self.us = T0

    def __call__(self) -> int:
        return self.us


CLOCK = Clock()


def hook_for(registry: Registry, principal: str = "alice", flush_seconds: float = 3600):
    return UsageHooks(lambda: registry, lambda: principal, CLOCK, flush_seconds=flush_seconds)


PLANS: dict[str, Any] = {}


def planned(refs: str | list[str]) -> Any:
    """The plan of ``refs``, the same object each time (as the store's planner caches it)."""
    key = str(refs)
    if key not in PLANS:
        PLANS[key] = plan_features(refs, CAT)
    return PLANS[key]


def read(hooks: HookSet | UsageHooks, refs: str | list[str], rows: int = 1, *, at: int = T0):
    """What ``OnlineReads`` tells the hooks of a read answered for ``rows`` entity rows."""
    hooks = hooks if isinstance(hooks, HookSet) else HookSet([hooks])
    CLOCK.us = at
    hooks.shape(
        "shape_online_response",
        "response",
        object(),
        project="disco",
        plan=planned(refs),
        entities={"driver_id": list(range(rows))},
    )


def retrieve(hooks: HookSet | UsageHooks, refs: str | list[str], rows: int) -> None:
    """What ``HistoricalReads`` tells the hooks of a result of ``rows`` rows."""
    import pyarrow as pa

    hooks = hooks if isinstance(hooks, HookSet) else HookSet([hooks])
    table = pa.table({"x": list(range(rows))})
    assert (
        hooks.shape("shape_historical", "table", table, project="disco", plan=planned(refs))
        is table
    )


def stored(registry: Registry) -> dict[tuple[str, str, str, str], tuple[int, ...]]:
    import sqlalchemy as sa

    with registry._read("test") as conn:
        rows = conn.execute(sa.select(usage)).all()
    return {
        (r.kind, r.name, r.feature, r.consumer): (
            r.reads_online,
            r.reads_offline,
            r.keys_online,
            r.rows_offline,
        )
        for r in rows
    }


def test_a_read_counts_each_feature_its_view_and_a_named_service(registry: Registry) -> None:
    hook = hook_for(registry)
    hooks = HookSet([hook])
    read(hooks, ["driver_stats:conv_rate", "driver_stats:acc_rate"], rows=3)
    read(hooks, ["driver_stats:conv_rate", "driver_stats:acc_rate"], rows=2)
    read(hooks, "ranking_service", rows=4)
    assert hook.flush() > 0
    got = stored(registry)
    assert got[("feature_view", "driver_stats", "", "alice")] == (2, 0, 5, 0)
    assert got[("feature_view", "driver_stats", "conv_rate", "alice")] == (2, 0, 5, 0)
    assert got[("feature_view", "driver_stats", "acc_rate", "alice")] == (2, 0, 5, 0)
    svc = "service:ranking_service"
    assert got[("feature_view", "driver_stats", "", svc)] == (1, 0, 4, 0)
    assert got[("feature_view", "driver_stats", "avg_daily_trips", svc)] == (1, 0, 4, 0)
    assert got[("on_demand_feature_view", "conv_boost", "boosted_conv", svc)] == (1, 0, 4, 0)
    assert got[("feature_service", "ranking_service", "", "alice")] == (1, 0, 4, 0)
    assert ("feature_view", "driver_stats", "acc_rate", svc) not in got  # not selected
    assert len(got) == 9


def test_historical_reads_count_offline_rows(registry: Registry) -> None:
    hook = hook_for(registry, principal="trainer")
    for rows in (100, 250):
        retrieve(hook, ["payment_risk:chargeback_count"], rows)
    hook.flush()
    got = stored(registry)
    assert got[("feature_view", "payment_risk", "chargeback_count", "trainer")] == (0, 2, 0, 350)
    assert got[("feature_view", "payment_risk", "", "trainer")] == (0, 2, 0, 350)


def test_the_actor_of_the_read_is_its_consumer(registry: Registry) -> None:
    from parity.governance.context import Actor, acting_as

    hook = hook_for(registry, principal="the-store")
    with acting_as(Actor("svc-bot", via="token")):
        read(hook, ["driver_stats:conv_rate"])
    read(hook, ["driver_stats:conv_rate"])
    hook.flush()
    who = {k[3] for k in stored(registry) if k[2] == "conv_rate"}
    assert who == {"svc-bot", "the-store"}


def test_reads_touch_memory_only_until_a_write(registry: Registry) -> None:
    hook = hook_for(registry)
    hooks = HookSet([hook])
    for _ in range(1000):
        read(hooks, ["driver_stats:conv_rate"])
    assert hook.writes == 0 and stored(registry) == {}
    assert hook.pending() == 1  # one entry per plan and principal, however many reads
    hook.flush()
    assert hook.writes == 1 and hook.pending() == 0
    assert stored(registry)[("feature_view", "driver_stats", "conv_rate", "alice")][0] == 1000
    assert hook.flush() == 0 and hook.writes == 1  # nothing new: no write


def test_uncounted_reads_are_not_counted(registry: Registry) -> None:
    hook = hook_for(registry)
    with uncounted():
        read(hook, ["driver_stats:conv_rate"])
        retrieve(hook, ["driver_stats:conv_rate"], 10)
        t = threading.Thread(target=read, args=(hook, ["driver_stats:conv_rate"]))
        t.start()
        t.join()  # another thread: its own context, so counted
    hook.flush()
    assert stored(registry)[("feature_view", "driver_stats", "conv_rate", "alice")] == (1, 0, 1, 0)


def test_counting_never_fails_a_read(registry: Registry) -> None:
    def broken() -> int:
        raise RuntimeError("no clock")

    hook = UsageHooks(lambda: registry, lambda: "alice", broken, flush_seconds=3600)
    read(hook, ["driver_stats:conv_rate"])  # logged, not raised
    assert hook.pending() == 0


def test_writes_add_to_what_is_stored_with_first_and_last_times(registry: Registry) -> None:
    """A plan's reads are stamped when it is first held and when they are written."""
    one, two = hook_for(registry, "alice"), hook_for(registry, "alice")  # two processes
    read(one, ["churn_signals:days_since_order"], rows=2, at=T0 + 1)
    read(one, ["churn_signals:days_since_order"], rows=2, at=T0 + 4)
    CLOCK.us = T0 + 5
    one.flush()
    read(two, ["churn_signals:days_since_order"], rows=3, at=T0 + 9)
    two.flush()
    read(one, ["churn_signals:days_since_order"], rows=1, at=T0 + 3)  # an older clock
    one.flush()
    report = UsageRecords(registry).report("feature_view", "churn_signals")
    assert (report.reads_online, report.keys_online) == (4, 8)
    assert report.first_read_at is not None and report.last_read_at is not None
    assert report.first_read_at.timestamp() * 1e6 == pytest.approx(T0 + 1)
    assert report.last_read_at.timestamp() * 1e6 == pytest.approx(T0 + 9)
    assert [(f.feature, f.reads_online) for f in report.features] == [("days_since_order", 4)]


def test_the_report_orders_consumers_by_reads(registry: Registry) -> None:
    for who, n in (("bob", 1), ("carol", 3)):
        hook = hook_for(registry, who)
        for _ in range(n):
            read(HookSet([hook]), ["driver_stats:conv_rate"])
        hook.flush()
    hook = hook_for(registry, "alice")
    read(HookSet([hook]), "ranking_service")
    hook.flush()
    report = UsageRecords(registry).report("feature_view", "driver_stats")
    assert [(c.consumer, c.reads) for c in report.consumers] == [
        ("carol", 3),
        ("bob", 1),
        ("service:ranking_service", 1),
    ]
    assert report.top_consumers(2) == report.consumers[:2]
    assert report.to_json()["consumers"][0]["consumer"] == "carol"
    svc = UsageRecords(registry).report("feature_service", "ranking_service")
    assert [c.consumer for c in svc.consumers] == ["alice"] and svc.features == ()
    never = UsageRecords(registry).report("feature_view", "basket_stats")
    assert never.last_read_at is None and never.reads == 0


def test_the_writer_thread_writes_every_interval_and_close_writes_the_rest(
    registry: Registry,
) -> None:
    hook = hook_for(registry, flush_seconds=0.05)
    hooks = HookSet([hook])
    read(hooks, ["driver_stats:conv_rate"])  # the first read starts the thread
    deadline = time.monotonic() + 30
    while hook.writes == 0:
        assert time.monotonic() < deadline, "the writer thread never wrote"
        time.sleep(0.01)
    assert stored(registry)[("feature_view", "driver_stats", "conv_rate", "alice")][0] == 1
    read(hooks, ["driver_stats:conv_rate"])
    hook.close()
    assert stored(registry)[("feature_view", "driver_stats", "conv_rate", "alice")][0] == 2
    assert hook._thread is not None and not hook._thread.is_alive()


def test_a_failed_write_is_kept_and_written_once_later(tmp_path: Path) -> None:
    path = tmp_path / "registry.db"
    reg = Registry(f"sqlite:///{path}", "disco", timeout=0.2)
    reg._create()
    hook = hook_for(reg)
    read(HookSet([hook]), ["driver_stats:conv_rate"], rows=2)
    blocker = sqlite3.connect(path, timeout=0)
    blocker.execute("BEGIN EXCLUSIVE")  # another writer holds the database
    try:
        assert hook.flush() == 0 and hook.writes == 0  # logged, kept
    finally:
        blocker.rollback()
        blocker.close()
    read(HookSet([hook]), ["driver_stats:conv_rate"], rows=1)
    assert hook.flush() > 0
    assert stored(reg)[("feature_view", "driver_stats", "conv_rate", "alice")] == (2, 0, 3, 0)
    reg.close()


def test_reads_from_many_threads_are_all_counted(registry: Registry) -> None:
    hook = hook_for(registry)
    plan = planned(["driver_stats:conv_rate"])
    per_thread = 2000

    def work() -> None:
        for _ in range(per_thread):
            hook.shape_online_response(project="d", plan=plan, entities={"k": [1]}, response=None)

    flusher_done = threading.Event()

    def flusher() -> None:
        while not flusher_done.is_set():
            hook.flush()

    threads = [threading.Thread(target=work) for _ in range(4)]
    side = threading.Thread(target=flusher)
    side.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    flusher_done.set()
    side.join()
    hook.flush()
    got = stored(registry)[("feature_view", "driver_stats", "conv_rate", "alice")]
    assert got == (4 * per_thread, 0, 4 * per_thread, 0)


def test_plans_not_cached_are_merged_and_wake_the_writer_early(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(usage_module, "MAX_PENDING", 5)
    hook = hook_for(registry)
    for _ in range(20):  # a new plan each time: one entry each, until the writer wakes
        plan = plan_features(["churn_signals:days_since_order"], CAT)
        hook.shape_online_response(project="disco", plan=plan, entities={"k": [1]}, response=None)
    deadline = time.monotonic() + 30
    while hook.writes == 0:
        assert time.monotonic() < deadline, "the writer was not woken"
        time.sleep(0.01)
    hook.close()
    got = stored(registry)
    assert got[("feature_view", "churn_signals", "days_since_order", "alice")][0] == 20
    assert len(got) == 2  # the feature and the view, merged across the plans
