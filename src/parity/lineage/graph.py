"""The lineage graph: every registered object, source column and feature, edges the way data
flows (upstream -> downstream).

Nodes (id: attributes ``kind``, ``name``, ``label``; ``missing=True`` on an object that is
referenced but not in the catalog):

======================================  ==================================================
``source:<name>``                       a data source (``source_type``, ``timestamp_field``)
``column:<source>.<column>``            a column of a source, as named in its data
                                        (``source``, ``dtype`` when a view declares it)
``entity:<name>``                       an entity (``join_keys``)
``join_key:<entity>.<key>``             one of its join keys
``feature_view:<name>``                 a feature view (``source``, ``entities``)
``feature:<view>.<feature>``            a feature of a view or an on-demand view (``view``,
                                        ``view_kind``, ``dtype``)
``on_demand_feature_view:<name>``       an on-demand view (``function``, ``code_hash``,
                                        ``mode``)
``request_source:<name>``               a request source of on-demand views, and each of
``request_field:<request>.<field>``     its fields (``dtype``)
``feature_service:<name>``              a feature service
``model:<name>``                        a model
``<kind>:<name>``                       a ``Consumer`` attached by the caller (snapshots)
======================================  ==================================================

Edges carry ``via``, how the data gets from one to the other:

- ``source -> column`` (``column``); a push source's batch source ``-> source`` and each
  batch column ``-> column`` of the push source (``batch_source``).
- ``column -> feature``: ``read`` (same name), ``field_mapping <column> -> <feature>``
  (``FileSource.field_mapping`` maps a source column to the feature it becomes), or for an
  aggregated view ``aggregation <function> <window>`` (attributes ``function``, ``window``,
  and ``field_mapping`` when the column was renamed).
- ``feature_view -> feature`` (``feature``; ``aggregation count <window>`` for a count of
  events, which reads no column). Every feature depends on its view: the view's ttl,
  entities and source decide which row a value comes from.
- The source's **timestamp and created-timestamp columns, event id column and join-key
  columns feed the view node, not each feature** (``timestamp``, ``created timestamp``,
  ``event id``, ``join key``): they decide which row is read, for every feature alike, so
  a feature reaches them through its view and a feature's own edges stay its value's.
- ``source -> feature_view`` (``source``), ``entity -> feature_view`` (``entity``),
  ``join_key -> entity`` (``join key``).
- On-demand views: each input feature ``-> on_demand_feature_view`` (``input``; a view given
  whole contributes every feature), each request field likewise (``request``; ``request_source
  -> request_field``: ``field``), and ``on_demand_feature_view -> feature`` for each output
  (``on_demand <function>``, with ``function`` and ``code_hash``): the function is opaque,
  so every output depends on every input.
- ``feature -> feature_service`` (``select``; a projection without features selects all of
  the view's) and ``feature_service -> model`` (``model``).

``graph_for(catalog)`` caches the graph per catalog object (a ``CatalogCache`` hands out the
same object until the registry's revision moves); the cached graph is frozen.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import networkx as nx

from parity.definitions import (
    DataSource,
    Entity,
    FeatureService,
    FeatureView,
    FileSource,
    Model,
    OnDemandFeatureView,
    PushSource,
)
from parity.definitions.base import format_duration
from parity.registry.catalog import Catalog

__all__ = [
    "OBJECT_KINDS",
    "PART_KINDS",
    "Consumer",
    "build_graph",
    "graph_for",
    "node_id",
    "object_graph",
    "owner_of",
]

OBJECT_KINDS = (
    "feature_view",
    "on_demand_feature_view",
    "feature_service",
    "model",
    "source",
    "entity",
)
"""The registered kinds with a node each, in the order a bare name is looked up."""
PART_KINDS = ("column", "feature", "join_key", "request_field")
"""Kinds whose node names ``<owner>.<part>``."""


def node_id(kind: str, name: str, part: str | None = None) -> str:
    """``kind:name``, or ``kind:name.part`` for a column, feature, join key or request field
    (``node_id("feature", "driver_stats", "conv_rate")``)."""
    return f"{kind}:{name}" if part is None else f"{kind}:{name}.{part}"


@dataclass(frozen=True)
class Consumer:
    """A reader the registry does not hold (a training snapshot...), attached to the graph.

    ``reads`` are node ids it reads (``feature:v.f``, ``feature_service:s``); each becomes an
    edge into ``kind:name`` labelled ``via``. A node id the graph lacks is added with
    ``missing=True`` (a snapshot may outlive a feature).
    """

    kind: str
    name: str
    reads: tuple[str, ...]
    via: str = "reads"
    label: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.reads, tuple):  # a list given: kept hashable (the cache key)
            object.__setattr__(self, "reads", tuple(self.reads))


def build_graph(catalog: Catalog, consumers: Iterable[Consumer] = ()) -> nx.DiGraph:
    """A new lineage graph of every object in ``catalog`` (see the module), plus
    ``consumers``. Graph attributes: ``project``, ``revision``."""
    g = nx.DiGraph(project=catalog.project, revision=catalog.revision)
    b = _Builder(g, catalog)
    for entity in _sorted(catalog, "entity"):
        b.entity(entity)
    for source in _sorted(catalog, "source"):
        b.source(source)
    for view in catalog.views():
        b.view(view)
    odfvs = catalog.on_demand_views()
    for odfv in odfvs:  # every output first: an on-demand view may read a later one's
        b.on_demand_outputs(odfv)
    for odfv in odfvs:
        b.on_demand_inputs(odfv)
    for service in _sorted(catalog, "feature_service"):
        b.service(service)
    for model in _sorted(catalog, "model"):
        b.model(model)
    for consumer in consumers:
        b.consumer(consumer)
    return g


def _sorted(catalog: Catalog, kind: str) -> Iterator[Any]:
    objects = catalog.objects.get(kind, {})
    return (objects[n] for n in sorted(objects))


class _Builder:
    """Adds one object at a time; referenced objects the catalog lacks become missing nodes."""

    def __init__(self, g: nx.DiGraph, catalog: Catalog):
        self.g = g
        self.catalog = catalog

    # -- nodes --------------------------------------------------------------------------------
    def _object(self, kind: str, name: str, **attrs: Any) -> str:
        nid = node_id(kind, name)
        if nid in self.g:  # named by an object built before it
            self.g.nodes[nid].update(attrs)
            self.g.nodes[nid].pop("missing", None)
        else:
            self.g.add_node(nid, kind=kind, name=name, label=name, **attrs)
        return nid

    def _referenced(self, kind: str, name: str) -> str:
        """The node of an object another one names: missing unless the catalog has it."""
        nid = node_id(kind, name)
        if nid not in self.g:
            self.g.add_node(nid, kind=kind, name=name, label=name, missing=True)
        return nid

    def _column(self, source: str, column: str, dtype: Any = None) -> str:
        nid = node_id("column", source, column)
        if nid not in self.g:
            self.g.add_node(
                nid, kind="column", name=column, label=f"{source}.{column}", source=source
            )
            self.g.add_edge(self._referenced("source", source), nid, via="column")
        if dtype is not None and self.g.nodes[nid].get("dtype") is None:
            self.g.nodes[nid]["dtype"] = str(dtype)
        return nid

    def _feature(self, view: str, view_kind: str, feature: str, dtype: Any = None) -> str:
        nid = node_id("feature", view, feature)
        if nid not in self.g:
            self.g.add_node(
                nid,
                kind="feature",
                name=feature,
                label=f"{view}:{feature}",
                view=view,
                view_kind=view_kind,
            )
        if dtype is not None:
            self.g.nodes[nid]["dtype"] = str(dtype)
        return nid

    # -- objects ------------------------------------------------------------------------------
    def entity(self, entity: Entity) -> None:
        eid = self._object("entity", entity.name, join_keys=list(entity.join_keys))
        for key in entity.join_keys:
            kid = node_id("join_key", entity.name, key)
            attrs: dict[str, Any] = {"dtype": str(entity.dtype)} if entity.dtype else {}
            self.g.add_node(
                kid, kind="join_key", name=key, label=f"{entity.name}.{key}", entity=entity.name
            )
            self.g.nodes[kid].update(attrs)
            self.g.add_edge(kid, eid, via="join key")

    def source(self, source: DataSource) -> str:
        attrs: dict[str, Any] = {
            "source_type": source.source_type,
            "timestamp_field": source.timestamp_field,
        }
        if isinstance(source, FileSource):
            attrs["path"] = source.path
        sid = self._object("source", source.name, **attrs)
        if isinstance(source, PushSource):
            batch = source.batch_source
            if isinstance(batch, FileSource) and not self.catalog.has("source", batch.name):
                self.source(batch)  # embedded, not registered on its own
            batch_id = self._referenced("source", source.batch_source_name)
            self.g.add_edge(batch_id, sid, via="batch_source")
        return sid

    def _source_of(self, view: FeatureView) -> tuple[str, DataSource | None]:
        """The view's source's name and definition (the registered one when there is one;
        None when the catalog lacks it)."""
        registered = self.catalog.objects.get("source", {})
        src = view.source
        if isinstance(src, str):
            found = registered.get(src)
            return src, found if isinstance(found, DataSource) else None
        found = registered.get(src.name)
        if isinstance(found, DataSource):
            return src.name, found
        if self.g.nodes.get(node_id("source", src.name), {}).get("missing", True):
            self.source(src)  # given inline and not registered on its own
        return src.name, src

    def view(self, view: FeatureView) -> None:
        source_name, source = self._source_of(view)
        vid = self._object(
            "feature_view", view.name, source=source_name, entities=list(view.entity_names)
        )
        sid = self._referenced("source", source_name)
        self.g.add_edge(sid, vid, via="source")
        column_for = source.column_for if source is not None else (lambda n: n)
        link = self._linker(source_name, source)
        for entity_name in view.entity_names:
            eid = self._referenced("entity", entity_name)
            self.g.add_edge(eid, vid, via="entity")
            entity = self.catalog.objects.get("entity", {}).get(entity_name)
            if isinstance(entity, Entity):
                for key in entity.join_keys:
                    column = column_for(key)
                    via = (
                        "join key"
                        if column == key
                        else f"join key, field_mapping {column} -> {key}"
                    )
                    link(column, vid, via, entity.dtype)
        if source is not None:
            link(source.timestamp_field, vid, "timestamp", "Timestamp")
            if source.created_timestamp_field:
                link(source.created_timestamp_field, vid, "created timestamp", "Timestamp")
            if source.event_id_field and view.is_aggregated:
                link(source.event_id_field, vid, "event id")
        if view.is_aggregated:
            self._aggregations(view, vid, column_for, link)
            return
        for f in view.schema_:
            fid = self._feature(view.name, "feature_view", f.name, f.dtype)
            self.g.add_edge(vid, fid, via="feature")
            column = column_for(f.name)
            via = "read" if column == f.name else f"field_mapping {column} -> {f.name}"
            link(column, fid, via, f.dtype)

    def _linker(self, source_name: str, source: DataSource | None) -> Any:
        """``link(column, target, via, dtype)``: an edge from a source column (and from the
        batch source's same column, for a push source)."""
        batch = source.batch_source_name if isinstance(source, PushSource) else None

        def link(column: str, target: str, via: str, dtype: Any = None, **attrs: Any) -> None:
            cid = self._column(source_name, column, dtype)
            if batch is not None:
                self.g.add_edge(self._column(batch, column, dtype), cid, via="batch_source")
            self.g.add_edge(cid, target, via=via, **attrs)

        return link

    def _aggregations(self, view: FeatureView, vid: str, column_for: Any, link: Any) -> None:
        types = {f.name: f.dtype for f in view.schema_}
        for a in view.aggregations:
            fn = f"last_n({a.n})" if a.function == "last_n" else a.function
            window = format_duration(a.window)
            how = f"aggregation {fn} {window}"
            in_type = types.get(a.column) if a.column else None
            dtype = a.output_type(in_type) if in_type is not None or a.column is None else None
            fid = self._feature(view.name, "feature_view", a.output_name, dtype)
            attrs = {"function": a.function, "window": window}
            if a.column is None:  # a count of events reads no column: its view is its input
                self.g.add_edge(vid, fid, via=how, **attrs)
                continue
            self.g.add_edge(vid, fid, via="feature")
            column = column_for(a.column)
            if column != a.column:
                attrs["field_mapping"] = f"{column} -> {a.column}"
            link(column, fid, how, in_type, **attrs)

    def on_demand_outputs(self, odfv: OnDemandFeatureView) -> None:
        fn = odfv.udf.describe()
        oid = self._object(
            "on_demand_feature_view",
            odfv.name,
            function=fn,
            code_hash=odfv.udf.source_hash,
            mode=odfv.mode,
        )
        via = f"on_demand {odfv.udf.qualname}"
        for f in odfv.schema_:
            fid = self._feature(odfv.name, "on_demand_feature_view", f.name, f.dtype)
            self.g.add_edge(oid, fid, via=via, function=fn, code_hash=odfv.udf.source_hash)

    def on_demand_inputs(self, odfv: OnDemandFeatureView) -> None:
        oid = node_id("on_demand_feature_view", odfv.name)
        for item in odfv.inputs:
            for fid in self._selected(item.view, item.features):
                self.g.add_edge(fid, oid, via="input")
        for req in odfv.request_sources:
            rid = node_id("request_source", req.name)
            if rid not in self.g:
                self.g.add_node(rid, kind="request_source", name=req.name, label=req.name)
            for f in req.schema_:
                qid = node_id("request_field", req.name, f.name)
                if qid not in self.g:
                    self.g.add_node(
                        qid,
                        kind="request_field",
                        name=f.name,
                        label=f"{req.name}.{f.name}",
                        request=req.name,
                        dtype=str(f.dtype),
                    )
                    self.g.add_edge(rid, qid, via="field")
                self.g.add_edge(qid, oid, via="request")

    def _selected(self, view: str, features: tuple[str, ...] | None) -> list[str]:
        """The feature nodes a projection selects (None: all of the view's); an unknown view
        is its missing object node, an unknown feature a missing feature node."""
        kind = self.catalog.view_kind(view)
        if kind is None:
            return [self._referenced("feature_view", view)]
        if features is None:
            obj = self.catalog.objects[kind][view]
            features = tuple(obj.feature_names)  # type: ignore[attr-defined]
        out = []
        for name in features:
            fid = node_id("feature", view, name)
            if fid not in self.g:
                self._feature(view, kind, name)
                self.g.nodes[fid]["missing"] = True
            out.append(fid)
        return out

    def service(self, service: FeatureService) -> None:
        sid = self._object("feature_service", service.name)
        for p in service.features:
            for fid in self._selected(p.view, p.features):
                self.g.add_edge(fid, sid, via="select")

    def model(self, model: Model) -> None:
        mid = self._object("model", model.name)
        self.g.add_edge(self._referenced("feature_service", model.service_name), mid, via="model")

    def consumer(self, consumer: Consumer) -> None:
        cid = self._object(consumer.kind, consumer.name)
        if consumer.label:
            self.g.nodes[cid]["label"] = consumer.label
        self.g.nodes[cid]["consumer"] = True
        for read in consumer.reads:
            if read not in self.g:
                self._placeholder(read)
            self.g.add_edge(read, cid, via=consumer.via)

    def _placeholder(self, nid: str) -> None:
        """A missing node for a node id nothing built: its kind and owner read off the id."""
        kind, _, rest = nid.partition(":")
        owner, dot, part = rest.partition(".")
        if dot and kind == "feature":
            self._feature(owner, self.catalog.view_kind(owner) or "feature_view", part)
        elif dot and kind == "column":
            self._column(owner, part)
        else:
            self.g.add_node(nid, kind=kind, name=rest, label=rest)
        self.g.nodes[nid]["missing"] = True


# -- object level --------------------------------------------------------------------------


def owner_of(attrs: dict[str, Any]) -> tuple[str, str] | None:
    """The (kind, name) of the object a node belongs to: a feature's view, a column's source,
    a join key's entity, the object itself; None for request data (no registered object)."""
    kind = attrs.get("kind")
    if kind == "feature":
        return attrs["view_kind"], attrs["view"]
    if kind == "column":
        return "source", attrs["source"]
    if kind == "join_key":
        return "entity", attrs["entity"]
    if kind is None or kind in ("request_source", "request_field") or kind in PART_KINDS:
        return None
    return str(kind), attrs["name"]


def object_graph(graph: nx.DiGraph) -> nx.DiGraph:
    """``graph`` collapsed to objects: an edge A -> B when some node of A feeds some node of B
    (a view -> an on-demand view reading one of its features). Cached per graph object."""
    with _LOCK:
        found = _OBJECT_GRAPHS.get(graph)
    if found is not None:
        return found
    out = nx.DiGraph(**graph.graph)
    owners = {n: owner_of(a) for n, a in graph.nodes(data=True)}
    for n, owner in owners.items():
        if owner is not None and owner[0] == graph.nodes[n]["kind"]:
            out.add_node(node_id(*owner), **graph.nodes[n])
    for u, v in graph.edges():
        ou, ov = owners[u], owners[v]
        if ou is not None and ov is not None and ou != ov:
            a, b = node_id(*ou), node_id(*ov)
            for nid, (kind, name) in ((a, ou), (b, ov)):
                if nid not in out:
                    out.add_node(nid, kind=kind, name=name, label=name, missing=True)
            out.add_edge(a, b)
    nx.freeze(out)
    with _LOCK:
        _OBJECT_GRAPHS[graph] = out
    return out


# -- the cache -----------------------------------------------------------------------------

_LOCK = threading.Lock()
_CACHE_SIZE = 4
_GRAPHS: OrderedDict[tuple[int, tuple[Consumer, ...]], tuple[weakref.ref[Catalog], nx.DiGraph]]
_GRAPHS = OrderedDict()
_OBJECT_GRAPHS: weakref.WeakKeyDictionary[nx.DiGraph, nx.DiGraph] = weakref.WeakKeyDictionary()


def graph_for(catalog: Catalog, consumers: Iterable[Consumer] = ()) -> nx.DiGraph:
    """``build_graph(catalog, consumers)``, built once per catalog object (the last few are
    kept) and frozen: copy it (``graph.copy()``) to change it."""
    extra = tuple(consumers)
    key = (id(catalog), extra)
    with _LOCK:
        hit = _GRAPHS.get(key)
        if hit is not None and hit[0]() is catalog:
            _GRAPHS.move_to_end(key)
            return hit[1]
    graph = nx.freeze(build_graph(catalog, extra))
    with _LOCK:
        _GRAPHS[key] = (weakref.ref(catalog), graph)
        _GRAPHS.move_to_end(key)
        while len(_GRAPHS) > _CACHE_SIZE:
            _GRAPHS.popitem(last=False)
    return graph
