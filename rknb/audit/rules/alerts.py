"""Prometheus alerting-rule checks over PrometheusRule objects (``spec.groups``)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from rknb.audit.exprs import (
    Aggregation,
    Binary,
    Call,
    Node,
    Number,
    Unary,
    VectorSelector,
    parse,
    walk,
)
from rknb.audit.model import AuditConfig, Violation
from rknb.audit.registry import rule
from rknb.errors import ParameterError

__all__ = [
    "alert_rules",
    "metric_types_from_openmetrics",
    "quantile_drops_le",
    "quantile_without_rate",
]

_RATE_FUNCTIONS = frozenset({"rate", "increase", "irate"})


def alert_rules(obj: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Yield (``group/alert`` name, rule) for the alerting rules of a PrometheusRule."""
    for group in (obj.get("spec") or {}).get("groups") or []:
        for item in group.get("rules") or []:
            if "alert" in item:
                yield f"{group.get('name', '')}/{item['alert']}", item


def _histogram_arguments(tree: Node) -> Iterator[Node]:
    for node in walk(tree):
        if isinstance(node, Call) and node.name == "histogram_quantile" and len(node.args) == 2:
            yield node.args[1]


def _bare_selectors(node: Node) -> Iterator[VectorSelector]:
    # Selectors not wrapped in rate()/increase()/irate(); recording rules (name:with:colons)
    # are taken as already rated.
    if isinstance(node, Call) and node.name in _RATE_FUNCTIONS:
        return
    if isinstance(node, VectorSelector):
        if ":" not in node.metric:
            yield node
        return
    for child in node.children():
        yield from _bare_selectors(child)


def quantile_without_rate(expr: str) -> list[str]:
    """Return the metric names histogram_quantile() reads without rate()/increase() in between."""
    names: list[str] = []
    for argument in _histogram_arguments(parse(expr)):
        names.extend(s.metric or "{...}" for s in _bare_selectors(argument))
    return names


def quantile_drops_le(expr: str) -> list[str]:
    """Return aggregations inside histogram_quantile() that drop the ``le`` label, as text."""
    found = []
    for argument in _histogram_arguments(parse(expr)):
        node = argument
        while isinstance(node, Unary) and node.op == "()":
            node = node.expr
        for inner in walk(node):
            if not isinstance(inner, Aggregation):
                continue
            if inner.grouping == "by" and "le" not in inner.labels:
                found.append(f"{inner.op} by ({', '.join(inner.labels)})")
            elif inner.grouping == "without" and "le" in inner.labels:
                found.append(f"{inner.op} without ({', '.join(inner.labels)})")
            elif inner.grouping is None:
                found.append(inner.op)
            break
    return found


def _parsed(alert: str, item: Mapping[str, Any]) -> str | Violation:
    expr = str(item.get("expr", ""))
    try:
        parse(expr)
    except ParameterError:
        return Violation(f"alert {alert} expr {expr!r} cannot be parsed", alert=alert)
    return expr


@rule(
    "RK-PROM-001",
    title="histogram_quantile without rate",
    category="reliability",
    severity="high",
    kinds=("PrometheusRule",),
    rationale="Histogram buckets are counters since the process started; a quantile over them "
    "without rate() or increase() describes the whole uptime and barely moves, so the alert "
    "does not fire when latency regresses.",
    remediation="Wrap the bucket series: histogram_quantile(0.95, sum by (le) "
    "(rate(<metric>_bucket[5m]))).",
)
def histogram_quantile_rate(obj: Mapping[str, Any], config: AuditConfig) -> Iterator[Violation]:
    """Yield alerts whose histogram_quantile() reads bucket counters directly."""
    for alert, item in alert_rules(obj):
        expr = _parsed(alert, item)
        if isinstance(expr, Violation):
            yield expr
            continue
        for metric in quantile_without_rate(expr):
            yield Violation(
                f"alert {alert}: histogram_quantile() reads {metric} without rate() or increase()",
                alert=alert,
            )


@rule(
    "RK-PROM-002",
    title="histogram_quantile aggregation drops le",
    category="reliability",
    severity="high",
    kinds=("PrometheusRule",),
    rationale="histogram_quantile() needs the `le` label of every bucket; an aggregation that "
    "drops it leaves one series per group and the query returns nothing.",
    remediation="Keep le in the aggregation: sum by (le, ...) (rate(...)).",
)
def histogram_quantile_le(obj: Mapping[str, Any], config: AuditConfig) -> Iterator[Violation]:
    """Yield alerts whose histogram_quantile() argument aggregates the le label away."""
    for alert, item in alert_rules(obj):
        expr = _parsed(alert, item)
        if isinstance(expr, Violation):
            continue
        for aggregation in quantile_drops_le(expr):
            yield Violation(
                f"alert {alert}: {aggregation} inside histogram_quantile() drops le", alert=alert
            )


@rule(
    "RK-PROM-003",
    title="Alert without for",
    category="reliability",
    severity="low",
    kinds=("PrometheusRule",),
    rationale="An alert without `for` fires on a single evaluation: one scrape glitch pages "
    "someone. (pint flags this only when its rule/for check is configured.)",
    remediation="Add `for:` of a few evaluation intervals (for example 5m).",
    equivalent=("pint:rule/for",),
)
def alert_for(obj: Mapping[str, Any], config: AuditConfig) -> Iterator[Violation]:
    """Yield alerts with no ``for`` (or ``for: 0s``)."""
    for alert, item in alert_rules(obj):
        value = item.get("for")
        if value in (None, "", 0, "0", "0s", "0m"):
            yield Violation(f"alert {alert} has no `for`", alert=alert)


def metric_types_from_openmetrics(text: str) -> dict[str, str]:
    """Return metric name -> type from the ``# TYPE name type`` lines of an exposition.

    Counters are also entered under ``name_total`` and histograms under ``name_bucket``,
    ``name_count`` and ``name_sum``, the series names queries use.
    """
    types: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[0] == "#" and parts[1] == "TYPE":
            name, kind = parts[2], parts[3].lower()
            types[name] = kind
            if kind == "counter" and not name.endswith("_total"):
                types[f"{name}_total"] = kind
            if kind in ("histogram", "gaugehistogram"):
                for suffix in ("_bucket", "_count", "_sum"):
                    types[name + suffix] = "counter" if kind == "histogram" else "gauge"
            if kind == "summary":
                for suffix in ("_count", "_sum"):
                    types[name + suffix] = "counter"
    return types


def _labels_of(item: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = item.get(key)
    return value if isinstance(value, Mapping) else {}


@rule(
    "RK-PROM-004",
    title="Alert without a severity label",
    category="reliability",
    severity="low",
    kinds=("PrometheusRule",),
    rationale="Alertmanager routes by labels; an alert without `severity` cannot be routed to "
    "the pager or the ticket queue deliberately. (pint's rule/label check, when configured.)",
    remediation="Add labels: {severity: critical|warning|info}.",
    equivalent=("pint:rule/label",),
)
def alert_severity(obj: Mapping[str, Any], config: AuditConfig) -> Iterator[Violation]:
    """Yield alerts with no non-empty ``severity`` label."""
    for alert, item in alert_rules(obj):
        if not _labels_of(item, "labels").get("severity"):
            yield Violation(f"alert {alert} has no severity label", alert=alert)


@rule(
    "RK-PROM-005",
    title="Alert without a summary annotation",
    category="reliability",
    severity="low",
    kinds=("PrometheusRule",),
    rationale="The summary is what the person paged reads first; without it they start from "
    "the raw expression. (pint's alerts/annotation check, when configured.)",
    remediation="Add annotations: {summary: ..., description: ...} using {{ $labels }}.",
    equivalent=("pint:alerts/annotation",),
)
def alert_summary(obj: Mapping[str, Any], config: AuditConfig) -> Iterator[Violation]:
    """Yield alerts with no non-empty ``summary`` annotation."""
    for alert, item in alert_rules(obj):
        if not _labels_of(item, "annotations").get("summary"):
            yield Violation(f"alert {alert} has no summary annotation", alert=alert)


def _rate_calls(tree: Node) -> Iterator[tuple[str, VectorSelector]]:
    for node in walk(tree):
        if isinstance(node, Call) and node.name in (*_RATE_FUNCTIONS, "deriv"):
            for arg in node.args:
                if isinstance(arg, VectorSelector) and arg.range:
                    yield node.name, arg


@rule(
    "RK-PROM-006",
    title="rate() or increase() over a gauge",
    category="reliability",
    severity="high",
    kinds=("PrometheusRule",),
    rationale="rate() and increase() treat every drop as a counter reset, so over a gauge they "
    "return nonsense. Types come from the configured metric_types (an OpenMetrics export's TYPE "
    "lines); a metric of unknown type passes, as in pint.",
    remediation="Use deriv() or delta() for a gauge, or rate() over the counter itself.",
    equivalent=("pint:promql/rate",),
)
def rate_over_gauge(obj: Mapping[str, Any], config: AuditConfig) -> Iterator[Violation]:
    """Yield rate()/increase()/irate() calls whose selector's metric is a gauge."""
    types = dict(config.metric_types)
    for alert, item in alert_rules(obj):
        expr = _parsed(alert, item)
        if isinstance(expr, Violation):
            continue
        for function, selector in _rate_calls(parse(expr)):
            if function != "deriv" and types.get(selector.metric) == "gauge":
                yield Violation(
                    f"alert {alert}: {function}() over {selector.metric}, a gauge", alert=alert
                )


def _range_checks(obj: Mapping[str, Any], config: AuditConfig, factor: int) -> Iterator[Violation]:
    from rknb.times import parse_duration

    limit = factor * config.scrape_interval_s
    for alert, item in alert_rules(obj):
        expr = _parsed(alert, item)
        if isinstance(expr, Violation):
            continue
        for function, selector in _rate_calls(parse(expr)):
            try:
                seconds = parse_duration(str(selector.range))
            except ParameterError:
                continue
            if seconds < limit:
                yield Violation(
                    f"alert {alert}: {function}({selector.metric}[{selector.range}]) covers fewer "
                    f"than {factor} scrape intervals of {config.scrape_interval_s:g}s",
                    alert=alert,
                )


@rule(
    "RK-PROM-007",
    title="Rate range shorter than two scrape intervals",
    category="reliability",
    severity="high",
    kinds=("PrometheusRule",),
    rationale="rate() needs two samples inside its range; with a range under two scrape "
    "intervals it often has one and returns nothing, so the alert silently never fires "
    "(pint's promql/rate rule). The scrape interval is the scrape_interval_s setting.",
    remediation="Use a range of at least 4x the scrape interval (for example [5m] at 1m).",
    equivalent=("pint:promql/rate",),
)
def rate_range(obj: Mapping[str, Any], config: AuditConfig) -> Iterator[Violation]:
    """Yield rate-like calls whose range is under 2 scrape intervals."""
    yield from _range_checks(obj, config, 2)


@rule(
    "RK-PROM-008",
    title="Rate range shorter than four scrape intervals",
    category="reliability",
    severity="info",
    kinds=("PrometheusRule",),
    optional=True,
    rationale="With fewer than four samples per range one missed scrape changes the result a "
    "lot. Advice (off by default).",
    remediation="Use a range of at least 4x the scrape interval.",
)
def rate_range_advice(obj: Mapping[str, Any], config: AuditConfig) -> Iterator[Violation]:
    """Yield rate-like calls whose range is under 4 scrape intervals."""
    yield from _range_checks(obj, config, 4)


_ERROR_WORDS = ("error", "fail", "5xx", "5..")
_COMPARISONS = frozenset({">", ">=", "<", "<=", "==", "!="})


def _looks_like_errors(selector: VectorSelector) -> bool:
    text = selector.metric.lower() + " " + " ".join(v.lower() for _, _, v in selector.matchers)
    return any(word in text for word in _ERROR_WORDS) or any(
        v.startswith("5") for k, _, v in selector.matchers if k in ("code", "status", "status_code")
    )


def _strip(node: Node) -> Node:
    while isinstance(node, Unary) and node.op == "()":
        node = node.expr
    return node


@rule(
    "RK-PROM-009",
    title="Error rate compared with an absolute number",
    category="reliability",
    severity="medium",
    kinds=("PrometheusRule",),
    rationale="An alert on errors per second fires on a traffic spike that is healthy and "
    "misses a total outage at night; the error ratio (errors / requests) is what an SLO "
    "bounds.",
    remediation="Divide by the request rate: sum(rate(errors[5m])) / sum(rate(requests[5m])) "
    "> 0.01.",
)
def error_rate_absolute(obj: Mapping[str, Any], config: AuditConfig) -> Iterator[Violation]:
    """Yield alerts comparing an undivided rate of an error series with a number."""
    for alert, item in alert_rules(obj):
        expr = _parsed(alert, item)
        if isinstance(expr, Violation):
            continue
        for node in walk(parse(expr)):
            if not (isinstance(node, Binary) and node.op in _COMPARISONS):
                continue
            sides = (_strip(node.lhs), _strip(node.rhs))
            for side, other in (sides, sides[::-1]):
                if not isinstance(other, Number):
                    continue
                divided = any(isinstance(n, Binary) and n.op == "/" for n in walk(side))
                errors = [s for _, s in _rate_calls(side) if _looks_like_errors(s)]
                if errors and not divided:
                    yield Violation(
                        f"alert {alert}: the rate of {errors[0].metric} is compared with "
                        f"{other.text}, not divided by the request rate",
                        alert=alert,
                    )
