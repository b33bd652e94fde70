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

from rknb.errors import ManifestError, ParameterError

__all__ = [
    "MAX_EXPANDED_NODES",
    "MAX_NESTING",
    "SAFE_LOADER",
    "NestingError",
    "construct_document",
    "dump_yaml",
    "expanded_size",
    "load_yaml_documents",
    "load_yaml_file",
    "load_yaml_parameter_file",
    "nests_deeper_than",
]

_BASE_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# Plain scalar -> its implicit tag. The tag of a plain scalar depends on its text alone, and
# manifests repeat the same keys and values (name, image, containerPort, true) thousands of
# times; short texts are kept, up to a bound.
_PLAIN_TAGS: dict[str, str] = {}
_PLAIN_TAGS_MAX = 100_000
_PLAIN_TEXT_MAX = 64


class _SafeLoader(_BASE_LOADER):
    """The safe loader, with the tags of plain scalars remembered instead of re-matched."""

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        """Return the node's tag, as the safe loader resolves it."""
        if self.yaml_path_resolvers:  # pragma: no cover - the safe loader has none
            return super().resolve(kind, value, implicit)
        if kind is yaml.ScalarNode:
            if not implicit[0]:
                return self.DEFAULT_SCALAR_TAG
            tag = _PLAIN_TAGS.get(value)
            if tag is None:
                tag = super().resolve(kind, value, implicit)
                if len(value) <= _PLAIN_TEXT_MAX and len(_PLAIN_TAGS) < _PLAIN_TAGS_MAX:
                    _PLAIN_TAGS[value] = tag
            return tag
        if kind is yaml.MappingNode:
            return self.DEFAULT_MAPPING_TAG
        return super().resolve(kind, value, implicit)


#: libyaml's safe loader when PyYAML was built with it (several times faster), else
#: PyYAML's own. Both keep the marks that give documents and errors their lines.
SAFE_LOADER: Any = _SafeLoader
#: A document whose aliases expand to more nodes than this is refused (an alias bomb).
MAX_EXPANDED_NODES = 2_000_000
#: A document nesting mappings and sequences deeper than this is refused. No Kubernetes
#: object comes near it; a fixed bound (far below Python's recursion limit) gives the same
#: answer wherever the document is read, in this process or a worker.
MAX_NESTING = 200


class NestingError(RecursionError):
    """A document nests deeper than :data:`MAX_NESTING`; ``line`` is where it passed it."""

    def __init__(self, line: int) -> None:
        super().__init__(f"the document nests more than {MAX_NESTING} levels deep at line {line}")
        self.line = line


def nests_deeper_than(value: Any, limit: int) -> bool:
    """Return whether a parsed value nests dicts and lists more than ``limit`` levels deep."""
    stack = [(value, 0)]
    while stack:
        current, depth = stack.pop()
        if isinstance(current, dict):
            children: Any = current.values()
        elif isinstance(current, list):
            children = current
        else:
            continue
        if depth >= limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


_STR = "tag:yaml.org,2002:str"
_INT = "tag:yaml.org,2002:int"
_NULL = "tag:yaml.org,2002:null"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"


def construct_document(loader: Any, node: yaml.Node, *, has_aliases: bool = True) -> Any:
    """Return the Python value of a composed document, as ``loader.construct_document`` does.

    Kubernetes manifests are mostly plain mappings, sequences and strings; those are built
    here directly, about three times faster than PyYAML's general constructor, and every
    other node (other tags, merge keys, numbers other than plain decimals) goes to the
    loader's own constructor. A stream with aliases is left to the loader entirely.

    Parameters
    ----------
    loader
        The safe loader that composed the node.
    node
        The document's root node.
    has_aliases
        Whether the stream may hold aliases (shared and recursive nodes need the loader).
    """
    if has_aliases:
        return loader.construct_document(node)

    def build(current: yaml.Node, depth: int) -> Any:
        kind = current.__class__
        tag = current.tag
        if kind is yaml.ScalarNode:
            if tag == _STR:
                return current.value
            value = current.value
            if tag == _INT and value.isdigit() and (value[0] != "0" or value == "0"):
                return int(value)  # a leading zero is YAML 1.1 octal: the loader decides
            if tag == _NULL:
                return None
        elif kind is yaml.MappingNode and tag == _MAP:
            if depth >= MAX_NESTING:
                raise NestingError(current.start_mark.line + 1)
            built: dict[Any, Any] = {}
            for key, value in current.value:
                if key.__class__ is not yaml.ScalarNode or key.tag != _STR:
                    return loader.construct_object(current, deep=True)  # merge or odd keys
                built[key.value] = build(value, depth + 1)
            return built
        elif kind is yaml.SequenceNode and tag == _SEQ:
            if depth >= MAX_NESTING:
                raise NestingError(current.start_mark.line + 1)
            return [build(item, depth + 1) for item in current.value]
        return loader.construct_object(current, deep=True)

    try:
        return build(node, 0)
    finally:
        # What the loader's construct_document resets after each document.
        loader.constructed_objects = {}
        loader.recursive_objects = {}
        loader.deep_construct = False


def expanded_size(node: yaml.Node, limit: int) -> int:
    """Return how many nodes a composed document has once its aliases are expanded.

    Each distinct node is sized once, without recursion, so a billion-node alias bomb
    costs as little as its text; counting stops early once ``limit`` is passed. A node that
    contains itself (``&a [*a]``) would expand for ever: it counts as ``limit + 1``.
    """
    sizes: dict[int, int] = {}
    # Nodes being sized: everything above one on the stack is inside it, so meeting it
    # again before it is done means it contains itself.
    open_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(node, False)]
    while stack:
        current, done = stack.pop()
        if id(current) in sizes:
            continue
        if not done and id(current) in open_nodes:
            return limit + 1
        if isinstance(current, yaml.ScalarNode):
            sizes[id(current)] = 1
            continue
        children: list[yaml.Node] = (
            [n for pair in current.value for n in pair]
            if isinstance(current, yaml.MappingNode)
            else list(current.value)
        )
        if done:
            open_nodes.discard(id(current))
            total = 1 + sum(sizes.get(id(c), 1) for c in children)
            sizes[id(current)] = total
            if total > limit:
                return total
            continue
        open_nodes.add(id(current))
        stack.append((current, True))
        stack.extend((c, False) for c in children if id(c) not in sizes)
    return sizes[id(node)]


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
    loader = SAFE_LOADER(text)
    # Only a stream with an anchor can hold aliases; the expansion count is skipped otherwise.
    aliases = "&" in text and "*" in text
    documents: list[tuple[Any, int, list[int]]] = []
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:  # pragma: no cover - check_node guarantees a node
                continue
            if aliases and expanded_size(node, MAX_EXPANDED_NODES) > MAX_EXPANDED_NODES:
                raise ManifestError(
                    f"YAML aliases expand to more than {MAX_EXPANDED_NODES:,} nodes (an alias "
                    "bomb?); remove the aliases or split the document",
                    path=path,
                    line=node.start_mark.line + 1,
                )
            document = construct_document(loader, node, has_aliases=aliases)
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


def load_yaml_parameter_file(path: str, *, parameter: str) -> Any:
    """Return the one document of a YAML file of settings (``None`` when it is empty).

    For files a user names on the command line (``-f``, a run matrix): an
    unreadable file, invalid YAML, an alias bomb or several documents is a
    ParameterError naming ``parameter`` and the file.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ParameterError(parameter, f"cannot read {path!r}: {exc}") from exc
    try:
        documents = load_yaml_documents(text, path=path)
    except ManifestError as exc:
        raise ParameterError(parameter, f"{path!r} is not valid YAML: {exc}") from exc
    if len(documents) > 1:
        raise ParameterError(
            parameter, f"{path!r} holds {len(documents)} YAML documents; write one"
        )
    return documents[0][0] if documents else None
