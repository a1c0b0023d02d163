"""Questions put to the lineage graph: what a name means, what is upstream or downstream of
it, how far, and which objects a change reaches.

A name is, first match wins:

- a node id: ``feature:driver_stats.conv_rate``, ``column:driver_source.conv``,
  ``source:driver_stats`` (the way to say which of two same-named objects);
- a feature ``view:feature`` or ``view.feature`` (of a feature view or an on-demand view);
- a source column ``source.column`` (when no view of that name has that feature);
- an object's name, looked up as a feature view, an on-demand view, a service, a model, a
  source, then an entity;
- the name of an attached consumer (a training snapshot), when one has it.

An unknown name is an ``ObjectNotFoundError`` whose hint names close matches.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Literal

import networkx as nx

from parity.errors import ObjectNotFoundError
from parity.lineage.graph import (
    OBJECT_KINDS,
    Consumer,
    graph_for,
    node_id,
    object_graph,
    owner_of,
)
from parity.registry.catalog import Catalog

if TYPE_CHECKING:
    from parity.store import FeatureStore

__all__ = ["DIRECTIONS", "Direction", "downstream_objects", "lineage", "resolve", "walk"]

Direction = Literal["upstream", "downstream", "both"]
DIRECTIONS = ("upstream", "downstream", "both")


def _graph(source: Any, consumers: Iterable[Consumer] = ()) -> nx.DiGraph:
    """The (cached) lineage graph of a store's current catalog, a catalog, or a graph (with
    ``consumers`` attached, unless it is a graph already)."""
    if isinstance(source, nx.DiGraph):
        return source
    if isinstance(source, Catalog):
        return graph_for(source, consumers)
    return graph_for(source.catalog(), consumers)


def resolve(graph: nx.DiGraph, name: str, *, shown: Callable[[str], bool] | None = None) -> str:
    """The node id ``name`` means (see the module); ``ObjectNotFoundError`` with close
    matches when it means none. ``shown``: which nodes a hint may name (access control)."""
    text = name.strip()
    if text in graph:
        return text
    head, colon, tail = text.partition(":")
    if colon and node_id("feature", head, tail) in graph:
        return node_id("feature", head, tail)
    head, dot, tail = text.partition(".")
    if dot and not colon:
        for kind in ("feature", "column"):
            if node_id(kind, head, tail) in graph:
                return node_id(kind, head, tail)
    if not colon and not dot:
        for kind in OBJECT_KINDS:
            if node_id(kind, text) in graph:
                return node_id(kind, text)
    attached = [n for n, a in graph.nodes(data=True) if a.get("consumer") and a["name"] == text]
    if len(attached) == 1:  # an attached consumer by its name: a training snapshot
        return attached[0]
    raise _unknown(graph, text, shown or (lambda _: True))


def _unknown(graph: nx.DiGraph, name: str, shown: Callable[[str], bool]) -> ObjectNotFoundError:
    project = graph.graph.get("project")
    nodes = graph.nodes
    head, sep, tail = name.partition(":") if ":" in name else name.partition(".")
    if sep:
        for kind in ("feature_view", "on_demand_feature_view"):
            vid = node_id(kind, head)
            if vid in graph and shown(vid) and not nodes[vid].get("missing"):
                have = {
                    nodes[f]["name"]: nodes[f]["label"]
                    for f in graph.successors(vid)
                    if nodes[f]["kind"] == "feature" and shown(f)
                }
                hint = _hint(tail, have, f"features of {head!r}")
                return ObjectNotFoundError("feature", name, project, hint)
        sid = node_id("source", head)
        if sep == "." and sid in graph and shown(sid):
            have = {
                nodes[c]["name"]: nodes[c]["label"]
                for c in graph.successors(sid)
                if nodes[c]["kind"] == "column"
            }
            hint = _hint(tail, have, "columns its views read")
            return ObjectNotFoundError("source column", name, project, hint)
        views = [
            nodes[n]["name"]
            for n in graph
            if nodes[n]["kind"] in ("feature_view", "on_demand_feature_view") and shown(n)
        ]
        return ObjectNotFoundError("feature view", head, project, _hint(head, views, "views"))
    objects = sorted(
        {nodes[n]["name"] for n in graph if nodes[n]["kind"] in OBJECT_KINDS and shown(n)}
    )
    hints = [_hint(name, objects, "objects")] if objects else ["nothing is registered yet"]
    features = sorted(
        nodes[n]["label"]
        for n in graph
        if nodes[n]["kind"] == "feature" and nodes[n]["name"] == name and shown(n)
    )
    if features:
        hints.append(f"{name!r} is a feature: {', '.join(features[:5])}")
    return ObjectNotFoundError("object or feature", name, project, "; ".join(h for h in hints if h))


def _hint(name: str, known: Iterable[str] | dict[str, str], what: str) -> str:
    """``did you mean ...?`` naming close matches (``known``: names, or names -> what to
    show for each), else the known names when they are few."""
    shown = known if isinstance(known, dict) else {k: k for k in known}
    close = difflib.get_close_matches(name, sorted(shown), n=3, cutoff=0.6)
    if close:
        return "did you mean " + " or ".join(repr(shown[c]) for c in close) + "?"
    if shown and len(shown) <= 20:
        return f"known {what}: {', '.join(sorted(shown.values()))}"
    return ""


def walk(
    graph: nx.DiGraph, root: str, *, downstream: bool, depth: int | None
) -> dict[str, tuple[int, str | None, str]]:
    """Breadth-first from ``root`` along (``downstream``) or against the edges, at most
    ``depth`` edges away (None: all): ``{node: (distance, the node it was reached from, the
    edge's via)}``, the root included at distance 0."""
    adjacency = graph.succ if downstream else graph.pred
    seen: dict[str, tuple[int, str | None, str]] = {root: (0, None, "")}
    frontier = [root]
    distance = 0
    while frontier and (depth is None or distance < depth):
        distance += 1
        reached = []
        for u in frontier:
            for v in sorted(adjacency[u]):
                if v not in seen:
                    seen[v] = (distance, u, adjacency[u][v].get("via", ""))
                    reached.append(v)
        frontier = reached
    return seen


def lineage(
    source: Any,
    name: str,
    direction: Direction = "both",
    depth: int | None = 3,
    *,
    consumers: Iterable[Consumer] = (),
) -> nx.DiGraph:
    """What ``name`` reads (``upstream``), what reads it (``downstream``), or both, at most
    ``depth`` edges away (None: unlimited), as a new graph (a copy: change it freely).

    ``source``: a ``FeatureStore`` (its current catalog; with auth on, the name's object
    must be describable and the nodes of objects the actor may not ``describe`` are left
    out), a ``Catalog`` or a lineage graph. ``consumers``: readers the registry does not
    hold (training snapshots, ``parity.lineage.graph.Consumer``) attached to the graph of a
    store or a catalog. Graph attributes: ``root`` (the start's node id),
    ``direction``, ``depth``, ``project``, ``revision``. Node attributes add ``direction``
    (``root``, ``upstream``, ``downstream``), ``distance`` (edges from the root), ``via``
    and ``next`` (the edge by which the walk reached the node, and the node at its other
    end, one step nearer the root).
    """
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {', '.join(DIRECTIONS)}, got {direction!r}")
    if depth is not None and (isinstance(depth, bool) or not isinstance(depth, int) or depth < 0):
        raise ValueError(f"depth must be a whole number >= 0 or None (unlimited), got {depth!r}")
    graph = _graph(source, consumers)
    shown = _access_filter(source, graph)
    root = resolve(graph, name, shown=shown)
    if shown is not None:
        _check_root(source, graph, root)
    walks: list[tuple[str, dict[str, tuple[int, str | None, str]]]] = []
    if direction in ("upstream", "both"):
        walks.append(("upstream", walk(graph, root, downstream=False, depth=depth)))
    if direction in ("downstream", "both"):
        walks.append(("downstream", walk(graph, root, downstream=True, depth=depth)))
    nodes = {n for _, seen in walks for n in seen}
    if shown is not None:
        nodes = {n for n in nodes if n == root or shown(n)}
    out: nx.DiGraph = graph.subgraph(nodes).copy()
    for way, seen in walks:
        for n, (distance, parent, via) in seen.items():
            if n not in nodes or n == root:
                continue
            out.nodes[n].update(direction=way, distance=distance, via=via, next=parent)
    out.nodes[root].update(direction="root", distance=0, via="", next=None)
    out.graph.update(root=root, direction=direction, depth=depth)
    return out


def downstream_objects(source: Any, kind: str, name: str) -> list[tuple[str, str, int]]:
    """Every object a change to object ``kind name`` reaches, as ``(kind, name, distance)``
    sorted by distance, kind and name; distance counts objects, not columns (a view -> the
    on-demand view reading its features -> a service -> a model: 1, 2, 3). Kinds: views,
    on-demand views, services, models, push sources over a batch source, and attached
    consumers. ``source``: a store (no access filtering: this is for planning), a catalog
    or a lineage graph."""
    graph = object_graph(_graph(source))
    start = node_id(kind, name)
    if start not in graph or graph.nodes[start].get("missing"):
        known = sorted(graph.nodes[n]["name"] for n in graph if graph.nodes[n]["kind"] == kind)
        hint = _hint(name, known, f"{kind}s") or f"no {kind} is registered"
        raise ObjectNotFoundError(kind, name, graph.graph.get("project"), hint)
    seen = walk(graph, start, downstream=True, depth=None)
    order = {k: i for i, k in enumerate(OBJECT_KINDS)}
    found = [
        (graph.nodes[n]["kind"], graph.nodes[n]["name"], d)
        for n, (d, _, _) in seen.items()
        if n != start
    ]
    return sorted(found, key=lambda t: (t[2], order.get(t[0], len(order)), t[0], t[1]))


# -- access control ------------------------------------------------------------------------


def _owners(graph: nx.DiGraph, n: str) -> list[tuple[str, str]]:
    """The objects whose ``describe`` shows node ``n``: its own object, or for request data
    the on-demand views reading it (it is visible when one of them is)."""
    attrs = graph.nodes[n]
    owner = owner_of(attrs)
    if owner is not None:
        return [owner]
    fields = list(graph.successors(n)) if attrs["kind"] == "request_source" else [n]
    return sorted(
        ("on_demand_feature_view", graph.nodes[r]["name"])
        for f in fields
        for r in graph.successors(f)
        if graph.nodes[r]["kind"] == "on_demand_feature_view"
    )


def _access_filter(source: Any, graph: nx.DiGraph) -> Callable[[str], bool] | None:
    """With a store whose auth is on: whether the actor may ``describe`` some object of a
    node (``_owners``); None otherwise (everything is shown)."""
    if isinstance(source, nx.DiGraph | Catalog):
        return None
    access = source.governance.access
    if not access.enabled:
        return None
    actor = source.actor
    resource = _resources(source)
    memo: dict[tuple[str, str], bool] = {}

    def may(owner: tuple[str, str]) -> bool:
        found = memo.get(owner)
        if found is None:
            found = memo[owner] = access.allows(actor, "describe", resource(owner))
        return found

    return lambda n: any(may(o) for o in _owners(graph, n))


def _resources(store: FeatureStore) -> Callable[[tuple[str, str]], Any]:
    """(kind, name) -> the access ``Resource`` with the object's tags."""
    from parity.governance.access import Resource

    catalog = store.catalog()

    def resource(owner: tuple[str, str]) -> Resource:
        obj = catalog.objects.get(owner[0], {}).get(owner[1])
        return Resource(owner[0], owner[1], obj.tags if obj is not None else {})

    return resource


def _check_root(store: FeatureStore, graph: nx.DiGraph, root: str) -> None:
    """``PermissionDeniedError`` (audited) unless the actor may describe an object of the
    root node."""
    resources = [_resources(store)(o) for o in _owners(graph, root)]
    access = store.governance.access
    if not any(access.allows(store.actor, "describe", r) for r in resources):
        if not resources:
            from parity.governance.access import Resource

            attrs = graph.nodes[root]
            resources = [Resource(attrs["kind"], attrs["name"])]
        raise access.denial(store.actor, "describe", resources)
