"""Bad fields, hostile names, bad configs and repeated inputs do not break ``rknb audit``."""

from __future__ import annotations

import json
import os
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from rknb import cli
from rknb.audit import audit
from rknb.audit.output import to_text
from rknb.conformance import audit as runner
from rknb.errors import ParameterError

HERE = Path(__file__).resolve().parent.parent / "data" / "audit" / "robustness"
BAD = HERE / "bad-replicas.yaml"
GOOD = HERE / "good.yaml"
EVIL = HERE / "control-chars.yaml"
#: The name in control-chars.yaml, as YAML reads its escapes.
EVIL_NAME = "evil\x1b]0;pwned\x07\x1b[31mRED\r"


def _json(paths: list[Path], **options: object) -> tuple[dict, int]:
    text, code = runner.audit_command([str(p) for p in paths], output_format="json", **options)
    return json.loads(text), code


# ------------------------------------------------------------------ 1. one bad field


def test_a_word_for_replicas_does_not_lose_the_other_files_findings():
    document, code = _json([BAD, GOOD])
    single = [f for f in document["findings"] if f["name"] == "single"]
    # good.yaml alone: RK-AVAIL-001 fires on its one replica.
    alone, _ = _json([GOOD])
    assert sorted(f["rule_id"] for f in single) == sorted(f["rule_id"] for f in alone["findings"])
    assert "RK-AVAIL-001" in {f["rule_id"] for f in single}
    assert code == 1  # the bad fields are input errors


def test_each_bad_number_field_is_one_error_naming_file_object_and_field():
    document, _ = _json([BAD])
    messages = [e["message"] for e in document["errors"]]
    paths = {e["path"] for e in document["errors"]}
    assert paths == {str(BAD)}
    expected = [
        ("Deployment shop/words", "spec.replicas", "'three'"),
        ("Deployment shop/listed", "spec.replicas", "[1]"),
        ("Deployment shop/listed", "spec.template.spec.securityContext.runAsUser", "'root'"),
        (
            "Deployment shop/listed",
            "spec.template.spec.containers[0].ports[0].containerPort",
            "'http'",
        ),
        ("HorizontalPodAutoscaler shop/listed", "spec.minReplicas", "'two'"),
        ("HorizontalPodAutoscaler shop/listed", "spec.maxReplicas", "{'many': 1}"),
    ]
    for obj, field, value in expected:
        assert any(obj in m and f"{field} is {value}" in m for m in messages), (obj, field)
    assert len(messages) == len(expected)
    lines = {(e["message"].split(" ")[1].rstrip(":"), e["line"]) for e in document["errors"]}
    assert ("shop/words", 2) in lines and ("shop/listed", 25) in lines


def test_a_bad_replicas_value_is_treated_as_absent_by_the_rules():
    document, _ = _json([BAD])
    # spec.replicas absent means 1 replica: under the default min_replicas of 2.
    fewer = {f["name"] for f in document["findings"] if f["rule_id"] == "RK-AVAIL-001"}
    assert "words" in fewer


def test_a_rule_that_raises_on_one_object_is_reported_and_the_rest_is_audited(monkeypatch):
    from rknb.audit.registry import RULES

    rule = RULES["RK-IMG-001"]

    def broken(obj, config):
        if obj["metadata"]["name"] == "b":
            raise TypeError("unhashable type: 'list'")
        yield from rule.check(obj, config)

    monkeypatch.setitem(RULES, "RK-IMG-001", type(rule)(**{**vars(rule), "check": broken}))
    objects = [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "namespace": "shop"},
            "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "x:latest"}]}}},
        }
        for name in ("a", "b")
    ]
    report = audit(objects, rules=["RK-IMG-001"])
    assert [f.name for f in report.findings] == ["a"]
    assert len(report.errors) == 1
    assert report.errors[0].name == "b"
    assert "RK-IMG-001" in report.errors[0].message
    assert "unhashable" in report.errors[0].message


# ------------------------------------------------------------------ 2. control characters


def test_junit_with_control_characters_in_a_name_is_valid_xml():
    text, _ = runner.audit_command([str(EVIL)], output_format="junit")
    root = ET.fromstring(text.split("?>", 1)[1])
    names = {case.get("classname") for case in root.iter("testcase")}
    assert "Deployment/shop/evil\\x1b]0;pwned\\x07\\x1b[31mRED\\r" in names


def test_junit_with_control_characters_in_an_input_error_is_valid_xml(tmp_path):
    bad = tmp_path / "bad\x1b[2J.yaml"
    bad.write_text("a: [\n")
    text, _ = runner.audit_command([str(bad)], output_format="junit")
    root = ET.fromstring(text.split("?>", 1)[1])
    assert root.find("testsuite").get("errors") == "1"
    assert "\x1b" not in text


def test_text_output_shows_control_characters_escaped():
    text, _ = runner.audit_command([str(EVIL)], output_format="text")
    assert not any(c in text for c in "\x1b\x07\r")
    assert "Deployment/shop/evil\\x1b]0;pwned\\x07\\x1b[31mRED\\r" in text


def test_text_output_escapes_a_newline_in_a_name_so_it_cannot_fake_a_line():
    report = audit(
        [
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "p\n[INFO] all good", "namespace": "shop"},
                "spec": {"containers": [{"name": "c", "image": "x:latest"}]},
            }
        ],
        rules=["RK-IMG-001"],
    )
    lines = to_text(report).splitlines()
    assert not any(line.startswith("[INFO] all good") for line in lines)
    assert any("Pod/shop/p\\n[INFO] all good" in line for line in lines)


def test_json_keeps_the_name_exactly():
    document, _ = _json([EVIL])
    assert EVIL_NAME in {f["name"] for f in document["findings"]}


# ------------------------------------------------------------------ 3. config problems


@pytest.mark.parametrize(
    ("body", "key", "expected"),
    [
        ("min_replicas: two\n", "min_replicas", "a whole number"),
        ("min_replicas: true\n", "min_replicas", "a whole number"),
        ("min_replicas: -1\n", "min_replicas", "a whole number"),
        ("ignore: 5\n", "ignore", "a list of"),
        ("ignore: [{rule: RK-IMG-001}]\n", "ignore", "a list of"),
        ("disabled: 7\n", "disabled", "a list of"),
        ("enabled: [1]\n", "enabled", "a list of"),
        ("scrape_interval_s: .nan\n", "scrape_interval_s", "a number of seconds"),
        ("alert_for_min_s: .inf\n", "alert_for_min_s", "a number of seconds"),
    ],
)
def test_a_bad_config_value_is_a_usage_error_naming_file_and_key(tmp_path, body, key, expected):
    config = tmp_path / "audit.yaml"
    config.write_text(body)
    with pytest.raises(ParameterError) as caught:
        runner.load_config(config)
    message = str(caught.value)
    assert str(config) in message and key in message and expected in message


def test_an_unknown_rule_id_in_the_config_is_refused_with_a_suggestion(tmp_path):
    config = tmp_path / "audit.yaml"
    config.write_text("disabled: [RK-IMG-01]\n")
    with pytest.raises(ParameterError, match=r"RK-IMG-01'.*did you mean 'RK-IMG-001'"):
        runner.load_config(config)
    config.write_text("ignore: ['RK-NOPE-001 Deployment/a/b -- why']\n")
    with pytest.raises(ParameterError, match="RK-NOPE-001"):
        runner.load_config(config)
    config.write_text("enabled: [RK-NOPE]\n")
    with pytest.raises(ParameterError, match="RK-NOPE"):
        runner.load_config(config)


def test_a_good_config_still_loads(tmp_path):
    config = tmp_path / "audit.yaml"
    config.write_text(
        "min_replicas: 3\ndisabled: [RK-IMG-001]\nenabled: ['*']\n"
        "ignore: ['RK-NET-001 Deployment/shop/web -- policy elsewhere']\n"
    )
    settings = runner.load_config(config)
    assert settings.min_replicas == 3
    assert settings.disabled == ("RK-IMG-001",)
    assert settings.enabled == ("*",)
    assert settings.ignore == ("RK-NET-001 Deployment/shop/web -- policy elsewhere",)


def test_the_cli_exits_2_on_a_bad_config(tmp_path, capsys):
    config = tmp_path / "audit.yaml"
    config.write_text("min_replicas: two\n")
    assert cli.main(["audit", str(GOOD), "--config", str(config)]) == 2
    assert "Traceback" not in capsys.readouterr().err


# ------------------------------------------------------------------ 4. repeated inputs


def test_the_same_file_given_twice_is_read_once():
    once, _ = _json([GOOD])
    twice, _ = _json([GOOD, GOOD])
    assert twice["findings"] == once["findings"]
    assert twice["objects"] == once["objects"]


def test_a_file_reached_through_a_folder_and_a_symlink_is_read_once(tmp_path):
    folder = tmp_path / "manifests"
    folder.mkdir()
    shutil.copy(GOOD, folder / "good.yaml")
    os.symlink(folder / "good.yaml", tmp_path / "link.yaml")
    inputs = runner.read_inputs([folder, tmp_path / "link.yaml", folder / "good.yaml"])
    assert inputs.files == 1
    assert len(inputs.objects) == 1


def test_two_files_defining_the_same_object_are_both_kept_with_a_warning(tmp_path):
    shutil.copy(GOOD, tmp_path / "a.yaml")
    shutil.copy(GOOD, tmp_path / "b.yaml")
    inputs = runner.read_inputs([tmp_path / "a.yaml", tmp_path / "b.yaml"])
    assert len(inputs.objects) == 2
    assert len(inputs.warnings) == 1
    warning = inputs.warnings[0].text()
    assert "Deployment/shop/single" in warning
    assert str(tmp_path / "a.yaml") in warning and str(tmp_path / "b.yaml") in warning
