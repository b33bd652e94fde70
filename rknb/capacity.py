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
    "SimpleSettings",
    "backtest",
    "forecast_peak",
    "nodes_needed",
    "pack_nodes",
    "parse_quantity",
    "recommend",
    "replicas_needed",
    "requests_and_limits",
    "rightsizing",
    "surge_pods",
    "usage_percentiles",
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
