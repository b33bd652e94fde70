"""The three patch formats the API server accepts, applied to plain JSON objects.

JSON Patch (RFC 6902), JSON Merge Patch (RFC 7386) and a strategic merge
patch reduced to what Deployments need: lists of objects with a ``name`` are
merged by name (containers, env, ports, volumes), other lists are replaced.
"""

from __future__ import annotations

import copy
from typing import Any

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
PATCH_TYPES = (JSON_PATCH, MERGE_PATCH, STRATEGIC_MERGE_PATCH)


class PatchError(ValueError):
    """The patch cannot be applied (bad path, failed test, wrong shape)."""


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f"path {path!r} does not start with '/'")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _parent(doc: Any, parts: list[str]) -> Any:
    node = doc
    for part in parts[:-1]:
        if isinstance(node, list):
            node = node[int(part)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            raise PatchError(f"path component {part!r} does not exist")
    return node


def json_patch(doc: Any, ops: Any) -> Any:
    """Return ``doc`` with RFC 6902 operations applied (add, remove, replace, test)."""
    if not isinstance(ops, list):
        raise PatchError("a JSON Patch must be a list of operations")
    out = copy.deepcopy(doc)
    for op in ops:
        kind, parts = op.get("op"), _pointer(op.get("path", ""))
        if not parts:
            if kind in ("add", "replace"):
                out = copy.deepcopy(op["value"])
                continue
            raise PatchError(f"{kind} of the whole document is not supported")
        parent, key = _parent(out, parts), parts[-1]
        if kind == "test":
            current = parent[int(key)] if isinstance(parent, list) else parent.get(key)
            if current != op.get("value"):
                raise PatchError(f"testing value {op.get('path')} failed")
        elif kind == "add":
            if isinstance(parent, list):
                parent.insert(len(parent) if key == "-" else int(key), copy.deepcopy(op["value"]))
            else:
                parent[key] = copy.deepcopy(op["value"])
        elif kind == "replace":
            if isinstance(parent, list):
                parent[int(key)] = copy.deepcopy(op["value"])
            elif key not in parent:
                raise PatchError(f"replace operation does not apply: doc is missing key {key}")
            else:
                parent[key] = copy.deepcopy(op["value"])
        elif kind == "remove":
            if isinstance(parent, list):
                parent.pop(int(key))
            elif key not in parent:
                raise PatchError(f"remove operation does not apply: doc is missing key {key}")
            else:
                del parent[key]
        else:
            raise PatchError(f"unsupported JSON Patch operation {kind!r}")
    return out


def merge_patch(doc: Any, patch: Any, *, strategic: bool = False) -> Any:
    """Return ``doc`` merged with an RFC 7386 (or simplified strategic) merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(doc) if isinstance(doc, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif strategic and isinstance(value, list) and _named(value) and _named(out.get(key)):
            merged = {item["name"]: item for item in out[key]}
            for item in value:
                base = merged.get(item["name"], {})
                merged[item["name"]] = merge_patch(base, item, strategic=True)
            out[key] = list(merged.values())
        else:
            out[key] = merge_patch(out.get(key), value, strategic=strategic)
    return out


def _named(items: Any) -> bool:
    return isinstance(items, list) and all(isinstance(i, dict) and "name" in i for i in items)


def apply_patch(doc: Any, patch: Any, content_type: str) -> Any:
    """Return ``doc`` with a patch of the given Content-Type applied."""
    if content_type == JSON_PATCH:
        return json_patch(doc, patch)
    if content_type == MERGE_PATCH:
        return merge_patch(doc, patch)
    if content_type == STRATEGIC_MERGE_PATCH:
        return merge_patch(doc, patch, strategic=True)
    raise PatchError(f"unsupported patch type {content_type!r}")
