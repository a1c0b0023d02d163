"""Restrictions are kept in the registry database (SQLite and PostgreSQL): typed by the
entity, refused with every bad key named and nothing changed, listed, lifted, and seen by
another store and another process."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parity import FeatureStore
from parity.errors import GovernanceError
from parity.governance.restrict import canonical_key, parse_keys, restricted_keys, snapshot
from repo_utils import write_repo

DEFS = """
from parity import Entity, Int64, String

user = Entity(name="user", join_keys=["user_id"], dtype=Int64)
shop = Entity(name="shop", join_keys=["shop_code"], dtype=String)
pair = Entity(name="pair", join_keys=["a", "b"], dtype=Int64)
loose = Entity(name="loose", join_keys=["k"])
"""


@pytest.fixture
def repo(tmp_path: Path, registry_yaml: str) -> Path:
    root = write_repo(tmp_path / "repo", {"entities.py": DEFS}, registry=registry_yaml)
    with (root / "parity.yaml").open("a") as f:
        f.write("masking: { restrictions_refresh_seconds: 0 }\n")
    with FeatureStore(root) as store:
        store.apply()
    return root


def test_restrict_list_lift_and_survive_a_restart(repo: Path) -> None:
    with FeatureStore(repo) as store:
        gov = store.governance
        assert gov.restrict("user", [1, 2, 2], reason="art. 18 request") == 2
        assert gov.restrict("user", [2, 3]) == 1  # 2 was restricted already
        assert gov.restrict("shop", ["x-1"]) == 1
        assert gov.restrict("pair", [(1, 2)]) == 1
    with FeatureStore(repo) as store:  # a new process would see the same
        listed = store.governance.restrictions()
        assert [(r.entity, r.key) for r in listed] == [
            ("pair", (1, 2)),
            ("shop", "x-1"),
            ("user", 1),
            ("user", 2),
            ("user", 3),
        ]
        first = next(r for r in listed if r.key == 1)
        assert first.reason == "art. 18 request" and first.restricted_at.tzinfo is not None
        assert first.restricted_by
        assert restricted_keys(store, "user") == {1, 2, 3}
        assert restricted_keys(store, "pair") == {(1, 2)}
        assert store.governance.lift("user", [1, 3, 9]) == 2
        assert restricted_keys(store, "user") == {2}
        assert [r.key for r in store.governance.restrictions("user")] == [2]


@pytest.mark.parametrize(
    ("entity", "keys", "named"),
    [
        ("user", [1, "2"], "key 1 ('2')"),
        ("user", [1, None], "key 1 (None)"),
        ("user", [True], "key 0 (True)"),
        ("shop", [1], "key 0 (1)"),
        ("pair", [1], "one value for each join key"),
        ("pair", [(1, 2, 3)], "one value for each join key"),
        ("loose", [1.5], "int or a string"),
        ("user", [], "no keys"),
        ("nobody", [1], "nobody"),
    ],
)
def test_bad_keys_are_refused_naming_them_and_nothing_changes(
    repo: Path, entity: str, keys: list, named: str
) -> None:
    with FeatureStore(repo) as store:
        with pytest.raises(GovernanceError) as info:
            store.governance.restrict(entity, keys)
        assert named in str(info.value)
        assert store.governance.restrictions() == []


def test_another_process_restriction_is_seen_on_the_next_read(repo: Path) -> None:
    with FeatureStore(repo) as store:
        assert snapshot(store) == {}
        code = textwrap.dedent(
            f"""
            from parity import FeatureStore
            with FeatureStore({str(repo)!r}) as store:
                store.governance.restrict("user", [7])
            """
        )
        subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
        assert snapshot(store) == {"user": frozenset({7})}  # refresh_seconds: 0


@settings(max_examples=40)
@given(
    key=st.integers(-(2**63), 2**63 - 1)
    | st.text(min_size=1, max_size=40)
    | st.tuples(st.integers(), st.integers())
)
def test_canonical_keys_round_trip(key) -> None:
    from parity.governance.restrict import _from_text

    assert _from_text(canonical_key(key)) == key


def test_cli_keys_are_typed_by_the_entity(repo: Path) -> None:
    with FeatureStore(repo) as store:
        catalog = store.catalog()
        assert parse_keys(catalog.entity("user"), "1, 2,") == [1, 2]
        assert parse_keys(catalog.entity("shop"), "a,b") == ["a", "b"]
        assert parse_keys(catalog.entity("pair"), "1:2,3:4") == [(1, 2), (3, 4)]
        assert parse_keys(catalog.entity("loose"), "5,x") == [5, "x"]
        with pytest.raises(GovernanceError, match="'x' is not an integer"):
            parse_keys(catalog.entity("user"), "1,x")
