"""The scenario's Kubernetes objects, as plain dicts shaped like the API's JSON.

The seed service's Deployment, Service, HPA and NetworkPolicy are its
operators' own manifests (``shared/seed/``), field for field; the scenario adds
what the API server and controllers would have written (uid,
creationTimestamp, generation, revision annotations, status) as they stand
at the scenario's end.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import uuid
from datetime import UTC, datetime
from typing import Any

from rknb.scenario import model
from rknb.scenario.model import (
    SERVICE_DEPLOYMENT,
    SERVICE_HPA,
    SERVICE_NAMESPACE,
    Plan,
    PodLife,
    Simulation,
    other_workloads,
    template_hash,
)

__all__ = [
    "CHANGE_CAUSE",
    "IMAGES",
    "build_objects",
    "seed_deployment",
    "seed_hpa",
    "seed_network_policy",
    "seed_service",
]

Obj = dict[str, Any]

IMAGE_REPO = "ghcr.io/reasonkit/reasonkit-pro"
IMAGES = {release: f"{IMAGE_REPO}:{release}" for release in model.RELEASES}
CHANGE_CAUSE = f"kubectl set image deployment/{SERVICE_DEPLOYMENT} mcp-server={IMAGES['v1.1.0']}"
SERVICE_LABELS = {"app": "reasonkit-pro"}


def seed_deployment() -> Obj:
    """Return the seed service's Deployment exactly as its operators wrote it."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": SERVICE_DEPLOYMENT,
            "namespace": SERVICE_NAMESPACE,
            "labels": {"app": "reasonkit-pro", "version": "v1.0.0"},
        },
        "spec": {
            "replicas": 3,
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
            },
            "selector": {"matchLabels": dict(SERVICE_LABELS)},
            "template": {
                "metadata": {
                    "labels": dict(SERVICE_LABELS),
                    "annotations": {"prometheus.io/scrape": "true", "prometheus.io/port": "8080"},
                },
                "spec": {
                    "containers": [
                        {
                            "name": model.SERVICE_CONTAINER,
                            "image": IMAGES["v1.0.0"],
                            "ports": [{"name": "http", "containerPort": 8080}],
                            "env": [
                                {"name": "RUST_LOG", "value": "info"},
                                {
                                    "name": "API_KEY",
                                    "valueFrom": {
                                        "secretKeyRef": {
                                            "name": "reasonkit-secrets",
                                            "key": "api-key",
                                        }
                                    },
                                },
                            ],
                            "resources": {
                                "requests": {"memory": "256Mi", "cpu": "250m"},
                                "limits": {"memory": "512Mi", "cpu": "500m"},
                            },
                            "livenessProbe": {
                                "httpGet": {"path": "/health", "port": 8080},
                                "initialDelaySeconds": 10,
                                "periodSeconds": 30,
                            },
                            "readinessProbe": {
                                "httpGet": {"path": "/ready", "port": 8080},
                                "initialDelaySeconds": 5,
                                "periodSeconds": 10,
                            },
                        }
                    ]
                },
            },
        },
    }


def seed_service() -> Obj:
    """Return the seed service's Service exactly as its operators wrote it."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "reasonkit-pro-service", "namespace": SERVICE_NAMESPACE},
        "spec": {
            "selector": dict(SERVICE_LABELS),
            "ports": [{"protocol": "TCP", "port": 80, "targetPort": 8080}],
            "type": "ClusterIP",
        },
    }


def seed_hpa() -> Obj:
    """Return the seed service's HorizontalPodAutoscaler exactly as its operators wrote it."""
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": SERVICE_HPA, "namespace": SERVICE_NAMESPACE},
        "spec": {
            "scaleTargetRef": {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "name": SERVICE_DEPLOYMENT,
            },
            "minReplicas": model.HPA_MIN_REPLICAS,
            "maxReplicas": model.HPA_MAX_REPLICAS,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": 70},
                    },
                }
            ],
        },
    }


def seed_network_policy() -> Obj:
    """Return the seed service's NetworkPolicy as written (the scenario adds its namespace)."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "reasonkit-pro-network-policy"},
        "spec": {
            "podSelector": {"matchLabels": dict(SERVICE_LABELS)},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [
                {
                    "from": [{"podSelector": {"matchLabels": {"role": "frontend"}}}],
                    "ports": [{"protocol": "TCP", "port": 8080}],
                }
            ],
            "egress": [
                {
                    "to": [{"podSelector": {"matchLabels": {"role": "database"}}}],
                    "ports": [{"protocol": "TCP", "port": 5432}],
                }
            ],
        },
    }


def seed_alert_groups() -> list[Obj]:
    """Return the seed service's alerting rule groups as written."""
    return [
        {
            "name": "reasonkit_alerts",
            "rules": [
                {
                    "alert": "HighErrorRate",
                    "expr": 'rate(mcp_requests_total{status="error"}[5m]) > 0.01',
                    "for": "5m",
                    "labels": {"severity": "critical"},
                    "annotations": {"summary": "High error rate detected"},
                },
                {
                    "alert": "HighLatency",
                    "expr": "histogram_quantile(0.95, mcp_request_duration_seconds) > 0.5",
                    "for": "5m",
                    "labels": {"severity": "warning"},
                    "annotations": {"summary": "p95 latency > 500ms"},
                },
            ],
        }
    ]


# ----------------------------------------------------------------------------- helpers


def rfc3339(t_s: float) -> str:
    """Return a Unix time as the API's RFC 3339 timestamp (whole seconds, ``Z``)."""
    return datetime.fromtimestamp(int(t_s), tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def object_uid(seed: int, kind: str, namespace: str, name: str) -> str:
    """Return a uid that is stable for a seed and an object."""
    digest = hashlib.sha256(f"rknb-scenario/{seed}/{kind}/{namespace}/{name}".encode()).digest()
    return str(uuid.UUID(bytes=digest[:16], version=4))


def _meta(seed: int, kind: str, name: str, namespace: str | None, created_s: float) -> Obj:
    meta: Obj = {"name": name}
    if namespace is not None:
        meta["namespace"] = namespace
    meta["uid"] = object_uid(seed, kind, namespace or "", name)
    meta["creationTimestamp"] = rfc3339(created_s)
    return meta


def _owner(kind: str, name: str, uid: str) -> list[Obj]:
    api = "apps/v1"
    return [
        {
            "apiVersion": api,
            "kind": kind,
            "name": name,
            "uid": uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]


def _ip(seed: int, prefix: str, key: str) -> str:
    digest = hashlib.sha256(f"{seed}/{key}".encode()).digest()
    return f"{prefix}.{digest[0] % 250 + 2}.{digest[1] % 250 + 2}"


# ----------------------------------------------------------------------------- nodes

NODE_SHAPES = (
    # name, instance type, zone, cpu cores, memory GiB, allocatable cpu millicores, memory MiB
    ("node-a1", "m5.xlarge", "eu-west-1a", 4, 16, 3920, 15_150),
    ("node-b1", "m5.xlarge", "eu-west-1b", 4, 16, 3920, 15_150),
    ("node-c1", "m5.xlarge", "eu-west-1c", 4, 16, 3920, 15_150),
    ("node-a2", "m5.2xlarge", "eu-west-1a", 8, 32, 7910, 31_100),
)


def _nodes(plan: Plan) -> list[Obj]:
    nodes = []
    for name, instance, zone, cores, gib, alloc_m, alloc_mib in NODE_SHAPES:
        meta = _meta(plan.seed, "Node", name, None, plan.deployment_created_s - 7 * model.DAY_S)
        meta["labels"] = {
            "kubernetes.io/hostname": name,
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64",
            "node.kubernetes.io/instance-type": instance,
            "topology.kubernetes.io/zone": zone,
        }
        nodes.append(
            {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": meta,
                "spec": {},
                "status": {
                    "capacity": {"cpu": str(cores), "memory": f"{gib}Gi", "pods": "110"},
                    "allocatable": {
                        "cpu": f"{alloc_m}m",
                        "memory": f"{alloc_mib}Mi",
                        "pods": "110",
                    },
                    "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
                    "addresses": [
                        {"type": "InternalIP", "address": _ip(plan.seed, "10.0", name)},
                        {"type": "Hostname", "address": name},
                    ],
                },
            }
        )
    return nodes


def node_allocatable() -> tuple[float, float]:
    """Return the nodes' total allocatable CPU (cores) and memory (bytes)."""
    cores = sum(s[5] for s in NODE_SHAPES) / 1000
    memory = sum(s[6] for s in NODE_SHAPES) * model.MIB
    return cores, float(memory)


# ----------------------------------------------------------------------------- workloads


def _service_template(release: str) -> Obj:
    template = copy.deepcopy(seed_deployment()["spec"]["template"])
    template["spec"]["containers"][0]["image"] = IMAGES[release]
    return template


def _other_templates(plan: Plan) -> dict[str, tuple[Obj, Obj]]:
    """Return (Deployment spec without replicas, extra metadata) of the other workloads."""

    def container(name: str, image: str, resources: Obj, **extra: Any) -> Obj:
        out: Obj = {"name": name, "image": image}
        out.update(extra)
        out["resources"] = resources
        return out

    def quantity(resources: dict[str, float]) -> Obj:
        out: Obj = {}
        if "cpu" in resources:
            out["cpu"] = f"{round(resources['cpu'] * 1000)}m"
        if "memory" in resources:
            out["memory"] = f"{round(resources['memory'] / model.MIB)}Mi"
        return out

    workloads = {w.deployment: w for w in other_workloads(plan)}

    def resources(name: str) -> Obj:
        w = workloads[name]
        out: Obj = {}
        if w.requests:
            out["requests"] = quantity(w.requests)
        if w.limits:
            out["limits"] = quantity(w.limits)
        return out

    probe = {"httpGet": {"path": "/healthz", "port": 8081}, "periodSeconds": 10}
    non_root = {"runAsNonRoot": True, "allowPrivilegeEscalation": False}
    indexer = container(
        "indexer", "ghcr.io/reasonkit/reasonkit-indexer:v2.3.1", resources("reasonkit-indexer"),
        ports=[{"name": "http", "containerPort": 8081}],
        livenessProbe=probe, readinessProbe=probe, securityContext=non_root,
    )  # fmt: skip
    cache = container(
        "cache", "docker.io/library/redis:7.2.4", resources("reasonkit-cache"),
        ports=[{"name": "redis", "containerPort": 6379}],
        livenessProbe={"tcpSocket": {"port": 6379}, "periodSeconds": 10},
        readinessProbe={"tcpSocket": {"port": 6379}, "periodSeconds": 10},
        securityContext=non_root,
    )  # fmt: skip
    legacy = container(
        "report", "ghcr.io/reasonkit/legacy-report:latest", resources("legacy-report"),
        env=[
            {"name": "REPORT_SCHEDULE", "value": "daily"},
            {"name": "DB_PASSWORD", "value": plan.db_password},
        ],
        securityContext={"runAsUser": 0},
    )  # fmt: skip
    debug = container(
        "shell", "busybox", resources("debug-shell"),
        command=["sleep", "infinity"], securityContext={"privileged": True},
    )  # fmt: skip
    return {
        "reasonkit-indexer": ({"app": "reasonkit-indexer"}, indexer),
        "reasonkit-cache": ({"app": "reasonkit-cache"}, cache),
        "legacy-report": ({"app": "legacy-report"}, legacy),
        "debug-shell": ({"app": "debug-shell"}, debug),
    }


def _pod_object(
    plan: Plan,
    pod: PodLife,
    template: Obj,
    rs_name: str,
    rs_uid: str,
    node: str,
    image: str,
) -> Obj:
    meta = _meta(plan.seed, "Pod", pod.name, pod.namespace, pod.created_s)
    meta["labels"] = {**template["metadata"]["labels"], "pod-template-hash": pod.template_hash}
    if template["metadata"].get("annotations"):
        meta["annotations"] = dict(template["metadata"]["annotations"])
    meta["ownerReferences"] = _owner("ReplicaSet", rs_name, rs_uid)
    spec = copy.deepcopy(template["spec"])
    spec["nodeName"] = node
    started = pod.restarts[-1][0] if pod.restarts else pod.created_s + 2
    container_status: Obj = {
        "name": pod.container,
        "image": image,
        "ready": True,
        "started": True,
        "restartCount": len(pod.restarts),
        "state": {"running": {"startedAt": rfc3339(started)}},
    }
    if pod.restarts:
        at, reason, _ = pod.restarts[-1]
        previous = pod.restarts[-2][0] if len(pod.restarts) > 1 else pod.created_s + 2
        container_status["lastState"] = {
            "terminated": {
                "reason": reason,
                "exitCode": 137,
                "startedAt": rfc3339(previous),
                "finishedAt": rfc3339(at - 1),
            }
        }
    last_ready = max([pod.ready_s] + [back for _, _, back in pod.restarts])
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": spec,
        "status": {
            "phase": "Running",
            "conditions": [
                {
                    "type": "Initialized",
                    "status": "True",
                    "lastTransitionTime": rfc3339(pod.created_s),
                },
                {"type": "Ready", "status": "True", "lastTransitionTime": rfc3339(last_ready)},
                {
                    "type": "ContainersReady",
                    "status": "True",
                    "lastTransitionTime": rfc3339(last_ready),
                },
                {
                    "type": "PodScheduled",
                    "status": "True",
                    "lastTransitionTime": rfc3339(pod.created_s),
                },
            ],
            "hostIP": _ip(plan.seed, "10.0", node),
            "podIP": _ip(plan.seed, "10.244", pod.name),
            "startTime": rfc3339(pod.created_s),
            "containerStatuses": [container_status],
            "qosClass": _qos(spec),
        },
    }


def _qos(spec: Obj) -> str:
    resources = [c.get("resources", {}) for c in spec["containers"]]
    if not any(r.get("requests") or r.get("limits") for r in resources):
        return "BestEffort"
    if all(
        r.get("limits") and r.get("requests", r.get("limits")) == r.get("limits") for r in resources
    ):
        return "Guaranteed"
    return "Burstable"


def build_objects(sim: Simulation, other_pods: list[PodLife]) -> list[Obj]:
    """Return every object of the scenario as it stands at the end, in a stable order."""
    plan = sim.plan
    seed = plan.seed
    end = plan.end_s
    node_names = [s[0] for s in NODE_SHAPES]
    objects: list[Obj] = []

    for ns in (SERVICE_NAMESPACE, "reasonkit-data"):
        meta = _meta(seed, "Namespace", ns, None, plan.deployment_created_s - model.DAY_S)
        meta["labels"] = {"kubernetes.io/metadata.name": ns}
        namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": meta}
        namespace.update({"spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}})
        objects.append(namespace)
    objects.extend(_nodes(plan))

    secret_meta = _meta(
        seed, "Secret", "reasonkit-secrets", SERVICE_NAMESPACE, plan.deployment_created_s
    )
    objects.append(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": secret_meta,
            "type": "Opaque",
            "data": {"api-key": base64.b64encode(plan.api_key.encode()).decode("ascii")},
        }
    )

    # The service: Deployment at revision 4 (the v1.0.0 template, renumbered by the undo).
    alive = [p for p in sim.pods if p.deleted_s is None]
    replicas = int(sim.hpa_desired[-1])
    deployment = seed_deployment()
    deployment["metadata"] = {
        **_meta(
            seed, "Deployment", SERVICE_DEPLOYMENT, SERVICE_NAMESPACE, plan.deployment_created_s
        ),
        "labels": deployment["metadata"]["labels"],
        "annotations": {"deployment.kubernetes.io/revision": "4"},
    }
    # The spec changed at each template change (v0.9.0, v1.0.0, v1.1.0, undo) and scale.
    generation = 4 + len(sim.scale_events)
    deployment["metadata"]["generation"] = generation
    deployment["spec"]["replicas"] = replicas
    deployment_uid = deployment["metadata"]["uid"]
    deployment["status"] = {
        "observedGeneration": generation,
        "replicas": len(alive),
        "updatedReplicas": sum(p.release == "v1.0.0" for p in alive),
        "readyReplicas": sum(p.is_ready(end) for p in alive),
        "availableReplicas": sum(p.is_ready(end) for p in alive),
        "conditions": [
            {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
            {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"},
        ],
    }
    objects.append(deployment)

    replicasets: list[Obj] = []
    rs_names: dict[str, tuple[str, str]] = {}
    revisions = {"v0.9.0": ("1", None), "v1.1.0": ("3", None), "v1.0.0": ("4", "2")}
    for release in model.RELEASES:
        pod_hash = template_hash(seed, f"{SERVICE_DEPLOYMENT}/{release}")
        name = f"{SERVICE_DEPLOYMENT}-{pod_hash}"
        meta = _meta(seed, "ReplicaSet", name, SERVICE_NAMESPACE, sim.rs_created_s[release])
        meta["labels"] = {**SERVICE_LABELS, "pod-template-hash": pod_hash}
        revision, history = revisions[release]
        annotations = {
            "deployment.kubernetes.io/desired-replicas": str(replicas),
            "deployment.kubernetes.io/max-replicas": str(replicas + model.MAX_SURGE),
            "deployment.kubernetes.io/revision": revision,
        }
        if history is not None:
            annotations["deployment.kubernetes.io/revision-history"] = history
        if release == "v1.1.0":
            annotations["kubernetes.io/change-cause"] = CHANGE_CAUSE
        meta["annotations"] = annotations
        meta["ownerReferences"] = _owner("Deployment", SERVICE_DEPLOYMENT, deployment_uid)
        template = _service_template(release)
        template["metadata"]["labels"]["pod-template-hash"] = pod_hash
        rs_pods = [p for p in alive if p.release == release]
        rs_replicas = len(rs_pods)
        status: Obj = {
            "replicas": rs_replicas,
            "observedGeneration": 2 if release != "v1.0.0" else 4,
        }
        ready = sum(p.is_ready(end) for p in rs_pods)
        if ready:
            status.update({"fullyLabeledReplicas": rs_replicas, "readyReplicas": ready,
                           "availableReplicas": ready})  # fmt: skip
        replicasets.append(
            {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "metadata": meta,
                "spec": {
                    "replicas": rs_replicas,
                    "selector": {"matchLabels": {**SERVICE_LABELS, "pod-template-hash": pod_hash}},
                    "template": template,
                },
                "status": status,
            }
        )
        rs_names[release] = (name, meta["uid"])

    # The other workloads: one revision each, pods running through the window.
    templates = _other_templates(plan)
    other_deployments: list[Obj] = []
    other_pod_objects: list[Obj] = []
    for w in other_workloads(plan):
        labels, container = templates[w.deployment]
        created = min(p.created_s for p in other_pods if p.workload == w.deployment)
        meta = _meta(seed, "Deployment", w.deployment, w.namespace, created - 3600)
        meta["labels"] = dict(labels)
        meta["annotations"] = {"deployment.kubernetes.io/revision": "1"}
        meta["generation"] = 1
        template = {"metadata": {"labels": dict(labels)}, "spec": {"containers": [container]}}
        other_deployments.append(
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": meta,
                "spec": {
                    "replicas": w.replicas,
                    "strategy": {
                        "type": "RollingUpdate",
                        "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
                    },
                    "selector": {"matchLabels": dict(labels)},
                    "template": template,
                },
                "status": {
                    "observedGeneration": 1,
                    "replicas": w.replicas,
                    "updatedReplicas": w.replicas,
                    "readyReplicas": w.replicas,
                    "availableReplicas": w.replicas,
                },
            }
        )
        pod_hash = template_hash(seed, f"{w.deployment}/1")
        rs_name = f"{w.deployment}-{pod_hash}"
        rs_meta = _meta(seed, "ReplicaSet", rs_name, w.namespace, created)
        rs_meta["labels"] = {**labels, "pod-template-hash": pod_hash}
        rs_meta["annotations"] = {
            "deployment.kubernetes.io/desired-replicas": str(w.replicas),
            "deployment.kubernetes.io/revision": "1",
        }
        rs_meta["ownerReferences"] = _owner("Deployment", w.deployment, meta["uid"])
        rs_template = copy.deepcopy(template)
        rs_template["metadata"]["labels"]["pod-template-hash"] = pod_hash
        replicasets.append(
            {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "metadata": rs_meta,
                "spec": {
                    "replicas": w.replicas,
                    "selector": {"matchLabels": {**labels, "pod-template-hash": pod_hash}},
                    "template": rs_template,
                },
                "status": {
                    "replicas": w.replicas,
                    "fullyLabeledReplicas": w.replicas,
                    "readyReplicas": w.replicas,
                    "availableReplicas": w.replicas,
                    "observedGeneration": 1,
                },
            }
        )
        for pod in other_pods:
            if pod.workload == w.deployment:
                node = node_names[len(other_pod_objects) % len(node_names)]
                other_pod_objects.append(
                    _pod_object(
                        plan, pod, rs_template, rs_name, rs_meta["uid"], node, container["image"]
                    )
                )

    service_pod_objects = []
    for i, pod in enumerate(sorted(alive, key=lambda p: p.created_s)):
        rs_name, rs_uid = rs_names[pod.release]
        template = _service_template(pod.release)
        node = node_names[i % len(node_names)]
        service_pod_objects.append(
            _pod_object(plan, pod, template, rs_name, rs_uid, node, IMAGES[pod.release])
        )

    objects.extend(other_deployments)
    objects.extend(replicasets)
    objects.extend(service_pod_objects)
    objects.extend(other_pod_objects)

    # Services: the seed's, and one whose selector matches no pod template.
    service = seed_service()
    service["metadata"] = {
        **_meta(
            seed, "Service", "reasonkit-pro-service", SERVICE_NAMESPACE, plan.deployment_created_s
        ),
    }
    objects.append(service)
    orphan_meta = _meta(seed, "Service", "orphan-service", SERVICE_NAMESPACE, plan.rev1_created_s)
    objects.append(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": orphan_meta,
            "spec": {
                "selector": {"app": "reasonkit-reports-v0"},
                "ports": [{"protocol": "TCP", "port": 80, "targetPort": 8080}],
                "type": "ClusterIP",
            },
        }
    )

    hpa = seed_hpa()
    hpa["metadata"] = _meta(seed, "HorizontalPodAutoscaler", SERVICE_HPA, SERVICE_NAMESPACE,
                            plan.deployment_created_s)  # fmt: skip
    last_scale = sim.scale_events[-1][0] if sim.scale_events else plan.start_s
    hpa["status"] = {
        "currentReplicas": len(alive),
        "desiredReplicas": replicas,
        "lastScaleTime": rfc3339(last_scale),
        "conditions": [
            {"type": "AbleToScale", "status": "True", "reason": "ReadyForNewScale"},
            {"type": "ScalingActive", "status": "True", "reason": "ValidMetricFound"},
        ],
    }
    objects.append(hpa)

    pdb_meta = _meta(seed, "PodDisruptionBudget", "reasonkit-pro-pdb", SERVICE_NAMESPACE,
                     plan.deployment_created_s)  # fmt: skip
    ready_now = sum(p.is_ready(end) for p in alive)
    objects.append(
        {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": pdb_meta,
            "spec": {"minAvailable": 2, "selector": {"matchLabels": dict(SERVICE_LABELS)}},
            "status": {
                "currentHealthy": ready_now,
                "desiredHealthy": 2,
                "disruptionsAllowed": max(0, ready_now - 2),
                "expectedPods": len(alive),
                "observedGeneration": 1,
            },
        }
    )

    policy = seed_network_policy()
    policy["metadata"] = {
        **_meta(seed, "NetworkPolicy", "reasonkit-pro-network-policy", SERVICE_NAMESPACE,
                plan.deployment_created_s),
    }  # fmt: skip
    objects.append(policy)

    rule_meta = _meta(seed, "PrometheusRule", "reasonkit-alerts", SERVICE_NAMESPACE,
                      plan.deployment_created_s)  # fmt: skip
    objects.append(
        {
            "apiVersion": "monitoring.coreos.com/v1",
            "kind": "PrometheusRule",
            "metadata": rule_meta,
            "spec": {"groups": seed_alert_groups()},
        }
    )
    return objects
