"""The operators' configs: alert rules and scrape config pass promtool (syntax and rule unit tests),
and the Grafana dashboard is well formed and asks only for metrics that harmscan exports."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from review.metrics import ReviewMetrics
from serving.metrics import ServingMetrics
from tests.fixtures.browser import require_debian_tool

REPO = Path(__file__).resolve().parents[2]
PROMETHEUS = REPO / "ops" / "prometheus"
DASHBOARD = REPO / "ops" / "grafana" / "dashboards" / "harmscan.json"
PROMTOOL = "/usr/bin/promtool"
# Series Prometheus itself makes (scrape health), not exported by harmscan.
PROMETHEUS_SERIES = {"up"}
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "info": ("_info",),
    "gauge": ("",),
    "summary": ("", "_sum", "_count", "_created"),
}


def exported_series() -> set[str]:
    """Every series name the consumer and the review page can export."""
    names: set[str] = set()
    for registry in (ServingMetrics().registry, ReviewMetrics().registry):
        for family in registry.collect():
            names |= {family.name + s for s in SUFFIXES[family.type]}
    # The review store's figures are collected per scrape from the store.
    names |= {"harmscan_review_waiting", "harmscan_review_oldest_age_seconds"}
    names |= {"harmscan_review_agreement_ratio", "harmscan_review_overturn_ratio"}
    names |= {"harmscan_review_decisions_total"}
    return names


def promql_metrics(expr: str) -> set[str]:
    """Metric names in a PromQL expression: identifiers that are not functions, keywords,
    label names or template variables."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # label values
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # ranges ($__rate_interval, 5m)
    expr = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    expr = re.sub(r"(?<![\w.])\d+(?:\.\d+)?(?:e[+-]?\d+)?", "", expr)  # numbers, 1e-9
    words = {
        m.group(0)
        for m in re.finditer(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expr)
        if not expr[m.end() :].lstrip().startswith("(")  # a function
    }
    keywords = {"and", "or", "unless", "bool", "offset", "inf", "nan"}
    return {w for w in words if w.lower() not in keywords}


def run_promtool(*args: str) -> subprocess.CompletedProcess[str]:
    require_debian_tool(PROMTOOL, "prometheus")
    return subprocess.run(
        [PROMTOOL, *args], capture_output=True, text=True, cwd=PROMETHEUS, timeout=120, check=False
    )


def test_alert_rules_pass_promtool() -> None:
    result = run_promtool("check", "rules", "alerts.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_alert_rules_fire_on_their_cases() -> None:
    result = run_promtool("test", "rules", "alerts_test.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_prometheus_config_passes_promtool() -> None:
    result = run_promtool("check", "config", "--syntax-only", "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_refuses_a_broken_rule(tmp_path: Path) -> None:
    broken = tmp_path / "alerts.yml"
    broken.write_text((PROMETHEUS / "alerts.yml").read_text().replace("> 0.05", "> > 0.05", 1))
    assert run_promtool("check", "rules", str(broken)).returncode != 0


def test_every_alert_named_in_the_issue_exists() -> None:
    import yaml

    rules = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())
    names = {r["alert"] for group in rules["groups"] for r in group["rules"]}
    wanted = {"HarmscanLagGrowing", "HarmscanDeadLetterRate", "HarmscanNoChampion"}
    assert {*wanted, "HarmscanConsumerDown"} <= names
    for group in rules["groups"]:
        for rule in group["rules"]:
            unknown = promql_metrics(rule["expr"]) - exported_series() - PROMETHEUS_SERIES
            assert not unknown, f"{rule['alert']} uses metrics nobody exports: {unknown}"


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def test_dashboard_structure(dashboard: dict[str, Any]) -> None:
    assert dashboard["uid"]
    assert dashboard["title"]
    panels = dashboard["panels"]
    assert len({p["id"] for p in panels}) == len(panels), "panel ids must be unique"
    for panel in panels:
        assert panel["type"] in {"timeseries", "heatmap", "stat", "bargauge", "table", "gauge"}
        assert panel["title"]
        assert {"x", "y", "w", "h"} <= set(panel["gridPos"])
        assert panel["datasource"]["uid"] == "harmscan-prometheus"
        assert panel["targets"], f"panel {panel['title']!r} has no query"
        refs = [t["refId"] for t in panel["targets"]]
        assert len(set(refs)) == len(refs)
    datasource = (REPO / "ops/grafana/provisioning/datasources/prometheus.yml").read_text()
    assert "uid: harmscan-prometheus" in datasource


def test_dashboard_shows_what_operators_need(dashboard: dict[str, Any]) -> None:
    text = " ".join(t["expr"] for p in dashboard["panels"] for t in p["targets"])
    for needed in (
        "harmscan_consumed_total",  # throughput
        "harmscan_consumer_lag",
        "histogram_quantile(0.5",
        "histogram_quantile(0.99",
        "harmscan_dead_lettered_total",
        "harmscan_score_bucket",
        "harmscan_review_waiting",
    ):
        assert needed in text, f"the dashboard shows no {needed}"
    assert "by (reason)" in text
    assert "model_version" in text


def test_dashboard_queries_use_only_exported_metrics(dashboard: dict[str, Any]) -> None:
    exported = exported_series()
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            unknown = promql_metrics(target["expr"]) - exported - PROMETHEUS_SERIES
            assert not unknown, f"panel {panel['title']!r} queries unknown metrics {unknown}"


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ('sum by (le) (rate(harmscan_latency_seconds_bucket{job="x"}[5m]))',
         {"harmscan_latency_seconds_bucket"}),
        ("harmscan_a / clamp_min(harmscan_b, 1e-9) > 0.05 and up == 0",
         {"harmscan_a", "harmscan_b", "up"}),
    ],
)  # fmt: skip
def test_promql_metric_names(expr: str, names: set[str]) -> None:
    assert promql_metrics(expr) == names
