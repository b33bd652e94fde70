"""HPA tuning: what an autoscaling/v2 HPA, or a candidate config, would have done on real load.

The answer is only worth having if the simulated controller decides as the
real one does, so every decision comes from :mod:`rknb._hpa_controller`, the
rule-for-rule re-implementation of upstream's ``reconcileAutoscaler`` that
passes ``rknb conformance hpa``. Around it this module models the pods:

* one reconcile per sync period (15 s by default); the metric at a decision
  is the last demand sample at or before it;
* a new pod is Running at once and Ready ``startup_s`` later (from the
  readiness probe, or the pod ages the cluster shows); only Ready pods serve,
  and they share the demand equally, each reporting its share (in milli-units,
  truncated) with a fresh sample whose window is ``metric_window_s``; pods not
  yet Ready report 0;
* a scale-down deletes the youngest pods at once, as the ReplicaSet controller
  prefers to.

:func:`replay` runs the controller over explicit pods, one decision at a time
(the reference); :func:`replay_grid` computes the same decisions for many
configs in one compiled loop (:mod:`rknb._hpa_fast`), and a property test holds
the two equal decision for decision. :func:`summarize`, :func:`search`,
:func:`pareto_front` and :func:`recommend` turn replays into the tuning answer.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

import numpy as np
import pandas as pd

from rknb import _hpa_controller as ctl
from rknb import _hpa_fast as fast
from rknb.errors import ParameterError
from rknb.kube import parse_quantity

__all__ = [
    "CAUSE_TEXT",
    "DEFAULT_SCALE_DOWN_POLICIES",
    "DEFAULT_SCALE_UP_POLICIES",
    "FLAP_WINDOW_S",
    "RULES",
    "STATE_CAUSES",
    "GridReplay",
    "HpaConfig",
    "PodModel",
    "Policy",
    "Recommendation",
    "ReplaySummary",
    "attribute_decisions",
    "cause_counts",
    "compare",
    "compare_decisions",
    "explain_differences",
    "grid",
    "headline",
    "manifest_patch",
    "observed_startup_s",
    "pareto_front",
    "pod_model_from_deployment",
    "recommend",
    "replay",
    "replay_grid",
    "risk_windows",
    "scale_events",
    "search",
    "summarize",
    "summarize_grid",
    "trade_off",
    "with_changes",
]

logger = logging.getLogger(__name__)

#: Two scale events in opposite directions closer than this count as one flap.
FLAP_WINDOW_S = 600.0

Policy = ctl.Policy
DEFAULT_SCALE_UP_POLICIES: tuple[Policy, ...] = ctl.default_scale_up_rules().policies
DEFAULT_SCALE_DOWN_POLICIES: tuple[Policy, ...] = ctl.default_scale_down_rules().policies
_SELECT = {"Max": 0, "Min": 1, "Disabled": 2}


@dataclass(frozen=True)
class HpaConfig:
    """The settings of one HPA (or candidate) that the replay uses.

    ``target_utilization`` is a fraction (0.7 = 70 %) for the CPU metric;
    ``target_average_value`` is the per-pod target of a Pods metric in the
    metric's own unit. ``second_metric_name`` and ``second_target_average_value``
    add a Pods AverageValue metric beside the CPU target (requests per second,
    say): the controller then takes the larger of the two proposals.
    ``behavior`` False means ``spec.behavior`` is unset: the legacy path, where
    ``scale_down_stabilization_s`` is the controller's flag (300 s) and
    scale-up is limited to max(2 x current, 4) per reconcile.
    """

    min_replicas: int
    max_replicas: int
    target_utilization: float
    tolerance: float = 0.1
    scale_down_stabilization_s: float = 300.0
    scale_up_stabilization_s: float = 0.0
    sync_period_s: float = 15.0
    behavior: bool = False
    scale_up_policies: tuple[Policy, ...] = DEFAULT_SCALE_UP_POLICIES
    scale_down_policies: tuple[Policy, ...] = DEFAULT_SCALE_DOWN_POLICIES
    scale_up_select: Literal["Max", "Min", "Disabled"] = "Max"
    scale_down_select: Literal["Max", "Min", "Disabled"] = "Max"
    scale_up_tolerance: float | None = None
    scale_down_tolerance: float | None = None
    metric: Literal["cpu", "pods"] = "cpu"
    metric_name: str = ""
    target_average_value: float = 0.0
    second_metric_name: str = ""
    second_target_average_value: float = 0.0

    def __post_init__(self) -> None:
        if self.min_replicas < 1:
            raise ParameterError("min_replicas", f"must be at least 1, got {self.min_replicas}")
        if self.max_replicas < self.min_replicas:
            raise ParameterError(
                "max_replicas",
                f"{self.max_replicas} is below min_replicas {self.min_replicas}; raise it",
            )
        if self.metric == "cpu" and not self.target_utilization > 0:
            raise ParameterError(
                "target_utilization",
                f"must be a positive fraction (0.7 = 70 %), got {self.target_utilization}",
            )
        if self.metric == "pods" and not self.target_average_value > 0:
            raise ParameterError(
                "target_average_value", f"must be positive, got {self.target_average_value}"
            )
        if self.second_metric_name and (
            self.metric != "cpu" or not self.second_target_average_value > 0
        ):
            raise ParameterError(
                "second_target_average_value",
                f"a second metric {self.second_metric_name!r} needs a CPU first metric and a "
                f"positive target, got {self.metric} and {self.second_target_average_value}",
            )
        if self.tolerance < 0:
            raise ParameterError("tolerance", f"cannot be negative, got {self.tolerance}")
        for name in ("scale_down_stabilization_s", "scale_up_stabilization_s"):
            value = getattr(self, name)
            if not 0 <= value <= 3600:
                raise ParameterError(name, f"must be within 0..3600 s, got {value}")
        if not self.behavior and self.scale_up_stabilization_s:
            raise ParameterError(
                "scale_up_stabilization_s",
                "a scale-up window needs spec.behavior; set behavior=True",
            )
        if self.sync_period_s <= 0:
            raise ParameterError("sync_period_s", f"must be positive, got {self.sync_period_s}")
        for policy in (*self.scale_up_policies, *self.scale_down_policies):
            if policy.value <= 0 or not 0 < policy.period_s <= 1800:
                raise ParameterError(
                    "policies", f"{policy} needs value > 0 and period_s in (0, 1800]"
                )
        if len(self.scale_up_policies) > fast.MAX_POLICIES:
            raise ParameterError("scale_up_policies", f"at most {fast.MAX_POLICIES} policies")
        if len(self.scale_down_policies) > fast.MAX_POLICIES:
            raise ParameterError("scale_down_policies", f"at most {fast.MAX_POLICIES} policies")

    @property
    def target_percent(self) -> int:
        """The ``averageUtilization`` the API holds: an integer percent."""
        return round(self.target_utilization * 100)

    @property
    def target_milli(self) -> int:
        """The Pods target in milli-units, as the controller reads it (rounded up)."""
        return math.ceil(round(self.target_average_value * 1000, 6))

    @property
    def second_target_milli(self) -> int:
        """The second (Pods) metric's target in milli-units, 0 without a second metric."""
        if not self.second_metric_name:
            return 0
        return math.ceil(round(self.second_target_average_value * 1000, 6))

    @classmethod
    def from_object(cls, hpa: dict[str, Any]) -> HpaConfig:
        """Return the config of an autoscaling/v2 HorizontalPodAutoscaler object.

        Reads ``minReplicas`` (default 1), ``maxReplicas``, the Resource ``cpu``
        Utilization target (80 % when ``metrics`` is empty, as the API defaults
        it) with the first Pods AverageValue target beside it if any, or else one
        Pods AverageValue target, ``behavior`` with the API's
        defaults for unset fields, and ``syncPeriodSeconds`` (15 s).
        """
        name = (hpa.get("metadata") or {}).get("name", "?")
        spec = hpa.get("spec") or {}
        if "maxReplicas" not in spec:
            raise ParameterError("hpa", f"HorizontalPodAutoscaler {name!r} has no spec.maxReplicas")

        metric_fields = _metric_fields(name, spec.get("metrics") or [])
        raw_behavior = spec.get("behavior")
        behavior_fields: dict[str, Any] = {}
        if raw_behavior is not None:
            up = raw_behavior.get("scaleUp") or {}
            down = raw_behavior.get("scaleDown") or {}
            behavior_fields = {
                "behavior": True,
                "scale_up_stabilization_s": float(up.get("stabilizationWindowSeconds", 0)),
                "scale_down_stabilization_s": float(down.get("stabilizationWindowSeconds", 300)),
                "scale_up_select": up.get("selectPolicy", "Max"),
                "scale_down_select": down.get("selectPolicy", "Max"),
                "scale_up_policies": _policies(up, DEFAULT_SCALE_UP_POLICIES),
                "scale_down_policies": _policies(down, DEFAULT_SCALE_DOWN_POLICIES),
                "scale_up_tolerance": _optional_quantity(up.get("tolerance")),
                "scale_down_tolerance": _optional_quantity(down.get("tolerance")),
            }
        return cls(
            min_replicas=int(spec.get("minReplicas", 1)),
            max_replicas=int(spec["maxReplicas"]),
            sync_period_s=float(spec.get("syncPeriodSeconds", 15)),
            **metric_fields,
            **behavior_fields,
        )

    def controller_spec(self) -> ctl.HpaSpec:
        """Return the config as the controller's :class:`~rknb._hpa_controller.HpaSpec`."""
        if self.metric == "cpu":
            metric = ctl.MetricSpec(
                "Resource",
                "cpu",
                average_utilization=self.target_percent,
                target_type="Utilization",
            )
        else:
            metric = ctl.MetricSpec(
                "Pods",
                self.metric_name or "metric",
                average_value_m=self.target_milli,
                target_type="AverageValue",
            )
        behavior = None
        if self.behavior:
            behavior = ctl.Behavior(
                ctl.ScalingRules(
                    int(self.scale_up_stabilization_s),
                    self.scale_up_select,
                    self.scale_up_policies,
                    self.scale_up_tolerance,
                ),
                ctl.ScalingRules(
                    int(self.scale_down_stabilization_s),
                    self.scale_down_select,
                    self.scale_down_policies,
                    self.scale_down_tolerance,
                ),
            )
        metrics: tuple[ctl.MetricSpec, ...] = (metric,)
        if self.second_metric_name:
            second = ctl.MetricSpec(
                "Pods",
                self.second_metric_name,
                average_value_m=self.second_target_milli,
                target_type="AverageValue",
            )
            metrics = (metric, second)
        return ctl.HpaSpec(self.max_replicas, self.min_replicas, metrics, behavior)

    def label(self) -> str:
        """Return a short human label: target, min..max, windows."""
        target = (
            f"{self.target_percent}%"
            if self.metric == "cpu"
            else f"{self.target_average_value:g}/pod"
        )
        if self.second_metric_name:
            target += f" + {self.second_target_average_value:g} {self.second_metric_name}/pod"
        text = f"{target} {self.min_replicas}..{self.max_replicas}"
        if self.behavior:
            text += (
                f" up {self.scale_up_stabilization_s:.0f}s"
                f" down {self.scale_down_stabilization_s:.0f}s"
            )
        else:
            text += " (no behavior)"
        return text


def _metric_fields(name: str, metrics: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    if not metrics:
        return {"target_utilization": 0.8}
    cpu: dict[str, Any] = {}
    per_pod: list[dict[str, Any]] = []
    for metric in metrics:
        resource = metric.get("resource") or {}
        target = resource.get("target") or {}
        pods = metric.get("pods") or {}
        pods_target = pods.get("target") or {}
        if (
            not cpu
            and metric.get("type") == "Resource"
            and resource.get("name") == "cpu"
            and target.get("type") == "Utilization"
        ):
            cpu = {"target_utilization": float(target["averageUtilization"]) / 100}
        elif metric.get("type") == "Pods" and "averageValue" in pods_target:
            per_pod.append(
                {
                    "name": (pods.get("metric") or {}).get("name", ""),
                    "target": _quantity(pods_target["averageValue"]),
                }
            )
    if cpu:
        used = 1 + min(1, len(per_pod))
        if len(metrics) > used:
            logger.warning(
                "HPA %s has %d metrics; the replay uses its CPU utilization target%s only",
                name,
                len(metrics),
                " and its first Pods target" if per_pod else "",
            )
        if per_pod:
            cpu["second_metric_name"] = per_pod[0]["name"] or "metric"
            cpu["second_target_average_value"] = per_pod[0]["target"]
        return cpu
    if per_pod:
        return {
            "target_utilization": 1.0,
            "metric": "pods",
            "metric_name": per_pod[0]["name"],
            "target_average_value": per_pod[0]["target"],
        }
    raise ParameterError(
        "hpa",
        f"HorizontalPodAutoscaler {name!r} has neither a Resource cpu Utilization target nor a "
        "Pods AverageValue target; the replay models those two",
    )


def _policies(rules: Mapping[str, Any], default: tuple[Policy, ...]) -> tuple[Policy, ...]:
    raw = rules.get("policies")
    if raw is None:
        return default
    return tuple(Policy(p["type"], int(p["value"]), int(p["periodSeconds"])) for p in raw)


def _quantity(value: str | float) -> float:
    return parse_quantity(value, name="quantity")


def _optional_quantity(value: str | float | None) -> float | None:
    return None if value is None else _quantity(value)


def with_changes(
    config: HpaConfig,
    *,
    min_replicas: int = 0,
    max_replicas: int = 0,
    target_utilization: float = 0.0,
    scale_down_stabilization_s: float = -1.0,
    scale_up_stabilization_s: float = -1.0,
    scale_up_policies: tuple[Policy, ...] | None = None,
) -> HpaConfig:
    """Return a candidate config: the given settings replaced, zero (or -1 s) meaning unchanged.

    Changing a window or a policy sets ``behavior`` (that is where the API
    keeps them); the rest of the behavior then takes the API defaults.
    """
    changes: dict[str, Any] = {}
    if min_replicas:
        changes["min_replicas"] = min_replicas
    if max_replicas:
        changes["max_replicas"] = max_replicas
    if target_utilization:
        changes["target_utilization"] = target_utilization
    if scale_down_stabilization_s >= 0:
        changes["scale_down_stabilization_s"] = scale_down_stabilization_s
    if scale_up_stabilization_s >= 0:
        changes["scale_up_stabilization_s"] = scale_up_stabilization_s
    if scale_up_policies is not None:
        changes["scale_up_policies"] = scale_up_policies
    behavior_keys = {"scale_down_stabilization_s", "scale_up_stabilization_s", "scale_up_policies"}
    if behavior_keys & changes.keys():
        changes["behavior"] = True
    return replace(config, **changes)


# ---------------------------------------------------------------- the pod model


@dataclass(frozen=True)
class PodModel:
    """How the replay's pods behave.

    ``capacity_per_replica`` is what one pod can take at 100 %: its CPU
    request in cores for the CPU metric, or the metric per pod (requests per
    second, say) for a Pods metric. ``startup_s`` is the time from creation to
    Ready. ``cpu_limit_cores`` caps a pod's reported usage when set.
    """

    capacity_per_replica: float
    startup_s: float = 30.0
    metric_window_s: float = 15.0
    cpu_limit_cores: float | None = None
    cpu_initialization_period_s: float = 300.0
    initial_readiness_delay_s: float = 30.0

    def __post_init__(self) -> None:
        if not self.capacity_per_replica > 0:
            raise ParameterError(
                "capacity_per_replica", f"must be positive, got {self.capacity_per_replica}"
            )
        if self.startup_s < 0:
            raise ParameterError("startup_s", f"cannot be negative, got {self.startup_s}")

    @property
    def request_m(self) -> int:
        """One pod's CPU request in millicores (rounded up, as ``MilliValue``)."""
        return max(1, math.ceil(round(self.capacity_per_replica * 1000, 6)))

    @property
    def limit_m(self) -> int:
        """One pod's CPU limit in millicores, 0 for none."""
        if self.cpu_limit_cores is None:
            return 0
        return math.ceil(round(self.cpu_limit_cores * 1000, 6))


def observed_startup_s(pods: Iterable[Mapping[str, Any]]) -> list[float]:
    """Return each Ready pod's seconds from ``status.startTime`` to becoming Ready.

    Pods whose Ready condition changed long after start (a later readiness
    flap, more than an hour) tell nothing about start-up and are left out.
    """
    out = []
    for pod in pods:
        status = pod.get("status") or {}
        ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), None)
        if not ready or ready.get("status") != "True" or not status.get("startTime"):
            continue
        seconds = (
            pd.Timestamp(ready["lastTransitionTime"]) - pd.Timestamp(status["startTime"])
        ).total_seconds()
        if 0 <= seconds <= 3600:
            out.append(seconds)
    return out


def pod_model_from_deployment(
    deployment: Mapping[str, Any],
    *,
    observed_startup_s: Sequence[float] = (),
    metric_window_s: float = 15.0,
) -> PodModel:
    """Return the pod model of a Deployment: summed CPU requests and limits, start-up time.

    The start-up time is the median of ``observed_startup_s`` (creation to
    Ready of real pods) when given, else the readiness probe's earliest
    success: ``initialDelaySeconds + periodSeconds x successThreshold``
    (defaults 0, 10, 1), taking the slowest container.
    """
    name = (deployment.get("metadata") or {}).get("name", "?")
    containers = (((deployment.get("spec") or {}).get("template") or {}).get("spec") or {}).get(
        "containers"
    ) or []
    request = 0.0
    limit: float | None = 0.0
    probe_s = 0.0
    for container in containers:
        resources = container.get("resources") or {}
        cpu = (resources.get("requests") or {}).get("cpu")
        if cpu is None:
            raise ParameterError(
                "deployment",
                f"container {container.get('name')!r} of {name!r} has no CPU request; "
                "the HPA cannot compute utilization without one",
            )
        request += _quantity(cpu)
        cpu_limit = (resources.get("limits") or {}).get("cpu")
        limit = None if cpu_limit is None or limit is None else limit + _quantity(cpu_limit)
        probe = container.get("readinessProbe") or {}
        probe_s = max(
            probe_s,
            float(probe.get("initialDelaySeconds", 0))
            + float(probe.get("periodSeconds", 10)) * float(probe.get("successThreshold", 1)),
        )
    startup = float(np.median(observed_startup_s)) if len(observed_startup_s) else probe_s
    return PodModel(
        capacity_per_replica=request,
        startup_s=startup,
        metric_window_s=metric_window_s,
        cpu_limit_cores=limit or None,
    )


# ---------------------------------------------------------------- replay


def _unix_s(times: pd.DatetimeIndex) -> np.ndarray:
    # Not asi8: its unit follows the index's resolution (ns, us or s under pandas 3).
    return np.asarray((times - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1), dtype=float)


@dataclass(frozen=True)
class _Inputs:
    times: pd.DatetimeIndex
    t: np.ndarray
    demand: np.ndarray
    demand_m: np.ndarray


def _inputs(demand: pd.Series, sync_period_s: float) -> _Inputs:
    """Return the decision times and the demand each decision sees (last sample at or before)."""
    values = demand.dropna().sort_index()
    if values.empty:
        raise ParameterError("demand", "has no samples; query a window where the workload ran")
    if (values < 0).any():
        raise ParameterError("demand", "has negative samples; pass usage, not a rate of change")
    first, last = values.index[0], values.index[-1]
    count = int((last - first) / pd.Timedelta(seconds=sync_period_s)) + 1
    times = pd.DatetimeIndex(first + pd.to_timedelta(np.arange(count) * sync_period_s, unit="s"))
    seen = values.reindex(times, method="ffill").to_numpy(dtype=float)
    t = np.arange(count, dtype=float) * sync_period_s
    demand_m = np.round(seen * 1000).astype(np.int64)
    return _Inputs(times, t, seen, demand_m)


def _second_m(
    config: HpaConfig, second_demand: pd.Series | None, inputs: _Inputs
) -> np.ndarray | None:
    """Return the second metric's total (milli-units) each decision sees, None without one."""
    if not config.second_metric_name:
        if second_demand is not None:
            raise ParameterError(
                "second_demand", f"given, but {config.label()} has no second metric; drop it"
            )
        return None
    if second_demand is None:
        raise ParameterError(
            "second_demand",
            f"{config.label()} has a second metric {config.second_metric_name!r}; pass its "
            "total over the workload's pods",
        )
    values = second_demand.dropna().sort_index()
    if (values < 0).any():
        raise ParameterError("second_demand", "has negative samples; pass the metric's total")
    seen = values.reindex(inputs.times, method="ffill").fillna(0.0).to_numpy(dtype=float)
    return np.round(seen * 1000).astype(np.int64)


def _controller_config(config: HpaConfig, pods: PodModel) -> ctl.ControllerConfig:
    return ctl.ControllerConfig(
        tolerance=config.tolerance,
        cpu_initialization_period_s=pods.cpu_initialization_period_s,
        initial_readiness_delay_s=pods.initial_readiness_delay_s,
        downscale_stabilization_window_s=(
            300.0 if config.behavior else config.scale_down_stabilization_s
        ),
    )


def replay(
    demand: pd.Series,
    *,
    config: HpaConfig,
    pods: PodModel,
    initial_replicas: int,
    engine: Literal["exact", "fast"] = "exact",
    second_demand: pd.Series | None = None,
) -> pd.DataFrame:
    """Return what the HPA would have done at each sync period over the demand.

    Columns: ``timestamp`` (one per sync period), ``demand`` (the sample the
    decision saw: cores for CPU), ``replicas`` (pods before the decision),
    ``ready_replicas`` (pods Ready and serving), ``desired`` (the decision,
    in force at once) and ``utilization`` (demand over the Ready pods'
    capacity, a fraction). The ``exact`` engine also gives ``proposal`` (the
    metric's raw proposal, -1 when the metric failed, NaN when not read),
    ``able_to_scale`` and ``scaling_limited`` (the condition reasons) and
    ``counted_pods`` (pods whose metric the controller used).

    Parameters
    ----------
    demand
        Total demand over the workload's pods, indexed by UTC timestamps: CPU
        cores for a CPU target, the metric's total for a Pods target.
    config
        The HPA settings.
    pods
        The pod model (capacity per replica, start-up time).
    initial_replicas
        Pods running, Ready and old, at the first decision.
    engine
        ``exact`` runs the controller itself; ``fast`` the compiled path.
    second_demand
        With a second (Pods) metric in ``config``: its total over the
        workload's pods (requests per second, say), shared like the demand by
        the Ready pods; pods not Ready report 0.
    """
    if initial_replicas < 0:
        raise ParameterError("initial_replicas", f"cannot be negative, got {initial_replicas}")
    if engine == "fast":
        result = replay_grid(
            demand,
            [config],
            pods=pods,
            initial_replicas=initial_replicas,
            second_demand=second_demand,
        )
        return result.frame(0, pods=pods, config=config)
    if engine != "exact":
        raise ParameterError("engine", f"{engine!r} is not one of exact, fast")

    inputs = _inputs(demand, config.sync_period_s)
    second_m = _second_m(config, second_demand, inputs)
    spec = config.controller_spec()
    cc = _controller_config(config, pods)
    gates = ctl.FeatureGates(configurable_tolerance=True)
    request_m, limit_m = pods.request_m, pods.limit_m
    metric_name = spec.metrics[0].name
    history = ctl.History()
    created: list[tuple[str, float]] = [
        (f"pod-{i}", inputs.t[0] - 1e9) for i in range(initial_replicas)
    ]
    serial = itertools.count(initial_replicas)

    steps = len(inputs.t)
    replicas_col = np.zeros(steps, dtype=int)
    ready_col = np.zeros(steps, dtype=int)
    desired_col = np.zeros(steps, dtype=int)
    proposal_col = np.full(steps, np.nan)
    counted_col = np.zeros(steps, dtype=int)
    able_col: list[str] = []
    limited_col: list[str] = []
    for k, now in enumerate(inputs.t.tolist()):
        serving = [now >= born + pods.startup_s for _, born in created]
        n_serving = sum(serving)
        share = int(inputs.demand_m[k]) // n_serving if n_serving else 0
        if limit_m and share > limit_m:
            share = limit_m
        pod_list = [
            ctl.Pod(
                name=name,
                ready="True" if ok else "False",
                ready_transition_s=born + pods.startup_s if ok else born,
                start_s=born,
                containers=(ctl.Container("app", {"cpu": request_m}),),
            )
            for (name, born), ok in zip(created, serving, strict=True)
        ]
        usage = [share if ok else 0 for ok in serving]
        if config.metric == "cpu":
            per_pod: dict[str, dict[str, ctl.PodMetric]] = {}
            if second_m is not None:
                share_2 = int(second_m[k]) // n_serving if n_serving else 0
                per_pod[config.second_metric_name] = {
                    name: ctl.PodMetric(share_2 if ok else 0, now, pods.metric_window_s)
                    for (name, _), ok in zip(created, serving, strict=True)
                }
            world = ctl.World(
                pods=pod_list,
                resource_metrics=[
                    ctl.ResourceMetricsItem(
                        name, now, pods.metric_window_s, (ctl.ContainerUsage("app", {"cpu": u}),)
                    )
                    for (name, _), u in zip(created, usage, strict=True)
                ],
                pod_metrics=per_pod,
            )
        else:
            world = ctl.World(
                pods=pod_list,
                pod_metrics={
                    metric_name: {
                        name: ctl.PodMetric(u, now, pods.metric_window_s)
                        for (name, _), u in zip(created, usage, strict=True)
                    }
                },
            )
        n = len(created)
        decision = ctl.reconcile(
            spec,
            spec_replicas=n,
            status_replicas=n,
            world=world,
            history=history,
            now=now,
            config=cc,
            gates=gates,
        )
        replicas_col[k], ready_col[k], desired_col[k] = n, n_serving, decision.desired_replicas
        if decision.proposal is not None:
            proposal_col[k] = decision.proposal
        counted_col[k] = _counted(pod_list, world, config, cc, now)
        able_col.append(decision.conditions.get("AbleToScale", ""))
        limited_col.append(decision.conditions.get("ScalingLimited", ""))

        # Apply: new pods are created now; a scale-down removes the youngest.
        desired = decision.desired_replicas
        if desired > n:
            created.extend((f"pod-{next(serial)}", now) for _ in range(desired - n))
        elif desired < n:
            del created[desired:]

    frame = _frame(inputs, replicas_col, ready_col, desired_col, config, pods)
    frame["proposal"] = proposal_col
    frame["counted_pods"] = counted_col
    frame["able_to_scale"] = able_col
    frame["scaling_limited"] = limited_col
    return frame


def _counted(
    pod_list: Sequence[ctl.Pod],
    world: ctl.World,
    config: HpaConfig,
    cc: ctl.ControllerConfig,
    now: float,
) -> int:
    if config.metric != "cpu":
        return len(pod_list)
    metrics = ctl.resource_pod_metrics(world.resource_metrics, "cpu") if pod_list else {}
    ready, *_ = ctl.group_pods(
        pod_list, metrics, "cpu", cc.cpu_initialization_period_s, cc.initial_readiness_delay_s, now
    )
    return ready


def _utilization(
    demand: np.ndarray, ready: np.ndarray, pods: PodModel, config: HpaConfig
) -> np.ndarray:
    capacity = ready * pods.capacity_per_replica
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(capacity > 0, demand / capacity, np.where(demand > 0, np.inf, 0.0))


def _frame(
    inputs: _Inputs,
    replicas: np.ndarray,
    ready: np.ndarray,
    desired: np.ndarray,
    config: HpaConfig,
    pods: PodModel,
) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "timestamp": inputs.times,
            "demand": inputs.demand,
            "replicas": replicas.astype(int),
            "ready_replicas": ready.astype(int),
            "desired": desired.astype(int),
            "utilization": _utilization(inputs.demand, ready, pods, config),
        }
    )


@dataclass(frozen=True)
class GridReplay:
    """Replays of many configs over one demand: ``replicas[c, k]`` before decision k.

    ``replicas`` has one more column than there are decisions: its last
    column is the count after the final decision, so ``replicas[:, 1:]`` are
    the decisions. ``ready`` holds the Ready pods at each decision.
    """

    times: pd.DatetimeIndex
    demand: np.ndarray
    replicas: np.ndarray
    ready: np.ndarray
    configs: tuple[HpaConfig, ...]

    def frame(self, index: int, *, pods: PodModel, config: HpaConfig) -> pd.DataFrame:
        """Return config ``index`` as a :func:`replay` frame (without the exact-only columns)."""
        inputs = _Inputs(self.times, np.zeros(0), self.demand, np.zeros(0, dtype=np.int64))
        return _frame(
            inputs,
            self.replicas[index, :-1],
            self.ready[index],
            self.replicas[index, 1:],
            config,
            pods,
        )


def _params(configs: Sequence[HpaConfig]) -> np.ndarray:
    params = np.zeros((len(configs), fast.N_PARAMS), dtype=np.float64)
    for c, config in enumerate(configs):
        row = params[c]
        row[fast.P_MIN], row[fast.P_MAX] = config.min_replicas, config.max_replicas
        row[fast.P_TARGET] = (
            config.target_percent if config.metric == "cpu" else config.target_milli
        )
        row[fast.P_BEHAVIOR] = 1.0 if config.behavior else 0.0
        row[fast.P_UP_WINDOW] = int(config.scale_up_stabilization_s)
        row[fast.P_DOWN_WINDOW] = int(config.scale_down_stabilization_s)
        up_tol, down_tol = config.scale_up_tolerance, config.scale_down_tolerance
        row[fast.P_TOL_UP] = -1.0 if up_tol is None else up_tol
        row[fast.P_TOL_DOWN] = -1.0 if down_tol is None else down_tol
        row[fast.P_UP_SELECT] = _SELECT[config.scale_up_select]
        row[fast.P_DOWN_SELECT] = _SELECT[config.scale_down_select]
        row[fast.P_UP_COUNT] = len(config.scale_up_policies)
        row[fast.P_DOWN_COUNT] = len(config.scale_down_policies)
        row[fast.P_SECOND_TARGET] = config.second_target_milli
        for base, policies in (
            (fast.P_POLICIES, config.scale_up_policies),
            (fast.P_POLICIES + 3 * fast.MAX_POLICIES, config.scale_down_policies),
        ):
            for q, policy in enumerate(policies):
                row[base + 3 * q] = 0 if policy.type == "Pods" else 1
                row[base + 3 * q + 1] = policy.value
                row[base + 3 * q + 2] = policy.period_s
    return params


def replay_grid(
    demand: pd.Series,
    configs: Sequence[HpaConfig],
    *,
    pods: PodModel,
    initial_replicas: int,
    second_demand: pd.Series | None = None,
) -> GridReplay:
    """Return the replays of many configs at once, decision for decision equal to :func:`replay`.

    Every config must share the sync period, metric, tolerance flag and
    (without behavior) the controller's down-scale window, since those are
    controller-wide in one run. Configs with a second metric share its name
    and ``second_demand`` (as in :func:`replay`); configs without one ignore it.
    """
    if not configs:
        raise ParameterError("configs", "give at least one HPA config to replay")
    first = configs[0]
    for config in configs[1:]:
        if (config.sync_period_s, config.metric, config.tolerance) != (
            first.sync_period_s,
            first.metric,
            first.tolerance,
        ):
            raise ParameterError(
                "configs",
                "all candidates of one grid need the same sync period, metric and tolerance flag; "
                f"{config.label()} differs from {first.label()}",
            )
    legacy_windows = {c.scale_down_stabilization_s for c in configs if not c.behavior}
    if len(legacy_windows) > 1:
        raise ParameterError(
            "configs",
            "configs without behavior use the controller's one down-scale window; "
            f"got {sorted(legacy_windows)}: give the others behavior=True",
        )
    names = {c.second_metric_name for c in configs} - {""}
    if len(names) > 1:
        raise ParameterError(
            "configs", f"candidates of one grid share one second metric; got {sorted(names)}"
        )
    inputs = _inputs(demand, first.sync_period_s)
    with_second = next((c for c in configs if c.second_metric_name), first)
    second_m = _second_m(with_second, second_demand, inputs)
    steps = len(inputs.t)
    replicas = np.zeros((len(configs), steps + 1), dtype=np.int32)
    ready = np.zeros((len(configs), steps), dtype=np.int32)
    fast.replay_grid_kernel(
        inputs.t,
        inputs.demand_m,
        np.zeros(steps, dtype=np.int64) if second_m is None else second_m,
        _params(configs),
        fast.KIND_CPU if first.metric == "cpu" else fast.KIND_PODS,
        int(initial_replicas),
        pods.request_m,
        pods.limit_m,
        float(pods.startup_s),
        float(pods.metric_window_s),
        float(pods.cpu_initialization_period_s),
        float(pods.initial_readiness_delay_s),
        float(first.tolerance),
        float(legacy_windows.pop() if legacy_windows else 300.0),
        2.0,
        4.0,
        replicas,
        ready,
    )
    return GridReplay(inputs.times, inputs.demand, replicas, ready, tuple(configs))


# ---------------------------------------------------------------- summaries


@dataclass(frozen=True)
class ReplaySummary:
    """Headline figures of one replay (times in seconds, each decision standing for a period)."""

    #: Pods that existed after each decision x sync period, in hours.
    replica_hours: float
    #: Time the demand was above the Ready pods' capacity at the target.
    time_above_target_s: float
    fraction_above_target: float
    #: From demand first exceeding Ready capacity at the target until it catches up.
    lag_worst_s: float
    lag_p95_s: float
    lag_episodes: int
    #: Intervals where demand exceeded Ready capacity at 100 %.
    risk_windows: int
    risk_time_s: float
    scale_ups: int
    scale_downs: int
    #: Scale events reversing the previous event's direction within ten minutes.
    flaps: int
    peak_replicas: int
    time_at_max_s: float


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Return ``[start, stop)`` index pairs of the True runs of a boolean array."""
    if not len(mask):
        return []
    edges = np.diff(np.concatenate(([0], mask.astype(np.int8), [0])))
    starts = np.flatnonzero(edges == 1)
    stops = np.flatnonzero(edges == -1)
    return list(zip(starts.tolist(), stops.tolist(), strict=True))


def _per_pod_target(config: HpaConfig, pods: PodModel, reference: float | None) -> float:
    if config.metric == "cpu":
        target = config.target_utilization if reference is None else reference
        return pods.capacity_per_replica * target
    return config.target_average_value if reference is None else reference


def _summary(
    demand: np.ndarray,
    before: np.ndarray,
    after: np.ndarray,
    ready: np.ndarray,
    config: HpaConfig,
    pods: PodModel,
    reference: float | None = None,
) -> ReplaySummary:
    step = config.sync_period_s
    per_pod_target = _per_pod_target(config, pods, reference)
    above = demand > ready * per_pod_target
    at_risk = demand > ready * pods.capacity_per_replica

    lags = np.array([(stop - start) * step for start, stop in _runs(above)], dtype=float)
    risks = _runs(at_risk)

    changed = np.flatnonzero(after != before)
    direction = np.sign(after[changed] - before[changed])
    flaps = int(
        np.count_nonzero(
            (direction[1:] != direction[:-1]) & (np.diff(changed) * step <= FLAP_WINDOW_S)
        )
    )
    return ReplaySummary(
        replica_hours=float(after.sum() * step / 3600),
        time_above_target_s=float(np.count_nonzero(above) * step),
        fraction_above_target=float(np.mean(above)) if len(above) else 0.0,
        lag_worst_s=float(lags.max()) if len(lags) else 0.0,
        lag_p95_s=float(np.percentile(lags, 95)) if len(lags) else 0.0,
        lag_episodes=len(lags),
        risk_windows=len(risks),
        risk_time_s=float(sum(stop - start for start, stop in risks) * step),
        scale_ups=int(np.count_nonzero(direction > 0)),
        scale_downs=int(np.count_nonzero(direction < 0)),
        flaps=flaps,
        peak_replicas=int(after.max()) if len(after) else 0,
        time_at_max_s=float(np.count_nonzero(after == config.max_replicas) * step),
    )


def summarize(
    replay_frame: pd.DataFrame,
    *,
    config: HpaConfig,
    pods: PodModel,
    reference_target: float | None = None,
) -> ReplaySummary:
    """Return the headline figures of a :func:`replay` frame.

    Parameters
    ----------
    replay_frame
        The output of :func:`replay`.
    config
        The config it was replayed with.
    pods
        The pod model it was replayed with.
    reference_target
        The target that "above target" and lag are measured against: a
        utilization fraction for CPU, a per-pod value for a Pods metric.
        None means the config's own target. Comparing candidates against one
        reference (the current HPA's target) makes their risk comparable.
    """
    return _summary(
        replay_frame["demand"].to_numpy(dtype=float),
        replay_frame["replicas"].to_numpy(dtype=int),
        replay_frame["desired"].to_numpy(dtype=int),
        replay_frame["ready_replicas"].to_numpy(dtype=int),
        config,
        pods,
        reference_target,
    )


def summarize_grid(
    result: GridReplay, *, pods: PodModel, reference_target: float | None = None
) -> list[ReplaySummary]:
    """Return the summary of every config of a :func:`replay_grid` result, in order.

    ``reference_target`` is as in :func:`summarize`.
    """
    return [
        _summary(
            result.demand,
            result.replicas[c, :-1],
            result.replicas[c, 1:],
            result.ready[c],
            config,
            pods,
            reference_target,
        )
        for c, config in enumerate(result.configs)
    ]


def risk_windows(replay_frame: pd.DataFrame, *, pods: PodModel) -> pd.DataFrame:
    """Return the intervals where demand exceeded Ready capacity at 100 %.

    Columns: ``start``, ``end`` (the first decision after it), ``duration_s``,
    ``peak_shortfall`` (demand minus Ready capacity at its worst, in the
    demand's unit).
    """
    demand = replay_frame["demand"].to_numpy(dtype=float)
    capacity = replay_frame["ready_replicas"].to_numpy(dtype=float) * pods.capacity_per_replica
    times = pd.DatetimeIndex(replay_frame["timestamp"])
    step = (times[1] - times[0]) if len(times) > 1 else pd.Timedelta(0)
    rows = []
    for start, stop in _runs(demand > capacity):
        end = times[stop] if stop < len(times) else times[-1] + step
        rows.append(
            {
                "start": times[start],
                "end": end,
                "duration_s": (end - times[start]).total_seconds(),
                "peak_shortfall": float((demand[start:stop] - capacity[start:stop]).max()),
            }
        )
    return pd.DataFrame(rows, columns=["start", "end", "duration_s", "peak_shortfall"])


def compare(a: ReplaySummary, b: ReplaySummary) -> pd.DataFrame:
    """Return a table of both summaries, indexed by figure, with ``delta`` = b - a.

    Columns ``a``, ``b``, ``delta`` and ``better`` (``"a"``, ``"b"`` or ``"="``;
    lower is better for every figure: cost, risk and churn).
    """
    table = pd.DataFrame({"a": asdict(a), "b": asdict(b)}, dtype=float)
    table["delta"] = table["b"] - table["a"]
    table["better"] = np.where(table["delta"] < 0, "b", np.where(table["delta"] > 0, "a", "="))
    table.index.name = "figure"
    return table


def scale_events(replicas: pd.Series) -> pd.DataFrame:
    """Return each change of a replica-count series: ``time``, ``from``, ``to``, ``direction``.

    The series is typically ``hpa_desired_replicas`` or ``deployment_replicas``
    from kube-state-metrics; missing samples are skipped, not read as zero.
    """
    values = replicas.dropna().sort_index()
    previous = values.shift(1)
    changed = values[(previous.notna()) & (values != previous)]
    return pd.DataFrame(
        {
            "time": changed.index,
            "from": previous[changed.index].astype(int).to_numpy(),
            "to": changed.astype(int).to_numpy(),
            "direction": np.where(
                changed.to_numpy() > previous[changed.index].to_numpy(), "up", "down"
            ),
        }
    )


# ---------------------------------------------------------------- search


def grid(
    base: HpaConfig,
    *,
    targets: Iterable[float] = (),
    min_replicas: Iterable[int] = (),
    max_replicas: Iterable[int] = (),
    scale_down_windows_s: Iterable[float] = (),
    scale_up_windows_s: Iterable[float] = (),
    scale_up_policies: Iterable[tuple[Policy, ...]] = (),
) -> list[HpaConfig]:
    """Return every combination of the given settings over ``base`` (empty = base's value).

    Candidates get ``behavior`` set, since a patch that changes windows or
    policies writes them there; combinations with min above max are left out.
    """
    axes: list[list[Any]] = [
        list(targets) or [base.target_utilization],
        list(min_replicas) or [base.min_replicas],
        list(max_replicas) or [base.max_replicas],
        list(scale_down_windows_s) or [base.scale_down_stabilization_s],
        list(scale_up_windows_s) or [base.scale_up_stabilization_s],
        list(scale_up_policies) or [base.scale_up_policies],
    ]
    out = []
    for target, low, high, down, up, policies in itertools.product(*axes):
        if low > high:
            continue
        out.append(
            replace(
                base,
                target_utilization=target,
                min_replicas=low,
                max_replicas=high,
                scale_down_stabilization_s=down,
                scale_up_stabilization_s=up,
                scale_up_policies=policies,
                behavior=True,
            )
        )
    return out


def search(
    demand: pd.Series,
    configs: Sequence[HpaConfig],
    *,
    pods: PodModel,
    initial_replicas: int,
    reference_target: float | None = None,
    second_demand: pd.Series | None = None,
) -> pd.DataFrame:
    """Return one row per candidate: its settings, its :class:`ReplaySummary` and ``pareto``.

    ``pareto`` marks the candidates no other beats on replica-hours, time
    above target and worst lag at once (see :func:`pareto_front`). Time above
    target and lag are measured against ``reference_target`` (as in
    :func:`summarize`; pass the current HPA's target to compare candidates).
    ``second_demand`` is the second metric's total, as in :func:`replay`.
    """
    result = replay_grid(
        demand, configs, pods=pods, initial_replicas=initial_replicas, second_demand=second_demand
    )
    summaries = summarize_grid(result, pods=pods, reference_target=reference_target)
    rows = []
    for config, summary in zip(configs, summaries, strict=True):
        rows.append(
            {
                "candidate": config.label(),
                "target_utilization": config.target_utilization,
                "min_replicas": config.min_replicas,
                "max_replicas": config.max_replicas,
                "scale_up_stabilization_s": config.scale_up_stabilization_s,
                "scale_down_stabilization_s": config.scale_down_stabilization_s,
                "behavior": config.behavior,
                **asdict(summary),
            }
        )
    table = pd.DataFrame(rows)
    table["pareto"] = pareto_front(table)
    return table


def pareto_front(
    table: pd.DataFrame,
    *,
    cost: str = "replica_hours",
    risks: Sequence[str] = ("time_above_target_s", "lag_worst_s"),
) -> np.ndarray:
    """Return a mask of the rows no other row dominates (no worse everywhere, better somewhere)."""
    values = table[[cost, *risks]].to_numpy(dtype=float)
    keep = np.ones(len(values), dtype=bool)
    for i, row in enumerate(values):
        no_worse = np.all(values <= row, axis=1)
        better = np.any(values < row, axis=1)
        if np.any(no_worse & better):
            keep[i] = False
    return keep


@dataclass(frozen=True)
class Recommendation:
    """The chosen candidate, and why each cheaper one was not chosen."""

    config: HpaConfig | None
    row: dict[str, Any]
    rejected: pd.DataFrame
    max_time_above_target: float
    max_lag_s: float
    notes: list[str] = field(default_factory=list)

    def markdown(self) -> str:
        """Return the recommendation as Markdown: the choice, its trade-off, the rejections."""
        if self.config is None:
            return (
                f"**No candidate keeps the time above target within "
                f"{self.max_time_above_target:.1%} and the worst lag within "
                f"{self.max_lag_s:.0f} s**; widen the grid (lower targets, higher minReplicas) "
                "or relax the limits."
            )
        r = self.row
        lines = [
            f"**Recommended: {r['candidate']}**: {r['replica_hours']:,.0f} replica-hours, "
            f"{r['fraction_above_target']:.2%} of the time above target, worst lag "
            f"{r['lag_worst_s']:.0f} s (p95 {r['lag_p95_s']:.0f} s), {r['flaps']} flaps, "
            f"{r['risk_windows']} risk windows ({r['risk_time_s']:.0f} s above 100 %).",
        ]
        if len(self.rejected):
            lines.append("")
            lines.append(
                f"{len(self.rejected)} cheaper candidates were rejected; the cheapest of them:"
            )
            for _, row in self.rejected.head(5).iterrows():
                lines.append(
                    f"- {row['candidate']} ({row['replica_hours']:,.0f} replica-hours): "
                    f"{row['reason']}"
                )
        return "\n".join(lines)


def recommend(
    table: pd.DataFrame,
    configs: Sequence[HpaConfig],
    *,
    max_time_above_target: float = 0.05,
    max_lag_s: float = 600.0,
) -> Recommendation:
    """Return the candidate with the fewest replica-hours among those within both limits.

    Parameters
    ----------
    table
        The output of :func:`search`, rows in the order of ``configs``.
    configs
        The candidates searched.
    max_time_above_target
        Largest acceptable fraction of the time with demand above the Ready
        pods' capacity at the target (default 5 %).
    max_lag_s
        Largest acceptable worst lag in seconds (default 600 s).
    """
    if len(table) != len(configs):
        raise ParameterError("configs", f"{len(configs)} configs for {len(table)} table rows")
    ok = (table["fraction_above_target"] <= max_time_above_target) & (
        table["lag_worst_s"] <= max_lag_s
    )
    order = table.sort_values(
        ["replica_hours", "time_above_target_s", "lag_worst_s"], kind="stable"
    )
    chosen = next((i for i in order.index if ok[i]), None)
    if chosen is None:
        empty = table.iloc[0:0].assign(reason=pd.Series(dtype=str))
        return Recommendation(None, {}, empty, max_time_above_target, max_lag_s)
    cheaper = order[order["replica_hours"] < table.loc[chosen, "replica_hours"]].copy()
    cheaper["reason"] = [
        _rejection(row, max_time_above_target, max_lag_s) for _, row in cheaper.iterrows()
    ]
    position = int(np.flatnonzero(table.index == chosen)[0])
    return Recommendation(
        configs[position],
        table.loc[chosen].to_dict(),
        cheaper,
        max_time_above_target,
        max_lag_s,
    )


def _rejection(row: pd.Series, max_above: float, max_lag: float) -> str:
    reasons = []
    if row["fraction_above_target"] > max_above:
        reasons.append(
            f"{row['fraction_above_target']:.2%} of the time above target (limit {max_above:.1%})"
        )
    if row["lag_worst_s"] > max_lag:
        reasons.append(f"worst lag {row['lag_worst_s']:.0f} s (limit {max_lag:.0f} s)")
    return "; ".join(reasons)


def trade_off(current: ReplaySummary, choice: Recommendation) -> str:
    """Return one sentence: what the recommendation costs or saves against the current config."""
    if choice.config is None:
        return "The current config stays: no candidate met both limits."
    hours = float(choice.row["replica_hours"]) - current.replica_hours
    share = hours / current.replica_hours if current.replica_hours else 0.0
    verb = "costs" if hours > 0 else "saves"
    return (
        f"Against the current config it {verb} {abs(hours):,.0f} replica-hours "
        f"({abs(share):.1%}) and moves the time above target from "
        f"{current.fraction_above_target:.1%} to {choice.row['fraction_above_target']:.1%} and "
        f"the worst lag from {current.lag_worst_s:,.0f} s to {choice.row['lag_worst_s']:,.0f} s."
    )


def manifest_patch(config: HpaConfig, *, name: str, namespace: str) -> dict[str, Any]:
    """Return a merge patch for the HPA that sets this config (``kubectl patch --type merge``)."""
    if config.metric == "cpu":
        metric: dict[str, Any] = {
            "type": "Resource",
            "resource": {
                "name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": config.target_percent},
            },
        }
    else:
        metric = {
            "type": "Pods",
            "pods": {
                "metric": {"name": config.metric_name},
                "target": {"type": "AverageValue", "averageValue": f"{config.target_milli}m"},
            },
        }
    spec: dict[str, Any] = {
        "minReplicas": config.min_replicas,
        "maxReplicas": config.max_replicas,
        "metrics": [metric],
    }
    if config.behavior:
        spec["behavior"] = {
            "scaleUp": _rules_patch(
                config.scale_up_stabilization_s,
                config.scale_up_select,
                config.scale_up_policies,
                config.scale_up_tolerance,
            ),
            "scaleDown": _rules_patch(
                config.scale_down_stabilization_s,
                config.scale_down_select,
                config.scale_down_policies,
                config.scale_down_tolerance,
            ),
        }
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def _rules_patch(
    window_s: float, select: str, policies: Sequence[Policy], tolerance: float | None
) -> dict[str, Any]:
    rules: dict[str, Any] = {
        "stabilizationWindowSeconds": int(window_s),
        "selectPolicy": select,
        "policies": [
            {"type": p.type, "value": p.value, "periodSeconds": p.period_s} for p in policies
        ],
    }
    if tolerance is not None:
        rules["tolerance"] = str(tolerance)
    return rules


# ---------------------------------------------------------------- against another model

#: The exact controller's rules that the attribution replaces, one after another and in
#: this order, by the simpler model's version (the demo scenario's controller):
#: ``tolerance`` (the band test ``|r - 1| <= t`` instead of the inclusive float64 band),
#: ``integer_utilization`` (the fractional utilization instead of the truncated integer
#: percent), ``cpu_initialization`` (every Ready pod counted, also one Ready for less than
#: a metric window inside the 5 min initialization period), ``ready_pods`` (the ratio
#: times all replicas with unready pods left out, instead of times the pods counted with
#: unready pods at 0 on scale-up), ``first_reconcile`` (no recommendation seeded by the
#: first reconcile), ``stabilization`` (scale up at once; scale down to the highest clamped
#: proposal of the window, instead of the highest raw recommendation in both directions or
#: the behavior windows), ``scale_up_limit`` (no legacy max(2 x current, 4) limit and no
#: behavior policies), ``sync_period`` (the decision at the other model's step instead of
#: the one made in between, 15 s later). The metric rules come first, in the order the
#: controller applies them; ``cpu_initialization`` precedes ``ready_pods`` because, with
#: Ready pods sharing the load equally, it only changes which pods count as unready,
#: which the ``ready_pods`` replacement would absorb. Clamping to min/max is not a rule
#: here: it commutes with the max/min of stabilization and the limits (every stored value
#: and the current count lie within min..max), so clamping before or after gives the same.
RULES: tuple[str, ...] = (
    "tolerance",
    "integer_utilization",
    "cpu_initialization",
    "ready_pods",
    "first_reconcile",
    "stabilization",
    "scale_up_limit",
    "sync_period",
)
#: Causes left when no rule explains a difference: the two models were already in
#: different states (replicas before the decision); or they read a different metric (a
#: trailing rate against the instantaneous value); or they had the same replicas but a
#: different number of Ready pods (start-up times, rollouts, restarts); or none of these.
STATE_CAUSES: tuple[str, ...] = ("downstream", "metric", "pod_model", "other")

#: One sentence per cause: what the exact controller does there.
CAUSE_TEXT: dict[str, str] = {
    "tolerance": (
        "tolerance band: upstream tests (1 - t) <= ratio <= (1 + t) in float64, both ends "
        "inclusive; |ratio - 1| <= t rounds 1.1 - 1 to just above 0.1 and scales"
    ),
    "integer_utilization": (
        "integer utilization: upstream truncates 100 x usage / request to a whole percent "
        "before taking the ratio to the target"
    ),
    "ready_pods": (
        "proposal over the pods counted: upstream multiplies the ratio by the pods whose "
        "metric it used (and counts unready pods as 0 when scaling up), not by all replicas"
    ),
    "cpu_initialization": (
        "CPU initialization period: a pod younger than 5 min is left out until its sample "
        "covers a full metric window since it became Ready"
    ),
    "first_reconcile": (
        "first-reconcile recommendation: the controller's first reconcile stores the "
        "current count, so nothing scales down for one stabilization window"
    ),
    "stabilization": (
        "stabilization: without behavior the highest raw recommendation of the last 300 s "
        "wins in both directions (with behavior: the scale-up and scale-down windows)"
    ),
    "scale_up_limit": (
        "scale-up limit: without behavior one reconcile grows to at most max(2 x current, "
        "4) replicas (with behavior: the Pods and Percent policies)"
    ),
    "sync_period": (
        "sync period: the exact controller reconciles every 15 s and decided again between "
        "two of the other model's steps"
    ),
    "downstream": (
        "downstream of an earlier difference: the two models started this decision from "
        "different replica counts"
    ),
    "metric": (
        "the metric read: the other model decided on its own CPU reading, not on the "
        "queried demand (for a rate, a trailing average); the naive rules give its count on "
        "a demand within three standard deviations of the reading's noise of the queried one"
    ),
    "pod_model": (
        "pod model: same replicas but a different number of Ready pods (start-up time, "
        "rollout surge pods, restarts)"
    ),
    "other": "unexplained: no rule and no difference of state accounts for it",
}


@dataclass(frozen=True)
class _Snapshot:
    """What the exact controller knew before one decision (all it needs to decide again)."""

    now: float
    replicas: int
    born: tuple[float, ...]
    demand_m: int
    history: ctl.History
    naive_recs: tuple[tuple[float, int], ...]


@dataclass(frozen=True)
class _Context:
    config: HpaConfig
    pods: PodModel
    spec: ctl.HpaSpec
    cc: ctl.ControllerConfig
    tol: ctl.Tolerances
    first_t: float
    window_s: float


def _copy_history(history: ctl.History) -> ctl.History:
    recs = history.recommendations
    return ctl.History(
        None if recs is None else list(recs),
        [replace(e) for e in history.scale_up_events],
        [replace(e) for e in history.scale_down_events],
    )


def _proposal(s: _Snapshot, naive: frozenset[str], x: _Context) -> int | None:
    """Return the metric's proposal as upstream computes it, some rules made naive; None: fails."""
    pods, n = x.pods, s.replicas
    serving = [s.now >= born + pods.startup_s for born in s.born]
    n_serving = sum(serving)
    share = s.demand_m // n_serving if n_serving else 0
    if pods.limit_m and share > pods.limit_m:
        share = pods.limit_m
    counted_usage: list[int] = []
    for born, ok in zip(s.born, serving, strict=True):
        young = born + pods.cpu_initialization_period_s > s.now
        if "cpu_initialization" in naive:
            unready = not ok
        elif young:
            unready = (not ok) or s.now < born + pods.startup_s + pods.metric_window_s
        else:
            unready = (not ok) and born + pods.initial_readiness_delay_s > born
        if not unready:
            counted_usage.append(share if ok else 0)
    counted = len(counted_usage)
    if counted == 0:
        return None
    request_m, target = pods.request_m, x.config.target_percent

    def ratio_of(total_m: int, pod_count: int) -> float:
        if "integer_utilization" in naive:
            return (total_m / (pod_count * request_m)) / (target / 100)
        return ((total_m * 100) // (pod_count * request_m)) / target

    def within(ratio: float) -> bool:
        if "tolerance" in naive:
            return abs(ratio - 1) <= (x.tol.scale_up if ratio > 1 else x.tol.scale_down)
        return x.tol.is_within(ratio)

    ratio = ratio_of(sum(counted_usage), counted)
    if "ready_pods" in naive:
        return n if within(ratio) else ctl._int32(math.ceil(ratio * n))
    if not (counted < n and ratio > 1.0):
        return n if within(ratio) else ctl._int32(math.ceil(ratio * counted))
    new_ratio = ratio_of(sum(counted_usage), n)  # unready pods at 0
    flipped = ratio > 1.0 > new_ratio
    if within(new_ratio) or flipped:
        return n
    return max(n, ctl._int32(math.ceil(new_ratio * n)))


def _decide(
    s: _Snapshot, naive: frozenset[str], x: _Context, history: ctl.History
) -> tuple[int, int | None]:
    """Return ``(desired, raw proposal)``, updating ``history`` as :func:`ctl.reconcile` does."""
    n, now, spec = s.replicas, s.now, x.spec
    low, high = x.config.min_replicas, x.config.max_replicas
    if history.recommendations is None:
        history.recommendations = [ctl.Recommendation(n, now)]
    if n == 0:
        return 0, None
    proposal: int | None = None
    if n > high:
        desired = high
    elif n < low:
        desired = low
    else:
        proposal = _proposal(s, naive, x)
        if proposal is None:
            return n, None
        raw = max(0, proposal)
        recs = history.recommendations
        if "first_reconcile" in naive and recs and recs[0].timestamp_s == x.first_t:
            recs = recs[1:]
        if "stabilization" in naive:
            recent = [r for t, r in s.naive_recs if t > now - x.window_s]
            highest = max([*recent, min(max(raw, low), high)])
            stabilized = raw if raw > n else min(n, highest)
        elif spec.behavior is None:
            stabilized = ctl.stabilize_legacy(recs, raw, x.window_s, now)
        else:
            stabilized, _ = ctl.stabilize_behavior(
                recs, n, raw, int(x.config.scale_up_stabilization_s), x.window_s, now
            )
        if "scale_up_limit" in naive:
            desired = min(max(stabilized, low), high)
        elif spec.behavior is None:
            desired, _ = ctl.rate_limit_legacy(
                n,
                stabilized,
                low,
                high,
                x.cc.scale_up_limit_factor,
                x.cc.scale_up_limit_minimum,
            )
        else:
            desired, _ = ctl.rate_limit_behavior(
                n,
                stabilized,
                low,
                high,
                spec.behavior.scale_up,
                spec.behavior.scale_down,
                history.scale_up_events,
                history.scale_down_events,
                now,
            )
    if desired != n:
        ctl.store_scale_event(spec.behavior, history, n, desired, now)
    return desired, proposal


def _attribution_replay(
    inputs: _Inputs, x: _Context, initial_replicas: int
) -> tuple[list[_Snapshot], np.ndarray]:
    """Return the exact replay's snapshot before every decision, and the decisions."""
    born: list[float] = [float(inputs.t[0]) - 1e9] * initial_replicas
    history = ctl.History()
    naive_recs: list[tuple[float, int]] = []
    snapshots: list[_Snapshot] = []
    desired_col = np.zeros(len(inputs.t), dtype=int)
    low, high = x.config.min_replicas, x.config.max_replicas
    for k, now in enumerate(inputs.t.tolist()):
        naive_recs = [(t, r) for t, r in naive_recs if t > now - x.window_s]
        snap = _Snapshot(
            now,
            len(born),
            tuple(born),
            int(inputs.demand_m[k]),
            _copy_history(history),
            tuple(naive_recs),
        )
        snapshots.append(snap)
        desired, proposal = _decide(snap, frozenset(), x, history)
        if proposal is not None:
            naive_recs.append((now, min(max(proposal, low), high)))
        desired_col[k] = desired
        if desired > len(born):
            born.extend([now] * (desired - len(born)))
        elif desired < len(born):
            del born[desired:]
    return snapshots, desired_col


def compare_decisions(exact: pd.DataFrame, other: pd.Series) -> pd.DataFrame:
    """Return, at each sample of ``other``, both models' desired replicas and their difference.

    ``other`` is another model's desired replicas (the demo scenario's own
    controller, or ``kube_horizontalpodautoscaler_status_desired_replicas``).
    A sample at ``T`` shows a decision written before ``T``, so the exact
    decision compared with it is the last one strictly before ``T``. Columns:
    ``time``, ``other``, ``exact``, ``difference`` (exact minus other).
    """
    values = other.dropna().sort_index()
    decisions = exact.set_index("timestamp")
    position = decisions.index.searchsorted(values.index, side="left") - 1
    valid = position >= 0
    picked = decisions.iloc[position[valid]]
    table = pd.DataFrame(
        {
            "time": values.index[valid],
            "other": values.to_numpy()[valid].astype(int),
            "exact": picked["desired"].to_numpy(dtype=int),
        }
    )
    table["difference"] = table["exact"] - table["other"]
    return table


def attribute_decisions(
    demand: pd.Series,
    other: pd.Series,
    *,
    config: HpaConfig,
    pods: PodModel,
    initial_replicas: int,
    other_ready: pd.Series | None = None,
    demand_window_s: float = 0.0,
) -> pd.DataFrame:
    """Return :func:`compare_decisions` of the exact replay, each difference with its cause.

    For each sample where the exact replay's decision differs from
    ``other``'s, the exact decision is made again from the exact controller's
    own state, with the rules of :data:`RULES` replaced one after another (in
    that order, each staying replaced) by the simpler model's version. The
    cause is the first rule whose replacement makes the decision equal
    ``other``'s. When none does, in this order: ``downstream`` if the two
    models had different replicas before the decision (``other``'s previous
    sample); ``metric`` if, with every rule replaced, a demand within three
    standard deviations of the demand's own noise (the median relative change
    between samples, scaled up for a trailing rate), or one sampled up to half
    the rate's window later, gives ``other``'s count; ``pod_model`` if
    ``other_ready`` shows a different number of Ready pods; else ``other``.
    A downstream difference also names, in ``origin``, the cause of the first
    difference of its run. The rules are tried from the decision the exact
    controller made between ``other``'s steps, except ``sync_period`` and
    after, which use its decision at ``other``'s previous step.

    Parameters
    ----------
    demand
        The demand the exact replay sees (CPU cores), as for :func:`replay`.
    other
        The other model's desired replicas, sampled at its own step.
    config
        The HPA config both models run (a CPU Utilization target).
    pods
        The exact replay's pod model.
    initial_replicas
        Pods running at the first decision.
    other_ready
        The other model's Ready (available) replicas at its samples, if known.
    demand_window_s
        The range of the rate that ``demand`` was queried with (300 s for
        ``container_cpu_cores``), 0 for an instantaneous demand. A trailing
        average over W lags a steady trend by W/2 and hides peaks that the
        other model, reading the instantaneous value, reacted to.

    Returns
    -------
    pandas.DataFrame
        The columns of :func:`compare_decisions` plus ``cause`` (empty where
        both agree), ``origin``, ``demand`` (the sample the exact decision saw),
        ``utilization`` (the exact controller's integer percent over the pods
        it counted, NaN when none), ``ready`` (the exact replay's Ready pods),
        ``other_before`` (``other``'s previous sample) and ``redecided`` (the
        count the exact controller gives with the cause's rule replaced).
    """
    if config.metric != "cpu" or config.second_metric_name:
        raise ParameterError(
            "config",
            f"attribution models one CPU Utilization target; {config.label()} is not that",
        )
    inputs = _inputs(demand, config.sync_period_s)
    spec = config.controller_spec()
    cc = _controller_config(config, pods)
    gates = ctl.FeatureGates(configurable_tolerance=True)
    window = (
        float(int(config.scale_down_stabilization_s))
        if config.behavior
        else cc.downscale_stabilization_window_s
    )
    x = _Context(
        config, pods, spec, cc, ctl.tolerances_for(spec, cc, gates), float(inputs.t[0]), window
    )
    snapshots, desired = _attribution_replay(inputs, x, initial_replicas)
    exact = pd.DataFrame({"timestamp": inputs.times, "desired": desired})
    table = compare_decisions(exact, other)
    step_s = _median_step_s(pd.DatetimeIndex(other.dropna().sort_index().index))
    times = inputs.times
    lead_steps = int(demand_window_s / 2 // config.sync_period_s)
    noise = _metric_spread(demand, demand_window_s)
    ready_values = None if other_ready is None else other_ready.dropna().sort_index()

    n = len(table)
    cause = [""] * n
    redecided = np.full(n, -1, dtype=int)
    before = np.full(n, -1, dtype=int)
    demand_col = np.full(n, np.nan)
    util_col = np.full(n, np.nan)
    ready_col = np.full(n, -1, dtype=int)
    position = times.searchsorted(table["time"], side="left") - 1
    aligned = times.searchsorted(table["time"] - pd.Timedelta(seconds=step_s), side="right") - 1
    previous = np.concatenate(([-1], table["other"].to_numpy()[:-1]))
    for i, (j, j_sync, target, prev, t) in enumerate(
        zip(position, aligned, table["other"], previous, table["time"], strict=True)
    ):
        snap = snapshots[j]
        demand_col[i] = snap.demand_m / 1000
        ready_col[i] = sum(snap.now >= b + pods.startup_s for b in snap.born)
        util_col[i] = _counted_utilization(snap, x)
        before[i] = prev
        if table["difference"].iat[i] == 0:
            continue
        naive: set[str] = set()
        for rule in RULES:
            naive.add(rule)
            use = snapshots[j_sync] if "sync_period" in naive and j_sync >= 0 else snap
            value, _ = _decide(use, frozenset(naive), x, _copy_history(use.history))
            if value == target:
                cause[i], redecided[i] = rule, value
                break
        else:
            use = snapshots[j_sync] if j_sync >= 0 else snap
            if prev >= 0 and use.replicas != prev:
                cause[i] = "downstream"
            elif _metric_agrees(
                snapshots, inputs, int(j_sync if j_sync >= 0 else j), lead_steps, noise, target, x
            ):
                cause[i] = "metric"
            elif ready_values is not None and _other_ready_differs(
                ready_values, t - pd.Timedelta(seconds=step_s), use, pods
            ):
                cause[i] = "pod_model"
            else:
                cause[i] = "other"
    table["cause"] = cause
    table["origin"] = _origins(cause)
    table["demand"] = demand_col
    table["utilization"] = util_col
    table["ready"] = ready_col
    table["other_before"] = before
    table["redecided"] = redecided
    return table


def _median_step_s(index: pd.DatetimeIndex) -> float:
    """Return the median spacing of a time index in seconds (0 for fewer than two times)."""
    if len(index) < 2:
        return 0.0
    return float(np.median(np.diff(_unix_s(index))))


def _metric_spread(demand: pd.Series, window_s: float) -> float:
    """Return the relative spread (one standard deviation) of a reading around a sample.

    The median relative change between consecutive samples: for independent
    Gaussian noise of deviation s, the median absolute difference of two
    samples is 0.95 s. For a demand that is a trailing average over
    ``window_s`` of samples ``step`` apart, times ``window_s / step``: the
    instantaneous value at t differs from the one a window earlier by
    ``window_s / step`` times the average's change over one step.
    """
    values = demand.dropna().sort_index()
    raw = values.to_numpy(dtype=float)
    before, after = raw[:-1], raw[1:]
    keep = before > 0
    if not keep.any():
        return 0.0
    change = float(np.median(np.abs(after[keep] - before[keep]) / before[keep]))
    step_s = _median_step_s(pd.DatetimeIndex(values.index))
    return change * max(1.0, window_s / step_s) if step_s > 0 else change


def _metric_agrees(
    snapshots: Sequence[_Snapshot],
    inputs: _Inputs,
    j: int,
    lead_steps: int,
    noise: float,
    target: int,
    x: _Context,
) -> bool:
    """Return whether the naive rules give ``target`` on a slightly different metric.

    Tried: the demand scaled by up to three times ``noise`` (the reading's
    spread, see :func:`_metric_spread`) either way, and the demand sampled up
    to ``lead_steps`` decisions later; then the readings of the whole
    stabilization window scaled alike, so that the other model's window held
    the recommendations those readings give (a short rate's noise reaches the
    highest recommendation of the window, not only the current reading).
    """
    naive = frozenset(RULES)
    snap = snapshots[j]
    factors = [1 + 3 * noise * f / 24 for f in range(-24, 25) if f]
    trials = [round(snap.demand_m * factor) for factor in factors]
    trials += [
        int(inputs.demand_m[later])
        for later in range(j + 1, min(j + lead_steps, len(snapshots) - 1) + 1)
    ]
    for demand_m in trials:
        moved = replace(snap, demand_m=int(demand_m))
        value, _ = _decide(moved, naive, x, _copy_history(snap.history))
        if value == target:
            return True
    earlier = [e for e in snapshots[max(0, j - 200) : j] if e.now > snap.now - x.window_s]
    if not earlier:
        return False
    low, high = x.config.min_replicas, x.config.max_replicas
    for factor in factors:
        recs = []
        for e in earlier:
            proposal = _proposal(replace(e, demand_m=round(e.demand_m * factor)), naive, x)
            if proposal is not None:
                recs.append((e.now, min(max(proposal, low), high)))
        moved = replace(snap, demand_m=round(snap.demand_m * factor), naive_recs=tuple(recs))
        value, _ = _decide(moved, naive, x, _copy_history(snap.history))
        if value == target:
            return True
    return False


def _counted_utilization(s: _Snapshot, x: _Context) -> float:
    """Return the exact controller's integer utilization (percent) over the pods it counts."""
    pods = x.pods
    serving = [s.now >= b + pods.startup_s for b in s.born]
    if not any(serving):
        return math.nan
    share = s.demand_m // sum(serving)
    if pods.limit_m:
        share = min(share, pods.limit_m)
    return float((share * 100) // pods.request_m)


def _other_ready_differs(ready: pd.Series, at: pd.Timestamp, s: _Snapshot, pods: PodModel) -> bool:
    k = int(ready.index.searchsorted(at, side="right")) - 1
    if k < 0:
        return False
    exact_ready = sum(s.now >= b + pods.startup_s for b in s.born)
    return int(ready.to_numpy(dtype=float)[k]) != exact_ready


def _origins(causes: Sequence[str]) -> list[str]:
    """Return, for each downstream difference, the first cause of its run of differences."""
    out: list[str] = []
    current = ""
    for cause in causes:
        if not cause:
            current = ""
            out.append("")
        elif cause == "downstream":
            out.append(current or "downstream")
        else:
            current = cause
            out.append(cause)
    return out


def explain_differences(table: pd.DataFrame) -> pd.DataFrame:
    """Return the differences of :func:`attribute_decisions` by cause, with an example of each.

    One row per cause present, in the order of :data:`RULES` then
    :data:`STATE_CAUSES`; ``downstream`` has one row per ``origin`` (the cause
    of the difference that started its run). Columns: ``cause``, ``origin``,
    ``samples``, ``share`` (of all samples compared, which is also the share of
    the compared time), ``time_s`` (samples times the other model's step),
    ``exact_lower``/``exact_higher``, ``why``, and the first such decision as
    the example: ``example_time``, ``example_demand`` (the demand's unit),
    ``example_utilization`` (percent), ``example_exact``, ``example_other`` and
    ``example_redecided`` (-1 where no rule was replaced).
    """
    differing = table[table["difference"] != 0]
    total = len(table)
    step_s = _median_step_s(pd.DatetimeIndex(table["time"]))
    order = (*RULES, *STATE_CAUSES)
    rows = []
    for cause in order:
        for origin in order if cause == "downstream" else (cause,):
            group = differing[(differing["cause"] == cause) & (differing["origin"] == origin)]
            if group.empty:
                continue
            first = group.iloc[0]
            rows.append(
                {
                    "cause": cause,
                    "origin": origin,
                    "samples": len(group),
                    "share": len(group) / total if total else 0.0,
                    "time_s": len(group) * step_s,
                    "exact_lower": int((group["difference"] < 0).sum()),
                    "exact_higher": int((group["difference"] > 0).sum()),
                    "why": CAUSE_TEXT[cause],
                    "example_time": first["time"],
                    "example_demand": float(first["demand"]),
                    "example_utilization": float(first["utilization"]),
                    "example_exact": int(first["exact"]),
                    "example_other": int(first["other"]),
                    "example_redecided": int(first["redecided"]),
                }
            )
    columns = [
        "cause", "origin", "samples", "share", "time_s", "exact_lower", "exact_higher", "why",
        "example_time", "example_demand", "example_utilization", "example_exact",
        "example_other", "example_redecided",
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=columns)


def cause_counts(table: pd.DataFrame) -> dict[str, int]:
    """Return the number of differing samples per cause of :func:`attribute_decisions`."""
    differing = table[table["difference"] != 0]
    return {cause: int((differing["cause"] == cause).sum()) for cause in (*RULES, *STATE_CAUSES)}


def headline(
    current: ReplaySummary,
    candidate: ReplaySummary,
    observed: pd.DataFrame,
    *,
    current_config: HpaConfig,
    candidate_config: HpaConfig,
) -> str:
    """Return the tuning headline as Markdown: what happened, and current vs candidate."""
    ups = int((observed["direction"] == "up").sum()) if len(observed) else 0
    downs = len(observed) - ups
    hours_delta = candidate.replica_hours - current.replica_hours
    above_delta = candidate.fraction_above_target - current.fraction_above_target
    lines = [
        f"**Observed: {ups} scale-ups and {downs} scale-downs. Replayed with the exact "
        f"controller and the current config ({current_config.label()}): "
        f"{current.replica_hours:,.0f} replica-hours, {current.fraction_above_target:.1%} of "
        f"the time above target, worst lag {current.lag_worst_s:.0f} s, peak "
        f"{current.peak_replicas} replicas.**",
        "",
        f"- Candidate ({candidate_config.label()}): {candidate.replica_hours:,.0f} replica-hours "
        f"({hours_delta:+,.0f}), {candidate.fraction_above_target:.1%} above target "
        f"({above_delta:+.1%}), worst lag {candidate.lag_worst_s:.0f} s, "
        f"{candidate.flaps} flaps against {current.flaps}, peak {candidate.peak_replicas}.",
    ]
    return "\n".join(lines)
