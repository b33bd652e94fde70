"""The project's one YAML loader and dumper.

Everything rknb reads as YAML (manifests, catalog overrides, rule files) goes
through here, so that every file is read with the safe loader, every document
knows the line it starts on, and every syntax error names its file and line.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from rknb.errors import ManifestError

__all__ = ["dump_yaml", "load_yaml_documents", "load_yaml_file"]


def load_yaml_documents(text: str, *, path: str) -> list[tuple[Any, int]]:
    """Return each document of a YAML stream with the 1-based line it starts on.

    Parameters
    ----------
    text
        The YAML stream, possibly holding several ``---`` separated documents.
    path
        Where the text came from, used in error messages only.
    """
    return [(document, line) for document, line, _ in load_yaml_list_documents(text, path=path)]


def _item_lines(node: yaml.Node) -> list[int]:
    # The start lines of the entries of a top-level ``items:`` sequence (kubectl Lists).
    if not isinstance(node, yaml.MappingNode):
        return []
    for key, value in node.value:
        is_items = isinstance(key, yaml.ScalarNode) and key.value == "items"
        if is_items and isinstance(value, yaml.SequenceNode):
            return [item.start_mark.line + 1 for item in value.value]
    return []


def load_yaml_list_documents(text: str, *, path: str) -> list[tuple[Any, int, list[int]]]:
    """Return each document with its start line and the start lines of its ``items`` entries.

    Parameters
    ----------
    text
        The YAML stream, possibly holding several ``---`` separated documents.
    path
        Where the text came from, used in error messages only.
    """
    loader = yaml.SafeLoader(text)
    documents: list[tuple[Any, int, list[int]]] = []
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:  # pragma: no cover - check_node guarantees a node
                continue
            document = loader.construct_document(node)
            documents.append((document, node.start_mark.line + 1, _item_lines(node)))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or exc.context or "invalid YAML"
        raise ManifestError(
            f"YAML syntax error ({problem}); fix the file or remove it from the input",
            path=path,
            line=line,
        ) from exc
    except yaml.YAMLError as exc:
        raise ManifestError(
            f"YAML could not be read ({exc}); fix the file or remove it from the input",
            path=path,
        ) from exc
    finally:
        loader.dispose()
    return documents


def load_yaml_file(path: str | os.PathLike[str]) -> list[Any]:
    """Return the documents of a YAML file, in order (empty documents as ``None``)."""
    name = os.fspath(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(f"cannot read the file ({exc}); check the path", path=name) from exc
    return [document for document, _ in load_yaml_documents(text, path=name)]


def dump_yaml(obj: Any) -> str:
    """Return block-style YAML of an object, keys in the order given."""
    return yaml.safe_dump(
        obj, default_flow_style=False, sort_keys=False, allow_unicode=True, width=100
    )
