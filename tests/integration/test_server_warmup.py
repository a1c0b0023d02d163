"""``/ready``: 503 until the worker is warm, and always answered within a bound.

Warm-up is held open by the test-only gate (``PARITY_TEST_WARMUP_GATE``, a file the test
creates) so ``/ready`` is seen answering 503 while ``/health`` answers 200. Once ready,
``/metrics`` shows the plans cached, and the first on-demand read plans nothing and imports
nothing (the plan count and the number of loaded modules stay the same across it). A frozen
Redis (SIGSTOP on a ``redis-server`` of the test's own) makes ``/ready`` answer 503 naming
the online store, every time, without a new thread per probe.
"""

from __future__ import annotations

import os
import re
import time

import httpx
import psutil
from tests.integration.test_server import (
    Server,
    error_of,
    make_repo,
    online,
    wait_for,
)
from tests.integration.test_server_limits import metric
from tests.integration.test_server_on_demand import ODFV

from parity import FeatureStore
from parity.server.warmup import GATE_ENV
from redis_server import RedisServer


def test_ready_only_once_warm_and_the_first_on_demand_read_plans_and_imports_nothing(tmp_path):
    repo = make_repo(tmp_path / "repo", None)
    (repo / "odfv.py").write_text(ODFV)
    with FeatureStore(repo) as store:
        store.apply()
        catalog = store.catalog()
        services = len(catalog.names("feature_service"))
        views = sum(v.online for v in catalog.views()) + len(catalog.on_demand_views())
    gate = tmp_path / "warm-gate"
    srv = Server(repo, env={**os.environ, GATE_ENV: str(gate)})  # /health answered already
    try:
        for _ in range(3):
            err = error_of(srv.client.get("/ready"), 503, "not_ready")
            assert "warming up" in err["message"]
            assert srv.client.get("/health").status_code == 200
        assert metric(srv.client.get("/metrics").text, "parity_server_warm") == 0
        gate.touch()
        wait_for(lambda: srv.client.get("/ready").status_code == 200, "ready", srv.output)
        srv.client.get("/metrics")  # whatever rendering it imports, imported
        text = srv.client.get("/metrics").text
        assert metric(text, "parity_server_warm") == 1
        plans = metric(text, "parity_server_plans_cached")
        assert plans >= 2 * services + views  # each service (both name forms), each view
        modules = metric(text, "parity_server_modules_loaded")

        answer = online(
            srv,
            features=["conv_plus:conv_plus_val"],
            entities={"driver_id": [1001], "val_to_add": [2]},
        )
        assert answer["metadata"]["feature_names"] == ["driver_id", "val_to_add", "conv_plus_val"]
        text = srv.client.get("/metrics").text
        assert metric(text, "parity_server_plans_cached") == plans  # planned at warm-up
        assert metric(text, "parity_server_modules_loaded") == modules  # imported at warm-up
    finally:
        gate.touch()
        assert srv.stop() == 0, srv.output()


def test_ready_answers_503_within_its_bound_when_redis_is_frozen(tmp_path):
    redis = RedisServer(tmp_path / "redis").start()
    srv = None
    try:
        repo = make_repo(tmp_path / "repo", {"type": "redis", "url": redis.url})
        srv = Server(repo)
        wait_for(lambda: srv.client.get("/ready").status_code == 200, "ready", srv.output)
        threads = psutil.Process(srv.proc.pid).num_threads()
        redis.freeze()
        seconds = []
        with httpx.Client(base_url=srv.url, timeout=5) as client:
            for _ in range(5):  # each probe answers; the stuck check is not started again
                began = time.monotonic()
                err = error_of(client.get("/ready"), 503, "not_ready")
                seconds.append(time.monotonic() - began)
                # the store's own read timeout (0.5 s) or the check's bound (0.8 s), first
                assert re.search(r"online_store (did not answer|unreachable)", err["message"]), err
                assert "registry" not in err["message"], err
                assert client.get("/health").status_code == 200
        assert psutil.Process(srv.proc.pid).num_threads() == threads, seconds
        redis.thaw()
        wait_for(lambda: srv.client.get("/ready").status_code == 200, "ready again", srv.output)
    finally:
        redis.thaw()
        if srv is not None:
            assert srv.stop() == 0, srv.output()
        redis.stop()
