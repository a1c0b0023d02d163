"""The incumbent's error shape, for its SDK: a JSON *string* naming an exception class.

The Feast SDK (its ``rest_error_handler``) re-raises a failed answer as
``FeastError.from_error_detail(response.json())``: the body must be a JSON string holding
``{"module", "class", "message"}``, and the class is imported on the client. So a Feast
client pointed at Parity gets ``FeatureViewNotFoundException`` rather than a bare
``RuntimeError`` holding Parity's error object::

    "{\\"module\\": \\"feast.errors\\", \\"class\\": \\"FeatureViewNotFoundException\\", ...}"

Each Parity code maps to the closest class of ``feast.errors`` (``FeastError``, their root,
where none fits); the status code stays Parity's, and the message ends with Parity's code
and the request id (also sent as the ``X-Parity-Error-Code`` and ``X-Request-Id`` headers).
Only names are kept here: the server never imports Feast.

Which shape an answer gets: the ``X-Parity-Errors: feast`` (or ``parity``) request header,
else the server's setting (``parity serve --errors feast``, or ``server: {errors: feast}``
in parity.yaml), else Parity's own error object.
"""

from __future__ import annotations

import json

import orjson

__all__ = ["ERROR_SHAPES", "FEAST_CLASSES", "FEAST_MODULE", "feast_class", "feast_error_body"]

ERROR_SHAPES = ("parity", "feast")
FEAST_MODULE = "feast.errors"
FEAST_ROOT = "FeastError"

FEAST_CLASSES: dict[str, str] = {
    "unknown_feature_view": "FeatureViewNotFoundException",
    "unknown_feature_service": "FeatureServiceNotFoundException",
    "unknown_entity": "EntityNotFoundException",
    "unknown_data_source": "DataSourceObjectNotFoundException",
    "unknown_push_source": "PushSourceNotFoundException",
    "data_source_not_found": "DataSourceNotFoundException",
    "missing_request_data": "RequestDataNotFoundInEntityRowsException",
    "missing_join_key": "FeastEntityDFMissingColumnsError",
    "unknown_materialization": "FeastObjectNotFoundException",
    "not_found": "FeastObjectNotFoundException",
}
"""Parity code -> ``feast.errors`` class; every other code is ``FeastError``."""


def feast_class(code: str) -> str:
    """The ``feast.errors`` class name for a Parity error code."""
    return FEAST_CLASSES.get(code, FEAST_ROOT)


def feast_error_body(code: str, message: str, request_id: str) -> bytes:
    """The body the Feast SDK re-raises: a JSON string of ``{"module", "class", "message"}``
    (the message ending with Parity's code and the request id)."""
    detail = json.dumps(
        {
            "module": FEAST_MODULE,
            "class": feast_class(code),
            "message": f"{message} (parity error {code}, request id {request_id})",
        }
    )
    return orjson.dumps(detail)
