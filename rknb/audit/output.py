"""The audit report as text, JSON and a DataFrame, and its counts by severity."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

import pandas as pd

from rknb.audit.model import SEVERITIES, AuditReport, Finding

__all__ = ["FINDING_COLUMNS", "findings_frame", "severity_counts", "to_json", "to_text"]

FINDING_COLUMNS = [
    "rule_id",
    "severity",
    "category",
    "kind",
    "namespace",
    "name",
    "container",
    "alert",
    "title",
    "message",
    "remediation",
    "source",
    "suppressed",
    "suppressed_reason",
]


def severity_counts(report: AuditReport) -> dict[str, int]:
    """Return the number of unsuppressed findings per severity, every severity present."""
    counts: dict[str, int] = dict.fromkeys(SEVERITIES, 0)
    for finding in report.findings:
        counts[finding.severity] += 1
    return counts


def findings_frame(report: AuditReport, *, include_suppressed: bool = False) -> pd.DataFrame:
    """Return the findings as a DataFrame, one row per finding, in report order."""
    rows = list(report.findings) + (list(report.suppressed) if include_suppressed else [])
    return pd.DataFrame([_row(f) for f in rows], columns=FINDING_COLUMNS)


def _row(finding: Finding) -> dict[str, Any]:
    return {column: getattr(finding, column) for column in FINDING_COLUMNS}


def to_json(report: AuditReport) -> str:
    """Return the report as JSON with sorted keys and findings in a stable order."""
    document = {
        "score": report.score,
        "severity_counts": severity_counts(report),
        "rules": sorted(report.rules),
        "findings": [_row(f) for f in report.findings],
        "suppressed": [_row(f) for f in report.suppressed],
        "skipped": sorted(
            (asdict(s) for s in report.skipped),
            key=lambda s: (s["namespace"] or "", s["kind"] or "", s["name"] or ""),
        ),
        "objects": [asdict(o) for o in report.objects],
    }
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def to_text(report: AuditReport) -> str:
    """Return the report as plain text: score, counts, then one block per finding."""
    counts = severity_counts(report)
    lines = [
        f"Audit score {report.score:.1f}/100",
        "Findings: " + ", ".join(f"{counts[s]} {s}" for s in SEVERITIES),
        "",
    ]
    for f in report.findings:
        where = f.object_key + (f" container {f.container}" if f.container else "")
        where += f" alert {f.alert}" if f.alert else ""
        lines.append(f"[{f.severity.upper()}] {f.rule_id} {f.title}: {where}")
        lines.append(f"    {f.message}")
        lines.append(f"    fix: {f.remediation}")
        if f.source:
            lines.append(f"    at: {f.source}")
    if report.suppressed:
        lines.append("")
        lines.append(f"Suppressed ({len(report.suppressed)}):")
        lines.extend(
            f"    {f.rule_id} {f.object_key}: {f.suppressed_reason}" for f in report.suppressed
        )
    if report.skipped:
        lines.append("")
        lines.append(f"Skipped ({len(report.skipped)}):")
        for s in report.skipped:
            lines.append(f"    {s.kind}/{s.namespace or '-'}/{s.name}: {s.reason}")
    return "\n".join(lines) + "\n"
