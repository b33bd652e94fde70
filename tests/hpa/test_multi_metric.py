"""Replays with two metrics at once: CPU Utilization plus a Pods AverageValue request rate."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rknb import hpa
from rknb.errors import ParameterError

T0 = pd.Timestamp("2026-01-05T00:00:00Z")
PODS = hpa.PodModel(0.25, startup_s=30, metric_window_s=15)


def series(values: list[float]) -> pd.Series:
    return pd.Series(values, index=pd.date_range(T0, periods=len(values), freq="15s"), dtype=float)


def two_metrics(**changes: Any) -> hpa.HpaConfig:
    fields: dict[str, Any] = {
        "min_replicas": 1,
        "max_replicas": 10,
        "target_utilization": 0.5,
        "second_metric_name": "rps",
        "second_target_average_value": 10.0,
    }
    return hpa.HpaConfig(**(fields | changes))


def first_decision(cpu: float, rps: float, engine: str) -> int:
    frame = hpa.replay(
        series([cpu]),
        config=two_metrics(),
        pods=PODS,
        initial_replicas=3,
        second_demand=series([rps]),
        engine=engine,  # type: ignore[arg-type]
    )
    return int(frame["desired"].iloc[0])


@pytest.mark.parametrize("engine", ["exact", "fast"])
@pytest.mark.parametrize(
    ("cpu", "rps", "expected"),
    [
        # CPU at its 50 % target stays at 3; 60 rps over 3 pods is 20 per pod, twice the
        # target of 10: ceil(2 x 3) = 6, within the legacy limit max(2 x 3, 4) = 6.
        (0.375, 60.0, 6),
        # 100 % CPU (ratio 2) proposes 6; 15 rps (5 per pod, ratio 0.5) proposes 2: max 6.
        (0.75, 15.0, 6),
        # CPU within tolerance keeps 3 although the request rate alone would scale to 2.
        (0.375, 15.0, 3),
        # 33 rps is 11 per pod: ratio 1.1, inside the inclusive band; CPU stays too.
        (0.375, 33.0, 3),
    ],
)
def test_the_larger_proposal_of_the_two_metrics_wins(
    engine: str, cpu: float, rps: float, expected: int
) -> None:
    assert first_decision(cpu, rps, engine) == expected


def test_an_hpa_with_cpu_and_a_pods_metric_reads_both() -> None:
    hpa_object = {
        "metadata": {"name": "web"},
        "spec": {
            "minReplicas": 2,
            "maxReplicas": 9,
            "metrics": [
                {
                    "type": "Pods",
                    "pods": {
                        "metric": {"name": "http_requests_per_second"},
                        "target": {"type": "AverageValue", "averageValue": "500m"},
                    },
                },
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": 65},
                    },
                },
            ],
        },
    }
    config = hpa.HpaConfig.from_object(hpa_object)
    assert (config.metric, config.target_percent) == ("cpu", 65)
    assert config.second_metric_name == "http_requests_per_second"
    assert config.second_target_milli == 500
    assert [m.type for m in config.controller_spec().metrics] == ["Resource", "Pods"]


def test_a_second_metric_needs_its_demand_and_a_cpu_first_metric() -> None:
    with pytest.raises(ParameterError, match="pass its total"):
        hpa.replay(series([0.3]), config=two_metrics(), pods=PODS, initial_replicas=3)
    with pytest.raises(ParameterError, match="needs a CPU first metric"):
        two_metrics(metric="pods", metric_name="rps", target_average_value=1.0)
    with pytest.raises(ParameterError, match="share one second metric"):
        hpa.replay_grid(
            series([0.3]),
            [two_metrics(), two_metrics(second_metric_name="qps")],
            pods=PODS,
            initial_replicas=3,
            second_demand=series([1.0]),
        )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    length=st.integers(1, 120),
    behavior=st.booleans(),
    target=st.sampled_from([0.5, 0.7]),
    rps_target=st.sampled_from([2.0, 7.5, 40.0]),
    startup_s=st.sampled_from([0, 15, 45, 400]),
    window_s=st.sampled_from([0, 60, 300]),
    initial=st.integers(0, 8),
)
def test_fast_path_decides_as_the_exact_controller_with_two_metrics(
    seed: int,
    length: int,
    behavior: bool,
    target: float,
    rps_target: float,
    startup_s: float,
    window_s: float,
    initial: int,
) -> None:
    rng = np.random.default_rng(seed)
    k = np.arange(length)
    cpu = np.clip(rng.uniform(0.2, 2.5) * (1 + np.sin(k / rng.uniform(3, 20))), 0, None)
    rps = np.clip(rng.uniform(1, 200) * (1 + np.cos(k / rng.uniform(3, 20))), 0, None)
    rps += rng.normal(0, 5, size=length).clip(0)
    config = two_metrics(
        target_utilization=target,
        second_target_average_value=rps_target,
        behavior=behavior,
        scale_down_stabilization_s=window_s,
    )
    pods = hpa.PodModel(0.25, startup_s=startup_s, metric_window_s=15, cpu_limit_cores=0.5)
    kwargs: dict[str, Any] = {
        "config": config,
        "pods": pods,
        "initial_replicas": initial,
        "second_demand": series(rps.tolist()),
    }
    exact = hpa.replay(series(cpu.tolist()), **kwargs)
    quick = hpa.replay(series(cpu.tolist()), engine="fast", **kwargs)
    assert exact["desired"].tolist() == quick["desired"].tolist()
