"""The one write path: rows are conformed, appended to the offline log when asked, then
written online (values, or events for aggregated views).

``push``, ``write_to_online_store`` and (through ``ingest``) stream consumers all come here;
``parity.ingest.materialize`` writes what the offline engine computed through the same
online write. Everything a write needs is in its ``WriteContext`` (the catalog, the stores,
the clock, the hooks), so nothing here reaches back into the facade.

Order, for every batch: every row is checked before anything is written (a bad row is
named, and nothing of the batch is written); ``before_write`` hooks may refuse; the offline
append (durable: one fsynced file per batch) happens before any online write, so an
accepted offline push survives a crash in the online write.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from parity.clock import Clock
from parity.definitions import DataSource, FeatureView, PushSource
from parity.errors import RetrievalError
from parity.hooks import HookSet
from parity.ingest.online import write_view
from parity.ingest.rows import as_table, conform, log_table
from parity.offline.base import OfflineEngine
from parity.offline.log import append, log_dir
from parity.online.base import OnlineStore, OnlineView
from parity.query.refs import entity_keys
from parity.registry.catalog import Catalog
from parity.registry.registry import Registry

__all__ = [
    "PUSH_TARGETS",
    "WriteContext",
    "delete_entities",
    "ingest",
    "push",
    "write_to_online_store",
]

Target = Literal["online", "offline", "online_and_offline"]
PUSH_TARGETS: tuple[Target, ...] = ("online", "offline", "online_and_offline")


@dataclass(frozen=True)
class WriteContext:
    """What a write reads and writes: one catalog (registry revision) and the stores."""

    project: str
    catalog: Catalog
    online: Callable[[], OnlineStore]
    offline: Callable[[], OfflineEngine]
    registry: Callable[[], Registry]
    offline_log: Path
    clock: Clock
    hooks: HookSet

    def observed(
        self,
        kind: str,
        target: str,
        views: Sequence[str],
        rows: int | None,
        data: Any,
        write: Callable[[], tuple[int, int]],
    ) -> tuple[int, int]:
        """``write()`` -> (rows, stored) between the ``before_write``/``after_write`` hooks."""
        return self.hooks.around(
            "write",
            write,
            lambda done: (
                {"rows": rows, "stored": None}
                if done is None
                else {"rows": done[0], "stored": done[1]}
            ),
            project=self.project,
            kind=kind,
            target=target,
            views=tuple(views),
            rows=rows,
            data=data,
        )


def ingest(
    ctx: WriteContext,
    source: DataSource,
    views: Sequence[FeatureView],
    df: Any,
    *,
    to: Target = "online",
    kind: str = "push",
) -> int:
    """Rows of ``source`` to ``views``: conform, offline log (unless ``to="online"``), then
    online (unless ``to="offline"``). Returns the number of rows accepted."""
    _check_target(to, kind)
    rows = conform(as_table(df), views, source, ctx.catalog, label=f"{kind} to {source.name!r}")

    def write() -> tuple[int, int]:
        stored = 0
        if to != "online":
            append(log_dir(ctx.offline_log, source.name), log_table(rows, source))
        if to != "offline":
            now_us = ctx.clock.now_us()
            for fv in views:
                if fv.online:
                    stored += write_view(
                        fv, rows, catalog=ctx.catalog, online=ctx.online(), now_us=now_us
                    )
        return rows.num_rows, stored

    names = [v.name for v in views]
    return ctx.observed(kind, source.name, names, rows.num_rows, rows.table, write)[0]


def _check_target(to: str, kind: str) -> None:
    if to not in PUSH_TARGETS:
        raise RetrievalError(
            f"{kind}: to must be 'online', 'offline' or 'online_and_offline', not {to!r}"
        )


def push(ctx: WriteContext, push_source_name: str, df: Any, to: Target = "online") -> int:
    """Rows to the views fed by a push source; see ``ingest``."""
    _check_target(to, "push")
    source = ctx.catalog.source(push_source_name)
    if not isinstance(source, PushSource):
        raise RetrievalError(
            f"source {push_source_name!r} is a {source.source_type} source, not a push source"
        )
    views = [v for v in ctx.catalog.views() if v.source_name == source.name]
    return ingest(ctx, source, views, df, to=to, kind="push")


def write_to_online_store(ctx: WriteContext, view_name: str, df: Any) -> int:
    """Rows of one view straight to the online store; returns the records stored."""
    fv = ctx.catalog.view(view_name)
    rows = conform(
        as_table(df), [fv], ctx.catalog.source_of(fv), ctx.catalog, label=f"rows for {fv.name!r}"
    )

    def write() -> tuple[int, int]:
        now_us = ctx.clock.now_us()
        return rows.num_rows, write_view(
            fv, rows, catalog=ctx.catalog, online=ctx.online(), now_us=now_us
        )

    return ctx.observed("write", fv.name, [fv.name], rows.num_rows, rows.table, write)[1]


def delete_entities(ctx: WriteContext, view_or_entity: str, keys: Sequence[Any]) -> int:
    """Remove the online values of these entities; returns how many records existed.

    ``keys``: key values (one join key) or dicts of join-key values. An entity name deletes
    from every online view keyed by exactly that entity.
    """
    catalog = ctx.catalog
    if catalog.has("feature_view", view_or_entity):
        views = [catalog.view(view_or_entity)]
    else:
        entity = catalog.entity(view_or_entity)
        views = [v for v in catalog.views() if v.entity_names == [entity.name]]
    plans = []
    for fv in views:
        ov = OnlineView.of(fv, catalog.join_keys_of(fv))
        plans.append((ov, entity_keys(keys, ov.join_keys)))

    def delete() -> tuple[int, int]:
        return len(keys), sum(ctx.online().delete(ov, encoded) for ov, encoded in plans)

    return ctx.observed("delete", view_or_entity, [v.name for v in views], len(keys), None, delete)[
        1
    ]
