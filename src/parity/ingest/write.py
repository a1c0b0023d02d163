"""The one write path: rows are conformed, appended to the offline log when asked, then
written online (values, or events for aggregated views).

``push``, ``write_to_online_store`` and (through ``ingest``) stream consumers all come here;
``parity.ingest.materialize`` writes what the offline engine computed through the same
online write. Everything a write needs is in its ``WriteContext`` (the catalog, the stores,
the clock, the hooks), so nothing here reaches back into the facade.

Order, for every batch: every row is checked before anything is written (a bad row is
named, and nothing of the batch is written), and so is every aggregated view's integer sums
against what is stored; ``before_write`` hooks may refuse; the offline append (durable: one
fsynced file per batch) happens before any online write, so an accepted offline push
survives a crash in the online write.

A push to ``online_and_offline`` whose online write fails raises ``PartialWriteError``: the
offline log holds the rows, and the error says which views were written online. Every push
has a push id (the caller's, or a fresh one): a retry with the same id appends nothing twice
to the offline log and writes online only the views that did not land.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import pyarrow.compute as pc

from parity.clock import Clock
from parity.definitions import DataSource, FeatureView, PushSource
from parity.errors import PartialWriteError, RetrievalError
from parity.hooks import HookSet
from parity.ingest.online import Encoder, check_view, plain_encoder, write_view
from parity.ingest.rows import ConformedRows, IngestError, as_table, conform, log_table
from parity.offline import log
from parity.offline.base import OfflineEngine
from parity.online.base import OnlineStore, OnlineView
from parity.online.reader import check_key_types
from parity.query.refs import entity_keys
from parity.registry.catalog import Catalog
from parity.registry.registry import Registry

__all__ = [
    "PUSH_TARGETS",
    "Done",
    "WriteContext",
    "Written",
    "delete_entities",
    "ingest",
    "push",
    "write_to_online_store",
]

LogSealer = Callable[[Catalog, DataSource, pa.Table, Path], pa.Table]
"""(catalog, source, one log file's table, its folder) -> the table to write."""
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
    seal_log: LogSealer | None = None
    """Seals encrypted columns of a new offline-log file (``parity.governance.sealing``)."""
    encode: Encoder = plain_encoder
    """Rows to online records (sealing ``encrypt=True`` features: ``governance.sealing``)."""

    def observed(
        self,
        kind: str,
        target: str,
        views: Sequence[str],
        rows: int | None,
        data: Any,
        write: Callable[[], Done],
        *,
        to: str = "online",
    ) -> Done:
        """``write()`` -> (rows, stored, newest event µs) between the ``before_write`` and
        ``after_write`` hooks."""
        return self.hooks.around(
            "write",
            write,
            lambda done: (
                {"rows": rows, "stored": None, "newest_event_us": None}
                if done is None
                else {"rows": done[0], "stored": done[1], "newest_event_us": done[2]}
            ),
            project=self.project,
            kind=kind,
            target=target,
            views=tuple(views),
            rows=rows,
            data=data,
            to=to,
            catalog=self.catalog,
        )


Done = tuple[int, int, int | None]
"""What a write did: rows accepted, online records stored, the newest event time written
(µs since the epoch; None when nothing was)."""


class Written(int):
    """The number of rows a write accepted (an ``int``), with what else the caller should
    know: the input columns no view reads (``ignored_columns``, not written anywhere), the
    push id and whether the push had been written before (a retry: ``replayed``)."""

    ignored_columns: tuple[str, ...]
    push_id: str | None
    replayed: bool

    def __new__(
        cls,
        rows: int,
        *,
        ignored_columns: Sequence[str] = (),
        push_id: str | None = None,
        replayed: bool = False,
    ) -> Written:
        out = super().__new__(cls, rows)
        out.ignored_columns = tuple(ignored_columns)
        out.push_id = push_id
        out.replayed = replayed
        return out


def ingest(
    ctx: WriteContext,
    source: DataSource,
    views: Sequence[FeatureView],
    df: Any,
    *,
    to: Target = "online",
    kind: str = "push",
    push_id: str | None = None,
    message_ids: pa.Array | None = None,
) -> Written:
    """Rows of ``source`` to ``views``: conform, offline log (unless ``to="online"``), then
    online (unless ``to="offline"``). Returns the number of rows accepted.

    ``push_id``: names this push; a retry with the same id appends nothing twice to the
    offline log and writes online only the views that did not land (see ``PartialWriteError``).
    ``message_ids``: each row's broker identity, for rows read from a stream (kept in the
    offline log; aggregated views count an event once by it when the source declares no
    ``event_id_field``).
    """
    _check_target(to, kind)
    label = f"{kind} to {source.name!r}"
    if push_id is not None and (type(push_id) is not str or not log.PUSH_ID.fullmatch(push_id)):
        raise IngestError(
            f"{label}: push_id {push_id!r} must be 1 to 128 letters, digits, '_', '.' or '-'"
        )
    rows = conform(as_table(df), views, source, ctx.catalog, label=label, message_ids=message_ids)
    online_views = [v for v in views if v.online] if to != "offline" else []
    folder = log.log_dir(ctx.offline_log, source.name)
    pid = push_id or log.new_push_id()
    replayed = False
    done: list[str] = []
    if to != "online":
        digest = _digest(rows)
        logged = log.logged_digest(folder, pid) if push_id else None
        if logged is not None and logged != digest:
            raise IngestError(
                f"{label}: push_id {pid!r} was used before for other rows; use a new push_id "
                "for new rows (the same id is for retrying the same rows)"
            )
        if logged is not None:  # a retry: the log has the rows; online, what did not land
            replayed = True
            pending = log.pending_views(folder, pid)
            done = pending if pending is not None else [v.name for v in online_views]
    now_us = ctx.clock.now_us()
    todo = [v for v in online_views if v.name not in done]
    for i, fv in enumerate(todo):  # sums checked before anything is written anywhere
        if to != "online" or i > 0:
            check_view(fv, rows, catalog=ctx.catalog, online=ctx.online(), now_us=now_us)

    def write() -> Done:
        stored = 0
        if to != "online" and not replayed:
            if online_views:
                log.set_pending(_ensure(folder), pid, [])
            table = log_table(rows, source)
            if ctx.seal_log is not None:
                table = ctx.seal_log(ctx.catalog, source, table, folder)
            log.append(folder, table, pid, _digest(rows))
        for fv in todo:
            try:
                stored += write_view(
                    fv,
                    rows,
                    catalog=ctx.catalog,
                    online=ctx.online(),
                    now_us=now_us,
                    encode=ctx.encode,
                )
            except Exception as exc:
                if to == "online":
                    raise
                raise _partial(label, pid, rows.num_rows, done, online_views, exc) from exc
            done.append(fv.name)
            if to != "online" and len(done) < len(online_views):
                log.set_pending(folder, pid, done)
        if to != "online" and online_views:
            log.set_pending(folder, pid, None)
        return rows.num_rows, stored, _newest(rows)

    names = [v.name for v in views]
    accepted = ctx.observed(kind, source.name, names, rows.num_rows, rows.table, write, to=to)[0]
    return Written(accepted, ignored_columns=rows.ignored, push_id=pid, replayed=replayed)


def _newest(rows: ConformedRows) -> int | None:
    newest = pc.max(rows.event_us).as_py()
    return None if newest is None else int(newest)


def _ensure(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _digest(rows: ConformedRows) -> str:
    """A digest of the rows as given (created times stamped by Parity left out)."""
    h = hashlib.sha256()
    table = rows.table.append_column("__event_us", rows.event_us)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    h.update(sink.getvalue().to_pybytes())
    return h.hexdigest()


def _partial(
    label: str,
    pid: str,
    n: int,
    done: list[str],
    views: Sequence[FeatureView],
    exc: BaseException,
) -> PartialWriteError:
    failed = [v.name for v in views if v.name not in done]
    written = f"; written online: {done}" if done else ""
    return PartialWriteError(
        f"{label}: the offline log holds the {n} row(s) of push {pid!r}, but the online write "
        f"of view(s) {failed} failed{written}: {exc}. Retry the same push with "
        f"push_id={pid!r}: it appends nothing twice offline and writes online what did not land",
        push_id=pid,
        offline_rows=n,
        online_views_written=done,
        online_views_failed=failed,
    )


def _check_target(to: str, kind: str) -> None:
    if to not in PUSH_TARGETS:
        raise RetrievalError(
            f"{kind}: to must be 'online', 'offline' or 'online_and_offline', not {to!r}"
        )


def push(
    ctx: WriteContext,
    push_source_name: str,
    df: Any,
    to: Target = "online",
    push_id: str | None = None,
) -> Written:
    """Rows to the views fed by a push source; see ``ingest``."""
    _check_target(to, "push")
    source = ctx.catalog.source(push_source_name)
    if not isinstance(source, PushSource):
        raise RetrievalError(
            f"source {push_source_name!r} is a {source.source_type} source, not a push source"
        )
    views = [v for v in ctx.catalog.views() if v.source_name == source.name]
    return ingest(ctx, source, views, df, to=to, kind="push", push_id=push_id)


def write_to_online_store(ctx: WriteContext, view_name: str, df: Any) -> int:
    """Rows of one view straight to the online store; returns the records stored."""
    fv = ctx.catalog.view(view_name)
    rows = conform(
        as_table(df), [fv], ctx.catalog.source_of(fv), ctx.catalog, label=f"rows for {fv.name!r}"
    )

    def write() -> Done:
        now_us = ctx.clock.now_us()
        stored = write_view(
            fv, rows, catalog=ctx.catalog, online=ctx.online(), now_us=now_us, encode=ctx.encode
        )
        return rows.num_rows, stored, _newest(rows)

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
        types = {k: e.dtype for e in map(catalog.entity, fv.entity_names) for k in e.join_keys}
        cols = {j: [k.get(j) if isinstance(k, Mapping) else k for k in keys] for j in ov.join_keys}
        check_key_types(cols, types, where="keys")
        plans.append((ov, entity_keys(keys, ov.join_keys)))

    def delete() -> Done:
        return len(keys), sum(ctx.online().delete(ov, encoded) for ov, encoded in plans), None

    return ctx.observed("delete", view_or_entity, [v.name for v in views], len(keys), None, delete)[
        1
    ]
