"""The rollback drill's cluster side: dry-run, execute, measure and restore a rollback.

:mod:`rknb.rollout` plans a rollback from objects; this module carries the
plan out against a live cluster through :class:`~rknb.sources.cluster.ClusterSource`,
with the safety rules of the design: nothing changes unless ``execute`` is set
and the confirmation names the Deployment, the context and namespace are on
an allowlist, the starting state is written to the report folder first, and
the restore step reads the template of the revision the drill started from
out of that ReplicaSet in the cluster. The patch is kubectl's own (replace
``/spec/template`` and ``/metadata/annotations``) plus a resourceVersion
precondition, so a Deployment changed by someone else answers 409 instead of
being overwritten.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from rknb import rollout
from rknb.errors import ClusterError, ParameterError, SafetyError
from rknb.sources.base import KubeObject

__all__ = [
    "DrillResult",
    "DryRun",
    "Objectives",
    "Probe",
    "check_allowed",
    "check_confirmation",
    "dry_run",
    "execute",
    "http_probe",
    "read_state",
    "restore",
    "write_starting_state",
]

logger = logging.getLogger(__name__)


class _Cluster(Protocol):
    context: str | None

    def get(self, kind: str, namespace: str | None, name: str) -> KubeObject: ...

    def list(self, kind: str, namespace: str | None = None) -> list[KubeObject]: ...

    def patch(
        self,
        kind: str,
        namespace: str | None,
        name: str,
        patch: Any,
        *,
        patch_type: str = ...,
        dry_run: bool = ...,
    ) -> KubeObject: ...

    def watch(
        self,
        kind: str,
        namespace: str | None = None,
        timeout_s: float = 60.0,
        *,
        resource_version: str | None = None,
    ) -> Any: ...


#: A probe answers whether the service answered correctly just now.
Probe = Callable[[], bool]


def http_probe(url: str, *, timeout_s: float = 2.0) -> Probe:
    """Return a probe that GETs ``url`` and counts any 2xx or 3xx answer as success."""
    if "://" in url and "@" in url.split("/")[2]:
        raise ParameterError("probe_url", "user:password in a URL is refused; use a header file")

    def probe() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=timeout_s) as response:
                return 200 <= response.status < 400
        except (urllib.error.URLError, OSError, ValueError):
            return False

    return probe


@dataclass(frozen=True)
class Objectives:
    """What the drill must achieve to pass.

    ``min_available`` of ``None`` means the Deployment's own minAvailable
    (replicas - maxUnavailable). The probe error ratio passes when it is
    strictly below ``max_probe_error_ratio``; no probe samples is a failure
    of that objective (no data is not success).
    """

    max_recovery_s: float = 300.0
    min_available: int | None = None
    max_probe_error_ratio: float = 0.01


def check_allowed(context: str, namespace: str, allowlist: Sequence[str]) -> None:
    """Refuse a context or namespace not on the allowlist (``context/ns`` or ``context/*``)."""
    entries = [e.strip() for e in allowlist if e.strip()]
    if f"{context}/{namespace}" in entries or f"{context}/*" in entries:
        return
    shown = ", ".join(entries) or "empty"
    raise SafetyError(
        f"context {context!r} namespace {namespace!r} is not on the drill allowlist ({shown}); "
        f"add '{context}/{namespace}' to the allowlist parameter to allow changes there"
    )


def check_confirmation(execute: bool, confirm: str, deployment: str) -> None:
    """Refuse to change anything unless ``execute`` is set and ``confirm`` names the Deployment."""
    if not execute:
        raise SafetyError("execute is False: the drill only plans and dry-runs; set execute=True")
    if confirm != deployment:
        raise SafetyError(
            f"confirmation {confirm!r} does not name the Deployment {deployment!r}; "
            "set confirm to the Deployment's name to allow the change"
        )


def read_state(source: _Cluster, namespace: str, name: str) -> tuple[KubeObject, list[KubeObject]]:
    """Return the Deployment and its namespace's ReplicaSets, as read now."""
    deployment = source.get("Deployment", namespace, name)
    return deployment, source.list("ReplicaSet", namespace)


def write_starting_state(
    folder: Path, deployment: KubeObject, replicasets: Sequence[KubeObject]
) -> Path:
    """Write the Deployment and its ReplicaSets before any change; return the file written.

    Env var values that look secret are redacted as in the plan's diff.
    """
    history = rollout.rollout_history(deployment, replicasets)
    state = {
        "deployment": _redacted(deployment),
        "revisions": [
            {"revision": r.revision, "replicaset": r.replicaset, "change_cause": r.change_cause}
            for r in history
        ],
        "current_revision": next((r.revision for r in history if r.is_current), None),
    }
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "drill-starting-state.json"
    path.write_text(json.dumps(state, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return path


def _redacted(obj: Any, key: str = "") -> Any:
    if isinstance(obj, dict):
        name = str(obj.get("name", ""))
        if "value" in obj and rollout._SECRET_NAME.search(name):
            return {**obj, "value": rollout.REDACTED}
        return {k: _redacted(v, k) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_redacted(v, key) for v in obj]
    return obj


def _guarded(patch: list[dict[str, Any]], deployment: KubeObject) -> list[dict[str, Any]]:
    # The resourceVersion read with the plan: the API server answers 409 if it moved on.
    rv = str((deployment.get("metadata") or {}).get("resourceVersion", ""))
    guard = {"op": "replace", "path": "/metadata/resourceVersion", "value": rv}
    return [*patch, guard] if rv else list(patch)


@dataclass(frozen=True)
class DryRun:
    """What a rollback would send and what the server said to it (with ``dryRun=All``)."""

    target_revision: int
    result: str
    patch: list[dict[str, Any]] | None
    server_template: dict[str, Any] | None


def dry_run(source: _Cluster, namespace: str, name: str, to_revision: int = 0) -> DryRun:
    """Return the rollback's patch after sending it with server-side dry run (nothing stored)."""
    deployment, replicasets = read_state(source, namespace, name)
    undo = rollout.undo(deployment, replicasets, to_revision)
    if undo.patch is None:
        return DryRun(undo.target.revision, undo.result, None, None)
    patch = _guarded(undo.patch, deployment)
    answer = source.patch("Deployment", namespace, name, patch, dry_run=True)
    template = (answer.get("spec") or {}).get("template")
    return DryRun(undo.target.revision, undo.result, patch, template)


@dataclass
class DrillResult:
    """The measured rollout: timeline, recovery, availability, probe errors and verdicts."""

    mode: str
    deployment: str
    namespace: str
    from_revision: int | None
    to_revision: int | None
    result: str
    outcome: str
    recovery_s: float | None
    min_available_observed: int | None
    min_available_predicted: int
    predicted_duration_s: float
    probe_samples: int
    probe_errors: int
    timeline: list[dict[str, Any]] = field(default_factory=list)
    verdicts: dict[str, bool] = field(default_factory=dict)
    restore_commands: list[str] = field(default_factory=list)
    starting_state: str = ""
    watch_restarts: int = 0

    @property
    def probe_error_ratio(self) -> float | None:
        """Probe errors over samples; ``None`` without samples."""
        return self.probe_errors / self.probe_samples if self.probe_samples else None

    @property
    def passed(self) -> bool:
        """Whether the rollout completed and every objective held."""
        return self.outcome == "complete" and all(self.verdicts.values())

    def timeline_frame(self) -> pd.DataFrame:
        """Return the timeline as a frame: t_s, source, event, available, updated, probe_ok."""
        columns = ["t_s", "source", "event", "available", "updated", "replicas", "probe_ok"]
        return pd.DataFrame(self.timeline, columns=columns)


def _commands(name: str, namespace: str, revision: int | None) -> list[str]:
    if revision is None:
        return []
    return [
        f"kubectl rollout undo deployment/{name} -n {namespace} --to-revision={revision}",
        f"kubectl rollout status deployment/{name} -n {namespace}",
    ]


class _Watcher:
    """Watches one kind in a thread, resuming from the last event's resourceVersion."""

    def __init__(self, source: _Cluster, kind: str, namespace: str, events: queue.Queue[Any]):
        self.source, self.kind, self.namespace, self.events = source, kind, namespace, events
        self.stop = threading.Event()
        self.restarts = 0
        self.error: Exception | None = None
        self.thread = threading.Thread(target=self._run, name=f"drill-watch-{kind}", daemon=True)

    def _run(self) -> None:
        rv: str | None = None
        while not self.stop.is_set():
            try:
                for event in self.source.watch(
                    self.kind, self.namespace, timeout_s=1.0, resource_version=rv
                ):
                    obj = event.get("object") or {}
                    rv = str((obj.get("metadata") or {}).get("resourceVersion") or rv or "")
                    self.events.put((self.kind, event.get("type"), obj))
                    if self.stop.is_set():
                        return
            except ClusterError as exc:
                self.error = exc
                return
            # The watch ended (timeout); start the next one where this one stopped.
            self.restarts += 1


def _measure(
    source: _Cluster,
    namespace: str,
    name: str,
    *,
    template: dict[str, Any],
    probe: Probe | None,
    interval_s: float,
    timeout_s: float,
    started: float,
) -> tuple[str, float | None, list[dict[str, Any]], int, int, int | None, int]:
    events: queue.Queue[Any] = queue.Queue()
    watchers = [_Watcher(source, k, namespace, events) for k in ("Deployment", "ReplicaSet", "Pod")]
    for watcher in watchers:
        watcher.thread.start()
    timeline: list[dict[str, Any]] = []
    samples = errors = 0
    min_available: int | None = None
    outcome, recovery = "timeout", None
    next_probe = time.monotonic()
    wanted = rollout._go_template(rollout._strip_hash(template))
    try:
        while time.monotonic() - started < timeout_s:
            deployment = source.get("Deployment", namespace, name)
            spec = deployment.get("spec") or {}
            status = deployment.get("status") or {}
            seen = rollout._go_template(rollout._strip_hash(spec.get("template") or {}))
            if seen != wanted:
                outcome = "conflict"
                break
            available = int(status.get("availableReplicas") or 0)
            if int(status.get("observedGeneration") or 0) >= int(
                (deployment.get("metadata") or {}).get("generation") or 0
            ):
                min_available = (
                    available if min_available is None else min(min_available, available)
                )
            while not events.empty():
                kind, kind_event, obj = events.get_nowait()
                meta = obj.get("metadata") or {}
                timeline.append(
                    {
                        "t_s": round(time.monotonic() - started, 3),
                        "source": kind,
                        "event": f"{kind_event} {meta.get('name', '')}",
                        "available": available,
                        "updated": int(status.get("updatedReplicas") or 0),
                        "replicas": int(status.get("replicas") or 0),
                        "probe_ok": None,
                    }
                )
            if probe is not None and time.monotonic() >= next_probe:
                ok = probe()
                samples += 1
                errors += 0 if ok else 1
                next_probe += interval_s
                timeline.append(
                    {
                        "t_s": round(time.monotonic() - started, 3),
                        "source": "probe",
                        "event": "ok" if ok else "error",
                        "available": available,
                        "updated": int(status.get("updatedReplicas") or 0),
                        "replicas": int(status.get("replicas") or 0),
                        "probe_ok": ok,
                    }
                )
            try:
                _, done = rollout.kubectl_status(
                    name,
                    rollout.rollout_strategy(deployment).replicas,
                    int((deployment.get("metadata") or {}).get("generation") or 0),
                    status,
                )
            except rollout.RolloutFailedError:
                outcome = "progress deadline exceeded"
                break
            if done:
                outcome, recovery = "complete", time.monotonic() - started
                break
            time.sleep(min(interval_s, 0.05))
    finally:
        for watcher in watchers:
            watcher.stop.set()
        for watcher in watchers:
            watcher.thread.join(timeout=3)
    restarts = sum(w.restarts for w in watchers)
    return outcome, recovery, timeline, samples, errors, min_available, restarts


def _run_rollback(
    mode: str,
    source: _Cluster,
    namespace: str,
    name: str,
    *,
    deployment: KubeObject,
    replicasets: Sequence[KubeObject],
    target_rs: KubeObject,
    target_revision: int,
    from_revision: int | None,
    report_dir: Path,
    probe: Probe | None,
    interval_s: float,
    timeout_s: float | None,
    objectives: Objectives,
) -> DrillResult:
    state_file = write_starting_state(report_dir, deployment, replicasets)
    plan = rollout.plan_rollback(deployment, replicasets, target_revision)
    timeline_prediction = plan.timeline
    strategy = rollout.rollout_strategy(deployment)
    meta = deployment.get("metadata") or {}
    template = rollout._strip_hash((target_rs.get("spec") or {}).get("template") or {})
    current = rollout._strip_hash((deployment.get("spec") or {}).get("template") or {})
    restore_cmds = _commands(name, namespace, from_revision)
    result = DrillResult(
        mode=mode,
        deployment=name,
        namespace=namespace,
        from_revision=from_revision,
        to_revision=target_revision,
        result="",
        outcome="",
        recovery_s=None,
        min_available_observed=None,
        min_available_predicted=timeline_prediction.min_available,
        predicted_duration_s=timeline_prediction.duration_s,
        probe_samples=0,
        probe_errors=0,
        restore_commands=restore_cmds,
        starting_state=state_file.name,
    )
    if rollout._go_template(template) == rollout._go_template(current):
        result.result = (
            f"skipped rollback (current template already matches revision {target_revision})"
        )
        result.outcome = "complete"
        result.recovery_s = 0.0
        return result

    annotations = rollout.undo_annotations(
        meta.get("annotations") or {}, (target_rs.get("metadata") or {}).get("annotations") or {}
    )
    patch = _guarded(rollout.undo_patch(template, annotations), deployment)
    try:
        source.patch("Deployment", namespace, name, patch)
    except ClusterError as exc:
        if exc.status == 409:
            result.result, result.outcome = "stopped: conflict", "conflict"
            logger.warning("drill stopped before any change: %s", exc)
            return result
        raise
    started = time.monotonic()
    result.result = "rolled back" if mode == "execute" else "restored"
    deadline = timeout_s
    if deadline is None:
        deadline = (strategy.progress_deadline_s or 600.0) + 2 * timeline_prediction.duration_s
    outcome, recovery, timeline, samples, errors, min_seen, restarts = _measure(
        source,
        namespace,
        name,
        template=template,
        probe=probe,
        interval_s=interval_s,
        timeout_s=deadline,
        started=started,
    )
    result.outcome, result.recovery_s, result.timeline = outcome, recovery, timeline
    result.probe_samples, result.probe_errors = samples, errors
    result.min_available_observed, result.watch_restarts = min_seen, restarts
    floor = objectives.min_available
    if floor is None:
        floor = rollout.min_available(rollout.deployment_shape(deployment))
    ratio = result.probe_error_ratio
    result.verdicts = {
        f"recovery under {objectives.max_recovery_s:g} s": recovery is not None
        and recovery < objectives.max_recovery_s,
        f"available never below {floor}": min_seen is not None and min_seen >= floor,
    }
    if probe is not None:
        result.verdicts[f"probe error ratio under {objectives.max_probe_error_ratio:.2%}"] = (
            ratio is not None and ratio < objectives.max_probe_error_ratio
        )
    if outcome != "complete":
        logger.warning(
            "drill of %s/%s ended with %s; restore with: %s",
            namespace,
            name,
            outcome,
            "; ".join(restore_cmds),
        )
    return result


def execute(
    source: _Cluster,
    namespace: str,
    name: str,
    to_revision: int = 0,
    *,
    execute: bool,
    confirm: str,
    allowlist: Sequence[str],
    report_dir: Path,
    probe: Probe | None = None,
    interval_s: float = 1.0,
    timeout_s: float | None = None,
    objectives: Objectives | None = None,
) -> DrillResult:
    """Roll the Deployment back as ``kubectl rollout undo`` and measure the rollout.

    Refuses (SafetyError) unless ``execute`` is set, ``confirm`` equals the
    Deployment's name and ``context/namespace`` is on ``allowlist``. Writes
    the starting state to ``report_dir`` before the patch. A paused
    Deployment or an unknown revision is refused as kubectl refuses it.

    Parameters
    ----------
    source
        A cluster source (its ``context`` is checked against the allowlist).
    namespace
        The Deployment's namespace.
    name
        The Deployment.
    to_revision
        As ``kubectl rollout undo --to-revision``; 0 is the second-highest revision.
    execute
        Must be True to change anything.
    confirm
        Must equal ``name``.
    allowlist
        ``context/namespace`` (or ``context/*``) entries where changes are allowed.
    report_dir
        Where the starting state is written.
    probe
        Called every ``interval_s`` during the rollout; True when the service answered.
    interval_s
        Seconds between probes.
    timeout_s
        Give up watching after this many seconds; default the progress deadline
        plus twice the predicted duration.
    objectives
        Pass/fail thresholds; :class:`Objectives` defaults when omitted.
    """
    check_confirmation(execute, confirm, name)
    check_allowed(str(source.context or ""), namespace, allowlist)
    deployment, replicasets = read_state(source, namespace, name)
    undo = rollout.undo(deployment, replicasets, to_revision)  # refuses paused / unknown
    history = rollout.rollout_history(deployment, replicasets)
    current = next((r for r in history if r.is_current), None)
    target_rs = next(
        rs for rs in replicasets if (rs.get("metadata") or {}).get("name") == undo.target.replicaset
    )
    return _run_rollback(
        "execute",
        source,
        namespace,
        name,
        deployment=deployment,
        replicasets=replicasets,
        target_rs=target_rs,
        target_revision=undo.target.revision,
        from_revision=current.revision if current else None,
        report_dir=report_dir,
        probe=probe,
        interval_s=interval_s,
        timeout_s=timeout_s,
        objectives=objectives or Objectives(),
    )


def restore(
    source: _Cluster,
    namespace: str,
    name: str,
    replicaset: str,
    *,
    execute: bool,
    confirm: str,
    allowlist: Sequence[str],
    report_dir: Path,
    probe: Probe | None = None,
    interval_s: float = 1.0,
    timeout_s: float | None = None,
    objectives: Objectives | None = None,
) -> DrillResult:
    """Roll forward to the template of the ReplicaSet the drill started from, read from the cluster.

    The ReplicaSet is named, not its revision: the rollback renumbered
    revisions, and the template is read from the cluster, never from a copy.

    Parameters
    ----------
    source
        A cluster source.
    namespace
        The Deployment's namespace.
    name
        The Deployment.
    replicaset
        The ReplicaSet that held the starting revision (``DrillResult`` of the
        execute step and the starting-state file name it).
    execute
        Must be True.
    confirm
        Must equal ``name``.
    allowlist
        As for :func:`execute`.
    report_dir
        Where the state before the restore is written.
    probe
        As for :func:`execute`.
    interval_s
        As for :func:`execute`.
    timeout_s
        As for :func:`execute`.
    objectives
        As for :func:`execute`.
    """
    check_confirmation(execute, confirm, name)
    check_allowed(str(source.context or ""), namespace, allowlist)
    deployment, replicasets = read_state(source, namespace, name)
    if (deployment.get("spec") or {}).get("paused"):
        raise rollout.RollbackRefusedError(
            f"deployment {name!r} is paused; resume it before restoring"
        )
    target_rs = source.get("ReplicaSet", namespace, replicaset)
    history = rollout.rollout_history(deployment, [*replicasets])
    current = next((r for r in history if r.is_current), None)
    revision = rollout.ReplicaSetState(
        replicaset, annotations=dict((target_rs.get("metadata") or {}).get("annotations") or {})
    ).revision
    return _run_rollback(
        "restore",
        source,
        namespace,
        name,
        deployment=deployment,
        replicasets=replicasets,
        target_rs=target_rs,
        target_revision=revision or 0,
        from_revision=current.revision if current else None,
        report_dir=report_dir,
        probe=probe,
        interval_s=interval_s,
        timeout_s=timeout_s,
        objectives=objectives or Objectives(),
    )
