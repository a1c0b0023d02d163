"""Mask kernels: the list form (online responses) and the Arrow form (historical tables)
give the same result for every value; nulls stay null; a hash keeps the field's type, is
keyed and stable; a rule a type cannot take is refused."""

from __future__ import annotations

import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from parity.config import RepoConfig
from parity.errors import ConfigError
from parity.governance.masking import hash_key, mask_problem, parse_mask
from parity.types import (
    Array,
    Bool,
    Bytes,
    Float64,
    Int32,
    Int64,
    String,
    Timestamp,
)

KEY = b"k" * 32
TEXT = st.lists(st.none() | st.text(max_size=20), max_size=30)
BLOBS = st.lists(st.none() | st.binary(max_size=20), max_size=30)
INT64S = st.lists(st.none() | st.integers(-(2**63), 2**63 - 1), max_size=30)
INT32S = st.lists(st.none() | st.integers(-(2**31), 2**31 - 1), max_size=30)
RULES = st.sampled_from(["null", "hash", "truncate:0", "truncate:1", "truncate:3", "truncate:40"])


def _both(rule: str, dtype, values: list) -> tuple[list, list]:
    mask = parse_mask(rule, dtype, KEY)
    listed = mask.values(list(values))
    arrow = mask.arrow(pa.array(values, dtype.to_arrow()))
    assert arrow.type == dtype.to_arrow()  # the declared type, whatever the mask
    return listed, arrow.to_pylist()


@given(values=TEXT, rule=RULES)
def test_strings_mask_alike_on_lists_and_arrow(values: list, rule: str) -> None:
    listed, arrow = _both(rule, String, values)
    assert listed == arrow
    assert [v is None for v in listed] == [v is None or rule == "null" for v in values]
    if rule.startswith("truncate:"):
        n = int(rule.split(":")[1])
        assert listed == [None if v is None else v[:n] for v in values]


@given(values=BLOBS, rule=RULES)
def test_bytes_mask_alike_on_lists_and_arrow(values: list, rule: str) -> None:
    listed, arrow = _both(rule, Bytes, values)
    assert listed == arrow
    if rule == "hash":
        assert all(v is None or len(v) == 16 for v in listed)


@given(values=INT64S, rule=st.sampled_from(["null", "hash"]))
def test_int64_mask_alike_on_lists_and_arrow(values: list, rule: str) -> None:
    listed, arrow = _both(rule, Int64, values)
    assert listed == arrow


@given(values=INT32S)
def test_int32_hash_stays_within_int32(values: list) -> None:
    listed, arrow = _both("hash", Int32, values)
    assert listed == arrow
    assert all(v is None or -(2**31) <= v < 2**31 for v in listed)


@given(values=st.lists(st.none() | st.floats(allow_nan=False), max_size=20))
def test_null_masks_every_type(values: list) -> None:
    listed, arrow = _both("null", Float64, values)
    assert listed == arrow == [None] * len(values)


@given(a=st.text(max_size=30), b=st.text(max_size=30))
def test_hash_is_a_stable_keyed_pseudonym(a: str, b: str) -> None:
    one = parse_mask("hash", String, KEY).values
    other = parse_mask("hash", String, b"o" * 32).values
    ha, hb = one([a, b])
    assert len(ha) == 32 and all(c in "0123456789abcdef" for c in ha)
    assert one([a]) == [ha]  # stable
    assert (ha == hb) == (a == b)  # distinct values, distinct pseudonyms (128 bits)
    assert other([a]) != [ha]  # keyed: another key, another pseudonym


def test_hash_is_unchanged_across_chunks() -> None:
    mask = parse_mask("hash", String, KEY)
    chunked = pa.chunked_array([["a", None], ["b"]])
    assert mask.arrow(chunked).to_pylist() == mask.values(["a", None, "b"])


@pytest.mark.parametrize(
    ("rule", "dtype", "ok"),
    [
        ("null", Timestamp, True),
        ("null", Array(String), True),
        ("hash", String, True),
        ("hash", Bytes, True),
        ("hash", Int32, True),
        ("hash", Float64, False),
        ("hash", Bool, False),
        ("hash", Timestamp, False),
        ("hash", Array(String), False),
        ("truncate:4", String, True),
        ("truncate:4", Bytes, True),
        ("truncate:4", Int64, False),
        ("truncate:4", Float64, False),
        ("truncate:4", Array(String), False),
        ("rot13", String, False),
    ],
)
def test_rules_a_type_cannot_take_are_refused(rule: str, dtype, ok: bool) -> None:
    problem = mask_problem(rule, dtype)
    assert (problem is None) == ok
    if not ok:
        assert str(dtype) in problem or "unknown" in problem
        with pytest.raises(ValueError, match=rule.split(":")[0]):
            parse_mask(rule, dtype, KEY)


def _config(tmp_path, masking: dict) -> RepoConfig:
    return RepoConfig(project="proj", masking=masking, repo_path=tmp_path)


def test_hash_key_from_a_file_an_environment_variable_or_the_project(tmp_path, monkeypatch):
    (tmp_path / "mask.key").write_text("a secret of more than sixteen bytes\n")
    from_file = hash_key(_config(tmp_path, {"hash_key_file": "mask.key"}), tmp_path)
    monkeypatch.setenv("MASK_KEY", "a secret of more than sixteen bytes")
    from_env = hash_key(_config(tmp_path, {"hash_key_env": "MASK_KEY"}), tmp_path)
    assert from_file == from_env  # the same secret, wherever it is kept
    derived = hash_key(_config(tmp_path, {}), tmp_path)
    assert derived != from_file and len(derived) == 32
    assert hash_key(RepoConfig(project="other"), None) != derived  # per project


def test_a_bad_hash_key_is_an_error_naming_where_never_what(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match=r"hash_key_file .*cannot read"):
        hash_key(_config(tmp_path, {"hash_key_file": "missing.key"}), tmp_path)
    with pytest.raises(ConfigError, match=r"'NOT_SET_ANYWHERE'.* not set"):
        hash_key(_config(tmp_path, {"hash_key_env": "NOT_SET_ANYWHERE"}), tmp_path)
    monkeypatch.setenv("SHORT_KEY", "tiny-secret")
    with pytest.raises(ConfigError, match="shorter than 16") as info:
        hash_key(_config(tmp_path, {"hash_key_env": "SHORT_KEY"}), tmp_path)
    assert "tiny-secret" not in str(info.value)
    with pytest.raises(ValueError, match="not both"):
        _config(tmp_path, {"hash_key_env": "A", "hash_key_file": "b"})
