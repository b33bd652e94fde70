"""Scheduling and rollout rules: spread constraints, node affinity, priority, strategy, DNS."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from rknb.audit.model import AuditConfig, Violation
from rknb.audit.objects import SERVICE_WORKLOAD_KINDS, WORKLOAD_KINDS, pod_spec
from rknb.audit.registry import rule

__all__ = ["spread_constraint_problems"]

_UNSATISFIABLE = ("DoNotSchedule", "ScheduleAnyway")


def spread_constraint_problems(constraint: Mapping[str, Any]) -> list[str]:
    """Return what is wrong with one topologySpreadConstraint (empty when it is valid).

    The checks are the API server's and kube-score's: maxSkew at least 1, a
    topologyKey, whenUnsatisfiable DoNotSchedule or ScheduleAnyway, a
    labelSelector (without one the constraint counts no pods), and minDomains
    at least 1 and only with DoNotSchedule.
    """
    problems = []
    skew = constraint.get("maxSkew")
    if not isinstance(skew, int) or isinstance(skew, bool) or skew < 1:
        problems.append(f"maxSkew {skew!r} is not a whole number of at least 1")
    if not constraint.get("topologyKey"):
        problems.append("topologyKey is not set")
    when = constraint.get("whenUnsatisfiable")
    if when not in _UNSATISFIABLE:
        problems.append(f"whenUnsatisfiable {when!r} is not DoNotSchedule or ScheduleAnyway")
    if constraint.get("labelSelector") is None:
        problems.append("labelSelector is not set, so the constraint counts no pods")
    domains = constraint.get("minDomains")
    if domains is not None:
        if not isinstance(domains, int) or isinstance(domains, bool) or domains < 1:
            problems.append(f"minDomains {domains!r} is not a whole number of at least 1")
        elif when != "DoNotSchedule":
            problems.append("minDomains is set but whenUnsatisfiable is not DoNotSchedule")
    return problems


@rule(
    "RK-AVAIL-011",
    title="Topology spread constraint invalid",
    category="reliability",
    severity="high",
    kinds=WORKLOAD_KINDS,
    rationale="A malformed topologySpreadConstraint is rejected by the API server, or, without "
    "a labelSelector, spreads nothing: the replicas the author meant to keep apart may share "
    "one zone or node.",
    remediation="Give each constraint maxSkew >= 1, a topologyKey, whenUnsatisfiable "
    "DoNotSchedule or ScheduleAnyway, and a labelSelector matching the pod's labels; use "
    "minDomains only with DoNotSchedule.",
    equivalent=("kube-score:pod-topology-spread-constraints",),
)
def spread_constraints(obj: Mapping[str, Any], config: AuditConfig) -> Iterator[Violation]:
    """Yield one violation per problem in the pod's topologySpreadConstraints."""
    for number, constraint in enumerate(pod_spec(obj).get("topologySpreadConstraints") or []):
        if not isinstance(constraint, Mapping):
            yield Violation(f"topologySpreadConstraints[{number}] is not an object")
            continue
        for problem in spread_constraint_problems(constraint):
            yield Violation(f"topologySpreadConstraints[{number}]: {problem}")


@rule(
    "RK-SCHED-001",
    title="No node affinity",
    category="reliability",
    severity="info",
    kinds=SERVICE_WORKLOAD_KINDS,
    optional=True,
    rationale="Without node affinity (or a nodeSelector) pods may land on any node pool, "
    "including spot or GPU pools meant for other work. Advice (off by default, as in "
    "kube-linter): most clusters have one general pool.",
    remediation="Add spec.affinity.nodeAffinity or a nodeSelector naming the node pool.",
    equivalent=("kube-linter:no-node-affinity",),
)
def node_affinity(obj: Mapping[str, Any], config: AuditConfig) -> Iterator[Violation]:
    """Yield a violation when the pod spec has neither nodeAffinity nor a nodeSelector."""
    spec = pod_spec(obj)
    if not (spec.get("affinity") or {}).get("nodeAffinity") and not spec.get("nodeSelector"):
        yield Violation("pod spec has no nodeAffinity and no nodeSelector")


@rule(
    "RK-SCHED-002",
    title="No priorityClassName",
    category="reliability",
    severity="info",
    kinds=tuple(k for k in WORKLOAD_KINDS if k != "DaemonSet"),
    optional=True,
    rationale="Under resource pressure the scheduler preempts pods of lower priority first; a "
    "pod without a priorityClassName has the cluster default (usually 0) and may be evicted "
    "for a batch job. Advice (off by default): clusters without priority classes gain "
    "nothing. DaemonSets are skipped, as Polaris skips them. kube-linter's "
    "priority-class-name instead checks a set name against an allow-list.",
    remediation="Set spec.priorityClassName to one of the cluster's PriorityClasses.",
    equivalent=("polaris:priorityClassNotSet",),
    divergent=("kube-linter:priority-class-name",),
)
def priority_class(obj: Mapping[str, Any], config: AuditConfig) -> Iterator[Violation]:
    """Yield a violation when the pod spec sets no priorityClassName."""
    if not pod_spec(obj).get("priorityClassName"):
        yield Violation("pod spec sets no priorityClassName")


@rule(
    "RK-AVAIL-012",
    title="Deployment strategy is Recreate",
    category="reliability",
    severity="info",
    kinds=("Deployment",),
    optional=True,
    rationale="A Recreate strategy stops every pod before starting the new ones, so each "
    "rollout is an outage. Advice (off by default): RK-AVAIL-003 already reports it on a "
    "Deployment behind a Service (kube-score's condition); this rule reports every "
    "Deployment, as kube-linter does.",
    remediation="Use strategy.type: RollingUpdate (Recreate only when two versions must never "
    "run at once).",
    equivalent=("kube-linter:no-rolling-update-strategy",),
)
def recreate_strategy(obj: Mapping[str, Any], config: AuditConfig) -> Iterator[Violation]:
    """Yield a violation when spec.strategy.type is set to anything but RollingUpdate."""
    kind = ((obj.get("spec") or {}).get("strategy") or {}).get("type") or "RollingUpdate"
    if kind != "RollingUpdate":
        yield Violation(f"strategy.type is {kind}")


@rule(
    "RK-DNS-001",
    title="DNS ndots not set",
    category="reliability",
    severity="info",
    kinds=SERVICE_WORKLOAD_KINDS,
    optional=True,
    rationale="With the cluster default ndots 5 every lookup of an external name with fewer "
    "than five dots first tries each search domain, multiplying DNS queries and adding "
    "latency. Advice (off by default, as in kube-linter's dnsconfig-options).",
    remediation="Add spec.dnsConfig.options: [{name: ndots, value: '2'}] (or query fully "
    "qualified names ending in a dot).",
    equivalent=("kube-linter:dnsconfig-options",),
)
def dns_ndots(obj: Mapping[str, Any], config: AuditConfig) -> Iterator[Violation]:
    """Yield a violation when a cluster-DNS pod sets no ndots option."""
    spec = pod_spec(obj)
    if spec.get("dnsPolicy", "ClusterFirst") not in ("ClusterFirst", "ClusterFirstWithHostNet"):
        return
    options = (spec.get("dnsConfig") or {}).get("options") or []
    if not any(isinstance(o, Mapping) and o.get("name") == "ndots" for o in options):
        yield Violation("dnsConfig sets no ndots option (the cluster default is 5)")
