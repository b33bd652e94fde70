"""A small Deployment and ReplicaSet controller for the fake API server.

It moves a Deployment's ReplicaSets and pods the way the real controllers do,
one reconcile pass per tick, with the arithmetic of :mod:`rknb.rollout`
(which the conformance vectors pin to upstream): a new ReplicaSet per pod
template (or an old one renumbered to max+1 after a rollback), scale up or
scale down per pass within surge and unavailable, pods that become Ready a
set time after creation (or never, for a failing image), availability after
``minReadySeconds``, and the Progressing and Available conditions with the
progress deadline. Writes go through the fake's store, so watches see them.
"""

from __future__ import annotations

import copy
import hashlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from rknb import rollout

from .server import FakeKube


def _now_text() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _normal(template: dict) -> dict:
    return rollout._go_template(rollout._strip_hash(template))


def _template_hash(template: dict) -> str:
    text = json.dumps(rollout._strip_hash(template), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:10]


@dataclass
class PodTiming:
    """How long pods of an image take to become Ready; ``None`` means never (a failing image)."""

    default_ready_s: float = 0.2
    by_image: dict[str, float | None] = field(default_factory=dict)

    def ready_after(self, template: dict) -> float | None:
        delays = []
        for container in (template.get("spec") or {}).get("containers") or []:
            image = str(container.get("image", ""))
            delay = self.by_image.get(image, self.default_ready_s)
            if delay is None:
                return None
            delays.append(delay)
        return max(delays, default=self.default_ready_s)


class DeploymentController:
    """Reconciles every Deployment of a :class:`FakeKube` on a background tick."""

    def __init__(self, fake: FakeKube, *, tick_s: float = 0.05, timing: PodTiming | None = None):
        self.fake = fake
        self.tick_s = tick_s
        self.timing = timing or PodTiming()
        self._born: dict[str, float] = {}  # pod uid-less key -> monotonic creation time
        self._serial = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.passes: list[tuple[str, str]] = []  # (deployment, step) for assertions
        self.clock: Callable[[], float] = time.monotonic

    def start(self) -> DeploymentController:
        self._thread = threading.Thread(target=self._loop, name="fake-controller", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.wait(self.tick_s):
            self.reconcile_all()

    # -- one pass --------------------------------------------------------------------

    def reconcile_all(self) -> None:
        for deployment in self.fake.objects("Deployment"):
            if (deployment.get("spec") or {}).get("paused"):
                continue
            self.reconcile(deployment)

    def _owned(self, kind: str, uid: str) -> list[dict]:
        return [
            o
            for o in self.fake.objects(kind)
            if any(
                r.get("uid") == uid and r.get("controller")
                for r in (o["metadata"].get("ownerReferences") or [])
            )
        ]

    def reconcile(self, deployment: dict) -> None:
        meta, spec = deployment["metadata"], deployment.get("spec") or {}
        name, uid = meta["name"], meta["uid"]
        template = spec.get("template") or {}
        shape = rollout.deployment_shape(deployment)
        rss = self._owned("ReplicaSet", uid)
        # The real API server defaults templates; compare with Go's always-present fields filled.
        wanted = _normal(template)
        matching = [rs for rs in rss if _normal(rs["spec"]["template"]) == wanted]
        new = (
            min(
                matching,
                key=lambda rs: rs["metadata"]["creationTimestamp"] + rs["metadata"]["name"],
            )
            if matching
            else None
        )
        olds = [
            rs for rs in rss if new is None or rs["metadata"]["name"] != new["metadata"]["name"]
        ]
        max_old = max(
            (
                int(
                    rs["metadata"].get("annotations", {}).get(rollout.REVISION_ANNOTATION, "0") or 0
                )
                for rs in olds
            ),
            default=0,
        )
        created_new = False
        if new is None:
            new = self._create_rs(deployment, template, shape, max_old + 1)
            created_new = True
        else:
            annotations = dict(new["metadata"].get("annotations") or {})
            before = dict(annotations)
            rollout.set_new_replica_set_revision(annotations, str(max_old + 1))
            for key, value in (meta.get("annotations") or {}).items():
                if key not in rollout.SKIPPED_ANNOTATIONS:
                    annotations[key] = value
            if annotations != before:
                new["metadata"]["annotations"] = annotations
                new = self.fake.update(new)

        # One rolling pass over the controller's view of the ReplicaSets.
        states = {rs["metadata"]["name"]: self._state(rs) for rs in [*olds, new]}
        new_state = states[new["metadata"]["name"]]
        old_states = [states[rs["metadata"]["name"]] for rs in olds]
        if shape.rolling:
            step = rollout.rolling_pass(shape, old_states, new_state)
        else:
            step = self._recreate_pass(shape, old_states, new_state)
        if step:
            self.passes.append((name, step))
        for rs in [*olds, new]:
            state = states[rs["metadata"]["name"]]
            if state.spec_replicas != rs["spec"].get("replicas", 0):
                rs["spec"]["replicas"] = state.spec_replicas
                self.fake.update(rs)

        # Pods, then statuses.
        min_ready_s = float(spec.get("minReadySeconds") or 0)
        totals = {"replicas": 0, "ready": 0, "available": 0, "spec": 0}
        new_status: dict[str, int] = {}
        for rs in self._owned("ReplicaSet", uid):
            status = self._sync_pods(rs, min_ready_s)
            totals["replicas"] += status["replicas"]
            totals["ready"] += status["readyReplicas"]
            totals["available"] += status["availableReplicas"]
            totals["spec"] += int(rs["spec"].get("replicas") or 0)
            if rs["metadata"]["name"] == new["metadata"]["name"]:
                new_status = status
        self._write_status(deployment, new, totals, new_status, shape, created_new)

    def _recreate_pass(self, shape, old_states, new_state) -> str | None:
        if any(rs.spec_replicas for rs in old_states):
            removed = sum(rs.spec_replicas for rs in old_states)
            for rs in old_states:
                rs.spec_replicas = 0
            return f"old-{removed}"
        if any(rs.status_replicas for rs in old_states):
            return None
        if new_state.spec_replicas != shape.replicas:
            delta = shape.replicas - new_state.spec_replicas
            new_state.spec_replicas = shape.replicas
            return f"new+{delta}"
        return None

    def _state(self, rs: dict) -> rollout.ReplicaSetState:
        status = rs.get("status") or {}
        return rollout.ReplicaSetState(
            name=rs["metadata"]["name"],
            spec_replicas=int(rs["spec"].get("replicas") or 0),
            status_replicas=int(status.get("replicas") or 0),
            available_replicas=int(status.get("availableReplicas") or 0),
            ready_replicas=int(status.get("readyReplicas") or 0),
            created=(
                rs["metadata"]["creationTimestamp"],
                rs["metadata"].get("resourceVersion", ""),
            ),
            annotations=dict(rs["metadata"].get("annotations") or {}),
            uid=rs["metadata"].get("uid"),
        )

    def _create_rs(self, deployment: dict, template: dict, shape, revision: int) -> dict:
        meta = deployment["metadata"]
        pod_hash = _template_hash(template)
        rs_template = copy.deepcopy(template)
        labels = rs_template.setdefault("metadata", {}).setdefault("labels", {})
        labels[rollout.HASH_LABEL] = pod_hash
        annotations = {
            k: v
            for k, v in (meta.get("annotations") or {}).items()
            if k not in rollout.SKIPPED_ANNOTATIONS
        }
        annotations[rollout.REVISION_ANNOTATION] = str(revision)
        annotations[rollout.DESIRED_REPLICAS_ANNOTATION] = str(shape.replicas)
        annotations[rollout.MAX_REPLICAS_ANNOTATION] = str(
            shape.replicas + rollout.max_surge(shape)
        )
        self._serial += 1
        rs = {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": f"{meta['name']}-{pod_hash}",
                "namespace": meta.get("namespace", "default"),
                # Distinct, increasing creation times keep "oldest first" well defined.
                "creationTimestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                "labels": dict(labels),
                "annotations": annotations,
                "ownerReferences": [
                    {
                        "apiVersion": "apps/v1",
                        "kind": "Deployment",
                        "name": meta["name"],
                        "uid": meta["uid"],
                        "controller": True,
                    }
                ],
            },
            "spec": {
                "replicas": 0,
                "minReadySeconds": (deployment.get("spec") or {}).get("minReadySeconds", 0),
                "selector": {"matchLabels": dict(labels)},
                "template": rs_template,
            },
            "status": {"replicas": 0},
        }
        return self.fake.add(rs)[0]

    def _sync_pods(self, rs: dict, min_ready_s: float) -> dict[str, int]:
        meta = rs["metadata"]
        pods = self._owned("Pod", meta["uid"])
        want = int(rs["spec"].get("replicas") or 0)
        now = self.clock()
        ready_after = self.timing.ready_after(rs["spec"]["template"])

        # Remove surplus pods, not-ready ones first, then the newest.
        def removal_key(pod: dict) -> tuple[int, float]:
            ready = self._ready(pod)
            return (1 if ready else 0, -self._born.get(pod["metadata"]["name"], 0.0))

        for pod in sorted(pods, key=removal_key)[: max(0, len(pods) - want)]:
            self.fake.delete("Pod", pod["metadata"].get("namespace"), pod["metadata"]["name"])
            pods.remove(pod)
        for _ in range(want - len(pods)):
            self._serial += 1
            pod_name = f"{meta['name']}-{self._serial:05d}"
            self._born[pod_name] = now
            pod = {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": pod_name,
                    "namespace": meta.get("namespace", "default"),
                    "labels": dict(rs["spec"]["template"].get("metadata", {}).get("labels") or {}),
                    "ownerReferences": [
                        {
                            "apiVersion": "apps/v1",
                            "kind": "ReplicaSet",
                            "name": meta["name"],
                            "uid": meta["uid"],
                            "controller": True,
                        }
                    ],
                },
                "spec": copy.deepcopy(rs["spec"]["template"].get("spec") or {}),
                "status": {
                    "phase": "Pending",
                    "conditions": [{"type": "Ready", "status": "False"}],
                },
            }
            pods.extend(self.fake.add(pod))

        ready = available = 0
        for pod in pods:
            age = now - self._born.setdefault(pod["metadata"]["name"], now)
            is_ready = ready_after is not None and age >= ready_after
            phase = "Running" if age > 0 else "Pending"
            if self._ready(pod) != is_ready or pod["status"].get("phase") != phase:
                pod["status"] = {
                    "phase": phase,
                    "conditions": [{"type": "Ready", "status": "True" if is_ready else "False"}],
                }
                self.fake.update(pod)
            if is_ready:
                ready += 1
                assert ready_after is not None
                if age >= ready_after + min_ready_s:
                    available += 1
        status = {
            "replicas": len(pods),
            "readyReplicas": ready,
            "availableReplicas": available,
            "observedGeneration": int(meta.get("generation") or 1),
        }
        if {k: (rs.get("status") or {}).get(k, 0) for k in status} != status:
            rs["status"] = status
            self.fake.update(rs)
        return status

    @staticmethod
    def _ready(pod: dict) -> bool:
        conditions = (pod.get("status") or {}).get("conditions") or []
        return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)

    def _write_status(self, deployment, new, totals, new_status, shape, created_new) -> None:
        # Read and write under the store's lock so a concurrent PATCH is never overwritten.
        with self.fake._lock:
            self._write_status_locked(deployment, new, totals, new_status, shape, created_new)

    def _write_status_locked(self, deployment, new, totals, new_status, shape, created_new):
        latest = next(
            (
                d
                for d in self.fake.objects("Deployment")
                if d["metadata"]["uid"] == deployment["metadata"]["uid"]
            ),
            None,
        )
        if latest is None or latest.get("spec") != deployment.get("spec"):
            return  # changed meanwhile: the next tick reconciles the new spec
        spec_replicas = shape.replicas
        old_status = latest.get("status") or {}
        status: dict[str, Any] = {
            "observedGeneration": int(latest["metadata"].get("generation") or 1),
            "replicas": totals["replicas"],
            "updatedReplicas": new_status.get("replicas", 0),
            "readyReplicas": totals["ready"],
            "availableReplicas": totals["available"],
            "unavailableReplicas": max(0, totals["spec"] - totals["available"]),
        }
        conditions = {c["type"]: c for c in old_status.get("conditions") or []}
        now = _now_text()
        new_view = rollout.RolloutStatus(
            status["replicas"],
            status["updatedReplicas"],
            status["readyReplicas"],
            status["availableReplicas"],
            status["observedGeneration"],
        )
        old_view = rollout.RolloutStatus(
            int(old_status.get("replicas") or 0),
            int(old_status.get("updatedReplicas") or 0),
            int(old_status.get("readyReplicas") or 0),
            int(old_status.get("availableReplicas") or 0),
            int(old_status.get("observedGeneration") or 0),
        )
        progressing = conditions.get("Progressing")
        generation = int(latest["metadata"].get("generation") or 1)
        deadline = rollout.rollout_strategy(latest).progress_deadline_s
        if progressing is None or int(old_status.get("observedGeneration") or 0) < generation:
            reason = "NewReplicaSetCreated" if created_new else "FoundNewReplicaSet"
            progressing = {
                "type": "Progressing",
                "status": "True",
                "reason": reason,
                "lastUpdateTime": now,
                "lastTransitionTime": now,
            }
        elif rollout.deployment_complete(spec_replicas, generation, new_view):
            if progressing.get("reason") != "NewReplicaSetAvailable":
                progressing = {
                    "type": "Progressing",
                    "status": "True",
                    "reason": "NewReplicaSetAvailable",
                    "lastUpdateTime": now,
                    "lastTransitionTime": now,
                }
        elif rollout.deployment_progressing(old_view, new_view):
            progressing = {
                **progressing,
                "status": "True",
                "reason": "ReplicaSetUpdated",
                "lastUpdateTime": now,
            }
        elif (
            rollout.deployment_timed_out(deadline, progressing, datetime.now(UTC))
            and progressing.get("reason") != "ProgressDeadlineExceeded"
        ):
            progressing = {
                "type": "Progressing",
                "status": "False",
                "reason": "ProgressDeadlineExceeded",
                "lastUpdateTime": now,
                "lastTransitionTime": now,
            }
        conditions["Progressing"] = progressing
        available_ok = totals["available"] >= rollout.min_available(shape)
        available = conditions.get("Available") or {}
        wanted_status = "True" if available_ok else "False"
        if available.get("status") != wanted_status:
            conditions["Available"] = {
                "type": "Available",
                "status": wanted_status,
                "reason": "MinimumReplicasAvailable"
                if available_ok
                else "MinimumReplicasUnavailable",
                "lastUpdateTime": now,
                "lastTransitionTime": now,
            }
        status["conditions"] = [
            conditions[k] for k in ("Available", "Progressing") if k in conditions
        ]
        revision = new["metadata"].get("annotations", {}).get(rollout.REVISION_ANNOTATION)
        annotations = dict(latest["metadata"].get("annotations") or {})
        changed = False
        if revision and annotations.get(rollout.REVISION_ANNOTATION) != revision:
            annotations[rollout.REVISION_ANNOTATION] = revision
            latest["metadata"]["annotations"] = annotations
            changed = True
        if status != old_status:
            latest["status"] = status
            changed = True
        if changed:
            self.fake.update(latest)


def wait_rolled_out(fake: Any, name: str = "web", timeout_s: float = 10.0) -> dict[str, Any]:
    """Return the Deployment once its rollout to 3 available replicas has finished."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        d = next(o for o in fake.objects("Deployment") if o["metadata"]["name"] == name)
        s = d.get("status") or {}
        if (
            s.get("observedGeneration") == d["metadata"].get("generation")
            and s.get("updatedReplicas") == s.get("availableReplicas") == s.get("replicas") == 3
        ):
            return d
        time.sleep(0.02)
    raise AssertionError(f"deployment {name} did not roll out: {d.get('status')}")
