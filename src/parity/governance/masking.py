"""Mask kernels: what a reader without ``read_pii`` (or a restricted key) gets instead of a value.

The rules (``Field(mask=...)``; a classified field without one is masked ``null``):

- ``null``: every value becomes null; applies to every type.
- ``truncate:N``: the first N characters of a String (code points), the first N bytes of
  Bytes; applies to those two types only.
- ``hash``: a keyed BLAKE2b pseudonym of the value, of the field's own type so every reader
  (Python, HTTP, Arrow, the incumbent's SDK) gets a value of the declared type:

  ======  =====================================================================
  String  32 lowercase hex characters (128 bits of the digest)
  Bytes   the 16-byte digest
  Int64   the digest's first 8 bytes as a signed big-endian integer (Int32: 4)
  ======  =====================================================================

  The same value gives the same pseudonym on every path and in every process of a project,
  so masked columns still join and count. It is *keyed* (BLAKE2b's own keyed mode, a MAC)
  because an unkeyed hash of a phone number or an e-mail address is reversed by hashing
  every candidate; the key is ``masking.hash_key_file`` or ``masking.hash_key_env`` in
  parity.yaml. Without one, the key is derived from the project's name: still a stable
  pseudonym, but anyone who knows the name can test guesses, so configure a key for
  low-entropy values. ``hash`` applies to String, Bytes, Int32 and Int64: a hashed float,
  bool or timestamp would hide nothing useful or change the value's type.

Nulls stay null under every mask. A rule a type cannot take is refused at apply time
(``mask_problem``). The kernels come in two forms giving the same result, tested so: on a
Python list (the online response's columns) and on an Arrow array (historical tables).
"""

from __future__ import annotations

import hashlib
import operator
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from parity.errors import ConfigError
from parity.lazy import LazyModule
from parity.types import PrimitiveType, ValueType

if TYPE_CHECKING:
    import pyarrow.compute as pc
else:
    pc = LazyModule("pyarrow.compute", globals(), "pc")  # imported on first use

if TYPE_CHECKING:
    from parity.config import RepoConfig

__all__ = [
    "HASH_DIGEST_BYTES",
    "Mask",
    "hash_key",
    "mask_problem",
    "parse_mask",
]

HASH_DIGEST_BYTES = 16
_MIN_KEY_BYTES = 16
_HASHABLE = {"string", "bytes", "int"}
_TRUNCATABLE = {"string", "bytes"}
_INT_BYTES = {"Int32": 4, "Int64": 8}


def _kind(dtype: ValueType) -> str | None:
    return dtype.kind if isinstance(dtype, PrimitiveType) else None  # None: an Array


def mask_problem(rule: str, dtype: ValueType) -> str | None:
    """Why ``rule`` cannot mask values of ``dtype`` (None: it can)."""
    kind = _kind(dtype)
    if rule == "null":
        return None
    if rule == "hash":
        if kind in _HASHABLE:
            return None
        return f"mask 'hash' applies to String, Bytes, Int32 and Int64, not {dtype}; use 'null'"
    if rule.startswith("truncate:"):
        if kind in _TRUNCATABLE:
            return None
        return f"mask {rule!r} applies to String and Bytes, not {dtype}; use 'null' or 'hash'"
    return f"unknown mask {rule!r} (hash, truncate:N or null)"


def parse_mask(rule: str, dtype: ValueType, key: bytes) -> Mask:
    """The kernel of ``rule`` for values of ``dtype``; ``ValueError`` if it cannot apply."""
    problem = mask_problem(rule, dtype)
    if problem is not None:
        raise ValueError(problem)
    kind = _kind(dtype)
    if rule == "null":
        return Mask(rule, dtype, _null_list, lambda a: pa.nulls(len(a), a.type))
    if rule == "hash":
        many = _memoized(_hasher(kind, dtype, key))
        return Mask(rule, dtype, many, lambda a: _each_distinct(many, a))
    n = int(rule.split(":", 1)[1])
    if kind == "string":
        return Mask(rule, dtype, _truncating(n), lambda a: pc.utf8_slice_codeunits(a, 0, n))
    return Mask(rule, dtype, _truncating_bytes(n), lambda a: pc.binary_slice(a, 0, n))


@dataclass(frozen=True)
class Mask:
    """One rule for one type: ``values`` masks a Python list, ``arrow`` an Arrow array (or
    chunked array), with the same result."""

    rule: str
    dtype: ValueType
    values: Callable[[list[Any]], list[Any]]
    _arrow: Callable[[pa.Array], pa.Array]

    def arrow(self, array: pa.Array | pa.ChunkedArray) -> pa.Array:
        if isinstance(array, pa.ChunkedArray):
            array = array.combine_chunks()
        return self._arrow(array)


def _each_distinct(many: Callable[[list[Any]], list[Any]], array: pa.Array) -> pa.Array:
    """``many`` over an Arrow array, each distinct value computed once (a training table
    repeats an entity's values on every row)."""
    encoded = pc.dictionary_encode(array)
    distinct = pa.array(many(encoded.dictionary.to_pylist()), type=array.type)
    return distinct.take(encoded.indices)


def _null_list(values: list[Any]) -> list[Any]:
    return [None] * len(values)


def _truncating(n: int) -> Callable[[list[Any]], list[Any]]:
    # v[0] is v[:1] for a non-empty string, and cheaper (no slice); "" and None raise
    head = operator.itemgetter(0) if n == 1 else operator.itemgetter(slice(0, n))

    def many(values: list[Any]) -> list[Any]:
        try:
            return list(map(head, values))  # no Python frame per value: the hot path
        except (TypeError, IndexError):  # a null (None[:n]) or, for n = 1, ""
            return [None if v is None else v[:n] for v in values]

    return many


def _truncating_bytes(n: int) -> Callable[[list[Any]], list[Any]]:
    head = operator.itemgetter(slice(0, n))

    def many(values: list[Any]) -> list[Any]:
        try:  # bytes(b) is b itself for bytes; a bytearray or memoryview slice is copied
            return list(map(bytes, map(head, values)))
        except TypeError:  # a null (None[:n]); anything else fails again below
            return [None if v is None else bytes(v[:n]) for v in values]

    return many


MEMO_SIZE = 65_536
"""Pseudonyms remembered per hash mask (then forgotten all at once): a value read again,
as hot keys are, costs a dictionary lookup instead of a hash."""


class _Memo(dict[Any, Any]):
    """Value -> pseudonym, computed on a miss (``__missing__``) and remembered, bounded by
    ``MEMO_SIZE``; a null is null (never stored: a dictionary of only ``str`` keys has the
    faster lookup). ``list(map(memo.__getitem__, values))`` masks a column with no Python
    frame per remembered value."""

    __slots__ = ("_one",)

    def __init__(self, one: Callable[[Any], Any]):
        super().__init__()
        self._one = one

    def __missing__(self, value: Any) -> Any:
        if value is None:
            return None
        if len(self) >= MEMO_SIZE:
            self.clear()
        out = self[value] = self._one(value)
        return out


def _memoized(one: Callable[[Any], Any]) -> Callable[[list[Any]], list[Any]]:
    """``one`` over a list, nulls kept, each value's pseudonym remembered (bounded)."""
    lookup = _Memo(one).__getitem__

    def many(values: list[Any]) -> list[Any]:
        return list(map(lookup, values))

    return many


def _hasher(kind: str | None, dtype: ValueType, key: bytes) -> Callable[[Any], Any]:
    keyed = hashlib.blake2b(key=key, digest_size=HASH_DIGEST_BYTES)  # copied per value

    def digest(data: bytes) -> bytes:
        h = keyed.copy()
        h.update(data)
        return h.digest()

    if kind == "string":
        return lambda v: digest(v.encode()).hex()
    if kind == "bytes":
        return lambda v: digest(bytes(v))
    width = _INT_BYTES.get(dtype.name, 8)
    return lambda v: int.from_bytes(digest(str(int(v)).encode())[:width], "big", signed=True)


# -- the hash key -------------------------------------------------------------------------


def hash_key(config: RepoConfig, root: Path | None) -> bytes:
    """The key of ``hash`` masks: from ``masking.hash_key_file`` / ``hash_key_env``, else
    derived from the project's name (see the module docstring). ``ConfigError`` naming the
    file or variable (never its content) when the key cannot be read or is too short."""
    masking = config.masking
    secret: bytes | None = None
    where = ""
    if masking.hash_key_file is not None:
        path = Path(masking.hash_key_file)
        if not path.is_absolute() and root is not None:
            path = root / path
        where = f"masking.hash_key_file {str(path)!r}"
        try:
            secret = path.read_bytes().strip()
        except OSError as exc:
            raise ConfigError(f"{where}: cannot read it ({exc.strerror})") from None
    elif masking.hash_key_env is not None:
        where = f"masking.hash_key_env {masking.hash_key_env!r}"
        text = os.environ.get(masking.hash_key_env)
        if text is None:
            raise ConfigError(f"{where}: the environment variable is not set")
        secret = text.strip().encode()
    if secret is None:
        return hashlib.blake2b(b"parity-mask:" + config.project.encode(), digest_size=32).digest()
    if len(secret) < _MIN_KEY_BYTES:
        raise ConfigError(f"{where}: the key is shorter than {_MIN_KEY_BYTES} bytes")
    return hashlib.blake2b(secret, digest_size=32, person=b"parity-mask").digest()
