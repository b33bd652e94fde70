"""The `audit` benchmark: `rknb audit` on 10,000 generated objects against Checkov on them.

    python benchmarks/run.py audit            # the full run, about 15 minutes (Checkov's)
    RKNB_AUDIT_BENCH_PEER_OBJECTS=2000 python benchmarks/run.py audit   # about 2 minutes
    python benchmarks/run.py audit --smoke    # 300 objects, rknb only, a few seconds

The timed rknb path is the whole command as CI runs it, in a subprocess: read and parse
the files, validate every object against the Kubernetes 1.30 schema, run every default
rule (the cross-object ones included) plus the optional rules that match a Checkov check
(so that it reports every concern Checkov reports), and write the JSON report. rknb
reads, validates and runs the per-object rules in one forked process per usable core
(``rknb_processes``). It runs three times and the median counts: a 2-second command on a
shared machine varies by a few tenths. CPU time (user + system, all processes) is
recorded next to wall time, since wall time depends on what else the machine runs.

Checkov runs from its own virtualenv, ``benchmarks/.cache/venv-checkov-<version>``
(git-ignored), created on first use with ``python -m venv`` and ``pip install``, after
``pip index versions checkov`` says the package index answers. It runs with
``--framework kubernetes --skip-download`` in its fastest output mode (``-o cli --compact
--quiet``) on the same 10,000 objects: that is the peer time and the ratio. Checkov's time
grows faster than the object count (measured: 2,000 objects 12 s, 10,000 objects 687 s),
so it also runs on the first 2,000 objects, and that time scaled linearly to 10,000 gives
a second, conservative ratio (``ratio_linear``). Its JSON report (``-o json``, its slowest
mode and 1.6 GB for 2,000 objects) is made for those 2,000, and rknb's verdicts are
compared with Checkov's there, case by case as the conformance runner compares them
(``agreement``). ``RKNB_AUDIT_BENCH_PEER_OBJECTS=N`` scans only the first N objects with
Checkov and scales every peer time linearly, a quick run whose ratio understates rknb's.
"""

from __future__ import annotations

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
#: The objects Checkov's JSON report is made for and the verdicts compared on (its time and
#: memory grow fast), and Checkov's compact scan is scaled linearly from.
SAMPLE_OBJECTS = 2000
#: rknb's runs; the median counts.
RKNB_RUNS = 3
PER_FILE = 100
NAMESPACES = 20

Measure = Callable[[list[str], Path, Path | None], tuple[float, float]]


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


def _timed(
    measure: Measure, command: list[str], root: Path, output: Path | None = None
) -> dict[str, float]:
    # Wall seconds and peak RSS from run.py's measure, CPU seconds from the rusage of children.
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall_s, rss_mb = measure(command, root, output)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_s = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_s": round(wall_s, 2), "cpu_s": round(cpu_s, 2), "peak_rss_mb": round(rss_mb, 1)}


def _rknb_processes() -> int:
    from rknb.conformance.audit import default_workers

    return default_workers()


def _shared_optional_rules() -> list[str]:
    # rknb's off-by-default rules that match a Checkov check (image digests): the timed run
    # turns them on, so that it reports every concern Checkov reports too.
    from rknb.audit.registry import get_rules

    return sorted(
        r.id
        for r in get_rules()
        if r.optional and any(p.startswith("checkov:") for p in r.equivalent)
    )


def _rknb_command(folder: Path, config: Path) -> list[str]:
    return [
        sys.executable, "-m", "rknb.cli", "audit", str(folder), "--format", "json",
        "--kube-version", "1.30", "--config", str(config),
    ]  # fmt: skip


def _checkov_command(binary: Path, folder: Path, mode: str) -> list[str]:
    output = ["-o", "cli", "--compact", "--quiet"] if mode == "compact" else ["-o", "json"]
    return [
        str(binary), "-d", str(folder), "--framework", "kubernetes", "--skip-download",
        *output,
    ]  # fmt: skip


def _first_files(folder: Path, into: Path, objects: int) -> Path:
    # A folder holding the first `objects` objects of `folder` (whole files of PER_FILE).
    into.mkdir()
    for path in sorted(folder.glob("*.yaml"))[: objects // PER_FILE]:
        shutil.copy(path, into / path.name)
    return into


def agreement(folder: Path, checkov_json: Path, enabled: list[str]) -> dict[str, Any]:
    """Return how rknb's verdicts on the files agree with Checkov's JSON report on them.

    Every Checkov verdict in scope (``CHECKOV_IN_SCOPE``) is one case, judged as the
    conformance runner judges the shared fixtures: passed when rknb gives the same verdict
    on the same object through the rules that declare that check equivalent, divergent
    where a rule documents why it differs, failed otherwise.
    """
    import orjson

    from rknb.audit import audit
    from rknb.audit.model import AuditConfig
    from rknb.conformance.audit import checkov_by_resource, checkov_cases, read_inputs

    inputs = read_inputs([folder])
    report = audit(inputs.objects, config=AuditConfig(enabled=tuple(enabled)))
    verdicts = checkov_by_resource(orjson.loads(checkov_json.read_bytes()))
    cases = checkov_cases(folder.name, verdicts, inputs.objects, report)
    statuses = ("passed", "failed", "divergent", "skipped")
    counts = {status: sum(c.status == status for c in cases) for status in statuses}
    divergent = sorted({c.case_id.split(":")[2] for c in cases if c.status == "divergent"})
    failed = [f"{c.case_id}: checkov {c.expected}, rknb {c.actual}" for c in cases
              if c.status == "failed"]  # fmt: skip
    return {"cases": len(cases), **counts, "divergent_checks": divergent,
            "failed_examples": failed[:10]}  # fmt: skip


def _median_run(measure: Measure, command: list[str], root: Path) -> dict[str, Any]:
    # The run with the median wall time of three, and the three wall times.
    runs = sorted((_timed(measure, command, root) for _ in range(RKNB_RUNS)), key=_wall)
    return {**runs[len(runs) // 2], "wall_s_runs": [run["wall_s"] for run in runs]}


def _wall(run: dict[str, float]) -> float:
    return run["wall_s"]


def _checkov(
    measure: Measure, binary: Path, folder: Path, mode: str, scale: float, root: Path
) -> dict[str, float]:
    # One timed Checkov scan, with its times scaled linearly to all objects.
    timed = _timed(measure, _checkov_command(binary, folder, mode), root)
    timed["scaled_wall_s"] = round(timed["wall_s"] * scale, 1)
    timed["scaled_cpu_s"] = round(timed["cpu_s"] * scale, 1)
    return timed


def bench_audit(smoke: bool, measure: Measure, root: Path) -> dict[str, object]:
    """Return the benchmark's JSON record (see benchmarks/run.py for the common fields)."""
    count = SMOKE_OBJECTS if smoke else OBJECTS
    peer_count = min(count, int(os.environ.get("RKNB_AUDIT_BENCH_PEER_OBJECTS", str(count))))
    peer_count = max(PER_FILE, peer_count // PER_FILE * PER_FILE)
    sample_count = min(peer_count, SAMPLE_OBJECTS)
    record: dict[str, Any] = {"name": "audit-smoke" if smoke else "audit", "objects": count}
    # Wall times on a shared machine depend on its load; the CPU seconds do not.
    record["load_average_1m_at_start"] = round(os.getloadavg()[0], 2)
    with tempfile.TemporaryDirectory(prefix="rknb-audit-bench-") as tmp:
        folder = Path(tmp) / "objects"
        record["kinds"] = generate(count, folder)
        enabled = _shared_optional_rules()
        config = Path(tmp) / "rknb.yaml"
        config.write_text(yaml.safe_dump({"enabled": enabled}))
        # pip compiles Checkov's modules when it installs them; rknb's, installed editable,
        # are compiled here, or the first timed run would include compiling the sources it
        # imports (0.3-0.5 s, measured after an edit).
        subprocess.run(
            [sys.executable, "-m", "compileall", "-q", str(root / "rknb")],
            check=True,
            capture_output=True,
        )
        rknb = _median_run(measure, _rknb_command(folder, config), root)
        record["command"] = (
            "rknb audit FOLDER --format json --kube-version 1.30 --config CONFIG "
            f"(enabled: {', '.join(enabled) or 'none'}), median of {RKNB_RUNS}"
        )
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
                peer["objects"] = peer_count
                scanned = (
                    folder
                    if peer_count == count
                    else _first_files(folder, Path(tmp) / "scanned", peer_count)
                )
                peer["compact"] = _checkov(
                    measure, binary, scanned, "compact", count / peer_count, root
                )
                # The first SAMPLE_OBJECTS objects: Checkov's compact and JSON scans, the
                # verdicts compared, and rknb on them alone.
                sample = (
                    scanned
                    if sample_count == peer_count
                    else _first_files(folder, Path(tmp) / "sample", sample_count)
                )
                scale = count / sample_count
                peer["sample_objects"] = sample_count
                peer["compact_on_sample"] = (
                    peer["compact"]
                    if sample is scanned
                    else _checkov(measure, binary, sample, "compact", scale, root)
                )
                peer["rknb_on_sample"] = _median_run(measure, _rknb_command(sample, config), root)
                report = Path(tmp) / "checkov.json"
                timed = _timed(measure, _checkov_command(binary, sample, "json"), root, report)
                timed["scaled_wall_s"] = round(timed["wall_s"] * scale, 1)
                peer["json_on_sample"] = timed
                peer["agreement"] = agreement(sample, report, enabled)
                report.unlink()
    record["peer"] = f"checkov {CHECKOV_VERSION} --framework kubernetes (-o cli --compact --quiet)"
    record["peer_detail"] = peer
    compact = peer.get("compact")
    peer_s = None
    if compact:
        measured = peer["objects"] == count
        peer_s = compact["wall_s"] if measured else compact["scaled_wall_s"]
        record["peer_s_is"] = (
            f"measured on all {count} objects"
            if measured
            else f"measured on {peer['objects']} objects, scaled linearly to {count}"
        )
    record["peer_s"] = peer_s
    ratio = None if peer_s is None else peer_s / rknb["wall_s"]
    record["ratio"] = None if ratio is None else round(ratio, 1)
    if compact:
        cpu = compact["cpu_s"] if peer["objects"] == count else compact["scaled_cpu_s"]
        # CPU seconds do not depend on what else the machine runs; wall seconds do.
        record["ratio_cpu"] = round(cpu / max(rknb["cpu_s"], 0.01), 1)
        on_sample = peer["compact_on_sample"]
        # The conservative figures: Checkov's time on the sample scaled linearly.
        record["ratio_linear"] = round(on_sample["scaled_wall_s"] / rknb["wall_s"], 1)
        record["ratio_on_sample"] = round(on_sample["wall_s"] / peer["rknb_on_sample"]["wall_s"], 1)
        record["ratio_json_linear"] = round(
            peer["json_on_sample"]["scaled_wall_s"] / rknb["wall_s"], 1
        )
        record["load_average_1m"] = round(os.getloadavg()[0], 2)
    record["goal"] = f">= {GOAL_RATIO}x faster than Checkov compact, < {GOAL_RSS_MB} MB"
    record["goals"] = {
        "ratio_at_least_30": {"value": record["ratio"], "met": ratio is not None and ratio >= 30},
        "peak_rss_under_500_mb": {
            "value_mb": rknb["peak_rss_mb"],
            "met": rknb["peak_rss_mb"] < 500,
        },
    }
    agreed = peer.get("agreement")
    if agreed:
        # "while reporting every concern both cover": no Checkov verdict rknb contradicts
        # without a documented reason.
        record["goals"]["every_shared_concern_reported"] = {
            "cases": agreed["cases"],
            "failed": agreed["failed"],
            "met": agreed["failed"] == 0,
        }
    return record
