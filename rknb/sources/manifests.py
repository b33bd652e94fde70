"""An object source over manifests on disk, read the way kubectl would read them.

Files and folders (recursively, ``*.yaml``, ``*.yml``, ``*.json``, in sorted
order), multi-document YAML, JSON, and ``kubectl get -o yaml`` Lists. Every
object carries the file and line it came from in the annotation
``rknb.io/source``, so that an audit finding can point at the line to fix.
What rknb cannot use (other kinds, custom resources, unrendered Helm
templates) is kept in :attr:`ManifestSource.skipped` with a reason rather
than failing the whole load.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from rknb.errors import ManifestError
from rknb.sources.base import SUPPORTED_KINDS, KubeObject
from rknb.sources.objects import ObjectListSource, is_cluster_scoped
from rknb.yamlfile import load_yaml_list_documents

__all__ = ["MANIFEST_SUFFIXES", "SOURCE_ANNOTATION", "ManifestSource", "SkippedDocument"]

logger = logging.getLogger(__name__)

#: The annotation that says where an object was read from (``path:line``).
SOURCE_ANNOTATION = "rknb.io/source"

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")

# Helm's own template actions; Prometheus alert templates ({{ $labels.x }}) do not match.
_HELM_ACTION = re.compile(
    r"\{\{-?\s*(?:\.Values|\.Release|\.Chart|\.Capabilities|\.Files|\.Template|include\b|"
    r"template\b|toYaml\b|tpl\b|if\b|else\b|range\b|with\b|define\b|end\b|/\*)"
)


@dataclass(frozen=True)
class SkippedDocument:
    """A document that was read but not kept, and why."""

    path: str
    line: int
    kind: str | None
    name: str | None
    reason: str
    #: ``metadata.namespace`` as written, when the document names one.
    namespace: str | None = None


def _expand(paths: Iterable[str | os.PathLike[str]]) -> list[str]:
    files: list[str] = []
    for given in paths:
        name = os.fspath(given)
        path = Path(name)
        if path.is_dir():
            found = [
                p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in MANIFEST_SUFFIXES
            ]
            files.extend(os.path.join(name, str(p.relative_to(path))) for p in sorted(found))
        elif path.is_file():
            files.append(name)
        else:
            raise ManifestError("no such file or folder; check the path", path=name)
    return files


def _has_helm_action(value: Any) -> bool:
    if isinstance(value, str):
        return _HELM_ACTION.search(value) is not None
    if isinstance(value, dict):
        return any(_has_helm_action(k) or _has_helm_action(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_helm_action(item) for item in value)
    return False


class ManifestSource(ObjectListSource):
    """Lists the objects of manifest files and folders.

    Parameters
    ----------
    paths
        A file, a folder, or several of them, in the order to read them.
    default_namespace
        The namespace given to namespaced objects that name none, as
        ``kubectl apply`` without ``-n`` would.
    reference_time
        The instant the manifests describe, if known; ``None`` for files.
    """

    def __init__(
        self,
        paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
        *,
        default_namespace: str = "default",
        reference_time: datetime | None = None,
    ) -> None:
        given = [paths] if isinstance(paths, str | os.PathLike) else list(paths)
        self.paths = [os.fspath(p) for p in given]
        self.default_namespace = default_namespace
        self.skipped: list[SkippedDocument] = []
        objects: list[KubeObject] = []
        for file in _expand(given):
            objects.extend(self._read_file(file))
        logger.debug(
            "read %d objects from %s (%d skipped)", len(objects), self.paths, len(self.skipped)
        )
        super().__init__(
            objects, description="manifests " + ", ".join(self.paths), reference_time=reference_time
        )

    # -- reading -------------------------------------------------------------------------

    def _read_file(self, path: str) -> list[KubeObject]:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ManifestError(f"cannot read the file ({exc}); check it", path=path) from exc

        if path.lower().endswith(".json"):
            try:
                documents: list[tuple[Any, int, list[int]]] = (
                    [(json.loads(text), 1, [])] if text.strip() else []
                )
            except json.JSONDecodeError as exc:
                raise ManifestError(
                    f"invalid JSON ({exc.msg}); fix the file or remove it from the input",
                    path=path,
                    line=exc.lineno,
                ) from exc
        else:
            try:
                documents = load_yaml_list_documents(text, path=path)
            except ManifestError:
                if "{{" not in text:
                    raise
                self.skipped.append(
                    SkippedDocument(
                        path, 1, None, None, "unrendered Helm template; render it first"
                    )
                )
                return []

        objects: list[KubeObject] = []
        for document, line, item_lines in documents:
            objects.extend(self._objects_of(document, path, line, item_lines))
        return objects

    def _objects_of(
        self, document: Any, path: str, line: int, item_lines: list[int] | None = None
    ) -> list[KubeObject]:
        if document is None:
            return []
        if not isinstance(document, dict):
            raise ManifestError(
                f"expected a Kubernetes object (a mapping), found a {type(document).__name__}; "
                "fix or remove this document",
                path=path,
                line=line,
            )

        kind = document.get("kind")
        if kind is None and isinstance(document.get("groups"), list):
            return [self._rules_object(document, path)]
        if (
            isinstance(kind, str)
            and kind.endswith("List")
            and isinstance(document.get("items"), list)
        ):
            return self._list_items(document, path, line, item_lines or [])
        return self._object(document, path, line)

    def _list_items(
        self, document: dict[str, Any], path: str, line: int, item_lines: list[int]
    ) -> list[KubeObject]:
        # A typed list (DeploymentList) from the API omits kind and apiVersion on its items.
        list_kind = document["kind"]
        item_kind = list_kind[: -len("List")] if list_kind != "List" else None
        objects: list[KubeObject] = []
        for index, item in enumerate(document["items"]):
            if isinstance(item, dict) and item_kind and "kind" not in item:
                item = {"apiVersion": document.get("apiVersion"), "kind": item_kind, **item}
            item_line = item_lines[index] if index < len(item_lines) else line
            objects.extend(self._objects_of(item, path, item_line))
        return objects

    def _object(self, document: dict[str, Any], path: str, line: int) -> list[KubeObject]:
        kind = document.get("kind")
        metadata = document.get("metadata")
        name = metadata.get("name") if isinstance(metadata, dict) else None
        name = str(name) if name is not None else None
        if not isinstance(kind, str) or not kind:
            self._skip(path, line, None, name, "no kind: not a Kubernetes object")
            return []
        if _has_helm_action(document):
            self._skip(path, line, kind, name, "unrendered Helm template; render it first")
            return []
        if kind not in SUPPORTED_KINDS:
            self._skip(path, line, kind, name, f"kind {kind} is not one rknb reads")
            return []

        obj = dict(document)
        metadata = dict(metadata) if isinstance(metadata, dict) else {}
        if not is_cluster_scoped(kind) and not metadata.get("namespace"):
            metadata["namespace"] = self.default_namespace
        annotations = dict(metadata.get("annotations") or {})
        annotations[SOURCE_ANNOTATION] = f"{path}:{line}"
        metadata["annotations"] = annotations
        obj["metadata"] = metadata
        return [obj]

    def _rules_object(self, document: dict[str, Any], path: str) -> KubeObject:
        # A bare Prometheus rules file becomes the object the Prometheus Operator would hold.
        return {
            "apiVersion": "monitoring.coreos.com/v1",
            "kind": "PrometheusRule",
            "metadata": {
                "name": Path(path).stem,
                "namespace": self.default_namespace,
                "annotations": {SOURCE_ANNOTATION: path},
            },
            "spec": {"groups": document["groups"]},
        }

    def _skip(self, path: str, line: int, kind: str | None, name: str | None, reason: str) -> None:
        logger.debug("skipped %s:%d (%s %s): %s", path, line, kind, name, reason)
        self.skipped.append(SkippedDocument(path, line, kind, name, reason))
