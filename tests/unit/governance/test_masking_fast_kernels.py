"""The list kernels' fast paths (memoised pseudonyms, ``map`` over a column, the
``truncate:1`` index) give exactly what the rules define, for arbitrary values: the keyed
BLAKE2b pseudonym of each value, the first N code points or bytes, null for null; whether a
value is remembered or not, and across the memo being forgotten."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from parity.governance import masking
from parity.governance.masking import HASH_DIGEST_BYTES, parse_mask
from parity.types import Bytes, Int32, Int64, String

KEY = bytes(range(32))
TEXT = st.lists(st.none() | st.text(max_size=12), max_size=40)
BLOBS = st.lists(
    st.none()
    | st.binary(max_size=12)
    | st.binary(max_size=12).map(bytearray)
    | st.binary(max_size=12).map(memoryview),
    max_size=40,
)
INT64S = st.lists(st.none() | st.integers(-(2**63), 2**63 - 1), max_size=40)
INT32S = st.lists(st.none() | st.integers(-(2**31), 2**31 - 1), max_size=40)
WIDTHS = st.sampled_from([0, 1, 2, 3, 8, 40])


def _digest(data: bytes) -> bytes:
    return hashlib.blake2b(data, key=KEY, digest_size=HASH_DIGEST_BYTES).digest()


def _pseudonym(dtype: Any, v: Any) -> Any:
    """The rule, written out: what ``hash`` gives ``v`` of ``dtype``."""
    if v is None:
        return None
    if dtype is String:
        return _digest(v.encode()).hex()
    if dtype is Bytes:
        return _digest(bytes(v))
    width = 4 if dtype is Int32 else 8
    return int.from_bytes(_digest(str(int(v)).encode())[:width], "big", signed=True)


def _truncated(dtype: Any, v: Any, n: int) -> Any:
    if v is None:
        return None
    return v[:n] if dtype is String else bytes(v[:n])


@pytest.mark.parametrize(
    ("dtype", "values"), [(String, TEXT), (Bytes, BLOBS), (Int64, INT64S), (Int32, INT32S)]
)
def test_hash_is_the_keyed_pseudonym_of_every_value_remembered_or_not(dtype, values) -> None:
    @given(first=values, second=values)
    def check(first: list, second: list) -> None:
        if dtype is Bytes:  # a memo needs hashable values: bytearray and memoryview are not
            first = [None if v is None else bytes(v) for v in first]
            second = [None if v is None else bytes(v) for v in second]
        mask = parse_mask("hash", dtype, KEY)
        expected = [_pseudonym(dtype, v) for v in first]
        assert mask.values(list(first)) == expected  # computed
        assert mask.values(list(first)) == expected  # remembered
        # a mix of remembered and new values, duplicates, nulls
        mixed = second + first + second
        assert mask.values(mixed) == [_pseudonym(dtype, v) for v in mixed]

    check()


@given(values=TEXT, more=TEXT)
def test_hash_stays_right_when_the_memo_is_forgotten(values: list, more: list) -> None:
    saved = masking.MEMO_SIZE
    masking.MEMO_SIZE = 3  # forgotten every few new values
    try:
        mask = parse_mask("hash", String, KEY)
        for batch in (values, more, values + more, more):
            assert mask.values(list(batch)) == [_pseudonym(String, v) for v in batch]
    finally:
        masking.MEMO_SIZE = saved


def test_the_memo_keeps_nulls_null_and_out_of_it() -> None:
    memo = masking._Memo(lambda v: v * 2)
    assert memo[None] is None and memo["a"] == "aa"
    assert None not in memo and list(memo) == ["a"]


@given(values=TEXT, n=WIDTHS)
def test_string_truncation_is_the_first_n_code_points(values: list, n: int) -> None:
    mask = parse_mask(f"truncate:{n}", String, KEY)
    assert mask.values(list(values)) == [_truncated(String, v, n) for v in values]


@given(values=BLOBS, n=WIDTHS)
def test_bytes_truncation_is_the_first_n_bytes_as_bytes(values: list, n: int) -> None:
    mask = parse_mask(f"truncate:{n}", Bytes, KEY)
    got = mask.values(list(values))
    assert got == [_truncated(Bytes, v, n) for v in values]
    assert all(v is None or type(v) is bytes for v in got)


@given(values=st.lists(st.none() | st.text(max_size=3) | st.integers(), max_size=40))
def test_null_masks_every_value(values: list) -> None:
    assert parse_mask("null", String, KEY).values(values) == [None] * len(values)


def test_a_value_a_rule_cannot_take_still_fails() -> None:
    with pytest.raises(TypeError):
        parse_mask("truncate:2", String, KEY).values(["ab", 5])
    with pytest.raises(TypeError):
        parse_mask("truncate:1", String, KEY).values(["ab", 5])
    with pytest.raises(TypeError):
        parse_mask("truncate:2", Bytes, KEY).values([b"ab", "cd"])
