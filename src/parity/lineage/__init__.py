"""Column-level lineage: which source columns, views and features a feature is computed from,
and which features, services, models (and later snapshots) read it.

::

    from parity.lineage import lineage, upstream_sources, downstream_objects

    g = store.lineage("driver_stats:conv_rate", direction="upstream", depth=None)
    g.graph["root"]                       # 'feature:driver_stats.conv_rate'
    upstream_sources(store, "driver_stats:conv_rate")   # sources, columns, last data time
    downstream_objects(store.catalog(), "feature_view", "driver_stats")
    # [('feature_service', 'ranking', 1), ('model', 'ranker_v2', 2)]

``graph`` builds the graph (its docstring lists every node and edge), ``query`` answers
questions of it, ``origins`` finds the sources' last data times, ``render`` writes it as
JSON, DOT or Mermaid.
"""

from parity.lineage.graph import Consumer, build_graph, graph_for, node_id, object_graph
from parity.lineage.origins import SourceOrigin, upstream_sources
from parity.lineage.query import DIRECTIONS, downstream_objects, lineage, resolve, walk
from parity.lineage.render import ordered, to_dot, to_json, to_mermaid

__all__ = [
    "DIRECTIONS",
    "Consumer",
    "SourceOrigin",
    "build_graph",
    "downstream_objects",
    "graph_for",
    "lineage",
    "node_id",
    "object_graph",
    "ordered",
    "resolve",
    "to_dot",
    "to_json",
    "to_mermaid",
    "upstream_sources",
    "walk",
]
