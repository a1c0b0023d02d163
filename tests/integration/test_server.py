"""``parity serve`` over real HTTP: every endpoint, every error, a bounded load, SIGTERM.

Each server is a subprocess bound to 127.0.0.1 on a free port, serving a scaffolded repo.
The online store is injectable: add a ``parity.yaml`` ``online_store`` mapping to
ONLINE_STORES and the module runs again against it.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import psutil
import pytest
import yaml

from parity import FeatureStore
from parity.cli.scaffold import create_repo
from parity.server.errors import CODES

ONLINE_STORES: list[dict[str, Any] | None] = [
    None,  # the default SQLite store
    {"type": "redis", "url": "redis://127.0.0.1:6379/4"},  # the suite's own Redis db
]
"""Online store configs to run the module against (parity.yaml's ``online_store``)."""

BIN = Path(sys.executable).parent
LIVE_DEFS = """
from datetime import timedelta
from parity import FeatureService, FeatureView, Field, FileSource, Float64, Int64, PushSource, String

live_push = PushSource(
    name="driver_live_push",
    batch_source=FileSource(
        name="driver_live_batch",
        path="data/driver_stats.parquet",
        timestamp_field="event_timestamp",
        created_timestamp_field="created",
    ),
)
driver_live = FeatureView(
    name="driver_live",
    entities=["driver"],
    source=live_push,
    schema=[
        Field(name="conv_rate", dtype=Float64),
        Field(name="avg_daily_trips", dtype=Int64),
        Field(name="city", dtype=String),
    ],
    ttl=timedelta(days=1),
    description="DESCRIPTION",
)
driver_forever = FeatureView(
    name="driver_forever",
    entities=["driver"],
    source="driver_stats_source",
    schema=[Field(name="lifetime_trips", dtype=Int64)],
)
live_svc = FeatureService(
    name="live_svc", features=[driver_live[["conv_rate", "city"]], driver_forever]
)
"""
DRIVERS = [1001, 1002, 1003, 1004, 1005]
SCAFFOLD_NOW = datetime(2024, 1, 3, 23, tzinfo=UTC)
"""When the scaffolds these tests serve were made: their data is 2024-01-01 to 2024-01-03 23:00."""


# -- helpers -----------------------------------------------------------------------------------
def make_repo(root: Path, online_store: dict[str, Any] | None, description: str = "v1") -> Path:
    """A scaffolded repo plus a push-fed view and a no-ttl view, applied."""
    create_repo("srv", root, now=SCAFFOLD_NOW)
    (root / "live.py").write_text(LIVE_DEFS.replace("DESCRIPTION", description))
    if online_store is not None and online_store.get("type") == "redis":
        # each repo its own keys, so repos of one run never see each other's records
        prefix = online_store.get("key_prefix", "parity_test:")
        online_store = {**online_store, "key_prefix": f"{prefix}{uuid.uuid4().hex[:10]}:"}
    if online_store is not None:
        cfg = yaml.safe_load((root / "parity.yaml").read_text())
        cfg["online_store"] = online_store
        (root / "parity.yaml").write_text(yaml.safe_dump(cfg))
    with FeatureStore(root) as store:
        store.apply()
    return root


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_command() -> list[str]:
    """``parity serve``, the venv's console script (the server's one entry point)."""
    return [str(BIN / "parity"), "serve"]


WAIT_SECONDS = 120.0
"""How long a test waits for a server to come up or to do what it was asked: generous, so
that a busy machine only makes the suite slower, and bounded, so that a broken server fails
the test with its log instead of hanging it."""


def wait_for(
    condition: Any, what: str, log: Any = lambda: "", seconds: float = WAIT_SECONDS
) -> None:
    """Poll ``condition()`` until it is true; after ``seconds`` fail, naming ``what`` and
    showing ``log()`` (a server's output, say)."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not so after {seconds:g} s: {what}\n{log()}")
        time.sleep(0.05)


def kill_tree(proc: subprocess.Popen) -> None:
    """SIGKILL a server and its workers (workers outlive a parent killed alone)."""
    with contextlib.suppress(psutil.NoSuchProcess):
        for child in psutil.Process(proc.pid).children(recursive=True):
            with contextlib.suppress(psutil.NoSuchProcess):
                child.kill()
    proc.kill()


class Server:
    """A ``parity serve`` subprocess; ``stop()`` sends SIGTERM and returns the exit status."""

    def __init__(self, repo: Path, *args: str, env: dict[str, str] | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = repo / f"server-{self.port}.log"
        cmd = [*serve_command(), "--host", "127.0.0.1", "--port", str(self.port)]
        cmd += ["--repo", str(repo), *args]
        self._log = self.log.open("wb")
        if env is None:  # a metrics folder left by an import (Feast's SDK sets one) is not ours
            env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, env=env)
        self.client = httpx.Client(base_url=self.url, timeout=30)
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited {self.proc.returncode}:\n{self.output()}")
            try:
                if self.client.get("/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                kill_tree(self.proc)
                raise AssertionError(f"server did not come up:\n{self.output()}")
            time.sleep(0.05)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> int:
        self.client.close()
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            kill_tree(self.proc)
            raise
        finally:
            self._log.close()
        return code

    def post(self, path: str, body: Any, **kw: Any) -> httpx.Response:
        return self.client.post(path, content=orjson.dumps(body), **kw)


def online(server: Server, **body: Any) -> dict[str, Any]:
    r = server.post("/get-online-features", body)
    assert r.status_code == 200, r.text
    return r.json()


def columns(answer: dict[str, Any]) -> dict[str, dict[str, list[Any]]]:
    names = answer["metadata"]["feature_names"]
    return dict(zip(names, answer["results"], strict=True))


WIRE_STATUS = {
    "present": "PRESENT",
    "missing": "NOT_FOUND",
    "expired": "OUTSIDE_MAX_AGE",
    "invalid": "INVALID",
}
"""The Python API's status -> the incumbent's name on the wire (a present null: NULL_VALUE)."""
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def wire_status(status: str, value: Any) -> str:
    return "NULL_VALUE" if status == "present" and value is None else WIRE_STATUS[status]


def assert_same_as_store(answer: dict[str, Any], resp: Any) -> None:
    """Values, statuses and event times equal ``FeatureStore.get_online_features``'s, with
    the wire's status names and the epoch where Python has no time (key columns too)."""
    expected = resp.to_dict()
    got = columns(answer)
    assert list(got) == list(expected)
    for name, values in expected.items():
        assert got[name]["values"] == values, name
        times = [datetime.fromisoformat(t) for t in got[name]["event_timestamps"]]
        if name in resp.statuses:
            assert got[name]["statuses"] == [
                wire_status(s, v) for s, v in zip(resp.statuses[name], values, strict=True)
            ], name
            assert times == [EPOCH if t is None else t for t in resp.event_timestamps[name]]
        else:
            assert got[name]["statuses"] == ["PRESENT"] * len(values)
            assert times == [EPOCH] * len(values), name


def push_rows(ids: list[int], conv: float, when: datetime | None = None) -> dict[str, list[Any]]:
    when = when or datetime.now(UTC) - timedelta(minutes=1)
    return {
        "driver_id": ids,
        "event_timestamp": [when.isoformat()] * len(ids),
        "conv_rate": [conv + i for i in range(len(ids))],
        "avg_daily_trips": [10 + i for i in range(len(ids))],
        "city": [f"c{i}" for i in ids],
    }


def error_of(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["code"] == code, err
    assert err["message"]
    assert err["request_id"] == r.headers["x-request-id"]
    return err


# -- fixtures ----------------------------------------------------------------------------------
@pytest.fixture(
    scope="module", params=ONLINE_STORES, ids=lambda p: "sqlite" if p is None else p["type"]
)
def online_store(request) -> dict[str, Any] | None:
    return request.param


@pytest.fixture(scope="module")
def repo(tmp_path_factory, online_store) -> Iterator[Path]:
    root = make_repo(tmp_path_factory.mktemp("srv") / "repo", online_store)
    yield root
    teardown(root)


def teardown(repo: Path) -> None:
    """Remove the repo's online data (Redis keys outlive the tmp folder)."""
    with FeatureStore(repo) as fs:
        fs.teardown()


@pytest.fixture(scope="module")
def server(repo) -> Iterator[Server]:
    srv = Server(repo, "--max-body-bytes", "65536")
    # materialize through the server: the sample data is old, so ttl views read as expired
    # and the no-ttl view as present
    r = srv.post("/materialize-incremental", {"end_date": "2024-01-04T00:00:00"})
    assert r.status_code == 200, r.text
    r = srv.post("/push", {"push_source_name": "driver_live_push", "df": push_rows(DRIVERS, 0.5)})
    assert r.status_code == 200, r.text
    yield srv
    assert srv.stop() == 0, srv.output()


@pytest.fixture(scope="module")
def store(repo) -> Iterator[FeatureStore]:
    with FeatureStore(repo) as fs:
        yield fs


# -- endpoints ---------------------------------------------------------------------------------
def test_health_ready_openapi(server):
    assert server.client.get("/health").json() == {"status": "ok"}
    ready = server.client.get("/ready")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    doc = server.client.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    for path in (
        "/get-online-features",
        "/push",
        "/materialize-incremental",
        "/entities",
        "/feature-views",
        "/feature-services",
        "/feature-views/{name}",
        "/health",
        "/ready",
        "/metrics",
    ):
        assert path in doc["paths"], path
    assert set(
        doc["components"]["schemas"]["Error"]["properties"]["error"]["properties"]["code"]["enum"]
    ) == set(CODES)
    assert server.client.get("/health").headers["x-request-id"]
    for path in ("/write-to-online-store", "/materialize", "/materializations", "/", "/docs"):
        assert path in doc["paths"], path


def test_index_and_docs_page(server):
    index = server.client.get("/").json()
    assert index["project"] == "srv" and index["openapi"] == "/openapi.json"
    doc_paths = server.client.get("/openapi.json").json()["paths"]
    assert {e["path"] for e in index["endpoints"]} == set(doc_paths) - {"/"}
    page = server.client.get("/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "/openapi.json" in page.text
    # self-contained: nothing is loaded from another host
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page.text)
    assert "http://" not in page.text and "https://" not in page.text


def test_online_features_equal_the_store(server, store, online_store):
    features = [
        "driver_live:conv_rate",
        "driver_live:avg_daily_trips",
        "driver_live:city",
        "driver_forever:lifetime_trips",
        "driver_hourly_stats:conv_rate",
        "driver_hourly_stats:acc_rate",
        "driver_profile:city",
        "driver_profile:lifetime_trips",
    ]
    entities = {"driver_id": [1001, 1002, 9999, 1005]}
    answer = online(server, features=features, entities=entities, full_feature_names=True)
    resp = store.get_online_features(features, entities=entities, full_feature_names=True)
    assert_same_as_store(answer, resp)
    cols = columns(answer)
    assert cols["driver_id"]["values"] == entities["driver_id"]
    assert cols["driver_live__conv_rate"]["statuses"] == [
        "PRESENT",
        "PRESENT",
        "NOT_FOUND",
        "PRESENT",
    ]
    assert cols["driver_live__conv_rate"]["event_timestamps"][2] == "1970-01-01T00:00:00Z"
    assert cols["driver_id"]["event_timestamps"] == ["1970-01-01T00:00:00Z"] * 4
    assert cols["driver_forever__lifetime_trips"]["statuses"][0] == "PRESENT"
    acc = cols["driver_hourly_stats__acc_rate"]
    if online_store is None:  # Redis drops records an hour after they expired: NOT_FOUND there
        assert acc["statuses"][0] == "OUTSIDE_MAX_AGE"  # old sample data, 1-day ttl
        assert acc["values"][0] is None and acc["event_timestamps"][0]
    # short names when they do not collide
    features = ["driver_live:conv_rate", "driver_live:city", "driver_hourly_stats:acc_rate"]
    answer = online(server, features=features, entities=entities)
    assert_same_as_store(answer, store.get_online_features(features, entities=entities))
    assert answer["metadata"]["feature_names"] == ["driver_id", "conv_rate", "city", "acc_rate"]

    # a service, full feature names, one row
    answer = online(
        server, feature_service="live_svc", entities={"driver_id": [1003]}, full_feature_names=True
    )
    resp = store.get_online_features(
        "live_svc", entities={"driver_id": [1003]}, full_feature_names=True
    )
    assert_same_as_store(answer, resp)
    assert answer["metadata"]["feature_names"] == [
        "driver_id",
        "driver_live__conv_rate",
        "driver_live__city",
        "driver_forever__lifetime_trips",
    ]
    # empty entity lists are fine
    answer = online(server, features=["driver_live:conv_rate"], entities={"driver_id": []})
    assert columns(answer)["conv_rate"]["values"] == []


def test_push_online_offline_and_both(server, store, repo):
    for to, conv in (("online", 0.25), ("offline", 0.75), ("online_and_offline", 0.125)):
        r = server.post(
            "/push",
            {"push_source_name": "driver_live_push", "df": push_rows([1004], conv), "to": to},
        )
        assert r.status_code == 200, r.text
        answer = r.json()
        assert {k: answer[k] for k in ("push_source_name", "to", "rows", "ignored_columns")} == {
            "push_source_name": "driver_live_push",
            "to": to,
            "rows": 1,
            "ignored_columns": [],
        }
        assert answer["replayed"] is False and answer["push_id"]
        if to != "offline":
            answer = online(
                server, features=["driver_live:conv_rate"], entities={"driver_id": [1004]}
            )
            assert columns(answer)["conv_rate"]["values"] == [conv]
    assert list((repo / "data/offline_log/driver_live_push").glob("*.parquet"))


def test_materialize_incremental(server):
    r = server.post(
        "/materialize-incremental",
        {"end_date": "2024-01-05T00:00:00Z", "feature_views": ["driver_forever"]},
    )
    assert r.status_code == 200, r.text
    views = r.json()["views"]
    assert [v["feature_view"] for v in views] == ["driver_forever"]
    assert views[0]["end"] == "2024-01-05T00:00:00Z"


def test_registry_endpoints(server, store):
    got = server.client.get("/entities").json()["entities"]
    assert got == [e.to_spec() for e in store.list_entities()]
    got = server.client.get("/feature-views").json()["feature_views"]
    assert got == [{"kind": "feature_view", **v.to_spec()} for v in store.list_feature_views()]
    got = server.client.get("/feature-services").json()["feature_services"]
    assert got == [s.to_spec() for s in store.list_feature_services()]
    got = server.client.get("/feature-views/driver_live").json()
    assert got == {"kind": "feature_view", **store.get_feature_view("driver_live").to_spec()}
    err = error_of(server.client.get("/feature-views/nope"), 404, "unknown_feature_view")
    assert "nope" in err["message"]


def test_metrics(server):
    online(server, features=["driver_live:conv_rate"], entities={"driver_id": [1001, 1002]})
    server.post("/get-online-features", {"features": ["nope:x"], "entities": {"driver_id": [1]}})
    r = server.client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert (
        'parity_http_requests_total{endpoint="/get-online-features",method="POST",status="200"}'
        in text
    )
    assert (
        'parity_http_request_duration_seconds_bucket{endpoint="/get-online-features",le="0.01"}'
        in text
    )
    assert 'parity_online_view_reads_total{view="driver_live"}' in text
    assert (
        'parity_http_errors_total{code="unknown_feature_view",endpoint="/get-online-features"}'
        in text
    )
    assert "parity_online_cache_hit_ratio" in text


# -- errors ------------------------------------------------------------------------------------
GOOD = {"features": ["driver_live:conv_rate"], "entities": {"driver_id": [1001]}}
ERRORS = [
    ("malformed json", "/get-online-features", b'{"features": [', 400, "malformed_json"),
    ("not an object", "/get-online-features", b"[1, 2]", 400, "invalid_request"),
    (
        "no features",
        "/get-online-features",
        {"entities": {"driver_id": [1]}},
        400,
        "invalid_request",
    ),
    (
        "both",
        "/get-online-features",
        {**GOOD, "feature_service": "live_svc"},
        400,
        "invalid_request",
    ),
    (
        "bad ref",
        "/get-online-features",
        {**GOOD, "features": ["driver_live:"]},
        400,
        "invalid_feature_reference",
    ),
    (
        "ref not a string",
        "/get-online-features",
        {**GOOD, "features": [3]},
        400,
        "invalid_feature_reference",
    ),
    (
        "unknown view",
        "/get-online-features",
        {**GOOD, "features": ["nope:x"]},
        404,
        "unknown_feature_view",
    ),
    (
        "unknown feature",
        "/get-online-features",
        {**GOOD, "features": ["driver_live:nope"]},
        400,
        "unknown_feature",
    ),
    (
        "unknown service",
        "/get-online-features",
        {"feature_service": "nope", "entities": {"driver_id": [1]}},
        404,
        "unknown_feature_service",
    ),
    (
        "missing join key",
        "/get-online-features",
        {**GOOD, "entities": {"customer_id": [1]}},
        400,
        "missing_join_key",
    ),
    (
        "wrong type",  # numeric text is converted; only canonical decimals ("1001")
        "/get-online-features",
        {**GOOD, "entities": {"driver_id": ["01001"]}},
        400,
        "wrong_value_type",
    ),
    (
        "float key",
        "/get-online-features",
        {**GOOD, "entities": {"driver_id": [1001.5]}},
        400,
        "wrong_value_type",
    ),
    (
        "bool key",
        "/get-online-features",
        {**GOOD, "entities": {"driver_id": [True]}},
        400,
        "wrong_value_type",
    ),
    (
        "null key",
        "/get-online-features",
        {**GOOD, "entities": {"driver_id": [None]}},
        400,
        "null_join_key",
    ),
    (
        "not a list",
        "/get-online-features",
        {**GOOD, "entities": {"driver_id": 1001}},
        400,
        "invalid_request",
    ),
    (
        "ragged",
        "/get-online-features",
        {**GOOD, "entities": {"driver_id": [1], "x": [1, 2]}},
        400,
        "invalid_request",
    ),
    ("flag", "/get-online-features", {**GOOD, "full_feature_names": "yes"}, 400, "invalid_request"),
    ("too large", "/get-online-features", b"{" + b" " * 70_000 + b"}", 413, "body_too_large"),
    (
        "push unknown source",
        "/push",
        {"push_source_name": "nope", "df": {"a": [1]}},
        404,
        "unknown_push_source",
    ),
    (
        "push batch source",
        "/push",
        {"push_source_name": "driver_stats_source", "df": {"a": [1]}},
        400,
        "not_a_push_source",
    ),
    (
        "push no column",
        "/push",
        {"push_source_name": "driver_live_push", "df": {"driver_id": [1]}},
        400,
        "invalid_rows",
    ),
    (
        "push bad value",
        "/push",
        {
            "push_source_name": "driver_live_push",
            "df": {**push_rows([1], 0.1), "conv_rate": ["high"]},
        },
        400,
        "invalid_rows",
    ),
    (
        "push bad time",
        "/push",
        {
            "push_source_name": "driver_live_push",
            "df": {**push_rows([1], 0.1), "event_timestamp": ["soon"]},
        },
        400,
        "invalid_rows",
    ),
    (
        "push bad to",
        "/push",
        {"push_source_name": "driver_live_push", "df": push_rows([1], 0.1), "to": "cloud"},
        400,
        "invalid_request",
    ),
    (
        "push df",
        "/push",
        {"push_source_name": "driver_live_push", "df": [1]},
        400,
        "invalid_request",
    ),
    (
        "materialize bad date",
        "/materialize-incremental",
        {"end_date": "tomorrow"},
        400,
        "invalid_request",
    ),
    ("materialize no date", "/materialize-incremental", {}, 400, "invalid_request"),
    (
        "materialize unknown view",
        "/materialize-incremental",
        {"end_date": "2024-01-05", "feature_views": ["nope"]},
        404,
        "unknown_feature_view",
    ),
    ("no such endpoint", "/nope", {}, 404, "not_found"),
]


@pytest.mark.parametrize(
    ("path", "body", "status", "code"), [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS]
)
def test_errors(server, path, body, status, code):
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    r = server.client.post(path, content=content)
    error_of(r, status, code)
    assert server.client.get("/health").status_code == 200  # still up


def test_error_details(server):
    r = server.client.get("/get-online-features")
    error_of(r, 405, "method_not_allowed")
    r = server.post(
        "/get-online-features",
        {**GOOD, "features": ["driver_live:nope"]},
        headers={"X-Request-Id": "abc-123"},
    )
    err = error_of(r, 400, "unknown_feature")
    assert err["request_id"] == "abc-123" and "nope" in err["message"]
    assert "request_id=abc-123" in server.output()
    # the incumbent's shape on request (the server's setting here: Parity's own)
    r = server.post(
        "/get-online-features",
        {**GOOD, "features": ["nope:x"]},
        headers={"X-Parity-Errors": "feast", "X-Request-Id": "feast-1"},
    )
    assert r.status_code == 404 and r.headers["x-parity-error-code"] == "unknown_feature_view"
    detail = orjson.loads(r.json())  # a JSON string holding the detail
    assert detail["module"] == "feast.errors"
    assert detail["class"] == "FeatureViewNotFoundException"
    assert "nope" in detail["message"] and "feast-1" in detail["message"]
    r = server.post("/get-online-features", {**GOOD, "entities": {"driver_id": [1002, "1 001"]}})
    assert "entities.driver_id[1]" in error_of(r, 400, "wrong_value_type")["message"]
    # the incumbent's CLI sends integer keys as text: converted, the same answer as integers
    as_text = online(server, **{**GOOD, "entities": {"driver_id": ["1001", "-5", "1002"]}})
    assert as_text == online(server, **{**GOOD, "entities": {"driver_id": [1001, -5, 1002]}})
    r = server.post("/get-online-features", {**GOOD, "entities": {"customer_id": [1]}})
    assert "driver_id" in error_of(r, 400, "missing_join_key")["message"]


def test_every_code_is_documented():
    assert all(400 <= s < 600 for s in CODES.values())
    assert {c for _, _, _, _, c in ERRORS} <= set(CODES)


# -- load --------------------------------------------------------------------------------------
def test_bounded_load(server, store):
    features = ["driver_live:conv_rate", "driver_live:city", "driver_forever:lifetime_trips"]
    expected = {
        d: store.get_online_features(features, entities={"driver_id": [d]}).to_dict()
        for d in DRIVERS
    }
    failures: list[str] = []

    def worker(n: int) -> int:
        done = 0
        with httpx.Client(base_url=server.url, timeout=30) as client:
            for i in range(250):
                d = DRIVERS[(n + i) % len(DRIVERS)]
                r = client.post(
                    "/get-online-features",
                    content=orjson.dumps({"features": features, "entities": {"driver_id": [d]}}),
                )
                if r.status_code != 200:
                    failures.append(r.text)
                    continue
                got = {k: v["values"] for k, v in columns(r.json()).items()}
                if got != expected[d]:
                    failures.append(f"{got} != {expected[d]}")
                done += 1
        return done

    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        done = sum(pool.map(worker, range(8)))
    assert not failures, failures[:3]
    assert done == 2000
    assert time.monotonic() - started < 120


# -- cache and registry changes, on a server of their own ---------------------------------------
def test_cache_serves_invalidates_and_follows_apply(tmp_path, online_store):
    repo = make_repo(tmp_path / "repo", online_store)
    srv = Server(repo, "--cache-ttl", "300", "--cache-max-entries", "1000")
    try:
        body = {"features": ["driver_live:conv_rate"], "entities": {"driver_id": [1001]}}

        def conv() -> Any:
            return columns(online(srv, **body))["conv_rate"]["values"][0]

        assert (
            srv.post(
                "/push", {"push_source_name": "driver_live_push", "df": push_rows([1001], 0.5)}
            ).status_code
            == 200
        )
        assert conv() == 0.5
        with FeatureStore(repo) as fs:  # a write the server does not see: cached value stays
            fs.push("driver_live_push", push_rows_frame([1001], 0.6))
        assert conv() == 0.5
        # a push through the server drops the entry at once
        assert (
            srv.post(
                "/push", {"push_source_name": "driver_live_push", "df": push_rows([1001], 0.7)}
            ).status_code
            == 200
        )
        assert conv() == 0.7
        with FeatureStore(repo) as fs:
            fs.push("driver_live_push", push_rows_frame([1001], 0.8))
        assert conv() == 0.7
        metrics = srv.client.get("/metrics").text
        assert 'parity_online_cache_lookups_total{result="hit"}' in metrics
        ratio = float(metrics.split("\nparity_online_cache_hit_ratio ")[1].split()[0])
        assert 0 < ratio < 1

        # re-applying a changed view: new hash, old entries unused; no restart needed
        (repo / "live.py").write_text(LIVE_DEFS.replace("DESCRIPTION", "v2"))
        (repo / "extra.yaml").write_text(
            "kind: feature_view\nname: driver_extra\nentities: [driver]\n"
            "source: driver_stats_source\nschema:\n  - { name: driver_rating, dtype: Float64 }\n"
        )
        with FeatureStore(repo) as fs:
            fs.apply()
        wait_for(
            lambda: (
                conv() == 0.8
                and "driver_extra" in srv.client.get("/feature-views/driver_extra").text
            ),
            "the server serves the new apply",
            srv.output,
        )
        assert srv.client.get("/feature-views/driver_live").json()["description"] == "v2"
    finally:
        code = srv.stop()
        teardown(repo)
        assert code == 0, srv.output()


def push_rows_frame(ids: list[int], conv: float) -> dict[str, list[Any]]:
    rows: dict[str, list[Any]] = push_rows(ids, conv)
    rows["event_timestamp"] = [datetime.fromisoformat(t) for t in rows["event_timestamp"]]
    return rows


def test_unreachable_online_store_is_503_not_a_crash(tmp_path):
    repo = make_repo(tmp_path / "repo", None)
    cfg = yaml.safe_load((repo / "parity.yaml").read_text())
    cfg["online_store"] = {"type": "redis", "url": f"redis://127.0.0.1:{free_port()}/0"}
    (repo / "parity.yaml").write_text(yaml.safe_dump(cfg))  # nothing listens there
    srv = Server(repo)
    try:
        assert srv.client.get("/health").status_code == 200
        err = error_of(srv.client.get("/ready"), 503, "not_ready")
        assert "online_store" in err["message"]
        r = srv.post("/get-online-features", GOOD)
        error_of(r, 503, "online_store_unavailable")
        assert "request_id=" + r.headers["x-request-id"] in srv.output()
        assert srv.client.get("/feature-views/driver_live").status_code == 200  # registry fine
    finally:
        assert srv.stop() == 0, srv.output()


# -- shutdown ----------------------------------------------------------------------------------
def _raw_request(port: int, body: bytes, path: str = "/push") -> tuple[socket.socket, bytes]:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(head + body[: len(body) // 2])
    return sock, body[len(body) // 2 :]


def _unread_bytes(port: int) -> dict[int, int]:
    """For each connection accepted or waiting on the local server ``port``: client port ->
    bytes the server has not read from it yet (Linux's /proc/net/tcp)."""
    unread = {}
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, state, queues = fields[1], fields[2], fields[3], fields[4]
        if state == "01" and int(local.split(":")[1], 16) == port:  # 01: ESTABLISHED
            unread[int(remote.split(":")[1], 16)] = int(queues.split(":")[1], 16)
    return unread


def _server_read_all(port: int, socks: list[socket.socket]) -> bool:
    """The server accepted each of ``socks`` and read all that was sent on it (nothing is
    left in its receive queue: it can only be read once accepted)."""
    unread = _unread_bytes(port)
    return all(unread.get(s.getsockname()[1], 1) == 0 for s in socks)


def _read_response(sock: socket.socket) -> bytes:
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk


def test_sigterm_lets_in_flight_requests_finish(tmp_path, online_store):
    repo = make_repo(tmp_path / "repo", online_store)
    srv = Server(repo)
    # requests whose bodies are half sent when SIGTERM arrives: accepted, so they must finish
    pushes = [
        _raw_request(
            srv.port,
            orjson.dumps(
                {
                    "push_source_name": "driver_live_push",
                    "df": push_rows([d], 0.9),
                    "to": "online_and_offline",
                }
            ),
        )
        for d in DRIVERS
    ]
    read_body = orjson.dumps(
        {"features": ["driver_live:conv_rate"], "entities": {"driver_id": [1001]}}
    )
    reads = [_raw_request(srv.port, read_body, "/get-online-features") for _ in range(5)]
    wait_for(
        lambda: _server_read_all(srv.port, [sock for sock, _ in pushes + reads]),
        "the server has accepted the connections and read the heads",
        srv.output,
    )

    # and a stream of requests from threads, some answered before, some refused after
    stop = threading.Event()
    statuses: list[int] = []

    def hammer() -> None:
        with httpx.Client(base_url=srv.url, timeout=30) as client:
            while not stop.is_set():
                try:
                    statuses.append(
                        client.post("/get-online-features", content=read_body).status_code
                    )
                except httpx.TransportError:
                    return  # the server stopped accepting: nothing was accepted

    threads = [threading.Thread(target=hammer, daemon=True) for _ in range(4)]
    for t in threads:
        t.start()
    wait_for(lambda: len(statuses) >= 8, "some requests are answered before SIGTERM", srv.output)
    srv.proc.send_signal(signal.SIGTERM)
    wait_for(lambda: "Shutting down" in srv.output(), "the server is shutting down", srv.output)
    for sock, rest in pushes + reads:
        sock.sendall(rest)
    answers = [_read_response(sock) for sock, _ in pushes + reads]
    stop.set()
    for t in threads:
        t.join(30)
    code = srv.proc.wait(timeout=60)
    srv._log.close()
    assert code == 0, srv.output()
    for answer in answers:
        assert answer.startswith(b"HTTP/1.1 200"), answer[:300]
    assert statuses and set(statuses) == {200}
    with FeatureStore(repo) as fs:
        resp = fs.get_online_features(["driver_live:conv_rate"], entities={"driver_id": DRIVERS})
        assert resp.to_dict()["conv_rate"] == [0.9] * len(DRIVERS)
    assert len(list((repo / "data/offline_log/driver_live_push").glob("*.parquet"))) == len(DRIVERS)
    teardown(repo)


def test_workers_share_metrics_and_stop_cleanly(repo):
    srv = Server(repo, "--workers", "2")
    try:
        body = {"features": ["driver_live:conv_rate"], "entities": {"driver_id": [1001]}}
        for _ in range(3):  # new connections, so both workers are likely to answer
            with httpx.Client(base_url=srv.url) as client:
                for _ in range(10):
                    assert (
                        client.post("/get-online-features", content=orjson.dumps(body)).status_code
                        == 200
                    )
        text = srv.client.get("/metrics").text
        line = (
            'parity_http_requests_total{endpoint="/get-online-features",method="POST",status="200"}'
        )
        assert float(text.split(line)[1].split()[0]) == 30  # summed over the workers
    finally:
        assert srv.stop() == 0, srv.output()


# -- worker start ------------------------------------------------------------------------------
SLOW_START = """
import os, sys, time

# A spawned worker (multiprocessing's --multiprocessing-fork) sits silent here, before it can
# answer its supervisor, as one still importing Parity on a busy machine does.
if "--multiprocessing-fork" in sys.argv:
    time.sleep(float(os.environ["PARITY_TEST_WORKER_SILENCE"]))
"""
UVICORN_PING_TIMEOUT = 5  # uvicorn's timeout_worker_healthcheck: it killed workers past it


def slow_start_env(tmp_path: Path, seconds: float) -> dict[str, str]:
    """An environment whose spawned Python processes start ``seconds`` late (sitecustomize)."""
    site = tmp_path / "slow_start"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SLOW_START)
    path = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path, "PARITY_TEST_WORKER_SILENCE": str(seconds)}


def workers_of(proc: subprocess.Popen) -> set[int]:
    """The pids of a ``parity serve``'s live worker processes."""
    children = psutil.Process(proc.pid).children()
    found = set()
    for child in children:
        with contextlib.suppress(psutil.NoSuchProcess):
            if (
                child.status() != psutil.STATUS_ZOMBIE
                and "--multiprocessing-fork" in child.cmdline()
            ):
                found.add(child.pid)
    return found


def logged_pids(output: str, line: str) -> list[int]:
    """The pids of the log lines that match ``line`` (its ``PID`` stands for the pid)."""
    pattern = re.escape(line).replace("PID", r"(\d+)")
    return [int(pid) for pid in re.findall(pattern, output)]


def test_workers_slow_to_start_are_not_killed_and_dead_ones_are_replaced(tmp_path):
    # Each worker is silent for twice uvicorn's ping timeout before it even starts: uvicorn's
    # own supervisor killed such workers, ours waits for them however slow the machine is.
    repo = make_repo(tmp_path / "repo", None)
    env = slow_start_env(tmp_path, 2 * UVICORN_PING_TIMEOUT)
    srv = Server(repo, "--workers", "2", env=env)
    try:
        wait_for(
            lambda: srv.output().count("Application startup complete") == 2,
            "both workers started",
            srv.output,
        )
        out = srv.output()
        assert "died" not in out and "killing" not in out, out
        started = logged_pids(out, "Started server process [PID]")
        assert len(started) == 2 and set(started) == workers_of(srv.proc), out
        assert srv.client.get("/health").status_code == 200

        # a worker that dies is replaced, and its replacement, as slow to start, is not killed
        victim = psutil.Process(started[0])
        victim.kill()
        victim.wait(60)
        wait_for(
            lambda: srv.output().count("Application startup complete") == 3,
            "a replacement worker started",
            srv.output,
        )
        out = srv.output()
        assert logged_pids(out, "Child process [PID] died") == [victim.pid], out
        assert "killing" not in out, out
        now = logged_pids(out, "Started server process [PID]")
        assert len(now) == 3 and workers_of(srv.proc) == {started[1], now[2]}, out
        assert srv.client.get("/health").status_code == 200
    finally:
        assert srv.stop() == 0, srv.output()


def test_a_worker_that_never_starts_is_killed_at_its_start_timeout(tmp_path):
    repo = make_repo(tmp_path / "repo", None)
    script = (
        "from parity.server.run import ServerSettings, serve; "
        f"serve(ServerSettings(repo={str(repo)!r}, port={free_port()}, workers=2, "
        "worker_start_timeout=3))"
    )
    log = repo / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", script],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=slow_start_env(tmp_path, 3600),  # hung before it could ever serve
        )

    def output() -> str:
        return log.read_text(errors="replace")

    hung = "Child process [PID] did not start serving within 3 s; killing it"
    try:
        wait_for(lambda: len(logged_pids(output(), hung)) >= 2, "hung workers killed", output)
        killed = set(logged_pids(output(), hung))
        # the line is logged before the kill: wait for the killed workers to be gone
        wait_for(lambda: not killed & workers_of(proc), "hung workers gone", output)
        # and replaced: the supervisor keeps two workers (the replacements hang as well)
        wait_for(lambda: len(workers_of(proc) - killed) == 2, "two new workers", output)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            kill_tree(proc)
            raise
    assert code == 0, output()


# -- the record cache, in process ---------------------------------------------------------------
class _CountingStore:
    """An online store double: records by (view, key), counting read calls."""

    def __init__(self) -> None:
        self.data: dict[tuple[str, bytes], bytes] = {}
        self.reads: list[list[tuple[str, list[bytes]]]] = []

    def read(self, requests):
        self.reads.append([(v.name, list(keys)) for v, keys in requests])
        return [[self.data.get((v.name, k)) for k in keys] for v, keys in requests]

    def write(self, view, batch):
        for k, r in zip(batch.keys, batch.records, strict=True):
            self.data[(view.name, k)] = r
        return len(batch)


def _cached(hashes: dict[str, str], ttl: float = 10, max_entries: int = 100):
    from parity.server.cache import CacheSettings, ServingOnlineStore

    inner = _CountingStore()
    now = [0.0]
    store = ServingOnlineStore(
        inner,  # type: ignore[arg-type]
        view_hashes=lambda: hashes,
        cache=CacheSettings(ttl, max_entries),
        clock=lambda: now[0],
    )
    return store, inner, now


def test_cache_hits_misses_ttl_and_one_read_call():
    from parity.online.base import OnlineView, RecordBatch

    a = OnlineView("a", ("k",), ("f",), None)
    b = OnlineView("b", ("k",), ("f",), None)
    hashes = {"a": "ha", "b": "hb"}
    store, inner, now = _cached(hashes)
    inner.data[("a", b"1")] = b"A1"
    inner.data[("b", b"1")] = b"B1"
    assert store.read([(a, [b"1", b"2"]), (b, [b"1"])]) == [[b"A1", None], [b"B1"]]
    assert len(inner.reads) == 1  # one call for both views
    assert store.read([(a, [b"1", b"2"]), (b, [b"1"])]) == [[b"A1", None], [b"B1"]]
    assert len(inner.reads) == 1  # all hits, misses ("no record") included
    assert store.read([(a, [b"1", b"3"]), (b, [b"1"])]) == [[b"A1", None], [b"B1"]]
    assert inner.reads[-1] == [("a", [b"3"])]  # only what the cache lacks
    now[0] = 11  # past the ttl
    store.read([(a, [b"1"])])
    assert inner.reads[-1] == [("a", [b"1"])]
    # a write through the wrapper drops its keys; a changed view hash drops everything of it
    store.write(a, RecordBatch([b"1"], [1], [None], [b"A1'"]))
    assert store.read([(a, [b"1"])]) == [[b"A1'"]]
    assert store.read([(b, [b"1"])]) == [[b"B1"]]  # refilled after its ttl
    inner.data[("b", b"1")] = b"B1'"
    assert store.read([(b, [b"1"])]) == [[b"B1"]]  # cached
    hashes["b"] = "hb2"
    assert store.read([(b, [b"1"])]) == [[b"B1'"]]


def test_cache_is_bounded_and_reads_overlapping_writes_do_not_fill():
    from parity.online.base import OnlineView

    a = OnlineView("a", ("k",), ("f",), None)
    store, inner, _ = _cached({"a": "ha"}, max_entries=3)
    store.read([(a, [b"%d" % i for i in range(10)])])
    assert len(store) == 3
    assert store.read([(a, [b"9"])]) and len(inner.reads) == 1  # the newest stayed
    store.read([(a, [b"0"])])
    assert len(inner.reads) == 2  # the oldest went

    # a write that starts while a read is at the store: that read does not fill the cache
    store2, inner2, _ = _cached({"a": "ha"})
    original = inner2.read

    def read_during_write(requests):
        store2._begin_write()
        try:
            return original(requests)
        finally:
            store2._end_write("a", [b"x"])

    inner2.read = read_during_write  # type: ignore[method-assign]
    store2.read([(a, [b"1"])])
    assert len(store2) == 0
