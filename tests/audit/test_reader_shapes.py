"""Inputs of the wrong shape are one error each, never a traceback that loses the report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rknb import cli
from rknb.conformance import audit as runner
from rknb.errors import ParameterError
from rknb.kube import parse_quantity

GOOD = """\
apiVersion: v1
kind: Service
metadata: {name: front, namespace: shop}
spec: {selector: {app: front}, ports: [{port: 80}]}
"""


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        ("{name: [a, b], namespace: shop}", "metadata.name is ['a', 'b'], not a string"),
        ("{name: s, namespace: {x: 1}}", "metadata.namespace is {'x': 1}, not a string"),
        ("{name: s, namespace: 7}", "metadata.namespace is 7, not a string"),
        ("{name: s, annotations: [1, 2]}", "metadata.annotations is [1, 2], not a mapping"),
        ("{name: s, labels: on}", "metadata.labels is True, not a mapping"),
        ("[1]", "metadata is [1], not a mapping"),
    ],
)
def test_metadata_of_the_wrong_shape_is_an_error_naming_the_field(tmp_path, metadata, expected):
    (tmp_path / "a.yaml").write_text(f"apiVersion: v1\nkind: Service\nmetadata: {metadata}\n")
    (tmp_path / "b.yaml").write_text(GOOD)
    output, code = runner.audit_output([str(tmp_path)], output_format="json")
    report = json.loads(output)
    (error,) = report["errors"]
    assert error["path"].endswith("a.yaml") and error["line"] == 1
    assert error["message"].startswith(f"Service: {expected}")
    assert error["message"].endswith("; the object is not audited")
    assert {o["name"] for o in report["objects"]} == {"front"}
    assert code == 1


def test_a_template_that_is_not_a_mapping_costs_its_rules_not_the_report(tmp_path):
    (tmp_path / "nan.yaml").write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: shop}\n"
        "spec:\n  template: .nan\n"
    )
    (tmp_path / "good.yaml").write_text(GOOD)
    output, _ = runner.audit_output([str(tmp_path)], output_format="json")
    report = json.loads(output)
    assert {o["name"] for o in report["objects"]} == {"web", "front"}
    assert all("could not check Deployment shop/web" in e["message"] for e in report["errors"])


@pytest.mark.parametrize("value", ["9" * 400, "1e400", "5E999m", 1e309, float("nan")])
def test_a_quantity_beyond_what_the_api_holds_is_refused(value):
    with pytest.raises(ParameterError, match=r"out of range|expected a Kubernetes quantity"):
        parse_quantity(value)


def test_huge_quantities_are_input_errors_not_overflows(tmp_path):
    cpu = "9" * 400
    (tmp_path / "big.yaml").write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: big, namespace: shop}\n"
        "spec:\n  template:\n    spec:\n      containers:\n      - name: app\n"
        f"        image: a:1\n        resources: {{requests: {{cpu: '{cpu}'}}}}\n"
    )
    output, _ = runner.audit_output([str(tmp_path)], output_format="json")
    (error,) = json.loads(output)["errors"]
    assert "resources.requests.cpu" in error["message"] and "treated as absent" in error["message"]


def test_a_json_manifest_may_start_with_a_byte_order_mark(tmp_path):
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "bom", "namespace": "x"}}
    (tmp_path / "bom.json").write_bytes(b"\xef\xbb\xbf" + json.dumps(service).encode())
    inputs = runner.read_inputs([tmp_path])
    assert inputs.errors == [] and [o["metadata"]["name"] for o in inputs.objects] == ["bom"]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_is_an_error_and_never_blocks(tmp_path):
    os.mkfifo(tmp_path / "pipe.yaml")
    started = time.monotonic()
    given = runner.read_inputs([tmp_path / "pipe.yaml"])
    assert [e.message for e in given.errors] == [
        "not a regular file or folder (a FIFO, a device, or a symlink that leads nowhere or "
        "in a loop)"
    ]
    # Reached while reading (a file replaced by a FIFO after the folder was listed).
    inputs = runner.AuditInputs()
    runner._read_file(str(tmp_path / "pipe.yaml"), inputs, "default")
    assert [e.message for e in inputs.errors] == ["not a regular file (a FIFO or a device)"]
    assert time.monotonic() - started < 2


def test_an_unknown_rule_id_is_refused_before_any_file_is_read(tmp_path, capsys):
    missing = tmp_path / "never-read.yaml"
    with pytest.raises(ParameterError, match=r"'rules'.*'RK-NOPE-001' names no rule"):
        runner.audit_output([str(missing)], rules=["RK-NOPE-001"])
    assert cli.main(["audit", str(missing), "--rules", "RK-NOPE-001"]) == 2
    assert "never-read.yaml" not in capsys.readouterr().out


def test_a_closed_standard_output_is_one_error_line(tmp_path):
    (tmp_path / "a.yaml").write_text(GOOD)
    done = subprocess.run(
        [sys.executable, "-c", "import sys; from rknb import cli; sys.exit(cli.main(sys.argv[1:]))",
         "audit", str(tmp_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        close_fds=True,
        preexec_fn=lambda: os.close(1),
    )  # fmt: skip
    assert done.returncode == 7
    assert "standard output is closed" in done.stderr and "Traceback" not in done.stderr


def test_lone_surrogates_leave_every_json_format_valid_utf8(tmp_path):
    (tmp_path / "odd.json").write_text(
        '{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x\\ud800y", '
        '"namespace": "shop"}, "spec": {"selector": {"app": "gone"}}}'
    )
    for output_format in ("json", "sarif"):
        output, _ = runner.audit_output([str(tmp_path)], output_format=output_format)
        text = output.decode("utf-8")  # strict: no surrogate escapes or bytes left
        assert "\\ud800" not in text and "x\ufffdy" in text
        json.loads(text)


def test_paths_to_nowhere_say_which_kind_of_nowhere(tmp_path):
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    inputs = runner.read_inputs([tmp_path / "loop", tmp_path / "absent.yaml"])
    assert [Path(e.path).name for e in inputs.errors] == ["loop", "absent.yaml"]
    assert "a symlink that leads nowhere or in a loop" in inputs.errors[0].message
    assert "no such file or folder" in inputs.errors[1].message
