"""Pieces the OpenAPI document is built from (``parity.server.openapi``): JSON types of
times and integers, and the request, answer and error wrappers every operation uses."""

from __future__ import annotations

import copy
from typing import Any

from parity.clock import MAX_TIME, MIN_TIME

__all__ = [
    "INT32",
    "INT64",
    "TIME",
    "TIME_EXAMPLE",
    "Schema",
    "answer",
    "content",
    "enum_or",
    "errors",
]

Schema = dict[str, Any]

INT64 = {"type": "integer", "minimum": -(2**63), "maximum": 2**63 - 1}
INT32 = {"type": "integer", "minimum": -(2**31), "maximum": 2**31 - 1}
TIME_EXAMPLE = "2024-01-01T08:00:00Z"
TIME = {
    "type": "string",
    "format": "date-time",
    "description": "ISO 8601, a time without an offset is UTC; from "
    f"{MIN_TIME:%Y-%m-%d} (inclusive) to {MAX_TIME:%Y-%m-%d} UTC (exclusive)",
    "example": TIME_EXAMPLE,
}


def content(schema: Schema) -> Schema:
    return {"content": {"application/json": {"schema": schema}}}


def answer(description: str, schema: Schema) -> Schema:
    return {"description": description, **content(schema)}


_ERROR = {"$ref": "#/components/schemas/Error"}
_STATUS_TEXT = {
    400: "Refused: the request is not one this endpoint takes; `error.code` says why",
    404: "A named object does not exist",
    405: "The endpoint does not take this method",
    409: "The registry changed under the request (retry), a job materializes the view, or"
    " a service pinning versions reads a view whose major version moved",
    401: "No token, or a malformed, forged, expired or revoked one (auth on)",
    403: "No role of the caller grants the action, or not for the read's purpose (auth on);"
    " or a draft read without X-Parity-Include-Drafts",
    410: "A retired view, on-demand view or service (the message names its successor)",
    413: "The body, or the number of rows, is over the server's limit",
    500: "Ours (a bug, or an on-demand view's function failed); the log has the request id",
    503: "The online store (or the registry) did not answer, or refused",
}


def errors(*statuses: int) -> dict[str, Schema]:
    return {str(s): answer(_STATUS_TEXT[s], _ERROR) for s in statuses}


def with_bearer_auth(doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` as served with ``auth`` on: a bearer token on every operation but ``/health``,
    which may also answer 401 and 403 (``X-Parity-Purpose`` declares a read's purpose).
    A new document: ``doc`` shares parts with other documents, so it is left as it is."""
    doc = copy.deepcopy(doc)
    doc["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
    doc["security"] = [{"bearer": []}]
    purpose = {
        "name": "X-Parity-Purpose",
        "in": "header",
        "required": False,
        "schema": {"type": "string", "pattern": "^[A-Za-z0-9_.:-]{1,64}$"},
        "description": "What the values are for, checked against the roles' purposes",
    }
    for path, item in doc["paths"].items():
        for op in item.values():
            if path == "/health":
                op["security"] = []
                continue
            extra = [s for s in (400, 401, 403) if str(s) not in op["responses"]]
            op["responses"].update(errors(*extra))
            op.setdefault("parameters", []).append(purpose)
    return doc


def enum_or(names: list[str], fallback: Schema) -> Schema:
    return {"enum": names, "example": names[0]} if names else fallback
