"""The rules added for peer coverage, each broken on the good Deployment (or stack) in turn."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from rknb.audit import AuditConfig, audit, get_rules

DATA = Path(__file__).resolve().parent.parent / "data" / "audit"


def stack() -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((DATA / "good-stack.yaml").read_text()) if d]


def pod(d: dict[str, Any]) -> dict[str, Any]:
    return d["spec"]["template"]["spec"]


def app(d: dict[str, Any]) -> dict[str, Any]:
    return pod(d)["containers"][0]


def found(objects: list[dict[str, Any]], rule_id: str) -> list[str]:
    """Return the messages of one rule's findings."""
    report = audit(objects, rules=[rule_id])
    return [f.message for f in report.findings]


def _cases() -> list[tuple[str, Any]]:
    def sec(key: str, value: Any):
        return lambda d: app(d)["securityContext"].__setitem__(key, value)

    def podset(key: str, value: Any):
        return lambda d: pod(d).__setitem__(key, value)

    def host_volume(path: str):
        return lambda d: (
            pod(d).setdefault("volumes", []).append({"name": "h", "hostPath": {"path": path}})
        )

    return [
        ("RK-HOST-001", podset("hostPID", True)),
        ("RK-HOST-002", podset("hostIPC", True)),
        ("RK-HOST-003", podset("hostNetwork", True)),
        ("RK-HOST-004", lambda d: app(d)["ports"][0].__setitem__("hostPort", 8080)),
        ("RK-HOST-005", host_volume("/etc/kubernetes")),
        ("RK-HOST-006", host_volume("/var/run/docker.sock")),
        ("RK-SEC-006", sec("capabilities", {"drop": ["ALL"], "add": ["CHOWN"]})),
        ("RK-SEC-007", sec("capabilities", {"drop": ["ALL"], "add": ["NET_ADMIN"]})),
        ("RK-SEC-008", sec("capabilities", {"drop": ["CHOWN"]})),
        ("RK-SEC-009", sec("capabilities", {"drop": ["NET_RAW"]})),
        ("RK-SEC-010", lambda d: pod(d).pop("securityContext")),
        ("RK-SEC-011", lambda d: app(d).pop("securityContext")),
        ("RK-SEC-012", lambda d: pod(d)["securityContext"].pop("seccompProfile")),
        ("RK-SEC-012", sec("seccompProfile", {"type": "Unconfined"})),
        ("RK-SEC-013", sec("runAsUser", 9999)),
        (
            "RK-SEC-014",
            lambda d: app(d)["env"].append(
                {"name": "DB", "valueFrom": {"secretKeyRef": {"name": "db", "key": "url"}}}
            ),
        ),
        ("RK-SEC-015", lambda d: pod(d).pop("automountServiceAccountToken")),
        (
            "RK-SEC-017",
            lambda d: app(d).__setitem__("image", "kubernetesui/kubernetes-dashboard:v2"),
        ),
        ("RK-IMG-002", lambda d: app(d).__setitem__("imagePullPolicy", "IfNotPresent")),
        ("RK-IMG-002", lambda d: app(d).pop("imagePullPolicy")),  # a version tag -> IfNotPresent
        ("RK-RES-004", lambda d: app(d)["resources"]["limits"].pop("cpu")),
        ("RK-PROBE-003", lambda d: app(d).__setitem__("livenessProbe", app(d)["readinessProbe"])),
        ("RK-PROBE-004", lambda d: app(d)["readinessProbe"]["httpGet"].__setitem__("port", "web")),
        ("RK-PROBE-004", lambda d: app(d)["livenessProbe"]["httpGet"].__setitem__("port", 9090)),
        ("RK-ENV-001", lambda d: app(d)["env"].append({"name": "LOG_LEVEL", "value": "debug"})),
        ("RK-PORT-001", lambda d: app(d)["ports"].append({"containerPort": 22})),
        ("RK-AVAIL-006", lambda d: pod(d).pop("affinity")),
        ("RK-AVAIL-008", lambda d: d["spec"]["selector"]["matchLabels"].__setitem__("app", "bad")),
        ("RK-META-001", lambda d: d["metadata"].__setitem__("namespace", "default")),
        ("RK-API-001", lambda d: d.__setitem__("apiVersion", "extensions/v1beta1")),
    ]


@pytest.mark.parametrize(("rule_id", "mutate"), _cases())
def test_new_rule_fails_only_the_broken_deployment(good_deployment, rule_id, mutate):
    assert found([good_deployment], rule_id) == []
    broken = copy.deepcopy(good_deployment)
    mutate(broken)
    assert len(found([broken], rule_id)) == 1


def test_pull_policy_defaults_to_always_for_latest_and_passes_digests(good_deployment):
    app(good_deployment).pop("imagePullPolicy")
    app(good_deployment)["image"] = "example.org/good:latest"
    assert found([good_deployment], "RK-IMG-002") == []  # the API server defaults it to Always
    app(good_deployment)["image"] = "example.org/good@sha256:" + "b" * 64
    app(good_deployment)["imagePullPolicy"] = "IfNotPresent"
    assert found([good_deployment], "RK-IMG-002") == []  # a digest cannot change under a node


def test_seccomp_and_uid_are_inherited_from_the_pod(good_deployment):
    # The good Deployment sets both only at pod level.
    assert "seccompProfile" not in app(good_deployment)["securityContext"]
    assert found([good_deployment], "RK-SEC-012") == []
    assert found([good_deployment], "RK-SEC-013") == []
    pod(good_deployment)["securityContext"]["runAsUser"] = 10000  # the boundary passes
    assert found([good_deployment], "RK-SEC-013") == []


def test_a_service_account_that_disables_automount_covers_its_pods(good_deployment):
    pod(good_deployment).pop("automountServiceAccountToken")
    pod(good_deployment)["serviceAccountName"] = "good"
    account = {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": "good", "namespace": "shop"},
        "automountServiceAccountToken": False,
    }
    assert found([good_deployment], "RK-SEC-015") != []
    assert found([good_deployment, account], "RK-SEC-015") == []


def test_single_replica_skips_anti_affinity_but_unset_replicas_does_not(good_deployment):
    pod(good_deployment).pop("affinity")
    good_deployment["spec"]["replicas"] = 1
    assert found([good_deployment], "RK-AVAIL-006") == []
    good_deployment["spec"].pop("replicas")
    assert len(found([good_deployment], "RK-AVAIL-006")) == 1


def test_hpa_owned_deployment_must_not_set_replicas(good_deployment):
    objects = [good_deployment, *stack()]
    assert found(objects, "RK-AVAIL-007") == [
        "spec.replicas is 3 although HorizontalPodAutoscaler 'good' scales it"
    ]


def _job(**spec: Any) -> dict[str, Any]:
    template = {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "x:1"}]}}
    return {
        "kind": "Job",
        "metadata": {"name": "j", "namespace": "ops"},
        "spec": {**spec, "template": template},
    }


def _cronjob(job_spec: dict[str, Any], **spec: Any) -> dict[str, Any]:
    pod_template = {
        "spec": {"restartPolicy": "OnFailure", "containers": [{"name": "c", "image": "x:1"}]}
    }
    return {
        "kind": "CronJob",
        "metadata": {"name": "cj", "namespace": "ops"},
        "spec": {
            **spec,
            "schedule": "* * * * *",
            "jobTemplate": {"spec": {**job_spec, "template": pod_template}},
        },
    }


def test_job_ttl_is_required_on_standalone_jobs_and_redundant_under_a_cronjob():
    assert len(found([_job()], "RK-JOB-001")) == 1
    assert found([_job(ttlSecondsAfterFinished=600)], "RK-JOB-001") == []
    assert found([_cronjob({})], "RK-JOB-001") == []
    assert len(found([_cronjob({"ttlSecondsAfterFinished": 60})], "RK-JOB-001")) == 1


def test_cronjob_needs_a_deadline_and_a_job_restart_policy():
    assert found([_cronjob({})], "RK-JOB-002") == ["spec.startingDeadlineSeconds is not set"]
    assert found([_cronjob({}, startingDeadlineSeconds=60)], "RK-JOB-002") == []
    assert found([_cronjob({})], "RK-JOB-003") == []
    broken = _cronjob({})
    broken["spec"]["jobTemplate"]["spec"]["template"]["spec"].pop("restartPolicy")
    assert found([broken], "RK-JOB-003") == ["restartPolicy is unset (Always)"]


def _service(name: str, **spec: Any) -> dict[str, Any]:
    return {"kind": "Service", "metadata": {"name": name, "namespace": "shop"}, "spec": spec}


def test_statefulset_needs_a_headless_service_selecting_its_pods(good_deployment):
    sts = copy.deepcopy(good_deployment)
    sts["kind"] = "StatefulSet"
    assert found([sts], "RK-AVAIL-009") == ["spec.serviceName is not set"]
    sts["spec"]["serviceName"] = "db"
    assert found([sts], "RK-AVAIL-009") == ["Service 'db' is not among the objects"]
    plain = _service("db", selector={"app": "good"})
    assert found([sts, plain], "RK-AVAIL-009") == [
        "Service 'db' is not headless (clusterIP is not None)"
    ]
    headless = _service("db", selector={"app": "good"}, clusterIP="None")
    assert found([sts, headless], "RK-AVAIL-009") == []


def test_node_port_service_is_flagged_but_load_balancer_is_not():
    assert found([_service("a", type="NodePort")], "RK-SVC-002") == ["type is NodePort"]
    assert found([_service("a", type="LoadBalancer")], "RK-SVC-002") == []


def _ingress(service: str, port: Any, tls: bool = True) -> dict[str, Any]:
    backend = {
        "service": {
            "name": service,
            "port": {"number": port} if isinstance(port, int) else {"name": port},
        }
    }
    spec: dict[str, Any] = {
        "rules": [{"http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": backend}]}}]
    }
    if tls:
        spec["tls"] = [{"hosts": ["shop.example"], "secretName": "tls"}]
    return {"kind": "Ingress", "metadata": {"name": "web", "namespace": "shop"}, "spec": spec}


def test_ingress_backends_must_name_an_existing_service_and_port():
    web = _service("web", ports=[{"name": "http", "port": 80}])
    assert found([_ingress("web", 80), web], "RK-ING-001") == []
    assert found([_ingress("web", "http"), web], "RK-ING-001") == []
    assert found([_ingress("web", 8080), web], "RK-ING-001") == ["Service 'web' has no port 8080"]
    assert found([_ingress("api", 80), web], "RK-ING-001") == [
        "backend Service 'api' does not exist"
    ]
    assert found([_ingress("web", 80, tls=False), web], "RK-ING-002") == ["spec.tls is not set"]


def test_hpa_minimum_follows_the_configured_threshold():
    hpa = next(o for o in stack() if o["kind"] == "HorizontalPodAutoscaler")
    assert found([hpa], "RK-HPA-002") == []  # minReplicas 3
    hpa["spec"]["minReplicas"] = 1
    assert found([hpa], "RK-HPA-002") == ["minReplicas is 1, under 2"]
    hpa["spec"]["minReplicas"] = 3
    report = audit([hpa], rules=["RK-HPA-002"], config=AuditConfig(min_replicas=4))
    assert [f.message for f in report.findings] == ["minReplicas is 3, under 4"]
    hpa["spec"]["maxReplicas"] = 3
    assert found([hpa], "RK-HPA-003") == ["minReplicas 3 equals maxReplicas 3"]


def test_pdb_policies():
    pdb = next(o for o in stack() if o["kind"] == "PodDisruptionBudget")
    assert found([pdb], "RK-PDB-001") == [] and found([pdb], "RK-PDB-002") == []
    pdb["spec"].pop("maxUnavailable")
    pdb["spec"].pop("unhealthyPodEvictionPolicy")
    assert found([pdb], "RK-PDB-001") == ["sets neither minAvailable nor maxUnavailable"]
    assert found([pdb], "RK-PDB-002") == ["spec.unhealthyPodEvictionPolicy is not set"]


def test_network_policy_that_selects_nothing(good_deployment):
    policy = next(o for o in stack() if o["kind"] == "NetworkPolicy")
    assert found([good_deployment, policy], "RK-NET-003") == []
    policy["spec"]["podSelector"] = {"matchLabels": {"app": "typo"}}
    assert len(found([good_deployment, policy], "RK-NET-003")) == 1


def test_optional_rules_run_only_when_enabled(good_deployment):
    optional = {r.id for r in get_rules() if r.optional}
    assert optional == {
        *("RK-IMG-003", "RK-RES-005", "RK-RES-006", "RK-RES-007", "RK-PROM-008"),
        *("RK-AVAIL-010", "RK-AVAIL-012", "RK-SCHED-001", "RK-SCHED-002", "RK-DNS-001"),
        *("RK-HOST-007", "RK-HOST-008", "RK-SA-001", "RK-ENV-002", "RK-STS-002"),
        *("RK-META-003", "RK-META-004"),
    }
    assert not optional & set(audit([good_deployment]).rules)
    report = audit([good_deployment], config=AuditConfig(enabled=("RK-IMG",)))
    assert "RK-IMG-003" in report.rules and "RK-RES-005" not in report.rules
    assert {f.rule_id for f in report.findings} >= {"RK-IMG-003"}  # a tag, no digest


def test_cpu_limit_rule_can_be_disabled(good_deployment):
    app(good_deployment)["resources"]["limits"].pop("cpu")
    report = audit([good_deployment], config={"disabled": ["RK-RES-004"]})
    assert "RK-RES-004" not in report.rules
    assert not any(f.rule_id == "RK-RES-004" for f in report.findings)
