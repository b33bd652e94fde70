"""The audit conformance runner: rknb's rule verdicts against the peers' stated verdicts.

A case is one verdict a peer linter states for one object (``stated`` in
``expected.json``) or one Checkov result for one object (``checkov``), for the
Checkov checks whose concern rknb covers. rknb's rules declare the peer checks
they are equivalent to (:attr:`rknb.audit.Rule.equivalent`); a peer check
several rules share is failed by rknb when any of them fails the object. A
case where rknb differs from a peer is ``divergent`` only when the rule lists
that peer check as divergent and explains its side in its rationale;
otherwise it fails, as does a peer check no rule declares.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import re
import stat
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from rknb.audit import (
    AuditConfig,
    AuditReport,
    Precomputed,
    Rule,
    audit,
    get_rules,
    object_violations,
)
from rknb.audit.model import config_from_mapping, object_key_of, object_namespace
from rknb.conformance import CaseResult, Status, Summary
from rknb.errors import ParameterError, RknbError
from rknb.sources.base import SUPPORTED_KINDS
from rknb.sources.manifests import MANIFEST_SUFFIXES, SOURCE_ANNOTATION, SkippedDocument
from rknb.sources.objects import is_cluster_scoped, strip_secret
from rknb.yamlfile import (
    MAX_EXPANDED_NODES,
    MAX_NESTING,
    SAFE_LOADER,
    NestingError,
    construct_document,
    expanded_size,
    load_yaml_parameter_file,
    nests_deeper_than,
)

logger = logging.getLogger(__name__)

__all__ = [
    "AUDIT_KINDS",
    "CHECKOV_IN_SCOPE",
    "PINT_NOT_COVERED",
    "PINT_SUMMARY_RULES",
    "AuditInputs",
    "AuditSummary",
    "InputError",
    "checkov_by_resource",
    "checkov_cases",
    "peer_map",
    "read_inputs",
    "run",
]

#: Checkov checks whose concern is in sections 1 and 2 of the shared RULES.md (the rest are
#: control-plane flags, PodSecurityPolicy and RBAC checks rknb does not cover).
CHECKOV_IN_SCOPE = frozenset(
    [f"CKV_K8S_{n}" for n in (*range(8, 24), 25, 26, 27, 28, 29, 30, 31, 33, 34, 35)]
    + [f"CKV_K8S_{n}" for n in (37, 38, 39, 40, 41, 43, 152, 153, 154, 159)]
    + ["CKV2_K8S_6"]
)

_TOOLS = {"kube-score", "polaris", "kube-linter", "checkov", "kubesec"}


def peer_map(rules: Iterable[Rule]) -> dict[str, list[tuple[Rule, bool]]]:
    """Return ``tool:check`` -> [(rule, equivalent?)] from the rules' declarations."""
    found: dict[str, list[tuple[Rule, bool]]] = {}
    for r in rules:
        for peer in r.equivalent:
            found.setdefault(peer, []).append((r, True))
        for peer in r.divergent:
            found.setdefault(peer, []).append((r, False))
    return found


def _verdict(
    report: AuditReport, mapped: Sequence[tuple[Rule, bool]], obj: Mapping[str, Any]
) -> tuple[str, bool]:
    # Returns (rknb verdict "pass"/"fail", whether the difference may be divergent).
    kind = str(obj.get("kind"))
    key = object_key_of(kind, object_namespace(obj), str((obj.get("metadata") or {}).get("name")))
    applicable = [(r, eq) for r, eq in mapped if kind in r.kinds]
    equivalent = [r for r, eq in applicable if eq]
    chosen = equivalent or [r for r, eq in applicable if not eq]
    passed = all(report.verdicts.get((r.id, key), True) for r in chosen)
    may_diverge = any(not eq for _, eq in applicable)
    return ("pass" if passed else "fail"), may_diverge


def _find(objects: Sequence[Mapping[str, Any]], ref: str) -> list[Mapping[str, Any]]:
    parts = ref.split("/")
    kind, name = parts[0], parts[-1]
    namespace = parts[1] if len(parts) == 3 else None
    return [
        o
        for o in objects
        if o.get("kind") == kind
        and (o.get("metadata") or {}).get("name") == name
        and (namespace is None or object_namespace(o) == namespace)
    ]


def _checkov_object(objects: Sequence[Mapping[str, Any]], resource: str) -> list[Mapping[str, Any]]:
    kind, _, rest = resource.partition(".")
    namespace, _, name = rest.partition(".")
    exact = _find(objects, f"{kind}/{namespace}/{name}")
    if exact or kind != "Pod":
        return exact
    # Checkov derives a Pod named "<workload>.<labels>" from each pod template for its graph
    # checks; its verdict belongs to that workload.
    return [
        o
        for o in objects
        if object_namespace(o) == namespace
        and o.get("kind") != "Pod"
        and name.startswith(str((o.get("metadata") or {}).get("name")) + ".")
    ][:1]


def _case(
    case_id: str,
    expected: str,
    mapped: Sequence[tuple[Rule, bool]],
    targets: Sequence[Mapping[str, Any]],
    report: AuditReport,
    skipped: Mapping[str, str],
    ref: str,
    whole_file: bool = False,
) -> CaseResult:
    if not mapped:
        return CaseResult(case_id, "failed", expected, None, "no rknb rule declares this check")
    if not targets:
        if expected == "pass" and whole_file:
            # A stated verdict for a whole file whose objects no equivalent rule checks:
            # the peer skips them as well (kube-score's pod-probes on a CronJob).
            return CaseResult(case_id, "passed", expected, "not applicable")
        reason = skipped.get(ref.split("/")[0])
        if reason:
            return CaseResult(case_id, "skipped", expected, None, reason)
        return CaseResult(case_id, "failed", expected, None, f"object {ref} not found")
    status: Status = "passed"
    actual = expected
    for obj in targets:
        verdict, may_diverge = _verdict(report, mapped, obj)
        if verdict != expected:
            actual = verdict
            status = "divergent" if may_diverge and status != "failed" else "failed"
    rules = ", ".join(sorted({r.id for r, _ in mapped}))
    return CaseResult(case_id, status, expected, actual, f"rknb {rules}")


def _manifest_cases(folder: Path, name: str, entry: Mapping[str, Any]) -> list[CaseResult]:
    inputs = read_inputs([folder / "fixtures" / name])
    if inputs.errors:
        return [CaseResult(name, "failed", "readable", inputs.errors[0].text())]
    objects = inputs.objects
    skipped = {
        str(d.kind): f"rknb does not read kind {d.kind} ({d.reason})"
        for d in inputs.skipped
        if d.kind
    }
    report = audit(objects, config=AuditConfig(enabled=("*",)))
    peers = peer_map(get_rules())
    results = []

    for stated in entry.get("stated") or []:
        tool, check = stated["tool"], stated["check"]
        mapped = peers.get(f"{tool}:{check}", [])
        ref = stated.get("object")
        if ref:
            targets = _find(objects, ref)
        else:
            kinds = {k for r, _ in mapped for k in r.kinds}
            targets = [o for o in objects if o.get("kind") in kinds]
            ref = "/".join(sorted(kinds)) or "?"
        case_id = f"{name}:{tool}:{check}:{stated.get('object') or 'all'}"
        results.append(
            _case(
                case_id,
                stated["result"],
                mapped,
                targets,
                report,
                skipped,
                ref,
                not stated.get("object"),
            )
        )

    checkov = (entry.get("checkov") or {}).get("by_resource") or {}
    results.extend(checkov_cases(name, checkov, objects, report, skipped))
    return results


def checkov_by_resource(output: Any) -> dict[str, dict[str, list[str]]]:
    """Return Checkov's verdicts as ``{resource: {"failed": [ids], "passed": [ids]}}``.

    ``output`` is what ``checkov -o json`` prints for the kubernetes framework: one report
    (a mapping with ``results``) or a list of them, one per framework.
    """
    reports = output if isinstance(output, list) else [output]
    found: dict[str, dict[str, list[str]]] = {}
    for report in reports:
        results = report.get("results") or {} if isinstance(report, Mapping) else {}
        for outcome, key in (("failed", "failed_checks"), ("passed", "passed_checks")):
            for check in results.get(key) or []:
                verdicts = found.setdefault(str(check["resource"]), {"failed": [], "passed": []})
                verdicts[outcome].append(str(check["check_id"]))
    return found


def checkov_cases(
    name: str,
    by_resource: Mapping[str, Mapping[str, Sequence[str]]],
    objects: Sequence[Mapping[str, Any]],
    report: AuditReport,
    skipped: Mapping[str, str] | None = None,
) -> list[CaseResult]:
    """Return one case per Checkov verdict in scope, passed when rknb's report agrees.

    Parameters
    ----------
    name
        What the cases are named after (a fixture file).
    by_resource
        Checkov's verdicts (:func:`checkov_by_resource`).
    objects
        The objects Checkov and rknb were given.
    report
        rknb's audit of them.
    skipped
        Why rknb did not read a kind, by kind: its cases are not applicable.
    """
    peers = peer_map(get_rules())
    # Kind.namespace.name -> objects, so that thousands of resources are found at once.
    named: dict[str, list[Mapping[str, Any]]] = {}
    for obj in objects:
        namespace = object_namespace(obj)
        if namespace is not None:  # cluster-scoped objects are looked up one by one
            name_of = str((obj.get("metadata") or {}).get("name"))
            named.setdefault(f"{obj.get('kind')}.{namespace}.{name_of}", []).append(obj)
    results = []
    for resource, outcome in sorted(by_resource.items()):
        targets = named.get(resource) or _checkov_object(objects, resource)
        ref = resource.split(".")[0]
        for expected, ids in (
            ("fail", outcome.get("failed") or []),
            ("pass", outcome.get("passed") or []),
        ):
            for check in ids:
                if check not in CHECKOV_IN_SCOPE:
                    continue
                mapped = peers.get(f"checkov:{check}", [])
                case_id = f"{name}:checkov:{check}:{resource}"
                results.append(
                    _case(case_id, expected, mapped, targets, report, skipped or {}, ref)
                )
    return results


@dataclass
class AuditSummary(Summary):
    """The audit runner's summary: cases rknb has no rule for are "not applicable".

    They are kept with status ``skipped`` (never passed) and counted on their own at the
    end of the closing line: ``N passed, N failed, N divergent, N not applicable``.
    """

    def closing_line(self) -> str:
        """Return ``N passed, N failed, N divergent`` and the not-applicable count."""
        line = f"{self.passed} passed, {self.failed} failed, {self.divergent} divergent"
        return line + (f", {self.skipped} not applicable" if self.skipped else "")


def run(paths: Sequence[Path], **options: Any) -> Summary:
    """Return the summary of the audit fixture folders (``expected.json`` plus ``fixtures/``).

    The folder's ``prometheus_rules`` (pint's unit cases and end-to-end files) run too.
    """
    if options:
        raise ParameterError("options", f"the audit runner takes no options, got {sorted(options)}")
    summary = AuditSummary("audit", always_show=("divergent",))
    for folder in paths:
        folder = Path(folder)
        if folder.is_file():
            folder = folder.parent
        expected_path = folder / "expected.json"
        try:
            expected = json.loads(expected_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as error:
            raise ParameterError(
                "paths", f"{expected_path} cannot be read as the audit expectations ({error})"
            ) from error
        for name, entry in sorted((expected.get("manifests") or {}).items()):
            summary.results.extend(_manifest_cases(folder, name, entry))
        if expected.get("prometheus_rules"):
            summary.results.extend(_pint_cases(folder, expected["prometheus_rules"]))
    return summary


# --------------------------------------------------------------------------- pint's cases
#
# pint's verdicts (``prometheus_rules`` in expected.json): its unit cases (one rule list, a
# mocked Prometheus, the problems pint reports) and its end-to-end files (rule files, a
# pint.hcl and the problems pint printed). A case whose pint check no rknb rule declares
# as equivalent is "skipped" as not applicable, with the reason: counted apart, never passed.

#: pint problems rknb deliberately does not report, by (check, summary prefix), and why.
PINT_NOT_COVERED: dict[tuple[str, str], str] = {
    ("alerts/for", "redundant field with default value"): (
        "rknb does not report a written-out default: `for: 0` is RK-PROM-003's 'no for', and "
        "keep_firing_for: 0 changes nothing"
    ),
}

#: pint problem summaries that name one rknb rule, where a pint check maps to several.
PINT_SUMMARY_RULES: dict[tuple[str, str], str] = {
    ("promql/rate", "duration too small"): "RK-PROM-007",
    ("promql/rate", "counter based function called on a non-counter"): "RK-PROM-006",
    ("promql/rate", "chained rate call"): "RK-PROM-006",
}

#: pint problems about rules its unit test passed besides the case's own (``entries``): a
#: case that does not carry them cannot show them to rknb.
_PINT_NEEDS_ENTRIES = frozenset({("promql/rate", "chained rate call")})

#: pint checks after which pint runs no other check on the rule (it cannot read it).
_PINT_FATAL = frozenset({"promql/syntax", "yaml/parse"})


def _pint_object(name: str, rules: Any) -> dict[str, Any]:
    groups = rules.get("groups") if isinstance(rules, Mapping) else [{"name": name, "rules": rules}]
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": name, "namespace": "pint"},
        "spec": {"groups": groups or []},
    }


def _duration_s(text: str | None, default: float) -> float:
    from rknb.times import parse_duration

    return default if not text else parse_duration(str(text))


def _fired(report: AuditReport, rule_ids: Iterable[str], name: str | None = None) -> set[str]:
    # The given rules that report anything (on the object of this name, when given).
    wanted = set(rule_ids)
    return {
        f.rule_id
        for f in report.findings
        if f.rule_id in wanted and (name is None or f.name == name)
    }


def _pint_equivalents(check: str) -> list[Rule]:
    return [r for r, eq in peer_map(get_rules()).get(f"pint:{check}", []) if eq]


def _not_covered(check: str, summary: str) -> str | None:
    for (covered_check, prefix), why in PINT_NOT_COVERED.items():
        if covered_check == check and summary.startswith(prefix):
            return why
    return None


def _pint_unit_cases(path: Path) -> list[CaseResult]:
    try:
        cases = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise ParameterError("paths", f"{path} cannot be read as pint's cases ({error})") from error
    results = []
    for number, case in enumerate(cases):
        check = str(case["check"]).removeprefix("pint ")
        case_id = f"pint-unit:{number}:{check}:{case.get('description', '')}"
        problems = [p for p in case.get("problems") or [] if p.get("reporter") == check]
        expected = "fail" if case.get("expect_problem") else "pass"
        mapped = _pint_equivalents(check)
        if not mapped:
            why = f"not applicable: no rknb rule is equivalent to pint {check}"
            results.append(CaseResult(case_id, "skipped", expected, None, why))
            continue
        covered = [p for p in problems if not _not_covered(check, str(p.get("summary", "")))]
        if not case.get("entries") and any(
            (check, str(p.get("summary"))) in _PINT_NEEDS_ENTRIES for p in covered
        ):
            why = (
                "not applicable: pint found this through other rules its test passed "
                "(entries), which the case does not carry"
            )
            results.append(CaseResult(case_id, "skipped", expected, None, why))
            continue
        if problems and not covered:
            why = "not applicable: " + str(_not_covered(check, str(problems[0]["summary"])))
            results.append(CaseResult(case_id, "skipped", expected, None, why))
            continue
        mock = case.get("prometheus_mock") or {}
        config = AuditConfig(
            scrape_interval_s=_duration_s(mock.get("scrape_interval"), 60.0),  # pint's default
            metric_types=tuple(sorted((mock.get("metadata_types") or {}).items())),
        )
        obj = _pint_object(f"case-{number}", yaml.safe_load(case["rule"]))
        objects = [obj]
        if case.get("entries"):  # rules pint's test passed besides (as the rule, YAML text)
            objects.append(_pint_object(f"entries-{number}", yaml.safe_load(case["entries"])))
        ids = [r.id for r in mapped]
        report = audit(objects, rules=ids, config=config)
        fired = _fired(report, ids, f"case-{number}")
        named = {PINT_SUMMARY_RULES.get((check, str(p.get("summary")))) for p in covered}
        if covered and None not in named:
            # Each problem pint reports names the rknb rule that must report it.
            want: set[str | None] = named
            status: Status = "passed" if fired == want else "failed"
            results.append(
                CaseResult(case_id, status, sorted(map(str, want)), sorted(fired), "rknb rules")
            )
            continue
        actual = "fail" if fired else "pass"
        status = "passed" if actual == ("fail" if covered else "pass") else "failed"
        rules = ", ".join(ids)
        results.append(CaseResult(case_id, status, expected, actual, f"rknb {rules}"))
    return results


def _pint_hcl(text: str) -> dict[str, Any]:
    # The few pint.hcl settings rknb has counterparts of: required labels and annotations
    # (with their value patterns) and rule/for bounds. Not an HCL parser.
    import re

    settings: dict[str, Any] = {"alert_labels": (), "alert_annotations": ()}
    for block, name, body in re.findall(r'\b(label|annotation)\s+"([^"]+)"\s*\{([^}]*)\}', text):
        if not re.search(r"\brequired\s*=\s*true\b", body):
            continue
        value = re.search(r'\bvalue\s*=\s*"([^"]*)"', body)
        key = "alert_labels" if block == "label" else "alert_annotations"
        settings[key] += ((name, value.group(1) if value else ""),)
    bounds = re.search(r"\bfor\s*\{([^}]*)\}", text)
    if bounds:
        low = re.search(r'\bmin\s*=\s*"([^"]+)"', bounds.group(1))
        high = re.search(r'\bmax\s*=\s*"([^"]+)"', bounds.group(1))
        settings["alert_for_min_s"] = _duration_s(low.group(1) if low else None, 0.0)
        if high:
            settings["alert_for_max_s"] = _duration_s(high.group(1), 0.0)
    return settings


def _pint_rule_objects(path: Path) -> list[dict[str, Any]]:
    # pint's relaxed format (a bare list of rules), a groups file, or rules in a ConfigMap.
    objects = []
    for document in yaml.safe_load_all(path.read_text(encoding="utf-8")):
        if isinstance(document, list) or (isinstance(document, Mapping) and "groups" in document):
            objects.append(_pint_object(path.stem, document))
        elif isinstance(document, Mapping) and document.get("kind") == "ConfigMap":
            for value in (document.get("data") or {}).values():
                embedded = yaml.safe_load(str(value))
                if isinstance(embedded, Mapping) and "groups" in embedded:
                    objects.append(_pint_object(path.stem, embedded))
    return objects


def _pint_disabled(path: Path) -> set[tuple[str, str]]:
    # (alert, check) pairs a `# pint disable CHECK` comment turns off (comments are not YAML).
    import re

    found: set[tuple[str, str]] = set()
    alert = None
    for line in path.read_text(encoding="utf-8").splitlines():
        start = re.match(r"\s*-\s*alert:\s*(.+?)\s*(#.*)?$", line)
        if start:
            alert = start.group(1).strip("'\"")
        for check in re.findall(r"#\s*pint\s+disable\s+(\S+)", line):
            if alert is not None:
                found.add((alert, check))
    return found


def _e2e_files(key: str) -> list[str]:
    # "pint-0007_alerts--0001.yaml + --0002.yaml" names two files sharing a prefix.
    parts = [p.strip() for p in key.split(" + ")]
    prefix = parts[0].rpartition("--")[0]
    return [prefix + p if p.startswith("--") else p for p in parts]


def _alert_names(objects: Sequence[Mapping[str, Any]]) -> list[str]:
    names = []
    for obj in objects:
        for group in (obj.get("spec") or {}).get("groups") or []:
            for item in group.get("rules") or []:
                if isinstance(item, Mapping) and "alert" in item and item["alert"] not in names:
                    names.append(str(item["alert"]))
    return names


def _e2e_verdicts(report: AuditReport, rule_ids: Iterable[str]) -> dict[str, set[str]]:
    # alert name -> the given rules that report it.
    wanted = set(rule_ids)
    found: dict[str, set[str]] = {}
    for f in report.findings:
        if f.rule_id in wanted and f.alert:
            found.setdefault(f.alert.rpartition("/")[2], set()).add(f.rule_id)
    return found


def _pint_e2e_cases(folder: Path, key: str, entry: Mapping[str, Any]) -> list[CaseResult]:
    files = [folder / name for name in _e2e_files(key)]
    objects = [o for path in files for o in _pint_rule_objects(path)]
    disabled = {pair for path in files for pair in _pint_disabled(path)}
    config_name = str(entry.get("config") or "").split(" ")[0]
    settings = _pint_hcl((folder / config_name).read_text(encoding="utf-8")) if config_name else {}
    config = AuditConfig(**settings)
    results: list[CaseResult] = []
    names = _alert_names(objects)

    if "expected" in entry:  # rknb's own fixture: its verdicts per alert
        ids = ["RK-PROM-001", "RK-PROM-002"]
        fired = _e2e_verdicts(audit(objects, rules=ids, config=config), ids)
        for stated in entry["expected"]:
            alert = str(stated["rule"])
            expected = str(stated["rknb"]).split(" ")[0]
            actual = "fail" if fired.get(alert) else "pass"
            status: Status = "passed" if actual == expected else "failed"
            results.append(CaseResult(f"{key}:rknb:{alert}", status, expected, actual))
        return results

    problems = entry.get("pint_problems") or []
    checks = {str(p["check"]) for p in problems}
    checks |= {"rule/label"} if settings.get("alert_labels") else set()
    checks |= {"alerts/annotation"} if settings.get("alert_annotations") else set()
    checks |= {"rule/for"} if "alert_for_min_s" in settings else set()
    unreadable = {str(p["rule"]) for p in problems if p["check"] in _PINT_FATAL}
    for check in sorted(checks):
        flagged = {str(p["rule"]) for p in problems if p["check"] == check}
        mapped = _pint_equivalents(check)
        ids = [r.id for r in mapped]
        fired = _e2e_verdicts(audit(objects, rules=ids, config=config), ids) if ids else {}
        for alert in names:
            case_id = f"{key}:pint:{check}:{alert}"
            expected = "fail" if alert in flagged else "pass"
            if not mapped:
                if alert in flagged:
                    why = f"not applicable: no rknb rule is equivalent to pint {check}"
                    results.append(CaseResult(case_id, "skipped", expected, None, why))
                continue
            if alert in unreadable and check not in _PINT_FATAL:
                why = "not applicable: pint reports no other problem for a rule it cannot read"
                results.append(CaseResult(case_id, "skipped", expected, None, why))
                continue
            if (alert, check) in disabled:
                why = (
                    "not applicable: a `# pint disable` comment turns the check off; rknb "
                    "suppresses with its rknb.io/ignore annotation or config instead"
                )
                results.append(CaseResult(case_id, "skipped", expected, None, why))
                continue
            actual = "fail" if fired.get(alert) else "pass"
            status = "passed" if actual == expected else "failed"
            results.append(CaseResult(case_id, status, expected, actual, f"rknb {', '.join(ids)}"))
    return results


def _pint_cases(folder: Path, spec: Mapping[str, Any]) -> list[CaseResult]:
    rules_folder = folder / str(spec.get("fixtures_dir") or "prom-rules/")
    results = []
    unit = (spec.get("unit_cases") or {}).get("file")
    if unit:
        results.extend(_pint_unit_cases(folder / str(unit)))
    for key, entry in sorted((spec.get("e2e") or {}).items()):
        results.extend(_pint_e2e_cases(rules_folder, key, entry))
    return results


# --------------------------------------------------------------------------- reading inputs
#
# `rknb audit` and this runner read manifests here rather than through ManifestSource: one
# bad file must become one error entry while the rest of the run completes, a YAML alias
# bomb must be refused before anything walks it, and 10,000 objects must read in well under
# a second (libyaml's loader when PyYAML has it).

#: Kinds the audit reads: what rknb's sources read, plus OpenShift's DeploymentConfig and the
#: Prometheus operator's ServiceMonitor (RK-MON-001 reads it; of group monitoring.coreos.com).
AUDIT_KINDS = frozenset((*SUPPORTED_KINDS, "DeploymentConfig", "ServiceMonitor"))
#: Kinds read only from their own API group (another group's kind of that name is a CRD).
_KIND_GROUPS = {"ServiceMonitor": "monitoring.coreos.com/"}
#: Files larger than this are reported as an error instead of read (bytes). Parsed YAML
#: takes about 20 times its size in memory: a 16 MiB file (some 45,000 objects) stays
#: within the audit's 500 MB budget, a 50 MB one would not.
MAX_FILE_BYTES = 16 * 1024 * 1024
_LOADER: Any = SAFE_LOADER


@dataclass(frozen=True)
class InputError:
    """A file (or document) that could not be read: where, and what is wrong with it."""

    path: str
    line: int | None
    column: int | None
    message: str

    def text(self) -> str:
        """Return ``path:line:column: message`` (line and column when known)."""
        where = self.path
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        return f"{where}: {self.message}"


@dataclass
class AuditInputs:
    """What :func:`read_inputs` found: objects to audit, skipped documents, unreadable files."""

    objects: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[SkippedDocument] = field(default_factory=list)
    errors: list[InputError] = field(default_factory=list)
    files: int = 0
    #: Objects defined in more than one file (each kept): one warning naming both files.
    warnings: list[InputError] = field(default_factory=list)
    #: The per-object rules' results for ``objects``, when :func:`read_and_validate` was
    #: asked for them (``checks``): what :func:`rknb.audit.audit` takes as ``precomputed``.
    precomputed: Precomputed | None = None


def _expand(paths: Iterable[str | os.PathLike[str]]) -> tuple[list[str], list[InputError]]:
    files: list[str] = []
    errors: list[InputError] = []
    seen: set[str] = set()

    def add(name: str) -> None:
        # The same file (by real path: a symlink, a folder and a file inside it) is read once.
        real = os.path.realpath(name)
        if real not in seen:
            seen.add(real)
            files.append(name)

    for given in paths:
        name = os.fspath(given)
        path = Path(name)
        if path.is_dir():
            # A manifest name that is no regular file (a FIFO, a dangling link) is an error,
            # as when it is named itself; other files and folders are not manifests.
            for p in sorted(path.rglob("*")):
                if p.suffix.lower() not in MANIFEST_SUFFIXES or p.is_dir():
                    continue
                if p.is_file():
                    add(str(p))
                else:
                    errors.append(InputError(str(p), None, None, _NOT_REGULAR))
        elif path.is_file():
            add(name)
        elif os.path.lexists(name):
            errors.append(InputError(name, None, None, _NOT_REGULAR))
        else:
            errors.append(InputError(name, None, None, "no such file or folder; check the path"))
    return files, errors


_NOT_REGULAR = (
    "not a regular file or folder (a FIFO, a device, or a symlink that leads nowhere or in a loop)"
)


def _item_lines(node: yaml.Node) -> list[int]:
    if not isinstance(node, yaml.MappingNode):
        return []
    for key, value in node.value:
        items = isinstance(key, yaml.ScalarNode) and key.value == "items"
        if items and isinstance(value, yaml.SequenceNode):
            return [item.start_mark.line + 1 for item in value.value]
    return []


class _AliasBombError(Exception):
    def __init__(self, line: int) -> None:
        super().__init__(line)
        self.line = line


def _yaml_documents(text: str, path: str) -> list[tuple[Any, int, list[int]]]:
    loader = _LOADER(text)
    # Only a stream with an anchor can hold aliases; the expansion count is skipped otherwise.
    aliases = "&" in text and "*" in text
    documents: list[tuple[Any, int, list[int]]] = []
    try:
        while loader.check_node():
            node = loader.get_node()
            line = node.start_mark.line + 1
            if aliases and expanded_size(node, MAX_EXPANDED_NODES) > MAX_EXPANDED_NODES:
                raise _AliasBombError(line)
            document = construct_document(loader, node, has_aliases=aliases)
            if aliases and nests_deeper_than(document, MAX_NESTING):
                raise NestingError(line)
            documents.append((document, line, _item_lines(node)))
    except yaml.MarkedYAMLError as error:
        raise _BrokenStreamError(error, documents) from error
    finally:
        loader.dispose()
    return documents


class _BrokenStreamError(Exception):
    """A YAML syntax error, with the documents of the stream read before it."""

    def __init__(self, error: yaml.MarkedYAMLError, documents: list[Any]) -> None:
        super().__init__(str(error))
        self.error = error
        self.documents = documents


def _read_file(path: str, inputs: AuditInputs, default_namespace: str) -> None:
    try:
        # Opened without blocking and checked once open: a file replaced by a FIFO after the
        # folder was listed would otherwise block the read for ever.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as stream:
            status = os.fstat(stream.fileno())
            if not stat.S_ISREG(status.st_mode):
                inputs.errors.append(
                    InputError(path, None, None, "not a regular file (a FIFO or a device)")
                )
                return
            if status.st_size > MAX_FILE_BYTES:
                inputs.errors.append(
                    InputError(
                        path,
                        None,
                        None,
                        f"file is {status.st_size / 2**20:.0f} MiB, over the "
                        f"{MAX_FILE_BYTES / 2**20:.0f} MiB limit; split it",
                    )
                )
                return
            data = stream.read(MAX_FILE_BYTES + 1)
    except OSError as error:
        inputs.errors.append(InputError(path, None, None, f"cannot read the file ({error})"))
        return
    if b"\x00" in data[:8192]:
        inputs.errors.append(InputError(path, None, None, "binary file, not a manifest; skip it"))
        return
    try:
        # A byte order mark is dropped (editors on Windows write one), in JSON as in YAML.
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        inputs.errors.append(
            InputError(path, None, None, f"not UTF-8 text (byte {error.start}); fix the encoding")
        )
        return

    documents: list[tuple[Any, int, list[int]]]
    try:
        if path.lower().endswith(".json"):
            documents = [(json.loads(text), 1, [])] if text.strip() else []
            if documents and nests_deeper_than(documents[0][0], MAX_NESTING):
                raise NestingError(1)
        else:
            documents = _yaml_documents(text, path)
    except json.JSONDecodeError as error:
        inputs.errors.append(
            InputError(path, error.lineno, error.colno, f"invalid JSON: {error.msg}")
        )
        return
    except _BrokenStreamError as broken:
        if "{{" in text:
            inputs.skipped.extend(_helm_documents(text, path))
            return
        syntax = broken.error
        mark = syntax.problem_mark or syntax.context_mark
        problem = syntax.problem or syntax.context or "invalid YAML"
        # kubectl would apply the documents before the error: they are audited too.
        before = len(broken.documents)
        kept = f"; the {before} document(s) before it are audited" if before else ""
        inputs.errors.append(
            InputError(
                path,
                mark.line + 1 if mark else None,
                mark.column + 1 if mark else None,
                f"YAML syntax error: {problem}{kept}",
            )
        )
        documents = broken.documents
    except yaml.YAMLError as error:
        inputs.errors.append(InputError(path, None, None, f"YAML could not be read: {error}"))
        return
    except _AliasBombError as error:
        inputs.errors.append(
            InputError(
                path,
                error.line,
                None,
                f"YAML aliases expand to more than {MAX_EXPANDED_NODES:,} nodes (an alias bomb, "
                "or an alias inside its own anchor); remove the aliases or split the document",
            )
        )
        return
    except NestingError as error:
        inputs.errors.append(
            InputError(
                path,
                error.line,
                None,
                f"a document nests more than {MAX_NESTING} levels deep; no Kubernetes object "
                "does, so it is not read",
            )
        )
        return
    except RecursionError:  # deeper than Python can parse, before the count could stop it
        inputs.errors.append(
            InputError(path, None, None, f"a document nests more than {MAX_NESTING} levels deep")
        )
        return
    for document, line, item_lines in documents:
        _add_document(document, path, line, item_lines, inputs, default_namespace)


_HELM_REASON = "unrendered Helm template; render it first"
# A template's top-level kind and metadata.name as written (not read as YAML, which the
# template is not): `kind: Service`, `metadata:` then an indented `name: web`, or
# `metadata: {name: web}`. A name holding a template action is not read.
_TOP_KIND = re.compile(r"kind:\s*[\"']?([A-Za-z][A-Za-z0-9]*)[\"']?\s*(?:#.*)?")
_NESTED_NAME = re.compile(r"\s+name:\s*[\"']?([A-Za-z0-9][-A-Za-z0-9_.]*)[\"']?\s*(?:#.*)?")
_FLOW_NAME = re.compile(
    r"metadata:\s*\{(?:[^{}]*[,\s])?name:\s*[\"']?([A-Za-z0-9][-A-Za-z0-9_.]*)[\"']?\s*[,}]"
)


def _helm_documents(text: str, path: str) -> list[SkippedDocument]:
    # One skipped entry per document of a template file that is not YAML: its first line,
    # and its kind and name when the lines say them plainly.
    found: list[SkippedDocument] = []
    start: int | None = None
    lines: list[str] = []

    def close() -> None:
        if start is not None:
            kind, name = _helm_kind_and_name(lines)
            found.append(SkippedDocument(path, start, kind, name, _HELM_REASON))

    for number, line in enumerate(text.splitlines(), start=1):
        marker = line.startswith(("---", "...")) and line[3:4] in ("", " ", "\t")
        if marker:
            close()
            start, lines = None, []
            line = line[3:].strip()
            if not line or line.startswith("#"):
                continue
        if start is None and line.strip() and not line.lstrip().startswith("#"):
            start = number
        lines.append(line)
    close()
    return found


def _helm_kind_and_name(lines: Sequence[str]) -> tuple[str | None, str | None]:
    kind = name = None
    depth: int | None = None  # the indentation of metadata's entries, once one is seen
    in_metadata = False
    for line in lines:
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        indent = len(line) - len(line.lstrip())
        if indent == 0:
            in_metadata, depth = line.rstrip() == "metadata:", None
            kind_match = _TOP_KIND.fullmatch(line)
            kind = kind_match.group(1) if kind_match and kind is None else kind
            flow = _FLOW_NAME.match(line)
            name = flow.group(1) if flow and name is None else name
            continue
        if in_metadata:
            depth = indent if depth is None else depth
            nested = _NESTED_NAME.fullmatch(line)
            if nested and indent == depth and name is None:
                name = nested.group(1)
    return kind, name


def _add_document(
    document: Any,
    path: str,
    line: int,
    item_lines: list[int],
    inputs: AuditInputs,
    default_namespace: str,
) -> None:
    if document is None:
        return
    if not isinstance(document, dict):
        inputs.errors.append(
            InputError(path, line, None, f"expected an object, found a {type(document).__name__}")
        )
        return
    kind = document.get("kind")
    given = document.get("metadata")
    metadata: dict[str, Any] = given if isinstance(given, dict) else {}
    name = metadata.get("name")
    if kind is None and isinstance(document.get("groups"), list):
        # A Prometheus rules file becomes the PrometheusRule the operator would hold.
        document = {
            "apiVersion": "monitoring.coreos.com/v1",
            "kind": "PrometheusRule",
            "metadata": {"name": Path(path).stem, "namespace": default_namespace},
            "spec": {"groups": document["groups"]},
        }
        kind, metadata, name = "PrometheusRule", document["metadata"], Path(path).stem
    if isinstance(kind, str) and kind.endswith("List") and isinstance(document.get("items"), list):
        item_kind = kind[: -len("List")] if kind != "List" else None
        for number, item in enumerate(document["items"]):
            if isinstance(item, dict) and item_kind and "kind" not in item:
                item = {"apiVersion": document.get("apiVersion"), "kind": item_kind, **item}
            where = item_lines[number] if number < len(item_lines) else line
            _add_document(item, path, where, [], inputs, default_namespace)
        return
    if not isinstance(kind, str) or not kind:
        inputs.skipped.append(SkippedDocument(path, line, None, name, "no kind: not an object"))
        return
    group = _KIND_GROUPS.get(kind)
    if kind not in AUDIT_KINDS or (group and not str(document.get("apiVersion")).startswith(group)):
        written = metadata.get("namespace")
        inputs.skipped.append(
            SkippedDocument(
                path,
                line,
                kind,
                name,
                f"kind {kind} is a custom resource or a kind rknb does not audit",
                written if isinstance(written, str) else None,
            )
        )
        return
    problem = _metadata_problem(given)
    spec = document.get("spec")
    if problem is None and spec is not None and not isinstance(spec, dict):
        problem = f"spec is a {type(spec).__name__}, not a mapping"
    if problem is not None:
        inputs.errors.append(
            InputError(path, line, None, f"{kind}: {problem}; the object is not audited")
        )
        return
    metadata = dict(metadata)
    if not is_cluster_scoped(kind) and not metadata.get("namespace"):
        metadata["namespace"] = default_namespace
    annotations = dict(metadata.get("annotations") or {})
    annotations[SOURCE_ANNOTATION] = f"{path}:{line}"
    metadata["annotations"] = annotations
    inputs.objects.append(strip_secret({**document, "metadata": metadata}))


def _metadata_problem(metadata: Any) -> str | None:
    # What makes an object's metadata one the API server would refuse to decode, or None.
    # Names are keys of every report and index, so a list or a number there is refused here.
    if metadata is None:
        return None
    if not isinstance(metadata, dict):
        return f"metadata is {_short(metadata)}, not a mapping"
    for key in ("name", "namespace", "generateName"):
        value = metadata.get(key)
        if value is not None and not isinstance(value, str):
            return f"metadata.{key} is {_short(value)}, not a string"
    for key in ("labels", "annotations"):
        value = metadata.get(key)
        if value is not None and not isinstance(value, dict):
            return f"metadata.{key} is {_short(value)}, not a mapping of names to strings"
    return None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def read_inputs(
    paths: Iterable[str | os.PathLike[str]], *, default_namespace: str = "default"
) -> AuditInputs:
    """Return the objects of manifest files and folders, with what was skipped or unreadable.

    Files and folders (recursively: ``.yaml``, ``.yml``, ``.json``), multi-document YAML,
    JSON, Lists, ``kustomize build`` output and Prometheus rule files. Each unreadable file
    (binary, invalid YAML or JSON, too large, an alias bomb) is one :class:`InputError`
    with its line and column where known; the other files are still read.
    """
    inputs, _ = read_and_validate(paths, default_namespace=default_namespace)
    return inputs


def _duplicates(objects: Sequence[Mapping[str, Any]]) -> list[InputError]:
    # One warning per object whose Kind/namespace/name another file defined first.
    first: dict[tuple[Any, Any, Any], str] = {}
    warnings = []
    for obj in objects:
        meta = obj.get("metadata") or {}
        key = (obj.get("kind"), meta.get("namespace"), meta.get("name"))
        source = str((meta.get("annotations") or {}).get(SOURCE_ANNOTATION, ""))
        earlier = first.setdefault(key, source)
        if earlier is source or earlier.rpartition(":")[0] == source.rpartition(":")[0]:
            continue
        path, _, line = source.rpartition(":")
        where = "/".join(str(k) for k in key if k is not None)
        warnings.append(
            InputError(
                path,
                int(line) if line.isdigit() else None,
                None,
                f"{where} is also defined at {earlier}; both are audited, remove one",
            )
        )
    return warnings


# (rules, config) of the audit a reading process also runs the per-object rules of.
_Checks = tuple[Sequence[str] | None, AuditConfig | None]

#: Inputs of at least this many bytes (in two files or more) are split between processes;
#: below it a fork gains nothing (measured: 232 KB take 0.28 s either way, 756 KB 0.46 s
#: instead of 0.58 s on 2 cores).
PARALLEL_MIN_BYTES = 256 * 1024


def _read_part(
    files: Sequence[str],
    default_namespace: str,
    kube_version: str | None,
    checks: _Checks | None = None,
) -> tuple[AuditInputs, list[InputError]]:
    inputs = AuditInputs()
    for path in files:
        _read_file(path, inputs, default_namespace)
    invalid = validate_objects(inputs.objects, kube_version) if kube_version else []
    if checks is not None:
        rules, config = checks
        inputs.precomputed = object_violations(inputs.objects, rules=rules, config=config)
    return inputs, invalid


def _split(files: Sequence[str], parts: int) -> list[list[str]]:
    # Consecutive runs of files of about equal size, so that joining the parts' results in
    # order gives what one process reading every file gives.
    sizes = []
    for path in files:
        try:
            sizes.append(os.path.getsize(path))
        except OSError:
            sizes.append(0)
    total = sum(sizes)
    if parts < 2 or len(files) < 2 or total < PARALLEL_MIN_BYTES:
        return [list(files)]
    runs: list[list[str]] = [[]]
    done = 0
    for path, size in zip(files, sizes, strict=True):
        if done >= total * len(runs) / parts and len(runs) < parts:
            runs.append([])
        runs[-1].append(path)
        done += size
    return [run for run in runs if run]


#: The most processes :func:`audit_command` reads with.
MAX_WORKERS = 4


def default_workers() -> int:
    """Return how many processes read large inputs: the CPUs this process may use, at most 4."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        usable = os.cpu_count() or 1
    return max(1, min(MAX_WORKERS, usable))


def _read_in_processes(
    parts: Sequence[Sequence[str]],
    default_namespace: str,
    kube_version: str | None,
    checks: _Checks | None,
) -> list[tuple[AuditInputs, list[InputError]]]:
    # The first part read here, each other in a forked process. A part whose process fails
    # (killed by the OOM killer, or its result could not be sent back) is read here after
    # all, so the inputs are what one process reading everything finds.
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(
        len(parts) - 1, mp_context=context, initializer=_end_with, initargs=(os.getpid(),)
    ) as pool:
        pending = [
            pool.submit(_read_part, part, default_namespace, kube_version, checks)
            for part in parts[1:]
        ]
        results = [_read_part(parts[0], default_namespace, kube_version, checks)]
        for part, future in zip(parts[1:], pending, strict=True):
            try:
                results.append(future.result())
            except RknbError:  # a bad setting: the same error this process would raise
                raise
            except Exception as error:  # any failure there is retried here
                logger.warning(
                    "a reading process failed (%s: %s); reading its %d file(s) here",
                    type(error).__name__,
                    error,
                    len(part),
                )
                results.append(_read_part(part, default_namespace, kube_version, checks))
    return results


def _end_with(parent: int) -> None:
    # Run in each reading process: end it when the command ends. Killed by SIGTERM, the
    # command would otherwise leave it blocked for ever on the pipe that took its result.
    import ctypes
    import signal

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux: the process ends when its work does
        return
    if os.getppid() != parent:  # the command ended before prctl took effect
        os._exit(1)


_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def read_and_validate(
    paths: Iterable[str | os.PathLike[str]],
    *,
    kube_version: str | None = None,
    workers: int = 1,
    default_namespace: str = "default",
    checks: _Checks | None = None,
) -> tuple[AuditInputs, list[InputError]]:
    """Return what :func:`read_inputs` returns and the objects' schema errors.

    Parameters
    ----------
    paths
        Manifest files and folders.
    kube_version
        Validate against this Kubernetes version's schema (:func:`validate_objects`);
        None validates nothing.
    workers
        With 2 or more, large inputs (:data:`PARALLEL_MIN_BYTES`) are split into runs of
        files read and validated by forked processes at once; the result is the same.
    default_namespace
        The namespace of objects that name none.
    checks
        ``(rules, config)`` of the audit to come: each process also runs the per-object
        rules on the objects it read (:func:`rknb.audit.object_violations`), and the
        results land in the inputs' ``precomputed``.
    """
    import multiprocessing

    files, errors = _expand(paths)
    parts = _split(files, workers)
    if len(parts) > 1 and "fork" in multiprocessing.get_all_start_methods():
        results = _read_in_processes(parts, default_namespace, kube_version, checks)
    else:
        results = [_read_part(files, default_namespace, kube_version, checks)]
    inputs = AuditInputs(errors=errors, files=len(files))
    invalid: list[InputError] = []
    for part_inputs, part_invalid in results:
        inputs.objects.extend(part_inputs.objects)
        inputs.skipped.extend(part_inputs.skipped)
        inputs.errors.extend(part_inputs.errors)
        invalid.extend(part_invalid)
    if checks is not None:
        inputs.precomputed = Precomputed.joined(
            [part.precomputed for part, _ in results if part.precomputed is not None]
        )
    inputs.warnings = _duplicates(inputs.objects)
    return inputs, invalid


# --------------------------------------------------------------------------- schema validation


class _KindSchema:
    """One kind's schema: a compiled yes/no check, and jsonschema to word the errors."""

    def __init__(self, schema: dict[str, Any], definitions: dict[str, Any]) -> None:
        from rknb.audit.schema import compile_checker

        self.schema = schema
        self.definitions = definitions
        self.check = compile_checker(schema, {str(definitions.get("$id")): definitions})
        self._validator: Any = None

    def first_error(self, obj: Mapping[str, Any]) -> Any:
        """Return jsonschema's first error for the object, or None when it is valid."""
        if self.check is not None and self.check(obj):
            return None
        if self._validator is None:
            # Imported only when an object fails the compiled check (or none was compiled).
            import jsonschema
            from referencing import Registry, Resource

            registry = Resource.from_contents(self.definitions) @ (
                Resource.from_contents(self.schema) @ Registry()
            )
            validator = jsonschema.validators.Draft202012Validator
            self._validator = validator(self.schema, registry=registry)
        return next(iter(self._validator.iter_errors(obj)), None)


# (version, kind, apiVersion) -> the kind's schema, or None when kubernetes-validate holds none.
_VALIDATORS: dict[tuple[str, str, str], _KindSchema | None] = {}
_DEFINITIONS: dict[str, Any] = {}


def _schema_root() -> Path:
    # kubernetes-validate's schema folder, found without importing the package (its import
    # pulls in jsonschema, which only invalid objects need).
    import importlib.util

    spec = importlib.util.find_spec("kubernetes_validate")
    locations = list(spec.submodule_search_locations or []) if spec else []
    if not locations:
        raise ParameterError(
            "kube_version", "kubernetes-validate is not installed; pip install kubernetes-validate"
        )
    return Path(locations[0]) / "kubernetes-json-schema"


def _load_schema(version: str, name: str) -> Any:
    path = _schema_root() / f"v{version}-local" / name
    with path.open(encoding="utf-8") as handle:
        return json.load(handle)


def _validator(version: str, kind: str, api_version: str) -> _KindSchema | None:
    key = (version, kind, api_version)
    if key not in _VALIDATORS:
        group = api_version.split("/")[0].split(".")[0] if "/" in api_version else ""
        short = f"{group}-{api_version.split('/')[-1]}" if group else api_version
        try:
            schema = _load_schema(version, f"{kind.lower()}-{short}.json")
        except FileNotFoundError:
            _VALIDATORS[key] = None
            return None
        if version not in _DEFINITIONS:
            _DEFINITIONS[version] = _load_schema(version, "_definitions.json")
        _VALIDATORS[key] = _KindSchema(schema, _DEFINITIONS[version])
    return _VALIDATORS[key]


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text)[:3])


# A Kubernetes version as users and clusters write it: 1.30, 1.30.0, v1.30.4,
# v1.30.2-gke.1587003, v1.30.4+k3s1 (kubernetes-validate has one schema per minor version).
_KUBE_VERSION = re.compile(r"v?(\d+)\.(\d+)(?:\.\d+)?(?:[-+][0-9A-Za-z.+-]*)?")


def _held_versions() -> list[str]:
    """Return the Kubernetes versions kubernetes-validate holds schemas for, oldest first."""
    held = {
        m.group(1)
        for entry in _schema_root().iterdir()
        if (m := re.fullmatch(r"v(\d+\.\d+\.\d+)-local", entry.name))
    }
    return sorted(held, key=_version_tuple)


def schema_version(kube_version: str, *, parameter: str = "kube_version") -> str:
    """Return the schema version kubernetes-validate holds for a Kubernetes version (1.30).

    A version of a minor release kubernetes-validate holds no schema for (``1.24``,
    ``9.99``) is a :class:`~rknb.errors.ParameterError` naming ``parameter`` and the
    nearest versions it holds.
    """
    held = _held_versions()
    match = _KUBE_VERSION.fullmatch(str(kube_version).strip())
    wanted = (int(match.group(1)), int(match.group(2))) if match else None
    usable = [v for v in held if _version_tuple(v)[:2] == wanted]
    if usable:
        return usable[-1]
    minors = [".".join(v.split(".")[:2]) for v in held]
    if wanted is None:
        nearest = minors[-3:]
        problem = "is not a Kubernetes version (write it as 1.30)"
    else:
        # The three closest minor versions (same major first), shown oldest first.
        def distance(minor: str) -> tuple[int, int]:
            major, number = _version_tuple(minor)[:2]
            return abs(major - wanted[0]), abs(number - wanted[1])

        nearest = sorted(sorted(minors, key=distance)[:3], key=_version_tuple)
        problem = "has no schema in kubernetes-validate"
    carried = f"{minors[0]} to {minors[-1]}" if minors else "none"
    raise ParameterError(
        parameter,
        f"{kube_version!r} {problem}; it holds {carried} (nearest: {', '.join(nearest)}); "
        "give one of those or upgrade kubernetes-validate",
    )


def validate_objects(objects: Sequence[Mapping[str, Any]], kube_version: str) -> list[InputError]:
    """Return one error per object the Kubernetes OpenAPI schema of ``kube_version`` rejects.

    Objects of kinds the schema set does not hold (custom resources such as
    PrometheusRule, OpenShift kinds) are not checked. The ``rknb.io/source``
    annotation rknb adds is not part of the check's verdict (annotations are free-form).
    """
    version = schema_version(kube_version)
    errors = []
    for obj in objects:
        schema = _validator(version, str(obj.get("kind")), str(obj.get("apiVersion")))
        if schema is None:
            continue
        error = schema.first_error(obj)
        if error is None:
            continue
        meta = obj.get("metadata") or {}
        source = str((meta.get("annotations") or {}).get(SOURCE_ANNOTATION, "?"))
        path, _, line = source.rpartition(":")
        field_path = ".".join(str(p) for p in error.absolute_path) or "(object)"
        errors.append(
            InputError(
                path or source,
                int(line) if line.isdigit() else None,
                None,
                f"{obj.get('kind')} {meta.get('name')!r} is invalid for Kubernetes {version} at "
                f"{field_path}: {_without_value(error)[:200]}",
            )
        )
    return errors


def _without_value(error: Any) -> str:
    # jsonschema's message with the offending value named by its type: a value can be a
    # credential written in the wrong place (an env list written as a string or a mapping),
    # and the field path already says where it is.
    message = str(error.message)
    value = error.instance
    kind = (
        "a mapping" if isinstance(value, Mapping)
        else "a list" if isinstance(value, list)
        else "true/false" if isinstance(value, bool)
        else "null" if value is None
        else "a number" if isinstance(value, (int, float))
        else "a string"
    )  # fmt: skip
    for written in (repr(value), str(value) if isinstance(value, str) and value else None):
        if written and written in message:
            return message.replace(written, f"the value ({kind})")
    return message  # names properties, not values ("'name' is a required property")


# --------------------------------------------------------------------------- the audit command

#: Output formats of ``rknb audit``.
FORMATS = ("text", "json", "sarif", "junit")
#: The default ``--fail-on``: CI fails on high and critical findings.
DEFAULT_FAIL_ON = "high"


def load_config(path: str | os.PathLike[str] | None) -> AuditConfig:
    """Return the audit settings of a YAML config file (``min_replicas``, ``disabled``, ...).

    The keys are :class:`~rknb.audit.AuditConfig`'s fields, checked as a notebook's
    ``config`` mapping is (:func:`rknb.audit.model.config_from_mapping`).
    """
    if path is None:
        return AuditConfig()
    # Unreadable, not UTF-8, invalid YAML (with its line), an alias bomb or several
    # documents: a usage error naming --config and the file.
    data = load_yaml_parameter_file(os.fspath(path), parameter="--config")
    return config_from_mapping(
        {} if data is None else data, parameter="--config", where=repr(os.fspath(path))
    )


def _error_rows(errors: Sequence[InputError]) -> list[dict[str, Any]]:
    return [
        {"path": e.path, "line": e.line, "column": e.column, "message": e.message} for e in errors
    ]


def _notifications(errors: Sequence[InputError], level: str = "error") -> list[dict[str, Any]]:
    # SARIF toolExecutionNotifications: one per input error (or warning), where it is.
    from rknb.audit.output import _uri

    notifications = []
    for e in errors:
        note: dict[str, Any] = {"level": level, "message": {"text": e.message}}
        region: dict[str, Any] = {}
        if e.line:
            region["startLine"] = e.line
        if e.column:
            region["startColumn"] = e.column
        if e.path != _NO_FILE:
            physical: dict[str, Any] = {"artifactLocation": {"uri": _uri(e.path)}}
            if region:
                physical["region"] = region
            note["locations"] = [{"physicalLocation": physical}]
        notifications.append(note)
    return notifications


def _with_errors_junit(
    document: str, errors: Sequence[InputError], warnings: Sequence[InputError] = ()
) -> str:
    # The inputs that could not be read as erroring test cases; warnings (objects defined
    # twice) counted in a property and listed in the suite's system-out.
    import xml.etree.ElementTree as ET

    from rknb.audit.output import _xml_text

    root = ET.fromstring(document.split("?>", 1)[1])
    suite = root.find("testsuite")
    assert suite is not None
    for e in errors:
        case = ET.SubElement(suite, "testcase", classname=_xml_text(e.path), name="read")
        ET.SubElement(case, "error", message=_xml_text(e.text()))
    suite.set("tests", str(len(suite.findall("testcase"))))
    suite.set("errors", str(len(errors)))
    if warnings:
        properties = ET.Element("properties")
        ET.SubElement(properties, "property", name="warnings", value=str(len(warnings)))
        suite.insert(0, properties)  # the JUnit schema puts properties before the cases
        out = ET.SubElement(suite, "system-out")
        out.text = _xml_text("".join(f"warning: {w.text()}\n" for w in warnings))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def audit_command(paths: Sequence[str], **options: Any) -> tuple[str, int]:
    """Return :func:`audit_output`'s (report, exit code) with the report as text.

    It takes the same arguments (``output_format``, ``fail_on``, ``config``, ``rules``,
    ``kube_version``, ``objects``, ``jobs``).
    """
    output, code = audit_output(paths, **options)
    return output.decode("utf-8"), code


def audit_output(
    paths: Sequence[str],
    *,
    output_format: str = "text",
    fail_on: str = DEFAULT_FAIL_ON,
    config: AuditConfig | None = None,
    rules: Sequence[str] | None = None,
    kube_version: str | None = None,
    objects: Sequence[Mapping[str, Any]] = (),
    jobs: int | None = None,
) -> tuple[bytes, int]:
    """Return (the report in ``output_format`` as UTF-8, exit code) of auditing files and objects.

    Parameters
    ----------
    paths
        Manifest files and folders.
    output_format
        One of :data:`FORMATS`.
    fail_on
        The exit code is 1 when an unsuppressed finding is at least this severe, or when a
        file could not be read or an object fails its schema.
    config
        Thresholds and suppressions (:func:`load_config`).
    rules
        Rule ids or prefixes to run (all default rules when None).
    kube_version
        Validate the objects against this Kubernetes version's OpenAPI schema (``1.30``);
        None skips schema validation.
    objects
        Objects already read (from a live cluster), audited with the files'.
    jobs
        How many processes read, validate and check large inputs (:data:`PARALLEL_MIN_BYTES`
        or more); :func:`default_workers` when None. The report is the same for any number.
    """
    if output_format not in FORMATS:
        raise ParameterError("--format", f"{output_format!r} is not one of {', '.join(FORMATS)}")
    if jobs is not None and jobs < 1:
        raise ParameterError("--jobs", f"must be 1 or more, got {jobs}")
    if rules is not None:
        get_rules(rules)  # an unknown rule id is a usage error before any file is read
    if kube_version:
        # A bad version is a usage error before any work.
        schema_version(kube_version, parameter="--kube-version")
    workers = default_workers() if jobs is None else jobs
    with _no_cyclic_gc():
        return _audit_command(
            paths, output_format, fail_on, config, rules, kube_version, objects, workers
        )


@contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    # The parsed objects are millions of dicts and lists that the cyclic garbage collector
    # would walk again at each of its passes while they are read, checked and written (a
    # quarter of the rules' time on 10,000 objects) and never free: reference counting frees
    # them. The command turns it off while it runs; any cycle waits until it is back on.
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _audit_command(
    paths: Sequence[str],
    output_format: str,
    fail_on: str,
    config: AuditConfig | None,
    rules: Sequence[str] | None,
    kube_version: str | None,
    objects: Sequence[Mapping[str, Any]],
    workers: int,
) -> tuple[bytes, int]:
    from rknb import __version__
    from rknb.audit import at_or_above, to_junit, to_sarif, to_text
    from rknb.audit.output import json_bytes, printable, utf8

    # Large inputs are read, validated and checked by the per-object rules in forked
    # processes at once (by default one per usable core, at most MAX_WORKERS); a process
    # forked before the objects exist copies none of them.
    inputs, invalid = (
        read_and_validate(paths, kube_version=kube_version, workers=workers, checks=(rules, config))
        if paths
        else (AuditInputs(), [])
    )
    everything = [*inputs.objects, *objects]
    errors = list(inputs.errors)
    if kube_version and objects:
        errors.extend(validate_objects(objects, kube_version))
    errors.extend(invalid)
    report = audit(everything, rules=rules, config=config, precomputed=inputs.precomputed)
    report.skipped.extend(_skipped_of(d) for d in inputs.skipped)
    errors.extend(_input_error(e) for e in report.errors)

    blocking = at_or_above(report, fail_on)
    code = 1 if blocking or errors else 0
    if output_format == "json":
        rows = {"errors": _error_rows(errors), "warnings": _error_rows(inputs.warnings)}
        return json_bytes(report, extra=rows), code
    if output_format == "sarif":
        notes = [*_notifications(errors), *_notifications(inputs.warnings, "warning")]
        return utf8(to_sarif(report, version=__version__, notifications=notes)), code
    if output_format == "junit":
        return utf8(_with_errors_junit(to_junit(report), errors, inputs.warnings)), code
    text = to_text(report)
    if inputs.warnings:
        text += f"\nWarnings ({len(inputs.warnings)}):\n" + "".join(
            f"    {printable(e.text())}\n" for e in inputs.warnings
        )
    if errors:
        text += f"\nErrors ({len(errors)}):\n" + "".join(
            f"    {printable(e.text())}\n" for e in errors
        )
    text += (
        f"\n{inputs.files} file(s), {len(everything)} object(s); {len(blocking)} finding(s) at "
        f"{fail_on} or worse; {len(errors)} error(s).\n"
    )
    return utf8(text), code


# The "path" of an error in an object that came from no file (a live cluster's).
_NO_FILE = "(objects)"


def _input_error(error: Any) -> InputError:
    # An object field the rules could not read (rknb.audit.ObjectError), where the object is.
    path, _, line = (error.source or "").rpartition(":")
    if not line.isdigit():
        path, line = error.source or _NO_FILE, ""
    return InputError(path, int(line) if line else None, None, error.message)


def _skipped_of(document: SkippedDocument) -> Any:
    from rknb.audit import Skipped

    return Skipped(
        document.kind,
        document.namespace,
        document.name,
        document.reason,
        f"{document.path}:{document.line}",
    )
