"""The alert-rule checks pint has equivalents of, and pint's cases through the runner."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from rknb.audit import AuditConfig, audit, parse_promql
from rknb.audit.rules.alerts import always_fires, counter_reads
from rknb.conformance import audit as runner

CONFORMANCE = Path(__file__).resolve().parent.parent / "data" / "conformance" / "audit"


def rules_object(*rules: dict[str, Any]) -> dict[str, Any]:
    return {
        "kind": "PrometheusRule",
        "metadata": {"name": "r", "namespace": "mon"},
        "spec": {"groups": [{"name": "g", "rules": list(rules)}]},
    }


def found(rule_id: str, *rules: dict[str, Any], config: AuditConfig | None = None) -> list[str]:
    report = audit([rules_object(*rules)], rules=[rule_id], config=config)
    return [f.message for f in report.findings]


@pytest.mark.parametrize(
    ("expr", "fires"),
    [
        ("up == 0", False),
        ("up", True),
        ("rate(errors_total[5m]) > bool 1", True),  # bool keeps every series
        ("(rate(errors_total[5m]) > bool 1) == 1", False),
        ("foo unless bar", False),
        ("absent(foo) or absent(bar)", False),
        ("(foo > 0) or vector(0)", True),  # the right side always returns a series
        ("foo > 0 and on (instance) bar", False),
        ("max by (instance) (foo > 0) * on (instance) group_left bar", False),
        ("rate(a[5m]) + rate(b[5m])", True),
        ("vector(1)", True),
    ],
)
def test_always_fires_judges_filtering_by_operator(expr, fires):
    assert always_fires(parse_promql(expr)) is fires


def test_absent_alerts_need_two_scrape_intervals_of_for():
    assert found("RK-PROM-010", {"alert": "A", "expr": "absent(up)", "for": "2m"}) == []
    assert found("RK-PROM-010", {"alert": "A", "expr": "absent(up)", "for": "90s"}) == [
        "alert g/A: absent() alert with for 90s, under two scrape intervals (120s)"
    ]
    at_30s = AuditConfig(scrape_interval_s=30)
    assert (
        found("RK-PROM-010", {"alert": "A", "expr": "absent(up)", "for": "1m"}, config=at_30s) == []
    )
    assert found("RK-PROM-010", {"alert": "A", "expr": "absent(vector(1))", "for": "5m"}) == [
        "alert g/A: absent() of an always-present value never fires"
    ]
    assert found("RK-PROM-010", {"alert": "A", "expr": "up == 0"}) == []  # no absent()


def test_for_and_keep_firing_for_must_be_durations():
    assert found("RK-PROM-012", {"alert": "A", "expr": "up == 0", "for": "5m"}) == []
    assert found("RK-PROM-012", {"alert": "A", "expr": "up == 0", "for": "-5m"}) == [
        "alert g/A for '-5m' is not a duration"
    ]
    assert found("RK-PROM-012", {"alert": "A", "expr": "up == 0", "keep_firing_for": "abc"}) == [
        "alert g/A keep_firing_for 'abc' is not a duration"
    ]


def test_raw_counter_reads_need_known_types():
    types = {"requests_total": "counter", "queue": "gauge"}
    assert counter_reads(parse_promql("sum(requests_total) > 1"), types) == ["requests_total"]
    assert counter_reads(parse_promql("delta(requests_total[5m]) > 1"), types) == ["requests_total"]
    assert counter_reads(parse_promql("sum(rate(requests_total[5m])) > 1"), types) == []
    assert counter_reads(parse_promql("count(requests_total) > 1"), types) == []
    assert counter_reads(parse_promql("queue > 100"), types) == []
    rule = {"alert": "A", "expr": "requests_total > 1"}
    assert found("RK-PROM-013", rule) == []  # no metric types: nothing is known to be a counter
    typed = AuditConfig(metric_types=tuple(types.items()))
    assert found("RK-PROM-013", rule, config=typed) == [
        "alert g/A: reads counter requests_total without rate() or increase()"
    ]


def test_syntax_errors_are_their_own_rule():
    bad = {"alert": "A", "expr": "sum(rate(x[5m])"}
    [message] = found("RK-PROM-014", bad, {"record": "r:x", "expr": "sum(x)"})
    assert message.startswith("alert g/A: cannot parse PromQL") and "unclosed" in message
    assert found("RK-PROM-001", bad) == []  # no longer reported by the histogram rule


def test_recording_rules_get_the_range_and_type_checks():
    record = {"record": "job:x:rate1m", "expr": "sum(rate(x_total[1m]))"}
    assert found("RK-PROM-007", record) == [
        "rule g/job:x:rate1m: rate(x_total[1m]) covers fewer than 2 scrape intervals of 60s"
    ]


def test_required_labels_and_annotations_follow_the_settings():
    config = AuditConfig(
        alert_labels=(("priority", "[1-5]"),), alert_annotations=(("runbook_url", "https://.+"),)
    )
    ok = {
        "alert": "A",
        "expr": "up == 0",
        "labels": {"priority": "2"},
        "annotations": {"runbook_url": "https://wiki/a"},
    }
    assert found("RK-PROM-004", ok, config=config) == []
    assert found("RK-PROM-005", ok, config=config) == []
    bad = {**ok, "labels": {"priority": "12"}, "annotations": {}}
    assert found("RK-PROM-004", bad, config=config) == [
        "alert g/A label priority '12' does not match '[1-5]'"  # the pattern must match whole
    ]
    assert found("RK-PROM-005", bad, config=config) == ["alert g/A has no runbook_url annotation"]


def test_for_bounds_apply_only_when_set():
    three = {"alert": "A", "expr": "up == 0", "for": "3m"}
    assert found("RK-PROM-003", three) == []
    bounded = AuditConfig(alert_for_min_s=300, alert_for_max_s=600)
    assert found("RK-PROM-003", three, config=bounded) == ["alert g/A for 3m is shorter than 300s"]
    long = {**three, "for": "13m"}
    assert found("RK-PROM-003", long, config=bounded) == ["alert g/A for 13m is longer than 600s"]
    assert found("RK-PROM-003", {**three, "for": "0h"}) == ["alert g/A has no `for`"]


def test_pint_config_settings_are_read_from_its_hcl():
    settings = runner._pint_hcl(
        (CONFORMANCE / "prom-rules" / "pint-0121_rule_for--pint.hcl").read_text()
    )
    assert settings["alert_for_min_s"] == 300 and settings["alert_for_max_s"] == 600
    settings = runner._pint_hcl(
        (CONFORMANCE / "prom-rules" / "pint-0007_alerts--pint.hcl").read_text()
    )
    assert settings["alert_labels"] == (("severity", "critical|warning|info"),)
    assert settings["alert_annotations"] == (("url", "https://wiki.example.com/page/(.+).html"),)


def test_pints_unit_cases_run_through_the_runner():
    results = runner._pint_unit_cases(CONFORMANCE / "prom-rules" / "pint-unit-cases.json")
    assert len(results) == 98
    assert Counter(r.status for r in results) == {"passed": 96, "skipped": 2}
    reasons = Counter(r.detail for r in results if r.status == "skipped")
    assert reasons["not applicable: no rknb rule is equivalent to pint promql/fragile"] == 0
    by_check = Counter(r.case_id.split(":")[2] for r in results if r.status == "passed")
    assert by_check == {
        "promql/rate": 25,
        "alerts/comparison": 21,
        "promql/counter": 20,
        "alerts/absent": 6,
        "alerts/for": 6,
        "promql/fragile": 18,
    }


def test_the_whole_folder_closes_with_pint_counted_apart():
    summary = runner.run([CONFORMANCE])
    assert summary.failures() == []
    pint = [r for r in summary.results if "pint" in r.case_id or ":rknb:" in r.case_id]
    # 98 unit cases (96 passed, 2 not applicable) and the end-to-end files: per alert,
    # rule/label 6, alerts/annotation 6, rule/for 4, promql/syntax 4, alerts/comparison 3 and
    # rknb's histogram file 3 pass; 7 are not applicable (4 on unparseable rules, 1 disabled
    # by a pint comment, alerts/template and yaml/parse once each).
    assert Counter(r.status for r in pint) == {"passed": 96 + 26, "skipped": 2 + 7}
    assert summary.closing_line().endswith(", 0 failed, 3 divergent, 9 not applicable")


def test_a_name_matcher_names_the_metric_for_type_checks():
    gauge = AuditConfig(metric_types=(("queue", "gauge"),))
    record = {"record": "r:queue", "expr": 'rate({__name__="queue", job="a"}[5m])'}
    assert found("RK-PROM-006", record, config=gauge) == [
        "rule g/r:queue: rate() over queue, a gauge"
    ]
    regex = {"record": "r:queue", "expr": 'rate({__name__=~"queue|other"}[5m])'}
    assert found("RK-PROM-006", regex, config=gauge) == []  # a regex names no one metric
