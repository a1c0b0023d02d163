"""The HTTP face of a feature repo: a plain ASGI app (no framework on the hot path).

::

    POST /get-online-features     features or feature_service + entities -> values, statuses, times
    POST /push                    rows to a push source's views (online, offline or both)
    POST /write-to-online-store   rows of one feature view, online (the incumbent SDK's body)
    POST /materialize             start_ts, end_ts | disable_event_timestamp, feature_views?
    POST /materialize-incremental end_date, feature_views?      (both: ?async=true -> 202 + id)
    GET  /materializations  /materializations/{id}             background jobs and their state
    GET  /entities /feature-views /feature-services /feature-views/{name}   specs (read-only)
    GET  /health   alive          GET /ready   warmed up; registry and online store answer
    GET  /metrics  Prometheus     GET /openapi.json    GET /docs  its page    GET /  an index

Every answer carries ``X-Request-Id`` (the caller's, when it sent a sane one). An error is
``{"error": {"code", "message", "request_id"}}`` (codes in ``parity.server.errors``), or in
the incumbent's shape (``parity.server.feast_errors``) when the request's
``X-Parity-Errors`` header or the server's ``errors`` setting says ``feast``; either way
``X-Parity-Error-Code`` names the code. 5xx answers are logged with their traceback and
request id, 4xx ones in one line.
The store is built in the lifespan startup, so each worker process builds its own; then
it is warmed (``parity.server.warmup``) while ``/health`` already answers and ``/ready``
says 503 ``not_ready`` until warm. ``/ready`` answers within ``ready_timeout_seconds``
whatever the stores do. A read or push of more than ``max_entity_rows`` rows is refused
(413 ``too_many_entities``) before any work.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import re
import sys
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from parity.governance.audit import collect as collect_audit_commits
from parity.governance.context import acting_as, carry
from parity.lifecycle.context import _DRAFTS, collect_notices
from parity.server.auth import OPEN_PATHS, SERVER_ACTOR, ServerAuth
from parity.server.docs import DOCS_HTML, index
from parity.server.errors import ApiError, from_exception
from parity.server.feast_errors import ERROR_SHAPES, feast_error_body
from parity.server.handlers import (
    DEFAULT_LARGE_READ_ROWS,
    DEFAULT_MAX_ENTITY_ROWS,
    Handlers,
    ReadLimits,
    answer_json,
    check_push_rows,
    dumps,
    loads,
)
from parity.server.metrics import Metrics
from parity.server.openapi import OpenApiDocument
from parity.server.serving import Serving
from parity.server.warmup import warm_blocking, warm_on_loop
from parity.server.writes import Reply, Writes

log = logging.getLogger("parity.server")

JSON = b"application/json"
HTML = b"text/html; charset=utf-8"
DEFAULT_MAX_BODY = 4 * 1024 * 1024
_VIEW_PREFIX = "/feature-views/"
_JOB_PREFIX = "/materializations/"
_SANE_ID = re.compile(rb"^[A-Za-z0-9._:-]{1,128}$")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


DEFAULT_READY_TIMEOUT = 0.8
"""Seconds ``/ready`` waits for the stores: under a probe's usual 1 s timeout."""


_YES, _NO = (b"true", b"1", b"yes"), (b"false", b"0", b"no")


def _include_drafts(value: bytes) -> None:
    """``X-Parity-Include-Drafts``: true asks for drafts for this request (its task only)."""
    if value in _YES:
        _DRAFTS.set(True)
    elif value not in _NO:
        raise ApiError(
            "invalid_request", "X-Parity-Include-Drafts must be true or false (or 1/0, yes/no)"
        )


@dataclass(frozen=True)
class AppSettings:
    """What the app needs besides its store: ``max_body_bytes`` bounds a request body,
    ``max_entity_rows`` the rows of one read or push; reads of ``large_read_rows`` rows or
    more run on the reader thread; ``/ready`` waits ``ready_timeout_seconds`` at most for
    the stores; ``warm_up``: warm before ``/ready`` says 200 (off: ready at once)."""

    max_body_bytes: int = DEFAULT_MAX_BODY
    max_entity_rows: int = DEFAULT_MAX_ENTITY_ROWS
    large_read_rows: int = DEFAULT_LARGE_READ_ROWS
    ready_timeout_seconds: float = DEFAULT_READY_TIMEOUT
    warm_up: bool = True
    errors: str | None = None
    """The error shape by default, ``parity`` or ``feast``; None: parity.yaml's
    ``server.errors`` (``parity`` when absent). A request's ``X-Parity-Errors`` overrides."""


class _RequestIds:
    """Unique ids, cheaply: a random per-process prefix and a counter."""

    def __init__(self) -> None:
        self.prefix = os.urandom(4).hex()
        self.counter = itertools.count(1)

    def next(self) -> str:
        return f"{self.prefix}-{next(self.counter):x}"


class ParityApp:
    """The ASGI app. ``store_factory`` is called at startup (in the worker process)."""

    def __init__(
        self,
        store_factory: Callable[[Metrics], Serving],
        settings: AppSettings | None = None,
    ):
        self.settings = settings or AppSettings()
        self.metrics = Metrics()
        self._factory = store_factory
        self._ids = _RequestIds()
        self.serving: Serving | None = None
        self.handlers: Handlers | None = None
        self.writes: Writes | None = None
        self.feast_errors = False
        self._writer: ThreadPoolExecutor | None = None
        self._reader: ThreadPoolExecutor | None = None
        self._warming: asyncio.Task[None] | None = None
        self.warm = False
        self.in_flight = 0  # requests being answered (large reads yield to the others)
        self._get: dict[str, Callable[[], Any]] = {}
        self._post: dict[str, Callable[[bytes], Any]] = {}
        self._post_query: dict[str, Callable[[bytes, bytes], Any]] = {}
        self.monitor: Any = None  # the monitor's background thread (monitoring.enabled)
        self.auth: ServerAuth | None = None  # auth.enabled: requests need a token
        self.audited = False  # answers wait for their audit records' commits

    # -- lifespan -----------------------------------------------------------------------------
    def startup(self) -> None:
        settings = self.settings
        serving = self.serving = self._factory(self.metrics)
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="parity-writer")
        self._reader = ThreadPoolExecutor(1, thread_name_prefix="parity-reader")
        shape = settings.errors or serving.store.config.server.errors
        if shape not in ERROR_SHAPES:
            raise ValueError(f"errors must be one of {list(ERROR_SHAPES)}, not {shape!r}")
        self.feast_errors = shape == "feast"
        if serving.store.config.auth.enabled:
            self.auth = ServerAuth(serving.store)
        self.audited = False  # whether answers wait for their audit records' commits
        if serving.store.config.audit_enabled:
            try:  # records are spooled: durable before the answer, shipped in bulk
                # shipped by a child process: no hashing, JSON or SQL on this one's GIL
                serving.store.governance.audit.start_spool(shipper="process")
            except OSError as exc:
                log.warning("the audit spool cannot be made (%s): each record is committed", exc)
                self.audited = True
        w = self.writes = Writes(serving.store, self._writer)
        h = self.handlers = Handlers(
            serving,
            reader=self._reader,
            limits=ReadLimits(settings.max_entity_rows, settings.large_read_rows),
            on_large_read=self.metrics.large_read,
            in_flight=lambda: self.in_flight,
        )
        self._get = {
            "/health": self._health,
            "/ready": self._ready,
            "/metrics": self._metrics,
            "/openapi.json": OpenApiDocument(
                self.serving.store.catalog, auth=self.auth is not None
            ),
            "/entities": h.entities,
            "/feature-views": h.feature_views,
            "/feature-services": h.feature_services,
            "/materializations": w.materializations,
            "/": lambda: index(serving.store.project),
            "/docs": lambda: DOCS_HTML,
        }
        self._post = {
            "/get-online-features": h.online_features,
            "/push": self._push,
            "/write-to-online-store": self._write_rows,
        }
        self._post_query = {
            "/materialize": w.materialize,
            "/materialize-incremental": w.materialize_incremental,
        }
        self.metrics.gauges.update(
            parity_server_warm=("1 once this worker is warm", lambda: float(self.warm)),
            parity_server_plans_cached=("Read plans cached", serving.plans_cached),
            parity_server_modules_loaded=("Python modules loaded", lambda: len(sys.modules)),
        )
        if serving.store.config.monitoring.enabled:
            self.monitor = serving.store.monitor_runner().start()  # its gauges join /metrics
        served = serving.serving_log
        if served is not None:
            self.metrics.gauges["parity_serving_log_dropped_rows"] = (
                "Serving log rows dropped because its writer fell behind",
                lambda: float(served.dropped_rows),
            )
        cache = serving.cache_settings
        log.info(
            "serving project %r from %s; online cache %s",
            serving.store.project,
            serving.store.repo_path,
            "off" if cache is None else f"ttl {cache.ttl_seconds}s, {cache.max_entries} entries",
        )

    async def warm_up(self) -> None:
        """Warm the worker (``parity.server.warmup``), then let ``/ready`` say 200. A failure
        is logged; readiness then rests on the stores' checks alone."""
        assert self.serving is not None
        started = time.perf_counter()
        try:
            if self.settings.warm_up:
                from parity.discovery.usage import uncounted

                loop = asyncio.get_running_loop()
                # sample reads, not a consumer's: no usage counted
                with acting_as(SERVER_ACTOR if self.auth is not None else None), uncounted():
                    reads = await loop.run_in_executor(
                        self._reader, carry(warm_blocking), self.serving, answer_json
                    )
                    await warm_on_loop(self.serving, reads)
        except Exception as exc:
            log.warning("warm-up failed (%s); the first requests will pay for it", exc)
        if self.serving.serving_log is not None:  # what it serves from now on is logged
            self.serving.serving_log.resume()
        self.warm = True
        log.info("warm in %.0f ms", (time.perf_counter() - started) * 1e3)

    def shutdown(self) -> None:
        if self._warming is not None:
            self._warming.cancel()
        if self.monitor is not None:
            self.monitor.stop()
        if self._reader is not None:
            self._reader.shutdown(wait=True)
        if self._writer is not None:
            self._writer.shutdown(wait=True)  # accepted pushes and materializations finish
        if self.writes is not None:
            self.writes.close()
        if self.serving is not None:
            self.serving.close()

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    self.startup()
                except Exception as exc:
                    log.exception("startup failed")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                self._warming = asyncio.get_running_loop().create_task(self.warm_up())
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    # -- requests -----------------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        # counted without a try/finally (no extra frame on the hot path): a send that raises
        # leaves it one too high, which only makes large reads yield more
        self.in_flight += 1
        started = time.perf_counter()
        method: str = scope["method"]
        path: str = scope["path"]
        request_id = None
        length = None
        shape = None
        authorization = purpose = acting = drafts = None
        for name, value in scope["headers"]:
            if name == b"x-request-id" and _SANE_ID.match(value):
                request_id = value.decode()
            elif name == b"content-length":
                length = value
            elif name == b"x-parity-errors":
                shape = value
            elif name == b"authorization":
                authorization = value
            elif name == b"x-parity-purpose":
                purpose = value
            elif name == b"x-parity-include-drafts":
                drafts = value.strip().lower()
        if request_id is None:
            request_id = self._ids.next()
        endpoint = path
        status = 200
        content_type = JSON
        headers = None
        audit = collect_audit_commits() if self.audited else None
        notices = collect_notices()
        try:
            if drafts is not None:
                _include_drafts(drafts)
            if self.auth is not None and path not in OPEN_PATHS:
                acting = self.auth.enter(authorization, purpose)
            if method == "POST" and path in self._post:
                body = await self._body(receive, length)
                result = self._post[path](body)
                if not isinstance(result, bytes):
                    result = await result
            elif method in ("GET", "HEAD") and path in self._get:
                result = self._get[path]()
                if not isinstance(result, bytes):
                    result = await result
                if path == "/metrics":
                    content_type = self.metrics.content_type.encode()
                elif path == "/docs":
                    content_type = HTML
            elif method == "POST" and path in self._post_query:
                body = await self._body(receive, length)
                result = await self._post_query[path](body, scope.get("query_string", b""))
                if type(result) is Reply:
                    status, headers, result = result.status, result.headers, result.body
            elif path.startswith(_VIEW_PREFIX):
                endpoint = "/feature-views/{name}"
                if method not in ("GET", "HEAD"):
                    raise ApiError("method_not_allowed", f"{method} is not allowed on {path}")
                assert self.handlers is not None
                result = self.handlers.feature_view(path[len(_VIEW_PREFIX) :])
            elif path.startswith(_JOB_PREFIX):
                endpoint = "/materializations/{id}"
                if method not in ("GET", "HEAD"):
                    raise ApiError("method_not_allowed", f"{method} is not allowed on {path}")
                assert self.writes is not None
                result = await self.writes.materialization(path[len(_JOB_PREFIX) :])
            elif path in self._get or path in self._post or path in self._post_query:
                raise ApiError("method_not_allowed", f"{method} is not allowed on {path}")
            else:
                endpoint = "other"
                raise ApiError("not_found", f"no endpoint {method} {path}")
            if audit is not None and audit.batches:
                await audit.settle()  # the loop serves others meanwhile; 503 if it failed
        except Exception as exc:
            if audit is not None:
                await audit.settle(raise_errors=False)
            err = from_exception(exc)
            status = err.status
            content_type = JSON
            feast = self.feast_errors if shape is None else shape.lower() == b"feast"
            if feast:
                result = feast_error_body(err.code, err.message, request_id)
            else:
                result = err.body(request_id)
            headers = ((b"x-parity-error-code", err.code.encode()),)
            if status == 401:
                headers += ((b"www-authenticate", b'Bearer realm="parity"'),)
            self.metrics.error(endpoint, err.code)
            if status >= 500:
                log.error(
                    "request_id=%s %s %s -> %d %s: %s",
                    request_id,
                    method,
                    path,
                    status,
                    err.code,
                    exc,
                    exc_info=exc if err.code == "internal_error" else None,
                )
            else:
                log.info(
                    "request_id=%s %s %s -> %d %s: %s",
                    request_id,
                    method,
                    path,
                    status,
                    err.code,
                    err.message,
                )
        response_headers = [
            (b"content-type", content_type),
            (b"content-length", str(len(result)).encode()),
            (b"x-request-id", request_id.encode()),
        ]
        if headers:
            response_headers.extend(headers)
        if notices:
            response_headers.append((b"deprecation", b"true"))
            response_headers.append((b"x-parity-deprecated", "; ".join(notices).encode()))
            self.metrics.deprecated(notices)
        if acting is not None:
            ServerAuth.exit(acting)
        await send({"type": "http.response.start", "status": status, "headers": response_headers})
        await send({"type": "http.response.body", "body": b"" if method == "HEAD" else result})
        self.metrics.observe(endpoint, method, status, time.perf_counter() - started)
        self.in_flight -= 1

    async def _body(self, receive: Receive, length: bytes | None) -> bytes:
        limit = self.settings.max_body_bytes
        if length is not None and length.isdigit() and int(length) > limit:
            raise ApiError(
                "body_too_large", f"the body is {int(length)} bytes; the limit is {limit}"
            )
        message = await receive()
        body: bytes = message.get("body", b"")
        if not message.get("more_body"):
            if len(body) > limit:
                raise ApiError("body_too_large", f"the body exceeds the limit of {limit} bytes")
            return body
        chunks = [body]
        size = len(body)
        while message.get("more_body"):
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ApiError("invalid_request", "the client went away before the body ended")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise ApiError("body_too_large", f"the body exceeds the limit of {limit} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    def _health(self) -> bytes:
        return b'{"status":"ok"}'

    def _metrics(self) -> bytes:
        if self.monitor is not None:
            return self.metrics.render() + self.monitor.metrics.render()
        return self.metrics.render()

    def _push(self, body: bytes) -> Any:
        """``/push``, its rows counted first (413 past ``max_entity_rows``, before any work)."""
        assert self.writes is not None
        self._count_rows(body)
        return self.writes.push(body)

    def _write_rows(self, body: bytes) -> Any:
        """``/write-to-online-store``, its rows counted first as a push's are."""
        assert self.writes is not None
        self._count_rows(body)
        return self.writes.write_to_online_store(body)

    def _count_rows(self, body: bytes) -> None:
        req = loads(body)
        if type(req) is dict and type(req.get("df")) is dict:
            check_push_rows(req["df"], self.settings.max_entity_rows)

    async def _ready(self) -> bytes:
        """200 once warm and both stores answer; else 503 ``not_ready`` saying what is not."""
        assert self.handlers is not None
        ok, detail = await self.handlers.ready(self.settings.ready_timeout_seconds)
        problems = [f"{k} {v}" for k, v in detail.items() if k != "registry_revision"]
        if not self.warm:
            problems.insert(0, "warming up (plans, connections, on-demand functions)")
        if problems or not ok:
            raise ApiError("not_ready", "not ready: " + "; ".join(problems))
        return dumps({"status": "ready", **detail})


def create_app(
    repo_path: str | Path = ".",
    *,
    settings: AppSettings | None = None,
    store_factory: Callable[[Metrics], Serving] | None = None,
    **store_kwargs: Any,
) -> ParityApp:
    """The ASGI app for a repo; ``store_kwargs`` go to ``Serving`` (``config``, ``cache``)."""

    def factory(metrics: Metrics) -> Serving:
        return Serving(repo_path, on_read=metrics.read, on_cache=metrics.cache, **store_kwargs)

    return ParityApp(store_factory or factory, settings)
