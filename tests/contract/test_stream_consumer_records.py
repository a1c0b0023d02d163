"""Stream consumers' records in the registry, on every registry backend: what ``parity stream
status`` reads of the runners, how a runner that died reads as lost, and the migration that
adds the table to an existing registry."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
import sqlalchemy as sa
from alembic import command

from migration_utils import at_migration
from parity.definitions import Entity
from parity.registry import Registry
from parity.registry import engine as eng
from parity.registry.jobs import MaterializationJobs, this_owner
from parity.registry.migrate import current_revision, head_revision
from parity.registry.models import materialization_jobs, projects, stream_consumers
from parity.registry.streams import ConsumerRecord, StreamConsumers
from parity.streams.freshness import FreshnessWindow

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def dead_pid() -> int:
    """The pid of a process of this host that has exited (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def record(source: str = "clicks", consumer: str = "c1", **kw) -> ConsumerRecord:
    values = {"owner": this_owner(), "state": "running", "started_at": T0, "heartbeat_at": T0}
    return ConsumerRecord(source=source, consumer=consumer, **{**values, **kw})


def age_heartbeat(registry: Registry, consumer: str, seconds: float) -> None:
    with registry._write("age a heartbeat") as conn:
        conn.execute(
            sa.update(stream_consumers)
            .where(stream_consumers.c.consumer == consumer)
            .values(heartbeat_at=datetime.now(UTC) - timedelta(seconds=seconds))
        )


def reopen(registry: Registry, **kw) -> Registry:
    """The same registry as another process opens it."""
    url = registry.url.render_as_string(hide_password=False)
    return Registry(url, registry.project, schema=registry.schema, **kw)


def test_a_beat_inserts_then_updates_one_row(registry: Registry):
    consumers = StreamConsumers(registry)
    before = datetime.now(UTC)
    consumers.beat(record())
    (first,) = consumers.list()
    assert first == replace(record(), heartbeat_at=first.heartbeat_at)
    assert first.heartbeat_at >= before - timedelta(seconds=1)  # stamped by the beat
    event, append = FreshnessWindow(), FreshnessWindow()
    event.add(np.array([0.5, 1.5, 2.5]), T0.timestamp())
    append.add(np.array([0.01, 0.02, 0.03]), T0.timestamp())
    later = record(
        consumed=120,
        written=100,
        batches=3,
        dead_letters={"decode": 15, "late": 5},
        last_offset="1700000000000-3",
        freshness={"event": event.to_json(), "append": append.to_json()},
        error="online store unreachable: Connection refused",
    )
    consumers.beat(later)
    other = reopen(registry)
    try:
        (got,) = StreamConsumers(other).list()
    finally:
        other.close()
    assert got == replace(later, heartbeat_at=got.heartbeat_at)
    assert got.heartbeat_at >= first.heartbeat_at
    assert FreshnessWindow.from_json(got.freshness["event"]) == event
    consumers.beat(replace(later, error=None))  # a recovered consumer clears its error
    assert [r.error for r in consumers.list()] == [None]
    assert got.to_json()["started_at"] == "2026-12-01T08:00:00Z"


def test_consumers_are_listed_by_source_then_name(registry: Registry):
    consumers = StreamConsumers(registry)
    for source, name in [("views", "b"), ("clicks", "z"), ("views", "a"), ("clicks", "y")]:
        consumers.beat(record(source, name))
    listed = [(r.source, r.consumer) for r in consumers.list()]
    assert listed == [("clicks", "y"), ("clicks", "z"), ("views", "a"), ("views", "b")]
    assert [r.consumer for r in consumers.list(["views"])] == ["a", "b"]
    assert [r.consumer for r in consumers.list(["views", "nope"])] == ["a", "b"]
    assert consumers.list([]) == []
    with pytest.raises(TypeError, match="sources must be a list of names, not 'views'"):
        consumers.list("views")
    # another project of the same database sees none of them
    url = registry.url.render_as_string(hide_password=False)
    other = Registry(url, f"elsewhere_{registry.project}", schema=registry.schema)
    try:
        assert StreamConsumers(other).list() == []
    finally:
        other.close()


def test_freshness_of_several_consumers_merges_per_source(registry: Registry):
    consumers = StreamConsumers(registry)
    windows = []
    for name, latency in [("c1", 0.1), ("c2", 10.0)]:
        window = FreshnessWindow()
        window.add(np.full(10, latency), T0.timestamp())
        windows.append(window)
        consumers.beat(record(consumer=name, freshness={"event": window.to_json()}))
    read = [FreshnessWindow.from_json(r.freshness["event"]) for r in consumers.list(["clicks"])]
    merged = read[0].merge(read[1])
    assert merged == windows[0].merge(windows[1])
    assert merged.count(minutes=5, now_s=T0.timestamp()) == 20


def test_a_running_consumer_without_heartbeat_reads_as_lost(registry: Registry):
    consumers = StreamConsumers(registry, stale_after=30)
    consumers.beat(record(consumer="remote", owner="another-host:1"))
    assert [r.state for r in consumers.list()] == ["running"]
    # "lost" is how a reader sees the row: one that waits less sees it lost sooner
    impatient = StreamConsumers(registry, stale_after=0.05)
    deadline = time.monotonic() + 30
    while [r.state for r in impatient.list()] != ["lost"]:
        assert time.monotonic() < deadline, "never read as lost"
        time.sleep(0.02)
    assert [r.state for r in consumers.list()] == ["running"]
    age_heartbeat(registry, "remote", 31)
    assert [r.state for r in consumers.list()] == ["lost"]
    # it beats again (it was paused, or cut off from the registry): running again
    consumers.beat(record(consumer="remote", owner="another-host:1"))
    assert [r.state for r in consumers.list()] == ["running"]


def test_a_consumer_of_a_dead_process_of_this_host_is_lost_at_once(registry: Registry):
    consumers = StreamConsumers(registry, stale_after=30)
    here = socket.gethostname()
    consumers.beat(record(consumer="dead", owner=f"{here}:{dead_pid()}"))
    consumers.beat(record(consumer="alive", owner=this_owner()))
    consumers.beat(record(consumer="no-pid", owner=f"{here}:worker"))  # not a pid: heartbeat only
    states = {r.consumer: r.state for r in consumers.list()}
    assert states == {"alive": "running", "dead": "lost", "no-pid": "running"}
    stored = _stored_states(registry)
    assert stored == {"alive": "running", "dead": "running", "no-pid": "running"}  # read only


def _stored_states(registry: Registry) -> dict[str, str]:
    with registry._read("read states") as conn:
        rows = conn.execute(
            sa.select(stream_consumers.c.consumer, stream_consumers.c.state).where(
                stream_consumers.c.project == registry.project
            )
        ).all()
    return {r.consumer: r.state for r in rows}


def test_a_stopped_consumer_stays_stopped(registry: Registry):
    consumers = StreamConsumers(registry, stale_after=30)
    consumers.beat(record(consumer="c1", owner=f"{socket.gethostname()}:{dead_pid()}"))
    before = datetime.now(UTC) - timedelta(seconds=1)
    consumers.stop("clicks", "c1")
    (got,) = consumers.list()
    assert got.state == "stopped" and got.stopped_at is not None and got.stopped_at >= before
    age_heartbeat(registry, "c1", 3600)
    assert [r.state for r in consumers.list()] == ["stopped"]  # never lost
    consumers.stop("clicks", "never-beat")  # nothing to stop: no row appears
    consumers.stop("nope", "c1")
    assert [(r.source, r.consumer) for r in consumers.list()] == [("clicks", "c1")]


def test_prune_deletes_old_stopped_and_lost_consumers_only(registry: Registry):
    consumers = StreamConsumers(registry, stale_after=30)
    here = socket.gethostname()
    consumers.beat(record(consumer="stopped-old"))
    consumers.stop("clicks", "stopped-old")
    consumers.beat(record(consumer="stopped-new"))
    consumers.stop("clicks", "stopped-new")
    consumers.beat(record(consumer="remote-stale", owner="another-host:1"))
    consumers.beat(record(consumer="remote-live", owner="another-host:2"))
    consumers.beat(record(consumer="dead", owner=f"{here}:{dead_pid()}"))
    consumers.beat(record(consumer="alive"))
    age_heartbeat(registry, "stopped-old", 7200)
    age_heartbeat(registry, "remote-stale", 7200)
    age_heartbeat(registry, "dead", 7200)
    assert consumers.prune(timedelta(hours=1)) == 3
    left = {r.consumer: r.state for r in consumers.list()}
    assert left == {"stopped-new": "stopped", "remote-live": "running", "alive": "running"}
    # older_than 0: every stopped or lost one; running ones stay however old their start
    assert consumers.prune(timedelta(0)) == 1
    assert sorted(r.consumer for r in consumers.list()) == ["alive", "remote-live"]
    with pytest.raises(ValueError, match="older_than must not be negative"):
        consumers.prune(timedelta(seconds=-1))


def test_bad_records_are_refused_naming_the_field(registry: Registry):
    consumers = StreamConsumers(registry)
    bad = [
        (record(state="lost"), "state must be one of \\['running', 'stopped'\\]"),
        (record(source=""), "source must be text of 1 to 128 characters"),
        (record(consumer="c" * 257), "consumer must be text of 1 to 256 characters"),
        (record(started_at=datetime(2026, 1, 1)), "started_at must be an aware datetime"),
        (record(written=-1), "written must be a count >= 0"),
        (record(consumed=1.5), "consumed must be a count >= 0"),
        (record(dead_letters={"decode": "3"}), "dead_letters must map reasons to counts"),
        (record(last_offset=17), "last_offset must be text or None"),
    ]
    for rec, message in bad:
        with pytest.raises(ValueError, match=message):
            consumers.beat(rec)
    with pytest.raises(TypeError, match="expected a ConsumerRecord, got dict"):
        consumers.beat({"source": "clicks"})  # type: ignore[arg-type]
    assert consumers.list() == []


def test_reading_a_registry_that_does_not_exist_creates_nothing(fresh_registry_target):
    with fresh_registry_target.open(project="p") as reg:
        consumers = StreamConsumers(reg)
        assert consumers.list() == []
        consumers.stop("clicks", "c1")
        assert consumers.prune(timedelta(0)) == 0
        assert not reg.exists()
        consumers.beat(record())  # the first write creates it, project row included
        assert reg.exists() and [r.consumer for r in consumers.list()] == ["c1"]
        reg.apply([Entity("driver")])  # an apply after a beat finds its project row
        assert reg.revision() == 1


@pytest.mark.postgres
def test_beats_do_not_wait_for_an_apply_on_postgresql(postgres_url: str, postgres_schema: str):
    """An apply holds its project row (FOR UPDATE) for its length; the beats, stops and
    reads of consumers that beat before do not wait for it."""
    project = f"proj_beat_{time.monotonic_ns()}"
    with (
        Registry(postgres_url, project, schema=postgres_schema, timeout=2) as reg,
        Registry(postgres_url, project, schema=postgres_schema) as applier,
    ):
        consumers = StreamConsumers(reg)
        consumers.beat(record())
        with applier._write("apply") as conn:
            applier._lock_project(conn)
            started = time.monotonic()
            consumers.beat(record(written=5))  # would fail after lock_timeout (2 s) if it waited
            StreamConsumers(reg).beat(record(written=6))  # a new object: project row checked
            consumers.stop("clicks", "c1")
            assert [(r.written, r.state) for r in consumers.list()] == [(6, "stopped")]
            assert time.monotonic() - started < 2


# -- migration -----------------------------------------------------------------------------


def _revision_and_tables(target) -> tuple[str | None, set[str]]:
    engine = eng.create_engine(eng.parse_url(target.url), schema=target.schema, timeout=30)
    try:
        with engine.connect() as conn:
            tables = set(sa.inspect(conn).get_table_names(schema=target.schema))
            return current_revision(conn, target.schema), tables
    finally:
        engine.dispose()


def test_an_existing_registry_at_0003_is_migrated_to_0004_on_open(fresh_registry_target):
    target = fresh_registry_target
    at_migration(target, "0003")
    revision, tables = _revision_and_tables(target)
    assert revision == "0003" and "parity_materialization_jobs" in tables
    assert "parity_stream_consumers" not in tables
    # what a registry at 0003 holds: a project and a background job
    now = datetime.now(UTC)
    engine = eng.create_engine(eng.parse_url(target.url), schema=target.schema, timeout=30)
    with eng.connect(engine, write=True) as conn:
        conn.execute(
            projects.insert().values(project="p", revision=4, created_at=now, updated_at=now)
        )
        conn.execute(
            materialization_jobs.insert().values(
                id="job1",
                project="p",
                kind="materialize",
                state="queued",
                views=["v"],
                request={},
                progress={},
                error=None,
                owner="another-host:1",
                created_at=now,
                started_at=None,
                finished_at=None,
                heartbeat_at=now,
            )
        )
    engine.dispose()

    with target.open(project="p") as reg:  # opening an existing registry migrates it
        assert _revision_and_tables(target)[0] == head_revision()
        assert reg.revision() == 4
        assert [j.id for j in MaterializationJobs(reg).recent()] == ["job1"]
        consumers = StreamConsumers(reg)
        consumers.beat(record())
        assert [r.consumer for r in consumers.list()] == ["c1"]

    # and back: 0004's downgrade drops only its table
    at_migration(target, "0003", command.downgrade)
    revision, tables = _revision_and_tables(target)
    assert revision == "0003" and "parity_stream_consumers" not in tables
    with target.open(project="p") as reg:
        assert [j.id for j in MaterializationJobs(reg).recent()] == ["job1"]
        assert StreamConsumers(reg).list() == []  # the table is back, empty
