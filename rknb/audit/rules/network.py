"""Cross-object network rules: NetworkPolicies covering pods, Services selecting pods."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from rknb.audit.model import AuditConfig, ObjectIndex, Violation, object_namespace, selector_matches
from rknb.audit.objects import (
    SERVICE_WORKLOAD_KINDS,
    name_of,
    pod_labels,
    pods_selected,
    selecting,
)
from rknb.audit.registry import rule

__all__ = ["policies_for", "policy_types"]

_POD_KINDS = (*SERVICE_WORKLOAD_KINDS, "Job", "CronJob")


def policy_types(policy: Mapping[str, Any]) -> set[str]:
    """Return the directions a NetworkPolicy isolates, with the API's default for policyTypes.

    Unset ``policyTypes`` means Ingress, plus Egress when the policy has egress rules.
    """
    spec = policy.get("spec") or {}
    if spec.get("policyTypes"):
        return set(spec["policyTypes"])
    return {"Ingress", "Egress"} if spec.get("egress") else {"Ingress"}


def policies_for(
    obj: Mapping[str, Any], index: ObjectIndex, *, namespace: str | None = ""
) -> list[Mapping[str, Any]]:
    """Return the NetworkPolicies whose podSelector selects the workload's pods.

    Parameters
    ----------
    obj
        The workload.
    index
        All objects of the audit.
    namespace
        Where to look: ``""`` (default) the workload's own namespace, which is the only one
        whose policies apply; ``None`` every namespace (to explain a near miss).
    """
    if namespace == "":
        return selecting(obj, "NetworkPolicy", index)
    labels = pod_labels(obj)
    return [
        policy
        for policy in index.of_kind("NetworkPolicy", namespace)
        if selector_matches((policy.get("spec") or {}).get("podSelector", {}), labels)
    ]


def _workloads(index: ObjectIndex) -> Iterator[Mapping[str, Any]]:
    for kind in _POD_KINDS:
        yield from index.of_kind(kind)


@rule(
    "RK-NET-001",
    title="No NetworkPolicy selects the pods",
    category="security",
    severity="high",
    kinds=_POD_KINDS,
    scope="set",
    rationale="Pods no NetworkPolicy selects accept traffic from every pod in the cluster. "
    "Only policies in the pods' own namespace apply.",
    remediation="Add a NetworkPolicy in the workload's namespace whose podSelector matches "
    "its pod labels, with ingress and egress rules.",
    equivalent=(
        "kube-linter:non-isolated-pod",
        "checkov:CKV2_K8S_6",
        "kube-score:pod-networkpolicy",
        "polaris:missingNetworkPolicy",
    ),
)
def has_network_policy(index: ObjectIndex, config: AuditConfig) -> Iterator[Violation]:
    """Yield workloads no NetworkPolicy of their namespace selects, naming near misses."""
    for obj in _workloads(index):
        if policies_for(obj, index):
            continue
        namespace = object_namespace(obj)
        # The usual near miss: a policy applied without -n landed in the default namespace.
        elsewhere = policies_for(obj, index, namespace="default") if namespace != "default" else []
        message = f"no NetworkPolicy in namespace {namespace!r} selects its pods"
        if elsewhere:
            names = ", ".join(f"{object_namespace(p)}/{name_of(p)}" for p in elsewhere)
            message += (
                f"; NetworkPolicy {names} matches their labels but is in another namespace "
                "(a manifest without metadata.namespace lands in the default namespace)"
            )
        yield Violation(message, obj=obj)


@rule(
    "RK-NET-002",
    title="Pods isolated in one direction only",
    category="security",
    severity="low",
    kinds=_POD_KINDS,
    scope="set",
    rationale="A pod whose policies isolate only ingress can still reach anything (and the "
    "reverse for egress only).",
    remediation="Include both Ingress and Egress in the policyTypes of a policy selecting the "
    "pods.",
    # kube-score and Polaris judge both directions together; Checkov accepts any policy.
    equivalent=("kube-score:pod-networkpolicy", "polaris:missingNetworkPolicy"),
    divergent=("checkov:CKV2_K8S_6",),
)
def both_directions(index: ObjectIndex, config: AuditConfig) -> Iterator[Violation]:
    """Yield workloads whose policies isolate only Ingress or only Egress."""
    # Each policy's directions, found once: one policy often selects hundreds of workloads.
    directions = {id(p): policy_types(p) for p in index.of_kind("NetworkPolicy")}
    for obj in _workloads(index):
        policies = policies_for(obj, index)
        if not policies:
            continue
        covered = set().union(*(directions.get(id(p)) or policy_types(p) for p in policies))
        missing = {"Ingress", "Egress"} - covered
        if missing:
            yield Violation(f"no policy isolates {', '.join(sorted(missing))}", obj=obj)


@rule(
    "RK-SVC-001",
    title="Service selects no pods",
    category="reliability",
    severity="high",
    kinds=("Service",),
    scope="set",
    rationale="A Service whose selector matches no pod template in its namespace has no "
    "endpoints: every request to it fails.",
    remediation="Make spec.selector match the pod template labels of a workload in the same "
    "namespace.",
    equivalent=("kube-score:service-targets-pod", "kube-linter:dangling-service"),
)
def service_targets(index: ObjectIndex, config: AuditConfig) -> Iterator[Violation]:
    """Yield Services with a selector that no workload's pods in their namespace match."""
    for service in index.of_kind("Service"):
        spec = service.get("spec") or {}
        selector = spec.get("selector") or {}
        if spec.get("type") == "ExternalName" or not selector:
            continue
        namespace = object_namespace(service)
        wanted = {"matchLabels": selector}
        if pods_selected(wanted, namespace, index):
            continue
        # Only a failing Service pays for the search of the other namespaces.
        matching = [
            w
            for w in _workloads(index)
            if pod_labels(w) and selector_matches(wanted, pod_labels(w))
        ]
        message = f"selector {selector!r} matches no pod template in namespace {namespace!r}"
        if matching:
            names = ", ".join(
                f"{w.get('kind')}/{object_namespace(w)}/{name_of(w)}" for w in matching
            )
            message += f" (it matches {names} in another namespace)"
        yield Violation(message, obj=service)
