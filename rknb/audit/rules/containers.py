"""Per-container rules: probes, requests and limits, image tags, security context, env secrets."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from rknb.audit.model import AuditConfig, Violation
from rknb.audit.objects import (
    SERVICE_WORKLOAD_KINDS,
    WORKLOAD_KINDS,
    containers,
    effective_security,
    int_field,
)
from rknb.audit.registry import rule

__all__ = ["SECRET_NAME", "image_tag", "looks_secret"]

#: Env var names that suggest a credential (matched anywhere in the name, any case).
SECRET_NAME = re.compile(
    r"PASSW(?:OR)?D|PASSPHRASE|TOKEN|SECRET|API_?KEY|PRIVATE_?KEY|ACCESS_?KEY|CREDENTIAL", re.I
)


def looks_secret(name: str) -> bool:
    """Return whether an env var name looks like it holds a credential."""
    return SECRET_NAME.search(name) is not None


def image_tag(image: str) -> tuple[str | None, str | None]:
    """Return (tag, digest) of an image reference; a registry port is not a tag."""
    rest, _, digest = image.partition("@")
    last = rest.rsplit("/", 1)[-1]
    tag = last.rpartition(":")[2] if ":" in last else None
    return tag or None, digest or None


def _name(container: Mapping[str, Any]) -> str:
    return str(container.get("name", ""))


@rule(
    "RK-PROBE-001",
    title="Readiness probe missing",
    category="reliability",
    severity="high",
    kinds=SERVICE_WORKLOAD_KINDS,
    rationale="Without a readiness probe a pod receives traffic as soon as it starts, and a "
    "rolling update counts it available before it can serve.",
    remediation="Add a readinessProbe that checks the endpoint the container serves on.",
    equivalent=("polaris:readinessProbeMissing", "checkov:CKV_K8S_9"),
    divergent=("kube-score:pod-probes", "kube-linter:no-readiness-probe"),
)
def readiness_probe(obj: Mapping[str, Any], config: AuditConfig) -> Iterator[Violation]:
    """Yield app containers without a readinessProbe (init containers need none)."""
    for c in containers(obj):
        if not c.get("readinessProbe"):
            yield Violation(f"container {_name(c)!r} has no readinessProbe", container=_name(c))


@rule(
    "RK-PROBE-002",
    title="Liveness probe missing",
    category="reliability",
    severity="medium",
    kinds=SERVICE_WORKLOAD_KINDS,
    rationale="Without a liveness probe a hung process keeps its pod Running and is never "
    "restarted.",
    remediation="Add a livenessProbe, cheaper and more tolerant than the readiness probe.",
    equivalent=("polaris:livenessProbeMissing", "checkov:CKV_K8S_8"),
    divergent=("kube-linter:no-liveness-probe",),
)
def liveness_probe(obj: Mapping[str, Any], config: AuditConfig) -> Iterator[Violation]:
    """Yield app containers without a livenessProbe."""
    for c in containers(obj):
        if not c.get("livenessProbe"):
            yield Violation(f"container {_name(c)!r} has no livenessProbe", container=_name(c))


def _missing_resource(obj: Mapping[str, Any], section: str, resource: str) -> Iterator[Violation]:
    for c in containers(obj, init=True):
        value = ((c.get("resources") or {}).get(section) or {}).get(resource)
        if value in (None, ""):
            yield Violation(
                f"container {_name(c)!r} sets no {resource} {section[:-1]}", container=_name(c)
            )


@rule(
    "RK-RES-001",
    title="CPU request missing",
    category="efficiency",
    severity="medium",
    kinds=WORKLOAD_KINDS,
    rationale="The scheduler places pods by their requests; without a CPU request the pod "
    "can land on a full node, and HPA CPU utilization cannot be computed.",
    remediation="Set resources.requests.cpu to the container's typical usage.",
    equivalent=(
        "polaris:cpuRequestsMissing",
        "kube-linter:unset-cpu-requirements",
        "checkov:CKV_K8S_10",
        "kubesec:RequestsCPU",
        "kube-score:container-resources",
    ),
)
def cpu_request(obj: Mapping[str, Any], config: AuditConfig) -> Iterator[Violation]:
    """Yield containers (init containers included) without a CPU request."""
    yield from _missing_resource(obj, "requests", "cpu")


@rule(
    "RK-RES-002",
    title="Memory request missing",
    category="efficiency",
    severity="medium",
    kinds=WORKLOAD_KINDS,
    rationale="Without a memory request the scheduler may overcommit the node and the pod is "
    "among the first evicted under memory pressure.",
    remediation="Set resources.requests.memory to the container's working set.",
    equivalent=(
        "polaris:memoryRequestsMissing",
        "checkov:CKV_K8S_12",
        "kubesec:RequestsMemory",
        "kube-score:container-resources",
    ),
)
def memory_request(obj: Mapping[str, Any], config: AuditConfig) -> Iterator[Violation]:
    """Yield containers without a memory request."""
    yield from _missing_resource(obj, "requests", "memory")


@rule(
    "RK-RES-003",
    title="Memory limit missing",
    category="reliability",
    severity="high",
    kinds=WORKLOAD_KINDS,
    rationale="A container without a memory limit can take the node's memory and get "
    "neighbours OOM-killed.",
    remediation="Set resources.limits.memory above the container's peak working set.",
    equivalent=(
        "polaris:memoryLimitsMissing",
        "kube-linter:unset-memory-requirements",
        "checkov:CKV_K8S_13",
        "kubesec:LimitsMemory",
        "kube-score:container-resources",
    ),
)
def memory_limit(obj: Mapping[str, Any], config: AuditConfig) -> Iterator[Violation]:
    """Yield containers without a memory limit."""
    yield from _missing_resource(obj, "limits", "memory")


@rule(
    "RK-IMG-001",
    title="Image tag not pinned",
    category="reliability",
    severity="high",
    kinds=WORKLOAD_KINDS,
    rationale="A missing or `latest` tag makes the running version depend on when the pod "
    "started, so a rollback may not restore the old code.",
    remediation="Use an explicit version tag or an @sha256 digest.",
    equivalent=(
        "kube-score:container-image-tag",
        "polaris:tagNotSpecified",
        "kube-linter:latest-tag",
        "checkov:CKV_K8S_14",
    ),
)
def image_pinned(obj: Mapping[str, Any], config: AuditConfig) -> Iterator[Violation]:
    """Yield containers whose image has no tag or the `latest` tag and no digest."""
    for c in containers(obj, init=True):
        image = str(c.get("image") or "")
        tag, digest = image_tag(image)
        if digest:
            continue
        if tag is None:
            yield Violation(f"container {_name(c)!r} image {image!r} has no tag", _name(c))
        elif tag == "latest":
            yield Violation(f"container {_name(c)!r} image {image!r} uses :latest", _name(c))


@rule(
    "RK-SEC-001",
    title="May run as root",
    category="security",
    severity="high",
    kinds=WORKLOAD_KINDS,
    rationale="A process running as UID 0 in the container is root on the node if it escapes.",
    remediation="Set securityContext.runAsNonRoot: true and a non-zero runAsUser "
    "(pod or container level).",
    equivalent=("polaris:runAsRootAllowed", "checkov:CKV_K8S_23", "kubesec:RunAsNonRoot"),
    # kube-linter also fails runAsGroup 0; rknb follows Polaris and Checkov (UID only).
    divergent=("kube-linter:run-as-non-root",),
)
def run_as_non_root(obj: Mapping[str, Any], config: AuditConfig) -> Iterator[Violation]:
    """Yield containers whose effective settings allow UID 0 (pod settings inherited)."""
    for c in containers(obj, init=True):
        security = effective_security(obj, c)
        user = int_field(security.get("runAsUser"), -1)
        if user == 0:
            yield Violation(f"container {_name(c)!r} sets runAsUser 0 (root)", _name(c))
        elif security.get("runAsNonRoot") is not True and not user > 0:
            yield Violation(
                f"container {_name(c)!r} sets neither runAsNonRoot: true nor a non-zero "
                "runAsUser, at pod or container level",
                _name(c),
            )


@rule(
    "RK-SEC-002",
    title="Root filesystem writable",
    category="security",
    severity="medium",
    kinds=WORKLOAD_KINDS,
    rationale="A writable root filesystem lets an attacker or a bug change the image's binaries.",
    remediation="Set securityContext.readOnlyRootFilesystem: true and mount emptyDir volumes "
    "where the process writes.",
    equivalent=(
        "kube-score:container-security-context-readonlyrootfilesystem",
        "polaris:notReadOnlyRootFilesystem",
        "kube-linter:no-read-only-root-fs",
        "checkov:CKV_K8S_22",
        "kubesec:ReadOnlyRootFilesystem",
    ),
)
def read_only_root(obj: Mapping[str, Any], config: AuditConfig) -> Iterator[Violation]:
    """Yield containers without readOnlyRootFilesystem: true (a container-only field)."""
    for c in containers(obj, init=True):
        value = (c.get("securityContext") or {}).get("readOnlyRootFilesystem")
        if value is not True:
            shown = "is unset" if value is None else f"is {value!r}"
            yield Violation(
                f"container {_name(c)!r} readOnlyRootFilesystem {shown}", container=_name(c)
            )


@rule(
    "RK-SEC-003",
    title="Privilege escalation allowed",
    category="security",
    severity="high",
    kinds=WORKLOAD_KINDS,
    rationale="Unless allowPrivilegeEscalation is false the kernel lets a process gain more "
    "privileges than its parent (setuid binaries). Unset counts as allowed, as Polaris and "
    "Checkov judge it; kube-linter and kubesec only fail an explicit true.",
    remediation="Set securityContext.allowPrivilegeEscalation: false on every container.",
    equivalent=("polaris:privilegeEscalationAllowed", "checkov:CKV_K8S_20"),
    divergent=("kube-linter:privilege-escalation-container", "kubesec:AllowPrivilegeEscalation"),
)
def privilege_escalation(obj: Mapping[str, Any], config: AuditConfig) -> Iterator[Violation]:
    """Yield containers whose allowPrivilegeEscalation is not false."""
    for c in containers(obj, init=True):
        value = (c.get("securityContext") or {}).get("allowPrivilegeEscalation")
        if value is not False:
            shown = "is unset (allowed)" if value is None else f"is {value!r}"
            yield Violation(
                f"container {_name(c)!r} allowPrivilegeEscalation {shown}", container=_name(c)
            )


@rule(
    "RK-SEC-004",
    title="Privileged container",
    category="security",
    severity="critical",
    kinds=WORKLOAD_KINDS,
    rationale="A privileged container has every capability and the host's devices: it is root "
    "on the node.",
    remediation="Remove securityContext.privileged, and add only the capabilities needed.",
    equivalent=(
        "kube-score:container-security-context-privileged",
        "polaris:runAsPrivileged",
        "kube-linter:privileged-container",
        "checkov:CKV_K8S_16",
        "kubesec:Privileged",
    ),
)
def privileged(obj: Mapping[str, Any], config: AuditConfig) -> Iterator[Violation]:
    """Yield containers with privileged: true."""
    for c in containers(obj, init=True):
        if (c.get("securityContext") or {}).get("privileged") is True:
            yield Violation(f"container {_name(c)!r} is privileged", container=_name(c))


@rule(
    "RK-SEC-005",
    title="Secret-looking literal env value",
    category="security",
    severity="critical",
    kinds=WORKLOAD_KINDS,
    rationale="A credential written as a literal env value is stored in the manifest, in "
    "version control and in every `kubectl get -o yaml`.",
    remediation="Move the value to a Secret and use valueFrom.secretKeyRef; rotate the "
    "exposed credential.",
    equivalent=("polaris:sensitiveContainerEnvVar", "kube-linter:env-var-secret"),
)
def literal_secret_env(obj: Mapping[str, Any], config: AuditConfig) -> Iterator[Violation]:
    """Yield env vars with a secret-looking name and a literal value (the value is never shown)."""
    for c in containers(obj, init=True):
        for env in c.get("env") or []:
            name = str(env.get("name", ""))
            if looks_secret(name) and env.get("value") not in (None, ""):
                yield Violation(
                    f"container {_name(c)!r} env {name} holds a literal value "
                    "(not shown) instead of a secretKeyRef",
                    container=_name(c),
                )
