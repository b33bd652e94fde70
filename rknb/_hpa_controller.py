"""The HorizontalPodAutoscaler (autoscaling/v2) controller's decision, rule for rule.

This is the straightforward, per-decision re-implementation of upstream's
``reconcileAutoscaler`` and its replica calculator, checked case by case
against the conformance vectors (``rknb conformance hpa``). Every rule and
quirk it follows is described, with the upstream function it comes from, in
``/work/shared/conformance/hpa/SPEC.md``; the section numbers below refer to
it. Times are absolute seconds on one clock (``now`` is passed in), replica
counts are Python ints standing for Go's int32, quantities are int64
milli-units and ratios are float64, computed in upstream's order so that the
rounding is the same.

:mod:`rknb.hpa` builds its what-if replay on this module and keeps a fast
path that must agree with it decision for decision.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from rknb.errors import RknbError

MAX_INT32 = 2**31 - 1
MIN_INT32 = -(2**31)
MAX_INT64 = 2**63 - 1

SelectPolicy = Literal["Max", "Min", "Disabled"]


class MetricError(RknbError):
    """One metric could not give a replica proposal; carries the condition reason."""

    def __init__(self, message: str, *, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason


# ---------------------------------------------------------------- inputs


@dataclass(frozen=True)
class Container:
    """A container of a pod: its name, requests (milli-units) and init restart policy."""

    name: str
    requests_m: Mapping[str, int] = field(default_factory=dict)
    restartable: bool = False


@dataclass(frozen=True)
class Pod:
    """What the controller reads of a pod (times are absolute seconds; None = unset)."""

    name: str
    phase: str = "Running"
    deleted: bool = False
    ready: str | None = "True"
    ready_transition_s: float = 0.0
    start_s: float | None = 0.0
    containers: tuple[Container, ...] = ()
    init_containers: tuple[Container, ...] = ()
    pod_requests_m: Mapping[str, int] | None = None


@dataclass(frozen=True)
class PodMetric:
    """One pod's sample: value in milli-units, its timestamp and window in seconds."""

    value_m: int
    timestamp_s: float = 0.0
    window_s: float = 60.0


@dataclass(frozen=True)
class ContainerUsage:
    """One container's usage in a resource metrics item (a missing key lacks the resource)."""

    name: str
    usage_m: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class ResourceMetricsItem:
    """One ``PodMetrics`` item of the resource metrics API."""

    pod: str
    timestamp_s: float
    window_s: float
    containers: tuple[ContainerUsage, ...] = ()


@dataclass(frozen=True)
class Tolerances:
    """The tolerance band: a ratio r is within iff ``1 - down <= r <= 1 + up``."""

    scale_up: float = 0.1
    scale_down: float = 0.1

    def is_within(self, ratio: float) -> bool:
        """Return True when the ratio is inside the band (both bounds inclusive)."""
        return (1.0 - self.scale_down) <= ratio <= (1.0 + self.scale_up)


@dataclass(frozen=True)
class Policy:
    """A scaling policy: ``Pods`` or ``Percent``, its value and period in seconds."""

    type: Literal["Pods", "Percent"]
    value: int
    period_s: int


@dataclass(frozen=True)
class ScalingRules:
    """``HPAScalingRules`` after API defaulting (window None = the controller's flag)."""

    stabilization_window_s: int | None
    select_policy: SelectPolicy = "Max"
    policies: tuple[Policy, ...] = ()
    tolerance: float | None = None


def default_scale_up_rules() -> ScalingRules:
    """Return the API's scale-up defaults: 0 s window, Max of 4 pods / 100 % per 15 s."""
    return ScalingRules(0, "Max", (Policy("Pods", 4, 15), Policy("Percent", 100, 15)))


def default_scale_down_rules() -> ScalingRules:
    """Return the API's scale-down defaults: flag window (300 s), Max of 100 % per 15 s."""
    return ScalingRules(None, "Max", (Policy("Percent", 100, 15),))


@dataclass(frozen=True)
class Behavior:
    """``spec.behavior`` after defaulting."""

    scale_up: ScalingRules = field(default_factory=default_scale_up_rules)
    scale_down: ScalingRules = field(default_factory=default_scale_down_rules)


@dataclass(frozen=True)
class MetricSpec:
    """One entry of ``spec.metrics`` (values in milli-units, utilization in percent)."""

    type: str
    name: str = "cpu"
    container: str = ""
    average_utilization: int | None = None
    average_value_m: int | None = None
    value_m: int | None = None
    target_type: str = ""


@dataclass(frozen=True)
class ControllerConfig:
    """The controller's flags (defaults of ``RecommendedDefaultHPAControllerConfiguration``)."""

    tolerance: float = 0.1
    cpu_initialization_period_s: float = 300.0
    initial_readiness_delay_s: float = 30.0
    downscale_stabilization_window_s: float = 300.0
    scale_up_limit_factor: float = 2.0
    scale_up_limit_minimum: float = 4.0


@dataclass(frozen=True)
class FeatureGates:
    """The gates the decision depends on."""

    configurable_tolerance: bool = True
    scale_to_zero: bool = False
    pod_level_resources: bool = False


@dataclass(frozen=True)
class HpaSpec:
    """The parts of an HPA's spec the decision reads."""

    max_replicas: int
    min_replicas: int | None = 1
    metrics: tuple[MetricSpec, ...] = ()
    behavior: Behavior | None = None


@dataclass
class World:
    """What the metrics APIs and the pod lister answer at one reconcile."""

    pods: Sequence[Pod] = ()
    resource_metrics: Sequence[ResourceMetricsItem] = ()
    pod_metrics: Mapping[str, Mapping[str, PodMetric]] = field(default_factory=dict)
    object_values_m: Mapping[str, int] = field(default_factory=dict)
    external_values_m: Mapping[str, Sequence[int]] = field(default_factory=dict)
    failing_sources: frozenset[str] = frozenset()


@dataclass
class Recommendation:
    """One stored raw recommendation."""

    replicas: int
    timestamp_s: float


@dataclass
class ScaleEvent:
    """One stored scale event (``replica_change`` > 0)."""

    replica_change: int
    timestamp_s: float
    outdated: bool = False


@dataclass
class History:
    """The controller's in-memory state for one HPA (None = never reconciled)."""

    recommendations: list[Recommendation] | None = None
    scale_up_events: list[ScaleEvent] = field(default_factory=list)
    scale_down_events: list[ScaleEvent] = field(default_factory=list)


@dataclass(frozen=True)
class Decision:
    """The outcome of one reconcile: the replicas written (or kept) and the conditions."""

    desired_replicas: int
    conditions: dict[str, str]
    rescaled: bool
    proposal: int | None = None


# ---------------------------------------------------------------- pods (§6)


def _int32(x: float) -> int:
    if math.isnan(x):
        return MIN_INT32
    if x >= MAX_INT32:
        return MAX_INT32
    if x <= MIN_INT32:
        return MIN_INT32
    return int(x)


def resource_pod_metrics(
    items: Sequence[ResourceMetricsItem], resource: str, container: str = ""
) -> dict[str, PodMetric]:
    """Return per-pod usage from resource metrics items, as ``getPodMetrics`` does."""
    if not items:
        raise MetricError("no metrics returned from resource metrics API")
    out: dict[str, PodMetric] = {}
    for item in items:
        if container:
            found = [c for c in item.containers if c.name == container]
            if not found or resource not in found[0].usage_m:
                continue
            value = found[0].usage_m[resource]
        else:
            if not item.containers or any(resource not in c.usage_m for c in item.containers):
                continue
            value = sum(c.usage_m[resource] for c in item.containers)
        out[item.pod] = PodMetric(value, item.timestamp_s, item.window_s)
    return out


def group_pods(
    pods: Iterable[Pod],
    metrics: Mapping[str, PodMetric],
    resource: str,
    cpu_initialization_period_s: float,
    initial_readiness_delay_s: float,
    now: float,
) -> tuple[int, set[str], set[str], set[str]]:
    """Return ``(ready_count, unready, missing, ignored)`` as ``groupPods`` sorts pods."""
    ready_count = 0
    unready: set[str] = set()
    missing: set[str] = set()
    ignored: set[str] = set()
    for pod in pods:
        if pod.deleted or pod.phase == "Failed":
            ignored.add(pod.name)
            continue
        if pod.phase == "Pending":
            unready.add(pod.name)
            continue
        metric = metrics.get(pod.name)
        if metric is None:
            missing.add(pod.name)
            continue
        if resource == "cpu":
            if pod.ready is None or pod.start_s is None:
                is_unready = True
            elif pod.start_s + cpu_initialization_period_s > now:
                is_unready = pod.ready == "False" or (
                    metric.timestamp_s < pod.ready_transition_s + metric.window_s
                )
            else:
                is_unready = (
                    pod.ready == "False"
                    and pod.start_s + initial_readiness_delay_s > pod.ready_transition_s
                )
            if is_unready:
                unready.add(pod.name)
                continue
        ready_count += 1
    return ready_count, unready, missing, ignored


def calculate_requests(
    pods: Iterable[Pod], container: str, resource: str, *, pod_level_resources: bool = False
) -> dict[str, int]:
    """Return each listed pod's request in milli-units, as ``calculateRequests`` does."""
    requests: dict[str, int] = {}
    for pod in pods:
        if container:
            found = [c for c in pod.containers if c.name == container]
            if not found:
                raise MetricError(f"container {container} not present in pod {pod.name}")
            if resource not in found[0].requests_m:
                raise MetricError(
                    f"missing request for {resource} in container {container} of Pod {pod.name}"
                )
            requests[pod.name] = found[0].requests_m[resource]
            continue
        if pod_level_resources and pod.pod_requests_m and resource in pod.pod_requests_m:
            requests[pod.name] = pod.pod_requests_m[resource]
            continue
        total = 0
        for c in (*pod.containers, *(i for i in pod.init_containers if i.restartable)):
            if resource not in c.requests_m:
                raise MetricError(
                    f"missing request for {resource} in container {c.name} of Pod {pod.name}"
                )
            total += c.requests_m[resource]
        requests[pod.name] = total
    return requests


# ---------------------------------------------------------------- ratios (§7, §8)


def utilization_ratio(
    metrics: Mapping[str, int], requests: Mapping[str, int], target_utilization: int
) -> tuple[float, int, int]:
    """Return ``(ratio, utilization_percent, raw_average_m)`` over pods in both maps."""
    usage_total = 0
    request_total = 0
    counted = 0
    for name, value in metrics.items():
        if name not in requests:
            continue
        usage_total += value
        request_total += requests[name]
        counted += 1
    if request_total == 0:
        raise MetricError("no metrics returned matched known pods")
    utilization = (usage_total * 100) // request_total
    return utilization / target_utilization, utilization, usage_total // counted


def _usage_ratio(metrics: Mapping[str, int], target_m: int) -> tuple[float, int]:
    usage = sum(metrics.values()) // len(metrics)
    return usage / target_m, usage


def _finish_slow_path(
    ratio: float, new_ratio: float, entries: int, current: int, tol: Tolerances
) -> int:
    flipped = (ratio < 1.0 < new_ratio) or (ratio > 1.0 > new_ratio)
    if tol.is_within(new_ratio) or flipped:
        return current
    n = _int32(math.ceil(new_ratio * entries))
    if (new_ratio < 1.0 and n > current) or (new_ratio > 1.0 and n < current):
        return current
    return n


def resource_replicas(
    current: int,
    target_utilization: int,
    resource: str,
    tol: Tolerances,
    pods: Sequence[Pod],
    pod_metrics: Mapping[str, PodMetric],
    *,
    container: str = "",
    config: ControllerConfig,
    now: float,
    pod_level_resources: bool = False,
) -> tuple[int, int, int]:
    """Return ``(replicas, utilization, raw_average_m)`` for a Utilization target (§7)."""
    if not pods:
        raise MetricError("no pods returned by selector while calculating replica count")
    ready, unready, missing, ignored = group_pods(
        pods,
        pod_metrics,
        resource,
        config.cpu_initialization_period_s,
        config.initial_readiness_delay_s,
        now,
    )
    metrics = {k: m.value_m for k, m in pod_metrics.items() if k not in ignored | unready}
    if not metrics:
        raise MetricError("did not receive metrics for targeted pods (pods might be unready)")
    requests = calculate_requests(
        pods, container, resource, pod_level_resources=pod_level_resources
    )
    ratio, utilization, raw = utilization_ratio(metrics, requests, target_utilization)

    up_with_unready = bool(unready) and ratio > 1.0
    if not up_with_unready and not missing:
        if tol.is_within(ratio):
            return current, utilization, raw
        return _int32(math.ceil(ratio * ready)), utilization, raw

    # Missing pods: as the larger of 100 % and the target on scale-down, 0 on scale-up.
    if missing:
        if ratio < 1.0:
            fallback = max(100, target_utilization)
            for name in missing:
                metrics[name] = requests[name] * fallback // 100
        elif ratio > 1.0:
            for name in missing:
                metrics[name] = 0
    if up_with_unready:
        for name in unready:
            metrics[name] = 0
    new_ratio, _, _ = utilization_ratio(metrics, requests, target_utilization)
    return _finish_slow_path(ratio, new_ratio, len(metrics), current, tol), utilization, raw


def plain_replicas(
    current: int,
    target_m: int,
    resource: str,
    tol: Tolerances,
    pods: Sequence[Pod],
    pod_metrics: Mapping[str, PodMetric],
    *,
    config: ControllerConfig,
    now: float,
) -> tuple[int, int]:
    """Return ``(replicas, average_m)`` for per-pod values: Pods or AverageValue (§8)."""
    if not pods:
        raise MetricError("no pods returned by selector while calculating replica count")
    ready, unready, missing, ignored = group_pods(
        pods,
        pod_metrics,
        resource,
        config.cpu_initialization_period_s,
        config.initial_readiness_delay_s,
        now,
    )
    metrics = {k: m.value_m for k, m in pod_metrics.items() if k not in ignored | unready}
    if not metrics:
        raise MetricError("did not receive metrics for targeted pods (pods might be unready)")
    ratio, usage = _usage_ratio(metrics, target_m)

    up_with_unready = bool(unready) and ratio > 1.0
    if not up_with_unready and not missing:
        if tol.is_within(ratio):
            return current, usage
        return _int32(math.ceil(ratio * ready)), usage

    # Missing pods: exactly the target on scale-down, 0 on scale-up, left out at 1.0.
    if missing and ratio != 1.0:
        fill = target_m if ratio < 1.0 else 0
        for name in missing:
            metrics[name] = fill
    if up_with_unready:
        for name in unready:
            metrics[name] = 0
    new_ratio, _ = _usage_ratio(metrics, target_m)
    return _finish_slow_path(ratio, new_ratio, len(metrics), current, tol), usage


def _ready_pods(pods: Sequence[Pod]) -> int:
    if not pods:
        raise MetricError(
            "unable to calculate ready pods: no pods returned by selector "
            "while calculating replica count"
        )
    return sum(1 for p in pods if p.phase == "Running" and p.ready == "True")


def _usage_ratio_replicas(current: int, ratio: float, tol: Tolerances, pods: Sequence[Pod]) -> int:
    if current != 0:
        if tol.is_within(ratio):
            return current
        return _int32(math.ceil(ratio * _ready_pods(pods)))
    return _int32(math.ceil(ratio))


def object_replicas(
    current: int, target_m: int, value_m: int, tol: Tolerances, pods: Sequence[Pod]
) -> tuple[int, int]:
    """Return ``(replicas, usage_m)`` for an Object metric with a Value target (§9)."""
    return _usage_ratio_replicas(current, value_m / target_m, tol, pods), value_m


def sum_capped(values: Iterable[int]) -> int:
    total = 0
    for v in values:
        total = min(total + v, MAX_INT64)
    return total


def external_replicas(
    current: int, target_m: int, values_m: Sequence[int], tol: Tolerances, pods: Sequence[Pod]
) -> tuple[int, int]:
    """Return ``(replicas, usage_m)`` for an External metric with a Value target (§9)."""
    usage = sum_capped(values_m)
    return _usage_ratio_replicas(current, usage / target_m, tol, pods), usage


def per_pod_replicas(
    status_replicas: int, target_m: int, usage_m: int, tol: Tolerances
) -> tuple[int, int]:
    """Return ``(replicas, average_m)`` for Object/External AverageValue targets (§9)."""
    denominator = float(target_m) * float(status_replicas)
    ratio = usage_m / denominator if denominator else math.inf
    replicas = status_replicas
    if not tol.is_within(ratio):
        replicas = _int32(math.ceil(usage_m / target_m))
    # Go's int64 conversion of a float at or past 2**63 saturates in practice.
    average = math.ceil(usage_m / status_replicas) if status_replicas else MAX_INT64
    return replicas, min(int(average), MAX_INT64)


# ---------------------------------------------------------------- behavior (§11-§14)


def stabilize_legacy(
    recommendations: list[Recommendation], desired: int, window_s: float, now: float
) -> int:
    """Return the highest raw recommendation of the window, storing ``desired`` (§11)."""
    best = desired
    old_index = -1
    cutoff = now - window_s
    for i, rec in enumerate(recommendations):
        if rec.timestamp_s < cutoff:
            old_index = i
        elif rec.replicas > best:
            best = rec.replicas
    _store_recommendation(recommendations, old_index, desired, now)
    return best


def _store_recommendation(recs: list[Recommendation], index: int, desired: int, now: float) -> None:
    if index >= 0:
        recs[index] = Recommendation(desired, now)
    else:
        recs.append(Recommendation(desired, now))


def stabilize_behavior(
    recommendations: list[Recommendation],
    current: int,
    desired: int,
    scale_up_window_s: float,
    scale_down_window_s: float,
    now: float,
) -> tuple[int, str]:
    """Return the stabilized count and the AbleToScale reason if it differs (§13 step A)."""
    up = desired
    down = desired
    up_cutoff = now - scale_up_window_s
    down_cutoff = now - scale_down_window_s
    old_index = -1
    for i, rec in enumerate(recommendations):
        if rec.timestamp_s > up_cutoff:
            up = min(up, rec.replicas)
        if rec.timestamp_s > down_cutoff:
            down = max(down, rec.replicas)
        if rec.timestamp_s < up_cutoff and rec.timestamp_s < down_cutoff:
            old_index = i
    stabilized = current
    if stabilized < up:
        stabilized = up
    if stabilized > down:
        stabilized = down
    _store_recommendation(recommendations, old_index, desired, now)
    reason = "ScaleUpStabilized" if desired >= current else "ScaleDownStabilized"
    return stabilized, reason


def replicas_changed_within(events: Iterable[ScaleEvent], period_s: float, now: float) -> int:
    """Return the sum of replica changes of events newer than ``now - period_s``."""
    cutoff = now - period_s
    return sum(e.replica_change for e in events if e.timestamp_s > cutoff)


def scale_up_limit(
    current: int,
    up_events: Sequence[ScaleEvent],
    down_events: Sequence[ScaleEvent],
    rules: ScalingRules,
    now: float,
) -> int:
    """Return the highest count the scale-up policies allow now (§13)."""
    if rules.select_policy == "Disabled":
        return current
    pick_min = rules.select_policy == "Min"
    result = MAX_INT32 if pick_min else MIN_INT32
    for policy in rules.policies:
        start = (
            current
            - replicas_changed_within(up_events, policy.period_s, now)
            + replicas_changed_within(down_events, policy.period_s, now)
        )
        if policy.type == "Pods":
            proposed = start + policy.value
        else:
            proposed = _int32(math.ceil(float(start) * (1 + float(policy.value) / 100)))
        result = min(result, proposed) if pick_min else max(result, proposed)
    return result


def scale_down_limit(
    current: int,
    up_events: Sequence[ScaleEvent],
    down_events: Sequence[ScaleEvent],
    rules: ScalingRules,
    now: float,
) -> int:
    """Return the lowest count the scale-down policies allow now (§13)."""
    if rules.select_policy == "Disabled":
        return current
    pick_min_change = rules.select_policy == "Min"
    result = MIN_INT32 if pick_min_change else MAX_INT32
    for policy in rules.policies:
        start = (
            current
            - replicas_changed_within(up_events, policy.period_s, now)
            + replicas_changed_within(down_events, policy.period_s, now)
        )
        if policy.type == "Pods":
            proposed = start - policy.value
        else:
            proposed = _int32(float(start) * (1 - float(policy.value) / 100))
        result = max(result, proposed) if pick_min_change else min(result, proposed)
    return result


def rate_limit_behavior(
    current: int,
    desired: int,
    min_replicas: int,
    max_replicas: int,
    up_rules: ScalingRules,
    down_rules: ScalingRules,
    up_events: Sequence[ScaleEvent],
    down_events: Sequence[ScaleEvent],
    now: float,
) -> tuple[int, str]:
    """Return the stabilized count after the policies and min/max, with the reason (§13 B)."""
    if desired > current:
        limit = max(scale_up_limit(current, up_events, down_events, up_rules, now), current)
        if max_replicas > limit:
            upper, reason = limit, "ScaleUpLimit"
        else:
            upper, reason = max_replicas, "TooManyReplicas"
        if desired > upper:
            return upper, reason
    elif desired < current:
        limit = min(scale_down_limit(current, up_events, down_events, down_rules, now), current)
        if min_replicas < limit:
            lower, reason = limit, "ScaleDownLimit"
        else:
            lower, reason = min_replicas, "TooFewReplicas"
        if desired < lower:
            return lower, reason
    return desired, "DesiredWithinRange"


def rate_limit_legacy(
    current: int,
    desired: int,
    min_replicas: int,
    max_replicas: int,
    factor: float = 2.0,
    minimum: float = 4.0,
) -> tuple[int, str]:
    """Return the count after the legacy x2 / 4 scale-up limit and min/max (§11)."""
    limit = _int32(max(factor * float(current), minimum))
    if max_replicas > limit:
        upper, reason = limit, "ScaleUpLimit"
    else:
        upper, reason = max_replicas, "TooManyReplicas"
    if desired < min_replicas:
        return min_replicas, "TooFewReplicas"
    if desired > upper:
        return upper, reason
    return desired, "DesiredWithinRange"


def store_scale_event(
    behavior: Behavior | None, history: History, previous: int, new: int, now: float
) -> None:
    """Record a rescale in the history when the HPA has a behavior (§14)."""
    if behavior is None:
        return
    if new > previous:
        rules, events, change = behavior.scale_up, history.scale_up_events, new - previous
    else:
        rules, events, change = behavior.scale_down, history.scale_down_events, previous - new
    longest = max((p.period_s for p in rules.policies), default=0)
    cutoff = now - longest
    old_index = -1
    for i, event in enumerate(events):
        if event.timestamp_s < cutoff:
            event.outdated = True
        if event.outdated:
            old_index = i
    if old_index >= 0:
        events[old_index] = ScaleEvent(change, now)
    else:
        events.append(ScaleEvent(change, now))


# ---------------------------------------------------------------- reconcile (§2, §10)

_FAILURE_REASON = {
    "Resource": "FailedGetResourceMetric",
    "ContainerResource": "FailedGetContainerResourceMetric",
    "Pods": "FailedGetPodsMetric",
    "Object": "FailedGetObjectMetric",
    "External": "FailedGetExternalMetric",
}


def tolerances_for(hpa: HpaSpec, config: ControllerConfig, gates: FeatureGates) -> Tolerances:
    """Return the tolerances of an HPA: the flag, or its behavior fields under the gate (§4)."""
    up = down = config.tolerance
    if gates.configurable_tolerance and hpa.behavior is not None:
        if hpa.behavior.scale_up.tolerance is not None:
            up = hpa.behavior.scale_up.tolerance
        if hpa.behavior.scale_down.tolerance is not None:
            down = hpa.behavior.scale_down.tolerance
    return Tolerances(up, down)


def metric_replicas(
    spec: MetricSpec,
    spec_replicas: int,
    status_replicas: int,
    tol: Tolerances,
    world: World,
    config: ControllerConfig,
    gates: FeatureGates,
    now: float,
) -> int:
    """Return one metric's replica proposal, or raise :class:`MetricError` (§5)."""
    if spec.type not in _FAILURE_REASON:
        raise MetricError(
            f"invalid metric source type {spec.type!r}", reason="InvalidMetricSourceType"
        )
    reason = _FAILURE_REASON[spec.type]
    try:
        fails = spec.type in world.failing_sources or (
            spec.type == "ContainerResource" and "Resource" in world.failing_sources
        )
        if fails:
            raise MetricError(f"unable to get {spec.type} metric {spec.name}")
        if spec.type in ("Resource", "ContainerResource"):
            container = spec.container if spec.type == "ContainerResource" else ""
            usage = resource_pod_metrics(world.resource_metrics, spec.name, container)
            if spec.average_value_m is not None:
                return plain_replicas(
                    spec_replicas,
                    spec.average_value_m,
                    spec.name,
                    tol,
                    world.pods,
                    usage,
                    config=config,
                    now=now,
                )[0]
            if spec.average_utilization is not None:
                return resource_replicas(
                    spec_replicas,
                    spec.average_utilization,
                    spec.name,
                    tol,
                    world.pods,
                    usage,
                    container=container,
                    config=config,
                    now=now,
                    pod_level_resources=gates.pod_level_resources,
                )[0]
            raise MetricError("invalid resource metric source: neither a utilization target")
        if spec.type == "Pods":
            values = world.pod_metrics.get(spec.name, {})
            if spec.average_value_m is None:
                raise MetricError(f"Pods metric {spec.name} has no averageValue target")
            return plain_replicas(
                spec_replicas,
                spec.average_value_m,
                "",
                tol,
                world.pods,
                values,
                config=config,
                now=now,
            )[0]
        if spec.type == "Object":
            if spec.name not in world.object_values_m:
                raise MetricError(f"no value for Object metric {spec.name}")
            value = world.object_values_m[spec.name]
            if spec.target_type == "Value" and spec.value_m is not None:
                return object_replicas(spec_replicas, spec.value_m, value, tol, world.pods)[0]
            if spec.target_type == "AverageValue" and spec.average_value_m is not None:
                return per_pod_replicas(status_replicas, spec.average_value_m, value, tol)[0]
            raise MetricError(f"invalid object metric source for {spec.name}")
        values_m = world.external_values_m.get(spec.name)
        if values_m is None:
            raise MetricError(f"no values for External metric {spec.name}")
        if spec.average_value_m is not None:
            usage_m = sum_capped(values_m)
            return per_pod_replicas(status_replicas, spec.average_value_m, usage_m, tol)[0]
        if spec.value_m is not None:
            return external_replicas(spec_replicas, spec.value_m, values_m, tol, world.pods)[0]
        raise MetricError(f"invalid external metric source for {spec.name}")
    except MetricError as failure:
        if not failure.reason:
            failure.reason = reason
        raise


def replicas_for_metrics(
    hpa: HpaSpec,
    spec_replicas: int,
    status_replicas: int,
    world: World,
    config: ControllerConfig,
    gates: FeatureGates,
    now: float,
) -> tuple[int, str]:
    """Return ``(proposal, failure_reason)``: the max valid proposal, or -1 on hard failure."""
    tol = tolerances_for(hpa, config, gates)
    best = 0
    first_failure = ""
    failures = 0
    for spec in hpa.metrics:
        try:
            proposal = metric_replicas(
                spec, spec_replicas, status_replicas, tol, world, config, gates, now
            )
        except MetricError as failure:
            if not failures:
                first_failure = failure.reason
            failures += 1
            continue
        if best == 0 or proposal > best:
            best = proposal
    if failures >= len(hpa.metrics) or (failures and best < spec_replicas):
        return -1, first_failure
    return best, first_failure


def _has_object_or_external(hpa: HpaSpec) -> bool:
    return any(m.type in ("Object", "External") for m in hpa.metrics)


def reconcile(
    hpa: HpaSpec,
    *,
    spec_replicas: int,
    status_replicas: int,
    world: World,
    history: History,
    now: float,
    config: ControllerConfig | None = None,
    gates: FeatureGates | None = None,
    status_conditions: Mapping[str, tuple[str, str]] | None = None,
) -> Decision:
    """Return one reconcile's decision, updating ``history`` as the controller does (§2).

    Parameters
    ----------
    hpa
        The HPA's spec.
    spec_replicas
        ``scale.spec.replicas`` (the current replicas).
    status_replicas
        ``scale.status.replicas`` (used by Object/External AverageValue targets).
    world
        What the metrics APIs and the pod lister answer now.
    history
        The controller's stored recommendations and scale events for this HPA.
    now
        The reconcile's time in seconds.
    config
        The controller's flags (upstream defaults when None).
    gates
        Feature gates (configurable tolerance on, scale to zero off, when None).
    status_conditions
        The HPA's conditions before the reconcile: type to ``(status, reason)``.
    """
    config = config or ControllerConfig()
    gates = gates or FeatureGates()
    conditions: dict[str, tuple[str, str]] = dict(status_conditions or {})
    if not gates.scale_to_zero:
        conditions.pop("ScaledToZero", None)
    conditions["AbleToScale"] = ("True", "SucceededGetScale")

    current = spec_replicas
    if history.recommendations is None:
        history.recommendations = [Recommendation(current, now)]
    min_replicas = 1 if hpa.min_replicas is None else hpa.min_replicas
    max_replicas = hpa.max_replicas
    scaled_to_zero = gates.scale_to_zero and conditions.get("ScaledToZero", ("", ""))[0] == "True"
    proposal: int | None = None

    if current == 0 and not (
        scaled_to_zero and (min_replicas != 0 or _has_object_or_external(hpa))
    ):
        conditions["ScalingActive"] = ("False", "ScalingDisabled")
        return Decision(0, _reasons(conditions), False)
    if current > max_replicas:
        desired = max_replicas
    elif current < min_replicas and current != 0:
        desired = min_replicas
    else:
        proposal, failure = replicas_for_metrics(
            hpa, current, status_replicas, world, config, gates, now
        )
        if proposal == -1:
            conditions["ScalingActive"] = ("False", failure)
            return Decision(current, _reasons(conditions), False, proposal)
        conditions["ScalingActive"] = ("True", "ValidMetricFound")
        desired = max(0, proposal)
        desired = _normalize(hpa, history, current, desired, min_replicas, config, conditions, now)
        if current == 0 and scaled_to_zero and min_replicas != 0 and desired < min_replicas:
            desired = min_replicas

    rescale = desired != current
    if rescale:
        conditions["AbleToScale"] = ("True", "SucceededRescale")
        store_scale_event(hpa.behavior, history, current, desired, now)
        if gates.scale_to_zero:
            if current > 0 and desired == 0 and min_replicas == 0 and _has_object_or_external(hpa):
                conditions["ScaledToZero"] = ("True", "ScaledToZero")
            else:
                conditions["ScaledToZero"] = ("False", "NotScaledToZero")
    else:
        desired = current
    return Decision(desired, _reasons(conditions), rescale, proposal)


def _normalize(
    hpa: HpaSpec,
    history: History,
    current: int,
    desired: int,
    min_replicas: int,
    config: ControllerConfig,
    conditions: dict[str, tuple[str, str]],
    now: float,
) -> int:
    recs = history.recommendations
    assert recs is not None
    if hpa.behavior is None:
        stabilized = stabilize_legacy(recs, desired, config.downscale_stabilization_window_s, now)
        able = "ScaleDownStabilized" if stabilized != desired else "ReadyForNewScale"
        result, limited = rate_limit_legacy(
            current,
            stabilized,
            min_replicas,
            hpa.max_replicas,
            config.scale_up_limit_factor,
            config.scale_up_limit_minimum,
        )
    else:
        up, down = hpa.behavior.scale_up, hpa.behavior.scale_down
        down_window = (
            config.downscale_stabilization_window_s
            if down.stabilization_window_s is None
            else down.stabilization_window_s
        )
        up_window = 0 if up.stabilization_window_s is None else up.stabilization_window_s
        stabilized, reason = stabilize_behavior(recs, current, desired, up_window, down_window, now)
        able = reason if stabilized != desired else "ReadyForNewScale"
        result, limited = rate_limit_behavior(
            current,
            stabilized,
            min_replicas,
            hpa.max_replicas,
            up,
            down,
            history.scale_up_events,
            history.scale_down_events,
            now,
        )
    conditions["AbleToScale"] = ("True", able)
    conditions["ScalingLimited"] = ("False" if result == stabilized else "True", limited)
    return result


def _reasons(conditions: Mapping[str, tuple[str, str]]) -> dict[str, str]:
    return {kind: reason for kind, (_, reason) in conditions.items()}
