"""Reading workloads the way Kubernetes does: pod templates, containers, effective settings."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from rknb.audit.model import ObjectIndex, object_namespace, selector_matches
from rknb.kube import parse_int_or_percent

__all__ = [
    "SERVICE_WORKLOAD_KINDS",
    "WORKLOAD_KINDS",
    "containers",
    "effective_security",
    "hpa_for",
    "name_of",
    "pod_labels",
    "pod_spec",
    "pods_selected",
    "selecting",
    "selector_of",
    "workload_replicas",
]

#: Kinds that hold a pod template (or are a pod).
WORKLOAD_KINDS = (
    "Pod",
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "ReplicaSet",
    "Job",
    "CronJob",
    "DeploymentConfig",
)

#: Workloads that run long-lived pods (probes, replicas and PDBs apply to these). OpenShift's
#: DeploymentConfig holds a pod template like a Deployment (kube-linter and Checkov scan it).
SERVICE_WORKLOAD_KINDS = (
    "Pod",
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "ReplicaSet",
    "DeploymentConfig",
)


def name_of(obj: Mapping[str, Any]) -> str:
    """Return ``metadata.name`` (empty string when missing)."""
    return str((obj.get("metadata") or {}).get("name") or "")


def _template(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    kind = obj.get("kind")
    spec = obj.get("spec") or {}
    if kind == "Pod":
        return {"metadata": obj.get("metadata") or {}, "spec": spec}
    if kind == "CronJob":
        spec = ((spec.get("jobTemplate") or {}).get("spec")) or {}
    return spec.get("template") or {}


def pod_spec(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    """Return the pod spec of a Pod or of a workload's pod template (``{}`` when missing)."""
    return _template(obj).get("spec") or {}


def pod_labels(obj: Mapping[str, Any]) -> dict[str, str]:
    """Return the labels the workload's pods get."""
    return dict((_template(obj).get("metadata") or {}).get("labels") or {})


def containers(obj: Mapping[str, Any], *, init: bool = False) -> Iterator[Mapping[str, Any]]:
    """Yield the app containers of the pod spec (and init containers when asked)."""
    spec = pod_spec(obj)
    if init:
        yield from spec.get("initContainers") or []
    yield from spec.get("containers") or []


def effective_security(obj: Mapping[str, Any], container: Mapping[str, Any]) -> dict[str, Any]:
    """Return the container's security settings with the pod-level ones it inherits.

    Kubernetes applies the pod's ``securityContext`` fields ``runAsUser``,
    ``runAsGroup``, ``runAsNonRoot``, ``seLinuxOptions``, ``seccompProfile``
    and ``windowsOptions`` to a container that does not set them; the other
    container fields have no pod-level counterpart.
    """
    pod = pod_spec(obj).get("securityContext") or {}
    own = dict(container.get("securityContext") or {})
    for key in (
        "runAsUser",
        "runAsGroup",
        "runAsNonRoot",
        "seLinuxOptions",
        "seccompProfile",
        "windowsOptions",
    ):
        if key not in own and key in pod:
            own[key] = pod[key]
    return own


def hpa_for(obj: Mapping[str, Any], index: ObjectIndex) -> Mapping[str, Any] | None:
    """Return the HorizontalPodAutoscaler targeting this workload in its namespace, if any."""
    targets = index.cache.get("hpa_targets")
    if targets is None:
        targets = {}
        for hpa in index.of_kind("HorizontalPodAutoscaler"):
            target = (hpa.get("spec") or {}).get("scaleTargetRef") or {}
            key = (object_namespace(hpa), target.get("kind"), target.get("name"))
            targets.setdefault(key, hpa)
        index.cache["hpa_targets"] = targets
    found: Mapping[str, Any] | None = targets.get(
        (object_namespace(obj), obj.get("kind"), name_of(obj))
    )
    return found


def workload_replicas(obj: Mapping[str, Any], index: ObjectIndex | None = None) -> tuple[int, int]:
    """Return the (fewest, most) replicas the workload runs: HPA min..max when one targets it.

    ``spec.replicas`` defaults to 1; a Pod is one replica.
    """
    if index is not None:
        hpa = hpa_for(obj, index)
        if hpa is not None:
            spec = hpa.get("spec") or {}
            low = int(spec.get("minReplicas", 1))
            return low, int(spec.get("maxReplicas", low))
    if obj.get("kind") == "Pod":
        return 1, 1
    replicas = (obj.get("spec") or {}).get("replicas")
    count = 1 if replicas is None else int(replicas)
    return count, count


_POD_KINDS = (*SERVICE_WORKLOAD_KINDS, "Job", "CronJob")


def _labels_index(index: ObjectIndex) -> dict[str, Any]:
    # Pod labels of every workload, and workloads by (namespace, label, value), built once.
    found = index.cache.get("labels")
    if found is None:
        labels: dict[int, dict[str, str]] = {}
        by_label: dict[tuple[str | None, str, str], list[Mapping[str, Any]]] = {}
        by_namespace: dict[str | None, list[Mapping[str, Any]]] = {}
        for kind in _POD_KINDS:
            for obj in index.of_kind(kind):
                own = pod_labels(obj)
                namespace = object_namespace(obj)
                labels[id(obj)] = own
                by_namespace.setdefault(namespace, []).append(obj)
                for key, value in own.items():
                    by_label.setdefault((namespace, key, str(value)), []).append(obj)
        found = {"labels": labels, "by_label": by_label, "by_namespace": by_namespace}
        index.cache["labels"] = found
    return found


def pods_selected(
    selector: Mapping[str, Any] | None, namespace: str | None, index: ObjectIndex
) -> list[Mapping[str, Any]]:
    """Return the workloads in the namespace (None: any) whose pods the label selector selects.

    An empty selector ``{}`` selects every pod, labelled or not (NetworkPolicy, policy/v1 PDB).
    """
    if selector is None:
        return []
    table = _labels_index(index)
    namespaces = [namespace] if namespace is not None else list(table["by_namespace"])
    match_labels = selector.get("matchLabels") or {}
    selected: list[Mapping[str, Any]] = []
    for where in namespaces:
        if match_labels:
            key, value = next(iter(match_labels.items()))
            candidates = table["by_label"].get((where, key, str(value)), [])
        else:
            candidates = table["by_namespace"].get(where, [])
        selected.extend(o for o in candidates if selector_matches(selector, table["labels"][id(o)]))
    return selected


def selector_of(obj: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """Return the label selector of a PDB, Service or NetworkPolicy as a LabelSelector."""
    spec = obj.get("spec") or {}
    kind = obj.get("kind")
    if kind == "Service":
        return {"matchLabels": spec["selector"]} if spec.get("selector") else None
    if kind == "NetworkPolicy":
        return spec.get("podSelector") or {}
    selector: Mapping[str, Any] | None = spec.get("selector")
    return selector


def selecting(obj: Mapping[str, Any], kind: str, index: ObjectIndex) -> list[Mapping[str, Any]]:
    """Return the objects of ``kind`` (PDB, Service, NetworkPolicy) whose selector picks obj.

    Each selector object is matched once per audit and the answer kept in the index.
    """
    table = index.cache.get(f"selecting:{kind}")
    if table is None:
        table = {}
        for selecting_obj in index.of_kind(kind):
            chosen = pods_selected(
                selector_of(selecting_obj), object_namespace(selecting_obj), index
            )
            for workload in chosen:
                table.setdefault(id(workload), []).append(selecting_obj)
        index.cache[f"selecting:{kind}"] = table
    return list(table.get(id(obj), []))


def scaled_int_or_percent(value: Any, total: int, *, round_up: bool) -> int:
    """Return an int-or-percent field scaled to ``total``; ValueError when it is neither."""
    return parse_int_or_percent(value, total, round_up=round_up)


def rolling_update(obj: Mapping[str, Any]) -> tuple[str, Any, Any]:
    """Return (strategy type, maxSurge, maxUnavailable) of a Deployment with the API defaults."""
    strategy = (obj.get("spec") or {}).get("strategy") or {}
    rolling = strategy.get("rollingUpdate") or {}
    return (
        strategy.get("type") or "RollingUpdate",
        rolling.get("maxSurge", "25%"),
        rolling.get("maxUnavailable", "25%"),
    )


def max_unavailable(surge: Any, unavailable: Any, replicas: int) -> int:
    """Return the pods a rolling update may take down at ``replicas`` (0/0 becomes 0/1)."""
    up = scaled_int_or_percent(surge if surge is not None else 0, replicas, round_up=True)
    down = scaled_int_or_percent(
        unavailable if unavailable is not None else 0, replicas, round_up=False
    )
    return 1 if up == 0 and down == 0 else min(down, replicas)
