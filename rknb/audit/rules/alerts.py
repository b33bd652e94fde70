"""Prometheus alerting-rule checks over PrometheusRule objects (``spec.groups``)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from rknb.audit.exprs import Aggregation, Call, Node, Unary, VectorSelector, parse, walk
from rknb.audit.model import AuditConfig, Violation
from rknb.audit.registry import rule
from rknb.errors import ParameterError

__all__ = ["alert_rules", "quantile_drops_le", "quantile_without_rate"]

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
