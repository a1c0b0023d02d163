"""The serving log: sampling, what a file holds, file names and folders, the bounded buffer,
the writer thread, and the feature server's wiring (``parity.monitoring.serving_log``).

Reads go through a real FeatureStore over a scaffolded, materialized repo (SQLite online).
"""

from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parity import FeatureStore
from parity.cli.scaffold import create_repo
from parity.config import RepoConfig, ServingLogConfig
from parity.monitoring.serving_log import (
    FEATURES_KEY,
    FULL_NAMES_KEY,
    REQUEST_TIME,
    ServingLog,
    file_bounds,
)
from parity.monitoring.skew import read_log

NOW = datetime(2024, 1, 3, 23, 30, tzinfo=UTC)
REFS = ["driver_hourly_stats:conv_rate", "driver_profile:city", "driver_rating:driver_rating"]
HOUR_US = 3_600_000_000
CLOCK = [NOW]
"""The store's clock: tests that need other request times set it and put it back."""


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Iterator[FeatureStore]:
    root = tmp_path_factory.mktemp("log") / "repo"
    create_repo("log", root, now=datetime(2024, 1, 3, 23, tzinfo=UTC))
    with FeatureStore(root, clock=lambda: CLOCK[0]) as fs:
        fs.apply()
        fs.materialize_incremental(NOW)
        yield fs


def wait_until(condition: Any, what: str, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not so after {seconds:g} s: {what}")
        time.sleep(0.01)


def read(store: FeatureStore, log: ServingLog, ids: list[int], **kw: Any) -> Any:
    store.hooks.add(log)
    try:
        return store.get_online_features(kw.pop("refs", REFS), entities={"driver_id": ids}, **kw)
    finally:
        store.hooks.remove(log)


def draws(values: list[float]) -> Any:
    it = iter(values)
    return lambda: next(it)


# -- sampling --------------------------------------------------------------------------------
@settings(
    deadline=None, max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rate=st.floats(0, 1),
    rolls=st.lists(st.floats(0, 1, exclude_max=True), min_size=1, max_size=12),
)
def test_a_request_is_logged_exactly_when_its_draw_is_below_the_rate(store, rate, rolls) -> None:
    with tempfile.TemporaryDirectory() as folder:
        log = ServingLog(folder, sample_rate=rate, random=draws(rolls))
        for _ in rolls:
            read(store, log, [1001, 1002])
        assert log.buffered_rows == 2 * sum(r < rate for r in rolls)


def test_a_paused_log_samples_nothing_until_resumed(store, tmp_path) -> None:
    log = ServingLog(tmp_path, sample_rate=1.0, paused=True)
    read(store, log, [1001])
    assert log.buffered_rows == 0
    log.resume()
    read(store, log, [1001])
    assert log.buffered_rows == 1


def test_failed_reads_are_not_logged(store, tmp_path) -> None:
    log = ServingLog(tmp_path, sample_rate=1.0)
    with pytest.raises(Exception, match="driver_id"):
        read(store, log, ["not an int"])  # type: ignore[list-item]
    assert log.buffered_rows == 0 and log.flush() == []


# -- what a file holds -----------------------------------------------------------------------
@settings(
    deadline=None, max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    ids=st.lists(st.sampled_from([1001, 1002, 1003, 1004, 1005, 7, 9999]), min_size=1, max_size=8),
    full=st.booleans(),
)
def test_a_file_holds_exactly_what_was_served_at_the_store_clock(store, ids, full) -> None:
    with tempfile.TemporaryDirectory() as folder:
        log = ServingLog(folder, sample_rate=1.0)
        served = read(store, log, ids, full_feature_names=full)
        (path,) = log.flush()
        table = pq.read_table(path, partitioning=None)
        meta = table.schema.metadata
        assert meta[FEATURES_KEY].decode() == '["' + '", "'.join(REFS) + '"]'
        assert meta[FULL_NAMES_KEY] == (b"true" if full else b"false")
        want = served.to_arrow(include_metadata=True)
        assert table.drop_columns([REQUEST_TIME]).to_pylist() == want.to_pylist()
        assert table.column(REQUEST_TIME).to_pylist() == [NOW] * len(ids)
        assert file_bounds(path) == (int(NOW.timestamp() * 1e6),) * 2
        assert path.parent.name == "hour=23" and path.parent.parent.name == "date=2024-01-03"
        assert log.written_rows == len(ids) and log.files_written == 1


def test_files_are_split_by_rows_and_by_hour_and_named_by_their_times(store, tmp_path) -> None:
    log = ServingLog(tmp_path, sample_rate=1.0, max_rows_per_file=4)
    base = int(NOW.timestamp() * 1e6)
    store.hooks.add(log)
    try:
        times = [base + i for i in range(10)] + [base + HOUR_US + i for i in range(3)]
        for t in times:  # the read's clock decides the request time
            CLOCK[0] = datetime.fromtimestamp(t / 1e6, UTC)
            store.get_online_features(REFS, entities={"driver_id": [1001]})
    finally:
        CLOCK[0] = NOW
        store.hooks.remove(log)
    files = sorted(log.flush(), key=lambda p: file_bounds(p) or (0, 0))
    assert [pq.read_metadata(f).num_rows for f in files] == [4, 4, 2, 3]
    assert {f.parent.name for f in files} == {"hour=23", "hour=00"}
    assert files[-1].parent.parent.name == "date=2024-01-04"
    for f in files:
        got = [int(t.timestamp() * 1e6) for t in pq.read_table(f).column(REQUEST_TIME).to_pylist()]
        assert file_bounds(f) == (min(got), max(got))
    assert sum(t.num_rows for t in read_log(tmp_path, None, None).values()) == 13


def test_request_shapes_go_to_separate_files(store, tmp_path) -> None:
    log = ServingLog(tmp_path, sample_rate=1.0)
    read(store, log, [1001, 1002])
    read(store, log, [1003], refs="driver_activity")
    read(store, log, [1004], full_feature_names=True)
    files = log.flush()
    assert len(files) == 3
    shapes = read_log(tmp_path, None, None)
    service = (
        "driver_hourly_stats:conv_rate",
        "driver_hourly_stats:avg_daily_trips",
        "driver_rating:driver_rating",
    )
    assert {shape: t.num_rows for shape, t in shapes.items()} == {
        (tuple(REFS), False): 2,
        (service, False): 1,
        (tuple(REFS), True): 1,
    }
    assert "driver_hourly_stats__conv_rate" in shapes[(tuple(REFS), True)].column_names


# -- the buffer and the writer -------------------------------------------------------------
def test_a_full_buffer_drops_the_oldest_requests_and_counts_them(store, tmp_path) -> None:
    log = ServingLog(tmp_path, sample_rate=1.0, max_buffered_rows=5)
    for driver in [1001, 1002, 1003, 1004, 1005, 1001, 1002]:
        read(store, log, [driver])
    read(store, log, [1003, 1004])
    assert log.buffered_rows == 5 and log.dropped_rows == 4
    (path,) = log.flush()
    kept = pq.read_table(path).column("driver_id").to_pylist()
    assert kept == [1005, 1001, 1002, 1003, 1004]  # the newest, in order
    read(store, log, list(range(1, 7)))  # one request larger than the buffer: dropped itself
    assert log.buffered_rows == 0 and log.dropped_rows == 10


def test_the_writer_thread_writes_every_flush_seconds(store, tmp_path) -> None:
    log = ServingLog(tmp_path, sample_rate=1.0, flush_seconds=0.05).start()
    try:
        read(store, log, [1001, 1002])
        wait_until(lambda: log.written_rows == 2, "the thread wrote the rows")
        read(store, log, [1003])
        wait_until(lambda: log.written_rows == 3, "the thread wrote the next row")
    finally:
        log.close()
    assert log.files_written == 2


def test_enough_rows_wake_the_writer_before_its_interval(store, tmp_path) -> None:
    log = ServingLog(tmp_path, sample_rate=1.0, flush_seconds=3600, max_rows_per_file=3).start()
    try:
        read(store, log, [1001, 1002])
        read(store, log, [1003])
        wait_until(lambda: log.written_rows == 3, "a full file written at once")
    finally:
        log.close()


def test_the_request_filling_the_buffer_converts_it_in_place(store, tmp_path) -> None:
    """No thread is woken to convert (it would take the interpreter lock from requests):
    the read that brings the buffer to its conversion size converts it."""
    log = ServingLog(tmp_path, sample_rate=1.0, flush_seconds=3600, max_rows_per_file=5)
    read(store, log, [1001, 1002])
    read(store, log, [1003, 1004])
    assert (log.buffered_rows, log._pending_rows) == (4, 0)  # below it: buffered lists
    read(store, log, [1005, 1006])
    assert (log.buffered_rows, log._pending_rows) == (0, 6)  # converted, by this read
    assert log.flush() and log.written_rows == 6  # (no writer thread was ever started)


def test_close_writes_what_is_buffered_and_stops_the_thread(store, tmp_path) -> None:
    log = ServingLog(tmp_path, sample_rate=1.0, flush_seconds=3600).start()
    read(store, log, [1001, 1002, 9999])
    assert log.written_rows == 0
    log.close()
    assert log.written_rows == 3
    assert not any(t.name == "parity-serving-log" for t in threading.enumerate())
    assert not list(tmp_path.rglob(".*.tmp"))  # written under a dot-name, then renamed


def test_a_file_that_cannot_be_written_is_counted_not_raised(store, tmp_path) -> None:
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("")
    log = ServingLog(blocker, sample_rate=1.0)
    read(store, log, [1001, 1002])
    assert log.flush() == []
    assert log.failed_rows == 2 and log.written_rows == 0


def test_the_folder_is_relative_to_the_repo(tmp_path) -> None:
    cfg = ServingLogConfig(sample_rate=0.5, path="logs/served", flush_seconds=2)
    log = ServingLog.from_config(cfg, tmp_path)
    assert log.root == tmp_path / "logs" / "served"
    assert (log.sample_rate, log.flush_seconds) == (0.5, 2)
    assert ServingLog.from_config(ServingLogConfig(path=str(tmp_path)), Path("/x")).root == tmp_path


def test_a_rate_outside_zero_to_one_is_refused(tmp_path) -> None:
    with pytest.raises(ValueError, match="sample_rate"):
        ServingLog(tmp_path, sample_rate=1.5)


# -- the server's wiring --------------------------------------------------------------------
def test_the_server_store_logs_once_warm_and_writes_at_close(store, tmp_path) -> None:
    from parity.server.serving import Serving

    config = RepoConfig.load(store.repo_path).model_copy(
        update={"serving_log": ServingLogConfig(sample_rate=1.0, path=str(tmp_path / "served"))}
    )
    serving = Serving(store.repo_path, config=config)
    log = serving.serving_log
    assert log is not None and log in list(serving.store.hooks)
    serving.store.get_online_features(REFS, entities={"driver_id": [1001]})
    assert log.buffered_rows == 0  # paused: warm-up reads are not logged
    log.resume()
    serving.store.get_online_features(REFS, entities={"driver_id": [1001, 1002]})
    serving.close()
    assert log.written_rows == 2
    assert len(list((tmp_path / "served").rglob("*.parquet"))) == 1


def test_without_serving_log_the_server_store_has_no_log(store) -> None:
    from parity.server.serving import Serving

    serving = Serving(store.repo_path)
    try:
        assert serving.serving_log is None
        assert not any(isinstance(h, ServingLog) for h in serving.store.hooks)
    finally:
        serving.close()


def test_an_old_request_time_is_kept_as_is(store, tmp_path) -> None:
    """The request time is the store clock's (a replayed clock included), not the wall's."""
    log = ServingLog(tmp_path, sample_rate=1.0)
    read(store, log, [1001])
    (path,) = log.flush()
    (when,) = pq.read_table(path).column(REQUEST_TIME).to_pylist()
    assert when == NOW and datetime.now(UTC) - when > timedelta(days=1)


def test_datetime_values_are_logged_too(store, tmp_path) -> None:
    """A request-data column of datetimes (as a Timestamp feature's values would be) is
    buffered and written as any other, next to a request of another shape."""
    log = ServingLog(tmp_path, sample_rate=1.0)
    store.hooks.add(log)
    try:
        store.get_online_features(
            REFS, entities={"driver_id": [1001, 1002], "seen": [NOW, NOW - timedelta(hours=1)]}
        )
        store.get_online_features(REFS, entities={"driver_id": [1003]})
    finally:
        store.hooks.remove(log)
    assert log.buffered_rows == 3
    files = log.flush()
    tables = [pq.read_table(f) for f in files]
    with_seen = next(t for t in tables if "seen" in t.column_names)
    assert with_seen.column("seen").to_pylist() == [NOW, NOW - timedelta(hours=1)]
    assert sum(t.num_rows for t in tables) == 3
