"""Deployment audit: reliability, security and efficiency rules over Kubernetes objects.

``audit(objects)`` runs the registered rules (see :data:`RULES`) over API-JSON
dicts as an object source lists them and returns an :class:`AuditReport`.
Each rule states the peer checks (kube-score, Polaris, kube-linter, Checkov,
kubesec, pint) it is equivalent to. Pure functions: no I/O.
"""

from rknb.audit.engine import (
    IGNORE_ANNOTATION,
    Precomputed,
    audit,
    object_violations,
    parse_ignore,
    score_of,
)
from rknb.audit.exprs import parse as parse_promql
from rknb.audit.model import (
    FAIL_ON_SEVERITIES,
    SEVERITIES,
    SEVERITY_WEIGHTS,
    AuditConfig,
    AuditReport,
    Finding,
    ObjectIndex,
    ObjectSummary,
    Rule,
    Skipped,
    Violation,
    config_from_mapping,
    selector_matches,
)
from rknb.audit.output import (
    at_or_above,
    finding_record,
    findings_frame,
    findings_table,
    headline,
    objects_frame,
    rules_markdown,
    severity_counts,
    skipped_frame,
    skipped_label,
    to_json,
    to_junit,
    to_sarif,
    to_text,
    verdict,
)
from rknb.audit.registry import RULES, get_rules, rule
from rknb.audit.rules.containers import looks_secret

__all__ = [
    "FAIL_ON_SEVERITIES",
    "IGNORE_ANNOTATION",
    "RULES",
    "SEVERITIES",
    "SEVERITY_WEIGHTS",
    "AuditConfig",
    "AuditReport",
    "Finding",
    "ObjectIndex",
    "ObjectSummary",
    "Precomputed",
    "Rule",
    "Skipped",
    "Violation",
    "at_or_above",
    "audit",
    "config_from_mapping",
    "finding_record",
    "findings_frame",
    "findings_table",
    "get_rules",
    "headline",
    "looks_secret",
    "object_violations",
    "objects_frame",
    "parse_ignore",
    "parse_promql",
    "rule",
    "rules_markdown",
    "score_of",
    "selector_matches",
    "severity_counts",
    "skipped_frame",
    "skipped_label",
    "to_json",
    "to_junit",
    "to_sarif",
    "to_text",
    "verdict",
]
