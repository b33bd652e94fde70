"""The ``rollout`` conformance runner: Kubernetes' own Deployment test tables through rknb.

A vector file (``shared/conformance/rollout/vectors.json``, schema
``rknb.rollout.vectors/1``) holds cases named after the upstream function
they test (``ResolveFenceposts``, ``scale``, ``kubectl rollout undo``...),
each with spelled-out inputs and the expected answer. Every case runs through
the public functions of :mod:`rknb.rollout`; this module only translates the
vectors' snake_case inputs into them and compares. Where a case lists
``asserted`` fields, only those are compared, as the upstream test does.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from rknb import rollout
from rknb.conformance import CaseResult, Summary
from rknb.errors import ParameterError, RknbError

__all__ = ["FUNCTIONS", "evaluate_case", "load_vectors", "run"]

SCHEMA = "rknb.rollout.vectors/1"
_Case = Mapping[str, Any]


def load_vectors(path: Path) -> list[dict[str, Any]]:
    """Return the cases of one vector file (or of every ``*.json`` file in a folder)."""
    if path.is_dir():
        return [case for file in sorted(path.glob("*.json")) for case in load_vectors(file)]
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ParameterError(
            "paths", f"cannot read rollout vectors from {path} ({exc}); give a vectors.json file"
        ) from exc
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise ParameterError(
            "paths", f"{path} is not a rollout vector file (schema {SCHEMA!r} expected)"
        )
    return list(data.get("cases") or [])


def _shape(d: Mapping[str, Any]) -> rollout.DeploymentShape:
    return rollout.DeploymentShape(
        replicas=int(d.get("replicas") or 0),
        strategy=str(d.get("strategy") or "RollingUpdate"),
        max_surge=d.get("max_surge"),
        max_unavailable=d.get("max_unavailable"),
        status_replicas=int(d.get("status_replicas") or 0),
        pod_replacement_policy=d.get("pod_replacement_policy"),
    )


def _rs(data: Mapping[str, Any], index: int = 0) -> rollout.ReplicaSetState:
    status = data.get("status") or {}
    annotations = dict(data.get("annotations") or {})
    if data.get("revision") is not None:
        annotations[rollout.REVISION_ANNOTATION] = str(data["revision"])
    status_replicas = status.get("replicas", data.get("status_replicas"))
    return rollout.ReplicaSetState(
        name=str(data.get("name") or f"rs-{index}"),
        spec_replicas=int(data.get("spec_replicas") or 0),
        status_replicas=int(status_replicas or 0),
        available_replicas=int(status.get("available_replicas") or 0),
        ready_replicas=int(status.get("ready_replicas") or 0),
        terminating_replicas=status.get("terminating_replicas"),
        created=data.get("created", index),
        annotations=annotations,
        uid=data.get("uid"),
        deleting=bool(data.get("deletion_timestamp")),
        generation=int(data.get("generation") or 0),
        observed_generation=int(status.get("observed_generation") or 0),
    )


def _status(data: Mapping[str, Any] | None) -> rollout.RolloutStatus:
    data = data or {}
    return rollout.RolloutStatus(
        replicas=int(data.get("replicas") or 0),
        updated_replicas=int(data.get("updated_replicas") or 0),
        ready_replicas=int(data.get("ready_replicas") or 0),
        available_replicas=int(data.get("available_replicas") or 0),
        observed_generation=int(data.get("observed_generation") or 0),
    )


def _time(value: Any) -> Any:
    return rollout._parse_created(value) if value else None


def _condition(data: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not data:
        return None
    out = {k: v for k, v in data.items() if k != "last_update_time"}
    if data.get("last_update_time"):
        out["lastUpdateTime"] = data["last_update_time"]
    return out


def _fenceposts(i: _Case) -> dict[str, Any]:
    try:
        surge, unavailable = rollout.resolve_fenceposts(
            i["max_surge"], i["max_unavailable"], int(i["desired"])
        )
    except ParameterError:
        return {"error": True}
    return {"surge": surge, "unavailable": unavailable, "error": False}


def _reconcile_new(i: _Case) -> dict[str, Any]:
    new, old = _rs(i["new_rs"], 1), _rs(i["old_rs"], 0)
    scaled = rollout.reconcile_new_replica_set(_shape(i["deployment"]), [old, new], new)
    return {"scaled": scaled, "new_rs_replicas": new.spec_replicas}


def _reconcile_old(i: _Case) -> dict[str, Any]:
    new, old = _rs(i["new_rs"], 1), _rs(i["old_rs"], 0)
    removed = rollout.reconcile_old_replica_sets(_shape(i["deployment"]), [old], new)
    return {"scaled": removed > 0, "old_rs_replicas": old.spec_replicas}


def _cleanup_unhealthy(i: _Case) -> dict[str, Any]:
    olds = [_rs(r, n) for n, r in enumerate(i["old_rss"])]
    return {"cleaned_up": rollout.cleanup_unhealthy_replicas(olds, int(i["max_cleanup_count"]))}


def _scale_down_old(i: _Case) -> dict[str, Any]:
    olds = [_rs(r, n) for n, r in enumerate(i["old_rss"])]
    all_rss = olds if isinstance(i.get("all_rss"), str) or "all_rss" not in i else None
    if all_rss is None:
        all_rss = [_rs(r, n) for n, r in enumerate(i["all_rss"])]
    removed = rollout.scale_down_old_replica_sets(_shape(i["deployment"]), all_rss, olds)
    out: dict[str, Any] = {"scaled_down": removed}
    if len(olds) == 1:
        out["old_rs_replicas"] = olds[0].spec_replicas
    return out


def _new_rs_new_replicas(i: _Case) -> dict[str, Any]:
    new = rollout.ReplicaSetState("new", int(i["new_rs_spec_replicas"]))
    others = [
        rollout.ReplicaSetState(f"rs-{n}", int(r)) for n, r in enumerate(i["all_rs_spec_replicas"])
    ]
    return {"new_rs_replicas": rollout.new_rs_new_replicas(_shape(i["deployment"]), others, new)}


def _complete(i: _Case) -> dict[str, Any]:
    status = _status(i["status"])
    return {
        "complete": rollout.deployment_complete(
            int(i["spec_replicas"]), int(i["generation"]), status
        )
    }


def _progressing(i: _Case) -> dict[str, Any]:
    return {
        "progressing": rollout.deployment_progressing(
            _status(i["old_status"]), _status(i["new_status"])
        )
    }


def _timed_out(i: _Case) -> dict[str, Any]:
    timed_out = rollout.deployment_timed_out(
        i.get("progress_deadline_seconds"),
        _condition(i.get("progressing_condition")),
        _time(i.get("now")),
    )
    return {"timed_out": timed_out}


def _requeue(i: _Case) -> dict[str, Any]:
    after = rollout.requeue_stuck_deployment(
        i.get("progress_deadline_seconds"),
        int(i["spec_replicas"]),
        _condition(i.get("progressing_condition")),
        _status(i.get("new_status")),
        _time(i.get("now")),
        generation=int(i.get("generation") or 0),
    )
    return {"requeue_after_seconds": after}


def _scale(i: _Case) -> dict[str, Any]:
    olds = [_rs(r, n) for n, r in enumerate(i.get("old_rss") or [])]
    new = _rs(i["new_rs"], 99) if i.get("new_rs") else None
    rollout.proportional_scale(_shape(i["deployment"]), new, olds)
    return {"spec_replicas": {rs.name: rs.spec_replicas for rs in [*olds, *([new] if new else [])]}}


def _fraction(i: _Case) -> dict[str, Any]:
    return {"fraction": rollout.replica_set_fraction(_rs(i["rs"]), _shape(i["deployment"]))}


def _cleanup(i: _Case) -> dict[str, Any]:
    olds = [_rs(r, n) for n, r in enumerate(i["old_rss"])]
    deleted = rollout.cleanup_history(olds, i.get("revision_history_limit"))
    return {"deletions": len(deleted), "deleted": deleted}


def _old_pods_running(i: _Case) -> dict[str, Any]:
    new_uid = (i.get("new_rs") or {}).get("uid")
    olds = [_rs(r, n) for n, r in enumerate(i.get("old_rss") or [])]
    running = rollout.old_pods_running(new_uid, olds, i.get("pod_phases_by_rs_uid") or {})
    return {"old_pods_running": running}


def _kubectl_status(i: _Case) -> dict[str, Any]:
    s = i["status"]
    status = {
        "observedGeneration": s.get("observed_generation"),
        "replicas": s.get("replicas"),
        "updatedReplicas": s.get("updated_replicas"),
        "availableReplicas": s.get("available_replicas"),
        "conditions": [_condition({"type": "Progressing", **c}) for c in s.get("conditions") or []],
    }
    try:
        message, done = rollout.kubectl_status(
            str(i["name"]),
            int(i["spec_replicas"]),
            int(i.get("generation") or 0),
            status,
            revision=int(i.get("revision") or 0),
            running_revision=int(i.get("running_revision") or 0),
        )
    except rollout.RolloutFailedError as exc:
        return {"message": "", "done": False, "error": str(exc)}
    return {"message": message, "done": done, "error": None}


def _patch(i: _Case) -> dict[str, Any]:
    ops = rollout.undo_patch(i["pod_template"], i["annotations"])
    return {"patch_type": "application/json-patch+json", "patch": ops}


def _rs_annotations(i: _Case) -> dict[str, Any]:
    annotations = dict(i.get("rs_initial_annotations") or {})
    # The controller copies the Deployment's annotations except its own keys first.
    for key, value in (i.get("deployment_annotations") or {}).items():
        if key not in rollout.SKIPPED_ANNOTATIONS:
            annotations[key] = value
    limit = int(i.get("rev_history_limit_in_chars") or rollout.REVISION_HISTORY_LIMIT_CHARS)
    after = []
    for call in i["calls"]:
        rollout.set_new_replica_set_revision(
            annotations, str(call["new_revision"]), limit_chars=limit
        )
        after.append(
            {
                "revision": annotations.get(rollout.REVISION_ANNOTATION),
                "revision_history": annotations.get(rollout.REVISION_HISTORY_ANNOTATION),
            }
        )
    return {"after_each_call": after}


def _annotations_need_update(i: _Case) -> dict[str, Any]:
    needs = rollout.replicas_annotations_need_update(
        i.get("rs_annotations") or {}, int(i["desired_replicas"]), int(i["max_replicas"])
    )
    return {"needs_update": needs}


def _sequence(i: _Case) -> dict[str, Any]:
    start = i.get("start") or {}
    steps = rollout.rolling_update_sequence(
        int(i["desired"]),
        i.get("max_surge"),
        i.get("max_unavailable"),
        old=start.get("old"),
        new=int(start.get("new") or 0),
    )
    return {"scale_steps": steps}


def _max_scaled_down(i: _Case) -> dict[str, Any]:
    d = rollout.DeploymentShape(
        int(i["replicas"]), "RollingUpdate", i["max_surge"], i["max_unavailable"]
    )
    all_pods = int(i["all_pods"])
    return {
        "max_scaled_down_before_undo": rollout.max_scaled_down(
            d, all_pods, int(i["new_rs_unavailable_before_undo"])
        ),
        "max_scaled_down_after_undo": rollout.max_scaled_down(
            d, all_pods, int(i["new_rs_unavailable_after_undo"])
        ),
    }


_DEPLOYMENT_NAME = "web"


def _undo_objects(i: _Case) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    labels: dict[str, str] = {"app": _DEPLOYMENT_NAME}
    replicasets = []
    current = i.get("current_template_revision")
    current_template: dict[str, Any] = {}
    for n, revision in enumerate(i["rs_revisions"]):
        template = {
            "metadata": {"labels": {**labels, rollout.HASH_LABEL: f"h{n}"}},
            "spec": {"containers": [{"name": "web", "image": f"example.org/web:{n}"}]},
        }
        annotations = {} if revision is None else {rollout.REVISION_ANNOTATION: str(revision)}
        annotations[rollout.CHANGE_CAUSE_ANNOTATION] = f"release {n}"
        replicaset: dict[str, Any] = {
            "kind": "ReplicaSet",
            "metadata": {
                "name": f"{_DEPLOYMENT_NAME}-h{n}",
                "namespace": "default",
                "uid": f"rs-{n}",
                "creationTimestamp": f"2026-01-{n + 1:02d}T00:00:00Z",
                "labels": {**labels, rollout.HASH_LABEL: f"h{n}"},
                "annotations": annotations,
                "ownerReferences": [{"uid": "dep-uid", "controller": True, "kind": "Deployment"}],
            },
            "spec": {"replicas": 0, "template": template},
        }
        replicasets.append(replicaset)
        if revision == current or (revision is None and current is None):
            current_template = rollout._strip_hash(template)
    deployment = {
        "kind": "Deployment",
        "metadata": {
            "name": _DEPLOYMENT_NAME,
            "namespace": "default",
            "uid": "dep-uid",
            "annotations": {rollout.REVISION_ANNOTATION: str(current)},
        },
        "spec": {
            "replicas": 1,
            "paused": bool(i.get("paused")),
            "selector": {"matchLabels": labels},
            "template": current_template,
        },
    }
    return deployment, replicasets


def _undo(i: _Case) -> dict[str, Any]:
    deployment, replicasets = _undo_objects(i)
    try:
        result = rollout.undo(
            deployment,
            replicasets,
            int(i.get("to_revision") or 0),
            dry_run=str(i.get("dry_run") or "none"),
        )
    except RknbError as exc:
        return {"error": str(exc)}
    return {
        "target_revision": result.target.revision,
        "result": result.result,
        "patched": result.patched,
    }


FUNCTIONS: dict[str, Callable[[_Case], dict[str, Any]]] = {
    "ResolveFenceposts": _fenceposts,
    "MaxUnavailable": lambda i: {"max_unavailable": rollout.max_unavailable(_shape(i))},
    "MinAvailable": lambda i: {"min_available": rollout.min_available(_shape(i))},
    "NewRSNewReplicas": _new_rs_new_replicas,
    "reconcileNewReplicaSet": _reconcile_new,
    "reconcileOldReplicaSets": _reconcile_old,
    "cleanupUnhealthyReplicas": _cleanup_unhealthy,
    "scaleDownOldReplicaSetsForRollingUpdate": _scale_down_old,
    "DeploymentComplete": _complete,
    "DeploymentProgressing": _progressing,
    "DeploymentTimedOut": _timed_out,
    "requeueStuckDeployment": _requeue,
    "scale": _scale,
    "getReplicaSetFraction": _fraction,
    "cleanupDeployment": _cleanup,
    "oldPodsRunning": _old_pods_running,
    "DeploymentStatusViewer.Status": _kubectl_status,
    "getDeploymentPatch": _patch,
    "SetNewReplicaSetAnnotations": _rs_annotations,
    "IsSaturated": lambda i: {
        "saturated": rollout.is_saturated(
            _shape(i["deployment"]), _rs(i["rs"]) if i.get("rs") else None
        )
    },
    "ReplicasAnnotationsNeedUpdate": _annotations_need_update,
    "rollingUpdateSequence": _sequence,
    "reconcileOldReplicaSets.maxScaledDown": _max_scaled_down,
    "kubectl rollout undo": _undo,
}

# Expected keys that describe a case rather than a value to compare.
_PROSE_KEYS = frozenset({"why", "meaning", "then"})


def _compare(key: str, expected: Any, actual: Mapping[str, Any]) -> str | None:
    if key == "error_contains":
        error = actual.get("error")
        return None if error and str(expected) in error else f"error containing {expected!r}"
    if key == "error" and isinstance(expected, str):
        # kubectl's message, with <name> for the Deployment; rknb adds what to do after it.
        wanted = str(expected).replace("<name>", _DEPLOYMENT_NAME)
        error = actual.get("error")
        return None if error and wanted in error else f"error {wanted!r}"
    if key == "patch":
        wanted = json.loads(expected) if isinstance(expected, str) else expected
        return None if actual.get("patch") == wanted else "patch"
    if key not in actual:
        return f"{key} (not computed)"
    return None if actual[key] == expected else key


def evaluate_case(case: _Case) -> CaseResult:
    """Return the result of one case: passed when every expected field matches."""
    case_id = str(case.get("id", "?"))
    function = FUNCTIONS.get(str(case.get("function")))
    expected = case.get("expected") or {}
    if function is None:
        known = ", ".join(sorted(FUNCTIONS))
        return CaseResult(
            case_id,
            "failed",
            expected,
            None,
            f"unknown function {case.get('function')!r}; known: {known}",
        )
    try:
        actual = function(case.get("input") or {})
    except (RknbError, KeyError, TypeError, ValueError) as exc:
        return CaseResult(case_id, "failed", expected, None, f"{type(exc).__name__}: {exc}")

    asserted = case.get("asserted")
    keys = [k for k in expected if k not in _PROSE_KEYS]
    if asserted and all(a in expected for a in asserted):
        keys = list(asserted)
    if isinstance(expected.get("error"), str) or "error_contains" in expected:
        keys = [k for k in keys if k in ("error", "error_contains")] or keys
    wrong = [w for k in keys if (w := _compare(k, expected[k], actual)) is not None]
    shown = {k: actual.get(k) for k in keys}
    if wrong:
        return CaseResult(
            case_id, "failed", {k: expected[k] for k in keys}, shown, "; ".join(wrong)
        )
    return CaseResult(case_id, "passed", {k: expected[k] for k in keys}, shown)


def run(paths: Sequence[Path], **options: Any) -> Summary:
    """Return the summary of every rollout case in ``paths``."""
    if options:
        raise ParameterError(
            "options", f"the rollout runner takes no options, got {sorted(options)}"
        )
    summary = Summary("rollout", label="rollout vectors")
    for path in paths:
        for case in load_vectors(path):
            summary.results.append(evaluate_case(case))
    return summary
