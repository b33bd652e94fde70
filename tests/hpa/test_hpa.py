from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rknb import hpa
from rknb.errors import ParameterError

DATA = Path(__file__).resolve().parent.parent / "data" / "hpa"
T0 = pd.Timestamp("2026-01-05T00:00:00Z")
ONE_CORE = hpa.PodModel(1.0, startup_s=30, metric_window_s=15)


def seed_objects() -> list[dict[str, Any]]:
    return list(yaml.safe_load_all((DATA / "seed-reasonkit-pro.yaml").read_text()))


def seed_hpa() -> dict[str, Any]:
    return next(d for d in seed_objects() if d["kind"] == "HorizontalPodAutoscaler")


def demand(values: list[float], step_s: int = 15) -> pd.Series:
    index = pd.date_range(T0, periods=len(values), freq=f"{step_s}s")
    return pd.Series(values, index=index, dtype=float)


# ---------------------------------------------------------------- config


def test_config_from_the_seed_hpa_is_the_legacy_path_with_its_target() -> None:
    config = hpa.HpaConfig.from_object(seed_hpa())
    assert (config.min_replicas, config.max_replicas, config.target_percent) == (3, 10, 70)
    assert config.behavior is False  # no spec.behavior: legacy normalization
    assert (config.scale_down_stabilization_s, config.sync_period_s, config.tolerance) == (
        300,
        15,
        0.1,
    )


def test_config_fills_unset_behavior_fields_with_the_api_defaults() -> None:
    obj = copy.deepcopy(seed_hpa())
    obj["spec"]["behavior"] = {"scaleDown": {"stabilizationWindowSeconds": 60}}
    config = hpa.HpaConfig.from_object(obj)
    assert config.behavior is True
    assert (config.scale_down_stabilization_s, config.scale_up_stabilization_s) == (60, 0)
    assert config.scale_up_policies == (hpa.Policy("Pods", 4, 15), hpa.Policy("Percent", 100, 15))
    assert config.scale_down_policies == (hpa.Policy("Percent", 100, 15),)

    bare = hpa.HpaConfig.from_object({"spec": {"maxReplicas": 4}})
    assert (bare.min_replicas, bare.target_percent) == (1, 80)


def test_config_reads_a_pods_average_value_target() -> None:
    obj = {
        "spec": {
            "maxReplicas": 8,
            "metrics": [
                {
                    "type": "Pods",
                    "pods": {
                        "metric": {"name": "rps"},
                        "target": {"type": "AverageValue", "averageValue": "1500m"},
                    },
                }
            ],
        }
    }
    config = hpa.HpaConfig.from_object(obj)
    assert (config.metric, config.metric_name, config.target_milli) == ("pods", "rps", 1500)


def test_config_refuses_what_the_replay_does_not_model() -> None:
    obj = copy.deepcopy(seed_hpa())
    obj["spec"]["metrics"][0]["resource"]["name"] = "memory"
    with pytest.raises(ParameterError, match="neither a Resource cpu Utilization"):
        hpa.HpaConfig.from_object(obj)
    with pytest.raises(ParameterError, match="below min_replicas"):
        hpa.HpaConfig(min_replicas=3, max_replicas=2, target_utilization=0.5)
    with pytest.raises(ParameterError, match=r"needs spec\.behavior"):
        hpa.HpaConfig(1, 3, 0.5, scale_up_stabilization_s=60)


def test_pod_model_from_the_seed_deployment_uses_requests_and_the_readiness_probe() -> None:
    deployment = next(d for d in seed_objects() if d["kind"] == "Deployment")
    model = hpa.pod_model_from_deployment(deployment)
    # requests 250m, limit 500m; readiness probe: initialDelaySeconds 5 + periodSeconds 10
    assert (model.capacity_per_replica, model.cpu_limit_cores, model.startup_s) == (0.25, 0.5, 15)
    observed = hpa.pod_model_from_deployment(deployment, observed_startup_s=[40, 20, 60])
    assert observed.startup_s == 40


# ---------------------------------------------------------------- replay, by hand


def test_new_pods_are_not_counted_until_ready_and_one_metric_window_old() -> None:
    config = hpa.HpaConfig(1, 10, 0.5)
    frame = hpa.replay(
        demand([2.0] * 4 + [0.5] * 21), config=config, pods=ONE_CORE, initial_replicas=2
    )
    # t=0: 2 pods at 100 % of a 50 % target -> ceil(2 x 2) = 4, within max(2 x 2, 4).
    # t=15: the new pods are not Ready; filled with 0: 2000m / 4000m = 50 % -> keep 4.
    # t=30: Ready, but their metric window (15 s) has not passed since: still not counted.
    # t=45: all four counted at 50 %.
    assert frame["ready_replicas"].tolist()[:4] == [2, 2, 4, 4]
    assert frame["counted_pods"].tolist()[:4] == [2, 2, 2, 4]
    assert frame["replicas"].tolist()[:3] == [2, 4, 4]
    # From t=60 the proposal is ceil(0.24 x 4) = 1 (125m each: 12 %), but the legacy window
    # keeps the 4 proposed at t=45 until t=345; at t=360 it drops to 1.
    assert frame["desired"].tolist() == [4] * 24 + [1]
    assert frame["proposal"].tolist()[4] == 1
    assert frame["able_to_scale"].tolist()[4] == "ScaleDownStabilized"


def test_behavior_policies_limit_the_scale_down_rate() -> None:
    config = hpa.HpaConfig(
        1,
        10,
        0.5,
        behavior=True,
        scale_down_stabilization_s=60,
        scale_down_policies=(hpa.Policy("Pods", 1, 60),),
    )
    frame = hpa.replay(demand([0.4] * 9), config=config, pods=ONE_CORE, initial_replicas=4)
    # The first reconcile's seed (4 at t=0) holds for 60 s; then one pod per 60 s, counted
    # from the count a period ago (t=60 -> 3; the event at t=60 still counts until t=120).
    assert frame["desired"].tolist() == [4, 4, 4, 4, 3, 3, 3, 3, 2]
    assert frame["scaling_limited"].tolist()[4] == "ScaleDownLimit"


def test_replay_holds_the_count_while_no_pod_is_ready() -> None:
    config = hpa.HpaConfig(1, 10, 0.5, behavior=True)
    model = hpa.PodModel(1.0, startup_s=600)
    frame = hpa.replay(demand([5.0] * 3), config=config, pods=model, initial_replicas=0)
    assert frame["desired"].tolist() == [0, 0, 0]  # zero replicas: autoscaling off
    frame = hpa.replay(demand([5.0] * 3), config=config, pods=model, initial_replicas=11)
    assert frame["desired"].tolist() == [10, 10, 10]  # above max: clamped without metrics


# ---------------------------------------------------------------- summaries


def test_summary_measures_lag_risk_flaps_and_replica_hours() -> None:
    frame = pd.DataFrame(
        {
            "timestamp": pd.date_range(T0, periods=6, freq="15s"),
            "demand": [1.0, 1.2, 2.4, 1.6, 0.8, 0.8],
            "replicas": [2, 2, 3, 3, 3, 3],
            "ready_replicas": [2, 2, 2, 3, 3, 3],
            "desired": [2, 3, 3, 3, 3, 2],
        }
    )
    config = hpa.HpaConfig(1, 3, 0.5)
    summary = hpa.summarize(frame, config=config, pods=ONE_CORE)
    # Capacity at target: ready x 1 core x 50 % = 1, 1, 1, 1.5, 1.5, 1.5.
    assert (summary.time_above_target_s, summary.lag_worst_s, summary.lag_episodes) == (45, 45, 1)
    # At 100 %: 2.4 > 2 at t=30 only.
    assert (summary.risk_windows, summary.risk_time_s) == (1, 15)
    # Up at t=15, down at t=75: opposite directions 60 s apart.
    assert (summary.scale_ups, summary.scale_downs, summary.flaps) == (1, 1, 1)
    assert summary.replica_hours == pytest.approx(16 * 15 / 3600)
    assert summary.time_at_max_s == 60
    windows = hpa.risk_windows(frame, pods=ONE_CORE)
    assert windows.to_dict("records") == [
        {
            "start": T0 + pd.Timedelta(seconds=30),
            "end": T0 + pd.Timedelta(seconds=45),
            "duration_s": 15.0,
            "peak_shortfall": pytest.approx(0.4),
        }
    ]
    # Against a 40 % reference, 1.0 > 2 x 0.4 as well: the episode starts at t=0.
    strict = hpa.summarize(frame, config=config, pods=ONE_CORE, reference_target=0.4)
    assert strict.lag_worst_s == 60


def test_pareto_front_keeps_only_undominated_candidates() -> None:
    table = pd.DataFrame(
        {
            "replica_hours": [10.0, 12.0, 12.0, 9.0],
            "time_above_target_s": [100.0, 50.0, 60.0, 400.0],
            "lag_worst_s": [60.0, 30.0, 30.0, 600.0],
        }
    )
    assert hpa.pareto_front(table).tolist() == [True, True, False, True]


def test_recommend_takes_the_cheapest_within_limits_and_says_why_cheaper_failed() -> None:
    base = hpa.HpaConfig(2, 10, 0.7)
    configs = hpa.grid(base, targets=[0.8, 0.7, 0.6])
    table = pd.DataFrame(
        {
            "candidate": [c.label() for c in configs],
            "replica_hours": [100.0, 120.0, 150.0],
            "fraction_above_target": [0.20, 0.04, 0.0],
            "time_above_target_s": [2000.0, 400.0, 0.0],
            "lag_worst_s": [900.0, 300.0, 15.0],
            "lag_p95_s": [600.0, 100.0, 15.0],
            "flaps": [0, 1, 0],
            "risk_windows": [2, 0, 0],
            "risk_time_s": [60.0, 0.0, 0.0],
        }
    )
    choice = hpa.recommend(table, configs, max_time_above_target=0.05, max_lag_s=600)
    assert choice.config == configs[1]
    assert choice.rejected["candidate"].tolist() == [configs[0].label()]
    assert choice.rejected["reason"].iloc[0] == (
        "20.00% of the time above target (limit 5.0%); worst lag 900 s (limit 600 s)"
    )
    assert "Recommended: 70% 2..10" in choice.markdown()
    current = hpa.ReplaySummary(100.0, 2000.0, 0.2, 900.0, 600.0, 3, 2, 60.0, 5, 5, 0, 10, 0.0)
    assert hpa.trade_off(current, choice) == (
        "Against the current config it costs 20 replica-hours (20.0%) and moves the time above "
        "target from 20.0% to 4.0% and the worst lag from 900 s to 300 s."
    )
    none = hpa.recommend(table, configs, max_time_above_target=0.0, max_lag_s=0)
    assert none.config is None and "No candidate" in none.markdown()


def test_manifest_patch_writes_the_target_the_range_and_the_behavior() -> None:
    config = hpa.HpaConfig(2, 12, 0.6, behavior=True, scale_down_stabilization_s=120)
    patch = hpa.manifest_patch(config, name="web", namespace="shop")
    assert patch["metadata"] == {"name": "web", "namespace": "shop"}
    spec = patch["spec"]
    assert (spec["minReplicas"], spec["maxReplicas"]) == (2, 12)
    assert spec["metrics"][0]["resource"]["target"] == {
        "type": "Utilization",
        "averageUtilization": 60,
    }
    assert spec["behavior"]["scaleDown"] == {
        "stabilizationWindowSeconds": 120,
        "selectPolicy": "Max",
        "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}],
    }
    assert (
        "behavior"
        not in hpa.manifest_patch(hpa.HpaConfig(1, 3, 0.5), name="a", namespace="b")["spec"]
    )


def test_grid_refuses_candidates_that_need_different_controller_flags() -> None:
    a = hpa.HpaConfig(1, 5, 0.5)
    b = hpa.HpaConfig(1, 5, 0.5, scale_down_stabilization_s=60)  # the flag, not the HPA
    with pytest.raises(ParameterError, match="one down-scale window"):
        hpa.replay_grid(demand([1.0, 1.0]), [a, b], pods=ONE_CORE, initial_replicas=1)


def test_scale_events_lists_changes_of_the_observed_series() -> None:
    series = pd.Series(
        [3, 3, 4, float("nan"), 4, 3], index=pd.date_range(T0, periods=6, freq="30s")
    )
    events = hpa.scale_events(series)
    assert events[["from", "to", "direction"]].to_dict("list") == {
        "from": [3, 4],
        "to": [4, 3],
        "direction": ["up", "down"],
    }


# ---------------------------------------------------------------- oracle and fast path

policies = st.lists(
    st.builds(
        hpa.Policy,
        st.sampled_from(["Pods", "Percent"]),
        st.integers(1, 200),
        st.sampled_from([15, 30, 45, 60, 100, 300]),
    ),
    min_size=1,
    max_size=3,
).map(tuple)


@st.composite
def configs(draw: st.DrawFn) -> hpa.HpaConfig:
    low = draw(st.integers(1, 4))
    behavior = draw(st.booleans())
    return hpa.HpaConfig(
        min_replicas=low,
        max_replicas=draw(st.integers(low, 14)),
        target_utilization=draw(st.sampled_from([0.3, 0.5, 0.56, 0.7, 0.9])),
        tolerance=draw(st.sampled_from([0.0, 0.05, 0.1])),
        behavior=behavior,
        scale_down_stabilization_s=draw(st.sampled_from([0, 15, 45, 60, 300])),
        scale_up_stabilization_s=draw(st.sampled_from([0, 15, 30, 90])) if behavior else 0,
        scale_up_policies=draw(policies),
        scale_down_policies=draw(policies),
        scale_up_select=draw(st.sampled_from(["Max", "Min", "Disabled"])),
        scale_down_select=draw(st.sampled_from(["Max", "Min", "Disabled"])),
        scale_up_tolerance=draw(st.sampled_from([None, 0.0, 0.02])),
        scale_down_tolerance=draw(st.sampled_from([None, 0.3])),
    )


pod_models = st.builds(
    hpa.PodModel,
    st.sampled_from([0.25, 0.3, 1.0]),
    startup_s=st.sampled_from([0, 10, 15, 29, 45, 120, 400]),
    metric_window_s=st.sampled_from([15, 30, 60]),
    cpu_limit_cores=st.sampled_from([None, 0.5]),
    cpu_initialization_period_s=st.sampled_from([120, 300]),
    initial_readiness_delay_s=st.sampled_from([0, 30]),
)


def random_history(seed: int, length: int, step_s: int) -> pd.Series:
    """A load with swings, steps and noise: enough to make every rule fire somewhere."""
    rng = np.random.default_rng(seed)
    k = np.arange(length)
    level = rng.uniform(0.2, 4.0) * (1 + np.sin(k / rng.uniform(3, 30)))
    steps = np.cumsum(rng.choice([0.0, 0.0, 0.0, 0.8, -0.8], size=length))
    noise = rng.normal(0, rng.uniform(0.0, 0.6), size=length)
    return demand(np.clip(level + steps + noise, 0, None).tolist(), step_s)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    config=configs(),
    model=pod_models,
    seed=st.integers(0, 2**32 - 1),
    length=st.integers(1, 160),
    step_s=st.sampled_from([10, 15, 30]),
    initial=st.integers(0, 16),
)
def test_fast_path_decides_as_the_exact_controller(
    config: hpa.HpaConfig,
    model: hpa.PodModel,
    seed: int,
    length: int,
    step_s: int,
    initial: int,
) -> None:
    history = random_history(seed, length, step_s)
    exact = hpa.replay(history, config=config, pods=model, initial_replicas=initial)
    quick = hpa.replay(history, config=config, pods=model, initial_replicas=initial, engine="fast")
    assert exact["desired"].tolist() == quick["desired"].tolist()
    assert exact["ready_replicas"].tolist() == quick["ready_replicas"].tolist()
    assert exact["replicas"].tolist() == quick["replicas"].tolist()


@settings(max_examples=25, deadline=None)
@given(
    target=st.sampled_from([0.5, 2.0, 7.5]),
    values=st.lists(st.floats(0, 40, allow_nan=False), min_size=1, max_size=60),
    initial=st.integers(1, 6),
)
def test_fast_path_decides_as_the_exact_controller_on_a_pods_metric(
    target: float, values: list[float], initial: int
) -> None:
    config = hpa.HpaConfig(
        1, 12, 1.0, metric="pods", metric_name="rps", target_average_value=target
    )
    model = hpa.PodModel(target * 1.5, startup_s=30)
    exact = hpa.replay(demand(values), config=config, pods=model, initial_replicas=initial)
    quick = hpa.replay(
        demand(values), config=config, pods=model, initial_replicas=initial, engine="fast"
    )
    assert exact["desired"].tolist() == quick["desired"].tolist()


def test_a_grid_replays_each_config_as_it_would_alone() -> None:
    rng = np.random.default_rng(3)
    history = demand((1.5 + np.sin(np.arange(300) / 20) + rng.normal(0, 0.2, 300)).clip(0).tolist())
    model = hpa.PodModel(0.5, startup_s=40)
    candidates = hpa.grid(
        hpa.HpaConfig(2, 10, 0.7), targets=[0.5, 0.7], scale_down_windows_s=[0, 120]
    )
    result = hpa.replay_grid(history, candidates, pods=model, initial_replicas=3)
    for c, config in enumerate(candidates):
        alone = hpa.replay(history, config=config, pods=model, initial_replicas=3)
        assert result.replicas[c, 1:].tolist() == alone["desired"].tolist()
