"""Cross-object availability rules: replicas, PodDisruptionBudgets, rollout strategy, HPAs."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from rknb.audit.model import AuditConfig, ObjectIndex, Violation, object_namespace
from rknb.audit.objects import (
    hpa_for,
    int_field,
    max_unavailable,
    name_of,
    pod_labels,
    pods_selected,
    rolling_update,
    scaled_int_or_percent,
    selecting,
    workload_replicas,
)
from rknb.audit.registry import rule

__all__ = ["pdb_allowed_disruptions", "pdbs_for", "services_for"]

_REPLICATED = ("Deployment", "StatefulSet")


def pdbs_for(obj: Mapping[str, Any], index: ObjectIndex) -> list[Mapping[str, Any]]:
    """Return the PodDisruptionBudgets in the workload's namespace that select its pods."""
    return selecting(obj, "PodDisruptionBudget", index)


def services_for(obj: Mapping[str, Any], index: ObjectIndex) -> list[Mapping[str, Any]]:
    """Return the Services in the workload's namespace whose selector matches its pods."""
    return selecting(obj, "Service", index)


def pdb_allowed_disruptions(pdb: Mapping[str, Any], replicas: int) -> int | None:
    """Return how many of ``replicas`` healthy pods the PDB lets be evicted (None if no policy).

    Percentages round up for both fields, as the disruption controller does.
    """
    spec = pdb.get("spec") or {}
    try:
        if spec.get("maxUnavailable") is not None:
            return max(0, scaled_int_or_percent(spec["maxUnavailable"], replicas, round_up=True))
        if spec.get("minAvailable") is not None:
            needed = scaled_int_or_percent(spec["minAvailable"], replicas, round_up=True)
            return max(0, replicas - needed)
    except ValueError:
        return None
    return None


def _pdb_policy(pdb: Mapping[str, Any]) -> str:
    spec = pdb.get("spec") or {}
    if spec.get("maxUnavailable") is not None:
        return f"maxUnavailable {spec['maxUnavailable']!r}"
    return f"minAvailable {spec.get('minAvailable')!r}"


@rule(
    "RK-AVAIL-001",
    title="Fewer than two replicas",
    category="reliability",
    severity="medium",
    kinds=_REPLICATED,
    scope="set",
    rationale="With one replica every node drain, eviction or crash is an outage. When an HPA "
    "scales the workload its minReplicas is what counts.",
    remediation="Run at least two replicas (spec.replicas, or the HPA's minReplicas).",
    equivalent=("polaris:deploymentMissingReplicas",),
    # kube-score skips Deployments no Service targets and passes any HPA-owned one.
    divergent=("kube-score:deployment-replicas",),
)
def min_replicas(index: ObjectIndex, config: AuditConfig) -> Iterator[Violation]:
    """Yield workloads whose fewest replicas are under ``config.min_replicas``."""
    for kind in _REPLICATED:
        for obj in index.of_kind(kind):
            low, _ = workload_replicas(obj, index)
            if low >= config.min_replicas:
                continue
            hpa = hpa_for(obj, index)
            where = (
                f"HorizontalPodAutoscaler {name_of(hpa)!r} minReplicas is {low}"
                if hpa is not None
                else f"spec.replicas is {low}"
            )
            yield Violation(f"{where}, under {config.min_replicas}", obj=obj)


@rule(
    "RK-AVAIL-002",
    title="No PodDisruptionBudget",
    category="reliability",
    severity="high",
    kinds=_REPLICATED,
    scope="set",
    rationale="Without a PodDisruptionBudget a node drain may evict every replica of a "
    "workload at once. Single-replica workloads are reported too, as kube-score and Polaris "
    "do: the PDB documents how much disruption the workload tolerates.",
    remediation="Add a PodDisruptionBudget in the same namespace whose selector matches the "
    "pod template labels (for example maxUnavailable: 1).",
    equivalent=(
        "kube-score:deployment-has-poddisruptionbudget",
        "kube-score:statefulset-has-poddisruptionbudget",
        "polaris:missingPodDisruptionBudget",
    ),
)
def has_pdb(index: ObjectIndex, config: AuditConfig) -> Iterator[Violation]:
    """Yield workloads that no PDB in their namespace selects."""
    for kind in _REPLICATED:
        for obj in index.of_kind(kind):
            if not pdbs_for(obj, index):
                yield Violation(
                    f"no PodDisruptionBudget in namespace {object_namespace(obj)!r} selects "
                    f"pods labelled {pod_labels(obj)!r}",
                    obj=obj,
                )


@rule(
    "RK-AVAIL-003",
    title="Rolling update may drop below full capacity",
    category="reliability",
    severity="medium",
    kinds=("Deployment",),
    scope="set",
    rationale="A Deployment behind a Service serves traffic during a rollout; with "
    "maxUnavailable above 0 (or Recreate) it loses serving pods while new ones start. "
    "Percentages round down, so 25% is 0 at 3 replicas but 1 at 4: every replica count the "
    "HPA allows is checked.",
    remediation="Use strategy RollingUpdate with maxUnavailable: 0 and maxSurge: 1 (or more).",
    divergent=("kube-score:deployment-strategy", "kube-linter:no-rolling-update-strategy"),
)
def zero_downtime_strategy(index: ObjectIndex, config: AuditConfig) -> Iterator[Violation]:
    """Yield Deployments behind a Service whose rollout may take serving pods away."""
    for obj in index.of_kind("Deployment"):
        if not services_for(obj, index):
            continue
        kind, surge, unavailable_field = rolling_update(obj)
        if kind != "RollingUpdate":
            yield Violation(f"strategy is {kind}: every pod stops before new ones start", obj=obj)
            continue
        low, high = workload_replicas(obj, index)
        for replicas in range(max(low, 1), min(high, low + 10_000) + 1):
            try:
                unavailable = max_unavailable(surge, unavailable_field, replicas)
            except ValueError as error:
                yield Violation(f"rollingUpdate cannot be read: {error}", obj=obj)
                break
            if unavailable > 0:
                yield Violation(
                    f"maxUnavailable {unavailable_field!r} allows {unavailable} "
                    f"unavailable pod(s) at {replicas} replicas",
                    obj=obj,
                )
                break


@rule(
    "RK-AVAIL-004",
    title="PodDisruptionBudget forbids every eviction",
    category="reliability",
    severity="high",
    kinds=("PodDisruptionBudget",),
    scope="set",
    rationale="A PDB that allows no disruption blocks node drains and cluster upgrades "
    "until someone deletes it.",
    remediation="Allow at least one disruption: maxUnavailable: 1, or minAvailable below the "
    "replica count.",
    equivalent=("polaris:pdbDisruptionsIsZero", "kube-linter:pdb-max-unavailable"),
    divergent=("kube-linter:pdb-min-available",),
)
def pdb_blocks_all(index: ObjectIndex, config: AuditConfig) -> Iterator[Violation]:
    """Yield PDBs that allow no eviction even at the most replicas their pods run."""
    for pdb in index.of_kind("PodDisruptionBudget"):
        spec = pdb.get("spec") or {}
        if spec.get("maxUnavailable") in (0, "0%") or spec.get("minAvailable") == "100%":
            yield Violation(f"{_pdb_policy(pdb)} never allows an eviction", obj=pdb)
            continue
        workloads = pods_selected(spec.get("selector"), object_namespace(pdb), index)
        counts = [workload_replicas(w, index)[1] for w in workloads]
        if not counts:
            continue
        most = sum(counts)
        allowed = pdb_allowed_disruptions(pdb, most)
        if allowed == 0:
            yield Violation(
                f"{_pdb_policy(pdb)} allows no eviction of the {most} pod(s) it selects", obj=pdb
            )


@rule(
    "RK-AVAIL-005",
    title="PDB blocks evictions at the HPA's minimum",
    category="reliability",
    severity="medium",
    kinds=("HorizontalPodAutoscaler",),
    scope="set",
    rationale="When the HPA has scaled to minReplicas and the PDB's minAvailable is at least "
    "that, no pod can be evicted and node drains hang. Polaris flags only minAvailable greater "
    "than minReplicas; rknb, like kube-linter, flags equal too.",
    remediation="Lower minAvailable below minReplicas, use maxUnavailable: 1, or raise "
    "minReplicas.",
    equivalent=("kube-linter:pdb-min-available",),
    divergent=("polaris:pdbMinAvailableGreaterThanHPAMinReplicas",),
)
def hpa_vs_pdb(index: ObjectIndex, config: AuditConfig) -> Iterator[Violation]:
    """Yield HPAs whose minReplicas is at most a matching PDB's minAvailable."""
    for hpa in index.of_kind("HorizontalPodAutoscaler"):
        spec = hpa.get("spec") or {}
        target = spec.get("scaleTargetRef") or {}
        workload = index.get(
            str(target.get("kind")), object_namespace(hpa), str(target.get("name"))
        )
        if workload is None:
            continue
        low = int_field(spec.get("minReplicas"), 1)
        for pdb in pdbs_for(workload, index):
            value = (pdb.get("spec") or {}).get("minAvailable")
            if value is None:
                continue
            try:
                needed = scaled_int_or_percent(value, low, round_up=True)
            except ValueError:
                continue
            if needed >= low:
                yield Violation(
                    f"minReplicas {low} <= PodDisruptionBudget {name_of(pdb)!r} minAvailable "
                    f"{value!r} ({needed} pods): no eviction is allowed at the minimum",
                    obj=hpa,
                )


@rule(
    "RK-HPA-001",
    title="HPA target missing",
    category="reliability",
    severity="high",
    kinds=("HorizontalPodAutoscaler",),
    scope="set",
    rationale="An HPA whose scaleTargetRef names no object in its namespace scales nothing.",
    remediation="Fix scaleTargetRef (kind, name) or delete the HPA.",
    equivalent=(
        "kube-score:horizontalpodautoscaler-has-target",
        "kube-linter:dangling-horizontalpodautoscaler",
    ),
)
def hpa_target(index: ObjectIndex, config: AuditConfig) -> Iterator[Violation]:
    """Yield HPAs whose scaleTargetRef is not among the objects of their namespace."""
    for hpa in index.of_kind("HorizontalPodAutoscaler"):
        target = (hpa.get("spec") or {}).get("scaleTargetRef") or {}
        kind, name = str(target.get("kind")), str(target.get("name"))
        if index.get(kind, object_namespace(hpa), name) is None:
            yield Violation(
                f"scaleTargetRef {kind}/{name} is not in namespace {object_namespace(hpa)!r}",
                obj=hpa,
            )
