"""The audit log behind ``parity serve``: every answered read and push is in the server's
audit spool before its answer goes out and reaches the chain within the ship interval
(concurrent requests keep one chain); a spool that cannot be written answers 503
``audit_unavailable`` and then refuses until it can; a registry that cannot take records
only delays them; a server killed after answering leaves its spool to the next process."""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from tests.integration.test_server import Server, wait_for

from audit_utils import T0, audit_repo
from parity import FeatureStore
from parity.governance.audit_spool import spool_folder

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
        wait_for(lambda: srv.client.get("/ready").status_code == 200, "never ready")
        yield srv  # warm: its warm-up reads (audited too) are done
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


def head_seq(repo: Path) -> int:
    with FeatureStore(repo) as store:
        head = store.governance.audit.head()
    return 0 if head is None else head[0]


def spooled_lines(repo: Path) -> list[str]:
    """The lines of the repo's spool files (a record's line starts with a digit)."""
    folder = spool_folder(FeatureStore(repo))
    lines = []
    for f in sorted(folder.glob("*.log")):
        with contextlib.suppress(FileNotFoundError):  # shipped meanwhile
            lines += f.read_text().splitlines()
    return lines


def shipped(repo: Path) -> bool:
    """Whether no record waits in a spool file (each is deleted once shipped)."""
    return not any(line[:1].isdigit() for line in spooled_lines(repo))


def settle(repo: Path) -> int:
    """Until everything answered so far is in the chain; its head's number."""
    wait_for(lambda: shipped(repo), "the spool was not shipped")
    return head_seq(repo)


def test_reads_and_pushes_are_in_the_chain_within_the_ship_interval(server: Server, repo: Path):
    before = settle(repo)
    r = server.post("/push", push_body([1, 2], 0.5))
    assert r.status_code == 200, r.text
    wait_for(lambda: head_seq(repo) >= before + 1, "the push's record was not shipped")
    [push] = newest(repo)
    assert (push.action, push.counts["rows"], push.outcome) == ("push", 2, "ok")
    r = server.post("/get-online-features", READ)
    assert r.status_code == 200, r.text
    wait_for(lambda: head_seq(repo) >= before + 2, "the read's record was not shipped")
    [read] = newest(repo)
    assert read.action == "read_online"
    assert read.counts == {"keys": 2, "features": 1}
    assert read.resources == ("feature_view:driver_stats",)


def test_concurrent_requests_all_recorded_in_one_chain(server: Server, repo: Path):
    settle(repo)
    with FeatureStore(repo) as store:
        before = store.governance.audit.head()
    assert before is not None

    def read(_: int) -> int:
        with httpx.Client(base_url=server.url, timeout=WAIT) as client:
            return client.post("/get-online-features", json=READ).status_code

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(read, range(80)))
    assert statuses == [200] * 80
    wait_for(lambda: head_seq(repo) - before[0] >= 80, "not every read was shipped")
    with FeatureStore(repo) as store:
        after = store.governance.audit.head()
        verdict = store.governance.audit.verify()
    assert after is not None and after[0] - before[0] == 80
    assert verdict.ok, verdict.problem


def set_file_limit(pid: int, size: int) -> None:
    """Files the process ``pid`` writes may not grow past ``size`` bytes (EFBIG, a real
    failed write; Python ignores SIGXFSZ)."""
    hard = resource.prlimit(pid, resource.RLIMIT_FSIZE)[1]
    resource.prlimit(pid, resource.RLIMIT_FSIZE, (size, hard))


def test_an_unwritable_spool_answers_503_and_refuses_until_it_recovers(server: Server, repo: Path):
    assert server.post("/push", push_body([1], 0.5)).status_code == 200
    done = settle(repo)
    set_file_limit(server.proc.pid, 0)  # no file of the server may grow: its spool included
    try:
        r = server.post("/get-online-features", READ)
        assert r.status_code == 503, r.text
        assert r.json()["error"]["code"] == "audit_unavailable"
        r = server.post("/push", push_body([1], 0.75))  # refused up front: nothing written
        assert r.status_code == 503
        assert r.json()["error"]["code"] == "audit_unavailable"
        assert server.client.get("/health").status_code == 200
    finally:
        set_file_limit(server.proc.pid, resource.RLIM_INFINITY)
    deadline = time.monotonic() + WAIT
    while (r := server.post("/get-online-features", READ)).status_code == 503:
        assert time.monotonic() < deadline, "the server's audit spool did not recover"
        time.sleep(0.05)
    assert r.status_code == 200
    assert r.json()["results"][1]["values"][0] == 0.5  # the refused push wrote nothing
    wait_for(lambda: head_seq(repo) >= done + 1, "the read after recovery was not shipped")
    with FeatureStore(repo) as store:
        found = store.governance.audit.records(limit=None)
        verdict = store.governance.audit.verify()
    assert verdict.ok, verdict.problem
    after = [r for r in found if r.seq > done]
    assert [r.action for r in after] == ["read_online"]  # the refused ones left nothing


def test_a_registry_that_cannot_take_records_only_delays_them(server: Server, repo: Path):
    settle(repo)
    engine = sa.create_engine(f"sqlite:///{repo / 'data' / 'registry.db'}")
    with engine.begin() as conn:
        before = conn.exec_driver_sql("SELECT max(seq) FROM parity_audit").scalar() or 0
        conn.exec_driver_sql(
            "CREATE TRIGGER audit_fail BEFORE INSERT ON parity_audit "
            "BEGIN SELECT RAISE(ABORT, 'disk full (test)'); END"
        )
    try:
        for conv in (0.5, 0.25):
            assert server.post("/push", push_body([3], conv)).status_code == 200
        r = server.post("/get-online-features", READ)
        assert r.status_code == 200, r.text  # answered: its record waits in the spool
        wait_for(lambda: "cannot take records" in server.output(), "no warning about the registry")
        assert sum(1 for line in spooled_lines(repo) if line[:1].isdigit()) >= 3
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP TRIGGER audit_fail")
        engine.dispose()
    wait_for(lambda: head_seq(repo) >= before + 3, "the spooled records were not shipped")
    with FeatureStore(repo) as store:
        found = [r for r in store.governance.audit.records(limit=None) if r.seq > before]
        verdict = store.governance.audit.verify()
    assert verdict.ok, verdict.problem
    assert [r.action for r in reversed(found)][:3] == ["push", "push", "read_online"]


def test_a_killed_server_leaves_its_spool_to_the_next_process(tmp_path: Path):
    root = audit_repo(tmp_path / "repo")
    with FeatureStore(root) as store:
        store.apply()
    engine = sa.create_engine(f"sqlite:///{root / 'data' / 'registry.db'}")
    srv = Server(root)
    try:
        wait_for(lambda: srv.client.get("/ready").status_code == 200, "never ready")
        settle(root)
        with engine.begin() as conn:  # nothing can be shipped: it all stays in the spool
            conn.exec_driver_sql(
                "CREATE TRIGGER audit_fail BEFORE INSERT ON parity_audit "
                "BEGIN SELECT RAISE(ABORT, 'disk full (test)'); END"
            )
        statuses = [srv.post("/get-online-features", READ).status_code for _ in range(5)]
        os.kill(srv.proc.pid, signal.SIGKILL)  # right after the answers
        srv.proc.wait(timeout=WAIT)
    finally:
        srv.stop()
    assert statuses == [200] * 5
    assert sum(1 for line in spooled_lines(root) if line[:1].isdigit()) == 5
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TRIGGER audit_fail")
    engine.dispose()
    with FeatureStore(root) as store:  # reading ships what the killed server left
        reads = store.governance.audit.records(action="read_online", limit=None)
        verdict = store.governance.audit.verify()
    assert verdict.ok, verdict.problem
    assert sum(1 for r in reads if r.counts == {"keys": 2, "features": 1}) == 5  # each once
    assert verdict.records == verdict.head_seq
    assert shipped(root)
