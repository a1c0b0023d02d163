"""The audit log behind ``parity serve``: every answered read and push is committed to the
log before its answer goes out (concurrent requests share commits and keep one chain), and a
log that cannot be written answers 503 ``audit_unavailable``, then refuses until it can."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from tests.integration.test_server import Server

from audit_utils import T0, audit_repo
from parity import FeatureStore

WAIT = 60.0
READ = {"features": ["driver_stats:conv_rate"], "entities": {"driver_id": [1, 2]}}


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = audit_repo(tmp_path_factory.mktemp("audit_server") / "repo")
    with FeatureStore(root) as store:
        store.apply()
    return root


@pytest.fixture(scope="module")
def server(repo: Path) -> Iterator[Server]:
    srv = Server(repo)
    try:
        yield srv
    finally:
        srv.stop()


def push_body(ids: list[int], conv: float) -> dict:
    return {
        "push_source_name": "driver_push",
        "df": {
            "driver_id": ids,
            "event_timestamp": [T0.isoformat()] * len(ids),
            "conv_rate": [conv] * len(ids),
            "trips": list(range(len(ids))),
            "city": ["Oslo"] * len(ids),
        },
        "to": "online",
    }


def newest(repo: Path, n: int = 1):
    with FeatureStore(repo) as store:
        return store.governance.audit.records(limit=n)


def test_reads_and_pushes_are_committed_before_their_answers(server: Server, repo: Path):
    r = server.post("/push", push_body([1, 2], 0.5))
    assert r.status_code == 200, r.text
    [push] = newest(repo)  # read right after the answer: already committed
    assert (push.action, push.counts["rows"], push.outcome) == ("push", 2, "ok")
    r = server.post("/get-online-features", READ)
    assert r.status_code == 200, r.text
    [read] = newest(repo)
    assert read.action == "read_online"
    assert read.counts == {"keys": 2, "features": 1}
    assert read.resources == ("feature_view:driver_stats",)


def test_concurrent_requests_all_recorded_in_one_chain(server: Server, repo: Path):
    with FeatureStore(repo) as store:
        before = store.governance.audit.head()
    assert before is not None

    def read(_: int) -> int:
        with httpx.Client(base_url=server.url, timeout=WAIT) as client:
            return client.post("/get-online-features", json=READ).status_code

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(read, range(80)))
    assert statuses == [200] * 80
    with FeatureStore(repo) as store:
        after = store.governance.audit.head()
        verdict = store.governance.audit.verify()
    assert after is not None and after[0] - before[0] == 80
    assert verdict.ok, verdict.problem


def test_an_unwritable_log_answers_503_and_refuses_until_it_recovers(server: Server, repo: Path):
    assert server.post("/push", push_body([1], 0.5)).status_code == 200
    engine = sa.create_engine(f"sqlite:///{repo / 'data' / 'registry.db'}")
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TRIGGER audit_fail BEFORE INSERT ON parity_audit "
            "BEGIN SELECT RAISE(ABORT, 'disk full (test)'); END"
        )
    try:
        r = server.post("/get-online-features", READ)
        assert r.status_code == 503, r.text
        assert r.json()["error"]["code"] == "audit_unavailable"
        r = server.post("/push", push_body([1], 0.75))  # refused up front: nothing written
        assert r.status_code == 503
        assert r.json()["error"]["code"] == "audit_unavailable"
        assert server.client.get("/health").status_code == 200
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP TRIGGER audit_fail")
        engine.dispose()
    deadline = time.monotonic() + WAIT
    while (r := server.post("/get-online-features", READ)).status_code == 503:
        assert time.monotonic() < deadline, "the server's audit log did not recover"
        time.sleep(0.05)
    assert r.status_code == 200
    assert r.json()["results"][1]["values"][0] == 0.5  # the refused push wrote nothing
