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
import math
import operator
import os
import queue
import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from rknb import rollout
from rknb.credentials import redact
from rknb.errors import ClusterError, ParameterError, QueryError, SafetyError
from rknb.sources.base import KubeObject
from rknb.sources.cluster import ClusterSource

__all__ = [
    "MODES",
    "DrillResult",
    "DryRun",
    "Objectives",
    "Probe",
    "check_allowed",
    "check_confirmation",
    "check_scope",
    "cluster_for",
    "comparison_frame",
    "dry_run",
    "execute",
    "http_probe",
    "objectives_frame",
    "parse_bound",
    "prometheus_probe",
    "read_state",
    "replicaset_frame",
    "report_markdown",
    "restore",
    "starting_replicaset",
    "state_folder",
    "timeline_chart",
    "write_starting_state",
]

#: The notebook's modes, from reading only to changing the cluster.
MODES = ("plan", "dry-run", "execute", "restore")

#: The file the starting state goes to, per mode that changes something.
STATE_FILES = {"execute": "drill-starting-state.json", "restore": "restore-starting-state.json"}

logger = logging.getLogger(__name__)


class _Cluster(Protocol):
    context: str | None

    def get(self, kind: str, namespace: str | None, name: str) -> KubeObject: ...

    def list(self, kind: str, namespace: str | None = None) -> list[KubeObject]: ...

    def list_at(
        self, kind: str, namespace: str | None = None
    ) -> tuple[Sequence[KubeObject], str]: ...

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
        resume: bool = ...,
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


_BOUND = re.compile(
    r"^(?P<expr>.+?)\s*(?P<op><=|>=|<|>)\s*(?P<bound>[-+]?[0-9.]+(?:[eE][-+]?\d+)?)\s*$", re.S
)
_OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def parse_bound(query: str) -> tuple[str, str, float]:
    """Return ``(expression, comparison, bound)`` of a probe query such as ``errors_ratio < 0.01``.

    The bound is what a healthy answer satisfies; the probe counts an error
    when the expression's value breaks it (or when there is no value).
    """
    match = _BOUND.match(query.strip())
    if match is None or not match["expr"].strip():
        raise ParameterError(
            "probe_query",
            f"{query!r} does not end with a bound; write the healthy condition, such as "
            '\'sum(rate(http_requests_total{code=~"5.."}[1m])) / '
            "sum(rate(http_requests_total[1m])) < 0.01'",
        )
    try:
        bound = float(match["bound"])
    except ValueError:
        raise ParameterError(
            "probe_query", f"the bound {match['bound']!r} of {query!r} is not a number"
        ) from None
    return match["expr"].strip(), match["op"], bound


def prometheus_probe(
    prometheus: str, query: str, *, cluster: str | None = None, timeout_s: float = 2.0
) -> Probe:
    """Return a probe that runs an instant Prometheus query and checks its value against a bound.

    ``query`` ends with the healthy condition (``EXPR < 0.01``); every series
    of the answer must satisfy it. An empty answer, a failed query or a
    non-finite value counts as an error: no data is not success. Each probe
    is one attempt (a retry would hide the outage being measured).

    Parameters
    ----------
    prometheus
        The ``prometheus`` parameter: a base URL (``http://127.0.0.1:9090``), an
        endpoint named in the configuration, or ``config`` for ``cluster``'s one.
        A configured endpoint's credentials, headers and TLS settings are used,
        as every notebook uses them.
    query
        PromQL followed by ``<``, ``<=``, ``>`` or ``>=`` and a number.
    cluster
        The kubeconfig context of the drill, for ``config``.
    timeout_s
        Seconds to wait for each answer.
    """
    from rknb.sources.prometheus import live_prometheus

    expr, op, bound = parse_bound(query)
    source = live_prometheus(prometheus, cluster=cluster, timeout_s=timeout_s, max_retries=0)
    if source is None:
        raise ParameterError(
            "prometheus",
            "the probe query needs a Prometheus URL or an endpoint named in the configuration, "
            f"got {redact(str(prometheus))!r}",
        )
    check = _OPS[op]

    def probe() -> bool:
        try:
            numbers = source.instant_values(expr)
        except QueryError:
            return False
        return bool(numbers) and all(math.isfinite(n) and check(n, bound) for n in numbers)

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


def check_parameters(
    *,
    mode: str,
    probe_url: str = "",
    probe_query: str = "",
    probe_interval_s: float = 1.0,
    timeout_s: float = 0.0,
    max_recovery_s: float = 300.0,
    max_probe_error_ratio: float = 0.01,
    min_available: int = -1,
) -> None:
    """Refuse, naming the parameter, any drill setting that could only fail once under way.

    Everything here is checked before the drill reads or changes the cluster, so a
    typo never leaves a Deployment rolled back with nobody watching it.
    """
    if mode not in MODES:
        raise ParameterError("mode", f"{mode!r} is not one of {', '.join(MODES)}")
    if not (math.isfinite(probe_interval_s) and probe_interval_s > 0):
        raise ParameterError(
            "probe_interval_s", f"must be a positive number of seconds, got {probe_interval_s!r}"
        )
    if not (math.isfinite(timeout_s) and timeout_s >= 0):
        raise ParameterError(
            "timeout_s",
            f"must be 0 (the progress deadline plus a margin) or a positive number of "
            f"seconds, got {timeout_s!r}",
        )
    if not (math.isfinite(max_recovery_s) and max_recovery_s > 0):
        raise ParameterError(
            "max_recovery_s", f"must be a positive number of seconds, got {max_recovery_s!r}"
        )
    if not 0 <= max_probe_error_ratio <= 1:
        raise ParameterError(
            "max_probe_error_ratio", f"must be a ratio from 0 to 1, got {max_probe_error_ratio!r}"
        )
    if min_available < -1:
        raise ParameterError(
            "min_available",
            f"must be a replica count, or -1 for the Deployment's own floor; got {min_available}",
        )
    if probe_url and probe_query:
        raise ParameterError("probe_query", "give probe_url or probe_query, not both")
    if probe_url and urllib.parse.urlsplit(probe_url).scheme not in ("http", "https"):
        raise ParameterError("probe_url", "must be an http:// or https:// URL")
    if probe_query:
        parse_bound(probe_query)


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
        raise SafetyError(
            "parameter 'execute' is False: the drill only plans and dry-runs; "
            "set execute=True (and confirm to the Deployment's name) to change the cluster"
        )
    if confirm != deployment:
        raise SafetyError(
            f"parameter 'confirm': the confirmation {confirm!r} does not name the Deployment "
            f"{deployment!r}; set confirm={deployment!r} to allow the change"
        )


def _names(text: str | Sequence[str]) -> list[str]:
    items = text.split(",") if isinstance(text, str) else list(text)
    return [item.strip() for item in items if item.strip()]


def check_scope(
    context: str,
    namespace: str,
    allowed_contexts: str | Sequence[str],
    allowed_namespaces: str | Sequence[str],
) -> list[str]:
    """Refuse a context or namespace off its allowlist; return the ``context/namespace`` entry.

    Both lists are comma-separated names (or sequences); an empty list allows
    nothing, so a drill that changes the cluster always names where it may.

    Parameters
    ----------
    context
        The kubeconfig context the drill talks to.
    namespace
        The Deployment's namespace.
    allowed_contexts
        The ``allowed_contexts`` parameter.
    allowed_namespaces
        The ``allowed_namespaces`` parameter.
    """
    for parameter, value, allowed in (
        ("allowed_contexts", context, _names(allowed_contexts)),
        ("allowed_namespaces", namespace, _names(allowed_namespaces)),
    ):
        if value not in allowed:
            shown = ", ".join(allowed) or "empty"
            raise SafetyError(
                f"parameter {parameter!r} ({shown}) does not include {value!r}; "
                f"add {value!r} to {parameter} to allow the drill to change it"
            )
    return [f"{context}/{namespace}"]


def cluster_for(objects: Any, mode: str) -> ClusterSource:
    """Return the live cluster a mode needs, or refuse the mode for the demo, files or bundles.

    Parameters
    ----------
    objects
        The run's object source (``run.objects`` of a notebook).
    mode
        The ``mode`` parameter.
    """
    if mode not in MODES:
        raise ParameterError("mode", f"{mode!r} is not one of {', '.join(MODES)}")
    if not isinstance(objects, ClusterSource):
        raise ParameterError(
            "mode",
            f"{mode!r} talks to a Kubernetes API server, but the objects come from "
            f"{getattr(objects, 'description', type(objects).__name__)}; set cluster to a "
            "kubeconfig context (a kind or k3d cluster will do) or use mode='plan'",
        )
    return objects


def state_folder(state_dir: str, context: str, namespace: str, name: str) -> Path:
    """Return the folder the drill's state files go to.

    ``state_dir`` when given; else ``$RKNB_REPORT_DIR`` (the report folder,
    when the report runner sets it); else ``drill-state/CONTEXT/NAMESPACE/NAME``
    under the current folder.
    """
    if state_dir:
        return Path(state_dir)
    report = os.environ.get("RKNB_REPORT_DIR", "")
    if report:
        return Path(report)
    return Path("drill-state") / context / namespace / name


def starting_replicaset(folder: Path) -> str:
    """Return the ReplicaSet that held the revision an execute drill started from.

    Read from the starting state the execute step wrote into ``folder``.
    """
    path = Path(folder) / STATE_FILES["execute"]
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ParameterError(
            "restore_replicaset",
            f"is empty and {path} could not be read ({exc}); give the ReplicaSet to roll "
            "forward to, or the state_dir of the execute run",
        ) from exc
    current = state.get("current_revision")
    for entry in state.get("revisions") or []:
        if entry.get("revision") == current:
            return str(entry["replicaset"])
    raise ParameterError(
        "restore_replicaset", f"{path} names no ReplicaSet for revision {current!r}; give one"
    )


def read_state(source: _Cluster, namespace: str, name: str) -> tuple[KubeObject, list[KubeObject]]:
    """Return the Deployment and its namespace's ReplicaSets, as read now."""
    deployment = source.get("Deployment", namespace, name)
    return deployment, source.list("ReplicaSet", namespace)


def write_starting_state(
    folder: Path,
    deployment: KubeObject,
    replicasets: Sequence[KubeObject],
    *,
    filename: str = STATE_FILES["execute"],
    context: str = "",
    label: str = "starting state",
) -> Path:
    """Write the Deployment and its ReplicaSets (before any change); return the file written.

    Env var values that look secret are redacted as in the plan's diff.

    Parameters
    ----------
    folder
        The report (or state) folder.
    deployment
        The Deployment as read.
    replicasets
        The namespace's ReplicaSets as read (only the Deployment's are kept).
    filename
        The file's name in ``folder``.
    context
        The kubeconfig context, recorded with the state.
    label
        What the state is (``starting state`` or ``final state``).
    """
    history = rollout.rollout_history(deployment, replicasets)
    owned = {r.replicaset for r in history}
    state = {
        "what": label,
        "recorded_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "context": context,
        "deployment": _redacted(deployment),
        "replicasets": [
            _redacted(rs) for rs in replicasets if (rs.get("metadata") or {}).get("name") in owned
        ],
        "revisions": [
            {"revision": r.revision, "replicaset": r.replicaset, "change_cause": r.change_cause}
            for r in history
        ],
        "current_revision": next((r.revision for r in history if r.is_current), None),
    }
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / filename
    path.write_text(json.dumps(state, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return path


def _redacted(obj: Any, key: str = "") -> Any:
    if key == rollout.LAST_APPLIED_ANNOTATION and isinstance(obj, str):
        # kubectl apply's copy of the manifest carries the same env values as JSON text.
        try:
            return json.dumps(_redacted(json.loads(obj)), sort_keys=True)
        except ValueError:
            return rollout.REDACTED
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
    from_revision: int | None = None


def dry_run(source: _Cluster, namespace: str, name: str, to_revision: int = 0) -> DryRun:
    """Return the rollback's patch after sending it with server-side dry run (nothing stored)."""
    deployment, replicasets = read_state(source, namespace, name)
    undo = rollout.undo(deployment, replicasets, to_revision)
    current = next(
        (r.revision for r in rollout.rollout_history(deployment, replicasets) if r.is_current),
        None,
    )
    if undo.patch is None:
        return DryRun(undo.target.revision, undo.result, None, None, current)
    patch = _guarded(undo.patch, deployment)
    answer = source.patch("Deployment", namespace, name, patch, dry_run=True)
    template = (answer.get("spec") or {}).get("template")
    return DryRun(undo.target.revision, undo.result, patch, template, current)


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
    context: str = ""
    started_at: str = ""
    replicas: int = 0
    min_available_floor: int = 0
    objectives: list[dict[str, Any]] = field(default_factory=list)
    #: Per ReplicaSet samples: t_s, replicaset, revision, replicas, ready, available.
    replicaset_timeline: list[dict[str, Any]] = field(default_factory=list)
    #: The predicted timeline's steps (t_s, old, new, available, unavailable, action).
    predicted: list[dict[str, Any]] = field(default_factory=list)
    repeat_commands: list[str] = field(default_factory=list)
    final_state: str = ""

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
    """Watches one kind in a thread; every (re)start begins with a fresh list.

    A watch the server ends (a timeout, a restart) is followed by a new list
    and a watch from that list's resourceVersion; a 410 inside a watch is
    answered by the source's own relist. Listed objects arrive as ``LISTED``.
    """

    def __init__(
        self,
        source: _Cluster,
        kind: str,
        namespace: str,
        events: queue.Queue[Any],
        watch_s: float,
    ):
        self.source, self.kind, self.namespace, self.events = source, kind, namespace, events
        self.watch_s = watch_s
        self.stop = threading.Event()
        self.restarts = 0
        self.lists = 0
        self.error: Exception | None = None
        self.thread = threading.Thread(target=self._run, name=f"drill-watch-{kind}", daemon=True)

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                items, rv = self.source.list_at(self.kind, self.namespace)
                self.lists += 1
                for obj in items:
                    self.events.put((self.kind, "LISTED", obj))
                for event in self.source.watch(
                    self.kind,
                    self.namespace,
                    timeout_s=self.watch_s,
                    resource_version=rv,
                    resume=False,
                ):
                    self.events.put((self.kind, event.get("type"), event.get("object") or {}))
                    if self.stop.is_set():
                        return
            except ClusterError as exc:
                self.error = exc
                logger.warning("watch of %s stopped: %s", self.kind, exc)
                return
            if not self.stop.is_set():
                self.restarts += 1
                logger.info("watch of %s ended; listing again", self.kind)


def _owner_uid(obj: KubeObject) -> str | None:
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return str(ref.get("uid"))
    return None


@dataclass
class _Measured:
    outcome: str = "timeout"
    detail: str = ""
    recovery_s: float | None = None
    timeline: list[dict[str, Any]] = field(default_factory=list)
    replicasets: list[dict[str, Any]] = field(default_factory=list)
    samples: int = 0
    errors: int = 0
    min_available: int | None = None
    restarts: int = 0
    last: KubeObject | None = None


def _measure(
    source: _Cluster,
    namespace: str,
    name: str,
    *,
    uid: str,
    template: dict[str, Any],
    probe: Probe | None,
    interval_s: float,
    timeout_s: float,
    started: float,
    watch_s: float,
) -> _Measured:
    events: queue.Queue[Any] = queue.Queue()
    kinds = ("Deployment", "ReplicaSet", "Pod")
    watchers = [_Watcher(source, k, namespace, events, watch_s) for k in kinds]
    for watcher in watchers:
        watcher.thread.start()
    out = _Measured()
    rs_seen: dict[str, tuple[int | None, int, int, int]] = {}
    next_probe = time.monotonic()
    wanted = rollout._go_template(rollout._strip_hash(template))
    out.detail = f"watching stopped after {timeout_s:g} s without the rollout completing"

    def now_s() -> float:
        return round(time.monotonic() - started, 3)

    try:
        while time.monotonic() - started < timeout_s:
            deployment = source.get("Deployment", namespace, name)
            out.last = deployment
            spec = deployment.get("spec") or {}
            status = deployment.get("status") or {}
            seen = rollout._go_template(rollout._strip_hash(spec.get("template") or {}))
            if seen != wanted:
                out.outcome = "conflict"
                out.detail = "someone else changed the Deployment's pod template during the drill"
                break
            available = int(status.get("availableReplicas") or 0)
            generation = int((deployment.get("metadata") or {}).get("generation") or 0)
            if int(status.get("observedGeneration") or 0) >= generation:
                low = out.min_available
                out.min_available = available if low is None else min(low, available)
            row = {
                "available": available,
                "updated": int(status.get("updatedReplicas") or 0),
                "replicas": int(status.get("replicas") or 0),
            }
            while not events.empty():
                kind, kind_event, obj = events.get_nowait()
                meta = obj.get("metadata") or {}
                out.timeline.append(
                    {
                        "t_s": now_s(),
                        "source": kind,
                        "event": f"{kind_event} {meta.get('name', '')}",
                        **row,
                        "probe_ok": None,
                    }
                )
                if kind == "ReplicaSet" and _owner_uid(obj) == uid:
                    rs_name = str(meta.get("name", ""))
                    rs_status = obj.get("status") or {}
                    state = (
                        rollout.ReplicaSetState(
                            rs_name, annotations=dict(meta.get("annotations") or {})
                        ).revision,
                        0
                        if kind_event == "DELETED"
                        else int((obj.get("spec") or {}).get("replicas") or 0),
                        0 if kind_event == "DELETED" else int(rs_status.get("readyReplicas") or 0),
                        0
                        if kind_event == "DELETED"
                        else int(rs_status.get("availableReplicas") or 0),
                    )
                    if rs_seen.get(rs_name) != state:
                        rs_seen[rs_name] = state
                        out.replicasets.append(
                            {
                                "t_s": now_s(),
                                "replicaset": rs_name,
                                "revision": state[0],
                                "replicas": state[1],
                                "ready": state[2],
                                "available": state[3],
                            }
                        )
            if probe is not None and time.monotonic() >= next_probe:
                ok = probe()
                out.samples += 1
                out.errors += 0 if ok else 1
                next_probe += interval_s
                out.timeline.append(
                    {
                        "t_s": now_s(),
                        "source": "probe",
                        "event": "ok" if ok else "error",
                        **row,
                        "probe_ok": ok,
                    }
                )
            try:
                _, done = rollout.kubectl_status(
                    name, rollout.rollout_strategy(deployment).replicas, generation, status
                )
            except rollout.RolloutFailedError as exc:
                out.outcome, out.detail = "timeout", str(exc)
                break
            if done:
                out.outcome, out.recovery_s = "complete", time.monotonic() - started
                out.detail = f"deployment {name!r} successfully rolled out"
                break
            time.sleep(min(interval_s, 0.1))
    finally:
        for watcher in watchers:
            watcher.stop.set()
        for watcher in watchers:
            # A quiet watch ends at the server's timeout; the thread is a daemon.
            watcher.thread.join(timeout=0.5)
    out.restarts = sum(w.restarts for w in watchers)
    return out


def _objectives(
    objectives: Objectives, floor: int, measured: _Measured, probe: bool
) -> list[dict[str, Any]]:
    ratio = measured.errors / measured.samples if measured.samples else None
    rows: list[dict[str, Any]] = [
        {
            "objective": "time to recovery",
            "target": f"under {objectives.max_recovery_s:g} s",
            "measured": "not recovered"
            if measured.recovery_s is None
            else f"{measured.recovery_s:.2f} s",
            "passed": measured.recovery_s is not None
            and measured.recovery_s < objectives.max_recovery_s,
        },
        {
            "objective": "available replicas",
            "target": f"never below {floor}",
            "measured": "no sample"
            if measured.min_available is None
            else f"lowest {measured.min_available}",
            "passed": measured.min_available is not None and measured.min_available >= floor,
        },
    ]
    if probe:
        rows.append(
            {
                "objective": "probe error ratio",
                "target": f"under {objectives.max_probe_error_ratio:.2%}",
                "measured": "no sample"
                if ratio is None
                else f"{ratio:.2%} ({measured.errors} of {measured.samples})",
                "passed": ratio is not None and ratio < objectives.max_probe_error_ratio,
            }
        )
    return rows


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
    pod_ready_s: float | None,
    watch_s: float,
) -> DrillResult:
    # Checked again here for library callers: after the patch it would be too late.
    check_parameters(
        mode=mode,
        probe_interval_s=interval_s,
        timeout_s=timeout_s or 0.0,
        max_recovery_s=objectives.max_recovery_s,
        max_probe_error_ratio=objectives.max_probe_error_ratio,
        min_available=-1 if objectives.min_available is None else objectives.min_available,
    )
    context = str(source.context or "")
    state_file = write_starting_state(
        report_dir, deployment, replicasets, filename=STATE_FILES[mode], context=context
    )
    plan = rollout.plan_rollback(deployment, replicasets, target_revision, pod_ready_s=pod_ready_s)
    prediction = plan.timeline
    strategy = rollout.rollout_strategy(deployment)
    meta = deployment.get("metadata") or {}
    template = rollout._strip_hash((target_rs.get("spec") or {}).get("template") or {})
    current = rollout._strip_hash((deployment.get("spec") or {}).get("template") or {})
    floor = objectives.min_available
    if floor is None:
        floor = rollout.min_available(rollout.deployment_shape(deployment))
    undo_cmd = f"kubectl rollout undo deployment/{name} -n {namespace}"
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
        min_available_predicted=prediction.min_available,
        predicted_duration_s=prediction.duration_s,
        probe_samples=0,
        probe_errors=0,
        restore_commands=_commands(name, namespace, from_revision),
        starting_state=state_file.name,
        context=context,
        started_at=datetime.now(UTC).isoformat(timespec="seconds"),
        replicas=strategy.replicas,
        min_available_floor=floor,
        predicted=[vars(step) for step in prediction.steps],
        repeat_commands=[
            f"{undo_cmd} --to-revision={target_revision} --dry-run=server",
            f"{undo_cmd} --to-revision={target_revision}",
            f"kubectl rollout status deployment/{name} -n {namespace}",
        ],
    )
    if rollout._go_template(template) == rollout._go_template(current):
        result.result = (
            f"skipped rollback (current template already matches revision {target_revision})"
        )
        result.outcome = "complete"
        result.recovery_s = 0.0
        result.restore_commands = []
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
            result.restore_commands = []
            logger.warning("drill stopped before any change: %s", exc)
            return result
        raise
    started = time.monotonic()
    result.started_at = datetime.now(UTC).isoformat(timespec="seconds")
    result.result = "rolled back" if mode == "execute" else "restored"
    deadline = timeout_s
    if deadline is None:
        deadline = (strategy.progress_deadline_s or 600.0) + 2 * prediction.duration_s
    uid = str(meta.get("uid", ""))
    measured = _measure(
        source,
        namespace,
        name,
        uid=uid,
        template=template,
        probe=probe,
        interval_s=interval_s,
        timeout_s=deadline,
        started=started,
        watch_s=watch_s,
    )
    result.outcome, result.recovery_s = measured.outcome, measured.recovery_s
    before = [
        {
            "t_s": 0.0,
            "replicaset": str((rs.get("metadata") or {}).get("name", "")),
            "revision": rollout.ReplicaSetState(
                "", annotations=dict((rs.get("metadata") or {}).get("annotations") or {})
            ).revision,
            "replicas": int((rs.get("spec") or {}).get("replicas") or 0),
            "ready": int((rs.get("status") or {}).get("readyReplicas") or 0),
            "available": int((rs.get("status") or {}).get("availableReplicas") or 0),
        }
        for rs in replicasets
        if _owner_uid(rs) == uid
    ]
    result.timeline, result.replicaset_timeline = measured.timeline, before + measured.replicasets
    result.probe_samples, result.probe_errors = measured.samples, measured.errors
    result.min_available_observed, result.watch_restarts = measured.min_available, measured.restarts
    if measured.outcome != "complete":
        result.result = f"{result.result}; {measured.detail}"
    result.objectives = _objectives(objectives, floor, measured, probe is not None)
    result.verdicts = {f"{o['objective']} {o['target']}": o["passed"] for o in result.objectives}
    try:
        final, final_rss = read_state(source, namespace, name)
        result.final_state = write_starting_state(
            report_dir,
            final,
            final_rss,
            filename=STATE_FILES[mode].replace("starting", "final"),
            context=context,
            label="final state",
        ).name
    except ClusterError as exc:
        logger.warning("the final state could not be read: %s", exc)
    if measured.outcome != "complete":
        logger.warning(
            "drill of %s/%s ended with %s (%s); restore with: %s",
            namespace,
            name,
            measured.outcome,
            measured.detail,
            "; ".join(result.restore_commands),
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
    pod_ready_s: float | None = None,
    watch_s: float = 5.0,
) -> DrillResult:
    """Roll the Deployment back as ``kubectl rollout undo`` and measure the rollout.

    Refuses (SafetyError) unless ``execute`` is set, ``confirm`` equals the
    Deployment's name and ``context/namespace`` is on ``allowlist``. Writes
    the starting state to ``report_dir`` before the patch, and the final
    state after the watch. A paused Deployment or an unknown revision is
    refused as kubectl refuses it.

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
    pod_ready_s
        Seconds from pod creation to Ready for the prediction; from the
        readiness probes when ``None``.
    watch_s
        Server-side timeout of each watch, in seconds; each restart lists afresh.
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
        pod_ready_s=pod_ready_s,
        watch_s=watch_s,
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
    pod_ready_s: float | None = None,
    watch_s: float = 5.0,
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
        The ReplicaSet that held the starting revision (:func:`starting_replicaset`
        reads it from the execute step's starting state).
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
    pod_ready_s
        As for :func:`execute`.
    watch_s
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
    if _owner_uid(target_rs) != str((deployment.get("metadata") or {}).get("uid")):
        raise SafetyError(
            f"ReplicaSet {replicaset!r} is not controlled by Deployment {name!r}; "
            "name one of its ReplicaSets (kubectl rollout history lists them)"
        )
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
        pod_ready_s=pod_ready_s,
        watch_s=watch_s,
    )


# --------------------------------------------------------------------------- the report


def objectives_frame(result: DrillResult) -> pd.DataFrame:
    """Return one row per objective: objective, target, measured, outcome (pass/fail)."""
    rows = [
        {**{k: o[k] for k in ("objective", "target", "measured")}, "outcome": _pf(o["passed"])}
        for o in result.objectives
    ]
    return pd.DataFrame(rows, columns=["objective", "target", "measured", "outcome"])


def _pf(passed: bool) -> str:
    return "pass" if passed else "fail"


def comparison_frame(result: DrillResult) -> pd.DataFrame:
    """Return measured against predicted: minimum available replicas and duration (as text)."""

    def text(value: float | None, digits: int = 0) -> str:
        return "not measured" if value is None else f"{value:.{digits}f}"

    rows = [
        {
            "figure": "minimum available replicas",
            "predicted": text(result.min_available_predicted),
            "measured": text(result.min_available_observed),
        },
        {
            "figure": "rollout duration (s)",
            "predicted": text(result.predicted_duration_s, 2),
            "measured": text(result.recovery_s, 2),
        },
    ]
    return pd.DataFrame(rows, columns=["figure", "predicted", "measured"])


def replicaset_frame(result: DrillResult) -> pd.DataFrame:
    """Return the per-ReplicaSet samples: t_s, replicaset, revision, replicas, ready, available."""
    columns = ["t_s", "replicaset", "revision", "replicas", "ready", "available"]
    return pd.DataFrame(result.replicaset_timeline, columns=columns)


def report_markdown(result: DrillResult) -> str:
    """Return the drill's headline for someone who was not there: what, on what, when, outcome."""
    verb = "rollback" if result.mode == "execute" else "restore (roll forward)"
    verdict = "PASS" if result.passed else "FAIL"
    lines = [
        f"**{verdict}**: a {verb} of Deployment `{result.deployment}` in namespace "
        f"`{result.namespace}` on context `{result.context}`, from revision "
        f"{result.from_revision} to revision {result.to_revision}, started "
        f"{result.started_at}.",
        "",
        f"- Outcome: **{result.outcome}** ({result.result}).",
    ]
    if result.recovery_s is not None:
        lines.append(
            f"- Recovery took {result.recovery_s:.2f} s (predicted "
            f"{result.predicted_duration_s:.2f} s)."
        )
    lines.append(
        f"- Lowest available replicas: {result.min_available_observed} of {result.replicas} "
        f"(predicted {result.min_available_predicted}; the objective's floor is "
        f"{result.min_available_floor})."
    )
    if result.probe_samples:
        lines.append(
            f"- The probe saw {result.probe_errors} errors in {result.probe_samples} samples."
        )
    if result.outcome != "complete" and result.restore_commands:
        lines.append(
            "- The drill did not complete: restore with `"
            + "` then `".join(result.restore_commands)
            + "`."
        )
    lines.append(f"- Starting state: `{result.starting_state}` in the report folder.")
    return "\n".join(lines)


def timeline_chart(result: DrillResult) -> Any:
    """Return the drill's chart: replicas per ReplicaSet over time, the prediction, probe errors."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4))
    frame = replicaset_frame(result)
    end_s = max([row["t_s"] for row in result.timeline] + [result.recovery_s or 0.0, 0.0])
    for index, (rs_name, rows) in enumerate(frame.groupby("replicaset", sort=False)):
        # Each ReplicaSet's last state holds until the drill ended.
        rows = pd.concat([rows, rows.tail(1).assign(t_s=end_s)], ignore_index=True)
        first, last = rows["revision"].iloc[0], rows["revision"].iloc[-1]
        revision = f"{first}" if first == last else f"{first}\u2192{last}"
        color = f"C{index % 10}"
        label = f"rev {revision} ({rs_name})"
        ax.step(
            rows["t_s"], rows["available"], where="post", color=color, label=f"{label} available"
        )
        ax.step(
            rows["t_s"],
            rows["ready"],
            where="post",
            color=color,
            linestyle=":",
            label=f"{label} ready",
        )
    predicted = pd.DataFrame(result.predicted, columns=["t_s", "available", "new", "old"])
    if not predicted.empty:
        ax.step(
            predicted["t_s"],
            predicted["available"],
            where="post",
            color="black",
            linestyle="--",
            label="predicted available",
        )
    errors = [row["t_s"] for row in result.timeline if row.get("probe_ok") is False]
    if errors:
        ax.plot(errors, [0] * len(errors), "rx", markersize=8, label="probe error")
    ax.axhline(result.min_available_floor, color="grey", linewidth=0.8)
    ax.set_xlabel("seconds since the patch")
    ax.set_ylabel("replicas")
    ax.set_title(f"{result.mode} of {result.namespace}/{result.deployment}")
    ax.legend(loc="center right", fontsize="small")
    fig.tight_layout()
    return fig
