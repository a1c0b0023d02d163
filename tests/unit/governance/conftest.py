"""Repos with auth on, on the SQLite and the PostgreSQL registry (REGISTRY_BACKENDS)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from contract.backends import REGISTRY_BACKENDS
from repo_utils import write_repo

from .access_utils import ROLES

POSTGRES_URL = os.environ.get(
    "PARITY_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@pytest.fixture(scope="session")
def pg_schema() -> Iterator[str]:
    """A PostgreSQL schema of this session, dropped at the end; fails when PG is down."""
    name = f"parity_test_gov_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(POSTGRES_URL, connect_args={"connect_timeout": 5})
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{name}"')
    except Exception as exc:  # a clear failure, never a skip
        pytest.fail(f"PostgreSQL at {POSTGRES_URL} is required: {exc}", pytrace=False)
    yield name
    with engine.begin() as conn:
        conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
    engine.dispose()


@pytest.fixture(params=REGISTRY_BACKENDS)
def auth_repo(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """A repo with ``auth: {enabled: true}``, a ``reader`` role, no object applied yet."""
    project = f"gov_{uuid.uuid4().hex[:8]}"
    root = write_repo(tmp_path / "repo", {"roles.yaml": ROLES}, project=project)
    cfg = root / "parity.yaml"
    text = cfg.read_text()
    if request.param == "postgresql":
        schema = request.getfixturevalue("pg_schema")
        text = text.replace(
            "registry: data/registry.db", f"registry: {{url: '{POSTGRES_URL}', schema: {schema}}}"
        )
    cfg.write_text(text + "auth: {enabled: true, token_cache_seconds: 60}\n")
    return root


@pytest.fixture(params=REGISTRY_BACKENDS)
def registry_yaml(request: pytest.FixtureRequest) -> Iterator[str]:
    """parity.yaml's ``registry:`` value for each registry backend (PostgreSQL: a schema
    of its own, dropped afterwards)."""
    if request.param == "sqlite":
        yield "data/registry.db"
        return
    assert request.param == "postgresql", f"no registry config for {request.param!r}"
    schema = f"parity_test_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(POSTGRES_URL, connect_args={"connect_timeout": 5})
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
        yield f"{{ url: '{POSTGRES_URL}', schema: {schema} }}"
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        engine.dispose()
