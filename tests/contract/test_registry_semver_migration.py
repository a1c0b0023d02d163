"""Migration 0008 on every registry backend: a history written before semantic versions is
numbered from its stored diffs on upgrade (as a new registry would have numbered it), new
applies continue from there, and the downgrade drops the columns again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import command

from migration_utils import at_migration
from parity import Entity
from parity.registry import engine as eng

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
SPEC = {"name": "driver", "description": "", "owner": "", "tags": {},
        "join_keys": ["driver_id"], "dtype": "Int64"}  # fmt: skip
# (action, diff) of one entity's versions before 0008, and the version each gets
OLD = [
    ("create", [], "1.0.0"),
    ("update", [{"path": "description", "old": "", "new": "drivers"}], "1.0.1"),
    ("update", [{"path": "join_keys[0]", "old": "driver_id", "new": "driver_key"}], "2.0.0"),
    ("update", [{"path": "tags.team", "new": "fleet"}], "2.0.1"),
    ("delete", [], "2.0.1"),
    ("create", [], "3.0.0"),
]


def _write_0007_history(target) -> None:
    engine = eng.create_engine(eng.parse_url(target.url), schema=target.schema, timeout=30)
    md = sa.MetaData(schema=target.schema)
    projects = sa.Table("parity_projects", md, autoload_with=engine)
    versions = sa.Table("parity_versions", md, autoload_with=engine)
    objects = sa.Table("parity_objects", md, autoload_with=engine)
    assert "semver" not in versions.c
    try:
        with eng.connect(engine, write=True) as conn:
            conn.execute(projects.insert().values(
                project="p", revision=len(OLD), created_at=T0, updated_at=T0))  # fmt: skip
            for number, (action, diff, _) in enumerate(OLD, start=1):
                conn.execute(versions.insert().values(
                    project="p", kind="entity", name="driver", version=number, action=action,
                    spec=SPEC, content_hash="h" * 64, diff=diff, author="alice",
                    applied_at=T0 + timedelta(minutes=number), revision=number))  # fmt: skip
            conn.execute(objects.insert().values(
                project="p", kind="entity", name="driver", version=len(OLD), spec=SPEC,
                content_hash="h" * 64, created_at=T0, updated_at=T0))  # fmt: skip
    finally:
        engine.dispose()


def test_a_0007_history_is_numbered_on_upgrade_and_the_columns_go_on_downgrade(
    fresh_registry_target,
):
    target = fresh_registry_target
    at_migration(target, "0007")
    _write_0007_history(target)
    with target.open(project="p") as reg:  # opening migrates it to the head
        history = reg.history("driver")
        assert [(r.number, r.action, r.version) for r in history] == [
            (n, action, want) for n, (action, _, want) in enumerate(OLD, start=1)
        ]
        assert all(r.note == "" and r.code is None for r in history)
        # an apply now continues from 3.0.0 (a new owner is metadata: a patch)
        reg.apply([Entity(name="driver", join_keys=["driver_id"], dtype="Int64", owner="fleet")])
        assert reg.history("driver")[-1].version == "3.0.1"
    at_migration(target, "0007", command.downgrade)
    engine = eng.create_engine(eng.parse_url(target.url), schema=target.schema, timeout=30)
    try:
        versions = sa.Table(
            "parity_versions", sa.MetaData(schema=target.schema), autoload_with=engine
        )
        assert not {"semver", "note", "code"} & set(versions.c.keys())
        with engine.connect() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(versions)).scalar() == 7
    finally:
        engine.dispose()
