"""The Grafana dashboard and the Prometheus alerting rules under deploy/ load, and ask only for metrics (and labels)
that bot/metrics.py really exports; docs/deploy.md describes every alert."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase

from bot.metrics import Metrics

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_count", "_sum", "_created"),
            "gauge": ("",)}
METRIC = re.compile(r"\b(bot_[a-z0-9_]+)\b")
SELECTOR = re.compile(r"\b(bot_[a-z0-9_]+)\{([^}]*)\}")
GROUPING = re.compile(r"\b(?:by|without|on|ignoring)\s*\(([^)]*)\)")
PROMQL_LABELS = {"le"}  # histogram buckets' own label


def exported() -> dict[str, set[str]]:
    """Every series name /metrics can expose -> the label names it carries."""
    names: dict[str, set[str]] = {}
    for metric in vars(Metrics()).values():
        if not isinstance(metric, MetricWrapperBase):
            continue
        [family] = metric.describe()
        labels = set(metric._labelnames)
        for suffix in SUFFIXES[family.type]:
            names[family.name + suffix] = labels | ({"le"} if suffix == "_bucket" else set())
    return names


def check_expr(expr: str, known: dict[str, set[str]]) -> None:
    used = set(METRIC.findall(expr))
    assert used, f"no bot metric in {expr!r}"
    assert used <= set(known), f"unknown metrics {used - set(known)} in {expr!r}"
    for name, matchers in SELECTOR.findall(expr):
        keys = {m.split("=")[0].strip().rstrip("!~") for m in matchers.split(",") if m.strip()}
        assert keys <= known[name], f"{name} has no labels {keys - known[name]} ({expr!r})"
    all_labels = set().union(*(known[name] for name in used)) | PROMQL_LABELS
    for group in GROUPING.findall(expr):
        keys = {k.strip() for k in group.split(",") if k.strip()}
        assert keys <= all_labels, f"grouping by unknown labels {keys - all_labels} in {expr!r}"
    assert expr.count("(") == expr.count(")") and expr.count("{") == expr.count("}"), expr


def rules() -> list[dict[str, Any]]:
    data = yaml.safe_load((DEPLOY / "alerts.yml").read_text())
    return [rule for group in data["groups"] for rule in group["rules"]]


def test_metric_catalogue_is_what_metrics_renders() -> None:
    metrics = Metrics()
    metrics.delivery("pull_request", "accepted")
    metrics.github_call("GET", 200, 4999)
    text = metrics.render().decode()
    assert "bot_webhook_deliveries_total{" in text and "bot_github_rate_limit_remaining{" in text
    known = exported()
    assert "bot_webhook_deliveries_total" in known and "bot_job_wait_seconds_bucket" in known
    assert known["bot_jobs"] == {"state"}


def test_alert_rules_parse_and_use_only_exported_metrics() -> None:
    known = exported()
    loaded = rules()
    names = [rule["alert"] for rule in loaded]
    assert len(names) == len(set(names))
    for rule in loaded:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule["alert"]
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert rule["annotations"]["summary"]
        if "for" in rule:
            assert re.fullmatch(r"\d+[smh]", rule["for"])
        check_expr(rule["expr"], known)
    exprs = " ".join(rule["expr"] for rule in loaded)
    # What the operator asked to be paged for: dead jobs, queue age, signatures, spend, GitHub's rate limit.
    for needle in ('bot_jobs{state="dead"}', "bot_job_wait_seconds_bucket", 'outcome="bad_signature"',
                   "bot_model_cost_usd_total", "bot_github_rate_limit_remaining"):
        assert needle in exprs, needle


def test_dashboard_loads_and_queries_only_exported_metrics() -> None:
    dashboard = json.loads((DEPLOY / "grafana-dashboard.json").read_text())
    known = exported()
    panels = dashboard["panels"]
    assert dashboard["uid"] and dashboard["title"] and panels
    assert len({p["id"] for p in panels}) == len(panels)
    assert [i["name"] for i in dashboard["__inputs"]] == ["DS_PROMETHEUS"]
    for panel in panels:
        assert panel["targets"], panel["title"]
        assert len({t["refId"] for t in panel["targets"]}) == len(panel["targets"])
        for target in panel["targets"]:
            check_expr(target["expr"], known)
    covered = {name for p in panels for t in p["targets"] for name in METRIC.findall(t["expr"])}
    assert {"bot_jobs", "bot_model_cost_usd_total", "bot_github_rate_limit_remaining"} <= covered


@pytest.mark.parametrize("bad", ["bot_nope_total", 'bot_jobs{colour="red"}', "sum by (colour) (bot_jobs)",
                                 "rate(bot_jobs_finished_total[5m]"])
def test_the_check_rejects_what_it_should(bad: str) -> None:
    with pytest.raises(AssertionError):
        check_expr(bad, exported())


def test_deploy_doc_describes_every_alert_and_the_files() -> None:
    doc = (ROOT / "docs" / "deploy.md").read_text()
    for rule in rules():
        assert rule["alert"] in doc, rule["alert"]
    assert "deploy/grafana-dashboard.json" in doc and "deploy/alerts.yml" in doc
    assert "python -m bot status" in doc and "python -m bot retry" in doc
