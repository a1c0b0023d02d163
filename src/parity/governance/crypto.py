"""Encryption at rest for ``Field(encrypt=True)``: the keyring and AES-256-GCM sealing.

Keys come from ``encryption.key_file`` (JSON or YAML ``{active: ID, keys: {ID: base64}}``)
or ``encryption.key_env`` (``ID:base64[,ID:base64...]``, the first active); each key is 32
random bytes (``parity keys new`` style: ``base64.b64encode(os.urandom(32))``).

A sealed value is ``b"\\x01" + len(id) + id + nonce (12) + ciphertext + tag (16)``: the key
id travels with every value, so reads accept any key still in the keyring (old and new
during a rotation). The associated data binds a value to where it belongs: project, scope
(the view online, the push source in the offline log) and field; a value copied to another
entity's record still opens (entities are not bound: rotation and erase move records), but
one moved to another field, view or project fails its check.

The plaintext is the value as msgpack, the way the online store keeps it (timestamps and
dates as µs integers, floats as 64-bit), so every feature type round-trips exactly. Nulls
stay null (a missing value is not encrypted: that it is missing is not hidden).

A wrong, missing or unknown key raises ``EncryptionError`` naming the key id and the field,
never the key or the value.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import repeat
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgpack
import numpy as np
import pyarrow as pa
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from parity.errors import ConfigError, EncryptionError
from parity.governance.settings import EncryptionConfig
from parity.lazy import LazyModule

if TYPE_CHECKING:
    import pyarrow.compute as pc
else:
    pc = LazyModule("pyarrow.compute", globals(), "pc")  # imported on first use

__all__ = ["VERSION", "Cipher", "Keyring", "key_id_of", "load_keyring", "new_key"]

VERSION = b"\x01"
_NONCE = 12
_COLUMNWISE = 256  # values from which sealing joins in Arrow (below: fixed costs rule)
_KEY_ID = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")


def new_key() -> str:
    """A fresh key, base64 (what a key file or ``key_env`` holds)."""
    return base64.b64encode(os.urandom(32)).decode()


@dataclass(frozen=True)
class Keyring:
    """Keys by id; ``active`` seals new values, every key opens."""

    keys: Mapping[str, bytes]
    active: str
    where: str = ""
    """Where the keys came from (``key_file keys/parity.keys``), for messages."""

    def __post_init__(self) -> None:
        if self.active not in self.keys:
            raise ConfigError(
                f"encryption ({self.where}): active key {self.active!r} is not listed"
            )
        for kid, key in self.keys.items():
            if not kid or len(kid) > 64 or set(kid) - _KEY_ID:
                raise ConfigError(
                    f"encryption ({self.where}): key id {kid!r} must be 1 to 64 letters, "
                    "digits, '_', '.' or '-'"
                )
            if len(key) != 32:
                raise ConfigError(
                    f"encryption ({self.where}): key {kid!r} is {len(key)} bytes; AES-256 "
                    "needs 32 (base64 of 32 random bytes)"
                )


def _decode_key(kid: str, text: object, where: str) -> bytes:
    try:
        return base64.b64decode(str(text).strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(f"encryption ({where}): key {kid!r} is not base64") from None


def load_keyring(config: EncryptionConfig, repo_path: Path) -> Keyring:
    """The keyring ``config`` names; ``ConfigError`` naming the file or variable (never a
    key) when it is missing or malformed."""
    if config.key_env is not None:
        where = f"key_env {config.key_env}"
        text = os.environ.get(config.key_env)
        if not text:
            raise ConfigError(f"encryption ({where}): the environment variable is not set")
        keys: dict[str, bytes] = {}
        active = ""
        for part in text.split(","):
            kid, sep, b64 = part.strip().partition(":")
            if not sep:
                raise ConfigError(f"encryption ({where}): entries are ID:base64, comma-separated")
            keys[kid] = _decode_key(kid, b64, where)
            active = active or kid
        return Keyring(keys, active, where)
    assert config.key_file is not None
    path = Path(config.key_file).expanduser()
    if not path.is_absolute():
        path = repo_path / path
    where = f"key_file {config.key_file}"
    try:
        raw = path.read_text()
    except OSError as exc:
        raise ConfigError(f"encryption ({where}): cannot read {path}: {exc.strerror}") from None
    try:
        data = json.loads(raw)
    except json.JSONDecodeError:
        import yaml

        try:
            data = yaml.safe_load(raw)
        except yaml.YAMLError:
            data = None
    if not isinstance(data, dict) or not isinstance(data.get("keys"), dict):
        raise ConfigError(f"encryption ({where}): expected {{active: ID, keys: {{ID: base64}}}}")
    listed = {str(k): _decode_key(str(k), v, where) for k, v in data["keys"].items()}
    active = str(data.get("active") or next(iter(listed), ""))
    return Keyring(listed, active, where)


def key_id_of(sealed: bytes) -> str:
    """The id of the key that sealed ``sealed``."""
    if sealed[:1] != VERSION or len(sealed) < 2:
        raise EncryptionError("not a Parity ciphertext (unknown format)")
    n = sealed[1]
    return sealed[2 : 2 + n].decode("ascii", errors="replace")


def _aad(project: str, scope: str, field: str) -> bytes:
    return b"parity\x00%s\x00%s\x00%s" % (project.encode(), scope.encode(), field.encode())


class Cipher:
    """Seals and opens values of one project with one keyring."""

    def __init__(self, keyring: Keyring, project: str):
        self.keyring = keyring
        self.project = project
        self._aes = {kid: AESGCM(key) for kid, key in keyring.keys.items()}
        kid = keyring.active.encode()
        self._prefix = VERSION + bytes([len(kid)]) + kid

    @property
    def active(self) -> str:
        return self.keyring.active

    def seal_many(self, values: Sequence[Any], scope: str, field: str) -> list[bytes | None]:
        """Each value (as the online store keeps it: µs integers for times) sealed with the
        active key; None stays None."""
        pack = msgpack.Packer(use_bin_type=True).pack
        at = [i for i, v in enumerate(values) if v is not None]
        if len(at) == len(values):
            return self._sealed(map(pack, values), len(at), scope, field)  # type: ignore[return-value]
        out: list[bytes | None] = [None] * len(values)
        present = self._sealed((pack(values[i]) for i in at), len(at), scope, field)
        for i, sealed in zip(at, present):  # noqa: B905 - equal lengths
            out[i] = sealed
        return out

    def seal_rows(self, columns: Sequence[Sequence[Any]], scope: str, field: str) -> pa.Array:
        """Each row of ``columns`` (equal lengths; values as the online store keeps them)
        sealed with the active key into one value: the row's values in column order as one
        msgpack array (``open_many`` gives it back as a list); a null is a value of the row.
        A binary Arrow array, one value per row."""
        pack = msgpack.Packer(use_bin_type=True).pack
        count = len(columns[0]) if columns else 0
        return self._seal(map(pack, zip(*columns, strict=True)), count, scope, field)

    # Sealing: ``prefix + nonce + AES-GCM(plaintext)`` per value. Each nonce is 96 random
    # bits, a batch's drawn by one ``os.urandom`` call (random 96-bit nonces: NIST SP
    # 800-38D bounds a key to 2**32 values; rotate before). Per value only the AES call runs
    # in Python, in C loops (``map`` over bound methods, no bytecode).
    def _nonces(self, count: int) -> tuple[bytes, list[bytes]]:
        random = os.urandom(_NONCE * count)
        return random, np.frombuffer(random, f"V{_NONCE}").tolist()  # 12 bytes each, NULs kept

    def _sealed(self, plains: Iterable[bytes], count: int, scope: str, field: str) -> list[bytes]:
        """``count`` plaintexts sealed, as a list."""
        aes = self._aes[self.keyring.active].encrypt
        nonces = self._nonces(count)[1]
        sealed = map(aes, nonces, plains, repeat(_aad(self.project, scope, field)))
        # strict: fewer plaintexts than nonces is an error, not a silently shorter list
        return list(map(b"".join, zip(repeat(self._prefix, count), nonces, sealed, strict=True)))

    def _seal(self, plains: Iterable[bytes], count: int, scope: str, field: str) -> pa.Array:
        """``count`` plaintexts sealed, as a binary Arrow array: for a batch, the prefix and
        nonces joined to the ciphertexts column-wise (a single value: as a list is)."""
        if count < _COLUMNWISE:
            return pa.array(self._sealed(plains, count, scope, field), pa.binary())
        aes = self._aes[self.keyring.active].encrypt
        random, nonces = self._nonces(count)
        aad = _aad(self.project, scope, field)
        sealed = pa.array(list(map(aes, nonces, plains, repeat(aad))), pa.binary())
        fixed = pa.FixedSizeBinaryArray.from_buffers(
            pa.binary(_NONCE), count, [None, pa.py_buffer(random)]
        )
        prefix = pa.scalar(self._prefix, pa.binary())
        return pc.binary_join_element_wise(prefix, fixed.cast(pa.binary()), sealed, b"")

    def open_many(
        self, sealed: Sequence[Any], scope: str, field: str, *, label: str | None = None
    ) -> list[Any]:
        """The values ``seal_many`` sealed (None stays None); ``EncryptionError`` naming the
        key id and field (``label``, default ``view 'scope', feature 'field'``) for an
        unknown key or a value that fails its check."""
        aad = _aad(self.project, scope, field)
        where = label or f"view {scope!r}, feature {field!r}"
        unpack = msgpack.unpackb
        aes = self._aes
        out: list[Any] = []
        for s in sealed:
            if s is None:
                out.append(None)
                continue
            if type(s) is not bytes or s[:1] != VERSION:
                raise EncryptionError(
                    f"{where}: a stored value is not encrypted (written before "
                    "encrypt=True, or by another tool); run `parity keys rotate` to encrypt it"
                )
            n = s[1]
            kid = s[2 : 2 + n].decode("ascii", errors="replace")
            key = aes.get(kid)
            if key is None:
                raise EncryptionError(
                    f"{where}: sealed with key {kid!r}, which the keyring "
                    f"({self.keyring.where}) does not hold; add it back to read the value"
                )
            start = 2 + n
            try:
                plain = key.decrypt(s[start : start + _NONCE], s[start + _NONCE :], aad)
            except InvalidTag:
                raise EncryptionError(
                    f"{where}: the value sealed with key {kid!r} fails its check: the "
                    f"key {kid!r} in the keyring ({self.keyring.where}) is not the one that "
                    "sealed it, or the value was altered or moved from another field"
                ) from None
            out.append(unpack(plain, raw=False))
        return out

    def key_ids(self, sealed: Sequence[Any]) -> list[str | None]:
        """The key id of each sealed value (None for nulls and plaintext)."""
        return [
            s[2 : 2 + s[1]].decode("ascii", errors="replace")
            if type(s) is bytes and s[:1] == VERSION
            else None
            for s in sealed
        ]

    # -- Arrow columns (the offline log) --------------------------------------------------
    def seal_column(self, column: pa.ChunkedArray | pa.Array, scope: str, field: str) -> pa.Array:
        """A column as binary ciphertexts (its values as the online store keeps them)."""
        from parity.online.writer import _pylist

        values = _pylist(column)
        if column.null_count:
            return pa.array(self.seal_many(values, scope, field), pa.binary())
        pack = msgpack.Packer(use_bin_type=True).pack
        return self._seal(map(pack, values), len(values), scope, field)

    def open_column(
        self, column: pa.ChunkedArray | pa.Array, arrow_type: pa.DataType, scope: str, field: str
    ) -> pa.Array:
        """``seal_column``'s input back, typed ``arrow_type``."""
        label = f"offline log of source {scope!r}, column {field!r}"
        values = self.open_many(column.to_pylist(), scope, field, label=label)
        if pa.types.is_timestamp(arrow_type):
            return (
                pa.array(values, pa.int64())
                .cast(pa.timestamp("us", tz=arrow_type.tz))
                .cast(arrow_type)
            )
        if pa.types.is_date(arrow_type):
            return pa.array(values, pa.int64()).cast(pa.timestamp("us")).cast(arrow_type)
        return pa.array(values, arrow_type)
