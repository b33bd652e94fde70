"""The `audit` benchmark: `rknb audit` on 10,000 generated objects against Checkov on them.

    python benchmarks/run.py audit            # the full run (Checkov installed on first use)
    python benchmarks/run.py audit --smoke    # 300 objects, rknb only, a few seconds

The timed rknb path is the whole command as CI runs it, in a subprocess: read and parse
the files, validate every object against the Kubernetes 1.30 schema, run every default
rule (the cross-object ones included) and write the JSON report. rknb reads, validates
and runs the per-object rules in one forked process per usable core (``rknb_processes``
in the record); its CPU time (user + system, all processes) is recorded next to the wall
time, since wall time on a shared machine depends on what else runs.

Checkov runs from its own virtualenv, ``benchmarks/.cache/venv-checkov-<version>``
(git-ignored), created on first use with ``python -m venv`` and ``pip install``, after
``pip index versions checkov`` says the package index answers. It runs with
``--framework kubernetes --skip-download`` in its fastest output mode (``-o cli --compact
--quiet``) and with ``-o json``. Checkov needs minutes for 10,000 objects, so by default
it scans the first ``RKNB_AUDIT_BENCH_PEER_OBJECTS`` objects (2,000; whole files of 100)
and its time is scaled linearly to the full count, which is stated in the record.
Checkov's time grows at least linearly with the object count (issue 6 measured 500, 1,000
and 2,000 Deployments), so the scaling flatters Checkov, not rknb. rknb is timed on the
same subset too, and Checkov once more on half the subset: the growth between the two
gives a power-law estimate (``compact_power_law_cpu_s``, ``ratio_cpu_power_law``) beside
the linear one. Set ``RKNB_AUDIT_BENCH_PEER_OBJECTS=10000`` to scan everything.
"""

from __future__ import annotations

import math
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

CHECKOV_VERSION = "3.3.30"
#: The goals from issue 6.
GOAL_RATIO = 30
GOAL_RSS_MB = 500
OBJECTS = 10_000
SMOKE_OBJECTS = 300
PER_FILE = 100
NAMESPACES = 20

Measure = Callable[[list[str], Path], tuple[float, float]]


def _container(i: int, rng: random.Random, name: str = "app") -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": name,
        "image": f"registry.example/app-{i % 50}:1.{i % 7}",
        "ports": [{"name": "http", "containerPort": 8080}],
    }
    if rng.random() < 0.5:
        container["resources"] = {
            "requests": {"cpu": "100m", "memory": "128Mi"},
            "limits": {"memory": "256Mi"},
        }
    if rng.random() < 2 / 3:
        container["readinessProbe"] = {"httpGet": {"path": "/ready", "port": 8080}}
        container["livenessProbe"] = {"httpGet": {"path": "/health", "port": 8080}}
    if rng.random() < 0.25:
        container["securityContext"] = {
            "readOnlyRootFilesystem": True,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
        }
    if rng.random() < 0.1:
        container["env"] = [{"name": "DB_PASSWORD", "value": "hunter2"}]
    return container


def _pod(i: int, name: str, rng: random.Random) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [_container(i, rng)]}
    if rng.random() < 0.25:
        spec["securityContext"] = {"runAsNonRoot": True, "runAsUser": 10001}
    if rng.random() < 0.1:
        spec["hostNetwork"] = True
    return {"metadata": {"labels": {"app": name, "tier": f"t{i % 3}"}}, "spec": spec}


def _workload(i: int, namespace: str, rng: random.Random) -> dict[str, Any]:
    name = f"app-{i}"
    meta = {"name": name, "namespace": namespace, "labels": {"app": name}}
    pick = i % 20
    if pick < 15:
        kind, api = "Deployment", "apps/v1"
        spec: dict[str, Any] = {
            "replicas": 1 + i % 4,
            "selector": {"matchLabels": {"app": name}},
            "template": _pod(i, name, rng),
        }
    elif pick < 18:
        kind, api = "StatefulSet", "apps/v1"
        spec = {
            "replicas": 3,
            "serviceName": name,
            "selector": {"matchLabels": {"app": name}},
            "template": _pod(i, name, rng),
        }
    elif pick < 19:
        kind, api = "DaemonSet", "apps/v1"
        spec = {"selector": {"matchLabels": {"app": name}}, "template": _pod(i, name, rng)}
    else:
        kind, api = "CronJob", "batch/v1"
        template = _pod(i, name, rng)
        template["spec"]["restartPolicy"] = "OnFailure"
        spec = {"schedule": "*/15 * * * *", "jobTemplate": {"spec": {"template": template}}}
    return {"apiVersion": api, "kind": kind, "metadata": meta, "spec": spec}


def _companions(workload: dict[str, Any], rng: random.Random) -> list[dict[str, Any]]:
    # The objects that usually travel with a workload, each present some of the time.
    name = workload["metadata"]["name"]
    meta = {"name": name, "namespace": workload["metadata"]["namespace"]}
    found: list[dict[str, Any]] = []
    if workload["kind"] == "CronJob":
        return found
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta,
        "spec": {"selector": {"app": name}, "ports": [{"port": 80, "targetPort": 8080}]},
    }
    if rng.random() < 0.7:
        found.append(service)
        if rng.random() < 0.3:
            backend = {"service": {"name": name, "port": {"number": 80}}}
            rule = {"host": f"{name}.example.com", "http": {"paths": [
                {"path": "/", "pathType": "Prefix", "backend": backend}]}}  # fmt: skip
            found.append(
                {
                    "apiVersion": "networking.k8s.io/v1",
                    "kind": "Ingress",
                    "metadata": meta,
                    "spec": {"ingressClassName": "nginx", "rules": [rule]},
                }
            )
    if rng.random() < 0.5:
        found.append(
            {
                "apiVersion": "policy/v1",
                "kind": "PodDisruptionBudget",
                "metadata": meta,
                "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": name}}},
            }
        )
    if workload["kind"] == "Deployment" and rng.random() < 0.5:
        target = {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
        found.append(
            {
                "apiVersion": "autoscaling/v2",
                "kind": "HorizontalPodAutoscaler",
                "metadata": meta,
                "spec": {"scaleTargetRef": target, "minReplicas": 2, "maxReplicas": 5},
            }
        )
    return found


def generate(count: int, folder: Path, *, seed: int = 6) -> dict[str, int]:
    """Write ``count`` objects as multi-document YAML files of 100; return the count by kind.

    A realistic mix in 20 namespaces: Deployments (most), StatefulSets, DaemonSets and
    CronJobs, with Services, Ingresses, PodDisruptionBudgets and HPAs some of the time and
    a default-deny NetworkPolicy for every tenth workload. Half the containers lack
    requests and limits, a third lack probes, a quarter are hardened.
    """
    rng = random.Random(seed)
    objects: list[dict[str, Any]] = []
    i = 0
    while len(objects) < count:
        namespace = f"team-{i % NAMESPACES}"
        workload = _workload(i, namespace, rng)
        objects.append(workload)
        objects.extend(_companions(workload, rng))
        if i % 10 == 0:
            objects.append(
                {
                    "apiVersion": "networking.k8s.io/v1",
                    "kind": "NetworkPolicy",
                    "metadata": {"name": f"deny-{i}", "namespace": namespace},
                    "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
                }
            )
        i += 1
    objects = objects[:count]
    folder.mkdir(parents=True, exist_ok=True)
    for start in range(0, len(objects), PER_FILE):
        text = yaml.safe_dump_all(objects[start : start + PER_FILE], sort_keys=False)
        (folder / f"objects-{start // PER_FILE:04d}.yaml").write_text(text)
    kinds: dict[str, int] = {}
    for o in objects:
        kinds[o["kind"]] = kinds.get(o["kind"], 0) + 1
    return dict(sorted(kinds.items()))


def _pip_index_answers(python: str) -> str | None:
    # None when the package index lists checkov; otherwise why not.
    try:
        done = subprocess.run(
            [python, "-m", "pip", "index", "versions", "checkov"],
            capture_output=True,
            text=True,
            timeout=120,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"pip index did not answer ({error})"
    if done.returncode != 0 or CHECKOV_VERSION not in done.stdout:
        return f"pip index lists no checkov {CHECKOV_VERSION} (exit {done.returncode})"
    return None


def checkov_binary(root: Path) -> tuple[Path | None, str]:
    """Return (the checkov executable of the benchmark's own virtualenv, a note).

    The virtualenv is created and Checkov installed on first use; the executable is None
    (and the note says why) when the package index cannot be reached or pip fails.
    """
    env = root / "benchmarks" / ".cache" / f"venv-checkov-{CHECKOV_VERSION}"
    binary = env / "bin" / "checkov"
    if binary.exists():
        return binary, f"checkov {CHECKOV_VERSION} from {env.relative_to(root)}"
    problem = _pip_index_answers(sys.executable)
    if problem:
        return None, problem
    shutil.rmtree(env, ignore_errors=True)
    steps = [
        [sys.executable, "-m", "venv", str(env)],
        [str(env / "bin" / "python"), "-m", "pip", "install", "--quiet",
         f"checkov=={CHECKOV_VERSION}"],
    ]  # fmt: skip
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True)
        if done.returncode != 0:
            tail = " | ".join(done.stderr.strip().splitlines()[-2:])
            return None, f"{' '.join(step[:4])} failed: {tail}"
    return binary, f"checkov {CHECKOV_VERSION} installed into {env.relative_to(root)}"


def _timed(measure: Measure, command: list[str], root: Path) -> dict[str, float]:
    # Wall seconds and peak RSS from run.py's measure, CPU seconds from the rusage of children.
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall_s, rss_mb = measure(command, root)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_s = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_s": round(wall_s, 2), "cpu_s": round(cpu_s, 2), "peak_rss_mb": round(rss_mb, 1)}


def _rknb_processes() -> int:
    from rknb.conformance.audit import default_workers

    return default_workers()


def _rknb_command(folder: Path) -> list[str]:
    return [
        sys.executable, "-m", "rknb.cli", "audit", str(folder), "--format", "json",
        "--kube-version", "1.30",
    ]  # fmt: skip


def _checkov_command(binary: Path, folder: Path, mode: str) -> list[str]:
    output = ["-o", "cli", "--compact", "--quiet"] if mode == "compact" else ["-o", "json"]
    return [
        str(binary), "-d", str(folder), "--framework", "kubernetes", "--skip-download",
        *output,
    ]  # fmt: skip


def bench_audit(smoke: bool, measure: Measure, root: Path) -> dict[str, object]:
    """Return the benchmark's JSON record (see benchmarks/run.py for the common fields)."""
    count = SMOKE_OBJECTS if smoke else OBJECTS
    peer_count = min(count, int(os.environ.get("RKNB_AUDIT_BENCH_PEER_OBJECTS", "2000")))
    peer_count = max(PER_FILE, peer_count // PER_FILE * PER_FILE)
    record: dict[str, Any] = {"name": "audit-smoke" if smoke else "audit", "objects": count}
    # Wall times on a shared machine depend on its load; the CPU seconds do not.
    record["load_average_1m_at_start"] = round(os.getloadavg()[0], 2)
    with tempfile.TemporaryDirectory(prefix="rknb-audit-bench-") as tmp:
        folder = Path(tmp) / "objects"
        record["kinds"] = generate(count, folder)
        # pip compiles Checkov's modules when it installs them; rknb's, installed editable,
        # are compiled here, or the first timed run would include compiling the sources it
        # imports (0.3-0.5 s, measured after an edit).
        subprocess.run(
            [sys.executable, "-m", "compileall", "-q", str(root / "rknb")],
            check=True,
            capture_output=True,
        )
        rknb = _timed(measure, _rknb_command(folder), root)
        record["command"] = "rknb audit FOLDER --format json --kube-version 1.30"
        # rknb reads, validates and checks large inputs in one process per usable core.
        record["rknb_processes"] = _rknb_processes()
        record["rknb"] = rknb
        record["rknb_s"] = rknb["wall_s"]
        record["peak_rss_mb"] = rknb["peak_rss_mb"]
        peer: dict[str, Any] = {"note": "skipped in smoke"}
        if not smoke:
            binary, note = checkov_binary(root)
            peer = {"note": note}
            if binary is not None:
                subset = Path(tmp) / "subset"
                subset.mkdir()
                for path in sorted(folder.glob("*.yaml"))[: peer_count // PER_FILE]:
                    shutil.copy(path, subset / path.name)
                scale = count / peer_count
                peer["objects"] = peer_count
                peer["scaled_to_all_by"] = round(scale, 2)
                peer["rknb_on_subset"] = _timed(measure, _rknb_command(subset), root)
                for mode in ("compact", "json"):
                    timed = _timed(measure, _checkov_command(binary, subset, mode), root)
                    timed["scaled_wall_s"] = round(timed["wall_s"] * scale, 1)
                    timed["scaled_cpu_s"] = round(timed["cpu_s"] * scale, 1)
                    peer[mode] = timed
                # How Checkov's CPU time grows: the compact scan of half the subset gives the
                # exponent of a power law, a second (larger) estimate beside the linear one.
                half = Path(tmp) / "half"
                half.mkdir()
                for path in sorted(subset.glob("*.yaml"))[: peer_count // PER_FILE // 2]:
                    shutil.copy(path, half / path.name)
                if any(half.iterdir()):
                    small = _timed(measure, _checkov_command(binary, half, "compact"), root)
                    growth = math.log(peer["compact"]["cpu_s"] / max(small["cpu_s"], 0.01), 2)
                    peer["compact_half_subset"] = small
                    peer["compact_growth_exponent"] = round(growth, 2)
                    peer["compact_power_law_cpu_s"] = round(
                        peer["compact"]["cpu_s"] * scale ** max(growth, 1.0), 1
                    )
    record["peer"] = f"checkov {CHECKOV_VERSION} --framework kubernetes (-o cli --compact --quiet)"
    record["peer_detail"] = peer
    compact = peer.get("compact")
    peer_s = compact["scaled_wall_s"] if compact else None
    record["peer_s"] = peer_s
    ratio = None if peer_s is None else peer_s / rknb["wall_s"]
    record["ratio"] = None if ratio is None else round(ratio, 1)
    if compact:
        subset_ratio = compact["wall_s"] / peer["rknb_on_subset"]["wall_s"]
        record["ratio_on_subset"] = round(subset_ratio, 1)
        record["ratio_json"] = round(peer["json"]["scaled_wall_s"] / rknb["wall_s"], 1)
        # CPU seconds do not depend on what else the machine runs; wall seconds do.
        record["ratio_cpu"] = round(compact["scaled_cpu_s"] / max(rknb["cpu_s"], 0.01), 1)
        if "compact_power_law_cpu_s" in peer:
            power = peer["compact_power_law_cpu_s"] / max(rknb["cpu_s"], 0.01)
            record["ratio_cpu_power_law"] = round(power, 1)
        record["load_average_1m"] = round(os.getloadavg()[0], 2)
    record["goal"] = f">= {GOAL_RATIO}x faster than Checkov compact, < {GOAL_RSS_MB} MB"
    record["goals"] = {
        "ratio_at_least_30": {"value": record["ratio"], "met": ratio is not None and ratio >= 30},
        "peak_rss_under_500_mb": {
            "value_mb": rknb["peak_rss_mb"],
            "met": rknb["peak_rss_mb"] < 500,
        },
    }
    return record
