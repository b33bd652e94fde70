"""Run a CronJob's exact command as an unprivileged user, with only its mounts writable.

No container engine runs here, so the pod is imitated: each volumeMount's path is mapped
to a temporary folder (the PersistentVolumeClaim and the emptyDir owned by the pod's user,
the ConfigMap read-only), the container's env is applied with the same mapping, and the
command runs as ``nobody`` (when the tests run as root) from the container's workingDir.
Everything else on the machine is not writable by that user except the world-writable
folders, which the test checks stay untouched.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

# Runs real notebooks end to end (about 10-20 s on an idle 2-core machine).
pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
CRONJOBS = REPO / "deploy" / "kubernetes" / "cronjobs.yaml"
WORLD_WRITABLE = [Path("/tmp"), Path("/var/tmp"), Path("/dev/shm")]
NOBODY = 65534


def _docs() -> list[dict]:
    return [d for d in yaml.safe_load_all(CRONJOBS.read_text()) if d]


def _owned_by(uid: int) -> set[Path]:
    found = set()
    for folder in WORLD_WRITABLE:
        if folder.is_dir():
            for entry in folder.iterdir():
                try:
                    if entry.lstat().st_uid == uid:
                        found.add(entry)
                except OSError:
                    pass
    return found


def _hidden_ancestor(path: Path) -> Path | None:
    """Return the first folder above ``path`` that other users may not enter, if any."""
    for folder in reversed(path.parents):
        if folder != Path("/") and not folder.stat().st_mode & 0o001:
            return folder
    return None


def _as_unprivileged(uid: int, keep: Path) -> list[str]:
    """Return a command prefix that runs as ``uid`` and can still start this interpreter.

    A virtualenv made from a Python under a private home (``/root/.pyenv``), or a checkout
    in a private folder (``mktemp -d``), cannot be run by another user; in a private mount
    namespace each folder on the way in is shown through a bind mount, as a container image
    would ship it. Nothing else changes.
    """
    drop = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups"]
    steps: dict[Path, str] = {}
    for needed in (Path(sys.executable).resolve(), Path(sys.prefix).resolve()):
        hidden = _hidden_ancestor(needed)
        if hidden is None or hidden in steps:
            continue
        inner = hidden / needed.relative_to(hidden).parts[0]
        shown = keep / str(len(steps))
        steps[hidden] = (
            f"mkdir -p {shown} && mount --bind {inner} {shown} && "
            f"mount -t tmpfs -o mode=755 tmpfs {hidden} && mkdir {inner} && "
            f"mount --bind {shown} {inner}"
        )
    if not steps:
        return drop
    script = " && ".join(steps.values()) + ' && exec "$@"'
    return ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh", *drop]


@pytest.fixture
def pod_root() -> Iterator[Path]:
    # pytest's own tmp_path sits in a folder only root may enter; the pod's user must reach it.
    root = Path(tempfile.mkdtemp(prefix="rknb-pod-"))
    root.chmod(0o755)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_deployment_audit_cronjob_command_runs_unprivileged_with_only_its_mounts_writable(
    pod_root,
):
    tmp_path = pod_root
    (job,) = [d for d in _docs() if d["metadata"]["name"] == "rknb-deployment-audit"]
    (config,) = [d for d in _docs() if d["kind"] == "ConfigMap"]
    pod = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    uid = NOBODY if os.geteuid() == 0 else os.geteuid()

    # The pod's volumes, as folders.
    volumes = {v["name"]: v for v in pod["volumes"]}
    mapping: dict[str, Path] = {}
    for mount in container["volumeMounts"]:
        folder = tmp_path / mount["name"]
        folder.mkdir()
        volume = volumes[mount["name"]]
        if "configMap" in volume:
            # The ConfigMap's files, with live sources swapped for the demo (no cluster here).
            for key, text in config["data"].items():
                values = yaml.safe_load(text) | {"cluster": "demo", "prometheus": "demo"}
                (folder / key).write_text(yaml.safe_dump(values))
            folder.chmod(0o555)
        elif os.geteuid() == 0:
            os.chown(folder, uid, uid)
        mapping[mount["mountPath"]] = folder

    def mapped(text: str) -> str:
        for path in sorted(mapping, key=len, reverse=True):
            if text == path or text.startswith(path + "/"):
                return str(mapping[path]) + text[len(path) :]
        return text

    command = [mapped(part) for part in container["command"] + container.get("args", [])]
    assert command[0] == "rknb"
    command[0] = str(REPO / ".venv" / "bin" / "rknb")
    env = {e["name"]: mapped(e["value"]) for e in container["env"]}
    env |= {"PATH": f"{REPO / '.venv' / 'bin'}:/usr/bin:/bin", "LANG": "C.UTF-8"}
    workdir = mapped(container.get("workingDir", "/tmp"))

    before = _owned_by(uid)
    prefix = _as_unprivileged(uid, tmp_path / "keep") if os.geteuid() == 0 else []
    proc = subprocess.run(
        prefix + command, env=env, cwd=workdir, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr  # 1: the verdict failed

    reports = mapping["/reports"]
    (results,) = reports.glob("deployment_audit/*/results.json")
    data = json.loads(results.read_text())
    assert data["status"] == "ok" and data["error"] is None
    assert data["parameters"]["namespace"] == "reasonkit"
    assert (reports / "index.html").is_file()
    if os.geteuid() == 0:
        assert all(p.stat().st_uid == uid for p in reports.rglob("*"))
    # Nothing was written outside the mounts (the world-writable folders stay as they were).
    assert _owned_by(uid) == before
