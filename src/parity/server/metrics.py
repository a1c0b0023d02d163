"""Prometheus metrics of the server, exposed at ``GET /metrics`` (text format).

::

    parity_http_requests_total{endpoint, method, status}        requests answered
    parity_http_request_duration_seconds{endpoint}              latency histogram
    parity_http_errors_total{endpoint, code}                    error answers by stable code
    parity_online_view_reads_total{view}                        entity keys read per view
    parity_deprecated_reads_total{object}                       answers that read a deprecated object
    parity_online_cache_lookups_total{result="hit"|"miss"}      record cache lookups
    parity_online_cache_hit_ratio                               hits / lookups since start
    parity_online_large_reads_in_flight                         reads running off the loop
    parity_server_warm                                          1 once warm-up finished
    parity_server_plans_cached                                  read plans in the planner
    parity_server_modules_loaded                                modules this worker imported

``endpoint`` is the route template (``/feature-views/{name}``), never the raw path, so the
label set stays bounded. With several workers, ``PROMETHEUS_MULTIPROC_DIR`` is set by
``parity serve`` and every worker's counters are summed in each answer; the gauges after
the hit ratio are the answering worker's own (``gauges``, read when rendered).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import generate_latest

BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """The server's instruments; label children are looked up once and kept."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        reg = self.registry = CollectorRegistry(auto_describe=False)
        self.requests = Counter(
            "parity_http_requests",
            "HTTP requests answered",
            ["endpoint", "method", "status"],
            registry=reg,
        )
        self.latency = Histogram(
            "parity_http_request_duration_seconds",
            "Time from request to the last byte of the answer",
            ["endpoint"],
            buckets=BUCKETS,
            registry=reg,
        )
        self.errors = Counter(
            "parity_http_errors", "Error answers by stable code", ["endpoint", "code"], registry=reg
        )
        self.view_reads = Counter(
            "parity_online_view_reads", "Entity keys read per feature view", ["view"], registry=reg
        )
        self.deprecated_reads = Counter(
            "parity_deprecated_reads",
            "Answers that read a deprecated view, on-demand view or service",
            ["object"],
            registry=reg,
        )
        self.cache_lookups = Counter(
            "parity_online_cache_lookups", "Record cache lookups", ["result"], registry=reg
        )
        self._hits = self.cache_lookups.labels("hit")
        self._misses = self.cache_lookups.labels("miss")
        self._children: dict[Any, Any] = {}
        self.large_reads = 0
        self.gauges: dict[str, tuple[str, Callable[[], float]]] = {
            "parity_online_large_reads_in_flight": (
                "Large reads running on the reader thread now",
                lambda: self.large_reads,
            )
        }
        """name -> (help, value): this worker's gauges, read at each ``render``."""

    def deprecated(self, notices: list[str]) -> None:
        for text in notices:
            self.deprecated_reads.labels(text.partition(" ")[0]).inc()

    def large_read(self, delta: int) -> None:
        self.large_reads += delta

    def observe(self, endpoint: str, method: str, status: int, seconds: float) -> None:
        key = (endpoint, method, status)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = (
                self.requests.labels(endpoint, method, str(status)),
                self.latency.labels(endpoint),
            )
        child[0].inc()
        child[1].observe(seconds)

    def error(self, endpoint: str, code: str) -> None:
        self.errors.labels(endpoint, code).inc()

    def read(self, view: str, keys: int) -> None:
        child = self._children.get(view)
        if child is None:
            child = self._children[view] = self.view_reads.labels(view)
        child.inc(keys)

    def cache(self, hits: int, misses: int) -> None:
        if hits:
            self._hits.inc(hits)
        if misses:
            self._misses.inc(misses)

    def render(self) -> bytes:
        """The text exposition, with the cache hit ratio computed from the counters."""
        registry = self.registry
        if self.multiprocess:
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
        hits = misses = 0.0
        for family in registry.collect():
            if family.name == "parity_online_cache_lookups":
                for s in family.samples:
                    if s.name.endswith("_total"):
                        if s.labels.get("result") == "hit":
                            hits += s.value
                        else:
                            misses += s.value
        ratio = hits / (hits + misses) if hits + misses else 0.0
        extra = (
            "# HELP parity_online_cache_hit_ratio Record cache hits / lookups since start\n"
            "# TYPE parity_online_cache_hit_ratio gauge\n"
            f"parity_online_cache_hit_ratio {ratio!r}\n"
        )
        for name, (text, value) in self.gauges.items():
            extra += f"# HELP {name} {text}\n# TYPE {name} gauge\n{name} {float(value())!r}\n"
        return generate_latest(registry) + extra.encode()
