"""The ``vpa`` strategy against the recommender's own test vectors and hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from rknb import _vpa, capacity
from rknb.errors import ParameterError

MIB = 2**20
DAY_S = 86_400
T0 = pd.Timestamp("2026-01-05T00:00:00Z")


def start_of(bucket: int, first: float) -> float:
    """The lower edge of bucket n: first x (1.05^n - 1) / 0.05."""
    return first * (1.05**bucket - 1) / 0.05


def frame(values: dict[tuple[str, str], list[float]], step_s: int = 60) -> pd.DataFrame:
    rows = [
        {
            "timestamp": T0 + pd.Timedelta(seconds=i * step_s),
            "namespace": "shop",
            "pod": pod,
            "container": container,
            "value": float(v),
        }
        for (pod, container), series in values.items()
        for i, v in enumerate(series)
    ]
    return pd.DataFrame(rows)


def current(
    request_cores: float, limit_cores: float, request_b: float, limit_b: float
) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "namespace": "shop",
                "workload": "web",
                "container": "app",
                "cpu_request_cores": request_cores,
                "cpu_limit_cores": limit_cores,
                "memory_request_bytes": request_b,
                "memory_limit_bytes": limit_b,
            }
        ]
    )


POD = "web-5d8f7b9c4d-abcde"


# ---------------------------------------------------------------- histograms


def test_vpa_defaults_are_the_recommenders_defaults() -> None:
    s = _vpa.VpaSettings()
    assert (s.target_percentile, s.lower_bound_percentile, s.upper_bound_percentile) == (
        0.9,
        0.5,
        0.95,
    )
    assert s.safety_margin_fraction == 0.15
    assert s.pod_min_cpu_cores == 0.025
    assert s.pod_min_memory_bytes == 250 * 1024 * 1024
    assert s.cpu_half_life_s == s.memory_half_life_s == DAY_S
    assert s.memory_aggregation_interval_s == DAY_S
    assert s.history_s == 8 * DAY_S
    assert s.bucket_growth == 0.05
    assert s.confidence_interval_s == DAY_S
    assert (s.oom_bump_ratio, s.oom_min_bump_bytes) == (1.2, 104_857_600)


def test_histograms_have_176_exponential_buckets() -> None:
    cpu = _vpa.cpu_histogram_options()
    memory = _vpa.memory_histogram_options()
    assert cpu.num_buckets == 176
    assert memory.num_buckets == 176
    assert float(cpu.bucket_start(1)) == pytest.approx(0.01)
    assert float(cpu.bucket_start(36)) == pytest.approx(0.9584, abs=1e-4)
    assert cpu.find_bucket(np.array([0.0, 0.0099, 0.01, 1.0, 5000.0])).tolist() == [
        0,
        0,
        1,
        36,
        175,
    ]


def test_percentile_is_the_upper_edge_of_the_bucket() -> None:
    cpu = _vpa.cpu_histogram_options()
    # A constant 1.0 core sits in bucket 36 = [0.9584, 1.0163): the answer is 1.0163.
    got = _vpa.histogram_percentile(cpu, np.ones(10), np.ones(10), 0.9)
    assert got == pytest.approx(start_of(37, 0.01))
    assert got == pytest.approx(1.0163, abs=1e-4)
    assert _vpa.histogram_percentile(cpu, np.array([]), np.array([]), 0.9) == 0.0


def test_percentile_estimator_vectors() -> None:
    # estimator_test.go TestPercentileEstimator: within 5 % of 1.0 core and 2e9 bytes.
    cpu = _vpa.histogram_percentile(
        _vpa.cpu_histogram_options(), np.array([1.0, 2.0, 3.0]), np.ones(3), 0.2
    )
    memory = _vpa.histogram_percentile(
        _vpa.memory_histogram_options(), np.array([1e9, 2e9, 3e9]), np.ones(3), 0.5
    )
    assert cpu == pytest.approx(1.0, rel=0.05)
    assert memory == pytest.approx(2e9, rel=0.05)


def test_decay_makes_a_sample_a_day_newer_count_twice() -> None:
    assert _vpa.decay_weights(np.array([0.0, DAY_S, 2.5 * DAY_S]), DAY_S).tolist() == [
        1.0,
        2.0,
        2**2.5,
    ]
    # A day at 1 core, then a day at 2 cores, one sample a minute. Undecayed, the 40th
    # percentile lies in the first day; decayed, the first day holds only
    # (2 - 1) / (4 - 1) = 1/3 of the weight, so it lies in the second.
    t = np.arange(2 * 1440) * 60.0
    values = np.where(t < DAY_S, 1.0, 2.0)
    cpu = _vpa.cpu_histogram_options()
    flat = _vpa.histogram_percentile(cpu, values, np.ones_like(t), 0.4)
    decayed = _vpa.histogram_percentile(cpu, values, _vpa.decay_weights(t, DAY_S), 0.4)
    assert flat == pytest.approx(1.0163, abs=1e-4)
    assert decayed > 2.0


# ---------------------------------------------------------------- estimators


def test_confidence_multiplier_vectors() -> None:
    # Nine samples two minutes apart: lifespan 16 min, 9 samples.
    conf = _vpa.confidence(0.0, 16 * 60.0, 9, DAY_S)
    assert conf == pytest.approx(0.00625)  # 9 / 1440 beats 16 / 1440
    assert _vpa.confidence_multiplier(3.14, 0.1, 2, conf) == pytest.approx(907.46)
    assert _vpa.confidence_multiplier(3.14e9, 0.1, 2, conf) == pytest.approx(9.0746e11)
    custom = _vpa.confidence(0.0, 16 * 60.0, 9, 18 * 60)
    assert custom == pytest.approx(0.5)
    assert _vpa.quantize_cpu(_vpa.confidence_multiplier(3.14, 0.1, 2, custom)) == 4.521
    assert _vpa.quantize_memory(
        _vpa.confidence_multiplier(3.14e9, 0.1, 2, custom)
    ) == pytest.approx(4.5216e9)
    # No history at all: the upper bound is the largest amount, the lower bound nothing.
    assert _vpa.confidence_multiplier(1.0, 1.0, 1, 0.0) == 1e14
    assert _vpa.confidence_multiplier(1.0, 0.001, -2, 0.0) == 0.0


def test_bound_multipliers_at_familiar_histories() -> None:
    def upper(days: float) -> float:
        return _vpa.confidence_multiplier(1.0, 1.0, 1, days)

    def lower(days: float) -> float:
        return _vpa.confidence_multiplier(1.0, 0.001, -2, days)

    assert (upper(0.5), upper(1.0), upper(7.0)) == pytest.approx((3.0, 2.0, 8 / 7))
    assert lower(5 / 1440) == pytest.approx(0.6, abs=0.01)
    assert lower(1 / 24) == pytest.approx(0.95, abs=0.01)


def test_oom_kill_bumps_the_interval_peak() -> None:
    samples = pd.DataFrame(
        {"timestamp_s": [0.0, 60.0, 120.0], "value": [150 * MIB, 200 * MIB, 180 * MIB]}
    )

    def peaks(kill_at: list[float], request: float) -> list[tuple[float, float]]:
        return _vpa.memory_peaks(
            samples,
            pd.DataFrame({"timestamp_s": kill_at}),
            interval_s=DAY_S,
            memory_request_bytes=request,
            oom_bump_ratio=1.2,
            oom_min_bump_bytes=100 * MIB,
        )

    # One interval from the first sample: its peak is 200 MiB, at the interval's end.
    assert peaks([], 256 * MIB) == [(DAY_S, 200 * MIB)]
    # used = max(request 256 MiB, peak 200 MiB); +100 MiB beats x1.2 (307.2 MiB).
    assert peaks([90.0], 256 * MIB) == [(DAY_S, 356 * MIB)]
    # No request: used = the peak so far, 200 MiB; 300 MiB beats 240 MiB.
    assert peaks([90.0], math.nan) == [(DAY_S, 300 * MIB)]
    # used = 1000 MiB: x1.2 = 1200 MiB beats +100 MiB.
    assert peaks([90.0], 1000 * MIB) == [(DAY_S, 1200 * MIB)]


def test_memory_keeps_one_peak_per_container_per_day() -> None:
    t = np.arange(0, 3 * DAY_S, 3600.0)
    values = np.where(t < DAY_S, 100.0, np.where(t < 2 * DAY_S, 300.0, 200.0)) * MIB
    values[5] = 120 * MIB
    got = _vpa.memory_peaks(
        pd.DataFrame({"timestamp_s": t, "value": values}),
        pd.DataFrame({"timestamp_s": []}),
        interval_s=DAY_S,
        memory_request_bytes=math.nan,
        oom_bump_ratio=1.2,
        oom_min_bump_bytes=100 * MIB,
    )
    assert got == [(DAY_S, 120 * MIB), (2 * DAY_S, 300 * MIB), (3 * DAY_S, 200 * MIB)]


# ---------------------------------------------------------------- the strategy


def test_vpa_strategy_on_two_steady_days_matches_the_hand_computation() -> None:
    n = 2 * 1440  # two days, one sample a minute
    cpu = frame({(POD, "app"): [0.5] * n})
    memory = frame({(POD, "app"): [300 * MIB] * n})
    got = capacity.recommend("vpa", cpu, memory, current=current(0.25, 0.5, 256 * MIB, 512 * MIB))
    row = got.iloc[0]

    # CPU: 0.5 core is in bucket 25; its upper edge, in whole millicores, times 1.15.
    edge_m = math.floor(start_of(26, 0.01) * 1000)  # 511 m
    target = math.floor(edge_m * 1.15) / 1000  # 0.587
    assert row.cpu_request_cores == target == 0.587
    # Confidence: min(lifespan 2879 min, 2880 samples) / 1440 per day.
    conf = 2879 / 1440
    assert row.history_days == pytest.approx(conf)
    assert row.confidence == "medium"
    assert row.cpu_upper_cores == math.floor(target * (1 + 1 / conf) * 1000) / 1000
    assert row.cpu_lower_cores == math.floor(target * (1 + 0.001 / conf) ** -2 * 1000) / 1000
    # Limits keep today's 1:2 ratio.
    assert row.cpu_limit_cores == pytest.approx(2 * 0.587)

    # Memory: two daily peaks of 300 MiB in bucket 19; its upper edge, in bytes, times 1.15.
    edge_b = math.floor(start_of(20, 1e7))
    assert row.memory_request_bytes == math.floor(edge_b * 1.15)
    assert row.memory_limit_bytes == pytest.approx(2 * row.memory_request_bytes)


def test_vpa_floors_are_per_pod_and_split_over_containers() -> None:
    n = 1440
    one = capacity.recommend(
        "vpa", frame({(POD, "app"): [0.001] * n}), frame({(POD, "app"): [20 * MIB] * n})
    )
    assert one.iloc[0].cpu_request_cores == 0.025
    assert one.iloc[0].memory_request_bytes == 250 * MIB
    two = capacity.recommend(
        "vpa",
        frame({(POD, "app"): [0.001] * n, (POD, "proxy"): [0.001] * n}),
        frame({(POD, "app"): [20 * MIB] * n, (POD, "proxy"): [20 * MIB] * n}),
    )
    # 25 m / 2 = 12.5 m, truncated to a whole millicore; 250 MiB / 2 = 125 MiB.
    assert two["cpu_request_cores"].tolist() == [0.012, 0.012]
    assert two["memory_request_bytes"].tolist() == [125 * MIB, 125 * MIB]


def test_vpa_reads_only_its_eight_days_of_history() -> None:
    # Ten days: two at 4 cores, then eight at 0.5 core, hourly samples.
    values = [4.0] * 48 + [0.5] * (8 * 24)
    got = capacity.recommend(
        "vpa", frame({(POD, "app"): values}, 3600), frame({(POD, "app"): [MIB * 300] * 240}, 3600)
    )
    assert got.iloc[0].cpu_request_cores == 0.587
    # An hourly sample stands for sixty one-a-minute samples: confidence is the lifespan.
    assert got.iloc[0].history_days == pytest.approx(191 / 24)  # hours 48 .. 239
    assert got.iloc[0].confidence == "high"


def test_vpa_raises_memory_after_an_oom_kill() -> None:
    n = 1440
    memory = frame({(POD, "app"): [500 * MIB] * n})
    cpu = frame({(POD, "app"): [0.1] * n})
    kills = pd.DataFrame(
        [{"namespace": "shop", "pod": POD, "container": "app", "time": T0 + pd.Timedelta(hours=6)}]
    )
    now = current(0.25, 0.5, 256 * MIB, 512 * MIB)
    quiet = capacity.recommend("vpa", cpu, memory, current=now)
    bumped = capacity.recommend("vpa", cpu, memory, current=now, oom_kills=kills)
    # The kill's peak: max(500 MiB + 100 MiB, 500 MiB x 1.2) = 600 MiB, bucket 29.
    assert (
        capacity._vpa_model.memory_histogram_options().find_bucket(np.array([600 * MIB]))[0] == 29
    )
    assert bumped.iloc[0].memory_request_bytes == math.floor(math.floor(start_of(30, 1e7)) * 1.15)
    assert bumped.iloc[0].memory_request_bytes > quiet.iloc[0].memory_request_bytes
    assert "OOM" in bumped.iloc[0]["info"]


def test_vpa_settings_refuse_nonsense() -> None:
    with pytest.raises(ParameterError, match="target_percentile"):
        capacity.recommend("vpa", frame({}), frame({}), target_percentile=90)
    with pytest.raises(ParameterError, match="its settings are"):
        capacity.recommend("vpa", frame({}), frame({}), cpu_percentile=95)
