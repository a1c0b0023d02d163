"""Background materialization jobs in the registry, on every registry backend: what every
server worker reads, how a busy view is refused, and how a job whose worker died ends."""

from __future__ import annotations

import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from parity.errors import ObjectNotFoundError
from parity.registry import Registry
from parity.registry.jobs import JobConflictError, MaterializationJobs, this_owner
from parity.registry.models import materialization_jobs


def dead_pid() -> int:
    """The pid of a process of this host that has exited (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def age_heartbeat(registry: Registry, job_id: str, seconds: float) -> None:
    with registry._write("age a heartbeat") as conn:
        conn.execute(
            sa.update(materialization_jobs)
            .where(materialization_jobs.c.id == job_id)
            .values(heartbeat_at=datetime.now(UTC) - timedelta(seconds=seconds))
        )


def test_a_job_runs_through_its_states(registry: Registry):
    jobs = MaterializationJobs(registry)
    job = jobs.create("materialize", ["a", "b"], {"end_ts": "2024-01-01T00:00:00Z"}, this_owner())
    assert job.state == "queued" and job.views == ("a", "b") and job.error is None
    jobs.start(job.id)
    assert jobs.get(job.id).state == "running"
    jobs.progress(job.id, {"a": {"state": "succeeded", "rows": 3}})
    got = jobs.get(job.id).to_json()
    assert got["views"] == [
        {"feature_view": "a", "state": "succeeded", "rows": 3},
        {"feature_view": "b", "state": "pending"},
    ]
    assert got["rows"] == 3
    jobs.finish(job.id, "failed", error={"code": "online_store_error", "message": "down"})
    done = jobs.get(job.id)
    assert done.state == "failed" and done.error == {
        "code": "online_store_error",
        "message": "down",
    }
    assert done.finished_at is not None and done.started_at is not None
    # another process's view of the same registry sees the same job
    other = Registry(registry.url.render_as_string(hide_password=False), registry.project,
                     schema=registry.schema)  # fmt: skip
    try:
        assert MaterializationJobs(other).get(job.id) == done
    finally:
        other.close()


def test_a_busy_view_is_refused_unless_forced(registry: Registry):
    jobs = MaterializationJobs(registry)
    first = jobs.create("materialize", ["a", "b"], {}, this_owner())
    with pytest.raises(JobConflictError) as caught:
        jobs.create("materialize_incremental", ["b", "c"], {}, this_owner())
    assert caught.value.views == ["b"] and caught.value.jobs == [first.id]
    assert caught.value.http_status == 409
    other = jobs.create("materialize", ["c"], {}, this_owner())  # no shared view: fine
    forced = jobs.create("materialize", ["b"], {}, this_owner(), force=True)
    jobs.finish(first.id, "succeeded")
    again = jobs.create("materialize", ["a"], {}, this_owner())  # finished: no longer busy
    assert [j.id for j in jobs.recent(10)] == [again.id, forced.id, other.id, first.id]


def test_a_job_whose_worker_died_reads_as_failed(registry: Registry):
    jobs = MaterializationJobs(registry, stale_after=30)
    here = socket.gethostname()
    dead = jobs.create("materialize", ["a"], {}, f"{here}:{dead_pid()}")
    jobs.start(dead.id)
    got = jobs.get(dead.id)
    assert got.state == "failed" and got.error is not None
    assert got.error["code"] == "worker_lost" and f"{here}:" in got.error["message"]
    # elsewhere: only the heartbeat tells
    remote = jobs.create("materialize", ["b"], {}, "another-host:1")
    assert jobs.get(remote.id).state == "queued"
    age_heartbeat(registry, remote.id, 29)
    assert jobs.get(remote.id).state == "queued"
    age_heartbeat(registry, remote.id, 31)
    assert [j.state for j in jobs.recent(10)] == ["failed", "failed"]
    # a view of a lost job is free again
    assert jobs.create("materialize", ["a", "b"], {}, this_owner()).state == "queued"


def test_a_live_heartbeat_keeps_a_job_alive(registry: Registry):
    jobs = MaterializationJobs(registry, stale_after=30)
    job = jobs.create("materialize", ["a"], {}, "another-host:1")
    age_heartbeat(registry, job.id, 29)
    beat = datetime.now(UTC)
    jobs.heartbeat([job.id])
    got = jobs.get(job.id)
    assert got.state == "queued" and got.heartbeat_at >= beat - timedelta(seconds=1)
    jobs.finish(job.id, "succeeded")
    jobs.heartbeat([job.id])  # a finished job's heart does not matter
    assert jobs.get(job.id).state == "succeeded"


def test_an_unknown_job_is_not_found(registry: Registry):
    with pytest.raises(ObjectNotFoundError, match="materialization 'nope' not found"):
        MaterializationJobs(registry).get("nope")
