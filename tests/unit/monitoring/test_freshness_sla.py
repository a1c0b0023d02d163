"""store.freshness(): lag online and offline against each view's SLA, score, breach and
compliance, on a real repo (DuckDB offline, SQLite online and registry) with a clock the
test moves."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from parity import FeatureStore
from parity.errors import MonitoringError
from parity.monitoring.freshness import judge
from repo_utils import write_parquet, write_repo

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)

DEFS = """
kind: entity
name: driver
join_keys: [driver_id]
---
kind: source
name: stats
path: data/stats.parquet
timestamp_field: event_timestamp
---
kind: feature_view
name: fast
entities: [driver]
source: stats
ttl: 1d
sla: { freshness: 5m }
schema: [{ name: rate, dtype: Float64 }]
---
kind: feature_view
name: patient
entities: [driver]
source: stats
ttl: 1d
sla: { freshness: 5m, grace: 10m }
schema: [{ name: rate, dtype: Float64 }]
---
kind: feature_view
name: no_sla
entities: [driver]
source: stats
ttl: 1d
schema: [{ name: rate, dtype: Float64 }]
---
kind: feature_view
name: archive
entities: [driver]
source: stats
ttl: 1d
online: false
sla: { freshness: 1h }
schema: [{ name: rate, dtype: Float64 }]
"""


class Clock:
    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = write_repo(tmp_path / "repo", {"features.yaml": DEFS})
    write_parquet(
        root / "data" / "stats.parquet",
        {
            "driver_id": [1, 2],
            "rate": [0.5, 0.7],
            "event_timestamp": [T0 - timedelta(hours=3), T0 - timedelta(hours=2)],
        },
    )
    with FeatureStore(root) as store:
        store.apply()
    return root


def rows(store: FeatureStore, **kw: object) -> dict[str, dict]:
    return {r["view"]: r for r in store.freshness(**kw).to_pylist()}  # type: ignore[arg-type]


def write(store: FeatureStore, view: str, at: datetime) -> None:
    store.write_to_online_store(view, {"driver_id": [1], "rate": [0.1], "event_timestamp": [at]})


def test_never_written_views_have_no_lag_and_do_not_breach(repo: Path) -> None:
    with FeatureStore(repo, clock=Clock(T0)) as store:
        got = rows(store)
    assert sorted(got) == ["archive", "fast", "no_sla", "patient"]
    fast = got["fast"]
    assert fast["newest_event_time"] is None and fast["lag_seconds"] is None
    assert fast["sla_seconds"] == 300.0 and fast["grace_seconds"] == 120.0
    assert fast["score"] is None and fast["breached"] is False
    # the offline side is the source's newest event, 2 h before now
    assert fast["offline_newest_event_time"] == T0 - timedelta(hours=2)
    assert fast["offline_lag_seconds"] == 7200.0
    assert got["no_sla"]["sla_seconds"] is None and got["no_sla"]["score"] is None
    assert got["patient"]["grace_seconds"] == 600.0


def test_lag_score_and_breach_follow_the_clock(repo: Path) -> None:
    clock = Clock(T0)
    with FeatureStore(repo, clock=clock) as store:
        write(store, "fast", T0 - timedelta(seconds=60))
        write(store, "patient", T0 - timedelta(seconds=60))
        got = rows(store)
        assert got["fast"]["newest_event_time"] == T0 - timedelta(seconds=60)
        assert got["fast"]["lag_seconds"] == 60.0
        assert got["fast"]["score"] == pytest.approx(0.8)
        assert got["fast"]["breached"] is False
        # an older event written later does not move the mark back
        write(store, "fast", T0 - timedelta(hours=1))
        assert rows(store)["fast"]["lag_seconds"] == 60.0

        clock.now = T0 + timedelta(seconds=360)  # lag 420 s = SLA + grace: not yet
        got = rows(store)
        assert got["fast"]["lag_seconds"] == 420.0
        assert got["fast"]["score"] == 0.0 and got["fast"]["breached"] is False

        clock.now = T0 + timedelta(seconds=361)  # past SLA + grace
        got = rows(store)
        assert got["fast"]["breached"] is True
        assert got["patient"]["breached"] is False  # its own 10 min grace
        # the writes went online only: the offline side is still the source's
        assert got["fast"]["offline_newest_event_time"] == T0 - timedelta(hours=2)


def test_an_offline_only_view_is_judged_on_its_offline_lag(repo: Path) -> None:
    with FeatureStore(repo, clock=Clock(T0 + timedelta(minutes=1))) as store:
        got = rows(store)["archive"]
    assert got["sla_on"] == "offline" and got["newest_event_time"] is None
    assert got["offline_lag_seconds"] == 7260.0
    assert got["breached"] is True  # 2 h 1 min > 1 h + 2 min
    assert got["score"] == 0.0


def test_marks_are_seen_by_another_store_of_the_repo(repo: Path) -> None:
    with FeatureStore(repo, clock=Clock(T0)) as writer:
        write(writer, "fast", T0 - timedelta(seconds=30))
    with FeatureStore(repo, clock=Clock(T0)) as reader:
        assert rows(reader)["fast"]["lag_seconds"] == 30.0


def test_compliance_counts_the_saved_evaluations_in_the_window(repo: Path) -> None:
    from parity.monitoring.freshness import freshness

    clock = Clock(T0)
    with FeatureStore(repo, clock=clock) as store:
        write(store, "fast", T0)
        # evaluations at lag 0, 100, 200, 300 (within: lag <= SLA), 400 (late), 500
        for lag in (0, 100, 200, 300, 400, 500):
            clock.now = T0 + timedelta(seconds=lag)
            freshness(store, save=True)
        got = rows(store)  # not saved: counts the six
        assert got["fast"]["samples"] == 6
        assert got["fast"]["compliance"] == pytest.approx(4 / 6)
        assert got["no_sla"]["compliance"] is None and got["no_sla"]["samples"] == 0
        # a window of 250 s ending at 500 s holds the evaluations at 300, 400, 500
        got = rows(store, window="250s")
        assert got["fast"]["samples"] == 3
        assert got["fast"]["compliance"] == pytest.approx(1 / 3)
        # never-written views were not measured, so nothing counts for them
        assert got["patient"]["samples"] == 0 and got["patient"]["compliance"] is None


def test_a_saved_evaluation_is_stored_with_its_id(repo: Path) -> None:
    from parity.monitoring.freshness import freshness
    from parity.registry.monitoring import MonitorRecords

    with FeatureStore(repo, clock=Clock(T0)) as store:
        write(store, "fast", T0)
        result = freshness(store, save=True)
        assert result.id is not None
        kept = MonitorRecords(store.registry)
        assert kept.table(result.id).equals(result.table)
        assert result.summary["views"]["fast"] == {"lag": 0.0, "sla": 300.0, "grace": 120.0}


@pytest.mark.parametrize("window", ["-1h", "0s", "soon", [1]])
def test_a_bad_window_is_refused(repo: Path, window: object) -> None:
    with FeatureStore(repo, clock=Clock(T0)) as store, pytest.raises(MonitoringError) as err:
        store.freshness(window=window)
    assert "window" in str(err.value)


@given(
    lag=st.floats(-1e6, 1e7, allow_nan=False),
    sla=st.floats(1e-3, 1e6, allow_nan=False),
    grace=st.floats(0, 1e6, allow_nan=False),
)
def test_score_and_breach_for_all_lags(lag: float, sla: float, grace: float) -> None:
    score, breached = judge(lag, sla, grace)
    assert score is not None and 0.0 <= score <= 1.0
    assert score == pytest.approx(min(1.0, max(0.0, 1 - lag / sla)))
    assert breached == (lag > sla + grace)
    if breached:
        assert score == 0.0  # a breached view is past its SLA, where the score is 0
    if lag <= sla:
        assert not breached


def test_no_sla_or_no_lag_scores_nothing() -> None:
    assert judge(None, 300.0, 120.0) == (None, False)
    assert judge(10.0, None, 120.0) == (None, False)
