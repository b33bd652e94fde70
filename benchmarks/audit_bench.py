"""The `audit` benchmark: `rknb audit` on 10,000 generated objects against Checkov on them.

The timed rknb path is the whole command as CI runs it: read and parse the files, validate
every object against the Kubernetes 1.30 schema, run every default rule (cross-object ones
included) and write SARIF. Checkov runs in its fastest output mode (`-o cli --compact
--quiet`) from its own virtualenv under ``~/.cache/rknb-bench/checkov``, created with pip
on first use. ``--smoke`` audits 200 objects and skips Checkov.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import tempfile
import venv
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

CHECKOV_VERSION = "3.3.30"
CACHE = Path(os.environ.get("RKNB_BENCH_CACHE", Path.home() / ".cache" / "rknb-bench"))
#: The goal from issue 6: at least this many times faster than Checkov's fastest mode.
GOAL_RATIO = 30
GOAL_RSS_MB = 500


def _deployment(i: int, namespace: str, rng: random.Random) -> dict[str, Any]:
    name = f"app-{i}"
    container: dict[str, Any] = {"name": "app", "image": f"registry.example/app-{i % 50}:1.{i % 7}"}
    if rng.random() < 0.5:
        container["resources"] = {
            "requests": {"cpu": "100m", "memory": "128Mi"},
            "limits": {"memory": "256Mi"},
        }
    if rng.random() < 2 / 3:
        container["readinessProbe"] = {"httpGet": {"path": "/ready", "port": 8080}}
        container["livenessProbe"] = {"httpGet": {"path": "/health", "port": 8080}}
    pod: dict[str, Any] = {"containers": [container]}
    if rng.random() < 0.25:
        pod["securityContext"] = {"runAsNonRoot": True, "runAsUser": 10001}
        container["securityContext"] = {
            "readOnlyRootFilesystem": True,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
        }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": name}},
        "spec": {
            "replicas": 1 + i % 4,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": pod},
        },
    }


def generate(count: int, folder: Path, *, seed: int = 6) -> int:
    """Write ``count`` objects (Deployments with Services, PDBs, HPAs, NetworkPolicies) as YAML.

    Returns the number of Deployments. Files hold 100 objects each, in 20 namespaces.
    """
    rng = random.Random(seed)
    objects: list[dict[str, Any]] = []
    i = 0
    while len(objects) < count:
        namespace = f"team-{i % 20}"
        deployment = _deployment(i, namespace, rng)
        objects.append(deployment)
        name = deployment["metadata"]["name"]
        meta = {"name": name, "namespace": namespace}
        extra = [
            {"apiVersion": "v1", "kind": "Service", "metadata": meta,
             "spec": {"selector": {"app": name}, "ports": [{"port": 80, "targetPort": 8080}]}},
            {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": meta,
             "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": name}}}},
            {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": meta,
             "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment",
                                         "name": name}, "minReplicas": 2, "maxReplicas": 5}},
        ]  # fmt: skip
        objects.extend(o for o in extra if rng.random() < 0.5)
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
    for start in range(0, len(objects), 100):
        text = yaml.safe_dump_all(objects[start : start + 100], sort_keys=False)
        (folder / f"objects-{start // 100:04d}.yaml").write_text(text)
    return sum(1 for o in objects if o["kind"] == "Deployment")


def checkov_binary() -> Path:
    """Return the checkov executable of the benchmark's own virtualenv, installing it once."""
    env = CACHE / f"checkov-{CHECKOV_VERSION}"
    binary = env / "bin" / "checkov"
    if not binary.exists():
        venv.create(env, with_pip=True)
        subprocess.run(
            [str(env / "bin" / "python"), "-m", "pip", "install", "--quiet",
             f"checkov=={CHECKOV_VERSION}"],
            check=True,
        )  # fmt: skip
    return binary


def bench_audit(
    smoke: bool, measure: Callable[[list[str], Path], tuple[float, float]], root: Path
) -> dict[str, object]:
    """Return the benchmark's JSON record (see benchmarks/run.py for the fields)."""
    count = 200 if smoke else 10_000
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "objects"
        deployments = generate(count, folder)
        rknb_cmd = [
            sys.executable, "-m", "rknb.cli", "audit", str(folder), "--format", "sarif",
            "--kube-version", "1.30",
        ]  # fmt: skip
        rknb_s, rknb_mb = measure(rknb_cmd, root)
        peer_s = peer_mb = None
        if not smoke:
            peer_cmd = [
                str(checkov_binary()), "-d", str(folder), "--framework", "kubernetes",
                "-o", "cli", "--compact", "--quiet", "--skip-download",
            ]  # fmt: skip
            peer_s, peer_mb = measure(peer_cmd, root)

    ratio = None if peer_s is None else peer_s / rknb_s
    return {
        "name": "audit-smoke" if smoke else "audit",
        "objects": count,
        "deployments": deployments,
        "rknb_s": round(rknb_s, 2),
        "peer": f"checkov {CHECKOV_VERSION} -o cli --compact --quiet (skipped in smoke)",
        "peer_s": None if peer_s is None else round(peer_s, 2),
        "ratio": None if ratio is None else round(ratio, 1),
        "goal": f">= {GOAL_RATIO}x faster, < {GOAL_RSS_MB} MB",
        "peak_rss_mb": round(rknb_mb, 1),
        "goals": {
            "ratio_at_least_30": {"value": ratio, "met": ratio is not None and ratio >= GOAL_RATIO},
            "peak_rss_under_500_mb": {"value_mb": round(rknb_mb, 1), "met": rknb_mb < GOAL_RSS_MB},
            "peer_peak_rss_mb": None if peer_mb is None else round(peer_mb, 1),
        },
    }
