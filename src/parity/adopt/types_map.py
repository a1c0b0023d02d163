"""Feast's value types as Parity types, and what has no Parity counterpart.

Feast names types as its SDK does (``Float32``, ``UnixTimestamp``, ``Array(Int64)``); an
entity's value type is a ``ValueType`` member (``INT64``). Each function answers the Parity
type name, or raises ``Unsupported`` with the reason.
"""

from __future__ import annotations

import re

__all__ = ["Unsupported", "entity_type", "field_type", "note_for"]


class Unsupported(ValueError):
    """A Feast type Parity cannot hold; the message says why."""


_SAME = {"Int32", "Int64", "Float32", "Float64", "String", "Bool", "Bytes"}
_RENAMED = {
    "UnixTimestamp": "Timestamp",
    "Json": "String",
    "PdfBytes": "Bytes",
    "ImageBytes": "Bytes",
}
_NOTES = {
    "Json": "Feast type Json is kept as its text (String)",
    "PdfBytes": "Feast type PdfBytes is kept as Bytes",
    "ImageBytes": "Feast type ImageBytes is kept as Bytes",
}
_ENTITY = {
    "INT64": "Int64",
    "INT32": "Int32",
    "STRING": "String",
    "BYTES": "Bytes",
    "BOOL": "Bool",
    "FLOAT": "Float32",
    "DOUBLE": "Float64",
    "UNIX_TIMESTAMP": "Timestamp",
}
_ARRAY = re.compile(r"^Array\((\w+)\)$")


def field_type(feast_type: str) -> str:
    """The Parity type name for a feature of Feast type ``feast_type``."""
    if feast_type in _SAME:
        return feast_type
    if feast_type in _RENAMED:
        return _RENAMED[feast_type]
    m = _ARRAY.match(feast_type)
    if m:
        inner = m.group(1)
        element = inner if inner in _SAME else {"UnixTimestamp": "Timestamp"}.get(inner)
        if element is None:
            raise Unsupported(f"Feast type {feast_type} has no Parity type (arrays of {inner})")
        return f"Array({element})"
    kinds = {
        "Map": "maps",
        "ScalarMap": "maps",
        "Struct": "structs",
        "Uuid": "UUIDs",
        "TimeUuid": "UUIDs",
        "Decimal": "decimals",
        "ZonedTimestamp": "zoned timestamps",
    }
    what = kinds.get(feast_type) or ("sets" if feast_type.startswith("Set(") else None)
    hint = f" (Parity has no {what})" if what else ""
    raise Unsupported(f"Feast type {feast_type} has no Parity type{hint}")


def note_for(feast_type: str) -> str | None:
    """What changes when ``feast_type`` is converted, or None when nothing does."""
    return _NOTES.get(feast_type)


def entity_type(value_type: str | None) -> str | None:
    """The Parity type of an entity's join keys; None when Feast gave none."""
    if value_type is None:
        return None
    if value_type in _ENTITY:
        return _ENTITY[value_type]
    raise Unsupported(f"Feast value type {value_type} has no Parity join-key type")
