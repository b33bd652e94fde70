"""Metadata and naming rules: label values, ownership labels, port names."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator, Mapping
from typing import Any

from rknb.audit.model import AuditConfig, Violation
from rknb.audit.objects import WORKLOAD_KINDS, containers, name_of
from rknb.audit.registry import rule

__all__ = ["label_value_problem", "port_name_problem"]

_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_PORT_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")

_LABELLED_KINDS = (
    *WORKLOAD_KINDS,
    "Service",
    "Ingress",
    "HorizontalPodAutoscaler",
    "PodDisruptionBudget",
    "NetworkPolicy",
    "ServiceAccount",
    "ConfigMap",
    "Secret",
    "PrometheusRule",
)


def label_value_problem(value: Any) -> str | None:
    """Return why a label value is invalid for the API (None when it is valid).

    A value is at most 63 characters of letters, digits, ``-``, ``_`` and
    ``.``, beginning and ending with a letter or digit; the empty string is valid.
    """
    if not isinstance(value, str):
        return f"{value!r} is not a string"
    if len(value) > 63:
        return f"{value[:20]}... is {len(value)} characters, over 63"
    if not _LABEL_VALUE.match(value):
        return f"{value!r} must be letters, digits, '-', '_' or '.' and begin and end alphanumeric"
    return None


def _label_sets(obj: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    yield "metadata.labels", (obj.get("metadata") or {}).get("labels") or {}
    spec = obj.get("spec") or {}
    if obj.get("kind") == "CronJob":
        spec = ((spec.get("jobTemplate") or {}).get("spec")) or {}
    template = spec.get("template") if isinstance(spec, Mapping) else None
    if isinstance(template, Mapping):
        yield "template labels", (template.get("metadata") or {}).get("labels") or {}


@rule(
    "RK-META-002",
    title="Label value invalid",
    category="reliability",
    severity="high",
    kinds=_LABELLED_KINDS,
    rationale="The API server rejects an object whose label value is longer than 63 "
    "characters or holds characters such as spaces or '/': the manifest never applies.",
    remediation="Shorten the value and keep to letters, digits, '-', '_' and '.'; put free "
    "text in an annotation.",
    equivalent=("kube-score:label-values",),
)
def label_values(obj: Mapping[str, Any], config: AuditConfig) -> Iterator[Violation]:
    """Yield each invalid label value of the object and of its pod template."""
    for where, labels in _label_sets(obj):
        if not isinstance(labels, Mapping):
            continue
        for key, value in labels.items():
            problem = label_value_problem(value)
            if problem:
                yield Violation(f"{where} {key}: {problem}")


_INSTANCE = "app.kubernetes.io/instance"


@rule(
    "RK-META-003",
    title="Instance label differs from the name",
    category="reliability",
    severity="info",
    kinds=WORKLOAD_KINDS,
    optional=True,
    rationale="Dashboards and `kubectl get -l app.kubernetes.io/instance=NAME` find a "
    "workload by its instance label; when it is missing or names another object the lookup "
    "misses it. Advice (off by default): Polaris warns on this by default, though few "
    "charts follow the convention.",
    remediation="Set metadata.labels[app.kubernetes.io/instance] to metadata.name.",
    equivalent=("polaris:metadataAndInstanceMismatched",),
)
def instance_label(obj: Mapping[str, Any], config: AuditConfig) -> Iterator[Violation]:
    """Yield a violation when the instance label is missing or differs from metadata.name."""
    labels = (obj.get("metadata") or {}).get("labels") or {}
    value = labels.get(_INSTANCE)
    if value != name_of(obj):
        shown = "is not set" if value is None else f"is {value!r}"
        yield Violation(f"label {_INSTANCE} {shown}, not {name_of(obj)!r}")


@rule(
    "RK-META-004",
    title="No owner label",
    category="reliability",
    severity="info",
    kinds=WORKLOAD_KINDS,
    optional=True,
    rationale="At 3 a.m. the person paged needs to know which team owns a failing workload. "
    "Advice (off by default, as kube-linter's required-label-owner). kube-linter's "
    "required-annotation-email is not a separate rknb rule: one owner label is enough to "
    "route to a team, and the contact belongs in the team's directory, not in every "
    "manifest.",
    remediation="Set metadata.labels.owner to the owning team.",
    equivalent=("kube-linter:required-label-owner",),
    divergent=("kube-linter:required-annotation-email",),
)
def owner_label(obj: Mapping[str, Any], config: AuditConfig) -> Iterator[Violation]:
    """Yield a violation when metadata.labels has no non-empty owner."""
    if not ((obj.get("metadata") or {}).get("labels") or {}).get("owner"):
        yield Violation("metadata.labels has no owner")


def port_name_problem(name: Any) -> str | None:
    """Return why a port name is not an IANA service name (None when it is valid).

    At most 15 characters of lower-case letters, digits and ``-``, with a
    letter among them, no leading, trailing or doubled ``-``.
    """
    text = str(name)
    if len(text) > 15:
        return f"{text!r} is longer than 15 characters"
    if not _PORT_NAME.match(text) or "--" in text:
        return f"{text!r} must be lower-case letters, digits and single inner '-'"
    if not any(ch.isalpha() for ch in text):
        return f"{text!r} must contain a letter"
    return None


@rule(
    "RK-PORT-002",
    title="Port definition invalid",
    category="reliability",
    severity="medium",
    kinds=(*WORKLOAD_KINDS, "Service"),
    rationale="The API rejects a container port without a containerPort in 1-65535 or with a "
    "name that is not an IANA service name (15 characters at most), and two ports of one "
    "container with the same name make named probes and Service targetPorts ambiguous. A "
    "Service targetPort given by name must be a valid port name to ever match.",
    remediation="Give each port a containerPort in 1-65535 and a unique, short, lower-case "
    "name; name Service targetPorts the same way.",
    equivalent=("kube-score:container-ports-check", "kube-linter:invalid-target-ports"),
)
def port_definitions(obj: Mapping[str, Any], config: AuditConfig) -> Iterator[Violation]:
    """Yield invalid container ports (number, name, duplicate name) or Service targetPorts."""
    if obj.get("kind") == "Service":
        for port in (obj.get("spec") or {}).get("ports") or []:
            target = (port or {}).get("targetPort")
            if isinstance(target, str) and not target.isdigit():
                problem = port_name_problem(target)
                if problem:
                    yield Violation(f"targetPort {problem}")
        return
    for c in containers(obj, init=True):
        cname = str(c.get("name", ""))
        ports = [p for p in c.get("ports") or [] if isinstance(p, Mapping)]
        for port in ports:
            number = port.get("containerPort")
            valid = isinstance(number, int) and not isinstance(number, bool)
            if not (valid and isinstance(number, int) and 1 <= number <= 65535):
                yield Violation(
                    f"container {cname!r} port containerPort {number!r} is not 1-65535", cname
                )
            if port.get("name") is not None:
                problem = port_name_problem(port["name"])
                if problem:
                    yield Violation(f"container {cname!r} port name {problem}", cname)
        counts = Counter(str(p["name"]) for p in ports if p.get("name"))
        twice = sorted(n for n, k in counts.items() if k > 1)
        if twice:
            yield Violation(f"container {cname!r} names ports {', '.join(twice)} twice", cname)
