"""The Kubernetes VPA recommender's algorithm, replayed over recorded usage.

The recommender keeps, per (VPA, container name), a decaying histogram of CPU
usage samples and one of daily memory peaks, and derives a target and lower and
upper bounds from percentiles of them. This module reproduces that arithmetic
(``vertical-pod-autoscaler/pkg/recommender``: ``util/histogram.go``,
``util/decaying_histogram.go``, ``model/container.go``, ``logic/estimator.go``,
``logic/recommender.go``) so that rknb's ``vpa`` strategy gives what a VPA in
``Off`` mode would have shown for the same history. Only
:mod:`rknb.capacity` uses it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from rknb.errors import ParameterError

_MIB = 2**20
_DAY_S = 86_400.0


@dataclass(frozen=True)
class VpaSettings:
    """Settings of the VPA recommender, with its defaults (``config.go``)."""

    #: Percentile of the CPU histogram and of the memory-peak histogram for the target.
    target_percentile: float = 0.9
    #: Percentile for the lower bound.
    lower_bound_percentile: float = 0.5
    #: Percentile for the upper bound.
    upper_bound_percentile: float = 0.95
    #: Every estimate is multiplied by 1 + this (``--recommendation-margin-fraction``).
    safety_margin_fraction: float = 0.15
    #: Minimum CPU per pod, split evenly over its containers
    #: (``--pod-recommendation-min-cpu-millicores``).
    pod_min_cpu_cores: float = 0.025
    #: Minimum memory per pod, split evenly (``--pod-recommendation-min-memory-mb``, in MiB).
    pod_min_memory_bytes: float = 250 * _MIB
    #: Half-life of the CPU histogram's decay.
    cpu_half_life_s: float = _DAY_S
    #: Half-life of the memory histogram's decay.
    memory_half_life_s: float = _DAY_S
    #: Length of one memory-peak interval (one peak per container per interval).
    memory_aggregation_interval_s: float = _DAY_S
    #: History read, before the latest sample (the Prometheus history provider's 8 days).
    history_s: float = 8 * _DAY_S
    #: Bucket growth ratio minus one (5 %).
    bucket_growth: float = 0.05
    #: Interval confidence is measured in (``confidence interval``, 24 h).
    confidence_interval_s: float = _DAY_S
    #: OOM kill: the memory used is raised to at least this ratio of itself …
    oom_bump_ratio: float = 1.2
    #: … and by at least this many bytes.
    oom_min_bump_bytes: float = 100 * _MIB
    #: The recommender's loop interval: one usage sample per container per interval.
    metrics_interval_s: float = 60.0

    def __post_init__(self) -> None:
        for name in ("target_percentile", "lower_bound_percentile", "upper_bound_percentile"):
            value = getattr(self, name)
            if not 0 < value <= 1:
                raise ParameterError(name, f"must be a fraction in (0, 1], got {value}")
        for name in (
            "cpu_half_life_s",
            "memory_half_life_s",
            "memory_aggregation_interval_s",
            "history_s",
            "bucket_growth",
            "confidence_interval_s",
            "metrics_interval_s",
        ):
            if not getattr(self, name) > 0:
                raise ParameterError(name, f"must be positive, got {getattr(self, name)}")
        if self.safety_margin_fraction < 0:
            raise ParameterError(
                "safety_margin_fraction", f"cannot be negative, got {self.safety_margin_fraction}"
            )


@dataclass(frozen=True)
class HistogramOptions:
    """Exponential bucket layout: bucket 0 is ``[0, first)``, each later one ``ratio`` wider."""

    max_value: float
    first_bucket: float
    ratio: float
    #: Weight under which a bucket counts as empty.
    epsilon: float = 1e-4

    @property
    def num_buckets(self) -> int:
        """Return how many buckets cover ``[0, max_value]``."""
        span = self.max_value * (self.ratio - 1) / self.first_bucket + 1
        return math.ceil(math.log(span) / math.log(self.ratio)) + 1

    def bucket_start(self, bucket: np.ndarray | int) -> np.ndarray:
        """Return the lower edge of a bucket (or of each bucket in an array)."""
        n = np.asarray(bucket, dtype=float)
        return np.where(n == 0, 0.0, self.first_bucket * (self.ratio**n - 1) / (self.ratio - 1))

    def find_bucket(self, values: np.ndarray) -> np.ndarray:
        """Return the bucket of each value (values past the last bucket land in it)."""
        v = np.asarray(values, dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            raw = np.floor(
                np.log(np.maximum(v, 0) * (self.ratio - 1) / self.first_bucket + 1)
                / np.log(self.ratio)
            )
        raw = np.where(v < self.first_bucket, 0, raw)
        return np.clip(raw, 0, self.num_buckets - 1).astype(int)


def cpu_histogram_options(growth: float = 0.05) -> HistogramOptions:
    """Return the CPU histogram layout: 0.01-core first bucket, up to 1000 cores."""
    return HistogramOptions(max_value=1000.0, first_bucket=0.01, ratio=1 + growth)


def memory_histogram_options(growth: float = 0.05) -> HistogramOptions:
    """Return the memory histogram layout: 10 MB (1e7 B) first bucket, up to 1 TB (1e12 B)."""
    return HistogramOptions(max_value=1e12, first_bucket=1e7, ratio=1 + growth)


def histogram_percentile(
    options: HistogramOptions, values: np.ndarray, weights: np.ndarray, percentile: float
) -> float:
    """Return the histogram's percentile: the upper edge of the bucket reaching it.

    Values are bucketed and their weights summed; the answer is the end of the
    first bucket at which the cumulative weight reaches ``percentile`` of the
    total (the start of the last bucket, which has no end). An empty histogram
    gives 0.
    """
    counts = np.bincount(
        options.find_bucket(values),
        weights=np.asarray(weights, dtype=float),
        minlength=options.num_buckets,
    )
    filled = np.flatnonzero(counts >= options.epsilon)
    if filled.size == 0:
        return 0.0
    low, high = int(filled[0]), int(filled[-1])
    cumulative = np.cumsum(counts[low : high + 1])
    threshold = percentile * float(counts.sum())
    reached = np.flatnonzero(cumulative >= threshold)
    bucket = low + int(reached[0]) if reached.size else high
    if bucket < options.num_buckets - 1:
        return float(options.bucket_start(bucket + 1))
    return float(options.bucket_start(bucket))


def decay_weights(times_s: np.ndarray, half_life_s: float) -> np.ndarray:
    """Return ``2 ** ((t - ref) / half_life)`` per sample time, ``ref`` the first half-life start.

    Only ratios between weights matter to a percentile; starting from the
    half-life boundary before the oldest sample keeps every factor at 1 or more,
    as the recommender's reference time does.
    """
    t = np.asarray(times_s, dtype=float)
    if t.size == 0:
        return t
    reference = math.floor(float(t.min()) / half_life_s) * half_life_s
    return np.exp2((t - reference) / half_life_s)


def confidence(first_s: float, last_s: float, samples: float, interval_s: float) -> float:
    """Return the recommender's confidence: ``min(lifespan, samples per minute)`` in intervals.

    ``lifespan`` is the time between the first and the last CPU sample, and the
    sample count is normalised so that one sample a minute for one interval
    gives 1.
    """
    lifespan = (last_s - first_s) / interval_s
    amount = samples / (interval_s / 60.0)
    return min(lifespan, amount)


def confidence_multiplier(value: float, multiplier: float, exponent: float, conf: float) -> float:
    """Return ``value × (1 + multiplier / confidence) ** exponent``, as the bound estimators do.

    With no confidence the upper bound (positive exponent) becomes the
    recommender's largest amount, 1e14, and the lower bound 0.
    """
    if conf <= 0:
        return 1e14 if exponent > 0 else 0.0
    return min(value * (1 + multiplier / conf) ** exponent, 1e14)


def memory_peaks(
    samples: pd.DataFrame,
    ooms: pd.DataFrame,
    *,
    interval_s: float,
    memory_request_bytes: float,
    oom_bump_ratio: float,
    oom_min_bump_bytes: float,
) -> list[tuple[float, float]]:
    """Return one container's memory peaks as ``(interval end, bytes)``, OOM kills included.

    Intervals start at the container's first sample and last ``interval_s``;
    within one, a higher sample replaces the peak. An OOM kill adds
    ``max(used + min bump, used × ratio)`` where ``used = max(request, the
    interval's usage peak)``; it replaces the peak when higher and is ignored
    when it falls before the previous interval.

    Parameters
    ----------
    samples
        ``timestamp_s`` and ``value`` (working-set bytes) of one pod's container.
    ooms
        ``timestamp_s`` of that container's OOM kills.
    interval_s
        The memory aggregation interval.
    memory_request_bytes
        The container's memory request (NaN or 0 when unset).
    oom_bump_ratio
        Ratio an OOM kill raises the memory used by.
    oom_min_bump_bytes
        The least an OOM kill raises it by.
    """
    events: list[tuple[float, int, float]] = [
        (float(t), 1, float(v))
        for t, v in zip(samples["timestamp_s"], samples["value"], strict=True)
    ]
    # An OOM kill sorts before a sample of the same instant, as the kill came first.
    events += [(float(t), 0, math.nan) for t in ooms["timestamp_s"]]
    events.sort()
    request = 0.0 if math.isnan(memory_request_bytes) else memory_request_bytes

    peaks: list[list[float]] = []  # [interval end, peak]
    window_end: float | None = None
    usage_peak = oom_peak = 0.0
    last_sample = -math.inf
    for t, kind, value in events:
        is_oom = kind == 0
        if is_oom:
            if window_end is not None and t < window_end - interval_s:
                continue  # too old for the current interval
            used = max(request, usage_peak)
            value = max(used + oom_min_bump_bytes, used * oom_bump_ratio)
        elif t < last_sample:
            continue
        else:
            last_sample = t
        if window_end is None:
            window_end = t
        if t < window_end:
            current = max(usage_peak, oom_peak)
            if current != 0 and value > current:
                peaks[-1][1] = value
                if is_oom:
                    oom_peak = value
                else:
                    usage_peak = value
        else:
            shift = math.floor((t - window_end) / interval_s) * interval_s + interval_s
            window_end += shift
            usage_peak = oom_peak = 0.0
            peaks.append([window_end, value])
            if is_oom:
                oom_peak = value
            else:
                usage_peak = value
    return [(end, peak) for end, peak in peaks]


def _millicores(cores: float) -> float:
    # The recommender holds CPU as whole millicores and truncates every scaled amount.
    return math.floor(cores * 1000 + 1e-9) / 1000


def _bytes(amount: float) -> float:
    return float(math.floor(amount + 1e-9))


@dataclass(frozen=True)
class Estimate:
    """Target and bounds for one resource of one container, and the confidence behind them."""

    target: float
    lower: float
    upper: float


def estimate(
    options: HistogramOptions,
    values: np.ndarray,
    weights: np.ndarray,
    settings: VpaSettings,
    conf: float,
    minimum: float,
    quantize: Callable[[float], float],
) -> Estimate:
    """Return target, lower and upper bound: percentile, margin, confidence, minimum.

    Parameters
    ----------
    options
        The histogram layout of the resource.
    values
        Samples (cores) or peaks (bytes).
    weights
        The decayed weight of each value.
    settings
        Percentiles and the safety margin.
    conf
        Confidence in intervals (:func:`confidence`).
    minimum
        The container's share of the pod minimum.
    quantize
        Rounds an amount to the recommender's integer unit (millicores or bytes).
    """
    margin = 1 + settings.safety_margin_fraction

    def base(p: float) -> float:
        return float(quantize(quantize(histogram_percentile(options, values, weights, p)) * margin))

    target = base(settings.target_percentile)
    lower = quantize(confidence_multiplier(base(settings.lower_bound_percentile), 0.001, -2, conf))
    upper = quantize(confidence_multiplier(base(settings.upper_bound_percentile), 1.0, 1, conf))
    return Estimate(
        target=max(target, minimum), lower=max(lower, minimum), upper=max(upper, minimum)
    )


def quantize_cpu(cores: float) -> float:
    """Return cores truncated to a whole millicore, as the recommender stores CPU."""
    return _millicores(cores)


def quantize_memory(amount: float) -> float:
    """Return bytes truncated to a whole byte, as the recommender stores memory."""
    return _bytes(amount)
