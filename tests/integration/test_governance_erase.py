"""``store.governance.erase`` and ``parity erase`` end to end, on the SQLite, Redis and
(third-party, unable to list its keys) memory online stores: every place reached with the
receipt's exact counts, a dry run changing nothing, other keys untouched, the write hooks
seeing the erase (a refusal leaves everything as it was), the audit record holding counts and
never key values, and batch sources left (and listed) unless rewriting is asked for."""

from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from erase_repo import NOW, USERS, make_repo
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.contract.backends import online_store_yaml

from cli_utils import parity, table_rows
from parity import FeatureStore
from parity.discovery import uncounted
from parity.errors import GovernanceError
from parity.governance.places import ERASED, NOT_OWNED, WOULD_ERASE
from parity.hooks import Hooks

REDIS_DB = 9  # keys under a fresh prefix (backends.online_store_yaml)
MERCHANTS = ("m1", "m2")


@pytest.fixture(params=["sqlite", "redis", "memory"])
def repo(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    online = online_store_yaml(request.param, request, redis_db=REDIS_DB)
    root = make_repo(tmp_path / "repo", online)
    yield root
    with FeatureStore(root) as store:
        store.teardown()


def online_users(store: FeatureStore) -> dict[str, set[Any]]:
    """Which users (and user, merchant pairs) have online values (the test's own looks:
    not counted as usage, which would write the registry the dry run must leave alone)."""
    pairs = [(u, m) for u in USERS for m in MERCHANTS]
    with uncounted():
        got = store.get_online_features(["user_stats:amount"], entities={"user_id": USERS})
        both = store.get_online_features(
            ["user_merchant:amount"],
            entities={"user_id": [u for u, _ in pairs], "merchant_id": [m for _, m in pairs]},
        )
    amounts = got.to_dict()["amount"]
    pair_amounts = both.to_dict()["amount"]
    return {
        "user_stats": {u for u, a in zip(USERS, amounts, strict=True) if a is not None},
        "user_merchant": {p for p, a in zip(pairs, pair_amounts, strict=True) if a is not None},
    }


def log_users(folder: Path, column: str = "user_id") -> list[int]:
    out: list[int] = []
    for path in sorted(folder.rglob("*.parquet")):
        table = pq.read_table(path, partitioning=None)
        if column in table.column_names:
            out += table.column(column).to_pylist()
    return sorted(out)


def digest(root: Path) -> dict[str, str]:
    """Every data file's bytes (the online SQLite file included)."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted((root / "data").rglob("*"))
        if p.is_file() and p.suffix in (".parquet", ".csv", ".db")
    }


def counts(receipt: Any) -> dict[tuple[str, str], tuple[int, str]]:
    return {(c.place, c.target): (c.rows, c.status) for c in receipt.counts}


def test_erase_reaches_every_place_with_exact_counts(repo: Path):
    with FeatureStore(repo, clock=lambda: NOW) as store:
        before = online_users(store)
        assert before["user_stats"] == set(USERS)
        receipt = store.governance.erase("user", [1, 2])
        after = online_users(store)
    assert receipt.views == ("user_merchant", "user_profile", "user_stats")
    assert receipt.keys == (1, 2) and not receipt.dry_run
    assert counts(receipt) == {
        ("online", "user_merchant"): (4, ERASED),  # 2 users x 2 merchants, found by scan
        ("online", "user_profile"): (0, ERASED),
        ("online", "user_stats"): (2, ERASED),
        ("offline_log", "events"): (8, ERASED),  # 2 pushes x 2 users x 2 merchants
        ("serving_log", "data/serving_log"): (6, ERASED),  # 2 + 4 served rows
        ("batch_source", "events_file"): (4, NOT_OWNED),
        ("batch_source", "profiles"): (4, NOT_OWNED),
    }
    assert receipt.rows(erased=True) == 20 and receipt.rows(erased=False) == 8
    assert [c.target for c in receipt.not_erased] == ["events_file", "profiles"]
    # other keys untouched, the erased ones gone everywhere Parity owns
    assert after["user_stats"] == {3, 4}
    assert after["user_merchant"] == {(u, m) for u in (3, 4) for m in MERCHANTS}
    assert log_users(repo / "data" / "offline_log") == sorted([3, 4] * 4)
    assert log_users(repo / "data" / "serving_log") == sorted([3, 4] * 3)
    # what Parity does not own is left as it was
    assert sorted(pq.read_table(repo / "data" / "events.parquet")["user_id"].to_pylist()) == sorted(
        USERS * 2
    )
    # a second erase finds nothing left but the sources
    with FeatureStore(repo, clock=lambda: NOW) as store:
        again = store.governance.erase("user", [1, 2])
    assert again.rows(erased=True) == 0 and again.rows(erased=False) == 8


def test_a_dry_run_counts_the_same_and_changes_nothing(repo: Path):
    before = digest(repo)
    with FeatureStore(repo, clock=lambda: NOW) as store:
        online_before = online_users(store)
        dry = store.governance.erase("user", [1, 2], dry_run=True, rewrite_sources=True)
        assert online_users(store) == online_before
    assert digest(repo) == before
    assert dry.dry_run and {c.status for c in dry.counts} == {WOULD_ERASE}
    with FeatureStore(repo, clock=lambda: NOW) as store:
        real = store.governance.erase("user", [1, 2], rewrite_sources=True)
    assert [(c.place, c.target, c.rows) for c in dry.counts] == [
        (c.place, c.target, c.rows) for c in real.counts
    ]


def test_rewrite_sources_erases_the_batch_files_too(repo: Path):
    with FeatureStore(repo, clock=lambda: NOW) as store:
        receipt = store.governance.erase("user", [4], rewrite_sources=True)
        hist = store.get_historical_features(
            pa.table(
                {
                    "user_id": USERS,
                    "event_timestamp": pa.array([NOW] * 4, pa.timestamp("us", tz="UTC")),
                }
            ),
            ["user_profile:city"],
        ).to_arrow()
    assert counts(receipt)[("batch_source", "events_file")] == (2, ERASED)
    assert counts(receipt)[("batch_source", "profiles")] == (2, ERASED)
    assert 4 not in pq.read_table(repo / "data" / "events.parquet")["user_id"].to_pylist()
    text = (repo / "data" / "profiles.csv").read_text()
    assert "city 4" not in text and text.count("\n") == 1 + 2 * 3
    cities = dict(zip(hist["user_id"].to_pylist(), hist["city"].to_pylist(), strict=True))
    assert cities == {1: "city 1", 2: "city 2", 3: "city 3", 4: None}


class Refuse(Hooks):
    def before_write(self, *, kind: str, **_: Any) -> None:
        if kind == "erase":
            raise PermissionError("erase refused by a hook")


class Seen(Hooks):
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def after_write(self, **kw: Any) -> None:
        self.calls.append(kw)


def test_the_erase_is_a_write_the_hooks_see_and_may_refuse(repo: Path):
    before = digest(repo)
    with FeatureStore(repo, clock=lambda: NOW, hooks=[Refuse()]) as store:
        online_before = online_users(store)
        with pytest.raises(PermissionError, match="refused"):
            store.governance.erase("user", [1])
        assert online_users(store) == online_before
    assert digest(repo) == before
    seen = Seen()
    with FeatureStore(repo, clock=lambda: NOW, hooks=[seen]) as store:
        store.governance.erase("user", [1])
    (call,) = [c for c in seen.calls if c["kind"] == "erase"]
    assert call["target"] == "user" and call["rows"] == 1
    assert call["views"] == ("user_merchant", "user_profile", "user_stats")


class Recorder:
    enabled = True

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    def record(self, **kw: Any) -> None:
        self.records.append(kw)

    def close(self) -> None:
        """Nothing spooled to ship (``FeatureStore.close`` closes the audit log)."""


def test_the_receipt_is_audited_as_counts_never_key_values(repo: Path):
    with FeatureStore(repo, clock=lambda: NOW) as store:
        audit = store.governance.__dict__["audit"] = Recorder()
        store.governance.erase("user", [3], dry_run=True)
        store.governance.erase("user", [3])
        with pytest.raises(GovernanceError):
            store.governance.erase("user", ["3"])
    dry, done = audit.records
    assert dry["action"] == done["action"] == "erase_receipt"  # the write hook records "erase"
    assert dry["detail"].startswith("dry run") and done["detail"].startswith("erased")
    assert done["counts"] == {
        "keys": 1,
        "online_rows": 3,
        "offline_log_rows": 4,
        "serving_log_rows": 3,
        "batch_source_rows": 4,
    }
    assert "entity:user" in done["resources"] and "feature_view:user_stats" in done["resources"]
    assert "3" not in repr({k: v for k, v in done.items() if k != "counts"})


@pytest.mark.parametrize(
    ("keys", "message"),
    [(["1"], "pass int('1')"), ([None], "is null"), ([{"user_id": 1, "x": 2}], "not ['x']")],
)
def test_bad_keys_change_nothing(repo: Path, keys: list[Any], message: str):
    before = digest(repo)
    with (
        FeatureStore(repo, clock=lambda: NOW) as store,
        pytest.raises(GovernanceError, match=re.escape(message)),
    ):
        store.governance.erase("user", keys)
    assert digest(repo) == before


def test_the_cli_prints_the_receipt(repo: Path):
    out = parity("erase", "--entity", "user", "--keys", "1,2", "--dry-run", "-r", repo).stdout
    rows = {(r[0], r[1]): r[2:] for r in table_rows(out)}
    assert rows[("online", "user_stats")] == ["2", "-", WOULD_ERASE]
    assert rows[("batch_source", "profiles")] == ["4", "1", NOT_OWNED]
    assert "run again with --rewrite-sources" in out
    bad = parity("erase", "--entity", "user", "--keys", "x", "-r", repo, code=1)
    assert "join key 'user_id' is an integer, not 'x'" in bad.stderr


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_repo(tmp_path_factory.mktemp("erase_template") / "repo")


@settings(max_examples=8, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(erased=st.sets(st.integers(0, 6), min_size=1, max_size=4))
def test_other_keys_are_untouched(template: Path, tmp_path_factory, erased: set[int]):
    root = tmp_path_factory.mktemp("erase_case") / "repo"
    shutil.copytree(template, root)
    with FeatureStore(root, clock=lambda: NOW) as store:
        store.governance.erase("user", sorted(erased))
        left = online_users(store)
    kept = set(USERS) - erased
    assert left["user_stats"] == kept
    assert left["user_merchant"] == {(u, m) for u in kept for m in MERCHANTS}
    assert log_users(root / "data" / "offline_log") == sorted([u for u in USERS if u in kept] * 4)
    assert log_users(root / "data" / "serving_log") == sorted([u for u in USERS if u in kept] * 3)
    table = pq.read_table(root / "data" / "offline_log" / "events", partitioning=None)
    assert pc.all(pc.is_in(table["merchant_id"], value_set=pa.array(MERCHANTS))).as_py()


def test_with_auth_on_a_caller_without_admin_is_refused_before_anything(tmp_path: Path):
    from parity.errors import PermissionDeniedError

    root = make_repo(tmp_path / "repo")
    config = root / "parity.yaml"
    config.write_text(config.read_text() + "auth: { enabled: true, principals: { bob: [] } }\n")
    before = digest(root)
    with FeatureStore(root, clock=lambda: NOW, principal="bob") as store:
        with pytest.raises(PermissionDeniedError, match=r"'bob'.* may not admin"):
            store.governance.erase("user", [1], dry_run=True)
        with pytest.raises(PermissionDeniedError, match=r"'bob'.* may not admin"):
            store.governance.export("user", [1], tmp_path / "out.json")
        with pytest.raises(PermissionDeniedError, match=r"'bob'.* may not admin"):
            store.governance.run_retention(dry_run=True)
    assert digest(root) == before and not (tmp_path / "out.json").exists()


FOLDER_DEFS = """
from parity import Entity, FeatureView, Field, FileSource, Float64, Int64

user = Entity(name="user", join_keys=["user_id"], dtype=Int64)
visits = FileSource(name="visits", path="data/visits")
user_visits = FeatureView(name="user_visits", entities=[user], source=visits,
                          schema=[Field(name="n", dtype=Float64)], online=False)
"""


def test_a_hive_partitioned_folder_source_is_rewritten_by_partition_and_by_column(tmp_path):
    from repo_utils import write_parquet, write_repo

    root = write_repo(tmp_path / "repo", {"features.py": FOLDER_DEFS})
    ts = pa.array([NOW] * 2, pa.timestamp("us", tz="UTC"))
    for u in (1, 2):  # partitions named by the key, the key not in the files
        write_parquet(
            root / "data" / "visits" / f"user_id={u}" / "part-0.parquet",
            {"n": [1.0, 2.0], "event_timestamp": ts},
        )
    with FeatureStore(root, clock=lambda: NOW) as store:
        store.apply()
        dry = store.governance.erase("user", [1], dry_run=True, rewrite_sources=True)
        assert counts(dry)[("batch_source", "visits")] == (2, WOULD_ERASE)
        assert counts(store.governance.erase("user", [1]))[("batch_source", "visits")] == (
            2,
            NOT_OWNED,
        )
        receipt = store.governance.erase("user", [1], rewrite_sources=True)
    assert counts(receipt) == {  # an offline view: nothing online, no push source, no log
        ("serving_log", "data/serving_log"): (0, ERASED),
        ("batch_source", "visits"): (2, ERASED),
    }
    assert not (root / "data" / "visits" / "user_id=1" / "part-0.parquet").exists()
    assert (root / "data" / "visits" / "user_id=2" / "part-0.parquet").exists()
