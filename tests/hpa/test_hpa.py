from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from rknb import hpa
from rknb.errors import ParameterError

DATA = Path(__file__).resolve().parent.parent / "data" / "hpa"
T0 = pd.Timestamp("2026-01-05T00:00:00Z")


def seed_hpa() -> dict[str, Any]:
    documents = yaml.safe_load_all((DATA / "seed-reasonkit-pro.yaml").read_text())
    return next(d for d in documents if d["kind"] == "HorizontalPodAutoscaler")


def demand(values: list[float], step_s: int = 60) -> pd.Series:
    index = pd.date_range(T0, periods=len(values), freq=f"{step_s}s")
    return pd.Series(values, index=index, dtype=float)


# ---------------------------------------------------------------- config


def test_config_from_the_seed_hpa_uses_its_target_and_the_defaults() -> None:
    config = hpa.HpaConfig.from_object(seed_hpa())
    assert config == hpa.HpaConfig(
        min_replicas=3,
        max_replicas=10,
        target_utilization=0.70,
        tolerance=0.1,
        scale_down_stabilization_s=300,
        scale_up_stabilization_s=0,
        sync_period_s=15,
    )


def test_config_reads_behavior_windows_and_defaults_empty_metrics_to_80_percent() -> None:
    obj = seed_hpa()
    obj["spec"]["behavior"] = {
        "scaleDown": {"stabilizationWindowSeconds": 60},
        "scaleUp": {"stabilizationWindowSeconds": 30},
    }
    config = hpa.HpaConfig.from_object(obj)
    assert (config.scale_down_stabilization_s, config.scale_up_stabilization_s) == (60, 30)

    bare = {"spec": {"maxReplicas": 4}}
    config = hpa.HpaConfig.from_object(bare)
    assert (config.min_replicas, config.target_utilization) == (1, 0.8)


def test_config_refuses_an_hpa_without_a_cpu_utilization_target() -> None:
    obj = copy.deepcopy(seed_hpa())
    obj["spec"]["metrics"][0]["resource"]["name"] = "memory"
    with pytest.raises(ParameterError, match="no Resource cpu Utilization target"):
        hpa.HpaConfig.from_object(obj)
    with pytest.raises(ParameterError, match="below min_replicas"):
        hpa.HpaConfig(min_replicas=3, max_replicas=2, target_utilization=0.5)


# ---------------------------------------------------------------- replay


def test_replay_scales_on_the_ratio_and_applies_at_the_next_step() -> None:
    # Request 0.5 core, target 50 %: one replica at target serves 0.25 core.
    config = hpa.HpaConfig(1, 5, 0.5, scale_down_stabilization_s=0)
    frame = hpa.replay(
        demand([0.5, 0.5, 1.0, 1.0, 0.25, 0.25, 0.25]),
        cpu_request_cores=0.5,
        config=config,
        initial_replicas=2,
    )
    # step 0: 0.5 / (2 x 0.5) = 50 %, at target -> 2
    # step 2: 1.0 / 1.0 = 100 %, ratio 2 -> ceil(2 x 2) = 4, running from step 3
    # step 3: 1.0 / 2.0 = 50 % -> 4
    # step 4: 0.25 / 2.0 = 12.5 %, ratio 0.25 -> ceil(4 x 0.25) = 1 (no stabilization)
    # step 5: 0.25 / 0.5 = 50 % -> 1
    assert frame["replicas"].tolist() == [2, 2, 2, 4, 4, 1, 1]
    assert frame["desired"].tolist() == [2, 2, 4, 4, 1, 1, 1]
    assert frame["utilization"].tolist() == pytest.approx([0.5, 0.5, 1.0, 0.5, 0.125, 0.5, 0.5])
    assert list(frame.columns) == [
        "timestamp",
        "demand_cores",
        "replicas",
        "desired",
        "utilization",
    ]
    assert frame["timestamp"].iloc[3] == T0 + pd.Timedelta(minutes=3)


def test_scale_down_waits_for_the_stabilization_window() -> None:
    config = hpa.HpaConfig(1, 5, 0.5, scale_down_stabilization_s=300)
    frame = hpa.replay(
        demand([0.5, 0.5, 1.0, 1.0] + [0.25] * 8),
        cpu_request_cores=0.5,
        config=config,
        initial_replicas=2,
    )
    # The last proposal of 4 is at t = 180 s; from t = 240 s every proposal is 1. The window
    # (now - 300, now] stops holding t = 180 at now = 480 s (step 8), so desired drops there.
    assert frame["desired"].tolist() == [2, 2, 4, 4, 4, 4, 4, 4, 1, 1, 1, 1]
    assert frame["replicas"].tolist()[9] == 1


def test_scale_up_stabilization_takes_the_lowest_recent_proposal() -> None:
    config = hpa.HpaConfig(1, 10, 0.5, scale_up_stabilization_s=120, scale_down_stabilization_s=0)
    frame = hpa.replay(
        demand([0.25, 1.0, 1.0, 1.0]), cpu_request_cores=0.5, config=config, initial_replicas=1
    )
    # Proposals: 1 (at target), then 1.0 / 0.5 = 200 % -> ceil(1 x 4) = 4 at t = 60 s. The
    # lowest proposal in (now - 120, now] includes t = 0's 1 until now = 120 s.
    assert frame["desired"].tolist() == [1, 1, 4, 4]


def test_a_ratio_exactly_at_the_tolerance_does_not_scale() -> None:
    # 0.55 / (1 x 1.0) / 0.5 = 1.1 in float64, and 1.1 <= 1.0 + 0.1 holds (inclusive bound).
    config = hpa.HpaConfig(1, 10, 0.5)
    frame = hpa.replay(demand([0.55]), cpu_request_cores=1.0, config=config, initial_replicas=1)
    assert frame["desired"].tolist() == [1]
    frame = hpa.replay(demand([0.56]), cpu_request_cores=1.0, config=config, initial_replicas=1)
    assert frame["desired"].tolist() == [2]  # ceil(1 x 1.12)


def test_replay_clamps_to_min_and_max_and_holds_on_missing_demand() -> None:
    config = hpa.HpaConfig(2, 3, 0.5, scale_down_stabilization_s=0)
    frame = hpa.replay(
        demand([10.0, float("nan"), 0.0]), cpu_request_cores=0.5, config=config, initial_replicas=0
    )
    # Replicas 0 is below min: 2 at once. 10 cores would want ceil(2 x 20) = 40 -> max 3.
    # A NaN demand keeps 3; zero demand proposes 0 -> min 2.
    assert frame["replicas"].tolist() == [2, 3, 3]
    assert frame["desired"].tolist() == [3, 3, 2]
    assert pd.isna(frame["utilization"].iloc[1])


# ---------------------------------------------------------------- summary


def test_summary_counts_replica_hours_events_and_flaps() -> None:
    config = hpa.HpaConfig(1, 4, 0.5)
    frame = pd.DataFrame(
        {
            "timestamp": pd.date_range(T0, periods=7, freq="60s"),
            "demand_cores": [0.5] * 7,
            "replicas": [2, 2, 2, 4, 4, 1, 1],
            "desired": [2, 2, 4, 4, 1, 1, 1],
            "utilization": [0.5, 0.5, 1.0, 0.5, 0.125, 0.5, 0.5],
        }
    )
    summary = hpa.summarize(frame, config=config, step_s=60)
    # 16 replica-samples x 60 s = 960 s = 0.2667 h; one of seven samples above 50 %;
    # up at 180 s, down at 300 s: a reversal 120 s later is one flap; 2 samples at max 4.
    assert summary.replica_hours == pytest.approx(16 * 60 / 3600)
    assert summary.fraction_above_target == pytest.approx(1 / 7)
    assert (summary.scale_ups, summary.scale_downs, summary.flaps) == (1, 1, 1)
    assert summary.time_at_max_s == 120
    assert summary.peak_replicas == 4
    assert summary.peak_utilization == 1.0


def test_events_further_apart_than_ten_minutes_are_not_flaps() -> None:
    config = hpa.HpaConfig(1, 4, 0.5)
    replicas = [2] * 3 + [3] * 11 + [2] * 3  # up at 180 s, down at 840 s: 660 s apart
    frame = pd.DataFrame(
        {
            "timestamp": pd.date_range(T0, periods=len(replicas), freq="60s"),
            "demand_cores": 0.5,
            "replicas": replicas,
            "desired": replicas,
            "utilization": 0.5,
        }
    )
    assert hpa.summarize(frame, config=config, step_s=60).flaps == 0
    assert hpa.FLAP_WINDOW_S == 600


def test_compare_shows_deltas_and_which_config_is_cheaper() -> None:
    a = hpa.ReplaySummary(10.0, 0.2, 0.0, 4, 4, 2, 6, 0.9)
    b = hpa.ReplaySummary(12.0, 0.05, 60.0, 3, 2, 0, 6, 0.8)
    table = hpa.compare(a, b)
    assert table.loc["replica_hours", "delta"] == 2.0
    assert table.loc["replica_hours", "better"] == "a"
    assert table.loc["fraction_above_target", "delta"] == pytest.approx(-0.15)
    assert table.loc["flaps", "better"] == "b"
    assert table.loc["peak_replicas", "better"] == "="


def test_config_defaults_are_the_controller_defaults() -> None:
    config = hpa.HpaConfig(1, 2, 0.5)
    assert config.tolerance == 0.1  # --horizontal-pod-autoscaler-tolerance
    assert config.scale_down_stabilization_s == 300  # --horizontal-pod-autoscaler-downscale-...
    assert config.scale_up_stabilization_s == 0  # behavior.scaleUp default
    assert config.sync_period_s == 15  # --horizontal-pod-autoscaler-sync-period
    obj = seed_hpa()
    obj["spec"]["syncPeriodSeconds"] = 30
    assert hpa.HpaConfig.from_object(obj).sync_period_s == 30


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.floats(min_value=0, max_value=20), min_size=1, max_size=40),
    st.integers(min_value=0, max_value=12),
)
def test_replay_never_leaves_the_min_max_range(values: list[float], initial: int) -> None:
    config = hpa.HpaConfig(2, 6, 0.6, scale_down_stabilization_s=120)
    frame = hpa.replay(
        demand(values), cpu_request_cores=0.5, config=config, initial_replicas=initial
    )
    assert frame["replicas"].between(2, 6).all()
    assert frame["desired"].between(2, 6).all()
    # Replicas follow the previous step's decision.
    assert frame["replicas"].iloc[1:].tolist() == frame["desired"].iloc[:-1].tolist()
