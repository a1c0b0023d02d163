"""The work of one request is bounded, and large reads do not hold up small ones.

A read (or push) of more than ``--max-entity-rows`` rows is refused with 413
``too_many_entities`` naming the limit and the count, and changes nothing; a read of at
least ``--large-read-rows`` rows runs on the reader thread and answers exactly what the same
read in small pieces (on the event loop) answers; while one is in flight the loop answers
small reads (seen through ``/metrics``: a small read counted while the large one runs).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.integration.test_server import (
    ONLINE_STORES,
    Server,
    error_of,
    make_repo,
    online,
    push_rows,
    teardown,
    wait_for,
)

LIMIT = 500
LARGE = 50
PUSHED = list(range(2000, 2300))
FEATURES = ["driver_live:conv_rate", "driver_live:city", "driver_forever:lifetime_trips"]


@pytest.fixture(
    scope="module", params=ONLINE_STORES, ids=lambda p: "sqlite" if p is None else p["type"]
)
def repo(request, tmp_path_factory) -> Iterator[Path]:
    root = make_repo(tmp_path_factory.mktemp("srv_limits") / "repo", request.param)
    yield root
    teardown(root)


@pytest.fixture(scope="module")
def server(repo) -> Iterator[Server]:
    srv = Server(repo, "--max-entity-rows", str(LIMIT), "--large-read-rows", str(LARGE))
    r = srv.post("/materialize-incremental", {"end_date": "2024-01-04T00:00:00"})
    assert r.status_code == 200, r.text
    r = srv.post("/push", {"push_source_name": "driver_live_push", "df": push_rows(PUSHED, 0.5)})
    assert r.status_code == 200, r.text
    yield srv
    assert srv.stop() == 0, srv.output()


def metric(text: str, name: str, absent: float | None = None) -> float:
    """The sample ``name`` (labels included, if any) of a ``/metrics`` text; ``absent`` when
    it is not there (a counter not yet counted), else an error."""
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    if absent is not None:
        return absent
    raise AssertionError(f"{name} not in /metrics:\n{text}")


def test_a_read_over_the_limit_is_413_naming_the_limit_and_the_count(server):
    ids = list(range(LIMIT + 1))
    err = error_of(
        server.post("/get-online-features", {"features": FEATURES, "entities": {"driver_id": ids}}),
        413,
        "too_many_entities",
    )
    assert str(LIMIT) in err["message"] and str(LIMIT + 1) in err["message"]
    # at the limit: answered (on the reader thread)
    ids = list(range(LIMIT))
    answer = online(server, features=FEATURES, entities={"driver_id": ids})
    assert answer["results"][0]["values"] == ids


def test_a_push_over_the_limit_is_413_and_writes_nothing(server, repo):
    ids = list(range(9000, 9000 + LIMIT + 1))
    log = repo / "data/offline_log/driver_live_push"
    files = sorted(log.glob("*.parquet"))
    r = server.post(
        "/push",
        {
            "push_source_name": "driver_live_push",
            "df": push_rows(ids, 0.1),
            "to": "online_and_offline",
        },
    )
    err = error_of(r, 413, "too_many_entities")
    assert str(LIMIT) in err["message"] and str(LIMIT + 1) in err["message"]
    for part in (ids[:LIMIT], ids[LIMIT:]):
        answer = online(server, features=["driver_live:conv_rate"], entities={"driver_id": part})
        assert set(answer["results"][1]["statuses"]) == {"NOT_FOUND"}
    assert sorted(log.glob("*.parquet")) == files


@settings(max_examples=15)
@given(
    ids=st.lists(
        st.one_of(st.sampled_from(PUSHED), st.integers(1000, 1010), st.integers(-5, 5)),
        min_size=LARGE,
        max_size=LIMIT,
    ),
    piece=st.integers(1, LARGE - 1),
    full=st.booleans(),
)
def test_a_large_read_equals_the_same_read_in_small_pieces(server, ids, piece, full):
    whole = online(server, features=FEATURES, entities={"driver_id": ids}, full_feature_names=full)
    parts = [
        online(
            server,
            features=FEATURES,
            entities={"driver_id": ids[i : i + piece]},
            full_feature_names=full,
        )
        for i in range(0, len(ids), piece)
    ]
    assert whole["metadata"] == parts[0]["metadata"]
    for c, result in enumerate(whole["results"]):
        for field in ("values", "statuses", "event_timestamps"):
            joined = [v for part in parts for v in part["results"][c][field]]
            assert result[field] == joined, (c, field)


def test_small_reads_are_answered_while_a_large_one_is_in_flight(repo):
    """Ordering by events: a ``/metrics`` answer that counts a small read made after the
    large read started, while it still shows the large read in flight."""
    small = orjson.dumps({"features": FEATURES, "entities": {"driver_id": PUSHED[:1]}})
    large = orjson.dumps({"features": FEATURES, "entities": {"driver_id": list(range(100_000))}})
    reads = 'parity_http_requests_total{endpoint="/get-online-features",method="POST",status="200"}'
    srv = Server(repo)  # the default limits: 100,000 rows at most, 1,000 and more off the loop
    seen: list[tuple[float, float, float]] = []
    try:
        for _ in range(10):  # until one observation is conclusive (the large read still runs)
            done = threading.Event()
            status: list[int] = []
            thread = threading.Thread(target=_post, args=(srv.url, large, status, done))
            thread.start()
            try:
                with httpx.Client(base_url=srv.url, timeout=120) as client:

                    def started(
                        client: httpx.Client = client, done: threading.Event = done
                    ) -> bool:
                        text = client.get("/metrics").text
                        return (
                            done.is_set() or metric(text, "parity_online_large_reads_in_flight") > 0
                        )

                    wait_for(started, "the large read started", srv.output)
                    before = metric(client.get("/metrics").text, reads, 0)
                    assert client.post("/get-online-features", content=small).status_code == 200
                    text = client.get("/metrics").text
                    running = metric(text, "parity_online_large_reads_in_flight")
                    seen.append((before, metric(text, reads, 0), running))
            finally:
                thread.join(120)
            assert status == [200]
            before, after, running = seen[-1]
            if running > 0:
                assert after == before + 1  # the small read answered, the large one not yet
                return
        raise AssertionError(f"the large read was never in flight as a small one ran: {seen}")
    finally:
        assert srv.stop() == 0, srv.output()


def _post(url: str, body: bytes, status: list[int], done: threading.Event) -> None:
    with httpx.Client(base_url=url, timeout=120) as client:
        status.append(client.post("/get-online-features", content=body).status_code)
    done.set()
