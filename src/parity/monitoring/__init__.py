"""Monitoring: statistics, quality checks, drift, freshness SLAs, training/serving skew,
alerts and the HTML report. It observes the core through its seams (hooks, the offline
engine's abilities, the registry) and keeps what it computes in the registry
(``parity.registry.monitoring``).

- ``result``       the Arrow-backed result every call returns (``.to_pandas()``)
- ``profile``      per-feature statistics over source rows or online values
- ``checks``       the quality rules declared on fields; the write gate (a hook)
- ``drift``        KS, PSI, chi-squared, Jensen-Shannon, Wasserstein; ``baselines``
- ``freshness``    each view's lag against its SLA; the watermark hook
- ``serving_log``  what the feature server served; ``skew`` replays it offline
- ``alerts``       rules evaluated on a schedule, webhooks, Prometheus gauges (``runner``)
- ``report``       a self-contained HTML page of it all
"""
