"""The rollback drill notebook run end to end (papermill) against a cluster API.

The fake API server on loopback by default; a real cluster with
``RKNB_DRILL_KUBECONFIG`` (see ``drill_target``). Each notebook run costs
several seconds, so the runs are few and marked slow.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from drill_target import drill_target

from rknb.report import run_notebook

pytestmark = pytest.mark.slow


def _run(target: Any, tmp_path: Path, mode: str, **extra: Any) -> Any:
    parameters = {
        "cluster": target.context,
        "namespace": target.namespace,
        "workload": "web",
        "mode": mode,
        "pod_ready": target.pod_ready,
        "state_dir": str(tmp_path / "state"),
        "allowed_contexts": target.context,
        "allowed_namespaces": target.namespace,
        **extra,
    }
    return run_notebook(
        "rollback_drill",
        parameters,
        output_dir=tmp_path / "reports",
        timeout_s=240,
        environment={"KUBECONFIG": str(target.kubeconfig), "RKNB_REPORT_DIR": None},
    )


def _template_images(deployment: dict[str, Any]) -> list[str]:
    return [c["image"] for c in deployment["spec"]["template"]["spec"]["containers"]]


def test_the_notebook_dry_run_sends_the_patch_and_stores_nothing(tmp_path):
    with drill_target(tmp_path) as target:
        before = target.stored()
        result = _run(target, tmp_path, "dry-run")
        after = target.stored()
    assert result.status == "ok", result.message
    figures = result.figures
    assert figures["mode"] == "dry-run"
    assert (figures["drill_from_revision"], figures["drill_to_revision"]) == (2, 1)
    # kubectl's two replace operations plus the resourceVersion precondition.
    assert figures["patch_operations"] == 3
    assert result.verdict["status"] == "none"
    assert _template_images(after) == [target.images[1]]
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert not (tmp_path / "state").exists()


def test_the_notebook_executes_then_restores_and_measures_against_the_prediction(tmp_path):
    with drill_target(tmp_path) as target:
        confirm = {"execute": True, "confirm": "web"}
        done = _run(target, tmp_path, "execute", probe_interval_s=0.2, **confirm)
        rolled_back = target.stored()
        back = _run(target, tmp_path, "restore", **confirm)
        restored = target.stored()
    assert done.status == "ok", done.message
    got = done.figures
    assert done.verdict["status"] == "pass", done.verdict
    assert got["drill_outcome"] == "complete"
    assert (got["drill_from_revision"], got["drill_to_revision"]) == (2, 1)
    # maxSurge 1, maxUnavailable 0 on 3 replicas: availability never drops, as predicted.
    assert got["min_available_predicted"] == 3
    assert got["min_available_observed"] == got["min_available_predicted"]
    # Three waves, each waiting for one new pod to become ready: at least 3 readiness delays.
    assert target.min_recovery_s <= got["recovery_s"] < 300
    assert got["predicted_duration_s"] == pytest.approx(target.min_recovery_s)
    state = json.loads((tmp_path / "state" / "drill-starting-state.json").read_text())
    assert state["current_revision"] == 2 and state["context"] == target.context
    assert _template_images(state["deployment"]) == [target.images[1]]
    assert _template_images(rolled_back) == [target.images[0]]
    html = done.html_path.read_text(encoding="utf-8")
    assert f"kubectl rollout undo deployment/web -n {target.namespace} --to-revision=2" in html
    assert "time to recovery" in html and html.count("data:image/png") >= 2

    assert back.status == "ok", back.message
    assert back.verdict["status"] == "pass"
    # The restore rolls forward from the renumbered target (3) to the starting ReplicaSet (2).
    assert (back.figures["drill_from_revision"], back.figures["drill_to_revision"]) == (3, 2)
    assert back.figures["drill_result"] == "restored"
    assert _template_images(restored) == [target.images[1]]
    assert restored["metadata"]["annotations"]["kubernetes.io/change-cause"] == "release 2"
    assert not restored["spec"].get("paused")
