"""What the incumbent's clients rely on, in process: integer keys sent as text, the error
shape its SDK re-raises, and the Python API refusing a key of the wrong type."""

from __future__ import annotations

import json

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from feast_sdk import import_feast
from parity.server.errors import CODES, ApiError
from parity.server.feast_errors import FEAST_CLASSES, feast_class, feast_error_body
from parity.server.handlers import int_keys
from parity.types import Int64

(feast_errors,) = import_feast("feast.errors")
INT64 = (-(2**63), 2**63 - 1)


def converted(text: str) -> int | None:
    """The rule, stated independently: text converts when it is exactly how Python writes
    an integer of Int64's range."""
    try:
        n = int(text)
    except ValueError:
        return None
    return n if str(n) == text and INT64[0] <= n <= INT64[1] else None


TEXTS = st.one_of(
    st.integers(-(2**64), 2**64).map(str),
    st.text(alphabet="0123456789-+ _.e", max_size=24),
    st.text(max_size=24),
)


@given(values=st.lists(st.one_of(TEXTS, st.integers(*INT64)), max_size=6))
def test_integer_keys_as_text_convert_exactly_when_canonical(values):
    bad = [i for i, v in enumerate(values) if type(v) is str and converted(v) is None]
    if bad:
        with pytest.raises(ApiError) as caught:
            int_keys(values, "driver_id", Int64)
        assert caught.value.code == "wrong_value_type"
        assert f"entities.driver_id[{bad[0]}]" in caught.value.message
        assert "Int64" in caught.value.message
        return
    got = int_keys(values, "driver_id", Int64)
    assert got == [converted(v) if type(v) is str else v for v in values]
    assert all(type(v) is int for v in got)


@pytest.mark.parametrize(
    "text", ["01", "+1", " 1", "1 ", "-0", "1_000", "\u0661", "9223372036854775808"]
)
def test_non_canonical_integer_text_is_refused(text):
    with pytest.raises(ApiError, match=r"entities\.k\[0\]"):
        int_keys([text], "k", Int64)


def test_every_feast_class_named_exists_and_is_a_feast_error():
    for code, name in FEAST_CLASSES.items():
        assert code in CODES, code
        cls = getattr(feast_errors, name)
        assert issubclass(cls, feast_errors.FeastError), name
    assert feast_class("invalid_rows") == "FeastError"


@pytest.mark.parametrize("code", sorted(CODES))
def test_the_sdk_re_raises_each_code_as_its_class(code):
    body = orjson.loads(feast_error_body(code, "what went wrong", "rid-1"))
    assert isinstance(body, str)  # a JSON string holding the detail, as the SDK expects
    err = feast_errors.FeastError.from_error_detail(body)
    assert type(err).__name__ == feast_class(code)
    assert isinstance(err, feast_errors.FeastError)
    assert str(err) == f"what went wrong (parity error {code}, request id rid-1)"
    assert json.loads(body)["module"] == "feast.errors"
