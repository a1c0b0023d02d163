"""Parity tokens on the SQLite and PostgreSQL registries: issued once, kept hashed, refused
when forged, expired or revoked (each with its code, each recorded), the bootstrap of the
first admin, management needing admin, and the per-process cache."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parity import AuthenticationError, FeatureStore, GovernanceError, PermissionDeniedError
from parity.governance import tokens
from parity.governance.context import Actor, acting_as
from parity.registry.models import tokens as table

from .access_utils import ROLES, Now


def _bootstrap(repo: Path, clock: Now | None = None) -> tuple[FeatureStore, str]:
    """The first admin token (made by the local user) and a store acting with it; the
    repo's roles applied."""
    local = FeatureStore(repo, clock=clock)
    issued = local.governance.create_token("root", ["admin"], description="bootstrap")
    admin = FeatureStore(repo, principal=issued.token, clock=clock)
    admin.apply()
    return admin, issued.token


def test_a_token_is_shown_once_and_only_its_hash_is_kept(auth_repo: Path) -> None:
    admin, _ = _bootstrap(auth_repo)
    issued = admin.governance.create_token("alice", ["reader"], expires="30d", description="ci")
    token_id, secret = issued.token.removeprefix("parity_").split(".")
    assert token_id == issued.record.id and len(secret) >= 43
    assert secret not in repr(issued) and secret not in repr(issued.record)
    with admin.registry._read("test") as conn:
        rows = conn.execute(sa.select(table)).all()
    dumped = repr([tuple(r) for r in rows])
    assert secret not in dumped and issued.token not in dumped
    [rec] = [t for t in admin.governance.tokens() if t.id == token_id]
    assert rec.principal == "alice" and rec.roles == ("reader",) and rec.description == "ci"
    assert rec.expires_at is not None and rec.created_by == "root"
    actor = tokens.authenticate(admin, issued.token)
    assert actor == Actor("alice", roles=("reader",), via="token", token_id=token_id)


def test_the_first_admin_token_only_while_there_is_none(auth_repo: Path) -> None:
    local = FeatureStore(auth_repo)
    first = local.governance.create_token("root", ["admin"])
    assert first.record.created_by.endswith(":bootstrap")
    with pytest.raises(PermissionDeniedError) as err:
        FeatureStore(auth_repo).governance.create_token("mallory", ["admin"])
    assert err.value.code == "forbidden"
    # a principal named in code is no local user: no bootstrap for it
    admin = FeatureStore(auth_repo, principal=first.token)
    admin.governance.revoke_token(first.record.id)
    with pytest.raises(PermissionDeniedError):
        FeatureStore(auth_repo, principal=Actor("x", via="principal")).governance.create_token(
            "x", ["admin"]
        )
    # with every admin token revoked, the local user may bootstrap again
    assert FeatureStore(auth_repo).governance.create_token("root2", ["admin"]).token


def test_token_management_needs_admin(auth_repo: Path) -> None:
    admin, _ = _bootstrap(auth_repo)
    reader = admin.governance.create_token("bob", ["reader"])
    bob = FeatureStore(auth_repo, principal=reader.token)
    for attempt in (
        lambda: bob.governance.tokens(),
        lambda: bob.governance.create_token("eve", ["admin"]),
        lambda: bob.governance.revoke_token(reader.record.id),
    ):
        with pytest.raises(PermissionDeniedError, match=r"'bob'.*may not admin"):
            attempt()


@pytest.mark.parametrize(
    ("change", "code"),
    [
        (lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"), "invalid_token"),  # forged secret
        (lambda t: "parity_0123456789abcdef." + t.split(".")[1], "invalid_token"),  # other id
        (lambda t: t.split(".")[0], "invalid_token"),  # no secret
        (lambda t: t + "x", "invalid_token"),
        (lambda t: "parity_", "invalid_token"),
        (lambda t: "a.b.c", "invalid_token"),  # a "JWT" while none are configured
    ],
)
def test_bad_tokens_are_refused_without_repeating_them(auth_repo: Path, change, code) -> None:
    admin, token = _bootstrap(auth_repo)
    bad = change(token)
    with pytest.raises(AuthenticationError) as err:
        tokens.authenticate(admin, bad)
    assert err.value.code == code
    assert bad not in str(err.value) and token.split(".")[1] not in str(err.value)


def test_expired_and_revoked_tokens(auth_repo: Path) -> None:
    clock = Now()
    admin, _ = _bootstrap(auth_repo, clock)
    short = admin.governance.create_token("carol", ["reader"], expires="1h")
    assert tokens.authenticate(admin, short.token).principal == "carol"
    clock.value += timedelta(hours=2)  # past its expiry: refused even while cached
    with pytest.raises(AuthenticationError) as err:
        tokens.authenticate(admin, short.token)
    assert err.value.code == "token_expired"
    later = admin.governance.create_token("dave", ["reader"])
    assert tokens.authenticate(admin, later.token).principal == "dave"  # cached now (60 s)
    admin.governance.revoke_token(later.record.id)
    with pytest.raises(AuthenticationError) as err:  # at once in this process
        tokens.authenticate(admin, later.token)
    assert err.value.code == "token_revoked"
    assert [t.id for t in admin.governance.tokens() if t.id == later.record.id] == []
    assert later.record.id in {t.id for t in admin.governance.tokens(include_revoked=True)}


def test_bad_requests_name_what_is_wrong(auth_repo: Path) -> None:
    admin, _ = _bootstrap(auth_repo)
    with pytest.raises(GovernanceError, match="'nope' is not defined"):
        admin.governance.create_token("x", ["nope"])
    with pytest.raises(GovernanceError, match="at least one role"):
        admin.governance.create_token("x", [])
    with pytest.raises(GovernanceError, match="expiry"):
        admin.governance.create_token("x", ["reader"], expires="soon")
    with pytest.raises(GovernanceError, match="positive"):
        admin.governance.create_token("x", ["reader"], expires="-1h")
    with pytest.raises(GovernanceError, match="no token with id 'ffffffffffffffff'"):
        admin.governance.revoke_token("ffffffffffffffff")


def test_failures_are_recorded_without_the_token(auth_repo: Path) -> None:
    admin, token = _bootstrap(auth_repo)
    seen: list[dict] = []

    class Recorder:
        enabled = True

        def record(self, **kw):
            seen.append(kw)

    admin.governance.__dict__["audit"] = Recorder()
    forged = token[:-2] + "zz"
    with pytest.raises(AuthenticationError):
        tokens.authenticate(admin, forged)
    assert seen[-1]["outcome"] == "denied" and seen[-1]["detail"] == "invalid_token"
    assert forged not in repr(seen) and token not in repr(seen)
    issued = admin.governance.create_token("erin", ["reader"])
    assert seen[-1]["action"] == "token_create" and issued.token.split(".")[1] not in repr(seen)


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(position=st.integers(min_value=0, max_value=200), char=st.sampled_from("aZ09_-.x"))
def test_any_changed_token_is_refused(tmp_path_factory, position: int, char: str) -> None:
    repo = _sqlite_repo(tmp_path_factory)
    store, token = _CACHED_BOOT[repo]
    i = position % len(token)
    changed = token[:i] + char + token[i + 1 :]
    if changed == token:
        return
    tokens.forget_cached()
    with pytest.raises(AuthenticationError):
        tokens.authenticate(store, changed)


_CACHED_BOOT: dict[Path, tuple[FeatureStore, str]] = {}


def _sqlite_repo(factory) -> Path:
    if not _CACHED_BOOT:
        from repo_utils import write_repo

        root = write_repo(factory.mktemp("fuzz") / "repo", {"roles.yaml": ROLES})
        cfg = root / "parity.yaml"
        cfg.write_text(cfg.read_text() + "auth: {enabled: true}\n")
        local = FeatureStore(root)
        issued = local.governance.create_token("root", ["admin"])
        _CACHED_BOOT[root] = (local, issued.token)
    return next(iter(_CACHED_BOOT))


def test_auth_off_needs_no_admin(tmp_path: Path) -> None:
    from repo_utils import write_repo

    root = write_repo(tmp_path / "open", {})
    store = FeatureStore(root)
    issued = store.governance.create_token("svc", ["admin"])
    with acting_as(Actor("anyone")):
        assert [t.id for t in store.governance.tokens()] == [issued.record.id]
