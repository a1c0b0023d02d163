"""The audit spool (``parity.governance.audit_spool``) through a FeatureStore, on every
registry backend: what was recorded is in the chain after ``close``; a process killed after
recording leaves its spool to the next process, which ships it exactly once, in order, also
when it died in the middle of shipping; a spool that cannot be written fails the operation
and leaves nothing half-written; a process reads its own records at once; a registry that
cannot take records only delays them. A property test interleaves all of these."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.integration import test_governance_audit as audit_tests
from tests.integration.test_governance_audit import _fail_inserts, execute

from parity import FeatureStore
from parity.errors import AuditError, RegistryError
from parity.governance.audit_spool import ship_orphans, spool_folder
from parity.governance.context import Actor
from parity.registry.models import audit as audit_table

postgres_schema = audit_tests.postgres_schema  # the fixtures: an audited repo per backend
repo = audit_tests.repo
SRC = Path(__file__).parents[2] / "src"
WAIT = 60.0


def probes(store: FeatureStore, principal: str = "p") -> list[int]:
    """The ``i`` counts of ``principal``'s probe records, oldest first."""
    found = store.governance.audit.records(action="probe", principal=principal, limit=None)
    return [r.counts["i"] for r in reversed(found)]


def spool_files(root: Path) -> list[Path]:
    with FeatureStore(root) as store:
        return sorted(spool_folder(store).glob("*.log"))


def chain_rows(store: FeatureStore) -> int:
    """The project's rows in ``parity_audit``, counted without shipping anything."""
    with store.registry._engine.connect() as conn:
        query = sa.select(sa.func.count()).where(audit_table.c.project == store.project)
        return int(conn.execute(query).scalar_one())


def test_what_was_recorded_is_in_the_chain_after_close(repo: Path):
    with FeatureStore(repo) as store:
        audit = store.governance.audit
        audit.start_spool(interval_s=3600)  # only close ships
        before = chain_rows(store)
        for i in range(30):
            audit.record(action="probe", counts={"i": i}, actor=Actor("p"))
        assert audit.spooled.pending == 30
        assert chain_rows(store) == before
    with FeatureStore(repo) as store:
        assert chain_rows(store) == before + 30
        assert probes(store) == list(range(30))
        verdict = store.governance.audit.verify()
    assert verdict.ok, verdict.problem
    assert spool_files(repo) == []


def test_a_process_reads_its_own_records_at_once(repo: Path):
    with FeatureStore(repo) as store:
        audit = store.governance.audit
        audit.start_spool(interval_s=3600)
        audit.record(action="probe", counts={"i": 7}, actor=Actor("p"))
        assert probes(store) == [7]  # shipped by the read itself
        audit.record(action="probe", counts={"i": 8}, actor=Actor("p"))
        head = audit.head()
        assert head is not None and audit.records(limit=1)[0].seq == head[0]
        assert probes(store) == [7, 8]
        assert audit.verify().ok


CRASH = """
import os, sys
from parity import FeatureStore
from parity.governance import audit_spool, audit_store
from parity.governance.context import Actor
root, count, how = sys.argv[1], int(sys.argv[2]), sys.argv[3]
store = FeatureStore(root)
audit = store.governance.audit
spool = audit.start_spool(interval_s=3600)  # never ships by itself
for i in range(count):
    audit.record(action="probe", counts={"i": i}, actor=Actor("p"))
if how == "kill":
    sys.stdout.write("recorded\\n"); sys.stdout.flush()
    sys.stdin.readline()  # SIGKILLed here
elif how == "before_commit":  # dies in the shipping transaction, its P line written
    append = audit_store.AuditStore.append_spooled
    def dying(self, records, *, markers=(), before_commit=None):
        def mark(seq, digest):
            before_commit(seq, digest)
            os._exit(9)
        return append(self, records, markers=markers, before_commit=mark)
    audit_store.AuditStore.append_spooled = dying
    spool.ship()
elif how == "after_commit":  # dies once committed, before the file is deleted
    def dying(self, file):
        os._exit(9)
    audit_spool.Spool._drop = dying
    spool.ship()
"""


@pytest.mark.parametrize("how", ["kill", "before_commit", "after_commit"])
def test_a_killed_process_leaves_its_spool_to_the_next_one(repo: Path, how: str):
    with FeatureStore(repo) as store:
        before = chain_rows(store)
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    cmd = [sys.executable, "-c", textwrap.dedent(CRASH), str(repo), "25", how]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True)
    if how == "kill":
        assert proc.stdout is not None and proc.stdout.readline() == "recorded\n"
        proc.kill()
    assert proc.wait(timeout=WAIT) != 0
    with FeatureStore(repo) as store:
        committed = chain_rows(store) - before
    assert committed == (25 if how == "after_commit" else 0)
    assert len(spool_files(repo)) >= 1  # left behind
    for _ in range(2):  # the next process ships it (once: the second finds nothing)
        with FeatureStore(repo) as store:
            assert probes(store) == list(range(25))
            assert chain_rows(store) == before + 25
            verdict = store.governance.audit.verify()
        assert verdict.ok, verdict.problem
    assert spool_files(repo) == []


FULL = """
import json, os, resource, sys, time
from parity import FeatureStore
from parity.errors import AuditError
from parity.governance.context import Actor
store = FeatureStore(sys.argv[1])
audit = store.governance.audit
spool = audit.start_spool(interval_s=3600)
out = {}
audit.record(action="probe", counts={"i": 0}, actor=Actor("p"))
fd = spool._current.fd
size = os.fstat(fd).st_size
soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
resource.setrlimit(resource.RLIMIT_FSIZE, (size + 10, hard))  # a line is longer: cut short
try:
    audit.record(action="probe", counts={"i": 1}, actor=Actor("p"))
    out["failed"] = None
except AuditError as exc:
    out["failed"] = str(exc)
# (No part of it stays: the chain holds probes 0 and 2 only, below.) Now not a byte more
# can be written, the spool thread's probes neither:
resource.setrlimit(resource.RLIMIT_FSIZE, (1, hard))
try:
    audit.record(action="probe", counts={"i": 3}, actor=Actor("p"))
    out["failed_again"] = None
except AuditError as exc:
    out["failed_again"] = str(exc)
try:  # the probes cannot write either: refused up front
    store.get_online_features(["driver_stats:conv_rate"], entities={"driver_id": [1]})
    out["refused"] = None
except AuditError as exc:
    out["refused"] = str(exc)
resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
deadline = time.monotonic() + 60
while True:  # the spool's thread probes and lets operations through again
    try:
        audit.check_available()
        break
    except AuditError:
        assert time.monotonic() < deadline
        time.sleep(0.05)
audit.record(action="probe", counts={"i": 2}, actor=Actor("p"))
store.close()
print(json.dumps(out))
"""


def test_a_spool_that_cannot_be_written_fails_the_operation_and_keeps_nothing(repo: Path):
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    cmd = [sys.executable, "-c", textwrap.dedent(FULL), str(repo)]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=WAIT * 2)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["failed"] is not None and "cannot be written" in out["failed"]
    assert out["failed_again"] is not None and "cannot be written" in out["failed_again"]
    assert out["refused"] is not None and "cannot be written" in out["refused"]
    with FeatureStore(repo) as store:
        assert probes(store) == [0, 2]  # the failed one is nowhere
        assert store.governance.audit.verify().ok
        reads = store.governance.audit.records(action="read_online", limit=None)
    assert reads == []  # refused up front: not done, not recorded


def test_a_registry_that_cannot_take_records_only_delays_them(repo: Path):
    with FeatureStore(repo) as store:
        audit = store.governance.audit
        spool = audit.start_spool(interval_s=3600)
        make, drop = _fail_inserts(store)
        execute(store, make)
        try:
            for i in range(5):
                audit.record(action="probe", counts={"i": i}, actor=Actor("p"))
            with pytest.raises(RegistryError, match="disk full"):
                spool.ship()
            with pytest.raises(RegistryError, match="disk full"):
                spool.ship()  # tried again: still kept
            assert spool.pending == 5
            with pytest.raises(AuditError, match=r"would\s+miss them"):
                audit.records()  # a read that cannot include them says so
            audit.check_available()  # the spool is fine: operations go on
            audit.record(action="probe", counts={"i": 5}, actor=Actor("p"))
        finally:
            execute(store, drop)
        assert probes(store) == list(range(6))
        assert audit.verify().ok


# -- any interleaving ----------------------------------------------------------------------
OPS = st.lists(
    st.one_of(
        st.tuples(st.just("write"), st.integers(1, 4)),
        st.tuples(st.sampled_from(["ship", "fail", "heal", "die", "orphans"]), st.just(0)),
    ),
    max_size=20,
)
_examples = iter(range(10**6))


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=OPS)
def test_any_interleaving_keeps_every_record_once_in_order(tmp_path: Path, ops: list):
    from audit_utils import audit_repo

    root = tmp_path / "prop"
    if not (root / "parity.yaml").exists():
        audit_repo(root)
    principal = f"ex{next(_examples)}"
    written: dict[int, int] = {}  # per spool generation (a process): records written
    generation = 0
    failing = False
    with FeatureStore(root) as store:
        audit = store.governance.audit
        make, drop = _fail_inserts(store)
        audit.start_spool(interval_s=3600)
        for op, n in ops:
            spool = audit.spooled
            if op == "write":
                for _ in range(n):
                    i = written.get(generation, 0)
                    audit.record(action="probe", counts={"g": generation, "i": i},
                                 actor=Actor(principal))  # fmt: skip
                    written[generation] = i + 1
            elif op == "ship":
                try:
                    spool.ship()
                except RegistryError:
                    assert failing
            elif op == "fail" and not failing:
                execute(store, make)
                failing = True
            elif op == "heal" and failing:
                execute(store, drop)
                failing = False
            elif op == "die":  # as a killed process: its files left, unshipped
                spool.abandon()
                audit.spooled = None
                generation += 1
                audit.start_spool(interval_s=3600)
            elif op == "orphans":
                try:
                    ship_orphans(store)
                except RegistryError:
                    assert failing
        if failing:
            execute(store, drop)
        found = store.governance.audit.records(principal=principal, limit=None)
        verdict = store.governance.audit.verify()
    assert verdict.ok, verdict.problem
    got: dict[int, list[int]] = {}
    for r in reversed(found):
        got.setdefault(r.counts["g"], []).append(r.counts["i"])
    assert got == {g: list(range(n)) for g, n in written.items()}  # once each, in order
    assert spool_files(root) == []


def test_spool_files_of_another_project_are_left_alone(repo: Path, tmp_path: Path):
    with FeatureStore(repo) as store:
        folder = spool_folder(store)
        folder.mkdir(parents=True, exist_ok=True)
        stray = folder / "1-1-1-aaaaaa.log"
        stray.write_text('parity-audit-spool 1 {"project": "other", "registry": "x"}\n')
        assert ship_orphans(store) == 0
        assert stray.exists()
        stray.unlink()
