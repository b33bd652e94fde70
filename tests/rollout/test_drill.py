from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from fakekube.controller import wait_rolled_out

from rknb import drill, rollout
from rknb.conformance import run_area
from rknb.errors import ClusterError, SafetyError
from rknb.sources.cluster import ClusterSource

DATA = Path(__file__).resolve().parents[1] / "data" / "conformance" / "rollout"
SHARED = Path("/work/shared/conformance/rollout/vectors.json")
ALLOW = ["fake/shop"]


def test_every_rollout_vector_passes_through_the_runner():
    summary = run_area("rollout", [DATA / "vectors.json"])
    assert [f.line() for f in summary.failures()] == []
    assert summary.passed == 91


@pytest.mark.skipif(not SHARED.exists(), reason="shared conformance folder not present")
def test_vector_copy_matches_the_shared_folder():
    assert (DATA / "vectors.json").read_bytes() == SHARED.read_bytes()


def _images(fake):
    d = next(o for o in fake.objects("Deployment") if o["metadata"]["name"] == "web")
    return [c["image"] for c in d["spec"]["template"]["spec"]["containers"]], d


def test_dry_run_sends_kubectls_patch_with_dry_run_all_and_changes_nothing(cluster_with_history):
    fake, source, _ = cluster_with_history
    _, before = _images(fake)
    result = drill.dry_run(source, "shop", "web")
    patches = [r for r in fake.requests if r.verb == "patch"]
    assert patches[-1].query == {"dryRun": "All"}
    assert result.target_revision == 1
    assert [op["path"] for op in result.patch] == [
        "/spec/template",
        "/metadata/annotations",
        "/metadata/resourceVersion",
    ]
    assert result.server_template["spec"]["containers"][0]["image"] == "example.org/web:1"
    images, after = _images(fake)
    assert images == ["example.org/web:2"]
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]


def test_execute_without_confirmation_sends_no_patch(cluster_with_history, tmp_path):
    fake, source, _ = cluster_with_history
    count = len(fake.requests)
    with pytest.raises(SafetyError, match="confirmation"):
        drill.execute(
            source, "shop", "web", execute=True, confirm="api", allowlist=ALLOW, report_dir=tmp_path
        )
    with pytest.raises(SafetyError, match="parameter 'execute' is False"):
        drill.execute(
            source,
            "shop",
            "web",
            execute=False,
            confirm="web",
            allowlist=ALLOW,
            report_dir=tmp_path,
        )
    assert len(fake.requests) == count


def test_execute_refuses_a_namespace_off_the_allowlist(cluster_with_history, tmp_path):
    _, source, _ = cluster_with_history
    with pytest.raises(SafetyError, match="fake/shop"):
        drill.execute(
            source,
            "shop",
            "web",
            execute=True,
            confirm="web",
            allowlist=["fake/other"],
            report_dir=tmp_path,
        )


def test_execute_then_restore_round_trips_and_renumbers_revisions(cluster_with_history, tmp_path):
    fake, source, _ = cluster_with_history
    result = drill.execute(
        source,
        "shop",
        "web",
        execute=True,
        confirm="web",
        allowlist=ALLOW,
        report_dir=tmp_path,
        probe=lambda: True,
        interval_s=0.05,
        timeout_s=15,
    )
    assert result.outcome == "complete", result
    assert result.result == "rolled back" and result.from_revision == 2 and result.to_revision == 1
    # maxSurge 1, maxUnavailable 0: availability never drops below 3, as predicted.
    assert result.min_available_predicted == 3 and result.min_available_observed == 3
    assert result.passed and result.probe_samples > 0 and result.probe_error_ratio == 0
    state = json.loads((tmp_path / "drill-starting-state.json").read_text())
    assert state["current_revision"] == 2
    images, deployment = _images(fake)
    assert images == ["example.org/web:1"]
    # The target was renumbered to max+1 = 3, and revision 1 left the history.
    history = rollout.rollout_history(deployment, fake.objects("ReplicaSet"))
    assert [r.revision for r in history] == [2, 3]
    assert deployment["metadata"]["annotations"].get("kubernetes.io/change-cause") is None
    start_rs = next(r.replicaset for r in history if r.revision == 2)

    back = drill.restore(
        source,
        "shop",
        "web",
        start_rs,
        execute=True,
        confirm="web",
        allowlist=ALLOW,
        report_dir=tmp_path / "restore",
        timeout_s=15,
    )
    assert back.outcome == "complete" and back.result == "restored"
    images, deployment = _images(fake)
    assert images == ["example.org/web:2"]
    assert deployment["metadata"]["annotations"]["kubernetes.io/change-cause"] == "release 2"
    history = rollout.rollout_history(deployment, fake.objects("ReplicaSet"))
    assert [r.revision for r in history] == [3, 4]


def test_a_change_by_someone_else_before_the_patch_is_a_conflict(cluster_with_history, tmp_path):
    fake, source, _ = cluster_with_history

    def someone_scales(_request):
        _, d = _images(fake)
        d["metadata"]["annotations"]["owner"] = "someone else"
        fake.update(d)

    fake.before_next("patch", someone_scales)
    result = drill.execute(
        source, "shop", "web", execute=True, confirm="web", allowlist=ALLOW, report_dir=tmp_path
    )
    assert result.outcome == "conflict"
    assert [r.code for r in fake.requests if r.verb == "patch"][-1] == 409
    assert _images(fake)[0] == ["example.org/web:2"]


def test_a_broken_target_exceeds_the_deadline_and_prints_the_restore(fake_kube, tmp_path):
    from fakekube.controller import DeploymentController, PodTiming
    from fakekube.samples import web_deployment

    from rknb.sources.cluster import MERGE_PATCH

    timing = PodTiming(default_ready_s=0.1, by_image={"example.org/web:broken": None})
    controller = DeploymentController(fake_kube, tick_s=0.02, timing=timing).start()
    source = ClusterSource("fake", kubeconfig=str(fake_kube.kubeconfig))
    try:
        fake_kube.add(web_deployment("example.org/web:broken", deadline_s=1))
        while not fake_kube.objects("ReplicaSet"):  # revision 1 exists before the fix ships
            time.sleep(0.02)
        patch = {
            "spec": {
                "template": {
                    "spec": {"containers": [{"name": "web", "image": "example.org/web:2"}]}
                }
            }
        }
        source.patch("Deployment", "shop", "web", patch, patch_type=MERGE_PATCH)
        wait_rolled_out(fake_kube)
        result = drill.execute(
            source,
            "shop",
            "web",
            execute=True,
            confirm="web",
            allowlist=ALLOW,
            report_dir=tmp_path,
            timeout_s=10,
        )
    finally:
        controller.stop()
        source.close()
    assert result.outcome == "timeout"
    assert not result.passed
    assert (
        result.restore_commands[0] == "kubectl rollout undo deployment/web -n shop --to-revision=2"
    )


def test_a_forbidden_patch_names_the_missing_permission(cluster_with_history):
    fake, source, _ = cluster_with_history
    fake.forbid("Deployment", verbs=("patch",))
    with pytest.raises(
        ClusterError, match="grant the verb 'patch' on resource 'deployments'"
    ) as info:
        drill.dry_run(source, "shop", "web")
    assert info.value.status == 403


def test_a_missing_deployment_is_named(cluster_with_history):
    _, source, _ = cluster_with_history
    with pytest.raises(ClusterError, match=r"Deployment 'api'.*not found"):
        drill.dry_run(source, "shop", "api")


def test_a_paused_deployment_is_refused_as_kubectl_does(cluster_with_history, tmp_path):
    fake, source, _ = cluster_with_history
    _, d = _images(fake)
    d["spec"]["paused"] = True
    fake.update(d)
    with pytest.raises(rollout.RollbackRefusedError, match="paused"):
        drill.execute(
            source, "shop", "web", execute=True, confirm="web", allowlist=ALLOW, report_dir=tmp_path
        )
    assert not (tmp_path / "drill-starting-state.json").exists()


def test_a_missing_credential_plugin_is_refused_before_any_call(fake_kube, tmp_path):
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": fake_kube.url}}],
        "users": [
            {
                "name": "u",
                "user": {
                    "exec": {
                        "apiVersion": "client.authentication.k8s.io/v1",
                        "command": "rknb-no-such-plugin",
                    }
                },
            }
        ],
        "contexts": [{"name": "plugin", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "plugin",
    }
    path = tmp_path / "kubeconfig"
    path.write_text(json.dumps(config))
    with pytest.raises(ClusterError, match="rknb-no-such-plugin"):
        ClusterSource("plugin", kubeconfig=str(path))
    assert fake_kube.requests == []
