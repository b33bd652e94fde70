"""Capacity planning: usage percentiles, rightsizing, peak forecasts and node counts.

Every figure of the capacity notebook comes from here. The functions are pure:
they take catalog answers (long frames with ``timestamp``, labels and
``value``) and Kubernetes objects as API-JSON dicts, and return small frames or
frozen dataclasses. Recommendation strategies are chosen by name from
:data:`STRATEGIES`, so that a second strategy (the VPA recommender) slots in
next to KRR's ``simple`` one without touching the callers.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import pandas as pd

from rknb import _vpa as _vpa_model
from rknb._vpa import VpaSettings
from rknb.errors import NoDataError, ParameterError
from rknb.kube import parse_quantity

__all__ = [
    "AT_RISK_MEMORY_LIMIT_RATIO",
    "CONFIDENCE_DAYS",
    "OVER_PROVISIONED_USAGE_RATIO",
    "STRATEGIES",
    "UNDER_PROVISIONED_USAGE_RATIO",
    "WEEKLY_MIN_DAYS",
    "BacktestResult",
    "Forecast",
    "NodePlan",
    "ReplicaPlan",
    "SimpleSettings",
    "VpaSettings",
    "backtest",
    "backtest_rolling",
    "capacity_runs_out",
    "confidence_label",
    "costs",
    "forecast_headline",
    "forecast_peak",
    "format_cpu",
    "format_memory",
    "manifest_patch",
    "naive_forecast",
    "node_fill",
    "node_plan",
    "node_shape",
    "nodes_headline",
    "nodes_needed",
    "nodes_run_out",
    "oom_kills",
    "pack_nodes",
    "parse_quantity",
    "peak_of_limit",
    "pod_envelope",
    "pod_requests",
    "pod_series",
    "recommend",
    "recommendations_csv",
    "replica_plan",
    "replicas_needed",
    "replicas_over_time",
    "requests_and_limits",
    "restart_events",
    "rightsizing",
    "runs_out_headline",
    "sizing_headline",
    "sizing_table",
    "summary_table",
    "surge_pods",
    "usage_percentiles",
    "workload_demand",
    "workload_of_pod",
    "workload_replicas",
]

logger = logging.getLogger(__name__)

_KEYS = ["namespace", "workload", "container"]
_MIB = 2**20

# --------------------------------------------------------------------------- workloads

_DEPLOYMENT_POD = re.compile(r"^(?P<name>.+)-[a-z0-9]{5,10}-[a-z0-9]{5}$")
_STATEFUL_POD = re.compile(r"^(?P<name>.+)-\d+$")


def workload_of_pod(pod: str) -> str:
    """Return the workload a pod belongs to, from its name.

    ``<name>-<pod-template-hash>-<id>`` (Deployment pods) gives ``<name>``;
    ``<name>-<ordinal>`` (StatefulSet pods) gives ``<name>``; any other name is
    its own workload.
    """
    for pattern in (_DEPLOYMENT_POD, _STATEFUL_POD):
        match = pattern.match(pod)
        if match:
            return match["name"]
    return pod


def _with_workload(usage: pd.DataFrame, what: str) -> pd.DataFrame:
    missing = {"namespace", "pod", "container", "value"} - set(usage.columns)
    if missing:
        raise ParameterError(
            what,
            f"the frame lacks columns {sorted(missing)}; pass a container_cpu_cores or "
            "container_memory_bytes answer",
        )
    frame = usage.dropna(subset=["value"]).copy()
    frame["workload"] = frame["pod"].map(workload_of_pod)
    return frame


def _percentile_column(p: float) -> str:
    return f"p{p * 100:g}"


def usage_percentiles(
    usage: pd.DataFrame,
    percentiles: Sequence[float] = (0.5, 0.9, 0.95, 0.99, 1.0),
    *,
    resource: str | None = None,
) -> pd.DataFrame:
    """Return usage percentiles per (namespace, workload, container), pooling all pods.

    Columns: ``namespace, workload, container, [resource], pods, samples`` and
    one column per percentile named ``p50``, ``p95``, ``p100`` (the maximum)
    and so on, in the unit of the input (cores or bytes). Percentiles
    interpolate linearly between samples, as numpy and PromQL's
    ``quantile_over_time`` do.

    Parameters
    ----------
    usage
        A ``container_cpu_cores`` or ``container_memory_bytes`` answer.
    percentiles
        Fractions in [0, 1].
    resource
        When given (``"cpu"`` or ``"memory"``), added as a ``resource`` column so
        that the CPU and memory tables can be concatenated for :func:`rightsizing`.
    """
    for p in percentiles:
        if not 0.0 <= p <= 1.0:
            raise ParameterError("percentiles", f"{p!r} is not a fraction in [0, 1]")
    frame = _with_workload(usage, "usage")

    rows = []
    for key, group in frame.groupby(_KEYS, sort=True):
        values = group["value"].to_numpy(dtype=float)
        row: dict[str, Any] = dict(zip(_KEYS, key, strict=True))
        if resource is not None:
            row["resource"] = resource
        row["pods"] = group["pod"].nunique()
        row["samples"] = len(values)
        for p, q in zip(percentiles, np.quantile(values, list(percentiles)), strict=True):
            row[_percentile_column(p)] = float(q)
        rows.append(row)
    columns = [*_KEYS, *(["resource"] if resource is not None else []), "pods", "samples"]
    columns += [_percentile_column(p) for p in percentiles]
    return pd.DataFrame(rows, columns=columns)


# --------------------------------------------------------------------------- requests

_RESOURCE_COLUMNS = [
    "cpu_request_cores",
    "cpu_limit_cores",
    "memory_request_bytes",
    "memory_limit_bytes",
]


def requests_and_limits(workloads: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Return the CPU and memory requests and limits per (namespace, workload, container).

    Works on any object with a pod template (Deployment, StatefulSet,
    DaemonSet, ReplicaSet, Job). Columns: ``namespace, workload, container,
    cpu_request_cores, cpu_limit_cores, memory_request_bytes,
    memory_limit_bytes``; NaN where the manifest sets nothing.
    """
    rows = []
    for obj in workloads:
        meta = obj.get("metadata") or {}
        spec = ((obj.get("spec") or {}).get("template") or {}).get("spec") or {}
        for container in spec.get("containers") or []:
            resources = container.get("resources") or {}
            requests = resources.get("requests") or {}
            limits = resources.get("limits") or {}
            where = f"{meta.get('name')}/{container.get('name')}"
            rows.append(
                {
                    "namespace": meta.get("namespace", "default"),
                    "workload": meta.get("name"),
                    "container": container.get("name"),
                    "cpu_request_cores": _quantity_or_nan(requests.get("cpu"), where),
                    "cpu_limit_cores": _quantity_or_nan(limits.get("cpu"), where),
                    "memory_request_bytes": _quantity_or_nan(requests.get("memory"), where),
                    "memory_limit_bytes": _quantity_or_nan(limits.get("memory"), where),
                }
            )
    return pd.DataFrame(rows, columns=[*_KEYS, *_RESOURCE_COLUMNS])


def _quantity_or_nan(value: Any, where: str) -> float:
    if value is None:
        return math.nan
    return parse_quantity(value, name=f"resources of {where}")


# --------------------------------------------------------------------------- strategies


@dataclass(frozen=True)
class SimpleSettings:
    """Settings of KRR's ``simple`` strategy, with KRR's own defaults."""

    #: CPU request = this percentile (0 < p ≤ 100) of each pod's usage, maximum over pods.
    cpu_percentile: float = 95.0
    #: Memory request = limit = peak working set × (1 + this / 100).
    memory_buffer_percentage: float = 15.0
    #: Fewer samples than this (all pods summed) give no recommendation.
    points_required: int = 100
    #: Recommendations are raised to at least this (KRR ``--cpu-min``, 10 m).
    cpu_min_cores: float = 0.010
    #: Recommendations are raised to at least this (KRR ``--mem-min``, 100 MiB).
    memory_min_bytes: float = 100 * _MIB
    #: Only samples this recent (before the latest one) count (KRR ``--history_duration``).
    history_duration_h: float = 336.0
    #: KRR's query step and ``rate()`` window (``--timeframe_duration``); informative here:
    #: the samples arrive at the caller's step.
    timeframe_duration_s: float = 75.0
    #: Raise memory for OOM-killed containers (KRR ``--use_oomkill_data``, off by default).
    use_oomkill_data: bool = False
    #: With OOM data: memory ≥ the OOM-killed limit × (1 + this / 100).
    oom_memory_buffer_percentage: float = 25.0

    def __post_init__(self) -> None:
        if not 0 < self.cpu_percentile <= 100:
            raise ParameterError(
                "cpu_percentile", f"must be in (0, 100], got {self.cpu_percentile}"
            )
        if self.memory_buffer_percentage <= 0:
            raise ParameterError(
                "memory_buffer_percentage", f"must be positive, got {self.memory_buffer_percentage}"
            )
        if self.points_required < 1:
            raise ParameterError(
                "points_required", f"must be at least 1, got {self.points_required}"
            )
        if self.history_duration_h < 1:
            raise ParameterError(
                "history_duration_h", f"must be at least 1 hour, got {self.history_duration_h}"
            )
        if self.timeframe_duration_s <= 0:
            raise ParameterError(
                "timeframe_duration_s", f"must be positive, got {self.timeframe_duration_s}"
            )
        if self.oom_memory_buffer_percentage < 0:
            raise ParameterError(
                "oom_memory_buffer_percentage",
                f"cannot be negative, got {self.oom_memory_buffer_percentage}",
            )


_BOUND_COLUMNS = [
    "cpu_lower_cores",
    "cpu_upper_cores",
    "memory_lower_bytes",
    "memory_upper_bytes",
]
_RECOMMENDATION_COLUMNS = [
    *_KEYS,
    *_RESOURCE_COLUMNS,
    *_BOUND_COLUMNS,
    "cpu_samples",
    "memory_samples",
    "history_days",
    "confidence",
    "info",
]

#: History (days) from which a recommendation counts as ``medium`` and ``high`` confidence.
CONFIDENCE_DAYS = {"medium": 1.0, "high": 7.0}


def confidence_label(days: float) -> str:
    """Return ``low``, ``medium`` or ``high`` for a history (or VPA confidence) in days."""
    if math.isnan(days):
        return "none"
    if days >= CONFIDENCE_DAYS["high"]:
        return "high"
    return "medium" if days >= CONFIDENCE_DAYS["medium"] else "low"


@dataclass(frozen=True)
class _Context:
    """What a strategy may use besides usage: OOM kills and the current resources."""

    oom_kills: pd.DataFrame
    current: pd.DataFrame

    def resource(self, key: tuple[Any, ...], column: str) -> float:
        rows = self.current
        if rows.empty:
            return math.nan
        match = rows[
            (rows["namespace"] == key[0])
            & (rows["workload"] == key[1])
            & (rows["container"] == key[2])
        ]
        return float(match[column].iloc[0]) if len(match) else math.nan

    def kills(self, namespace: str, pod: str, container: str) -> pd.DataFrame:
        k = self.oom_kills
        if k.empty:
            return k
        return k[(k["namespace"] == namespace) & (k["pod"] == pod) & (k["container"] == container)]


def _recent(frame: pd.DataFrame, history_s: float, now: pd.Timestamp) -> pd.DataFrame:
    return frame[frame["timestamp"] > now - pd.Timedelta(seconds=history_s)]


def _latest(*frames: pd.DataFrame) -> pd.Timestamp:
    stamps = [f["timestamp"].max() for f in frames if not f.empty]
    return max(stamps) if stamps else pd.Timestamp(0, tz="UTC")


def _span_days(frame: pd.DataFrame) -> float:
    if frame.empty:
        return math.nan
    return float((frame["timestamp"].max() - frame["timestamp"].min()) / pd.Timedelta(days=1))


def _simple(
    cpu: pd.DataFrame, memory: pd.DataFrame, settings: SimpleSettings, context: _Context
) -> pd.DataFrame:
    """Return KRR ``simple`` recommendations (CPU limit unset, memory request = limit)."""
    cpu_frame = _with_workload(cpu, "cpu")
    memory_frame = _with_workload(memory, "memory")
    now = _latest(cpu_frame, memory_frame)
    cpu_frame = _recent(cpu_frame, settings.history_duration_h * 3600, now)
    memory_frame = _recent(memory_frame, settings.history_duration_h * 3600, now)
    # KRR sends the percentile to PromQL rounded to two decimals of a fraction.
    q = round(settings.cpu_percentile / 100, 2)

    # Per pod: the percentile of its samples; per container: the maximum over pods.
    per_pod_cpu = cpu_frame.groupby([*_KEYS, "pod"])["value"].quantile(q)
    cpu_by_key = per_pod_cpu.groupby(level=_KEYS).max()
    cpu_count = cpu_frame.groupby(_KEYS)["value"].size()
    memory_peak = memory_frame.groupby(_KEYS)["value"].max()
    memory_count = memory_frame.groupby(_KEYS)["value"].size()
    cpu_groups = dict(list(cpu_frame.groupby(_KEYS)))

    keys = sorted(set(cpu_by_key.index) | set(memory_peak.index))
    rows = []
    for key in keys:
        info = []
        n_cpu = int(cpu_count.get(key, 0))
        n_memory = int(memory_count.get(key, 0))
        cpu_request = math.nan
        if n_cpu == 0:
            info.append("no CPU data")
        elif n_cpu < settings.points_required:
            info.append(f"not enough CPU data ({n_cpu} < {settings.points_required} samples)")
        else:
            cpu_request = _round_cpu(float(cpu_by_key[key]), settings.cpu_min_cores)
            if cpu_request == settings.cpu_min_cores:
                info.append("CPU raised to the 10m floor")
        memory_rec = math.nan
        if n_memory == 0:
            info.append("no memory data")
        elif n_memory < settings.points_required:
            info.append(f"not enough memory data ({n_memory} < {settings.points_required} samples)")
        else:
            buffered = float(memory_peak[key]) * (1 + settings.memory_buffer_percentage / 100)
            oom_limit = 0.0
            if settings.use_oomkill_data and _was_oom_killed(memory_frame, key, context):
                limit = context.resource(key, "memory_limit_bytes")
                oom_limit = 0.0 if math.isnan(limit) else limit
            oom_term = oom_limit * (1 + settings.oom_memory_buffer_percentage / 100)
            if oom_term > buffered:
                info.append("OOMKill detected")
            memory_rec = _round_memory(max(buffered, oom_term), settings.memory_min_bytes)
        days = _span_days(cpu_groups[key]) if key in cpu_groups else math.nan
        rows.append(
            {
                **dict(zip(_KEYS, key, strict=True)),
                "cpu_request_cores": cpu_request,
                "cpu_limit_cores": math.nan,
                "memory_request_bytes": memory_rec,
                "memory_limit_bytes": memory_rec,
                **dict.fromkeys(_BOUND_COLUMNS, math.nan),
                "cpu_samples": n_cpu,
                "memory_samples": n_memory,
                "history_days": days,
                "confidence": confidence_label(days) if not math.isnan(cpu_request) else "none",
                "info": "; ".join(info),
            }
        )
    return pd.DataFrame(rows, columns=_RECOMMENDATION_COLUMNS)


def _was_oom_killed(memory_frame: pd.DataFrame, key: tuple[str, ...], context: _Context) -> bool:
    kills = context.oom_kills
    if kills.empty:
        return False
    pods = set(
        memory_frame.loc[
            (memory_frame["namespace"] == key[0])
            & (memory_frame["workload"] == key[1])
            & (memory_frame["container"] == key[2]),
            "pod",
        ]
    )
    mine = kills[(kills["namespace"] == key[0]) & (kills["container"] == key[2])]
    return bool(mine["pod"].isin(pods).any())


def _round_cpu(cores: float, minimum: float) -> float:
    # Up to a whole millicore; the tiny allowance keeps 0.25 from becoming 0.251.
    return max(math.ceil(cores * 1000 - 1e-9) / 1000, minimum)


def _round_memory(memory_bytes: float, minimum: float) -> float:
    return max(math.ceil(memory_bytes / _MIB - 1e-9) * _MIB, minimum)


def _step_s(frame: pd.DataFrame) -> float:
    stamps = np.sort(frame["timestamp"].unique())
    if len(stamps) < 2:
        return 60.0
    gaps = np.diff(stamps) / np.timedelta64(1, "s")
    return float(np.median(gaps[gaps > 0]))


def _vpa(
    cpu: pd.DataFrame, memory: pd.DataFrame, settings: VpaSettings, context: _Context
) -> pd.DataFrame:
    """Return VPA recommender targets (requests) and bounds; limits keep today's ratio."""
    cpu_frame = _with_workload(cpu, "cpu")
    memory_frame = _with_workload(memory, "memory")
    now = _latest(cpu_frame, memory_frame)
    cpu_frame = _recent(cpu_frame, settings.history_s, now)
    memory_frame = _recent(memory_frame, settings.history_s, now)
    # Each input sample stands for the recommender's one-a-minute samples it spans.
    per_sample = max(1.0, _step_s(cpu_frame) / settings.metrics_interval_s) if len(cpu_frame) else 1
    cpu_options = _vpa_model.cpu_histogram_options(settings.bucket_growth)
    memory_options = _vpa_model.memory_histogram_options(settings.bucket_growth)
    containers_per_pod = {
        (ns, wl): len(set(g["container"]))
        for (ns, wl), g in cpu_frame.groupby(["namespace", "workload"])
    }
    cpu_groups = dict(list(cpu_frame.groupby(_KEYS)))
    memory_groups = dict(list(memory_frame.groupby(_KEYS)))

    rows = []
    for key in sorted(set(cpu_groups) | set(memory_groups)):
        info: list[str] = []
        share = 1.0 / containers_per_pod.get((key[0], key[1]), 1)
        row: dict[str, Any] = dict(zip(_KEYS, key, strict=True))
        cpu_group = cpu_groups.get(key)
        conf = 0.0
        if cpu_group is None or cpu_group.empty:
            info.append("no CPU data")
            row |= dict.fromkeys(
                ["cpu_request_cores", "cpu_lower_cores", "cpu_upper_cores"], math.nan
            )
            row["cpu_samples"] = 0
        else:
            t = _unix_s(cpu_group["timestamp"])
            conf = _vpa_model.confidence(
                float(t.min()), float(t.max()), len(t) * per_sample, settings.confidence_interval_s
            )
            weights = 0.1 * _vpa_model.decay_weights(t, settings.cpu_half_life_s)
            est = _vpa_model.estimate(
                cpu_options,
                cpu_group["value"].to_numpy(dtype=float),
                weights,
                settings,
                conf,
                _vpa_model.quantize_cpu(settings.pod_min_cpu_cores * share),
                _vpa_model.quantize_cpu,
            )
            row |= {
                "cpu_request_cores": est.target,
                "cpu_lower_cores": est.lower,
                "cpu_upper_cores": est.upper,
                "cpu_samples": len(t),
            }
        memory_group = memory_groups.get(key)
        if memory_group is None or memory_group.empty:
            info.append("no memory data")
            row |= dict.fromkeys(
                ["memory_request_bytes", "memory_lower_bytes", "memory_upper_bytes"], math.nan
            )
            row["memory_samples"] = 0
        else:
            peaks, kills = _vpa_peaks(memory_group, key, settings, context)
            if kills:
                info.append(f"{kills} OOM kill(s) bumped memory")
            ends = np.array([end for end, _ in peaks])
            est = _vpa_model.estimate(
                memory_options,
                np.array([value for _, value in peaks]),
                _vpa_model.decay_weights(ends, settings.memory_half_life_s),
                settings,
                conf,
                _vpa_model.quantize_memory(settings.pod_min_memory_bytes * share),
                _vpa_model.quantize_memory,
            )
            row |= {
                "memory_request_bytes": est.target,
                "memory_lower_bytes": est.lower,
                "memory_upper_bytes": est.upper,
                "memory_samples": len(memory_group),
            }
        # The VPA scales limits with requests, keeping today's limit-to-request ratio.
        for resource, unit in (("cpu", "cores"), ("memory", "bytes")):
            request = context.resource(key, f"{resource}_request_{unit}")
            limit = context.resource(key, f"{resource}_limit_{unit}")
            row[f"{resource}_limit_{unit}"] = (
                row[f"{resource}_request_{unit}"] * limit / request
                if request > 0 and not math.isnan(limit)
                else math.nan
            )
        row["history_days"] = conf * settings.confidence_interval_s / 86_400
        row["confidence"] = confidence_label(row["history_days"]) if conf > 0 else "none"
        row["info"] = "; ".join(info)
        rows.append(row)
    return pd.DataFrame(rows, columns=_RECOMMENDATION_COLUMNS)


def _unix_s(stamps: pd.Series) -> np.ndarray:
    return np.asarray(
        (pd.DatetimeIndex(stamps) - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1),
        dtype=float,
    )


def _vpa_peaks(
    memory_group: pd.DataFrame, key: tuple[Any, ...], settings: VpaSettings, context: _Context
) -> tuple[list[tuple[float, float]], int]:
    request = context.resource(key, "memory_request_bytes")
    peaks: list[tuple[float, float]] = []
    kills_seen = 0
    for pod, samples in memory_group.groupby("pod"):
        kills = context.kills(key[0], str(pod), key[2])
        kills_seen += len(kills)
        peaks += _vpa_model.memory_peaks(
            pd.DataFrame({"timestamp_s": _unix_s(samples["timestamp"]), "value": samples["value"]}),
            pd.DataFrame({"timestamp_s": _unix_s(kills["time"]) if len(kills) else np.array([])}),
            interval_s=settings.memory_aggregation_interval_s,
            memory_request_bytes=request,
            oom_bump_ratio=settings.oom_bump_ratio,
            oom_min_bump_bytes=settings.oom_min_bump_bytes,
        )
    return peaks, kills_seen


@dataclass(frozen=True)
class _Strategy:
    settings: type[Any]
    run: Callable[[pd.DataFrame, pd.DataFrame, Any, _Context], pd.DataFrame]


#: Recommendation strategies by name; each has a settings dataclass and a function.
STRATEGIES: dict[str, _Strategy] = {
    "simple": _Strategy(SimpleSettings, _simple),
    "vpa": _Strategy(VpaSettings, _vpa),
}


def recommend(
    strategy: str,
    cpu: pd.DataFrame,
    memory: pd.DataFrame,
    *,
    oom_kills: pd.DataFrame | None = None,
    current: pd.DataFrame | None = None,
    **settings: Any,
) -> pd.DataFrame:
    """Return recommended requests and limits per (namespace, workload, container).

    Columns: ``namespace, workload, container, cpu_request_cores,
    cpu_limit_cores, memory_request_bytes, memory_limit_bytes,
    cpu_lower_cores, cpu_upper_cores, memory_lower_bytes, memory_upper_bytes,
    cpu_samples, memory_samples, history_days, confidence, info``. NaN means no
    recommendation for a value (see ``info``) or, for ``cpu_limit_cores`` under
    ``simple``, no limit; the bounds are NaN under ``simple``, which has none.
    ``history_days`` is the span of CPU samples behind the numbers (for
    ``vpa``, the recommender's confidence in days, which also counts the
    samples); ``confidence`` is :func:`confidence_label` of it, or ``none``.

    Parameters
    ----------
    strategy
        A name from :data:`STRATEGIES`: ``"simple"`` (KRR's simple strategy) or
        ``"vpa"`` (the VPA recommender).
    cpu
        A ``container_cpu_cores`` answer (cores per sample).
    memory
        A ``container_memory_bytes`` or ``container_memory_peak_bytes`` answer
        (working-set bytes per sample).
    oom_kills
        :func:`oom_kills` of the same window: ``vpa`` bumps memory after each;
        ``simple`` only with ``use_oomkill_data=True``.
    current
        :func:`requests_and_limits` of the workloads: the memory request an OOM
        bump starts from, the limit KRR's OOM term uses, and the
        limit-to-request ratio the VPA keeps.
    **settings
        Fields of the strategy's settings dataclass (:class:`SimpleSettings`,
        :class:`VpaSettings`).
    """
    try:
        chosen = STRATEGIES[strategy]
    except KeyError:
        known = ", ".join(sorted(STRATEGIES))
        raise ParameterError(
            "strategy", f"unknown strategy {strategy!r}; choose one of: {known}"
        ) from None
    allowed = {f.name for f in fields(chosen.settings)}
    unknown = set(settings) - allowed
    if unknown:
        raise ParameterError(
            "settings",
            f"{strategy!r} has no setting {sorted(unknown)}; its settings are {sorted(allowed)}",
        )
    context = _Context(
        oom_kills=oom_kills
        if oom_kills is not None
        else pd.DataFrame(columns=["namespace", "pod", "container", "time"]),
        current=current
        if current is not None
        else pd.DataFrame(columns=[*_KEYS, *_RESOURCE_COLUMNS]),
    )
    return chosen.run(cpu, memory, chosen.settings(**settings), context)


# --------------------------------------------------------------------------- rightsizing

#: CPU usage p95 (or memory peak) below this fraction of the request: over-provisioned.
OVER_PROVISIONED_USAGE_RATIO = 0.5
#: CPU usage p95 (or memory peak) above this fraction of the request: under-provisioned.
UNDER_PROVISIONED_USAGE_RATIO = 1.0
#: Memory peak above this fraction of the limit: at risk of an OOM kill.
AT_RISK_MEMORY_LIMIT_RATIO = 0.9


def rightsizing(
    usage_pcts: pd.DataFrame, current: pd.DataFrame, recommended: pd.DataFrame
) -> pd.DataFrame:
    """Return current vs recommended resources per container, with a verdict.

    Columns: the keys, ``cpu_p95_cores``, ``memory_max_bytes``, then for each
    of the four resource columns ``<col>_current`` and ``<col>_recommended``,
    then ``verdict`` and ``reasons``. The verdict is the most urgent of:
    ``at-risk`` (memory peak > :data:`AT_RISK_MEMORY_LIMIT_RATIO` of the limit),
    ``under-provisioned`` (CPU p95 or memory peak above
    :data:`UNDER_PROVISIONED_USAGE_RATIO` of the request),
    ``over-provisioned`` (CPU p95 or memory peak below
    :data:`OVER_PROVISIONED_USAGE_RATIO` of the request), ``no-request``
    (a request is unset) and ``ok``; ``reasons`` lists every rule that fired.

    Parameters
    ----------
    usage_pcts
        :func:`usage_percentiles` tables for CPU and memory concatenated, with
        their ``resource`` column (``"cpu"``, ``"memory"``) and ``p95`` and
        ``p100`` columns.
    current
        :func:`requests_and_limits` of the workloads.
    recommended
        :func:`recommend` of the same workloads.
    """
    needed = {"resource", "p95", "p100", *_KEYS}
    if not needed <= set(usage_pcts.columns):
        raise ParameterError(
            "usage_pcts",
            f"needs columns {sorted(needed)}; build it with usage_percentiles(..., resource=...) "
            "including the 0.95 and 1.0 percentiles",
        )
    by_resource = {r: g.set_index(_KEYS) for r, g in usage_pcts.groupby("resource")}
    cpu = by_resource.get("cpu", pd.DataFrame(columns=["p95"]))
    memory = by_resource.get("memory", pd.DataFrame(columns=["p100"]))
    table = pd.DataFrame(
        {"cpu_p95_cores": cpu["p95"].astype(float), "memory_max_bytes": memory["p100"]}
    )
    table = table.join(current.set_index(_KEYS)[_RESOURCE_COLUMNS], how="outer")
    table = table.rename(columns={c: f"{c}_current" for c in _RESOURCE_COLUMNS})
    table = table.join(
        recommended.set_index(_KEYS)[_RESOURCE_COLUMNS].add_suffix("_recommended"), how="left"
    )

    verdicts, reasons = [], []
    for row in table.itertuples():
        fired = _rules(
            float(row.cpu_p95_cores),  # type: ignore[arg-type]
            float(row.memory_max_bytes),  # type: ignore[arg-type]
            float(row.cpu_request_cores_current),  # type: ignore[arg-type]
            float(row.memory_request_bytes_current),  # type: ignore[arg-type]
            float(row.memory_limit_bytes_current),  # type: ignore[arg-type]
        )
        order = ["at-risk", "under-provisioned", "over-provisioned", "no-request"]
        verdicts.append(next((v for v in order if any(f[0] == v for f in fired)), "ok"))
        reasons.append("; ".join(text for _, text in fired))
    table["verdict"] = verdicts
    table["reasons"] = reasons
    return table.reset_index()


def _rules(
    cpu_p95: float,
    memory_max: float,
    cpu_request: float,
    memory_request: float,
    memory_limit: float,
) -> list[tuple[str, str]]:
    fired: list[tuple[str, str]] = []
    if memory_max > AT_RISK_MEMORY_LIMIT_RATIO * memory_limit:
        fired.append(("at-risk", f"memory peak is {memory_max / memory_limit:.0%} of the limit"))
    for name, usage, request in (
        ("CPU p95", cpu_p95, cpu_request),
        ("memory peak", memory_max, memory_request),
    ):
        if math.isnan(request):
            fired.append(("no-request", f"no {name.split()[0]} request"))
        elif usage > UNDER_PROVISIONED_USAGE_RATIO * request:
            fired.append(("under-provisioned", f"{name} is {usage / request:.0%} of the request"))
        elif usage < OVER_PROVISIONED_USAGE_RATIO * request:
            fired.append(("over-provisioned", f"{name} is {usage / request:.0%} of the request"))
    return fired


# --------------------------------------------------------------------------- forecasting

_WEEK_H = 168
#: Days of history from which the forecast adds weekly seasonality to the daily one:
#: every weekday seen, and one seen twice so that the trend is not confounded with it.
WEEKLY_MIN_DAYS = 8


@dataclass(frozen=True)
class Forecast:
    """A peak forecast from hourly peaks: trend, daily and weekly seasonality, intervals."""

    #: Highest forecast hourly peak over the horizon (unit of the input).
    peak: float
    #: The hour (UTC) at which that peak is forecast.
    peak_time: pd.Timestamp
    #: The prediction interval of that hour (``1 - alpha``, 95 % by default).
    lower: float
    upper: float
    #: Fitted trend per day at the level of the last week of history (unit per day).
    trend_per_day: float
    #: Fitted growth per week as a fraction (0.04 = 4 % a week).
    growth_per_week: float
    #: Standard deviation of the fit's residuals on the log scale (0.02 ≈ 2 %).
    residual_std: float
    #: ``"daily"`` or ``"daily and weekly"``: the seasonality the history allowed.
    seasonality: str
    #: The hourly peaks the fit used.
    hourly_peaks: pd.Series
    #: Forecast hourly peaks over the horizon.
    forecast: pd.Series
    #: The prediction interval of every forecast hour: columns ``lower`` and ``upper``.
    interval: pd.DataFrame


def _hourly_peaks(demand: pd.Series) -> pd.Series:
    if not isinstance(demand.index, pd.DatetimeIndex):
        raise ParameterError("demand", "needs a DatetimeIndex (UTC timestamps)")
    return demand.resample("1h").max().dropna()


def _hour_of_week(index: pd.Index) -> np.ndarray:
    times = pd.DatetimeIndex(index)
    return np.asarray(times.day_of_week * 24 + times.hour, dtype=int)


def _design(index: pd.Index, origin: pd.Timestamp, weekly: bool) -> pd.DataFrame:
    """Return the regressors: constant, trend in days, hour of day, weekday, weekend hours."""
    times = pd.DatetimeIndex(index)
    hour = np.asarray(times.hour)
    weekday = np.asarray(times.day_of_week)
    columns: dict[str, np.ndarray] = {
        "const": np.ones(len(times)),
        "trend_days": np.asarray((times - origin) / pd.Timedelta(days=1), dtype=float),
    }
    for h in range(1, 24):
        columns[f"hour_{h}"] = (hour == h).astype(float)
    if weekly:
        weekend = weekday >= 5
        for d in range(1, 7):
            columns[f"weekday_{d}"] = (weekday == d).astype(float)
        # Weekends have their own daily shape, not only a lower level.
        for h in range(1, 24):
            columns[f"weekend_hour_{h}"] = (weekend & (hour == h)).astype(float)
    return pd.DataFrame(columns, index=times)


@dataclass(frozen=True)
class _Fit:
    result: Any
    origin: pd.Timestamp
    weekly: bool
    log: bool

    def predict(self, index: pd.Index, alpha: float) -> pd.DataFrame:
        frame = self.result.get_prediction(_design(index, self.origin, self.weekly))
        summary = frame.summary_frame(alpha=alpha)
        out = pd.DataFrame(
            {
                "mean": summary["mean"].to_numpy(),
                "lower": summary["obs_ci_lower"].to_numpy(),
                "upper": summary["obs_ci_upper"].to_numpy(),
            },
            index=pd.DatetimeIndex(index),
        )
        if not self.log:
            return out
        return pd.DataFrame(np.exp(out.to_numpy()), index=out.index, columns=out.columns)


def _fit(peaks: pd.Series) -> _Fit:
    """Return an ordinary least-squares fit (statsmodels) of the hourly peaks.

    On the log scale when every peak is positive, so that the daily and weekly
    shapes and the trend are ratios (traffic that grows 4 % a week grows its
    peaks and troughs alike).
    """
    # statsmodels is heavy and only forecasts need it.
    import statsmodels.api as sm

    times = pd.DatetimeIndex(peaks.index)
    days = times.normalize().nunique()
    if days < 2 or len(peaks) < 48:
        raise NoDataError(
            f"the demand covers {len(peaks)} hours on {days} day(s); give at least 2 days of "
            "history for a forecast (8 for weekly seasonality)"
        )
    weekly = days >= WEEKLY_MIN_DAYS and times.day_of_week.nunique() == 7
    log = bool((peaks > 0).all())
    y = np.log(peaks.to_numpy(dtype=float)) if log else peaks.to_numpy(dtype=float)
    origin = peaks.index[0]
    result = sm.OLS(y, _design(peaks.index, origin, weekly)).fit(method="qr")
    return _Fit(result, origin, weekly, log)


def forecast_peak(demand: pd.Series, *, horizon_days: float = 28, alpha: float = 0.05) -> Forecast:
    """Return the forecast peak of a demand series over the next ``horizon_days``.

    The series is reduced to hourly peaks and fitted by ordinary least squares
    (statsmodels) on the log scale: a linear trend, one level per hour of the
    day and, once :data:`WEEKLY_MIN_DAYS` days are known, one per weekday and a
    weekend daily shape. The interval is the regression's prediction interval,
    which includes the uncertainty of the trend and assumes independent normal
    residuals on the log scale (real residuals are correlated hour to hour, so
    it is optimistic).

    Parameters
    ----------
    demand
        Values (cores, requests/s …) indexed by UTC timestamps; at least 2 days.
    horizon_days
        How far past the last sample to forecast.
    alpha
        One minus the interval's coverage (0.05: a 95 % interval).
    """
    if not 0 < alpha < 1:
        raise ParameterError("alpha", f"must be in (0, 1), got {alpha}")
    peaks = _hourly_peaks(demand)
    fit = _fit(peaks)
    future = pd.date_range(
        peaks.index[-1] + pd.Timedelta(hours=1), periods=int(horizon_days * 24), freq="1h"
    )
    predicted = fit.predict(future, alpha)
    forecast = predicted["mean"].rename("forecast")
    at = int(np.argmax(forecast.to_numpy()))
    slope = float(fit.result.params["trend_days"])
    daily_growth = math.expm1(slope) if fit.log else math.nan
    last_week = peaks[peaks.index > peaks.index[-1] - pd.Timedelta(days=7)]
    return Forecast(
        peak=float(forecast.iloc[at]),
        peak_time=future[at],
        lower=float(predicted["lower"].iloc[at]),
        upper=float(predicted["upper"].iloc[at]),
        trend_per_day=float(last_week.mean()) * daily_growth if fit.log else slope,
        growth_per_week=math.expm1(7 * slope) if fit.log else 7 * slope / float(last_week.mean()),
        residual_std=float(math.sqrt(fit.result.scale)),
        seasonality="daily and weekly" if fit.weekly else "daily",
        hourly_peaks=peaks,
        forecast=forecast,
        interval=predicted[["lower", "upper"]],
    )


@dataclass(frozen=True)
class BacktestResult:
    """Forecast accuracy at several origins, against the seasonal naive forecast."""

    #: Mean absolute percentage error of :func:`forecast_peak`'s model (0.05 = 5 %).
    mape: float
    #: The same for the naive forecast: the same hour last week, or yesterday while
    #: less than a week of history precedes the origin.
    naive_mape: float
    #: Number of forecast hours compared.
    points: int
    #: Origins scored.
    origins: int
    #: Origins whose naive forecast was "same hour yesterday".
    naive_daily_origins: int = 0

    @property
    def beats_naive(self) -> bool:
        """Return whether the model's error is below the naive forecast's."""
        return self.mape < self.naive_mape

    @property
    def within_10_percent_of_naive(self) -> bool:
        """Return whether the model's error is at most 10 % above the naive forecast's."""
        return self.mape <= 1.1 * self.naive_mape


def naive_forecast(history: pd.Series, index: pd.Index) -> pd.Series:
    """Return the seasonal naive forecast: the same hour last week, else the same hour yesterday.

    The period is a week when the history spans at least one, otherwise a
    day; an hour further out than one period repeats the last period again.
    """
    span = history.index[-1] - history.index[0] + pd.Timedelta(hours=1)
    period = pd.Timedelta(days=7) if span >= pd.Timedelta(days=7) else pd.Timedelta(days=1)
    end = history.index[-1]
    times = pd.DatetimeIndex(index)
    # Step back whole periods until the hour lies inside the history.
    back = np.ceil(((times - end) / period).to_numpy(dtype=float)).clip(min=1)
    source = times - pd.to_timedelta(back * (period / pd.Timedelta(seconds=1)), unit="s")
    return pd.Series(history.reindex(source).to_numpy(), index=times, name="naive")


def backtest(
    demand: pd.Series,
    origins: Iterable[pd.Timestamp | str],
    horizon_days: float,
) -> BacktestResult:
    """Return the model's and the naive forecast's MAPE over hourly peaks after each origin.

    At each origin the model is fitted on the hourly peaks before it and
    compared, hour by hour over the horizon, with the actual peaks; hours with
    an actual peak of 0, or no naive value, are left out of the percentage
    error of both.
    """
    peaks = _hourly_peaks(demand)
    model_errors: list[np.ndarray] = []
    naive_errors: list[np.ndarray] = []
    used = daily = 0
    for origin in origins:
        start = pd.Timestamp(origin)
        start = start.tz_localize("UTC") if start.tzinfo is None else start
        history = peaks[peaks.index < start]
        actual = peaks[
            (peaks.index >= start) & (peaks.index < start + pd.Timedelta(days=horizon_days))
        ]
        actual = actual[actual != 0]
        if actual.empty or history.empty:
            continue
        model = _fit(history).predict(actual.index, 0.05)["mean"].to_numpy()
        naive = naive_forecast(history, actual.index).to_numpy()
        keep = ~np.isnan(naive)
        truth = actual.to_numpy(dtype=float)[keep]
        model_errors.append(np.abs(truth - model[keep]) / np.abs(truth))
        naive_errors.append(np.abs(truth - naive[keep]) / np.abs(truth))
        used += 1
        span = history.index[-1] - history.index[0] + pd.Timedelta(hours=1)
        daily += int(span < pd.Timedelta(days=7))
    if not model_errors:
        raise NoDataError("no actual demand follows any backtest origin; pick earlier origins")
    model_all = np.concatenate(model_errors)
    naive_all = np.concatenate(naive_errors)
    return BacktestResult(
        mape=float(np.mean(model_all)),
        naive_mape=float(np.mean(naive_all)),
        points=len(model_all),
        origins=used,
        naive_daily_origins=daily,
    )


# --------------------------------------------------------------------------- replicas, nodes


def replicas_needed(
    peak_cores: float, *, cpu_request_cores: float, target_utilization: float, min_replicas: int = 1
) -> int:
    """Return the replicas that keep ``peak_cores`` at or under the target utilization.

    ``ceil(peak / (request × target))``, at least ``min_replicas``;
    ``target_utilization`` is a fraction (0.7 for 70 %).
    """
    if cpu_request_cores <= 0:
        raise ParameterError("cpu_request_cores", f"must be positive, got {cpu_request_cores}")
    if not target_utilization > 0:
        raise ParameterError(
            "target_utilization",
            f"must be a positive fraction (0.7 = 70 %), got {target_utilization}",
        )
    exact = peak_cores / (cpu_request_cores * target_utilization)
    # Float noise (1.75 / 0.175 = 10.000000000000002) must not add a replica.
    return max(math.ceil(exact - 1e-9), min_replicas)


def surge_pods(replicas: int, max_surge: int | str) -> int:
    """Return the extra pods a rolling update may create: ``maxSurge`` resolved.

    A percentage is of the desired replicas, rounded up, as the Deployment
    controller does for ``maxSurge``.
    """
    if isinstance(max_surge, str) and max_surge.endswith("%"):
        try:
            percent = int(max_surge[:-1])
        except ValueError:
            raise ParameterError(
                "max_surge", f"expected '25%' or an integer, got {max_surge!r}"
            ) from None
        return math.ceil(replicas * percent / 100)
    try:
        return int(max_surge)
    except ValueError:
        raise ParameterError(
            "max_surge", f"expected '25%' or an integer, got {max_surge!r}"
        ) from None


def pack_nodes(
    pod_requests: Sequence[tuple[float, float]], node_allocatable: tuple[float, float]
) -> int:
    """Return the nodes first-fit decreasing needs to place every pod's requests.

    Pods are ``(cpu_cores, memory_bytes)``; they are sorted by their larger
    share of a node (CPU or memory), biggest first, and each goes to the first
    node with room for both.
    """
    return len(node_fill(pod_requests, node_allocatable))


def node_fill(
    pod_requests: Sequence[tuple[float, float]], node_allocatable: tuple[float, float]
) -> pd.DataFrame:
    """Return first-fit decreasing's nodes: ``pods``, ``cpu_cores``, ``memory_bytes`` requested.

    One row per node in the order they were opened, with the fractions
    ``cpu_share`` and ``memory_share`` of its allocatable (see :func:`pack_nodes`).
    """
    node_cpu, node_memory = node_allocatable
    if node_cpu <= 0 or node_memory <= 0:
        raise ParameterError("node_allocatable", f"must be positive, got {node_allocatable}")
    for cpu, memory in pod_requests:
        if cpu > node_cpu or memory > node_memory:
            raise ParameterError(
                "pod_requests",
                f"a pod requesting ({cpu} cores, {memory:.0f} bytes) fits no node of "
                f"{node_allocatable}; use bigger nodes or smaller requests",
            )
    order = sorted(
        pod_requests, key=lambda r: max(r[0] / node_cpu, r[1] / node_memory), reverse=True
    )
    used: list[list[float]] = []  # [pods, cpu, memory]
    for cpu, memory in order:
        for node in used:
            # A hair of allowance: four 0.25-core pods fill a 1-core node exactly.
            if node[1] + cpu <= node_cpu + 1e-9 and node[2] + memory <= node_memory + 1e-9:
                node[0] += 1
                node[1] += cpu
                node[2] += memory
                break
        else:
            used.append([1, cpu, memory])
    frame = pd.DataFrame(used, columns=["pods", "cpu_cores", "memory_bytes"])
    frame["pods"] = frame["pods"].astype(int)
    frame["cpu_share"] = frame["cpu_cores"] / node_cpu
    frame["memory_share"] = frame["memory_bytes"] / node_memory
    return frame


def nodes_needed(
    pod_requests: Sequence[tuple[float, float]],
    node_allocatable: tuple[float, float],
    *,
    spare_nodes: int = 1,
    surge_requests: Sequence[tuple[float, float]] = (),
) -> int:
    """Return the nodes for the pods plus a rolling update's surge, plus spare nodes.

    Parameters
    ----------
    pod_requests
        ``(cpu_cores, memory_bytes)`` per pod at peak.
    node_allocatable
        ``(cpu_cores, memory_bytes)`` a node offers to pods.
    spare_nodes
        Nodes added on top, so that losing that many still fits everything
        (1 = N+1 headroom).
    surge_requests
        The extra pods of a rolling update (see :func:`surge_pods`).
    """
    if spare_nodes < 0:
        raise ParameterError("spare_nodes", f"cannot be negative, got {spare_nodes}")
    return pack_nodes([*pod_requests, *surge_requests], node_allocatable) + spare_nodes


# --------------------------------------------------------------------------- events, inventory


def restart_events(restarts: pd.DataFrame, oom_killed: pd.DataFrame) -> pd.DataFrame:
    """Return every container restart: namespace, pod, container, time, restarts, reason.

    A restart is a rise of the kubelet's restart counter between two samples.
    Its reason is ``OOMKilled`` when the container's last termination reason
    reads so at that sample (kube-state-metrics keeps the reason until the next
    termination), ``other`` otherwise.

    Parameters
    ----------
    restarts
        The ``container_restarts`` answer (raw counter per container) over the window.
    oom_killed
        The ``container_oom_killed`` answer (1 while the last termination was an OOM kill).
    """
    keys = ["namespace", "pod", "container"]
    columns = [*keys, "time", "restarts", "reason"]
    if restarts.empty:
        return pd.DataFrame(columns=columns)
    reasons = {
        key: group.set_index("timestamp")["value"] for key, group in oom_killed.groupby(keys)
    }

    rows = []
    for key, group in restarts.groupby(keys):
        counts = group.set_index("timestamp")["value"].sort_index()
        rises = counts.diff()
        flag = reasons.get(key)
        for moment, rise in rises[rises > 0].items():
            oom = flag is not None and float(flag.get(moment, 0.0)) >= 1.0
            rows.append([*key, moment, int(rise), "OOMKilled" if oom else "other"])
    return pd.DataFrame(rows, columns=columns).sort_values("time", ignore_index=True)


def oom_kills(restarts: pd.DataFrame, oom_killed: pd.DataFrame) -> pd.DataFrame:
    """Return the container restarts that were OOM kills (see :func:`restart_events`)."""
    events = restart_events(restarts, oom_killed)
    return events[events["reason"] == "OOMKilled"].reset_index(drop=True)


def capacity_runs_out(forecast: pd.Series, capacity: float) -> pd.Timestamp | None:
    """Return the first forecast hour whose value exceeds ``capacity``, or None."""
    over = forecast[forecast > capacity]
    return None if over.empty else over.index[0]


def pod_requests(pods: Iterable[Mapping[str, Any]]) -> list[tuple[float, float]]:
    """Return each pod's summed container requests as ``(cpu_cores, memory_bytes)``.

    Pods that have finished (phase Succeeded or Failed) hold no requests.
    """
    out = []
    for pod in pods:
        if pod.get("status", {}).get("phase") in ("Succeeded", "Failed"):
            continue
        cpu = memory = 0.0
        for container in pod.get("spec", {}).get("containers", []):
            requests = container.get("resources", {}).get("requests", {})
            cpu += parse_quantity(requests.get("cpu", 0), name="cpu request")
            memory += parse_quantity(requests.get("memory", 0), name="memory request")
        out.append((cpu, memory))
    return out


def node_shape(nodes: Sequence[Mapping[str, Any]]) -> tuple[float, float]:
    """Return the most common node allocatable ``(cpu_cores, memory_bytes)``.

    Bin packing assumes one node shape; the most common one is what a node
    group adds when it scales out. Ties go to the smaller shape.
    """
    shapes = []
    for node in nodes:
        allocatable = node.get("status", {}).get("allocatable", {})
        if "cpu" in allocatable and "memory" in allocatable:
            shapes.append(
                (
                    parse_quantity(allocatable["cpu"], name="allocatable cpu"),
                    parse_quantity(allocatable["memory"], name="allocatable memory"),
                )
            )
    if not shapes:
        raise NoDataError(
            "no Node reports allocatable cpu and memory; give node shapes as parameters instead"
        )
    counts: dict[tuple[float, float], int] = {}
    for shape in shapes:
        counts[shape] = counts.get(shape, 0) + 1
    return max(sorted(counts), key=lambda shape: (counts[shape], -shape[0], -shape[1]))


# --------------------------------------------------------------------------- plans for the notebook


def workload_demand(usage: pd.DataFrame, *, workload: str) -> pd.Series:
    """Return a workload's total usage per timestamp (summed over its pods and containers)."""
    mine = usage[usage["pod"].map(workload_of_pod) == workload]
    if mine.empty:
        raise NoDataError(
            f"no usage series for workload {workload!r}; check the workload name", selector=workload
        )
    return mine.groupby("timestamp")["value"].sum().sort_index().rename(workload)


def pod_series(usage: pd.DataFrame, *, workload: str) -> dict[str, pd.Series]:
    """Return one series per pod of a workload (summed over its containers), by pod name."""
    mine = usage[usage["pod"].map(workload_of_pod) == workload]
    return {
        str(pod): group.groupby("timestamp")["value"].sum().sort_index()
        for pod, group in mine.groupby("pod")
    }


def backtest_rolling(
    demand: pd.Series, *, horizon_days: float, min_history_days: float = WEEKLY_MIN_DAYS
) -> BacktestResult:
    """Return :func:`backtest` with an origin every day once ``min_history_days`` are known.

    The first origin is the midnight (UTC) at least ``min_history_days`` after
    the first sample; the last leaves a whole horizon of actual demand after it.
    """
    first, last = demand.index.min(), demand.index.max()
    origin = (first + pd.Timedelta(days=min_history_days)).ceil("D")
    origins = []
    while origin + pd.Timedelta(days=horizon_days) <= last:
        origins.append(origin)
        origin += pd.Timedelta(days=1)
    if not origins:
        raise NoDataError(
            f"a backtest needs {min_history_days + horizon_days:g} days of demand, "
            f"got {(last - first) / pd.Timedelta(days=1):.1f}"
        )
    return backtest(demand, origins, horizon_days)


@dataclass(frozen=True)
class ReplicaPlan:
    """Replicas the forecast peak needs, against what the autoscaler may use."""

    #: Replicas at the forecast peak, at the target utilization.
    replicas: int
    #: Replicas at the forecast's upper bound.
    replicas_upper: int
    current_replicas: int
    #: The HPA's maxReplicas (None without an HPA).
    max_replicas: int | None
    #: CPU the workload can use at maxReplicas and the target utilization.
    capacity_cores: float | None
    #: The first forecast hour above that capacity (None: it holds over the horizon).
    runs_out: pd.Timestamp | None


def replica_plan(
    forecast: Forecast,
    *,
    cpu_request_cores: float,
    target_utilization: float,
    current_replicas: int,
    max_replicas: int | None,
) -> ReplicaPlan:
    """Return the replicas a forecast needs and when maxReplicas stops being enough.

    Parameters
    ----------
    forecast
        A CPU-demand forecast in cores (:func:`forecast_peak`).
    cpu_request_cores
        CPU requested by one replica (all its containers).
    target_utilization
        The autoscaler's target as a fraction (0.7).
    current_replicas
        Replicas running now.
    max_replicas
        The HPA's maxReplicas, or None without an HPA.
    """

    def needed(cores: float) -> int:
        return replicas_needed(
            cores, cpu_request_cores=cpu_request_cores, target_utilization=target_utilization
        )

    capacity = (
        None if max_replicas is None else max_replicas * cpu_request_cores * target_utilization
    )
    return ReplicaPlan(
        replicas=needed(forecast.peak),
        replicas_upper=needed(forecast.upper),
        current_replicas=current_replicas,
        max_replicas=max_replicas,
        capacity_cores=capacity,
        runs_out=None if capacity is None else capacity_runs_out(forecast.forecast, capacity),
    )


@dataclass(frozen=True)
class NodePlan:
    """Nodes needed for every pod at the forecast peak, with surge and spare nodes."""

    nodes_today: int
    #: Nodes first-fit decreasing needs for today's pods alone.
    nodes_for_pods_today: int
    #: Nodes needed at the peak: pods, extra replicas, one surge, plus spare nodes.
    nodes_needed: int
    spare_nodes: int
    surge_pods: int
    extra_replicas: int

    @property
    def short_by(self) -> int:
        """Nodes missing at the peak (0 when today's nodes suffice)."""
        return max(0, self.nodes_needed - self.nodes_today)


def node_plan(
    requests: Sequence[tuple[float, float]],
    shape: tuple[float, float],
    *,
    target: Mapping[str, Any],
    extra_replicas: int,
    spare_nodes: int,
    nodes_today: int,
) -> NodePlan:
    """Return the nodes today's pods plus the forecast's extra replicas need.

    Parameters
    ----------
    requests
        ``(cpu_cores, memory_bytes)`` of every running pod (:func:`pod_requests`).
    shape
        The node allocatable to pack onto (:func:`node_shape`).
    target
        The Deployment whose replicas grow; its pod template gives the extra pods'
        requests and its strategy the rolling-update surge.
    extra_replicas
        Replicas to add at the peak (negative counts as 0).
    spare_nodes
        Nodes kept free so that losing that many still fits everything.
    nodes_today
        Nodes the cluster has now.
    """
    template_pod = {"spec": target.get("spec", {}).get("template", {}).get("spec", {})}
    per_replica = pod_requests([template_pod])[0]
    extra = max(0, extra_replicas)
    replicas = int(target.get("spec", {}).get("replicas", 1)) + extra
    strategy = target.get("spec", {}).get("strategy", {})
    surge = 0
    if strategy.get("type", "RollingUpdate") == "RollingUpdate":
        surge = surge_pods(replicas, strategy.get("rollingUpdate", {}).get("maxSurge", "25%"))
    needed = nodes_needed(
        [*requests, *([per_replica] * extra)],
        shape,
        spare_nodes=spare_nodes,
        surge_requests=[per_replica] * surge,
    )
    return NodePlan(
        nodes_today=nodes_today,
        nodes_for_pods_today=pack_nodes(requests, shape),
        nodes_needed=needed,
        spare_nodes=spare_nodes,
        surge_pods=surge,
        extra_replicas=extra,
    )


def peak_of_limit(sizing: pd.DataFrame, workload: str) -> float:
    """Return a workload's highest memory peak as a fraction of its container's limit."""
    rows = sizing[sizing["workload"] == workload]
    ratios = rows["memory_max_bytes"] / rows["memory_limit_bytes_current"]
    return float(ratios.max()) if len(ratios) else math.nan


def sizing_headline(sizing: pd.DataFrame, kills: pd.DataFrame) -> str:
    """Return the right-sizing headline as Markdown."""
    lines = []
    counts = sizing["verdict"].value_counts()
    lines.append(
        f"**{len(sizing)} containers: "
        + ", ".join(
            f"{counts[v]} {v}"
            for v in ("at-risk", "under-provisioned", "over-provisioned", "no-request", "ok")
            if v in counts
        )
        + ".**"
    )
    lines.append("")
    for row in sizing[sizing["verdict"] != "ok"].itertuples():
        lines.append(
            f"- `{row.namespace}/{row.workload}/{row.container}`: {row.verdict} ({row.reasons})."
        )
    for kill in kills.itertuples():
        lines.append(
            f"- OOM kill: `{kill.namespace}/{kill.pod}` container `{kill.container}` "
            f"at {kill.time:%Y-%m-%d %H:%M} UTC."
        )
    return "\n".join(lines)


def forecast_headline(
    forecast: Forecast, plan: ReplicaPlan, check: BacktestResult, *, weeks: int
) -> str:
    """Return the forecast and replica headline as Markdown, saying how the backtest went."""
    lines = [
        f"**Peak CPU demand in the next {weeks} weeks: {forecast.peak:.2f} cores "
        f"(95 % prediction interval {forecast.lower:.2f}–{forecast.upper:.2f}) on "
        f"{forecast.peak_time:%Y-%m-%d %H:00} UTC, needing {plan.replicas} replicas "
        f"({plan.replicas_upper} at the upper bound).**",
        "",
        f"- Trend: {forecast.growth_per_week:+.1%} a week ({forecast.trend_per_day:+.3f} cores "
        f"per day at today's level); {forecast.seasonality} seasonality.",
    ]
    if plan.max_replicas is not None:
        if plan.runs_out is None:
            lines.append(f"- maxReplicas {plan.max_replicas} holds over the whole horizon.")
        else:
            lines.append(
                f"- maxReplicas {plan.max_replicas} runs out on {plan.runs_out:%Y-%m-%d %H:00} UTC."
            )
    if check.beats_naive:
        verdict = "the model beats it"
    elif check.within_10_percent_of_naive:
        verdict = "the model does not beat it but stays within 10 % of it"
    else:
        verdict = "the model loses to it by more than 10 %: prefer the naive forecast"
    naive = "same hour last week"
    if check.naive_daily_origins:
        naive += f" (yesterday at {check.naive_daily_origins} origin(s) with under a week)"
    lines.append(
        f"- Backtest over {check.origins} origins: mean error (MAPE) {check.mape:.1%} against "
        f"{check.naive_mape:.1%} for the naive '{naive}' forecast; {verdict}."
    )
    return "\n".join(lines)


def runs_out_headline(
    plan: ReplicaPlan, nodes_date: pd.Timestamp | None, *, nodes_today: int, weeks: int
) -> str:
    """Return when today's maxReplicas and node count run out, as Markdown."""
    parts = []
    if plan.max_replicas is not None:
        parts.append(
            f"maxReplicas {plan.max_replicas}: "
            + (f"{plan.runs_out:%Y-%m-%d}" if plan.runs_out is not None else "holds")
        )
    parts.append(
        f"{nodes_today} nodes: " + (f"{nodes_date:%Y-%m-%d}" if nodes_date is not None else "hold")
    )
    return f"**Runs out within {weeks} weeks?** " + "; ".join(parts) + "."


def nodes_headline(plan: NodePlan, shape: tuple[float, float]) -> str:
    """Return the node headline as Markdown."""
    cpu, memory = shape
    verdict = "enough" if plan.short_by == 0 else f"{plan.short_by} node(s) short"
    return (
        f"**Nodes at the peak: {plan.nodes_needed} of {cpu:g} cores / {memory / 2**30:.1f} GiB "
        f"allocatable ({plan.nodes_today} today: {verdict}).** That packs today's pods "
        f"({plan.nodes_for_pods_today} nodes), {plan.extra_replicas} extra replica(s), "
        f"{plan.surge_pods} surge pod(s) and {plan.spare_nodes} spare node(s)."
    )


def pod_envelope(usage: pd.DataFrame, *, workload: str) -> dict[str, pd.Series]:
    """Return the highest and the median value across a workload's pods at each timestamp.

    One line per pod is unreadable once an autoscaler has churned through dozens
    of pods; the envelope shows both the worst pod and the typical one.
    """
    per_pod = pod_series(usage, workload=workload)
    if not per_pod:
        raise NoDataError(f"no series for workload {workload!r}", selector=workload)
    wide = pd.DataFrame(per_pod)
    return {"highest pod": wide.max(axis=1), "median pod": wide.median(axis=1)}


def sizing_table(sizing: pd.DataFrame) -> pd.DataFrame:
    """Return :func:`rightsizing` in reading units: cores to 3 decimals, memory in MiB."""
    mib = float(_MIB)
    table = pd.DataFrame(
        {
            "workload": sizing["namespace"] + "/" + sizing["workload"],
            "container": sizing["container"],
            "verdict": sizing["verdict"],
            "CPU p95 (cores)": sizing["cpu_p95_cores"].round(3),
            "CPU request": sizing["cpu_request_cores_current"].round(3),
            "CPU recommended": sizing["cpu_request_cores_recommended"].round(3),
            "memory peak (MiB)": (sizing["memory_max_bytes"] / mib).round(0),
            "memory request": (sizing["memory_request_bytes_current"] / mib).round(0),
            "memory limit": (sizing["memory_limit_bytes_current"] / mib).round(0),
            "memory recommended": (sizing["memory_request_bytes_recommended"] / mib).round(0),
            "why": sizing["reasons"],
        }
    )
    return table.set_index(["workload", "container"])


# --------------------------------------------------------------------------- run-out dates


def replicas_over_time(
    forecast: Forecast,
    *,
    cpu_request_cores: float,
    target_utilization: float,
    min_replicas: int = 1,
) -> pd.Series:
    """Return the replicas each forecast hour needs at the target utilization."""
    values = [
        replicas_needed(
            float(v),
            cpu_request_cores=cpu_request_cores,
            target_utilization=target_utilization,
            min_replicas=min_replicas,
        )
        for v in forecast.forecast.to_numpy()
    ]
    return pd.Series(values, index=forecast.forecast.index, name="replicas")


def nodes_run_out(
    replicas: pd.Series,
    requests: Sequence[tuple[float, float]],
    shape: tuple[float, float],
    *,
    target: Mapping[str, Any],
    spare_nodes: int,
    nodes_today: int,
) -> pd.Timestamp | None:
    """Return the first hour whose replicas need more nodes than today's, or None.

    Each distinct replica count of the forecast is packed once with
    :func:`node_plan` (today's pods, the extra replicas, a rolling update's
    surge and the spare nodes); counts only grow the need, so the answer is the
    first hour reaching the smallest count that does not fit.

    Parameters
    ----------
    replicas
        Replicas needed per forecast hour (:func:`replicas_over_time`).
    requests
        ``(cpu_cores, memory_bytes)`` of every running pod (:func:`pod_requests`).
    shape
        The node allocatable to pack onto.
    target
        The Deployment whose replicas grow.
    spare_nodes
        Nodes kept free (1: the plan survives losing one node).
    nodes_today
        Nodes the cluster has now.
    """
    current = int(target.get("spec", {}).get("replicas", 1))
    for count in sorted(set(int(r) for r in replicas)):
        plan = node_plan(
            requests,
            shape,
            target=target,
            extra_replicas=count - current,
            spare_nodes=spare_nodes,
            nodes_today=nodes_today,
        )
        if plan.nodes_needed > nodes_today:
            return replicas[replicas >= count].index[0]
    return None


# --------------------------------------------------------------------------- money

_GIB = 2**30
_HOURS_PER_MONTH = 730


def workload_replicas(workloads: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str], int]:
    """Return ``spec.replicas`` per (namespace, name); 1 where unset (the API's default)."""
    return {
        (
            (w.get("metadata") or {}).get("namespace", "default"),
            (w.get("metadata") or {}).get("name", ""),
        ): int((w.get("spec") or {}).get("replicas", 1))
        for w in workloads
    }


def costs(
    current: pd.DataFrame,
    recommended: pd.DataFrame,
    replicas: Mapping[tuple[str, str], int],
    *,
    price_core_hour: float,
    price_gib_hour: float,
    peak_replicas: Mapping[tuple[str, str], int] | None = None,
) -> pd.DataFrame:
    """Return requested cores, GiB and their price today, as recommended, and at the peak.

    Rows ``today``, ``recommended`` and ``at the forecast peak``; columns
    ``cpu_cores``, ``memory_gib``, ``per_hour`` and ``per_month`` (730 hours).
    A container without a recommendation keeps today's request; one without a
    request costs nothing, as the scheduler reserves nothing for it.

    Parameters
    ----------
    current
        :func:`requests_and_limits` of the workloads.
    recommended
        :func:`recommend` of the same workloads.
    replicas
        Replicas per (namespace, workload) today (:func:`workload_replicas`).
    price_core_hour
        Price of one requested core for one hour.
    price_gib_hour
        Price of one requested GiB of memory for one hour.
    peak_replicas
        Replicas at the forecast peak for the workloads that grow (others keep today's).
    """
    if price_core_hour < 0 or price_gib_hour < 0:
        raise ParameterError(
            "price_core_hour", f"prices cannot be negative, got {price_core_hour}, {price_gib_hour}"
        )
    merged = current.set_index(_KEYS)[["cpu_request_cores", "memory_request_bytes"]].merge(
        recommended.set_index(_KEYS)[["cpu_request_cores", "memory_request_bytes"]],
        left_index=True,
        right_index=True,
        suffixes=("", "_recommended"),
        how="left",
    )
    now_cpu = merged["cpu_request_cores"].fillna(0.0)
    now_memory = merged["memory_request_bytes"].fillna(0.0)
    rec_cpu = merged["cpu_request_cores_recommended"].fillna(now_cpu)
    rec_memory = merged["memory_request_bytes_recommended"].fillna(now_memory)
    keys = [(ns, wl) for ns, wl, _ in merged.index]
    today = np.array([replicas.get(k, 1) for k in keys], dtype=float)
    peak = np.array([(peak_replicas or {}).get(k, replicas.get(k, 1)) for k in keys], dtype=float)

    rows = {}
    for label, cpu, memory, count in (
        ("today", now_cpu, now_memory, today),
        ("recommended", rec_cpu, rec_memory, today),
        ("at the forecast peak", rec_cpu, rec_memory, peak),
    ):
        cores = float((cpu.to_numpy() * count).sum())
        gib = float((memory.to_numpy() * count).sum()) / _GIB
        per_hour = cores * price_core_hour + gib * price_gib_hour
        rows[label] = {
            "cpu_cores": cores,
            "memory_gib": gib,
            "per_hour": per_hour,
            "per_month": per_hour * _HOURS_PER_MONTH,
        }
    return pd.DataFrame.from_dict(rows, orient="index")


# --------------------------------------------------------------------------- for the meeting


def format_cpu(cores: float) -> str:
    """Return cores as a Kubernetes quantity rounded up to a millicore (``250m``, ``2``)."""
    if math.isnan(cores):
        return "unset"
    millicores = math.ceil(cores * 1000 - 1e-9)
    return f"{millicores // 1000}" if millicores % 1000 == 0 else f"{millicores}m"


def format_memory(memory_bytes: float) -> str:
    """Return bytes as a Kubernetes quantity rounded up to a MiB (``256Mi``, ``2Gi``)."""
    if math.isnan(memory_bytes):
        return "unset"
    mib = math.ceil(memory_bytes / _MIB - 1e-9)
    return f"{mib // 1024}Gi" if mib % 1024 == 0 and mib else f"{mib}Mi"


def _change(now: float, new: float) -> str:
    if math.isnan(new):
        return "?"
    if math.isnan(now) or now == 0:
        return "new"
    return f"{(new - now) / now:+.0%}"


def summary_table(current: pd.DataFrame, recommended: pd.DataFrame) -> pd.DataFrame:
    """Return the meeting's table: workload, current, recommended, change, confidence.

    One row per container; requests read ``CPU / memory`` as Kubernetes
    quantities, the change is relative to today's request, and rows that
    change most (by the larger of the two changes) come first.
    """
    table = current.set_index(_KEYS).merge(
        recommended.set_index(_KEYS)[
            ["cpu_request_cores", "memory_request_bytes", "confidence", "info"]
        ],
        left_index=True,
        right_index=True,
        suffixes=("", "_recommended"),
        how="inner",
    )
    rows = []
    for key, r in table.iterrows():
        namespace, workload, container = (str(part) for part in key)  # type: ignore[attr-defined]
        cpu_now, memory_now = float(r["cpu_request_cores"]), float(r["memory_request_bytes"])
        cpu_new = float(r["cpu_request_cores_recommended"])
        memory_new = float(r["memory_request_bytes_recommended"])
        size = max(
            abs(cpu_new - cpu_now) / cpu_now if cpu_now > 0 else math.inf,
            abs(memory_new - memory_now) / memory_now if memory_now > 0 else math.inf,
        )
        rows.append(
            {
                "workload": f"{namespace}/{workload}",
                "container": container,
                "current": f"{format_cpu(cpu_now)} / {format_memory(memory_now)}",
                "recommended": f"{format_cpu(cpu_new)} / {format_memory(memory_new)}",
                "change": (
                    f"CPU {_change(cpu_now, cpu_new)}, memory {_change(memory_now, memory_new)}"
                ),
                "confidence": r["confidence"],
                "note": r["info"],
                "_size": 0.0 if math.isnan(size) else size,
            }
        )
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    frame = frame.sort_values(["_size", "workload"], ascending=[False, True], kind="stable")
    return frame.drop(columns="_size").set_index(["workload", "container"])


def recommendations_csv(current: pd.DataFrame, recommended: pd.DataFrame) -> str:
    """Return the recommendations as CSV: current and recommended per resource, raw units.

    Columns ``namespace, workload, container``, then ``<resource>_current`` and
    ``<resource>_recommended`` for ``cpu_request_cores``, ``cpu_limit_cores``,
    ``memory_request_bytes`` and ``memory_limit_bytes``, then ``confidence``
    and ``info``; empty cells are unset values.
    """
    table = current.set_index(_KEYS)[_RESOURCE_COLUMNS].merge(
        recommended.set_index(_KEYS)[[*_RESOURCE_COLUMNS, "confidence", "info"]],
        left_index=True,
        right_index=True,
        suffixes=("_current", "_recommended"),
        how="outer",
    )
    ordered = [f"{c}_{side}" for c in _RESOURCE_COLUMNS for side in ("current", "recommended")]
    out = table[[*ordered, "confidence", "info"]].reset_index()
    return str(out.to_csv(index=False, lineterminator="\n", float_format="%.15g"))


def manifest_patch(
    recommended: pd.DataFrame, workloads: Iterable[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """Return one strategic-merge patch per workload setting the recommended resources.

    Apply with ``kubectl patch <kind> <name> -n <namespace> --patch-file``
    or merge by hand. Values are rounded up to a millicore and a MiB. A
    resource without a recommendation is left out; a CPU limit that the
    strategy leaves unset (KRR's ``simple``) is removed with ``null`` where the
    workload has one today.
    """
    by_key = recommended.set_index(_KEYS)
    patches = []
    for obj in workloads:
        meta = obj.get("metadata") or {}
        namespace, name = meta.get("namespace", "default"), meta.get("name")
        spec = ((obj.get("spec") or {}).get("template") or {}).get("spec") or {}
        containers = []
        for container in spec.get("containers") or []:
            key = (namespace, name, container.get("name"))
            if key not in by_key.index:
                continue
            rec = by_key.loc[key]  # type: ignore[index]
            today = (container.get("resources") or {}).get("limits") or {}
            requests: dict[str, Any] = {}
            limits: dict[str, Any] = {}
            if not math.isnan(rec["cpu_request_cores"]):
                requests["cpu"] = format_cpu(float(rec["cpu_request_cores"]))
                if not math.isnan(rec["cpu_limit_cores"]):
                    limits["cpu"] = format_cpu(float(rec["cpu_limit_cores"]))
                elif "cpu" in today:
                    limits["cpu"] = None
            if not math.isnan(rec["memory_request_bytes"]):
                requests["memory"] = format_memory(float(rec["memory_request_bytes"]))
                if not math.isnan(rec["memory_limit_bytes"]):
                    limits["memory"] = format_memory(float(rec["memory_limit_bytes"]))
            resources = {k: v for k, v in (("requests", requests), ("limits", limits)) if v}
            if resources:
                containers.append({"name": container.get("name"), "resources": resources})
        if containers:
            patches.append(
                {
                    "apiVersion": obj.get("apiVersion", "apps/v1"),
                    "kind": obj.get("kind", "Deployment"),
                    "metadata": {"name": name, "namespace": namespace},
                    "spec": {"template": {"spec": {"containers": containers}}},
                }
            )
    return patches
