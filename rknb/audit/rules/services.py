"""Rules on Services, Ingresses, HPAs, PDBs and NetworkPolicies themselves (and what they name)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from rknb.audit.model import AuditConfig, ObjectIndex, Violation, object_namespace
from rknb.audit.objects import int_field, name_of, pods_selected
from rknb.audit.registry import rule

__all__ = ["ingress_backends"]


@rule(
    "RK-SVC-002",
    title="Service exposed on every node",
    category="security",
    severity="medium",
    kinds=("Service",),
    rationale="A NodePort Service opens its port on every node's address, outside any Ingress "
    "or load balancer's filtering. rknb flags NodePort as kube-score does; kube-linter's "
    "exposed-services also flags LoadBalancer, which is usually the intended way in.",
    remediation="Use type ClusterIP behind an Ingress, or a LoadBalancer with source ranges.",
    equivalent=("kube-score:service-type", "kube-linter:exposed-services"),
)
def node_port(obj: Mapping[str, Any], config: AuditConfig) -> Iterator[Violation]:
    """Yield a violation for a Service of type NodePort."""
    if (obj.get("spec") or {}).get("type") == "NodePort":
        yield Violation("type is NodePort")


def ingress_backends(obj: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    """Yield (service name, port number or name) for each backend an Ingress routes to."""
    spec = obj.get("spec") or {}
    backends = [spec.get("defaultBackend") or spec.get("backend")]
    for ingress_rule in spec.get("rules") or []:
        for path in (ingress_rule.get("http") or {}).get("paths") or []:
            backends.append(path.get("backend"))
    for backend in backends:
        if not backend:
            continue
        service = backend.get("service")
        if service:  # networking.k8s.io/v1
            port = service.get("port") or {}
            yield str(service.get("name")), port.get("number", port.get("name"))
        elif backend.get("serviceName"):  # v1beta1
            yield str(backend["serviceName"]), backend.get("servicePort")


@rule(
    "RK-ING-001",
    title="Ingress backend Service or port missing",
    category="reliability",
    severity="high",
    kinds=("Ingress",),
    scope="set",
    rationale="An Ingress path whose Service (or port) does not exist in its namespace answers "
    "every request with 503.",
    remediation="Point the backend at an existing Service and one of its ports.",
    equivalent=("kube-score:ingress-targets-service", "kube-linter:dangling-ingress"),
)
def ingress_targets(index: ObjectIndex, config: AuditConfig) -> Iterator[Violation]:
    """Yield Ingresses naming a Service or Service port not among the objects."""
    for ingress in index.of_kind("Ingress"):
        for name, port in ingress_backends(ingress):
            service = index.get("Service", object_namespace(ingress), name)
            if service is None:
                yield Violation(f"backend Service {name!r} does not exist", obj=ingress)
                continue
            ports = (service.get("spec") or {}).get("ports") or []
            if port is not None and not any(port in (p.get("port"), p.get("name")) for p in ports):
                yield Violation(f"Service {name!r} has no port {port!r}", obj=ingress)


@rule(
    "RK-ING-002",
    title="Ingress without TLS",
    category="security",
    severity="medium",
    kinds=("Ingress",),
    rationale="Without spec.tls the Ingress serves plain HTTP: credentials and cookies cross "
    "the network in clear text.",
    remediation="Add spec.tls with a certificate Secret (cert-manager can issue one).",
    equivalent=("polaris:tlsSettingsMissing",),
)
def ingress_tls(obj: Mapping[str, Any], config: AuditConfig) -> Iterator[Violation]:
    """Yield a violation when the Ingress has no tls section."""
    if not (obj.get("spec") or {}).get("tls"):
        yield Violation("spec.tls is not set")


@rule(
    "RK-HPA-002",
    title="HPA minReplicas below two",
    category="reliability",
    severity="medium",
    kinds=("HorizontalPodAutoscaler",),
    rationale="An HPA that may scale down to one replica makes the workload a single point of "
    "failure at quiet hours. Threshold 2 (kube-score, Polaris; kube-linter asks for 3); "
    "the notebook's min_replicas parameter changes it.",
    remediation="Set minReplicas to 2 or more.",
    equivalent=("kube-score:horizontalpodautoscaler-replicas", "polaris:hpaMinAvailability"),
    divergent=("kube-linter:hpa-minimum-three-replicas",),
)
def hpa_min(obj: Mapping[str, Any], config: AuditConfig) -> Iterator[Violation]:
    """Yield a violation when minReplicas (default 1) is below ``config.min_replicas``."""
    low = int_field((obj.get("spec") or {}).get("minReplicas"), 1)
    if low < config.min_replicas:
        yield Violation(f"minReplicas is {low}, under {config.min_replicas}")


@rule(
    "RK-HPA-003",
    title="HPA cannot scale",
    category="reliability",
    severity="low",
    kinds=("HorizontalPodAutoscaler",),
    rationale="With minReplicas equal to maxReplicas the HPA never changes the replica count.",
    remediation="Raise maxReplicas above minReplicas, or remove the HPA.",
    equivalent=("polaris:hpaMaxAvailability",),
)
def hpa_range(obj: Mapping[str, Any], config: AuditConfig) -> Iterator[Violation]:
    """Yield a violation when minReplicas equals maxReplicas."""
    spec = obj.get("spec") or {}
    low = int_field(spec.get("minReplicas"), 1)
    high = int_field(spec.get("maxReplicas"), -1)
    if high != -1 and high <= low:
        yield Violation(f"minReplicas {low} equals maxReplicas {spec['maxReplicas']}")


@rule(
    "RK-PDB-001",
    title="PodDisruptionBudget has no policy",
    category="reliability",
    severity="high",
    kinds=("PodDisruptionBudget",),
    rationale="A PDB with neither minAvailable nor maxUnavailable protects nothing.",
    remediation="Set maxUnavailable: 1 (or a minAvailable below the replica count).",
    equivalent=("kube-score:poddisruptionbudget-has-policy",),
)
def pdb_policy(obj: Mapping[str, Any], config: AuditConfig) -> Iterator[Violation]:
    """Yield a violation when the PDB sets neither field."""
    spec = obj.get("spec") or {}
    if spec.get("minAvailable") is None and spec.get("maxUnavailable") is None:
        yield Violation("sets neither minAvailable nor maxUnavailable")


@rule(
    "RK-PDB-002",
    title="PDB unhealthyPodEvictionPolicy unset",
    category="reliability",
    severity="low",
    kinds=("PodDisruptionBudget",),
    rationale="With the default IfHealthyBudget, pods stuck unready count against the budget "
    "and can block a node drain; AlwaysAllow lets them be evicted.",
    remediation="Set spec.unhealthyPodEvictionPolicy (AlwaysAllow for most services).",
    equivalent=("kube-linter:pdb-unhealthy-pod-eviction-policy",),
)
def pdb_unhealthy_policy(obj: Mapping[str, Any], config: AuditConfig) -> Iterator[Violation]:
    """Yield a violation when unhealthyPodEvictionPolicy is not set."""
    if not (obj.get("spec") or {}).get("unhealthyPodEvictionPolicy"):
        yield Violation("spec.unhealthyPodEvictionPolicy is not set")


@rule(
    "RK-NET-003",
    title="NetworkPolicy selects no pods",
    category="reliability",
    severity="medium",
    kinds=("NetworkPolicy",),
    scope="set",
    rationale="A NetworkPolicy whose podSelector matches no pod template in its namespace "
    "protects nothing, usually because of a label typo.",
    remediation="Make spec.podSelector match the labels of the pods it should isolate.",
    equivalent=("kube-score:networkpolicy-targets-pod", "kube-linter:dangling-networkpolicy"),
)
def policy_targets(index: ObjectIndex, config: AuditConfig) -> Iterator[Violation]:
    """Yield NetworkPolicies selecting no workload of their namespace (empty selector: all)."""
    for policy in index.of_kind("NetworkPolicy"):
        selector = (policy.get("spec") or {}).get("podSelector") or {}
        if not selector:
            continue
        if not pods_selected(selector, object_namespace(policy), index):
            yield Violation(
                f"podSelector {dict(selector)!r} matches no pods in namespace "
                f"{object_namespace(policy)!r} ({name_of(policy)})",
                obj=policy,
            )
