"""Each cause of a difference between the exact controller and a simpler model, on a history
built so that exactly that cause bites; the numbers are worked out by hand in each test."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rknb import hpa
from rknb.errors import ParameterError

T0 = pd.Timestamp("2026-01-05T00:00:00Z")
#: One pod requests a quarter core; no CPU limit.
QUARTER = 0.25


def demand(values: list[float]) -> pd.Series:
    """Demand sampled every 15 s, so every exact decision sees its own sample."""
    index = pd.date_range(T0, periods=len(values), freq="15s")
    return pd.Series(values, index=index, dtype=float)


def other(values: list[int]) -> pd.Series:
    """The other model's desired replicas, sampled every 30 s from T0."""
    index = pd.date_range(T0, periods=len(values), freq="30s")
    return pd.Series(values, index=index, dtype=float)


def attribute(
    load: list[float],
    recorded: list[int],
    *,
    config: hpa.HpaConfig,
    startup_s: float = 30,
    initial: int = 3,
    ready: list[int] | None = None,
) -> pd.DataFrame:
    return hpa.attribute_decisions(
        demand(load),
        other(recorded),
        config=config,
        pods=hpa.PodModel(QUARTER, startup_s=startup_s, metric_window_s=15),
        initial_replicas=initial,
        other_ready=None if ready is None else other(ready),
    )


def at(table: pd.DataFrame, seconds: int) -> pd.Series:
    return table.set_index("time").loc[T0 + pd.Timedelta(seconds=seconds)]


def test_utilization_exactly_at_the_band_edge_is_the_tolerance_rule_then_downstream() -> None:
    # 0.579 cores over 3 pods: 193 m each, 77 % of 250 m; 77 / 70 = 1.1 is inside the
    # inclusive band, but |1.1 - 1| is 0.10000000000000009 > 0.1: ceil(1.1 x 3) = 4.
    # At 0.54 cores (72 %, ratio 1.03) no rule scales, yet the other model is at 4 already.
    config = hpa.HpaConfig(1, 10, 0.7)
    table = attribute([0.579] * 4 + [0.54] * 4, [3, 4, 4, 4], config=config)
    assert table["exact"].tolist() == [3, 3, 3]
    first = at(table, 30)
    assert (first["cause"], first["redecided"], first["utilization"]) == ("tolerance", 4, 77.0)
    assert at(table, 60)["cause"] == "tolerance"
    late = at(table, 90)
    assert (late["cause"], late["origin"], late["other_before"]) == ("downstream", "tolerance", 4)


def test_utilization_truncated_into_the_band_is_the_integer_utilization_rule() -> None:
    # 0.621 cores over 3 pods: 207 m each, 82.8 % truncated to 82; 82 / 75 = 1.093 stays,
    # while 0.828 / 0.75 = 1.104 is outside: ceil(1.104 x 3) = 4.
    config = hpa.HpaConfig(1, 10, 0.75)
    table = attribute([0.621] * 3, [3, 4], config=config)
    row = at(table, 30)
    assert (row["exact"], row["cause"], row["redecided"]) == (3, "integer_utilization", 4)


def test_a_ready_pod_inside_its_first_metric_window_is_the_cpu_initialization_rule() -> None:
    # 3 pods at 60 % (ratio 1.2 to a 50 % target) grow to 4 at t=0. The new pod is Ready
    # at 45 s; at 45 s its sample does not yet cover a 15 s window since then, so upstream
    # leaves it out: 3 pods at 100 % (ratio 2), refilled with the new pod at 0 (75 %, 1.5),
    # ceil(1.5 x 4) = 6. Counting it: 4 pods at 100 %, ceil(2 x 4) = 8.
    config = hpa.HpaConfig(1, 10, 0.5)
    table = attribute([0.45, 0.45, 0.45, 1.0, 1.0], [3, 4, 8], config=config, startup_s=45)
    assert at(table, 30)["difference"] == 0
    row = at(table, 60)
    assert (row["exact"], row["cause"], row["redecided"]) == (6, "cpu_initialization", 8)


def test_a_pod_not_yet_ready_at_scale_up_is_the_ready_pods_rule() -> None:
    # As above, but the new pod is not Ready until 60 s: at 45 s three Ready pods carry
    # 0.75 cores (100 %, ratio 2); upstream refills the fourth at 0: ceil(1.5 x 4) = 6; the
    # simpler model multiplies the ratio by all 4 replicas: 8.
    config = hpa.HpaConfig(1, 10, 0.5)
    table = attribute([0.45, 0.45, 0.45, 0.75, 0.75], [3, 4, 8], config=config, startup_s=60)
    row = at(table, 60)
    assert (row["exact"], row["cause"], row["redecided"]) == (6, "ready_pods", 8)


def test_no_scale_down_right_after_start_is_the_first_reconcile_rule() -> None:
    # 5 pods at 30 % of a 50 % target propose ceil(0.6 x 5) = 3, but the first reconcile
    # stored 5 as a recommendation, so the 300 s window holds 5.
    config = hpa.HpaConfig(1, 10, 0.5)
    table = attribute([0.375] * 3, [5, 3], config=config, initial=5)
    row = at(table, 30)
    assert (row["exact"], row["cause"], row["redecided"]) == (5, "first_reconcile", 3)


def test_a_recommendation_exactly_one_window_old_holds_a_scale_down() -> None:
    # 4 pods at 50 % of a 50 % target (raw 4) at 0 s and 15 s, then 0.25 cores: 62 m each,
    # 24 %, ceil(0.48 x 4) = 2. At 315 s the raw 4 stored at 15 s is exactly 300 s old:
    # upstream's window includes it (timestamp >= now - 300) and holds 4; the simpler model's
    # window (timestamp > now - 300) no longer does, and it scales down to 2.
    config = hpa.HpaConfig(1, 10, 0.5)
    table = attribute([0.5, 0.5] + [0.25] * 21, [4] * 11 + [2], config=config, initial=4)
    assert (table["difference"] != 0).sum() == 1
    row = at(table, 330)
    assert (row["exact"], row["cause"], row["redecided"]) == (4, "stabilization", 2)


def test_an_earlier_higher_recommendation_lifting_a_scale_up_is_stabilization() -> None:
    # 2 pods at 200 % propose 8, limited to max(2 x 2, 4) = 4. At 15 s the 4 pods at 60 %
    # propose ceil(1.2 x 4) = 5, but the legacy window's highest raw recommendation is 8,
    # which the limit now allows: 8. The simpler model scales up to the proposal, 5.
    config = hpa.HpaConfig(1, 10, 0.5)
    table = attribute([1.0, 0.6, 0.6], [2, 5], config=config, initial=2, startup_s=0)
    row = at(table, 30)
    assert (row["exact"], row["cause"], row["redecided"]) == (8, "stabilization", 5)


def test_the_legacy_scale_up_limit_is_named() -> None:
    # 2 pods at 50 %, then at 15 s at 200 % of a 50 % target: ceil(4 x 2) = 8, limited to
    # max(2 x 2, 4) = 4.
    config = hpa.HpaConfig(1, 10, 0.5)
    table = attribute([0.25, 1.0, 1.0], [2, 8], config=config, initial=2)
    row = at(table, 30)
    assert (row["exact"], row["cause"], row["redecided"]) == (4, "scale_up_limit", 8)


def test_a_behavior_pods_policy_is_the_scale_up_limit() -> None:
    # As above with behavior: one pod per 60 s allows 3.
    config = hpa.HpaConfig(
        1, 10, 0.5, behavior=True, scale_up_policies=(hpa.Policy("Pods", 1, 60),)
    )
    table = attribute([0.25, 1.0, 1.0], [2, 8], config=config, initial=2)
    row = at(table, 30)
    assert (row["exact"], row["cause"], row["redecided"]) == (3, "scale_up_limit", 8)


def test_a_decision_between_the_other_models_steps_is_the_sync_period() -> None:
    # At 0 s 3 pods at 50 % of a 50 % target stay; at 15 s they are at 100 %: 6. The other
    # model decides every 30 s, so at 30 s it still shows its 0 s decision, 3.
    config = hpa.HpaConfig(1, 10, 0.5)
    table = attribute([0.375, 0.75, 0.75], [3, 3], config=config)
    row = at(table, 30)
    assert (row["exact"], row["cause"], row["redecided"]) == (6, "sync_period", 3)


def test_same_replicas_but_fewer_ready_pods_is_the_pod_model() -> None:
    # 3 pods at exactly the 70 % target stay at 3; the other model went to 4 with only 2
    # pods Ready, which no rule of the exact controller reproduces from 3 Ready pods.
    config = hpa.HpaConfig(1, 10, 0.7)
    table = attribute([0.525] * 3, [3, 4], config=config, ready=[2, 2])
    assert at(table, 30)["cause"] == "pod_model"
    unexplained = attribute([0.525] * 3, [3, 4], config=config)
    assert at(unexplained, 30)["cause"] == "other"


def test_a_reading_within_the_demands_noise_is_the_metric() -> None:
    # The demand alternates 0.53 / 0.5 cores: a median step of 5.7 %, so readings within
    # 3 x 5.7 % = 17 % are plausible. The other model decided at 0 s, on 0.53 cores (70 %
    # of 3 pods: stay); 0.585 cores (+10 %) is 78 %, ratio 1.11: ceil(1.11 x 3) = 4.
    # At a constant demand (no noise) the same difference stays unexplained.
    config = hpa.HpaConfig(1, 10, 0.7)
    table = attribute([0.53, 0.5] * 3, [3, 4], config=config)
    assert at(table, 30)["cause"] == "metric"
    assert at(attribute([0.53] * 6, [3, 4], config=config), 30)["cause"] == "other"


def test_a_window_reading_within_the_noise_that_holds_a_scale_down_is_the_metric() -> None:
    # 4 pods: 0.6 cores at 0 s is 60 % (ratio 0.857, ceil(3.43) = 4); 0.5 cores at 15 s is
    # 50 % (ceil(2.86) = 3), held at 4 by the 0 s recommendation in the 300 s window. The
    # other model went to 3. Changes 0.1 / 0.6 and 0 give a noise of 8.3 %, 3 x 8.3 = 25 %:
    # the 0 s reading 15 % lower (0.51 cores, 51 %, ceil(2.91) = 3) lets it scale down; no
    # change of the 15 s reading alone does (the window still holds 4).
    config = hpa.HpaConfig(1, 10, 0.7)
    table = attribute([0.6, 0.5, 0.5], [4, 3], config=config, initial=4)
    row = at(table, 30)
    assert (row["exact"], row["other"], row["cause"]) == (4, 3, "metric")


def test_explanation_counts_each_cause_and_gives_its_first_example() -> None:
    config = hpa.HpaConfig(1, 10, 0.7)
    table = attribute([0.579] * 4 + [0.54] * 4, [3, 4, 4, 4], config=config)
    explained = hpa.explain_differences(table)
    assert explained[["cause", "origin", "samples"]].values.tolist() == [
        ["tolerance", "tolerance", 2],
        ["downstream", "tolerance", 1],
    ]
    first = explained.iloc[0]
    assert first["share"] == pytest.approx(2 / 3)
    assert first["time_s"] == 60
    assert (first["example_exact"], first["example_other"], first["example_redecided"]) == (
        3,
        4,
        4,
    )
    assert first["example_demand"] == pytest.approx(0.579)
    assert hpa.cause_counts(table)["tolerance"] == 2
    assert hpa.cause_counts(table)["downstream"] == 1


def test_attribution_needs_a_cpu_target() -> None:
    config = hpa.HpaConfig(1, 5, 1.0, metric="pods", metric_name="rps", target_average_value=2)
    with pytest.raises(ParameterError, match="CPU Utilization"):
        attribute([1.0], [1], config=config)


policies = st.lists(
    st.builds(
        hpa.Policy,
        st.sampled_from(["Pods", "Percent"]),
        st.integers(1, 200),
        st.sampled_from([15, 30, 60, 300]),
    ),
    min_size=1,
    max_size=2,
).map(tuple)


@st.composite
def configs(draw: st.DrawFn) -> hpa.HpaConfig:
    low = draw(st.integers(1, 4))
    behavior = draw(st.booleans())
    return hpa.HpaConfig(
        min_replicas=low,
        max_replicas=draw(st.integers(low, 14)),
        target_utilization=draw(st.sampled_from([0.3, 0.5, 0.56, 0.7, 0.9])),
        tolerance=draw(st.sampled_from([0.0, 0.1])),
        behavior=behavior,
        scale_down_stabilization_s=draw(st.sampled_from([0, 45, 300])),
        scale_up_stabilization_s=draw(st.sampled_from([0, 30, 90])) if behavior else 0,
        scale_up_policies=draw(policies),
        scale_down_policies=draw(policies),
        scale_up_select=draw(st.sampled_from(["Max", "Min", "Disabled"])),
        scale_down_select=draw(st.sampled_from(["Max", "Min", "Disabled"])),
        scale_up_tolerance=draw(st.sampled_from([None, 0.02])),
        scale_down_tolerance=draw(st.sampled_from([None, 0.3])),
    )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    config=configs(),
    startup_s=st.sampled_from([0, 15, 45, 400]),
    limit=st.sampled_from([None, 0.5]),
    seed=st.integers(0, 2**32 - 1),
    length=st.integers(2, 120),
    initial=st.integers(0, 12),
)
def test_the_attributions_own_replay_decides_as_the_exact_controller(
    config: hpa.HpaConfig,
    startup_s: float,
    limit: float | None,
    seed: int,
    length: int,
    initial: int,
) -> None:
    # The attribution re-decides with its own compact copy of the controller's rules; with
    # no rule replaced it must give the oracle's decisions, every one of them.
    rng = np.random.default_rng(seed)
    k = np.arange(length)
    load = rng.uniform(0.2, 3.0) * (1 + np.sin(k / rng.uniform(3, 20)))
    load = np.clip(load + rng.normal(0, 0.3, size=length), 0, None)
    history = demand(load.tolist())
    pods = hpa.PodModel(QUARTER, startup_s=startup_s, metric_window_s=15, cpu_limit_cores=limit)
    exact = hpa.replay(history, config=config, pods=pods, initial_replicas=initial)
    # One sample just after each decision: the decision compared with it is that one.
    probe = pd.Series(0.0, index=exact["timestamp"] + pd.Timedelta(seconds=1))
    table = hpa.attribute_decisions(
        history, probe, config=config, pods=pods, initial_replicas=initial
    )
    assert table["exact"].tolist() == exact["desired"].tolist()
