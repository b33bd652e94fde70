"""The shortcuts that make `rknb audit` fast give what the plain code gives."""

from __future__ import annotations

import dataclasses
import gc
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from rknb.audit import AuditReport, Finding, get_rules, to_json
from rknb.audit.engine import _finding
from rknb.audit.model import ObjectIndex
from rknb.audit.objects import containers, pod_labels, pod_spec, pods_selected, remembered
from rknb.audit.output import _finding_lines
from rknb.conformance import audit as audit_cli
from rknb.yamlfile import SAFE_LOADER

DATA = Path(__file__).resolve().parent.parent / "data" / "audit"
HEAVY = ("pandas", "numpy", "matplotlib", "papermill", "nbformat", "kubernetes")


def test_the_audit_command_starts_without_pandas_numpy_or_notebook_libraries():
    code = (
        "import sys\n"
        "from rknb import cli\n"
        f"code = cli.main(['audit', {str(DATA)!r}, '--format', 'json', '--kube-version', '1.30'])\n"
        f"heavy = sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))\n"
        "print('HEAVY=' + ','.join(heavy), file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert "HEAVY=" in done.stderr, done.stderr[-500:]
    heavy = done.stderr.rsplit("HEAVY=", 1)[1].strip()
    # The report was written (the audit ran), and none of the heavy libraries was loaded.
    assert json.loads(done.stdout)["rules"]
    assert heavy == ""


def _finding_with(**changes: object) -> Finding:
    base = Finding(
        rule_id="RK-SEC-001",
        title='Runs as "root"',
        severity="high",
        category="security",
        kind="Deployment",
        namespace="shop",
        name="web",
        container="app",
        alert=None,
        message="line one\nline two \\ tab\t, ünïcödé ✓ and a NUL \x00",
        remediation="Set runAsNonRoot: true.",
        source="manifests/web.yaml:3",
    )
    return dataclasses.replace(base, **changes)


def test_finding_lines_parse_back_to_each_finding_one_per_line():
    findings = [
        _finding_with(),
        _finding_with(suppressed=True, suppressed_reason="accepted \u2028 risk"),
        _finding_with(namespace=None, container=None, alert="HighLatency"),
        # A message holding the very text the writer breaks lines before.
        _finding_with(message='a }, {"alert": b and },{"alert": c'),
        _finding_with(),
    ]
    text = b"".join(_finding_lines(findings)).decode()
    assert json.loads(text) == [vars(f) for f in findings]
    lines = text.split("\n")  # not splitlines(): U+2028 is no line break to grep
    assert lines[0] == "[" and lines[-1] == "  ]" and len(lines) == len(findings) + 2
    rows = [json.loads(line.strip().rstrip(",")) for line in lines[1:-1]]
    assert rows == [vars(f) for f in findings]
    assert all(list(row) == sorted(row) for row in rows)


def test_finding_lines_keep_values_orjson_cannot_write():
    findings = [
        # Values of other types than the fields declare, and a string with a lone surrogate.
        _finding_with(name=1),  # type: ignore[arg-type]
        _finding_with(name=True),  # type: ignore[arg-type]
        _finding_with(container=["a", "b"]),  # type: ignore[arg-type]
        _finding_with(message="half a pair \ud800 here"),
        _finding_with(name=2**70),  # type: ignore[arg-type]
    ]
    parsed = json.loads(b"".join(_finding_lines(findings)).decode())
    # 1 and True are different JSON values even though they are equal Python keys.
    assert [row["name"] for row in parsed] == [1, True, "web", "web", 2**70]
    assert parsed[1]["name"] is True
    assert parsed[2]["container"] == ["a", "b"]
    # No UTF-8 (and no JSON parser but Python's) takes a lone surrogate: U+FFFD stands in.
    assert parsed[3]["message"] == "half a pair \ufffd here"
    assert b"\\ud800" not in b"".join(_finding_lines(findings))


def test_the_json_report_parses_back_to_every_finding_field():
    report = AuditReport(
        findings=[_finding_with(), _finding_with(name="api")],
        suppressed=[_finding_with(suppressed=True, suppressed_reason="why")],
        skipped=[],
        score=50.0,
        objects=[],
        rules=["RK-SEC-001"],
    )
    document = json.loads(to_json(report))
    assert document["findings"][1] == vars(report.findings[1])
    assert document["suppressed"][0]["suppressed"] is True


def test_engine_findings_equal_constructed_ones_field_for_field():
    rule = get_rules(["RK-SEC-001"])[0]
    made = _finding(
        rule, ("Deployment", "shop", "web", "a.yaml:1"), ("msg", "app", None), "ignored"
    )
    built = Finding(
        rule_id=rule.id,
        title=rule.title,
        severity=rule.severity,
        category=rule.category,
        kind="Deployment",
        namespace="shop",
        name="web",
        container="app",
        alert=None,
        message="msg",
        remediation=rule.remediation,
        source="a.yaml:1",
        suppressed=True,
        suppressed_reason="ignored",
    )
    assert made == built and hash(made) == hash(built)
    # Every field is set: a field added to Finding must be added to _finding too.
    assert set(vars(made)) == {f.name for f in dataclasses.fields(Finding)}


def test_remembered_pod_facts_are_the_objects_own_and_forgotten_after_the_block():
    cronjob = {
        "kind": "CronJob",
        "metadata": {"name": "backup"},
        "spec": {
            "jobTemplate": {
                "spec": {
                    "template": {
                        "metadata": {"labels": {"app": "backup"}},
                        "spec": {
                            "initContainers": [{"name": "init"}],
                            "containers": [{"name": "main"}],
                        },
                    }
                }
            }
        },
    }
    with remembered():
        inside = (
            [c["name"] for c in containers(cronjob, init=True)],
            [c["name"] for c in containers(cronjob)],
            pod_labels(cronjob),
            pod_spec(cronjob) is pod_spec(cronjob),
        )
        pod_labels(cronjob)["app"] = "changed"  # a caller's copy, not the template's labels
        assert pod_labels(cronjob) == {"app": "backup"}
    assert inside == (["init", "main"], ["main"], {"app": "backup"}, True)
    # After the block nothing is kept: a changed object is read afresh.
    cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"] = [{"name": "new"}]
    assert [c["name"] for c in containers(cronjob)] == ["new"]


def _workload(name: str, labels: dict[str, str] | None) -> dict[str, object]:
    template: dict[str, object] = {"spec": {"containers": [{"name": "app"}]}}
    if labels is not None:
        template["metadata"] = {"labels": labels}
    return {
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "shop"},
        "spec": {"template": template},
    }


def test_an_empty_selector_selects_unlabelled_pods_and_expressions_still_filter():
    objects = [_workload("a", None), _workload("b", {"tier": "web"}), _workload("c", {"x": "1"})]
    index = ObjectIndex(objects)
    names = {
        "empty": [o["metadata"]["name"] for o in pods_selected({}, "shop", index)],
        "exists": [
            o["metadata"]["name"]
            for o in pods_selected(
                {"matchExpressions": [{"key": "tier", "operator": "Exists"}]}, "shop", index
            )
        ],
        "other namespace": pods_selected({}, "default", index),
    }
    assert names == {"empty": ["a", "b", "c"], "exists": ["b"], "other namespace": []}


def test_the_remembering_loader_tags_plain_and_quoted_scalars_as_pyyaml_does():
    text = (
        "plain_int: 1\nquoted_int: '1'\nplain_bool: true\nquoted_bool: 'true'\n"
        "octal: 0o17\nold_octal: 017\nfloat: 1.5\nnull: ~\nempty:\nyes: yes\n"
        "date: 2024-01-01\nword: web\nlist: [1, '1', true]\n"
    )
    # Twice in one stream: the second document's tags come from the memo.
    stream = text + "---\n" + text.replace("plain_int: 1", "plain_int: '1'")
    expected = list(yaml.load_all(stream, Loader=yaml.SafeLoader))
    loaded = list(yaml.load_all(stream, Loader=SAFE_LOADER))
    assert loaded == expected
    assert loaded[0]["plain_int"] == 1 and loaded[1]["plain_int"] == "1"
    assert loaded[0]["list"] == [1, "1", True]


def test_the_audit_command_restores_the_garbage_collector_as_it_found_it():
    states = []
    for enabled in (True, False):
        (gc.enable if enabled else gc.disable)()
        try:
            audit_cli.audit_command([str(DATA / "good-deployment.yaml")], output_format="json")
            states.append(gc.isenabled())
        finally:
            gc.enable()
    assert states == [True, False]


def test_help_still_shows_the_exit_codes_and_severities_that_rknb_report_defines():
    from rknb import report
    from rknb.cli import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    run_help = commands["run"].format_help()
    # argparse wraps help text: compare with whitespace collapsed.
    flat = " ".join(run_help.split())
    assert f"({', '.join(report.SEVERITIES)})" in flat
    assert report.exit_code_table() in run_help
    assert report.exit_code_table() in parser.format_help()
    assert report.exit_code_table() in commands["record"].format_help()
    with pytest.raises(SystemExit) as stopped:
        parser.parse_args(["run", "capacity", "--fail-on", "fatal"])
    assert stopped.value.code == report.EXIT_USAGE
    assert parser.parse_args(["run", "capacity", "--fail-on", "warning"]).fail_on == "warning"
