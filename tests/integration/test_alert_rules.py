"""The chart's alert rules, judged by promtool (built from the Go module proxy by hack/build-checks.sh): rendered by
the real helm exactly as the chart installs them, checked (`promtool check rules`) and tested (`promtool test rules`)
with one scenario per alert as the README describes it.

The input series are what Prometheus would have scraped from the operator: the real metrics exporter
(mediagen.controller.metrics.Metrics) driven through a timeline and read once a minute, with the labels a
ServiceMonitor scrape adds. So a series the exporter creates late (at 1 on its first increment) reaches promtool
just as late, which is what hid the first failures after every start from the alerts."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from mediagen.api.types import Phase
from mediagen.controller.metrics import Metrics
from mediagen_dev.checks import Checks
from mediagen_dev.helm import Helm, HelmError, find_helm

RELEASE_NAMESPACE = "mediagen"
JOB = "mediagen-operator-metrics"
TARGET = {"job": JOB, "namespace": RELEASE_NAMESPACE, "instance": "10.0.0.7:8081", "pod": "mediagen-operator-0"}
ALERTED_METRICS = (
    "mediagen_generations_total",
    "mediagen_generation_oldest_in_flight_seconds",
    "mediagen_replicate_requests_total",
)
START = 1_800_000_000.0  # epoch seconds of minute 0 (the in-flight ages are computed from it)


@pytest.fixture(scope="module")
def rules_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The alert rules as the chart installs them (PrometheusRule spec.groups), in Prometheus' rule-file format."""
    try:
        helm = Helm(find_helm(), tmp_path_factory.mktemp("helm-home"))
    except HelmError as exc:
        pytest.fail(str(exc), pytrace=False)
    (rule,) = helm.template(
        namespace=RELEASE_NAMESPACE,
        set_values={"prometheusRule.enabled": "true", "serviceMonitor.enabled": "true"},
        show_only=["templates/prometheusrule.yaml"],
    )
    path = tmp_path_factory.mktemp("rules") / "mediagen-rules.yaml"
    path.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}, sort_keys=False))
    return path


def rules(path: Path) -> dict[str, dict[str, Any]]:
    return {r["alert"]: r for group in yaml.safe_load(path.read_text())["groups"] for r in group["rules"]}


@dataclass
class Timeline:
    """The operator's exporter, scraped once a minute for ``minutes`` minutes; ``events[m]`` run just before the
    scrape of minute m. ``up[m]`` is Prometheus' own ``up`` for the target (None: not scraped)."""

    minutes: int
    events: dict[int, Callable[[Metrics], None]] = field(default_factory=dict)
    down_from: int | None = None

    def input_series(self) -> list[dict[str, str]]:
        now = [START]
        metrics = Metrics(clock=lambda: now[0])
        values: dict[str, list[str]] = {}
        for minute in range(self.minutes + 1):
            now[0] = START + 60 * minute
            if minute in self.events:
                self.events[minute](metrics)
            up = self.down_from is None or minute < self.down_from
            scraped = scrape(metrics) if up else {}
            scraped[selector("up", {})] = 1.0 if up else 0.0
            for key, value in scraped.items():
                values.setdefault(key, ["_"] * minute).append(f"{value:g}")
            for series in values.values():
                series += ["_"] * (minute + 1 - len(series))  # not exported (or not scraped) this minute
        return [{"series": key, "values": " ".join(v)} for key, v in sorted(values.items())]


def selector(name: str, labels: dict[str, str]) -> str:
    pairs = {**labels, **TARGET}
    return name + "{" + ",".join(f'{k}="{v}"' for k, v in sorted(pairs.items())) + "}"


def scrape(metrics: Metrics) -> dict[str, float]:
    """What one scrape of /metrics stores for the metrics the alerts read."""
    text = generate_latest(metrics.registry).decode()
    return {
        selector(sample.name, sample.labels): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name in ALERTED_METRICS
    }


def finish(*outcomes: tuple[Phase, str]) -> Callable[[Metrics], None]:
    def run(metrics: Metrics) -> None:
        for phase, reason in outcomes:
            metrics.finished(phase, reason, 30.0)

    return run


def requests(**codes: int) -> Callable[[Metrics], None]:
    """``codes``: ``endpoint_code=count``, e.g. ``get_429=12``."""

    def run(metrics: Metrics) -> None:
        for key, count in codes.items():
            endpoint, code = key.split("_")
            for _ in range(count):
                metrics.replicate_request(endpoint, code, 0.05)

    return run


def every_minute(minutes: range, event: Callable[[Metrics], None]) -> dict[int, Callable[[Metrics], None]]:
    return dict.fromkeys(minutes, event)


def description(path: Path, alert: str, value: str) -> dict[str, str]:
    """The alert's annotations with its one template expression rendered as ``value``."""
    annotations: dict[str, str] = dict(rules(path)[alert]["annotations"])
    annotations["description"] = re.sub(r"\{\{ [^}]*\$value[^}]* \}\}", value, annotations["description"])
    return annotations


FAILED, SUCCEEDED = Phase.FAILED, Phase.SUCCEEDED
# 3 of 5 failed, every reason finishing for the first time since the operator started (within 4 minutes, so all
# five stay inside the 15-minute window for the 10 minutes the rule's `for` asks).
THREE_OF_FIVE = {
    2: finish((FAILED, "ContentFlagged")),
    3: finish((SUCCEEDED, "Succeeded")),
    4: finish((FAILED, "ModelFailed"), (SUCCEEDED, "Succeeded")),
    5: finish((FAILED, "DeadlineExceeded")),
}


def scenarios(path: Path) -> dict[str, dict[str, Any]]:
    """One promtool test group per alert (plus the count the issue measured), named by what it shows."""
    warning = {"severity": "warning"}
    return {
        "MediagenHighFailureRatio": {
            "interval": "1m",
            "input_series": Timeline(20, THREE_OF_FIVE).input_series(),
            "promql_expr_test": [
                {  # five finishes are five, also when each (phase, reason) finishes for the first time
                    "expr": f'sum(increase(mediagen_generations_total{{namespace="{RELEASE_NAMESPACE}"}}[15m]))',
                    "eval_time": "10m",
                    "exp_samples": [{"labels": "{}", "value": 5}],
                }
            ],
            "alert_rule_test": [
                {"eval_time": "14m", "alertname": "MediagenHighFailureRatio", "exp_alerts": []},  # pending
                {
                    "eval_time": "15m",
                    "alertname": "MediagenHighFailureRatio",
                    "exp_alerts": [
                        {"exp_labels": warning, "exp_annotations": description(path, "MediagenHighFailureRatio", "60%")}
                    ],
                },
            ],
        },
        "MediagenHighFailureRatio stays silent below its thresholds": {
            "interval": "1m",
            "input_series": Timeline(
                20,
                {  # 1 of 5 failed (20 %), then 3 of 4 failed in another window (too few finished)
                    2: finish((FAILED, "ModelFailed"), (SUCCEEDED, "Succeeded")),
                    3: finish((SUCCEEDED, "Succeeded"), (SUCCEEDED, "Succeeded"), (SUCCEEDED, "Succeeded")),
                },
            ).input_series(),
            "alert_rule_test": [
                {"eval_time": f"{m}m", "alertname": "MediagenHighFailureRatio", "exp_alerts": []} for m in (13, 15, 17)
            ],
        },
        "MediagenGenerationStuck": {
            "interval": "1m",
            "input_series": Timeline(
                16, {0: lambda m: m.in_flight("uid-1", Phase.RUNNING, START - 7000)}
            ).input_series(),  # created 7000 s before minute 0: older than 7200 s from minute 4 on
            "alert_rule_test": [
                {"eval_time": "13m", "alertname": "MediagenGenerationStuck", "exp_alerts": []},
                {
                    "eval_time": "14m",
                    "alertname": "MediagenGenerationStuck",
                    "exp_alerts": [
                        {
                            "exp_labels": warning,
                            "exp_annotations": description(path, "MediagenGenerationStuck", "2h 10m 40s"),
                        }
                    ],
                },
            ],
        },
        "MediagenReplicateThrottled": {
            "interval": "1m",
            "input_series": Timeline(
                16, every_minute(range(1, 17), requests(get_200=60, get_429=12))
            ).input_series(),  # 0.2 answers a second are 429
            "alert_rule_test": [
                {
                    "eval_time": "16m",
                    "alertname": "MediagenReplicateThrottled",
                    "exp_alerts": [
                        {
                            "exp_labels": warning,
                            "exp_annotations": description(path, "MediagenReplicateThrottled", "0.20"),
                        }
                    ],
                },
            ],
        },
        "MediagenReplicateErrors": {
            "interval": "1m",
            "input_series": Timeline(
                16, every_minute(range(1, 17), requests(get_200=80, create_201=10, create_503=6, get_error=4))
            ).input_series(),  # 10 of 100 requests a minute got a 5xx or no answer
            "alert_rule_test": [
                {
                    "eval_time": "16m",
                    "alertname": "MediagenReplicateErrors",
                    "exp_alerts": [
                        {"exp_labels": warning, "exp_annotations": description(path, "MediagenReplicateErrors", "10%")}
                    ],
                },
            ],
        },
        "MediagenOperatorDown": {
            "interval": "1m",
            "input_series": Timeline(12, down_from=3).input_series(),  # scraped, then the target is down
            "alert_rule_test": [
                {"eval_time": "7m", "alertname": "MediagenOperatorDown", "exp_alerts": []},
                {
                    "eval_time": "8m",
                    "alertname": "MediagenOperatorDown",
                    "exp_alerts": [
                        {
                            "exp_labels": {"severity": "critical"},  # absent() of a comparison carries no labels
                            "exp_annotations": rules(path)["MediagenOperatorDown"]["annotations"],
                        }
                    ],
                },
            ],
        },
    }


def test_promtool_accepts_the_rules_the_chart_installs(checks: Checks, rules_file: Path) -> None:
    result = checks.promtool("check", "rules", str(rules_file))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 5 rules found" in result.stdout


SCENARIOS = [
    "MediagenHighFailureRatio",
    "MediagenHighFailureRatio stays silent below its thresholds",
    "MediagenGenerationStuck",
    "MediagenReplicateThrottled",
    "MediagenReplicateErrors",
    "MediagenOperatorDown",
]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_each_alert_fires_as_the_readme_describes(checks: Checks, rules_file: Path, scenario: str) -> None:
    group = scenarios(rules_file)[scenario]
    test_file = rules_file.parent / f"{re.sub(r'[^a-z]+', '-', scenario.lower())}.test.yaml"
    test_file.write_text(
        yaml.safe_dump(
            {"rule_files": [rules_file.name], "evaluation_interval": "1m", "tests": [group]}, sort_keys=False
        )
    )
    result = checks.promtool("test", "rules", test_file.name, cwd=rules_file.parent)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_scenario(rules_file: Path) -> None:
    tested = {t["alertname"] for group in scenarios(rules_file).values() for t in group.get("alert_rule_test", [])}
    assert tested == set(rules(rules_file)) and len(tested) == 5
    assert set(SCENARIOS) == set(scenarios(rules_file))
