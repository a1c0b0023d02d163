"""Construction and validation errors of each definition: refused early, named clearly."""

from __future__ import annotations

import pytest

from parity.definitions import (
    Entity,
    FeatureService,
    FeatureView,
    FeatureViewProjection,
    Field,
    FileSource,
    Sla,
)
from parity.errors import DefinitionError, ParityError, RetrievalError

BAD_NAMES = ["", "1abc", "has space", "a-b", "x" * 129, "driver\n", "é", None, 5]


def view(**overrides: object) -> FeatureView:
    data: dict[str, object] = {
        "name": "driver_stats",
        "entities": ["driver"],
        "source": "trips",
        "schema": [Field(name="trips_today", dtype="Int64")],
    }
    data.update(overrides)
    return FeatureView(**data)


def test_definition_errors_share_the_root_and_the_builtin() -> None:
    with pytest.raises(DefinitionError) as info:
        Entity(name="bad name")
    assert isinstance(info.value, ParityError)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("bad", BAD_NAMES)
@pytest.mark.parametrize(
    "build",
    [
        lambda n: Entity(name=n, join_keys=["k"]),
        lambda n: FileSource(name=n, path="x.parquet"),
        lambda n: view(name=n),
        lambda n: FeatureService(name=n, features=["v"]),
        lambda n: Field(name=n, dtype="Int64"),
    ],
    ids=["entity", "source", "feature_view", "feature_service", "field"],
)
def test_bad_names_are_refused(build, bad: object) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(DefinitionError, match="invalid name"):
        build(bad)


def test_longest_name_is_accepted() -> None:
    assert Entity(name="x" * 128).name == "x" * 128


# -- entities ----------------------------------------------------------------------------


def test_entity_join_keys() -> None:
    assert Entity(name="driver").join_keys == ["driver"]
    assert Entity(name="driver", join_keys="driver_id").join_keys == ["driver_id"]
    assert Entity("trip", ["driver_id", "rider_id"]).join_keys == ["driver_id", "rider_id"]
    assert Entity(name="driver", dtype="int").dtype.name == "Int64"


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ([], "entity 'driver': join_keys: an entity needs at least one join key"),
        (["a", "a"], "join keys repeat"),
        (["bad key"], "invalid name 'bad key'"),
    ],
)
def test_entity_bad_join_keys(keys: list[str], message: str) -> None:
    with pytest.raises(DefinitionError, match=message):
        Entity(name="driver", join_keys=keys)


def test_entity_bad_dtype_names_the_field() -> None:
    with pytest.raises(DefinitionError, match=r"entity 'driver': dtype: unknown type 'flaot'"):
        Entity(name="driver", dtype="flaot")


def test_definitions_are_immutable() -> None:
    e = Entity(name="driver")
    with pytest.raises(Exception, match="frozen"):
        e.name = "other"  # type: ignore[misc]


def test_unknown_argument_is_refused() -> None:
    with pytest.raises(DefinitionError, match=r"entity 'driver': join_key: Extra inputs"):
        Entity(name="driver", join_key="driver_id")


# -- sources -----------------------------------------------------------------------------


def test_file_source_format_is_inferred() -> None:
    assert FileSource(name="s", path="data/x.parquet").file_format == "parquet"
    assert FileSource(name="s", path="data/x.csv").file_format == "csv"
    assert FileSource(name="s", path="data/*.csv").file_format == "csv"
    assert FileSource(name="s", path="data/folder/").file_format == "parquet"
    assert FileSource(name="s", path="x.txt", file_format="csv").file_format == "csv"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"path": "  "}, "source 's': path: path is empty"),
        ({}, "source 's': path: Field required"),
        ({"path": "x", "file_format": "json"}, "file_format"),
        ({"path": "x", "field_mapping": {"a": "f", "b": "f"}}, "maps two columns to one name"),
        ({"path": "x", "source_type": "kafka"}, "source_type"),
    ],
)
def test_file_source_errors(data: dict[str, object], message: str) -> None:
    with pytest.raises(DefinitionError, match=message):
        FileSource(name="s", **data)


def test_column_for_follows_the_mapping() -> None:
    source = FileSource(name="s", path="x", field_mapping={"trips_cnt": "trips"})
    assert source.column_for("trips") == "trips_cnt"
    assert source.column_for("rating") == "rating"


# -- feature views -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"schema": [Field(name="f", dtype="Int64"), Field(name="f", dtype="Float32")]},
            r"schema: field names repeat: \['f'\]",
        ),
        ({"schema": []}, "a feature view needs at least one field"),
        ({"schema": 5}, "feature_view 'driver_stats': schema: Input should be a valid list"),
        ({"entities": []}, "a feature view needs at least one entity"),
        ({"entities": ["driver", "driver"]}, "entities repeat"),
        ({"ttl": 0}, "ttl: ttl must be positive"),
        ({"ttl": "0s"}, "ttl: ttl must be positive"),
        ({"ttl": -5}, "ttl: ttl must be positive"),
        ({"ttl": "abc"}, "ttl: not a duration: 'abc'"),
        ({"ttl": True}, "ttl: not a duration"),
        ({"pii": "maybe"}, "pii: Input should be a valid boolean"),
        ({"description": 5}, "description: Input should be a valid string"),
        ({"tags": ["a"]}, "tags: Input should be a valid dictionary"),
        ({"sla": {"freshness": "soon"}}, "sla: freshness: not a duration"),
        ({"sla": {"uptime": "99%"}}, "sla: uptime: Extra inputs"),
        ({"features": []}, "features: Extra inputs"),
        ({"source": {"name": "trips"}}, "source: source 'trips': path: Field required"),
    ],
)
def test_feature_view_errors_name_object_and_field(
    overrides: dict[str, object], message: str
) -> None:
    with pytest.raises(DefinitionError, match=message) as info:
        view(**overrides)
    assert "driver_stats" in str(info.value)
    assert "schema_" not in str(info.value)


def test_schema_field_that_is_a_join_key_is_refused() -> None:
    driver = Entity(name="driver", join_keys=["driver_id"])
    with pytest.raises(DefinitionError, match=r"\['driver_id'\] are join keys"):
        view(entities=[driver], schema=[Field(name="driver_id", dtype="Int64")])


def test_feature_view_accepts_objects_names_and_dicts() -> None:
    driver = Entity(name="driver", join_keys=["driver_id"])
    v = view(
        entities=driver,
        source={"name": "trips", "path": "data/trips.parquet"},
        schema=[{"name": "trips_today", "dtype": "int"}],
        ttl="2h",
    )
    assert v.entity_names == ["driver"]
    assert isinstance(v.source, FileSource)
    assert v.source_name == "trips"
    assert v.feature_names == ["trips_today"]
    assert v.schema[0].dtype.name == "Int64"
    assert v.field("trips_today").name == "trips_today"


def test_view_projection() -> None:
    v = view(schema=[Field(name="a", dtype="Int64"), Field(name="b", dtype="Int64")])
    assert v[["a"]] == FeatureViewProjection(view="driver_stats", features=("a",))
    assert v["b"] == FeatureViewProjection(view="driver_stats", features=("b",))
    with pytest.raises(RetrievalError, match="has no feature 'c'"):
        v[["a", "c"]]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"name": "f", "dtype": "flaot"}, "field 'f': dtype: unknown type 'flaot'"),
        ({"name": "f"}, "field 'f': dtype: Field required"),
        ({"name": "f", "dtype": "Int64", "pii": "maybe"}, "field 'f': pii"),
        ({"name": "f", "dtype": "Int64", "unit": "s"}, "field 'f': unit: Extra inputs"),
    ],
)
def test_field_errors(data: dict[str, object], message: str) -> None:
    with pytest.raises(DefinitionError, match=message):
        Field(**data)


def test_field_tags_are_text_like_definition_tags() -> None:
    assert Field(name="f", dtype="Int64", tags={"tier": 1}).tags == {"tier": "1"}
    assert view(tags={"tier": 1}).tags == {"tier": "1"}


def test_sla_errors_are_definition_errors() -> None:
    with pytest.raises(DefinitionError, match="sla: freshness: not a duration"):
        Sla(freshness="soon")


# -- feature services --------------------------------------------------------------------


def test_service_item_forms() -> None:
    v = view(schema=[Field(name="a", dtype="Int64"), Field(name="b", dtype="Int64")])
    service = FeatureService(
        name="svc",
        features=[
            v[["a"]],
            "other",
            "third:x,y",
            {"view": "fourth", "features": ["z"]},
            {"view": "fifth", "features": "one"},
            {"view": "sixth"},
        ],
    )
    assert [(p.view, p.features) for p in service.features] == [
        ("driver_stats", ("a",)),
        ("other", None),
        ("third", ("x", "y")),
        ("fourth", ("z",)),
        ("fifth", ("one",)),
        ("sixth", None),
    ]


def test_service_merges_items_of_one_view() -> None:
    service = FeatureService(name="svc", features=["v:a", "v:b,a", "w:x", "w"])
    assert [(p.view, p.features) for p in service.features] == [
        ("v", ("a", "b")),
        ("w", None),
    ]


@pytest.mark.parametrize(
    ("features", "message"),
    [
        ([42], "a service feature must be a view"),
        ([None], "a service feature must be a view"),
        ([{"features": ["a"]}], "keys 'view' and optionally 'features'"),
        ([{"view": "v", "feature": ["a"]}], "keys 'view' and optionally 'features'"),
        ([{"view": "v", "features": 3}], "'features' must be a list"),
        ([":a"], "invalid name ''"),
        (["bad view"], "invalid name 'bad view'"),
        (["v:bad feature"], "invalid name 'bad feature'"),
        ([], "needs a non-empty list"),
        ("v", "needs a non-empty list"),
    ],
)
def test_service_with_unknown_item_form_is_refused(features: object, message: str) -> None:
    with pytest.raises(DefinitionError, match=message) as info:
        FeatureService(name="svc", features=features)
    assert "feature_service 'svc'" in str(info.value)
