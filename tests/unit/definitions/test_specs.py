"""to_spec / from_spec round trips and the content hash the registry diffs by."""

from __future__ import annotations

import copy
import json
import random
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parity.definitions import (
    KINDS,
    Definition,
    Entity,
    FeatureService,
    FeatureView,
    Field,
    FileSource,
    from_spec,
    spec_hash,
)

from .strategies import definitions, entities, feature_views, file_sources

EXAMPLES = settings(max_examples=60, deadline=None)


@EXAMPLES
@given(definitions)
def test_spec_round_trip_is_identity(obj: Definition) -> None:
    spec = obj.to_spec()
    back = from_spec(obj.kind, spec)
    assert back == obj
    assert back.to_spec() == spec
    assert type(back) is type(obj)


@EXAMPLES
@given(definitions)
def test_spec_is_json(obj: Definition) -> None:
    spec = obj.to_spec()
    assert json.loads(json.dumps(spec)) == spec


@EXAMPLES
@given(definitions, st.randoms(use_true_random=False))
def test_equal_specs_have_equal_hashes(obj: Definition, rnd: random.Random) -> None:
    spec = obj.to_spec()
    shuffled = dict(rnd.sample(list(spec.items()), len(spec)))  # key order is not content
    twin = from_spec(obj.kind, copy.deepcopy(shuffled))
    assert twin is not obj
    assert twin.content_hash() == obj.content_hash() == spec_hash(shuffled)
    assert hash(twin) == hash(obj)


def _view_mutations(spec: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Each valid one-field change of a view spec, named by the field it changes."""
    first = spec["schema"][0]
    changes: dict[str, Any] = {
        "name": spec["name"] + "_x",
        "description": spec["description"] + "x",
        "owner": spec["owner"] + "x",
        "tags": {**spec["tags"], "new_tag": "x"} if "new_tag" not in spec["tags"] else {},
        "entities": [*spec["entities"], "other_entity_x"],
        "source": spec["source"] + "_x",
        "ttl": "3651d" if spec["ttl"] is None else None,
        "online": not spec["online"],
        "pii": not spec["pii"],
        "sla": None if spec["sla"] else {"freshness": "5m", "availability": None},
        "schema.name": [{**first, "name": first["name"] + "_x"}, *spec["schema"][1:]],
        "schema.dtype": [
            {**first, "dtype": "String" if first["dtype"] != "String" else "Int64"},
            *spec["schema"][1:],
        ],
        "schema.description": [
            {**first, "description": first["description"] + "x"},
            *spec["schema"][1:],
        ],
        "schema.pii": [{**first, "pii": not first["pii"]}, *spec["schema"][1:]],
        "schema.extra_field": [*spec["schema"], {"name": "zz_extra_x", "dtype": "Bool"}],
    }
    out = []
    for key, value in changes.items():
        changed = copy.deepcopy(spec)
        changed[key.split(".")[0]] = value
        out.append((key, changed))
    return out


@EXAMPLES
@given(feature_views())
def test_any_view_field_change_changes_the_hash(view: FeatureView) -> None:
    spec = view.to_spec()
    for what, changed in _view_mutations(spec):
        other = FeatureView.from_spec(changed)
        assert other.to_spec() != spec, what
        assert other.content_hash() != view.content_hash(), what


@EXAMPLES
@given(entities(), file_sources())
def test_entity_and_source_field_changes_change_the_hash(
    entity: Entity, source: FileSource
) -> None:
    for obj, key, value in [
        (entity, "join_keys", [*entity.join_keys, "zz_extra_key"]),
        (entity, "dtype", "Bytes" if entity.dtype is None else None),
        (entity, "owner", entity.owner + "x"),
        (source, "path", source.path + "x"),
        (source, "timestamp_field", source.timestamp_field + "_x"),
        (source, "created_timestamp_field", None if source.created_timestamp_field else "created"),
        (source, "tags", {**source.tags, "zz": "1"} if "zz" not in source.tags else {}),
    ]:
        changed = {**obj.to_spec(), key: value}
        assert from_spec(obj.kind, changed).content_hash() != obj.content_hash(), key


def test_content_hash_is_stable_across_releases() -> None:
    # A pinned value: the registry compares stored hashes with new ones, so a change in the
    # canonical spec (a new field, a new default form) must be a deliberate migration.
    entity = Entity(name="driver", join_keys=["driver_id"], dtype="Int64", owner="ops")
    assert entity.to_spec() == {
        "name": "driver",
        "description": "",
        "owner": "ops",
        "tags": {},
        "join_keys": ["driver_id"],
        "dtype": "Int64",
    }
    assert entity.content_hash() == spec_hash(entity.to_spec())
    assert entity.content_hash() == (
        "4c52a525fc03d6c27f95fe35f3b1d05d7c7dab0f2a9becba170970bd1919536c"
    )


def test_view_spec_stores_names_and_text() -> None:
    driver = Entity(name="driver", join_keys=["driver_id"])
    trips = FileSource(name="trips", path="data/trips.parquet")
    view = FeatureView(
        name="driver_stats",
        entities=[driver],
        source=trips,
        schema=[
            Field(name="trips_today", dtype="Int64"),
            Field(name="emb", dtype="Array(Float32)"),
        ],
        ttl=timedelta(hours=2),
        sla={"freshness": "5m", "availability": "99.5%"},
    )
    spec = view.to_spec()
    assert spec["entities"] == ["driver"]
    assert spec["source"] == "trips"
    assert spec["ttl"] == "2h"
    assert spec["sla"] == {"freshness": "5m", "availability": "99.5%"}
    assert [f["dtype"] for f in spec["schema"]] == ["Int64", "Array(Float32)"]
    assert "schema_" not in spec
    by_name = FeatureView(
        name="driver_stats",
        entities=["driver"],
        source="trips",
        schema=spec["schema"],
        ttl="2h",
        sla=spec["sla"],
    )
    assert by_name.to_spec() == spec
    assert by_name.content_hash() == view.content_hash()


def test_service_spec() -> None:
    view = FeatureView(
        name="v",
        entities=["e"],
        source="s",
        schema=[Field(name="a", dtype="Int64"), Field(name="b", dtype="Int64")],
    )
    service = FeatureService(
        name="svc", features=[view[["a"]], "w", {"view": "x", "features": ["c"]}]
    )
    assert service.to_spec()["features"] == [
        {"view": "v", "features": ["a"]},
        {"view": "w", "features": None},
        {"view": "x", "features": ["c"]},
    ]
    assert FeatureService.from_spec(service.to_spec()) == service


def test_from_spec_refuses_unknown_kind_and_source_type() -> None:
    from parity.errors import DefinitionError

    with pytest.raises(DefinitionError, match="unknown definition kind 'monitor'"):
        from_spec("monitor", {"name": "m"})
    with pytest.raises(DefinitionError, match="unknown source_type 'kafka'"):
        from_spec("source", {"name": "s", "source_type": "kafka"})
    assert list(KINDS) == [
        "entity",
        "source",
        "feature_view",
        "on_demand_feature_view",
        "feature_service",
        "model",
        "role",
    ]
