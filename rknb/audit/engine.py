"""Running the rules over a set of objects: skipping, suppressing, scoring.

Score. Every (rule, object) pair a rule is run on is one *check*; a check
fails when the rule reports at least one unsuppressed finding for the
object. Each check weighs by its rule's severity (:data:`SEVERITY_WEIGHTS`:
critical 10, high 5, medium 3, low 1, info 0), and

    score = 100 × (1 − Σ weights of failed checks / Σ weights of all checks)

rounded to one decimal. Suppressed checks are left out of both sums; with no
weighted check at all the score is 100. The same formula gives each
object's score in the per-object breakdown.
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

from rknb.audit.model import (
    SEVERITY_WEIGHTS,
    AuditConfig,
    AuditReport,
    Finding,
    ObjectError,
    ObjectIndex,
    ObjectSummary,
    Rule,
    Skipped,
    Verdicts,
    object_key_of,
    object_namespace,
)
from rknb.audit.objects import field_problems, remembered
from rknb.audit.registry import get_rules
from rknb.errors import ParameterError, RknbError
from rknb.sources.base import SUPPORTED_KINDS

__all__ = [
    "IGNORE_ANNOTATION",
    "SOURCE_ANNOTATION",
    "Precomputed",
    "audit",
    "object_violations",
    "parse_ignore",
    "score_of",
]

logger = logging.getLogger(__name__)

#: Suppresses rules on one object: ``RULE-ID[,RULE-ID] reason``.
IGNORE_ANNOTATION = "rknb.io/ignore"
#: Where a manifest object came from (``path:line``), set by the manifest source.
SOURCE_ANNOTATION = "rknb.io/source"

# Helm's template actions; Prometheus alert templates ({{ $labels.x }}, {{ $value }}) differ.
_HELM_ACTION = re.compile(
    r"\{\{-?[^}]*(?:\.(?:Values|Release|Chart|Capabilities|Files|Template)\b|"
    r"\b(?:include|toYaml|tpl|required|define)\b)"
)


def _has_helm_action(value: Any) -> bool:
    # One C-speed dump of the object is much cheaper than walking it in Python. repr() is
    # cheaper still and holds "{{" exactly when some key or string does (braces are never
    # escaped, and no container's repr puts two together), so most objects stop here.
    try:
        if "{{" not in repr(value):
            return False
    except RecursionError:
        return _walk_helm_action(value)
    try:
        text = json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError, RecursionError):
        return _walk_helm_action(value)
    return "{{" in text and _HELM_ACTION.search(text) is not None


def _without_source(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    # The object without the annotation that names its file: a folder called `{{ .Values }}`
    # makes no template of the manifests inside it.
    meta = obj.get("metadata")
    annotations = meta.get("annotations") if isinstance(meta, Mapping) else None
    if not isinstance(annotations, Mapping) or SOURCE_ANNOTATION not in annotations:
        return obj
    rest = {key: value for key, value in annotations.items() if key != SOURCE_ANNOTATION}
    return {**obj, "metadata": {**meta, "annotations": rest}}  # type: ignore[dict-item]


def _walk_helm_action(value: Any) -> bool:
    if isinstance(value, str):
        return "{{" in value and _HELM_ACTION.search(value) is not None
    if isinstance(value, Mapping):
        return any(_walk_helm_action(k) or _walk_helm_action(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_walk_helm_action(v) for v in value)
    return False


def parse_ignore(text: str) -> tuple[list[str], str]:
    """Return (rule ids, reason) from an ``rknb.io/ignore`` value such as ``RK-SEC-001 why``."""
    text = text.strip()
    ids_part, _, reason = text.partition(" ")
    ids = [i.strip() for i in ids_part.split(",") if i.strip()]
    return ids, reason.strip() or "no reason given"


def _config_of(config: AuditConfig | Mapping[str, Any] | None) -> AuditConfig:
    # A mapping gets the checks a --config file gets (unknown keys, types, rule ids).
    if config is None:
        return AuditConfig()
    if isinstance(config, AuditConfig):
        return config
    from rknb.audit.model import config_from_mapping

    return config_from_mapping(config, parameter="config")


def _annotation_ignores(obj: Mapping[str, Any]) -> list[tuple[list[str], str]]:
    # The (rule ids, reason) pairs of the object's and its pod template's ignore annotations.
    meta = obj.get("metadata") or {}
    spec = obj.get("spec")
    template = spec.get("template") if isinstance(spec, Mapping) else None
    template_meta = template.get("metadata") if isinstance(template, Mapping) else None
    found = []
    for holder in (meta, template_meta):
        source = holder.get("annotations") if isinstance(holder, Mapping) else None
        text = source.get(IGNORE_ANNOTATION) if isinstance(source, Mapping) else None
        if text:
            found.append(parse_ignore(str(text)))
    return found


def _suppression(
    rule: Rule,
    key: str,
    annotated: Iterable[tuple[list[str], str]],
    config_ignores: Sequence[tuple[str, str | None, str]],
) -> str | None:
    for ids, reason in annotated:
        if rule.id in ids or "*" in ids:
            return f"{IGNORE_ANNOTATION}: {reason}"
    for rule_id, target, reason in config_ignores:
        if rule_id == rule.id and (target is None or target == key):
            return f"config ignore: {reason}"
    return None


def _parse_config_ignores(entries: Iterable[str]) -> list[tuple[str, str | None, str]]:
    parsed = []
    for entry in entries:
        body, _, reason = entry.partition("--")
        parts = body.split()
        if not parts or len(parts) > 2:
            raise ParameterError(
                "ignore", f"{entry!r} is not 'RULE-ID [Kind/namespace/name] [-- reason]'"
            )
        parsed.append(
            (parts[0], parts[1] if len(parts) == 2 else None, reason.strip() or "no reason given")
        )
    return parsed


def _key(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    return object_key_of(str(obj.get("kind")), object_namespace(obj), str(meta.get("name", "")))


def _controlled_by(obj: Mapping[str, Any]) -> str | None:
    refs = (obj.get("metadata") or {}).get("ownerReferences")
    for ref in refs if isinstance(refs, list) else []:
        if isinstance(ref, Mapping) and ref.get("controller"):
            return f"{ref.get('kind')}/{ref.get('name')}"
    return None


def _enabled(rule: Rule, settings: AuditConfig) -> bool:
    if not rule.optional:
        return True
    return any(e in ("*", rule.id) or rule.id.startswith(e + "-") for e in settings.enabled)


def score_of(checks: Iterable[tuple[str, bool]]) -> float:
    """Return the 0-100 score of (severity, passed) checks (formula in the module docstring)."""
    return _tally_score(Counter(checks))


def _tally_score(tally: Mapping[tuple[str, bool], int]) -> float:
    # The score of checks counted by (severity, passed).
    total = failed = 0
    for (severity, passed), count in tally.items():
        weight = SEVERITY_WEIGHTS[severity] * count
        total += weight
        if not passed:
            failed += weight
    return _weighted_score(total, failed)


def _weighted_score(total: int, failed: int) -> float:
    # The score of checks whose weights add up to `total`, `failed` of it failed.
    return 100.0 if total == 0 else round(100.0 * (1 - failed / total), 1)


def audit(
    objects: Sequence[Mapping[str, Any]],
    *,
    rules: Iterable[str] | None = None,
    config: AuditConfig | Mapping[str, Any] | None = None,
    workers: int = 1,
    precomputed: Precomputed | None = None,
) -> AuditReport:
    """Return the audit of the objects: findings, suppressions, skipped objects, score, breakdown.

    Parameters
    ----------
    objects
        API-JSON dicts as an object source lists them (any mix of kinds and namespaces).
    rules
        Rule ids or id prefixes (``RK-SEC``) to run; all registered rules when None.
    config
        An :class:`AuditConfig` or a mapping of its fields (``min_replicas``, ``disabled``,
        ``ignore``).
    workers
        With 2 or more (and at least :data:`PARALLEL_MIN_OBJECTS` objects, on a system
        that can fork), a forked process runs the per-object rules on part of the
        objects while this one runs the rest; the report is the same either way.
    precomputed
        The per-object rules' results for the first ``precomputed.count`` objects, made
        by :func:`object_violations` with the same rules and config (a forked reader's,
        say); the rules run here only on the others.
    """
    settings = _config_of(config)
    selected = _selected_rules(rules, settings)
    ignores = _parse_config_ignores(settings.ignore)
    known_kinds = _known_kinds()

    # Decide what is audited before any rule runs: cross-object rules see only real objects.
    # Objects the caller's precomputed results cover come with that decision already made.
    given = precomputed or Precomputed({}, 0)
    audited: list[Mapping[str, Any]] = []
    positions: list[int] = []
    skipped: list[Skipped] = []
    for position, obj in enumerate(objects):
        skip = given.skips.get(position) if position < given.count else _skip(obj, known_kinds)
        if skip is None:
            audited.append(obj)
            positions.append(position)
        else:
            skipped.append(skip)
    errors = [
        _object_error(obj, f"{obj.get('kind')} {_display(obj)}: {problem}")
        for position, obj in zip(positions, audited, strict=True)
        for problem in (
            given.problems.get(position, ()) if position < given.count else field_problems(obj)
        )
    ]
    index = ObjectIndex(audited)

    findings: list[Finding] = []
    suppressed: list[Finding] = []
    verdicts = Verdicts()
    # Unsuppressed findings by object key and severity.
    counts_by_key: dict[str, dict[str, int]] = {}
    # Everything the loop needs per object is computed once: its key, its failed checks so
    # far, and the rule ids its annotations suppress (most objects have none). Passed checks
    # (four in five) are only counted, per severity, a rule at a time.
    keys = {id(o): _key(o) for o in audited}
    failed_checks: dict[str, list[str]] = {key: [] for key in keys.values()}
    passed_checks: dict[str, Counter[str]] = {}
    annotated = {id(o): found for o in audited if (found := _annotation_ignores(o))}
    ignored_rules = {rule_id for rule_id, _, _ in ignores}
    # Rules read each object's pod spec and containers from one memo (see remembered()).
    with remembered():
        pairs = list(zip(positions, audited, strict=True))
        if precomputed is None:
            precomputed = _parallel_violations(selected, pairs, settings, workers)
        # The per-object rules' results by rule number and input position: the caller's or
        # the forked workers', and for the objects they do not cover (a live cluster's after
        # the files'), found here.
        covered = precomputed.count if precomputed is not None else 0
        table = precomputed.table if precomputed is not None else {}
        found_here = _object_violations(selected, [p for p in pairs if p[0] >= covered], settings)
        if found_here:
            table = {
                n: {**table.get(n, {}), **found_here.get(n, {})} for n in {*table, *found_here}
            }
        # (object, key, its failed checks, input position) of the audited objects by kind.
        slots: dict[str, list[_Slot]] = {}
        for number, obj in pairs:
            key = keys[id(obj)]
            slots.setdefault(str(obj.get("kind")), []).append(
                (obj, key, failed_checks[key], number)
            )
        wheres: dict[int, tuple[str, str | None, str, str | None]] = {}
        for rule_number, rule in enumerate(selected):
            targets = [slot for kind in rule.kinds for slot in slots.get(kind, ())]
            rule_id = rule.id
            # Violations by input position, or by key for a cross-object rule.
            known: Mapping[Any, list[_Found]]
            if rule.scope == "set":
                try:
                    known, culprits = _set_results(rule, audited, index, settings, keys, targets)
                except RknbError:  # a bad setting (ParameterError) is the caller's to see
                    raise
                except _BAD_DATA as error:
                    errors.append(_object_error(None, _rule_failed(rule, None, error)))
                    continue
                if culprits:
                    # The objects the rule could not read are errors, the others are checked.
                    errors.extend(_object_error(o, _rule_failed(rule, o, e)) for o, e in culprits)
                    left_out = {id(o) for o, _ in culprits}
                    targets = [slot for slot in targets if id(slot[0]) not in left_out]
                held_by = _BY_KEY
            else:
                known, held_by = table.get(rule_number, {}), _BY_POSITION
            # Only the failed checks, a few in each hundred, are visited one by one.
            passed = [slot[1] for slot in targets if held_by(slot) not in known]
            failed_keys: list[str] = []
            for slot in targets:
                violations = known.get(held_by(slot))
                if violations is None:
                    continue
                obj, key, checks, _ = slot
                if violations[0][0].startswith(_FAILED):
                    errors.append(_object_error(obj, violations[0][0][len(_FAILED) :]))
                    continue
                failed_keys.append(key)
                reason = None
                if rule_id in ignored_rules or id(obj) in annotated:
                    reason = _suppression(rule, key, annotated.get(id(obj), ()), ignores)
                where = wheres.get(id(obj))
                if where is None:
                    where = wheres[id(obj)] = _where(obj)
                made = [_finding(rule, where, v, reason) for v in violations]
                if reason is None:
                    findings.extend(made)
                    checks.append(rule.severity)
                    counts = counts_by_key.setdefault(key, {})
                    counts[rule.severity] = counts.get(rule.severity, 0) + len(made)
                else:
                    suppressed.extend(made)
            # A key defined twice fails when either definition fails.
            verdicts.add(rule_id, passed, True)
            verdicts.add(rule_id, failed_keys, False)
            passed_checks.setdefault(rule.severity, Counter()).update(passed)

    summaries = []
    # One summary per key: two files defining one object share its checks (the last wins).
    objects_by_key = {keys[id(o)]: o for o in audited}
    passed_by_severity = [(SEVERITY_WEIGHTS[s], counted) for s, counted in passed_checks.items()]
    all_weight = all_failed = 0
    for key, failed in failed_checks.items():
        checked = len(failed)
        failed_weight = sum(SEVERITY_WEIGHTS[severity] for severity in failed)
        weight = failed_weight
        for severity_weight, counted in passed_by_severity:
            passes = counted.get(key)
            if passes:
                checked += passes
                weight += severity_weight * passes
        if not checked:
            continue
        all_weight += weight
        all_failed += failed_weight
        obj = objects_by_key[key]
        summaries.append(
            ObjectSummary(
                kind=str(obj.get("kind")),
                namespace=object_namespace(obj),
                name=str((obj.get("metadata") or {}).get("name", "")),
                checks=checked,
                failed=len(failed),
                findings=counts_by_key.get(key, {}),
                score=_weighted_score(weight, failed_weight),
            )
        )
    summaries.sort(key=lambda s: (s.namespace or "", s.kind, s.name))
    score = _weighted_score(all_weight, all_failed)
    logger.debug("audited %d objects with %d rules: score %.1f", len(audited), len(selected), score)
    return AuditReport(
        findings=sorted(findings, key=_finding_order),
        suppressed=sorted(suppressed, key=_finding_order),
        skipped=skipped,
        score=score,
        objects=summaries,
        rules=[r.id for r in selected],
        verdicts=verdicts,
        errors=errors,
    )


# What a rule raises on data of an unexpected shape (a list where a mapping belongs...).
_BAD_DATA = (
    TypeError, ValueError, AttributeError, KeyError, IndexError, OverflowError, RecursionError
)  # fmt: skip
# A violation as the engine carries it: (message, container, alert).
_Found = tuple[str, str | None, str | None]
# An audited object as the rule loop visits it: (object, key, its failed checks, position),
# and where a rule's results hold its violations: under its key (a cross-object rule's) or
# its input position (a per-object rule's).
_Slot = tuple[Mapping[str, Any], str, list[str], int]
_BY_KEY = itemgetter(1)
_BY_POSITION = itemgetter(3)
# Marks a forked worker's stand-in violation for a rule that failed on an object.
_FAILED = "\x00rule failed\x00"


def _display(obj: Mapping[str, Any]) -> str:
    namespace = object_namespace(obj)
    name = (obj.get("metadata") or {}).get("name")
    return f"{namespace}/{name}" if namespace else str(name)


def _rule_failed(rule: Rule, obj: Mapping[str, Any] | None, error: Exception) -> str:
    where = f"{obj.get('kind')} {_display(obj)}" if obj is not None else "the objects"
    return (
        f"rule {rule.id} could not check {where} ({type(error).__name__}: {error}); "
        "a field holds a value of the wrong type, run with --kube-version to find it"
    )


def _object_error(obj: Mapping[str, Any] | None, message: str) -> ObjectError:
    if obj is None:
        return ObjectError(None, None, None, None, message)
    meta = obj.get("metadata") or {}
    source = (meta.get("annotations") or {}).get(SOURCE_ANNOTATION)
    return ObjectError(
        str(obj.get("kind")),
        object_namespace(obj),
        meta.get("name"),
        str(source) if source is not None else None,
        message,
    )


#: The most objects a cross-object rule is run without, one by one, when it fails on the
#: audit's objects; past them the rule is reported as failed for all objects.
MAX_SET_CULPRITS = 8


def _set_results(
    rule: Rule,
    objects: Sequence[Mapping[str, Any]],
    index: ObjectIndex,
    settings: AuditConfig,
    keys: Mapping[int, str],
    targets: Sequence[tuple[Mapping[str, Any], str, Any, int]],
) -> tuple[dict[str, list[_Found]], list[tuple[Mapping[str, Any], Exception]]]:
    """Return a cross-object rule's violations by key, and the objects it could not read.

    A cross-object rule reads every object of some kinds, so one object with a field of the
    wrong shape (labels written as a string) would stop it for all of them. When the rule
    raises, the object it fails on is found (the shortest run of the objects, in order, on
    which it fails ends with it), left out with the error, and the rule run again; after
    :data:`MAX_SET_CULPRITS` objects the last error is raised.
    """
    try:
        return _set_violations(rule, index, settings, keys, targets), []
    except _BAD_DATA as error:
        failure: Exception = error
    kept = list(objects)
    culprits: list[tuple[Mapping[str, Any], Exception]] = []

    def fails(count: int) -> Exception | None:
        try:
            _set_violations(rule, ObjectIndex(kept[:count]), settings, keys, targets)
        except _BAD_DATA as error:
            return error
        return None

    start = 0  # the rule runs on kept[:start]
    while len(culprits) < MAX_SET_CULPRITS:
        low, high = start, len(kept)  # it runs on kept[:low] and fails on kept[:high]
        while high - low > 1:
            middle = (low + high) // 2
            found = fails(middle)
            if found is None:
                low = middle
            else:
                high, failure = middle, found
        culprits.append((kept.pop(high - 1), failure))
        start = high - 1
        try:
            return _set_violations(rule, ObjectIndex(kept), settings, keys, targets), culprits
        except _BAD_DATA as error:
            failure = error
    raise failure


def _set_violations(
    rule: Rule,
    index: ObjectIndex,
    settings: AuditConfig,
    keys: Mapping[int, str],
    targets: Sequence[tuple[Mapping[str, Any], str, Any, int]],
) -> dict[str, list[_Found]]:
    # A cross-object rule's violations by the key of the object they name (rule kinds only).
    target_keys = {key for _, key, _, _ in targets}
    by_key: dict[str, list[_Found]] = {}
    for violation in rule.check(index, settings):
        if violation.obj is None:
            continue
        key = keys.get(id(violation.obj)) or _key(violation.obj)
        if key in target_keys:
            by_key.setdefault(key, []).append(
                (violation.message, violation.container, violation.alert)
            )
    return by_key


#: The fewest audited objects for which ``workers`` > 1 forks a process.
PARALLEL_MIN_OBJECTS = 2000

# rule number -> input position -> the violations of a per-object rule on one object.
_Table = dict[int, dict[int, list[_Found]]]


@dataclass(frozen=True)
class Precomputed:
    """The per-object rules' results for the first ``count`` objects of an audit.

    ``table`` maps the rule's number among the selected rules, then the object's position,
    to its violations as ``(message, container, alert)``; a passed check has no entry.
    Plain tuples cross a process boundary several times faster than Violation objects.
    ``skips`` holds why the audit leaves an object out, by position (audited ones are
    absent), and ``problems`` the :func:`~rknb.audit.objects.field_problems` of audited
    objects that have any.
    """

    table: _Table
    count: int
    skips: dict[int, Skipped] = field(default_factory=dict)
    problems: dict[int, list[str]] = field(default_factory=dict)

    @classmethod
    def joined(cls, parts: Sequence[Precomputed]) -> Precomputed:
        """Return the results of parts made for consecutive runs of objects, as one."""
        table: _Table = {}
        skips: dict[int, Skipped] = {}
        problems: dict[int, list[str]] = {}
        offset = 0
        for part in parts:
            for rule, found in part.table.items():
                table.setdefault(rule, {}).update(
                    found if offset == 0 else ((n + offset, v) for n, v in found.items())
                )
            skips.update((n + offset, why) for n, why in part.skips.items())
            problems.update((n + offset, found) for n, found in part.problems.items())
            offset += part.count
        return cls(table, offset, skips, problems)


def object_violations(
    objects: Sequence[Mapping[str, Any]],
    *,
    rules: Iterable[str] | None = None,
    config: AuditConfig | Mapping[str, Any] | None = None,
) -> Precomputed:
    """Return the per-object rules' results for the objects, for :func:`audit`'s ``precomputed``.

    The objects :func:`audit` would skip (unrendered templates, unknown kinds) get no
    result; ``rules`` and ``config`` must be the ones the audit is given.
    """
    settings = _config_of(config)
    known_kinds = _known_kinds()
    pairs = []
    skips: dict[int, Skipped] = {}
    problems: dict[int, list[str]] = {}
    for position, obj in enumerate(objects):
        skip = _skip(obj, known_kinds)
        if skip is not None:
            skips[position] = skip
            continue
        pairs.append((position, obj))
        found = field_problems(obj)
        if found:
            problems[position] = found
    with remembered():
        table = _object_violations(_selected_rules(rules, settings), pairs, settings)
    return Precomputed(table, len(objects), skips, problems)


# What a forked worker reads: the rules, the (position, object) pairs and the settings
# (set just before the fork, so the child inherits them instead of unpickling them).
_FORKED: tuple[Sequence[Rule], Sequence[tuple[int, Mapping[str, Any]]], AuditConfig] | None = None


def _object_violations(
    rules: Sequence[Rule],
    pairs: Sequence[tuple[int, Mapping[str, Any]]],
    settings: AuditConfig,
) -> _Table:
    # The per-object rules' violations for (input position, object) pairs. The pairs are
    # grouped by kind once: a rule then visits only the objects of its kinds, instead of
    # some seventy rules each asking every object its kind.
    by_kind: dict[Any, list[tuple[int, Mapping[str, Any]]]] = {}
    for pair in pairs:
        by_kind.setdefault(pair[1].get("kind"), []).append(pair)
    table: _Table = {}
    for rule_number, rule in enumerate(rules):
        if rule.scope == "set":
            continue
        check = rule.check
        for kind in dict.fromkeys(rule.kinds):  # a kind named twice is checked once
            for position, obj in by_kind.get(kind, ()):
                try:
                    found = [(v.message, v.container, v.alert) for v in check(obj, settings)]
                except RknbError:  # a bad setting (ParameterError) is the caller's to see
                    raise
                except _BAD_DATA as error:
                    found = [(_FAILED + _rule_failed(rule, obj, error), None, None)]
                if found:
                    table.setdefault(rule_number, {})[position] = found
    return table


def _forked_share(start: int, stop: int) -> _Table:
    assert _FORKED is not None
    rules, pairs, settings = _FORKED
    return _object_violations(rules, pairs[start:stop], settings)


def _parallel_violations(
    rules: Sequence[Rule],
    pairs: Sequence[tuple[int, Mapping[str, Any]]],
    settings: AuditConfig,
    workers: int,
) -> Precomputed | None:
    # The per-object rules' results computed by this process and forked ones together,
    # or None to run them in the main loop (small input, one worker, or no fork).
    import multiprocessing

    if workers < 2 or len(pairs) < PARALLEL_MIN_OBJECTS:
        return None
    if "fork" not in multiprocessing.get_all_start_methods():
        return None
    from concurrent.futures import ProcessPoolExecutor

    global _FORKED
    share = len(pairs) // workers
    bounds = [
        (n * share, len(pairs) if n == workers - 1 else (n + 1) * share) for n in range(workers)
    ]
    _FORKED = (rules, pairs, settings)
    try:
        with ProcessPoolExecutor(
            workers - 1, mp_context=multiprocessing.get_context("fork")
        ) as pool:
            pending = [pool.submit(_forked_share, *b) for b in bounds[1:]]
            table = _object_violations(rules, pairs[: bounds[0][1]], settings)
            for future in pending:
                for rule_number, found in future.result().items():
                    table.setdefault(rule_number, {}).update(found)
    except (OSError, RuntimeError) as error:  # BrokenProcessPool is a RuntimeError
        logger.warning("audit worker failed (%s); running the per-object rules here", error)
        return None
    finally:
        _FORKED = None
    # Every position up to the last audited object's is covered.
    return Precomputed(table, pairs[-1][0] + 1 if pairs else 0)


def _selected_rules(rules: Iterable[str] | None, settings: AuditConfig) -> list[Rule]:
    # The rules an audit runs, in registration order.
    return [
        r
        for r in get_rules(rules)
        if r.id not in settings.disabled and (rules is not None or _enabled(r, settings))
    ]


def _known_kinds() -> set[str]:
    return {kind for r in get_rules() for kind in r.kinds} | _READ_KINDS


def _skip(obj: Mapping[str, Any], known_kinds: set[str]) -> Skipped | None:
    # Why the audit leaves an object out, or None when it is audited.
    kind = obj.get("kind")
    if _has_helm_action(obj) and _has_helm_action(_without_source(obj)):
        why = "unrendered Helm template; render it first"
    elif kind not in known_kinds:
        why = (
            f"no rule checks kind {kind} yet"
            if kind in SUPPORTED_KINDS
            else f"kind {kind} is a custom resource or a kind rknb does not audit"
        )
    elif kind in ("ReplicaSet", "Pod") and _controlled_by(obj):
        why = f"managed by {_controlled_by(obj)}, whose template is audited instead"
    else:
        return None
    namespace = object_namespace(obj) if kind else None
    meta = obj.get("metadata") or {}
    source = (meta.get("annotations") or {}).get(SOURCE_ANNOTATION)
    return Skipped(
        kind, namespace, meta.get("name"), why, str(source) if source is not None else None
    )


# Kinds cross-object rules read even when no rule reports on them.
_READ_KINDS = frozenset(
    {"NetworkPolicy", "PodDisruptionBudget", "HorizontalPodAutoscaler", "Service"}
)

_SEVERITY_RANK = {"critical": 0, "high": 1, "medium": 2, "low": 3, "info": 4}


def _finding_order(f: Finding) -> tuple[Any, ...]:
    return (
        _SEVERITY_RANK[f.severity],
        f.rule_id,
        f.namespace or "",
        f.kind,
        f.name,
        f.container or "",
        f.alert or "",
        f.message,
    )


def _where(obj: Mapping[str, Any]) -> tuple[str, str | None, str, str | None]:
    # (kind, namespace, name, source) of an object, as its findings name it.
    meta = obj.get("metadata") or {}
    return (
        str(obj.get("kind")),
        object_namespace(obj),
        str(meta.get("name", "")),
        (meta.get("annotations") or {}).get(SOURCE_ANNOTATION),
    )


def _finding(
    rule: Rule,
    where: tuple[str, str | None, str, str | None],
    violation: _Found,
    reason: str | None,
) -> Finding:
    kind, namespace, name, source = where
    message, container, alert = violation
    # Finding is a frozen dataclass without __post_init__: its fields are set in one step, as
    # __init__ would set them one by one (four times slower for 50,000 findings). They are
    # set in sorted order, the order the JSON report writes them in without sorting each row.
    finding: Finding = _new(Finding)
    vars(finding).update(
        alert=alert,
        category=rule.category,
        container=container,
        kind=kind,
        message=message,
        name=name,
        namespace=namespace,
        remediation=rule.remediation,
        rule_id=rule.id,
        severity=rule.severity,
        source=source,
        suppressed=reason is not None,
        suppressed_reason=reason,
        title=rule.title,
    )
    return finding


_new = object.__new__
