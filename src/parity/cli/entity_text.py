"""Entity rows typed on the command line: ``--entity driver_id=1001,customer_id=5``.

Each ``--entity`` is one entity row; its ``KEY=VALUE`` pairs are separated by commas (so a
value cannot hold a comma: use the Python API or HTTP for such keys). Values are converted
from text by the type the key's entity declares (or the request field's type, for request
data of on-demand views):

- ``Int32`` / ``Int64``: decimal digits with an optional sign, within the type's range;
- ``Float32`` / ``Float64``: a finite decimal number; ``Bool``: ``true``/``false``/``1``/``0``;
- ``String``: the text as given; ``Bytes``: the text's UTF-8 bytes;
- ``Timestamp``: ISO 8601 (naive = UTC);
- no declared type: an integer when the text is one, else the text.

A value that does not convert is refused, naming the key and its type.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from parity.errors import RetrievalError

__all__ = ["convert", "parse_rows", "typed_rows"]

_INT = re.compile(r"[+-]?[0-9]+")
_INT_RANGE = {"Int32": 2**31, "Int64": 2**63}
_TRUE, _FALSE = {"true", "1", "yes"}, {"false", "0", "no"}


def parse_rows(values: Sequence[str]) -> list[dict[str, str]]:
    """Each ``--entity`` value as one row of ``{key: text}``; every row has the same keys."""
    rows: list[dict[str, str]] = []
    for value in values:
        row: dict[str, str] = {}
        for pair in value.split(","):
            key, sep, text = pair.partition("=")
            key = key.strip()
            if not sep or not key:
                raise RetrievalError(
                    f"--entity {value!r}: write each key as KEY=VALUE, several keys of one row "
                    "separated by commas (driver_id=1001,customer_id=5)"
                )
            if key in row:
                raise RetrievalError(f"--entity {value!r}: key {key!r} is given twice")
            row[key] = text
        if rows and row.keys() != rows[0].keys():
            raise RetrievalError(
                f"--entity {value!r} gives keys {sorted(row)}, the first row {sorted(rows[0])}; "
                "every row needs the same keys"
            )
        rows.append(row)
    return rows


def convert(text: str, dtype: Any, key: str) -> Any:
    """``text`` as a value of ``dtype`` (a ``parity.types`` type, or None: untyped)."""
    name = getattr(dtype, "name", None)
    kind = getattr(dtype, "kind", None)

    def refuse(what: str) -> RetrievalError:
        return RetrievalError(f"entity key {key!r} is {name}: {text!r} is {what}")

    if dtype is None:
        stripped = text.strip()  # int() trims less than str.strip() does (e.g. not \x1f)
        return int(stripped) if _INT.fullmatch(stripped) else text
    if kind == "int":
        if not _INT.fullmatch(text.strip()):
            raise refuse("not an integer")
        value = int(text.strip())
        bound = _INT_RANGE.get(str(name), 2**63)
        if not -bound <= value < bound:
            bits = bound.bit_length() - 1
            raise refuse(f"outside {name} (-2**{bits} to 2**{bits} - 1)")
        return value
    if kind == "float":
        try:
            number = float(text)
        except ValueError:
            raise refuse("not a number") from None
        if not math.isfinite(number):
            raise refuse("not a finite number")
        return number
    if kind == "bool":
        low = text.strip().lower()
        if low not in _TRUE | _FALSE:
            raise refuse("not true or false")
        return low in _TRUE
    if kind == "string":
        return text
    if kind == "bytes":
        return text.encode("utf-8")
    if kind == "timestamp":
        from parity.clock import iso_time

        try:
            return iso_time(text)
        except ValueError:
            raise refuse("not an ISO 8601 time") from None
    raise RetrievalError(f"entity key {key!r} is {name}: such keys cannot be typed on the shell")


def typed_rows(rows: Sequence[Mapping[str, str]], types: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The rows with each value converted by its key's type (a key not in ``types`` as an
    untyped one)."""
    return [{k: convert(v, types.get(k), k) for k, v in row.items()} for row in rows]
