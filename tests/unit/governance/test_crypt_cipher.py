"""The cipher and keyring of encryption at rest (``parity.governance.crypto``): every value
round-trips exactly, a ciphertext names its key and is bound to its project, scope and field,
and a wrong, unknown or missing key is an ``EncryptionError`` naming the key id and field,
never the key."""

from __future__ import annotations

import base64
import json
import os
from datetime import UTC, date, datetime
from pathlib import Path

import msgpack
import pyarrow as pa
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given, settings
from hypothesis import strategies as st

from parity.errors import ConfigError, EncryptionError
from parity.governance.crypto import Cipher, Keyring, key_id_of, load_keyring, new_key
from parity.governance.sealing import SEALED, open_log, seal_log
from parity.governance.settings import EncryptionConfig

K1, K2 = os.urandom(32), os.urandom(32)


def cipher(keys: dict[str, bytes] | None = None, active: str = "k1", project: str = "p") -> Cipher:
    return Cipher(Keyring(keys or {"k1": K1, "k2": K2}, active, "test"), project)


# Values as the online store keeps them (msgpack): what features hold, times as µs integers.
values = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False),
    st.text(),
    st.binary(),
    st.booleans(),
    st.lists(st.floats(allow_nan=False), max_size=5),
    st.lists(st.text(max_size=8), max_size=5),
)


@settings(deadline=None, max_examples=200)
@given(st.lists(st.one_of(st.none(), values), max_size=20))
def test_every_value_round_trips(vals):
    c = cipher()
    sealed = c.seal_many(vals, "view", "f")
    assert [s is None for s in sealed] == [v is None for v in vals]
    opened = c.open_many(sealed, "view", "f")
    assert opened == vals
    # -0.0 stays -0.0, and an int stays an int
    assert [type(v) for v in opened] == [type(v) for v in vals]


@settings(deadline=None, max_examples=100)
@given(st.text(min_size=8), st.binary(min_size=8))
def test_plaintext_is_not_in_the_ciphertext(text, blob):
    c = cipher()
    for v, raw in ((text, text.encode()), (blob, blob)):
        (sealed,) = c.seal_many([v], "view", "f")
        assert raw not in sealed
        assert key_id_of(sealed) == "k1"


def _layout(sealed: bytes, key: bytes, aad: bytes) -> bytes:
    """The documented format, read by hand: version, id length, id, nonce, AES-GCM."""
    assert sealed[:1] == b"\x01"
    n = sealed[1]
    nonce = sealed[2 + n : 14 + n]
    return AESGCM(key).decrypt(nonce, sealed[14 + n :], aad)


@settings(deadline=None, max_examples=200)
@given(
    st.integers(min_value=1, max_value=4).flatmap(
        lambda width: st.lists(
            st.lists(st.one_of(st.none(), values), min_size=width, max_size=width),
            max_size=30,
        )
    )
)
def test_every_row_sealed_together_opens_to_its_values(rows):
    """``seal_rows`` (the online encoder's: a row's encrypted features as one value) opens
    to each row's values, in order and of the same types, through ``open_many``; each value
    has the documented layout and a nonce of its own."""
    c = cipher()
    width = len(rows[0]) if rows else 1
    columns = [[row[i] for row in rows] for i in range(width)]
    sealed = c.seal_rows(columns, "view", "\x00a,b")
    assert sealed.type == pa.binary() and len(sealed) == len(rows) and not sealed.null_count
    blobs = sealed.to_pylist()
    opened = c.open_many(blobs, "view", "\x00a,b")
    assert opened == [list(row) for row in rows]
    assert [[type(v) for v in row] for row in opened] == [[type(v) for v in r] for r in rows]
    aad = b"parity\x00p\x00view\x00\x00a,b"
    for blob, row in zip(blobs, rows, strict=True):
        assert key_id_of(blob) == "k1"
        assert msgpack.unpackb(_layout(blob, K1, aad), raw=False) == list(row)
    nonces = {b[4:16] for b in blobs}
    assert len(nonces) == len(blobs)


@settings(deadline=None, max_examples=100)
@given(st.lists(st.one_of(st.none(), values), max_size=20))
def test_values_sealed_the_way_earlier_versions_did_still_open(vals):
    """The format is unchanged: a value sealed by hand as the first release did (a nonce
    slice, concatenation, one AES call per value) opens, and what ``seal_many`` seals now
    reads by hand with the documented layout."""
    c = cipher()
    aad = b"parity\x00p\x00view\x00f"
    aes = AESGCM(K1)
    old = []
    for v in vals:
        nonce = os.urandom(12)
        packed = msgpack.packb(v, use_bin_type=True)
        old.append(None if v is None else b"\x01\x02k1" + nonce + aes.encrypt(nonce, packed, aad))
    assert c.open_many(old, "view", "f") == vals
    new = c.seal_many(vals, "view", "f")
    assert [
        None if s is None else msgpack.unpackb(_layout(s, K1, aad), raw=False) for s in new
    ] == vals


def test_an_empty_batch_seals_to_nothing():
    assert cipher().seal_many([], "v", "f") == []
    assert cipher().seal_many([None, None], "v", "f") == [None, None]
    assert len(cipher().seal_rows([[], []], "v", "f")) == 0


def test_same_value_seals_differently_each_time():
    c = cipher()
    a, b = c.seal_many(["same", "same"], "view", "f")
    assert a != b  # a fresh nonce per value


@pytest.mark.parametrize(
    "other",
    [("p", "view", "g"), ("p", "other_view", "f"), ("q", "view", "f")],
    ids=["other field", "other view", "other project"],
)
def test_a_value_moved_elsewhere_fails_its_check(other):
    project, scope, field = other
    (sealed,) = cipher().seal_many(["alice"], "view", "f")
    with pytest.raises(EncryptionError, match="fails its check") as err:
        cipher(project=project).open_many([sealed], scope, field)
    assert "'k1'" in str(err.value)
    assert repr(field) in str(err.value)


def test_an_altered_value_fails_its_check():
    (sealed,) = cipher().seal_many([12.5], "view", "f")
    altered = sealed[:-1] + bytes([sealed[-1] ^ 1])
    with pytest.raises(EncryptionError, match="fails its check"):
        cipher().open_many([altered], "view", "f")


def test_old_and_new_keys_both_open():
    old = cipher(active="k1").seal_many(["a"], "v", "f")
    new = cipher(active="k2").seal_many(["b"], "v", "f")
    c = cipher(active="k2")
    assert c.open_many(old + new, "v", "f") == ["a", "b"]
    assert c.key_ids(old + new + [None, "plain"]) == ["k1", "k2", None, None]


def test_unknown_key_names_the_key_id_and_field_never_a_key():
    sealed = cipher().seal_many(["a"], "drivers", "name")
    only_k2 = cipher({"k2": K2}, active="k2")
    with pytest.raises(EncryptionError) as err:
        only_k2.open_many(sealed, "drivers", "name")
    text = str(err.value)
    assert "'k1'" in text and "'name'" in text and "'drivers'" in text
    for key in (K1, K2):
        assert base64.b64encode(key).decode() not in text


def test_a_wrong_key_under_the_same_id_is_an_error_not_garbage():
    sealed = cipher().seal_many(["a", 1.5], "v", "f")
    wrong = cipher({"k1": os.urandom(32)})
    with pytest.raises(EncryptionError, match=r"'k1'.*is not the one that sealed it"):
        wrong.open_many(sealed, "v", "f")


def test_plaintext_where_a_sealed_value_belongs_is_an_error():
    with pytest.raises(EncryptionError, match=r"not encrypted.*keys rotate"):
        cipher().open_many(["plain"], "v", "f")


# -- the keyring ------------------------------------------------------------------------------
def test_key_file_json_and_yaml(tmp_path: Path):
    a, b = new_key(), new_key()
    (tmp_path / "k.json").write_text(json.dumps({"active": "b", "keys": {"a": a, "b": b}}))
    (tmp_path / "k.yaml").write_text(f"active: a\nkeys:\n  a: {a}\n  b: {b}\n")
    ring = load_keyring(EncryptionConfig(key_file="k.json"), tmp_path)
    assert ring.active == "b" and set(ring.keys) == {"a", "b"}
    assert ring.keys["a"] == base64.b64decode(a)
    assert (
        load_keyring(EncryptionConfig(key_file=str(tmp_path / "k.yaml")), Path("/")).active == "a"
    )


def test_key_env_first_is_active(monkeypatch, tmp_path: Path):
    a, b = new_key(), new_key()
    monkeypatch.setenv("PARITY_TEST_KEYS", f"new:{b},old:{a}")
    ring = load_keyring(EncryptionConfig(key_env="PARITY_TEST_KEYS"), tmp_path)
    assert ring.active == "new" and list(ring.keys) == ["new", "old"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (None, "not set"),
        ("k1", "ID:base64"),
        ("k1:not-base64!", "not base64"),
        (f"k1:{base64.b64encode(b'short').decode()}", "5 bytes"),
        (f"bad id:{base64.b64encode(bytes(32)).decode()}", "key id"),
    ],
)
def test_bad_keyrings_are_config_errors_naming_where(monkeypatch, tmp_path, text, message):
    if text is None:
        monkeypatch.delenv("PARITY_TEST_KEYS", raising=False)
    else:
        monkeypatch.setenv("PARITY_TEST_KEYS", text)
    with pytest.raises(ConfigError, match=message) as err:
        load_keyring(EncryptionConfig(key_env="PARITY_TEST_KEYS"), tmp_path)
    assert "PARITY_TEST_KEYS" in str(err.value)


def test_key_file_errors(tmp_path: Path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_keyring(EncryptionConfig(key_file="missing.keys"), tmp_path)
    (tmp_path / "k.json").write_text(json.dumps({"active": "x", "keys": {"a": new_key()}}))
    with pytest.raises(ConfigError, match="active key 'x' is not listed"):
        load_keyring(EncryptionConfig(key_file="k.json"), tmp_path)
    (tmp_path / "k.json").write_text("[1, 2]")
    with pytest.raises(ConfigError, match="expected"):
        load_keyring(EncryptionConfig(key_file="k.json"), tmp_path)


# -- offline-log columns ----------------------------------------------------------------------
def test_log_columns_round_trip_typed():
    ts = pa.timestamp("us", tz="UTC")
    table = pa.table(
        {
            "id": pa.array([1, 2, 3], pa.int64()),
            "f32": pa.array([1.5, None, -0.0], pa.float32()),
            "i32": pa.array([1, None, -(2**31)], pa.int32()),
            "s": pa.array(["a", None, "é"], pa.string()),
            "b": pa.array([True, False, None]),
            "t": pa.array([datetime(2024, 1, 1, tzinfo=UTC), None, datetime(1901, 1, 1)], ts),
            "d": pa.array([date(2024, 2, 29), None, date(1970, 1, 1)], pa.date32()),
            "v": pa.array([[1.0, 2.0], None, []], pa.list_(pa.float64())),
        }
    )
    cols = [c for c in table.column_names if c != "id"]
    c = cipher()
    sealed = seal_log(c, "push", table, cols)
    for name in cols:
        field = sealed.schema.field(name)
        assert field.type == pa.binary() and SEALED in field.metadata
    assert sealed.column("id").equals(table.column("id"))
    opened = open_log(c, "push", sealed, Path("x.parquet"))
    assert opened.equals(table)


def test_a_sealed_log_without_keys_is_an_error_naming_the_column():
    sealed = seal_log(cipher(), "push", pa.table({"s": ["a"]}), ["s"])
    with pytest.raises(EncryptionError, match="column 's' is encrypted"):
        open_log(None, "push", sealed, Path("push-1.parquet"))
