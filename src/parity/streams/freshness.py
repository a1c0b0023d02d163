"""Freshness over time: how old events are when they land, counted per bucket per minute.

A stream runner adds, per batch it wrote, the latencies of its rows (write time minus
event time, and write time minus the broker's append time) to a ``FreshnessWindow``; the
window travels to the registry as JSON with the consumer's heartbeat
(``parity.registry.streams``), and ``parity stream status`` merges the windows of a
source's consumers and reads percentiles of the last minutes::

    window = FreshnessWindow(minutes=15)
    window.add(np.array([0.2, 0.4, 3.1]), now_s=time.time())
    window.percentiles((0.5, 0.99), minutes=5, now_s=time.time())  # {0.5: 0.35, 0.99: 4.9}

Latencies fall into the buckets of ``BUCKETS_S`` (upper bounds, inclusive, in seconds: the
bounds the Prometheus histograms use), so a percentile is exact to its bucket and is
interpolated linearly inside it, as Prometheus' ``histogram_quantile`` does; a percentile
in the last bucket (above 300 s) reads as its lower bound, 300.

Negative latencies (an event time in the future of the writer's clock: clock skew between
producer and runner) are counted in the first bucket, as if they were 0: they are events
that are fresh, and dropping them would hide data the runner did write.

A minute is a minute of the clock of the process that added the samples (``now_s`` of
``add``, seconds since the epoch): samples count in the minute the batch was written in,
not the minute of their events. The window keeps the ``minutes`` minutes up to the newest
one it has seen and forgets older ones. Not thread-safe: one window per runner thread.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["BUCKETS_S", "FreshnessWindow", "bucket_label"]

BUCKETS_S: tuple[float, ...] = (
    0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5,
    1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0,
    math.inf,
)  # fmt: skip
"""Bucket upper bounds in seconds (a latency ``x`` is in the first bucket with ``x <= le``),
1-2-5 log-spaced from 1 ms to 5 min, then everything slower."""

_BOUNDS = np.array(BUCKETS_S, dtype=np.float64)
_LOWER = np.concatenate(([0.0], _BOUNDS[:-1]))
_N = len(BUCKETS_S)


def bucket_label(upper: float) -> str:
    """A bucket's bound as the JSON (and Prometheus ``le``) text: ``"0.005"``, ``"+Inf"``."""
    return "+Inf" if math.isinf(upper) else format(upper, "g")


_LABELS = tuple(bucket_label(b) for b in BUCKETS_S)
_INDEX = {label: i for i, label in enumerate(_LABELS)}


class FreshnessWindow:
    """Counts of latencies per bucket per minute, for the last ``minutes`` minutes."""

    def __init__(self, minutes: int = 15) -> None:
        self.minutes = _check_minutes(minutes)
        self._counts: dict[int, np.ndarray] = {}  # epoch minute -> int64 count per bucket

    # -- adding ---------------------------------------------------------------------------
    def add(self, latencies_s: np.ndarray, now_s: float) -> None:
        """Count a batch's latencies (seconds) in the minute of ``now_s`` (epoch seconds).

        Negative latencies count in the first bucket (see the module docstring); NaN is
        refused (``ValueError``): a latency of a row without a time is a bug upstream.
        """
        values = np.asarray(latencies_s, dtype=np.float64).ravel()
        if values.size == 0:
            return
        if np.isnan(values).any():
            raise ValueError(
                f"freshness window: {int(np.isnan(values).sum())} latencies are NaN "
                "(rows without an event or append time)"
            )
        counts = np.bincount(np.searchsorted(_BOUNDS, values, side="left"), minlength=_N)
        self._add_counts(_minute(now_s), counts.astype(np.int64))

    def merge(self, other: FreshnessWindow) -> FreshnessWindow:
        """A new window holding the samples of both (several consumers of one source); it
        keeps the longer of the two spans."""
        if not isinstance(other, FreshnessWindow):
            raise TypeError(f"freshness window: cannot merge {type(other).__name__}")
        out = FreshnessWindow(max(self.minutes, other.minutes))
        for window in (self, other):
            for minute, counts in window._counts.items():
                out._add_counts(minute, counts)
        return out

    # -- reading --------------------------------------------------------------------------
    def count(self, *, minutes: int, now_s: float) -> int:
        """How many latencies were added in the last ``minutes`` minutes before ``now_s``."""
        return int(self._recent(minutes, now_s).sum())

    def percentiles(
        self, qs: Sequence[float] = (0.5, 0.9, 0.99), *, minutes: int = 5, now_s: float
    ) -> dict[float, float | None]:
        """Latency quantiles (seconds) of the last ``minutes`` minutes; None when no samples.

        "The last n minutes" are the minute of ``now_s`` and the n - 1 before it (between
        n - 1 and n minutes of samples), plus any minute after ``now_s``: a runner whose clock
        is ahead of the reader's must not have its newest samples hidden. Each quantile is
        exact to its bucket and linear inside it.
        """
        for q in qs:
            if not 0.0 <= q <= 1.0:
                raise ValueError(f"freshness window: quantile {q!r} is not between 0 and 1")
        counts = self._recent(minutes, now_s)
        total = int(counts.sum())
        if total == 0:
            return {q: None for q in qs}
        cumulative = np.cumsum(counts)
        return {q: _quantile(counts, cumulative, q * total) for q in qs}

    # -- JSON -----------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        """``{"minutes": 15, "counts": {"<epoch minute>": {"<le>": n, ...}, ...}}``; empty
        buckets and minutes are left out."""
        return {
            "minutes": self.minutes,
            "counts": {
                str(minute): {_LABELS[i]: int(counts[i]) for i in np.flatnonzero(counts)}
                for minute, counts in sorted(self._counts.items())
            },
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FreshnessWindow:
        """The window ``to_json`` wrote; ``ValueError`` naming what is wrong otherwise."""
        if not isinstance(data, Mapping):
            raise ValueError(f"freshness window: expected an object, got {type(data).__name__}")
        window = cls(data.get("minutes", 15))
        by_minute = data.get("counts", {})
        if not isinstance(by_minute, Mapping):
            raise ValueError("freshness window: 'counts' must be an object of minutes")
        for key, buckets in by_minute.items():
            try:
                minute = int(key)
            except (TypeError, ValueError):
                raise ValueError(f"freshness window: counts key {key!r} is not a minute") from None
            if not isinstance(buckets, Mapping):
                raise ValueError(f"freshness window: counts[{key!r}] must be an object")
            counts = np.zeros(_N, dtype=np.int64)
            for label, n in buckets.items():
                if label not in _INDEX:
                    raise ValueError(
                        f"freshness window: counts[{key!r}] has bucket {label!r}, not one of "
                        f"{list(_LABELS)} (written by another version of Parity?)"
                    )
                if not isinstance(n, int) or isinstance(n, bool) or n < 0:
                    raise ValueError(
                        f"freshness window: counts[{key!r}][{label!r}] = {n!r} is not a count"
                    )
                counts[_INDEX[label]] = n
            window._add_counts(minute, counts)
        return window

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FreshnessWindow):
            return NotImplemented
        return self.to_json() == other.to_json()

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"FreshnessWindow(minutes={self.minutes}, samples={self._total()})"

    # -- internals ------------------------------------------------------------------------
    def _add_counts(self, minute: int, counts: np.ndarray) -> None:
        if not counts.any():
            return
        held = self._counts.get(minute)
        self._counts[minute] = counts.copy() if held is None else held + counts
        oldest = max(self._counts) - self.minutes + 1
        for old in [m for m in self._counts if m < oldest]:
            del self._counts[old]

    def _recent(self, minutes: int, now_s: float) -> np.ndarray:
        if _check_minutes(minutes) > self.minutes:
            raise ValueError(
                f"freshness window: asked for the last {minutes} minutes of a window that "
                f"keeps {self.minutes}"
            )
        since = _minute(now_s) - minutes + 1
        out = np.zeros(_N, dtype=np.int64)
        for minute, counts in self._counts.items():
            if minute >= since:
                out += counts
        return out

    def _total(self) -> int:
        return int(sum(int(c.sum()) for c in self._counts.values()))


def _check_minutes(minutes: Any) -> int:
    if not isinstance(minutes, int) or isinstance(minutes, bool) or minutes < 1:
        raise ValueError(f"freshness window: minutes must be a whole number >= 1, not {minutes!r}")
    return minutes


def _minute(now_s: float) -> int:
    if not math.isfinite(now_s):
        raise ValueError(f"freshness window: now_s must be seconds since the epoch, not {now_s!r}")
    return math.floor(now_s / 60.0)


def _quantile(counts: np.ndarray, cumulative: np.ndarray, rank: float) -> float:
    """The value of rank ``rank`` (0 < rank <= total), linear inside its bucket."""
    if rank <= 0:  # q = 0: the smallest sample's bucket, at its lower bound
        return float(_LOWER[int(np.flatnonzero(counts)[0])])
    b = int(np.searchsorted(cumulative, rank, side="left"))
    if b == _N - 1:  # above the last finite bound: no upper end to interpolate to
        return float(_LOWER[b])
    before = float(cumulative[b - 1]) if b else 0.0
    fraction = (rank - before) / float(counts[b])
    # min: rounding must not carry the value past its bucket's bound
    return float(min(_LOWER[b] + (_BOUNDS[b] - _LOWER[b]) * fraction, _BOUNDS[b]))
