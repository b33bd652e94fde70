"""Per-workload rules beyond the container basics: images, resources, probes, Jobs, metadata."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping
from typing import Any

from rknb.audit.model import AuditConfig, ObjectIndex, Violation, object_namespace, selector_matches
from rknb.audit.objects import (
    SERVICE_WORKLOAD_KINDS,
    WORKLOAD_KINDS,
    containers,
    hpa_for,
    int_field,
    name_of,
    pod_labels,
    pod_spec,
)
from rknb.audit.registry import rule
from rknb.audit.rules.containers import image_tag

__all__ = ["DEPRECATED_API_VERSIONS", "effective_pull_policy", "probe_ports"]

#: apiVersions removed from Kubernetes, by kind, with the version to use instead.
DEPRECATED_API_VERSIONS: dict[tuple[str, str], str] = {
    ("extensions/v1beta1", "Deployment"): "apps/v1",
    ("extensions/v1beta1", "DaemonSet"): "apps/v1",
    ("extensions/v1beta1", "ReplicaSet"): "apps/v1",
    ("extensions/v1beta1", "Ingress"): "networking.k8s.io/v1",
    ("extensions/v1beta1", "NetworkPolicy"): "networking.k8s.io/v1",
    ("apps/v1beta1", "Deployment"): "apps/v1",
    ("apps/v1beta1", "StatefulSet"): "apps/v1",
    ("apps/v1beta2", "Deployment"): "apps/v1",
    ("apps/v1beta2", "StatefulSet"): "apps/v1",
    ("apps/v1beta2", "DaemonSet"): "apps/v1",
    ("apps/v1beta2", "ReplicaSet"): "apps/v1",
    ("networking.k8s.io/v1beta1", "Ingress"): "networking.k8s.io/v1",
    ("batch/v1beta1", "CronJob"): "batch/v1",
    ("policy/v1beta1", "PodDisruptionBudget"): "policy/v1",
    ("autoscaling/v2beta1", "HorizontalPodAutoscaler"): "autoscaling/v2",
    ("autoscaling/v2beta2", "HorizontalPodAutoscaler"): "autoscaling/v2",
}

_NAMESPACED_AUDITED = (*WORKLOAD_KINDS, "Service", "Ingress", "ServiceAccount")


def _name(container: Mapping[str, Any]) -> str:
    return str(container.get("name", ""))


def effective_pull_policy(container: Mapping[str, Any]) -> str:
    """Return the imagePullPolicy the API server defaults to: Always for ``latest`` or no tag."""
    given = container.get("imagePullPolicy")
    if given:
        return str(given)
    if not container.get("image"):
        return "unset (no image to default from)"
    tag, digest = image_tag(str(container.get("image") or ""))
    return "Always" if digest is None and tag in (None, "latest") else "IfNotPresent"


@rule(
    "RK-IMG-002",
    title="imagePullPolicy is not Always",
    category="reliability",
    severity="low",
    kinds=WORKLOAD_KINDS,
    rationale="With IfNotPresent or Never a node keeps running whatever image it cached under a "
    "tag, so two pods of one Deployment can run different code. An unset policy defaults to "
    "Always for a `latest` or missing tag; a digest-pinned image cannot change, so it passes "
    "(Checkov's reading; Polaris fails any policy other than Always, polaris#1058).",
    remediation="Set imagePullPolicy: Always, or pin the image by digest.",
    equivalent=("kube-score:container-image-pull-policy", "checkov:CKV_K8S_15"),
    divergent=("polaris:pullPolicyNotAlways",),
)
def pull_policy(obj: Mapping[str, Any], config: AuditConfig) -> Iterator[Violation]:
    """Yield containers with a tag-only image whose effective pull policy is not Always."""
    for c in containers(obj, init=True):
        _, digest = image_tag(str(c.get("image") or ""))
        policy = effective_pull_policy(c)
        if digest is None and policy != "Always":
            yield Violation(f"container {_name(c)!r} imagePullPolicy is {policy}", _name(c))


@rule(
    "RK-IMG-003",
    title="Image not pinned by digest",
    category="security",
    severity="info",
    kinds=WORKLOAD_KINDS,
    optional=True,
    rationale="A tag can be moved to another image; only an @sha256 digest names one image "
    "for ever. Advice (off by default): almost every real manifest fails it.",
    remediation="Reference images as repository@sha256:<digest> (tools such as crane or "
    "kustomize images can resolve tags to digests).",
    equivalent=("checkov:CKV_K8S_43",),
)
def image_digest(obj: Mapping[str, Any], config: AuditConfig) -> Iterator[Violation]:
    """Yield containers whose image has no digest."""
    for c in containers(obj, init=True):
        image = str(c.get("image") or "")
        if image_tag(image)[1] is None:
            yield Violation(f"container {_name(c)!r} image {image!r} has no digest", _name(c))


@rule(
    "RK-RES-004",
    title="CPU limit missing",
    category="efficiency",
    severity="low",
    kinds=WORKLOAD_KINDS,
    rationale="Without a CPU limit one container can take every idle core of its node. Many "
    "SREs run without CPU limits on purpose (throttling hurts latency): disable this rule with "
    "`disabled: [RK-RES-004]` if you do.",
    remediation="Set resources.limits.cpu, or disable RK-RES-004 for your run.",
    equivalent=(
        "polaris:cpuLimitsMissing",
        "checkov:CKV_K8S_11",
        "kubesec:LimitsCPU",
        "kube-score:container-resources",
    ),
)
def cpu_limit(obj: Mapping[str, Any], config: AuditConfig) -> Iterator[Violation]:
    """Yield containers without a CPU limit."""
    for c in containers(obj, init=True):
        if not ((c.get("resources") or {}).get("limits") or {}).get("cpu"):
            yield Violation(f"container {_name(c)!r} sets no cpu limit", _name(c))


@rule(
    "RK-RES-005",
    title="Requests differ from limits",
    category="reliability",
    severity="info",
    kinds=WORKLOAD_KINDS,
    optional=True,
    rationale="Only a pod whose requests equal its limits for CPU and memory gets the "
    "Guaranteed QoS class and is evicted last. Advice (off by default).",
    remediation="Set resources.requests equal to resources.limits for cpu and memory.",
    equivalent=(
        "kube-score:container-resource-requests-equal-limits",
        "kube-score:container-cpu-requests-equal-limits",
        "kube-score:container-memory-requests-equal-limits",
    ),
)
def guaranteed_qos(obj: Mapping[str, Any], config: AuditConfig) -> Iterator[Violation]:
    """Yield containers whose cpu or memory request is unset or differs from the limit."""
    for c in containers(obj, init=True):
        resources = c.get("resources") or {}
        requests, limits = resources.get("requests") or {}, resources.get("limits") or {}
        for resource in ("cpu", "memory"):
            # The API server copies a limit into an unset request.
            request = requests.get(resource, limits.get(resource))
            if limits.get(resource) is None or str(request) != str(limits[resource]):
                yield Violation(
                    f"container {_name(c)!r} {resource} request {request!r} is not its limit "
                    f"{limits.get(resource)!r}",
                    _name(c),
                )


@rule(
    "RK-RES-006",
    title="Ephemeral storage limit missing",
    category="reliability",
    severity="low",
    kinds=WORKLOAD_KINDS,
    optional=True,
    rationale="A container writing logs or scratch files without an ephemeral-storage limit can "
    "fill the node's disk and get every pod on it evicted. Advice (off by default).",
    remediation="Set resources.requests and limits for ephemeral-storage.",
    equivalent=("kube-score:container-ephemeral-storage-request-and-limit",),
)
def ephemeral_storage(obj: Mapping[str, Any], config: AuditConfig) -> Iterator[Violation]:
    """Yield containers without an ephemeral-storage request and limit."""
    for c in containers(obj, init=True):
        resources = c.get("resources") or {}
        for section in ("requests", "limits"):
            if not (resources.get(section) or {}).get("ephemeral-storage"):
                yield Violation(
                    f"container {_name(c)!r} sets no ephemeral-storage {section[:-1]}", _name(c)
                )


def _probe_key(probe: Mapping[str, Any]) -> tuple[Any, ...]:
    for handler in ("httpGet", "tcpSocket", "exec", "grpc"):
        if handler in probe:
            return handler, repr(probe[handler])
    return ("none",)


@rule(
    "RK-PROBE-003",
    title="Readiness and liveness probes identical",
    category="reliability",
    severity="medium",
    kinds=SERVICE_WORKLOAD_KINDS,
    rationale="When both probes check the same thing, a slow dependency first takes the pod "
    "out of the Service and then restarts it, which turns an overload into a crash loop.",
    remediation="Make the liveness probe cheaper (process alive) than the readiness probe "
    "(ready to serve), or give it a higher failureThreshold.",
    equivalent=("kube-score:pod-probes-identical",),
)
def identical_probes(obj: Mapping[str, Any], config: AuditConfig) -> Iterator[Violation]:
    """Yield containers whose readiness and liveness probes use the same handler and target."""
    for c in containers(obj):
        ready, live = c.get("readinessProbe"), c.get("livenessProbe")
        if ready and live and _probe_key(ready) == _probe_key(live):
            yield Violation(
                f"container {_name(c)!r} readiness and liveness probes both use "
                f"{_probe_key(ready)[0]} {_probe_key(ready)[1]}",
                _name(c),
            )


def probe_ports(probe: Mapping[str, Any]) -> list[Any]:
    """Return the ports a probe connects to (numbers or names)."""
    ports = []
    for handler in ("httpGet", "tcpSocket", "grpc"):
        port = (probe.get(handler) or {}).get("port")
        if port is not None:
            ports.append(port)
    return ports


@rule(
    "RK-PROBE-004",
    title="Probe names a port the container does not expose",
    category="reliability",
    severity="high",
    kinds=WORKLOAD_KINDS,
    rationale="A probe on a named port the container does not declare can never succeed, and "
    "a numbered port missing from a container's ports list is usually a typo (containers "
    "that declare no ports are not checked for numbers).",
    remediation="Point the probe at a containerPort (number or name) the container declares.",
    equivalent=(
        "kube-linter:liveness-port",
        "kube-linter:readiness-port",
        "kube-linter:startup-port",
    ),
)
def probe_port(obj: Mapping[str, Any], config: AuditConfig) -> Iterator[Violation]:
    """Yield probes whose port is not among the container's declared ports."""
    for c in containers(obj):
        declared = c.get("ports") or []
        names = {p.get("name") for p in declared if p.get("name")}
        numbers = {p.get("containerPort") for p in declared}
        for kind in ("livenessProbe", "readinessProbe", "startupProbe"):
            for port in probe_ports(c.get(kind) or {}):
                if isinstance(port, str) and not port.isdigit():
                    ok = port in names
                else:
                    # Declaring ports is optional; a number is checked only against a list.
                    ok = not declared or int_field(port, -1) in numbers
                if not ok:
                    yield Violation(
                        f"container {_name(c)!r} {kind} port {port!r} is not declared in ports",
                        _name(c),
                    )


@rule(
    "RK-JOB-001",
    title="Job without ttlSecondsAfterFinished",
    category="efficiency",
    severity="low",
    kinds=("Job", "CronJob"),
    rationale="Finished Jobs and their pods stay in the API until someone deletes them. A Job a "
    "CronJob creates is cleaned up by the CronJob's history limits, so there the field is "
    "redundant (kube-linter's reading).",
    remediation="Set spec.ttlSecondsAfterFinished on a standalone Job; on a CronJob use "
    "successfulJobsHistoryLimit and remove ttlSecondsAfterFinished from the jobTemplate.",
    equivalent=("kube-linter:job-ttl-seconds-after-finished",),
)
def job_ttl(obj: Mapping[str, Any], config: AuditConfig) -> Iterator[Violation]:
    """Yield standalone Jobs without the TTL, and CronJobs whose jobTemplate sets one."""
    spec = obj.get("spec") or {}
    if obj.get("kind") == "Job":
        owned = any(
            r.get("kind") == "CronJob" for r in obj["metadata"].get("ownerReferences") or []
        )
        if not owned and spec.get("ttlSecondsAfterFinished") is None:
            yield Violation("standalone Job sets no ttlSecondsAfterFinished")
    else:
        job = (spec.get("jobTemplate") or {}).get("spec") or {}
        if job.get("ttlSecondsAfterFinished") is not None:
            yield Violation(
                "jobTemplate sets ttlSecondsAfterFinished; the CronJob's history limits "
                "already clean up its Jobs"
            )


@rule(
    "RK-JOB-002",
    title="CronJob without startingDeadlineSeconds",
    category="reliability",
    severity="medium",
    kinds=("CronJob",),
    rationale="Without a deadline a CronJob that missed more than 100 schedules (controller "
    "down, clock skew) stops being scheduled at all.",
    remediation="Set spec.startingDeadlineSeconds (for example the schedule's period).",
    equivalent=("kube-score:cronjob-has-deadline",),
)
def cronjob_deadline(obj: Mapping[str, Any], config: AuditConfig) -> Iterator[Violation]:
    """Yield a violation when a CronJob sets no startingDeadlineSeconds."""
    if (obj.get("spec") or {}).get("startingDeadlineSeconds") is None:
        yield Violation("spec.startingDeadlineSeconds is not set")


@rule(
    "RK-JOB-003",
    title="CronJob restartPolicy invalid",
    category="reliability",
    severity="high",
    kinds=("CronJob",),
    rationale="A Job's pods must use restartPolicy OnFailure or Never; the API rejects the "
    "default Always for them.",
    remediation="Set restartPolicy: OnFailure (or Never) in the jobTemplate's pod spec.",
    equivalent=("kube-score:cronjob-restartpolicy",),
)
def cronjob_restart(obj: Mapping[str, Any], config: AuditConfig) -> Iterator[Violation]:
    """Yield a violation when the CronJob's pods restart Always (or the field is unset)."""
    policy = pod_spec(obj).get("restartPolicy")
    if policy not in ("OnFailure", "Never"):
        yield Violation(f"restartPolicy is {policy or 'unset (Always)'}")


@rule(
    "RK-META-001",
    title="Object in the default namespace",
    category="security",
    severity="low",
    kinds=_NAMESPACED_AUDITED,
    rationale="The default namespace is shared by everything deployed without thought; "
    "policies, quotas and RBAC scoped to a team's namespace do not reach it.",
    remediation="Set metadata.namespace to the team's or application's namespace.",
    equivalent=("checkov:CKV_K8S_21", "kube-linter:use-namespace"),
)
def default_namespace(obj: Mapping[str, Any], config: AuditConfig) -> Iterator[Violation]:
    """Yield a violation when the object lands in the default namespace."""
    if object_namespace(obj) == "default":
        yield Violation("object is in the default namespace (set or implied)")


@rule(
    "RK-API-001",
    title="Removed apiVersion",
    category="reliability",
    severity="high",
    kinds=(
        *WORKLOAD_KINDS,
        "Ingress",
        "NetworkPolicy",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
    ),
    rationale="Beta apiVersions such as extensions/v1beta1 have been removed from the API "
    "server: the manifest no longer applies.",
    remediation="Move the object to its stable apiVersion (see the message).",
    equivalent=("kube-score:stable-version", "kube-linter:no-extensions-v1beta"),
)
def removed_api(obj: Mapping[str, Any], config: AuditConfig) -> Iterator[Violation]:
    """Yield a violation when the object's apiVersion is a removed beta version."""
    key = (str(obj.get("apiVersion")), str(obj.get("kind")))
    if key in DEPRECATED_API_VERSIONS:
        yield Violation(f"apiVersion {key[0]} is removed; use {DEPRECATED_API_VERSIONS[key]}")


@rule(
    "RK-ENV-001",
    title="Duplicate env var",
    category="reliability",
    severity="medium",
    kinds=WORKLOAD_KINDS,
    rationale="When a name appears twice in env the last value wins silently, so the value "
    "someone edited may not be the one in use.",
    remediation="Remove the duplicate env entries.",
    equivalent=("kube-score:environment-variable-key-duplication", "kube-linter:duplicate-env-var"),
)
def duplicate_env(obj: Mapping[str, Any], config: AuditConfig) -> Iterator[Violation]:
    """Yield containers that define one env var name more than once."""
    for c in containers(obj, init=True):
        counts = Counter(str(e.get("name")) for e in c.get("env") or [])
        twice = sorted(n for n, k in counts.items() if k > 1)
        if twice:
            yield Violation(f"container {_name(c)!r} sets {', '.join(twice)} twice", _name(c))


@rule(
    "RK-PORT-001",
    title="SSH port exposed",
    category="security",
    severity="medium",
    kinds=WORKLOAD_KINDS,
    rationale="A container listening on port 22 usually runs an SSH daemon, a way in that "
    "bypasses the cluster's audit log.",
    remediation="Remove the SSH server; use kubectl exec or debug containers.",
    equivalent=("kube-linter:ssh-port",),
)
def ssh_port(obj: Mapping[str, Any], config: AuditConfig) -> Iterator[Violation]:
    """Yield containers declaring containerPort 22."""
    for c in containers(obj, init=True):
        if any(p.get("containerPort") == 22 for p in c.get("ports") or []):
            yield Violation(f"container {_name(c)!r} exposes port 22", _name(c))


def _hostname_anti_affinity(obj: Mapping[str, Any]) -> bool:
    anti = (pod_spec(obj).get("affinity") or {}).get("podAntiAffinity") or {}
    labels = pod_labels(obj)
    terms = list(anti.get("requiredDuringSchedulingIgnoredDuringExecution") or [])
    terms += [
        t.get("podAffinityTerm") or {}
        for t in anti.get("preferredDuringSchedulingIgnoredDuringExecution") or []
    ]
    return any(
        t.get("topologyKey") == "kubernetes.io/hostname"
        and selector_matches(t.get("labelSelector"), labels)
        for t in terms
    )


@rule(
    "RK-AVAIL-006",
    title="No pod anti-affinity on hostname",
    category="reliability",
    severity="low",
    kinds=("Deployment", "StatefulSet"),
    rationale="Without anti-affinity the scheduler may put every replica on one node, and that "
    "node's failure is an outage. Checked when replicas is 2 or more or unset (kube-score's "
    "reading).",
    remediation="Add a preferred podAntiAffinity term with topologyKey kubernetes.io/hostname "
    "selecting the pod's own labels (or a topologySpreadConstraint).",
    equivalent=(
        "kube-score:deployment-has-host-podantiaffinity",
        "kube-score:statefulset-has-host-podantiaffinity",
    ),
    divergent=("kube-linter:no-anti-affinity",),
)
def anti_affinity(obj: Mapping[str, Any], config: AuditConfig) -> Iterator[Violation]:
    """Yield multi-replica workloads whose pods repel no copies of themselves per node."""
    if int_field((obj.get("spec") or {}).get("replicas"), 2) < 2:
        return
    if not _hostname_anti_affinity(obj):
        yield Violation("no podAntiAffinity term on kubernetes.io/hostname selects its own pods")


@rule(
    "RK-AVAIL-007",
    title="HPA-scaled Deployment sets replicas",
    category="reliability",
    severity="medium",
    kinds=("Deployment", "StatefulSet"),
    scope="set",
    rationale="Every `kubectl apply` of a manifest with spec.replicas resets the replica count "
    "the HPA chose, dropping capacity at once.",
    remediation="Remove spec.replicas from the manifest of an HPA-scaled workload.",
    equivalent=("kube-score:deployment-targeted-by-hpa-does-not-have-replicas-configured",),
)
def hpa_with_replicas(index: ObjectIndex, config: AuditConfig) -> Iterator[Violation]:
    """Yield HPA-targeted workloads that still set spec.replicas."""
    for kind in ("Deployment", "StatefulSet"):
        for obj in index.of_kind(kind):
            hpa = hpa_for(obj, index)
            replicas = (obj.get("spec") or {}).get("replicas")
            if hpa is not None and replicas is not None:
                yield Violation(
                    f"spec.replicas is {replicas} although HorizontalPodAutoscaler "
                    f"{name_of(hpa)!r} scales it",
                    obj=obj,
                )


@rule(
    "RK-AVAIL-008",
    title="Selector does not match the pod template",
    category="reliability",
    severity="critical",
    kinds=("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"),
    rationale="The API rejects a workload whose selector does not select its own template's "
    "labels; a manifest with this mismatch never applies.",
    remediation="Make spec.selector match spec.template.metadata.labels.",
    equivalent=(
        "kube-score:deployment-pod-selector-labels-match-template-metadata-labels",
        "kube-score:statefulset-pod-selector-labels-match-template-metadata-labels",
        "kube-linter:mismatching-selector",
    ),
)
def selector_mismatch(obj: Mapping[str, Any], config: AuditConfig) -> Iterator[Violation]:
    """Yield a violation when spec.selector is set and does not select the template labels."""
    selector = (obj.get("spec") or {}).get("selector")
    if selector is None:
        return
    if not selector_matches(selector, pod_labels(obj)):
        yield Violation(f"selector {dict(selector)!r} does not select labels {pod_labels(obj)!r}")


@rule(
    "RK-AVAIL-009",
    title="StatefulSet serviceName not a headless Service",
    category="reliability",
    severity="high",
    kinds=("StatefulSet",),
    scope="set",
    rationale="A StatefulSet's pods get their stable DNS names from the headless Service its "
    "serviceName names; without one, peers cannot find each other.",
    remediation="Create a Service with clusterIP: None selecting the pods, and name it in "
    "spec.serviceName.",
    equivalent=("kube-score:statefulset-has-servicename",),
)
def statefulset_service(index: ObjectIndex, config: AuditConfig) -> Iterator[Violation]:
    """Yield StatefulSets whose serviceName is unset, missing, not headless, or elsewhere."""
    for obj in index.of_kind("StatefulSet"):
        name = (obj.get("spec") or {}).get("serviceName")
        if not name:
            yield Violation("spec.serviceName is not set", obj=obj)
            continue
        service = index.get("Service", object_namespace(obj), str(name))
        if service is None:
            yield Violation(f"Service {name!r} is not among the objects", obj=obj)
            continue
        spec = service.get("spec") or {}
        selector = spec.get("selector") or {}
        if spec.get("clusterIP") != "None":
            yield Violation(f"Service {name!r} is not headless (clusterIP is not None)", obj=obj)
        elif not selector or not selector_matches({"matchLabels": selector}, pod_labels(obj)):
            yield Violation(f"Service {name!r} does not select the StatefulSet's pods", obj=obj)


@rule(
    "RK-AVAIL-010",
    title="No topology spread constraint",
    category="reliability",
    severity="info",
    kinds=("Deployment", "StatefulSet"),
    optional=True,
    rationale="Spreading replicas across zones keeps a zone outage from taking all of them. "
    "Advice (off by default): single-zone clusters gain nothing.",
    remediation="Add a topologySpreadConstraint on topology.kubernetes.io/zone selecting the "
    "pod's labels.",
    equivalent=("polaris:topologySpreadConstraint",),
)
def topology_spread(obj: Mapping[str, Any], config: AuditConfig) -> Iterator[Violation]:
    """Yield workloads without any topologySpreadConstraints."""
    if not pod_spec(obj).get("topologySpreadConstraints"):
        yield Violation("pod spec has no topologySpreadConstraints")
