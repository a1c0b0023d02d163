"""The YAML form: kind documents (a), list documents (b), the single-feature form (c)."""

from __future__ import annotations

import textwrap
from datetime import timedelta
from pathlib import Path

import pytest

from parity.definitions import Entity, FeatureService, FeatureView, Field, FileSource, Sla
from parity.errors import DefinitionError
from parity.repo.loader import load_repo
from parity.repo.yaml_form import (
    parse_yaml,
    read_yaml_file,
    resolve_entity_refs,
)

from .conftest import WriteRepo


def read(text: str, display: str = "defs/x.yaml") -> list:
    return [o.definition for o in parse_yaml(textwrap.dedent(text).lstrip("\n"), display)]


def refused(text: str, *fragments: str) -> str:
    with pytest.raises(DefinitionError) as info:
        read(text)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, message
    return message


# -- (a) one object per document ----------------------------------------------------------


def test_kind_documents_build_each_kind() -> None:
    objs = read(
        """
        kind: entity
        name: driver
        join_keys: [driver_id]
        dtype: Int64
        ---
        kind: source
        name: trips
        path: data/trips.parquet
        timestamp_field: ts
        ---
        kind: feature_view
        name: driver_stats
        entity: driver
        source: trips
        ttl: 2h
        schema:
          - { name: trips_today, dtype: Int64, description: trips since midnight }
          - { name: rating, type: float32, tags: { tier: 1 }, pii: true }
        ---
        kind: feature_service
        name: dispatch
        features: [driver_stats, "other:a,b", { view: third, features: [c] }]
        """
    )
    assert objs == [
        Entity(name="driver", join_keys=["driver_id"], dtype="Int64"),
        FileSource(name="trips", path="data/trips.parquet", timestamp_field="ts"),
        FeatureView(
            name="driver_stats",
            entities=["driver"],
            source="trips",
            ttl=timedelta(hours=2),
            schema=[
                Field(name="trips_today", dtype="Int64", description="trips since midnight"),
                Field(name="rating", dtype="Float32", tags={"tier": "1"}, pii=True),
            ],
        ),
        FeatureService(name="dispatch", features=["driver_stats", "other:a,b", "third:c"]),
    ]


def test_source_type_file_is_the_default_and_inline_sources_work() -> None:
    explicit, implicit, view = read(
        """
        kind: source
        type: file
        name: a
        path: a.csv
        ---
        kind: source
        name: b
        path: b.parquet
        ---
        kind: feature_view
        name: v
        entities: [e]
        source: { name: c, path: c.parquet, field_mapping: { cnt: trips } }
        schema: [{ name: trips, dtype: Int64 }]
        """
    )
    assert isinstance(explicit, FileSource) and explicit.file_format == "csv"
    assert isinstance(implicit, FileSource)
    assert view.source == FileSource(name="c", path="c.parquet", field_mapping={"cnt": "trips"})


def test_empty_documents_are_skipped_but_counted(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_text("---\nkind: entity\nname: a\n---\n---\nkind: entity\nname: b\n")
    found = read_yaml_file(path, "x.yaml")
    assert [(o.definition.name, o.document) for o in found] == [("a", 1), ("b", 3)]
    assert read("") == []


# -- (b) lists ----------------------------------------------------------------------------


def test_list_documents() -> None:
    objs = read(
        """
        entities:
          - { name: driver, join_keys: [driver_id] }
        sources:
          - { name: trips, path: trips.parquet }
        feature_views:
          - name: driver_stats
            kind: feature_view
            entities: [driver]
            source: trips
            schema: [{ name: trips_today, dtype: Int64 }]
        feature_services:
          - { name: dispatch, features: [driver_stats] }
        """
    )
    assert [(o.kind, o.name) for o in objs] == [
        ("entity", "driver"),
        ("source", "trips"),
        ("feature_view", "driver_stats"),
        ("feature_service", "dispatch"),
    ]


def test_list_item_of_another_kind_is_refused() -> None:
    refused(
        """
        entities:
          - { kind: source, name: trips, path: x }
        """,
        "defs/x.yaml#1, entities[0]",
        "kind 'source' in the entities list",
    )


def test_list_document_with_other_keys_is_refused() -> None:
    refused(
        """
        entities: [{ name: driver }]
        views: []
        """,
        "defs/x.yaml#1",
        "unknown field 'views'",
        "feature_views",
    )


# -- (c) the single-feature form ----------------------------------------------------------


def test_single_feature_form_becomes_a_one_field_view() -> None:
    (view,) = read(
        """
        name: user_30d_purchase_count
        entity: user
        source: orders_stream
        dtype: Int64
        owner: growth-ml
        description: purchases in the last 30 days
        tags: { team: growth }
        sla: { freshness: "5m", availability: "99.5%" }
        pii: true
        ttl: 30d
        """
    )
    assert view == FeatureView(
        name="user_30d_purchase_count",
        entities=["user"],
        source="orders_stream",
        schema=[Field(name="user_30d_purchase_count", dtype="Int64", pii=True)],
        owner="growth-ml",
        description="purchases in the last 30 days",
        tags={"team": "growth"},
        sla=Sla(freshness=timedelta(minutes=5), availability="99.5%"),
        pii=True,
        ttl=timedelta(days=30),
    )


def test_single_feature_form_takes_type_for_dtype() -> None:
    (view,) = read("name: f\nentity: user\nsource: s\ntype: float\n")
    assert view.schema[0].dtype.name == "Float64"
    assert view.pii is False and view.schema[0].pii is False


def test_single_feature_form_without_a_type_is_refused() -> None:
    refused(
        "name: f\nentity: user\nsource: s\n",
        "defs/x.yaml#1: feature 'f'",
        "missing: dtype",
    )


def test_single_feature_transformation_is_a_window_aggregation() -> None:
    objs = read(
        """
        kind: entity
        name: user
        ---
        name: user_30d_purchase_count
        entity: user_id
        source: orders_stream
        transformation: window_count(30d)
        hop: 5m
        owner: growth-ml
        ---
        name: user_7d_spend
        entity: user_id
        source: orders_stream
        transformation: window_sum(7d)
        column: amount
        """
    )
    views = [o for o in objs if isinstance(o, FeatureView)]
    count, spend = views
    assert count.feature_names == ["user_30d_purchase_count"]
    assert count.aggregations[0].function == "count"
    assert count.aggregations[0].window == timedelta(days=30)
    assert count.hop == timedelta(minutes=5)
    assert spend.aggregations[0].column == "amount"
    assert spend.aggregations[0].window == timedelta(days=7)


def test_aggregations_list_in_a_kind_document_and_bad_transformations() -> None:
    objs = read(
        """
        kind: feature_view
        name: v
        entities: [e]
        source: s
        hop: 1h
        aggregations:
          - { transformation: "window_last_n(7d, 3)", column: amount, name: last3 }
          - { function: mean, column: amount, window: 1d }
        """
    )
    view = objs[0]
    assert isinstance(view, FeatureView)
    assert view.feature_names == ["last3", "amount_mean_1d"]
    assert view.aggregations[0].n == 3
    refused(
        "name: f\nentity: e\nsource: s\ntransformation: window_median(7d)\ncolumn: x\n",
        "defs/x.yaml#1",
        "function 'median' is not one of",
    )
    refused(
        "name: f\nentity: e\nsource: s\ntransformation: window_count(7d)\ndtype: Float64\n",
        "defs/x.yaml#1",
        "count gives Int64",
    )


# -- errors name file, document, object and field -----------------------------------------


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        (
            "kind: feature_view\nname: v\nentities: [e]\nsource: s\nschema: [{name: f, dtype: Int64}]\nttl_s: 3\n",
            ["defs/x.yaml#1: feature_view 'v'", "unknown field 'ttl_s'", "did you mean 'ttl'?"],
        ),
        (
            "kind: feature_view\nname: v\nentities: [e]\nsource: s\nschema: [{name: f, dtype: Int64}]\nttl: abc\n",
            ["defs/x.yaml#1: feature_view 'v': ttl: not a duration: 'abc'"],
        ),
        (
            "kind: feature_view\nname: v\nentities: [e]\nsource: s\nschema: [{name: f, dtype: Int64}]\nttl: 0s\n",
            ["defs/x.yaml#1: feature_view 'v': ttl: ttl must be positive"],
        ),
        (
            "kind: feature_view\nname: v\nentities: [e]\nsource: s\nschema: {f: Int64}\n",
            ["defs/x.yaml#1: feature_view 'v': schema: expected a list of fields, got a mapping"],
        ),
        (
            "kind: feature_view\nname: v\nentities: [e]\nsource: s\nschema: [{name: f, dtype: flaot}]\n",
            ["defs/x.yaml#1: feature_view 'v': schema[0]: field 'f': dtype: unknown type 'flaot'"],
        ),
        (
            "kind: feature_view\nname: v\nentities: [e]\nsource: s\nschema: [{name: f, dtpye: Int64}]\n",
            ["schema[0]: field 'f': unknown field 'dtpye'", "did you mean 'dtype'?"],
        ),
        (
            "kind: feature_view\nname: v\nentities: [e]\nsource: s\nschema: [{name: f}]\n",
            ["schema[0]: field 'f': dtype: required"],
        ),
        (
            "kind: feature_view\nname: v\nentity: 5\nsource: s\nschema: [{name: f, dtype: Int64}]\n",
            ["defs/x.yaml#1: feature_view 'v': entity: expected an entity name"],
        ),
        (
            "kind: feature_view\nname: v\nentity: e\nentities: [e]\nsource: s\nschema: [{name: f, dtype: Int64}]\n",
            ["feature_view 'v': give entity or entities, not both"],
        ),
        (
            "kind: feature_view\nname: v\nentities: [e]\nsource: s\nschema: [{name: f, dtype: Int64}]\npii: maybe\n",
            ["defs/x.yaml#1: feature_view 'v': pii: Input should be a valid boolean"],
        ),
        (
            "kind: feature_view\nname: v\nentities: [e]\nsource: {name: c}\nschema: [{name: f, dtype: Int64}]\n",
            ["defs/x.yaml#1: feature_view 'v': inline source: source 'c': path: Field required"],
        ),
        (
            "kind: entity\nname: driver\njoin_keys: []\n",
            ["defs/x.yaml#1: entity 'driver': join_keys: an entity needs at least one join key"],
        ),
        ("kind: entity\njoin_keys: [a]\n", ["defs/x.yaml#1: entity: name: required"]),
        (
            "kind: entity\nname: bad name\n",
            ["defs/x.yaml#1: entity 'bad name': name: invalid name"],
        ),
        (
            "kind: source\nname: s\npath: x\ntype: kafka\n",
            ["source 's': type: unknown source type 'kafka'", "known: file"],
        ),
        (
            "kind: source\nname: s\npath: x\nsource_type: file\n",
            ["source 's': unknown field 'source_type'"],
        ),
        (
            "kind: feature_service\nname: svc\nfeatures: [42]\n",
            ["defs/x.yaml#1: feature_service 'svc': features:"],
        ),
        (
            "kind: feature_service\nname: svc\nfeatures: v\n",
            ["feature_service 'svc': features: a feature service needs a non-empty list"],
        ),
        ("kind: monitor\nname: m\n", ["defs/x.yaml#1: unknown kind 'monitor'"]),
        ("kind: model\nname: m\n", ["model 'm': features: required: the feature service"]),
        (
            "kind: model\nname: m\nfeatures: [a, b]\n",
            ["model 'm': features: a model's features are one feature service"],
        ),
        (
            "- kind: entity\n  name: a\n",
            ["defs/x.yaml#1: a document must be a mapping", "got a list"],
        ),
        ("just text\n", ["defs/x.yaml#1: a document must be a mapping"]),
        ("name: x\nowner: me\n", ["defs/x.yaml#1: cannot tell what this document defines"]),
        (
            "kind: entity\nname: a\n---\nkind: entity\nname: b\nname: c\n",
            ["not valid YAML", "found key 'name' again", "line 6"],
        ),
        ("kind: entity\nname: [a\n", ["defs/x.yaml: not valid YAML: line"]),
        ("kind: entity\nname: a\non: 1\n", ["defs/x.yaml#1: keys must be text", "True"]),
        (
            "name: f\nentity: e\nsource: s\ndtype: Int64\nsla: {freshness: soon}\n",
            ["defs/x.yaml#1: feature_view 'f': sla: freshness: not a duration"],
        ),
        (
            "name: f\nentity: e\nsource: s\ndtype: Int64\ncolour: red\n",
            ["defs/x.yaml#1: feature 'f': unknown field 'colour'"],
        ),
    ],
)
def test_errors_name_file_document_object_and_field(text: str, fragments: list[str]) -> None:
    refused(text, *fragments)


def test_yaml_anchors_and_merge_keys_work() -> None:
    objs = read(
        """
        entities:
          - &base { name: a, owner: team, join_keys: [k] }
          - { <<: *base, name: b }
        """
    )
    assert [(e.name, e.owner) for e in objs] == [("a", "team"), ("b", "team")]


# -- entity references by join key -------------------------------------------------------


def test_resolve_entity_refs() -> None:
    user = Entity(name="user", join_keys=["user_id"])
    shop = Entity(name="shop", join_keys=["shop_id", "region"])
    store = Entity(name="store", join_keys=["store_id", "region"])
    entities = [user, shop, store]

    def resolve(*refs: str) -> list[str]:
        view = FeatureView(
            name="v", entities=list(refs), source="s", schema=[Field(name="f", dtype="Int64")]
        )
        return resolve_entity_refs(view, entities).entity_names

    assert resolve("user") == ["user"]  # an entity name is kept
    assert resolve("user_id") == ["user"]  # a join key of exactly one entity
    assert resolve("shop_id", "user_id") == ["shop", "user"]
    with pytest.raises(DefinitionError, match=r"'region' is ambiguous.*'shop' and 'store'"):
        resolve("region")  # a join key of two entities
    assert resolve("nobody") == ["nobody"]  # unknown: left for apply to report
    view = FeatureView(
        name="v", entities=["user"], source="s", schema=[Field(name="f", dtype="Int64")]
    )
    assert resolve_entity_refs(view, entities) is view


def test_an_entity_name_wins_over_a_join_key() -> None:
    entities = [
        Entity(name="user_id", join_keys=["uid"]),
        Entity(name="user", join_keys=["user_id"]),
    ]
    view = FeatureView(
        name="v", entities=["user_id"], source="s", schema=[Field(name="f", dtype="Int64")]
    )
    assert resolve_entity_refs(view, entities).entity_names == ["user_id"]


def test_loader_resolves_join_keys_across_files(write_repo: WriteRepo) -> None:
    root = write_repo(
        {
            "entities.py": """
                from parity import Entity
                user = Entity(name="user", join_keys=["user_id"])
            """,
            "features/purchases.yaml": """
                name: user_30d_purchase_count
                entity: user_id
                source: orders
                dtype: Int64
                ---
                kind: feature_view
                name: by_name
                entities: [user, region]
                source: orders
                schema: [{ name: n, dtype: Int64 }]
            """,
        }
    )
    contents = load_repo(root)
    views = {o.name: o for o in contents.objects if isinstance(o, FeatureView)}
    assert views["user_30d_purchase_count"].entity_names == ["user"]
    assert views["by_name"].entity_names == ["user", "region"]
    assert contents.origin(views["user_30d_purchase_count"]) == "features/purchases.yaml#1"
    assert contents.origin(views["by_name"]) == "features/purchases.yaml#2"


def test_resolution_that_repeats_an_entity_is_reported_with_its_origin(
    write_repo: WriteRepo,
) -> None:
    root = write_repo(
        {
            "defs.yaml": """
                kind: entity
                name: user
                join_keys: [user_id]
                ---
                kind: feature_view
                name: v
                entities: [user, user_id]
                source: s
                schema: [{ name: f, dtype: Int64 }]
            """,
        }
    )
    with pytest.raises(DefinitionError, match=r"defs.yaml#2: feature_view 'v': .*entities repeat"):
        load_repo(root)


# -- the same objects as the Python form --------------------------------------------------

PYTHON_FORM = """
    from datetime import timedelta

    from parity import Entity, FeatureService, FeatureView, Field, FileSource, Float32, Int64, Sla

    user = Entity(
        name="user",
        join_keys=["user_id"],
        dtype=Int64,
        description="a shopper",
        owner="growth-ml",
        tags={"team": "growth"},
    )
    orders = FileSource(
        name="orders",
        path="data/orders.parquet",
        timestamp_field="ts",
        created_timestamp_field="created",
        field_mapping={"amt": "amount"},
    )
    user_stats = FeatureView(
        name="user_stats",
        entities=[user],
        source=orders,
        ttl=timedelta(hours=2),
        online=False,
        owner="growth-ml",
        schema=[
            Field(name="amount", dtype=Float32, description="order total", tags={"unit": "EUR"}),
            Field(name="email_domain", dtype="String", pii=True),
            Field(name="recent", dtype="Array(Int64)"),
        ],
        sla=Sla(freshness=timedelta(minutes=5), availability="99.5%"),
    )
    user_30d_purchase_count = FeatureView(
        name="user_30d_purchase_count",
        entities=["user"],
        source="orders",
        schema=[Field(name="user_30d_purchase_count", dtype=Int64)],
        owner="growth-ml",
        sla=Sla(freshness="5m", availability="99.5%"),
        pii=False,
    )
    checkout = FeatureService(
        name="checkout",
        features=[user_stats[["amount", "recent"]], user_30d_purchase_count],
        owner="checkout-ml",
    )
"""

YAML_FORM = """
    kind: entity
    name: user
    join_keys: [user_id]
    dtype: Int64
    description: a shopper
    owner: growth-ml
    tags: { team: growth }
    ---
    sources:
      - name: orders
        type: file
        path: data/orders.parquet
        timestamp_field: ts
        created_timestamp_field: created
        field_mapping: { amt: amount }
    feature_views:
      - name: user_stats
        entities: [user_id]
        source: orders
        ttl: 2h
        online: false
        owner: growth-ml
        schema:
          - { name: amount, dtype: Float32, description: order total, tags: { unit: EUR } }
          - { name: email_domain, dtype: string, pii: true }
          - { name: recent, dtype: "Array(Int64)" }
        sla: { freshness: 5m, availability: "99.5%" }
    ---
    name: user_30d_purchase_count
    entity: user_id
    source: orders
    dtype: Int64
    owner: growth-ml
    sla: { freshness: "5m", availability: "99.5%" }
    pii: false
    ---
    kind: feature_service
    name: checkout
    owner: checkout-ml
    features:
      - { view: user_stats, features: [amount, recent] }
      - user_30d_purchase_count
"""


def test_python_and_yaml_forms_give_equal_specs(write_repo: WriteRepo) -> None:
    py = load_repo(write_repo({"features.py": PYTHON_FORM}, name="py"))
    ym = load_repo(write_repo({"features.yaml": YAML_FORM}, name="yaml"))

    def specs(contents) -> dict:  # type: ignore[no-untyped-def]
        return {(o.kind, o.name): o.to_spec() for o in contents.objects}

    assert specs(py) == specs(ym)
    assert len(specs(py)) == 5
    assert [o.content_hash() for o in py.objects] == [o.content_hash() for o in ym.objects]
