"""The lineage graph and its queries, on catalogs built in memory: field mappings,
aggregations, push sources, on-demand views, services and models; direction and depth;
names and unknown names; object-level impact; the renderers; and, for random chains of
views, upstream and downstream as mirror images."""

from __future__ import annotations

import json

import networkx as nx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from networkx.readwrite import json_graph

from parity import (
    Aggregation,
    Entity,
    FeatureService,
    FeatureView,
    Field,
    FileSource,
    Float64,
    Int64,
    Model,
    ObjectNotFoundError,
    OnDemandFeatureView,
    PushSource,
    RequestSource,
    on_demand_feature_view,
)
from parity.definitions.on_demand import UdfLocation
from parity.lineage import (
    Consumer,
    build_graph,
    downstream_objects,
    graph_for,
    lineage,
    resolve,
    to_dot,
    to_json,
    to_mermaid,
)
from parity.registry.catalog import Catalog

driver = Entity(name="driver", join_keys=["driver_id"], dtype=Int64)
trips = FileSource(
    name="trips",
    path="data/trips.parquet",
    timestamp_field="ts",
    created_timestamp_field="created",
    field_mapping={"conv": "conv_rate", "drv": "driver_id"},
)
stats = FeatureView(
    name="stats",
    entities=[driver],
    source=trips,
    schema=[Field(name="conv_rate", dtype=Float64), Field(name="acc_rate", dtype=Float64)],
)
events_batch = FileSource(
    name="events_batch",
    path="data/events.parquet",
    timestamp_field="ts",
    field_mapping={"amt": "amount"},
)
events = PushSource(name="events", batch_source=events_batch)
spend = FeatureView(
    name="spend",
    entities=[driver],
    source=events,
    schema=[Field(name="amount", dtype=Float64)],
    aggregations=[
        Aggregation(function="sum", column="amount", window="7d"),
        Aggregation(function="count", window="1d"),
    ],
)
req = RequestSource(name="req", schema=[Field(name="bonus", dtype=Float64)])


@on_demand_feature_view(
    sources=[stats[["conv_rate"]], req], schema=[Field(name="boosted", dtype=Float64)]
)
def boosted(row):
    return {"boosted": row["conv_rate"] + row["bonus"]}


@on_demand_feature_view(sources=[boosted, spend], schema=[Field(name="score", dtype=Float64)])
def a_score(row):  # named to sort before the view it reads
    return {"score": row["boosted"] * row["amount_sum_7d"]}


ranking = FeatureService(
    name="ranking", features=[stats[["acc_rate"]], a_score, "spend:amount_sum_7d"]
)
ranker = Model("ranker", features=ranking)
OBJECTS = [driver, trips, stats, events_batch, events, spend, boosted, a_score, ranking, ranker]


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog.of(OBJECTS, revision=7, project="shop")


@pytest.fixture(scope="module")
def graph(catalog: Catalog) -> nx.DiGraph:
    return build_graph(catalog)


def via(graph: nx.DiGraph, u: str, v: str) -> str:
    assert graph.has_edge(u, v), f"no edge {u} -> {v}"
    return graph.edges[u, v]["via"]


# -- the graph -----------------------------------------------------------------------------


def test_field_mapping_maps_a_source_column_to_the_feature_it_becomes(graph):
    assert via(graph, "column:trips.conv", "feature:stats.conv_rate") == (
        "field_mapping conv -> conv_rate"
    )
    assert via(graph, "column:trips.acc_rate", "feature:stats.acc_rate") == "read"
    assert "column:trips.conv_rate" not in graph  # the data has no such column
    assert via(graph, "column:trips.drv", "feature_view:stats") == (
        "join key, field_mapping drv -> driver_id"
    )
    assert (
        graph.nodes["column:trips.conv"].items()
        >= {
            "kind": "column",
            "name": "conv",
            "source": "trips",
            "dtype": "Float64",
            "label": "trips.conv",
        }.items()
    )
    assert via(graph, "source:trips", "column:trips.conv") == "column"


def test_time_columns_feed_the_view_not_each_feature(graph):
    assert via(graph, "column:trips.ts", "feature_view:stats") == "timestamp"
    assert via(graph, "column:trips.created", "feature_view:stats") == "created timestamp"
    assert set(graph.successors("column:trips.ts")) == {"feature_view:stats"}
    assert via(graph, "feature_view:stats", "feature:stats.conv_rate") == "feature"
    assert via(graph, "source:trips", "feature_view:stats") == "source"
    assert via(graph, "entity:driver", "feature_view:stats") == "entity"
    assert via(graph, "join_key:driver.driver_id", "entity:driver") == "join key"


def test_aggregations_read_a_source_column_through_the_mapping(graph):
    edge = graph.edges["column:events.amt", "feature:spend.amount_sum_7d"]
    assert edge == {
        "via": "aggregation sum 7d",
        "function": "sum",
        "window": "7d",
        "field_mapping": "amt -> amount",
    }
    # a count of events reads no column: only its view
    assert via(graph, "feature_view:spend", "feature:spend.count_1d") == "aggregation count 1d"
    assert [u for u in graph.predecessors("feature:spend.count_1d")] == ["feature_view:spend"]
    assert graph.nodes["feature:spend.amount_sum_7d"]["dtype"] == "Float64"
    assert graph.nodes["feature:spend.count_1d"]["dtype"] == "Int64"


def test_a_push_source_reads_its_batch_source(graph):
    assert via(graph, "source:events_batch", "source:events") == "batch_source"
    assert via(graph, "column:events_batch.amt", "column:events.amt") == "batch_source"
    assert graph.nodes["source:events"]["source_type"] == "push"


def test_on_demand_views_read_input_features_and_request_fields(graph):
    od = "on_demand_feature_view:boosted"
    assert set(graph.predecessors(od)) == {"feature:stats.conv_rate", "request_field:req.bonus"}
    assert via(graph, "request_source:req", "request_field:req.bonus") == "field"
    out = graph.edges[od, "feature:boosted.boosted"]
    assert out["via"] == "on_demand boosted"
    assert out["code_hash"] == boosted.udf.source_hash
    assert graph.nodes[od]["function"] == boosted.udf.describe()
    # a view given whole: every feature; an on-demand view read by one sorted before it
    assert set(graph.predecessors("on_demand_feature_view:a_score")) == {
        "feature:boosted.boosted",
        "feature:spend.amount_sum_7d",
        "feature:spend.count_1d",
    }
    assert not any(graph.nodes[n].get("missing") for n in graph)


def test_services_select_features_and_models_read_services(graph):
    assert set(graph.predecessors("feature_service:ranking")) == {
        "feature:stats.acc_rate",
        "feature:a_score.score",  # the on-demand view given whole
        "feature:spend.amount_sum_7d",
    }
    assert via(graph, "feature:stats.acc_rate", "feature_service:ranking") == "select"
    assert via(graph, "feature_service:ranking", "model:ranker") == "model"
    assert graph.graph == {"project": "shop", "revision": 7}


def test_references_the_catalog_lacks_are_missing_nodes():
    orphan = FeatureService(name="orphan", features=["gone:x", "stats:nope"])
    g = build_graph(Catalog.of([driver, trips, stats, orphan, Model("m", features="absent")]))
    assert g.nodes["feature_view:gone"]["missing"] is True
    assert g.nodes["feature:stats.nope"]["missing"] is True
    assert g.nodes["feature_service:absent"]["missing"] is True
    assert via(g, "feature_view:gone", "feature_service:orphan") == "select"


def test_consumers_attach_without_changing_the_core(catalog):
    snap = Consumer(
        kind="snapshot",
        name="train_jan",
        reads=("feature_service:ranking", "feature:old.gone"),
        via="snapshot",
    )
    g = build_graph(catalog, [snap])
    assert via(g, "feature_service:ranking", "snapshot:train_jan") == "snapshot"
    assert g.nodes["feature:old.gone"].items() >= {"missing": True, "view": "old"}.items()
    down = lineage(g, "stats:acc_rate", "downstream", None)
    assert "snapshot:train_jan" in down
    assert ("snapshot", "train_jan", 2) in downstream_objects(g, "feature_view", "stats")
    listed = Consumer(kind="snapshot", name="s", reads=["model:ranker"])  # type: ignore[arg-type]
    cached = graph_for(catalog, [listed])
    assert graph_for(catalog, [listed]) is cached and "snapshot:s" in cached
    assert "snapshot:s" not in graph_for(catalog)


# -- queries -------------------------------------------------------------------------------


def test_names_resolve_to_nodes(graph):
    assert resolve(graph, "stats:conv_rate") == "feature:stats.conv_rate"
    assert resolve(graph, "stats.conv_rate") == "feature:stats.conv_rate"
    assert resolve(graph, "boosted:boosted") == "feature:boosted.boosted"
    assert resolve(graph, "trips.conv") == "column:trips.conv"
    assert resolve(graph, " ranker ") == "model:ranker"
    assert resolve(graph, "events") == "source:events"
    assert resolve(graph, "driver") == "entity:driver"
    assert resolve(graph, "column:trips.ts") == "column:trips.ts"


def test_a_view_wins_over_a_source_of_the_same_name_and_node_ids_say_which():
    src = FileSource(name="same", path="x.parquet", timestamp_field="ts")
    view = FeatureView(
        name="same", entities=[driver], source=src, schema=[Field(name="x", dtype=Float64)]
    )
    g = build_graph(Catalog.of([driver, src, view]))
    assert resolve(g, "same") == "feature_view:same"
    assert resolve(g, "source:same") == "source:same"
    assert resolve(g, "same.x") == "feature:same.x"  # the feature, over the column
    assert resolve(g, "column:same.x") == "column:same.x"


def test_unknown_names_say_what_is_close(graph):
    with pytest.raises(ObjectNotFoundError, match=r"did you mean 'stats:conv_rate'"):
        resolve(graph, "stats:conv_rat")
    with pytest.raises(ObjectNotFoundError, match=r"feature view 'stat' not found.*'stats'"):
        resolve(graph, "stat:conv_rate")
    with pytest.raises(ObjectNotFoundError, match=r"source column 'trips.con'.*'trips.conv'"):
        resolve(graph, "trips.con")
    with pytest.raises(ObjectNotFoundError, match=r"'acc_rate' is a feature: stats:acc_rate"):
        resolve(graph, "acc_rate")
    with pytest.raises(ObjectNotFoundError, match=r"in project 'shop'; did you mean 'ranker'"):
        resolve(graph, "rankr")
    with pytest.raises(ObjectNotFoundError, match="nothing is registered yet"):
        resolve(build_graph(Catalog.of([])), "x")


def test_direction_and_depth(catalog):
    up = lineage(catalog, "stats:conv_rate", "upstream", 1)
    assert set(up) == {"feature:stats.conv_rate", "feature_view:stats", "column:trips.conv"}
    assert up.graph["root"] == "feature:stats.conv_rate"
    assert up.graph["direction"] == "upstream" and up.graph["depth"] == 1
    assert (
        up.nodes["column:trips.conv"].items()
        >= {
            "direction": "upstream",
            "distance": 1,
            "via": "field_mapping conv -> conv_rate",
            "next": "feature:stats.conv_rate",
        }.items()
    )
    assert up.nodes["feature:stats.conv_rate"]["direction"] == "root"
    assert set(lineage(catalog, "stats:conv_rate", "upstream", 0)) == {"feature:stats.conv_rate"}
    down = lineage(catalog, "stats:conv_rate", "downstream", None)
    assert down.nodes["model:ranker"]["distance"] == 6  # od, out, od, out, service, model
    assert "feature_view:stats" not in down
    near = lineage(catalog, "stats:conv_rate", "downstream", 2)
    assert max(a["distance"] for _, a in near.nodes(data=True)) == 2
    both = lineage(catalog, "stats:conv_rate", "both", 2)
    assert set(both) == set(lineage(catalog, "stats:conv_rate", "upstream", 2)) | set(near)
    assert "feature:stats.acc_rate" not in both  # a sibling is neither upstream nor down


def test_a_result_is_a_copy(catalog):
    cached = graph_for(catalog)
    assert graph_for(catalog) is cached and nx.is_frozen(cached)
    result = lineage(catalog, "ranker", "upstream", 1)
    result.add_node("scratch")
    result.nodes["model:ranker"]["label"] = "changed"
    assert "scratch" not in cached and cached.nodes["model:ranker"]["label"] == "ranker"
    other = Catalog.of(OBJECTS, revision=7, project="shop")
    assert graph_for(other) is not cached  # per catalog object, not per revision number


def test_bad_direction_or_depth_is_refused(catalog):
    with pytest.raises(ValueError, match="direction must be one of"):
        lineage(catalog, "stats", "sideways", 1)  # type: ignore[arg-type]
    for depth in (-1, 1.5, True):
        with pytest.raises(ValueError, match="depth must be"):
            lineage(catalog, "stats", "both", depth)  # type: ignore[arg-type]


def test_downstream_objects_count_objects_not_columns(catalog):
    assert downstream_objects(catalog, "feature_view", "stats") == [
        ("on_demand_feature_view", "boosted", 1),
        ("feature_service", "ranking", 1),
        ("on_demand_feature_view", "a_score", 2),
        ("model", "ranker", 2),
    ]
    assert downstream_objects(catalog, "source", "events_batch")[:2] == [
        ("source", "events", 1),
        ("feature_view", "spend", 2),
    ]
    assert downstream_objects(catalog, "entity", "driver")[:2] == [
        ("feature_view", "spend", 1),
        ("feature_view", "stats", 1),
    ]
    assert downstream_objects(catalog, "model", "ranker") == []
    with pytest.raises(ObjectNotFoundError, match=r"feature_view 'stat' not found.*'stats'"):
        downstream_objects(catalog, "feature_view", "stat")


# -- rendering -----------------------------------------------------------------------------


def test_json_is_node_link_and_stable(catalog):
    result = lineage(catalog, "stats:conv_rate", "both", None)
    text = to_json(result)
    assert text == to_json(lineage(catalog, "stats:conv_rate", "both", None))
    data = json.loads(text)
    assert [n["id"] for n in data["nodes"]] == sorted(result)
    back = json_graph.node_link_graph(data, edges="edges")
    assert set(back.edges) == set(result.edges) and back.graph["root"] == result.graph["root"]


def test_dot_and_mermaid_quote_what_they_must():
    odd = FileSource(
        name="odd",
        path="x.parquet",
        timestamp_field='t "quoted" \\ <b>',
        field_mapping={'we|ird"[col]': "x"},
    )
    view = FeatureView(
        name="v", entities=[driver], source=odd, schema=[Field(name="x", dtype=Float64)]
    )
    g = lineage(Catalog.of([driver, odd, view]), "v:x", "upstream", None)
    dot = to_dot(g)
    assert dot.startswith("digraph lineage {\n") and dot.endswith("}\n")
    assert '"column:odd.t \\"quoted\\" \\\\ <b>" -> "feature_view:v"' in dot
    assert dot.count("penwidth") == 1  # the root
    mermaid = to_mermaid(g)
    assert mermaid.startswith("flowchart LR\n")
    body = [line.strip() for line in mermaid.splitlines()[1:]]
    for line in body:
        if line.startswith("n") and "[" in line:
            ident = line.split("[", 1)[0].split("(", 1)[0].split("{", 1)[0]
            assert ident.isalnum(), line
    assert '"' not in "".join(
        line.split('"', 1)[1].rsplit('"', 1)[0] for line in body if '"' in line
    )
    assert "we#124;ird#34;#91;col#93;" in mermaid


# -- a property: upstream and downstream mirror each other ---------------------------------

_LOC = UdfLocation(module="m", qualname="f", source_hash="0" * 64)


@st.composite
def chains(draw: st.DrawFn) -> Catalog:
    """A source and a base view, then on-demand views each reading features of earlier
    views, services over random views and models over random services."""
    base = FeatureView(
        name="base",
        entities=[driver],
        source=trips,
        schema=[Field(name=f"f{i}", dtype=Float64) for i in range(3)],
    )
    views: list[FeatureView | OnDemandFeatureView] = [base]
    for i in range(draw(st.integers(0, 6))):
        picks = draw(st.sets(st.integers(0, len(views) - 1), min_size=1, max_size=3))
        sources = []
        for p in sorted(picks):
            names = views[p].feature_names
            chosen = draw(st.one_of(st.none(), st.sets(st.sampled_from(names), min_size=1)))
            sources.append({"view": views[p].name, "features": sorted(chosen) if chosen else None})
        outs = [Field(name=f"o{k}", dtype=Float64) for k in range(draw(st.integers(1, 2)))]
        views.append(OnDemandFeatureView(name=f"od{i}", sources=sources, schema=outs, udf=_LOC))
    services = []
    for i in range(draw(st.integers(0, 3))):
        picks = draw(st.sets(st.integers(0, len(views) - 1), min_size=1, max_size=3))
        services.append(FeatureService(name=f"svc{i}", features=[views[p] for p in picks]))
    models = [
        Model(f"m{i}", features=draw(st.sampled_from(services)))
        for i in range(draw(st.integers(0, 2)) if services else 0)
    ]
    return Catalog.of([driver, trips, *views, *services, *models])


@given(chains(), st.integers(0, 4) | st.none())
def test_upstream_of_x_holds_y_iff_downstream_of_y_holds_x(catalog: Catalog, depth):
    g = build_graph(catalog)
    nodes = sorted(g)
    up = {x: lineage(g, x, "upstream", depth) for x in nodes}
    down = {y: lineage(g, y, "downstream", depth) for y in nodes}
    for x in nodes:
        for y in nodes:
            assert (y in up[x]) == (x in down[y]), (x, y)
            if y in up[x] and x != y:
                d = up[x].nodes[y]["distance"]
                assert d == down[y].nodes[x]["distance"] == nx.shortest_path_length(g, y, x)
                assert depth is None or d <= depth
    if depth is None:
        for x in nodes:
            assert set(up[x]) - {x} == nx.ancestors(g, x)
