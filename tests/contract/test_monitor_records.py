"""Monitoring's records in the registry, on every registry backend: stored results and their
tables, view freshness that only moves forward, alerts that open once and resolve, and the
migration that adds the tables to an existing registry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest
from alembic import command
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from migration_utils import at_migration
from parity.errors import ObjectNotFoundError
from parity.registry import Registry
from parity.registry import engine as eng
from parity.registry.migrate import current_revision, head_revision
from parity.registry.monitoring import MonitorRecords

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def test_a_result_keeps_its_table_summary_and_range(registry: Registry):
    kept = MonitorRecords(registry)
    table = pa.table({"feature": ["a", "b"], "mean": [1.5, None]})
    rid = kept.save(
        "profile",
        "driver_stats",
        table,
        summary={"rows": 2},
        start=T0,
        end=T0 + timedelta(days=1),
        scope="offline",
        view_version=3,
    )
    other = kept.save("drift", "driver_stats", pa.table({"x": [1]}))
    assert kept.table(rid).equals(table)
    [record] = kept.results("profile", "driver_stats")
    assert (record.id, record.view_version, record.summary) == (rid, 3, {"rows": 2})
    assert (record.start, record.end) == (T0, T0 + timedelta(days=1))
    assert [r.id for r in kept.results(view="driver_stats")] == [other, rid]  # newest first
    assert kept.results("profile", "another_view") == []
    with pytest.raises(ObjectNotFoundError, match=r"monitoring result .* not found"):
        kept.table(rid + other + 100)
    with pytest.raises(ValueError, match="kind must be one of"):
        kept.save("nonsense", "v", table)


def test_results_of_another_project_are_not_seen(registry: Registry):
    MonitorRecords(registry).save("profile", "v", pa.table({"x": [1]}))
    url = registry.url.render_as_string(hide_password=False)
    with Registry(url, "another_project", schema=registry.schema) as other:
        assert MonitorRecords(other).results() == []


@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.integers(min_value=-10_000, max_value=10_000), min_size=1, max_size=8))
def test_view_freshness_only_moves_forward(registry: Registry, offsets: list[int]):
    kept = MonitorRecords(registry)
    kept.forget_freshness()
    for seconds in offsets:
        kept.advance("v", "online", T0 + timedelta(seconds=seconds))
    newest = kept.newest()
    assert newest[("v", "online")] == T0 + timedelta(seconds=max(offsets))
    assert ("v", "offline") not in newest


def test_freshness_targets_are_separate_and_checked(registry: Registry):
    kept = MonitorRecords(registry)
    kept.advance("v", "online", T0)
    kept.advance("v", "offline", T0 + timedelta(hours=1))
    assert kept.newest("offline") == {("v", "offline"): T0 + timedelta(hours=1)}
    with pytest.raises(ValueError, match="target must be one of"):
        kept.advance("v", "somewhere", T0)
    kept.forget_freshness(["v"])
    assert kept.newest() == {}


def test_an_alert_opens_once_and_resolves(registry: Registry):
    kept = MonitorRecords(registry)
    first, new = kept.fire("freshness", "v", observed=400.0, threshold=420.0, message="late")
    again, new_again = kept.fire("freshness", "v", observed=500.0, threshold=420.0, message="x")
    assert new and not new_again and first.id == again.id and again.observed == 500.0
    other, other_new = kept.fire(
        "null_ratio", "v", "conv_rate", observed=0.2, threshold=0.05, message="nulls"
    )
    assert other_new and other.id != first.id
    assert {a.id for a in kept.alerts(state="open")} == {first.id, other.id}
    resolved = kept.resolve("freshness", "v")
    assert resolved is not None and resolved.state == "resolved" and resolved.resolved_at
    assert kept.resolve("freshness", "v") is None  # nothing open any more
    assert [a.id for a in kept.alerts(state="open")] == [other.id]
    reopened, new = kept.fire("freshness", "v", observed=1.0, threshold=2.0, message="late")
    assert new and reopened.id not in (first.id, other.id)


def _revision(target) -> str | None:
    engine = eng.create_engine(eng.parse_url(target.url), schema=target.schema, timeout=30)
    try:
        with engine.connect() as conn:
            return current_revision(conn, target.schema)
    finally:
        engine.dispose()


def test_a_registry_at_0004_is_migrated_to_0005_and_back(fresh_registry_target):
    target = fresh_registry_target
    at_migration(target, "0004")
    assert _revision(target) == "0004"
    with target.open(project="p") as reg:  # opening migrates it
        assert _revision(target) == head_revision()
        kept = MonitorRecords(reg)
        kept.save("profile", "v", pa.table({"x": [1]}))
        kept.advance("v", "online", T0)
        kept.fire("freshness", "v", observed=1.0, threshold=0.5, message="late")
    at_migration(target, "0004", command.downgrade)
    assert _revision(target) == "0004"
    with target.open(project="p") as reg:  # upgraded again, empty
        kept = MonitorRecords(reg)
        assert kept.results() == [] and kept.newest() == {} and kept.alerts() == []
