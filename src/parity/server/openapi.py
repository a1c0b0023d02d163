"""The OpenAPI 3.1 document served at ``GET /openapi.json``, written out by hand (no framework
generates it) and kept next to the handlers it describes.

The document is the served repo's: request bodies name the registry's objects (feature
references, services, push sources and their columns, join keys and request fields, each
with its JSON type) as enums and examples, so a client, or a schema-driven fuzzer, sees
exactly what each endpoint takes. ``openapi_document()`` without a catalog gives the same
shapes with free-form names. ``OpenApiDocument`` serves it as JSON bytes, rebuilt only when
the registry's catalog changes (the server's catalog is cached, so this costs a lookup).

What each schema says is what the handler accepts, no more and no less, where JSON Schema
can say it: a value the schema refuses is refused by the server with a 4xx. What it cannot
say (columns of equal length, a join key the requested features need, an on-demand view's
request fields) the server checks and refuses with a 400 naming the field.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson

from parity import __version__
from parity.server.errors import CODES
from parity.server.openapi_parts import (
    INT32,
    INT64,
    TIME,
    TIME_EXAMPLE,
    Schema,
    answer,
    content,
    enum_or,
    with_bearer_auth,
)
from parity.server.openapi_parts import errors as error_answers
from parity.server.openapi_writes import (
    JOB,
    WRITE_ANSWER,
    materialize_incremental_request,
    materialize_op,
    materialize_request,
    write_request,
)

if TYPE_CHECKING:
    from parity.definitions import FeatureView
    from parity.registry.catalog import Catalog
    from parity.types import ValueType

log = logging.getLogger("parity.server")

PUSH_TARGETS = ["online", "offline", "online_and_offline"]
_SUMMED = ("sum", "mean", "stddev")
_SUMMABLE = {"exclusiveMinimum": -(2.0**63), "exclusiveMaximum": 2.0**63}
"""A float column an aggregated view sums: finite and below 2**63 in magnitude."""
STATUSES = ["PRESENT", "NOT_FOUND", "NULL_VALUE", "OUTSIDE_MAX_AGE", "INVALID"]
"""The incumbent's status names: present, no record, a present null value, expired, invalid
(an aggregate beyond its type)."""


def json_type(dtype: ValueType) -> Schema:
    """A value of ``dtype`` in JSON: Int64 an integer in int64's range, Timestamp ISO 8601
    text, Bytes base64 text, ``Array(T)`` a list of T (null elements allowed)."""
    name = dtype.name
    if name.startswith("Array("):
        element = json_type(dtype.element)  # type: ignore[attr-defined]
        return {"type": "array", "items": nullable(element)}
    return dict(_PRIMITIVE.get(name, {}))


_PRIMITIVE: dict[str, Schema] = {
    "Int64": INT64,
    "Int32": INT32,
    "Float64": {"type": "number"},
    "Float32": {"type": "number"},
    "String": {"type": "string"},
    "Bool": {"type": "boolean"},
    "Bytes": {"type": "string", "contentEncoding": "base64"},
    "Timestamp": TIME,
}


def nullable(schema: Schema) -> Schema:
    """``schema`` or null."""
    if not schema:
        return schema
    if "type" in schema and "enum" not in schema:
        t = schema["type"]
        types = t if isinstance(t, list) else [t]
        return {**schema, "type": [*types, "null"]}
    return {"anyOf": [schema, {"type": "null"}]}


def _post(summary: str, body: Schema, ok: Schema, *statuses: int) -> Schema:
    return {
        "post": {
            "summary": summary,
            "requestBody": {"required": True, **content(body)},
            "responses": {"200": answer("OK", ok), **error_answers(*statuses)},
        }
    }


def _with_drafts_header(item: Schema) -> Schema:
    """A read's lifecycle: ``X-Parity-Include-Drafts`` asks for drafts too; a deprecated
    object read answers ``Deprecation`` and ``X-Parity-Deprecated`` (``parity.lifecycle``)."""
    op = item["post"]
    op.setdefault("parameters", []).append(
        {
            "name": "X-Parity-Include-Drafts",
            "in": "header",
            "required": False,
            "schema": {"enum": ["true", "false", "1", "0", "yes", "no"]},
            "description": "Serve draft views too (else a draft answers 403 draft_not_requested)",
        }
    )
    op["responses"]["200"]["headers"] = {
        "Deprecation": {
            "description": "true when the answer read a deprecated object",
            "schema": {"const": "true"},
        },
        "X-Parity-Deprecated": {
            "description": "The deprecated objects read, ``kind:name (use successor)``; ``; ``-separated",
            "schema": {"type": "string"},
        },
    }
    return item


def _get(summary: str, ok: Schema, *statuses: int) -> Schema:
    return {
        "get": {
            "summary": summary,
            "responses": {"200": answer("OK", ok), **error_answers(*statuses)},
        }
    }


def _list_of(key: str, item: Schema) -> Schema:
    return {
        "type": "object",
        "properties": {key: {"type": "array", "items": item}},
        "required": [key],
    }


_SPEC = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
_VIEW_SPEC = {
    "type": "object",
    "properties": {
        "kind": {"enum": ["feature_view", "on_demand_feature_view"]},
        "name": {"type": "string"},
    },
    "required": ["kind", "name"],
}


# -- what the catalog says -------------------------------------------------------------------
class _Repo:
    """The catalog's names and types the request schemas enumerate (empty without one)."""

    def __init__(self, catalog: Catalog | None):
        self.refs: list[str] = []
        self.services: list[str] = []
        self.views: list[str] = []
        self.materializable: list[str] = []
        self.keys: dict[str, Schema] = {}  # join key -> its values' JSON type
        self.requests: dict[str, Schema] = {}  # on-demand request field -> JSON type
        self.pushes: dict[str, Schema] = {}  # push source -> its df schema
        self.example_entities: dict[str, list[Any]] = {}
        if catalog is None:
            return
        online = [v for v in catalog.views() if v.online]
        for v in online:
            self.refs += [v.name, f"{v.name}:*", *(f"{v.name}:{f}" for f in v.feature_names)]
        for od in catalog.on_demand_views():
            self.refs += [od.name, f"{od.name}:*", *(f"{od.name}:{f}" for f in od.feature_names)]
            for rs in od.request_sources:
                for fld in rs.schema:
                    self.requests[fld.name] = json_type(fld.dtype)
        self.services = catalog.names("feature_service")
        self.views = sorted(
            [v.name for v in catalog.views()] + catalog.names("on_demand_feature_view")
        )
        self.materializable = [v.name for v in online]
        for entity in sorted(catalog.objects.get("entity", {}).values(), key=lambda e: e.name):
            for key in entity.join_keys:  # type: ignore[attr-defined]
                dtype = entity.dtype  # type: ignore[attr-defined]
                self.keys[key] = json_type(dtype) if dtype is not None else {}
        for source in catalog.objects.get("source", {}).values():
            if source.source_type == "push":  # type: ignore[attr-defined]
                fed = [v for v in catalog.views() if v.source_name == source.name]
                if fed:
                    self.pushes[source.name] = self._push_df(source, fed, catalog)
        self.example_entities = {k: [_example(s)] for k, s in list(self.keys.items())[:1]}

    def _push_df(self, source: Any, views: list[FeatureView], catalog: Catalog) -> Schema:
        """A push source's ``df``: its columns, each a non-empty list of the column's type
        (features may be null; join keys and the event time may not)."""
        props: dict[str, Schema] = {}
        required: list[str] = []

        def column(name: str, item: Schema, *, required_: bool) -> None:
            if name in props:
                return
            props[name] = {"type": "array", "minItems": 1, "items": item}
            if required_:
                required.append(name)

        column(source.timestamp_field, TIME, required_=True)
        if source.created_timestamp_field:
            column(source.created_timestamp_field, nullable(TIME), required_=False)
        for view in views:
            for key in catalog.join_keys_of(view):
                column(key, self.keys.get(key, {}), required_=True)
            summed = {a.column for a in view.aggregations if a.function in _SUMMED}
            for fld in view.schema:
                item = json_type(fld.dtype)
                if fld.name in summed and item.get("type") == "number":
                    item = {**item, **_SUMMABLE}  # exact fixed-point sums take these only
                column(fld.name, nullable(item), required_=True)
        if source.event_id_field and any(v.is_aggregated for v in views):
            column(source.event_id_field, {}, required_=True)
        return {
            "type": "object",
            "properties": props,
            "required": required,
            "additionalProperties": {"type": "array"},
            "description": "Columns of equal length, one value per row",
            "example": {name: [_example(s["items"])] for name, s in props.items()},
        }


def _example(schema: Schema) -> Any:
    t = schema.get("type")
    t = t[0] if isinstance(t, list) else t
    if schema.get("format") == "date-time":
        return TIME_EXAMPLE
    if t == "array":
        return [_example(schema.get("items", {}))]
    return {"integer": 1001, "number": 0.5, "string": "a", "boolean": True}.get(t or "", 1001)


# -- the request and answer schemas ----------------------------------------------------------
def _online_request(repo: _Repo) -> Schema:
    ref = enum_or(repo.refs, {"type": "string", "pattern": "^[^:]+(:.+)?$"})
    columns = {
        **{k: {"type": "array", "items": s} for k, s in repo.requests.items()},
        **{k: {"type": "array", "items": s} for k, s in repo.keys.items()},
    }
    entities: Schema = {
        "type": "object",
        "description": "Entity rows as columns of equal length: join keys and an on-demand "
        "view's request fields (never null), and any other column, echoed",
        "minProperties": 1,
        "properties": columns,
        "additionalProperties": {"type": "array"},
        "example": repo.example_entities or {"driver_id": [1001, 1002]},
    }
    common = {
        "entities": entities,
        "full_feature_names": {"type": "boolean", "default": False},
    }
    by_features = {
        "type": "object",
        "properties": {
            "features": {"type": "array", "minItems": 1, "items": ref},
            **common,
        },
        "required": ["features", "entities"],
        "not": {"required": ["feature_service"]},
    }
    service = enum_or(repo.services, {"type": "string", "minLength": 1, "pattern": "^[^:]+$"})
    by_service = {
        "type": "object",
        "properties": {"feature_service": service, **common},
        "required": ["feature_service", "entities"],
        "not": {"required": ["features"]},
    }
    return {"oneOf": [by_features, by_service]}


_ONLINE_ANSWER = {
    "type": "object",
    "properties": {
        "metadata": {
            "type": "object",
            "properties": {"feature_names": {"type": "array", "items": {"type": "string"}}},
            "required": ["feature_names"],
        },
        "results": {
            "type": "array",
            "description": "One per feature_names entry: join keys first, then features",
            "items": {
                "type": "object",
                "properties": {
                    "values": {"type": "array"},
                    "statuses": {"type": "array", "items": {"enum": STATUSES}},
                    "event_timestamps": {
                        "type": "array",
                        "description": "The record's event time; the epoch "
                        "(1970-01-01T00:00:00Z) for key columns and values without a record",
                        "items": {"type": "string", "format": "date-time"},
                    },
                },
                "required": ["values", "statuses", "event_timestamps"],
            },
        },
    },
    "required": ["metadata", "results"],
}


def _push_request(repo: _Repo) -> Schema:
    to = {"enum": PUSH_TARGETS, "default": "online"}
    if not repo.pushes:
        return {
            "type": "object",
            "properties": {
                "push_source_name": {"type": "string", "minLength": 1},
                "df": {
                    "type": "object",
                    "minProperties": 1,
                    "additionalProperties": {"type": "array"},
                },
                "to": to,
            },
            "required": ["push_source_name", "df"],
        }
    shapes = [
        {
            "type": "object",
            "properties": {"push_source_name": {"const": name}, "df": df, "to": to},
            "required": ["push_source_name", "df"],
        }
        for name, df in sorted(repo.pushes.items())
    ]
    return shapes[0] if len(shapes) == 1 else {"oneOf": shapes}


_PUSH_ANSWER = {
    "type": "object",
    "properties": {
        "push_source_name": {"type": "string"},
        "to": {"enum": PUSH_TARGETS},
        "rows": {"type": "integer", "minimum": 0},
    },
    "required": ["push_source_name", "to", "rows"],
}


_ERROR_SCHEMA = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "code": {"enum": sorted(CODES)},
                "message": {"type": "string", "minLength": 1},
                "request_id": {"type": "string", "minLength": 1},
            },
            "required": ["code", "message", "request_id"],
        }
    },
    "required": ["error"],
}


def openapi_document(catalog: Catalog | None = None) -> dict[str, Any]:
    """The document for the repo whose registry ``catalog`` is (free-form names without)."""
    repo = _Repo(catalog)
    name_param = {
        "name": "name",
        "in": "path",
        "required": True,
        "schema": enum_or(repo.views, {"type": "string", "minLength": 1}),
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "Parity feature server", "version": __version__},
        "paths": {
            "/get-online-features": _with_drafts_header(
                _post(
                    "Latest feature values, a status and an event time per value",
                    _online_request(repo),
                    _ONLINE_ANSWER,
                    400,
                    403,
                    404,
                    409,
                    410,
                    413,
                    500,
                    503,
                )
            ),
            "/push": _post(
                "Rows to a push source's views",
                _push_request(repo),
                _PUSH_ANSWER,
                400,
                404,
                409,
                413,
                500,
                503,
            ),
            "/write-to-online-store": _post(
                "Rows of one feature view straight to the online store",
                write_request(repo.materializable),
                WRITE_ANSWER,
                400,
                404,
                409,
                413,
                500,
                503,
            ),
            "/materialize": materialize_op(
                "Load each view's latest value per entity in a window (or everything)",
                materialize_request(repo.materializable),
            ),
            "/materialize-incremental": materialize_op(
                "Materialize each view from where its last run ended",
                materialize_incremental_request(repo.materializable),
            ),
            "/materializations": _get(
                "Recent background materializations, newest first",
                _list_of("materializations", JOB),
                500,
                503,
            ),
            "/materializations/{id}": {
                "get": {
                    "summary": "One background materialization: state, per-view rows, error",
                    "parameters": [
                        {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
                    ],
                    "responses": {"200": answer("OK", JOB), **error_answers(404, 500, 503)},
                }
            },
            "/entities": _get("Registered entities", _list_of("entities", _SPEC), 500, 503),
            "/feature-views": _get(
                "Registered feature views and on-demand views (each with its kind)",
                _list_of("feature_views", _VIEW_SPEC),
                500,
                503,
            ),
            "/feature-services": _get(
                "Registered feature services", _list_of("feature_services", _SPEC), 500, 503
            ),
            "/feature-views/{name}": {
                "get": {
                    "summary": "One feature view's (or on-demand view's) spec",
                    "parameters": [name_param],
                    "responses": {"200": answer("OK", _VIEW_SPEC), **error_answers(404, 500, 503)},
                }
            },
            "/health": _get(
                "Liveness",
                {
                    "type": "object",
                    "properties": {"status": {"const": "ok"}},
                    "required": ["status"],
                },
            ),
            "/ready": _get(
                "Registry and online store reachable (503 not_ready when not)",
                {
                    "type": "object",
                    "properties": {
                        "status": {"const": "ready"},
                        "registry_revision": {"type": "integer"},
                    },
                    "required": ["status"],
                },
                503,
            ),
            "/metrics": {
                "get": {
                    "summary": "Prometheus text format",
                    "responses": {
                        "200": {
                            "description": "OK",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        }
                    },
                }
            },
            "/openapi.json": _get("This document", {"type": "object"}),
            "/": _get(
                "A short index of the endpoints",
                {
                    "type": "object",
                    "properties": {"endpoints": {"type": "array"}, "project": {"type": "string"}},
                    "required": ["endpoints", "project"],
                },
            ),
            "/docs": {
                "get": {
                    "summary": "An API page over this document (self-contained HTML)",
                    "responses": {
                        "200": {
                            "description": "OK",
                            "content": {"text/html": {"schema": {"type": "string"}}},
                        }
                    },
                }
            },
        },
        "components": {"schemas": {"Error": _ERROR_SCHEMA}},
    }


class OpenApiDocument:
    """``GET /openapi.json``: the document for ``catalog()``'s current catalog, as JSON bytes,
    rebuilt when the catalog changes; the free-form one while the registry cannot be read."""

    def __init__(self, catalog: Callable[[], Catalog], *, auth: bool = False):
        self._catalog = catalog
        self._auth = auth  # auth on: bearer security, 401/403 on every operation but /health
        self._seen: object = None
        self._body = b""

    def __call__(self) -> bytes:
        try:
            catalog: Catalog | None = self._catalog()
        except Exception as exc:  # the document still answers; /ready reports the registry
            log.warning("openapi.json without the registry's names: %s", exc)
            catalog = None
        if catalog is not self._seen or not self._body:
            doc = openapi_document(catalog)
            self._body = orjson.dumps(with_bearer_auth(doc) if self._auth else doc)
            self._seen = catalog
        return self._body
