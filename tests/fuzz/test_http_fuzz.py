"""Schemathesis over the server's own ``/openapi.json``: no 5xx, documented errors, answers
that conform to the document, on the SQLite and the Redis online store.

One ``parity serve`` per online store for the module (127.0.0.1, a free port), serving the
repo of ``fuzz_repo.py`` with data in it. Every operation of the document is fuzzed with
bodies built from it, valid and invalid ones: its enums name the repo's real views, services,
push sources and columns, and a hook (``fuzz_hooks.py``) gives valid bodies columns of equal
length, so valid requests get past validation into the store code.
Each answer must:

- not be a 5xx (``online_store_unavailable`` is a documented 503 for a store that is down;
  here it never is, so it fails the run too);
- be documented: its status listed for the operation, its body matching the status's schema;
- when an error, be ``{"error": {"code", "message", "request_id"}}`` with a code from
  ``parity.server.errors.CODES`` whose status is the answer's, and the request id the
  ``X-Request-Id`` header's;
- refuse (4xx) a body the document says is invalid.

Bounded and reproducible: ``PARITY_FUZZ_EXAMPLES`` examples per operation (default 100: a
minute or two for both stores on a quiet machine), derandomized (the same requests on every run, so CI
is reproducible), no deadline, no example database. ``make fuzz`` runs it much longer
(``PARITY_FUZZ_EXAMPLES=1500``; set ``PARITY_FUZZ_SEED`` to explore other inputs).
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import schemathesis
from fuzz_hooks import equal_columns
from fuzz_repo import CUSTOMERS, expected_document, make_fuzz_repo
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)
from tests.contract.backends import online_store_yaml
from tests.integration.test_server import Server

from parity import FeatureStore
from parity.clock import MAX_TIME, MIN_TIME
from parity.server.errors import CODES

ONLINE_STORES = ["sqlite", "redis"]
REDIS_DB = 14  # this module's own database on the shared local Redis (keys under a fresh prefix)
EXAMPLES = int(os.environ.get("PARITY_FUZZ_EXAMPLES", "100"))
SEED = os.environ.get("PARITY_FUZZ_SEED")
"""Unset: derandomized (hypothesis derives the examples from the test, the same every run);
an integer: that seed's examples."""


@pytest.fixture(scope="module", params=ONLINE_STORES)
def fuzz_server(request: pytest.FixtureRequest, tmp_path_factory: Any) -> Iterator[Server]:
    online = online_store_yaml(request.param, request, redis_db=REDIS_DB)
    root = make_fuzz_repo(tmp_path_factory.mktemp(f"fuzz_{request.param}") / "repo", online)
    srv = Server(root)
    try:
        yield srv
    finally:
        code = srv.stop()
        with FeatureStore(root) as store:  # Redis keys outlive the tmp folder
            store.teardown()
        assert code == 0, srv.output()


REQUEST_TIMEOUT_S = 120
"""A bound on one request, not a speed check: a generated materialization may take seconds
on a busy machine."""

SCHEMA = schemathesis.openapi.from_dict(expected_document())
SCHEMA.config.generation.update(max_examples=EXAMPLES, deterministic=SEED is None)
"""Built at collection time from the repo's definitions (one test per operation and store);
``test_the_server_serves_this_document`` checks the server answers the same document."""


@SCHEMA.hook
def map_case(context: Any, case: Any) -> Any:
    return equal_columns(case)


def error_contract(ctx: Any, response: Any, case: Any) -> bool | None:
    """An error answer is the documented envelope, with a known code of the answer's status
    and the request id of the ``X-Request-Id`` header."""
    if response.status_code < 400:
        return None
    body = response.json()
    assert isinstance(body, dict) and set(body) == {"error"}, f"not an error envelope: {body!r}"
    err = body["error"]
    assert {"code", "message", "request_id"} <= set(err), f"error lacks a member: {err!r}"
    assert err["code"] in CODES, f"undocumented code {err['code']!r}"
    assert CODES[err["code"]] == response.status_code, (
        f"code {err['code']!r} is documented as {CODES[err['code']]}, "
        f"answered {response.status_code}"
    )
    assert isinstance(err["message"], str) and err["message"], f"empty message: {err!r}"
    sent = response.headers.get("x-request-id") or [None]  # each header a list of values
    assert err["request_id"] == sent[0], f"request_id {err['request_id']!r}, header {sent!r}"
    return None


def server_log_entry(server: Server, request_id: str) -> str:
    """The server's log lines for one request: its error line and the traceback after it."""
    lines = server.output().splitlines()
    out: list[str] = []
    for line in lines:
        if out and _LOG_LINE.match(line):
            break
        if out or f"request_id={request_id} " in line:
            out.append(line)
    return "\n".join(out) or f"(no log line for request_id={request_id})"


_LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d")


def no_server_error(server: Server) -> Any:
    """``not_a_server_error`` with the server's traceback for the request in the failure."""

    def no_5xx(ctx: Any, response: Any, case: Any) -> bool | None:
        if response.status_code >= 500:
            rid = (response.headers.get("x-request-id") or ["?"])[0]
            raise AssertionError(
                f"{response.status_code} {response.text[:300]}\nserver log:\n"
                + server_log_entry(server, rid)
            )
        return None

    return no_5xx


CHECKS = [
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
    error_contract,
]


@SCHEMA.parametrize()
@(seed(int(SEED)) if SEED else lambda test: test)
@settings(
    max_examples=EXAMPLES,
    derandomize=SEED is None,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_5xx_and_answers_as_documented(case: Any, fuzz_server: Server) -> None:
    case.call_and_validate(
        timeout=REQUEST_TIMEOUT_S,
        base_url=fuzz_server.url,
        checks=[no_server_error(fuzz_server), *CHECKS],
        headers={"X-Request-Id": f"fuzz-{uuid.uuid4().hex[:12]}"},
    )


def test_the_server_serves_this_document(fuzz_server: Server) -> None:
    """What the fuzz tests are generated from is what the server documents."""
    assert fuzz_server.client.get("/openapi.json").json() == SCHEMA.raw_schema


def test_the_document_names_the_repo(fuzz_server: Server) -> None:
    """The document enumerates the served repo's objects (what lets the fuzzer reach the store
    code): its feature references, services, push source columns, join keys."""
    doc = fuzz_server.client.get("/openapi.json").json()
    online = doc["paths"]["/get-online-features"]["post"]["requestBody"]["content"]
    by_features, by_service = online["application/json"]["schema"]["oneOf"]
    refs = by_features["properties"]["features"]["items"]["enum"]
    assert "customer_spend:amount_sum_1h" in refs and "checkout_risk:risky" in refs
    assert "merchant_audit:orders_7d" not in refs  # offline only: always refused
    assert by_service["properties"]["feature_service"]["enum"] == ["checkout_svc", "merchant_svc"]
    columns = by_features["properties"]["entities"]["properties"]
    assert columns["customer_id"]["items"]["type"] == "integer"
    assert columns["merchant_code"]["items"] == {"type": "string"}
    assert columns["basket_total"]["items"] == {"type": "number"}  # a request field: never null
    push = doc["paths"]["/push"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert push["properties"]["push_source_name"] == {"const": "customer_events"}
    df = push["properties"]["df"]
    assert set(df["required"]) == {
        "customer_id",
        "event_timestamp",
        "age",
        "score",
        "tier",
        "verified",
        "signup_at",
        "recent_scores",
        "tags",
        "amount",
        "qty",
    }
    assert df["properties"]["tags"]["items"]["items"] == {"type": ["string", "null"]}
    path = doc["paths"]["/feature-views/{name}"]["get"]["parameters"][0]["schema"]
    assert path["enum"] == [  # on-demand views too
        "checkout_risk",
        "customer_profile",
        "customer_spend",
        "merchant_audit",
        "merchant_stats",
    ]


# -- valid writes, then reads ------------------------------------------------------------------
# The schema-driven run sends mostly bodies the server refuses at the edge; this one sends only
# rows the document says are valid, every value set, times inside the supported range, and
# reads them back through every kind of view: what a push accepts must never break a read.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
TIMES = st.datetimes(
    min_value=MIN_TIME.replace(tzinfo=None),
    max_value=MAX_TIME.replace(tzinfo=None) - timedelta(microseconds=1),
    timezones=st.just(UTC),
)
NOW = datetime.now(UTC).replace(microsecond=0)
EVENT_TIMES = st.one_of(  # half of them recent, inside the aggregated view's windows
    st.timedeltas(timedelta(0), timedelta(hours=1)).map(lambda d: NOW - d), TIMES
)
FLOATS = st.floats(allow_nan=False, allow_infinity=False, width=64)
INTS = st.integers(INT64_MIN, INT64_MAX)


@st.composite
def valid_pushes(draw: Any) -> dict[str, list[Any]]:
    """1-3 rows for ``customer_events``, each value valid by the document and not null."""
    n = draw(st.integers(1, 3))
    col = lambda s: draw(st.lists(s, min_size=n, max_size=n))  # noqa: E731
    return {
        "customer_id": col(st.sampled_from(CUSTOMERS[:5])),
        "event_timestamp": [t.isoformat() for t in col(EVENT_TIMES)],
        "age": col(INTS),
        "score": col(FLOATS),
        "tier": col(st.text(max_size=8)),
        "verified": col(st.booleans()),
        "signup_at": [t.isoformat() for t in col(TIMES)],
        "recent_scores": col(st.lists(FLOATS, min_size=1, max_size=3)),
        "tags": col(st.lists(st.text(max_size=4), min_size=1, max_size=2)),
        "amount": col(st.floats(-(2.0**62), 2.0**62, allow_nan=False)),
        "qty": col(INTS),
    }


READS: list[dict[str, Any]] = [
    {"features": ["customer_profile:*"]},
    {"features": ["customer_spend:*"]},
    {"feature_service": "checkout_svc"},
]


@given(rows=valid_pushes(), to=st.sampled_from(["online", "online_and_offline"]))
@settings(
    max_examples=max(EXAMPLES // 2, 10),
    derandomize=SEED is None,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_valid_pushes_never_break_reads(fuzz_server: Server, rows: dict[str, Any], to: str) -> None:
    r = fuzz_server.client.post(
        "/push",
        content=json.dumps({"push_source_name": "customer_events", "df": rows, "to": to}),
    )
    assert r.status_code < 500, f"{r.status_code} {r.text}\n" + server_log_entry(
        fuzz_server, r.headers["x-request-id"]
    )
    ids = [*sorted(set(rows["customer_id"])), CUSTOMERS[10]]  # and one the push did not touch
    n = len(ids)
    for read in READS:
        body = {
            **read,
            "entities": {"customer_id": ids, "basket_total": [1.5] * n, "items": [2] * n},
        }
        got = fuzz_server.client.post("/get-online-features", content=json.dumps(body))
        assert got.status_code == 200, (
            f"push {r.status_code} {r.text[:200]}\nthen {read}: {got.status_code} {got.text}\n"
            + server_log_entry(fuzz_server, got.headers["x-request-id"])
        )
