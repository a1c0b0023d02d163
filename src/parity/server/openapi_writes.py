"""The OpenAPI schemas of the writing endpoints: ``/write-to-online-store``, the two
materialize endpoints (``?async=true``: 202 and a job) and ``/materializations``."""

from __future__ import annotations

from parity.server.openapi_parts import TIME, Schema, answer, content, enum_or, errors

__all__ = [
    "JOB",
    "WRITE_ANSWER",
    "materialize_incremental_request",
    "materialize_op",
    "materialize_request",
    "write_request",
]


def materialize_op(summary: str, body: Schema) -> Schema:
    return {
        "post": {
            "summary": summary,
            "parameters": _ASYNC_PARAMS,
            "requestBody": {"required": True, **content(body)},
            "responses": {
                "200": answer("Done: each view's run", _MATERIALIZE_ANSWER),
                "202": answer("Accepted (?async=true): follow it at url", _ACCEPTED),
                **errors(400, 404, 409, 413, 500, 503),
            },
        }
    }


def _views_field(views: list[str]) -> Schema:
    return {
        "type": ["array", "null"],
        "items": enum_or(views, {"type": "string"}),
        "description": "Default (absent, null or empty): every online view",
    }


_FLAG = {"type": "boolean", "default": False}
_FULL_NAMES = {**_FLAG, "description": "Accepted for the incumbent's clients; changes nothing"}


def materialize_incremental_request(views: list[str]) -> Schema:
    return {
        "type": "object",
        "properties": {
            "end_date": {
                "anyOf": [TIME, {"const": "now"}],
                "description": "Materialize up to this time (ISO 8601, or now); "
                "each view from where its last run ended",
            },
            "feature_views": _views_field(views),
            "full_feature_names": _FULL_NAMES,
        },
        "required": ["end_date"],
    }


def materialize_request(views: list[str]) -> Schema:
    window = {
        "type": "object",
        "properties": {
            "start_ts": {**TIME, "description": "The window's start (inclusive)"},
            "end_ts": {**TIME, "description": "The window's end (inclusive), not after now"},
            "feature_views": _views_field(views),
            "disable_event_timestamp": {"const": False, "default": False},
            "full_feature_names": _FULL_NAMES,
        },
        "required": ["start_ts", "end_ts"],
    }
    everything = {
        "type": "object",
        "properties": {
            "start_ts": {"description": "Ignored"},
            "end_ts": {"description": "Ignored"},
            "feature_views": _views_field(views),
            "disable_event_timestamp": {
                "const": True,
                "description": "Load everything up to now, from the earliest time stored",
            },
            "full_feature_names": _FULL_NAMES,
        },
        "required": ["disable_event_timestamp"],
    }
    return {"oneOf": [window, everything]}


def write_request(views: list[str]) -> Schema:
    view = enum_or(views, {"type": "string", "minLength": 1})
    return {
        "type": "object",
        "description": "The body the incumbent's SDK sends (its push, write_to_online_store "
        "and materialize): feature names as columns; the times as event_timestamp and "
        "created (or the source's own names)",
        "properties": {
            "feature_view_name": view,
            "df": {
                "type": "object",
                "minProperties": 1,
                "additionalProperties": {"type": "array"},
                "description": "Columns of equal length, one value per row",
                "example": {
                    "driver_id": [1001],
                    "event_timestamp": ["2024-01-01T08:00:00"],
                    "created": [None],
                    "conv_rate": [0.5],
                },
            },
            "allow_registry_cache": {"type": "boolean", "description": "Accepted; no effect"},
            "transform_on_write": {"type": "boolean", "description": "Accepted; no effect"},
        },
        "required": ["feature_view_name", "df"],
    }


WRITE_ANSWER = {
    "type": "object",
    "properties": {
        "feature_view_name": {"type": "string"},
        "rows": {"type": "integer", "minimum": 0},
        "stored": {"type": "integer", "minimum": 0},
        "ignored_columns": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["feature_view_name", "rows", "stored", "ignored_columns"],
}

_ASYNC_PARAMS = [
    {
        "name": "async",
        "in": "query",
        "required": False,
        "description": "true: answer 202 with a job id at once and run in the background",
        "schema": {"type": "boolean", "default": False},
    },
    {
        "name": "force",
        "in": "query",
        "required": False,
        "description": "With async: run even while another job materializes one of the views",
        "schema": {"type": "boolean", "default": False},
    },
]

_ACCEPTED = {
    "type": "object",
    "properties": {
        "status": {"const": "accepted"},
        "feature_views": {"type": "array", "items": {"type": "string"}},
        "id": {"type": "string"},
        "state": {"enum": ["queued", "running", "succeeded", "failed"]},
        "url": {"type": "string"},
    },
    "required": ["status", "feature_views", "id", "state", "url"],
}

JOB = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "kind": {"enum": ["materialize", "materialize_incremental"]},
        "state": {"enum": ["queued", "running", "succeeded", "failed"]},
        "feature_views": {"type": "array", "items": {"type": "string"}},
        "views": {
            "type": "array",
            "description": "Per view: state (pending, running, succeeded, failed), rows so far",
            "items": {"type": "object", "properties": {"feature_view": {"type": "string"}}},
        },
        "rows": {"type": "integer", "minimum": 0},
        "error": {
            "anyOf": [
                {"type": "null"},
                {
                    "type": "object",
                    "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
                    "required": ["code", "message"],
                },
            ]
        },
        "created_at": {"type": "string", "format": "date-time"},
        "started_at": {"type": ["string", "null"], "format": "date-time"},
        "finished_at": {"type": ["string", "null"], "format": "date-time"},
    },
    "required": ["id", "kind", "state", "feature_views", "views", "rows", "error"],
}


_MATERIALIZE_ANSWER = {
    "type": "object",
    "properties": {
        "views": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "feature_view": {"type": "string"},
                    "start": {"type": "string", "format": "date-time"},
                    "end": {"type": "string", "format": "date-time"},
                    "rows": {"type": "integer", "minimum": 0},
                    "stored": {"type": "integer", "minimum": 0},
                    "seconds": {"type": "number", "minimum": 0},
                },
                "required": ["feature_view", "start", "end", "rows", "stored", "seconds"],
            },
        }
    },
    "required": ["views"],
}
