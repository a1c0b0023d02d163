"""Entity rows typed on the command line (``parity get --entity``)."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from parity import types as T
from parity.cli.entity_text import convert, parse_rows, typed_rows
from parity.errors import RetrievalError

INT64 = st.integers(-(2**63), 2**63 - 1)


@given(INT64, st.sampled_from(["", " ", "+"]))
def test_int64_text_round_trips_within_the_range(value: int, pad: str):
    text = ("+" if pad == "+" and value >= 0 else "") + str(value)
    if pad == " ":
        text = f" {text} "
    assert convert(text, T.Int64, "driver_id") == value
    assert type(convert(str(value), T.Int64, "driver_id")) is int


@given(st.one_of(st.integers(max_value=-(2**63) - 1), st.integers(min_value=2**63)))
def test_integers_outside_int64_are_refused_naming_the_key(value: int):
    with pytest.raises(RetrievalError, match=r"entity key 'driver_id' is Int64: .* outside Int64"):
        convert(str(value), T.Int64, "driver_id")


@given(st.integers(-(2**40), 2**40))
def test_int32_has_its_own_range(value: int):
    if -(2**31) <= value < 2**31:
        assert convert(str(value), T.Int32, "k") == value
    else:
        with pytest.raises(RetrievalError, match="outside Int32"):
            convert(str(value), T.Int32, "k")


@given(st.text())
@example("0\x1f")  # str.strip() trims the unit separator, int() does not
def test_text_that_is_not_an_integer_is_refused_for_int_keys(text: str):
    body = text.strip()
    digits = body[1:] if body[:1] in ("+", "-") else body
    if digits and all(c in "0123456789" for c in digits) and -(2**63) <= int(body) < 2**63:
        assert convert(text, T.Int64, "k") == int(body)
    elif digits and all(c in "0123456789" for c in digits):
        with pytest.raises(RetrievalError, match="outside Int64"):
            convert(text, T.Int64, "k")
    else:
        with pytest.raises(RetrievalError, match=r"entity key 'k' is Int64: .* is not an integer"):
            convert(text, T.Int64, "k")


@given(st.text())
def test_string_keys_are_the_text_and_bytes_its_utf8(text: str):
    assert convert(text, T.String, "k") == text
    assert convert(text, T.Bytes, "k") == text.encode("utf-8")


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_float_text_round_trips(value: float):
    assert convert(repr(value), T.Float64, "k") == value


def test_other_types_and_refusals():
    assert convert("true", T.Bool, "k") is True and convert("0", T.Bool, "k") is False
    with pytest.raises(RetrievalError, match="not true or false"):
        convert("maybe", T.Bool, "k")
    with pytest.raises(RetrievalError, match="not a finite number"):
        convert("nan", T.Float64, "k")
    assert convert("2024-01-31T12:00:00", T.Timestamp, "k") == datetime(2024, 1, 31, 12, tzinfo=UTC)
    with pytest.raises(RetrievalError, match="not an ISO 8601 time"):
        convert("soon", T.Timestamp, "k")
    assert convert("17", None, "k") == 17 and convert("a17", None, "k") == "a17"
    with pytest.raises(RetrievalError, match="cannot be typed on the shell"):
        convert("[1]", T.Array(T.Int64), "k")
    assert math.isclose(convert("1e3", T.Float32, "k"), 1000.0)


def test_rows_several_keys_and_their_types():
    rows = parse_rows(["driver_id=1,customer_id=05", "customer_id=7, driver_id=2"])
    assert rows == [{"driver_id": "1", "customer_id": "05"}, {"customer_id": "7", "driver_id": "2"}]
    typed = typed_rows(rows, {"driver_id": T.Int64, "customer_id": T.String})
    assert typed == [{"driver_id": 1, "customer_id": "05"}, {"customer_id": "7", "driver_id": 2}]
    assert parse_rows(["note=a=b"]) == [{"note": "a=b"}]  # only the first '=' splits
    for bad, words in [
        (["driver_id"], "KEY=VALUE"),
        (["=1"], "KEY=VALUE"),
        (["a=1,a=2"], "given twice"),
        (["a=1", "b=2"], "same keys"),
    ]:
        with pytest.raises(RetrievalError, match=words):
            parse_rows(bad)
