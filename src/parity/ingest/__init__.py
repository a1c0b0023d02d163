"""Ingestion: the one write path from rows to the stores.

``rows`` reads and checks what callers hand in (``conform``), ``write`` runs a write
(``ingest``: conform, offline log, online; ``push``, ``write_to_online_store``,
``delete_entities``) with its hooks, ``online`` writes one view's rows to the online store,
``aggregated`` merges events into aggregated views' partial aggregates, and ``materialize``
loads what the offline engine computes. Every entry point takes a ``WriteContext``: the
catalog, the stores, the clock and the hooks.
"""

from parity.ingest.materialize import (
    MaterializeResult,
    ViewMaterialization,
    incremental_starts,
    materialize,
    materialize_since,
    materialize_window,
    window_starts,
)
from parity.ingest.rows import ConformedRows, IngestError, as_table, conform
from parity.ingest.write import (
    PUSH_TARGETS,
    WriteContext,
    Written,
    delete_entities,
    ingest,
    push,
    write_to_online_store,
)

__all__ = [
    "PUSH_TARGETS",
    "ConformedRows",
    "IngestError",
    "MaterializeResult",
    "ViewMaterialization",
    "WriteContext",
    "Written",
    "as_table",
    "conform",
    "delete_entities",
    "incremental_starts",
    "ingest",
    "materialize",
    "materialize_since",
    "materialize_window",
    "push",
    "window_starts",
    "write_to_online_store",
]
