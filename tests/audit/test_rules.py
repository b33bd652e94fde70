from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from rknb.audit import RULES, AuditConfig, audit, get_rules
from rknb.audit.objects import effective_security

DATA = Path(__file__).resolve().parent.parent / "data" / "audit"


def stack() -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((DATA / "good-stack.yaml").read_text()) if d]


def ids(objects: list[dict[str, Any]], rules: list[str] | None = None) -> set[str]:
    return {f.rule_id for f in audit(objects, rules=rules).findings}


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    return deployment["spec"]["template"]["spec"]["containers"][0]


def test_the_good_stack_breaks_no_rule(good_deployment):
    # With the stack's HPA owning the replica count, the manifest must not set one (RK-AVAIL-007).
    del good_deployment["spec"]["replicas"]
    assert audit([good_deployment, *stack()]).findings == []


def test_the_good_deployment_alone_breaks_only_the_cross_object_rules(good_deployment):
    assert ids([good_deployment]) == {"RK-AVAIL-002", "RK-NET-001"}


def test_every_rule_has_a_stable_id_and_a_known_peer_format():
    rules = get_rules()
    assert len(rules) == len(RULES) >= 20
    for rule in rules:
        for peer in rule.equivalent + rule.divergent:
            tool, _, check = peer.partition(":")
            assert tool in {"kube-score", "polaris", "kube-linter", "checkov", "kubesec", "pint"}
            assert check


# (rule id, how to break the good Deployment)
def _drop(path: str):
    def mutate(d: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = container(d)
        for p in parents:
            node = node[p]
        del node[last]

    return mutate


def _set(path: str, value: Any):
    def mutate(d: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = container(d)
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = value

    return mutate


CONTAINER_CASES = [
    ("RK-PROBE-001", _drop("readinessProbe")),
    ("RK-PROBE-002", _drop("livenessProbe")),
    ("RK-RES-001", _drop("resources.requests.cpu")),
    ("RK-RES-002", _drop("resources.requests.memory")),
    ("RK-RES-003", _drop("resources.limits.memory")),
    ("RK-IMG-001", _set("image", "example.org/good:latest")),
    ("RK-IMG-001", _set("image", "example.org/good")),
    ("RK-IMG-001", _set("image", "registry:5000/good")),
    ("RK-SEC-001", _set("securityContext.runAsUser", 0)),
    ("RK-SEC-002", _drop("securityContext.readOnlyRootFilesystem")),
    ("RK-SEC-003", _drop("securityContext.allowPrivilegeEscalation")),
    ("RK-SEC-003", _set("securityContext.allowPrivilegeEscalation", True)),
    ("RK-SEC-004", _set("securityContext.privileged", True)),
    ("RK-SEC-005", _set("env", [{"name": "STRIPE_API_KEY", "value": "sk_live_planted"}])),
]


@pytest.mark.parametrize(("rule_id", "mutate"), CONTAINER_CASES)
def test_container_rule_fails_the_broken_object_only(good_deployment, rule_id, mutate):
    assert rule_id not in ids([good_deployment], [rule_id])
    broken = copy.deepcopy(good_deployment)
    mutate(broken)
    findings = audit([broken], rules=[rule_id]).findings
    assert [f.rule_id for f in findings] == [rule_id]
    assert findings[0].container == "app"


def test_image_digest_counts_as_pinned(good_deployment):
    container(good_deployment)["image"] = "example.org/good@sha256:" + "a" * 64
    assert ids([good_deployment], ["RK-IMG-001"]) == set()
    container(good_deployment)["image"] = "registry:5000/good:1.0"
    assert ids([good_deployment], ["RK-IMG-001"]) == set()


def test_run_as_non_root_is_inherited_from_the_pod(good_deployment):
    assert ids([good_deployment], ["RK-SEC-001"]) == set()
    del good_deployment["spec"]["template"]["spec"]["securityContext"]
    assert ids([good_deployment], ["RK-SEC-001"]) == {"RK-SEC-001"}
    container(good_deployment)["securityContext"]["runAsUser"] = 1000
    assert ids([good_deployment], ["RK-SEC-001"]) == set()


def test_container_run_as_user_overrides_the_pod_level_one(good_deployment):
    container(good_deployment)["securityContext"]["runAsUser"] = 0
    effective = effective_security(good_deployment, container(good_deployment))
    assert effective["runAsUser"] == 0 and effective["runAsNonRoot"] is True
    [finding] = audit([good_deployment], rules=["RK-SEC-001"]).findings
    assert "runAsUser 0" in finding.message


def test_probes_are_not_required_of_jobs(good_deployment):
    job = {
        "kind": "Job",
        "metadata": {"name": "j", "namespace": "shop"},
        "spec": {"template": good_deployment["spec"]["template"]},
    }
    del container(job)["readinessProbe"]
    assert ids([job], ["RK-PROBE-001"]) == set()


def test_single_replica_fails_and_hpa_minimum_counts(good_deployment):
    good_deployment["spec"]["replicas"] = 1
    assert ids([good_deployment], ["RK-AVAIL-001"]) == {"RK-AVAIL-001"}
    assert ids([good_deployment, *stack()], ["RK-AVAIL-001"]) == set()  # HPA min 3
    del good_deployment["spec"]["replicas"]  # API default 1
    assert ids([good_deployment], ["RK-AVAIL-001"]) == {"RK-AVAIL-001"}


def test_pdb_must_be_in_the_workloads_namespace(good_deployment):
    objects = [good_deployment, *stack()]
    assert ids(objects, ["RK-AVAIL-002"]) == set()
    objects[2]["metadata"]["namespace"] = "other"
    assert ids(objects, ["RK-AVAIL-002"]) == {"RK-AVAIL-002"}


def test_rolling_update_with_unavailable_pods_fails_behind_a_service(good_deployment):
    service = stack()[0]
    assert ids([good_deployment, service], ["RK-AVAIL-003"]) == set()
    strategy = good_deployment["spec"]["strategy"]
    strategy["rollingUpdate"]["maxUnavailable"] = "25%"  # 0 at 3 replicas ...
    assert ids([good_deployment, service], ["RK-AVAIL-003"]) == set()
    hpa = stack()[3]  # ... but 1 at 4 of the HPA's 3..6
    [finding] = audit([good_deployment, service, hpa], rules=["RK-AVAIL-003"]).findings
    assert "at 4 replicas" in finding.message
    # Without a Service the rule does not apply.
    assert ids([good_deployment, hpa], ["RK-AVAIL-003"]) == set()
    good_deployment["spec"]["strategy"] = {"type": "Recreate"}
    assert ids([good_deployment, service], ["RK-AVAIL-003"]) == {"RK-AVAIL-003"}


@pytest.mark.parametrize(
    ("policy", "blocks"),
    [
        ({"maxUnavailable": 0}, True),
        ({"maxUnavailable": "0%"}, True),
        ({"minAvailable": "100%"}, True),
        ({"minAvailable": 6}, True),  # at least the HPA's 6
        ({"minAvailable": 5}, False),
        ({"maxUnavailable": 1}, False),
        ({"maxUnavailable": "10%"}, False),  # rounds up to 1
    ],
)
def test_pdb_that_forbids_every_eviction(good_deployment, policy, blocks):
    objects = [good_deployment, *stack()]
    objects[2]["spec"] = {**policy, "selector": objects[2]["spec"]["selector"]}
    assert (ids(objects, ["RK-AVAIL-004"]) == {"RK-AVAIL-004"}) is blocks


@pytest.mark.parametrize(
    ("min_available", "fails"), [(2, False), (3, True), (4, True), ("50%", False), ("100%", True)]
)
def test_hpa_minimum_at_or_under_pdb_min_available(good_deployment, min_available, fails):
    objects = [good_deployment, *stack()]
    objects[2]["spec"] = {
        "minAvailable": min_available,
        "selector": {"matchLabels": {"app": "good"}},
    }
    assert (ids(objects, ["RK-AVAIL-005"]) == {"RK-AVAIL-005"}) is fails


def test_hpa_target_must_exist_in_its_namespace(good_deployment):
    hpa = stack()[3]
    assert ids([good_deployment, hpa], ["RK-HPA-001"]) == set()
    hpa["metadata"]["namespace"] = "other"
    assert ids([good_deployment, hpa], ["RK-HPA-001"]) == {"RK-HPA-001"}


def test_network_policy_must_select_the_pods_in_their_namespace(good_deployment):
    policy = stack()[2]
    assert ids([good_deployment, policy], ["RK-NET-001"]) == set()
    policy["spec"]["podSelector"]["matchExpressions"][0]["values"] = ["other"]
    assert ids([good_deployment, policy], ["RK-NET-001"]) == {"RK-NET-001"}


def test_network_policy_in_one_direction_only(good_deployment):
    policy = stack()[2]
    policy["spec"]["policyTypes"] = ["Ingress"]
    assert ids([good_deployment, policy], ["RK-NET-002"]) == {"RK-NET-002"}
    del policy["spec"]["policyTypes"]
    policy["spec"]["egress"] = [
        {}
    ]  # unset policyTypes: Ingress, and Egress when egress rules exist
    assert ids([good_deployment, policy], ["RK-NET-002"]) == set()


def test_service_selector_must_match_a_pod_template_in_its_namespace(good_deployment):
    service = stack()[0]
    assert ids([good_deployment, service], ["RK-SVC-001"]) == set()
    service["metadata"]["namespace"] = "other"
    [finding] = audit([good_deployment, service], rules=["RK-SVC-001"]).findings
    assert "Deployment/shop/good in another namespace" in finding.message
    service["spec"] = {"type": "ExternalName", "externalName": "example.org"}
    assert ids([service], ["RK-SVC-001"]) == set()


def _rules_object(*rules: dict[str, Any]) -> dict[str, Any]:
    return {
        "kind": "PrometheusRule",
        "metadata": {"name": "r", "namespace": "mon"},
        "spec": {"groups": [{"name": "g", "rules": list(rules)}]},
    }


@pytest.mark.parametrize(
    ("expr", "rule_ids"),
    [
        ("histogram_quantile(0.99, http_request_duration_seconds_bucket) > 1", {"RK-PROM-001"}),
        (
            "histogram_quantile(0.99, sum by (job) (rate(http_seconds_bucket[5m]))) > 1",
            {"RK-PROM-002"},
        ),
        (
            "histogram_quantile(0.99, sum by (job, le) (rate(http_seconds_bucket[5m]))) > 1",
            set(),
        ),
        ("histogram_quantile(0.9, sum(increase(x_bucket[1h])) without (pod)) > 2", set()),
        ("histogram_quantile(0.9, sum(rate(x_bucket[5m]))) > 2", {"RK-PROM-002"}),
        ("histogram_quantile(0.9, job:x_bucket:rate5m) > 2", set()),
        ("rate(errors_total[5m]) / rate(requests_total[5m]) > 0.01", set()),
    ],
)
def test_histogram_quantile_checks(expr, rule_ids):
    obj = _rules_object({"alert": "A", "expr": expr, "for": "5m"})
    assert ids([obj], ["RK-PROM-001", "RK-PROM-002", "RK-PROM-009"]) == rule_ids


def test_alert_without_for_is_reported():
    obj = _rules_object(
        {"alert": "A", "expr": "up == 0"}, {"alert": "B", "expr": "up == 0", "for": "5m"}
    )
    [finding] = audit([obj], rules=["RK-PROM-003"]).findings
    assert finding.alert == "g/A"


def test_recording_rules_are_not_alerts():
    obj = _rules_object({"record": "job:x:rate5m", "expr": "histogram_quantile(0.9, x_bucket)"})
    assert ids([obj], ["RK-PROM"]) == set()


def test_config_raises_the_replica_threshold(good_deployment):
    assert ids([good_deployment], ["RK-AVAIL-001"]) == set()
    report = audit([good_deployment], rules=["RK-AVAIL-001"], config={"min_replicas": 4})
    assert [f.rule_id for f in report.findings] == ["RK-AVAIL-001"]
    assert AuditConfig().min_replicas == 2
