"""How the Redis store puts commands on the wire: shared by the plain and cluster paths."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_hiredis_pack: Callable[[tuple[bytes, ...]], bytes] | None
try:
    from hiredis import pack_command as _hiredis_pack  # type: ignore[assignment]
except ImportError:  # pragma: no cover - redis[hiredis] is a dependency
    _hiredis_pack = None

CHUNK = 1000  # keys per EVALSHA: amortizes the call; the server is busy ~4 ms on one


def pack(args: tuple[bytes, ...], conn: Any) -> list[bytes]:
    """One command packed for ``conn.send_packed_command``."""
    # redis-py's packer walks every argument in Python before hiredis packs them in C.
    if _hiredis_pack is not None:
        return [_hiredis_pack(args)]
    return conn.pack_command(*args)
