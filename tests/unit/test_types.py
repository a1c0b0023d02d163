"""Value types: spec names, aliases, what a source column may feed, and the Arrow mapping."""

from __future__ import annotations

import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from parity import types as T
from parity.errors import DefinitionError

PRIMITIVES = [T.Int32, T.Int64, T.Float32, T.Float64, T.String, T.Bool, T.Bytes, T.Timestamp]
value_types = st.sampled_from(PRIMITIVES) | st.sampled_from(PRIMITIVES).map(T.Array)

INT_COLUMNS = [
    pa.int8(),
    pa.int16(),
    pa.int32(),
    pa.int64(),
    pa.uint8(),
    pa.uint16(),
    pa.uint32(),
    pa.uint64(),
]
FLOAT_COLUMNS = [pa.float16(), pa.float32(), pa.float64(), pa.decimal128(10, 2)]
STRING_COLUMNS = [pa.string(), pa.large_string(), pa.dictionary(pa.int32(), pa.string())]
OTHER_COLUMNS = {
    "bool": [pa.bool_()],
    "bytes": [pa.binary(), pa.large_binary(), pa.binary(16)],
    "timestamp": [pa.timestamp("ns"), pa.timestamp("us", tz="UTC"), pa.date32()],
}
COLUMNS_BY_KIND = {
    "int": INT_COLUMNS,
    "float": FLOAT_COLUMNS,
    "string": STRING_COLUMNS,
    **OTHER_COLUMNS,
}
ALL_COLUMNS = [(kind, t) for kind, ts in COLUMNS_BY_KIND.items() for t in ts]


@pytest.mark.parametrize("t", PRIMITIVES, ids=str)
def test_every_primitive_reads_back_from_its_name(t: T.PrimitiveType) -> None:
    assert T.parse(t.name) is t
    assert str(t) == repr(t) == t.name
    assert T.parse(t) is t


@given(value_types)
def test_name_round_trip(t: T.ValueType) -> None:
    assert T.parse(t.name) == t
    assert T.parse(f"  {t.name} ") == t
    assert T.from_arrow(t.to_arrow()) == t
    assert t.accepts(t.to_arrow())
    assert hash(T.parse(t.name)) == hash(t)


def test_array_name() -> None:
    emb = T.Array(T.Float32)
    assert emb.name == "Array(Float32)"
    assert emb.to_arrow() == pa.list_(pa.float32())
    assert T.Array(T.Float32) == emb
    assert T.Array(T.Float64) != emb


@pytest.mark.parametrize(
    ("alias", "expected"),
    [
        ("int", T.Int64),
        ("integer", T.Int64),
        ("bigint", T.Int64),
        ("INT64", T.Int64),
        ("int32", T.Int32),
        ("float", T.Float64),
        ("double", T.Float64),
        ("float32", T.Float32),
        ("str", T.String),
        ("string", T.String),
        ("boolean", T.Bool),
        ("bool", T.Bool),
        ("binary", T.Bytes),
        ("bytes", T.Bytes),
        ("datetime", T.Timestamp),
        ("timestamp", T.Timestamp),
        ("Array(int)", T.Array(T.Int64)),
        ("array<float32>", T.Array(T.Float32)),
        ("ARRAY<string>", T.Array(T.String)),
    ],
)
def test_aliases(alias: str, expected: T.ValueType) -> None:
    assert T.parse(alias) == expected


@pytest.mark.parametrize(
    "bad", ["flaot", "", "Int128", "Array()", "Array(Array(Int64))", "list<int>", "Map(String)"]
)
def test_unknown_type_is_refused(bad: str) -> None:
    with pytest.raises(DefinitionError, match="unknown type") as info:
        T.parse(bad)
    assert "Array(T)" in str(info.value)  # the message lists what is known


@pytest.mark.parametrize("bad", [5, None, int, ["Int64"]])
def test_type_must_be_named(bad: object) -> None:
    with pytest.raises(DefinitionError, match="must be given by name"):
        T.parse(bad)  # type: ignore[arg-type]


def test_array_of_array_is_refused() -> None:
    with pytest.raises(DefinitionError, match="primitive"):
        T.Array(T.Array(T.Int64))


@pytest.mark.parametrize("column", INT_COLUMNS, ids=str)
def test_int_columns_feed_int_and_float_fields_only(column: pa.DataType) -> None:
    # Integers widen to floats (a CSV reader infers "1.0" as an integer), nothing else.
    for t in (T.Int32, T.Int64, T.Float32, T.Float64):
        assert t.accepts(column), t
    for t in (T.String, T.Bool, T.Bytes, T.Timestamp):
        assert not t.accepts(column), t


@pytest.mark.parametrize("column", FLOAT_COLUMNS, ids=str)
def test_float_columns_feed_float_fields_only(column: pa.DataType) -> None:
    assert T.Float32.accepts(column)
    assert T.Float64.accepts(column)
    for t in (T.Int32, T.Int64, T.String, T.Bool):
        assert not t.accepts(column), t  # never float -> int


@pytest.mark.parametrize(("kind", "column"), ALL_COLUMNS, ids=lambda x: str(x))
def test_accepts_is_same_kind(kind: str, column: pa.DataType) -> None:
    for t in PRIMITIVES:
        widening = t.kind == "float" and kind == "int"
        assert t.accepts(column) == (t.kind == kind or widening), (t, column)


def test_no_lossy_change_of_kind() -> None:
    assert not T.String.accepts(pa.int64())  # never int -> string
    assert not T.Int64.accepts(pa.string())
    assert not T.Int64.accepts(pa.float64())
    assert not T.Bool.accepts(pa.int8())
    assert not T.Int64.accepts(pa.list_(pa.int64()))


def test_array_accepts_lists_of_its_element_kind() -> None:
    emb = T.Array(T.Float32)
    assert emb.accepts(pa.list_(pa.float64()))
    assert emb.accepts(pa.large_list(pa.float32()))
    assert emb.accepts(pa.list_(pa.float32(), 4))
    assert emb.accepts(pa.list_(pa.int64()))  # element widening, as for scalars
    assert not T.Array(T.Int64).accepts(pa.list_(pa.float32()))
    assert not emb.accepts(pa.float32())
    assert T.Array(T.Int64).accepts(pa.list_(pa.int32()))
    assert not T.Array(T.Int64).accepts(pa.list_(pa.float32()))


@pytest.mark.parametrize(
    ("column", "expected"),
    [
        (pa.int8(), T.Int32),
        (pa.int16(), T.Int32),
        (pa.int32(), T.Int32),
        (pa.uint8(), T.Int32),
        (pa.uint16(), T.Int32),
        (pa.int64(), T.Int64),
        (pa.uint32(), T.Int64),
        (pa.float16(), T.Float32),
        (pa.float32(), T.Float32),
        (pa.float64(), T.Float64),
        (pa.decimal128(10, 2), T.Float64),
        (pa.string(), T.String),
        (pa.large_string(), T.String),
        (pa.dictionary(pa.int32(), pa.string()), T.String),
        (pa.bool_(), T.Bool),
        (pa.binary(), T.Bytes),
        (pa.timestamp("ns"), T.Timestamp),
        (pa.timestamp("ms", tz="Europe/Paris"), T.Timestamp),
        (pa.date32(), T.Timestamp),
        (pa.list_(pa.float32()), T.Array(T.Float32)),
        (pa.large_list(pa.int64()), T.Array(T.Int64)),
        (pa.list_(pa.float32(), 8), T.Array(T.Float32)),
    ],
    ids=str,
)
def test_from_arrow(column: pa.DataType, expected: T.ValueType) -> None:
    got = T.from_arrow(column)
    assert got == expected
    assert got.accepts(column)


@pytest.mark.parametrize(
    "column",
    [
        pa.struct([("a", pa.int64())]),
        pa.null(),
        pa.map_(pa.string(), pa.int64()),
        pa.list_(pa.list_(pa.int64())),
    ],
    ids=str,
)
def test_from_arrow_refuses_what_no_type_holds(column: pa.DataType) -> None:
    with pytest.raises(DefinitionError):
        T.from_arrow(column)
