"""The Watermarks hook: the newest event time per view and target, recorded in a real
registry, throttled (never a registry write per batch) and never failing a data write."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parity.monitoring.watermarks import MIN_GAP_SECONDS, STEP_SECONDS, STEP_US, Watermarks
from parity.registry import Registry
from parity.registry.monitoring import MonitorRecords

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
BASE_US = 1_714_564_800_000_000  # 2024-05-01 12:00 UTC


def at(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)


class Monotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make(tmp_path: Path) -> tuple[Watermarks, Monotonic, MonitorRecords]:
    registry = Registry.from_location(str(tmp_path / "registry.db"), "test", base_dir=tmp_path)
    clock = Monotonic()
    return Watermarks(lambda: registry, monotonic=clock), clock, MonitorRecords(registry)


RATING_T = datetime(2024, 5, 1, tzinfo=UTC)


def rating_repo(tmp_path: Path) -> tuple[Path, datetime]:
    """A repo with one view, ``rating``, whose source holds one row at ``RATING_T``."""
    from repo_utils import write_parquet, write_repo

    root = write_repo(
        tmp_path / "repo",
        {
            "f.yaml": """
            kind: entity
            name: driver
            join_keys: [driver_id]
            ---
            name: rating
            entity: driver_id
            source: { name: s, path: data/s.parquet, timestamp_field: ts }
            dtype: Float64
            """
        },
    )
    data = {"driver_id": [1], "rating": [1.0], "ts": [RATING_T]}
    write_parquet(root / "data" / "s.parquet", data)
    return root, RATING_T


def written(marks: Watermarks, *, newest: int, views=("v",), to="online", kind="stream"):
    marks.after_write(
        project="test",
        kind=kind,
        target="v",
        views=views,
        rows=1,
        stored=1,
        newest_event_us=newest,
        to=to,
        catalog=None,
        seconds=0.0,
        error=None,
    )


def test_a_stream_of_batches_writes_the_registry_about_once_a_second(tmp_path: Path) -> None:
    marks, clock, kept = make(tmp_path)
    # 1000 batches 1 ms apart, event times advancing 1 ms each: one second of a stream
    for i in range(1000):
        written(marks, newest=BASE_US + i * 1000)
        clock.now += 0.001
    assert marks.writes <= 2  # the first at once, then one when the second was up
    newest = kept.newest("online")[("v", "online")]
    assert at(BASE_US + 999_000) - newest < timedelta(seconds=1)
    marks.flush()
    assert kept.newest("online")[("v", "online")] == at(BASE_US + 999_000)
    assert marks.pending() == {}


def test_an_event_time_jump_is_written_once_the_minimum_gap_passed(tmp_path: Path) -> None:
    marks, clock, kept = make(tmp_path)
    written(marks, newest=BASE_US)
    written(marks, newest=BASE_US + STEP_US)  # same wall instant, 1 s of event time later
    assert marks.writes == 1  # a backfill's batches do not each write the registry
    clock.now += MIN_GAP_SECONDS
    written(marks, newest=BASE_US + 2 * STEP_US)
    assert marks.writes == 2
    assert kept.newest()[("v", "online")] == at(BASE_US + 2 * STEP_US)


def test_a_backfill_writes_the_registry_a_few_times_a_second(tmp_path: Path) -> None:
    marks, clock, kept = make(tmp_path)
    for i in range(1000):  # 1000 batches 1 ms apart, each an hour of event time later
        written(marks, newest=BASE_US + i * 3600 * STEP_US)
        clock.now += 0.001
    assert marks.writes <= 1 + 1 / MIN_GAP_SECONDS
    marks.flush()
    assert kept.newest()[("v", "online")] == at(BASE_US + 999 * 3600 * STEP_US)


def test_closing_the_store_writes_what_was_held_back(tmp_path: Path) -> None:
    from parity import FeatureStore

    root, t = rating_repo(tmp_path)
    with FeatureStore(root) as store:
        store.apply()
        (marks,) = [h for h in store.hooks if isinstance(h, Watermarks)]
        marks._monotonic = lambda: 1000.0  # the writes land at one wall instant, however slow
        for hours in (0, 1, 2):  # quicker than the throttle: the last two are held back
            rows = {"driver_id": [1], "rating": [2.0], "ts": [t + timedelta(hours=hours)]}
            store.write_to_online_store("rating", rows)
        assert marks.pending() == {("rating", "online"): t + timedelta(hours=2)}
    with FeatureStore(root) as store:  # another process would see the same
        kept = MonitorRecords(store.registry)
        assert kept.newest("online") == {("rating", "online"): t + timedelta(hours=2)}


def test_targets_follow_where_the_write_went(tmp_path: Path) -> None:
    marks, _clock, kept = make(tmp_path)
    written(marks, newest=BASE_US, views=("a",), to="online")
    written(marks, newest=BASE_US, views=("b",), to="offline")
    written(marks, newest=BASE_US, views=("c", "d"), to="online_and_offline")
    written(marks, newest=BASE_US + 5, views=("a",), kind="delete")  # deletes move nothing
    assert set(kept.newest()) == {
        ("a", "online"),
        ("b", "offline"),
        ("c", "online"),
        ("c", "offline"),
        ("d", "online"),
        ("d", "offline"),
    }
    assert kept.newest()[("a", "online")] == at(BASE_US)


def test_a_failed_write_or_nothing_written_records_nothing(tmp_path: Path) -> None:
    marks, _clock, kept = make(tmp_path)
    marks.after_write(
        kind="push", views=("v",), newest_event_us=BASE_US, to="online", error=ValueError("x")
    )
    marks.after_write(kind="push", views=("v",), newest_event_us=None, to="online", error=None)
    assert kept.newest() == {} and marks.pending() == {}


def test_a_failing_registry_never_fails_the_write_and_is_retried(tmp_path: Path) -> None:
    folder = tmp_path / "not-a-db"
    folder.mkdir()  # a folder where the SQLite file should be: every registry write fails
    broken = Registry.from_location(str(folder), "test", base_dir=tmp_path)
    clock = Monotonic()
    marks = Watermarks(lambda: broken, monotonic=clock)
    written(marks, newest=BASE_US)  # logged, not raised
    assert marks.writes == 0
    assert marks.pending() == {("v", "online"): at(BASE_US)}
    # retried at most once per second, however far event time runs ahead
    written(marks, newest=BASE_US + 10 * STEP_US)
    assert marks.pending() == {("v", "online"): at(BASE_US + 10 * STEP_US)}


def test_the_store_records_what_a_write_reached(tmp_path: Path) -> None:
    from parity import FeatureStore

    root, t = rating_repo(tmp_path)
    with FeatureStore(root) as store:
        store.apply()
        store.materialize(t - timedelta(days=1), t + timedelta(hours=1))
        kept = MonitorRecords(store.registry)
        assert kept.newest("online") == {("rating", "online"): t}


@settings(max_examples=60)
@given(
    st.lists(
        st.tuples(st.integers(-3 * STEP_US, 5 * STEP_US), st.floats(0, 1.5)),
        min_size=1,
        max_size=40,
    )
)
def test_the_registry_is_never_more_than_a_second_behind(
    tmp_path_factory: pytest.TempPathFactory, steps: list[tuple[int, float]]
) -> None:
    """After every write: the registry holds the newest seen, or what it holds was written
    less than 1 s ago, and less than 1 s of event time before the newest unless it was
    written less than the minimum gap ago; registry writes never outnumber data writes;
    flush settles it exactly."""
    marks, clock, kept = make(tmp_path_factory.mktemp("marks"))
    newest = None
    last_write_at = None
    for delta_us, wait in steps:
        clock.now += wait
        event = BASE_US + delta_us
        newest = event if newest is None else max(newest, event)
        before = marks.writes
        written(marks, newest=event)
        if marks.writes > before:
            last_write_at = clock.now
        recorded = kept.newest()[("v", "online")]
        lag_us = (at(newest) - recorded) // timedelta(microseconds=1)
        age = None if last_write_at is None else clock.now - last_write_at
        assert lag_us == 0 or (
            age is not None and age < STEP_SECONDS and (lag_us < STEP_US or age < MIN_GAP_SECONDS)
        )
    assert marks.writes <= len(steps)
    marks.flush()
    assert kept.newest()[("v", "online")] == at(newest)
