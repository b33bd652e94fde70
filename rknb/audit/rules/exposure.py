"""Rules on what fronts the pods: NGINX Ingress snippet annotations, ServiceMonitors."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from rknb.audit.model import AuditConfig, ObjectIndex, Violation, object_namespace, selector_matches
from rknb.audit.objects import name_of
from rknb.audit.registry import rule

__all__ = ["snippet_annotations"]

#: Lua directives and the controller's own API group in a snippet (what CVE-2021-25742 used).
_LUA = re.compile(r"\blua_|_lua\b|_lua_|\bkubernetes\.io\b")


def snippet_annotations(obj: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Return (key, value) of the Ingress annotations whose key names a snippet."""
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    return sorted((str(k), str(v)) for k, v in annotations.items() if "snippet" in str(k))


_CVE = "CVE-2021-25742"


@rule(
    "RK-ING-003",
    title="NGINX snippet annotation",
    category="security",
    severity="medium",
    kinds=("Ingress",),
    rationale=f"ingress-nginx copies *-snippet annotations into the shared controller's "
    f"configuration, so anyone who may edit an Ingress can change how every tenant's traffic "
    f"is served and read the controller's secrets ({_CVE}).",
    remediation="Remove the snippet annotation and use the controller's dedicated annotations; "
    "set allow-snippet-annotations: false on the controller.",
    equivalent=("checkov:CKV_K8S_153",),
)
def nginx_snippet(obj: Mapping[str, Any], config: AuditConfig) -> Iterator[Violation]:
    """Yield each snippet annotation of an Ingress."""
    for key, _ in snippet_annotations(obj):
        yield Violation(f"annotation {key} injects NGINX configuration")


@rule(
    "RK-ING-004",
    title="NGINX snippet runs Lua",
    category="security",
    severity="high",
    kinds=("Ingress",),
    rationale=f"A snippet with Lua directives (or naming kubernetes.io paths) executes code "
    f"inside the ingress controller, which can read its ServiceAccount token and every "
    f"tenant's TLS keys ({_CVE}).",
    remediation="Remove the Lua from the snippet annotation.",
    equivalent=("checkov:CKV_K8S_152",),
)
def nginx_snippet_lua(obj: Mapping[str, Any], config: AuditConfig) -> Iterator[Violation]:
    """Yield snippet annotations whose value contains Lua directives or kubernetes.io."""
    for key, value in snippet_annotations(obj):
        if _LUA.search(value):
            yield Violation(f"annotation {key} contains Lua or a kubernetes.io path")


@rule(
    "RK-ING-005",
    title="NGINX snippet uses alias",
    category="security",
    severity="high",
    kinds=("Ingress",),
    rationale=f"An alias directive in a snippet maps a URL onto the controller's file system, "
    f"which serves files such as the mounted secrets to any client ({_CVE}).",
    remediation="Remove the alias directive from the snippet annotation.",
    equivalent=("checkov:CKV_K8S_154",),
)
def nginx_snippet_alias(obj: Mapping[str, Any], config: AuditConfig) -> Iterator[Violation]:
    """Yield snippet annotations whose value contains ``alias``."""
    for key, value in snippet_annotations(obj):
        if "alias" in value:
            yield Violation(f"annotation {key} contains an alias directive")


def _monitor_namespaces(monitor: Mapping[str, Any], index: ObjectIndex) -> list[str | None]:
    chooser = (monitor.get("spec") or {}).get("namespaceSelector") or {}
    if chooser.get("any") is True:
        return sorted({object_namespace(s) for s in index.of_kind("Service")}, key=str)
    names = chooser.get("matchNames")
    if names:
        return [str(n) for n in names]
    return [object_namespace(monitor)]


@rule(
    "RK-MON-001",
    title="ServiceMonitor selects no Service",
    category="reliability",
    severity="medium",
    kinds=("ServiceMonitor",),
    scope="set",
    rationale="A ServiceMonitor whose selector matches no Service's labels in the namespaces "
    "it names scrapes nothing, so the metrics (and the alerts built on them) silently "
    "disappear. Services are matched by their own metadata.labels, as the Prometheus "
    "operator does.",
    remediation="Make spec.selector match the Service's labels and spec.namespaceSelector "
    "name its namespace.",
    equivalent=("kube-linter:dangling-servicemonitor",),
)
def dangling_service_monitor(index: ObjectIndex, config: AuditConfig) -> Iterator[Violation]:
    """Yield ServiceMonitors whose selector matches no Service in their namespaces."""
    for monitor in index.of_kind("ServiceMonitor"):
        selector = (monitor.get("spec") or {}).get("selector")
        selector = selector if isinstance(selector, Mapping) else {}
        namespaces = _monitor_namespaces(monitor, index)
        matched = any(
            selector_matches(selector, (s.get("metadata") or {}).get("labels") or {})
            for namespace in namespaces
            for s in index.of_kind("Service", namespace)
        )
        if not matched:
            shown = ", ".join(str(n) for n in namespaces)
            yield Violation(
                f"ServiceMonitor {name_of(monitor)!r} selects no Service in {shown}", obj=monitor
            )
