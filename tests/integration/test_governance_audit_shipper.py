"""The audit spool's shipper process (``parity.governance.audit_shipper``): the feature
server ships its spool from a child process; the child is gone after the server stops and
after the server is killed; a process reads its own records at once while its child ships;
a child that dies is started again, and past the restarts allowed the spool ships from its
thread; either way every record is in the chain once, in order."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import psutil
import pytest
from tests.integration.test_server import Server, wait_for

from audit_utils import audit_repo
from parity import FeatureStore
from parity.governance import audit_spool
from parity.governance.context import Actor

WAIT = 60.0
READ = {"features": ["driver_stats:conv_rate"], "entities": {"driver_id": [1, 2]}}


def gone(pid: int) -> bool:
    """Whether ``pid`` ended (a zombie nobody reaped counts: it runs nothing)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def shipper_of(pid: int) -> psutil.Process:
    """The shipper child of process ``pid`` (waited for: it starts with the server)."""
    found: list[psutil.Process] = []

    def look() -> bool:
        found[:] = [
            p
            for p in psutil.Process(pid).children()
            if "parity.governance.audit_shipper" in " ".join(p.cmdline())
        ]
        return bool(found)

    wait_for(look, "the server started no shipper process")
    assert len(found) == 1, found
    return found[0]


def probes(store: FeatureStore, principal: str) -> list[int]:
    found = store.governance.audit.records(action="probe", principal=principal, limit=None)
    return [r.counts["i"] for r in reversed(found)]


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = audit_repo(tmp_path / "repo")
    with FeatureStore(root) as store:
        store.apply()
    return root


def test_the_server_ships_from_a_child_that_ends_with_it(repo: Path):
    srv = Server(repo)
    try:
        wait_for(lambda: srv.client.get("/ready").status_code == 200, "never ready")
        child = shipper_of(srv.proc.pid)
        for _ in range(5):
            assert srv.post("/get-online-features", READ).status_code == 200

        def shipped() -> bool:
            with FeatureStore(repo) as store:
                reads = store.governance.audit.records(action="read_online", limit=None)
            return sum(1 for r in reads if r.counts == {"keys": 2, "features": 1}) == 5

        wait_for(shipped, "the child did not ship the server's records")
        assert child.is_running() and not gone(child.pid)
    finally:
        assert srv.stop() == 0
    wait_for(lambda: gone(child.pid), "the shipper outlived the server's shutdown")
    with FeatureStore(repo) as store:
        assert store.governance.audit.verify().ok


def test_a_killed_servers_child_ends_too(repo: Path):
    srv = Server(repo)
    try:
        wait_for(lambda: srv.client.get("/ready").status_code == 200, "never ready")
        child = shipper_of(srv.proc.pid)
        assert srv.post("/get-online-features", READ).status_code == 200
        os.kill(srv.proc.pid, signal.SIGKILL)
        srv.proc.wait(timeout=WAIT)
    finally:
        srv.stop()
    wait_for(lambda: gone(child.pid), "the shipper outlived its killed server")
    with FeatureStore(repo) as store:  # what the server answered is in the chain (or shipped now)
        reads = store.governance.audit.records(action="read_online", limit=None)
        assert store.governance.audit.verify().ok
    assert sum(1 for r in reads if r.counts == {"keys": 2, "features": 1}) == 1


def test_a_process_reads_its_own_records_while_its_child_ships(repo: Path):
    with FeatureStore(repo) as store:
        audit = store.governance.audit
        spool = audit.start_spool(shipper="process", interval_s=0.01)
        assert spool.child is not None and spool.child.alive()
        pid = spool.child.pid
        for i in range(40):
            audit.record(action="probe", counts={"i": i}, actor=Actor("rw"))
            assert probes(store, "rw") == list(range(i + 1))  # at once, each once
        assert audit.verify().ok
    assert pid is not None
    wait_for(lambda: gone(pid), "the shipper outlived close()")


def test_a_dead_child_is_started_again_then_the_thread_ships(repo: Path):
    with FeatureStore(repo) as store:
        audit = store.governance.audit
        spool = audit.start_spool(shipper="process", interval_s=0.02)
        pids = []
        i = 0
        while spool.child is not None:
            assert len(pids) <= audit_spool.RESTARTS, "restarted more often than allowed"
            child = spool.child
            pid = child.pid
            assert pid is not None
            pids.append(pid)
            audit.record(action="probe", counts={"i": i}, actor=Actor("dies"))
            i += 1
            os.kill(pid, signal.SIGKILL)
            wait_for(
                lambda c=child, p=pid: spool.child is None or c.pid not in (p, None),  # type: ignore[misc]
                "the dead shipper was neither restarted nor given up",
            )
        assert len(pids) == audit_spool.RESTARTS + 1
        assert all(gone(p) for p in pids)
        for _ in range(3):  # the thread ships from now on
            audit.record(action="probe", counts={"i": i}, actor=Actor("dies"))
            i += 1
        wait_for(lambda: spool.pending == 0 and not spool._handed, "the thread did not ship")
        assert probes(store, "dies") == list(range(i))
        assert audit.verify().ok
