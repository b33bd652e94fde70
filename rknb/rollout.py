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

__all__ = [
    "CHANGE_CAUSE_ANNOTATION",
    "HASH_LABEL",
    "REVISION_ANNOTATION",
    "Change",
    "Revision",
    "RevisionError",
    "RollbackPlan",
    "RolloutStrategy",
    "Timeline",
    "TimelineStep",
    "diff_frame",
    "estimate_pod_ready_s",
    "find_deployment",
    "headline",
    "history_frame",
    "parse_int_or_percent",
    "plan_rollback",
    "predict_rollout",
    "resolve_fenceposts",
    "rollout_history",
    "rollout_strategy",
    "template_diff",
    "timeline_series",
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


def parse_int_or_percent(value: int | str, total: int, *, round_up: bool) -> int:
    """Return a Kubernetes int-or-percent value scaled to ``total``.

    An int is taken as is; a string must be a whole percentage such as
    ``"25%"``, scaled to ``total`` and rounded up or down.

    Parameters
    ----------
    value
        The int-or-string field as the API holds it (``1``, ``"25%"``).
    total
        The count a percentage refers to (usually ``spec.replicas``).
    round_up
        Round a percentage up (maxSurge) rather than down (maxUnavailable).
    """
    if isinstance(value, bool):
        raise ParameterError("int-or-percent", f"expected an int or 'N%', got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        text = value.strip()
        if text.endswith("%") and re.fullmatch(r"-?\d+", text[:-1]):
            percent = int(text[:-1])
            scaled = percent * total
            return -(-scaled // 100) if round_up else scaled // 100
        raise ParameterError(
            "int-or-percent",
            f"{value!r} is neither an integer nor a whole percentage; write 1 or '25%'",
        )
    raise ParameterError("int-or-percent", f"expected an int or 'N%', got {value!r}")


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
    current_template = _strip_hash((deployment.get("spec") or {}).get("template") or {})
    name = str(_meta(deployment).get("name", ""))

    # The "new" ReplicaSet is the oldest one whose template equals the Deployment's.
    def created_key(rs: Mapping[str, Any]) -> tuple[str, str]:
        return (str(_meta(rs).get("creationTimestamp") or ""), str(_meta(rs).get("name") or ""))

    matching = [
        rs
        for rs in owned
        if _strip_hash((rs.get("spec") or {}).get("template") or {}) == current_template
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
    env vars are shown as ``<redacted>``.
    """
    out: list[Change] = []
    _diff("", _strip_hash(current_template), _strip_hash(target_template), out)
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
