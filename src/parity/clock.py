"""Time as the stores see it: "now" for expiry and reads, and unique created stamps.

``Clock(now)`` wraps a callable giving the current UTC time (tests and replays pass their
own; the default is the system clock). Created stamps given to rows written without one
always come from the wall clock, strictly increasing within the process, so of two writes of
the same key and event time the later one wins, offline and online.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, date, datetime

from parity.errors import RetrievalError
from parity.online.encoding import to_micros

__all__ = [
    "MAX_TIME",
    "MAX_US",
    "MIN_TIME",
    "MIN_US",
    "Clock",
    "in_range",
    "iso_time",
    "parse_time",
    "to_micros",
    "unique_stamps",
    "utc",
]

MIN_TIME = datetime(1900, 1, 1, tzinfo=UTC)
"""The earliest time Parity stores (event, created and entity times), inclusive."""
MAX_TIME = datetime(2100, 1, 1, tzinfo=UTC)
"""The end of the times Parity stores, exclusive: every time is before 2100-01-01 UTC.

The range sits inside what every part represents exactly: the online record's header
(µs + 2**52 in 16 digits, compared by Redis's Lua as a double: exact below 2**53, so
1827-09 to 2112-09), pandas' int64 ns (1677-09-22 to 2262-04-11), Arrow's and DuckDB's µs
timestamps and Redis's millisecond expiry times."""
MIN_US = -2_208_988_800_000_000
"""``MIN_TIME`` in µs since the epoch."""
MAX_US = 4_102_444_800_000_000
"""``MAX_TIME`` in µs since the epoch (exclusive)."""


def in_range(us: int) -> bool:
    """Whether a time in µs since the epoch is one Parity stores."""
    return MIN_US <= us < MAX_US


def iso_time(text: str) -> datetime:
    """ISO 8601 text (a date, or a date and time with an optional offset) as an aware time;
    naive means UTC. ``ValueError`` when it is not one."""
    value = datetime.fromisoformat(text.strip())
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def parse_time(
    value: str | datetime | date, what: str, *, now: Callable[[], datetime] | None = None
) -> datetime:
    """A time given as ISO 8601 text (naive = UTC), ``"now"``, a datetime (naive = UTC) or a
    date (its midnight UTC); ``RetrievalError`` naming ``what`` for anything else.

    ``now`` gives the current time for ``"now"`` (default: the system clock). What the CLI,
    ``store.materialize`` and ``store.materialize_incremental`` accept.
    """
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if not isinstance(value, str):
        raise RetrievalError(
            f"{what} must be a datetime or ISO 8601 text, not {type(value).__name__} {value!r}"
        )
    if value.strip().lower() == "now":
        return now() if now is not None else datetime.now(UTC)
    try:
        return iso_time(value)
    except ValueError:
        raise RetrievalError(
            f"{what}: {value!r} is not a time; use ISO 8601 like 2024-01-31 or "
            "2024-01-31T12:00:00+00:00 (UTC when no offset is given), or 'now'"
        ) from None


_stamp_lock = threading.Lock()
_last_stamp = 0


def utc(value: datetime) -> datetime:
    """``value`` as an aware UTC time (a naive one is taken as UTC)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def unique_stamps(n: int) -> list[int]:
    """``n`` increasing µs timestamps, later than any this process stamped before."""
    global _last_stamp
    with _stamp_lock:
        start = max(time.time_ns() // 1000, _last_stamp + 1)
        _last_stamp = start + n - 1
    return list(range(start, start + n))


class Clock:
    """``now_us()``: the current time in µs since the epoch, from ``now`` when given."""

    __slots__ = ("_now",)

    def __init__(self, now: Callable[[], datetime] | None = None):
        self._now = now

    def now_us(self) -> int:
        if self._now is None:
            return time.time_ns() // 1000
        return to_micros(self._now())
