"""The HTTP fuzz run with ``auth`` on: every operation of the served document (bearer
security, 401/403 and ``X-Parity-Purpose`` on each but ``/health``) fuzzed with a valid
admin token finds no 5xx and answers as documented; without a token every operation but
``/health`` is a documented 401. SQLite online store; ``PARITY_FUZZ_AUTH_EXAMPLES`` examples
per operation (default 30), derandomized like ``test_http_fuzz.py``."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fuzz_hooks import equal_columns
from fuzz_repo import expected_document, make_fuzz_repo
from hypothesis import HealthCheck, settings
from test_http_fuzz import CHECKS, REQUEST_TIMEOUT_S, no_server_error
from tests.contract.backends import online_store_yaml
from tests.integration.test_server import Server

from parity import FeatureStore
from parity.governance import tokens
from parity.server.openapi_parts import with_bearer_auth

EXAMPLES = int(os.environ.get("PARITY_FUZZ_AUTH_EXAMPLES", "30"))


@pytest.fixture(scope="module")
def auth_server(
    request: pytest.FixtureRequest, tmp_path_factory: Any
) -> Iterator[tuple[Server, str]]:
    online = online_store_yaml("sqlite", request, redis_db=14)
    root = make_fuzz_repo(tmp_path_factory.mktemp("fuzz_auth") / "repo", online)
    with (root / "parity.yaml").open("a") as f:
        f.write("auth: {enabled: true}\n")
    tokens.forget_cached()
    admin = FeatureStore(root).governance.create_token("fuzzer", ["admin"]).token
    srv = Server(root)
    try:
        yield srv, admin
    finally:
        assert srv.stop() == 0, srv.output()


DOCUMENT = with_bearer_auth(expected_document())
"""What a server with auth on serves."""


def _without_security_schemes(doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` minus its security declarations: every request carries the admin token (so
    schemathesis must not leave it out as "negative" data); 401/403 stay documented."""
    doc = json.loads(json.dumps(doc))
    doc.pop("security")
    doc["components"].pop("securitySchemes")
    for item in doc["paths"].values():
        for op in item.values():
            op.pop("security", None)
    return doc


SCHEMA = schemathesis.openapi.from_dict(_without_security_schemes(DOCUMENT))
SCHEMA.config.generation.update(max_examples=EXAMPLES, deterministic=True)


@SCHEMA.hook
def map_case(context: Any, case: Any) -> Any:
    return equal_columns(case)


@SCHEMA.parametrize()
@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_5xx_with_an_admin_token(case: Any, auth_server: tuple[Server, str]) -> None:
    server, token = auth_server
    case.call_and_validate(
        timeout=REQUEST_TIMEOUT_S,
        base_url=server.url,
        checks=[no_server_error(server), *CHECKS],
        headers={
            "X-Request-Id": f"fuzz-{uuid.uuid4().hex[:12]}",
            "Authorization": f"Bearer {token}",
        },
    )


def test_the_served_document_has_bearer_auth(auth_server: tuple[Server, str]) -> None:
    server, token = auth_server
    r = server.client.get("/openapi.json", headers={"Authorization": f"Bearer {token}"})
    assert r.json() == DOCUMENT


def test_every_operation_but_health_needs_a_token(auth_server: tuple[Server, str]) -> None:
    server, _ = auth_server
    for path, item in DOCUMENT["paths"].items():
        concrete = path.replace("{name}", "customer_spend").replace("{id}", "x")
        for method in item:
            r = server.client.request(method.upper(), concrete, content=b"{}")
            if path == "/health":
                assert r.status_code == 200
                continue
            assert r.status_code == 401, (method, path, r.text)
            assert r.json()["error"]["code"] == "unauthenticated"
            assert r.headers["www-authenticate"].startswith("Bearer")
            assert str(r.status_code) in item[method]["responses"]
