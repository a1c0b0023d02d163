"""The shipped Prometheus alerting rules and Grafana dashboard use only metrics the monitor
exports, and the monitor's /metrics text really carries every one of them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from parity.monitoring.metrics import EXPORTED, MonitorMetrics

ROOT = Path(__file__).resolve().parents[3]
RULES = ROOT / "deploy" / "prometheus" / "parity-alerts.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "parity-monitoring.json"
METRIC = re.compile(r"\bparity_[a-z0-9_]+")


def names(expr: str) -> set[str]:
    return set(METRIC.findall(expr))


def test_every_alerting_rule_uses_exported_metrics() -> None:
    doc = yaml.safe_load(RULES.read_text())
    rules = [r for g in doc["groups"] for r in g["rules"]]
    assert len(rules) >= 5
    required = {
        "parity_feature_freshness_lag_seconds",
        "parity_feature_null_ratio",
        "parity_feature_drift_psi",
        "parity_feature_drift_ks_pvalue",
        "parity_check_violations",
    }
    used: set[str] = set()
    for rule in rules:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule
        assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", rule["alert"])
        found = names(rule["expr"])
        assert found, f"rule {rule['alert']} names no parity metric"
        assert found <= set(EXPORTED), f"rule {rule['alert']}: {found - set(EXPORTED)}"
        assert rule["expr"].count("(") == rule["expr"].count(")")
        used |= found
    assert required <= used


def test_every_dashboard_panel_queries_exported_metrics() -> None:
    dash = json.loads(DASHBOARD.read_text())
    panels = dash["panels"]
    assert len(panels) >= 6
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    used: set[str] = set()
    for panel in panels:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            found = names(target["expr"])
            assert found, f"panel {panel['title']!r}: {target['expr']}"
            assert found <= set(EXPORTED), f"panel {panel['title']!r}: {found - set(EXPORTED)}"
            used |= found
    for var in dash["templating"]["list"]:
        assert names(var.get("query", "")) <= set(EXPORTED)
    assert {
        "parity_feature_freshness_lag_seconds",
        "parity_feature_null_ratio",
        "parity_feature_drift_psi",
        "parity_feature_drift_ks_pvalue",
        "parity_check_violations",
    } <= used


def test_the_rendered_metrics_carry_every_exported_name() -> None:
    text = MonitorMetrics().render().decode()
    for name in EXPORTED:
        assert f"# TYPE {name} gauge" in text, name
