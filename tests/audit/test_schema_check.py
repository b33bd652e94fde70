"""The compiled schema check agrees with jsonschema on valid, broken and mutated objects."""

from __future__ import annotations

import copy
import random
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from referencing import Registry, Resource

from rknb.audit.schema import compile_checker
from rknb.conformance import audit as runner

DATA = Path(__file__).resolve().parent.parent / "data"
FIXTURES = [
    DATA / "conformance" / "audit" / "fixtures",
    DATA / "audit" / "seed",
    DATA / "audit" / "good-stack.yaml",
    DATA / "audit" / "good-deployment.yaml",
]
VERSION = "1.30.0"


_VALIDATORS: dict[int, Any] = {}


def _jsonschema_valid(kind_schema: Any, obj: dict[str, Any]) -> bool:
    validator = _VALIDATORS.get(id(kind_schema))
    if validator is None:
        registry = Resource.from_contents(kind_schema.definitions) @ (
            Resource.from_contents(kind_schema.schema) @ Registry()
        )
        validator = jsonschema.validators.Draft202012Validator(
            kind_schema.schema, registry=registry
        )
        _VALIDATORS[id(kind_schema)] = validator
    return bool(validator.is_valid(obj))


def _leaves(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[tuple[Any, ...], Any]]:
    found = [(path, value)]
    if isinstance(value, dict):
        for key, item in value.items():
            found.extend(_leaves(item, (*path, key)))
    elif isinstance(value, list):
        for number, item in enumerate(value):
            found.extend(_leaves(item, (*path, number)))
    return found


def _set(obj: Any, path: tuple[Any, ...], value: Any) -> None:
    for part in path[:-1]:
        obj = obj[part]
    obj[path[-1]] = value


# Replacement values that break (or, for 1.0 and None, sometimes keep) a field's type.
_SWAPS = ["text", 7, 1.0, 2.5, True, None, [], {}, ["x"], {"k": "v"}, "Bogus"]


def _mutants(obj: dict[str, Any], rng: random.Random, count: int) -> list[dict[str, Any]]:
    paths = [p for p, _ in _leaves(obj) if (p and p[0] != "metadata") or len(p) == 2]
    mutants = []
    for _ in range(count):
        path = rng.choice(paths)
        mutant = copy.deepcopy(obj)
        if rng.random() < 0.2 and isinstance(path[-1], str):
            parent: Any = mutant
            for part in path[:-1]:
                parent = parent[part]
            del parent[path[-1]]  # drops a required field now and then
        else:
            _set(mutant, path, copy.deepcopy(rng.choice(_SWAPS)))
        mutants.append(mutant)
    return mutants


def _objects() -> list[dict[str, Any]]:
    inputs = runner.read_inputs(FIXTURES)
    assert len(inputs.objects) > 60
    return inputs.objects


def test_every_fixture_kind_compiles_to_a_check():
    kinds = {(o["kind"], o.get("apiVersion", "")) for o in _objects()}
    compiled = [runner._validator(VERSION, kind, api) for kind, api in sorted(kinds)]
    held = [c for c in compiled if c is not None]
    assert len(held) >= 10
    assert all(c.check is not None for c in held)


def test_compiled_check_agrees_with_jsonschema_on_fixtures_and_mutants():
    rng = random.Random(6)
    compared = invalid = 0
    for obj in _objects():
        kind_schema = runner._validator(VERSION, obj["kind"], str(obj.get("apiVersion")))
        if kind_schema is None:
            continue
        for candidate in [obj, *_mutants(obj, rng, 12)]:
            expected = _jsonschema_valid(kind_schema, candidate)
            assert kind_schema.check(candidate) is expected, (obj["kind"], candidate)
            compared += 1
            invalid += not expected
    # Enough of both verdicts to mean something.
    assert compared > 500
    assert 100 < invalid < compared - 100


@pytest.mark.parametrize(
    ("schema", "instance", "valid"),
    [
        ({"type": "integer"}, 3.0, True),  # a whole float is an integer in Draft 2020-12
        ({"type": "integer"}, True, False),  # a boolean is not
        ({"type": "number"}, False, False),
        ({"enum": [1]}, True, False),  # jsonschema: True != 1
        ({"enum": ["a", None]}, None, True),
        ({"oneOf": [{"type": "string"}, {"type": "integer"}]}, "80%", True),
        ({"oneOf": [{"type": "number"}, {"type": "integer"}]}, 5, False),  # both match
        ({"required": ["a"]}, [], True),  # required applies to objects only
        ({"additionalProperties": False, "properties": {"a": {}}}, {"a": 1, "b": 2}, False),
        ({"items": {"type": "string"}}, ["x", 1], False),
    ],
)
def test_compiled_keywords_follow_draft_2020_12(schema, instance, valid):
    schema = {"$id": "https://example.test/s", **schema}
    check = compile_checker(schema, {})
    assert check is not None
    assert check(instance) is valid
    assert jsonschema.Draft202012Validator(schema).is_valid(instance) is valid


def test_a_keyword_the_compiler_lacks_leaves_the_check_to_jsonschema():
    assert compile_checker({"type": "string", "pattern": "^a"}, {}) is None
    assert compile_checker({"$ref": "other.json#/x"}, {}) is None
    assert compile_checker({"$schema": "http://json-schema.org/draft-07/schema#"}, {}) is None
