"""Opening a registry: locations, URLs, SQLite specifics, and the tables the migrations build."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

import parity.registry as registry_pkg
from parity.definitions import Entity
from parity.errors import ConfigError, RegistryError
from parity.registry import Registry
from parity.registry.engine import parse_url
from parity.registry.migrate import current_revision, head_revision
from parity.registry.models import ALEMBIC_VERSION_TABLE, metadata


def test_public_names_are_exported_and_sorted():
    assert registry_pkg.__all__ == sorted(registry_pkg.__all__)
    for name in ("Registry", "Plan", "Change", "FieldChange", "VersionRecord", "RegistrySnapshot"):
        assert name in registry_pkg.__all__ and hasattr(registry_pkg, name)


def test_a_relative_location_is_a_sqlite_file_under_base_dir(tmp_path: Path):
    with Registry.from_location("data/deep/registry.db", "p", base_dir=tmp_path) as reg:
        reg.apply([Entity("driver")])
    assert (tmp_path / "data" / "deep" / "registry.db").is_file()
    url = f"sqlite:///{tmp_path / 'data' / 'deep' / 'registry.db'}"
    with Registry.from_location(url, "p", base_dir=Path("/nonexistent")) as reg:
        assert reg.get("entity", "driver") == Entity("driver")


def test_an_absolute_location_ignores_base_dir(tmp_path: Path):
    with Registry.from_location(str(tmp_path / "r.db"), "p", base_dir=Path("/x")) as reg:
        assert reg.revision() == 0
        assert not (tmp_path / "r.db").exists()  # a read creates nothing
        reg.apply([Entity("driver")])
    assert (tmp_path / "r.db").is_file()


def test_urls_are_checked_and_completed():
    assert parse_url("postgresql://h:5432/db").drivername == "postgresql+psycopg"
    assert parse_url("postgres://h/db").drivername == "postgresql+psycopg"
    assert parse_url("sqlite:///x.db").drivername == "sqlite"
    with pytest.raises(ConfigError, match="unsupported database 'mysql'"):
        parse_url("mysql://h/db")
    with pytest.raises(ConfigError, match="not a database URL"):
        parse_url("nonsense")


def test_schema_is_refused_for_sqlite(tmp_path: Path):
    with pytest.raises(ConfigError, match="schema='s' is for PostgreSQL"):
        Registry(f"sqlite:///{tmp_path}/r.db", "p", schema="s")


def test_a_sqlite_registry_uses_wal_and_is_at_the_head_migration(tmp_path: Path):
    with Registry(f"sqlite:///{tmp_path}/r.db", "p") as reg:
        reg.apply([])  # the first write creates the database
    engine = sa.create_engine(f"sqlite:///{tmp_path}/r.db")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert current_revision(conn, None) == head_revision()
        tables = set(sa.inspect(conn).get_table_names())
        assert tables == {*metadata.tables, ALEMBIC_VERSION_TABLE}
        opts = {"include_name": lambda name, type_, _: name != ALEMBIC_VERSION_TABLE}
        assert compare_metadata(MigrationContext.configure(conn, opts=opts), metadata) == []
    engine.dispose()


def test_a_newer_database_than_the_code_is_refused_clearly(tmp_path: Path):
    with Registry(f"sqlite:///{tmp_path}/r.db", "p") as reg:
        reg.apply([])
    engine = sa.create_engine(f"sqlite:///{tmp_path}/r.db")
    with engine.begin() as conn:
        conn.exec_driver_sql(f"UPDATE {ALEMBIC_VERSION_TABLE} SET version_num = '9999'")
    engine.dispose()
    with pytest.raises(RegistryError, match="migration '9999', which this version of Parity"):
        Registry(f"sqlite:///{tmp_path}/r.db", "p")


def test_a_corrupt_file_is_a_registry_error_naming_it(tmp_path: Path):
    (tmp_path / "r.db").write_bytes(b"this is not a database" * 100)
    with pytest.raises(RegistryError, match=r"registry at sqlite:///.*r\.db: could not open"):
        Registry(f"sqlite:///{tmp_path}/r.db", "p")


def test_an_in_memory_registry_works_across_threads():
    with Registry("sqlite://", "p") as reg:
        errors = []

        def work(i: int) -> None:
            try:
                reg.apply([Entity(f"e{i}")])
            except Exception as exc:
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        assert reg.revision() == 4
        assert [o.name for o in reg.list()] == ["e0", "e1", "e2", "e3"]


def test_the_lock_wait_is_bounded_and_explained(tmp_path: Path):
    url = f"sqlite:///{tmp_path}/r.db"
    with Registry(url, "p") as reg:
        reg.apply([])
    holder = sa.create_engine(url)
    with holder.connect() as conn:
        conn.exec_driver_sql("BEGIN IMMEDIATE")  # another writer holds the lock
        with Registry(url, "p", timeout=0.2) as reg:
            with pytest.raises(RegistryError, match="could not apply: database is locked"):
                reg.apply([Entity("driver")])
            assert reg.revision() == 0  # readers are not blocked (WAL)
        conn.exec_driver_sql("ROLLBACK")
    holder.dispose()
