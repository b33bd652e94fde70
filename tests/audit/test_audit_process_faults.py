"""What the reading processes of `rknb audit` do when an input or a process misbehaves.

The answer never depends on how many processes read: a document too deep to read is
refused at one fixed depth, a process that dies has its files read by the command
itself, and a command killed with SIGTERM takes its reading processes with it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from rknb.conformance import audit as runner
from rknb.yamlfile import MAX_NESTING

SEED = Path(__file__).resolve().parent.parent / "data" / "audit" / "seed"


def _files(folder: Path, copies: int) -> list[Path]:
    # The seed's objects in `copies` namespaces, 25 objects a file: well over the size from
    # which the input is split between processes.
    seed = runner.read_inputs([SEED]).objects
    objects = []
    for n in range(copies):
        for obj in seed:
            clone = json.loads(json.dumps(obj))
            clone["metadata"]["namespace"] = f"team-{n}"
            clone["metadata"]["annotations"].pop("rknb.io/source", None)
            objects.append(clone)
    paths = []
    for start in range(0, len(objects), 25):
        path = folder / f"f{start:05d}.yaml"
        path.write_text(yaml.safe_dump_all(objects[start : start + 25]))
        paths.append(path)
    return paths


def _nested(depth: int) -> str:
    # A Deployment whose container args nest `depth` lists deep below the document's own
    # levels (the document is a mapping, spec a mapping, ... five levels down to args).
    args = "[" * depth + "x" + "]" * depth
    return (
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: deep, namespace: shop}\n"
        "spec:\n  template:\n    spec:\n      containers:\n"
        f"      - name: app\n        image: app:1\n        args: {args}\n"
    )


def _report(paths: list[str], jobs: int) -> tuple[int, dict]:
    output, code = runner.audit_output(paths, output_format="json", jobs=jobs)
    return code, json.loads(output)


@pytest.mark.parametrize("extra", [0, 1])
def test_nesting_is_refused_at_one_depth_whatever_the_process(tmp_path, extra):
    _files(tmp_path, 60)
    # containers (list) > item (mapping) > args: the document's own six levels, then the lists.
    depth = MAX_NESTING - 6 + extra
    (tmp_path / "zz-deep.yaml").write_text(_nested(depth))
    one, two = _report([str(tmp_path)], 1), _report([str(tmp_path)], 2)
    assert one == two
    errors = [e for e in one[1]["errors"] if e["path"].endswith("zz-deep.yaml")]
    if extra:
        assert [e["message"] for e in errors] == [
            f"a document nests more than {MAX_NESTING} levels deep; no Kubernetes object does, "
            "so it is not read"
        ]
    else:
        assert errors == []
        assert any(f["name"] == "deep" for f in one[1]["findings"])


def test_json_and_aliased_documents_have_the_same_bound(tmp_path):
    deep = {"kind": "ConfigMap", "metadata": {"name": "deep"}, "data": {}}
    node: dict = deep["data"]
    for _ in range(MAX_NESTING):
        node["x"] = {}
        node = node["x"]
    (tmp_path / "deep.json").write_text(json.dumps(deep))
    aliased = "kind: ConfigMap\nmetadata: {name: a}\nx: &x " + "[" * MAX_NESTING + "]" * MAX_NESTING
    (tmp_path / "aliased.yaml").write_text(aliased + "\ny: *x\n")
    inputs = runner.read_inputs([tmp_path])
    assert inputs.objects == []
    assert sorted((Path(e.path).name, e.line) for e in inputs.errors) == [
        ("aliased.yaml", 1),
        ("deep.json", 1),
    ]


def test_an_alias_inside_its_own_anchor_is_one_error_not_a_hang(tmp_path):
    (tmp_path / "loop.yaml").write_text("kind: ConfigMap\nmetadata: {name: loop}\ndata: &a [*a]\n")
    (tmp_path / "ok.yaml").write_text(next(SEED.glob("*.yaml")).read_text())
    started = time.monotonic()
    inputs = runner.read_inputs([tmp_path])
    assert time.monotonic() - started < 5
    (error,) = [e for e in inputs.errors if e.path.endswith("loop.yaml")]
    assert "an alias inside its own anchor" in error.message
    assert inputs.objects


def test_a_reading_process_that_dies_has_its_files_read_by_the_command(tmp_path, monkeypatch):
    _files(tmp_path, 60)
    expected = _report([str(tmp_path)], 1)
    command = os.getpid()
    real = runner._read_part

    def dies_in_a_worker(*args, **kwargs):
        if os.getpid() != command:
            os._exit(9)  # what the OOM killer leaves behind: no result, no exception
        return real(*args, **kwargs)

    monkeypatch.setattr(runner, "_read_part", dies_in_a_worker)
    assert _report([str(tmp_path)], 2) == expected


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found.extend(int(child) for child in text)
    return found


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux /proc")
def test_sigterm_to_the_command_ends_its_reading_processes(tmp_path):
    _files(tmp_path, 400)
    command = subprocess.Popen(
        [sys.executable, "-m", "rknb.cli", "audit", str(tmp_path), "--jobs", "2"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        workers: list[int] = []
        while not workers and time.monotonic() < deadline and command.poll() is None:
            workers = _children(command.pid)
            time.sleep(0.01)
        assert workers, "the command finished before a reading process was seen"
        command.send_signal(signal.SIGTERM)
        assert command.wait(timeout=10) == -signal.SIGTERM
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(Path(f"/proc/{w}").exists() for w in workers):
            time.sleep(0.05)
        alive = []
        for worker in workers:
            try:
                state = Path(f"/proc/{worker}/stat").read_text().split()[2]
            except FileNotFoundError:
                continue
            if state != "Z":  # a zombie has ended; only its exit status is left
                alive.append(worker)
        assert alive == []
    finally:
        if command.poll() is None:
            command.kill()
            command.wait()
