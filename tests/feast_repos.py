"""Feast repos on disk for the import tests: ``feast init``'s, and a shop using push
sources, request data and on-demand views in pandas and python mode (batch and singleton).

Every repo is made for Feast's DuckDB offline store, so Feast itself can answer
``get_historical_features`` on it; Feast's own CLI (``feast init``, ``feast apply``) runs as
a subprocess of the test environment's interpreter.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

BIN = Path(sys.executable).parent
FEAST = str(BIN / "feast")
T0 = pd.Timestamp("2024-05-01 10:00", tz="UTC")
HOUR = pd.Timedelta(hours=1)
US = pd.Timedelta(microseconds=1)
REDIS_DB = 11
"""The Redis database the shop repo's online store names (this suite's own)."""


def run(cmd: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{cmd} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
    return done


def use_duckdb(repo: Path) -> None:
    """Point the Feast repo's offline store at DuckDB (Feast's, for the comparison)."""
    file = repo / "feature_store.yaml"
    config = yaml.safe_load(file.read_text())
    config["offline_store"] = {"type": "duckdb"}
    file.write_text(yaml.safe_dump(config, sort_keys=False))


def feast_init(parent: Path, name: str = "demo") -> Path:
    """``feast init NAME`` in ``parent`` (it writes its own sample data); its feature repo."""
    run([FEAST, "init", name], cwd=parent)
    repo = parent / name / "feature_repo"
    use_duckdb(repo)
    return repo


SHOP_CONFIG = f"""\
project: shop
registry: data/registry.db
provider: local
online_store:
  type: redis
  connection_string: "127.0.0.1:6379,db={REDIS_DB}"
offline_store:
  type: duckdb
entity_key_serialization_version: 3
"""

SHOP_FEATURES = '''\
"""A shop: push sources, on-demand views in pandas and python mode, request data."""

from datetime import timedelta

import pandas as pd
from feast import Entity, FeatureService, FeatureView, Field, FileSource, PushSource
from feast import RequestSource, ValueType
from feast.on_demand_feature_view import on_demand_feature_view
from feast.types import Bool, Float32, Float64, Int64, String

customer = Entity(
    name="customer",
    join_keys=["customer_id"],
    value_type=ValueType.INT64,
    description="A customer of the shop.",
    owner="growth@example.com",
)

stats_source = FileSource(
    name="customer_stats_source",
    path="data/customer_stats.parquet",
    timestamp_field="ts",
    created_timestamp_column="created",
    field_mapping={"spend_raw": "spend"},
)

stats_push = PushSource(name="customer_stats_push", batch_source=stats_source)

customer_stats = FeatureView(
    name="customer_stats",
    entities=[customer],
    ttl=timedelta(hours=2),
    schema=[
        Field(name="customer_id", dtype=Int64),
        Field(name="spend", dtype=Float64, description="Spend in the last hour."),
        Field(name="visits", dtype=Int64),
        Field(name="segment", dtype=String),
        Field(name="active", dtype=Bool),
    ],
    source=stats_push,
    online=True,
    tags={"team": "growth"},
    owner="growth@example.com",
    description="Hourly customer activity.",
)

customer_profile = FeatureView(
    name="customer_profile",
    entities=[customer],
    ttl=timedelta(0),
    schema=[Field(name="tier_score", dtype=Float32)],
    source=FileSource(
        name="customer_profile_source",
        path="data/customer_profile.parquet",
        timestamp_field="event_timestamp",
    ),
    online=False,
)

txn = RequestSource(name="txn", schema=[Field(name="amount", dtype=Float64)])


@on_demand_feature_view(
    sources=[customer_stats[["spend", "visits"]], txn],
    schema=[Field(name="spend_per_visit", dtype=Float64), Field(name="share", dtype=Float64)],
    mode="pandas",
)
def spend_ratio(inputs: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame()
    out["spend_per_visit"] = inputs["spend"] / inputs["visits"].clip(lower=1)
    out["share"] = inputs["amount"] / (inputs["spend"] + 1.0)
    return out


@on_demand_feature_view(
    sources=[customer_stats, customer_profile[["tier_score"]]],
    schema=[Field(name="weighted_visits", dtype=Float64)],
    mode="python",
)
def weighted(inputs: dict) -> dict:
    return {
        "weighted_visits": [
            None if v is None or s is None else v * s
            for v, s in zip(inputs["visits"], inputs["tier_score"])
        ]
    }


@on_demand_feature_view(
    sources=[customer_stats[["spend"]], txn],
    schema=[Field(name="big_spender", dtype=Bool)],
    mode="python",
    singleton=True,
)
def big_spender(row: dict) -> dict:
    spend = row["spend"]
    return {"big_spender": spend is not None and spend + row["amount"] > 100.0}


checkout = FeatureService(
    name="checkout",
    features=[customer_stats[["spend", "segment"]], spend_ratio, weighted],
    description="What the checkout model reads.",
)
'''


def shop_stats() -> pd.DataFrame:
    """Customer 1 and 2 hold the rows a point-in-time join can get wrong; 3..29 are random."""
    created = pd.Timedelta(minutes=5)
    rows = [
        (1, T0, T0 + created, 1.0, 1, "a", True),  # same event time: the later created wins
        (1, T0, T0 + 2 * created, 2.0, 2, "b", False),
        (1, T0 + 3 * HOUR, pd.NaT, 5.0, 5, "c", True),  # a null created time is the older
        (1, T0 + 3 * HOUR, T0 + 3 * HOUR + US, 6.0, 6, "d", False),
        (2, T0 + HOUR, T0 + HOUR, 10.0, 0, "x", True),
        (2, T0 + 5 * HOUR, T0 + 5 * HOUR, None, 3, None, None),  # nulls are values too
    ]
    rng = np.random.default_rng(7)
    for _ in range(300):
        t = T0 + pd.Timedelta(minutes=int(rng.integers(0, 60 * 24)))
        rows.append(
            (
                int(rng.integers(3, 30)),
                t,
                t + pd.Timedelta(seconds=int(rng.integers(0, 100))),
                float(rng.normal(50, 20)),
                int(rng.integers(0, 9)),
                str(rng.choice(["a", "b"])),
                bool(rng.integers(0, 2)),
            )
        )
    cols = ["customer_id", "ts", "created", "spend_raw", "visits", "segment", "active"]
    return pd.DataFrame(rows, columns=cols)


def shop_repo(root: Path) -> Path:
    """The shop Feast repo, with its data, at ``root``."""
    (root / "data").mkdir(parents=True)
    (root / "feature_store.yaml").write_text(SHOP_CONFIG)
    (root / "features.py").write_text(SHOP_FEATURES)
    shop_stats().to_parquet(root / "data" / "customer_stats.parquet", index=False)
    profile = pd.DataFrame(
        {
            "customer_id": list(range(1, 30)),
            "event_timestamp": [pd.Timestamp("2020-01-01", tz="UTC")] * 29,
            "tier_score": np.linspace(0.5, 2, 29).astype("float32"),
        }
    )
    profile.to_parquet(root / "data" / "customer_profile.parquet", index=False)
    return root


def shop_entities() -> pd.DataFrame:
    """Entity rows on the edges (exactly at a row's time, exactly ttl after it, 1 µs past)
    and random ones, with the request data ``amount``."""
    edge = [
        (1, T0 - US),
        (1, T0),
        (1, T0 + 2 * HOUR),
        (1, T0 + 2 * HOUR + US),
        (1, T0 + 3 * HOUR),
        (2, T0 + HOUR),
        (2, T0 + 5 * HOUR),
        (99, T0 + HOUR),
    ]
    rng = np.random.default_rng(3)
    rand = [
        (int(rng.integers(1, 32)), T0 + pd.Timedelta(minutes=int(rng.integers(-60, 60 * 26))))
        for _ in range(300)
    ]
    frame = pd.DataFrame(edge + rand, columns=["customer_id", "event_timestamp"])
    frame["amount"] = np.round(rng.uniform(0, 200, len(frame)), 2)
    return frame


def write_files(root: Path, files: dict[str, str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (root / name).write_text(textwrap.dedent(text))
    return root
