"""Read-only commands on a repo whose registry does not exist create nothing.

``plan`` works (a diff against an empty registry, everything to create); every other command
that reads the registry says there is none, names where it was looked for, suggests
``parity apply`` and exits 1. Nothing is created on disk (SQLite) or in the database
(PostgreSQL: no schema); ``apply`` then creates the registry.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from parity.cli import app
from parity.cli.scaffold import ENTITIES_FILE

VIEW = "driver_hourly_stats"
POSTGRES_URL = os.environ.get(
    "PARITY_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
runner = CliRunner(env={"COLUMNS": "200"})


def parity(*args: str | Path, code: int):
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == code, (
        f"parity {' '.join(map(str, args))} exited {result.exit_code}, wanted {code}\n"
        f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}\n{result.exception!r}"
    )
    return result


def tree(root: Path) -> set[str]:
    """Every file and folder under ``root`` (Python's bytecode caches left out)."""
    return {str(p.relative_to(root)) for p in root.rglob("*") if "__pycache__" not in p.parts}


def set_registry(repo: Path, value: str) -> None:
    config = repo / "parity.yaml"
    lines = config.read_text().splitlines()
    lines = [f"registry: {value}" if line.startswith("registry:") else line for line in lines]
    config.write_text("\n".join(lines) + "\n")


def read_only_commands(repo: Path, out: Path) -> list[list[str | Path]]:
    """Every command that only reads the registry (``plan`` apart), as typed."""
    r = ["--repo", repo]
    return [
        ["list", *r],
        ["list", "views", *r],
        ["describe", VIEW, *r],
        ["history", VIEW, *r],
        ["historical", *r, "-e", repo / ENTITIES_FILE, "-o", out, "-f", f"{VIEW}:conv_rate"],
        ["materialize", "2024-01-01", "2024-01-02", *r],
        ["materialize-incremental", "2024-01-02", *r],
        ["materialize-reset", VIEW, *r],
        ["snapshot", "create", "s", *r, "-e", repo / ENTITIES_FILE, "-f", f"{VIEW}:conv_rate"],
        ["snapshot", "list", *r],
        ["snapshot", "show", "s", *r],
        ["snapshot", "verify", "s", *r],
        ["snapshot", "recreate", "s", *r],
    ]


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "shop"
    parity("init", "shop", "--dir", path, code=0)
    set_registry(path, "not/there/yet/registry.db")
    return path


def test_plan_on_a_missing_registry_shows_everything_to_create_and_creates_nothing(repo: Path):
    before = tree(repo)
    out = parity("plan", "--repo", repo, code=0).stdout
    assert tree(repo) == before
    assert not (repo / "not").exists()
    assert "Plan: 6 to create, 0 to change, 0 to delete." in out
    said = " ".join(out.split())
    assert "does not exist yet" in said and "parity apply" in said


def test_read_only_commands_on_a_missing_registry_fail_and_create_nothing(
    repo: Path, tmp_path: Path
):
    out = tmp_path / "training.parquet"
    before = tree(repo)
    for command in read_only_commands(repo, out):
        result = parity(*command, code=1)
        said = " ".join(result.stderr.split())
        assert "registry" in said and "does not exist" in said, (command, said)
        assert str(repo / "not/there/yet/registry.db") in said, (command, said)
        assert "parity apply" in said, (command, said)
        assert tree(repo) == before, command
        assert not out.exists(), command
    version = parity("version", "--repo", repo, code=0).stdout
    assert "not/there/yet/registry.db" in version
    assert tree(repo) == before


def test_apply_still_creates_the_registry_and_then_the_commands_work(repo: Path):
    parity("apply", "--repo", repo, code=0)
    assert (repo / "not/there/yet/registry.db").is_file()
    assert VIEW in parity("list", "views", "--repo", repo, code=0).stdout
    assert "No changes" in parity("plan", "--repo", repo, code=0).stdout


# -- PostgreSQL: a missing schema is not created ----------------------------------------------


@pytest.fixture
def missing_schema() -> Iterator[str]:
    """A schema name nobody created; dropped afterwards in case a command created it."""
    name = f"parity_test_ro_{uuid.uuid4().hex[:10]}"
    yield name
    engine = sa.create_engine(POSTGRES_URL)
    with engine.begin() as conn:
        conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
    engine.dispose()


def schema_exists(name: str) -> bool:
    engine = sa.create_engine(POSTGRES_URL, connect_args={"connect_timeout": 5})
    try:
        with engine.connect() as conn:
            found = conn.execute(
                sa.text("SELECT 1 FROM information_schema.schemata WHERE schema_name = :s"),
                {"s": name},
            ).first()
    finally:
        engine.dispose()
    return found is not None


@pytest.mark.postgres
def test_read_only_commands_on_a_missing_postgres_schema_create_nothing(
    repo: Path, missing_schema: str, tmp_path: Path
):
    set_registry(repo, f"{{ url: '{POSTGRES_URL}', schema: {missing_schema} }}")
    out = parity("plan", "--repo", repo, code=0).stdout
    assert "Plan: 6 to create" in out
    for command in read_only_commands(repo, tmp_path / "training.parquet"):
        said = " ".join(parity(*command, code=1).stderr.split())
        assert "does not exist" in said and missing_schema in said, (command, said)
    assert not schema_exists(missing_schema)
    parity("apply", "--repo", repo, code=0)
    assert schema_exists(missing_schema)
    assert VIEW in parity("list", "views", "--repo", repo, code=0).stdout
