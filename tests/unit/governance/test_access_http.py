"""The server's side of authentication, without a server: the Authorization header's
forms, the purpose header, and the OpenAPI document with auth on."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from parity import AuthenticationError
from parity.governance.context import Actor, current
from parity.server.auth import OPEN_PATHS, ServerAuth
from parity.server.errors import CODES, ApiError
from parity.server.openapi import openapi_document
from parity.server.openapi_parts import with_bearer_auth


class _Store:
    def __init__(self) -> None:
        self.recorded: list[dict[str, Any]] = []
        self.governance = SimpleNamespace(
            audit=SimpleNamespace(record=lambda **kw: self.recorded.append(kw))
        )


@pytest.fixture
def auth(monkeypatch: pytest.MonkeyPatch) -> ServerAuth:
    good = Actor("alice", roles=("reader",), via="token", token_id="0" * 16)

    def fake(store: Any, token: str) -> Actor:
        if token != "parity_good.secret":
            raise AuthenticationError("invalid token", code="invalid_token")
        return good

    monkeypatch.setattr("parity.server.auth.authenticate", fake)
    return ServerAuth(_Store())  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("header", "code"),
    [
        (None, "unauthenticated"),
        (b"", "unauthenticated"),
        (b"Bearer", "unauthenticated"),
        (b"Bearer    ", "unauthenticated"),
        (b"Basic dXNlcjpwYXNz", "unauthenticated"),
        (b"Bearer \xff\xfe", "invalid_token"),
        (b"Bearer parity_bad.secret", "invalid_token"),
    ],
)
def test_bad_authorization_headers(auth: ServerAuth, header: bytes | None, code: str) -> None:
    with pytest.raises(AuthenticationError) as err:
        auth.actor(header, None)
    assert err.value.code == code and err.value.http_status == 401
    assert CODES[code] == 401


def test_refusals_are_recorded(auth: ServerAuth) -> None:
    with pytest.raises(AuthenticationError):
        auth.actor(None, None)
    assert auth.store.recorded[-1]["outcome"] == "denied"  # type: ignore[attr-defined]


def test_a_good_token_any_case_of_bearer_and_a_purpose(auth: ServerAuth) -> None:
    assert auth.actor(b"bearer parity_good.secret", None).principal == "alice"
    assert auth.actor(b"Bearer  parity_good.secret ", b"fraud").purpose == "fraud"
    with pytest.raises(ApiError) as err:
        auth.actor(b"Bearer parity_good.secret", b"not ok!")
    assert err.value.code == "invalid_request"


def test_enter_sets_the_actor_until_exit(auth: ServerAuth) -> None:
    assert current() is None
    token = auth.enter(b"Bearer parity_good.secret", b"fraud")
    assert current() is not None and current().purpose == "fraud"  # type: ignore[union-attr]
    ServerAuth.exit(token)
    assert current() is None


def test_the_document_with_auth() -> None:
    doc = with_bearer_auth(openapi_document(None))
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert doc["security"] == [{"bearer": []}]
    for path, item in doc["paths"].items():
        for op in item.values():
            if path in OPEN_PATHS:
                assert op["security"] == [] and "401" not in op["responses"]
            else:
                assert {"400", "401", "403"} <= set(op["responses"]), path
                assert any(p["name"] == "X-Parity-Purpose" for p in op["parameters"])
