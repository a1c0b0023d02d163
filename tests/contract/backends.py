"""Every backend the contract suites run against: one visible list per kind.

Adding a backend means adding its name here (and, for an online store, how to configure it
in ``online_store_yaml``); every contract suite of its kind then runs on it. ``memory`` is a
third-party store from outside the ``parity`` package (``tests/plugins``), found through its
entry point like any installed plug-in. A suite that cannot run on a backend marks the gap
with the reason (``gap``), never skips it silently.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

ONLINE_STORES = ["sqlite", "redis", "redis_cluster", "memory"]
OFFLINE_ENGINES = ["duckdb"]
REGISTRY_BACKENDS = ["sqlite", "postgresql"]

GAPS: dict[tuple[str, str], str] = {
    (
        "aggregates_parity",
        "redis_cluster",
    ): "the property run costs minutes per store; Redis Cluster runs the same compare-and-set "
    "script as plain Redis (per slot), and its update contract (concurrent writers lose "
    "nothing) is in test_online_store.py",
}
"""(suite, backend) pairs a suite does not run, with the reason shown in the test report."""


def params(suite: str, backends: list[str]) -> list[Any]:
    """``backends`` as pytest params for ``suite``, gaps marked skip with their reason."""
    out = []
    for b in backends:
        reason = GAPS.get((suite, b))
        marks = [pytest.mark.skip(reason=f"{b}: {reason}")] if reason else []
        out.append(pytest.param(b, marks=marks, id=b))
    return out


def online_store_yaml(
    kind: str, request: pytest.FixtureRequest, *, redis_db: int, extra: str = ""
) -> str:
    """``online_store:`` for parity.yaml, as inline YAML, on keys no other test uses."""
    if kind == "sqlite":
        return "{ type: sqlite, path: data/online.db }"
    if kind == "memory":
        request.getfixturevalue("memory_store_installed")
        return f"{{ type: memory, namespace: 'ns_{uuid.uuid4().hex[:10]}' }}"
    prefix = f"parity_test_{uuid.uuid4().hex[:10]}:"
    more = f", {extra}" if extra else ""
    if kind == "redis":
        url = f"redis://127.0.0.1:6379/{redis_db}"
        return f"{{ type: redis, url: '{url}', key_prefix: '{prefix}'{more} }}"
    if kind == "redis_cluster":
        nodes = request.getfixturevalue("redis_cluster_nodes")
        return f"{{ type: redis, cluster: {list(nodes)}, key_prefix: '{prefix}'{more} }}"
    raise AssertionError(f"no config for online store {kind!r}: add one in backends.py")
