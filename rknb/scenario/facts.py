"""The table of planted facts: what the scenario hid, when, how big, and who must find it.

Every number here is read from the model's own plan and simulation (or
measured on the raw series it produced), never typed a second time, so the
table cannot drift from the data. Tests compare what each notebook finds
with this table; analysis code never imports it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from rknb.errors import ScenarioError
from rknb.scenario import model
from rknb.scenario.model import (
    BUCKETS_S,
    SERVICE_DEPLOYMENT,
    SERVICE_NAMESPACE,
    PodLife,
    Simulation,
    other_workloads,
    template_hash,
)
from rknb.scenario.objects import CHANGE_CAUSE, IMAGES, node_allocatable
from rknb.tsdb import SeriesStore

__all__ = ["Fact", "build_facts", "find_fact"]


@dataclass(frozen=True)
class Fact:
    """One planted fact: an id, what it is, the notebook that must find it, when, how big."""

    id: str
    what: str
    notebook: str
    when: datetime | None
    value: float | str | None
    unit: str
    details: dict[str, Any] = field(default_factory=dict)


def find_fact(facts: list[Fact], fact_id: str) -> Fact:
    """Return the fact with this id, or say which ids exist."""
    for f in facts:
        if f.id == fact_id:
            return f
    known = ", ".join(f.id for f in facts)
    raise ScenarioError(f"the scenario has no fact {fact_id!r}; known facts: {known}")


def _time(t_s: float) -> datetime:
    return datetime.fromtimestamp(t_s, tz=UTC)


def _increments(values: np.ndarray) -> np.ndarray:
    """Return a counter's increase per sample, treating a drop as a reset to zero."""
    diff = np.diff(values, prepend=values[:1])
    return np.where(diff < 0, values, diff)


def _service_bucket_increments(sim: Simulation, store: SeriesStore) -> np.ndarray:
    """Return the increases of the service's cumulative buckets per interval, over pods, (n, 8)."""
    t_s = sim.t_s
    out = np.zeros((len(t_s), len(model.BUCKET_LABELS)))
    column = {le: i for i, le in enumerate(model.BUCKET_LABELS)}
    for s in store.series("mcp_request_duration_seconds_bucket"):
        labels = dict(s.labels)
        if labels["namespace"] != SERVICE_NAMESPACE:
            continue
        idx = np.searchsorted(t_s, s.t_s)
        inc = _increments(s.values)
        inc[0] = 0.0
        out[idx, column[labels["le"]]] += inc
    return out


def _series_total(store: SeriesStore, name: str, t_s: np.ndarray, **match: str) -> np.ndarray:
    out = np.zeros(len(t_s))
    for s in store.series(name):
        labels = dict(s.labels)
        if all(labels.get(k) == v for k, v in match.items()):
            inc = _increments(s.values)
            inc[0] = 0.0
            out[np.searchsorted(t_s, s.t_s)] += inc
    return out


def histogram_quantile(q: float, cumulative: np.ndarray) -> float:
    """Return the q-quantile of cumulative bucket counts, interpolating inside a bucket."""
    total = cumulative[-1]
    if total <= 0:
        return math.nan
    rank = q * total
    b = int(np.searchsorted(cumulative, rank, side="left"))
    if b >= len(BUCKETS_S):
        return BUCKETS_S[-1]
    lower = 0.0 if b == 0 else BUCKETS_S[b - 1]
    below = 0.0 if b == 0 else cumulative[b - 1]
    in_bucket = cumulative[b] - below
    return lower + (BUCKETS_S[b] - lower) * (rank - below) / in_bucket


def _p95_series(increments: np.ndarray, window: int) -> np.ndarray:
    """Return the p95 over a trailing window of scrape intervals, at each sample."""
    csum = np.cumsum(increments, axis=0)
    trailing = csum.copy()
    trailing[window:] -= csum[:-window]
    return np.array([histogram_quantile(0.95, row) for row in trailing])


def build_facts(sim: Simulation, store: SeriesStore, other_pods: list[PodLife]) -> list[Fact]:
    """Return the planted facts of a simulated scenario."""
    plan = sim.plan
    t_s = sim.t_s
    step = plan.step_s
    facts: list[Fact] = []
    add = facts.append

    # The bad release and its rollback.
    bad_rs = f"{SERVICE_DEPLOYMENT}-{template_hash(plan.seed, f'{SERVICE_DEPLOYMENT}/v1.1.0')}"
    good_rs = f"{SERVICE_DEPLOYMENT}-{template_hash(plan.seed, f'{SERVICE_DEPLOYMENT}/v1.0.0')}"
    first_ready = sim.first_ready_s["v1.1.0"]
    regression_start = first_ready + plan.regression_delay_s
    regression_end = sim.last_deleted_s["v1.1.0"]
    add(
        Fact(
            "rollout.release",
            "Release of v1.1.0 (revision 3) begins its rolling update",
            "rollback_drill",
            _time(plan.release_s),
            IMAGES["v1.1.0"],
            "image",
            {"replicaset": bad_rs, "revision": 3, "change_cause": CHANGE_CAUSE},
        )
    )
    add(
        Fact(
            "rollout.first_ready",
            "The first v1.1.0 pod becomes ready",
            "latency_analysis",
            _time(first_ready),
            None,
            "",
            {"replicaset": bad_rs},
        )
    )
    add(
        Fact(
            "regression.start",
            "Latency and errors regress on traffic served by v1.1.0 pods",
            "latency_analysis",
            _time(regression_start),
            float(plan.regression_delay_s),
            "s",
            {"delay_after_first_ready_s": plan.regression_delay_s},
        )
    )
    add(
        Fact(
            "regression.delay",
            "Delay from the first ready v1.1.0 pod to the regression",
            "latency_analysis",
            None,
            float(plan.regression_delay_s),
            "s",
            {},
        )
    )
    add(
        Fact(
            "rollout.rollback",
            "kubectl rollout undo back to the v1.0.0 template",
            "rollback_drill",
            _time(plan.rollback_s),
            4.0,
            "revision",
            {
                "replicaset": good_rs,
                "from_revision": 3,
                "to_revision": 4,
                "revision_history": "2",
                "minutes_after_release": (plan.rollback_s - plan.release_s) / 60,
            },
        )
    )
    add(
        Fact(
            "regression.end",
            "The last v1.1.0 pod is gone; the regression ends",
            "latency_analysis",
            _time(regression_end),
            None,
            "",
            {},
        )
    )
    add(
        Fact(
            "rollout.bad_revision",
            "The revision that regressed",
            "rollback_drill",
            None,
            3.0,
            "revision",
            {"replicaset": bad_rs, "image": IMAGES["v1.1.0"]},
        )
    )
    add(
        Fact(
            "rollout.live_revision",
            "The revision live after the rollback",
            "rollback_drill",
            None,
            4.0,
            "revision",
            {"replicaset": good_rs, "image": IMAGES["v1.0.0"]},
        )
    )

    # Latency and errors, measured on the raw histogram as histogram_quantile would.
    increments = _service_bucket_increments(sim, store)
    window = 300 // step
    p95 = _p95_series(increments, window)
    during = (t_s >= regression_start + 300) & (t_s <= regression_end)
    k_peak = int(np.flatnonzero(during)[np.argmax(p95[during])])
    before = (t_s > plan.release_s - model.DAY_S) & (t_s <= plan.release_s)
    baseline = histogram_quantile(0.95, increments[before].sum(axis=0))
    add(
        Fact(
            "latency.baseline_p95",
            "p95 over the 24 h before the release",
            "latency_analysis",
            None,
            round(baseline, 6),
            "s",
            {"window": "24h before rollout.release"},
        )
    )
    add(
        Fact(
            "regression.peak_p95",
            "Highest 5-minute p95 during the regression",
            "latency_analysis",
            _time(int(t_s[k_peak])),
            round(float(p95[k_peak]), 6),
            "s",
            {"window_s": 300, "latency_factor": plan.regression_latency_factor},
        )
    )
    errors = _series_total(store, "mcp_requests_total", t_s, status="error")
    success = _series_total(store, "mcp_requests_total", t_s, status="success")
    reg = (t_s > regression_start) & (t_s <= regression_end)
    observed = float(errors[reg].sum() / (errors[reg].sum() + success[reg].sum()))
    base = before
    baseline_ratio = float(errors[base].sum() / (errors[base].sum() + success[base].sum()))
    add(
        Fact(
            "regression.error_ratio",
            "Error ratio of traffic served by v1.1.0 pods",
            "latency_analysis",
            None,
            plan.regression_error_ratio,
            "ratio",
            {
                "observed_service_ratio": observed,
                "baseline_ratio": baseline_ratio,
                "model_baseline_ratio": plan.baseline_error_ratio,
            },
        )
    )

    total_errors, total_requests = float(errors.sum()), float(errors.sum() + success.sum())
    add(
        Fact(
            "slo.availability",
            "Share of the service's requests that succeeded over the 14 days",
            "latency_analysis",
            None,
            1.0 - total_errors / total_requests,
            "ratio",
            {"requests": total_requests, "errors": total_errors},
        )
    )

    # Memory: the leak, the OOM kill, the liveness restart.
    oom_pod, live_pod = _restarted(sim, "OOMKilled"), _restarted(sim, "Error")
    oom_at = next(at for at, r, _ in oom_pod.restarts if r == "OOMKilled")
    live_at = next(at for at, r, _ in live_pod.restarts if r == "Error")
    add(
        Fact(
            "memory.near_limit",
            "Service pods' working set plateaus near the memory limit",
            "capacity_planning",
            None,
            plan.memory_plateau_ratio,
            "ratio of limit",
            {
                "limit_bytes": model.MEMORY_LIMIT_BYTES,
                "plateau_bytes": plan.memory_plateau_ratio * model.MEMORY_LIMIT_BYTES,
            },
        )
    )
    add(
        Fact(
            "memory.oom_kill",
            "A service container is OOM-killed; its counters reset",
            "capacity_planning",
            _time(oom_at - 1),
            float(model.MEMORY_LIMIT_BYTES),
            "bytes",
            {
                "pod": oom_pod.name,
                "container": oom_pod.container,
                "restarted_at": _time(oom_at),
                "reason": "OOMKilled",
            },
        )
    )
    add(
        Fact(
            "restart.liveness",
            "A service container restarts after failing liveness",
            "latency_analysis",
            _time(live_at),
            1.0,
            "restarts",
            {"pod": live_pod.name, "container": live_pod.container, "reason": "Error"},
        )
    )

    # The HPA's scale events.
    ups = sum(1 for _, a, b in sim.scale_events if b > a)
    downs = sum(1 for _, a, b in sim.scale_events if b < a)
    add(
        Fact(
            "hpa.scale_events",
            "Scale events of the scenario's HPA over the window",
            "hpa_tuning",
            None,
            float(sim.hpa_desired.max()),
            "replicas",
            {
                "scale_ups": ups,
                "scale_downs": downs,
                "max_replicas": int(sim.hpa_desired.max()),
                "min_replicas": int(sim.hpa_desired.min()),
            },
        )
    )
    add(
        Fact(
            "traffic.peak_rps_end",
            "Weekday peak request rate at the end (before noise)",
            "capacity_planning",
            None,
            plan.peak_rps_end,
            "requests/s",
            {
                "growth_per_week": plan.growth_per_week,
                "weekend_ratio": plan.weekend_ratio,
                "trough_ratio": plan.trough_ratio,
            },
        )
    )

    # Over-provisioned workloads: p95 usage against the request.
    for w in other_workloads(plan):
        if w.deployment not in ("reasonkit-indexer", "reasonkit-cache"):
            continue
        pods = [p.name for p in other_pods if p.workload == w.deployment]
        cpu_p95, mem_p95 = _usage_p95(store, w.namespace, pods)
        add(
            Fact(
                f"capacity.overprovisioned.{w.deployment}",
                f"{w.deployment} uses a small part of its requests",
                "capacity_planning",
                None,
                cpu_p95 / w.requests["cpu"],
                "ratio of cpu request",
                {
                    "namespace": w.namespace,
                    "cpu_p95_cores": cpu_p95,
                    "cpu_request_cores": w.requests["cpu"],
                    "memory_p95_bytes": mem_p95,
                    "memory_request_bytes": w.requests["memory"],
                    "memory_ratio": mem_p95 / w.requests["memory"],
                },
            )
        )

    # Faults the audit must find, each with the rule it trips.
    faults = [
        ("legacy-report", "no-probes", "no liveness or readiness probe"),
        ("legacy-report", "image-latest-tag", "image tag :latest"),
        ("legacy-report", "runs-as-root", "securityContext.runAsUser 0"),
        ("legacy-report", "no-limits", "no resource limits"),
        ("legacy-report", "secret-in-env", "literal env DB_PASSWORD holds a secret"),
        ("debug-shell", "image-untagged", "image without a tag"),
        ("debug-shell", "privileged", "securityContext.privileged true"),
        ("debug-shell", "no-requests", "no resource requests"),
        ("orphan-service", "service-selects-nothing", "selector matches no pod template"),
    ]
    for workload, rule, what in faults:
        kind = "Service" if workload == "orphan-service" else "Deployment"
        add(
            Fact(
                f"audit.{workload}.{rule}",
                what,
                "deployment_audit",
                None,
                rule,
                "rule",
                {"kind": kind, "namespace": SERVICE_NAMESPACE, "name": workload},
            )
        )

    cores, memory = node_allocatable()
    add(
        Fact(
            "nodes.allocatable",
            "Total allocatable capacity of the 4 nodes",
            "capacity_planning",
            None,
            cores,
            "cores",
            {"memory_bytes": memory, "nodes": 4},
        )
    )
    add(
        Fact(
            "secret.api_key",
            "The API key in Secret reasonkit-secrets",
            "deployment_audit",
            None,
            plan.api_key,
            "secret",
            {"secret": "reasonkit-secrets", "key": "api-key"},
        )
    )
    add(
        Fact(
            "secret.db_password",
            "The literal DB_PASSWORD of legacy-report",
            "deployment_audit",
            None,
            plan.db_password,
            "secret",
            {"deployment": "legacy-report", "env": "DB_PASSWORD"},
        )
    )
    return facts  # fmt: skip


def _restarted(sim: Simulation, reason: str) -> PodLife:
    for p in sim.pods:
        if any(r == reason for _, r, _ in p.restarts):
            return p
    raise ScenarioError(f"no pod restarted with reason {reason!r} in seed {sim.plan.seed}")


def _usage_p95(store: SeriesStore, namespace: str, pods: list[str]) -> tuple[float, float]:
    """Return the p95 over time of per-pod CPU (cores, 5-minute rate) and working set (bytes)."""
    cpu: list[np.ndarray] = []
    for s in store.series("container_cpu_usage_seconds_total"):
        labels = dict(s.labels)
        if labels["namespace"] == namespace and labels["pod"] in pods:
            cpu.append((s.values[10:] - s.values[:-10]) / (s.t_s[10:] - s.t_s[:-10]))
    memory = [
        s.values
        for s in store.series("container_memory_working_set_bytes")
        if dict(s.labels)["namespace"] == namespace and dict(s.labels)["pod"] in pods
    ]
    return float(np.percentile(np.concatenate(cpu), 95)), float(
        np.percentile(np.concatenate(memory), 95)
    )
