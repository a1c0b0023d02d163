"""Governance fixtures: a repo whose registry is each of ``REGISTRY_BACKENDS`` (SQLite in
the test's folder; PostgreSQL in a schema of its own, dropped afterwards)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from contract.backends import REGISTRY_BACKENDS

POSTGRES_URL = os.environ.get(
    "PARITY_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@pytest.fixture(params=REGISTRY_BACKENDS)
def registry_yaml(request: pytest.FixtureRequest) -> Iterator[str]:
    """parity.yaml's ``registry:`` value for each registry backend."""
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
