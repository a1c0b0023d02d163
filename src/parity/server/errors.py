"""The HTTP error contract: a stable ``code``, a status, and the JSON body every error gets.

::

    {"error": {"code": "unknown_feature", "message": "...", "request_id": "..."}}

4xx is the caller's mistake, 5xx ours. Core errors carry ``http_status`` as data
(``parity.errors``); ``from_exception`` turns one into an ``ApiError`` with a code chosen by
its class, never by parsing its message. Handlers raise ``ApiError`` directly when they know
better (a missing join key, a wrong value type).
"""

from __future__ import annotations

from typing import Any

import orjson

from parity.errors import (
    AccessError,
    AuditError,
    ConcurrentApplyError,
    ConfigError,
    DataSourceError,
    DataSourceNotFoundError,
    DefinitionError,
    EncryptionError,
    GovernanceError,
    LifecycleError,
    ObjectNotFoundError,
    OnlineStoreError,
    ParityError,
    PartialWriteError,
    RegistryError,
    RequestDataError,
    RetrievalError,
    TransformationError,
)
from parity.ingest import IngestError
from parity.registry.jobs import JobConflictError

# Every code the server can answer with; a test keeps this list and the docs in step.
CODES = {
    "malformed_json": 400,  # the body is not JSON
    "invalid_request": 400,  # JSON, but not the shape the endpoint takes
    "invalid_feature_reference": 400,  # not "view:feature", or two features share a name
    "unknown_feature": 400,  # the view exists, the feature does not
    "view_not_online": 400,  # the view is offline only (online=False)
    "missing_join_key": 400,  # the requested features need a join key the entities lack
    "wrong_value_type": 400,  # a join key value of the wrong type (e.g. "1001" for an Int64 key)
    "null_join_key": 400,  # a join key value is null
    "missing_request_data": 400,  # an on-demand feature needs a request field the entities lack
    "invalid_rows": 400,  # pushed rows refused (column missing, wrong type, null key...)
    "not_a_push_source": 400,  # /push named a source that is not a push source
    "view_not_writable": 400,  # /write-to-online-store named an on-demand view (nothing stored)
    "invalid_definition": 400,
    "data_source_error": 400,
    "unknown_feature_view": 404,
    "unknown_feature_service": 404,
    "unknown_entity": 404,
    "unknown_data_source": 404,
    "unknown_push_source": 404,
    "data_source_not_found": 404,
    "unknown_materialization": 404,  # no background materialization with that id
    "not_found": 404,  # no such endpoint
    "unauthenticated": 401,  # no token (Authorization: Bearer ...) where auth is on
    "invalid_token": 401,  # a malformed, forged or unverifiable token
    "token_expired": 401,
    "token_revoked": 401,
    "forbidden": 403,  # no role of the caller grants the action on the resource
    "purpose_not_allowed": 403,  # the read's purpose (X-Parity-Purpose) is not one the data allows
    "method_not_allowed": 405,
    "conflict": 409,  # the registry changed under a write; retry
    "materialization_running": 409,  # a view is being materialized by a job; ?force=true
    "body_too_large": 413,
    "too_many_entities": 413,  # more entity rows (or pushed rows) than the server's limit
    "internal_error": 500,
    "config_error": 500,
    "registry_error": 500,
    "transformation_failed": 500,  # an on-demand view's function raised or returned bad output
    "online_store_unavailable": 503,  # the online store did not answer (down, frozen, timed out)
    "online_store_error": 503,  # the online store answered, but refused the read or write
    "online_write_failed": 503,  # a push to online_and_offline: the offline log holds the rows, the online write failed
    "not_ready": 503,
    "audit_unavailable": 503,  # the audit log could not be written, so nothing was done
    "encryption_error": 500,  # a key is missing or wrong (parity.yaml's encryption)
    "governance_error": 400,  # a bad erase / restrict / export request
    "feature_retired": 410,  # a retired view, on-demand view or service (the message names its successor)
    "draft_not_requested": 403,  # a draft, read without X-Parity-Include-Drafts: true
    "version_pinned": 409,  # a service pins versions, and a view it reads moved to another major
}

_BY_CLASS: list[tuple[type[BaseException], str]] = [
    # most specific first
    (JobConflictError, "materialization_running"),
    (ConcurrentApplyError, "conflict"),
    (RegistryError, "registry_error"),
    (ConfigError, "config_error"),
    (AuditError, "audit_unavailable"),
    (EncryptionError, "encryption_error"),
    (GovernanceError, "governance_error"),
    (IngestError, "invalid_rows"),
    (RequestDataError, "missing_request_data"),
    (RetrievalError, "invalid_request"),
    (TransformationError, "transformation_failed"),
    (DataSourceNotFoundError, "data_source_not_found"),
    (DataSourceError, "data_source_error"),
    (DefinitionError, "invalid_definition"),
    (OnlineStoreError, "online_store_error"),
]


class ApiError(Exception):
    """An error answered to the caller as JSON with a stable code."""

    def __init__(self, code: str, message: str, status: int | None = None, **extra: Any):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status if status is not None else CODES[code]
        self.extra = extra
        """More fields of the error object (e.g. what a partial write left behind)."""

    def body(self, request_id: str) -> bytes:
        return error_body(self.code, self.message, request_id, **self.extra)


def error_body(code: str, message: str, request_id: str, **extra: Any) -> bytes:
    err = {"code": code, "message": message, "request_id": request_id, **extra}
    return orjson.dumps({"error": err})


def not_found_code(exc: ObjectNotFoundError) -> str:
    """``unknown_feature_view``, ``unknown_data_source``... from the error's kind."""
    return "unknown_" + exc.kind.replace(" ", "_")


def from_exception(exc: BaseException) -> ApiError:
    """The ApiError for any exception: ParityError by class and ``http_status``, an
    unreachable store as 503, anything else a 500 ``internal_error`` (a bug of ours)."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, AccessError | LifecycleError):
        return ApiError(exc.code, str(exc), exc.http_status)
    if isinstance(exc, ObjectNotFoundError):
        return ApiError(not_found_code(exc), str(exc), exc.http_status)
    if isinstance(exc, PartialWriteError):  # before the connection check: it says more
        return ApiError(
            "online_write_failed",
            str(exc),
            push_id=exc.push_id,
            offline_rows=exc.offline_rows,
            online_views_written=exc.online_views_written,
            online_views_failed=exc.online_views_failed,
        )
    if isinstance(exc, ParityError) and exc.http_status >= 500 and _caused_by_connection(exc):
        # a store wraps its client's error in a plain ParityError: unreachable, not a bug
        return ApiError("online_store_unavailable", str(exc))
    if isinstance(exc, ParityError):
        code = next((c for cls, c in _BY_CLASS if isinstance(exc, cls)), None)
        status = exc.http_status
        if code is None:
            code = "internal_error" if status >= 500 else "invalid_request"
        return ApiError(code, str(exc), status)
    if _is_connection_error(exc):
        return ApiError("online_store_unavailable", f"online store unreachable: {exc}")
    return ApiError("internal_error", "internal error; the log has the details")


def _caused_by_connection(exc: BaseException) -> bool:
    seen = 0
    cause = exc.__cause__ or exc.__context__
    while cause is not None and seen < 8:
        if _is_connection_error(cause):
            return True
        cause, seen = cause.__cause__ or cause.__context__, seen + 1
    return False


def _is_connection_error(exc: BaseException) -> bool:
    # redis-py's ConnectionError/TimeoutError do not derive from the builtins; match by name
    # so the server needs no store's client library.
    if isinstance(exc, ConnectionError | TimeoutError):
        return True
    return type(exc).__module__.startswith("redis") and type(exc).__name__ in (
        "ConnectionError",
        "TimeoutError",
        "ClusterDownError",
    )
