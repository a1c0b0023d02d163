"""``parity restrict`` / ``parity restrictions``: keys typed by the entity, a listing as a
table and as JSON, lifting, and errors the user can act on (exit 1, nothing changed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli_utils import parity, table_rows
from parity import FeatureStore
from repo_utils import write_repo

DEFS = """
from parity import Entity, Int64, String

user = Entity(name="user", join_keys=["user_id"], dtype=Int64)
pair = Entity(name="pair", join_keys=["a", "b"], dtype=String)
"""


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = write_repo(tmp_path / "repo", {"entities.py": DEFS})
    with FeatureStore(root) as store:
        store.apply()
    return root


def test_restrict_list_and_lift(repo: Path) -> None:
    out = parity(
        "restrict", "--entity", "user", "--keys", "1,2", "--reason", "ticket 7", "--repo", repo
    )
    assert "restricted 2 new key(s) of 'user'" in out.stdout
    out = parity("restrict", "-e", "user", "-k", "2,3", "--repo", repo)
    assert "restricted 1 new key(s) of 'user' (1 already were)" in out.stdout
    parity("restrict", "-e", "pair", "-k", "x:y", "--repo", repo)
    rows = table_rows(parity("restrictions", "--repo", repo).stdout)
    assert [(r[0], r[1], r[4]) for r in rows] == [
        ("pair", "x:y", ""),
        ("user", "1", "ticket 7"),
        ("user", "2", "ticket 7"),
        ("user", "3", ""),
    ]
    doc = json.loads(parity("restrictions", "--entity", "pair", "--json", "--repo", repo).stdout)
    assert [d["key"] for d in doc] == [["x", "y"]]
    out = parity("restrict", "-e", "user", "-k", "1,3,9", "--lift", "--repo", repo)
    assert "lifted the restriction of 2 of 3 key(s)" in out.stdout
    with FeatureStore(repo) as store:
        assert [r.key for r in store.governance.restrictions("user")] == [2]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-e", "user", "-k", "1,x"], "key 'x' is not an integer"),
        (["-e", "nobody", "-k", "1"], "'nobody' not found"),
        (["-e", "pair", "-k", "x"], "one value for each join key"),
    ],
)
def test_bad_input_exits_1_naming_it_and_changes_nothing(repo: Path, args: list[str], message: str):
    out = parity("restrict", *args, "--repo", repo, code=1)
    assert message in out.stderr
    with FeatureStore(repo) as store:
        assert store.governance.restrictions() == []
