from __future__ import annotations

import pytest

from rknb.errors import ParameterError, RknbError
from rknb.rollout import (
    estimate_pod_ready_s,
    parse_int_or_percent,
    plan_rollback,
    predict_rollout,
    resolve_fenceposts,
    rollout_history,
    rollout_strategy,
    template_diff,
    undo_target,
)


@pytest.mark.parametrize(
    ("value", "total", "round_up", "expected"),
    [
        ("25%", 3, True, 1),
        ("25%", 3, False, 0),
        ("25%", 10, True, 3),
        ("25%", 10, False, 2),
        ("39%", 10, True, 4),
        ("100%", 7, False, 7),
        (2, 10, False, 2),
        ("0%", 10, True, 0),
    ],
)
def test_int_or_percent_scales_and_rounds_as_intstr(value, total, round_up, expected):
    assert parse_int_or_percent(value, total, round_up=round_up) == expected


@pytest.mark.parametrize("bad", ["5", "25.5%", "abc", "%", True])
def test_int_or_percent_refuses_bare_and_fractional_strings(bad):
    with pytest.raises(ParameterError):
        parse_int_or_percent(bad, 10, round_up=True)


@pytest.mark.parametrize(
    ("surge", "unavailable", "replicas", "expected"),
    [
        ("25%", "25%", 1, (1, 0)),
        ("25%", "25%", 3, (1, 0)),
        ("25%", "25%", 4, (1, 1)),
        ("25%", "25%", 10, (3, 2)),
        (None, "39%", 10, (0, 3)),
        ("39%", None, 10, (4, 0)),
        ("0%", "1%", 10, (0, 1)),  # 0/0 after rounding: unavailable becomes 1
        (0, 0, 5, (0, 1)),
        (1, 0, 3, (1, 0)),
    ],
)
def test_fenceposts_round_surge_up_and_unavailable_down(surge, unavailable, replicas, expected):
    assert resolve_fenceposts(surge, unavailable, replicas) == expected


def test_strategy_defaults_to_25_percent_when_absent():
    strategy = rollout_strategy({"spec": {"replicas": 10}})
    assert (strategy.max_surge, strategy.max_unavailable) == ("25%", "25%")
    assert strategy.fenceposts == (3, 2)
    assert strategy.progress_deadline_s == 600


def test_history_keeps_only_replicasets_the_deployment_controls(renumbered):
    deployment, replicasets = renumbered
    history = rollout_history(deployment, replicasets)
    assert [r.revision for r in history] == [1, 3, 4]
    assert [r.replicaset for r in history] == ["web-aaa", "web-ccc", "web-bbb"]
    assert history[0].change_cause == "first release"
    assert history[2].change_cause is None
    assert history[2].is_current and not history[1].is_current
    assert history[1].images == {"web": "example.org/web:3.0"}


def test_plain_undo_after_a_rollback_picks_the_second_highest_revision(renumbered):
    history = rollout_history(*renumbered)
    # Revision 3 (the bad release), not 1 and not the "previous template" 2.
    assert undo_target(history).revision == 3
    assert undo_target(history, 1).replicaset == "web-aaa"


def test_undo_to_an_unknown_revision_fails_like_kubectl(renumbered):
    history = rollout_history(*renumbered)
    with pytest.raises(RknbError, match="unable to find specified revision 2 in history"):
        undo_target(history, 2)
    with pytest.raises(RknbError, match='no rollout history found for deployment "web"'):
        undo_target(history[:1])


def test_missing_revision_annotation_counts_as_revision_0(renumbered):
    deployment, replicasets = renumbered
    unnumbered = {**replicasets[0], "metadata": {**replicasets[0]["metadata"], "annotations": {}}}
    history = rollout_history(deployment, [unnumbered, replicasets[2]])
    assert [r.revision for r in history] == [0, 4]
    assert undo_target(history).revision == 0


def test_manifests_without_uids_match_by_selector(renumbered):
    deployment, replicasets = renumbered
    bare = {
        **deployment,
        "metadata": {k: v for k, v in deployment["metadata"].items() if k != "uid"},
    }
    # Without uids the other owner's ReplicaSet cannot be told apart: it matches the selector.
    assert [r.revision for r in rollout_history(bare, replicasets)] == [1, 3, 4, 9]


def test_diff_ignores_pod_template_hash_and_names_containers(renumbered):
    _, replicasets = renumbered
    current, target = replicasets[2]["spec"]["template"], replicasets[1]["spec"]["template"]
    changes = template_diff(current, target)
    paths = [c.path for c in changes]
    assert "metadata.labels.pod-template-hash" not in paths
    assert "spec.containers[web].image" in paths
    image = next(c for c in changes if c.path == "spec.containers[web].image")
    assert (image.before, image.after) == ("example.org/web:2.0", "example.org/web:3.0")


def test_diff_of_templates_differing_only_in_hash_is_empty(renumbered):
    _, replicasets = renumbered
    template = replicasets[2]["spec"]["template"]
    relabelled = {**template, "metadata": {"labels": {"app": "web", "pod-template-hash": "x"}}}
    assert template_diff(template, relabelled) == []


def test_diff_never_shows_a_secret_env_value(renumbered):
    _, replicasets = renumbered
    changes = template_diff(replicasets[2]["spec"]["template"], replicasets[1]["spec"]["template"])
    text = repr(changes)
    assert "spec.containers[web].env[DB_PASSWORD].value" in text
    assert "hunter2-planted" not in text and "other-planted-value" not in text


def test_pod_ready_estimate_is_initial_delay_plus_period(seed_deployment):
    container = seed_deployment["spec"]["template"]["spec"]["containers"][0]
    assert estimate_pod_ready_s(container) == 15.0  # readiness 5 s delay + 10 s period
    assert estimate_pod_ready_s({"readinessProbe": {"successThreshold": 2}}) == 20.0
    assert estimate_pod_ready_s({}) == 0.0


def test_seed_rollout_takes_three_waves_without_losing_capacity():
    timeline = predict_rollout(3, max_surge=1, max_unavailable=0, pod_ready_s=15)
    assert timeline.waves == 3
    assert timeline.min_available == 3
    assert timeline.duration_s == 45.0
    assert max(s.old + s.new for s in timeline.steps) == 4  # replicas + surge
    assert timeline.scale_steps == ["new+1", "old-1"] * 3
    assert timeline.within_progress_deadline


@pytest.mark.parametrize(
    ("replicas", "surge", "unavailable", "steps"),
    [
        (2, "0%", "1%", ["old-1", "new+1", "old-1", "new+1"]),
        (2, "1%", "25%", ["new+1", "old-1", "new+1", "old-1"]),
        (1, "1%", "25%", ["new+1", "old-1"]),
    ],
)
def test_rolling_sequence_matches_the_controller_comment(replicas, surge, unavailable, steps):
    timeline = predict_rollout(
        replicas, max_surge=surge, max_unavailable=unavailable, pod_ready_s=5
    )
    assert timeline.scale_steps == steps


def test_default_strategy_of_ten_replicas_keeps_eight_available():
    timeline = predict_rollout(10, max_surge="25%", max_unavailable="25%", pod_ready_s=10)
    assert timeline.min_available == 8
    assert max(s.old + s.new for s in timeline.steps) == 13
    assert timeline.scale_steps[:3] == ["new+3", "old-2", "new+2"]


def test_progress_deadline_runs_from_the_last_progress_not_the_start():
    # 10 waves of 100 s: 1000 s in all, but never 600 s without progress.
    timeline = predict_rollout(10, max_surge=1, max_unavailable=0, pod_ready_s=100)
    assert timeline.duration_s == 1000
    assert timeline.within_progress_deadline
    slow = predict_rollout(2, max_surge=1, max_unavailable=0, pod_ready_s=700)
    assert not slow.within_progress_deadline


def test_recreate_drops_to_zero_available():
    timeline = predict_rollout(
        3,
        max_surge=None,
        max_unavailable=None,
        pod_ready_s=15,
        strategy="Recreate",
        termination_grace_s=30,
    )
    assert timeline.min_available == 0
    assert timeline.duration_s == 45


def test_plan_without_replicasets_explains_that_history_needs_a_cluster(seed_deployment):
    plan = plan_rollback(seed_deployment, [])
    assert plan.history_available is False
    assert "cluster" in plan.reason and "bundle" in plan.reason
    assert plan.timeline.waves == 3 and plan.timeline.min_available == 3
    assert plan.timeline.duration_s == 45.0  # estimated 15 s per pod from the readiness probe


def test_plan_gives_exact_undo_and_status_commands(renumbered):
    plan = plan_rollback(*renumbered, to_revision=1)
    assert plan.target is not None and plan.target.revision == 1
    assert "kubectl rollout undo deployment/web -n shop --to-revision=1" in plan.commands
    assert any(c.startswith("kubectl rollout status deployment/web -n shop") for c in plan.commands)
    assert plan.restore_commands[0] == "kubectl rollout undo deployment/web -n shop --to-revision=4"
    assert plan.result == "rolled back"
    # 4 replicas at 25%/25%: surge 1, unavailable 1, so 3 stay available.
    assert plan.timeline.min_available == 3


def test_plan_to_the_live_revision_is_skipped_like_kubectl(renumbered):
    plan = plan_rollback(*renumbered, to_revision=4)
    assert plan.result == "skipped rollback (current template already matches revision 4)"
    assert plan.diff == []
