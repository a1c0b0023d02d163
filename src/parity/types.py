"""Value types of features and join keys, and their mapping to Arrow.

A type is an immutable value: ``Int64``, ``Float32``, ``Array(String)``. Its ``name`` is the
spec form stored in the registry (``"Int64"``, ``"Array(String)"``) and ``parse`` reads it
back. ``accepts`` says whether a source column of some Arrow type may feed a field of this
type: same kind (integers to integers, floats to floats...) or integers to floats, never a
lossy change of kind such as float to int or int to string.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

from parity.errors import DefinitionError

if TYPE_CHECKING:
    import pyarrow as pa
else:  # pyarrow loads on first use, so defining features does not import it

    class _LazyArrow:
        def __getattr__(self, name: str) -> object:
            import pyarrow

            globals()["pa"] = pyarrow
            return getattr(pyarrow, name)

    pa = _LazyArrow()

__all__ = [
    "Array",
    "Bool",
    "Bytes",
    "Float32",
    "Float64",
    "Int32",
    "Int64",
    "PrimitiveType",
    "String",
    "Timestamp",
    "ValueType",
    "from_arrow",
    "parse",
]


class ValueType:
    """Base of every feature value type."""

    name: str

    def to_arrow(self) -> pa.DataType:
        raise NotImplementedError

    def accepts(self, arrow_type: pa.DataType) -> bool:
        """Whether a source column of ``arrow_type`` may feed a field of this type."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return self.name

    def __str__(self) -> str:
        return self.name


@cache
def _kind(t: pa.DataType) -> str | None:
    if pa.types.is_boolean(t):
        return "bool"
    if pa.types.is_integer(t):
        return "int"
    if pa.types.is_floating(t) or pa.types.is_decimal(t):
        return "float"
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return "string"
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        return "bytes"
    if pa.types.is_timestamp(t) or pa.types.is_date(t):
        return "timestamp"
    if pa.types.is_dictionary(t):
        return _kind(t.value_type)
    return None


@dataclass(frozen=True, repr=False)
class PrimitiveType(ValueType):
    name: str
    arrow_name: str
    """The name of its pyarrow type factory (``int64``...); ``timestamp`` is µs, UTC."""
    kind: str

    def to_arrow(self) -> pa.DataType:
        return _arrow(self.arrow_name)

    def accepts(self, arrow_type: pa.DataType) -> bool:
        kind = _kind(arrow_type)
        # Integers widen to floats (CSV readers infer 1.0 as an integer); never the reverse.
        return kind == self.kind or (self.kind == "float" and kind == "int")


@cache
def _arrow(name: str) -> pa.DataType:
    if name == "timestamp":
        return pa.timestamp("us", tz="UTC")
    return getattr(pa, name)()


Int32 = PrimitiveType("Int32", "int32", "int")
Int64 = PrimitiveType("Int64", "int64", "int")
Float32 = PrimitiveType("Float32", "float32", "float")
Float64 = PrimitiveType("Float64", "float64", "float")
String = PrimitiveType("String", "string", "string")
Bool = PrimitiveType("Bool", "bool_", "bool")
Bytes = PrimitiveType("Bytes", "binary", "bytes")
Timestamp = PrimitiveType("Timestamp", "timestamp", "timestamp")

_PRIMITIVES: dict[str, PrimitiveType] = {
    t.name: t for t in (Int32, Int64, Float32, Float64, String, Bool, Bytes, Timestamp)
}


@dataclass(frozen=True, repr=False)
class Array(ValueType):
    """A list of values of one primitive type, e.g. ``Array(Float32)`` for an embedding."""

    element: ValueType

    def __post_init__(self) -> None:
        if not isinstance(self.element, PrimitiveType):
            raise DefinitionError(
                f"Array element type must be a primitive type, got {self.element!r}"
            )

    @property
    def name(self) -> str:  # type: ignore[override]
        return f"Array({self.element.name})"

    def to_arrow(self) -> pa.DataType:
        return pa.list_(self.element.to_arrow())

    def accepts(self, arrow_type: pa.DataType) -> bool:
        if (
            pa.types.is_list(arrow_type)
            or pa.types.is_large_list(arrow_type)
            or pa.types.is_fixed_size_list(arrow_type)
        ):
            return self.element.accepts(arrow_type.value_type)
        return False


_ARRAY_RE = re.compile(r"^Array\((\w+)\)$")
_ALIASES = {
    "int": Int64,
    "int32": Int32,
    "int64": Int64,
    "integer": Int64,
    "bigint": Int64,
    "float": Float64,
    "float32": Float32,
    "float64": Float64,
    "double": Float64,
    "str": String,
    "string": String,
    "bool": Bool,
    "boolean": Bool,
    "bytes": Bytes,
    "binary": Bytes,
    "timestamp": Timestamp,
    "datetime": Timestamp,
}


def parse(spec: str | ValueType) -> ValueType:
    """Read a type from its spec name (``"Float32"``, ``"Array(Int64)"``) or a lowercase alias."""
    if isinstance(spec, ValueType):
        return spec
    if not isinstance(spec, str):
        raise DefinitionError(f"a type must be given by name, got {spec!r}")
    text = spec.strip()
    if text in _PRIMITIVES:
        return _PRIMITIVES[text]
    m = _ARRAY_RE.match(text) or re.match(r"^array<(\w+)>$", text, re.IGNORECASE)
    if m:
        return Array(parse(m.group(1)))
    alias = _ALIASES.get(text.lower())
    if alias is not None:
        return alias
    known = ", ".join([*_PRIMITIVES, "Array(T)"])
    raise DefinitionError(f"unknown type {spec!r}; known types: {known}")


def from_arrow(arrow_type: pa.DataType) -> ValueType:
    """The Parity type that holds a column of ``arrow_type`` without a change of kind."""
    if pa.types.is_dictionary(arrow_type):
        return from_arrow(arrow_type.value_type)
    if (
        pa.types.is_list(arrow_type)
        or pa.types.is_large_list(arrow_type)
        or pa.types.is_fixed_size_list(arrow_type)  # Array.accepts these (embeddings)
    ):
        return Array(from_arrow(arrow_type.value_type))
    if (
        pa.types.is_int32(arrow_type)
        or pa.types.is_int16(arrow_type)
        or pa.types.is_int8(arrow_type)
    ):
        return Int32
    if pa.types.is_uint8(arrow_type) or pa.types.is_uint16(arrow_type):
        return Int32
    if pa.types.is_float32(arrow_type) or pa.types.is_float16(arrow_type):
        return Float32
    kind = _kind(arrow_type)
    by_kind = {
        "int": Int64,
        "float": Float64,
        "string": String,
        "bool": Bool,
        "bytes": Bytes,
        "timestamp": Timestamp,
    }
    if kind is None:
        raise DefinitionError(f"no Parity type holds Arrow type {arrow_type}")
    return by_kind[kind]
