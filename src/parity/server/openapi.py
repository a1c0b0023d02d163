"""The OpenAPI 3.1 document served at ``GET /openapi.json``, written out by hand (no framework
generates it) and kept next to the handlers it describes."""

from __future__ import annotations

from typing import Any

from parity import __version__
from parity.server.errors import CODES


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _ok(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"description": description}
    if schema is not None:
        out.update(_json(schema))
    return out


_ERROR = {"$ref": "#/components/schemas/Error"}
_ERRORS = {
    "4XX": _ok("The caller's mistake; `error.code` says which", _ERROR),
    "5XX": _ok("Ours; the log has the request id", _ERROR),
}
_SPECS = {"type": "array", "items": {"type": "object"}}


def _get(summary: str, key: str | None = None) -> dict[str, Any]:
    schema = {"type": "object"} if key is None else {"type": "object", "properties": {key: _SPECS}}
    return {"get": {"summary": summary, "responses": {"200": _ok("OK", schema), **_ERRORS}}}


def _post(summary: str, body: dict[str, Any], answer: dict[str, Any]) -> dict[str, Any]:
    return {
        "post": {
            "summary": summary,
            "requestBody": {"required": True, **_json(body)},
            "responses": {"200": _ok("OK", answer), **_ERRORS},
        }
    }


def openapi_document() -> dict[str, Any]:
    online_request = {
        "type": "object",
        "properties": {
            "features": {"type": "array", "items": {"type": "string"}, "example": ["v:f"]},
            "feature_service": {"type": "string"},
            "entities": {
                "type": "object",
                "additionalProperties": {"type": "array"},
                "example": {"driver_id": [1001, 1002]},
            },
            "full_feature_names": {"type": "boolean", "default": False},
        },
        "required": ["entities"],
    }
    online_response = {
        "type": "object",
        "properties": {
            "metadata": {
                "type": "object",
                "properties": {"feature_names": {"type": "array", "items": {"type": "string"}}},
            },
            "results": {
                "type": "array",
                "description": "One per feature_names entry: join keys first, then features",
                "items": {
                    "type": "object",
                    "properties": {
                        "values": {"type": "array"},
                        "statuses": {
                            "type": "array",
                            "items": {"enum": ["PRESENT", "MISSING", "EXPIRED"]},
                        },
                        "event_timestamps": {
                            "type": "array",
                            "items": {"type": ["string", "null"], "format": "date-time"},
                        },
                    },
                },
            },
        },
    }
    push_request = {
        "type": "object",
        "properties": {
            "push_source_name": {"type": "string"},
            "df": {"type": "object", "additionalProperties": {"type": "array"}},
            "to": {"enum": ["online", "offline", "online_and_offline"], "default": "online"},
        },
        "required": ["push_source_name", "df"],
    }
    materialize_request = {
        "type": "object",
        "properties": {
            "end_date": {"type": "string", "format": "date-time"},
            "feature_views": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["end_date"],
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "Parity feature server", "version": __version__},
        "paths": {
            "/get-online-features": _post(
                "Latest feature values, a status and an event time per value",
                online_request,
                online_response,
            ),
            "/push": _post("Rows to a push source's views", push_request, {"type": "object"}),
            "/materialize-incremental": _post(
                "Materialize each view from where its last run ended",
                materialize_request,
                {"type": "object"},
            ),
            "/entities": _get("Registered entities", "entities"),
            "/feature-views": _get("Registered feature views", "feature_views"),
            "/feature-services": _get("Registered feature services", "feature_services"),
            "/feature-views/{name}": {
                "get": {
                    "summary": "One feature view's spec",
                    "parameters": [
                        {
                            "name": "name",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string"},
                        }
                    ],
                    "responses": {"200": _ok("OK", {"type": "object"}), **_ERRORS},
                }
            },
            "/health": _get("Liveness"),
            "/ready": _get("Registry and online store reachable (503 when not)"),
            "/metrics": {
                "get": {
                    "summary": "Prometheus text format",
                    "responses": {"200": {"description": "OK", "content": {"text/plain": {}}}},
                }
            },
            "/openapi.json": _get("This document"),
        },
        "components": {
            "schemas": {
                "Error": {
                    "type": "object",
                    "properties": {
                        "error": {
                            "type": "object",
                            "properties": {
                                "code": {"enum": sorted(CODES)},
                                "message": {"type": "string"},
                                "request_id": {"type": "string"},
                            },
                            "required": ["code", "message", "request_id"],
                        }
                    },
                }
            }
        },
    }
