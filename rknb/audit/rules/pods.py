"""Pod-spec rules beyond the basics: kernel settings, host access, identities, storage."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from rknb.audit.model import AuditConfig, ObjectIndex, Violation, object_namespace
from rknb.audit.objects import WORKLOAD_KINDS, containers, effective_security, name_of, pod_spec
from rknb.audit.registry import rule
from rknb.errors import ParameterError
from rknb.kube import parse_quantity

__all__ = ["SAFE_SYSCTLS", "is_safe_sysctl"]

#: The sysctls the kubelet allows without ``--allowed-unsafe-sysctls`` (Kubernetes 1.32's list;
#: older kubelets allow fewer).
SAFE_SYSCTLS = frozenset(
    {
        "kernel.shm_rmid_forced",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.tcp_syncookies",
        "net.ipv4.ping_group_range",
        "net.ipv4.ip_unprivileged_port_start",
        "net.ipv4.ip_local_reserved_ports",
        "net.ipv4.tcp_keepalive_time",
        "net.ipv4.tcp_fin_timeout",
        "net.ipv4.tcp_keepalive_intvl",
        "net.ipv4.tcp_keepalive_probes",
        "net.ipv4.tcp_rmem",
        "net.ipv4.tcp_wmem",
    }
)


def is_safe_sysctl(name: str) -> bool:
    """Return whether the kubelet treats a sysctl as safe (``/`` separators are accepted)."""
    return name.replace("/", ".") in SAFE_SYSCTLS


def _name(container: Mapping[str, Any]) -> str:
    return str(container.get("name", ""))


@rule(
    "RK-SEC-018",
    title="procMount Unmasked",
    category="security",
    severity="high",
    kinds=WORKLOAD_KINDS,
    rationale="procMount: Unmasked turns off the masking of /proc paths such as /proc/kcore "
    "and /proc/sysrq-trigger, which expose the host kernel to the container.",
    remediation="Remove securityContext.procMount (or set it to Default).",
    equivalent=("polaris:procMount", "kube-linter:unsafe-proc-mount"),
)
def proc_mount(obj: Mapping[str, Any], config: AuditConfig) -> Iterator[Violation]:
    """Yield containers whose procMount is set to anything but Default."""
    for c in containers(obj, init=True):
        mount = (c.get("securityContext") or {}).get("procMount")
        if mount not in (None, "Default"):
            yield Violation(f"container {_name(c)!r} sets procMount {mount}", _name(c))


@rule(
    "RK-SEC-019",
    title="Unsafe sysctl",
    category="security",
    severity="high",
    kinds=WORKLOAD_KINDS,
    rationale="A sysctl outside the kubelet's safe list is not isolated per pod: it changes "
    "the node's kernel for every pod, or the kubelet rejects the pod (SysctlForbidden) unless "
    "the node allows it. rknb judges by the kubelet's own safe list.",
    remediation="Remove the sysctl from spec.securityContext.sysctls, or run the workload on "
    "dedicated nodes that allow it.",
    equivalent=("kube-linter:unsafe-sysctls",),
)
def unsafe_sysctls(obj: Mapping[str, Any], config: AuditConfig) -> Iterator[Violation]:
    """Yield a violation naming each sysctl the kubelet does not consider safe."""
    for entry in (pod_spec(obj).get("securityContext") or {}).get("sysctls") or []:
        name = str((entry or {}).get("name", ""))
        if not is_safe_sysctl(name):
            yield Violation(f"pod sets unsafe sysctl {name!r}")


@rule(
    "RK-SEC-020",
    title="Windows hostProcess container",
    category="security",
    severity="high",
    kinds=WORKLOAD_KINDS,
    rationale="A Windows HostProcess container runs directly on the node, outside any "
    "container isolation, with the node's network and file system: it is node administrator.",
    remediation="Remove windowsOptions.hostProcess: true unless the workload is a node agent "
    "that must manage the host.",
    equivalent=("polaris:hostProcess",),
)
def host_process(obj: Mapping[str, Any], config: AuditConfig) -> Iterator[Violation]:
    """Yield containers whose effective windowsOptions.hostProcess is true."""
    for c in containers(obj, init=True):
        if (effective_security(obj, c).get("windowsOptions") or {}).get("hostProcess") is True:
            yield Violation(f"container {_name(c)!r} is a Windows hostProcess container", _name(c))


@rule(
    "RK-POD-001",
    title="hostAliases set",
    category="reliability",
    severity="low",
    kinds=WORKLOAD_KINDS,
    rationale="hostAliases write fixed addresses into the pod's /etc/hosts: when the target "
    "moves the pod keeps calling the old address, and the entry bypasses cluster DNS and "
    "its audit.",
    remediation="Remove spec.hostAliases; use a Service (ExternalName or headless with "
    "Endpoints) or a DNS record.",
    equivalent=("kubesec:HostAliases",),
)
def host_aliases(obj: Mapping[str, Any], config: AuditConfig) -> Iterator[Violation]:
    """Yield a violation when the pod spec sets hostAliases."""
    aliases = pod_spec(obj).get("hostAliases") or []
    if aliases:
        names = sorted({str(h) for a in aliases for h in (a or {}).get("hostnames") or []})
        yield Violation(f"pod spec sets hostAliases for {', '.join(names) or 'no hostnames'}")


def _host_volumes(obj: Mapping[str, Any]) -> dict[str, str]:
    found = {}
    for volume in pod_spec(obj).get("volumes") or []:
        host = (volume or {}).get("hostPath")
        if isinstance(host, Mapping):
            found[str(volume.get("name", ""))] = str(host.get("path", ""))
    return found


@rule(
    "RK-HOST-007",
    title="hostPath volume",
    category="security",
    severity="low",
    kinds=WORKLOAD_KINDS,
    optional=True,
    rationale="Any hostPath volume ties the pod to one node's disk and lets it read (or "
    "write) files outside the container. Advice (off by default): RK-HOST-005 reports the "
    "system directories; this rule reports every hostPath, as Polaris does.",
    remediation="Use an emptyDir, ConfigMap, Secret or PersistentVolumeClaim instead.",
    equivalent=("polaris:hostPathSet",),
)
def any_host_path(obj: Mapping[str, Any], config: AuditConfig) -> Iterator[Violation]:
    """Yield each hostPath volume of the pod."""
    for volume, path in sorted(_host_volumes(obj).items()):
        yield Violation(f"volume {volume!r} mounts host path {path!r}")


@rule(
    "RK-HOST-008",
    title="hostPath mounted writable",
    category="security",
    severity="medium",
    kinds=WORKLOAD_KINDS,
    optional=True,
    rationale="A container that can write to a host directory can plant files other pods or "
    "the node will read. Advice (off by default, as kube-linter's writable-host-mount).",
    remediation="Mount hostPath volumes with readOnly: true.",
    equivalent=("kube-linter:writable-host-mount",),
)
def writable_host_mount(obj: Mapping[str, Any], config: AuditConfig) -> Iterator[Violation]:
    """Yield container mounts of a hostPath volume without readOnly: true."""
    volumes = _host_volumes(obj)
    for c in containers(obj, init=True):
        for mount in c.get("volumeMounts") or []:
            name = str((mount or {}).get("name", ""))
            if name in volumes and mount.get("readOnly") is not True:
                yield Violation(
                    f"container {_name(c)!r} mounts host path {volumes[name]!r} writable",
                    _name(c),
                )


def _account(obj: Mapping[str, Any]) -> str:
    spec = pod_spec(obj)
    return str(spec.get("serviceAccountName") or spec.get("serviceAccount") or "default")


@rule(
    "RK-SA-001",
    title="Default ServiceAccount used",
    category="security",
    severity="info",
    kinds=WORKLOAD_KINDS,
    optional=True,
    rationale="Every pod that names no ServiceAccount shares `default`; a Role bound to it "
    "reaches all of them. Advice (off by default, as in kube-linter): harmless while "
    "`default` has no bindings and does not automount (RK-SEC-015, RK-SEC-016). kubesec "
    "awards its points for any serviceAccountName, even `default`; Checkov's CKV_K8S_42 "
    "(bindings to the default account) reads RBAC objects, which rknb does not audit.",
    remediation="Create a ServiceAccount per workload and set spec.serviceAccountName.",
    equivalent=("kube-linter:default-service-account",),
    divergent=("kubesec:ServiceAccountName",),
)
def default_service_account(obj: Mapping[str, Any], config: AuditConfig) -> Iterator[Violation]:
    """Yield a violation when the pod runs as the default ServiceAccount."""
    if _account(obj) == "default":
        yield Violation("pod runs as ServiceAccount default")


@rule(
    "RK-SA-002",
    title="Deprecated serviceAccount field",
    category="reliability",
    severity="low",
    kinds=WORKLOAD_KINDS,
    rationale="spec.serviceAccount is a deprecated alias of serviceAccountName; when both are "
    "set and differ, which one wins depends on the client, and tools read only the new one.",
    remediation="Rename spec.serviceAccount to spec.serviceAccountName.",
    equivalent=("kube-linter:deprecated-service-account-field",),
)
def deprecated_service_account(obj: Mapping[str, Any], config: AuditConfig) -> Iterator[Violation]:
    """Yield a violation when the pod spec uses the serviceAccount field."""
    if pod_spec(obj).get("serviceAccount"):
        yield Violation(f"pod spec sets serviceAccount {pod_spec(obj)['serviceAccount']!r}")


@rule(
    "RK-SA-003",
    title="ServiceAccount not found",
    category="reliability",
    severity="medium",
    kinds=WORKLOAD_KINDS,
    scope="set",
    rationale="A pod naming a ServiceAccount that does not exist is refused by the API server "
    "at creation, so the workload never gets pods. Checked only when the audit holds at "
    "least one ServiceAccount of that namespace (the objects may be a partial view); "
    "`default` always exists.",
    remediation="Create the ServiceAccount with the workload, or fix serviceAccountName.",
    equivalent=("kube-linter:non-existent-service-account",),
)
def missing_service_account(index: ObjectIndex, config: AuditConfig) -> Iterator[Violation]:
    """Yield workloads naming a ServiceAccount absent from a namespace the audit has SAs of."""
    for obj in index:
        if obj.get("kind") not in WORKLOAD_KINDS:
            continue
        account, namespace = _account(obj), object_namespace(obj)
        if account == "default" or not index.of_kind("ServiceAccount", namespace):
            continue
        if index.get("ServiceAccount", namespace, account) is None:
            yield Violation(f"ServiceAccount {account!r} is not among the objects", obj=obj)


def _env_refs(c: Mapping[str, Any]) -> Iterator[tuple[str, str, str | None, bool]]:
    # (kind, name, key or None for envFrom, optional) of each ConfigMap/Secret reference.
    for env in c.get("env") or []:
        source = (env or {}).get("valueFrom") or {}
        for field, kind in (("configMapKeyRef", "ConfigMap"), ("secretKeyRef", "Secret")):
            ref = source.get(field)
            if isinstance(ref, Mapping):
                yield (
                    kind,
                    str(ref.get("name", "")),
                    str(ref.get("key", "")),
                    bool(ref.get("optional")),
                )
    for env in c.get("envFrom") or []:
        for field, kind in (("configMapRef", "ConfigMap"), ("secretRef", "Secret")):
            ref = (env or {}).get(field)
            if isinstance(ref, Mapping):
                yield kind, str(ref.get("name", "")), None, bool(ref.get("optional"))


@rule(
    "RK-ENV-002",
    title="env refers to a missing ConfigMap or Secret key",
    category="reliability",
    severity="low",
    kinds=WORKLOAD_KINDS,
    scope="set",
    optional=True,
    rationale="A container whose env names a ConfigMap or Secret (or key) that does not exist "
    "stays in CreateContainerConfigError. Advice (off by default, as kube-linter's "
    "env-value-from): the objects may live outside the audited files. Secret values are "
    "stripped on reading, so Secret keys are checked by name only.",
    remediation="Create the ConfigMap or Secret with the key, fix the reference, or mark it "
    "optional: true.",
    equivalent=("kube-linter:env-value-from",),
)
def missing_env_source(index: ObjectIndex, config: AuditConfig) -> Iterator[Violation]:
    """Yield env references to ConfigMaps, Secrets or keys absent from the objects."""
    for obj in index:
        if obj.get("kind") not in WORKLOAD_KINDS:
            continue
        namespace = object_namespace(obj)
        for c in containers(obj, init=True):
            for kind, name, key, optional in _env_refs(c):
                if optional:
                    continue
                source = index.get(kind, namespace, name)
                if source is None:
                    yield Violation(
                        f"container {_name(c)!r} reads {kind} {name!r}, not among the objects",
                        container=_name(c),
                        obj=obj,
                    )
                elif key is not None:
                    keys = set(source.get("data") or {}) | set(source.get("stringData") or {})
                    keys |= set(source.get("binaryData") or {})
                    if key not in keys:
                        yield Violation(
                            f"container {_name(c)!r} reads key {key!r} that {kind} {name!r} "
                            "does not have",
                            container=_name(c),
                            obj=obj,
                        )


@rule(
    "RK-SEC-021",
    title="git-sync GITSYNC_GIT set",
    category="security",
    severity="high",
    kinds=WORKLOAD_KINDS,
    rationale="git-sync passes GITSYNC_GIT as the git binary to run, so whoever can edit the "
    "workload's env can run any command in the container (the 2024 git-sync command-"
    "injection finding).",
    remediation="Remove the GITSYNC_GIT env var; use the git binary in the git-sync image.",
    equivalent=("checkov:CKV_K8S_159",),
)
def git_sync(obj: Mapping[str, Any], config: AuditConfig) -> Iterator[Violation]:
    """Yield containers that set the GITSYNC_GIT env var."""
    for c in containers(obj, init=True):
        if any((e or {}).get("name") == "GITSYNC_GIT" for e in c.get("env") or []):
            yield Violation(f"container {_name(c)!r} sets GITSYNC_GIT", _name(c))


_RANGE_KEYS = {
    "requests.cpu": ("requests", "cpu"),
    "limits.cpu": ("limits", "cpu"),
    "requests.memory": ("requests", "memory"),
    "limits.memory": ("limits", "memory"),
}


@rule(
    "RK-RES-007",
    title="Request or limit outside the allowed range",
    category="efficiency",
    severity="low",
    kinds=WORKLOAD_KINDS,
    optional=True,
    rationale="A team's sizing policy (no container above 4 cores, none below 64Mi) keeps "
    "nodes packable and limits the blast radius of one runaway pod. Checked only for the "
    "ranges set in resource_ranges (cores, bytes), as kube-linter's cpu-requirements and "
    "memory-requirements templates are configured.",
    remediation="Size the container inside the range, or ask for an exception with a "
    "suppression and its reason.",
    equivalent=("kube-linter:cpu-requirements", "kube-linter:memory-requirements"),
)
def resource_range(obj: Mapping[str, Any], config: AuditConfig) -> Iterator[Violation]:
    """Yield container requests or limits outside the configured (lowest, highest) ranges."""
    for key, low, high in config.resource_ranges:
        if key not in _RANGE_KEYS:
            raise ParameterError(
                "resource_ranges", f"{key!r} is not one of {', '.join(sorted(_RANGE_KEYS))}"
            )
        section, resource = _RANGE_KEYS[key]
        for c in containers(obj, init=True):
            value = ((c.get("resources") or {}).get(section) or {}).get(resource)
            if value is None:
                continue  # RK-RES-001..004 report missing values
            amount = parse_quantity(value, name=f"{name_of(obj)} {key}")
            if not low <= amount <= high:
                yield Violation(
                    f"container {_name(c)!r} {key} {value} is outside [{low:g}, {high:g}]",
                    _name(c),
                )


def _claim_templates(obj: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for template in (obj.get("spec") or {}).get("volumeClaimTemplates") or []:
        yield name_of(template), (template or {}).get("spec") or {}


@rule(
    "RK-STS-001",
    title="volumeClaimTemplate without a storage request",
    category="reliability",
    severity="medium",
    kinds=("StatefulSet",),
    rationale="A claim without resources.requests.storage is rejected when the StatefulSet "
    "creates it, so the pod waits for storage for ever.",
    remediation="Set resources.requests.storage on each volumeClaimTemplate.",
    equivalent=("kubesec:VolumeClaimRequestsStorage",),
)
def claim_storage(obj: Mapping[str, Any], config: AuditConfig) -> Iterator[Violation]:
    """Yield volumeClaimTemplates that request no storage."""
    for name, spec in _claim_templates(obj):
        if not ((spec.get("resources") or {}).get("requests") or {}).get("storage"):
            yield Violation(f"volumeClaimTemplate {name!r} requests no storage")


@rule(
    "RK-STS-002",
    title="volumeClaimTemplate not ReadWriteOnce",
    category="reliability",
    severity="info",
    kinds=("StatefulSet",),
    optional=True,
    rationale="Each StatefulSet replica gets its own claim, so ReadWriteOnce is what it needs; "
    "other access modes narrow the storage classes that can serve it. Advice (off by "
    "default; kubesec awards points for ReadWriteOnce).",
    remediation="Set accessModes: [ReadWriteOnce] (or ReadWriteOncePod).",
    equivalent=("kubesec:VolumeClaimAccessModeReadWriteOnce",),
)
def claim_access_mode(obj: Mapping[str, Any], config: AuditConfig) -> Iterator[Violation]:
    """Yield volumeClaimTemplates whose access modes include neither RWO nor RWOP."""
    for name, spec in _claim_templates(obj):
        modes = set(spec.get("accessModes") or [])
        if not modes & {"ReadWriteOnce", "ReadWriteOncePod"}:
            shown = ", ".join(sorted(modes)) or "none"
            yield Violation(f"volumeClaimTemplate {name!r} access modes are {shown}")
