"""An object source over a list of dicts, and the rules every object source shares.

The manifest, demo and bundle sources all end in a list of objects held in
memory; this module answers ``list(kind, namespace)`` over such a list. The
shared rules live here too, so that every source applies them the same way:
which kinds are cluster-scoped, how a kind name is checked, and how a Secret
(or a password written into a pod's env) loses its values before anyone sees it.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from rknb.credentials import REDACTED, looks_secret_name
from rknb.errors import ParameterError
from rknb.sources.base import SUPPORTED_KINDS, KubeObject

__all__ = [
    "CLUSTER_SCOPED_KINDS",
    "ObjectListSource",
    "check_kind",
    "is_cluster_scoped",
    "strip_secret",
]

#: Kinds that live outside namespaces (``kubectl api-resources --namespaced=false``).
CLUSTER_SCOPED_KINDS = frozenset(
    {
        "Namespace",
        "Node",
        "PersistentVolume",
        "StorageClass",
        "ClusterRole",
        "ClusterRoleBinding",
        "CustomResourceDefinition",
        "PriorityClass",
        "IngressClass",
        "RuntimeClass",
        "APIService",
        "MutatingWebhookConfiguration",
        "ValidatingWebhookConfiguration",
    }
)


def check_kind(kind: str) -> str:
    """Return the kind if rknb supports it, else raise a ParameterError listing those it does."""
    if kind not in SUPPORTED_KINDS:
        known = ", ".join(SUPPORTED_KINDS)
        raise ParameterError("kind", f"unsupported kind {kind!r}; use one of: {known}")
    return kind


def is_cluster_scoped(kind: str) -> bool:
    """Return whether objects of this kind have no namespace."""
    return kind in CLUSTER_SCOPED_KINDS


#: kubectl apply keeps a copy of the whole object, values included, in this annotation.
_LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def strip_secret(obj: KubeObject) -> KubeObject:
    """Return the object without Secret values: ``data``/``stringData`` become ``dataKeys``.

    Objects of other kinds come back unchanged but for secret-looking literal env
    values, which become ``<redacted>``. The key names are kept (sorted)
    because an audit needs them ("which Secret holds ``api-key``"); the values
    never leave this function.
    """
    if obj.get("kind") != "Secret":
        return _without_literal_credentials(obj)
    # Stripping twice must not lose the names recorded the first time.
    existing = obj.get("dataKeys")
    keys: set[str] = {str(k) for k in existing} if isinstance(existing, list) else set()
    for field in ("data", "stringData"):
        values = obj.get(field)
        if isinstance(values, dict):
            keys.update(str(key) for key in values)
    stripped = {key: value for key, value in obj.items() if key not in ("data", "stringData")}
    stripped["dataKeys"] = sorted(keys)

    # kubectl apply keeps the whole Secret, values included, in this annotation.
    metadata = stripped.get("metadata")
    annotations = metadata.get("annotations") if isinstance(metadata, dict) else None
    if isinstance(annotations, dict) and _LAST_APPLIED in annotations:
        annotations = {k: v for k, v in annotations.items() if k != _LAST_APPLIED}
        stripped["metadata"] = {**metadata, "annotations": annotations}  # type: ignore[dict-item]
    return stripped


_CONTAINER_FIELDS = ("initContainers", "containers", "ephemeralContainers")


def _pod_spec(obj: KubeObject) -> dict[str, Any] | None:
    """Return the pod spec inside a Pod, a workload or a CronJob, or None.

    A spec that names containers in any form counts, a malformed one too (``containers``
    written as a mapping): a credential in it must be found all the same.
    """
    spec = obj.get("spec")
    for _ in range(3):  # Pod, template.spec, jobTemplate.spec.template.spec
        if not isinstance(spec, dict):
            return None
        if any(field in spec for field in _CONTAINER_FIELDS):
            return spec
        inner = spec.get("jobTemplate", spec.get("template"))
        spec = inner.get("spec") if isinstance(inner, dict) else None
    return None


def _entries(value: Any) -> list[Any]:
    # The mappings of a field that should hold a list of them; one written as a single
    # mapping (a common mistake) counts as its only entry.
    if isinstance(value, dict):
        return [value]
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _literal_credentials(obj: KubeObject) -> Iterator[dict[str, Any]]:
    """Yield the env entries of the object's containers that hold a secret-looking literal."""
    spec = _pod_spec(obj) or {}
    for field in _CONTAINER_FIELDS:
        for container in _entries(spec.get(field)):
            for env in _entries(container.get("env")):
                if env.get("value") not in (None, "", REDACTED) and looks_secret_name(
                    str(env.get("name", ""))
                ):
                    yield env


def _without_literal_credentials(obj: KubeObject) -> KubeObject:
    """Return the object with secret-looking literal env values replaced by ``<redacted>``.

    A literal ``value`` under a name such as ``DB_PASSWORD`` is a credential however
    badly it was stored; an audit needs only to know it is there, so the value is
    replaced (and kubectl's last-applied copy of the object dropped) before the
    object reaches a notebook, a bundle or a report.
    """
    if next(_literal_credentials(obj), None) is None:
        return obj
    cleaned = copy.deepcopy(obj)
    for env in list(_literal_credentials(cleaned)):
        env["value"] = REDACTED
    metadata = cleaned.get("metadata")
    annotations = metadata.get("annotations") if isinstance(metadata, dict) else None
    if isinstance(annotations, dict):
        annotations.pop(_LAST_APPLIED, None)
    return cleaned


def _namespace_of(obj: KubeObject) -> str | None:
    metadata = obj.get("metadata")
    if isinstance(metadata, dict):
        namespace = metadata.get("namespace")
        return str(namespace) if namespace is not None else None
    return None


def _name_of(obj: KubeObject) -> str | None:
    metadata = obj.get("metadata")
    if isinstance(metadata, dict):
        name = metadata.get("name")
        return str(name) if name is not None else None
    return None


_Objects = list[KubeObject]


class ObjectListSource:
    """Lists objects held in memory, filtered by kind and namespace."""

    def __init__(
        self,
        objects: Iterable[KubeObject],
        *,
        description: str,
        reference_time: datetime | None = None,
    ) -> None:
        # Strip once on the way in, so that no copy of a Secret value is kept.
        self._objects: list[KubeObject] = [strip_secret(copy.deepcopy(o)) for o in objects]
        self.description = description
        self.reference_time = reference_time

    def list(self, kind: str, namespace: str | None = None) -> list[KubeObject]:
        """Return deep copies of the objects of a kind, in one namespace or all of them."""
        check_kind(kind)
        scoped = namespace is not None and not is_cluster_scoped(kind)
        return [
            copy.deepcopy(obj)
            for obj in self._objects
            if obj.get("kind") == kind and (not scoped or _namespace_of(obj) == namespace)
        ]

    def get(self, kind: str, namespace: str | None, name: str) -> KubeObject | None:
        """Return one object by kind, namespace and name, or ``None`` when absent."""
        for obj in self.list(kind, namespace):
            if _name_of(obj) == name:
                return obj
        return None

    def all_objects(self) -> _Objects:
        """Return deep copies of every object, whatever its kind."""
        return copy.deepcopy(self._objects)

    def __repr__(self) -> str:
        return f"ObjectListSource({self.description!r}, {len(self._objects)} objects)"
