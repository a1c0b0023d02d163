"""Discovery: finding features, seeing who reads them, and spotting the ones nobody needs.

::

    store.search("conversion rate", tags={"team": "ranking"})   # [SearchHit], best first
    store.usage("driver_hourly_stats")     # UsageReport: reads, last read, top consumers
    store.unused(days=90)                  # [UnusedFeature]: candidates to deprecate

``search`` ranks the registered objects with a full-text index built from the catalog
(SQLite FTS5 in memory, cached per registry revision); ``usage`` counts reads through the
read hooks, in memory, written to the registry every few seconds and at ``store.close()``;
``unused`` weighs what services select against what was read. Each module's docstring says
more. Names load on first use, so a ``FeatureStore`` carrying the usage hook imports neither
the index nor the registry's tables until they are needed.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_WHERE = {
    "parity.discovery.records": [
        "ConsumerUsage",
        "FeatureUsage",
        "UsageCount",
        "UsageRecords",
        "UsageReport",
    ],
    "parity.discovery.search": ["SEARCH_KINDS", "SearchHit", "SearchIndex", "index_for", "search"],
    "parity.discovery.unused": ["UnusedFeature", "unused", "unused_in"],
    "parity.discovery.usage": [
        "UsageHooks",
        "uncounted",
        "usage_hooks",
        "usage_report",
    ],
}
_MODULE_OF = {name: module for module, names in _WHERE.items() for name in names}


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'parity.discovery' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


if TYPE_CHECKING:
    from parity.discovery.records import (
        ConsumerUsage,
        FeatureUsage,
        UsageCount,
        UsageRecords,
        UsageReport,
    )
    from parity.discovery.search import SEARCH_KINDS, SearchHit, SearchIndex, index_for, search
    from parity.discovery.unused import UnusedFeature, unused, unused_in
    from parity.discovery.usage import UsageHooks, uncounted, usage_hooks, usage_report

__all__ = [
    "SEARCH_KINDS",
    "ConsumerUsage",
    "FeatureUsage",
    "SearchHit",
    "SearchIndex",
    "UnusedFeature",
    "UsageCount",
    "UsageHooks",
    "UsageRecords",
    "UsageReport",
    "index_for",
    "search",
    "uncounted",
    "unused",
    "unused_in",
    "usage_hooks",
    "usage_report",
]
