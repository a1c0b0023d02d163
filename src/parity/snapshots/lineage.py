"""Snapshots in the lineage graph: each a node ``snapshot:<name>`` reading the features it
holds (``parity.lineage.graph.Consumer``), so ``parity lineage view:feature --downstream``
lists the snapshots made from it and ``parity lineage <snapshot>`` what it was made from. A
feature deleted since stays in the graph as a missing node (the snapshot still holds it)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from parity.lineage.graph import Consumer, node_id
from parity.snapshots import manifest as mf

if TYPE_CHECKING:
    from parity.store import FeatureStore

__all__ = ["KIND", "consumers"]

KIND = "snapshot"


def consumers(store: FeatureStore) -> tuple[Consumer, ...]:
    """One consumer per snapshot of the project, by name."""
    out = []
    for snap in mf.list_all(store):
        reads = tuple(
            node_id("feature", view, feature)
            for view, _, feature in (ref.partition(":") for ref in snap.features)
        )
        out.append(Consumer(KIND, snap.name, reads, via="snapshot", label=snap.name))
    return tuple(out)
