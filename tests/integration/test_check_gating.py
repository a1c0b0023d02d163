"""Writes gated by a view's checks: push, materialize and stream ingestion.

``block`` refuses the batch naming view, rule, field and offending rows, and nothing of it
is written (the offline log and the online store are as before); ``warn`` logs the same and
writes. ``store.check`` / ``parity check`` evaluate the same rules over the source rows.
The stream test runs on the real Redis (db 5, streams ``parity_test_checks:*``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pytest
import redis
from typer.testing import CliRunner

from parity import FeatureStore
from parity.cli.app import app
from parity.errors import MonitoringError
from parity.monitoring.checks import CheckFailedError
from parity.registry.monitoring import MonitorRecords
from repo_utils import write_parquet, write_repo
from stream_brokers import RedisBroker, wait_for

NOW = datetime.now(UTC).replace(microsecond=0)
T0 = NOW - timedelta(hours=3)

DEFS = """
from datetime import timedelta
from parity import Aggregation, Entity, FeatureView, Field, FileSource, Float64, Int64
from parity import PushSource, String

driver = Entity(name="driver", join_keys=["driver_id"], dtype="Int64")

trips = FileSource(name="trips", path="data/trips.parquet", timestamp_field="ts")
trips_push = PushSource(name="trips_push", batch_source=trips)
strict = FeatureView(
    name="strict", entities=[driver], source=trips_push, on_check_failure="block",
    schema=[
        Field(name="speed", dtype=Float64, checks={"min": 0, "max": 150}),
        Field(name="mode", dtype=String, checks={"allowed": ["car", "bike"]}),
    ],
)

loose_file = FileSource(name="loose_file", path="data/loose.parquet", timestamp_field="ts")
loose_push = PushSource(name="loose_push", batch_source=loose_file)
loose = FeatureView(
    name="loose", entities=[driver], source=loose_push, on_check_failure="warn",
    schema=[Field(name="speed", dtype=Float64, checks={"max": 150})],
)

# materialize: two plain views of one file (one gated, one not), an aggregated gated one
rides = FileSource(name="rides", path="data/rides.parquet", timestamp_field="ts")
rides_checked = FeatureView(
    name="rides_checked", entities=[driver], source=rides, on_check_failure="block",
    schema=[Field(name="speed", dtype=Float64, checks={"max": 150, "unique": True})],
)
rides_plain = FeatureView(
    name="rides_plain", entities=[driver], source=rides,
    schema=[Field(name="speed", dtype=Float64)],
)
rides_sum = FeatureView(
    name="rides_sum", entities=[driver], source=rides, on_check_failure="block",
    schema=[Field(name="speed", dtype=Float64, checks={"max_null_ratio": 0.0, "max": 150})],
    aggregations=[Aggregation(column="speed", function="sum", window=timedelta(days=1))],
)
"""


def _repo(root: Path, rides_speed: list[float | None]) -> Path:
    write_repo(root, {"definitions.py": DEFS})
    empty = {
        "driver_id": pa.array([], pa.int64()),
        "speed": pa.array([], pa.float64()),
        "ts": pa.array([], pa.timestamp("us", tz="UTC")),
    }
    write_parquet(root / "data" / "trips.parquet", {**empty, "mode": pa.array([], pa.string())})
    write_parquet(root / "data" / "loose.parquet", empty)
    n = len(rides_speed)
    write_parquet(
        root / "data" / "rides.parquet",
        {
            "driver_id": pa.array(range(1, n + 1), pa.int64()),
            "speed": pa.array(rides_speed, pa.float64()),
            "ts": pa.array(
                [T0 + timedelta(minutes=i) for i in range(n)], pa.timestamp("us", "UTC")
            ),
        },
    )
    with FeatureStore(root) as store:
        store.apply()
    return root


@pytest.fixture
def store(tmp_path: Path) -> Iterator[FeatureStore]:
    with FeatureStore(_repo(tmp_path / "repo", [10.0, 20.0, 30.0])) as s:
        yield s


def _rows(speeds: list[float], modes: list[str] | None = None) -> dict[str, Any]:
    n = len(speeds)
    out: dict[str, Any] = {
        "driver_id": list(range(1, n + 1)),
        "speed": speeds,
        "ts": [NOW - timedelta(minutes=1)] * n,
    }
    if modes is not None:
        out["mode"] = modes
    return out


def _online(store: FeatureStore, ref: str, n: int) -> list[Any]:
    got = store.get_online_features([ref], entities={"driver_id": list(range(1, n + 1))})
    return got.to_dict()[ref.split(":")[1]]


def _log_files(store: FeatureStore, source: str) -> list[Path]:
    folder = store.repo_path / "data" / "offline_log" / source
    return sorted(folder.rglob("*.parquet")) if folder.exists() else []


# -- push ----------------------------------------------------------------------------------


def test_push_block_refuses_and_writes_nothing(store: FeatureStore) -> None:
    store.push("trips_push", _rows([10.0, 20.0], ["car", "bike"]), to="online_and_offline")
    before_log = _log_files(store, "trips_push")
    assert len(before_log) == 1
    bad = _rows([11.0, 212.0, 13.0], ["car", "bike", "plane"])
    with pytest.raises(CheckFailedError) as err:
        store.push("trips_push", bad, to="online_and_offline")
    text = str(err.value)
    for part in ("'strict'", "'speed'", "max 150", "observed 212", "'mode'", "plane", '"row": 1'):
        assert part in text, text
    assert {(v.feature, v.rule) for v in err.value.violations} == {
        ("speed", "max"),
        ("mode", "allowed"),
    }
    assert err.value.violations[0].sample[0]["driver_id"] == 2
    # nothing of the refused batch: the log holds the first push only, online the same
    assert _log_files(store, "trips_push") == before_log
    assert _online(store, "strict:speed", 3) == [10.0, 20.0, None]
    with pytest.raises(CheckFailedError):
        store.push("trips_push", bad, to="offline")
    assert _log_files(store, "trips_push") == before_log


def test_push_warn_logs_and_writes(store: FeatureStore, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="parity.monitoring"):
        store.push("loose_push", _rows([10.0, 212.0]), to="online_and_offline")
    [record] = [r for r in caplog.records if r.name == "parity.monitoring"]
    for part in ("'loose'", "'speed'", "max 150", "observed 212", "written anyway"):
        assert part in record.getMessage(), record.getMessage()
    assert _online(store, "loose:speed", 2) == [10.0, 212.0]
    assert len(_log_files(store, "loose_push")) == 1


def test_push_that_passes_is_written(store: FeatureStore) -> None:
    assert store.push("trips_push", _rows([0.0, 150.0], ["car", "car"])) == 2
    assert _online(store, "strict:speed", 2) == [0.0, 150.0]


# -- materialize ---------------------------------------------------------------------------


def test_materialize_blocks_only_the_bad_view(tmp_path: Path) -> None:
    root = _repo(tmp_path / "repo", [10.0, 212.0, 10.0, None])
    with FeatureStore(root) as store:
        with pytest.raises(CheckFailedError) as err:
            store.materialize(T0 - timedelta(hours=1), NOW, ["rides_checked", "rides_plain"])
        text = str(err.value)
        for part in ("materialize", "'rides_checked'", "max 150", "observed 212", "unique"):
            assert part in text, text
        assert _online(store, "rides_checked:speed", 4) == [None] * 4  # nothing of it
        assert _online(store, "rides_plain:speed", 4) == [10.0, 212.0, 10.0, None]
        done = store.registry.materialized_until()
        assert "rides_plain" in done and "rides_checked" not in done

        # the aggregated view is checked on the raw events read: a null speed blocks it
        with pytest.raises(CheckFailedError, match=r"'rides_sum'.*max_null_ratio 0: observed"):
            store.materialize(T0 - timedelta(hours=1), NOW, ["rides_sum"])
        assert _online(store, "rides_sum:speed_sum_1d", 4) == [None] * 4


def test_materialize_of_good_rows_writes(store: FeatureStore) -> None:
    store.materialize(T0 - timedelta(hours=1), NOW, ["rides_checked", "rides_sum"])
    assert _online(store, "rides_checked:speed", 3) == [10.0, 20.0, 30.0]
    assert _online(store, "rides_sum:speed_sum_1d", 3) == [10.0, 20.0, 30.0]


# -- store.check and parity check ----------------------------------------------------------


def test_store_check_stores_a_result(tmp_path: Path) -> None:
    root = _repo(tmp_path / "repo", [10.0, 212.0, 10.0])
    with FeatureStore(root) as store:
        res = store.check("rides_checked", T0 - timedelta(hours=1), NOW)
        by_rule = {r["rule"]: r for r in res.to_pylist()}
        assert by_rule["max"]["passed"] is False and by_rule["max"]["observed"] == 212.0
        assert by_rule["unique"]["offending_rows"] == 1
        assert json.loads(by_rule["max"]["sample"])[0]["driver_id"] == 2
        assert res.summary["violations"] == 2 and res.id is not None
        [saved] = MonitorRecords(store.registry).results("check", "rides_checked")
        assert saved.id == res.id
        assert store.check("rides_plain").summary["rules"] == 0
        with pytest.raises(MonitoringError, match="no source rows"):
            store.check("rides_checked", NOW - timedelta(minutes=1), NOW)
        with pytest.raises(MonitoringError, match="range is empty"):
            store.check("rides_checked", NOW, T0)

    cli = CliRunner()
    out = cli.invoke(app, ["check", "rides_checked", "--repo", str(root), "--json"])
    assert out.exit_code == 3, out.output
    got = json.loads(out.stdout)
    assert {r["rule"]: r["passed"] for r in got["rules"]} == {"max": False, "unique": False}
    out = cli.invoke(app, ["check", "rides_checked", "--repo", str(root)])
    assert out.exit_code == 3 and "FAIL" in out.output and "212" in out.output, out.output
    out = cli.invoke(app, ["check", "rides_plain", "--repo", str(root)])
    assert out.exit_code == 0 and "no checks" in out.output, out.output
    out = cli.invoke(app, ["check", "rides_checked", "--repo", str(root), "--end", str(T0)])
    assert out.exit_code == 0, out.output


# -- stream --------------------------------------------------------------------------------

REDIS_DB5 = "redis://127.0.0.1:6379/5"


class _Broker(RedisBroker):
    """A stream of this test's own on db 5."""

    def __init__(self) -> None:
        self.stream = f"parity_test_checks:{uuid.uuid4().hex[:10]}"
        self.dead = f"{self.stream}.dead"
        self.client = redis.Redis.from_url(REDIS_DB5, socket_timeout=30)
        self.client.ping()

    def source_kwargs(self) -> dict[str, Any]:
        return {"kind": self.kind, "url": REDIS_DB5, "stream": self.stream}


STREAM_DEFS = """
from parity import Entity, FeatureView, Field, FileSource, Float64, StreamSource

driver = Entity(name="driver", join_keys=["driver_id"], dtype="Int64")
events = StreamSource(
    name="events",
    batch_source=FileSource(name="events_file", path="data/events.parquet", timestamp_field="ts"),
    **{kwargs!r},
)
speed = FeatureView(
    name="speed", entities=[driver], source=events, on_check_failure="block",
    schema=[Field(name="speed", dtype=Float64, checks={{"max": 150}})],
)
"""


@contextlib.contextmanager
def _stream_repo(tmp_path: Path) -> Iterator[tuple[FeatureStore, _Broker]]:
    broker = _Broker()
    root = tmp_path / "repo"
    kwargs = {"to": "online_and_offline", **broker.source_kwargs()}
    write_repo(root, {"definitions.py": STREAM_DEFS.format(kwargs=kwargs)})
    prefix = f"parity_test_checks:{uuid.uuid4().hex[:8]}:"
    with (root / "parity.yaml").open("a") as f:
        f.write(f"online_store: {{ type: redis, url: '{REDIS_DB5}', key_prefix: '{prefix}' }}\n")
    write_parquet(
        root / "data" / "events.parquet",
        {
            "driver_id": pa.array([], pa.int64()),
            "speed": pa.array([], pa.float64()),
            "ts": pa.array([], pa.timestamp("us", tz="UTC")),
        },
    )
    store = FeatureStore(root)
    try:
        store.apply()
        yield store, broker
    finally:
        store.teardown()
        store.close()
        broker.close()


def test_stream_blocked_batch_is_dead_lettered(tmp_path: Path) -> None:
    with _stream_repo(tmp_path) as (store, broker):
        ts = (NOW - timedelta(minutes=1)).isoformat()
        bad = [{"driver_id": i, "speed": 212.0 if i == 2 else 10.0, "ts": ts} for i in (1, 2, 3)]
        offsets = broker.publish([orjson.dumps(e) for e in bad])
        runner = store.stream_runner(["events"], batch_size=50)
        runner.start()
        try:
            st = runner.stats()["events"]
            wait_for(lambda: sum(st.dead_letters.values()) >= 3, lambda: f"3 dead: {st}")
            assert (st.written, dict(st.dead_letters)) == (0, {"check": 3})
            wait_for(lambda: broker.progress().drained, lambda: str(broker.progress()))
            # a good batch after it is written
            good = [{"driver_id": 4, "speed": 40.0, "ts": ts}]
            broker.publish([orjson.dumps(e) for e in good])
            wait_for(lambda: st.written >= 1, lambda: f"1 written: {st}")
        finally:
            runner.stop()
        letters = broker.dead_letters()
        assert [x.offset for x in letters] == offsets
        assert {x.reason for x in letters} == {"check"}
        assert all("'speed'" in x.detail and "observed 212" in x.detail for x in letters)
        assert letters[0].field == "speed"
        assert _online(store, "speed:speed", 4) == [None, None, None, 40.0]
        files = list((store.repo_path / "data" / "offline_log" / "events").rglob("*.parquet"))
        assert len(files) == 1  # the good batch's alone
