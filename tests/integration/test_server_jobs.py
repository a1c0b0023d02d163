"""Background materializations over HTTP with ``parity serve --workers 2``: the job a POST
started is answered by whichever worker a GET reaches, a busy view is 409 unless forced,
and a job whose worker is killed ends as failed instead of running forever."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pytest
from tests.integration.test_server import Server, wait_for

from parity import FeatureStore
from repo_utils import write_parquet, write_repo

KEYS = 300_000
"""Entities of the large view: enough that materializing it takes a few seconds."""
NOW = datetime.now(UTC).replace(microsecond=0)

DEFS = """
from datetime import timedelta
from parity import Entity, FeatureView, Field, FileSource, Float64, Int64

driver = Entity(name="driver", join_keys=["driver_id"], dtype=Int64)
small = FeatureView(
    name="small", entities=[driver], ttl=timedelta(days=1),
    schema=[Field(name="rate", dtype=Float64)],
    source=FileSource(name="small_src", path="data/small.parquet", timestamp_field="ts"),
)
large = FeatureView(
    name="large", entities=[driver], ttl=timedelta(days=1),
    schema=[Field(name="rate", dtype=Float64)],
    source=FileSource(name="large_src", path="data/large.parquet", timestamp_field="ts"),
)
"""


@pytest.fixture(scope="module")
def repo(tmp_path_factory: Any) -> Path:
    root = write_repo(tmp_path_factory.mktemp("jobs") / "repo", {"features.py": DEFS})
    when = pa.array([NOW - timedelta(hours=1)], pa.timestamp("us", tz="UTC"))
    write_parquet(
        root / "data/small.parquet",
        {"driver_id": [1, 2, 3], "ts": pa.concat_arrays([when] * 3), "rate": [0.5, 1.5, 2.5]},
    )
    n = KEYS
    write_parquet(
        root / "data/large.parquet",
        pa.table(
            {
                "driver_id": pa.array(range(n), pa.int64()),
                "ts": pa.concat_arrays([when] * n),
                "rate": pa.array([i / 4 for i in range(n)], pa.float64()),
            }
        ),
    )
    with FeatureStore(root) as store:
        store.apply()
    return root


@pytest.fixture(scope="module")
def server(repo: Path) -> Iterator[Server]:
    srv = Server(repo, "--workers", "2")
    yield srv
    assert srv.stop() == 0, srv.output()


def job_of(server: Server, job_id: str) -> dict[str, Any]:
    """The job as a fresh connection (any worker) answers it."""
    with httpx.Client(base_url=server.url, timeout=30) as client:
        r = client.get(f"/materializations/{job_id}")
    assert r.status_code == 200, r.text
    return r.json()


def start(server: Server, path: str, body: dict[str, Any], query: str = "?async=true") -> Any:
    return server.post(path + query, body)


def test_an_async_job_is_seen_by_every_worker_until_it_succeeds(server, repo):
    r = start(server, "/materialize", {"disable_event_timestamp": True, "feature_views": ["small"]})
    assert r.status_code == 202, r.text
    job_id = r.json()["id"]
    seen = []

    def finished() -> bool:
        seen.append(job_of(server, job_id))
        return seen[-1]["state"] in ("succeeded", "failed")

    wait_for(finished, f"job {job_id} to end", server.output)
    job = seen[-1]
    assert job["state"] == "succeeded", job
    assert {j["id"] for j in seen} == {job_id} and job["feature_views"] == ["small"]
    assert job["views"][0]["rows"] == 3 and job["error"] is None
    with FeatureStore(repo) as store:
        got = store.get_online_features(["small:rate"], entities={"driver_id": [1, 2, 3]})
    assert got.to_dict()["rate"] == [0.5, 1.5, 2.5]


def test_a_busy_view_is_409_unless_forced_and_a_killed_worker_fails_its_job(server):
    r = start(server, "/materialize-incremental", {"end_date": "now", "feature_views": ["large"]})
    assert r.status_code == 202, r.text
    job_id = r.json()["id"]
    busy = start(server, "/materialize", {"disable_event_timestamp": True})
    assert busy.status_code == 409, busy.text
    err = busy.json()["error"]
    assert err["code"] == "materialization_running" and "large" in err["message"]
    assert err["jobs"] == [job_id] and err["feature_views"] == ["large"]
    forced = start(server, "/materialize", {"disable_event_timestamp": True}, "?async=1&force=1")
    assert forced.status_code == 202, forced.text

    job = job_of(server, job_id)
    assert job["state"] in ("queued", "running"), f"ended before it could be stopped: {job}"
    pid = int(job["owner"].rpartition(":")[2])
    os.kill(pid, signal.SIGKILL)  # the worker running it dies mid-job

    wait_for(
        lambda: job_of(server, job_id)["state"] == "failed", "the lost job to fail", server.output
    )
    job = job_of(server, job_id)
    assert job["error"]["code"] == "worker_lost" and str(pid) in job["error"]["message"]
    listed = server.client.get("/materializations").json()["materializations"]
    assert job_id in [j["id"] for j in listed]


def test_bad_requests(server):
    r = start(server, "/materialize", {"disable_event_timestamp": True}, "?async=maybe")
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_request"
    r = start(server, "/materialize", {"start_ts": "2024-01-02", "end_ts": "2024-01-01"})
    assert r.status_code == 400 and "before start" in r.json()["error"]["message"]
    r = start(server, "/materialize", {"disable_event_timestamp": True, "feature_views": ["x"]})
    assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_feature_view"
    r = server.client.get("/materializations/nope")
    assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_materialization"
