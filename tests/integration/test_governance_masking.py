"""Masking and restriction on every read path: Python online, HTTP online and historical
retrieval give the same masked values (hypothesis over pushed values), per reader: without
``read_pii`` classified features are masked, a feature with ``purposes`` is unmasked only
for one of them, restricted keys are masked for everyone but ``admin`` (with auth off, for
everyone), on-demand outputs are masked as their inputs are."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.integration.test_server import Server, columns

from parity import FeatureStore
from parity.governance.context import Actor
from parity.governance.masking import hash_key, parse_mask
from parity.types import Float64, Int64, String
from repo_utils import write_parquet, write_repo

T0 = datetime(2024, 1, 1, tzinfo=UTC)
DEFS = """
from datetime import timedelta
from parity import (Entity, FeatureView, Field, FileSource, Float64, Int64, Permission,
                    PushSource, Role, String, on_demand_feature_view)

user = Entity(name="user", join_keys=["user_id"], dtype=Int64)
push = PushSource(name="push", batch_source=FileSource(name="src", path="data/u.parquet"))
profile = FeatureView(name="profile", entities=[user], source=push, ttl=timedelta(days=3650),
    schema=[Field(name="email", dtype=String, pii=True, mask="hash"),
            Field(name="phone", dtype=String, classification="pci", mask="truncate:4"),
            Field(name="age", dtype=Int64, pii=True, mask="hash"),
            Field(name="nickname", dtype=String, classification="confidential"),
            Field(name="motive", dtype=String, pii=True, mask="truncate:1",
                  lawful_basis="legitimate_interests", purposes=["fraud"]),
            Field(name="score", dtype=Float64)])


@on_demand_feature_view(
    sources=[profile[["email", "score"]]],
    schema=[Field(name="domain", dtype=String, mask="truncate:3"),
            Field(name="score2", dtype=Float64, classification="public",
                  classification_reason="a score identifies nobody")])
def derived(row):
    e, s = row["email"], row["score"]
    return {"domain": None if e is None else e.rpartition("@")[2],
            "score2": None if s is None else s * 2}
"""
ROLES = """
from parity import Permission, Role

READS = ["describe", "read_online", "read_offline"]
reader = Role(name="reader", permissions=[Permission(actions=READS, kinds=["*"])])
pii = Role(name="pii", permissions=[Permission(actions=[*READS, "read_pii"], kinds=["*"])])
fraud = Role(name="fraud", permissions=[
    Permission(actions=READS, kinds=["*"]),
    Permission(actions=["read_pii"], kinds=["*"], purposes=["fraud"]),
])
"""
AUTH = """
auth:
  enabled: true
  principals: { ops: [admin], alice: [reader], bob: [pii], carol: [fraud] }
audit: { enabled: false }
"""
FEATURES = [
    "profile:email",
    "profile:phone",
    "profile:age",
    "profile:nickname",
    "profile:motive",
    "profile:score",
    "derived:domain",
    "derived:score2",
]
NAMES = [f.split(":")[1] for f in FEATURES]
TYPES = {"age": Int64, "score": Float64, "score2": Float64}
MASKS = {
    "email": "hash",
    "phone": "truncate:4",
    "age": "hash",
    "nickname": "null",
    "motive": "truncate:1",
    "score": "null",
    "domain": "truncate:3",
    "score2": "null",
}
CLASSIFIED = {"email", "phone", "age", "nickname", "motive", "domain"}


def _make(root: Path, *, auth: bool) -> Path:
    files = {"features.py": DEFS}
    if auth:
        files["roles.py"] = ROLES
    write_repo(root, files)
    with (root / "parity.yaml").open("a") as f:
        f.write("online_store: { type: sqlite, path: data/online.db }\n")
        f.write("masking: { restrictions_refresh_seconds: 0 }\n")
        if auth:
            f.write(AUTH)
    write_parquet(root / "data/u.parquet", _rows([0], [_values(0)]))
    with FeatureStore(root, principal="ops" if auth else None) as store:
        store.apply()
    return root


def _values(i: int) -> dict[str, Any]:
    return {
        "email": f"user{i}@example{i % 3}.com",
        "phone": f"+44 20 7946 {i:04d}",
        "age": 20 + i,
        "nickname": f"nick-{i}",
        "motive": f"chargeback {i}",
        "score": i / 8,
    }


def _rows(ids: list[int], values: list[dict[str, Any]]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {"user_id": ids, "event_timestamp": [T0] * len(ids)}
    for name in ("email", "phone", "age", "nickname", "motive", "score"):
        out[name] = [v[name] for v in values]
    return out


def _push(store: FeatureStore, ids: list[int], values: list[dict[str, Any]]) -> None:
    store.push("push", pd.DataFrame(_rows(ids, values)), to="online_and_offline")


def _masked(store: FeatureStore, name: str, values: list[Any]) -> list[Any]:
    key = hash_key(store.config, store.repo_path)
    return parse_mask(MASKS[name], TYPES.get(name, String), key).values(values)


def _plain(values: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """The unmasked answer for pushed values (the on-demand outputs computed here)."""
    out = {
        n: [v[n] for v in values] for n in ("email", "phone", "age", "nickname", "motive", "score")
    }
    out["domain"] = [v["email"].rpartition("@")[2] for v in values]
    out["score2"] = [v["score"] * 2 for v in values]
    return out


def _online(store: FeatureStore, ids: list[int], **kw: Any) -> dict[str, list[Any]]:
    got = store.get_online_features(FEATURES, entities={"user_id": ids}, **kw).to_dict()
    return {n: got[n] for n in NAMES}


def _historical(store: FeatureStore, ids: list[int], **kw: Any) -> dict[str, list[Any]]:
    frame = pd.DataFrame({"user_id": ids, "event_timestamp": [T0 + timedelta(hours=1)] * len(ids)})
    table = store.get_historical_features(frame, FEATURES, **kw).to_arrow()
    return {n: table.column(n).to_pylist() for n in NAMES}


def _http(server: Server, ids: list[int], token: str | None = None, purpose: str | None = None):
    headers = {}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if purpose is not None:
        headers["X-Parity-Purpose"] = purpose
    body = {"features": FEATURES, "entities": {"user_id": ids}}
    r = server.post("/get-online-features", body, headers=headers)
    assert r.status_code == 200, r.text
    got = columns(r.json())
    return {n: got[n]["values"] for n in NAMES}


# -- auth on --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def auth_repo(tmp_path_factory) -> Path:
    root = _make(tmp_path_factory.mktemp("mask") / "repo", auth=True)
    with FeatureStore(root, principal="ops") as ops:
        _push(ops, [1, 2, 3], [_values(i) for i in (1, 2, 3)])
    return root


@pytest.fixture(scope="module")
def alice_token(auth_repo: Path) -> str:
    with FeatureStore(auth_repo, principal="ops") as ops:
        return str(ops.governance.create_token("alice", ["reader"]).token)


@pytest.fixture(scope="module")
def alice_server(auth_repo: Path, alice_token: str) -> Iterator[Server]:
    # the server acts as alice: through her token on each request (Authorization) and, for
    # a server that does not read it, as its own principal (PARITY_TOKEN)
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    env["PARITY_TOKEN"] = alice_token
    srv = Server(auth_repo, env=env)
    yield srv
    assert srv.stop() == 0, srv.output()


def _expect(
    store: FeatureStore, values: list[dict[str, Any]], hidden: set[str]
) -> dict[str, list[Any]]:
    plain = _plain(values)
    return {n: _masked(store, n, plain[n]) if n in hidden else plain[n] for n in NAMES}


@pytest.mark.parametrize(
    ("principal", "purpose", "hidden"),
    [
        ("alice", None, CLASSIFIED),  # no read_pii
        ("bob", None, {"motive"}),  # read_pii, but motive is for fraud only
        ("bob", "marketing", {"motive"}),
        ("bob", "fraud", set()),
        ("carol", None, CLASSIFIED),  # read_pii only for fraud
        ("carol", "fraud", set()),
        ("ops", None, {"motive"}),  # admin, without the purpose
        ("ops", "fraud", set()),
    ],
)
def test_each_reader_gets_what_its_roles_and_purpose_allow(
    auth_repo: Path, principal: str, purpose: str | None, hidden: set[str]
) -> None:
    values = [_values(i) for i in (1, 2, 3)]
    with FeatureStore(auth_repo, principal=principal) as store:
        want = _expect(store, values, hidden)
        assert _online(store, [1, 2, 3], purpose=purpose) == want
        assert _historical(store, [1, 2, 3], purpose=purpose) == want
    # a mask hides: every masked column differs from the value itself
    plain = _plain(values)
    assert all(want[n] != plain[n] for n in hidden)


_IDS = itertools.count(1000)
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)


@settings(max_examples=15, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.lists(
        st.fixed_dictionaries(
            {
                "email": st.builds(lambda a, b: f"{a}@{b}", TEXT, TEXT),
                "phone": st.none() | TEXT,  # nulls stay null on every path
                "age": st.integers(-(2**63), 2**63 - 1),
                "nickname": TEXT,
                "motive": st.none() | TEXT,  # truncate:1: "" and null take the slow path
                "score": st.floats(-1e9, 1e9, allow_nan=False),
            }
        ),
        min_size=1,
        max_size=5,
    )
)
def test_masking_is_the_same_on_every_path(
    auth_repo: Path, alice_server: Server, alice_token: str, rows: list[dict[str, Any]]
) -> None:
    ids = [next(_IDS) for _ in rows]
    with FeatureStore(auth_repo, principal="ops") as ops:
        _push(ops, ids, rows)
    with FeatureStore(auth_repo, principal="alice") as alice:
        want = _expect(alice, rows, CLASSIFIED)
        assert _online(alice, ids) == want
        assert _historical(alice, ids) == want
    assert _http(alice_server, ids, alice_token) == want


def test_restricted_keys_are_masked_on_every_path_but_for_admin(
    auth_repo: Path, alice_server: Server, alice_token: str
) -> None:
    ids = [next(_IDS) for _ in range(3)]
    values = [_values(i) for i in range(3)]
    with FeatureStore(auth_repo, principal="ops") as ops:
        _push(ops, ids, values)
        ops.governance.restrict("user", [ids[1]], reason="objection")
        try:
            everything = set(NAMES)
            for principal, purpose in [("bob", "fraud"), ("alice", None)]:
                with FeatureStore(auth_repo, principal=principal) as store:
                    base = _expect(store, values, set() if principal == "bob" else CLASSIFIED)
                    row = _expect(store, values[1:2], everything)
                    want = {n: [base[n][0], row[n][0], base[n][2]] for n in NAMES}
                    assert _online(store, ids, purpose=purpose) == want, principal
                    assert _historical(store, ids, purpose=purpose) == want, principal
                    if principal == "alice":
                        assert _http(alice_server, ids, alice_token) == want
            # admin reads them unmasked, with the purpose motive needs
            assert _online(ops, ids, purpose="fraud") == _expect(ops, values, set())
            assert _historical(ops, ids, purpose="fraud") == _expect(ops, values, set())
        finally:
            ops.governance.lift("user", [ids[1]])
        with FeatureStore(auth_repo, principal="bob") as bob:
            assert _online(bob, ids, purpose="fraud") == _expect(bob, values, set())


def test_restricting_needs_admin(auth_repo: Path) -> None:
    from parity.errors import PermissionDeniedError

    with FeatureStore(auth_repo, principal="bob") as bob:
        with pytest.raises(PermissionDeniedError):
            bob.governance.restrict("user", [1])
        with pytest.raises(PermissionDeniedError):
            bob.governance.lift("user", [1])
    with FeatureStore(auth_repo, principal=Actor("ops", roles=("admin",))) as ops:
        assert ops.governance.restrictions() == []


# -- auth off -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def open_repo(tmp_path_factory) -> Path:
    root = _make(tmp_path_factory.mktemp("mask_open") / "repo", auth=False)
    with FeatureStore(root) as store:
        _push(store, [1, 2, 3], [_values(i) for i in (1, 2, 3)])
    return root


def test_with_auth_off_everyone_reads_pii_but_restricted_keys_stay_masked(open_repo: Path) -> None:
    values = [_values(i) for i in (1, 2, 3)]
    srv = Server(open_repo)
    try:
        with FeatureStore(open_repo) as store:
            plain = _expect(store, values, set())
            assert _online(store, [1, 2, 3]) == plain
            assert _historical(store, [1, 2, 3]) == plain
            assert _http(srv, [1, 2, 3]) == plain
            store.governance.restrict("user", [3])
            try:
                row = _expect(store, values[2:], set(NAMES))
                want = {n: [*plain[n][:2], row[n][0]] for n in NAMES}
                assert _online(store, [1, 2, 3]) == want
                assert _historical(store, [1, 2, 3]) == want
                assert _http(srv, [1, 2, 3]) == want  # another process: seen on its next read
            finally:
                store.governance.lift("user", [3])
            assert _http(srv, [1, 2, 3]) == plain
    finally:
        assert srv.stop() == 0, srv.output()


@settings(max_examples=10, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(picked=st.lists(st.booleans(), min_size=3, max_size=3), order=st.permutations([1, 2, 3]))
def test_exactly_the_restricted_rows_are_masked(
    open_repo: Path, picked: list[bool], order: list[int]
) -> None:
    restricted = [k for k, p in zip([1, 2, 3], picked, strict=True) if p]
    with FeatureStore(open_repo) as store:
        if restricted:
            store.governance.restrict("user", restricted)
        try:
            values = {i: _values(i) for i in (1, 2, 3)}
            rows = [values[k] for k in order]
            plain = _expect(store, rows, set())
            masked = _expect(store, rows, set(NAMES))
            want = {
                n: [masked[n][i] if k in restricted else plain[n][i] for i, k in enumerate(order)]
                for n in NAMES
            }
            assert _online(store, order) == want
            assert _historical(store, order) == want
        finally:
            if restricted:
                store.governance.lift("user", restricted)


def test_over_http_each_token_and_purpose_header_gets_its_own_masking(
    auth_repo: Path, alice_server: Server, alice_token: str
) -> None:
    values = [_values(i) for i in (1, 2, 3)]
    with FeatureStore(auth_repo, principal="ops") as ops:
        bob = str(ops.governance.create_token("bob", ["pii"]).token)
        carol = str(ops.governance.create_token("carol", ["fraud"]).token)
        cases = [
            (alice_token, None, CLASSIFIED),
            (alice_token, "fraud", CLASSIFIED),
            (bob, None, {"motive"}),
            (bob, "fraud", set()),
            (carol, None, CLASSIFIED),
            (carol, "fraud", set()),
        ]
        for token, purpose, hidden in cases:
            want = _expect(ops, values, hidden)
            assert _http(alice_server, [1, 2, 3], token, purpose) == want, (purpose, hidden)


PAIR_DEFS = """
from datetime import timedelta
from parity import Entity, FeatureView, Field, FileSource, Int64, PushSource, String

pair = Entity(name="pair", join_keys=["shop", "item"], dtype=String)
push = PushSource(name="pair_push", batch_source=FileSource(name="pair_src", path="data/p.parquet"))
stock = FeatureView(name="stock", entities=[pair], source=push, ttl=timedelta(days=3650),
    schema=[Field(name="count", dtype=Int64), Field(name="note", dtype=String, mask="truncate:2")])
"""


def test_restricted_composite_keys_are_masked_online_and_historical(tmp_path: Path) -> None:
    root = write_repo(tmp_path / "repo", {"features.py": PAIR_DEFS})
    rows = {
        "shop": ["a", "a", "b"],
        "item": ["x", "y", "x"],
        "event_timestamp": [T0] * 3,
        "count": [1, 2, 3],
        "note": ["first", "second", "third"],
    }
    write_parquet(root / "data/p.parquet", rows)
    with FeatureStore(root) as store:
        store.apply()
        store.push("pair_push", pd.DataFrame(rows), to="online_and_offline")
        store.governance.restrict("pair", [("a", "y"), ("b", "y")])
        want = {"count": [1, None, 3], "note": ["first", "se", "third"]}
        entities = {"shop": ["a", "a", "b"], "item": ["x", "y", "x"]}
        got = store.get_online_features(["stock:count", "stock:note"], entities=entities)
        assert {k: got.to_dict()[k] for k in want} == want
        frame = pd.DataFrame({**entities, "event_timestamp": [T0 + timedelta(hours=1)] * 3})
        table = store.get_historical_features(frame, ["stock:count", "stock:note"]).to_arrow()
        assert {k: table.column(k).to_pylist() for k in want} == want


@pytest.mark.parametrize(
    ("principal", "hidden"),
    [("alice", CLASSIFIED - {"domain"}), ("bob", {"motive"}), ("ops", {"motive"})],
)
def test_a_profile_withholds_value_statistics_of_what_the_reader_gets_masked(
    auth_repo: Path, principal: str, hidden: set[str]
) -> None:
    """Top values, extremes and quantiles would show what masking hides; counts stay."""
    value_stats = ("mean", "min", "max", "p50", "histogram", "top")
    with FeatureStore(auth_repo, principal=principal) as store:
        result = store.profile("profile", save=False)
    rows = {r["feature"]: r for r in result.to_pylist()}
    assert set(rows) == {"email", "phone", "age", "nickname", "motive", "score"}
    assert result.summary.get("withheld", []) == sorted(hidden)
    for name, row in rows.items():
        assert row["rows"] >= 3 and row["nulls"] is not None and row["distinct"] >= 3
        shown = [row[s] for s in value_stats if row[s] not in (None, [])]
        if name in hidden:
            assert not shown, f"{principal} sees value statistics of {name}: {shown}"
        else:
            assert shown, f"{principal} lost the statistics of {name}"


@pytest.mark.parametrize(
    ("principal", "withheld"),
    [("alice", {"email", "phone", "age", "nickname", "motive"}), ("bob", {"motive"})],
)
def test_the_monitoring_report_draws_no_values_of_what_the_reader_gets_masked(
    auth_repo: Path, tmp_path: Path, principal: str, withheld: set[str]
) -> None:
    import re

    from parity.monitoring.report import write_report

    with FeatureStore(auth_repo, principal=principal) as store:
        page = write_report(store, tmp_path / "report.html", views=["profile"]).read_text()
    figures = re.findall(r'data-chart="(\w+)" data-label="profile\.(\w+):', page)
    assert {name for kind, name in figures if kind == "withheld"} == withheld
    drawn = {name for kind, name in figures if kind == "histogram"}
    assert drawn and not drawn & withheld
