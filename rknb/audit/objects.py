"""Reading workloads the way Kubernetes does: pod templates, containers, effective settings."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from rknb.audit.model import ObjectIndex, object_namespace, selector_matches
from rknb.errors import ParameterError
from rknb.kube import parse_int_or_percent, parse_quantity

__all__ = [
    "SERVICE_WORKLOAD_KINDS",
    "WORKLOAD_KINDS",
    "containers",
    "effective_security",
    "field_problems",
    "hpa_for",
    "int_field",
    "name_of",
    "pod_labels",
    "pod_spec",
    "pods_selected",
    "remembered",
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


def _mapping(value: Any) -> Mapping[str, Any]:
    # A field that should hold a mapping, or {} when it holds something else (`.nan`, a list):
    # the rules read such a field as absent, and the schema check reports it.
    return value if isinstance(value, Mapping) else {}


def _sequence(value: Any) -> list[Any]:
    # A field that should hold a list of mappings: its mappings, or [] for anything else.
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []


def _template(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    kind = obj.get("kind")
    spec = _mapping(obj.get("spec"))
    if kind == "Pod":
        return {"metadata": _mapping(obj.get("metadata")), "spec": spec}
    if kind == "CronJob":
        spec = _mapping(_mapping(spec.get("jobTemplate")).get("spec"))
    return _mapping(spec.get("template"))


# (object, pod template, pod spec, app containers, init and app containers) of an object.
_Facts = tuple[
    Mapping[str, Any],
    Mapping[str, Any],
    Mapping[str, Any],
    list[Mapping[str, Any]],
    list[Mapping[str, Any]],
]
# While an audit runs (see remembered()), each object's facts by id(obj): some seventy rules
# read the same pod spec and containers, so they are found once per object instead of per rule.
# An entry holds its object, so no other live object can share its id while it is kept.
_MEMO: dict[int, _Facts] = {}
_MEMO_USERS = [0]


def _facts(obj: Mapping[str, Any]) -> _Facts:
    found = _MEMO.get(id(obj))
    if found is not None and found[0] is obj:
        return found
    template = _template(obj)
    spec = _mapping(template.get("spec"))
    app = [_readable(c) for c in _sequence(spec.get("containers"))]
    init = [_readable(c) for c in _sequence(spec.get("initContainers"))]
    facts: _Facts = (obj, template, spec, app, [*init, *app])
    if _MEMO_USERS[0]:
        _MEMO[id(obj)] = facts
    return facts


# Quantity strings already parsed (most manifests repeat a few: 100m, 128Mi), so that each
# is parsed once per process; bounded, since the text comes from the input.
_QUANTITIES_SEEN: set[str] = set()
_QUANTITIES_KEPT = 4096


def _is_quantity(value: Any) -> bool:
    if value.__class__ is str and value in _QUANTITIES_SEEN:
        return True
    try:
        parse_quantity(value)
    except ParameterError:
        return False
    if value.__class__ is str and len(_QUANTITIES_SEEN) < _QUANTITIES_KEPT:
        _QUANTITIES_SEEN.add(value)
    return True


def _bad_quantities(container: Any) -> Iterator[tuple[str, str, Any]]:
    # (requests | limits, resource, value) of the container's values that are no quantity.
    resources = container.get("resources") if isinstance(container, Mapping) else None
    if not isinstance(resources, Mapping):
        return
    for section in ("requests", "limits"):
        amounts = resources.get(section)
        if isinstance(amounts, Mapping):
            for resource, value in amounts.items():
                if value is not None and not _is_quantity(value):
                    yield section, str(resource), value


# Container fields the rules read, and the shape each must have: one of another shape (`env`
# written as a string) is read as absent, and field_problems reports it once, instead of
# every rule that reads it failing on the container.
_CONTAINER_SHAPES: dict[str, type] = {
    "env": list,
    "envFrom": list,
    "ports": list,
    "volumeMounts": list,
    "resources": Mapping,
    "securityContext": Mapping,
    "livenessProbe": Mapping,
    "readinessProbe": Mapping,
    "startupProbe": Mapping,
}


def _misshapen(container: Mapping[str, Any]) -> list[str]:
    # The fields of _CONTAINER_SHAPES the container holds in another shape (null is absent).
    return [
        key
        for key, shape in _CONTAINER_SHAPES.items()
        if container.get(key) is not None and not isinstance(container[key], shape)
    ]


def _readable(container: Any) -> Any:
    # The container as the rules read it: a field of the wrong shape, and a request or limit
    # that is no quantity (`cpu: lots`), are left out, as absent (field_problems reports
    # them). Others are the input's own dict.
    wrong = _misshapen(container)
    if wrong:
        container = {key: value for key, value in container.items() if key not in wrong}
    bad = list(_bad_quantities(container))
    if not bad:
        return container
    resources = {
        section: dict(amounts) if isinstance(amounts, Mapping) else amounts
        for section, amounts in container["resources"].items()
    }
    for section, resource, _ in bad:
        del resources[section][resource]
    return {**container, "resources": resources}


@contextmanager
def remembered() -> Iterator[None]:
    """Return a context in which each object's pod spec and containers are found only once.

    The objects must not change inside the block (rules only read them).
    """
    _MEMO_USERS[0] += 1
    try:
        yield
    finally:
        _MEMO_USERS[0] -= 1
        if not _MEMO_USERS[0]:
            _MEMO.clear()


def pod_spec(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    """Return the pod spec of a Pod or of a workload's pod template (``{}`` when missing)."""
    return _facts(obj)[2]


def pod_labels(obj: Mapping[str, Any]) -> dict[str, str]:
    """Return the labels the workload's pods get."""
    labels = _mapping(_mapping(_facts(obj)[1].get("metadata")).get("labels"))
    return dict(labels)


def containers(obj: Mapping[str, Any], *, init: bool = False) -> Iterator[Mapping[str, Any]]:
    """Return an iterator over the app containers of the pod spec (init ones first if asked)."""
    facts = _facts(obj)
    return iter(facts[4] if init else facts[3])


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
            target = _mapping(_mapping(hpa.get("spec")).get("scaleTargetRef"))
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
            spec = _mapping(hpa.get("spec"))
            low = int_field(spec.get("minReplicas"), 1)
            return low, int_field(spec.get("maxReplicas"), low)
    if obj.get("kind") == "Pod":
        return 1, 1
    count = int_field(_mapping(obj.get("spec")).get("replicas"), 1)
    return count, count


def int_field(value: Any, default: int) -> int:
    """Return an integer field's value, or ``default`` when it is missing or not a number.

    A value that is not a number (``"three"``, ``[1]``) is treated as absent: the audit
    reports it once (see :func:`field_problems`) and the rules read the default.
    """
    if value is None or isinstance(value, bool):
        return default
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):
        return default


def _not_int(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, bool):
        return True
    try:
        int(value)
    except (TypeError, ValueError, OverflowError):
        return True
    return False


def _pod_spec_path(obj: Mapping[str, Any]) -> str:
    # Where an object holds its pod spec, as a field path.
    kind = obj.get("kind")
    if kind == "Pod":
        return "spec"
    if kind == "CronJob":
        return "spec.jobTemplate.spec.template.spec"
    return "spec.template.spec"


def _containers_at(obj: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    # (field path, container) of the pod spec's init and app containers, as written.
    base = _pod_spec_path(obj)
    spec = pod_spec(obj)
    for group in ("initContainers", "containers"):
        listed = spec.get(group)
        for number, c in enumerate(listed if isinstance(listed, list) else []):
            if isinstance(c, Mapping):
                yield f"{base}.{group}[{number}]", c


def _pod_int_fields(obj: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    # (path, value) of the integer fields of a workload the rules read.
    if obj.get("kind") not in ("Pod", "Job", "CronJob", "DaemonSet"):
        yield "spec.replicas", _mapping(obj.get("spec")).get("replicas")
    spec = pod_spec(obj)
    if isinstance(spec.get("securityContext"), Mapping):
        path = f"{_pod_spec_path(obj)}.securityContext.runAsUser"
        yield path, spec["securityContext"].get("runAsUser")
    for where, c in _containers_at(obj):
        security = c.get("securityContext")
        if isinstance(security, Mapping):
            yield f"{where}.securityContext.runAsUser", security.get("runAsUser")
        ports = c.get("ports")
        for index, port in enumerate(ports if isinstance(ports, list) else []):
            if isinstance(port, Mapping):
                yield f"{where}.ports[{index}].containerPort", port.get("containerPort")


def field_problems(obj: Mapping[str, Any]) -> list[str]:
    """Return one sentence per field the rules read whose value has the wrong form.

    The fields are those the rules read as numbers (``spec.replicas``, an HPA's
    ``minReplicas`` and ``maxReplicas``, ``runAsUser``, ``containerPort``) and the
    containers' resource requests and limits, which must be quantities (``100m``, ``0.5``,
    ``128Mi``, as :func:`rknb.kube.parse_quantity` reads them); the rules treat such a
    value as absent.
    """
    kind = obj.get("kind")
    if kind == "HorizontalPodAutoscaler":
        spec = obj.get("spec")
        spec = spec if isinstance(spec, Mapping) else {}
        found: Iterator[tuple[str, Any]] = iter(
            [
                ("spec.minReplicas", spec.get("minReplicas")),
                ("spec.maxReplicas", spec.get("maxReplicas")),
            ]
        )
    elif kind in WORKLOAD_KINDS:
        found = _pod_int_fields(obj)
    else:
        return []
    problems = [
        f"{path} is {value!r}, not a whole number; it is treated as absent"
        for path, value in found
        if _not_int(value)
    ]
    if kind in WORKLOAD_KINDS:
        problems.extend(_shape_problems(obj))
        problems.extend(_quantity_problems(obj))
    return problems


def _shape_problems(obj: Mapping[str, Any]) -> Iterator[str]:
    # A container field the rules read, written in the wrong shape (`env: "A=b"`).
    for where, c in _containers_at(obj):
        for key in _misshapen(c):
            shape = "list" if _CONTAINER_SHAPES[key] is list else "mapping"
            yield (
                f"container {str(c.get('name'))!r} {where}.{key} is a {type(c[key]).__name__}, "
                f"not a {shape}; it is treated as absent"
            )


def _quantity_problems(obj: Mapping[str, Any]) -> Iterator[str]:
    # A request or limit the API server would refuse as no quantity (`cpu: lots`).
    for where, c in _containers_at(obj):
        for section, resource, value in _bad_quantities(c):
            yield (
                f"container {str(c.get('name'))!r} {where}.resources.{section}.{resource} is "
                f"{value!r}, not a quantity (write it as 100m, 0.5 or 128Mi); it is treated as "
                "absent"
            )


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
    if not isinstance(match_labels, Mapping):
        return []  # selects nothing, as selector_matches says
    selected: list[Mapping[str, Any]] = []
    for where in namespaces:
        if match_labels:
            key, value = next(iter(match_labels.items()))
            candidates = table["by_label"].get((where, key, str(value)), [])
        else:
            candidates = table["by_namespace"].get(where, [])
            if not selector.get("matchExpressions"):
                selected.extend(candidates)  # an empty selector selects every pod
                continue
        selected.extend(o for o in candidates if selector_matches(selector, table["labels"][id(o)]))
    return selected


def selector_of(obj: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """Return the label selector of a PDB, Service or NetworkPolicy as a LabelSelector."""
    spec = _mapping(obj.get("spec"))
    kind = obj.get("kind")
    if kind == "Service":
        chosen = spec.get("selector")
        return {"matchLabels": chosen} if chosen and isinstance(chosen, Mapping) else None
    # A selector of the wrong shape selects nothing (the schema check reports it); a missing
    # podSelector selects every pod of the namespace, as an empty one does.
    selector = spec.get("podSelector") or {} if kind == "NetworkPolicy" else spec.get("selector")
    return selector if isinstance(selector, Mapping) else None


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
    strategy = _mapping(_mapping(obj.get("spec")).get("strategy"))
    rolling = _mapping(strategy.get("rollingUpdate"))
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
