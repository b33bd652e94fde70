"""Prometheus alerting-rule checks over PrometheusRule objects (``spec.groups``)."""

from __future__ import annotations

import functools
import re
from collections import ChainMap
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from rknb.audit.exprs import (
    Aggregation,
    Binary,
    Call,
    Node,
    Number,
    Source,
    String,
    Unary,
    VectorSelector,
    parse,
    render,
    sources,
    walk,
)
from rknb.audit.model import AuditConfig, ObjectIndex, Violation
from rknb.audit.registry import rule
from rknb.errors import ParameterError

__all__ = [
    "alert_rules",
    "always_fires",
    "chained_rates",
    "counter_reads",
    "fragile_queries",
    "metric_types_from_openmetrics",
    "prom_rules",
    "quantile_drops_le",
    "quantile_without_rate",
]

_RATE_FUNCTIONS = frozenset({"rate", "increase", "irate"})


def alert_rules(obj: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Yield (``group/alert`` name, rule) for the alerting rules of a PrometheusRule."""
    for group in (obj.get("spec") or {}).get("groups") or []:
        for item in group.get("rules") or []:
            if isinstance(item, Mapping) and "alert" in item:
                yield f"{group.get('name', '')}/{item['alert']}", item


def prom_rules(obj: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Yield (``alert g/name`` or ``rule g/name``, rule) for alerting and recording rules.

    Query checks (ranges, metric types) apply to recording rules as much as to
    alerts: a recorded series built on a broken rate() breaks every alert on it.
    """
    for group in (obj.get("spec") or {}).get("groups") or []:
        for item in group.get("rules") or []:
            if not isinstance(item, Mapping):
                continue
            if "alert" in item:
                yield f"alert {group.get('name', '')}/{item['alert']}", item
            elif "record" in item:
                yield f"rule {group.get('name', '')}/{item['record']}", item


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


def quantile_without_rate(expr: str | Node) -> list[str]:
    """Return the metric names histogram_quantile() reads without rate()/increase() in between."""
    names: list[str] = []
    for argument in _histogram_arguments(parse(expr) if isinstance(expr, str) else expr):
        names.extend(s.metric or "{...}" for s in _bare_selectors(argument))
    return names


def quantile_drops_le(expr: str | Node) -> list[str]:
    """Return aggregations inside histogram_quantile() that drop the ``le`` label, as text."""
    found = []
    for argument in _histogram_arguments(parse(expr) if isinstance(expr, str) else expr):
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


@functools.lru_cache(maxsize=4096)
def _tree(expr: str) -> Node | None:
    # An expression's tree, parsed once however many rules read it (the nodes are frozen);
    # None when it does not parse.
    try:
        return parse(expr)
    except ParameterError:
        return None


def _parsed(
    named: Iterable[tuple[str, Mapping[str, Any]]],
) -> Iterator[tuple[str, Mapping[str, Any], Node]]:
    # (name, rule, expression tree) of the rules whose expression parses; RK-PROM-014 reports
    # the others.
    for name, item in named:
        tree = _tree(str(item.get("expr", "")))
        if tree is not None:
            yield name, item, tree


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
    for alert, _, tree in _parsed(alert_rules(obj)):
        for metric in quantile_without_rate(tree):
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
    for alert, _, tree in _parsed(alert_rules(obj)):
        for aggregation in quantile_drops_le(tree):
            yield Violation(
                f"alert {alert}: {aggregation} inside histogram_quantile() drops le", alert=alert
            )


def _seconds(value: Any) -> float | None:
    # A Prometheus duration in seconds; None when it is not one (0 stays 0).
    from rknb.times import parse_duration

    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return parse_duration(str(value).strip())
    except (ParameterError, ValueError):
        return None


@rule(
    "RK-PROM-003",
    title="Alert without for",
    category="reliability",
    severity="low",
    kinds=("PrometheusRule",),
    rationale="An alert without `for` fires on a single evaluation: one scrape glitch pages "
    "someone. With alert_for_min_s / alert_for_max_s set, a `for` outside the bounds fails "
    "too (pint's rule/for check, which flags nothing until configured).",
    remediation="Add `for:` of a few evaluation intervals (for example 5m).",
    equivalent=("pint:rule/for",),
)
def alert_for(obj: Mapping[str, Any], config: AuditConfig) -> Iterator[Violation]:
    """Yield alerts with no ``for`` (or a zero one), or one outside the configured bounds."""
    for alert, item in alert_rules(obj):
        value = item.get("for")
        seconds = _seconds(value) if value not in (None, "") else 0.0
        if seconds is None:
            continue  # RK-PROM-012 reports durations that do not parse
        if seconds == 0:
            yield Violation(f"alert {alert} has no `for`", alert=alert)
        elif seconds < config.alert_for_min_s:
            yield Violation(
                f"alert {alert} for {value} is shorter than {config.alert_for_min_s:g}s",
                alert=alert,
            )
        elif config.alert_for_max_s is not None and seconds > config.alert_for_max_s:
            yield Violation(
                f"alert {alert} for {value} is longer than {config.alert_for_max_s:g}s",
                alert=alert,
            )


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


def _required(alert: str, values: Mapping[str, Any], wanted: Any, what: str) -> Iterator[Violation]:
    # Each (name, pattern) must be present and non-empty; a pattern must match it whole.
    for name, pattern in wanted:
        value = values.get(name)
        if value in (None, ""):
            yield Violation(f"alert {alert} has no {name} {what}", alert=alert)
        elif pattern and not re.fullmatch(str(pattern), str(value)):
            yield Violation(
                f"alert {alert} {what} {name} {value!r} does not match {pattern!r}", alert=alert
            )


@rule(
    "RK-PROM-004",
    title="Alert without a severity label",
    category="reliability",
    severity="low",
    kinds=("PrometheusRule",),
    rationale="Alertmanager routes by labels; an alert without `severity` cannot be routed to "
    "the pager or the ticket queue deliberately. The labels required (and their allowed "
    "values) are the alert_labels setting, severity by default; pint's rule/label check "
    "flags nothing until configured.",
    remediation="Add labels: {severity: critical|warning|info}.",
    equivalent=("pint:rule/label",),
)
def alert_severity(obj: Mapping[str, Any], config: AuditConfig) -> Iterator[Violation]:
    """Yield alerts missing a required label, or whose value does not match its pattern."""
    for alert, item in alert_rules(obj):
        yield from _required(alert, _labels_of(item, "labels"), config.alert_labels, "label")


@rule(
    "RK-PROM-005",
    title="Alert without a summary annotation",
    category="reliability",
    severity="low",
    kinds=("PrometheusRule",),
    rationale="The summary is what the person paged reads first; without it they start from "
    "the raw expression. The annotations required (and their allowed values) are the "
    "alert_annotations setting, summary by default (pint's alerts/annotation check, when "
    "configured).",
    remediation="Add annotations: {summary: ..., description: ...} using {{ $labels }}.",
    equivalent=("pint:alerts/annotation",),
)
def alert_summary(obj: Mapping[str, Any], config: AuditConfig) -> Iterator[Violation]:
    """Yield alerts missing a required annotation, or whose value does not match its pattern."""
    for alert, item in alert_rules(obj):
        annotations = _labels_of(item, "annotations")
        yield from _required(alert, annotations, config.alert_annotations, "annotation")


def _rate_calls(tree: Node) -> Iterator[tuple[str, VectorSelector]]:
    for node in walk(tree):
        if isinstance(node, Call) and node.name in (*_RATE_FUNCTIONS, "deriv"):
            for arg in node.args:
                if isinstance(arg, VectorSelector) and arg.range:
                    yield node.name, arg


def _recorded(objects: Iterable[Mapping[str, Any]]) -> dict[str, list[tuple[int, Node]]]:
    # Recording rule name -> (id of the rule, parsed expression) recorded under it
    # (unparseable ones left out: RK-PROM-014 reports them).
    found: dict[str, list[tuple[int, Node]]] = {}
    for obj in objects:
        for group in (obj.get("spec") or {}).get("groups") or []:
            for item in group.get("rules") or []:
                if isinstance(item, Mapping) and "record" in item:
                    tree = _tree(str(item.get("expr", "")))
                    if tree is not None:
                        found.setdefault(str(item["record"]), []).append((id(item), tree))
    return found


def _aggregated_counters(body: Node, types: Mapping[str, str]) -> list[str]:
    # Why rating ``body`` is wrong, for each series source of it that is an aggregation over a
    # metric known to be a counter or of unknown type (pint reports those; a known gauge,
    # histogram or summary is another problem).
    found = []
    for source in sources(body):
        if source.kind != "aggregation":
            continue
        selector = source.outermost(VectorSelector, lambda s: not s.range)
        if not isinstance(selector, VectorSelector):
            continue
        if types.get(selector.metric, "counter") != "counter":
            continue
        op, metric, rated = source.operation(), selector.metric or "{...}", _first_rate(source)
        if rated is not None:
            found.append(
                f"{op}() of {rated.name}({metric}), which is a per-second rate already, not a "
                "counter"
            )
        else:
            found.append(
                f"{op}() of {metric}: {op}() hides counter resets, so take the rate of "
                f"{metric} first and {op}() after"
            )
    return found


def _first_rate(source: Source) -> Call | None:
    for node in source.operations:
        if isinstance(node, Call) and node.name in (*_RATE_FUNCTIONS, "deriv"):
            return node
    return None


def chained_rates(
    tree: Node,
    recorded: Mapping[str, Sequence[Node]],
    types: Mapping[str, str],
) -> list[str]:
    """Return what is wrong where rate()/irate()/increase() reads an aggregation of counters.

    pint's chained-rate check: a rate over a recording rule's series whose recorded
    expression is an aggregation (``record: x = sum(counter)``, then ``rate(x[5m])``),
    and, beyond pint, the same chain written inline as a subquery
    (``rate(sum(counter)[10m:])``). ``recorded`` maps recording rule names to their
    parsed expressions. The aggregated metric must be a counter or of unknown type.
    """
    found: list[str] = []
    seen: set[str] = set()
    for top in sources(tree):
        for source in top.walk():
            call = _first_rate(source)
            matrix = source.outermost(VectorSelector, lambda s: bool(s.range))
            selector = source.outermost(VectorSelector, lambda s: not s.range)
            if call is None or call.name == "deriv" or not isinstance(matrix, VectorSelector):
                continue
            if not isinstance(selector, VectorSelector) or selector.metric in seen:
                continue
            seen.add(selector.metric)
            for body in recorded.get(selector.metric, ()):
                for why in _aggregated_counters(body, types):
                    found.append(f"{call.name}() over {selector.metric}, which records {why}")
    for node in walk(tree):
        if not (isinstance(node, Call) and node.name in _RATE_FUNCTIONS and node.args):
            continue
        inner = node.args[0]
        if isinstance(inner, Unary) and inner.op == "subquery":
            for why in _aggregated_counters(inner.expr, types):
                found.append(f"{node.name}() over a subquery of {why}")
    return found


@rule(
    "RK-PROM-006",
    title="rate() or increase() over a gauge or an aggregation",
    category="reliability",
    severity="high",
    kinds=("PrometheusRule",),
    scope="set",
    rationale="rate() and increase() treat every drop as a counter reset, so over a gauge they "
    "return nonsense. Types come from the configured metric_types (an OpenMetrics export's TYPE "
    "lines); a metric of unknown type passes, as in pint. Over a sum() or other aggregation of "
    "counters (a recording rule of the audited files that records one, or a subquery) they "
    "are wrong too: one target's restart lowers the sum, which rate() reads as a reset of the "
    "whole total (pint's chained rate call).",
    remediation="Use deriv() or delta() for a gauge, or rate() over the counter itself; "
    "aggregate after the rate: sum(rate(x_total[5m])), never rate(sum(x_total)).",
    equivalent=("pint:promql/rate",),
)
def rate_over_gauge(index: ObjectIndex, config: AuditConfig) -> Iterator[Violation]:
    """Yield rate-like calls over a gauge, or over an aggregation of counters."""
    types = dict(config.metric_types)
    objects = index.of_kind("PrometheusRule")
    recorded = _recorded(objects)
    bodies: dict[str, Sequence[Node]] = {
        name: [body for _, body in found] for name, found in recorded.items()
    }
    for obj in objects:
        for shown, item, tree in _parsed(prom_rules(obj)):
            alert = shown.partition(" ")[2]
            # A recording rule reading its own series is no chain through another rule.
            others: Mapping[str, Sequence[Node]] = bodies
            if "record" in item:
                own = str(item["record"])
                kept = [body for rule, body in recorded.get(own, ()) if rule != id(item)]
                others = ChainMap({own: kept}, bodies)
            for function, selector in _rate_calls(tree):
                if function != "deriv" and types.get(selector.metric) == "gauge":
                    yield Violation(
                        f"{shown}: {function}() over {selector.metric}, a gauge",
                        alert=alert,
                        obj=obj,
                    )
            for message in chained_rates(tree, others, types):
                yield Violation(f"{shown}: {message}", alert=alert, obj=obj)


def _range_checks(obj: Mapping[str, Any], config: AuditConfig, factor: int) -> Iterator[Violation]:
    from rknb.times import parse_duration

    limit = factor * config.scrape_interval_s
    for shown, _, tree in _parsed(prom_rules(obj)):
        alert = shown.partition(" ")[2]
        for function, selector in _rate_calls(tree):
            try:
                seconds = parse_duration(str(selector.range))
            except ParameterError:
                continue
            if seconds < limit:
                yield Violation(
                    f"{shown}: {function}({selector.metric}[{selector.range}]) covers fewer "
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
    for alert, _, tree in _parsed(alert_rules(obj)):
        for node in walk(tree):
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


def _absent_calls(tree: Node) -> list[Call]:
    return [n for n in walk(tree) if isinstance(n, Call) and n.name == "absent"]


def _returns_always(node: Node) -> bool:
    # True when the expression yields a series whatever the TSDB holds (vector(), numbers).
    node = _strip(node)
    if isinstance(node, Number | String):
        return True
    if isinstance(node, Call) and node.name in ("vector", "time", "pi"):
        return True
    if isinstance(node, Binary) and node.op not in _COMPARISONS | {"and", "unless"}:
        return _returns_always(node.lhs) and _returns_always(node.rhs)
    return False


@rule(
    "RK-PROM-010",
    title="absent() alert without enough for",
    category="reliability",
    severity="medium",
    kinds=("PrometheusRule",),
    rationale="absent() fires as soon as one evaluation finds no series, which happens at "
    "every target restart or missed scrape; without a `for` of at least two scrape intervals "
    "the alert pages for blips. absent() over something that always exists (vector(1)) "
    "never fires at all. (pint's alerts/absent.)",
    remediation="Give absent() alerts `for:` of at least two scrape intervals (5m is usual), "
    "and pass absent() a selector.",
    equivalent=("pint:alerts/absent",),
)
def absent_for(obj: Mapping[str, Any], config: AuditConfig) -> Iterator[Violation]:
    """Yield absent() alerts whose ``for`` is under two scrape intervals, or that never fire."""
    for alert, item, tree in _parsed(alert_rules(obj)):
        calls = _absent_calls(tree)
        if not calls:
            continue
        if any(c.args and _returns_always(c.args[0]) for c in calls):
            yield Violation(
                f"alert {alert}: absent() of an always-present value never fires", alert=alert
            )
            continue
        value = item.get("for")
        seconds = _seconds(value) if value not in (None, "") else 0.0
        limit = 2 * config.scrape_interval_s
        if seconds is not None and seconds < limit:
            shown = f"for {value}" if seconds else "no `for`"
            yield Violation(
                f"alert {alert}: absent() alert with {shown}, under two scrape intervals "
                f"({limit:g}s)",
                alert=alert,
            )


def always_fires(node: Node) -> bool:
    """Return whether an alert expression has no condition that can ever filter it out.

    A comparison without ``bool`` filters; ``unless`` and absent() are conditions
    themselves; ``and`` filters when either side does, ``or`` only when both
    do (``x > 1 or vector(0)`` always returns a series); arithmetic,
    aggregations and other functions keep whatever filtering their operands
    have.
    """
    return not _has_condition(node)


def _has_condition(node: Node) -> bool:
    node = _strip(node)
    if isinstance(node, Binary):
        if node.op in _COMPARISONS and not node.bool_modifier:
            return True
        if node.op == "unless":
            return True
        if node.op == "or":
            return _has_condition(node.lhs) and _has_condition(node.rhs)
        return _has_condition(node.lhs) or _has_condition(node.rhs)
    if isinstance(node, Call) and node.name in ("absent", "absent_over_time"):
        return True
    if isinstance(node, Unary) and node.op == "subquery":
        return False
    return any(_has_condition(child) for child in node.children())


@rule(
    "RK-PROM-011",
    title="Alert always fires",
    category="reliability",
    severity="high",
    kinds=("PrometheusRule",),
    rationale="An alert fires for every series its expression returns; without a comparison "
    "(or with `> bool`, or `or vector(0)`) it returns series all the time, so it pages "
    "constantly and is soon ignored. (pint's alerts/comparison.)",
    remediation="Compare the expression with its threshold, for example `... > 0.05`, "
    "without `bool`.",
    equivalent=("pint:alerts/comparison",),
)
def alert_condition(obj: Mapping[str, Any], config: AuditConfig) -> Iterator[Violation]:
    """Yield alerts whose expression has no filtering condition."""
    for alert, _, tree in _parsed(alert_rules(obj)):
        if always_fires(tree):
            yield Violation(
                f"alert {alert}: the expression has no condition, so it always fires", alert=alert
            )


@rule(
    "RK-PROM-012",
    title="for or keep_firing_for is not a duration",
    category="reliability",
    severity="high",
    kinds=("PrometheusRule",),
    rationale="Prometheus refuses to load a rule file whose `for` or `keep_firing_for` is not "
    "a non-negative duration such as 5m, so none of the file's alerts run. (pint's "
    "alerts/for; pint also reports a written-out zero, which rknb leaves to RK-PROM-003.)",
    remediation="Write the duration as a number and a unit (30s, 5m, 1h).",
    equivalent=("pint:alerts/for",),
)
def for_duration(obj: Mapping[str, Any], config: AuditConfig) -> Iterator[Violation]:
    """Yield alerts whose for or keep_firing_for does not parse as a non-negative duration."""
    for alert, item in alert_rules(obj):
        for field in ("for", "keep_firing_for"):
            value = item.get(field)
            if value in (None, ""):
                continue
            seconds = _seconds(value)
            if seconds is None or seconds < 0:
                yield Violation(f"alert {alert} {field} {value!r} is not a duration", alert=alert)


#: Functions that may read a counter as it is: they look at presence, count or resets.
_COUNTER_SAFE = frozenset(
    {
        "rate",
        "irate",
        "increase",
        "absent",
        "absent_over_time",
        "present_over_time",
        "changes",
        "resets",
        "count_over_time",
        "timestamp",
        "histogram_quantile",  # RK-PROM-001 reports raw buckets inside it
    }
)


def counter_reads(tree: Node, types: Mapping[str, str]) -> list[str]:
    """Return the counters an expression reads raw (not through rate(), count() and the like)."""
    found: list[str] = []

    def visit(node: Node) -> None:
        if isinstance(node, Call) and node.name in _COUNTER_SAFE:
            return
        if isinstance(node, Aggregation) and node.op in ("count", "group"):
            return
        if isinstance(node, VectorSelector):
            if types.get(node.metric) == "counter":
                found.append(node.metric)
            return
        for child in node.children():
            visit(child)

    visit(tree)
    return found


@rule(
    "RK-PROM-013",
    title="Counter read without rate()",
    category="reliability",
    severity="medium",
    kinds=("PrometheusRule",),
    rationale="A counter's raw value is the total since its process started and drops to zero "
    "at every restart; comparing or summing it says nothing about what is happening now. "
    "Types come from metric_types; unknown metrics pass. (pint's promql/counter.)",
    remediation="Read counters through rate() or increase() over a range.",
    equivalent=("pint:promql/counter",),
)
def raw_counter(obj: Mapping[str, Any], config: AuditConfig) -> Iterator[Violation]:
    """Yield rules that read a counter's raw value."""
    types = dict(config.metric_types)
    if not types:
        return
    for shown, _, tree in _parsed(prom_rules(obj)):
        alert = shown.partition(" ")[2]
        names = counter_reads(tree, types)
        if names:
            yield Violation(
                f"{shown}: reads counter {names[0]} without rate() or increase()", alert=alert
            )


@rule(
    "RK-PROM-014",
    title="PromQL does not parse",
    category="reliability",
    severity="critical",
    kinds=("PrometheusRule",),
    rationale="Prometheus refuses to load a rule file with one unparseable expression, so "
    "every rule in it stops being evaluated, and the alerts in it go quiet without notice. "
    "(pint's promql/syntax.)",
    remediation="Fix the expression; `promtool check rules FILE` shows the parser's message.",
    equivalent=("pint:promql/syntax",),
)
def promql_syntax(obj: Mapping[str, Any], config: AuditConfig) -> Iterator[Violation]:
    """Yield alerting and recording rules whose expr the PromQL parser rejects."""
    for shown, item in prom_rules(obj):
        alert = shown.partition(" ")[2]
        expr = str(item.get("expr", ""))
        if _tree(expr) is not None:
            continue
        try:
            parse(expr)  # again, for the parser's message
        except ParameterError as error:
            reason = str(error).removeprefix("parameter 'expr': ")
            yield Violation(f"{shown}: {reason}", alert=alert)


#: Aggregations that pick some series rather than combine them (pint's list; it names
#: ``limit``, which no PromQL operator is called, so ``limitk`` is not among them).
_SAMPLING = frozenset({"topk", "bottomk", "limit_ratio"})
_ARITHMETIC = frozenset({"+", "-", "*", "/", "%", "^"})


def _aggregation_text(source: Source) -> str:
    node = source.outermost(Aggregation)
    return render(node) if node is not None else source.operation() + "(...)"


def fragile_queries(tree: Node, for_s: float | None) -> list[str]:
    """Return why an alert expression may flap or fire falsely (pint's promql/fragile).

    Two patterns, judged on the expression's series sources: a sampling aggregation
    (``topk``, ``bottomk``, ``limit_ratio``) that is the outermost operation on series
    whose labels can vary, so each evaluation may return different series and the
    alerts resolve and re-fire; and, when the alert has no positive ``for``
    (``for_s``, seconds; None when absent or unreadable), a condition on arithmetic
    (``+ - * / % ^``) between two aggregations joined directly, one-to-one or with
    ``group_left``/``group_right`` where the other side is itself filtered, whose sides
    may cover different numbers of targets just after Prometheus starts.
    """
    found: list[str] = []
    for source in sources(tree):
        if source.kind != "aggregation":
            continue
        op = source.operation()
        varies = not source.fixed_labels or bool(source.possible_labels())
        if op in _SAMPLING and varies:
            found.append(
                f"{_aggregation_text(source)} picks which series the alert returns, which can "
                "change at every evaluation"
            )
        if not source.condition or (for_s is not None and for_s > 0):
            continue
        for join in source.joins:
            other = join.source
            if other.kind != "aggregation" or join.depth > 0 or join.op not in _ARITHMETIC:
                continue
            if join.added_labels and not other.condition:
                continue  # a join that only copies labels in
            found.append(
                f"{_aggregation_text(source)} {join.op} {_aggregation_text(other)} is compared "
                "without `for`, and right after a Prometheus restart its two aggregations may "
                "cover different numbers of targets"
            )
    return found


@rule(
    "RK-PROM-015",
    title="Fragile alert query",
    category="reliability",
    severity="medium",
    kinds=("PrometheusRule",),
    rationale="An alert is one per label set. When topk(), bottomk() or limit_ratio() pick the "
    "series an alert returns, the picked set can change between evaluations, so alerts resolve "
    "and fire again with other labels and the pager flaps. And Prometheus spreads its first "
    "scrapes over a scrape interval after it starts, so a ratio or difference of two "
    "aggregations briefly compares a full side with a partial one; without `for` that "
    "false value can page at once. (pint's promql/fragile.)",
    remediation="Aggregate the picked series (max(topk(...))) or alert on every series and "
    "let the condition select; give alerts on arithmetic between aggregations a `for` of at "
    "least one scrape interval (for: 2m).",
    equivalent=("pint:promql/fragile",),
)
def fragile_query(obj: Mapping[str, Any], config: AuditConfig) -> Iterator[Violation]:
    """Yield alerts whose series come from topk()-like picks, or compare aggregations unguarded."""
    for alert, item, tree in _parsed(alert_rules(obj)):
        value = item.get("for")
        for_s = _seconds(value) if value not in (None, "") else None
        for message in fragile_queries(tree, for_s):
            yield Violation(f"alert {alert}: {message}", alert=alert)
