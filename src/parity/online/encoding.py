"""How entity keys and feature values are written to every online store.

An **entity key** is the view's join-key values in order, each tagged with its kind
(``i`` integer, ``s`` text, ``b`` bytes as hex) and joined by ``\\x1f``: equal values give
equal bytes whatever the caller's integer width, and no two different tuples collide.

A **record** is a 32-byte ASCII header followed by a msgpack map ``{feature: value}``:

    ``%016d`` event time + OFFSET (µs)  ``%016d`` created time + OFFSET (µs, 0 when absent)

The header orders records the way the historical join does (event time, then created time),
as bytes or as numbers: every time Parity stores (``parity.clock``, 1900 up to 2100) is 16
digits once offset and below 2**53, so a Redis Lua script compares it exactly as a double
(the offset holds 1827-09 to 2112-09; it is the format's since the first release, so
records written by any version read back).
The body is a map, so a record written before a view gained or lost a feature still reads.
Timestamps inside the body are µs integers; ``decode_value`` turns them back.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import msgpack

from parity.errors import RetrievalError

HEADER = 32
OFFSET = 2**52
_OFFSET = OFFSET
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SEP = b"\x1f"


def encode_key_part(value: Any, name: str) -> bytes:
    # bool is an int subclass: refuse it rather than store True as 1.
    if isinstance(value, int) and not isinstance(value, bool):
        return b"i%d" % value
    if isinstance(value, str):
        return b"s" + value.encode()
    if isinstance(value, bytes):
        return b"b" + value.hex().encode()
    if hasattr(value, "item"):  # numpy scalars
        return encode_key_part(value.item(), name)
    if value is None:
        raise RetrievalError(f"join key {name!r} is null; every entity needs a key value")
    raise RetrievalError(
        f"join key {name!r} has a value of type {type(value).__name__} ({value!r}); "
        "keys are integers, strings or bytes"
    )


def encode_key(values: Sequence[Any], names: Sequence[str]) -> bytes:
    """The entity key of one row: its join-key values in the view's key order."""
    if len(values) == 1:
        return encode_key_part(values[0], names[0])
    return _SEP.join(encode_key_part(v, n) for v, n in zip(values, names, strict=True))


def describe_key(key: bytes, names: Sequence[str]) -> str:
    """An encoded entity key as readable text, ``driver_id=1001`` (for messages)."""
    parts = key.split(_SEP)
    out = []
    for name, part in zip(names, parts, strict=False):
        tag, body = part[:1], part[1:]
        if tag == b"i":
            text = body.decode()
        elif tag == b"s":
            text = repr(body.decode(errors="replace"))
        else:
            text = repr(bytes.fromhex(body.decode()))
        out.append(f"{name}={text}")
    return ", ".join(out)


def to_micros(value: datetime) -> int:
    """µs since the epoch; naive datetimes are UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return (value - _EPOCH) // timedelta(microseconds=1)


def from_micros(micros: int) -> datetime:
    return _EPOCH + timedelta(0, 0, micros)  # positional: twice as fast as microseconds=


def header(event_us: int, created_us: int | None) -> bytes:
    created = 0 if created_us is None else created_us + _OFFSET
    return b"%016d%016d" % (event_us + _OFFSET, created)


def encode_record(event_us: int, created_us: int | None, values: dict[str, Any]) -> bytes:
    return header(event_us, created_us) + msgpack.packb(values, use_bin_type=True)


def record_times(record: bytes) -> tuple[int, int | None]:
    """(event µs, created µs or None) of a record."""
    created = int(record[16:32])
    return int(record[:16]) - _OFFSET, (created - _OFFSET if created else None)


def record_event_us(record: bytes) -> int:
    return int(record[:16]) - _OFFSET


def decode_values(record: bytes) -> dict[str, Any]:
    return msgpack.unpackb(record[HEADER:], raw=False)


__all__ = [
    "HEADER",
    "OFFSET",
    "decode_values",
    "describe_key",
    "encode_key",
    "encode_key_part",
    "encode_record",
    "from_micros",
    "header",
    "record_event_us",
    "record_times",
    "to_micros",
]
