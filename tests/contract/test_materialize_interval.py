"""Materialization windows, on every registry backend: what a run may record, and the reset.

An incremental run continues from the view's recorded end. A window that ends in the future
(beyond the clock-skew allowance) or before the recorded end, a start after the end, or a
time outside the supported range is refused with a ``RetrievalError`` (HTTP 400
``invalid_request``) that names what is wrong, and nothing is recorded. A view's recorded
interval is reset with ``store.reset_materialization`` or ``parity materialize-reset``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from parity import FeatureStore, ObjectNotFoundError, RetrievalError
from parity.cli import app
from parity.clock import MAX_TIME, MIN_TIME
from parity.ingest.materialize import CLOCK_SKEW
from parity.server.errors import from_exception
from repo_utils import write_parquet, write_repo

T0 = datetime(2024, 1, 1, tzinfo=UTC)
NOW = [T0 + timedelta(days=2)]  # the store's clock, set by the tests

DEFS = """
from datetime import timedelta
from parity import Entity, FeatureView, Field, FileSource, Float64, Int64

driver = Entity(name="driver", join_keys=["driver_id"], dtype=Int64)
src = FileSource(name="src", path="data/drivers.parquet")
recent = FeatureView(name="recent", entities=[driver], source=src,
                     schema=[Field(name="rate", dtype=Float64)], ttl=timedelta(hours=2))
forever = FeatureView(name="forever", entities=[driver], source=src,
                      schema=[Field(name="rate", dtype=Float64)])
"""


@pytest.fixture
def store(registry_target: Any, tmp_path: Path):
    from conftest import new_project  # the contract suite's helper

    reg = registry_target.url
    if registry_target.schema:
        reg = f"{{ url: '{reg}', schema: {registry_target.schema} }}"
    root = write_repo(tmp_path / "repo", {"features.py": DEFS}, project=new_project(), registry=reg)
    times = [datetime(1950, 6, 1, tzinfo=UTC), T0, T0 + timedelta(hours=1)]
    write_parquet(
        root / "data/drivers.parquet",
        {
            "driver_id": pa.array([1, 2, 3], pa.int64()),
            "event_timestamp": pa.array(times, pa.timestamp("us", tz="UTC")),
            "rate": pa.array([0.1, 0.2, 0.3], pa.float64()),
        },
    )
    (root / "parity.yaml").write_text(
        (root / "parity.yaml").read_text()
        + "online_store: { type: sqlite, path: data/online.db }\n"
    )
    NOW[0] = T0 + timedelta(days=2)
    fs = FeatureStore(root, clock=lambda: NOW[0])
    fs.apply()
    yield fs
    fs.close()


def windows(store: FeatureStore, view: str | None = None) -> list[tuple[datetime, datetime]]:
    return [(m.start, m.end) for m in store.registry.materializations(view)]


def refused(call: Any, *needles: str) -> RetrievalError:
    with pytest.raises(RetrievalError) as info:
        call()
    text = str(info.value)
    for needle in needles:
        assert needle in text, text
    api = from_exception(info.value)
    assert (api.status, api.code) == (400, "invalid_request")
    return info.value


# -- the far-future end -------------------------------------------------------------------------


def test_a_far_future_end_is_refused_and_nothing_is_recorded(store: FeatureStore):
    far = datetime(2090, 1, 1, tzinfo=UTC)
    refused(
        lambda: store.materialize_incremental(far),
        "2090-01-01",
        "in the future",
        NOW[0].isoformat(),
        "clock skew",
    )
    refused(lambda: store.materialize(T0, far), "2090-01-01", "in the future")
    beyond = datetime(9000, 1, 1, tzinfo=UTC)  # the end: past the supported range too
    refused(lambda: store.materialize_incremental(beyond), "9000-01-01", "supported time range")
    assert windows(store) == []
    # and the next honest run loads from end - ttl as on a first run
    done = store.materialize_incremental(NOW[0], ["recent"])
    assert [(v.start, v.end) for v in done.views] == [(NOW[0] - timedelta(hours=2), NOW[0])]


@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ahead=st.integers(-86_400, 86_400))
@example(ahead=300)
@example(ahead=301)
def test_an_end_is_accepted_exactly_up_to_the_clock_skew_allowance(store: FeatureStore, ahead: int):
    end = NOW[0] + timedelta(seconds=ahead)
    store.reset_materialization(["recent"])
    if timedelta(seconds=ahead) <= CLOCK_SKEW:
        assert store.materialize_incremental(end, ["recent"]).views[0].end == end
        assert windows(store, "recent")[-1][1] == end
    else:
        before = windows(store)
        refused(lambda: store.materialize_incremental(end, ["recent"]), "in the future")
        assert windows(store) == before


# -- an end before the recorded one -------------------------------------------------------------


def test_an_end_before_the_recorded_end_is_refused_naming_view_both_ends_and_the_reset(
    store: FeatureStore,
):
    first = T0 + timedelta(days=1)
    store.materialize_incremental(first, ["recent", "forever"])
    earlier = first - timedelta(hours=3)
    err = refused(
        lambda: store.materialize_incremental(earlier),
        "'recent'",
        "'forever'",
        first.isoformat(),
        earlier.isoformat(),
        "reset_materialization",
        "parity materialize-reset",
    )
    assert "recorded" in str(err)
    assert len(windows(store)) == 2  # nothing recorded by the refused run
    same = store.materialize_incremental(first, ["recent"])  # an empty window is fine
    assert [(v.start, v.end) for v in same.views] == [(first, first)]
    # a backfill of an earlier window is a plain materialize, and leaves the end as it was
    store.materialize(T0 - timedelta(days=1), earlier, ["recent"])
    assert store.registry.materialized_until()["recent"] == first


def test_a_recorded_end_in_the_future_no_longer_stalls_incremental_runs(store: FeatureStore):
    """A registry written before the check holds a far-future end: say so and how to reset."""
    stuck = datetime(9000, 1, 1, tzinfo=UTC)
    store.registry.record_materialization("recent", T0, stuck, rows=0, stored=0)
    refused(
        lambda: store.materialize_incremental(NOW[0], ["recent"]),
        "'recent'",
        "9000-01-01",
        "parity materialize-reset recent",
    )
    previous = store.reset_materialization(["recent"])
    assert previous == {"recent": stuck}
    assert windows(store, "recent") == []
    done = store.materialize_incremental(NOW[0], ["recent"])
    assert (done.views[0].start, done.views[0].end) == (NOW[0] - timedelta(hours=2), NOW[0])


# -- start after end, times outside the supported range ----------------------------------------


def test_start_after_end_is_refused(store: FeatureStore):
    refused(lambda: store.materialize(T0 + timedelta(hours=1), T0), "before start")
    assert windows(store) == []


outside = st.one_of(
    st.datetimes(max_value=MIN_TIME.replace(tzinfo=None) - timedelta(microseconds=1)),
    st.datetimes(min_value=MAX_TIME.replace(tzinfo=None)),
).map(lambda d: d.replace(tzinfo=UTC))


@settings(max_examples=30, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(when=outside)
def test_a_time_outside_the_supported_range_is_refused(store: FeatureStore, when: datetime):
    text = when.isoformat()
    refused(lambda: store.materialize(when, NOW[0]), text, "supported", "1900-01-01")
    refused(lambda: store.materialize(T0, when), text, "supported")
    refused(lambda: store.materialize_incremental(when), text, "supported")
    assert windows(store) == []


def test_the_first_run_of_a_view_without_ttl_starts_at_the_supported_range(store: FeatureStore):
    done = store.materialize_incremental(NOW[0], ["forever"])
    assert done.views[0].start == MIN_TIME
    assert done.rows == 3  # the 1950 row too: it is inside the supported range


def test_a_first_run_whose_ttl_reaches_before_the_range_starts_at_its_beginning(
    store: FeatureStore,
):
    NOW[0] = MIN_TIME + timedelta(hours=1)
    done = store.materialize_incremental(NOW[0], ["recent"])
    assert done.views[0].start == MIN_TIME


def test_not_a_time_is_refused_naming_the_argument(store: FeatureStore):
    refused(lambda: store.materialize_incremental(20240101), "end", "datetime")  # type: ignore[arg-type]
    refused(lambda: store.materialize_incremental("yesterday"), "end", "not a time", "ISO 8601")
    refused(lambda: store.materialize(None, T0), "start", "datetime")  # type: ignore[arg-type]


# -- the reset ----------------------------------------------------------------------------------


def test_reset_forgets_only_the_named_views(store: FeatureStore):
    first = T0 + timedelta(days=1)
    store.materialize_incremental(first)
    assert store.reset_materialization(["recent"]) == {"recent": first}
    assert store.registry.materialized_until() == {"forever": first}
    assert store.reset_materialization(["recent"]) == {"recent": None}
    with pytest.raises(ObjectNotFoundError, match="feature view 'nope' not found"):
        store.reset_materialization(["recent", "nope"])
    assert store.registry.materialized_until() == {"forever": first}
    with pytest.raises(RetrievalError, match="name at least one feature view"):
        store.reset_materialization([])
    # the next incremental run of the reset view starts afresh, the other continues
    again = {v.view: v.start for v in store.materialize_incremental(first).views}
    assert again == {"recent": first - timedelta(hours=2), "forever": first}


def test_the_cli_resets_a_view_and_refuses_a_future_end(store: FeatureStore):
    runner = CliRunner(env={"COLUMNS": "200"})
    repo = str(store.repo_path)
    store.materialize_incremental(T0 + timedelta(days=1))
    result = runner.invoke(app, ["materialize-reset", "recent", "--repo", repo])
    assert result.exit_code == 0, result.output
    assert "recent" in result.stdout and "2024-01-02" in result.stdout
    assert "recent" not in store.registry.materialized_until()
    result = runner.invoke(app, ["materialize-incremental", "2090-01-01", "--repo", repo])
    assert result.exit_code == 1
    assert "in the future" in " ".join(result.stderr.split())
    result = runner.invoke(app, ["materialize-reset", "nope", "--repo", repo])
    assert result.exit_code == 1 and "nope" in result.stderr
