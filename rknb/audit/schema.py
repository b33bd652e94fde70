"""A compiled yes/no checker for the Kubernetes JSON schemas, many times faster than jsonschema.

jsonschema's validator is general: on a Deployment it spends about half a millisecond
walking the schema and building error objects, which made schema validation the slowest
part of auditing 10,000 objects. The Kubernetes schemas use a handful of keywords
(``type``, ``properties``, ``required``, ``items``, ``additionalProperties``, ``enum``,
``oneOf``, ``$ref``), so :func:`compile_checker` turns one schema into nested closures
that only answer *valid or not*. Callers ask jsonschema for the message of the rare
invalid object, so every message is still jsonschema's own. A schema using any other
assertion keyword jsonschema knows compiles to None: the caller then uses jsonschema for
every object of that kind, and no verdict can differ.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import unquote, urljoin

__all__ = ["Check", "compile_checker"]

#: A compiled schema: True when the instance is valid.
Check = Callable[[Any], bool]

# Draft 2020-12 assertion and applicator keywords compiled here. ``format`` is an
# annotation unless a format checker is given, which rknb's validator never is.
_HANDLED = frozenset(
    {
        "$ref",
        "additionalProperties",
        "allOf",
        "anyOf",
        "const",
        "enum",
        "format",
        "items",
        "oneOf",
        "properties",
        "required",
        "type",
    }
)
# The other keywords jsonschema's Draft 2020-12 validator acts on: a schema using one is not
# compiled. Every other key (description, x-kubernetes-*) is ignored by jsonschema too.
_NOT_HANDLED = frozenset(
    {
        "$dynamicRef",
        "contains",
        "dependentRequired",
        "dependentSchemas",
        "exclusiveMaximum",
        "exclusiveMinimum",
        "if",
        "maxItems",
        "maxLength",
        "maxProperties",
        "maximum",
        "minItems",
        "minLength",
        "minProperties",
        "minimum",
        "multipleOf",
        "not",
        "pattern",
        "patternProperties",
        "prefixItems",
        "propertyNames",
        "unevaluatedItems",
        "unevaluatedProperties",
        "uniqueItems",
        "$recursiveRef",
        "dependencies",
        "additionalItems",
    }
)


_DRAFT = "https://json-schema.org/draft/2020-12/schema"


class _UnsupportedError(Exception):
    """The schema uses a keyword this compiler does not implement."""


def _is_type(instance: Any, name: str) -> bool:
    # Draft 2020-12 types as jsonschema checks them: bool is neither integer nor number,
    # and a float with no fractional part is an integer.
    if name == "string":
        return isinstance(instance, str)
    if name == "object":
        return isinstance(instance, dict)
    if name == "array":
        return isinstance(instance, list)
    if name == "null":
        return instance is None
    if name == "boolean":
        return isinstance(instance, bool)
    if isinstance(instance, bool):
        return False
    if name == "integer":
        return isinstance(instance, int) or (isinstance(instance, float) and instance.is_integer())
    if name == "number":
        return isinstance(instance, int | float)
    raise _UnsupportedError(f"type {name!r}")


def _equal(one: Any, two: Any) -> bool:
    # jsonschema's equality: booleans never equal numbers; containers compare deeply.
    if isinstance(one, bool) or isinstance(two, bool):
        return isinstance(one, bool) and isinstance(two, bool) and one == two
    if isinstance(one, str) or isinstance(two, str):
        return one == two
    if isinstance(one, dict) and isinstance(two, dict):
        return one.keys() == two.keys() and all(_equal(one[k], two[k]) for k in one)
    if isinstance(one, list) and isinstance(two, list):
        return len(one) == len(two) and all(_equal(a, b) for a, b in zip(one, two, strict=True))
    return bool(one == two)


def _type_check(names: list[str]) -> Check:
    for name in names:
        _is_type(None, name)  # unknown type names are unsupported
    simple = {"string": str, "object": dict, "array": list}
    if all(n in simple for n in names):
        classes = tuple(simple[n] for n in names)
        return lambda instance: isinstance(instance, classes)
    if set(names) <= {"string", "object", "array", "null"}:
        classes = tuple(simple[n] for n in names if n != "null")
        return lambda instance: instance is None or isinstance(instance, classes)
    return lambda instance: any(_is_type(instance, n) for n in names)


def _enum_check(values: list[Any]) -> Check:
    strings = frozenset(v for v in values if isinstance(v, str))
    others = [v for v in values if not isinstance(v, str)]

    def check(instance: Any) -> bool:
        if isinstance(instance, str) and instance in strings:
            return True
        return any(_equal(instance, v) for v in others)

    return check


class _Compiler:
    """Compiles schemas, resolving ``$ref`` the way jsonschema's registry does."""

    def __init__(self, documents: Mapping[str, Any]) -> None:
        self.documents = documents
        self.by_ref: dict[tuple[str, str], list[Check]] = {}

    def compile(self, schema: Any, base: str) -> Check:
        if schema is True:
            return lambda instance: True
        if schema is False:
            return lambda instance: False
        if not isinstance(schema, Mapping):
            raise _UnsupportedError("a schema that is not an object")
        if "$id" in schema and urljoin(base, str(schema["$id"])) != base:
            raise _UnsupportedError("a nested $id")
        unsupported = [k for k in schema if k in _NOT_HANDLED]
        if unsupported:
            raise _UnsupportedError(", ".join(sorted(unsupported)))
        checks: list[Check] = []
        if "type" in schema:
            names = schema["type"]
            checks.append(_type_check([names] if isinstance(names, str) else list(names)))
        if "enum" in schema:
            checks.append(_enum_check(list(schema["enum"])))
        if "const" in schema:
            constant = schema["const"]
            checks.append(lambda instance: _equal(instance, constant))
        if "required" in schema:
            checks.append(self._required(list(schema["required"])))
        if "properties" in schema or "additionalProperties" in schema:
            checks.append(self._object(schema, base))
        if "items" in schema:
            checks.append(self._items(schema["items"], base))
        for keyword, combine in (("allOf", all), ("anyOf", any)):
            if keyword in schema:
                parts = [self.compile(s, base) for s in schema[keyword]]
                checks.append(self._combined(parts, combine))
        if "oneOf" in schema:
            options = [self.compile(s, base) for s in schema["oneOf"]]
            checks.append(lambda instance: sum(1 for o in options if o(instance)) == 1)
        if "$ref" in schema:
            checks.append(self._ref(schema["$ref"], base))
        if not checks:
            return lambda instance: True
        if len(checks) == 1:
            return checks[0]
        return lambda instance: all(c(instance) for c in checks)

    @staticmethod
    def _combined(parts: list[Check], combine: Callable[[Any], bool]) -> Check:
        return lambda instance: combine(p(instance) for p in parts)

    @staticmethod
    def _required(names: list[str]) -> Check:
        def check(instance: Any) -> bool:
            return not isinstance(instance, dict) or all(n in instance for n in names)

        return check

    def _object(self, schema: Mapping[str, Any], base: str) -> Check:
        properties = {k: self.compile(v, base) for k, v in schema.get("properties", {}).items()}
        extra = schema.get("additionalProperties", True)
        rest = None if extra is True else self.compile(extra, base)

        def check(instance: Any) -> bool:
            if not isinstance(instance, dict):
                return True
            for key, value in instance.items():
                sub = properties.get(key)
                if sub is not None:
                    if not sub(value):
                        return False
                elif rest is not None and not rest(value):
                    return False
            return True

        return check

    def _items(self, items: Any, base: str) -> Check:
        if isinstance(items, list):
            raise _UnsupportedError("items as a list")
        sub = self.compile(items, base)

        def check(instance: Any) -> bool:
            return not isinstance(instance, list) or all(sub(item) for item in instance)

        return check

    def _ref(self, ref: str, base: str) -> Check:
        uri, _, fragment = urljoin(base, ref).partition("#")
        if fragment and not fragment.startswith("/"):
            raise _UnsupportedError(f"$ref to the anchor {fragment!r}")
        key = (uri, fragment)
        cell = self.by_ref.get(key)
        if cell is None:
            # A placeholder first, so that recursive definitions compile once.
            cell = []
            self.by_ref[key] = cell
            cell.append(self.compile(self._lookup(uri, fragment), uri))
        return lambda instance: cell[0](instance)

    def _lookup(self, uri: str, fragment: str) -> Any:
        if uri not in self.documents:
            raise _UnsupportedError(f"$ref to {uri!r}, not a known document")
        target = self.documents[uri]
        for part in unquote(fragment).split("/")[1:] if fragment else []:
            part = part.replace("~1", "/").replace("~0", "~")
            if isinstance(target, list) and part.isdigit() and int(part) < len(target):
                target = target[int(part)]
            elif isinstance(target, Mapping) and part in target:
                target = target[part]
            else:
                raise _UnsupportedError(f"$ref fragment {fragment!r} not found in {uri}")
        return target


def compile_checker(schema: Mapping[str, Any], documents: Mapping[str, Any]) -> Check | None:
    """Return a function telling whether an instance is valid against the schema, or None.

    None means the schema uses a keyword the compiler does not implement (or a ``$ref``
    it cannot resolve): use jsonschema.

    Parameters
    ----------
    schema
        A Draft 2020-12 JSON schema; its ``$id`` is the base of its relative ``$ref`` values.
    documents
        Every document a ``$ref`` may name, by its absolute URI (``$id``), the schema's own
        included or not.
    """
    base = str(schema.get("$id", ""))
    known = {**documents, base: schema}
    if any(
        str(d.get("$schema", _DRAFT)).rstrip("#") != _DRAFT
        for d in known.values()
        if isinstance(d, Mapping)
    ):
        return None
    try:
        return _Compiler(known).compile(schema, base)
    except _UnsupportedError:
        return None
