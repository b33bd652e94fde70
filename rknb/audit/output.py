"""The audit report as text, JSON and a DataFrame, and its counts by severity."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import fields
from operator import attrgetter
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import orjson

from rknb.audit.model import (
    FAIL_ON_SEVERITIES,
    SEVERITIES,
    AuditReport,
    Finding,
    ObjectSummary,
    Skipped,
)
from rknb.errors import ParameterError

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "FINDING_COLUMNS",
    "at_or_above",
    "finding_record",
    "findings_frame",
    "findings_table",
    "headline",
    "json_bytes",
    "objects_frame",
    "printable",
    "rules_markdown",
    "severity_counts",
    "skipped_frame",
    "skipped_label",
    "to_json",
    "to_junit",
    "to_sarif",
    "to_text",
    "utf8",
    "verdict",
]

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
    counts.update(Counter(map(attrgetter("severity"), report.findings)))
    return counts


def findings_frame(report: AuditReport, *, include_suppressed: bool = False) -> pd.DataFrame:
    """Return the findings as a DataFrame, one row per finding, in report order."""
    import pandas as pd  # only the notebook's frames need pandas, not `rknb audit`

    rows = list(report.findings) + (list(report.suppressed) if include_suppressed else [])
    return pd.DataFrame([_row(f) for f in rows], columns=FINDING_COLUMNS)


def _row(finding: Finding) -> dict[str, Any]:
    return {column: getattr(finding, column) for column in FINDING_COLUMNS}


def to_json(report: AuditReport, *, extra: Mapping[str, Any] | None = None) -> str:
    """Return the report as JSON with sorted keys and findings in a stable order.

    Each finding, skipped object and per-object summary is one line: a 10,000-object
    report stays readable with ``grep``.

    Parameters
    ----------
    report
        The audit report.
    extra
        More top-level entries (``errors``: inputs that could not be read).
    """
    return json_bytes(report, extra=extra).decode("utf-8")


def json_bytes(report: AuditReport, *, extra: Mapping[str, Any] | None = None) -> bytes:
    """Return :func:`to_json`'s text as UTF-8, for writing as it is (50,000 findings are 25 MB).

    Parameters
    ----------
    report
        The audit report.
    extra
        More top-level entries (``errors``: inputs that could not be read).
    """
    document: dict[str, Any] = {
        "score": report.score,
        "severity_counts": severity_counts(report),
        "rules": sorted(report.rules),
        "findings": _finding_lines(report.findings),
        "suppressed": _finding_lines(report.suppressed),
        "skipped": sorted(
            (_skipped_row(s) for s in report.skipped),
            key=lambda s: (s["namespace"] or "", s["kind"] or "", s["name"] or ""),
        ),
        "objects": _summary_lines(report.objects),
        **(extra or {}),
    }
    return _json_lines(document)


def _skipped_row(skipped: Skipped) -> dict[str, Any]:
    return {f.name: getattr(skipped, f.name) for f in fields(Skipped)}


_SORTED_COLUMNS = tuple(sorted(FINDING_COLUMNS))


def _summary_lines(summaries: Sequence[ObjectSummary]) -> _JsonArray:
    # The per-object rows in one orjson call, keys sorted (nested findings counts too).
    # vars() is the dataclass's own field dict: dataclasses.asdict deep-copies field by field,
    # ten times slower for the same JSON.
    rows = list(map(vars, summaries))
    try:
        text = orjson.dumps(rows, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError:
        text = b"[" + b",".join(_dumps(row) for row in rows) + b"]"
    return _one_per_line(text, sorted(f.name for f in fields(ObjectSummary))[0])


class _JsonArray(list[bytes | memoryview]):
    """A JSON array already written (UTF-8) in pieces, one entry per line, indented."""


def _finding_lines(findings: Sequence[Finding]) -> _JsonArray:
    # The findings as one JSON array with each finding's keys sorted, written by one orjson
    # call (one call per finding spends most of its time allocating 50,000 buffers). orjson
    # writes a dict's keys in the dict's order, and the engine makes each finding's field
    # dict in sorted order (see engine._finding); when some finding's is not, every row is re-keyed.
    rows: list[Mapping[str, Any]] = list(map(vars, findings))
    if set(map(tuple, rows)) - {_SORTED_COLUMNS}:
        rows = [{column: getattr(f, column) for column in _SORTED_COLUMNS} for f in findings]
    try:
        text = orjson.dumps(rows)
    except orjson.JSONEncodeError:
        text = b"[" + b",".join(_dumps(row) for row in rows) + b"]"
    return _one_per_line(text, _SORTED_COLUMNS[0])


def _one_per_line(text: bytes, first: str) -> _JsonArray:
    # A JSON array of objects whose first key is `first`, with a line break before each
    # object: each opens with '{"first":', and inside a JSON string that quote would be
    # escaped, so the break can only fall between two entries. The pieces are joined once,
    # into the whole report (each copy of a 25 MB array costs).
    if text == b"[]":
        return _JsonArray([b"[]"])
    opening = b'{"' + first.encode() + b'":'
    body = text.replace(b"}," + opening, b"},\n    " + opening)
    return _JsonArray([b"[\n    ", memoryview(body)[1:-1], b"\n  ]"])


def _dumps(value: Any) -> bytes:
    # orjson for what it can write; the standard encoder for the rest (a lone surrogate in a
    # string, an integer past 64 bits, a key that is not a string), with the same meaning.
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError:
        text = json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
        return utf8(text)


def utf8(text: str) -> bytes:
    r"""Return text as UTF-8, a lone surrogate (from a ``\ud800`` escape) written as U+FFFD.

    A lone surrogate has no UTF-8 form, and its JSON escape is refused by jq and most
    parsers; the replacement character keeps every report valid.
    """
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        fixed = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
        return fixed.encode("utf-8")


def _json_lines(document: Mapping[str, Any]) -> bytes:
    # A JSON object with its keys sorted, each list entry on a line of its own.
    pieces: list[bytes | memoryview] = [b"{\n"]
    for number, key in enumerate(sorted(document)):
        value = document[key]
        pieces.append(b"%s  %s: " % (b",\n" if number else b"", _dumps(key)))
        if isinstance(value, _JsonArray):
            pieces.extend(value)
        elif isinstance(value, list) and value:
            pieces.append(b"[\n    %s\n  ]" % b",\n    ".join(map(_dumps, value)))
        else:
            pieces.append(_dumps(value))
    pieces.append(b"\n}\n")
    return b"".join(pieces)


# C0 and C1 controls, DEL, and the Unicode line separators and bidi overrides: a terminal or
# CI log acts on them (retitles the window, moves the cursor, reorders or hides text).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
# The same but tab and newline, and what XML 1.0 cannot hold even as a character reference.
_NOT_XML = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufffe\uffff\ud800-\udfff]"
)


_SHORT_ESCAPES = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _escaped(match: re.Match[str]) -> str:
    # A control character as Python writes it in a string literal: \n, \x1b, \u202e.
    if match.group() in _SHORT_ESCAPES:
        return _SHORT_ESCAPES[match.group()]
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: Any) -> str:
    r"""Return ``str(text)`` with control characters written as escapes (ESC as ``\x1b``)."""
    text = str(text)
    return text if text.isprintable() else _CONTROL.sub(_escaped, text)


def _xml_text(text: Any) -> str:
    # The text with controls and what XML 1.0 forbids written as escapes (tab, newline kept).
    text = str(text)
    return text if text.isprintable() else _NOT_XML.sub(_escaped, text)


def to_text(report: AuditReport) -> str:
    """Return the report as plain text: score, counts, then one block per finding.

    Control characters in names and messages are shown escaped (:func:`printable`).
    """
    return "\n".join(map(printable, _text_lines(report))) + "\n"


def _text_lines(report: AuditReport) -> list[str]:
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
        lines.extend(f"    {skipped_label(s)}: {s.reason}" for s in report.skipped)
    return lines


def skipped_label(skipped: Skipped) -> str:
    """Return what and where a skipped document is: ``Kind/namespace/name at path:line``.

    The parts that could not be read are left out: ``Deployment at chart.yaml:8`` for a
    template whose name is a template, ``chart.yaml:1`` when not even its kind was read.
    """
    parts = [p for p in (skipped.kind, skipped.namespace, skipped.name) if p]
    label = "/".join(parts)
    if skipped.source:
        return f"{label} at {skipped.source}" if label else skipped.source
    return label or "(a document without kind or name)"


def at_or_above(report: AuditReport, severity: str) -> list[Finding]:
    """Return the unsuppressed findings at ``severity`` or worse.

    ``severity`` is one of :data:`~rknb.audit.model.FAIL_ON_SEVERITIES`, the words
    ``rknb run --fail-on`` takes: ``warning`` means medium or worse, ``error`` critical.
    """
    if severity not in FAIL_ON_SEVERITIES:
        raise ParameterError(
            "fail_on",
            f"unknown severity {severity!r}; choose one of {', '.join(FAIL_ON_SEVERITIES)}",
        )
    cutoff = FAIL_ON_SEVERITIES.index(severity)
    return [f for f in report.findings if FAIL_ON_SEVERITIES.index(f.severity) >= cutoff]


def verdict(report: AuditReport, fail_on: str) -> tuple[str, str]:
    """Return ``("pass"|"fail", sentence)``: fail when a finding is at or above ``fail_on``."""
    blocking = at_or_above(report, fail_on)
    if blocking:
        return "fail", (
            f"{len(blocking)} finding(s) at {fail_on} severity or worse; score "
            f"{report.score:.0f}/100."
        )
    return "pass", f"No finding at {fail_on} severity or worse; score {report.score:.0f}/100."


def objects_frame(report: AuditReport) -> pd.DataFrame:
    """Return the per-object breakdown (worst score first): checks, failed, counts, score."""
    rows = [
        {
            "kind": o.kind,
            "namespace": o.namespace,
            "name": o.name,
            "checks": o.checks,
            "failed": o.failed,
            **{s: o.findings.get(s, 0) for s in SEVERITIES},
            "score": round(o.score, 1),
        }
        for o in report.objects
    ]
    import pandas as pd

    frame = pd.DataFrame(
        rows, columns=["kind", "namespace", "name", "checks", "failed", *SEVERITIES, "score"]
    )
    return frame.sort_values(["score", "kind", "namespace", "name"]).reset_index(drop=True)


def headline(report: AuditReport, fail_on: str) -> str:
    """Return the audit's headline as Markdown: verdict, score, counts, skipped objects."""
    status, sentence = verdict(report, fail_on)
    counts = severity_counts(report)
    lines = [
        f"**{'PASS' if status == 'pass' else 'FAIL'}: {sentence}**",
        "",
        "- Findings by severity: "
        + ", ".join(f"{counts[s]} {s}" for s in SEVERITIES if counts[s])
        + "."
        if report.findings
        else "- No findings.",
        f"- {len(report.objects)} objects checked against {len(report.rules)} rules; "
        f"{len(report.suppressed)} finding(s) suppressed, {len(report.skipped)} object(s) "
        "skipped.",
    ]
    worst = sorted(report.objects, key=lambda o: o.score)[:3]
    if worst and worst[0].failed:
        lines.append(
            "- Worst: "
            + "; ".join(
                f"{o.kind} `{o.namespace}/{o.name}` {o.score:.0f}/100" for o in worst if o.failed
            )
            + "."
        )
    return "\n".join(lines)


def finding_record(finding: Finding) -> dict[str, Any]:
    """Return one finding as a JSON-ready dict for ``results.json`` (no secret values)."""
    return {column: getattr(finding, column) for column in FINDING_COLUMNS}


def skipped_frame(report: AuditReport, unread: Sequence[Any] = ()) -> pd.DataFrame:
    """Return what was not checked: objects the audit skipped and documents never loaded.

    Parameters
    ----------
    report
        The audit report (its ``skipped`` objects).
    unread
        Documents a manifest source skipped (anything with ``path``, ``line``,
        ``kind``, ``name`` and ``reason``).
    """
    rows = [
        {
            "where": s.source or "audit",
            "kind": s.kind,
            "namespace": s.namespace,
            "name": s.name,
            "reason": s.reason,
        }
        for s in report.skipped
    ]
    rows += [
        {
            "where": f"{d.path}:{d.line}",
            "kind": d.kind,
            "namespace": None,
            "name": d.name,
            "reason": d.reason,
        }
        for d in unread
    ]
    import pandas as pd

    return pd.DataFrame(rows, columns=["where", "kind", "namespace", "name", "reason"])


def findings_table(report: AuditReport) -> pd.DataFrame:
    """Return the findings for reading: severity, rule, object, where, what is wrong, the fix."""
    rows = []
    for f in report.findings:
        where = (
            f"container {f.container}" if f.container else (f"alert {f.alert}" if f.alert else "")
        )
        rows.append(
            {
                "severity": f.severity,
                "rule": f.rule_id,
                "object": f"{f.kind} {f.namespace}/{f.name}"
                if f.namespace
                else f"{f.kind} {f.name}",
                "where": where,
                "finding": f.message,
                "fix": f.remediation,
            }
        )
    import pandas as pd

    return pd.DataFrame(rows, columns=["severity", "rule", "object", "where", "finding", "fix"])


#: SARIF levels by rknb severity (SARIF has error, warning, note).
SARIF_LEVELS = {
    "critical": "error",
    "high": "error",
    "medium": "warning",
    "low": "note",
    "info": "note",
}
_SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


def _location(finding: Finding) -> dict[str, Any]:
    location: dict[str, Any] = {
        "logicalLocations": [{"fullyQualifiedName": finding.object_key, "kind": "resource"}]
    }
    if finding.source:
        path, _, line = finding.source.rpartition(":")
        if not line.isdigit():
            path, line = finding.source, ""
        physical: dict[str, Any] = {"artifactLocation": {"uri": _uri(path)}}
        if line:
            physical["region"] = {"startLine": max(1, int(line))}
        location["physicalLocation"] = physical
    return location


def _uri(path: str) -> str:
    return quote(path.replace("\\", "/").removeprefix("./"))


def _sarif_result(
    finding: Finding, index: int, locations: dict[tuple[str, str | None], Any]
) -> dict[str, Any]:
    # ``locations`` holds each object's location list, built once and shared by its results
    # (an object has several findings; the JSON encoder writes a shared dict each time).
    where = f" container {finding.container}" if finding.container else ""
    where += f" alert {finding.alert}" if finding.alert else ""
    key = finding.object_key
    located = locations.get((key, finding.source))
    if located is None:
        located = locations[(key, finding.source)] = [_location(finding)]
    result: dict[str, Any] = {
        "ruleId": finding.rule_id,
        "ruleIndex": index,
        "level": SARIF_LEVELS[finding.severity],
        "message": {"text": f"{key}{where}: {finding.message}"},
        "locations": located,
        "properties": {"severity": finding.severity, "category": finding.category},
    }
    if finding.suppressed:
        in_source = (finding.suppressed_reason or "").startswith("rknb.io/ignore")
        result["suppressions"] = [
            {
                "kind": "inSource" if in_source else "external",
                "justification": finding.suppressed_reason or "",
            }
        ]
    return result


def to_sarif(
    report: AuditReport,
    *,
    version: str = "",
    notifications: Sequence[Mapping[str, Any]] = (),
    execution_successful: bool | None = None,
) -> str:
    """Return the report as a SARIF 2.1.0 log: one run, its rules, findings and suppressions.

    The log is compact JSON (one line): a large audit's SARIF is read by tools, not people,
    and the compact form is what Python's C encoder writes quickly.

    Parameters
    ----------
    report
        The audit report.
    version
        rknb's version, written as the tool driver's version when given.
    notifications
        SARIF ``toolExecutionNotifications``: inputs that could not be read (level
        ``error``) and warnings such as objects defined twice (level ``warning``).
    execution_successful
        The invocation's ``executionSuccessful``; by default false exactly when a
        notification has level ``error`` (an input was not audited), as SARIF 2.1.0 asks.
    """
    from rknb.audit.registry import RULES

    ids = sorted(report.rules)
    index = {rule_id: i for i, rule_id in enumerate(ids)}
    rules = []
    for rule_id in ids:
        r = RULES[rule_id]
        rules.append(
            {
                "id": r.id,
                "name": r.title,
                "shortDescription": {"text": r.title},
                "fullDescription": {"text": r.rationale},
                "help": {"text": r.remediation},
                "defaultConfiguration": {"level": SARIF_LEVELS[r.severity]},
                "properties": {
                    "category": r.category,
                    "severity": r.severity,
                    "tags": [r.category],
                    "equivalent": list(r.equivalent),
                },
            }
        )
    driver: dict[str, Any] = {
        "name": "rknb",
        "informationUri": "https://github.com/reasonkit/rknb",
        "rules": rules,
    }
    if version:
        driver["version"] = version
    locations: dict[tuple[str, str | None], Any] = {}
    results = [
        _sarif_result(f, index[f.rule_id], locations)
        for f in [*report.findings, *report.suppressed]
        if f.rule_id in index
    ]
    run: dict[str, Any] = {
        "tool": {"driver": driver},
        "results": results,
        "properties": {"score": report.score},
    }
    if execution_successful is None:
        execution_successful = not any(n.get("level") == "error" for n in notifications)
    invocation: dict[str, Any] = {"executionSuccessful": execution_successful}
    if notifications:
        invocation["toolExecutionNotifications"] = list(notifications)
    run["invocations"] = [invocation]
    log = {"$schema": _SARIF_SCHEMA, "version": "2.1.0", "runs": [run]}
    return json.dumps(log, sort_keys=True, ensure_ascii=False) + "\n"


def to_junit(report: AuditReport) -> str:
    """Return the report as JUnit XML: one test case per check (rule x object) that ran.

    A failed check is a ``failure`` with the findings' messages, a suppressed one is
    ``skipped`` with the reason; skipped objects are listed as skipped test cases too.
    """
    import xml.etree.ElementTree as ET

    from rknb.audit.registry import RULES

    by_check: dict[tuple[str, str], list[Finding]] = {}
    for f in report.findings:
        by_check.setdefault((f.rule_id, f.object_key), []).append(f)
    suppressed = {(f.rule_id, f.object_key): f for f in report.suppressed}

    suite = ET.Element("testsuite", name="rknb audit")
    failures = skipped = 0
    for rule_id, key in sorted(report.verdicts):
        case = ET.SubElement(
            suite,
            "testcase",
            classname=_xml_text(key),
            name=f"{rule_id} {RULES[rule_id].title}",
        )
        if (rule_id, key) in by_check:
            failures += 1
            found = by_check[(rule_id, key)]
            failure = ET.SubElement(
                case, "failure", message=_xml_text(found[0].message), type=found[0].severity
            )
            failure.text = _xml_text(
                "\n".join(f.message for f in found) + f"\nfix: {found[0].remediation}"
            )
        elif (rule_id, key) in suppressed:
            skipped += 1
            ET.SubElement(
                case,
                "skipped",
                message=_xml_text(suppressed[(rule_id, key)].suppressed_reason or ""),
            )
    for s in report.skipped:
        skipped += 1
        case = ET.SubElement(
            suite, "testcase", classname=_xml_text(skipped_label(s)), name="audited"
        )
        ET.SubElement(case, "skipped", message=_xml_text(s.reason))
    suite.set("tests", str(len(suite)))
    suite.set("failures", str(failures))
    suite.set("errors", "0")
    suite.set("skipped", str(skipped))
    suites = ET.Element("testsuites", name="rknb")
    suites.append(suite)
    ET.indent(suites)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"
    )


def rules_markdown() -> str:
    """Return the Markdown table of every rule (the text of ``docs/rules.md``)."""
    from rknb.audit.registry import get_rules

    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    lines = [
        "# Audit rules",
        "",
        "Generated from `rknb.audit.RULES`; do not edit by hand. Regenerate with",
        "",
        "    python -c \"from rknb.audit import rules_markdown as m; print(m(), end='')\" "
        "> docs/rules.md",
        "",
        "Rule ids are stable. *Optional* rules are advice and run only when enabled "
        "(`enabled: [RK-IMG-003]` in the audit config, or `*` for all). *Equivalent* peer "
        "checks give the same verdict; *divergent* ones judge some cases differently, and the "
        "rationale says which side rknb takes and why.",
        "",
        "| id | title | category | severity | kinds | equivalent peer checks | divergent | "
        "rationale | remediation |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in sorted(get_rules(), key=lambda r: r.id):
        severity = r.severity + (" (optional)" if r.optional else "")
        lines.append(
            "| "
            + " | ".join(
                [
                    f"`{r.id}`",
                    cell(r.title),
                    r.category,
                    severity,
                    ", ".join(r.kinds),
                    ", ".join(f"`{p}`" for p in r.equivalent) or "—",
                    ", ".join(f"`{p}`" for p in r.divergent) or "—",
                    cell(r.rationale),
                    cell(r.remediation),
                ]
            )
            + " |"
        )
    return "\n".join(lines) + "\n"
