"""A small repo for the erase, export and retention tests: users, merchants, a view keyed by
the user alone, one keyed by user and merchant, one keyed by the merchant alone, a push source
with a Parquet batch file and a file source with a CSV file; rows pushed online and offline
and a serving log written through the store's own hook."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa

from parity import FeatureStore
from parity.monitoring.serving_log import ServingLog
from repo_utils import write_parquet, write_repo

NOW = datetime(2024, 6, 1, 12, tzinfo=UTC)
USERS = [1, 2, 3, 4]

DEFS = """
from datetime import timedelta
from parity import Entity, FeatureView, Field, FileSource, Float64, Int64, PushSource, String

user = Entity(name="user", join_keys=["user_id"], dtype=Int64)
merchant = Entity(name="merchant", join_keys=["merchant_id"], dtype=String)
events_file = FileSource(name="events_file", path="data/events.parquet")
events = PushSource(name="events", batch_source=events_file)
profiles = FileSource(name="profiles", path="data/profiles.csv")
user_stats = FeatureView(name="user_stats", entities=[user], source=events,
                         schema=[Field(name="amount", dtype=Float64)], retention=timedelta(days=30))
user_merchant = FeatureView(name="user_merchant", entities=[user, merchant], source=events,
                            schema=[Field(name="amount", dtype=Float64)])
merchant_stats = FeatureView(name="merchant_stats", entities=[merchant], source=events,
                             schema=[Field(name="amount", dtype=Float64)])
user_profile = FeatureView(name="user_profile", entities=[user], source=profiles,
                           schema=[Field(name="city", dtype=String)], retention=timedelta(days=7))
"""


def rows(users: list[int], at: datetime, merchants: tuple[str, ...] = ("m1", "m2")) -> pa.Table:
    """One event per (user, merchant) at ``at``."""
    pairs = [(u, m) for u in users for m in merchants]
    return pa.table(
        {
            "user_id": pa.array([u for u, _ in pairs], pa.int64()),
            "merchant_id": [m for _, m in pairs],
            "amount": [float(u * 10 + i) for i, (u, _) in enumerate(pairs)],
            "event_timestamp": pa.array([at] * len(pairs), pa.timestamp("us", tz="UTC")),
        }
    )


def make_repo(root: Path, online: str = "{ type: sqlite, path: data/online.db }") -> Path:
    """The repo, applied, with: batch rows 10 days old, offline-log rows pushed 40 days and 1
    hour old, the same users online, a CSV of profiles, and a serving log of one read."""
    write_repo(root, {"features.py": DEFS})
    cfg = root / "parity.yaml"
    cfg.write_text(
        cfg.read_text()
        + f"online_store: {online}\nserving_log: {{ sample_rate: 1.0, flush_seconds: 3600 }}\n"
    )
    write_parquet(root / "data" / "events.parquet", rows(USERS, NOW - timedelta(days=10)))
    (root / "data" / "profiles.csv").write_text(
        "user_id,city,event_timestamp\n"
        + "".join(
            f"{u},city {u},{(NOW - timedelta(days=d)).isoformat()}\n"
            for u in USERS
            for d in (1, 20)
        )
    )
    with FeatureStore(root, clock=lambda: NOW) as store:
        store.apply()
        store.push("events", rows(USERS, NOW - timedelta(days=40)), to="offline")
        store.push("events", rows(USERS, NOW - timedelta(hours=1)), to="online_and_offline")
    log = ServingLog(root / "data" / "serving_log", sample_rate=1.0)
    with FeatureStore(root, clock=lambda: NOW, hooks=[log]) as store:
        store.get_online_features(
            ["user_stats:amount", "user_profile:city"], [{"user_id": u} for u in USERS]
        )
        store.get_online_features(
            ["user_merchant:amount"],
            [{"user_id": u, "merchant_id": m} for u in USERS for m in ("m1", "m2")],
        )
    log.flush()
    return root
