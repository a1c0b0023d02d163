"""The writing endpoints: ``/push``, ``/write-to-online-store``, ``/materialize``,
``/materialize-incremental`` and the background materializations they start.

Every write runs on the worker's one writer thread, through Parity's one write path
(``FeatureStore.push`` / ``write_to_online_store`` / ``materialize``). JSON rows are checked
the same way on both row endpoints before they reach it: integer columns hold integers,
time columns ISO 8601 text (naive = UTC); a bad value is ``invalid_rows`` naming its row and
column, and nothing of the request is written.

``/write-to-online-store`` takes the body the incumbent's SDK sends from
``RemoteOnlineStore.online_write_batch`` (its ``push``, ``write_to_online_store`` and
``materialize`` all send it): feature names as columns, and the times as ``event_timestamp``
and ``created`` whatever the view's source calls them (the source's own names are taken
too). ``allow_registry_cache`` and ``transform_on_write`` are accepted and change nothing:
the catalog is re-checked every ``registry.cache_ttl_seconds``, and Parity has no write-time
transformations.

``?async=true`` on either materialize endpoint answers 202 with a job id at once and runs the
job in the background (``parity.server.jobs``); ``?force=true`` runs it even while another
job materializes one of its views (409 ``materialization_running`` otherwise).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any, TypeVar
from urllib.parse import parse_qs

from parity.clock import MIN_TIME, iso_time
from parity.definitions import DataSource, FeatureView, PushSource
from parity.errors import ObjectNotFoundError
from parity.governance.context import carry
from parity.ingest import window_starts
from parity.ingest.materialize import online_views
from parity.registry.catalog import Catalog
from parity.registry.jobs import JobConflictError
from parity.server.errors import ApiError
from parity.server.handlers import PUSH_TARGETS, dumps, json_object, parse_time
from parity.server.jobs import JobRunner, view_summary
from parity.store import FeatureStore
from parity.types import Timestamp

T = TypeVar("T")

FEAST_EVENT_TIME = "event_timestamp"
FEAST_CREATED_TIME = "created"
"""The time columns the incumbent's SDK always sends to ``/write-to-online-store``."""
RECENT_JOBS = 50


@dataclass(frozen=True)
class Reply:
    """An answer other than a plain 200: its status and extra headers."""

    body: bytes
    status: int = 200
    headers: tuple[tuple[bytes, bytes], ...] = field(default=())


class Writes:
    """The writing endpoints over the server's store, on its writer thread."""

    def __init__(self, store: FeatureStore, writer: ThreadPoolExecutor):
        self.store = store
        self.writer = writer
        self.jobs = JobRunner(store, writer)

    async def _on_writer(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.writer, carry(fn), *args)

    def close(self) -> None:
        self.jobs.close()

    # -- POST /push ------------------------------------------------------------------------
    async def push(self, body: bytes) -> bytes:
        req = json_object(body)
        name = req.get("push_source_name")
        to = req.get("to", "online")
        push_id = req.get("push_id")
        if push_id is not None and type(push_id) is not str:
            raise ApiError("invalid_request", "push_id must be a string")
        if type(name) is not str or not name:
            raise ApiError("invalid_request", "push_source_name must be a source's name")
        df = _check_df(req.get("df"))
        if to not in PUSH_TARGETS:
            raise ApiError("invalid_request", f"to must be one of {list(PUSH_TARGETS)}, not {to!r}")
        _flags(req, "allow_registry_cache", "transform_on_write")
        catalog = self.store.catalog()
        try:
            source = catalog.source(name)
        except ObjectNotFoundError as err:
            raise ApiError("unknown_push_source", str(err)) from None
        if not isinstance(source, PushSource):
            raise ApiError("not_a_push_source", f"source {name!r} is a {source.source_type} source")
        views = [v for v in catalog.views() if v.source_name == name]
        df = _typed_rows(df, source, views, catalog)
        rows = await self._on_writer(partial(self.store.push, push_id=push_id), name, df, to)
        return dumps(
            {
                "push_source_name": name,
                "to": to,
                "rows": int(rows),
                "push_id": getattr(rows, "push_id", push_id),
                "replayed": getattr(rows, "replayed", False),
                "ignored_columns": list(getattr(rows, "ignored_columns", ())),
            }
        )

    # -- POST /write-to-online-store ---------------------------------------------------------
    async def write_to_online_store(self, body: bytes) -> bytes:
        """Rows of one feature view straight to the online store (the incumbent's body)."""
        req = json_object(body)
        name = req.get("feature_view_name")
        if type(name) is not str or not name:
            raise ApiError("invalid_request", "feature_view_name must be a feature view's name")
        df = _check_df(req.get("df"))
        _flags(req, "allow_registry_cache", "transform_on_write")
        catalog = self.store.catalog()
        if catalog.has("on_demand_feature_view", name) and not catalog.has("feature_view", name):
            raise ApiError(
                "view_not_writable",
                f"{name!r} is an on-demand feature view: its values are computed from its "
                "inputs at read time and nothing is stored for it; write to the feature "
                "views it reads instead",
            )
        view = catalog.view(name)  # unknown_feature_view
        source = catalog.source_of(view)
        df = _feast_times(dict(df), source)
        df = _typed_rows(df, source, [view], catalog, epoch_seconds=True)
        used = {*catalog.join_keys_of(view), *view.feature_names, source.timestamp_field}
        if source.created_timestamp_field:
            used.add(source.created_timestamp_field)
        rows = len(next(iter(df.values())))
        stored = await self._on_writer(self.store.write_to_online_store, name, df)
        return dumps(
            {
                "feature_view_name": name,
                "rows": rows,
                "stored": int(stored),
                "ignored_columns": [c for c in df if c not in used],
            }
        )

    # -- POST /materialize, /materialize-incremental ----------------------------------------
    async def materialize(self, body: bytes, query: bytes) -> bytes | Reply:
        """``{"start_ts", "end_ts", "feature_views"?, "disable_event_timestamp"?}``: each
        view's latest value per entity with event time in [start, end]; with
        ``disable_event_timestamp`` everything up to now."""
        req = json_object(body)
        background, force = _query(query)
        views = _view_names(req)
        _no_versions(req)
        _flags(req, "full_feature_names")
        whole = req.get("disable_event_timestamp", False)
        if type(whole) is not bool:
            raise ApiError("invalid_request", "disable_event_timestamp must be true or false")
        if whole:
            start, end = MIN_TIME, datetime.now(UTC)
        else:
            if req.get("start_ts") is None or req.get("end_ts") is None:
                raise ApiError(
                    "invalid_request",
                    "give start_ts and end_ts (ISO 8601), or disable_event_timestamp: true "
                    "to load everything up to now",
                )
            start = parse_time(req["start_ts"], "start_ts")
            end = parse_time(req["end_ts"], "end_ts")
        catalog = self.store.catalog()
        names = list(window_starts(catalog, views, start, end))  # refused here, before any run
        run = partial(self.store.materialize, start, end, names)
        if background:
            request = {"start_ts": _iso(start), "end_ts": _iso(end), "feature_views": names}
            return await self._submit("materialize", names, request, run, force)
        return dumps({"views": view_summary(await self._on_writer(run))})

    async def materialize_incremental(self, body: bytes, query: bytes) -> bytes | Reply:
        """``{"end_date" (or "end_ts"), "feature_views"?}``: each view from where its last
        run ended."""
        req = json_object(body)
        background, force = _query(query)
        end = parse_time(req.get("end_date", req.get("end_ts")), "end_date")
        views = _view_names(req)
        _no_versions(req)
        _flags(req, "full_feature_names")
        run = partial(self.store.materialize_incremental, end, views)
        if background:
            names = [v.name for v in online_views(self.store.catalog(), views)]
            request = {"end_ts": _iso(end), "feature_views": names}
            run = partial(self.store.materialize_incremental, end, names)
            return await self._submit("materialize_incremental", names, request, run, force)
        return dumps({"views": view_summary(await self._on_writer(run))})

    async def _submit(
        self,
        kind: str,
        names: list[str],
        request: dict[str, Any],
        run: Callable[[], Any],
        force: bool,
    ) -> Reply:
        access = self.store.governance.access
        if access.enabled:  # a 403 now, not a job failing in the background
            access.check(self.store.actor, "materialize", [("feature_view", n) for n in names])
        try:
            job = await self.jobs.submit(kind, names, request, run, force=force)
        except JobConflictError as exc:
            raise ApiError(
                "materialization_running", str(exc), feature_views=exc.views, jobs=exc.jobs
            ) from None
        location = f"/materializations/{job.id}"
        body = {
            "status": "accepted",
            "feature_views": names,
            "id": job.id,
            "state": job.state,
            "url": location,
        }
        return Reply(dumps(body), 202, ((b"location", location.encode()),))

    # -- GET /materializations, /materializations/{id} --------------------------------------
    async def materialization(self, job_id: str) -> bytes:
        return dumps((await self.jobs.get(job_id)).to_json())

    async def materializations(self) -> bytes:
        jobs = await self.jobs.recent(RECENT_JOBS)
        return dumps({"materializations": [j.to_json() for j in jobs]})


# -- request pieces ---------------------------------------------------------------------------
def _check_df(df: Any) -> dict[str, Any]:
    if type(df) is not dict or not df or any(type(v) is not list for v in df.values()):
        raise ApiError("invalid_request", "df must be an object of column -> list of values")
    return df


def _flags(req: dict[str, Any], *names: str) -> None:
    for name in names:
        if name in req and type(req[name]) is not bool:
            raise ApiError("invalid_request", f"{name} must be true or false")


def _no_versions(req: dict[str, Any]) -> None:
    if req.get("version") is not None:
        raise ApiError(
            "invalid_request",
            "version: Parity keeps one version of each feature view online (its registry "
            "history records the others); leave version out",
        )


def _view_names(req: dict[str, Any]) -> list[str] | None:
    views = req.get("feature_views")
    if views is not None and (type(views) is not list or any(type(v) is not str for v in views)):
        raise ApiError("invalid_request", "feature_views must be a list of view names")
    return views or None


_TRUE = ("true", "1", "yes")
_FALSE = ("false", "0", "no")


def _query(query: bytes) -> tuple[bool, bool]:
    """``async`` and ``force`` from a query string (``true``/``false``, ``1``/``0``)."""
    args = parse_qs(query.decode("latin-1"), keep_blank_values=True) if query else {}
    out = []
    for name in ("async", "force"):
        values = args.get(name, ["false"])
        value = values[-1].lower()
        if value not in _TRUE + _FALSE:
            raise ApiError("invalid_request", f"?{name}= must be true or false, not {value!r}")
        out.append(value in _TRUE)
    return out[0], out[1]


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def _feast_times(df: dict[str, Any], source: DataSource) -> dict[str, Any]:
    """The SDK's ``event_timestamp`` / ``created`` columns under the source's names (a
    column of the source's own name, when sent, is taken as it is)."""
    renames = {FEAST_EVENT_TIME: source.timestamp_field}
    if source.created_timestamp_field:
        renames[FEAST_CREATED_TIME] = source.created_timestamp_field
    for feast_name, own in renames.items():
        if feast_name != own and feast_name in df and own not in df:
            df[own] = df.pop(feast_name)
    return df


def _typed_rows(
    df: dict[str, Any],
    source: DataSource,
    views: list[FeatureView],
    catalog: Catalog,
    *,
    epoch_seconds: bool = False,
) -> dict[str, Any]:
    """Integer columns checked, time columns parsed (``invalid_rows`` naming row and
    column). ``epoch_seconds``: a Timestamp feature may also be integer seconds since the
    epoch (as the incumbent's SDK sends them)."""
    times = {source.timestamp_field, source.created_timestamp_field}
    features: set[str] = set()
    ints: set[str] = set()
    for view in views:
        features.update(f.name for f in view.schema if f.dtype is Timestamp)
        ints.update(f.name for f in view.schema if getattr(f.dtype, "kind", "") == "int")
        for e in view.entity_names:
            ent = catalog.entity(e)
            if getattr(ent.dtype, "kind", "") == "int":
                ints.update(ent.join_keys)
    for col in ints & df.keys():
        integers(df[col], col)
    out = {}
    for col, values in df.items():
        if col in times:
            values = iso_column(values, col)
        elif col in features:
            values = iso_column(values, col, epoch_seconds=epoch_seconds)
        out[col] = values
    return out


def integers(values: list[Any], column: str) -> None:
    """An integer column holds JSON integers (JSON numbers beyond 64 bits parse as floats)."""
    for i, v in enumerate(values):
        if type(v) is float:
            raise ApiError(
                "invalid_rows",
                f"df.{column}[{i}] (row {i}): {v!r} is not an integer that fits Int64 "
                f"(-2**63 to 2**63 - 1); column {column!r} holds integers",
            )


def iso_column(values: list[Any], column: str, *, epoch_seconds: bool = False) -> list[Any]:
    """ISO 8601 strings of a time column as aware datetimes (naive = UTC)."""
    out = []
    for i, v in enumerate(values):
        if isinstance(v, str):
            try:
                v = iso_time(v)
            except ValueError:
                raise ApiError(
                    "invalid_rows", f"df.{column}[{i}] (row {i}): {v!r} is not an ISO 8601 time"
                ) from None
        elif epoch_seconds and type(v) is int:
            try:
                v = datetime.fromtimestamp(v, UTC)
            except (OverflowError, OSError, ValueError):
                raise ApiError(
                    "invalid_rows",
                    f"df.{column}[{i}] (row {i}): {v} seconds since the epoch is not a time",
                ) from None
        elif v is not None:
            raise ApiError(
                "invalid_rows",
                f"df.{column}[{i}] (row {i}): {v!r} is not a time; send ISO 8601 text",
            )
        out.append(v)
    return out
