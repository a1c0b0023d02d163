"""A schemathesis hook for the fuzz run: what JSON Schema cannot say about a valid body.

``entities`` and ``df`` are columns of equal length, which a schema cannot state; generated
independently, valid bodies would almost never have them, and nearly every valid request
would stop at "columns differ in length" instead of reaching the store. A valid (positive)
case gets its columns cut to the shortest one's length (at least 1, so each stays valid);
an invalid (negative) case is sent as generated.
"""

from __future__ import annotations

from typing import Any

COLUMNS = {"/get-online-features": "entities", "/push": "df"}


def equal_columns(case: Any) -> Any:
    """``case`` with its body's columns of equal length when it is a valid case."""
    member = COLUMNS.get(case.operation.path)
    meta = case.meta
    if member is None or meta is None or meta.generation.mode.is_negative:
        return case
    body = case.body
    columns = body.get(member) if isinstance(body, dict) else None
    if not isinstance(columns, dict):
        return case
    lists = [v for v in columns.values() if isinstance(v, list) and v]
    if not lists:
        return case
    n = min(len(v) for v in lists)
    body[member] = {k: v[:n] if isinstance(v, list) and v else v for k, v in columns.items()}
    return case
