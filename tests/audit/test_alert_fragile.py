"""pint's promql/fragile (RK-PROM-015) and its chained-rate check (in RK-PROM-006)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rknb.audit import AuditConfig, audit, parse_promql
from rknb.audit.exprs import GUARANTEED, IMPOSSIBLE, POSSIBLE, sources
from rknb.conformance import audit as runner
from rknb.conformance.audit import read_inputs

DATA = Path(__file__).resolve().parent.parent / "data" / "audit"


def rules_object(*rules: dict[str, Any], name: str = "r") -> dict[str, Any]:
    return {
        "kind": "PrometheusRule",
        "metadata": {"name": name, "namespace": "mon"},
        "spec": {"groups": [{"name": "g", "rules": list(rules)}]},
    }


def findings(rule_id: str, *rules: dict[str, Any], config: AuditConfig | None = None) -> list:
    return audit([rules_object(*rules)], rules=[rule_id], config=config).findings


def fragile(expr: str, **extra: Any) -> list[tuple[str, str | None, str]]:
    found = findings("RK-PROM-015", {"alert": "Page", "expr": expr, **extra})
    return [(f.rule_id, f.alert, f.message) for f in found]


# --------------------------------------------------------------------- sampling aggregations


def test_topk_as_the_alerts_series_is_fragile_and_named():
    [(rule_id, alert, message)] = fragile("topk(3, rate(http_requests_total[5m])) > 100")
    assert (rule_id, alert) == ("RK-PROM-015", "g/Page")
    assert "topk(3, rate(http_requests_total[5m])) picks which series" in message


def test_bottomk_on_either_side_of_or_is_reported_once_each():
    found = fragile("up == 0 or bottomk(2, node_load1) or topk(2, node_load5)")
    assert sorted(m.split(" picks")[0].removeprefix("alert g/Page: ") for *_, m in found) == [
        "bottomk(2, node_load1)",
        "topk(2, node_load5)",
    ]


@pytest.mark.parametrize(
    "expr",
    [
        "max(topk(3, node_load1)) > 4",  # aggregated again: one series, fixed labels
        "topk(1, sum(node_load1)) > 4",  # one series without labels to pick among
        'topk(1, sum by (job) (node_load1{job="node"})) > 4',  # its only label is fixed
        "sum without (cpu) (node_cpu_seconds_total) > 4",  # not a sampling aggregation
        "abs(topk(3, node_load1)) > 4",  # a function is the outermost operation
    ],
)
def test_topk_whose_picks_cannot_change_labels_is_not_fragile(expr):
    assert fragile(expr) == []


def test_limit_ratio_with_grouping_is_fragile_but_limitk_is_not_in_pints_list():
    [(_, _, message)] = fragile("limit_ratio by (job) (0.5, up) == 0")
    assert "limit_ratio by (job) (0.5, up) picks" in message
    # pint models limitk/limit_ratio without grouping as dropping every label, and lists
    # "limit" (no PromQL operator) rather than limitk.
    assert fragile("limit_ratio(0.5, up) == 0") == []
    assert fragile("limitk by (job) (2, up) == 0") == []


def test_recording_rules_are_not_checked_for_fragility():
    assert findings("RK-PROM-015", {"record": "top:load", "expr": "topk(3, node_load1)"}) == []


# ------------------------------------------------------------ arithmetic between aggregations

RATIO = 'sum(rate(errors_total{job="api"}[5m])) / sum(rate(requests_total{job="lb"}[5m])) > 0.05'


def test_a_compared_ratio_of_aggregations_without_for_is_fragile():
    [(rule_id, alert, message)] = fragile(RATIO)
    assert (rule_id, alert) == ("RK-PROM-015", "g/Page")
    assert message.startswith(
        'alert g/Page: sum(rate(errors_total{job="api"}[5m])) / '
        'sum(rate(requests_total{job="lb"}[5m])) is compared without `for`'
    )


def test_a_positive_for_guards_the_ratio_but_a_zero_or_bad_one_does_not():
    assert fragile(RATIO, **{"for": "2m"}) == []
    assert len(fragile(RATIO, **{"for": "0s"})) == 1
    assert len(fragile(RATIO, **{"for": "soon"})) == 1  # unreadable: as if absent


def test_each_aggregation_joined_to_the_first_is_one_finding():
    found = fragile("sum(a_total) - sum(b_total) + sum(c_total) > 0")
    assert sorted(m.split(" is compared")[0].removeprefix("alert g/Page: ") for *_, m in found) == [
        "sum(a_total) + sum(c_total)",
        "sum(a_total) - sum(b_total)",
    ]


@pytest.mark.parametrize(
    "expr",
    [
        "sum(a_total) / sum(b_total)",  # no condition: RK-PROM-011's concern, not this one
        "(sum(a_total) and sum(b_total)) > 1",  # a set operator, not arithmetic
        "sum(a_total) / b_total > 1",  # the other side is not an aggregation
        "a_total / sum(b_total) > 1",  # the series come from the selector side
        "sum(sum(a_total) / sum(b_total)) > 1",  # the division is inside an aggregation
        # group_left only copies the node label in from an unfiltered side
        "sum by (instance) (rate(x_total[5m])) * on (instance) group_left (node)"
        " max by (instance, node) (node_uname_info) > 1",
    ],
)
def test_arithmetic_the_restart_cannot_skew_is_not_fragile(expr):
    assert fragile(expr) == []


def test_a_label_join_is_fragile_when_the_joined_side_is_filtered_itself():
    expr = (
        "sum by (instance) (rate(x_total[5m])) * on (instance) group_left (node)"
        " (max by (instance, node) (node_uname_info) > 0) > 1"
    )
    [(_, _, message)] = fragile(expr)
    assert "sum by (instance) (rate(x_total[5m])) * max by (instance, node)" in message


def test_label_promises_follow_aggregations_and_selectors():
    [source] = sources(parse_promql('sum by (job, le) (rate(x_bucket{job="api"}[5m]))'))
    assert (source.kind, source.operation(), source.fixed_labels) == ("aggregation", "sum", True)
    assert source.labels == {"job": GUARANTEED, "le": POSSIBLE, "__name__": IMPOSSIBLE}
    [left] = sources(parse_promql("sum(a) / on () group_left (zone) sum by (zone) (b) > 1"))
    assert (left.condition, [(j.op, j.added_labels) for j in left.joins]) == (
        True,
        [("/", ("zone",))],
    )


# ------------------------------------------------------------------------- chained rate calls

RECORDED_SUM = {"record": "job:orders:sum", "expr": "sum by (job) (orders_total)"}


def chained(*rules: dict[str, Any], types: dict[str, str] | None = None) -> list:
    config = AuditConfig(metric_types=tuple((types or {}).items()))
    return [(f.alert, f.message) for f in findings("RK-PROM-006", *rules, config=config)]


def test_rate_over_a_recorded_sum_of_a_counter_is_a_chained_rate():
    alert = {"alert": "Stalled", "expr": "rate(job:orders:sum[10m]) < 0.1"}
    assert chained(RECORDED_SUM, alert, types={"orders_total": "counter"}) == [
        (
            "g/Stalled",
            "alert g/Stalled: rate() over job:orders:sum, which records sum() of orders_total: "
            "sum() hides counter resets, so take the rate of orders_total first and sum() after",
        )
    ]
    # A metric of unknown type is reported as well (pint: a warning); a known gauge is not.
    assert len(chained(RECORDED_SUM, alert)) == 1
    assert chained(RECORDED_SUM, alert, types={"orders_total": "gauge"}) == []


def test_irate_in_a_recording_rule_over_a_recorded_sum_is_reported_too():
    rule = {"record": "job:orders:irate", "expr": "irate(job:orders:sum[2m])"}
    [(alert, message)] = chained(RECORDED_SUM, rule)
    assert alert == "g/job:orders:irate"
    assert message.startswith("rule g/job:orders:irate: irate() over job:orders:sum, which")


def test_rate_over_a_recorded_sum_of_rates_says_it_is_a_rate_already():
    recorded = {"record": "global:latency_sum", "expr": "sum(rate(latency_sum[2m]))"}
    alert = {"alert": "Slow", "expr": "rate(global:latency_sum[15m]) > 3"}
    [(_, message)] = chained(recorded, alert)
    assert message.endswith(
        "which records sum() of rate(latency_sum), which is a per-second rate already, "
        "not a counter"
    )


@pytest.mark.parametrize(
    ("recorded", "expr"),
    [
        (
            {"record": "orders:ratio", "expr": "orders_total / orders_total"},
            "rate(orders:ratio[5m])",
        ),
        ({"record": "orders:rate5m", "expr": "rate(orders_total[5m])"}, "sum(orders:rate5m) > 1"),
        (RECORDED_SUM, "deriv(job:orders:sum[10m]) < 0"),  # deriv reads gauges by design
        (RECORDED_SUM, "rate(job:orders:sum[10m:1m]) < 0.1"),  # a subquery of the plain series
        (RECORDED_SUM, "rate(other:sum[10m]) < 0.1"),  # no such recording rule
    ],
)
def test_rates_that_read_no_recorded_aggregation_are_not_chained(recorded, expr):
    assert chained(recorded, {"alert": "A", "expr": expr}) == []


def test_a_recording_rule_reading_its_own_name_is_no_chain():
    loop = {"record": "orders_total", "expr": "sum(rate(orders_total[5m]))"}
    assert chained(loop) == []


def test_the_same_chain_written_as_a_subquery_is_reported():
    [(alert, message)] = chained({"alert": "A", "expr": "rate(sum(orders_total)[10m:1m]) > 1"})
    assert (alert, message.split(":")[0]) == ("g/A", "alert g/A")
    assert "rate() over a subquery of sum() of orders_total" in message
    assert chained({"alert": "A", "expr": "max_over_time(sum(orders_total)[10m:1m]) > 1"}) == []


def test_the_recording_rule_may_live_in_another_prometheusrule():
    objects = read_inputs([str(DATA / "prom-chained-rate.yaml")]).objects
    report = audit(objects, rules=["RK-PROM-006"])
    assert [(f.name, f.alert) for f in report.findings] == [("alerts", "shop/OrdersStalled")]
    assert "job:checkout_orders:sum, which records sum() of checkout_orders_total" in (
        report.findings[0].message
    )


def test_pint_cases_with_entries_run_and_chains_without_them_are_not_applicable(tmp_path):
    case = {
        "check": "pint promql/rate",
        "description": "rate over a recorded sum",
        "rule": "- alert: my alert\n  expr: rate(my:sum[5m])\n",
        "prometheus_mock": {"scrape_interval": "1m", "metadata_types": {"foo": "counter"}},
        "expect_problem": True,
        "problems": [{"reporter": "promql/rate", "summary": "chained rate call"}],
    }
    with_entries = {**case, "entries": "- record: my:sum\n  expr: sum(foo)\n"}
    path = tmp_path / "cases.json"
    path.write_text(json.dumps([with_entries, case]))
    first, second = runner._pint_unit_cases(path)
    assert (first.status, first.expected, first.actual) == (
        "passed",
        ["RK-PROM-006"],
        ["RK-PROM-006"],
    )
    assert second.status == "skipped" and "entries" in second.detail
