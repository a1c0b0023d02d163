"""Reading a registry that does not exist creates nothing, on every registry backend.

A registry's database (the SQLite file and its folder, or the PostgreSQL schema and tables)
is created by the first write (an apply, a recorded materialization). Every read before
that answers as an empty registry, and ``exists()`` says whether there is one.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from parity.definitions import Entity
from parity.errors import ObjectNotFoundError
from parity.registry import Registry
from parity.registry.migrate import current_revision, head_revision

RegistryTarget = Any  # the conftest fixture: backend, url, schema, open()


def created(target: RegistryTarget) -> bool:
    """Whether anything of the registry exists: the SQLite file or folder, the PG schema."""
    if target.backend == "sqlite":
        path = Path(sa.make_url(target.url).database or "")
        return path.exists() or path.parent.exists()
    engine = sa.create_engine(target.url)
    try:
        with engine.connect() as conn:
            found = conn.execute(
                sa.text("SELECT 1 FROM information_schema.schemata WHERE schema_name = :s"),
                {"s": target.schema},
            ).first()
    finally:
        engine.dispose()
    return found is not None


def test_every_read_of_a_missing_registry_creates_nothing(fresh_registry_target):
    target = fresh_registry_target
    with target.open(project="p") as reg:
        assert not reg.exists()
        assert reg.revision() == 0
        assert reg.list() == [] and reg.list("entity") == []
        assert reg.find("driver") == []
        with pytest.raises(ObjectNotFoundError, match="entity 'driver' not found"):
            reg.get("entity", "driver")
        with pytest.raises(ObjectNotFoundError, match="'driver' not found"):
            reg.history("driver")
        assert reg.snapshot().objects == () and reg.snapshot().revision == 0
        assert reg.materializations() == [] and reg.materialized_until() == {}
        reg.forget_materializations()  # nothing to forget: still nothing written
        plan = reg.plan([Entity("driver")])
        assert [(c.name, c.action) for c in plan.changes] == [("driver", "create")]
        assert plan.base_revision == 0
        assert not reg.exists()
    assert not created(target)


def test_the_first_write_creates_it_and_readers_then_see_it(fresh_registry_target):
    target = fresh_registry_target
    reader = target.open(project="p")  # opened while the registry does not exist
    try:
        with target.open(project="p") as writer:
            writer.apply([Entity("driver")])
            assert writer.exists()
        assert created(target)
        assert reader.exists()
        assert reader.revision() == 1
        assert [o.name for o in reader.list()] == ["driver"]
    finally:
        reader.close()
    engine = sa.create_engine(target.url)
    with engine.connect() as conn:
        assert current_revision(conn, target.schema) == head_revision()
    engine.dispose()


def test_recording_a_materialization_creates_it(fresh_registry_target):
    target = fresh_registry_target
    t0, t1 = datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 1, 2, tzinfo=UTC)
    with target.open(project="p") as reg:
        reg.record_materialization("v", t0, t1, rows=1, stored=1)
        assert reg.exists()
        assert reg.materialized_until() == {"v": t1}


def test_a_sqlite_folder_that_cannot_be_made_is_refused_at_open(tmp_path: Path):
    from parity.errors import RegistryError

    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(RegistryError, match="could not create its folder"):
        Registry(f"sqlite:///{tmp_path}/file/deeper/registry.db", "p")
    assert (tmp_path / "file").read_text() == "not a folder"
