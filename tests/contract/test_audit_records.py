"""The audit log's rows on every registry backend: a record's token id in its own column,
and migration 0007 moving it there from the ``counts`` JSON of an existing log (and back),
the chain intact on both sides."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import command

from migration_utils import at_migration
from parity.governance.audit_chain import GENESIS, ChainCheck, chain_hash
from parity.governance.audit_store import AuditStore, Entry
from parity.registry import engine as eng

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
OLD = [  # (principal, counts, token id) of records written before 0007
    ("alice", {"keys": 3}, "ab12cd34"),
    ("bob", {"rows": 2, "features": 1}, None),
    ("carol", {}, "jwt:x-1"),
]


def _verify(store: AuditStore) -> bool:
    check = ChainCheck()
    head = None
    for found, batch in store.scan():  # the same head with every batch
        head = found
        check.feed(batch)
    return check.finish(head).ok


def _write_0006_log(target) -> None:
    """Records as 0006 stored them: the token id in ``counts`` under ``@token``."""
    engine = eng.create_engine(eng.parse_url(target.url), schema=target.schema, timeout=30)
    md = sa.MetaData(schema=target.schema)
    projects = sa.Table("parity_projects", md, autoload_with=engine)
    audit = sa.Table("parity_audit", md, autoload_with=engine)
    heads = sa.Table("parity_audit_heads", md, autoload_with=engine)
    assert "token_id" not in audit.c
    prev = GENESIS
    try:
        with eng.connect(engine, write=True) as conn:
            conn.execute(projects.insert().values(
                project="p", revision=0, created_at=T0, updated_at=T0))  # fmt: skip
            for seq, (principal, counts, token) in enumerate(OLD, start=1):
                at = T0 + timedelta(seconds=seq)
                fields = dict(project="p", seq=seq, at=at, principal=principal,
                              action="read_online", resources=("feature_view:v",),
                              counts=counts, outcome="ok", detail="", token_id=token)  # fmt: skip
                digest = chain_hash(prev_hash=prev, **fields)
                stored = counts if token is None else {**counts, "@token": token}
                conn.execute(audit.insert().values(
                    project="p", seq=seq, at=at, principal=principal, action="read_online",
                    resources=["feature_view:v"], counts=stored, outcome="ok", detail="",
                    prev_hash=prev, hash=digest))  # fmt: skip
                prev = digest
            conn.execute(heads.insert().values(project="p", seq=len(OLD), hash=prev))
    finally:
        engine.dispose()


def test_a_0006_log_moves_its_token_ids_to_their_column_and_back(fresh_registry_target):
    target = fresh_registry_target
    at_migration(target, "0006")
    _write_0006_log(target)
    with target.open(project="p") as reg:  # opening migrates it to the head
        store = AuditStore(reg)
        got = sorted(store.select(since=None, until=None, principal=None, action=None,
                                  outcome=None, resource_like=None, limit=None),
                     key=lambda r: r.seq)  # fmt: skip
        assert [(r.principal, dict(r.counts), r.token_id) for r in got] == OLD
        assert _verify(store)
        # a record written now keeps its token id in the column, and extends the chain
        store.append([Entry(T0 + timedelta(minutes=1), "dave", "push", (), {"rows": 1}, "ok",
                            "", "ef56")])  # fmt: skip
        assert (
            store.select(
                since=None,
                until=None,
                principal="dave",
                action=None,
                outcome=None,
                resource_like=None,
                limit=None,
            )[0].token_id
            == "ef56"
        )
        assert _verify(store)
    at_migration(target, "0006", command.downgrade)
    engine = eng.create_engine(eng.parse_url(target.url), schema=target.schema, timeout=30)
    try:
        audit = sa.Table("parity_audit", sa.MetaData(schema=target.schema), autoload_with=engine)
        assert "token_id" not in audit.c
        with engine.connect() as conn:
            rows = conn.execute(sa.select(audit.c.seq, audit.c.counts).order_by(audit.c.seq))
            counts = [c if isinstance(c, dict) else json.loads(c) for _, c in rows]
    finally:
        engine.dispose()
    assert counts == [
        {"keys": 3, "@token": "ab12cd34"},
        {"rows": 2, "features": 1},
        {"@token": "jwt:x-1"},
        {"rows": 1, "@token": "ef56"},
    ]
