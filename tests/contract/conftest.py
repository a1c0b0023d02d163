"""Fixtures for the contract suites: real databases, safe under ``pytest -n 2 --dist loadfile``.

PostgreSQL is required, never skipped: a suite that asks for it fails with a message saying
how to start it. ``PARITY_TEST_POSTGRES_URL`` overrides where it is. Each test session (each
xdist worker) gets its own schemas, named ``parity_test_<hex>[_<n>]``, dropped at the end.
SQLite databases live in ``tmp_path``.

Registry suites: ``registry_target`` (where a registry lives, per backend in
``REGISTRY_BACKENDS``), ``fresh_registry_target`` (a database nobody has opened yet) and
``registry`` (an open Registry on a project of its own).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from backends import REGISTRY_BACKENDS  # the one list of backends per kind

from parity.registry import Registry

POSTGRES_URL = os.environ.get(
    "PARITY_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)

_BACKEND_MARKS = {"postgresql": [pytest.mark.postgres]}


# -- PostgreSQL ---------------------------------------------------------------------------


class PostgresSchemas:
    """Hands out fresh schema names for this session and drops them all at the end."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.prefix = f"parity_test_{uuid.uuid4().hex[:12]}"
        self._names: list[str] = []

    def new(self, *, create: bool = True) -> str:
        name = self.prefix if not self._names else f"{self.prefix}_{len(self._names)}"
        self._names.append(name)
        if create:
            self._execute(f'CREATE SCHEMA IF NOT EXISTS "{name}"')
        return name

    def drop_all(self) -> None:
        for name in reversed(self._names):
            self._execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')

    def _execute(self, sql: str) -> None:
        engine = sa.create_engine(self.url)
        try:
            with engine.begin() as conn:
                conn.exec_driver_sql(sql)
        finally:
            engine.dispose()


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """The PostgreSQL URL, after checking it answers; fails (never skips) when it does not."""
    engine = sa.create_engine(POSTGRES_URL, connect_args={"connect_timeout": 5})
    problem = None
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except Exception as exc:
        problem = f"{type(exc).__name__}: {str(getattr(exc, 'orig', exc)).strip().splitlines()[0]}"
    finally:
        engine.dispose()
    if problem is not None:
        pytest.fail(
            f"PostgreSQL is required by the contract suites but is not reachable at "
            f"{POSTGRES_URL} ({problem}). Start it with `make services` "
            "(scripts/services.sh), or point PARITY_TEST_POSTGRES_URL at one.",
            pytrace=False,
        )
    return POSTGRES_URL


@pytest.fixture(scope="session")
def postgres_schemas(postgres_url: str) -> Iterator[PostgresSchemas]:
    schemas = PostgresSchemas(postgres_url)
    yield schemas
    schemas.drop_all()


@pytest.fixture(scope="session")
def postgres_schema(postgres_schemas: PostgresSchemas) -> str:
    """This session's own schema (created), shared by its tests; dropped at the end."""
    return postgres_schemas.new()


# -- registry -----------------------------------------------------------------------------


@dataclass(frozen=True)
class RegistryTarget:
    """Where a registry lives: enough to open it here or in another process."""

    backend: str
    url: str
    schema: str | None = None

    def open(self, project: str | None = None, **kwargs: Any) -> Registry:
        return Registry(self.url, project or new_project(), schema=self.schema, **kwargs)


def new_project() -> str:
    return f"proj_{uuid.uuid4().hex[:12]}"


@pytest.fixture(
    params=[pytest.param(b, marks=_BACKEND_MARKS.get(b, [])) for b in REGISTRY_BACKENDS]
)
def registry_backend(request: pytest.FixtureRequest) -> str:
    return request.param


def _target(backend: str, request: pytest.FixtureRequest, path: Path, *, fresh: bool):
    if backend == "sqlite":
        return RegistryTarget("sqlite", f"sqlite:///{path}")
    if backend == "postgresql":
        url = request.getfixturevalue("postgres_url")
        if fresh:
            schema = request.getfixturevalue("postgres_schemas").new(create=False)
        else:
            schema = request.getfixturevalue("postgres_schema")
        return RegistryTarget("postgresql", url, schema)
    raise AssertionError(f"no fixture for registry backend {backend!r}")


@pytest.fixture
def registry_target(
    registry_backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> RegistryTarget:
    """A registry database shared by the session (PostgreSQL) or the test (SQLite).

    Tests keep apart by project: open it with ``target.open()`` for a new project.
    """
    return _target(registry_backend, request, tmp_path / "registry.db", fresh=False)


@pytest.fixture
def fresh_registry_target(
    registry_backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> RegistryTarget:
    """A database (or PostgreSQL schema) that does not exist yet."""
    return _target(registry_backend, request, tmp_path / "fresh" / "registry.db", fresh=True)


@pytest.fixture
def registry(registry_target: RegistryTarget) -> Iterator[Registry]:
    """An open registry on a project no other test uses."""
    reg = registry_target.open()
    yield reg
    reg.close()


# -- Redis Cluster ------------------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_cluster_nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[str]]:
    """A real 3-primary Redis Cluster on free loopback ports, for this session only.

    Fails (never skips) when redis-server cannot start; stopped at the end of the session.
    """
    from redis_cluster import ClusterStartError, start_cluster

    try:
        handle = start_cluster(tmp_path_factory.mktemp("redis-cluster"))
    except ClusterStartError as exc:
        pytest.fail(f"could not start a local Redis Cluster: {exc}", pytrace=False)
    try:
        yield list(handle.nodes)
    finally:
        handle.stop()
