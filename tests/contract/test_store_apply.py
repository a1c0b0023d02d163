"""Apply through the FeatureStore, on every registry backend: what it accepts, what it
refuses (naming object and field), and that a refusal changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest

from parity import (
    DefinitionError,
    Entity,
    FeatureService,
    FeatureStore,
    FeatureView,
    Field,
    FileSource,
    Float32,
    Int64,
    String,
    ValidationError,
)
from repo_utils import write_parquet, write_repo

T0 = datetime(2024, 1, 1, tzinfo=UTC)


@pytest.fixture
def store(registry_target, tmp_path):
    from conftest import new_project  # the contract suite's helper

    reg = registry_target.url
    if registry_target.schema:
        reg = f"{{ url: '{reg}', schema: {registry_target.schema} }}"
    root = write_repo(tmp_path / "repo", {}, project=new_project(), registry=reg)
    write_parquet(
        root / "data/drivers.parquet",
        {
            "driver_id": pa.array([1, 2], pa.int64()),
            "event_timestamp": pa.array([T0, T0], pa.timestamp("us", tz="UTC")),
            "conv": pa.array([0.1, 0.2], pa.float64()),
            "city": ["a", "b"],
        },
    )
    fs = FeatureStore(root)
    yield fs
    fs.close()


def objects():
    driver = Entity(name="driver", join_keys=["driver_id"], dtype=Int64)
    src = FileSource(
        name="drivers", path="data/drivers.parquet", field_mapping={"conv": "conv_rate"}
    )
    view = FeatureView(
        name="driver_stats",
        entities=[driver],
        source=src,
        schema=[Field(name="conv_rate", dtype=Float32), Field(name="city", dtype=String)],
        ttl=timedelta(hours=2),
    )
    return driver, src, view


def refused(store, objs, *needles, **kw):
    before = store.registry.revision()
    with pytest.raises(ValidationError) as info:
        store.apply(objs, **kw)
    text = str(info.value)
    for n in needles:
        assert n in text, text
    assert store.registry.revision() == before
    return info.value


def test_apply_then_list_get_and_plan_is_empty(store):
    driver, _src, view = objects()
    svc = FeatureService(name="svc", features=[view[["conv_rate"]]])
    done = store.apply([driver, view, svc])  # the inline source is registered too
    assert {(c.kind, c.name, c.action) for c in done.changes} >= {
        ("entity", "driver", "create"),
        ("source", "drivers", "create"),
        ("feature_view", "driver_stats", "create"),
        ("feature_service", "svc", "create"),
    }
    assert [v.name for v in store.list_feature_views()] == ["driver_stats"]
    assert store.get_feature_view("driver_stats").ttl == timedelta(hours=2)
    assert store.get_data_source("drivers").field_mapping == {"conv": "conv_rate"}
    assert not store.plan([driver, view, svc]).has_changes


def test_change_makes_a_new_version_with_a_diff(store):
    driver, _src, view = objects()
    store.apply([driver, view])
    changed = view.model_copy(update={"ttl": timedelta(hours=4)})
    plan = store.plan([driver, changed])
    assert [(c.name, c.action) for c in plan.changes if c.action != "unchanged"] == [
        ("driver_stats", "update")
    ]
    store.apply([driver, changed])
    hist = store.history("driver_stats")
    assert [h.number for h in hist] == [1, 2]
    assert any("ttl" in str(fc.path) for fc in hist[-1].diff)
    assert store.get_feature_view("driver_stats").ttl == timedelta(hours=4)


def test_unknown_entity(store):
    _, src, _ = objects()
    view = FeatureView(
        name="v", entities=["rider"], source=src, schema=[Field(name="city", dtype=String)]
    )
    refused(store, [view], "feature view 'v'", "unknown entity 'rider'")


def test_duplicate_names(store):
    driver, _src, view = objects()
    other = view.model_copy(update={"ttl": timedelta(hours=9)})
    refused(store, [driver, view, other], "feature_view 'driver_stats'", "defined twice")


def test_field_missing_from_source(store):
    driver, src, _ = objects()
    view = FeatureView(
        name="v", entities=[driver], source=src, schema=[Field(name="speed", dtype=Float32)]
    )
    refused(store, [view], "feature view 'v'", "field 'speed' is not a column of source 'drivers'")


def test_type_of_another_kind(store):
    driver, src, _ = objects()
    view = FeatureView(
        name="v", entities=[driver], source=src, schema=[Field(name="city", dtype=Int64)]
    )
    refused(store, [view], "field 'city' is declared Int64", "string")


def test_join_key_type_and_missing_source_file(store):
    bad_key = Entity(name="driver", join_keys=["driver_id"], dtype=String)
    _, _src, view = objects()
    refused(
        store,
        [bad_key, view.model_copy(update={"entities": [bad_key]})],
        "join key 'driver_id'",
        "String",
    )
    gone = FileSource(name="gone", path="data/nope.parquet")
    refused(store, [gone], "source 'gone'", "no files")


def test_bad_ttl_and_bad_name_are_refused_when_defined():
    driver, src, _ = objects()
    with pytest.raises(DefinitionError, match="ttl"):
        FeatureView(
            name="v",
            entities=[driver],
            source=src,
            schema=[Field(name="city", dtype=String)],
            ttl=timedelta(0),
        )
    with pytest.raises(DefinitionError, match="name"):
        FeatureView(
            name="my view", entities=[driver], source=src, schema=[Field(name="city", dtype=String)]
        )


def test_repo_apply_deletes_what_left_the_repo_and_keeps_history(store):
    root = store.repo_path
    (root / "features.py").write_text(
        "from parity import Entity, FeatureView, Field, FileSource, String, Int64\n"
        "driver = Entity(name='driver', join_keys=['driver_id'], dtype=Int64)\n"
        "src = FileSource(name='drivers', path='data/drivers.parquet')\n"
        "a = FeatureView(name='a', entities=[driver], source=src, schema=[Field(name='city', dtype=String)])\n"
        "b = FeatureView(name='b', entities=[driver], source=src, schema=[Field(name='city', dtype=String)])\n"
    )
    store.apply()
    assert sorted(v.name for v in store.list_feature_views()) == ["a", "b"]
    (root / "features.py").write_text(
        (root / "features.py").read_text().replace("b = Feature", "# b = Feature")
    )
    plan = store.plan()
    assert [(c.name, c.action) for c in plan.changes if c.action != "unchanged"] == [
        ("b", "delete")
    ]
    store.apply()
    assert [v.name for v in store.list_feature_views()] == ["a"]
    assert [h.action for h in store.history("b")] == ["create", "delete"]


def test_deleting_what_others_use_is_refused(store):
    driver, src, view = objects()
    store.apply([driver, view])
    # The entity is left out of a full apply while the view (naming it) stays: refused.
    by_name = view.model_copy(update={"entities": ["driver"]})
    refused(store, [src, by_name], "unknown entity 'driver'", delete_missing=True)
    assert store.get_entity("driver").join_keys == ["driver_id"]
