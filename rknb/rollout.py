"""Rollback planning: rollout history, undo targets, template diffs and rollout timelines.

The rollback drill has to answer, before anything is changed, the questions
``kubectl rollout undo`` does not: which revision a plain ``undo`` would pick
(the second-highest revision number, not "the previous one"), what the pod
template change is, how long the Deployment controller will take to roll it
out and whether available capacity dips on the way. Everything here is a
pure function over API-JSON dicts, read the way kubectl and the Deployment
controller read them (see ``shared/conformance/rollout/SPEC.md``).
"""

from __future__ import annotations

import copy
import itertools
import logging
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd

from rknb.errors import ParameterError, RknbError
from rknb.kube import parse_int_or_percent

__all__ = [
    "CHANGE_CAUSE_ANNOTATION",
    "HASH_LABEL",
    "REVISION_ANNOTATION",
    "Change",
    "DeploymentShape",
    "ReplicaSetState",
    "Revision",
    "RevisionError",
    "RollbackPlan",
    "RollbackRefusedError",
    "RolloutFailedError",
    "RolloutStatus",
    "RolloutStrategy",
    "Timeline",
    "TimelineStep",
    "Undo",
    "cleanup_history",
    "cleanup_unhealthy_replicas",
    "deployment_complete",
    "deployment_progressing",
    "deployment_shape",
    "deployment_timed_out",
    "diff_frame",
    "estimate_pod_ready_s",
    "find_deployment",
    "has_progress_deadline",
    "headline",
    "history_frame",
    "is_saturated",
    "kubectl_status",
    "max_scaled_down",
    "max_surge",
    "max_unavailable",
    "min_available",
    "new_rs_new_replicas",
    "old_pods_running",
    "parse_int_or_percent",
    "plan_rollback",
    "predict_rollout",
    "proportional_scale",
    "reconcile_new_replica_set",
    "reconcile_old_replica_sets",
    "replica_set_fraction",
    "replicas_annotations_need_update",
    "requeue_stuck_deployment",
    "resolve_fenceposts",
    "rolling_pass",
    "rolling_update_sequence",
    "rollout_history",
    "rollout_strategy",
    "scale_down_old_replica_sets",
    "set_new_replica_set_revision",
    "template_diff",
    "timeline_series",
    "undo",
    "undo_annotations",
    "undo_patch",
    "undo_target",
]

logger = logging.getLogger(__name__)

HASH_LABEL = "pod-template-hash"
REVISION_ANNOTATION = "deployment.kubernetes.io/revision"
CHANGE_CAUSE_ANNOTATION = "kubernetes.io/change-cause"
LAST_APPLIED_ANNOTATION = "kubectl.kubernetes.io/last-applied-configuration"

# API defaults of apps/v1 Deployments.
DEFAULT_MAX_SURGE = "25%"
DEFAULT_MAX_UNAVAILABLE = "25%"
DEFAULT_PROGRESS_DEADLINE_S = 600

# Probe defaults of core/v1.
_PROBE_PERIOD_S = 10
_PROBE_SUCCESS_THRESHOLD = 1

# Env var names whose literal values a diff must never show.
_SECRET_NAME = re.compile(r"PASSW(OR)?D|TOKEN|SECRET|API_?KEY|PRIVATE_?KEY|CREDENTIAL", re.I)
REDACTED = "<redacted>"


class RevisionError(RknbError, LookupError):
    """The requested revision is not in the rollout history; carries the revision."""

    def __init__(self, message: str, *, revision: int, deployment: str = "") -> None:
        super().__init__(message)
        self.revision = revision
        self.deployment = deployment


# ---------------------------------------------------------------------------
# Fenceposts


def resolve_fenceposts(
    max_surge: int | str | None, max_unavailable: int | str | None, replicas: int
) -> tuple[int, int]:
    """Return (surge, unavailable) pods for a rolling update, as the Deployment controller does.

    Surge rounds up, unavailable rounds down, and when both come out as 0 the
    unavailable count becomes 1 so the rollout can progress. ``None`` means the
    field is unset and counts as 0, as upstream; :func:`rollout_strategy`
    applies the API's 25%/25% defaults before calling this.
    """
    surge = parse_int_or_percent(max_surge if max_surge is not None else 0, replicas, round_up=True)
    unavailable = parse_int_or_percent(
        max_unavailable if max_unavailable is not None else 0, replicas, round_up=False
    )
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


@dataclass(frozen=True)
class RolloutStrategy:
    """A Deployment's rollout settings with the API defaults filled in."""

    type: str
    replicas: int
    max_surge: int | str
    max_unavailable: int | str
    min_ready_s: float
    progress_deadline_s: float | None
    paused: bool

    @property
    def fenceposts(self) -> tuple[int, int]:
        """Return (surge, unavailable) pods; (0, 0) for Recreate."""
        if self.type != "RollingUpdate":
            return 0, 0
        return resolve_fenceposts(self.max_surge, self.max_unavailable, self.replicas)


def rollout_strategy(deployment: Mapping[str, Any]) -> RolloutStrategy:
    """Return the Deployment's strategy, replicas and deadlines with the apps/v1 defaults."""
    spec = deployment.get("spec") or {}
    strategy = spec.get("strategy") or {}
    kind = strategy.get("type") or "RollingUpdate"
    rolling = strategy.get("rollingUpdate") or {}
    replicas = spec.get("replicas")
    deadline = spec.get("progressDeadlineSeconds", DEFAULT_PROGRESS_DEADLINE_S)
    return RolloutStrategy(
        type=kind,
        replicas=1 if replicas is None else int(replicas),
        max_surge=rolling.get("maxSurge", DEFAULT_MAX_SURGE),
        max_unavailable=rolling.get("maxUnavailable", DEFAULT_MAX_UNAVAILABLE),
        min_ready_s=float(spec.get("minReadySeconds") or 0),
        # MaxInt32 is how the API says "no deadline".
        progress_deadline_s=None if deadline in (None, 2**31 - 1) else float(deadline),
        paused=bool(spec.get("paused", False)),
    )


# ---------------------------------------------------------------------------
# History


@dataclass(frozen=True)
class Revision:
    """One revision of a Deployment: the ReplicaSet holding it, read as ``rollout history``."""

    revision: int
    replicaset: str
    change_cause: str | None
    images: dict[str, str]
    created: datetime | None
    replicas: int
    available_replicas: int
    template: dict[str, Any] = field(repr=False)
    is_current: bool = False
    deployment: str = ""


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def _parse_created(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def _selector_matches(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    # An empty selector selects nothing for a Deployment (the controller refuses it).
    match_labels = selector.get("matchLabels") or {}
    expressions = selector.get("matchExpressions") or []
    if not match_labels and not expressions:
        return False
    if any(labels.get(k) != v for k, v in match_labels.items()):
        return False
    for expression in expressions:
        key, op = expression.get("key"), expression.get("operator")
        values = expression.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def _owned_replicasets(
    deployment: Mapping[str, Any], replicasets: Sequence[Mapping[str, Any]]
) -> list[Mapping[str, Any]]:
    meta = _meta(deployment)
    namespace = meta.get("namespace") or "default"
    uid = meta.get("uid")
    selector = (deployment.get("spec") or {}).get("selector") or {}
    owned = []
    for rs in replicasets:
        rs_meta = _meta(rs)
        if (rs_meta.get("namespace") or "default") != namespace:
            continue
        labels = rs_meta.get("labels") or {}
        if not _selector_matches(selector, labels):
            continue
        if uid:
            # kubectl keeps only ReplicaSets whose controller reference is this Deployment.
            refs = rs_meta.get("ownerReferences") or []
            if not any(r.get("uid") == uid and r.get("controller") for r in refs):
                continue
        owned.append(rs)
    return owned


def _strip_hash(template: Mapping[str, Any]) -> dict[str, Any]:
    stripped = copy.deepcopy(dict(template))
    labels = (stripped.get("metadata") or {}).get("labels")
    if isinstance(labels, dict):
        labels.pop(HASH_LABEL, None)
    return stripped


def _revision_number(rs: Mapping[str, Any]) -> int | None:
    value = (_meta(rs).get("annotations") or {}).get(REVISION_ANNOTATION)
    if value is None or value == "":
        return 0
    try:
        return int(str(value))
    except ValueError:
        logger.warning(
            "ReplicaSet %s has a non-numeric revision %r; left out of the history",
            _meta(rs).get("name"),
            value,
        )
        return None


def _images(template: Mapping[str, Any]) -> dict[str, str]:
    containers = (template.get("spec") or {}).get("containers") or []
    return {str(c.get("name")): str(c.get("image", "")) for c in containers}


def rollout_history(
    deployment: Mapping[str, Any], replicasets: Sequence[Mapping[str, Any]]
) -> list[Revision]:
    """Return the Deployment's revisions sorted by revision number, as ``kubectl rollout history``.

    ReplicaSets count when their controller ownerReference is the Deployment's
    uid; when the Deployment has no uid (manifests, not a cluster), when they
    are in its namespace and its selector matches their labels. A missing
    revision annotation is revision 0; a non-numeric one is left out.
    """
    owned = _owned_replicasets(deployment, replicasets)
    # Compared as Go compares them: fields a PodTemplateSpec always has count as present.
    current_template = _go_template(
        _strip_hash((deployment.get("spec") or {}).get("template") or {})
    )
    name = str(_meta(deployment).get("name", ""))

    # The "new" ReplicaSet is the oldest one whose template equals the Deployment's.
    def created_key(rs: Mapping[str, Any]) -> tuple[str, str]:
        return (str(_meta(rs).get("creationTimestamp") or ""), str(_meta(rs).get("name") or ""))

    matching = [
        rs
        for rs in owned
        if _go_template(_strip_hash((rs.get("spec") or {}).get("template") or {}))
        == current_template
    ]
    current_name = _meta(min(matching, key=created_key)).get("name") if matching else None

    revisions = []
    for rs in owned:
        number = _revision_number(rs)
        if number is None:
            continue
        rs_meta = _meta(rs)
        template = (rs.get("spec") or {}).get("template") or {}
        annotations = rs_meta.get("annotations") or {}
        revisions.append(
            Revision(
                revision=number,
                replicaset=str(rs_meta.get("name", "")),
                change_cause=annotations.get(CHANGE_CAUSE_ANNOTATION) or None,
                images=_images(template),
                created=_parse_created(rs_meta.get("creationTimestamp")),
                replicas=int((rs.get("spec") or {}).get("replicas") or 0),
                available_replicas=int((rs.get("status") or {}).get("availableReplicas") or 0),
                template=copy.deepcopy(dict(template)),
                is_current=rs_meta.get("name") == current_name,
                deployment=name,
            )
        )
    revisions.sort(key=lambda r: (r.revision, r.created is None, r.created or 0, r.replicaset))
    return revisions


def undo_target(
    history: Sequence[Revision], to_revision: int = 0, *, deployment: str = ""
) -> Revision:
    """Return the revision ``kubectl rollout undo --to-revision=N`` would restore.

    0 means the second-highest revision number (what a plain ``undo`` picks),
    which after an earlier undo is not necessarily the template before the
    current one.
    """
    name = deployment or (history[0].deployment if history else "")
    if to_revision < 0:
        raise RevisionError(
            f"unable to find specified revision {to_revision} in history; "
            "give 0 (the previous revision) or a revision from the history",
            revision=to_revision,
            deployment=name,
        )
    if to_revision > 0:
        for revision in history:
            if revision.revision == to_revision:
                return revision
        known = ", ".join(str(r.revision) for r in history) or "none"
        raise RevisionError(
            f"unable to find specified revision {to_revision} in history of deployment "
            f"{name!r} (revisions: {known}); pick one of those",
            revision=to_revision,
            deployment=name,
        )
    numbers = sorted({r.revision for r in history})
    if len(numbers) < 2:
        raise RevisionError(
            f'no rollout history found for deployment "{name}"; '
            "there is no earlier revision to roll back to",
            revision=0,
            deployment=name,
        )
    second = numbers[-2]
    return [r for r in history if r.revision == second][-1]


# ---------------------------------------------------------------------------
# Template diff


@dataclass(frozen=True)
class Change:
    """One difference between two pod templates: a readable path, the value before and after."""

    path: str
    before: Any
    after: Any


def _keyed_list(items: list[Any]) -> dict[str, Any] | None:
    names = [i.get("name") if isinstance(i, dict) else None for i in items]
    if not items or any(n is None for n in names) or len(set(names)) != len(names):
        return None
    return {str(n): i for n, i in zip(names, items, strict=True)}


def _redact_env(path: str, value: Any) -> Any:
    match = re.search(r"\.env\[([^\]]+)\]", path)
    secret = match is not None and _SECRET_NAME.search(match.group(1)) is not None
    literal = path.endswith(".value") or (isinstance(value, dict) and "value" in value)
    return REDACTED if secret and literal and value is not None else value


def _diff(path: str, before: Any, after: Any, out: list[Change]) -> None:
    if before == after:
        return
    if isinstance(before, dict) and isinstance(after, dict):
        for key in sorted(set(before) | set(after)):
            _diff(f"{path}.{key}" if path else str(key), before.get(key), after.get(key), out)
        return
    if isinstance(before, list) and isinstance(after, list):
        keyed_before, keyed_after = _keyed_list(before), _keyed_list(after)
        if keyed_before is not None and keyed_after is not None:
            order = list(keyed_before) + [k for k in keyed_after if k not in keyed_before]
            for key in order:
                _diff(f"{path}[{key}]", keyed_before.get(key), keyed_after.get(key), out)
            return
    out.append(Change(path, _redact_env(path, before), _redact_env(path, after)))


def template_diff(
    current_template: Mapping[str, Any], target_template: Mapping[str, Any]
) -> list[Change]:
    """Return what rolling back from the current to the target pod template changes.

    The ``pod-template-hash`` label is ignored; lists of named items
    (containers, env, ports, volumes) are compared by name, so paths read
    ``spec.containers[mcp-server].image``. Literal values of secret-looking
    env vars are shown as ``<redacted>``. Fields a Go PodTemplateSpec always
    carries (a container's empty ``resources``) are no change when absent.
    """
    out: list[Change] = []
    current = _go_template(_strip_hash(current_template))
    _diff("", current, _go_template(_strip_hash(target_template)), out)
    return out


# ---------------------------------------------------------------------------
# Timeline


def estimate_pod_ready_s(container: Mapping[str, Any], *, start_s: float = 0.0) -> float:
    """Return an estimate of seconds from pod creation to Ready, from the container's probes.

    The readiness probe first runs after ``initialDelaySeconds`` and needs
    ``successThreshold`` successes ``periodSeconds`` apart; the estimate
    assumes the application is up one period after the initial delay. A
    startup probe delays readiness probing until it has passed once.

    Parameters
    ----------
    container
        One container of the pod template (API JSON).
    start_s
        Seconds before the container starts (scheduling, image pull); 0 when unknown.
    """

    def probe_s(probe: Mapping[str, Any] | None) -> float:
        if not probe:
            return 0.0
        delay = float(probe.get("initialDelaySeconds") or 0)
        period = float(probe.get("periodSeconds") or _PROBE_PERIOD_S)
        successes = int(probe.get("successThreshold") or _PROBE_SUCCESS_THRESHOLD)
        return delay + period * successes

    return (
        start_s + probe_s(container.get("startupProbe")) + probe_s(container.get("readinessProbe"))
    )


@dataclass(frozen=True)
class TimelineStep:
    """The ReplicaSets' state after one controller action, at ``t_s`` seconds into the rollout."""

    t_s: float
    old: int
    new: int
    available: int
    unavailable: int
    action: str


@dataclass(frozen=True)
class Timeline:
    """A predicted rollout: the steps, how long it takes and how low availability goes."""

    replicas: int
    surge: int
    unavailable: int
    steps: list[TimelineStep]
    duration_s: float
    min_available: int
    waves: int
    longest_stall_s: float
    progress_deadline_s: float | None
    within_progress_deadline: bool
    strategy: str = "RollingUpdate"

    @property
    def scale_steps(self) -> list[str]:
        """Return the scaling actions in order, such as ``["new+1", "old-1"]``."""
        return [s.action for s in self.steps if s.action not in ("start", "ready")]

    def to_frame(self) -> pd.DataFrame:
        """Return the steps as a DataFrame (t_s, old, new, available, unavailable, action)."""
        return pd.DataFrame(
            [vars(s) for s in self.steps],
            columns=["t_s", "old", "new", "available", "unavailable", "action"],
        )


def predict_rollout(
    replicas: int,
    *,
    max_surge: int | str | None,
    max_unavailable: int | str | None,
    pod_ready_s: float,
    min_ready_s: float = 0,
    progress_deadline_s: float | None = 600,
    strategy: str = "RollingUpdate",
    termination_grace_s: float = 0,
) -> Timeline:
    """Return the step-by-step rollout of a new template as the Deployment controller runs it.

    Starts from ``replicas`` available old pods. Each controller pass either
    scales the new ReplicaSet up (keeping the total at most replicas + surge)
    or, when it could not, scales old ReplicaSets down (keeping at least
    replicas - unavailable available); new pods become available
    ``pod_ready_s + min_ready_s`` after creation. Controller and informer
    latency and pod termination are taken as zero. The progress deadline is
    judged as the controller judges it: it runs from the last progress, so
    the rollout fails it only when one wait for pods exceeds it.

    Parameters
    ----------
    replicas
        The Deployment's ``spec.replicas``.
    max_surge
        The rolling-update field as the API holds it (``1``, ``"25%"``, ``None`` = 0).
    max_unavailable
        The same for maxUnavailable.
    pod_ready_s
        Seconds from pod creation to Ready (measured, or :func:`estimate_pod_ready_s`).
    min_ready_s
        The Deployment's ``minReadySeconds``.
    progress_deadline_s
        The Deployment's ``progressDeadlineSeconds``; ``None`` for no deadline.
    strategy
        ``RollingUpdate`` or ``Recreate``.
    termination_grace_s
        For Recreate, seconds until the old pods are gone.
    """
    if replicas < 0:
        raise ParameterError("replicas", f"cannot be negative, got {replicas}")
    if pod_ready_s < 0 or min_ready_s < 0:
        raise ParameterError("pod_ready_s", "pod_ready_s and min_ready_s cannot be negative")
    if strategy not in ("RollingUpdate", "Recreate"):
        raise ParameterError(
            "strategy", f"{strategy!r} is not a Deployment strategy; use RollingUpdate or Recreate"
        )
    to_available = pod_ready_s + min_ready_s
    if strategy == "Recreate":
        return _predict_recreate(replicas, to_available, termination_grace_s, progress_deadline_s)

    surge, unavailable = resolve_fenceposts(max_surge, max_unavailable, replicas)
    unavailable = min(unavailable, replicas)
    # NewRSNewReplicas uses the surge before the 0/0 adjustment, which only touches unavailable.
    max_total = replicas + surge
    min_available = replicas - unavailable

    t = 0.0
    old = old_available = replicas
    new_created: list[float] = []
    steps = [TimelineStep(0.0, old, 0, old, 0, "start")]
    progress_times = [0.0]

    def new_available(at: float) -> int:
        return sum(1 for c in new_created if c + to_available <= at)

    def record(action: str) -> None:
        available = old_available + new_available(t)
        total = old + len(new_created)
        steps.append(
            TimelineStep(t, old, len(new_created), available, max(0, total - available), action)
        )
        progress_times.append(t)

    for _ in range(10 * replicas + 10):
        new = len(new_created)
        if new == replicas and old == 0 and new_available(t) == replicas:
            break

        # One pass scales up or, only when it could not, scales down.
        current = old + new
        if new < replicas and current < max_total:
            add = min(max_total - current, replicas - new)
            new_created.extend([t] * add)
            record(f"new+{add}")
            continue
        if old > 0:
            new_unavailable = new - new_available(t)
            max_scaled_down = old + new - min_available - new_unavailable
            available = old_available + new_available(t)
            if max_scaled_down > 0 and available > min_available:
                remove = min(available - min_available, old)
                old -= remove
                old_available -= remove
                record(f"old-{remove}")
                continue

        # Nothing to do until the next new pod becomes available.
        pending = [c + to_available for c in new_created if c + to_available > t]
        if not pending:
            break
        t = min(pending)
        if new_available(t) == replicas and old == 0:
            record("ready")

    available_series = [s.available for s in steps]
    waves = len(set(new_created))
    # Every recorded step is progress to the controller (more updated, fewer old, more available).
    stalls = [b - a for a, b in itertools.pairwise(progress_times)]
    longest = max(stalls, default=0.0)
    return Timeline(
        replicas=replicas,
        surge=surge,
        unavailable=unavailable,
        steps=steps,
        duration_s=t,
        min_available=min(available_series),
        waves=waves,
        longest_stall_s=longest,
        progress_deadline_s=progress_deadline_s,
        within_progress_deadline=progress_deadline_s is None or longest <= progress_deadline_s,
    )


def _predict_recreate(
    replicas: int, to_available: float, grace_s: float, progress_deadline_s: float | None
) -> Timeline:
    steps = [
        TimelineStep(0.0, replicas, 0, replicas, 0, "start"),
        TimelineStep(0.0, 0, 0, 0, 0, f"old-{replicas}"),
        TimelineStep(grace_s, 0, replicas, 0, replicas, f"new+{replicas}"),
        TimelineStep(grace_s + to_available, 0, replicas, replicas, 0, "ready"),
    ]
    longest = max(grace_s, to_available)
    return Timeline(
        replicas=replicas,
        surge=0,
        unavailable=replicas,
        steps=steps,
        duration_s=grace_s + to_available,
        min_available=0,
        waves=1,
        longest_stall_s=longest,
        progress_deadline_s=progress_deadline_s,
        within_progress_deadline=progress_deadline_s is None or longest <= progress_deadline_s,
        strategy="Recreate",
    )


# ---------------------------------------------------------------------------
# Rollback plan


@dataclass(frozen=True)
class RollbackPlan:
    """What ``kubectl rollout undo`` would do to a Deployment, and the commands to do it."""

    deployment: str
    namespace: str
    history_available: bool
    reason: str
    history: list[Revision]
    current: Revision | None
    target: Revision | None
    diff: list[Change]
    timeline: Timeline
    result: str
    commands: list[str]
    restore_commands: list[str]
    warnings: list[str]


def _template_ready_s(template: Mapping[str, Any]) -> float:
    containers = (template.get("spec") or {}).get("containers") or []
    return max((estimate_pod_ready_s(c) for c in containers), default=0.0)


def _status_command(name: str, namespace: str, timeline: Timeline) -> str:
    # Twice the predicted duration, at least a minute, bounds the watch.
    timeout_s = max(60, math.ceil(2 * timeline.duration_s))
    return f"kubectl rollout status deployment/{name} -n {namespace} --timeout={timeout_s}s"


def plan_rollback(
    deployment: Mapping[str, Any],
    replicasets: Sequence[Mapping[str, Any]],
    to_revision: int = 0,
    *,
    pod_ready_s: float | None = None,
) -> RollbackPlan:
    """Return the rollback plan for a Deployment: target revision, diff, timeline and commands.

    With no ReplicaSets (plain manifests) there is no history: the plan says
    so and carries the timeline of rolling out the current template with the
    Deployment's strategy.

    Parameters
    ----------
    deployment
        The Deployment as API JSON.
    replicasets
        ReplicaSets of its namespace (others are ignored).
    to_revision
        As ``kubectl rollout undo --to-revision``; 0 is the previous revision.
    pod_ready_s
        Measured seconds from pod creation to Ready; estimated from the
        target template's readiness probes when ``None``.
    """
    meta = _meta(deployment)
    name = str(meta.get("name", ""))
    namespace = str(meta.get("namespace") or "default")
    strategy = rollout_strategy(deployment)
    current_template = (deployment.get("spec") or {}).get("template") or {}
    warnings = []
    if strategy.paused:
        warnings.append(
            f"deployment {name!r} is paused; kubectl refuses to roll it back until "
            f"`kubectl rollout resume deployment/{name} -n {namespace}`"
        )
    if LAST_APPLIED_ANNOTATION in (meta.get("annotations") or {}):
        warnings.append(
            "the Deployment was last changed by `kubectl apply`; a later apply of the old "
            "manifest will undo the rollback, so update the manifest in version control too"
        )

    def timeline_for(template: Mapping[str, Any]) -> Timeline:
        ready_s = _template_ready_s(template) if pod_ready_s is None else pod_ready_s
        return predict_rollout(
            strategy.replicas,
            max_surge=strategy.max_surge,
            max_unavailable=strategy.max_unavailable,
            pod_ready_s=ready_s,
            min_ready_s=strategy.min_ready_s,
            progress_deadline_s=strategy.progress_deadline_s,
            strategy=strategy.type,
        )

    history = rollout_history(deployment, replicasets)
    if not history:
        timeline = timeline_for(current_template)
        return RollbackPlan(
            deployment=name,
            namespace=namespace,
            history_available=False,
            reason=(
                "no ReplicaSets of this Deployment were given, so there is no rollout history: "
                "point the drill at a cluster or a recorded bundle to plan a rollback; "
                "the timeline shows a rollout of the current template"
            ),
            history=[],
            current=None,
            target=None,
            diff=[],
            timeline=timeline,
            result="no history",
            commands=[f"kubectl rollout history deployment/{name} -n {namespace}"],
            restore_commands=[],
            warnings=warnings,
        )

    target = undo_target(history, to_revision, deployment=name)
    current = next((r for r in history if r.is_current), None)
    diff = template_diff(current_template, target.template)
    timeline = timeline_for(target.template)
    undo = f"kubectl rollout undo deployment/{name} -n {namespace} --to-revision={target.revision}"
    status = _status_command(name, namespace, timeline)
    if not diff:
        result = f"skipped rollback (current template already matches revision {target.revision})"
    else:
        result = "rolled back"
    restore = []
    if current is not None and diff:
        # After the undo the target becomes max+1; the current revision keeps its number.
        restore = [
            f"kubectl rollout undo deployment/{name} -n {namespace} "
            f"--to-revision={current.revision}",
            status,
        ]
    return RollbackPlan(
        deployment=name,
        namespace=namespace,
        history_available=True,
        reason=f"rolls back to revision {target.revision} ({target.replicaset})",
        history=history,
        current=current,
        target=target,
        diff=diff,
        timeline=timeline,
        result=result,
        commands=[undo + " --dry-run=server", undo, status],
        restore_commands=restore,
        warnings=warnings,
    )


# --------------------------------------------------------------------------- presentation


def history_frame(history: Sequence[Revision], *, now: datetime) -> pd.DataFrame:
    """Return the history as ``kubectl rollout history`` lists it, with images and age."""
    rows = [
        {
            "revision": r.revision,
            "current": r.is_current,
            "images": ", ".join(f"{c}={i}" for c, i in sorted(r.images.items())),
            "change-cause": r.change_cause or "<none>",
            "replicaset": r.replicaset,
            "replicas": r.replicas,
            "age": _age(now, r.created),
        }
        for r in history
    ]
    return pd.DataFrame(
        rows,
        columns=["revision", "current", "images", "change-cause", "replicaset", "replicas", "age"],
    )


def _age(now: datetime, created: datetime | None) -> str:
    if created is None:
        return "<unknown>"
    seconds = max(0, int((now - created).total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    if days:
        return f"{days}d{hours}h"
    return f"{hours}h{rest // 60}m" if hours else f"{rest // 60}m"


def diff_frame(changes: Sequence[Change]) -> pd.DataFrame:
    """Return a template diff as a table: path, current value, value after the rollback."""
    return pd.DataFrame(
        [{"path": c.path, "current": c.before, "after rollback": c.after} for c in changes],
        columns=["path", "current", "after rollback"],
    )


def headline(plan: RollbackPlan) -> str:
    """Return the drill plan's headline as Markdown."""
    timeline = plan.timeline
    dip = timeline.min_available < timeline.replicas
    lines = []
    if plan.history_available and plan.target is not None and plan.current is not None:
        lines.append(
            f"**Rolling `{plan.namespace}/{plan.deployment}` back from revision "
            f"{plan.current.revision} to revision {plan.target.revision}: {plan.result}; "
            f"{len(plan.diff)} change(s) to the pod template.**"
        )
    else:
        lines.append(f"**No rollout history: {plan.reason}**")
    lines.append("")
    lines.append(
        f"- Predicted rollout: {timeline.duration_s:.0f} s in {timeline.waves} wave(s) of "
        f"{timeline.strategy} (surge {timeline.surge}, unavailable {timeline.unavailable}); "
        f"at least {timeline.min_available} of {timeline.replicas} replicas available "
        + ("throughout." if not dip else "— capacity dips during the rollout.")
    )
    if not timeline.within_progress_deadline:
        lines.append(
            "- The rollout would exceed the progress deadline: "
            "the Deployment would be marked as failing to progress."
        )
    lines.extend(f"- Warning: {w}" for w in plan.warnings)
    return "\n".join(lines)


def find_deployment(
    deployments: Sequence[Mapping[str, Any]], name: str, namespace: str | None = None
) -> Mapping[str, Any]:
    """Return the Deployment called ``name`` (in ``namespace`` when given), or say what exists."""
    for deployment in deployments:
        meta = _meta(deployment)
        if meta.get("name") == name and (not namespace or meta.get("namespace") == namespace):
            return deployment
    known = (
        ", ".join(
            sorted(f"{_meta(d).get('namespace')}/{_meta(d).get('name')}" for d in deployments)
        )
        or "none"
    )
    where = f" in namespace {namespace!r}" if namespace else ""
    raise ParameterError(
        "workload", f"no Deployment {name!r}{where}; the Deployments found are: {known}"
    )


def timeline_series(steps: pd.DataFrame, *, start: datetime) -> dict[str, pd.Series]:
    """Return old, new and available pods of a timeline as series over wall-clock time."""
    index = pd.DatetimeIndex([pd.Timestamp(start) + pd.Timedelta(seconds=t) for t in steps["t_s"]])
    return {
        column: pd.Series(steps[column].to_numpy(), index=index)
        for column in ("old", "new", "available")
    }


# --------------------------------------------------------------------------- controller arithmetic
#
# The Deployment controller's own decisions, function for function, over a small
# mutable model of a ReplicaSet. They answer the conformance vectors and drive the
# fake cluster's controller in the tests, so the fake moves pods at the real pace.

DESIRED_REPLICAS_ANNOTATION = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS_ANNOTATION = "deployment.kubernetes.io/max-replicas"
REVISION_HISTORY_ANNOTATION = "deployment.kubernetes.io/revision-history"
ROLLBACK_TO_ANNOTATION = "deprecated.deployment.rollback.to"
MAX_INT32 = 2**31 - 1
#: The revision-history annotation's length limit in the controller.
REVISION_HISTORY_LIMIT_CHARS = 2000

#: Deployment annotations a rollback keeps and the controller never copies to a ReplicaSet.
SKIPPED_ANNOTATIONS = frozenset(
    {
        LAST_APPLIED_ANNOTATION,
        REVISION_ANNOTATION,
        REVISION_HISTORY_ANNOTATION,
        DESIRED_REPLICAS_ANNOTATION,
        MAX_REPLICAS_ANNOTATION,
        ROLLBACK_TO_ANNOTATION,
    }
)


@dataclass
class ReplicaSetState:
    """The fields of one ReplicaSet the Deployment controller reads and writes.

    ``created`` orders ReplicaSets by age (larger is newer; ties fall back to
    the name), as ``creationTimestamp`` does upstream.
    """

    name: str
    spec_replicas: int = 0
    status_replicas: int = 0
    available_replicas: int = 0
    ready_replicas: int = 0
    terminating_replicas: int | None = None
    created: Any = 0
    annotations: dict[str, str] = field(default_factory=dict)
    uid: str | None = None
    deleting: bool = False
    generation: int = 0
    observed_generation: int = 0

    @property
    def revision(self) -> int | None:
        """Return the revision annotation as a number; missing is 0, non-numeric is None."""
        value = self.annotations.get(REVISION_ANNOTATION)
        if value is None:
            return 0
        try:
            return int(value)
        except ValueError:
            return None


@dataclass(frozen=True)
class DeploymentShape:
    """A Deployment's replicas and strategy, the inputs of the controller's arithmetic."""

    replicas: int
    strategy: str = "RollingUpdate"
    max_surge: int | str | None = None
    max_unavailable: int | str | None = None
    status_replicas: int = 0
    pod_replacement_policy: str | None = None

    @property
    def rolling(self) -> bool:
        """Whether the strategy is RollingUpdate."""
        return self.strategy == "RollingUpdate"


def deployment_shape(deployment: Mapping[str, Any]) -> DeploymentShape:
    """Return the controller's view of a Deployment (API JSON) with apps/v1 defaults."""
    strategy = rollout_strategy(deployment)
    status = deployment.get("status") or {}
    spec = deployment.get("spec") or {}
    return DeploymentShape(
        replicas=strategy.replicas,
        strategy=strategy.type,
        max_surge=strategy.max_surge,
        max_unavailable=strategy.max_unavailable,
        status_replicas=int(status.get("replicas") or 0),
        pod_replacement_policy=spec.get("podReplacementPolicy"),
    )


def max_unavailable(d: DeploymentShape) -> int:
    """Return how many replicas may be unavailable: 0 unless RollingUpdate with replicas."""
    if not d.rolling or d.replicas == 0:
        return 0
    _, unavailable = resolve_fenceposts(d.max_surge, d.max_unavailable, d.replicas)
    return min(unavailable, d.replicas)


def min_available(d: DeploymentShape) -> int:
    """Return the replicas that must stay available: replicas - maxUnavailable (0 for Recreate)."""
    if not d.rolling:
        return 0
    return d.replicas - max_unavailable(d)


def max_surge(d: DeploymentShape) -> int:
    """Return the surge the rolling update may add above replicas (0 for Recreate)."""
    if not d.rolling:
        return 0
    surge, _ = resolve_fenceposts(d.max_surge, d.max_unavailable, d.replicas)
    return surge


def _pod_count(rs: ReplicaSetState, d: DeploymentShape) -> int:
    # With podReplacementPolicy TerminationComplete, terminating pods still take room.
    if d.pod_replacement_policy == "TerminationComplete":
        return max(rs.spec_replicas, rs.status_replicas) + (rs.terminating_replicas or 0)
    return rs.spec_replicas


def new_rs_new_replicas(
    d: DeploymentShape, all_rss: Sequence[ReplicaSetState], new_rs: ReplicaSetState
) -> int:
    """Return the new ReplicaSet's replicas after one scale-up step (``NewRSNewReplicas``).

    ``all_rss`` are the ReplicaSets whose replicas count towards the surge
    ceiling (upstream passes every ReplicaSet, the new one included).
    """
    if not d.rolling:
        return d.replicas
    # The raw surge, rounded up, without the 0/0 adjustment (which only touches unavailable).
    surge = parse_int_or_percent(
        d.max_surge if d.max_surge is not None else 0, d.replicas, round_up=True
    )
    current = sum(_pod_count(rs, d) for rs in all_rss)
    max_total = d.replicas + surge
    if current >= max_total:
        return new_rs.spec_replicas
    scale_up = min(max_total - current, d.replicas - new_rs.spec_replicas)
    return new_rs.spec_replicas + scale_up


def reconcile_new_replica_set(
    d: DeploymentShape, all_rss: Sequence[ReplicaSetState], new_rs: ReplicaSetState
) -> bool:
    """Scale the new ReplicaSet up (or down to replicas); return whether it changed."""
    if new_rs.spec_replicas == d.replicas:
        return False
    if new_rs.spec_replicas > d.replicas:
        new_rs.spec_replicas = d.replicas
        return True
    target = new_rs_new_replicas(d, all_rss, new_rs)
    changed = target != new_rs.spec_replicas
    new_rs.spec_replicas = target
    return changed


def _oldest_first(rss: Sequence[ReplicaSetState]) -> list[ReplicaSetState]:
    return sorted(rss, key=lambda rs: (rs.created, rs.name))


def max_scaled_down(d: DeploymentShape, all_pods: int, new_rs_unavailable: int) -> int:
    """Return how many old replicas one scale-down pass may remove (before cleanup).

    Parameters
    ----------
    d
        The Deployment.
    all_pods
        The sum of ``spec.replicas`` over all its ReplicaSets.
    new_rs_unavailable
        The new ReplicaSet's ``spec.replicas - status.availableReplicas``.
    """
    return all_pods - min_available(d) - new_rs_unavailable


def cleanup_unhealthy_replicas(old_rss: Sequence[ReplicaSetState], max_cleanup_count: int) -> int:
    """Remove unavailable replicas from old ReplicaSets, oldest first; return how many."""
    total = 0
    for rs in _oldest_first(old_rss):
        if total >= max_cleanup_count:
            break
        if rs.spec_replicas == 0 or rs.spec_replicas == rs.available_replicas:
            continue
        count = min(max_cleanup_count - total, rs.spec_replicas - rs.available_replicas)
        rs.spec_replicas -= count
        total += count
    return total


def scale_down_old_replica_sets(
    d: DeploymentShape, all_rss: Sequence[ReplicaSetState], old_rss: Sequence[ReplicaSetState]
) -> int:
    """Remove available old replicas down to minAvailable, oldest first; return how many."""
    available = sum(rs.available_replicas for rs in all_rss)
    floor = min_available(d)
    if available <= floor:
        return 0
    budget = available - floor
    total = 0
    for rs in _oldest_first(old_rss):
        if total >= budget:
            break
        if rs.spec_replicas == 0:
            continue
        count = min(rs.spec_replicas, budget - total)
        rs.spec_replicas -= count
        total += count
    return total


def reconcile_old_replica_sets(
    d: DeploymentShape, old_rss: Sequence[ReplicaSetState], new_rs: ReplicaSetState
) -> int:
    """Run the scale-down half of a rolling pass; return the old replicas removed."""
    if sum(rs.spec_replicas for rs in old_rss) == 0:
        return 0
    all_pods = sum(rs.spec_replicas for rs in old_rss) + new_rs.spec_replicas
    budget = max_scaled_down(d, all_pods, new_rs.spec_replicas - new_rs.available_replicas)
    if budget <= 0:
        return 0
    cleaned = cleanup_unhealthy_replicas(old_rss, budget)
    scaled = scale_down_old_replica_sets(d, [*old_rss, new_rs], old_rss)
    return cleaned + scaled


def rolling_pass(
    d: DeploymentShape, old_rss: Sequence[ReplicaSetState], new_rs: ReplicaSetState
) -> str | None:
    """Run one rolling-update pass; return ``new+N``, ``old-N``, ``new-N`` or None.

    One pass scales the new ReplicaSet up or, only when it could not, scales
    old ReplicaSets down, never both.
    """
    before = new_rs.spec_replicas
    if reconcile_new_replica_set(d, [*old_rss, new_rs], new_rs):
        delta = new_rs.spec_replicas - before
        return f"new+{delta}" if delta > 0 else f"new{delta}"
    removed = reconcile_old_replica_sets(d, old_rss, new_rs)
    return f"old-{removed}" if removed else None


def rolling_update_sequence(
    replicas: int,
    max_surge: int | str | None,
    max_unavailable: int | str | None,
    *,
    old: int | None = None,
    new: int = 0,
) -> list[str]:
    """Return the scale steps of a rolling update when every pod becomes available at once."""
    d = DeploymentShape(replicas, "RollingUpdate", max_surge, max_unavailable)
    start_old = replicas if old is None else old
    old_rs = ReplicaSetState("old", start_old, start_old, start_old, created=0)
    new_rs = ReplicaSetState("new", new, new, new, created=1)
    steps: list[str] = []
    for _ in range(4 * (replicas + start_old) + 4):
        step = rolling_pass(d, [old_rs], new_rs)
        if step is None:
            break
        steps.append(step)
        for rs in (old_rs, new_rs):
            rs.status_replicas = rs.available_replicas = rs.spec_replicas
    return steps


@dataclass(frozen=True)
class RolloutStatus:
    """Replica counts of a Deployment's status (or of one newly computed)."""

    replicas: int = 0
    updated_replicas: int = 0
    ready_replicas: int = 0
    available_replicas: int = 0
    observed_generation: int = 0


def deployment_complete(spec_replicas: int, generation: int, status: RolloutStatus) -> bool:
    """Return whether a rollout is complete: every replica updated and available, observed."""
    return (
        status.updated_replicas == spec_replicas
        and status.replicas == spec_replicas
        and status.available_replicas == spec_replicas
        and status.observed_generation >= generation
    )


def deployment_progressing(old: RolloutStatus, new: RolloutStatus) -> bool:
    """Return whether the new status shows progress over the old one, as the controller counts."""
    old_old = old.replicas - old.updated_replicas
    new_old = new.replicas - new.updated_replicas
    return (
        new.updated_replicas > old.updated_replicas
        or new_old < old_old
        or new.ready_replicas > old.ready_replicas
        or new.available_replicas > old.available_replicas
    )


def has_progress_deadline(progress_deadline_s: float | None) -> bool:
    """Return whether a progressDeadlineSeconds value sets a deadline (None and MaxInt32 do not)."""
    return progress_deadline_s is not None and progress_deadline_s != MAX_INT32


def _condition_time(condition: Mapping[str, Any], key: str = "lastUpdateTime") -> datetime | None:
    value = condition.get(key, condition.get("last_update_time"))
    return _parse_created(value)


def deployment_timed_out(
    progress_deadline_s: float | None,
    progressing: Mapping[str, Any] | None,
    now: datetime | None,
) -> bool:
    """Return whether a rollout exceeded its progress deadline at ``now``.

    Parameters
    ----------
    progress_deadline_s
        ``spec.progressDeadlineSeconds``; ``None`` or MaxInt32 for no deadline.
    progressing
        The Deployment's ``Progressing`` condition (API JSON), or ``None``.
    now
        The instant to judge at.
    """
    if not has_progress_deadline(progress_deadline_s) or not progressing:
        return False
    reason = progressing.get("reason") or ""
    if reason == "NewReplicaSetAvailable":
        return False
    if reason == "ProgressDeadlineExceeded":
        return True
    since = _condition_time(progressing)
    if since is None or now is None or progress_deadline_s is None:
        return False
    return since + pd.Timedelta(seconds=progress_deadline_s) < now


def requeue_stuck_deployment(
    progress_deadline_s: float | None,
    spec_replicas: int,
    progressing: Mapping[str, Any] | None,
    new_status: RolloutStatus,
    now: datetime | None,
    *,
    generation: int = 0,
) -> float:
    """Return seconds until the controller re-checks a stalled rollout (-1: never, 0: at once).

    Parameters
    ----------
    progress_deadline_s
        ``spec.progressDeadlineSeconds``; ``None`` or MaxInt32 for no deadline.
    spec_replicas
        ``spec.replicas``.
    progressing
        The stored ``Progressing`` condition (API JSON), or ``None``.
    new_status
        The status the controller just computed.
    now
        The instant of the check.
    generation
        ``metadata.generation``.
    """
    if not has_progress_deadline(progress_deadline_s) or not progressing:
        return -1
    if deployment_complete(spec_replicas, generation, new_status):
        return -1
    if (progressing.get("reason") or "") == "ProgressDeadlineExceeded":
        return -1
    since = _condition_time(progressing)
    if since is None or now is None or progress_deadline_s is None:
        return 0
    after = (since - now).total_seconds() + progress_deadline_s
    return 0 if after < 1 else after


def _go_round(value: float) -> int:
    # Go's math.Round rounds halves away from zero; Python's round() rounds them to even.
    return math.floor(abs(value) + 0.5) * (1 if value >= 0 else -1)


def replica_set_fraction(rs: ReplicaSetState, d: DeploymentShape) -> int:
    """Return how many replicas proportional scaling adds to (or removes from) a ReplicaSet."""
    if d.replicas == 0:
        return -rs.spec_replicas
    allowed = d.replicas + max_surge(d)
    try:
        annotated = int(rs.annotations.get(MAX_REPLICAS_ANNOTATION, ""))
    except ValueError:
        annotated = 0
    if annotated == 0:
        # Without the annotation the controller falls back to the Deployment's status.replicas.
        annotated = d.status_replicas
    if annotated == 0:
        return 0
    return _go_round(rs.spec_replicas * allowed / annotated) - rs.spec_replicas


def is_saturated(d: DeploymentShape, rs: ReplicaSetState | None) -> bool:
    """Return whether a ReplicaSet runs all of the Deployment's replicas, all available."""
    if rs is None:
        return False
    try:
        desired = int(rs.annotations.get(DESIRED_REPLICAS_ANNOTATION, ""))
    except ValueError:
        return False
    return rs.spec_replicas == d.replicas == desired == rs.available_replicas


def replicas_annotations_need_update(
    annotations: Mapping[str, str], desired_replicas: int, max_replicas: int
) -> bool:
    """Return whether a ReplicaSet's desired/max-replicas annotations differ from these values."""
    return annotations.get(DESIRED_REPLICAS_ANNOTATION) != str(desired_replicas) or annotations.get(
        MAX_REPLICAS_ANNOTATION
    ) != str(max_replicas)


def proportional_scale(
    d: DeploymentShape, new_rs: ReplicaSetState | None, old_rss: Sequence[ReplicaSetState]
) -> None:
    """Scale the ReplicaSets in place as the controller does on a scaling event (``scale``)."""
    rss = [*old_rss, *([new_rs] if new_rs is not None else [])]
    active = [rs for rs in rss if rs.spec_replicas > 0]

    # One active ReplicaSet (or none: the newest) takes all replicas.
    if new_rs is not None or old_rss:
        only: ReplicaSetState | None = None
        if len(active) == 1:
            only = active[0]
        elif not active:
            newest_old = sorted(old_rss, key=lambda rs: (rs.created, rs.name))[-1:]
            only = new_rs if new_rs is not None else newest_old[0]
        if only is not None:
            only.spec_replicas = d.replicas
            return

    if is_saturated(d, new_rs):
        for rs in old_rss:
            rs.spec_replicas = 0
        return
    if not d.rolling:
        return

    allowed = d.replicas + max_surge(d) if d.replicas > 0 else 0
    to_add = allowed - sum(rs.spec_replicas for rs in active)
    if to_add == 0 or not active:
        return
    # Largest first; ties newer first when adding, older first when removing.
    if to_add > 0:
        active.sort(key=lambda rs: (-rs.spec_replicas, _neg_age(rs)))
    else:
        active.sort(key=lambda rs: (-rs.spec_replicas, rs.created, rs.name))
    added = 0
    sizes = {}
    for rs in active:
        proportion = 0
        if to_add != added:
            fraction = replica_set_fraction(rs, d)
            remaining = to_add - added
            proportion = min(fraction, remaining) if to_add > 0 else max(fraction, remaining)
        sizes[id(rs)] = rs.spec_replicas + proportion
        added += proportion
    for index, rs in enumerate(active):
        size = sizes[id(rs)]
        if index == 0:
            size = max(0, size + to_add - added)
        rs.spec_replicas = size


def _neg_age(rs: ReplicaSetState) -> tuple[Any, ...]:
    # A key that sorts newer ReplicaSets first (numbers, strings or datetimes).
    created = rs.created
    if isinstance(created, int | float):
        return (-created, rs.name)
    if isinstance(created, datetime):
        return (-created.timestamp(), rs.name)
    return (tuple(-ord(c) for c in str(created)), rs.name)


def cleanup_history(
    old_rss: Sequence[ReplicaSetState], revision_history_limit: int | None
) -> list[str]:
    """Return the old ReplicaSets the controller deletes to honour revisionHistoryLimit."""
    if revision_history_limit is None or revision_history_limit == MAX_INT32:
        return []
    alive = [rs for rs in old_rss if not rs.deleting]
    excess = len(alive) - revision_history_limit
    if excess <= 0:
        return []

    def by_revision(rs: ReplicaSetState) -> tuple[Any, ...]:
        # Unparseable revisions fall back to age, as ReplicaSetsByRevision does.
        number = rs.revision
        return (0 if number is None else 1, number or 0, rs.created, rs.name)

    deleted = []
    for rs in sorted(alive, key=by_revision)[:excess]:
        busy = rs.spec_replicas != 0 or rs.status_replicas != 0
        if busy or rs.generation > rs.observed_generation:
            continue
        deleted.append(rs.name)
    return deleted


def old_pods_running(
    new_rs_uid: str | None,
    old_rss: Sequence[ReplicaSetState],
    pod_phases_by_rs_uid: Mapping[str, Sequence[str]],
) -> bool:
    """Return whether a Recreate rollout must still wait for old pods to go."""
    if sum(rs.status_replicas for rs in old_rss) > 0:
        return True
    for uid, phases in pod_phases_by_rs_uid.items():
        if new_rs_uid is not None and uid == new_rs_uid:
            continue
        if any(phase not in ("Failed", "Succeeded") for phase in phases):
            return True
    return False


def set_new_replica_set_revision(
    annotations: dict[str, str],
    new_revision: str,
    *,
    limit_chars: int = REVISION_HISTORY_LIMIT_CHARS,
) -> bool:
    """Set a ReplicaSet's revision, keeping its earlier numbers in revision-history.

    Returns whether the annotations changed. The history keeps as many of
    the most recent earlier revisions as fit in ``limit_chars``.
    """
    had_revision = REVISION_ANNOTATION in annotations
    old_text = annotations.get(REVISION_ANNOTATION, "")
    try:
        old = int(old_text) if old_text else 0
    except ValueError:
        return False
    try:
        new = int(new_revision)
    except ValueError:
        return False
    if old >= new:
        return False
    annotations[REVISION_ANNOTATION] = new_revision
    if had_revision:
        history = annotations.get(REVISION_HISTORY_ANNOTATION, "")
        entries = history.split(",") if history else []
        if not entries:
            annotations[REVISION_HISTORY_ANNOTATION] = old_text
        else:
            total = len(history) + len(old_text) + 1
            start = 0
            while total > limit_chars and start < len(entries):
                total -= len(entries[start]) + 1
                start += 1
            if total <= limit_chars:
                annotations[REVISION_HISTORY_ANNOTATION] = ",".join([*entries[start:], old_text])
    return True


def kubectl_status(
    name: str,
    spec_replicas: int,
    generation: int,
    status: Mapping[str, Any],
    *,
    revision: int = 0,
    running_revision: int = 0,
) -> tuple[str, bool]:
    """Return ``kubectl rollout status``'s message and whether the rollout is done.

    A rollout past its progress deadline, or at another revision than the
    one asked for, raises :class:`RolloutFailedError` with kubectl's message.

    Parameters
    ----------
    name
        The Deployment's name.
    spec_replicas
        ``spec.replicas``.
    generation
        ``metadata.generation``.
    status
        The Deployment's ``status`` (API JSON, camelCase).
    revision
        ``--revision``; 0 accepts any.
    running_revision
        The Deployment's revision annotation.
    """
    if revision > 0 and running_revision != revision:
        raise RolloutFailedError(
            f"desired revision ({revision}) is different from the running revision "
            f"({running_revision})"
        )
    if generation <= int(status.get("observedGeneration") or 0):
        conditions = status.get("conditions") or []
        progressing = next((c for c in conditions if c.get("type") == "Progressing"), None)
        if progressing and progressing.get("reason") == "ProgressDeadlineExceeded":
            raise RolloutFailedError(f'deployment "{name}" exceeded its progress deadline')
        updated = int(status.get("updatedReplicas") or 0)
        replicas = int(status.get("replicas") or 0)
        available = int(status.get("availableReplicas") or 0)
        waiting = f'Waiting for deployment "{name}" rollout to finish: '
        if updated < spec_replicas:
            return (
                f"{waiting}{updated} out of {spec_replicas} new replicas have been updated...\n",
                False,
            )
        if replicas > updated:
            return f"{waiting}{replicas - updated} old replicas are pending termination...\n", False
        if available < updated:
            return f"{waiting}{available} of {updated} updated replicas are available...\n", False
        return f'deployment "{name}" successfully rolled out\n', True
    return "Waiting for deployment spec update to be observed...\n", False


class RolloutFailedError(RknbError):
    """A rollout failed as ``kubectl rollout status`` reports it (deadline, wrong revision)."""


# --------------------------------------------------------------------------- kubectl rollout undo


class RollbackRefusedError(RknbError):
    """``kubectl rollout undo`` would refuse this rollback (the Deployment is paused)."""


@dataclass(frozen=True)
class Undo:
    """What ``kubectl rollout undo`` does: the target, kubectl's result and the JSON Patch."""

    target: Revision
    result: str
    patch: list[dict[str, Any]] | None

    @property
    def patched(self) -> bool:
        """Whether a patch is sent (False for a skipped rollback)."""
        return self.patch is not None


def undo_annotations(
    deployment_annotations: Mapping[str, str], rs_annotations: Mapping[str, str]
) -> dict[str, str]:
    """Return the Deployment's annotations after an undo: its six kept keys plus the RS's others."""
    kept = {k: v for k, v in deployment_annotations.items() if k in SKIPPED_ANNOTATIONS}
    copied = {k: v for k, v in rs_annotations.items() if k not in SKIPPED_ANNOTATIONS}
    return {**kept, **copied}


def _go_template(template: Mapping[str, Any]) -> dict[str, Any]:
    # kubectl serialises a Go PodTemplateSpec: metadata, spec, and each container's name and
    # resources are always present, even when empty.
    out = copy.deepcopy(dict(template))
    out.setdefault("metadata", {})
    spec = out.setdefault("spec", {})
    for key in ("initContainers", "containers"):
        if key not in spec and key == "containers":
            spec[key] = []
        for container in spec.get(key) or []:
            container.setdefault("name", "")
            container.setdefault("resources", {})
    return out


def undo_patch(template: Mapping[str, Any], annotations: Mapping[str, str]) -> list[dict[str, Any]]:
    """Return kubectl's rollback JSON Patch: replace the pod template and the annotations."""
    return [
        {"op": "replace", "path": "/spec/template", "value": _go_template(template)},
        {"op": "replace", "path": "/metadata/annotations", "value": dict(annotations)},
    ]


def undo(
    deployment: Mapping[str, Any],
    replicasets: Sequence[Mapping[str, Any]],
    to_revision: int = 0,
    *,
    dry_run: str = "none",
) -> Undo:
    """Return what ``kubectl rollout undo --to-revision=N`` does, or raise its refusal.

    Parameters
    ----------
    deployment
        The Deployment as API JSON (as re-read from the API server).
    replicasets
        ReplicaSets of its namespace.
    to_revision
        0 for the second-highest revision, else a revision number.
    dry_run
        ``none``, ``client`` or ``server``; ``client`` skips the paused check, as kubectl.
    """
    name = str(_meta(deployment).get("name", ""))
    target = undo_target(rollout_history(deployment, replicasets), to_revision, deployment=name)
    if dry_run == "client":
        return Undo(target, "rolled back (dry run)", None)
    spec = deployment.get("spec") or {}
    if spec.get("paused"):
        namespace = _meta(deployment).get("namespace") or "default"
        raise RollbackRefusedError(
            f'you cannot rollback a paused deployment "{name}"; resume it first with '
            f"`kubectl rollout resume deployment/{name} -n {namespace}` and try again"
        )
    current = _strip_hash(spec.get("template") or {})
    wanted = _strip_hash(target.template)
    if current == wanted:
        result = f"skipped rollback (current template already matches revision {target.revision})"
        return Undo(target, result, None)
    rs = next(r for r in replicasets if _meta(r).get("name") == target.replicaset)
    annotations = undo_annotations(
        _meta(deployment).get("annotations") or {}, _meta(rs).get("annotations") or {}
    )
    return Undo(target, "rolled back", undo_patch(wanted, annotations))
