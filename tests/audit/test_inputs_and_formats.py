"""Reading audit inputs safely, the output formats (SARIF validated), the CLI and conformance."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest

from rknb import cli
from rknb.audit import audit, get_rules
from rknb.conformance import audit as runner
from rknb.conformance import run_area

DATA = Path(__file__).resolve().parent.parent / "data"
SEED = DATA / "audit" / "seed"
CONFORMANCE = DATA / "conformance" / "audit"
SHARED = Path(__file__).resolve().parents[3] / "shared" / "conformance" / "audit"
SARIF_SCHEMA = json.loads((DATA / "audit" / "sarif" / "sarif-schema-2.1.0.json").read_text())

# One Deployment whose image is :latest (RK-IMG-001), shared with the other audit tests.
DEPLOYMENT = (DATA / "audit" / "web-latest.yaml").read_text()


def test_fixture_copies_match_the_shared_folder():
    if not SHARED.is_dir():
        pytest.skip("shared/conformance/audit is not present in this checkout")
    for path in SHARED.rglob("*"):
        if path.is_file():
            copy = CONFORMANCE / path.relative_to(SHARED)
            assert copy.read_bytes() == path.read_bytes(), path.name


def test_conformance_fixtures_pass_with_no_failure():
    summary = run_area("audit", [CONFORMANCE])
    assert summary.failures() == []
    assert summary.passed > 1000
    # The documented divergences: kube-linter's runAsGroup 0 (RK-SEC-001) on two objects and
    # Checkov's SYS_ADMIN-only CKV_K8S_39 against Polaris' wider list (RK-SEC-007).
    divergent = sorted(r.case_id for r in summary.results if r.status == "divergent")
    assert len(divergent) == 3
    assert all("group-zero" in c or "CKV_K8S_39" in c for c in divergent)
    # The pint cases no rknb rule covers are counted apart as "not applicable".
    assert re.search(r", 0 failed, 3 divergent(, \d+ not applicable)?$", summary.closing_line())


def test_every_peer_check_of_the_fixtures_has_an_equivalent_rule():
    peers = runner.peer_map(get_rules())
    expected = json.loads((CONFORMANCE / "expected.json").read_text())
    for entry in expected["manifests"].values():
        for stated in entry.get("stated") or []:
            assert f"{stated['tool']}:{stated['check']}" in peers


def test_reader_keeps_going_past_bad_files(tmp_path):
    (tmp_path / "a-good.yaml").write_text(DEPLOYMENT)
    (tmp_path / "b-binary.yaml").write_bytes(b"\x7fELF\x00\x00\x01\x02")
    (tmp_path / "c-broken.yaml").write_text("kind: Service\nmetadata:\n  name: [unclosed\n")
    (tmp_path / "d-bad.json").write_text('{"kind": "Service",\n "x": }')
    inputs = runner.read_inputs([tmp_path])
    assert [o["metadata"]["name"] for o in inputs.objects] == ["web"]
    assert inputs.files == 4
    errors = {Path(e.path).name: e for e in inputs.errors}
    assert "binary" in errors["b-binary.yaml"].message
    # The flow sequence opened on line 3 is never closed: the parser stops at the end (line 4).
    assert (errors["c-broken.yaml"].line, errors["c-broken.yaml"].column) == (4, 1)
    assert (errors["d-bad.json"].line, errors["d-bad.json"].column) == (2, 7)


def test_documents_before_a_syntax_error_are_audited(tmp_path):
    service = "kind: Service\napiVersion: v1\nmetadata: {name: front, namespace: shop}\n"
    broken = "kind: Service\nmetadata:\n  name: [unclosed\n"
    (tmp_path / "stream.yaml").write_text(DEPLOYMENT + "---\n" + service + "---\n" + broken)
    inputs = runner.read_inputs([tmp_path])
    # kubectl apply would have created the two documents before the broken one.
    assert [o["metadata"]["name"] for o in inputs.objects] == ["web", "front"]
    (error,) = inputs.errors
    assert error.message.startswith("YAML syntax error: ")
    assert error.message.endswith("; the 2 document(s) before it are audited")
    assert error.line == DEPLOYMENT.count("\n") + service.count("\n") + 6


def test_alias_bomb_is_refused_without_expanding_it(tmp_path):
    lines = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    for level in range(1, 9):  # 10**9 nodes once expanded
        refs = ", ".join([f"*a{level - 1}"] * 10)
        lines.append(f"a{level}: &a{level} [{refs}]")
    bomb = "kind: ConfigMap\nmetadata: {name: lol}\ndata:\n" + "\n".join("  " + x for x in lines)
    (tmp_path / "bomb.yaml").write_text(bomb + "\n")
    (tmp_path / "ok.yaml").write_text(DEPLOYMENT)
    inputs = runner.read_inputs([tmp_path])
    assert len(inputs.objects) == 1
    assert "alias" in inputs.errors[0].message


def test_a_file_over_the_size_limit_is_one_error(tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "MAX_FILE_BYTES", 100)
    (tmp_path / "big.yaml").write_text(DEPLOYMENT)
    inputs = runner.read_inputs([tmp_path])
    assert inputs.objects == [] and "over the" in inputs.errors[0].message


def test_lists_crds_and_helm_templates(tmp_path):
    (tmp_path / "list.yaml").write_text(
        "apiVersion: v1\nkind: List\nitems:\n"
        "- {apiVersion: v1, kind: Service, metadata: {name: a}, spec: {}}\n"
        "- {apiVersion: cert-manager.io/v1, kind: Certificate, metadata: {name: m}}\n"
    )
    (tmp_path / "chart.yaml").write_text("kind: Service\nmetadata:\n  name: {{ .Values.name }}\n")
    inputs = runner.read_inputs([tmp_path])
    assert [o["kind"] for o in inputs.objects] == ["Service"]
    assert inputs.objects[0]["metadata"]["annotations"]["rknb.io/source"].endswith("list.yaml:4")
    reasons = sorted(s.reason for s in inputs.skipped)
    assert reasons[0].startswith("kind Certificate is a custom resource")
    assert reasons[1].startswith("unrendered Helm template")


def test_schema_validation_names_the_field(tmp_path):
    (tmp_path / "d.yaml").write_text(
        DEPLOYMENT.replace("  selector: {matchLabels: {app: web}}\n", "")
    )
    inputs = runner.read_inputs([tmp_path])
    errors = runner.validate_objects(inputs.objects, "1.30")
    assert len(errors) == 1
    assert errors[0].line == 1
    assert "'selector' is a required property" in errors[0].message


def test_sarif_output_validates_against_the_2_1_0_schema():
    report = audit(runner.read_inputs([SEED]).objects)
    log = json.loads(runner.audit_command([str(SEED)], output_format="sarif")[0])
    jsonschema.validate(log, SARIF_SCHEMA)
    results = log["runs"][0]["results"]
    assert len(results) == len(report.findings) == 19
    rules = log["runs"][0]["tool"]["driver"]["rules"]
    first = results[0]
    assert rules[first["ruleIndex"]]["id"] == first["ruleId"]
    high = [r for r in results if r["properties"]["severity"] == "high"]
    assert {r["level"] for r in high} == {"error"}
    located = next(r for r in results if r["ruleId"] == "RK-SEC-001")["locations"][0]
    assert located["physicalLocation"]["region"]["startLine"] == 1
    assert located["physicalLocation"]["artifactLocation"]["uri"].endswith("reasonkit-pro.yaml")


def test_sarif_with_suppressions_and_errors_still_validates(tmp_path):
    (tmp_path / "d.yaml").write_text(
        DEPLOYMENT.replace(
            "metadata: {name: web, namespace: shop}",
            "metadata: {name: web, namespace: shop, "
            'annotations: {"rknb.io/ignore": "RK-IMG-001 canary"}}',
        )
    )
    (tmp_path / "x.yaml").write_text("a: [\n")
    text, code = runner.audit_command([str(tmp_path)], output_format="sarif")
    log = json.loads(text)
    jsonschema.validate(log, SARIF_SCHEMA)
    suppressed = [r for r in log["runs"][0]["results"] if "suppressions" in r]
    assert [(r["ruleId"], r["suppressions"][0]["kind"]) for r in suppressed] == [
        ("RK-IMG-001", "inSource")
    ]
    notes = log["runs"][0]["invocations"][0]["toolExecutionNotifications"]
    assert (
        len(notes) == 1 and notes[0]["locations"][0]["physicalLocation"]["region"]["startLine"] == 2
    )
    assert code == 1


def test_junit_has_one_case_per_check_and_failures_for_findings():
    text, _ = runner.audit_command([str(SEED)], output_format="junit")
    suite = ET.fromstring(text.split("?>", 1)[1]).find("testsuite")
    report = audit(runner.read_inputs([SEED]).objects)
    assert int(suite.get("tests")) == len(report.verdicts) == len(suite)
    failures = suite.findall("testcase/failure")
    assert len(failures) == int(suite.get("failures"))
    # 18 findings, but RK-SEC-014 etc. are one per check: the checks failed are counted.
    assert len(failures) == len({(f.rule_id, f.object_key) for f in report.findings})


def test_cli_exit_code_follows_fail_on(tmp_path, capsys):
    (tmp_path / "d.yaml").write_text(DEPLOYMENT)
    assert cli.main(["audit", str(tmp_path)]) == 1  # :latest is high
    out = capsys.readouterr().out
    assert "RK-IMG-001" in out and "finding(s) at high or worse" in out
    assert cli.main(["audit", str(tmp_path), "--fail-on", "critical"]) == 0
    capsys.readouterr()
    config = tmp_path / "audit.yaml"
    config.write_text("ignore: ['RK-IMG-001 Deployment/shop/web -- canary image']\n")
    assert (
        cli.main(
            [
                "audit",
                str(tmp_path / "d.yaml"),
                "--config",
                str(config),
                "--format",
                "json",
                "--rules",
                "RK-IMG-001",
            ]
        )
        == 0
    )
    document = json.loads(capsys.readouterr().out)
    assert document["findings"] == []
    assert document["suppressed"][0]["suppressed_reason"] == "config ignore: canary image"


def test_cli_conformance_prints_the_closing_line(capsys):
    assert cli.main(["conformance", "audit", str(CONFORMANCE)]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert re.search(r"passed, 0 failed, 3 divergent(, \d+ not applicable)?$", last)


def test_docs_rules_table_is_up_to_date():
    from rknb.audit import rules_markdown

    docs = Path(__file__).resolve().parents[2] / "docs" / "rules.md"
    assert docs.read_text() == rules_markdown(), "regenerate docs/rules.md (command in its header)"
    assert docs.read_text().count("| `RK-") == len(get_rules())


def test_cli_severities_match_the_audits():
    from rknb.audit import SEVERITIES
    from rknb.audit.model import FAIL_ON_SEVERITIES

    parser = cli.build_parser()
    audit_parser = parser._subparsers._group_actions[0].choices["audit"]  # type: ignore[union-attr]
    [fail_on] = [a for a in audit_parser._actions if a.dest == "fail_on"]
    # The thresholds are run's words (issue 6, gap 8), which hold every rule severity.
    assert tuple(fail_on.choices) == FAIL_ON_SEVERITIES
    assert set(SEVERITIES) <= set(FAIL_ON_SEVERITIES)
    assert fail_on.default == "high"
