"""Alert-rule lint on real PromQL parse trees: ranges, metric types, error ratios, metadata."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from rknb.audit import AuditConfig, audit, parse_promql
from rknb.audit.rules.alerts import metric_types_from_openmetrics
from rknb.conformance.audit import read_inputs
from rknb.errors import ParameterError

PROM_RULES = (
    Path(__file__).resolve().parent.parent / "data" / "conformance" / "audit" / "prom-rules"
)


def rules_object(*rules: dict[str, Any]) -> dict[str, Any]:
    return {
        "kind": "PrometheusRule",
        "metadata": {"name": "r", "namespace": "mon"},
        "spec": {"groups": [{"name": "g", "rules": list(rules)}]},
    }


def alert(expr: str, **extra: Any) -> dict[str, Any]:
    return {
        "alert": "A",
        "expr": expr,
        "for": "5m",
        "labels": {"severity": "page"},
        "annotations": {"summary": "s"},
        **extra,
    }


def found(expr: str, rule_id: str, config: AuditConfig | None = None) -> list[str]:
    report = audit([rules_object(alert(expr))], rules=[rule_id], config=config)
    return [f.message for f in report.findings]


def test_the_shared_histogram_fixture_gives_rknbs_stated_verdicts():
    [obj] = read_inputs([PROM_RULES / "rknb--histogram-quantile.yaml"]).objects
    report = audit([obj], rules=["RK-PROM-001", "RK-PROM-002"])
    by_alert = {(f.alert or "").split("/")[-1]: f.rule_id for f in report.findings}
    assert by_alert == {"LatencyNoRate": "RK-PROM-001", "LatencyNoByLe": "RK-PROM-002"}


def test_syntax_errors_carry_the_parsers_message():
    with pytest.raises(ParameterError, match="unclosed left parenthesis"):
        parse_promql("sum(rate(http_requests_total[5m])")


def test_rate_range_must_cover_two_scrape_intervals():
    assert found("rate(x_total[1m]) > 1", "RK-PROM-007") == [
        "alert g/A: rate(x_total[1m]) covers fewer than 2 scrape intervals of 60s"
    ]
    assert found("rate(x_total[2m]) > 1", "RK-PROM-007") == []  # exactly two intervals
    at_15s = AuditConfig(scrape_interval_s=15)
    assert found("rate(x_total[1m]) > 1", "RK-PROM-007", at_15s) == []
    advice = AuditConfig(scrape_interval_s=15, enabled=("RK-PROM-008",))
    assert len(found("rate(x_total[45s]) > 1", "RK-PROM-008", advice)) == 1  # 3 < 4 samples


def test_rate_over_a_gauge_uses_the_exported_types():
    exposition = (
        "# TYPE queue_depth gauge\n# TYPE http_requests counter\n# TYPE latency_seconds histogram\n"
    )
    types = metric_types_from_openmetrics(exposition)
    assert types["http_requests_total"] == "counter"
    assert types["latency_seconds_bucket"] == "counter"
    config = AuditConfig(metric_types=tuple(types.items()))
    assert found("rate(queue_depth[5m]) > 1", "RK-PROM-006", config) == [
        "alert g/A: rate() over queue_depth, a gauge"
    ]
    assert found("rate(http_requests_total[5m]) > 1", "RK-PROM-006", config) == []
    assert found("deriv(queue_depth[5m]) > 1", "RK-PROM-006", config) == []
    assert found("rate(unknown[5m]) > 1", "RK-PROM-006", config) == []  # unknown type passes


@pytest.mark.parametrize(
    ("expr", "flagged"),
    [
        ('rate(http_requests_total{code=~"5.."}[5m]) > 5', True),
        ("sum(rate(errors_total[5m])) > 1", True),
        ('sum(rate(http_requests_total{code=~"5.."}[5m])) / sum(rate(http_requests_total[5m]))'
         " > 0.01", False),
        ("rate(http_requests_total[5m]) > 100", False),  # not an error series
    ],
)  # fmt: skip
def test_error_rate_must_be_a_ratio(expr, flagged):
    assert bool(found(expr, "RK-PROM-009")) is flagged


def test_alert_metadata_rules():
    bare = {"alert": "A", "expr": "up == 0", "for": "5m"}
    report = audit([rules_object(bare)], rules=["RK-PROM-004", "RK-PROM-005"])
    assert [f.rule_id for f in report.findings] == ["RK-PROM-004", "RK-PROM-005"]
    assert (
        audit([rules_object(alert("up == 0"))], rules=["RK-PROM-004", "RK-PROM-005"]).findings == []
    )
