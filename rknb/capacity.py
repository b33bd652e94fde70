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

from rknb.errors import NoDataError, ParameterError

__all__ = [
    "AT_RISK_MEMORY_LIMIT_RATIO",
    "OVER_PROVISIONED_USAGE_RATIO",
    "STRATEGIES",
    "UNDER_PROVISIONED_USAGE_RATIO",
    "BacktestResult",
    "Forecast",
    "NodePlan",
    "ReplicaPlan",
    "SimpleSettings",
    "backtest",
    "backtest_rolling",
    "capacity_runs_out",
    "forecast_headline",
    "forecast_peak",
    "node_plan",
    "node_shape",
    "nodes_headline",
    "nodes_needed",
    "oom_kills",
    "pack_nodes",
    "parse_quantity",
    "peak_of_limit",
    "pod_envelope",
    "pod_requests",
    "pod_series",
    "recommend",
    "replica_plan",
    "replicas_needed",
    "requests_and_limits",
    "restart_events",
    "rightsizing",
    "sizing_headline",
    "sizing_table",
    "surge_pods",
    "usage_percentiles",
    "workload_demand",
    "workload_of_pod",
]

logger = logging.getLogger(__name__)

_KEYS = ["namespace", "workload", "container"]
_MIB = 2**20

# --------------------------------------------------------------------------- quantities

_BINARY_SUFFIXES = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL_SUFFIXES = {
    "n": 1e-9,
    "u": 1e-6,
    "m": 1e-3,
    "": 1.0,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "P": 1e15,
    "E": 1e18,
}
_QUANTITY = re.compile(
    r"^(?P<number>[+-]?(?:\d+\.?\d*|\.\d+))"
    r"(?:(?P<exponent>[eE][+-]?\d+)|(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE])?)$"
)


def parse_quantity(value: str | int | float, *, name: str = "quantity") -> float:
    """Return a Kubernetes resource quantity as a float in base units (cores, bytes).

    Accepts the API's grammar: a signed decimal number followed by a binary
    suffix (``Ki`` … ``Ei``), a decimal suffix (``n u m k M G T P E``) or a
    decimal exponent (``1e3``, ``5E-2``).
    """
    if isinstance(value, bool):
        raise ParameterError(name, f"expected a quantity such as '250m' or '256Mi', got {value!r}")
    if isinstance(value, int | float):
        return float(value)
    match = _QUANTITY.match(str(value).strip())
    if match is None:
        raise ParameterError(
            name, f"expected a Kubernetes quantity such as '250m', '0.5' or '256Mi', got {value!r}"
        )
    number = float(match["number"])
    if match["exponent"]:
        return number * 10.0 ** int(match["exponent"][1:])
    suffix = match["suffix"] or ""
    if suffix in _BINARY_SUFFIXES:
        return number * _BINARY_SUFFIXES[suffix]
    return number * _DECIMAL_SUFFIXES[suffix]


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


_RECOMMENDATION_COLUMNS = [
    *_KEYS,
    *_RESOURCE_COLUMNS,
    "cpu_samples",
    "memory_samples",
    "info",
]


def _simple(cpu: pd.DataFrame, memory: pd.DataFrame, settings: SimpleSettings) -> pd.DataFrame:
    """Return KRR ``simple`` recommendations (CPU limit unset, memory request = limit)."""
    cpu_frame = _with_workload(cpu, "cpu")
    memory_frame = _with_workload(memory, "memory")
    # KRR sends the percentile to PromQL rounded to two decimals of a fraction.
    q = round(settings.cpu_percentile / 100, 2)

    # Per pod: the percentile of its samples; per container: the maximum over pods.
    per_pod_cpu = cpu_frame.groupby([*_KEYS, "pod"])["value"].quantile(q)
    cpu_by_key = per_pod_cpu.groupby(level=_KEYS).max()
    cpu_count = cpu_frame.groupby(_KEYS)["value"].size()
    memory_peak = memory_frame.groupby(_KEYS)["value"].max()
    memory_count = memory_frame.groupby(_KEYS)["value"].size()

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
        memory_rec = math.nan
        if n_memory == 0:
            info.append("no memory data")
        elif n_memory < settings.points_required:
            info.append(f"not enough memory data ({n_memory} < {settings.points_required} samples)")
        else:
            buffered = float(memory_peak[key]) * (1 + settings.memory_buffer_percentage / 100)
            memory_rec = _round_memory(buffered, settings.memory_min_bytes)
        rows.append(
            {
                **dict(zip(_KEYS, key, strict=True)),
                "cpu_request_cores": cpu_request,
                "cpu_limit_cores": math.nan,
                "memory_request_bytes": memory_rec,
                "memory_limit_bytes": memory_rec,
                "cpu_samples": n_cpu,
                "memory_samples": n_memory,
                "info": "; ".join(info),
            }
        )
    return pd.DataFrame(rows, columns=_RECOMMENDATION_COLUMNS)


def _round_cpu(cores: float, minimum: float) -> float:
    # Up to a whole millicore; the tiny allowance keeps 0.25 from becoming 0.251.
    return max(math.ceil(cores * 1000 - 1e-9) / 1000, minimum)


def _round_memory(memory_bytes: float, minimum: float) -> float:
    return max(math.ceil(memory_bytes / _MIB - 1e-9) * _MIB, minimum)


@dataclass(frozen=True)
class _Strategy:
    settings: type[Any]
    run: Callable[[pd.DataFrame, pd.DataFrame, Any], pd.DataFrame]


#: Recommendation strategies by name; each has a settings dataclass and a function.
STRATEGIES: dict[str, _Strategy] = {
    "simple": _Strategy(SimpleSettings, _simple),
}


def recommend(
    strategy: str, cpu: pd.DataFrame, memory: pd.DataFrame, **settings: Any
) -> pd.DataFrame:
    """Return recommended requests and limits per (namespace, workload, container).

    Columns: ``namespace, workload, container, cpu_request_cores,
    cpu_limit_cores, memory_request_bytes, memory_limit_bytes, cpu_samples,
    memory_samples, info``. NaN means no recommendation for a value (see
    ``info``) or, for ``cpu_limit_cores`` under ``simple``, no limit.

    Parameters
    ----------
    strategy
        A name from :data:`STRATEGIES` (``"simple"``: KRR's simple strategy).
    cpu
        A ``container_cpu_cores`` answer (cores per sample).
    memory
        A ``container_memory_bytes`` answer (working-set bytes per sample).
    **settings
        Fields of the strategy's settings dataclass (for ``simple``:
        :class:`SimpleSettings`).
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
    return chosen.run(cpu, memory, chosen.settings(**settings))


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


@dataclass(frozen=True)
class Forecast:
    """A peak forecast from hourly peaks: linear trend plus an hour-of-week profile."""

    #: Highest forecast hourly peak over the horizon (unit of the input).
    peak: float
    #: The hour (UTC) at which that peak is forecast.
    peak_time: pd.Timestamp
    #: ``peak`` minus / plus 1.96 residual standard deviations (a ~95 % interval).
    lower: float
    upper: float
    #: Fitted trend per day (unit of the input per day).
    trend_per_day: float
    #: Standard deviation of the fit's residuals (degrees of freedom corrected).
    residual_std: float
    #: The hourly peaks the fit used.
    hourly_peaks: pd.Series
    #: Forecast hourly peaks over the horizon.
    forecast: pd.Series


def _hourly_peaks(demand: pd.Series) -> pd.Series:
    if not isinstance(demand.index, pd.DatetimeIndex):
        raise ParameterError("demand", "needs a DatetimeIndex (UTC timestamps)")
    return demand.resample("1h").max().dropna()


def _hour_of_week(index: pd.Index) -> np.ndarray:
    times = pd.DatetimeIndex(index)
    return np.asarray(times.day_of_week * 24 + times.hour, dtype=int)


def _hours_since(index: pd.Index, origin: pd.Timestamp) -> np.ndarray:
    return np.asarray((pd.DatetimeIndex(index) - origin) / pd.Timedelta(hours=1), dtype=float)


def _fit(peaks: pd.Series) -> tuple[float, np.ndarray, np.ndarray, pd.Timestamp]:
    """Return (slope per hour, seasonal level per hour of week, residuals, time origin)."""
    how = _hour_of_week(peaks.index)
    if len(set(how.tolist())) < _WEEK_H:
        raise NoDataError(
            f"the demand covers {len(set(how.tolist()))} of the 168 hours of a week; "
            "give at least 7 days of history so every hour of the week is seen"
        )
    origin = peaks.index[0]
    hours = _hours_since(peaks.index, origin)
    design = np.zeros((len(peaks), 1 + _WEEK_H))
    design[:, 0] = hours
    design[np.arange(len(peaks)), 1 + how] = 1.0
    y = peaks.to_numpy(dtype=float)
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    residuals = y - design @ coef
    return float(coef[0]), coef[1:], residuals, origin


def forecast_peak(demand: pd.Series, *, horizon_days: float = 28) -> Forecast:
    """Return the forecast peak of a demand series over the next ``horizon_days``.

    The series is reduced to hourly peaks, then fitted by least squares to a
    linear trend plus one level per hour of the week (168 levels). The interval
    is the peak ± 1.96 residual standard deviations: it assumes independent,
    normal residuals and ignores the uncertainty of the trend itself.

    Parameters
    ----------
    demand
        Values (cores, requests/s …) indexed by UTC timestamps; at least 7 days.
    horizon_days
        How far past the last sample to forecast.
    """
    peaks = _hourly_peaks(demand)
    slope, seasonal, residuals, origin = _fit(peaks)
    dof = max(len(peaks) - (1 + _WEEK_H), 1)
    residual_std = float(math.sqrt(float(residuals @ residuals) / dof))

    future = pd.date_range(
        peaks.index[-1] + pd.Timedelta(hours=1), periods=int(horizon_days * 24), freq="1h"
    )
    values = slope * _hours_since(future, origin) + seasonal[_hour_of_week(future)]
    forecast = pd.Series(values, index=future, name="forecast")
    at = int(np.argmax(values))
    peak = float(values[at])
    return Forecast(
        peak=peak,
        peak_time=future[at],
        lower=peak - 1.96 * residual_std,
        upper=peak + 1.96 * residual_std,
        trend_per_day=slope * 24,
        residual_std=residual_std,
        hourly_peaks=peaks,
        forecast=forecast,
    )


@dataclass(frozen=True)
class BacktestResult:
    """Forecast accuracy at several origins, against the seasonal naive forecast."""

    #: Mean absolute percentage error of :func:`forecast_peak`'s model (0.05 = 5 %).
    mape: float
    #: The same for the naive forecast "same hour last week" (the last week repeated).
    naive_mape: float
    #: Number of forecast hours compared.
    points: int


def backtest(
    demand: pd.Series, origins: Iterable[pd.Timestamp | str], horizon_days: float
) -> BacktestResult:
    """Return the model's and the naive forecast's MAPE over hourly peaks after each origin.

    At each origin the model is fitted on the hourly peaks before it and
    compared, hour by hour over the horizon, with the actual peaks; hours with
    an actual peak of 0 are left out of the percentage error.
    """
    peaks = _hourly_peaks(demand)
    model_errors: list[np.ndarray] = []
    naive_errors: list[np.ndarray] = []
    for origin in origins:
        start = pd.Timestamp(origin)
        start = start.tz_localize("UTC") if start.tzinfo is None else start
        history = peaks[peaks.index < start]
        actual = peaks[
            (peaks.index >= start) & (peaks.index < start + pd.Timedelta(days=horizon_days))
        ]
        actual = actual[actual != 0]
        if actual.empty:
            continue
        slope, seasonal, _, fit_origin = _fit(history)
        hours = _hours_since(actual.index, fit_origin)
        model = slope * hours + seasonal[_hour_of_week(actual.index)]

        # Seasonal naive: the last observed week, repeated.
        last_week = history[history.index >= history.index[-1] - pd.Timedelta(hours=_WEEK_H - 1)]
        by_hour = dict(zip(_hour_of_week(last_week.index), last_week.to_numpy(), strict=True))
        naive = np.array([by_hour.get(h, np.nan) for h in _hour_of_week(actual.index)])

        truth = actual.to_numpy(dtype=float)
        model_errors.append(np.abs(truth - model) / np.abs(truth))
        naive_errors.append(np.abs(truth - naive) / np.abs(truth))
    if not model_errors:
        raise NoDataError("no actual demand follows any backtest origin; pick earlier origins")
    model_all = np.concatenate(model_errors)
    naive_all = np.concatenate(naive_errors)
    return BacktestResult(
        mape=float(np.mean(model_all)),
        naive_mape=float(np.nanmean(naive_all)),
        points=len(model_all),
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
    free: list[list[float]] = []
    for cpu, memory in order:
        for node in free:
            # A hair of allowance: four 0.25-core pods fill a 1-core node exactly.
            if cpu <= node[0] + 1e-9 and memory <= node[1] + 1e-9:
                node[0] -= cpu
                node[1] -= memory
                break
        else:
            free.append([node_cpu - cpu, node_memory - memory])
    return len(free)


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
    demand: pd.Series, *, horizon_days: float, min_history_days: float = 7
) -> BacktestResult:
    """Return :func:`backtest` with an origin every day once ``min_history_days`` are known.

    The last origin leaves a whole horizon of actual demand after it.
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
    """Return the forecast and replica headline as Markdown."""
    lines = [
        f"**Peak CPU demand in the next {weeks} weeks: {forecast.peak:.2f} cores "
        f"(95 % interval {forecast.lower:.2f}–{forecast.upper:.2f}) on "
        f"{forecast.peak_time:%Y-%m-%d %H:00} UTC, needing {plan.replicas} replicas "
        f"({plan.replicas_upper} at the upper bound).**",
        "",
        f"- Trend: {forecast.trend_per_day:+.3f} cores per day.",
    ]
    if plan.max_replicas is not None:
        if plan.runs_out is None:
            lines.append(f"- maxReplicas {plan.max_replicas} holds over the whole horizon.")
        else:
            lines.append(
                f"- maxReplicas {plan.max_replicas} runs out on {plan.runs_out:%Y-%m-%d %H:00} UTC."
            )
    better = "beats" if check.mape < check.naive_mape else "does not beat"
    lines.append(
        f"- Backtest: mean error {check.mape:.1%} against {check.naive_mape:.1%} for the naive "
        f"'same hour last week' forecast; the model {better} it."
    )
    return "\n".join(lines)


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
