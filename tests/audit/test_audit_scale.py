"""Bad inputs at the command level, large inputs, and the parallel paths giving serial results."""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from rknb.audit import AuditConfig, audit, to_json
from rknb.audit import engine as audit_engine
from rknb.conformance import audit as runner
from rknb.errors import ManifestError
from rknb.yamlfile import load_yaml_documents

SEED = Path(__file__).resolve().parent.parent / "data" / "audit" / "seed"

# One Deployment whose image is :latest (RK-IMG-001), shared with the other audit tests.
DEPLOYMENT = (SEED.parent / "web-latest.yaml").read_text()


def _alias_bomb() -> str:
    lines = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    for level in range(1, 9):  # 10**9 nodes once expanded
        refs = ", ".join([f"*a{level - 1}"] * 10)
        lines.append(f"a{level}: &a{level} [{refs}]")
    return "kind: ConfigMap\nmetadata: {name: lol}\ndata:\n" + "\n".join("  " + x for x in lines)


def _write_50_mb(path: Path) -> None:
    # Real manifests, not padding: the file would be read if the size check did not stop it.
    document = DEPLOYMENT.replace("name: web,", "name: web-{n},")
    chunk = "".join("---\n" + document.replace("{n}", str(n)) for n in range(1000))
    with path.open("w") as handle:
        while handle.tell() < 50 * 10**6:
            handle.write(chunk)


def test_a_50_mb_file_is_one_error_and_the_other_files_are_audited(tmp_path):
    _write_50_mb(tmp_path / "a-huge.yaml")
    (tmp_path / "b-good.yaml").write_text(DEPLOYMENT)
    assert (tmp_path / "a-huge.yaml").stat().st_size > 50 * 10**6
    inputs = runner.read_inputs([tmp_path])
    assert [o["metadata"]["name"] for o in inputs.objects] == ["web"]
    assert len(inputs.errors) == 1
    assert inputs.errors[0].path.endswith("a-huge.yaml")
    assert "48 MiB, over the 16 MiB limit" in inputs.errors[0].message


def test_every_bad_input_is_one_error_entry_and_the_run_completes(tmp_path):
    (tmp_path / "a-binary.yaml").write_bytes(b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)))
    (tmp_path / "b-broken.yaml").write_text("kind: Service\nmetadata:\n  name: x\n  - y\n")
    (tmp_path / "c-bomb.yaml").write_text(_alias_bomb() + "\n")
    _write_50_mb(tmp_path / "d-huge.yaml")
    (tmp_path / "e-good.yaml").write_text(DEPLOYMENT)
    text, code = runner.audit_command([str(tmp_path)], output_format="json")
    document = json.loads(text)
    errors = {Path(e["path"]).name: e for e in document["errors"]}
    assert sorted(errors) == ["a-binary.yaml", "b-broken.yaml", "c-bomb.yaml", "d-huge.yaml"]
    assert "binary file" in errors["a-binary.yaml"]["message"]
    # "- y" on line 4 cannot follow the mapping entry of line 3: libyaml stops at its dash.
    assert (errors["b-broken.yaml"]["line"], errors["b-broken.yaml"]["column"]) == (4, 3)
    assert "alias bomb" in errors["c-bomb.yaml"]["message"]
    assert "over the 16 MiB limit" in errors["d-huge.yaml"]["message"]
    # The good Deployment was still audited: its :latest image is a finding.
    assert any(f["name"] == "web" and f["rule_id"] == "RK-IMG-001" for f in document["findings"])
    assert code == 1


def test_two_objects_with_one_name_keep_their_own_findings(tmp_path):
    with_probe = yaml.safe_load(DEPLOYMENT)
    container = with_probe["spec"]["template"]["spec"]["containers"][0]
    container["readinessProbe"] = {"httpGet": {"path": "/", "port": 8080}}
    (tmp_path / "a.yaml").write_text(yaml.safe_dump(with_probe))
    (tmp_path / "b.yaml").write_text(DEPLOYMENT)
    report = audit(runner.read_inputs([tmp_path]).objects)
    probes = [f for f in report.findings if f.rule_id == "RK-PROBE-001"]
    # Only the copy in b.yaml lacks the probe, and the finding points there, once.
    assert len(probes) == 1
    assert probes[0].source is not None and probes[0].source.endswith("b.yaml:1")


def _many_objects(copies: int) -> list[dict[str, Any]]:
    seed = runner.read_inputs([SEED]).objects
    objects = []
    for n in range(copies):
        for obj in seed:
            clone = copy.deepcopy(obj)
            clone["metadata"]["namespace"] = f"team-{n}"
            objects.append(clone)
    return objects


def test_forked_rule_workers_give_the_serial_report(monkeypatch):
    monkeypatch.setattr(audit_engine, "PARALLEL_MIN_OBJECTS", 100)
    objects = _many_objects(40)
    serial = audit(objects)
    parallel = audit(objects, workers=2)
    assert to_json(parallel) == to_json(serial)
    assert parallel.verdicts == serial.verdicts
    # Each namespace holds one copy of the seed, audited on its own: 40 times its findings.
    assert len(serial.findings) == 40 * len(audit(_many_objects(1)).findings) > 400
    # The forked path really ran (a table, not None) and found what one process finds.
    rules, settings = audit_engine.get_rules(), audit_engine.AuditConfig()
    pairs = list(enumerate(objects))
    forked = audit_engine._parallel_violations(rules, pairs, settings, 2)
    assert forked is not None and forked.count == len(objects)
    assert forked.table == audit_engine._object_violations(rules, pairs, settings)
    assert max(max(found) for found in forked.table.values()) >= len(objects) // 2


def test_results_computed_in_parts_give_the_serial_report():
    # What a forked reader does: the per-object rules on its run of objects, joined in order;
    # objects after the precomputed ones (a live cluster's) are checked by audit() itself.
    objects = _many_objects(6)
    # In the first part: an unrendered template (skipped) and a field of the wrong type.
    helm = copy.deepcopy(next(o for o in objects if o["kind"] == "Deployment"))
    helm["metadata"]["name"] = "{{ .Release.Name }}-web"
    bad = copy.deepcopy(next(o for o in objects if o["kind"] == "Deployment"))
    bad["metadata"]["name"], bad["spec"]["replicas"] = "bad", "three"
    objects[1:1] = [helm, bad]
    serial = audit(objects)
    assert len(serial.skipped) == 1 and any("'three'" in e.message for e in serial.errors)
    cut, end = len(objects) // 3, 2 * len(objects) // 3
    parts = [
        audit_engine.object_violations(objects[:cut]),
        audit_engine.object_violations(objects[cut:end]),
    ]
    joined = audit_engine.Precomputed.joined(parts)
    assert joined.count == end
    assert joined.table == {
        rule: {n: v for n, v in found.items() if n < end}
        for rule, found in audit_engine.object_violations(objects).table.items()
        if any(n < end for n in found)
    }
    assert joined.skips.keys() == {1} and 2 in joined.problems
    report = audit(objects, precomputed=joined)
    assert to_json(report) == to_json(serial)
    assert report.verdicts == serial.verdicts
    assert report.errors == serial.errors and report.skipped == serial.skipped
    # Results from elsewhere are trusted: a planted one shows up as a finding.
    rule_number = [r.id for r in audit_engine.get_rules() if not r.optional].index("RK-SEC-001")
    deployment = next(
        n
        for n, o in enumerate(objects[:cut])
        if o["kind"] == "Deployment" and n not in joined.skips
    )
    planted = {**joined.table}
    planted[rule_number] = {**planted.get(rule_number, {}), deployment: [("planted", "app", None)]}
    marked = audit(objects, precomputed=dataclasses.replace(joined, table=planted))
    assert [f.message for f in marked.findings if f.message == "planted"] == ["planted"]


def test_forked_readers_give_the_serial_inputs_and_errors(tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "PARALLEL_MIN_BYTES", 1)
    for n in range(6):
        text = DEPLOYMENT.replace("name: web,", f"name: web-{n},")
        if n == 4:  # one object the schema rejects, in the second half of the files
            text = text.replace("  selector: {matchLabels: {app: web}}\n", "")
        (tmp_path / f"f{n}.yaml").write_text(text)
    (tmp_path / "f5.yaml").write_text("a: [\n")
    one, one_invalid = runner.read_and_validate([tmp_path], kube_version="1.30", workers=1)
    two, two_invalid = runner.read_and_validate([tmp_path], kube_version="1.30", workers=2)
    assert runner._split(sorted(str(p) for p in tmp_path.iterdir()), 2)[1][0].endswith("f3.yaml")
    assert two.objects == one.objects
    assert [o["metadata"]["name"] for o in two.objects] == [f"web-{n}" for n in range(5)]
    assert two.errors == one.errors and len(two.errors) == 1
    assert two_invalid == one_invalid
    assert [e.path.rsplit("/", 1)[-1] for e in two_invalid] == ["f4.yaml"]


def test_forked_readers_check_their_objects_as_the_audit_would(tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "PARALLEL_MIN_BYTES", 1)
    for n, obj in enumerate(runner.read_inputs([SEED]).objects):
        (tmp_path / f"f{n:02d}.yaml").write_text(yaml.safe_dump(obj))
    checks = (None, AuditConfig(min_replicas=3))
    two, _ = runner.read_and_validate([tmp_path], workers=2, checks=checks)
    one, _ = runner.read_and_validate([tmp_path], workers=1)
    assert two.objects == one.objects and one.precomputed is None
    assert two.precomputed is not None and two.precomputed.count == len(two.objects)
    serial = audit(one.objects, config=checks[1])
    assert (
        two.precomputed.table == audit_engine.object_violations(one.objects, config=checks[1]).table
    )
    assert to_json(audit(two.objects, config=checks[1], precomputed=two.precomputed)) == to_json(
        serial
    )
    assert any(n >= len(two.objects) // 2 for f in two.precomputed.table.values() for n in f)


def test_json_report_has_one_finding_per_line_each_valid_json():
    report = audit(runner.read_inputs([SEED]).objects)
    text = to_json(report)
    lines = text.splitlines()
    start = lines.index('  "findings": [') + 1
    rows = [json.loads(line.strip().rstrip(",")) for line in lines[start : start + 19]]
    assert [r["rule_id"] for r in rows] == [f.rule_id for f in report.findings]
    assert lines[start + 19] == "  ],"
    assert json.loads(text)["findings"] == rows


def test_the_yaml_loader_refuses_an_alias_bomb_at_its_line():
    with pytest.raises(ManifestError) as caught:
        load_yaml_documents("a: 1\n---\n" + _alias_bomb(), path="bomb.yaml")
    assert caught.value.line == 3
    assert "alias bomb" in str(caught.value)


TRICKY_YAML = """\
plain: text
quoted: "5"
octal: 012
hex: 0x1F
under: 1_000
signed: +5
negative: -3
zero: 0
decimal: 8080
float: 1.5e3
sexagesimal: 1:30
bools: [yes, No, on, OFF, true]
nulls: [~, null, ]
empty:
stamp: 2024-01-02
base: &base {a: 1}
merged: {<<: {b: 2}, c: 3}
binary: !!binary aGk=
set: !!set {x, y}
nested: {list: [{deep: [1, "two", 3.0]}]}
"""


def test_the_fast_constructor_builds_what_pyyaml_builds():
    from rknb.yamlfile import SAFE_LOADER, construct_document

    text = TRICKY_YAML.replace("base: &base {a: 1}\n", "")  # no aliases: the fast path
    loader = SAFE_LOADER(text)
    try:
        built = construct_document(loader, loader.get_single_node(), has_aliases=False)
    finally:
        loader.dispose()
    expected = yaml.load(text, Loader=yaml.SafeLoader)
    assert built == expected
    # The YAML 1.1 readings someone could get wrong with a shortcut.
    assert (built["octal"], built["hex"], built["under"], built["sexagesimal"]) == (
        10,
        31,
        1000,
        90,
    )
    assert built["quoted"] == "5" and built["decimal"] == 8080
    assert built["bools"] == [True, False, True, False, True]
    assert built["merged"] == {"b": 2, "c": 3}
    # A key PyYAML cannot hash is PyYAML's own error on the fast path too.
    loader = SAFE_LOADER("? [complex, key]\n: value\n")
    with pytest.raises(yaml.constructor.ConstructorError, match="unhashable key"):
        construct_document(loader, loader.get_single_node(), has_aliases=False)
    loader.dispose()


def test_any_number_of_jobs_writes_the_same_report(tmp_path, capsysbinary):
    from rknb import cli

    objects = _many_objects(80)
    for start in range(0, len(objects), 25):
        (tmp_path / f"f{start:04d}.yaml").write_text(
            yaml.safe_dump_all(objects[start : start + 25])
        )
    assert sum(p.stat().st_size for p in tmp_path.iterdir()) > runner.PARALLEL_MIN_BYTES
    outputs = {}
    for jobs in ("1", "2", "3"):
        code = cli.main(["audit", str(tmp_path), "--format", "json", "--jobs", jobs])
        outputs[jobs] = (code, capsysbinary.readouterr().out)
    assert outputs["1"] == outputs["2"] == outputs["3"]
    code, out = outputs["1"]
    assert code == 1 and len(json.loads(out)["findings"]) == len(audit(objects).findings)
    with pytest.raises(SystemExit) as refused:
        cli.main(["audit", str(tmp_path), "--jobs", "0"])
    assert refused.value.code == 2


def test_results_known_for_every_object_give_the_serial_report_with_suppressions():
    # Every object's results precomputed: the rule loop visits only the failed checks. The
    # objects carry what that path must still get right: an ignore annotation, a config
    # ignore, one object defined twice (one copy passing), and a rule that fails on a field.
    objects = _many_objects(3)
    deployments = [o for o in objects if o["kind"] == "Deployment"]
    for deployment in deployments[:3]:  # no readiness probes, no requests
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            container.pop("readinessProbe", None)
            container.pop("resources", None)
    annotated = deployments[0]
    annotated["metadata"].setdefault("annotations", {})["rknb.io/ignore"] = (
        "RK-PROBE-001,RK-SEC-001 probes come from the mesh"
    )
    twin = copy.deepcopy(deployments[1])
    for container in twin["spec"]["template"]["spec"]["containers"]:
        container["readinessProbe"] = {"httpGet": {"path": "/ready", "port": 8080}}
    odd = copy.deepcopy(deployments[2])
    odd["metadata"]["name"] = "odd"
    # A field no rule expects in this shape: the rule reading it fails on this object alone.
    odd["spec"]["template"]["spec"]["containers"][0]["env"] = [{"name": "A", "valueFrom": "x"}]
    objects.extend([twin, odd])
    config = AuditConfig(
        ignore=(f"RK-RES-001 Deployment/team-2/{deployments[2]['metadata']['name']} -- batch",)
    )
    serial = audit(objects, config=config)
    known = audit_engine.object_violations(objects, config=config)
    assert known.count == len(objects)
    fast = audit(objects, config=config, precomputed=known)
    assert to_json(fast) == to_json(serial)
    assert fast.verdicts == serial.verdicts
    assert fast.errors == serial.errors and fast.suppressed == serial.suppressed
    reasons = {(f.rule_id, f.name, f.suppressed_reason) for f in fast.suppressed}
    name = annotated["metadata"]["name"]
    assert ("RK-PROBE-001", name, "rknb.io/ignore: probes come from the mesh") in reasons
    assert ("RK-RES-001", deployments[2]["metadata"]["name"], "config ignore: batch") in reasons
    assert any(e.name == "odd" and "RK-SEC-014" in e.message for e in fast.errors)
    # The twin passes RK-PROBE-001 where its first definition fails: the key fails.
    key = f"Deployment/{twin['metadata']['namespace']}/{twin['metadata']['name']}"
    assert fast.verdicts[("RK-PROBE-001", key)] is False
