"""What each endpoint does, between the parsed body and the JSON answer.

``POST /get-online-features`` refuses more than ``max_entity_rows`` entity rows (413
``too_many_entities``) before any work. A read of fewer than ``large_read_rows`` rows runs
on the event loop itself (handing it to a thread would cost more than it saves); its round
trip to the store is awaited where the store allows it (``SupportsAsyncRead``: plain Redis),
else made there and then. A larger read runs whole (checks, read, JSON) on one reader
thread, one at a time, so the loop keeps answering small requests meanwhile. Pushes and
materializations run on one writer thread (one writer at a time, never blocking reads).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import queue
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import numpy as np
import orjson

from parity.clock import iso_time
from parity.errors import ObjectNotFoundError, RequestDataError, RetrievalError
from parity.governance.context import carry
from parity.online.base import OnlineView
from parity.online.encoding import from_micros
from parity.query.plan import plan_features
from parity.server.errors import ApiError, from_exception
from parity.server.serving import Serving

T = TypeVar("T")

STATUS = {
    "present": "PRESENT",
    "missing": "NOT_FOUND",
    "expired": "OUTSIDE_MAX_AGE",
    "invalid": "INVALID",
}
"""Statuses on the wire are Feast's names, which its SDK understands (any other name it reads
as INVALID); a present record whose value is null is ``NULL_VALUE``. The Python API keeps
its own lower-case names (``parity.online.reader``)."""
NULL_VALUE = "NULL_VALUE"
EPOCH_TEXT = "1970-01-01T00:00:00Z"
"""The event time sent for a key column and for a value without a record (never null: the
SDK parses every entry as a time), as the incumbent's server does."""
PUSH_TARGETS = ("online", "offline", "online_and_offline")
_JSON_OPTS = orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC | orjson.OPT_SERIALIZE_NUMPY
_PROBE = OnlineView("__parity_ready__", ("key",), (), None)


def _default(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode()  # as Feast's JSON does
    raise TypeError(f"cannot serialize {type(value).__name__}")


_NAT = np.iinfo(np.int64).min


def iso_times(micros: list[int | None]) -> list[str | None]:
    """µs since the epoch as RFC 3339 UTC text, ``2024-01-01T08:00:00.000000Z``; vectorized
    for many values (building datetimes cost a tenth of a 100-row request)."""
    if len(micros) < 8:
        return [
            None if u is None else from_micros(u).strftime("%Y-%m-%dT%H:%M:%S.%fZ") for u in micros
        ]
    arr = np.array([_NAT if u is None else u for u in micros], dtype=np.int64)
    text = np.datetime_as_string(arr.view("datetime64[us]"), unit="us", timezone="UTC")
    out: list[str | None] = text.tolist()
    if None in micros:
        out = [None if u is None else t for u, t in zip(micros, out, strict=True)]
    return out


def wire_times(micros: list[int | None]) -> list[str]:
    """``iso_times`` with ``EPOCH_TEXT`` where there is no time (no record)."""
    out = iso_times(micros)
    if None in micros:
        return [EPOCH_TEXT if t is None else t for t in out]
    return out  # type: ignore[return-value]


def wire_statuses(statuses: list[str], values: list[Any]) -> list[str]:
    """A feature's statuses by Feast's names: ``NULL_VALUE`` for a present null value."""
    wire = STATUS.__getitem__
    out = list(map(wire, statuses))
    if None in values:
        out = [
            NULL_VALUE if v is None and s == "PRESENT" else s
            for v, s in zip(values, out, strict=True)
        ]
    return out


def dumps(value: Any) -> bytes:
    return orjson.dumps(value, default=_default, option=_JSON_OPTS)


def loads(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ApiError("malformed_json", f"the body is not valid JSON: {exc}") from None


def json_object(body: bytes) -> dict[str, Any]:
    """A request body that must be a JSON object."""
    req = loads(body)
    if type(req) is not dict:
        raise ApiError("invalid_request", "the body must be a JSON object")
    return req


def parse_time(text: Any, what: str) -> datetime:
    """ISO 8601 (naive = UTC) or ``now``."""
    if not isinstance(text, str):
        raise ApiError("invalid_request", f"{what} must be an ISO 8601 string")
    if text.strip().lower() == "now":
        return datetime.now(UTC)
    try:
        return iso_time(text)
    except ValueError:
        raise ApiError(
            "invalid_request", f"{what}: {text!r} is not an ISO 8601 time like 2024-01-31T12:00:00Z"
        ) from None


DEFAULT_MAX_ENTITY_ROWS = 100_000
"""Entity rows one read (or rows one push) may hold: about 0.7 s of one core's work for a
read here, and well past what a serving request needs (batch scoring belongs offline)."""
DEFAULT_LARGE_READ_ROWS = 1_000
"""Reads of at least this many rows run on the reader thread, in pieces of this many rows:
below it a read blocks the loop for a few milliseconds at most, less than a thread hand-off
would add to it."""
YIELD = 2.0
"""While other requests are in flight, a large read waits this many times the time its last
piece took before its next piece (the loop's thread then has the GIL and the CPU to itself):
small reads keep most of the worker, a large one slows down only when there are others."""
LARGE_BODY_BYTES = 64 * 1024
"""A read body this large is parsed on the reader thread too (about 4,000 entity rows)."""


@dataclass(frozen=True)
class ReadLimits:
    """``max_entity_rows``: more rows in one read or push are refused (413
    ``too_many_entities``); ``large_read_rows``: reads this large run off the event loop."""

    max_entity_rows: int = DEFAULT_MAX_ENTITY_ROWS
    large_read_rows: int = DEFAULT_LARGE_READ_ROWS


def check_push_rows(df: dict[str, Any], limit: int) -> None:
    """413 ``too_many_entities`` when a push's columns hold more than ``limit`` rows."""
    rows = max((len(v) for v in df.values() if type(v) is list), default=0)
    if rows > limit:
        raise ApiError(
            "too_many_entities",
            f"the push has {rows} rows; the limit is {limit} per request"
            " (split it into several pushes)",
        )


def answer_parts(resp: Any) -> tuple[list[str], list[dict[str, list[Any]]]]:
    """An ``OnlineResponse`` as the endpoint's feature names and per-column results."""
    columns = resp.to_dict()
    statuses = resp.statuses
    micros = resp.event_micros
    stamps: dict[int, list[str]] = {}  # the features of a view share their times
    n = len(resp)
    results = []
    for name, values in columns.items():
        st = statuses.get(name)
        if st is None:  # a join key (or another entity column): echoed
            results.append(
                {
                    "values": values,
                    "statuses": ["PRESENT"] * n,
                    "event_timestamps": [EPOCH_TEXT] * n,
                }
            )
            continue
        us = micros[name]
        times = stamps.get(id(us))
        if times is None:
            times = stamps[id(us)] = wire_times(us)
        results.append(
            {"values": values, "statuses": wire_statuses(st, values), "event_timestamps": times}
        )
    return list(columns), results


def answer_json(resp: Any) -> bytes:
    """An ``OnlineResponse`` as the endpoint's JSON."""
    names, results = answer_parts(resp)
    return dumps({"metadata": {"feature_names": names}, "results": results})


_FIELDS = ("values", "statuses", "event_timestamps")


def join_answers(parts: list[tuple[list[str], list[dict[str, list[Any]]]]]) -> bytes:
    """The JSON of the answers of consecutive pieces of one read, as one answer: the bytes
    ``answer_json`` gives for the whole read, each list serialized piece by piece (so no
    single call holds the GIL for long)."""
    names = parts[0][0]
    out = [b'{"metadata":', dumps({"feature_names": names}), b',"results":[']
    for c in range(len(names)):
        out.append(b"," if c else b"")
        for f, field in enumerate(_FIELDS):
            out.append(b'{"' if f == 0 else b',"')
            out.append(field.encode())
            out.append(b'":[')
            pieces = [dumps(part[1][c][field])[1:-1] for part in parts]
            out.append(b",".join(p for p in pieces if p))
            out.append(b"]")
            time.sleep(0)
        out.append(b"}")
    out.append(b"]}")
    return b"".join(out)


class Handlers:
    """The endpoints' logic over the server's store."""

    def __init__(
        self,
        serving: Serving,
        *,
        reader: ThreadPoolExecutor | None = None,
        limits: ReadLimits | None = None,
        on_large_read: Callable[[int], None] | None = None,
        in_flight: Callable[[], int] | None = None,
    ):
        """``reader``: where large reads run (None: on the loop, as small ones);
        ``on_large_read(+1 / -1)`` is told when one starts and ends (``/metrics``);
        ``in_flight()``: the requests the app is answering now (large reads yield to them)."""
        self.serving = serving
        self.store = serving.store
        self.reader = reader
        self.limits = limits or ReadLimits()
        self._on_large_read = on_large_read
        self._in_flight = in_flight
        self._large_in_flight = 0
        self._probes: tuple[_Probe, _Probe] | None = None

    # -- POST /get-online-features ----------------------------------------------------------
    async def online_features(self, body: bytes) -> bytes:
        if len(body) >= LARGE_BODY_BYTES and self.reader is not None:
            return await self._large_read(body)  # even its JSON is parsed off the loop
        refs, entities, full = self._bounded_request(body)
        if (
            max(map(len, entities.values())) >= self.limits.large_read_rows
            and self.reader is not None
        ):
            return await self._large_read(body)
        self._check_keys(entities)
        try:
            resp = await self.store.get_online_features_async(
                refs, entities=entities, full_feature_names=full
            )
        except RetrievalError as exc:
            raise self._diagnose(exc, refs, entities, full) from exc
        return answer_json(resp)

    def _bounded_request(self, body: bytes) -> tuple[list[str] | str, dict[str, Any], bool]:
        """``_read_request``, refused with 413 past ``max_entity_rows`` rows."""
        refs, entities, full = self._read_request(body)
        rows = max(map(len, entities.values()))
        limit = self.limits.max_entity_rows
        if rows > limit:
            raise ApiError(
                "too_many_entities",
                f"the request has {rows} entity rows; the limit is {limit} per request"
                " (split it into several requests)",
            )
        return refs, entities, full

    async def _large_read(self, body: bytes) -> bytes:
        """The whole read (parse, checks, store round trips, JSON) on the reader thread."""
        on_large = self._on_large_read
        self._large_in_flight += 1
        if on_large is not None:
            on_large(1)
        try:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self.reader, carry(self._blocking_read), body)
        finally:
            self._large_in_flight -= 1
            if on_large is not None:
                on_large(-1)

    def _blocking_read(self, body: bytes) -> bytes:
        """A large read in pieces of ``large_read_rows`` rows, the GIL let go between them
        (one piece's C calls are short, so the loop's thread waits little for it; with
        other requests in flight, ``YIELD``), the JSON of the pieces joined. Pieces are read independently, as the rows of one read are;
        not so with a pandas-mode on-demand view (its function sees all the rows at once):
        such a read is made whole. A piece refused is answered as the whole read is (its
        errors name rows of the whole request)."""
        refs, entities, full = self._bounded_request(body)
        self._check_keys(entities)
        rows = max(map(len, entities.values()))
        size = self.limits.large_read_rows
        store = self.store
        try:
            if rows <= size or self._sees_all_rows(refs, full):
                return answer_json(
                    store.get_online_features(refs, entities=entities, full_feature_names=full)
                )
            parts = []
            for start in range(0, rows, size):
                began = time.perf_counter()
                piece = {k: v[start : start + size] for k, v in entities.items()}
                resp = store.get_online_features(refs, entities=piece, full_feature_names=full)
                parts.append(answer_parts(resp))
                pause = 0.0  # 0: the loop's thread takes the GIL here if it waits for it
                if self._others_in_flight():
                    pause = min(YIELD * (time.perf_counter() - began), 0.1)
                time.sleep(pause)
            return join_answers(parts)
        except RetrievalError:
            try:
                resp = store.get_online_features(refs, entities=entities, full_feature_names=full)
            except RetrievalError as exc:
                raise self._diagnose(exc, refs, entities, full) from exc
            return answer_json(resp)

    def _others_in_flight(self) -> bool:
        """Requests in flight besides the large reads (the app's count; False without it)."""
        count = self._in_flight
        return count is not None and count() > self._large_in_flight

    def _sees_all_rows(self, refs: list[str] | str, full: bool) -> bool:
        """Whether the read runs a function over all its rows at once (pandas mode)."""
        try:
            plan = plan_features(refs, self.store.catalog(), full_feature_names=full)
        except Exception:  # refused: the whole read reports it
            return True
        return any(step.view.mode != "python" for step in plan.steps)

    def _read_request(self, body: bytes) -> tuple[list[str] | str, dict[str, Any], bool]:
        """The references (or service name), the entity columns and ``full_feature_names``
        of a read's body; ApiError for a body of the wrong shape."""
        req = json_object(body)
        features = req.get("features")
        service = req.get("feature_service")
        refs: list[str] | str
        if features is not None:
            if service is not None:
                raise ApiError("invalid_request", "give features or feature_service, not both")
            if type(features) is not list or not features:
                raise ApiError("invalid_request", "features must be a non-empty list")
            for f in features:
                if type(f) is not str:
                    raise ApiError(
                        "invalid_feature_reference",
                        f"a feature reference must be a 'view:feature' string, got {f!r}",
                    )
            refs = features
        elif type(service) is str and service and ":" not in service:
            refs = service
        else:
            raise ApiError(
                "invalid_request",
                "give features: ['view:feature', ...] or feature_service: 'name'",
            )
        entities = req.get("entities")
        if type(entities) is not dict or not entities:
            raise ApiError(
                "invalid_request", "entities must be an object of join key -> list of values"
            )
        for name, values in entities.items():
            if type(values) is not list:
                raise ApiError("invalid_request", f"entities.{name} must be a list of values")
        full = req.get("full_feature_names", False)
        if type(full) is not bool:
            raise ApiError("invalid_request", "full_feature_names must be true or false")
        return refs, entities, full

    def _check_keys(self, entities: dict[str, Any]) -> None:
        """Each entity column is a list; join-key values match their entity's declared type."""
        types = self.serving.join_key_types()
        for name, values in entities.items():
            if type(values) is not list:
                raise ApiError("invalid_request", f"entities.{name} must be a list of values")
            dtype = types.get(name)
            kind = getattr(dtype, "kind", None)
            if kind == "int":
                want: type = int
            elif kind in ("string", "bytes"):
                want = str
            else:
                continue
            if kind == "int" and any(type(v) is str for v in values):
                values = entities[name] = int_keys(values, name, dtype)
            for i, v in enumerate(values):
                if type(v) is not want:
                    if v is None:
                        raise ApiError("null_join_key", f"entities.{name}[{i}] is null")
                    raise ApiError(
                        "wrong_value_type",
                        f"entities.{name}[{i}] is {v!r} ({type(v).__name__}); "
                        f"join key {name!r} is {dtype}"
                        + (" (send bytes as base64 text)" if kind == "bytes" else ""),
                    )
            if kind == "bytes":
                try:
                    entities[name] = [base64.b64decode(v, validate=True) for v in values]
                except ValueError:
                    raise ApiError(
                        "wrong_value_type", f"entities.{name}: bytes keys must be base64 text"
                    ) from None

    def _diagnose(
        self, exc: RetrievalError, refs: list[str] | str, entities: dict[str, Any], full: bool
    ) -> ApiError:
        """The stable code for a refused read, found by checking the request, not the text."""
        if isinstance(exc, RequestDataError):
            return ApiError("missing_request_data", str(exc))
        catalog = self.store.catalog()
        try:
            plan = plan_features(refs, catalog, full_feature_names=full)
        except ObjectNotFoundError as err:
            return from_exception(err)
        except RetrievalError as err:
            for ref in refs if isinstance(refs, list) else []:
                view, sep, feature = ref.partition(":")
                if not sep or feature in ("", "*"):
                    continue
                if catalog.has("feature_view", view):
                    if feature not in catalog.view(view).feature_names:
                        return ApiError("unknown_feature", str(err))
                elif (
                    catalog.has("on_demand_feature_view", view)
                    and feature not in catalog.on_demand_view(view).feature_names
                ):
                    return ApiError("unknown_feature", str(err))
            return ApiError("invalid_feature_reference", str(err))
        if set(entities) & {o.name for o in plan.outputs}:  # a column shadowing a feature
            return ApiError("invalid_feature_reference", str(exc))
        # (missing or null request data is a RequestDataError, answered above by its class)
        if plan.steps and not plan.fetch:
            return ApiError("wrong_value_type", str(exc))
        if plan.offline_only:
            return ApiError("view_not_online", str(exc))
        needed = set(plan.online().join_keys)
        if needed - set(entities):
            return ApiError("missing_join_key", str(exc))
        for name in needed:
            for v in entities[name]:
                if v is None:
                    return ApiError("null_join_key", str(exc))
                if not isinstance(v, int | str | bytes) or isinstance(v, bool):
                    return ApiError("wrong_value_type", str(exc))
                if isinstance(v, int) and not -(2**63) <= v < 2**63:
                    return ApiError("wrong_value_type", str(exc))
        return ApiError("invalid_request", str(exc))

    # -- registry, read-only ------------------------------------------------------------------
    def entities(self) -> bytes:
        return dumps({"entities": [e.to_spec() for e in self.store.list_entities()]})

    def feature_views(self) -> bytes:
        """Feature views and on-demand views, each spec with its ``kind``, by kind and name."""
        views = [*self.store.list_feature_views(), *self.store.list_on_demand_feature_views()]
        return dumps({"feature_views": [_with_kind(v) for v in views]})

    def feature_services(self) -> bytes:
        services = self.store.list_feature_services()
        return dumps({"feature_services": [s.to_spec() for s in services]})

    def feature_view(self, name: str) -> bytes:
        """One view's spec with its ``kind``: a feature view, else an on-demand view of that
        name; 404 ``unknown_feature_view`` when neither exists."""
        catalog = self.store.catalog()
        if catalog.has("on_demand_feature_view", name) and not catalog.has("feature_view", name):
            return dumps(_with_kind(self.store.get_on_demand_feature_view(name)))
        return dumps(_with_kind(self.store.get_feature_view(name)))

    # -- probes ---------------------------------------------------------------------------
    async def ready(self, timeout: float) -> tuple[bool, dict[str, Any]]:
        """Whether the registry and the online store (past the cache) answer, within
        ``timeout`` seconds: one that has not answered by then is reported as such. Each is
        checked on its own thread; a check still stuck from an earlier probe is waited for
        again, never started twice (so a frozen store does not pile up threads)."""
        if self._probes is None:
            self._probes = (
                _Probe("registry", self.store.registry.revision),
                _Probe("online_store", lambda: self.serving.raw_online.read([(_PROBE, [b"p"])])),
            )
        loop = asyncio.get_running_loop()
        futures = {probe.name: probe.start(loop) for probe in self._probes}
        await asyncio.wait(futures.values(), timeout=timeout)
        out: dict[str, Any] = {}
        ok = True
        for name, future in futures.items():
            if not future.done():
                ok, out[name] = False, f"did not answer within {timeout:g} s"
                continue
            answered, value = future.result()
            if not answered:
                ok, out[name] = False, f"unreachable: {value}"
            elif name == "registry":
                out["registry_revision"] = value
        return ok, out


class _Probe:
    """A readiness check on its own daemon thread (kept: its store connections are reused;
    daemon: one stuck on a frozen store never holds up the process's exit)."""

    def __init__(self, name: str, check: Callable[[], Any]):
        self.name = name
        self.check = check
        self._running: asyncio.Future[tuple[bool, Any]] | None = None
        self._queue: queue.SimpleQueue[tuple[asyncio.AbstractEventLoop, asyncio.Future]] = (
            queue.SimpleQueue()
        )
        self._thread: threading.Thread | None = None

    def start(self, loop: asyncio.AbstractEventLoop) -> asyncio.Future[tuple[bool, Any]]:
        """The running check's future, or a new check's when none is running."""
        future = self._running
        if future is None or future.done():
            future = self._running = loop.create_future()
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._serve, name=f"parity-ready-{self.name}", daemon=True
                )
                self._thread.start()
            self._queue.put((loop, future))
        return future

    def _serve(self) -> None:
        while True:
            loop, future = self._queue.get()
            try:
                result: tuple[bool, Any] = (True, self.check())
            except Exception as exc:
                result = (False, exc)
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
                loop.call_soon_threadsafe(_settle, future, result)


def _settle(future: asyncio.Future, result: tuple[bool, Any]) -> None:
    if not future.done():
        future.set_result(result)


_CANONICAL_INT = re.compile(r"-?(0|[1-9][0-9]*)")
_INT64 = 2**63


def int_keys(values: list[Any], name: str, dtype: Any) -> list[Any]:
    """An integer join key's values with numeric strings converted, as the incumbent's
    server does (its CLI sends ``"1001"``): only canonical decimal integers (``"1001"``,
    ``"-7"``, ``"0"``; no sign ``+``, no leading zero, no space, no ``"-0"``) within Int64.
    Anything else stays as it is; other strings are refused, naming the entry."""
    out = list(values)
    for i, v in enumerate(out):
        if type(v) is not str:
            continue
        if _CANONICAL_INT.fullmatch(v) and v != "-0":
            n = int(v)
            if -_INT64 <= n < _INT64:
                out[i] = n
                continue
        raise ApiError(
            "wrong_value_type",
            f"entities.{name}[{i}] is {v!r} (str); join key {name!r} is {dtype}: send an "
            'integer, or its canonical decimal text within Int64 (like "1001")',
        )
    return out


def _with_kind(view: Any) -> dict[str, Any]:
    return {"kind": view.kind, **view.to_spec()}
