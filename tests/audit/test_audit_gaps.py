"""Issue 6's deployment-audit gaps: what testers found `rknb audit` getting wrong, pinned."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from rknb import cli
from rknb.audit import AuditConfig, at_or_above, audit
from rknb.conformance import audit as runner
from rknb.errors import ParameterError

DATA = Path(__file__).resolve().parent.parent / "data"
SARIF_SCHEMA = json.loads((DATA / "audit" / "sarif" / "sarif-schema-2.1.0.json").read_text())

# One Deployment whose image is :latest (RK-IMG-001), shared with the other audit tests.
DEPLOYMENT = (DATA / "audit" / "web-latest.yaml").read_text()

# Two documents Helm has not rendered: the first is not YAML at all ({{ include }} as a
# mapping value), the second is YAML whose name is a template.
HELM_CHART = """\
apiVersion: v1
kind: Service
metadata:
  name: web
  labels: {{ include "chart.labels" . }}
---
# the API
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}-api
"""


def _write(folder: Path, name: str, text: str) -> str:
    path = folder / name
    path.write_text(text)
    return str(path)


def _json(paths: list[str], **options: Any) -> tuple[dict[str, Any], int]:
    text, code = runner.audit_command(paths, output_format="json", **options)
    return json.loads(text), code


def _sarif(paths: list[str], **options: Any) -> tuple[dict[str, Any], int]:
    text, code = runner.audit_command(paths, output_format="sarif", **options)
    log = json.loads(text)
    jsonschema.validate(log, SARIF_SCHEMA)
    return log, code


def _junit_suite(paths: list[str], **options: Any) -> ET.Element:
    text, _ = runner.audit_command(paths, output_format="junit", **options)
    suite = ET.fromstring(text.split("?>", 1)[1]).find("testsuite")
    assert suite is not None
    return suite


# ------------------------------------------------------------ 1. Helm-skipped documents


def test_a_helm_template_file_is_skipped_per_document_with_file_line_kind_and_name(tmp_path):
    chart = _write(tmp_path, "chart.yaml", HELM_CHART)
    inputs = runner.read_inputs([chart])
    found = [(d.path, d.line, d.kind, d.name) for d in inputs.skipped]
    # The second document starts at line 8 (after `---` and a comment); its name is a
    # template, so no name is read for it.
    assert found == [(chart, 1, "Service", "web"), (chart, 8, "Deployment", None)]
    assert all(d.reason == "unrendered Helm template; render it first" for d in inputs.skipped)


def test_the_text_skipped_list_names_file_line_and_object_never_none(tmp_path):
    chart = _write(tmp_path, "chart.yaml", HELM_CHART)
    text, _ = runner.audit_command([chart])
    block = text.split("Skipped (2):\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert block == [
        f"    Service/web at {chart}:1: unrendered Helm template; render it first",
        f"    Deployment at {chart}:8: unrendered Helm template; render it first",
    ]
    assert "None" not in text


def test_a_helm_object_that_parses_as_yaml_is_skipped_with_its_file_and_line(tmp_path):
    path = _write(tmp_path, "d.yaml", DEPLOYMENT.replace('"web:latest"', '"{{ .Values.image }}"'))
    text, _ = runner.audit_command([path])
    assert f"    Deployment/shop/web at {path}:1: unrendered Helm template" in text
    document, _ = _json([path])
    assert [(s["kind"], s["name"], s["source"]) for s in document["skipped"]] == [
        ("Deployment", "web", f"{path}:1")
    ]


def test_json_and_junit_skipped_entries_carry_the_file_and_line(tmp_path):
    chart = _write(tmp_path, "chart.yaml", HELM_CHART)
    document, _ = _json([chart])
    assert sorted((s["source"], s["kind"], s["name"]) for s in document["skipped"]) == [
        (f"{chart}:1", "Service", "web"),
        (f"{chart}:8", "Deployment", None),
    ]
    suite = _junit_suite([chart])
    names = sorted(case.get("classname") or "" for case in suite.iter("testcase"))
    assert names == [f"Deployment at {chart}:8", f"Service/web at {chart}:1"]


# ------------------------------------------------------------ 2. SARIF executionSuccessful


def test_sarif_marks_the_run_unsuccessful_and_lists_each_input_error(tmp_path):
    _write(tmp_path, "bad.yaml", "a: [\n")
    (tmp_path / "blob.yaml").write_bytes(b"\x00\x01binary")
    _write(tmp_path, "d.yaml", DEPLOYMENT.replace("  selector: {matchLabels: {app: web}}\n", ""))
    log, code = _sarif([str(tmp_path)], kube_version="1.30")
    invocation = log["runs"][0]["invocations"][0]
    assert invocation["executionSuccessful"] is False
    notes = invocation["toolExecutionNotifications"]
    by_file = {
        n["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].rpartition("/")[2]: n
        for n in notes
    }
    assert sorted(by_file) == ["bad.yaml", "blob.yaml", "d.yaml"]
    assert {n["level"] for n in notes} == {"error"}
    # PyYAML marks the end of the stream: line 2, column 1.
    region = by_file["bad.yaml"]["locations"][0]["physicalLocation"]["region"]
    assert region == {"startLine": 2, "startColumn": 1}
    assert "'selector' is a required property" in by_file["d.yaml"]["message"]["text"]
    assert by_file["d.yaml"]["locations"][0]["physicalLocation"]["region"] == {"startLine": 1}
    assert "region" not in by_file["blob.yaml"]["locations"][0]["physicalLocation"]
    assert code == 1


def test_sarif_lists_an_error_in_an_object_from_no_file_without_a_location():
    cluster_object = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"replicas": "three"},
    }
    log, code = _sarif([], objects=[cluster_object], rules=["RK-AVAIL-001"])
    invocation = log["runs"][0]["invocations"][0]
    assert invocation["executionSuccessful"] is False
    [note] = invocation["toolExecutionNotifications"]
    assert "spec.replicas is 'three'" in note["message"]["text"] and "locations" not in note
    assert code == 1


def test_sarif_of_readable_inputs_reports_a_successful_run(tmp_path):
    path = _write(tmp_path, "d.yaml", DEPLOYMENT)
    log, _ = _sarif([path])
    invocation = log["runs"][0]["invocations"][0]
    assert invocation == {"executionSuccessful": True}


# ------------------------------------------------------------ 3. duplicate-object warnings


def _duplicated(tmp_path: Path) -> tuple[str, str]:
    return _write(tmp_path, "a.yaml", DEPLOYMENT), _write(tmp_path, "b.yaml", DEPLOYMENT)


def test_json_carries_duplicate_object_warnings(tmp_path):
    first, second = _duplicated(tmp_path)
    document, _ = _json([first, second], rules=["RK-AVAIL-001"])
    assert document["warnings"] == [
        {
            "path": second,
            "line": 1,
            "column": None,
            "message": f"Deployment/shop/web is also defined at {first}:1; both are audited, "
            "remove one",
        }
    ]
    assert document["errors"] == []


def test_sarif_carries_duplicate_object_warnings_without_failing_the_run(tmp_path):
    first, second = _duplicated(tmp_path)
    log, _ = _sarif([first, second], rules=["RK-AVAIL-001"])
    invocation = log["runs"][0]["invocations"][0]
    assert invocation["executionSuccessful"] is True
    [note] = invocation["toolExecutionNotifications"]
    assert note["level"] == "warning"
    assert f"also defined at {first}:1" in note["message"]["text"]
    location = note["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"].endswith("b.yaml")
    assert location["region"] == {"startLine": 1}


def test_junit_carries_duplicate_object_warnings(tmp_path):
    first, second = _duplicated(tmp_path)
    suite = _junit_suite([first, second], rules=["RK-AVAIL-001"])
    properties = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert properties == {"warnings": "1"}
    out = suite.find("system-out")
    assert out is not None and out.text is not None
    assert f"{second}:1: Deployment/shop/web is also defined at {first}:1" in out.text
    # The properties and system-out are not test cases. Both copies share one object key, so
    # one rule gives one check (rule x object key).
    assert suite.get("tests") == "1" == str(len(suite.findall("testcase")))
    tags = [child.tag for child in suite]
    assert tags[0] == "properties" and tags[-1] == "system-out"


# ------------------------------------------------------------ 4. quantities that are not


BAD_QUANTITIES = DEPLOYMENT.replace(
    'image: "web:latest"}',
    'image: "web:latest", resources: {requests: {cpu: lots, memory: "12 parsecs"}, '
    "limits: {cpu: 0.5, memory: 128Mi}}}",
)


def test_a_resource_that_is_no_quantity_is_an_input_error_naming_where_and_the_form(tmp_path):
    path = _write(tmp_path, "d.yaml", BAD_QUANTITIES)
    document, code = _json([path], rules=["RK-RES-001", "RK-RES-002", "RK-RES-003"])
    messages = sorted(e["message"] for e in document["errors"])
    assert [(e["path"], e["line"]) for e in document["errors"]] == [(path, 1), (path, 1)]
    assert messages == [
        "Deployment shop/web: container 'app' "
        "spec.template.spec.containers[0].resources.requests.cpu is 'lots', not a quantity "
        "(write it as 100m, 0.5 or 128Mi); it is treated as absent",
        "Deployment shop/web: container 'app' "
        "spec.template.spec.containers[0].resources.requests.memory is '12 parsecs', not a "
        "quantity (write it as 100m, 0.5 or 128Mi); it is treated as absent",
    ]
    # Treated as absent: the requests are missing, the (valid) memory limit is not.
    assert sorted(f.rule_id for f in _findings(path)) == ["RK-RES-001", "RK-RES-002"]
    assert code == 1


def _findings(path: str) -> list[Any]:
    objects = runner.read_inputs([path]).objects
    return audit(objects, rules=["RK-RES-001", "RK-RES-002", "RK-RES-003"]).findings


def test_a_range_rule_reads_a_bad_quantity_as_absent_instead_of_failing(tmp_path):
    path = _write(tmp_path, "d.yaml", BAD_QUANTITIES)
    objects = runner.read_inputs([path]).objects
    ranges = (("requests.cpu", 0.1, 4.0), ("limits.cpu", 0.1, 0.25))
    report = audit(objects, rules=["RK-RES-007"], config=AuditConfig(resource_ranges=ranges))
    # limits.cpu 0.5 is above 0.25; requests.cpu "lots" is not checked at all.
    assert [f.message for f in report.findings] == [
        "container 'app' limits.cpu 0.5 is outside [0.1, 0.25]"
    ]
    assert len(report.errors) == 2


def test_valid_quantities_in_every_form_give_no_input_error():
    obj: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": "shop"},
        "spec": {
            "containers": [
                {
                    "name": "app",
                    "resources": {
                        "requests": {"cpu": 0.5, "memory": "1e3", "ephemeral-storage": "1Gi"},
                        "limits": {"cpu": "250m", "memory": 134217728, "nvidia.com/gpu": 1},
                    },
                }
            ]
        },
    }
    assert audit([obj], rules=["RK-RES-001"]).errors == []


def test_a_boolean_quantity_is_an_input_error():
    obj = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": "shop"},
        "spec": {
            "initContainers": [{"name": "init", "resources": {"limits": {"memory": True}}}],
            "containers": [{"name": "app"}],
        },
    }
    [error] = audit([obj], rules=["RK-RES-003"]).errors
    assert "container 'init' spec.initContainers[0].resources.limits.memory is True" in (
        error.message
    )


# ------------------------------------------------------------ 5. --kube-version


def test_an_unknown_kube_version_is_refused_before_any_work(tmp_path, capsys):
    missing = str(tmp_path / "not-there")
    with pytest.raises(SystemExit) as caught:
        cli.main(["audit", missing, "--kube-version", "9.99"])
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert "--kube-version" in err and "'9.99'" in err
    # The nearest versions kubernetes-validate carries, and its whole range.
    assert "1.35, 1.36, 1.37" in err and "1.25 to 1.37" in err
    assert "not-there" not in err


@pytest.mark.parametrize("version", ["1.24", "1.38", "1", "latest", "1.3x"])
def test_versions_kubernetes_validate_does_not_carry_are_usage_errors(version):
    with pytest.raises(ParameterError, match=r"--kube-version") as caught:
        runner.audit_command([], kube_version=version)
    assert repr(version) in str(caught.value)


@pytest.mark.parametrize("version", ["1.30", "1.30.0", "v1.30", "1.30.4", "v1.30.2-gke.1587003"])
def test_the_version_forms_that_worked_still_work(version):
    assert runner.schema_version(version) == "1.30.0"


# ------------------------------------------------------------ 6. config given as a mapping


@pytest.mark.parametrize(
    ("given", "key", "expected"),
    [
        ({"min_replics": 3}, "min_replics", "did you mean 'min_replicas'"),
        ({"min_replicas": "two"}, "min_replicas", "a whole number"),
        ({"disabled": "RK-IMG-001"}, "disabled", "a list of strings"),
        ({"disabled": ["RK-IMG-01"]}, "RK-IMG-01", "did you mean 'RK-IMG-001'"),
        ({"scrape_interval_s": "30s"}, "scrape_interval_s", "a number of seconds"),
        ({"metric_types": {"up": "gaug"}}, "metric_types", "counter"),
    ],
)
def test_a_config_mapping_is_checked_like_a_config_file(tmp_path, given, key, expected):
    with pytest.raises(ParameterError) as caught:
        audit([], config=given)
    assert caught.value.name == "config"
    assert key in str(caught.value) and expected in str(caught.value)

    # The same content in a --config file gives the same sentence, naming the file.
    path = tmp_path / "audit.yaml"
    path.write_text(json.dumps(given))
    with pytest.raises(ParameterError) as from_file:
        runner.load_config(path)
    assert from_file.value.name == "--config"
    assert str(path) in str(from_file.value)
    assert str(caught.value).split(": ", 1)[1] in str(from_file.value)


def test_a_good_config_mapping_still_configures_the_audit():
    report = audit(
        [], config={"disabled": ["RK-RES-004"], "min_replicas": 3, "metric_types": {"x": "gauge"}}
    )
    assert "RK-RES-004" not in report.rules


# ------------------------------------------------------------ 7. ServiceMonitor from files


def test_a_servicemonitor_file_reaches_its_rule(tmp_path):
    path = _write(
        tmp_path,
        "monitor.yaml",
        "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: mon, "
        "labels: {app: web}}\nspec: {selector: {app: web}}\n---\n"
        "apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\n"
        "metadata: {name: m, namespace: mon}\n"
        "spec: {selector: {matchLabels: {app: api}}, endpoints: [{port: http}]}\n",
    )
    inputs = runner.read_inputs([path])
    assert [o["kind"] for o in inputs.objects] == ["Service", "ServiceMonitor"]
    assert inputs.skipped == []
    text, _ = runner.audit_command([path], rules=["RK-MON-001"])
    assert "RK-MON-001 ServiceMonitor selects no Service: ServiceMonitor/mon/m" in text
    assert f"at: {path}:6" in text


# ------------------------------------------------------------ 8. --fail-on vocabulary


def _fail_on_action(command: str) -> Any:
    parser = cli.build_parser()
    commands = next(a for a in parser._actions if a.dest == "command")
    sub = commands.choices[command]
    return next(a for a in sub._actions if a.dest == "fail_on")


def test_audit_and_run_accept_the_same_fail_on_words():
    from rknb import report
    from rknb.audit.model import FAIL_ON_SEVERITIES

    audit_words = list(_fail_on_action("audit").choices)
    assert audit_words == list(_fail_on_action("run").choices) == list(report.SEVERITIES)
    assert list(FAIL_ON_SEVERITIES) == audit_words


def test_a_bad_fail_on_gives_the_same_usage_error_in_audit_and_run(capsys):
    errors = []
    for argv in (["audit", "x", "--fail-on", "severe"], ["run", "x", "--fail-on", "severe"]):
        with pytest.raises(SystemExit) as caught:
            cli.main(argv)
        assert caught.value.code == 2
        errors.append(capsys.readouterr().err.strip().splitlines()[-1])
    audit_error, run_error = errors
    assert audit_error.replace("'rknb audit --help'", "'rknb run --help'") == run_error
    assert "argument --fail-on: invalid choice: 'severe'" in audit_error
    assert "'info', 'low', 'warning', 'medium', 'high', 'error', 'critical'" in audit_error


def test_warning_and_error_thresholds_sit_where_run_places_them(tmp_path):
    # run's order: info < low < warning < medium < high < error < critical.
    path = _write(tmp_path, "d.yaml", DEPLOYMENT)
    medium = audit(runner.read_inputs([path]).objects, rules=["RK-AVAIL-001"])
    high = audit(runner.read_inputs([path]).objects, rules=["RK-IMG-001"])
    assert [f.severity for f in medium.findings] == ["medium"]
    assert len(at_or_above(medium, "warning")) == 1 and at_or_above(medium, "high") == []
    assert at_or_above(high, "error") == [] and len(at_or_above(high, "high")) == 1
    assert cli.main(["audit", path, "--rules", "RK-AVAIL-001", "--fail-on", "warning"]) == 1
    assert cli.main(["audit", path, "--rules", "RK-IMG-001", "--fail-on", "error"]) == 0
    with pytest.raises(ParameterError, match=r"'severe'.*info, low, warning"):
        at_or_above(medium, "severe")
