"""Prometheus metrics of the stream consumers (``parity stream run --metrics-port N``).

Counters, per source (and view, reason): events consumed, events written, dead letters;
gauges: lag (unconsumed) and pending messages as the broker reports them; histograms: write
latency and batch size per batch, and the two freshness histograms per event, (write landed
- event time) and (write landed - broker append time). Freshness is observed for every
event, so it is kept as bucket counts added per batch with numpy (``FreshnessHistogram``),
not one ``observe`` call per event.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from parity.streams.freshness import BUCKETS_S

__all__ = ["StreamMetrics"]

_BATCH_BUCKETS = (1, 10, 50, 100, 250, 500, 1000, 2000, 5000, 10000)
_WRITE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class FreshnessHistogram:
    """A Prometheus histogram fed whole arrays of seconds at a time (a custom collector)."""

    def __init__(self, name: str, documentation: str, labels: Sequence[str]):
        self.name = name
        self.documentation = documentation
        self.labels = tuple(labels)
        self._bounds = np.asarray([b for b in BUCKETS_S if b != float("inf")], dtype=np.float64)
        self._series: dict[tuple[str, ...], tuple[np.ndarray, list[float]]] = {}
        self._lock = threading.Lock()

    def observe_many(self, values_s: np.ndarray, *labels: str) -> None:
        if not len(values_s):
            return
        idx = np.searchsorted(self._bounds, values_s, side="left")
        counts = np.bincount(idx, minlength=len(self._bounds) + 1)
        with self._lock:
            series = self._series.get(labels)
            if series is None:
                series = (np.zeros(len(self._bounds) + 1, dtype=np.int64), [0.0])
                self._series[labels] = series
            series[0][:] += counts
            series[1][0] += float(values_s.sum())

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import HistogramMetricFamily

        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labels)
        with self._lock:
            items = [(k, c.copy(), s[0]) for k, (c, s) in self._series.items()]
        for labels, counts, total in items:
            cumulative = np.cumsum(counts)
            buckets = [(_le(b), int(n)) for b, n in zip(self._bounds, cumulative, strict=False)]
            buckets.append(("+Inf", int(cumulative[-1])))
            family.add_metric(list(labels), buckets, total)
        yield family


def _le(bound: float) -> str:
    return repr(float(bound))


class StreamMetrics:
    """The runner's metrics, in their own registry (served on the metrics port)."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        r = self.registry
        self.consumed = Counter(
            "parity_stream_events_consumed",
            "Messages polled from the broker",
            ["source"],
            registry=r,
        )
        self.written = Counter(
            "parity_stream_events_written",
            "Events written to a view (online, and the offline log when the source says so)",
            ["source", "view"],
            registry=r,
        )
        self.dead = Counter(
            "parity_stream_dead_letters",
            "Messages sent to the dead-letter stream",
            ["source", "reason"],
            registry=r,
        )
        self.lag = Gauge(
            "parity_stream_lag_messages",
            "Messages in the stream not yet delivered to the group",
            ["source"],
            registry=r,
        )
        self.pending = Gauge(
            "parity_stream_pending_messages",
            "Messages delivered to the group and not yet acknowledged",
            ["source"],
            registry=r,
        )
        self.write_seconds = Histogram(
            "parity_stream_write_seconds",
            "Time to write one batch (conform, offline log, online)",
            ["source"],
            buckets=_WRITE_BUCKETS,
            registry=r,
        )
        self.batch_size = Histogram(
            "parity_stream_batch_size",
            "Messages per polled batch",
            ["source"],
            buckets=_BATCH_BUCKETS,
            registry=r,
        )
        self.errors = Counter(
            "parity_stream_errors",
            "Batches that failed to write and were retried",
            ["source"],
            registry=r,
        )
        self.freshness = FreshnessHistogram(
            "parity_stream_freshness_seconds",
            "Time from an event to its write landing online; since=event: from the event "
            "time, since=append: from the broker's append time",
            ["source", "since"],
        )
        r.register(self.freshness)  # type: ignore[arg-type]

    def serve(self, port: int, host: str = "127.0.0.1") -> Any:
        """Serve ``/metrics`` on ``host:port`` (0: a free port) in a daemon thread; returns
        the server (``server.server_port`` is the port)."""
        from prometheus_client import start_http_server

        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        return server
