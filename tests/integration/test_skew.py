"""Training/serving skew end to end: ``parity serve`` logs what it served, ``store.skew`` and
``parity skew`` replay it through the point-in-time join.

A scaffolded repo (data up to the current hour, materialized) is served with
``serving_log: {sample_rate: 1.0}`` and a flush interval far longer than the test, so what
reaches the files is what the server wrote at its shutdown. First everything served matches
the offline join; then some online values are changed behind the offline data (a feature
value rewritten, an entity deleted, a record for an entity the sources lack) and the report
must name exactly those rows and features.
"""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import yaml
from tests.integration.test_server import BIN, Server, online, wait_for

from parity import FeatureStore
from parity.cli.scaffold import create_repo
from parity.errors import MonitoringError
from parity.monitoring.serving_log import FEATURES_KEY, REQUEST_TIME
from parity.monitoring.skew import read_log

DRIVERS = [1001, 1002, 1003, 1004, 1005, 9999]  # 9999 is unknown to the sources
REFS = [
    "driver_hourly_stats:conv_rate",
    "driver_hourly_stats:avg_daily_trips",
    "driver_rating:driver_rating",
    "driver_profile:city",
]


def make_repo(root: Path) -> Path:
    create_repo("skew", root)  # sample data up to the current hour: fresh online values
    cfg = yaml.safe_load((root / "parity.yaml").read_text())
    cfg["serving_log"] = {"sample_rate": 1.0, "flush_seconds": 3600}
    (root / "parity.yaml").write_text(yaml.safe_dump(cfg))
    with FeatureStore(root) as store:
        store.apply()
        store.materialize_incremental(datetime.now(UTC))
    return root


def ready(server: Server) -> None:
    """Warm (so the log samples from now on): ``/ready`` says 200."""
    wait_for(lambda: server.client.get("/ready").status_code == 200, "ready", server.output)


def requests(server: Server) -> int:
    """Three request shapes; returns the entity rows asked for."""
    online(server, features=REFS, entities={"driver_id": DRIVERS})
    online(server, feature_service="driver_activity", entities={"driver_id": DRIVERS[:3]})
    online(
        server,
        features=REFS[:2],
        entities={"driver_id": DRIVERS[2:]},
        full_feature_names=True,
    )
    return len(DRIVERS) + 3 + len(DRIVERS[2:])


def serve_once(repo: Path) -> int:
    """A server that answers the requests and stops (exit 0); returns the rows asked for."""
    server = Server(repo)
    try:
        ready(server)
        rows = requests(server)
    finally:
        assert server.stop() == 0, server.output()
    return rows


def logged_rows(repo: Path, since: datetime | None = None) -> int:
    return sum(t.num_rows for t in read_log(repo / "data" / "serving_log", since, None).values())


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    return make_repo(tmp_path_factory.mktemp("skew") / "repo")


def test_skew_finds_exactly_the_rows_changed_behind_the_offline_data(repo: Path) -> None:
    with FeatureStore(repo) as store, pytest.raises(MonitoringError, match="no serving log"):
        store.skew()

    # 1. consistent: everything served matches the join at the request times
    asked = serve_once(repo)
    files = sorted((repo / "data" / "serving_log").rglob("*.parquet"))
    assert files and all(p.parent.name.startswith("hour=") for p in files)
    assert all(FEATURES_KEY in pq.read_schema(p).metadata for p in files)
    assert logged_rows(repo) == asked  # flushed at shutdown; warm-up reads not logged
    with FeatureStore(repo) as store:
        clean = store.skew()
    rows = {r["feature"]: r for r in clean.to_pylist()}
    assert set(rows) == set(REFS)
    for ref, r in rows.items():
        assert r["matched"] == r["rows"] and r["match_rate"] == 1.0, ref
        assert r["missing_rate"] == r["extra_rate"] == 0.0
        assert r["consistency"] == 1.0
    assert rows["driver_hourly_stats:conv_rate"]["rows"] == asked
    assert rows["driver_hourly_stats:conv_rate"]["mean_abs_diff"] == 0.0
    assert rows["driver_profile:city"]["mean_abs_diff"] is None  # not a number
    assert clean.summary["mismatched"] == 0 and clean.summary["skewed"] == []
    assert clean.id is not None

    # 2. online values changed behind the offline data
    with FeatureStore(repo) as store:
        now = store.get_online_features(
            [
                "driver_hourly_stats:conv_rate",
                "driver_hourly_stats:acc_rate",
                "driver_hourly_stats:avg_daily_trips",
            ],
            entities={"driver_id": [1002, 1004]},
        ).to_dict(include_metadata=True)
        # a second after the served times: still fresh, and newer than the stored records
        # whatever their created times (the scaffold's may lie minutes after the hour, later
        # than this write's own created stamp)
        stamp = [t + timedelta(seconds=1) for t in now["conv_rate__event_timestamp"]]
        store.write_to_online_store(
            "driver_hourly_stats",
            {
                "driver_id": [1002, 1004],
                "event_timestamp": stamp,
                "conv_rate": [now["conv_rate"][0] + 0.25, now["conv_rate"][1]],
                "acc_rate": now["acc_rate"],
                "avg_daily_trips": [now["avg_daily_trips"][0], now["avg_daily_trips"][1] + 7],
            },
        )
        assert store.delete_entities("driver_profile", [1003]) == 1
        store.write_to_online_store(
            "driver_rating",
            {
                "driver_id": [9999],
                "event_timestamp": [datetime.now(UTC) - timedelta(minutes=5)],
                "driver_rating": [4.5],
            },
        )
    changed_at = datetime.now(UTC)
    asked = serve_once(repo)
    assert logged_rows(repo, changed_at) == asked

    out = repo / "skew_mismatches.parquet"
    with FeatureStore(repo) as store:
        report = store.skew(since=changed_at, out=out)
    got = {r["feature"]: r for r in report.to_pylist()}
    mismatches = pq.read_table(out).to_pylist()
    found = {(m["feature"], json.loads(m["entity"])["driver_id"], m["kind"]) for m in mismatches}
    # who asked for what: REFS for all 6 drivers; the service (conv_rate, avg_daily_trips,
    # driver_rating) for 1001-1003; REFS[:2] for 1003-9999
    assert found == {
        ("driver_hourly_stats:conv_rate", 1002, "different"),  # the REFS request
        ("driver_hourly_stats:conv_rate", 1002, "different"),  # the service (same key)
        ("driver_hourly_stats:avg_daily_trips", 1004, "different"),
        ("driver_profile:city", 1003, "missing"),
        ("driver_rating:driver_rating", 9999, "extra"),
    }
    counted = [(m["feature"], json.loads(m["entity"])["driver_id"]) for m in mismatches]
    assert sorted(counted) == sorted(
        [
            ("driver_hourly_stats:conv_rate", 1002),  # REFS
            ("driver_hourly_stats:conv_rate", 1002),  # the service
            ("driver_hourly_stats:avg_daily_trips", 1004),  # REFS
            ("driver_hourly_stats:avg_daily_trips", 1004),  # REFS[:2], full names
            ("driver_profile:city", 1003),
            ("driver_rating:driver_rating", 9999),
        ]
    )
    assert report.summary["mismatched"] == len(mismatches) == 6
    assert set(report.summary["skewed"]) == set(REFS)
    conv = got["driver_hourly_stats:conv_rate"]
    assert conv["matched"] == conv["rows"] - 2 and conv["missing_rate"] == 0.0
    assert conv["mean_abs_diff"] == pytest.approx(2 * 0.25 / (conv["rows"] - 2))  # 9999: no pair
    trips = got["driver_hourly_stats:avg_daily_trips"]
    assert trips["matched"] == trips["rows"] - 2
    assert trips["mean_abs_diff"] == pytest.approx(2 * 7 / (trips["rows"] - 2))
    assert 0.0 < trips["consistency"] < 1.0
    city = got["driver_profile:city"]
    assert city["missing_rate"] == pytest.approx(1 / city["rows"]) and city["extra_rate"] == 0.0
    rating = got["driver_rating:driver_rating"]
    assert rating["extra_rate"] == pytest.approx(1 / rating["rows"])
    assert rating["consistency"] == pytest.approx(1 - 1 / rating["rows"])
    diff = next(m for m in mismatches if m["feature"] == "driver_hourly_stats:conv_rate")
    assert diff["served_status"] == "present"
    assert diff["abs_diff"] == pytest.approx(0.25)
    assert diff["request_time"] >= changed_at

    # the CLI says the same
    cli = subprocess.run(
        [
            str(BIN / "parity"),
            "skew",
            "--repo",
            str(repo),
            "--json",
            "--since",
            changed_at.isoformat(),
            "--out",
            str(repo / "cli.parquet"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert cli.returncode == 0, cli.stderr
    doc: dict[str, Any] = json.loads(cli.stdout)
    assert doc["summary"]["mismatched"] == 6
    assert {f["feature"]: f["matched"] for f in doc["features"]} == {
        k: v["matched"] for k, v in got.items()
    }
    # the whole log: the first run's rows match, so only the same 6 differ
    with FeatureStore(repo) as store:
        everything = store.skew()
    assert everything.summary["mismatched"] == 6
    assert everything.summary["rows"] == 2 * asked


def test_skew_refuses_an_empty_range(repo: Path) -> None:
    with FeatureStore(repo) as store:
        with pytest.raises(MonitoringError, match="range is empty"):
            store.skew("2024-02-01", until="2024-01-01")
        (repo / "data" / "serving_log").mkdir(parents=True, exist_ok=True)
        with pytest.raises(MonitoringError, match="has no requests from 2000-01-01"):
            store.skew("2000-01-01", until="2000-01-02")


def test_log_files_hold_the_request_time_of_the_store_clock(repo: Path) -> None:
    before = datetime.now(UTC)
    serve_once(repo)
    after = datetime.now(UTC)
    shapes = read_log(repo / "data" / "serving_log", before, None)
    times = [t for table in shapes.values() for t in table.column(REQUEST_TIME).to_pylist()]
    assert times and all(before <= t <= after for t in times)
