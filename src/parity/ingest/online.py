"""One view's conformed rows into the online store: values, or events for an aggregated view.

A plain view's rows are encoded as records (``parity.online.writer``) and written by the
store's newest-wins rule; an aggregated view's rows are events merged into each entity's
partial aggregates with the store's atomic update (``parity.ingest.aggregated``).
"""

from __future__ import annotations

from collections.abc import Callable

import pyarrow as pa

from parity.aggregates.state import AggregatePlan
from parity.definitions import FeatureView
from parity.ingest.aggregated import check_events, events_by_entity, write_events
from parity.ingest.rows import ConformedRows, online_batch
from parity.online.base import OnlineStore, OnlineView, RecordBatch
from parity.online.writer import encode_batch
from parity.registry.catalog import Catalog

__all__ = ["Encoder", "check_view", "plain_encoder", "write_view"]


Encoder = Callable[[FeatureView, OnlineView, "pa.Table | pa.RecordBatch", bool], RecordBatch]
"""(view, its online view, rows, checked) -> the records to store; the default is
``parity.online.writer.encode_batch``, encryption seals ``encrypt=True`` features in them
(``parity.governance.sealing``)."""


def plain_encoder(
    view: FeatureView, ov: OnlineView, batch: pa.Table | pa.RecordBatch, checked: bool
) -> RecordBatch:
    return encode_batch(batch, ov, checked=checked)


def write_view(
    view: FeatureView,
    rows: ConformedRows,
    *,
    catalog: Catalog,
    online: OnlineStore,
    now_us: int,
    encode: Encoder = plain_encoder,
) -> int:
    """Write ``rows`` to ``view`` online; returns the records stored."""
    ov = OnlineView.of(view, catalog.join_keys_of(view))
    if view.is_aggregated:
        plan = AggregatePlan.of(view, rows.event_id)
        groups = events_by_entity(plan, ov, rows.table, rows.event_us, rows.created_us)
        return write_events(online, ov, plan, groups, now_us)
    return online.write(ov, encode(view, ov, online_batch(rows, ov), True))


def check_view(
    view: FeatureView, rows: ConformedRows, *, catalog: Catalog, online: OnlineStore, now_us: int
) -> None:
    """Refuse ``rows`` if writing them to ``view`` would fail on its stored state (an
    aggregated view's integer sum beyond Int64), before anything is written anywhere."""
    if not view.is_aggregated:
        return
    ov = OnlineView.of(view, catalog.join_keys_of(view))
    plan = AggregatePlan.of(view, rows.event_id)
    if not any(o.function == "sum" for o in plan.outputs):
        return
    groups = events_by_entity(plan, ov, rows.table, rows.event_us, rows.created_us)
    check_events(online, ov, plan, groups, now_us)
