"""A lineage graph as text: node-link JSON, Graphviz DOT, a Mermaid flowchart, and the rows
of a table ordered by distance. Every format is stable: nodes and edges sorted by id, so the
same registry gives the same text."""

from __future__ import annotations

import json
import re
from typing import Any

import networkx as nx

__all__ = ["ordered", "to_dot", "to_json", "to_mermaid"]

_SHAPES = {
    "source": "cylinder",
    "column": "note",
    "entity": "diamond",
    "join_key": "note",
    "feature_view": "box3d",
    "feature": "ellipse",
    "on_demand_feature_view": "component",
    "request_source": "cylinder",
    "request_field": "note",
    "feature_service": "folder",
    "model": "hexagon",
}
_MERMAID_FILLS = {
    "source": "#e3f2fd",
    "column": "#f5f5f5",
    "entity": "#fff3e0",
    "join_key": "#fff8e1",
    "feature_view": "#e8f5e9",
    "feature": "#f1f8e9",
    "on_demand_feature_view": "#f3e5f5",
    "request_source": "#fce4ec",
    "request_field": "#fce4ec",
    "feature_service": "#e0f7fa",
    "model": "#ede7f6",
}
_MERMAID_SHAPES = {
    "source": ('[("', '")]'),
    "entity": ('{"', '"}'),
    "feature": ('(["', '"])'),
    "feature_service": ('[["', '"]]'),
    "model": ('{{"', '"}}'),
    "on_demand_feature_view": ('[/"', '"/]'),
}


def _sorted_copy(graph: nx.DiGraph) -> nx.DiGraph:
    """The same graph with nodes and edges inserted in sorted order (stable output)."""
    out = nx.DiGraph(**graph.graph)
    for n in sorted(graph):
        out.add_node(n, **dict(sorted(graph.nodes[n].items())))
    for u, v in sorted(graph.edges()):
        out.add_edge(u, v, **dict(sorted(graph.edges[u, v].items())))
    return out


def node_link(graph: nx.DiGraph) -> dict[str, Any]:
    """``networkx.node_link_data`` of the graph with its nodes and edges sorted, edges under
    ``edges`` (whichever networkx 3 release is installed)."""
    from networkx.readwrite import json_graph

    data = _sorted_copy(graph)
    try:
        return json_graph.node_link_data(data, edges="edges")
    except TypeError:  # networkx before 3.4 names the key with link=
        return json_graph.node_link_data(data, link="edges")


def to_json(graph: nx.DiGraph) -> str:
    """Node-link JSON (``networkx.readwrite.json_graph``), keys and items sorted."""
    return json.dumps(node_link(graph), indent=2, sort_keys=True, default=str) + "\n"


def _dot_quote(text: str) -> str:
    """A DOT double-quoted string: backslashes and quotes escaped, newlines as ``\\n``."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + escaped.replace("\r", "").replace("\n", "\\n") + '"'


def _title(attrs: dict[str, Any]) -> str:
    """A node's caption: its kind and label, and its type for columns and features."""
    kind = str(attrs.get("kind", "")).replace("_", " ")
    text = f"{kind}\n{attrs.get('label', '')}"
    if attrs.get("dtype"):
        text += f"\n{attrs['dtype']}"
    if attrs.get("missing"):
        text += "\n(missing)"
    return text


def to_dot(graph: nx.DiGraph) -> str:
    """Graphviz DOT text (``dot -Tsvg``), left to right; the root drawn bold."""
    root = graph.graph.get("root")
    lines = [
        "digraph lineage {",
        "  rankdir=LR;",
        '  node [fontname="Helvetica", fontsize=10, shape=box];',
        '  edge [fontname="Helvetica", fontsize=9];',
    ]
    for n in sorted(graph):
        attrs = graph.nodes[n]
        parts = [
            f"label={_dot_quote(_title(attrs))}",
            f"shape={_SHAPES.get(attrs.get('kind', ''), 'box')}",
        ]
        if n == root:
            parts.append('penwidth=2.5, style="bold"')
        if attrs.get("missing"):
            parts.append('style="dashed"')
        lines.append(f"  {_dot_quote(n)} [{', '.join(parts)}];")
    for u, v in sorted(graph.edges()):
        via = graph.edges[u, v].get("via", "")
        label = f" [label={_dot_quote(via)}]" if via else ""
        lines.append(f"  {_dot_quote(u)} -> {_dot_quote(v)}{label};")
    lines.append("}")
    return "\n".join(lines) + "\n"


_MERMAID_UNSAFE = re.compile(r'["<>#&`|\[\]{}()]')


def _mermaid_text(text: str) -> str:
    """Text for inside a quoted Mermaid label: quotes and markup characters as entity codes,
    line breaks as ``<br/>``."""

    def code(m: re.Match[str]) -> str:
        return f"#{ord(m.group(0))};"

    parts = [_MERMAID_UNSAFE.sub(code, line) for line in text.split("\n")]
    return "<br/>".join(parts)


def to_mermaid(graph: nx.DiGraph) -> str:
    """A Mermaid ``flowchart LR``: nodes get safe ids (``n0``, ``n1``... in sorted order), the
    text is in quoted labels; one class per kind, the root outlined."""
    ids = {n: f"n{i}" for i, n in enumerate(sorted(graph))}
    lines = ["flowchart LR"]
    by_kind: dict[str, list[str]] = {}
    for n, nid in ids.items():
        attrs = graph.nodes[n]
        kind = str(attrs.get("kind", "node"))
        left, right = _MERMAID_SHAPES.get(kind, ('["', '"]'))
        lines.append(f"  {nid}{left}{_mermaid_text(_title(attrs))}{right}")
        by_kind.setdefault(re.sub(r"\W", "_", kind), []).append(nid)
    for u, v in sorted(graph.edges()):
        via = graph.edges[u, v].get("via", "")
        arrow = f' -->|"{_mermaid_text(via)}"| ' if via else " --> "
        lines.append(f"  {ids[u]}{arrow}{ids[v]}")
    for kind, members in sorted(by_kind.items()):
        lines.append(f"  classDef {kind} fill:{_MERMAID_FILLS.get(kind, '#ffffff')},stroke:#555")
        lines.append(f"  class {','.join(members)} {kind}")
    root = graph.graph.get("root")
    if root in ids:
        lines.append(f"  style {ids[root]} stroke-width:3px")
    return "\n".join(lines) + "\n"


def ordered(graph: nx.DiGraph) -> list[tuple[str, dict[str, Any]]]:
    """The nodes of a ``lineage`` result for a table: upstream farthest first, the root, then
    downstream nearest first; ties by kind and label."""

    def key(item: tuple[str, dict[str, Any]]) -> tuple[int, int, str, str]:
        n, a = item
        way = a.get("direction", "root")
        distance = int(a.get("distance", 0))
        rank = {"upstream": (0, -distance), "root": (1, 0), "downstream": (2, distance)}[way]
        return (*rank, str(a.get("kind", "")), str(a.get("label", n)))

    return sorted(graph.nodes(data=True), key=key)
