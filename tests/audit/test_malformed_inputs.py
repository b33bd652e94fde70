"""One object of the wrong shape costs only its own checks: no crash, no leak, no lost rule."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from rknb import cli
from rknb.audit import audit
from rknb.audit import engine as audit_engine
from rknb.conformance import audit as runner
from rknb.errors import ParameterError
from rknb.sources.objects import strip_secret


def _deployment(name: str, namespace: str = "shop", **template: Any) -> dict[str, Any]:
    labels = {"app": name}
    pod = {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "c", "image": "x:1"}]}}
    for key, value in template.items():
        pod[key] = value
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"replicas": 2, "selector": {"matchLabels": labels}, "template": pod},
    }


def _hpa(name: str, target: Any) -> dict[str, Any]:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name, "namespace": "shop"},
        "spec": {"scaleTargetRef": target, "minReplicas": 2, "maxReplicas": 4},
    }


def _json(paths: list[Path], **options: object) -> tuple[dict[str, Any], int]:
    text, code = runner.audit_command([str(p) for p in paths], output_format="json", **options)
    return json.loads(text), code


# ------------------------------------------------------------------ cross-object rules


def test_one_malformed_object_leaves_the_cross_object_rules_checking_the_others():
    good = [_deployment(f"web-{n}") for n in range(5)]
    odd = [
        _deployment("labels-as-text", metadata={"labels": "app=bad"}),
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "svc", "namespace": "shop"},
            "spec": {"selector": ["a", "b"], "ports": [{"port": 80}]},
        },
        {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": {"name": "pdb", "namespace": "shop"},
            "spec": {"selector": "x", "maxUnavailable": 1},
        },
    ]
    rules = ["RK-AVAIL-002", "RK-SVC-001"]
    report = audit([*good, *odd], rules=rules)
    alone = audit(good, rules=rules)
    no_pdb = {f.name for f in report.findings if f.rule_id == "RK-AVAIL-002"}
    # Every good Deployment is still reported, and the one whose labels are text selects no
    # PDB either; the malformed selectors select nothing (the schema check reports them).
    assert no_pdb == {f.name for f in alone.findings} | {"labels-as-text"}
    assert [f.name for f in report.findings if f.rule_id == "RK-SVC-001"] == ["svc"]
    assert report.errors == []


def test_a_cross_object_rule_failing_on_some_objects_is_run_without_them():
    # RK-HPA-001 reads scaleTargetRef as a mapping: two HPAs hold text there. The rule is
    # run without each in turn, each becomes one error naming it, and the others are checked.
    objects = [
        _deployment("web"),
        _hpa("fine", {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}),
        _hpa("bad-1", "Deployment/web"),
        _hpa("dangling", {"apiVersion": "apps/v1", "kind": "Deployment", "name": "gone"}),
        _hpa("bad-2", ["Deployment", "web"]),
    ]
    report = audit(objects, rules=["RK-HPA-001"])
    assert [f.name for f in report.findings] == ["dangling"]
    assert sorted(e.name for e in report.errors if e.name) == ["bad-1", "bad-2"]
    assert all("RK-HPA-001" in e.message for e in report.errors)
    key = "HorizontalPodAutoscaler/shop/"
    assert report.verdicts[("RK-HPA-001", key + "fine")] is True
    assert report.verdicts[("RK-HPA-001", key + "dangling")] is False
    assert ("RK-HPA-001", key + "bad-1") not in report.verdicts


def test_a_cross_object_rule_failing_on_too_many_objects_is_one_error(monkeypatch):
    monkeypatch.setattr(audit_engine, "MAX_SET_CULPRITS", 1)
    objects = [_deployment("web"), _hpa("bad-1", "x"), _hpa("bad-2", "y")]
    report = audit(objects, rules=["RK-HPA-001"])
    assert report.findings == []
    assert [e.name for e in report.errors] == [None]
    assert "could not check the objects" in report.errors[0].message


# ------------------------------------------------------------------ shapes that crashed


def test_fields_of_the_wrong_shape_are_errors_not_crashes(tmp_path):
    pod = {"name": "c", "image": "x:1"}
    documents = [
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "s"}, "spec": "oops"},
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "owned", "ownerReferences": "rs"},
            "spec": {"containers": [pod]},
        },
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "init", "ownerReferences": ["rs", 7]},
            "spec": {"containers": [pod], "initContainers": 7},
        },
        _deployment("web", namespace="default"),
    ]
    (tmp_path / "a.yaml").write_text(yaml.safe_dump_all(documents))
    document, code = _json([tmp_path])
    messages = [e["message"] for e in document["errors"]]
    assert "Deployment: spec is a str, not a mapping; the object is not audited" in messages
    audited = {o["name"] for o in document["objects"]}
    assert {"owned", "init", "web"} <= audited and "s" not in audited
    assert code == 1


def test_too_deep_promql_is_reported_and_never_reaches_the_parser(tmp_path):
    chained = "up" + " + up" * 1000
    nested = "(" * 20_000 + "up" + ")" * 20_000  # crashes promql-parser itself
    rules = {"groups": [{"name": "g", "rules": [
        {"alert": "Chained", "expr": chained, "for": "5m"},
        {"alert": "Nested", "expr": nested, "for": "5m"},
        {"alert": "Fine", "expr": "up == 0", "for": "5m"},
    ]}]}  # fmt: skip
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rules, width=10**6))
    # In a child process: were the bound missing, the parser would kill it, not the tests.
    code = (
        "import json, sys\n"
        "from rknb.conformance import audit\n"
        f"text, code = audit.audit_command([{str(tmp_path)!r}], output_format='json')\n"
        "print(text)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    document = json.loads(done.stdout)
    deep = {f["alert"]: f["message"] for f in document["findings"] if f["rule_id"] == "RK-PROM-014"}
    assert sorted(deep) == ["g/Chained", "g/Nested"]
    assert "more than the 400 rknb reads" in deep["g/Chained"]
    assert document["errors"] == []


# ------------------------------------------------------------------ secrets


def test_a_credential_in_a_malformed_container_never_reaches_a_report(tmp_path):
    secret = "LEAK-s3cr3t-value"
    spec = {
        "containers": {"name": "c", "image": "x", "env": [{"name": "DB_PASSWORD", "value": secret}]}
    }
    first = _deployment("w")
    first["spec"]["template"]["spec"] = spec
    second = _deployment("w2")
    second["spec"]["template"]["spec"]["containers"][0]["env"] = f"DB_PASSWORD={secret}"
    third = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": "shop"},
        "spec": {"initContainers": [{"name": "i", "env": {"name": "API_TOKEN", "value": secret}}]},
    }
    (tmp_path / "a.yaml").write_text(yaml.safe_dump_all([first, second, third]))
    for output_format in ("text", "json", "sarif", "junit"):
        text, _ = runner.audit_command(
            [str(tmp_path)], output_format=output_format, kube_version="1.30"
        )
        assert secret not in text, output_format
        assert "is invalid for Kubernetes" in text  # the schema errors are still there
    assert (
        "the value (a mapping) is not of type 'array'"
        in runner.audit_command([str(tmp_path)], kube_version="1.30")[0]
    )


def test_secret_env_values_are_redacted_whatever_the_containers_shape():
    mapping = {"kind": "Deployment", "spec": {"template": {"spec": {
        "containers": {"name": "c", "env": [{"name": "DB_PASSWORD", "value": "a"}]},
        "initContainers": 7,
    }}}}  # fmt: skip
    single_env = {"kind": "Pod", "spec": {"initContainers": [
        {"name": "i", "env": {"name": "API_TOKEN", "value": "b"}}]}}  # fmt: skip
    assert "'a'" not in repr(strip_secret(mapping)) and "<redacted>" in repr(strip_secret(mapping))
    assert strip_secret(single_env)["spec"]["initContainers"][0]["env"]["value"] == "<redacted>"


# ------------------------------------------------------------------ files and the command


def test_a_fifo_or_a_dangling_link_in_a_folder_is_an_error(tmp_path):
    (tmp_path / "ok.yaml").write_text(yaml.safe_dump(_deployment("web")))
    os.mkfifo(tmp_path / "pipe.yaml")
    (tmp_path / "dangling.yaml").symlink_to(tmp_path / "nowhere.yaml")
    (tmp_path / "notes.txt").write_text("not a manifest")
    document, code = _json([tmp_path])
    assert sorted(Path(e["path"]).name for e in document["errors"]) == [
        "dangling.yaml",
        "pipe.yaml",
    ]
    assert all("not a regular file" in e["message"] for e in document["errors"])
    assert [o["name"] for o in document["objects"]] == ["web"]
    assert code == 1


def test_template_braces_in_a_folder_name_are_not_a_template(tmp_path):
    folder = tmp_path / "{{ .Values.dir }}"
    folder.mkdir()
    (folder / "web.yaml").write_text(yaml.safe_dump(_deployment("web")))
    document, _ = _json([tmp_path])
    assert document["skipped"] == []
    assert [o["name"] for o in document["objects"]] == ["web"]


def test_a_config_file_that_is_not_utf8_is_a_usage_error(tmp_path):
    config = tmp_path / "audit.yaml"
    config.write_bytes(b"min_replicas: caf\xe9\n")
    with pytest.raises(ParameterError) as caught:
        runner.load_config(config)
    assert str(config) in str(caught.value) and "--config" in str(caught.value)


def test_an_empty_rules_list_is_a_usage_error(tmp_path, capsys):
    (tmp_path / "a.yaml").write_text(yaml.safe_dump(_deployment("web")))
    assert cli.main(["audit", str(tmp_path), "--rules", ""]) == 2
    assert "names no rule" in capsys.readouterr().err


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_a_report_that_cannot_be_written_is_exit_7_without_a_traceback(tmp_path):
    (tmp_path / "a.yaml").write_text(yaml.safe_dump(_deployment("web")))
    with open("/dev/full", "w") as full:
        done = subprocess.run(
            [sys.executable, "-m", "rknb.cli", "audit", str(tmp_path)],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 7
    assert "could not be written" in done.stderr and "Traceback" not in done.stderr


def test_a_skipped_custom_resource_keeps_the_namespace_it_names(tmp_path):
    certificate = {
        "apiVersion": "cert-manager.io/v1",
        "kind": "Certificate",
        "metadata": {"name": "app0", "namespace": "team-a"},
        "spec": {},
    }
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(certificate))
    document, code = _json([tmp_path])
    [skipped] = document["skipped"]
    assert (skipped["kind"], skipped["namespace"], skipped["name"]) == (
        "Certificate",
        "team-a",
        "app0",
    )
    assert code == 0


def test_config_file_errors_name_the_file_and_line(tmp_path):
    config = tmp_path / "audit.yaml"
    config.write_text("min_replicas: 2\nignore: [RK-IMG-001\n")
    with pytest.raises(ParameterError) as caught:
        runner.load_config(config)
    # libyaml notices the unclosed list at the end of the text: line 3.
    assert f"{config}:3: YAML syntax error" in str(caught.value)
    assert "--config" in str(caught.value)


def test_a_container_field_of_the_wrong_shape_is_one_error_and_read_as_absent():
    web = _deployment("web")
    container = web["spec"]["template"]["spec"]["containers"][0]
    container["env"] = "DB_HOST=db"
    container["readinessProbe"] = ["httpGet", "/ready"]
    report = audit([web])
    messages = [e.message for e in report.errors]
    assert messages == [
        "Deployment shop/web: container 'c' spec.template.spec.containers[0].env is a str, "
        "not a list; it is treated as absent",
        "Deployment shop/web: container 'c' spec.template.spec.containers[0].readinessProbe is a "
        "list, not a mapping; it is treated as absent",
    ]
    # Read as absent: no readiness probe, and no rule fails on the env text.
    assert "RK-PROBE-001" in {f.rule_id for f in report.findings}
