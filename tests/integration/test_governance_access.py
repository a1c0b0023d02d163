"""Access control on every path, table-driven: each action allowed by a role that grants only
it and refused (403 ``forbidden``, recorded) to a role that grants every other action, over
the Python API and over HTTP; purposes on reads; listings show only what may be described.

One applied repo with ``auth`` on (the scaffold plus the push-fed views of test_server.py)
and one server for the module; a token per role.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from test_server import SCAFFOLD_NOW, Server, make_repo, push_rows

from parity import Entity, FeatureStore, PermissionDeniedError
from parity.governance import tokens
from parity.governance.access import ACTIONS

GRANTED = [a for a in ACTIONS if a not in ("admin", "read_pii")]
"""The actions each checked on its own (admin grants all; read_pii is the masking part's)."""


def _roles_yaml() -> str:
    docs = []
    for action in [*GRANTED, "read_pii"]:
        others = [a for a in ACTIONS if a not in (action, "admin")]
        docs.append(f"- {{name: only_{action}, permissions: [{{actions: [{action}]}}]}}")
        docs.append(
            f"- {{name: all_but_{action}, permissions: [{{actions: [{', '.join(others)}]}}]}}"
        )
    docs.append(
        "- {name: fraud_reader, permissions: [{actions: [read_online], kinds: [feature_view], "
        "names: ['driver_live'], purposes: [fraud, chargeback]}]}"
    )
    docs.append(
        "- {name: live_only, permissions: [{actions: [describe], kinds: [feature_view], "
        "names: ['driver_l*']}]}"
    )
    return "roles:\n" + "\n".join("  " + d for d in docs) + "\n"


@pytest.fixture(scope="module")
def repo(tmp_path_factory: Any) -> Iterator[Path]:
    root = make_repo(tmp_path_factory.mktemp("gov") / "repo", None)
    (root / "roles.yaml").write_text(_roles_yaml())
    with (root / "parity.yaml").open("a") as f:
        f.write("auth: {enabled: true}\n")
    tokens.forget_cached()
    root_token = FeatureStore(root).governance.create_token("root", ["admin"]).token
    FeatureStore(root, principal=root_token).apply()
    (root / ".admin").write_text(root_token)
    yield root
    with FeatureStore(root, principal=root_token) as fs:
        fs.teardown()


@pytest.fixture(scope="module")
def token(repo: Path) -> Callable[[str], str]:
    admin = FeatureStore(repo, principal=(repo / ".admin").read_text())
    made: dict[str, str] = {}

    def of(role: str) -> str:
        if role not in made:
            made[role] = admin.governance.create_token(f"p_{role}", [role]).token
        return made[role]

    return of


@pytest.fixture(scope="module")
def server(repo: Path) -> Iterator[Server]:
    srv = Server(repo)
    yield srv
    assert srv.stop() == 0, srv.output()


# -- the operations, one per action --------------------------------------------------------

END = "2024-01-04T00:00:00"


def _rows(ids: list[int], conv: float) -> dict[str, list[Any]]:
    """``push_rows`` with datetimes, as Python callers send them."""
    rows = push_rows(ids, conv)
    rows["event_timestamp"] = [datetime.fromisoformat(t) for t in rows["event_timestamp"]]
    return rows


PYTHON: dict[str, Callable[[FeatureStore], Any]] = {
    "describe": lambda s: s.get_feature_view("driver_live"),
    "apply": lambda s: s.apply([Entity("extra_thing", join_keys=["extra_id"])]),
    "read_online": lambda s: s.get_online_features(
        ["driver_live:conv_rate"], entities={"driver_id": [1001]}
    ),
    "read_offline": lambda s: s.get_historical_features(
        pd.DataFrame({"driver_id": [1001], "event_timestamp": [SCAFFOLD_NOW]}),
        ["driver_hourly_stats:conv_rate"],
    ).to_arrow(),
    "write_online": lambda s: s.write_to_online_store("driver_live", _rows([1003], 0.1)),
    "write_offline": lambda s: s.push("driver_live_push", _rows([1003], 0.2), to="offline"),
    "materialize": lambda s: s.materialize_incremental(
        datetime(2024, 1, 4, tzinfo=UTC), ["driver_forever"]
    ),
}
HTTP: dict[str, tuple[str, str, Any]] = {
    "describe": ("GET", "/feature-views/driver_live", None),
    "read_online": (
        "POST",
        "/get-online-features",
        {"features": ["driver_live:conv_rate"], "entities": {"driver_id": [1001]}},
    ),
    "write_online": (
        "POST",
        "/write-to-online-store",
        {"feature_view_name": "driver_live", "df": push_rows([1002], 0.3)},
    ),
    "write_offline": (
        "POST",
        "/push",
        {"push_source_name": "driver_live_push", "df": push_rows([1002], 0.4), "to": "offline"},
    ),
    "materialize": (
        "POST",
        "/materialize-incremental",
        {"end_date": END, "feature_views": ["driver_forever"]},
    ),
}
"""``apply`` and ``read_offline`` have no HTTP endpoint; they are checked in Python only."""


def test_every_action_has_its_operations() -> None:
    assert set(PYTHON) == set(GRANTED)
    assert set(HTTP) == set(GRANTED) - {"apply", "read_offline"}


@pytest.mark.parametrize("action", GRANTED)
def test_python_api_allows_and_denies(repo: Path, token: Callable[[str], str], action: str) -> None:
    allowed = FeatureStore(repo, principal=token(f"only_{action}"))
    PYTHON[action](allowed)  # does not raise
    denied = FeatureStore(repo, principal=token(f"all_but_{action}"))
    with pytest.raises(PermissionDeniedError) as err:
        PYTHON[action](denied)
    assert err.value.code == "forbidden"
    assert f"p_all_but_{action}" in str(err.value) and f"may not {action}" in str(err.value)


def _call(server: Server, action: str, bearer: str | None, **headers: str) -> Any:
    method, path, body = HTTP[action]
    if bearer is not None:
        headers["Authorization"] = f"Bearer {bearer}"
    if method == "GET":
        return server.client.get(path, headers=headers)
    return server.post(path, body, headers=headers)


@pytest.mark.parametrize("action", sorted(HTTP))
def test_http_allows_and_denies(server: Server, token: Callable[[str], str], action: str) -> None:
    ok = _call(server, action, token(f"only_{action}"))
    assert ok.status_code == 200, ok.text
    no = _call(server, action, token(f"all_but_{action}"))
    assert no.status_code == 403, no.text
    assert no.json()["error"]["code"] == "forbidden"
    assert no.headers["x-parity-error-code"] == "forbidden"
    assert f"may not {action}" in no.json()["error"]["message"]


@pytest.mark.parametrize("action", sorted(HTTP))
def test_http_without_a_good_token_is_401(
    server: Server, repo: Path, token: Callable[[str], str], action: str
) -> None:
    good = token(f"only_{action}")
    forged = good[:-1] + ("x" if good[-1] != "x" else "y")
    for header, code in (
        (None, "unauthenticated"),
        ("Bearer", "unauthenticated"),
        ("Basic dXNlcjpwYXNz", "unauthenticated"),
        (f"Bearer {forged}", "invalid_token"),
        ("Bearer parity_0123456789abcdef." + "A" * 43, "invalid_token"),
        ("Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJyb290In0.", "invalid_token"),  # alg=none
    ):
        headers = {} if header is None else {"Authorization": header}
        r = _call(server, action, None, **headers)
        assert r.status_code == 401, (header, r.text)
        assert r.json()["error"]["code"] == code
        assert r.headers["www-authenticate"].startswith("Bearer")
        secret = (header or "").partition(" ")[2]
        assert not secret or secret not in r.text  # the credential is never echoed


def test_revoked_and_expired_tokens_over_http(server: Server, repo: Path) -> None:
    admin = FeatureStore(repo, principal=(repo / ".admin").read_text())
    issued = admin.governance.create_token("temp", ["only_describe"], expires="1h")
    assert _call(server, "describe", issued.token).status_code == 200
    admin.governance.revoke_token(issued.record.id)
    # the server is another process: it trusts its cache for auth.token_cache_seconds (1 s)
    deadline = datetime.now(UTC).timestamp() + 30
    while True:
        r = _call(server, "describe", issued.token)
        if r.status_code == 401 or datetime.now(UTC).timestamp() > deadline:
            break
    assert r.status_code == 401 and r.json()["error"]["code"] == "token_revoked"


def test_the_feast_error_shape_keeps_the_status(
    server: Server, token: Callable[[str], str]
) -> None:
    r = _call(server, "read_online", None, **{"X-Parity-Errors": "feast"})
    assert r.status_code == 401 and r.headers["x-parity-error-code"] == "unauthenticated"
    r = _call(server, "read_online", token("all_but_read_online"), **{"X-Parity-Errors": "feast"})
    assert r.status_code == 403 and "forbidden" in r.text


def test_purposes_over_http_and_python(
    server: Server, repo: Path, token: Callable[[str], str]
) -> None:
    bearer = token("fraud_reader")
    for purpose, status in ((None, 403), ("fraud", 200), ("chargeback", 200), ("marketing", 403)):
        headers = {} if purpose is None else {"X-Parity-Purpose": purpose}
        r = _call(server, "read_online", bearer, **headers)
        assert r.status_code == status, (purpose, r.text)
        if status == 403:
            assert r.json()["error"]["code"] == "purpose_not_allowed"
    r = _call(server, "read_online", bearer, **{"X-Parity-Purpose": "no spaces allowed"})
    assert r.status_code == 400
    store = FeatureStore(repo, principal=bearer)
    refs, ents = ["driver_live:conv_rate"], {"driver_id": [1001]}
    store.get_online_features(refs, entities=ents, purpose="fraud")
    for purpose in (None, "marketing"):
        with pytest.raises(PermissionDeniedError) as err:
            store.get_online_features(refs, entities=ents, purpose=purpose)
        assert err.value.code == "purpose_not_allowed"


def test_listings_show_what_may_be_described(
    server: Server, repo: Path, token: Callable[[str], str]
) -> None:
    bearer = token("live_only")
    r = server.client.get("/feature-views", headers={"Authorization": f"Bearer {bearer}"})
    assert [v["name"] for v in r.json()["feature_views"]] == ["driver_live"]
    r = server.client.get("/entities", headers={"Authorization": f"Bearer {bearer}"})
    assert r.json() == {"entities": []}
    store = FeatureStore(repo, principal=bearer)
    assert [v.name for v in store.list_feature_views()] == ["driver_live"]
    assert store.list_feature_services() == []
    with pytest.raises(PermissionDeniedError):
        store.get_feature_view("driver_forever")


def test_health_needs_no_token(server: Server) -> None:
    assert server.client.get("/health").status_code == 200
    assert server.client.get("/ready").status_code == 401


def test_plan_and_history_need_rights(repo: Path, token: Callable[[str], str]) -> None:
    reader = FeatureStore(repo, principal=token("live_only"))
    with pytest.raises(PermissionDeniedError, match="may not apply"):
        reader.plan()
    assert [r.name for r in reader.history("driver_live")] == ["driver_live"]
    with pytest.raises(PermissionDeniedError, match="may not describe"):
        reader.history("driver_forever")
    FeatureStore(repo, principal=token("only_apply")).plan()


def test_one_plan_read_by_many_actors_is_decided_for_each(repo: Path) -> None:
    """A read plan remembers the roles and purposes it passed for; it never lets another
    actor through on that memory (the same store, the same plan, actors in turn)."""
    from parity.governance.context import Actor, acting_as

    refs = ["driver_live:conv_rate"]
    keys = {"driver_id": [1001]}
    allowed = Actor("a", roles=("only_read_online",))
    other = Actor("b", roles=("all_but_read_online",))
    fraud = Actor("c", roles=("fraud_reader",))
    with FeatureStore(repo, principal=(repo / ".admin").read_text()) as store:
        for _ in range(2):  # the second round from the plan's memory
            for actor, purpose, ok in [
                (allowed, None, True),
                (other, None, False),
                (fraud, None, False),
                (fraud, "fraud", True),
                (fraud, "marketing", False),
                (allowed, None, True),
            ]:
                with acting_as(actor):
                    if ok:
                        store.get_online_features(refs, entities=keys, purpose=purpose)
                    else:
                        with pytest.raises(PermissionDeniedError):
                            store.get_online_features(refs, entities=keys, purpose=purpose)


def test_the_servers_memo_of_headers_keeps_the_token_cache_rules(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``ServerAuth`` remembers a header's verification (by its digest): the same actor
    again, a purpose still applied per request, a revocation in this process refused at
    once, and one made elsewhere once ``auth.token_cache_seconds`` passed."""
    import sqlalchemy as sa

    from parity import AuthenticationError
    from parity.registry.models import tokens as table
    from parity.server.auth import ServerAuth

    admin = FeatureStore(repo, principal=(repo / ".admin").read_text())
    auth = ServerAuth(admin)
    assert not any(b"parity_" in k for k in auth._memo)  # (digests only, never a secret)
    for revoke_here in (True, False):
        issued = admin.governance.create_token("memo", ["only_describe"])
        header = b"Bearer " + issued.token.encode()
        first = auth.actor(header, None)
        assert auth.actor(header, None) is first and first.principal == "memo"
        assert auth.actor(header, b"fraud").purpose == "fraud"
        assert all(issued.token.encode() not in k for k in auth._memo)
        if revoke_here:
            admin.governance.revoke_token(issued.record.id)
        else:  # as another process would: the row changes, this process's cache stays
            with admin.registry._engine.begin() as conn:
                conn.execute(
                    sa.update(table)
                    .where(table.c.id == issued.record.id)
                    .values(revoked_at=datetime.now(UTC))
                )
            assert auth.actor(header, None) is first  # trusted for the cache time
            later = tokens.time.monotonic() + admin.config.auth.token_cache_seconds
            monkeypatch.setattr(tokens.time, "monotonic", lambda at=later: at)
        with pytest.raises(AuthenticationError) as err:
            auth.actor(header, None)
        assert err.value.code == "token_revoked"
        monkeypatch.undo()
