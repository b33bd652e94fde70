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
    "DEFAULT_SCALE_DOWN_POLICIES",
    "DEFAULT_SCALE_UP_POLICIES",
    "FLAP_WINDOW_S",
    "GridReplay",
    "HpaConfig",
    "PodModel",
    "Policy",
    "Recommendation",
    "ReplaySummary",
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
    metric's own unit. ``behavior`` False means ``spec.behavior`` is unset:
    the legacy path, where ``scale_down_stabilization_s`` is the controller's
    flag (300 s) and scale-up is limited to max(2 x current, 4) per reconcile.
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

    @classmethod
    def from_object(cls, hpa: dict[str, Any]) -> HpaConfig:
        """Return the config of an autoscaling/v2 HorizontalPodAutoscaler object.

        Reads ``minReplicas`` (default 1), ``maxReplicas``, the Resource ``cpu``
        Utilization target (80 % when ``metrics`` is empty, as the API defaults
        it) or else one Pods AverageValue target, ``behavior`` with the API's
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
        return ctl.HpaSpec(self.max_replicas, self.min_replicas, (metric,), behavior)

    def label(self) -> str:
        """Return a short human label: target, min..max, windows."""
        target = (
            f"{self.target_percent}%"
            if self.metric == "cpu"
            else f"{self.target_average_value:g}/pod"
        )
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
    for metric in metrics:
        resource = metric.get("resource") or {}
        target = resource.get("target") or {}
        if (
            metric.get("type") == "Resource"
            and resource.get("name") == "cpu"
            and target.get("type") == "Utilization"
        ):
            if len(metrics) > 1:
                logger.warning(
                    "HPA %s has %d metrics; the replay uses its CPU utilization target only",
                    name,
                    len(metrics),
                )
            return {"target_utilization": float(target["averageUtilization"]) / 100}
    for metric in metrics:
        pods = metric.get("pods") or {}
        target = pods.get("target") or {}
        if metric.get("type") == "Pods" and "averageValue" in target:
            return {
                "target_utilization": 1.0,
                "metric": "pods",
                "metric_name": (pods.get("metric") or {}).get("name", ""),
                "target_average_value": _quantity(target["averageValue"]),
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
    """
    if initial_replicas < 0:
        raise ParameterError("initial_replicas", f"cannot be negative, got {initial_replicas}")
    if engine == "fast":
        result = replay_grid(demand, [config], pods=pods, initial_replicas=initial_replicas)
        return result.frame(0, pods=pods, config=config)
    if engine != "exact":
        raise ParameterError("engine", f"{engine!r} is not one of exact, fast")

    inputs = _inputs(demand, config.sync_period_s)
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
            world = ctl.World(
                pods=pod_list,
                resource_metrics=[
                    ctl.ResourceMetricsItem(
                        name, now, pods.metric_window_s, (ctl.ContainerUsage("app", {"cpu": u}),)
                    )
                    for (name, _), u in zip(created, usage, strict=True)
                ],
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
) -> GridReplay:
    """Return the replays of many configs at once, decision for decision equal to :func:`replay`.

    Every config must share the sync period, metric, tolerance flag and
    (without behavior) the controller's down-scale window, since those are
    controller-wide in one run.
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
    inputs = _inputs(demand, first.sync_period_s)
    steps = len(inputs.t)
    replicas = np.zeros((len(configs), steps + 1), dtype=np.int32)
    ready = np.zeros((len(configs), steps), dtype=np.int32)
    fast.replay_grid_kernel(
        inputs.t,
        inputs.demand_m,
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
) -> pd.DataFrame:
    """Return one row per candidate: its settings, its :class:`ReplaySummary` and ``pareto``.

    ``pareto`` marks the candidates no other beats on replica-hours, time
    above target and worst lag at once (see :func:`pareto_front`). Time above
    target and lag are measured against ``reference_target`` (as in
    :func:`summarize`; pass the current HPA's target to compare candidates).
    """
    result = replay_grid(demand, configs, pods=pods, initial_replicas=initial_replicas)
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

_WHY = {
    "ScaleUpLimit": (
        "the legacy scale-up limit: without behavior one reconcile may grow to at most "
        "max(2 x current, 4) replicas"
    ),
    "ScaleDownStabilized": (
        "legacy stabilization: the highest raw recommendation of the last 300 s wins in both "
        "directions (and the first reconcile seeds one, blocking scale-down for 300 s)"
    ),
    "ScaleUpStabilized": "the scale-up stabilization window kept the lowest recent proposal",
    "TooFewReplicas": "the minReplicas clamp",
    "TooManyReplicas": "the maxReplicas clamp",
    "unready": (
        "pods not yet counted: new pods are left out until Ready and one metric window old "
        "(the CPU initialization period), and the proposal is the ratio times the pods counted"
    ),
    "other": (
        "the arithmetic: integer utilization of the counted pods, the 15 s sync period against "
        "the other model's 30 s step, and the proposal over Ready pods rather than all replicas"
    ),
}


def compare_decisions(exact: pd.DataFrame, other: pd.Series) -> pd.DataFrame:
    """Return, at each sample of ``other``, both desired counts and the exact controller's state.

    ``other`` is another model's desired replicas (the demo scenario's own
    controller, or ``kube_horizontalpodautoscaler_status_desired_replicas``);
    the exact replay's decision in force at each of its samples is the last
    at or before it. Columns: ``time``, ``other``, ``exact``, ``difference``
    (exact minus other), ``cause`` (a key of the explanation table).
    """
    values = other.dropna().sort_index()
    decisions = exact.set_index("timestamp")
    position = decisions.index.searchsorted(values.index, side="right") - 1
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
    causes = []
    for (_, row), limited, able, counted, replicas in zip(
        table.iterrows(),
        picked["scaling_limited"],
        picked["able_to_scale"],
        picked["counted_pods"],
        picked["replicas"],
        strict=True,
    ):
        if row["difference"] == 0:
            causes.append("")
        elif limited in ("ScaleUpLimit", "TooFewReplicas", "TooManyReplicas"):
            causes.append(limited)
        elif able in ("ScaleDownStabilized", "ScaleUpStabilized"):
            causes.append(able)
        elif counted < replicas:
            causes.append("unready")
        else:
            causes.append("other")
    table["cause"] = causes
    return table


def explain_differences(table: pd.DataFrame) -> pd.DataFrame:
    """Return the differing decisions of :func:`compare_decisions` grouped by cause, with why."""
    differing = table[table["difference"] != 0]
    total = len(table)
    rows = []
    for cause, group in differing.groupby("cause", sort=False):
        rows.append(
            {
                "cause": cause,
                "samples": len(group),
                "share": len(group) / total if total else 0.0,
                "exact_lower": int((group["difference"] < 0).sum()),
                "exact_higher": int((group["difference"] > 0).sum()),
                "why": _WHY.get(str(cause), str(cause)),
            }
        )
    out = pd.DataFrame(
        rows, columns=["cause", "samples", "share", "exact_lower", "exact_higher", "why"]
    )
    return out.sort_values("samples", ascending=False, kind="stable").reset_index(drop=True)


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
