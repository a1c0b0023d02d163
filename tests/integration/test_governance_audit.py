"""The audit log through a FeatureStore, on every registry backend: every apply, read and
write is recorded (counts, never values), tampering in the database is found by ``verify``
and ``parity audit verify``, processes appending together keep one chain, and a log that
cannot be written fails the operation and then refuses new ones until it can."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.contract.backends import REGISTRY_BACKENDS
from typer.testing import CliRunner

from audit_utils import T0, audit_repo
from parity import FeatureStore
from parity.cli.app import app
from parity.errors import AuditError
from parity.governance.context import Actor, acting_as
from parity.registry.models import audit as audit_table
from parity.registry.models import audit_heads

SRC = Path(__file__).parents[2] / "src"
WAIT = 60.0
POSTGRES_URL = os.environ.get(
    "PARITY_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@pytest.fixture(scope="module")
def postgres_schema() -> Iterator[str]:
    """A schema of this module's own (Parity creates it), dropped at the end; PostgreSQL
    not answering fails the test."""
    schema = f"parity_test_audit_{uuid.uuid4().hex[:10]}"
    yield schema
    engine = sa.create_engine(POSTGRES_URL)
    with engine.begin() as conn:
        conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    engine.dispose()


@pytest.fixture(params=[pytest.param(b, marks=[pytest.mark.postgres] if b == "postgresql" else [])
                        for b in REGISTRY_BACKENDS])  # fmt: skip
def repo(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """An audited repo (auth off) on the backend, applied; its own project."""
    project = f"audit_{uuid.uuid4().hex[:10]}"
    if request.param == "sqlite":
        root = audit_repo(tmp_path / "repo", project=project)
    else:
        url = POSTGRES_URL
        schema = request.getfixturevalue("postgres_schema")
        root = audit_repo(tmp_path / "repo", registry=url, schema=schema, project=project)
    with FeatureStore(root) as store:
        store.apply()
    return root


def rows(ids: list[int], city: str = "Oslo", conv: float = 0.5) -> pa.Table:
    n = len(ids)
    return pa.table(
        {
            "driver_id": pa.array(ids, pa.int64()),
            "event_timestamp": pa.array([T0] * n, pa.timestamp("us", tz="UTC")),
            "conv_rate": [conv] * n,
            "trips": pa.array(list(range(n)), pa.int64()),
            "city": [city] * n,
        }
    )


def execute(store: FeatureStore, statement: Any) -> None:
    """Run a statement on the registry's database (its schema), outside Parity."""
    with store.registry._engine.begin() as conn:
        conn.execute(statement)


def test_every_operation_is_recorded_with_counts(repo: Path):
    with FeatureStore(repo) as store:
        store.push("driver_push", rows([1, 2, 3]), to="online_and_offline")
        store.get_online_features(["driver_stats:conv_rate", "driver_stats:city"],
                                  entities={"driver_id": [1, 2]})  # fmt: skip
        with acting_as(Actor("alice", token_id="tok1")):
            store.get_online_features(["driver_stats:trips"], entities={"driver_id": [3]},
                                      purpose="fraud")  # fmt: skip
        entity_df = pa.table({"driver_id": [1, 2], "event_timestamp": [T0, T0]}).to_pandas()
        store.get_historical_features(entity_df, ["driver_stats:trips"]).to_arrow()
        store.write_to_online_store("driver_stats", rows([4]))
        store.materialize(T0.replace(day=1, month=10), T0.replace(day=2))
        store.delete_entities("driver_stats", [4])
        records = list(reversed(store.governance.audit.records(limit=None)))
        verdict = store.governance.audit.verify()
    actions = [r.action for r in records]
    assert actions == ["apply", "push", "read_online", "read_online", "read_offline", "write",
                       "materialize", "delete"]  # fmt: skip
    assert [r.seq for r in records] == list(range(1, len(records) + 1))
    apply_, push, read, read_alice, hist, write, mat, delete = records
    assert "feature_view:driver_stats" in apply_.resources and apply_.counts["create"] == 4
    assert push.resources == ("source:driver_push", "feature_view:driver_stats")
    assert push.counts == {"rows": 3, "stored": 3}
    assert push.detail == "to=online_and_offline"
    assert read.counts == {"keys": 2, "features": 2}
    assert (read_alice.principal, read_alice.token_id) == ("alice", "tok1")
    assert read_alice.detail == "purpose=fraud"
    assert hist.counts == {"rows": 2, "features": 1}
    assert write.counts["rows"] == 1
    assert mat.counts["rows"] == 3
    assert delete.counts == {"rows": 1, "stored": 1}
    assert {r.outcome for r in records} == {"ok"}
    assert verdict.ok and verdict.records == len(records) == verdict.head_seq


def test_a_failed_operation_is_recorded_as_an_error_without_its_message(repo: Path):
    online_db = repo / "data" / "online.db"
    online_db.unlink(missing_ok=True)
    online_db.mkdir()  # the online store cannot open its file: the write fails
    with FeatureStore(repo) as store:
        with pytest.raises(Exception) as failed:
            store.push("driver_push", rows([1], city="SECRET-CITY"))
        [record] = store.governance.audit.records(action="push")
    assert record.outcome == "error"
    assert record.detail.startswith("to=online; " + type(failed.value).__name__)
    assert "online.db" not in record.detail  # the type and code, not the message
    assert "SECRET-CITY" not in repr(record)
    assert record.resources == ("source:driver_push", "feature_view:driver_stats")


def test_filters(repo: Path):
    with FeatureStore(repo) as store:
        for principal in ("alice", "bob"):
            with acting_as(Actor(principal)):
                store.push("driver_push", rows([1]))
                store.get_online_features(["driver_stats:trips"], entities={"driver_id": [1]})
        audit = store.governance.audit
        assert [r.principal for r in audit.records(action="push")] == ["bob", "alice"]
        assert len(audit.records(principal="alice")) == 2
        assert len(audit.records(resource="driver_stats")) == 5  # apply too
        assert len(audit.records(resource="source:driver_push")) == 3
        assert audit.records(resource="driver_stat") == []  # exact, not a prefix
        assert audit.records(resource="feature_view:driver\\_stats") == []
        assert len(audit.records(since="1h")) == 5
        assert audit.records(until="2000-01-01") == []
        assert len(audit.records(limit=2)) == 2
        assert audit.records(outcome="denied") == []


@pytest.mark.parametrize(
    ("tamper", "broken", "word"),
    [
        ("edit", 2, "edited"),
        ("delete_middle", 2, "deleted"),
        ("delete_newest", 4, "deleted"),
        ("insert", 2, "inserted"),
    ],
)
def test_tampering_in_the_database_is_found(repo: Path, tamper: str, broken: int, word: str):
    with FeatureStore(repo) as store:
        for _ in range(3):
            store.get_online_features(["driver_stats:trips"], entities={"driver_id": [1]})
        assert store.governance.audit.verify().ok
        t, project = audit_table, store.project
        mine = (t.c.project == project,)
        if tamper == "edit":
            execute(store, t.update().where(*mine, t.c.seq == 2).values(principal="mallory"))
        elif tamper == "delete_middle":
            execute(store, t.delete().where(*mine, t.c.seq == 2))
        elif tamper == "delete_newest":
            execute(store, t.delete().where(*mine, t.c.seq == 4))
        else:  # renumber 2.. and put a well-formed record in at 2
            [first] = [r for r in store.governance.audit.records(limit=None) if r.seq == 1]
            for seq in (4, 3, 2):
                execute(store, t.update().where(*mine, t.c.seq == seq).values(seq=seq + 1))
            from parity.governance.audit_chain import chain_hash

            fields = dict(project=project, seq=2, at=first.at, principal="mallory",
                          action="read_online", resources=(), counts={}, outcome="ok",
                          detail="", token_id=None, prev_hash=first.hash)  # fmt: skip
            row = {**fields, "resources": [], "hash": chain_hash(**fields)}
            row.pop("token_id")
            execute(store, t.insert().values(**row))
        result = store.governance.audit.verify()
    assert not result.ok
    assert result.broken_seq == broken
    assert word in result.problem
    answer = CliRunner().invoke(app, ["audit", "verify", "--repo", str(repo)])
    assert answer.exit_code == 3, answer.output
    assert f"broken at record {broken}" in answer.output


def test_a_head_kept_elsewhere_finds_a_consistently_rewritten_log(repo: Path):
    with FeatureStore(repo) as store:
        store.get_online_features(["driver_stats:trips"], entities={"driver_id": [1]})
        kept = store.governance.audit.verify()
        anchor = f"{kept.head_seq}:{kept.head_hash}"
        assert store.governance.audit.verify(expect_head=anchor).ok
        # drop the newest record and move the head back: the chain alone looks fine
        previous = store.governance.audit.records(limit=2)[1]
        execute(store, audit_table.delete().where(
            audit_table.c.project == store.project, audit_table.c.seq == kept.head_seq))  # fmt: skip
        execute(store, audit_heads.update().where(audit_heads.c.project == store.project)
                .values(seq=previous.seq, hash=previous.hash))  # fmt: skip
        assert store.governance.audit.verify().ok
        assert not store.governance.audit.verify(expect_head=anchor).ok
    answer = CliRunner().invoke(app, ["audit", "verify", "--repo", str(repo), "--expect-head",
                                      anchor])  # fmt: skip
    assert answer.exit_code == 3, answer.output


APPENDER = """
import sys, threading
from parity import FeatureStore
from parity.governance.context import Actor
store = FeatureStore(sys.argv[1])
audit = store.governance.audit
sys.stdout.write("ready\\n"); sys.stdout.flush()
sys.stdin.readline()  # both processes start together
def work(t):
    for i in range(int(sys.argv[2])):
        audit.record(action="probe", counts={"i": i}, actor=Actor(f"{sys.argv[3]}-{t}"))
threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
[t.start() for t in threads]; [t.join() for t in threads]
store.close()
"""


def test_two_processes_appending_together_keep_one_valid_chain(repo: Path):
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    procs = [
        subprocess.Popen([sys.executable, "-c", textwrap.dedent(APPENDER), str(repo), "40", name],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True)
        for name in ("a", "b")
    ]  # fmt: skip
    for p in procs:
        assert p.stdout is not None and p.stdout.readline() == "ready\n"
    for p in procs:
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()
    for p in procs:
        assert p.wait(timeout=WAIT * 2) == 0
    with FeatureStore(repo) as store:
        result = store.governance.audit.verify()
        records = store.governance.audit.records(action="probe", limit=None)
    assert result.ok, result.problem
    assert len(records) == 2 * 4 * 40
    assert {r.principal[0] for r in records} == {"a", "b"}


def _fail_inserts(store: FeatureStore) -> tuple[Any, Any]:
    """A trigger refusing this project's audit inserts (a real database failure), and the
    statement dropping it."""
    project = store.project
    if store.registry.url.get_backend_name() == "sqlite":
        make = (f"CREATE TRIGGER audit_fail BEFORE INSERT ON parity_audit WHEN "
                f"NEW.project = '{project}' BEGIN SELECT RAISE(ABORT, 'disk full (test)'); END")  # fmt: skip
        return sa.text(make), sa.text("DROP TRIGGER audit_fail")
    schema = store.registry.schema
    fn = f'"{schema}".audit_fail_{project}'
    make = (
        f"CREATE FUNCTION {fn}() RETURNS trigger AS $$ BEGIN IF NEW.project = '{project}' "
        f"THEN RAISE EXCEPTION 'disk full (test)'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql; "
        f'CREATE TRIGGER audit_fail_{project} BEFORE INSERT ON "{schema}".parity_audit '
        f"FOR EACH ROW EXECUTE FUNCTION {fn}()"
    )
    drop = (f'DROP TRIGGER audit_fail_{project} ON "{schema}".parity_audit; '
            f"DROP FUNCTION {fn}()")  # fmt: skip
    return sa.text(make), sa.text(drop)


def test_a_failing_audit_write_fails_the_operation_and_refuses_new_ones(repo: Path):
    with FeatureStore(repo) as store:
        store.push("driver_push", rows([1], conv=0.5))
        make, drop = _fail_inserts(store)
        execute(store, make)
        try:
            with pytest.raises(AuditError, match="disk full"):
                store.get_online_features(["driver_stats:conv_rate"], entities={"driver_id": [1]})
            # refused up front from now on: nothing is written
            with pytest.raises(AuditError, match="cannot be written"):
                store.push("driver_push", rows([1], conv=0.75))
            with pytest.raises(AuditError, match="cannot be written"):
                store.apply()
        finally:
            execute(store, drop)
        deadline = time.monotonic() + WAIT
        while True:  # the writer probes and lets operations through again
            try:
                got = store.get_online_features(["driver_stats:conv_rate"],
                                                entities={"driver_id": [1]})  # fmt: skip
                break
            except AuditError:
                assert time.monotonic() < deadline, "the audit log did not recover"
                time.sleep(0.05)
        assert got.to_dict()["conv_rate"] == [0.5]  # the refused push wrote nothing
        assert store.governance.audit.verify().ok


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    cities=st.lists(st.from_regex(r"\AV[a-z]{3}[0-9]{4}Q\Z"), min_size=1, max_size=4),
    conv=st.floats(min_value=1000.001, max_value=9999.999).map(lambda x: round(x, 3)),
)
def test_no_feature_value_reaches_the_log(repo: Path, cities: list[str], conv: float):
    with FeatureStore(repo) as store:
        ids = list(range(100, 100 + len(cities)))
        table = rows(ids, conv=conv).set_column(4, "city", pa.array(cities))
        store.push("driver_push", table, to="online_and_offline")
        store.get_online_features(["driver_stats:city", "driver_stats:conv_rate"],
                                  entities={"driver_id": ids})  # fmt: skip
        with store.registry._engine.connect() as conn:
            stored = conn.execute(sa.select(audit_table)
                                  .where(audit_table.c.project == store.project)).all()  # fmt: skip
    text = " ".join(str(tuple(r)) for r in stored)
    for city in cities:
        assert city not in text
    assert str(conv) not in text


def test_the_cli_lists_records(repo: Path):
    with FeatureStore(repo) as store, acting_as(Actor("alice", token_id="tok9")):
        store.push("driver_push", rows([1, 2]))
    runner = CliRunner(env={"COLUMNS": "250"})  # a wide table: nothing folded
    answer = runner.invoke(app, ["audit", "--repo", str(repo), "--principal", "alice"])
    assert answer.exit_code == 0, answer.output
    assert "alice (tok9)" in answer.output and "rows=2" in answer.output
    assert "apply" not in answer.output
    answer = runner.invoke(app, ["audit", "--repo", str(repo), "--json", "--action", "apply"])
    assert answer.exit_code == 0 and '"action": "apply"' in answer.output
    answer = runner.invoke(app, ["audit", "verify", "--repo", str(repo)])
    assert answer.exit_code == 0 and "audit log intact: 2 records" in answer.output
    answer = runner.invoke(app, ["audit", "--repo", str(repo), "--since", "yesterday"])
    assert answer.exit_code == 1 and "is not a time" in answer.output
