"""The Grafana dashboard and the alert rules only use metrics the operator exports, and they are well formed."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from prometheus_client import generate_latest

from mediagen.controller.metrics import Metrics
from mediagen_dev.paths import REPO_ROOT

ROOT = REPO_ROOT
CHART = ROOT / "charts" / "mediagen"
DASHBOARD = CHART / "dashboards" / "mediagen.json"
RULES = CHART / "templates" / "prometheusrule.yaml"
# Series Prometheus itself adds to every scrape target, not the operator.
SCRAPE_SERIES = {"up"}
# A metric name where PromQL expects one: followed by a selector, a range, or the end of an aggregation.
_NAME = re.compile(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(?=\{|\[|\)|$|\s+(?:and|or|unless|>|<|/|\*)\b|\s*[><])")
_PROMQL_WORDS = {
    "sum", "max", "min", "avg", "count", "rate", "increase", "irate", "histogram_quantile", "sort_desc", "absent",
    "by", "on", "without", "and", "or", "unless", "le", "instance", "label_values", "ignoring", "group_left",
}  # fmt: skip


def exported_names(registry_text: str) -> set[str]:
    """Every series name the exposition can contain: metric families and their sample suffixes."""
    names = set()
    for line in registry_text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            names.add(name)
            if kind == "histogram":
                names |= {f"{name}_bucket", f"{name}_sum", f"{name}_count", f"{name}_created"}
            if kind == "counter":
                names.add(name.removesuffix("_total") + "_created")
        elif line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return names


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (Grafana variables and label names left out)."""
    expr = re.sub(r"\{[^}]*\}", "{}", expr)  # label matchers: their values are not metric names
    expr = re.sub(r"\[[^\]]*\]", "[]", expr)
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    return {m for m in _NAME.findall(expr) if m not in _PROMQL_WORDS and not m.startswith("$")}


def dashboard_exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]


def rule_exprs() -> list[str]:
    """The alert expressions, read from the template (the Helm-templated parts are label matchers and numbers)."""
    text = RULES.read_text()
    blocks = re.findall(r"expr: \|\n((?:\s{12}.*\n)+)", text)
    return [re.sub(r"\{\{.*?\}\}", "", block) for block in blocks]


@pytest.fixture(scope="module")
def exported() -> set[str]:
    metrics = Metrics(process_metrics=True)
    return exported_names(generate_latest(metrics.registry).decode())


def test_the_name_extraction_finds_names() -> None:
    assert metric_names('histogram_quantile(0.95, sum by (le) (rate(a_bucket{x="y"}[5m])))') == {"a_bucket"}
    assert metric_names("process_rss{} and on (instance) info{}") == {"process_rss", "info"}
    assert metric_names("max(oldest{}) > 7200") == {"oldest"}


def test_every_dashboard_metric_is_exported(exported: set[str]) -> None:
    used = set().union(*(metric_names(expr) for expr in dashboard_exprs()))
    assert len(used) >= 15
    assert used <= exported, used - exported


def test_every_alert_metric_is_exported(exported: set[str]) -> None:
    exprs = rule_exprs()
    assert len(exprs) == 5
    used = set().union(*(metric_names(expr) for expr in exprs))
    assert {"mediagen_generations_total", "mediagen_replicate_requests_total"} <= used
    assert used - SCRAPE_SERIES <= exported, used - SCRAPE_SERIES - exported


def test_every_exported_operator_metric_is_on_the_dashboard() -> None:
    """A metric nobody can see on the dashboard is a metric nobody looks at."""
    text = generate_latest(Metrics().registry).decode()
    families = {
        line.split()[2]
        for line in text.splitlines()
        if line.startswith("# TYPE mediagen_") and not line.split()[2].endswith("_created")  # client bookkeeping
    }

    def family(name: str) -> str:
        for suffix in ("_bucket", "_sum", "_count"):
            if name.endswith(suffix) and name.removesuffix(suffix) in families:
                return name.removesuffix(suffix)
        return name

    shown = {family(name) for expr in dashboard_exprs() for name in metric_names(expr)}
    assert families - shown == set()


def panels() -> list[dict[str, Any]]:
    return list(json.loads(DASHBOARD.read_text())["panels"])


def test_the_dashboard_is_well_formed() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["title"] == "mediagen" and dashboard["schemaVersion"] >= 36
    ids = [panel["id"] for panel in panels()]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    assert variables == {"datasource", "namespace"}
    for panel in panels():
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            expr = target["expr"]
            assert expr.count("(") == expr.count(")") and expr.count("{") == expr.count("}"), expr
            # Every selector is scoped to the chosen namespaces, so several installations don't mix.
            for selector in re.findall(r"\b[a-z_:]+\{[^}]*\}", expr):
                assert 'namespace=~"$namespace"' in selector, expr


def test_the_alert_expressions_are_balanced() -> None:
    for expr in rule_exprs():
        assert expr.count("(") == expr.count(")") and expr.count("[") == expr.count("]"), expr
