"""Which features are unused, on a catalog built in memory: what services select (all of a
view's features when they list none), what was read since the cutoff, what on-demand views
read for features that are used (down chains of them), whole views, the CLI's advice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from parity import FeatureService, Field, Float64, OnDemandFeatureView
from parity.definitions.on_demand import UdfLocation
from parity.discovery.unused import unused_in, whole_views
from parity.registry.catalog import Catalog

from .catalog import OBJECTS, basket, catalog, churn, stats

NOW = datetime(2026, 6, 1, tzinfo=UTC)
CUTOFF = NOW - timedelta(days=90)


def refs(found: list) -> list[str]:
    return [u.ref for u in found]


def test_what_no_service_selects_and_nothing_read_is_unused() -> None:
    found = unused_in(catalog(), {}, CUTOFF)
    assert refs(found) == [
        "basket_stats:basket_value",
        "churn_signals:days_since_order",
        "driver_stats:acc_rate",  # the ranking service selects conv_rate and avg_daily_trips
        "partner_stats:conv_rate",
        "refund_history:refunds_90d",
    ]  # payment_risk: the risk service takes it whole; conv_boost: the ranking service
    assert all(u.last_read_at is None for u in found)
    assert whole_views(found) == [
        "basket_stats",
        "churn_signals",
        "partner_stats",
        "refund_history",
    ]


def test_a_read_since_the_cutoff_makes_a_feature_used_an_older_one_does_not() -> None:
    reads = {
        ("feature_view", "churn_signals", "days_since_order"): NOW - timedelta(days=3),
        ("feature_view", "basket_stats", "basket_value"): NOW - timedelta(days=200),
    }
    created = {("feature_view", "basket_stats"): NOW - timedelta(days=400)}
    found = {u.ref: u for u in unused_in(catalog(), reads, CUTOFF, created)}
    assert "churn_signals:days_since_order" not in found
    old = found["basket_stats:basket_value"]
    assert old.last_read_at == NOW - timedelta(days=200)
    assert old.view_created_at == NOW - timedelta(days=400)
    assert old.owner == "growth-ds@example.com" and old.state == "active"
    assert old.to_json()["last_read_at"] == "2025-11-13T00:00:00Z"


def test_what_a_used_on_demand_view_reads_is_used_down_chains() -> None:
    first = OnDemandFeatureView(
        name="first",
        sources=[churn[["days_since_order"]]],
        schema=[Field(name="a", dtype=Float64)],
        udf=UdfLocation(module="m", qualname="first", source_hash="0" * 64),
    )
    second = OnDemandFeatureView(
        name="second",
        sources=["first", basket],  # a whole view: all its features
        schema=[Field(name="b", dtype=Float64)],
        udf=UdfLocation(module="m", qualname="second", source_hash="0" * 64),
    )
    objects = [o for o in OBJECTS if o.kind != "feature_service" and o.kind != "model"]
    cat = Catalog.of([*objects, first, second])
    assert {"first:a", "second:b", "churn_signals:days_since_order"} <= set(
        refs(unused_in(cat, {}, CUTOFF))
    )
    read = {("on_demand_feature_view", "second", "b"): NOW}
    left = set(refs(unused_in(cat, read, CUTOFF)))
    assert not left & {
        "second:b",
        "first:a",
        "churn_signals:days_since_order",
        "basket_stats:basket_value",
    }
    service = FeatureService(name="s", features=["first:a"])
    left = set(refs(unused_in(Catalog.of([*objects, first, second, service]), {}, CUTOFF)))
    assert "churn_signals:days_since_order" not in left and "second:b" in left


def test_a_service_naming_a_view_without_features_selects_them_all() -> None:
    service = FeatureService(name="all_stats", features=[stats])
    cat = Catalog.of([*OBJECTS, service])
    assert not [u for u in unused_in(cat, {}, CUTOFF) if u.view == "driver_stats"]


def test_days_must_be_a_number() -> None:
    from parity.discovery.unused import _cutoff

    for bad in (-1, "90", True, None):
        with pytest.raises(ValueError, match="days"):
            _cutoff(bad, 0)  # type: ignore[arg-type]
    assert _cutoff(0, 86_400_000_000) == datetime(1970, 1, 2, tzinfo=UTC)
