"""The exact controller's rules, each pinned by a case computed by hand from the spec."""

from rknb import _hpa_controller as ctl

NOW = 10_000.0
CONFIG = ctl.ControllerConfig()
CPU = ctl.MetricSpec("Resource", "cpu", average_utilization=50, target_type="Utilization")


def pod(name: str, *, ready: str = "True", start: float = 0.0, ltt: float = 0.0) -> ctl.Pod:
    return ctl.Pod(
        name=name,
        ready=ready,
        start_s=start,
        ready_transition_s=ltt,
        containers=(ctl.Container("app", {"cpu": 1000}),),
    )


def usage(name: str, milli: int, at: float = NOW) -> ctl.ResourceMetricsItem:
    return ctl.ResourceMetricsItem(name, at, 15.0, (ctl.ContainerUsage("app", {"cpu": milli}),))


def world(milli: list[int], **pod_kwargs: object) -> ctl.World:
    names = [f"p{i}" for i in range(len(milli))]
    return ctl.World(
        pods=[pod(n) for n in names],
        resource_metrics=[usage(n, m) for n, m in zip(names, milli, strict=True)],
    )


def decide(hpa: ctl.HpaSpec, current: int, w: ctl.World, history: ctl.History) -> ctl.Decision:
    return ctl.reconcile(
        hpa, spec_replicas=current, status_replicas=current, world=w, history=history, now=NOW
    )


def test_utilization_is_truncated_to_a_whole_percent_before_the_tolerance_test() -> None:
    # 551m of 1000m is 55.1 %, truncated to 55 %; 55 / 50 = 1.1 is inside the inclusive band.
    # Float utilization would give 1.102 and scale to ceil(3 x 1.102) = 4.
    hpa = ctl.HpaSpec(max_replicas=10, min_replicas=1, metrics=(CPU,))
    decision = decide(hpa, 3, world([551, 551, 551]), ctl.History(recommendations=[]))
    assert decision.desired_replicas == 3
    decision = decide(hpa, 3, world([561, 561, 561]), ctl.History(recommendations=[]))
    assert decision.desired_replicas == 4  # 56 / 50 = 1.12, ceil(1.12 x 3) = ceil(3.36)


def test_the_legacy_window_lifts_a_later_lower_scale_up() -> None:
    # A raw recommendation of 8 made 100 s ago beats today's 6 (max over 300 s, both ways).
    hpa = ctl.HpaSpec(max_replicas=10, min_replicas=1, metrics=(CPU,))
    history = ctl.History(recommendations=[ctl.Recommendation(8, NOW - 100)])
    decision = decide(hpa, 4, world([750, 750, 750, 750]), history)  # 75 % -> ceil(1.5 x 4) = 6
    assert decision.proposal == 6
    assert decision.desired_replicas == 8
    assert decision.conditions["AbleToScale"] == "SucceededRescale"


def test_the_legacy_scale_up_limit_is_twice_the_current_count_or_four() -> None:
    hpa = ctl.HpaSpec(max_replicas=50, min_replicas=1, metrics=(CPU,))
    decision = decide(hpa, 3, world([5000, 5000, 5000]), ctl.History(recommendations=[]))
    assert decision.proposal == 30  # 500 % / 50 % = 10, x 3 pods
    assert decision.desired_replicas == 6
    assert decision.conditions["ScalingLimited"] == "ScaleUpLimit"


def test_a_fresh_controller_does_not_scale_down_for_five_minutes() -> None:
    hpa = ctl.HpaSpec(max_replicas=10, min_replicas=1, metrics=(CPU,))
    history = ctl.History()  # never reconciled: the current count is seeded as a recommendation
    decision = decide(hpa, 5, world([100] * 5), history)
    assert (decision.proposal, decision.desired_replicas) == (1, 5)
    assert decision.conditions["AbleToScale"] == "ScaleDownStabilized"
    assert history.recommendations is not None
    assert [r.replicas for r in history.recommendations] == [5, 1]


def test_an_unready_pod_counts_as_zero_when_scaling_up() -> None:
    # Two ready pods at 100 % of request (ratio 2), one young unready pod filled with 0:
    # new utilization 2000 / 3000 = 66 %, ratio 1.32, ceil(1.32 x 3) = ceil(3.96) = 4.
    pods = [pod("a"), pod("b"), pod("c", ready="False", start=NOW - 20, ltt=NOW - 20)]
    w = ctl.World(pods=pods, resource_metrics=[usage("a", 1000), usage("b", 1000), usage("c", 0)])
    hpa = ctl.HpaSpec(max_replicas=10, min_replicas=1, metrics=(CPU,))
    decision = decide(hpa, 3, w, ctl.History(recommendations=[]))
    assert decision.desired_replicas == 4


def test_a_pod_that_was_ready_and_turned_unready_still_counts_for_cpu() -> None:
    pods = [pod("old", ready="False", start=0.0, ltt=5000.0)]
    metrics = {"old": ctl.PodMetric(100, NOW, 15.0)}
    ready, unready, *_ = ctl.group_pods(pods, metrics, "cpu", 300, 30, NOW)
    assert (ready, unready) == (1, set())
    never = [pod("new", ready="False", start=0.0, ltt=10.0)]  # start + 30 s > its transition
    ready, unready, *_ = ctl.group_pods(never, {"new": metrics["old"]}, "cpu", 300, 30, NOW)
    assert (ready, unready) == (0, {"new"})


def test_a_value_target_multiplies_by_running_ready_pods() -> None:
    pods = [pod("a"), pod("b"), pod("c", ready="False"), pod("d", ready="False")]
    assert ctl.object_replicas(4, 1000, 2000, ctl.Tolerances(), pods) == (4, 2000)  # ceil(2 x 2)
    assert ctl.object_replicas(4, 1000, 3000, ctl.Tolerances(), pods)[0] == 6  # ceil(3 x 2)


def test_scale_events_in_the_other_direction_refund_the_policy_budget() -> None:
    rules = ctl.ScalingRules(0, "Max", (ctl.Policy("Pods", 4, 60),))
    down = [ctl.ScaleEvent(4, NOW - 30)]
    up = [ctl.ScaleEvent(2, NOW - 59), ctl.ScaleEvent(3, NOW - 60)]  # 60 s ago is outside
    # period start = 10 - 2 + 4 = 12, plus 4 pods
    assert ctl.scale_up_limit(10, up, down, rules, NOW) == 16


def test_percent_policies_round_in_float64() -> None:
    up = ctl.ScalingRules(0, "Max", (ctl.Policy("Percent", 12, 15),))
    # 25 x 1.12 is 28.000000000000004 in float64, so the ceiling is 29 (exact decimal: 28).
    assert ctl.scale_up_limit(25, [], [], up, NOW) == 29
    down = ctl.ScalingRules(0, "Max", (ctl.Policy("Percent", 80, 15),))
    assert ctl.scale_down_limit(10, [], [], down, NOW) == 1  # trunc(10 x 0.19999999999999996)


def test_zero_replicas_turn_the_autoscaler_off() -> None:
    hpa = ctl.HpaSpec(max_replicas=10, min_replicas=1, metrics=(CPU,))
    decision = decide(hpa, 0, world([]), ctl.History())
    assert decision.desired_replicas == 0
    assert decision.conditions == {
        "AbleToScale": "SucceededGetScale",
        "ScalingActive": "ScalingDisabled",
    }


def test_a_recycled_up_event_stops_counting_for_the_longer_scale_down_period() -> None:
    behavior = ctl.Behavior(
        ctl.ScalingRules(0, "Max", (ctl.Policy("Pods", 1, 15),)),
        ctl.ScalingRules(0, "Max", (ctl.Policy("Pods", 1, 60),)),
    )
    history = ctl.History(recommendations=[])
    ctl.store_scale_event(behavior, history, 3, 4, NOW - 45)
    ctl.store_scale_event(behavior, history, 4, 5, NOW - 15)  # overwrites the one 30 s older
    assert [(e.replica_change, e.timestamp_s) for e in history.scale_up_events] == [(1, NOW - 15)]
    # Scale-down from 5 counts ups of the last 60 s: only the one left, so 5 - 1 - 1 = 3.
    limit = ctl.scale_down_limit(5, history.scale_up_events, [], behavior.scale_down, NOW)
    assert limit == 3
