"""Per-pod security hardening rules: host namespaces and mounts, capabilities, identities.

Pod-level ``securityContext`` fields are inherited the way the kubelet
inherits them (see :func:`rknb.audit.objects.effective_security`), so a pod
that sets ``runAsUser`` once is not reported for every container.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from rknb.audit.model import AuditConfig, Violation
from rknb.audit.objects import (
    WORKLOAD_KINDS,
    containers,
    effective_security,
    int_field,
    pod_spec,
)
from rknb.audit.registry import rule

__all__ = ["DANGEROUS_CAPABILITIES", "HIGH_ID", "SENSITIVE_HOST_PATHS", "capabilities"]

#: Capabilities that give a container control of the node or its network (Polaris' list).
DANGEROUS_CAPABILITIES = frozenset({"ALL", "SYS_ADMIN", "NET_ADMIN"})
#: Host paths whose mount exposes the node (kube-linter's sensitive-host-mounts list).
SENSITIVE_HOST_PATHS = ("/", "/boot", "/dev", "/etc", "/lib", "/proc", "/sys", "/usr")
#: The lowest UID/GID kube-score and Checkov accept as "not shared with the host".
HIGH_ID = 10000

_DOCKER_SOCKETS = ("/var/run/docker.sock", "/run/docker.sock")


def _name(container: Mapping[str, Any]) -> str:
    return str(container.get("name", ""))


def capabilities(container: Mapping[str, Any]) -> tuple[set[str], set[str]]:
    """Return the (added, dropped) capabilities of a container, upper case, ``CAP_`` removed."""
    caps = (container.get("securityContext") or {}).get("capabilities") or {}

    def names(key: str) -> set[str]:
        return {str(c).upper().removeprefix("CAP_") for c in caps.get(key) or []}

    return names("add"), names("drop")


def _host_flag(obj: Mapping[str, Any], field: str) -> Iterator[Violation]:
    if pod_spec(obj).get(field) is True:
        yield Violation(f"pod spec sets {field}: true")


_HOST_EQUIVALENTS = {
    "hostPID": ("polaris:hostPIDSet", "kube-linter:host-pid", "checkov:CKV_K8S_17"),
    "hostIPC": ("polaris:hostIPCSet", "kube-linter:host-ipc", "checkov:CKV_K8S_18"),
    "hostNetwork": ("polaris:hostNetworkSet", "kube-linter:host-network", "checkov:CKV_K8S_19"),
}


@rule(
    "RK-HOST-001",
    title="Host PID namespace shared",
    category="security",
    severity="critical",
    kinds=WORKLOAD_KINDS,
    rationale="With hostPID a container sees every process on the node and can signal or "
    "ptrace them.",
    remediation="Remove hostPID: true from the pod spec.",
    equivalent=(*_HOST_EQUIVALENTS["hostPID"], "kubesec:HostPID"),
)
def host_pid(obj: Mapping[str, Any], config: AuditConfig) -> Iterator[Violation]:
    """Yield a violation when the pod shares the node's PID namespace."""
    yield from _host_flag(obj, "hostPID")


@rule(
    "RK-HOST-002",
    title="Host IPC namespace shared",
    category="security",
    severity="critical",
    kinds=WORKLOAD_KINDS,
    rationale="With hostIPC a container can read and write the shared memory of every process "
    "on the node.",
    remediation="Remove hostIPC: true from the pod spec.",
    equivalent=(*_HOST_EQUIVALENTS["hostIPC"], "kubesec:HostIPC"),
)
def host_ipc(obj: Mapping[str, Any], config: AuditConfig) -> Iterator[Violation]:
    """Yield a violation when the pod shares the node's IPC namespace."""
    yield from _host_flag(obj, "hostIPC")


@rule(
    "RK-HOST-003",
    title="Host network namespace shared",
    category="security",
    severity="high",
    kinds=WORKLOAD_KINDS,
    rationale="With hostNetwork a pod binds the node's interfaces, bypasses NetworkPolicies "
    "and can reach services listening on localhost.",
    remediation="Remove hostNetwork: true; expose the pod through a Service instead.",
    equivalent=(*_HOST_EQUIVALENTS["hostNetwork"], "kubesec:HostNetwork"),
)
def host_network(obj: Mapping[str, Any], config: AuditConfig) -> Iterator[Violation]:
    """Yield a violation when the pod uses the node's network namespace."""
    yield from _host_flag(obj, "hostNetwork")


@rule(
    "RK-HOST-004",
    title="hostPort used",
    category="security",
    severity="medium",
    kinds=WORKLOAD_KINDS,
    rationale="A hostPort binds a port on the node, limits the pod to one replica per node and "
    "exposes it outside NetworkPolicies' usual path.",
    remediation="Remove ports[].hostPort and expose the container through a Service.",
    equivalent=("polaris:hostPortSet", "checkov:CKV_K8S_26"),
)
def host_port(obj: Mapping[str, Any], config: AuditConfig) -> Iterator[Violation]:
    """Yield containers that declare a hostPort."""
    for c in containers(obj, init=True):
        for port in c.get("ports") or []:
            if port.get("hostPort"):
                yield Violation(
                    f"container {_name(c)!r} binds hostPort {port['hostPort']}", _name(c)
                )


def _host_paths(obj: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    for volume in pod_spec(obj).get("volumes") or []:
        host = volume.get("hostPath")
        if isinstance(host, Mapping) and host.get("path") is not None:
            yield str(volume.get("name", "")), str(host["path"])


@rule(
    "RK-HOST-005",
    title="Sensitive host path mounted",
    category="security",
    severity="high",
    kinds=WORKLOAD_KINDS,
    rationale="A hostPath volume on a system directory (/, /etc, /proc, /sys, ...) lets the "
    "container read or change the node's configuration. rknb reports the system directories "
    "kube-linter names (any hostPath, as Polaris judges it, is the optional RK-HOST-007); "
    "kubesec's ProcMount looks at /proc alone.",
    remediation="Use a ConfigMap, Secret, emptyDir or PersistentVolumeClaim instead of hostPath.",
    equivalent=("kube-linter:sensitive-host-mounts",),
    divergent=("kubesec:ProcMount",),
)
def sensitive_host_mount(obj: Mapping[str, Any], config: AuditConfig) -> Iterator[Violation]:
    """Yield hostPath volumes on a system directory or below one."""
    for volume, path in _host_paths(obj):
        clean = "/" + path.strip("/")
        for root in SENSITIVE_HOST_PATHS:
            if clean == root or (root != "/" and clean.startswith(root + "/")):
                yield Violation(f"volume {volume!r} mounts host path {path!r}")
                break


@rule(
    "RK-HOST-006",
    title="Docker socket mounted",
    category="security",
    severity="critical",
    kinds=WORKLOAD_KINDS,
    rationale="The container runtime's socket gives whoever can write to it root on the node.",
    remediation="Remove the hostPath volume of docker.sock; build images with a rootless tool.",
    equivalent=("kube-linter:docker-sock", "checkov:CKV_K8S_27", "kubesec:DockerSock"),
)
def docker_socket(obj: Mapping[str, Any], config: AuditConfig) -> Iterator[Violation]:
    """Yield hostPath volumes of the Docker socket."""
    for volume, path in _host_paths(obj):
        if path.rstrip("/") in _DOCKER_SOCKETS:
            yield Violation(f"volume {volume!r} mounts the Docker socket {path!r}")


@rule(
    "RK-SEC-006",
    title="Capabilities added",
    category="security",
    severity="low",
    kinds=WORKLOAD_KINDS,
    rationale="Every added capability widens what a compromised process may do; the runtime's "
    "default set is enough for most services.",
    remediation="Remove securityContext.capabilities.add, or document why each is needed.",
    equivalent=("checkov:CKV_K8S_25",),
)
def added_capabilities(obj: Mapping[str, Any], config: AuditConfig) -> Iterator[Violation]:
    """Yield containers that add any capability."""
    for c in containers(obj, init=True):
        added, _ = capabilities(c)
        if added:
            yield Violation(f"container {_name(c)!r} adds {', '.join(sorted(added))}", _name(c))


@rule(
    "RK-SEC-007",
    title="Dangerous capability added",
    category="security",
    severity="critical",
    kinds=WORKLOAD_KINDS,
    rationale="SYS_ADMIN is nearly root on the node, NET_ADMIN rewrites the node's network, "
    "ALL is both. Checkov's CKV_K8S_39 and kubesec look at SYS_ADMIN only; rknb follows "
    "Polaris' wider list.",
    remediation="Drop SYS_ADMIN, NET_ADMIN and ALL from securityContext.capabilities.add.",
    equivalent=("polaris:dangerousCapabilities",),
    divergent=("checkov:CKV_K8S_39", "kubesec:CapSysAdmin"),
)
def dangerous_capabilities(obj: Mapping[str, Any], config: AuditConfig) -> Iterator[Violation]:
    """Yield containers that add SYS_ADMIN, NET_ADMIN or ALL."""
    for c in containers(obj, init=True):
        added, _ = capabilities(c)
        bad = added & DANGEROUS_CAPABILITIES
        if bad:
            yield Violation(f"container {_name(c)!r} adds {', '.join(sorted(bad))}", _name(c))


@rule(
    "RK-SEC-008",
    title="NET_RAW not dropped",
    category="security",
    severity="medium",
    kinds=WORKLOAD_KINDS,
    rationale="NET_RAW, in the runtime's default set, lets a process craft packets and spoof "
    "traffic to other pods on the node.",
    remediation="Add NET_RAW (or ALL) to securityContext.capabilities.drop.",
    equivalent=("kube-linter:drop-net-raw-capability", "checkov:CKV_K8S_28"),
)
def drop_net_raw(obj: Mapping[str, Any], config: AuditConfig) -> Iterator[Violation]:
    """Yield containers that drop neither NET_RAW nor ALL."""
    for c in containers(obj, init=True):
        _, dropped = capabilities(c)
        if not dropped & {"NET_RAW", "ALL"}:
            yield Violation(f"container {_name(c)!r} does not drop NET_RAW", _name(c))


@rule(
    "RK-SEC-009",
    title="Capabilities not dropped",
    category="security",
    severity="low",
    kinds=WORKLOAD_KINDS,
    rationale="Dropping ALL and adding back only what is needed is the least-privilege "
    "starting point.",
    remediation="Set securityContext.capabilities.drop: [ALL].",
    equivalent=("checkov:CKV_K8S_37", "kubesec:CapDropAll"),
)
def drop_all(obj: Mapping[str, Any], config: AuditConfig) -> Iterator[Violation]:
    """Yield containers whose dropped capabilities do not include ALL."""
    for c in containers(obj, init=True):
        _, dropped = capabilities(c)
        if "ALL" not in dropped:
            yield Violation(f"container {_name(c)!r} does not drop ALL", _name(c))


@rule(
    "RK-SEC-010",
    title="Pod securityContext missing",
    category="security",
    severity="low",
    kinds=WORKLOAD_KINDS,
    rationale="Without a pod securityContext every identity and sandbox setting is the "
    "runtime's default.",
    remediation="Set spec.securityContext (runAsNonRoot, runAsUser, seccompProfile) on the pod.",
    equivalent=("checkov:CKV_K8S_29",),
)
def pod_security_context(obj: Mapping[str, Any], config: AuditConfig) -> Iterator[Violation]:
    """Yield a violation when the pod spec has no securityContext key (``{}`` counts as set)."""
    if pod_spec(obj).get("securityContext") is None:
        yield Violation("pod spec has no securityContext")


@rule(
    "RK-SEC-011",
    title="Container securityContext missing",
    category="security",
    severity="low",
    kinds=WORKLOAD_KINDS,
    rationale="Fields such as readOnlyRootFilesystem, allowPrivilegeEscalation and "
    "capabilities exist only on the container's securityContext.",
    remediation="Set securityContext on every container.",
    equivalent=("checkov:CKV_K8S_30",),
)
def container_security_context(obj: Mapping[str, Any], config: AuditConfig) -> Iterator[Violation]:
    """Yield containers without a securityContext key (an empty one counts as set)."""
    for c in containers(obj, init=True):
        if c.get("securityContext") is None:
            yield Violation(f"container {_name(c)!r} has no securityContext", _name(c))


@rule(
    "RK-SEC-012",
    title="No seccomp profile",
    category="security",
    severity="medium",
    kinds=WORKLOAD_KINDS,
    rationale="Without a seccomp profile (RuntimeDefault or Localhost) a container can make "
    "every system call, including those used in kernel exploits. Polaris' linuxHardening also "
    "passes on AppArmor, SELinux or dropped capabilities alone; rknb asks for seccomp itself.",
    remediation="Set securityContext.seccompProfile.type: RuntimeDefault on the pod.",
    equivalent=("checkov:CKV_K8S_31", "kubesec:SeccompAny"),
    divergent=("polaris:linuxHardening", "kube-score:container-seccomp-profile"),
)
def seccomp_profile(obj: Mapping[str, Any], config: AuditConfig) -> Iterator[Violation]:
    """Yield containers whose effective seccomp profile is unset or Unconfined."""
    annotations = ((obj.get("metadata") or {}).get("annotations")) or {}
    template_annotations = (
        ((obj.get("spec") or {}).get("template") or {}).get("metadata") or {}
    ).get("annotations") or {}
    legacy = {**annotations, **template_annotations}.get("seccomp.security.alpha.kubernetes.io/pod")
    for c in containers(obj, init=True):
        profile = (effective_security(obj, c).get("seccompProfile") or {}).get("type")
        if profile in ("RuntimeDefault", "Localhost"):
            continue
        if profile is None and legacy in ("runtime/default", "docker/default"):
            continue
        shown = "is Unconfined" if profile == "Unconfined" else "is not set"
        yield Violation(f"container {_name(c)!r} seccomp profile {shown}", _name(c))


@rule(
    "RK-SEC-013",
    title="High UID not set",
    category="security",
    severity="low",
    kinds=WORKLOAD_KINDS,
    rationale=f"A UID below {HIGH_ID} may collide with a user on the node, which matters if "
    "the container escapes. rknb checks the UID, as Checkov does; kube-score also demands a "
    "high GID (kube-score#204).",
    remediation=f"Set securityContext.runAsUser to {HIGH_ID} or more (pod or container level).",
    equivalent=("checkov:CKV_K8S_40",),
    divergent=("kube-score:container-security-context-user-group-id", "kubesec:RunAsUser"),
)
def high_uid(obj: Mapping[str, Any], config: AuditConfig) -> Iterator[Violation]:
    """Yield containers whose effective runAsUser is unset or below 10000 (hostUsers false OK)."""
    if pod_spec(obj).get("hostUsers") is False:
        return
    for c in containers(obj, init=True):
        user = int_field(effective_security(obj, c).get("runAsUser"), -1)
        if user == -1:
            yield Violation(f"container {_name(c)!r} sets no runAsUser", _name(c))
        elif user < HIGH_ID:
            yield Violation(f"container {_name(c)!r} runAsUser {user} is below {HIGH_ID}", _name(c))


@rule(
    "RK-SEC-014",
    title="Secret read through an env var",
    category="security",
    severity="low",
    kinds=WORKLOAD_KINDS,
    rationale="Env vars leak into crash dumps, child processes and `kubectl describe`; a "
    "Secret mounted as a file does not.",
    remediation="Mount the Secret as a volume and read the file.",
    equivalent=(
        "checkov:CKV_K8S_35",
        "kube-linter:read-secret-from-env-var",
        "kubesec:SecretsAsEnvironmentVariables",
    ),
)
def secret_env(obj: Mapping[str, Any], config: AuditConfig) -> Iterator[Violation]:
    """Yield containers with an env secretKeyRef or an envFrom secretRef."""
    for c in containers(obj, init=True):
        refs = [
            str(e.get("name", ""))
            for e in c.get("env") or []
            if (e.get("valueFrom") or {}).get("secretKeyRef")
        ]
        refs += [
            f"envFrom {(e.get('secretRef') or {}).get('name', '')}"
            for e in c.get("envFrom") or []
            if e.get("secretRef")
        ]
        if refs:
            yield Violation(
                f"container {_name(c)!r} reads a Secret through {', '.join(refs)}", _name(c)
            )


@rule(
    "RK-SEC-015",
    title="Service-account token automounted",
    category="security",
    severity="medium",
    kinds=WORKLOAD_KINDS,
    scope="set",
    rationale="A pod that does not call the Kubernetes API needs no token; a mounted token is "
    "what an attacker uses to move through the cluster. The ServiceAccount's own "
    "automountServiceAccountToken: false counts (as Polaris judges it); Checkov reads only the "
    "pod spec.",
    remediation="Set automountServiceAccountToken: false on the pod (or its ServiceAccount).",
    equivalent=("polaris:automountServiceAccountToken", "kubesec:AutomountServiceAccountToken"),
    divergent=("checkov:CKV_K8S_38",),
)
def automount_token(index: Any, config: AuditConfig) -> Iterator[Violation]:
    """Yield workloads whose pods get a token: pod spec, then ServiceAccount, decide."""
    from rknb.audit.model import object_namespace

    for obj in index:
        if obj.get("kind") not in WORKLOAD_KINDS:
            continue
        spec = pod_spec(obj)
        value = spec.get("automountServiceAccountToken")
        account = str(spec.get("serviceAccountName") or spec.get("serviceAccount") or "default")
        if value is None:
            sa = index.get("ServiceAccount", object_namespace(obj), account)
            value = (sa or {}).get("automountServiceAccountToken")
        if value is not False:
            yield Violation(
                f"ServiceAccount {account!r} token is mounted (automountServiceAccountToken "
                "is not false on the pod or the ServiceAccount)",
                obj=obj,
            )


@rule(
    "RK-SEC-016",
    title="Default ServiceAccount automounts its token",
    category="security",
    severity="low",
    kinds=("ServiceAccount",),
    rationale="Every pod that names no ServiceAccount uses `default`; if it automounts, all of "
    "them carry a token.",
    remediation="Set automountServiceAccountToken: false on the default ServiceAccount.",
    equivalent=("checkov:CKV_K8S_41",),
)
def default_account(obj: Mapping[str, Any], config: AuditConfig) -> Iterator[Violation]:
    """Yield a violation when the ServiceAccount named default does not disable automount."""
    name = (obj.get("metadata") or {}).get("name")
    if name == "default" and obj.get("automountServiceAccountToken") is not False:
        yield Violation("ServiceAccount default does not set automountServiceAccountToken: false")


_RISKY_IMAGES = {
    "kubernetes-dashboard": "checkov:CKV_K8S_33",
    "tiller": "checkov:CKV_K8S_34",
}


@rule(
    "RK-SEC-017",
    title="Risky cluster tool deployed",
    category="security",
    severity="high",
    kinds=WORKLOAD_KINDS,
    rationale="The Kubernetes dashboard and Helm 2's Tiller run with wide cluster rights and "
    "have been the entry point of public cluster compromises.",
    remediation="Remove the dashboard or Tiller; use kubectl/Helm 3 with per-user credentials.",
    equivalent=("checkov:CKV_K8S_33", "checkov:CKV_K8S_34"),
)
def risky_images(obj: Mapping[str, Any], config: AuditConfig) -> Iterator[Violation]:
    """Yield containers running a kubernetes-dashboard or tiller image."""
    for c in containers(obj, init=True):
        image = str(c.get("image") or "")
        repository = image.split("@")[0].rsplit("/", 1)[-1].split(":")[0]
        if repository in _RISKY_IMAGES:
            yield Violation(f"container {_name(c)!r} runs {image!r}", _name(c))
