"""The feature repo the HTTP fuzz run serves: every kind of object a request can name.

Plain views of several value types (Int64, Float64, String, Bool, Timestamp, arrays) on an
Int64 entity and on a String entity, a push source feeding a plain and an aggregated
(window) view, an offline-only view, an on-demand view with request fields, two feature
services. The data is seeded and recent, so entities read PRESENT: customer ids 0-19 and
merchant codes "0"-"9" (the small values a fuzzer tries first) and the document's examples
(1001, "a") exist; others are MISSING.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from parity import FeatureStore
from repo_utils import write_parquet, write_repo

CUSTOMERS = [*range(20), 1001]
"""Customer ids with data: the small ints a fuzzer tries first, and the document's example."""
MERCHANTS = [*(str(i) for i in range(10)), "a"]

DEFINITIONS = """
from datetime import timedelta

from parity import (
    Aggregation, Array, Bool, Entity, FeatureService, FeatureView, Field, FileSource, Float64,
    Int64, PushSource, RequestSource, String, Timestamp, on_demand_feature_view,
)

customer = Entity(name="customer", join_keys=["customer_id"], dtype=Int64)
merchant = Entity(name="merchant", join_keys=["merchant_code"], dtype=String)

customer_events = PushSource(
    name="customer_events",
    batch_source=FileSource(
        name="customer_events_log",
        path="data/customer_events.parquet",
        timestamp_field="event_timestamp",
        created_timestamp_field="created",
    ),
)
customer_profile = FeatureView(
    name="customer_profile",
    entities=[customer],
    source=customer_events,
    schema=[
        Field(name="age", dtype=Int64),
        Field(name="score", dtype=Float64),
        Field(name="tier", dtype=String),
        Field(name="verified", dtype=Bool),
        Field(name="signup_at", dtype=Timestamp),
        Field(name="recent_scores", dtype=Array(Float64)),
        Field(name="tags", dtype=Array(String)),
    ],
    ttl=timedelta(days=30),
)
customer_spend = FeatureView(
    name="customer_spend",
    entities=[customer],
    source=customer_events,
    hop=timedelta(minutes=5),
    schema=[Field(name="amount", dtype=Float64), Field(name="qty", dtype=Int64)],
    aggregations=[
        Aggregation(column="amount", function="sum", window=timedelta(hours=1)),
        Aggregation(column="qty", function="sum", window=timedelta(days=1)),
        Aggregation(function="count", window=timedelta(hours=1), name="events_1h"),
        Aggregation(column="amount", function="max", window=timedelta(days=1)),
        Aggregation(column="amount", function="last_n", n=3, window=timedelta(days=1)),
    ],
)

merchant_source = FileSource(
    name="merchant_source", path="data/merchant_stats.parquet", timestamp_field="event_timestamp"
)
merchant_stats = FeatureView(
    name="merchant_stats",
    entities=[merchant],
    source=merchant_source,
    schema=[
        Field(name="rating", dtype=Float64),
        Field(name="orders_7d", dtype=Int64),
        Field(name="open", dtype=Bool),
        Field(name="category", dtype=String),
    ],
)
merchant_audit = FeatureView(
    name="merchant_audit",
    entities=[merchant],
    source=merchant_source,
    schema=[Field(name="orders_7d", dtype=Int64)],
    online=False,
)

checkout = RequestSource(
    name="checkout",
    schema=[Field(name="basket_total", dtype=Float64), Field(name="items", dtype=Int64)],
)


@on_demand_feature_view(
    sources=[
        customer_profile[["score", "age"]],
        customer_spend[["amount_sum_1h", "events_1h"]],
        checkout,
    ],
    schema=[Field(name="basket_vs_spend", dtype=Float64), Field(name="risky", dtype=Bool)],
)
def checkout_risk(row):
    # a missing feature (None) is a normal state; request fields are the caller's to send
    spend = row["amount_sum_1h"]
    ratio = None if not spend else row["basket_total"] / spend
    score = row["score"]
    risky = score is not None and score < 0.2 and row["items"] > 10
    return {"basket_vs_spend": ratio, "risky": risky}


checkout_svc = FeatureService(
    name="checkout_svc",
    features=[customer_profile[["score", "tier"]], customer_spend, checkout_risk],
)
merchant_svc = FeatureService(name="merchant_svc", features=[merchant_stats])
"""


def write_data(root: Path, now: datetime, seed: int = 11) -> None:
    """Seeded rows for both sources: a few hours of events before ``now``."""
    rng = np.random.default_rng(seed)
    hours = 6
    times = [now - timedelta(hours=h, minutes=5) for h in range(hours)]
    ids = [c for _ in times for c in CUSTOMERS]
    n = len(ids)
    ts = [t for t in times for _ in CUSTOMERS]
    write_parquet(
        root / "data/customer_events.parquet",
        pa.table(
            {
                "customer_id": pa.array(ids, pa.int64()),
                "event_timestamp": pa.array(ts, pa.timestamp("us", tz="UTC")),
                "created": pa.array(ts, pa.timestamp("us", tz="UTC")),
                "age": pa.array(rng.integers(18, 90, n), pa.int64()),
                "score": pa.array(rng.random(n), pa.float64()),
                "tier": pa.array(rng.choice(["gold", "silver", "basic"], n).tolist()),
                "verified": pa.array(rng.random(n) < 0.5),
                "signup_at": pa.array(
                    [now - timedelta(days=int(d)) for d in rng.integers(1, 900, n)],
                    pa.timestamp("us", tz="UTC"),
                ),
                "recent_scores": pa.array(
                    [rng.random(3).round(3).tolist() for _ in range(n)], pa.list_(pa.float64())
                ),
                "tags": pa.array([["new"] if i % 3 else [] for i in range(n)]),
                "amount": pa.array(rng.random(n) * 100, pa.float64()),
                "qty": pa.array(rng.integers(1, 5, n), pa.int64()),
            }
        ),
    )
    m = len(MERCHANTS) * hours
    write_parquet(
        root / "data/merchant_stats.parquet",
        pa.table(
            {
                "merchant_code": [c for _ in times for c in MERCHANTS],
                "event_timestamp": pa.array(
                    [t for t in times for _ in MERCHANTS], pa.timestamp("us", tz="UTC")
                ),
                "rating": pa.array(rng.random(m) * 5, pa.float64()),
                "orders_7d": pa.array(rng.integers(0, 500, m), pa.int64()),
                "open": pa.array(rng.random(m) < 0.8),
                "category": pa.array(rng.choice(["food", "books", "toys"], m).tolist()),
            }
        ),
    )


def make_fuzz_repo(root: Path, online_store: str) -> Path:
    """The repo in ``root`` with ``online_store`` (inline YAML), applied and loaded: the
    batch data materialized, one push per customer online."""
    now = datetime.now(UTC)
    write_repo(root, {"definitions.py": DEFINITIONS}, project="fuzz")
    with (root / "parity.yaml").open("a") as f:
        f.write(f"online_store: {online_store}\n")
    write_data(root, now)
    with FeatureStore(root) as store:
        store.apply()
        store.materialize(now - timedelta(days=1), now)
        store.push("customer_events", push_rows(CUSTOMERS, now - timedelta(minutes=1)))
    return root


def push_rows(ids: list[int], when: datetime) -> dict[str, list[Any]]:
    """One row per customer for the push source, every column set."""
    n = len(ids)
    return {
        "customer_id": ids,
        "event_timestamp": [when] * n,
        "age": [30 + i for i in range(n)],
        "score": [0.1 * (i % 10) for i in range(n)],
        "tier": ["gold"] * n,
        "verified": [i % 2 == 0 for i in range(n)],
        "signup_at": [when - timedelta(days=100)] * n,
        "recent_scores": [[0.5, 0.25]] * n,
        "tags": [["vip"]] * n,
        "amount": [10.0 + i for i in range(n)],
        "qty": [1] * n,
    }


def expected_document() -> dict[str, Any]:
    """The ``/openapi.json`` a server of this repo answers, built in process from the
    definitions alone (no registry, no data): what the fuzz tests are generated from at
    collection time, before any server runs. A test checks the served one is the same."""
    import tempfile

    from parity.registry.catalog import Catalog
    from parity.repo import load_repo
    from parity.server.openapi import openapi_document

    with tempfile.TemporaryDirectory(prefix="parity-fuzz-doc-") as tmp:
        root = write_repo(Path(tmp), {"definitions.py": DEFINITIONS}, project="fuzz")
        catalog = Catalog.of(load_repo(root).objects, project="fuzz")
        return openapi_document(catalog)
