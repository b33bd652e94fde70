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
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from rknb.audit.model import (
    SEVERITY_WEIGHTS,
    AuditConfig,
    AuditReport,
    Finding,
    ObjectIndex,
    ObjectSummary,
    Rule,
    Skipped,
    Violation,
    object_key_of,
    object_namespace,
)
from rknb.audit.registry import get_rules
from rknb.errors import ParameterError
from rknb.sources.base import SUPPORTED_KINDS

__all__ = ["IGNORE_ANNOTATION", "SOURCE_ANNOTATION", "audit", "parse_ignore", "score_of"]

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
    # One C-speed dump of the object is much cheaper than walking it in Python.
    try:
        text = json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError, RecursionError):
        return _walk_helm_action(value)
    return "{{" in text and _HELM_ACTION.search(text) is not None


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
    if config is None:
        return AuditConfig()
    if isinstance(config, AuditConfig):
        return config
    try:
        values: dict[str, Any] = {
            k: tuple(v) if isinstance(v, list) else v for k, v in dict(config).items()
        }
        if isinstance(values.get("metric_types"), Mapping):
            values["metric_types"] = tuple(sorted(values["metric_types"].items()))
        return AuditConfig(**values)
    except TypeError as error:
        raise ParameterError(
            "config",
            f"{sorted(config)} are not all audit settings; "
            "use min_replicas, disabled, ignore, enabled, scrape_interval_s, metric_types",
        ) from error


def _suppression(
    rule: Rule, obj: Mapping[str, Any], config_ignores: Sequence[tuple[str, str | None, str]]
) -> str | None:
    meta = obj.get("metadata") or {}
    annotations = dict(meta.get("annotations") or {})
    template_meta = ((obj.get("spec") or {}).get("template") or {}).get("metadata") or {}
    for source in (annotations, template_meta.get("annotations") or {}):
        text = source.get(IGNORE_ANNOTATION)
        if text:
            ids, reason = parse_ignore(str(text))
            if rule.id in ids or "*" in ids:
                return f"{IGNORE_ANNOTATION}: {reason}"
    key = object_key_of(str(obj.get("kind")), object_namespace(obj), str(meta.get("name", "")))
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
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return f"{ref.get('kind')}/{ref.get('name')}"
    return None


def _enabled(rule: Rule, settings: AuditConfig) -> bool:
    if not rule.optional:
        return True
    return any(e in ("*", rule.id) or rule.id.startswith(e + "-") for e in settings.enabled)


def score_of(checks: Iterable[tuple[str, bool]]) -> float:
    """Return the 0-100 score of (severity, passed) checks (formula in the module docstring)."""
    total = failed = 0
    for severity, passed in checks:
        weight = SEVERITY_WEIGHTS[severity]
        total += weight
        if not passed:
            failed += weight
    return 100.0 if total == 0 else round(100.0 * (1 - failed / total), 1)


def audit(
    objects: Sequence[Mapping[str, Any]],
    *,
    rules: Iterable[str] | None = None,
    config: AuditConfig | Mapping[str, Any] | None = None,
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
    """
    settings = _config_of(config)
    selected = [
        r
        for r in get_rules(rules)
        if r.id not in settings.disabled and (rules is not None or _enabled(r, settings))
    ]
    ignores = _parse_config_ignores(settings.ignore)
    known_kinds = {kind for r in get_rules() for kind in r.kinds} | _READ_KINDS

    # Decide what is audited before any rule runs: cross-object rules see only real objects.
    audited: list[Mapping[str, Any]] = []
    skipped: list[Skipped] = []
    for obj in objects:
        meta = obj.get("metadata") or {}
        kind = obj.get("kind")
        name = meta.get("name")
        namespace = object_namespace(obj) if kind else None
        if _has_helm_action(obj):
            skipped.append(
                Skipped(kind, namespace, name, "unrendered Helm template; render it first")
            )
        elif kind not in known_kinds:
            why = (
                f"no rule checks kind {kind} yet"
                if kind in SUPPORTED_KINDS
                else f"kind {kind} is a custom resource or a kind rknb does not audit"
            )
            skipped.append(Skipped(kind, namespace, name, why))
        elif kind in ("ReplicaSet", "Pod") and _controlled_by(obj):
            why = f"managed by {_controlled_by(obj)}, whose template is audited instead"
            skipped.append(Skipped(kind, namespace, name, why))
        else:
            audited.append(obj)
    index = ObjectIndex(audited)

    findings: list[Finding] = []
    suppressed: list[Finding] = []
    verdicts: dict[tuple[str, str], bool] = {}
    per_object: dict[str, list[tuple[str, bool]]] = {}
    keys = {id(o): _key(o) for o in audited}
    for rule in selected:
        targets = [o for kind in rule.kinds for o in index.of_kind(kind)]
        by_key: dict[str, list[Violation]] = {keys[id(o)]: [] for o in targets}
        if rule.scope == "set":
            for violation in rule.check(index, settings):
                if violation.obj is None:
                    continue
                key = keys.get(id(violation.obj)) or _key(violation.obj)
                if key in by_key:
                    by_key[key].append(violation)
        else:
            for obj in targets:
                by_key[keys[id(obj)]].extend(rule.check(obj, settings))

        for obj in targets:
            key = keys[id(obj)]
            violations = by_key[key]
            reason = _suppression(rule, obj, ignores) if violations else None
            made = [_finding(rule, obj, v, reason) for v in violations]
            (suppressed if reason else findings).extend(made)
            passed = not violations or reason is not None
            verdicts[(rule.id, key)] = not violations
            if reason is None:
                per_object.setdefault(key, []).append((rule.severity, passed))

    summaries = []
    objects_by_key = {_key(o): o for o in audited}
    counts_by_key: dict[str, dict[str, int]] = {}
    for f in findings:
        counts = counts_by_key.setdefault(f.object_key, {})
        counts[f.severity] = counts.get(f.severity, 0) + 1
    for key, checks in per_object.items():
        obj = objects_by_key[key]
        counts = counts_by_key.get(key, {})
        summaries.append(
            ObjectSummary(
                kind=str(obj.get("kind")),
                namespace=object_namespace(obj),
                name=str((obj.get("metadata") or {}).get("name", "")),
                checks=len(checks),
                failed=sum(1 for _, ok in checks if not ok),
                findings=counts,
                score=score_of(checks),
            )
        )
    summaries.sort(key=lambda s: (s.namespace or "", s.kind, s.name))
    score = score_of(check for checks in per_object.values() for check in checks)
    logger.debug("audited %d objects with %d rules: score %.1f", len(audited), len(selected), score)
    return AuditReport(
        findings=sorted(findings, key=_finding_order),
        suppressed=sorted(suppressed, key=_finding_order),
        skipped=skipped,
        score=score,
        objects=summaries,
        rules=[r.id for r in selected],
        verdicts=verdicts,
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


def _finding(
    rule: Rule, obj: Mapping[str, Any], violation: Violation, reason: str | None
) -> Finding:
    meta = obj.get("metadata") or {}
    finding = Finding(
        rule_id=rule.id,
        title=rule.title,
        severity=rule.severity,
        category=rule.category,
        kind=str(obj.get("kind")),
        namespace=object_namespace(obj),
        name=str(meta.get("name", "")),
        container=violation.container,
        alert=violation.alert,
        message=violation.message,
        remediation=rule.remediation,
        source=(meta.get("annotations") or {}).get(SOURCE_ANNOTATION),
    )
    if reason is not None:
        finding = replace(finding, suppressed=True, suppressed_reason=reason)
    return finding
