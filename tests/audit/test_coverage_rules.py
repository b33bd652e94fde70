"""The rules closing RULES.md's remaining concerns, each broken on the good Deployment in turn."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from rknb.audit import AuditConfig, audit
from rknb.audit.rules.metadata import label_value_problem, port_name_problem
from rknb.audit.rules.pods import is_safe_sysctl
from rknb.audit.rules.scheduling import spread_constraint_problems
from rknb.errors import ParameterError


def pod(d: dict[str, Any]) -> dict[str, Any]:
    return d["spec"]["template"]["spec"]


def app(d: dict[str, Any]) -> dict[str, Any]:
    return pod(d)["containers"][0]


def found(objects: list[dict[str, Any]], rule_id: str, config: Any = None) -> list[str]:
    """Return the messages of one rule's findings (an optional rule runs when named)."""
    return [f.message for f in audit(objects, rules=[rule_id], config=config).findings]


SPREAD = {
    "maxSkew": 1,
    "topologyKey": "topology.kubernetes.io/zone",
    "whenUnsatisfiable": "ScheduleAnyway",
    "labelSelector": {"matchLabels": {"app": "good"}},
}


def _cases() -> list[tuple[str, Any]]:
    def sec(key: str, value: Any):
        return lambda d: app(d)["securityContext"].__setitem__(key, value)

    def podset(key: str, value: Any):
        return lambda d: pod(d).__setitem__(key, value)

    def env(name: str):
        return lambda d: app(d)["env"].append({"name": name, "value": "/bin/sh"})

    def port(**fields: Any):
        return lambda d: app(d)["ports"].append(fields)

    return [
        ("RK-AVAIL-011", podset("topologySpreadConstraints", [{**SPREAD, "maxSkew": 0}])),
        ("RK-SEC-018", sec("procMount", "Unmasked")),
        ("RK-SEC-019", podset("securityContext", {"sysctls": [{"name": "kernel.msgmax"}]})),
        ("RK-SEC-020", sec("windowsOptions", {"hostProcess": True})),
        ("RK-POD-001", podset("hostAliases", [{"ip": "10.0.0.9", "hostnames": ["db"]}])),
        ("RK-SA-002", podset("serviceAccount", "good")),
        ("RK-SEC-021", env("GITSYNC_GIT")),
        ("RK-META-002", lambda d: d["metadata"].__setitem__("labels", {"team": "a b"})),
        ("RK-PORT-002", port(name="http", containerPort=9090)),  # duplicate name
        ("RK-PORT-002", port(name="metrics-endpoint1", containerPort=9090)),  # 17 characters
        ("RK-PORT-002", port(name="m")),  # no containerPort
        (
            "RK-HOST-007",
            lambda d: pod(d)["volumes"].append({"name": "h", "hostPath": {"path": "/x"}}),
        ),
        ("RK-SCHED-001", lambda d: None),  # advice: the good Deployment names no node pool
        ("RK-SCHED-002", lambda d: None),
        ("RK-SA-001", lambda d: None),
        ("RK-DNS-001", lambda d: None),
        ("RK-META-004", lambda d: None),
    ]


@pytest.mark.parametrize(("rule_id", "mutate"), _cases())
def test_rule_fails_only_the_broken_deployment(good_deployment, rule_id, mutate):
    advice = {"RK-SCHED-001", "RK-SCHED-002", "RK-SA-001", "RK-DNS-001", "RK-META-004"}
    fixed = copy.deepcopy(good_deployment)
    fixed["metadata"]["labels"] = {"owner": "shop-team"}
    pod(fixed).update(
        priorityClassName="web",
        serviceAccountName="good",
        nodeSelector={"pool": "general"},
        dnsConfig={"options": [{"name": "ndots", "value": "2"}]},
    )
    clean = fixed if rule_id in advice else good_deployment
    assert found([clean], rule_id) == []
    broken = copy.deepcopy(good_deployment)
    mutate(broken)
    assert len(found([broken], rule_id)) == 1


def test_new_default_rules_pass_the_good_stack(good_deployment):
    ids = ["RK-AVAIL-011", "RK-SEC-018", "RK-SEC-019", "RK-SEC-020", "RK-POD-001", "RK-SA-002"]
    ids += ["RK-SA-003", "RK-SEC-021", "RK-META-002", "RK-PORT-002", "RK-STS-001"]
    assert audit([good_deployment], rules=ids).findings == []


def test_spread_constraints_are_checked_field_by_field():
    assert spread_constraint_problems(SPREAD) == []
    with_domains = {**SPREAD, "minDomains": 2}
    assert spread_constraint_problems(with_domains) == [
        "minDomains is set but whenUnsatisfiable is not DoNotSchedule"
    ]
    assert spread_constraint_problems({**with_domains, "whenUnsatisfiable": "DoNotSchedule"}) == []
    bare = {"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "Sometimes"}
    assert spread_constraint_problems(bare) == [
        "whenUnsatisfiable 'Sometimes' is not DoNotSchedule or ScheduleAnyway",
        "labelSelector is not set, so the constraint counts no pods",
    ]


def test_sysctls_follow_the_kubelets_safe_list(good_deployment):
    assert is_safe_sysctl("net.ipv4.ip_local_port_range")
    assert is_safe_sysctl("net/ipv4/tcp_syncookies")  # the slash form names the same sysctl
    assert not is_safe_sysctl("net.core.somaxconn")  # namespaced, but not on the safe list
    pod(good_deployment)["securityContext"]["sysctls"] = [
        {"name": "kernel.shm_rmid_forced", "value": "1"},
        {"name": "vm.overcommit_memory", "value": "1"},
    ]
    assert found([good_deployment], "RK-SEC-019") == [
        "pod sets unsafe sysctl 'vm.overcommit_memory'"
    ]


def test_host_process_is_inherited_from_the_pod(good_deployment):
    pod(good_deployment)["securityContext"]["windowsOptions"] = {"hostProcess": True}
    assert found([good_deployment], "RK-SEC-020") == [
        "container 'app' is a Windows hostProcess container"
    ]
    app(good_deployment)["securityContext"]["windowsOptions"] = {"hostProcess": False}
    assert found([good_deployment], "RK-SEC-020") == []  # the container's own value wins


def test_writable_host_mounts_need_read_only(good_deployment):
    pod(good_deployment)["volumes"].append({"name": "logs", "hostPath": {"path": "/var/log"}})
    app(good_deployment)["volumeMounts"].append({"name": "logs", "mountPath": "/logs"})
    assert found([good_deployment], "RK-HOST-008") == [
        "container 'app' mounts host path '/var/log' writable"
    ]
    app(good_deployment)["volumeMounts"][-1]["readOnly"] = True
    assert found([good_deployment], "RK-HOST-008") == []
    assert found([good_deployment], "RK-HOST-005") == []  # /var/log is not a system directory


def _account(name: str, namespace: str = "shop") -> dict[str, Any]:
    return {"kind": "ServiceAccount", "metadata": {"name": name, "namespace": namespace}}


def test_named_service_account_must_exist_where_the_audit_sees_accounts(good_deployment):
    pod(good_deployment)["serviceAccountName"] = "shop-api"
    assert found([good_deployment], "RK-SA-003") == []  # no accounts of shop: a partial view
    assert found([good_deployment, _account("other", "ops")], "RK-SA-003") == []
    assert found([good_deployment, _account("other")], "RK-SA-003") == [
        "ServiceAccount 'shop-api' is not among the objects"
    ]
    assert found([good_deployment, _account("shop-api")], "RK-SA-003") == []
    pod(good_deployment)["serviceAccountName"] = "default"
    assert found([good_deployment, _account("other")], "RK-SA-003") == []


def test_env_references_need_their_config_map_and_key(good_deployment):
    app(good_deployment)["env"].append(
        {"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "mode"}}}
    )
    config_map = {"kind": "ConfigMap", "metadata": {"name": "cfg", "namespace": "shop"}}
    assert found([good_deployment], "RK-ENV-002") == [
        "container 'app' reads ConfigMap 'cfg', not among the objects"
    ]
    config_map["data"] = {"level": "info"}
    assert found([good_deployment, config_map], "RK-ENV-002") == [
        "container 'app' reads key 'mode' that ConfigMap 'cfg' does not have"
    ]
    config_map["data"]["mode"] = "fast"
    assert found([good_deployment, config_map], "RK-ENV-002") == []
    app(good_deployment)["envFrom"] = [{"secretRef": {"name": "maybe", "optional": True}}]
    assert found([good_deployment, config_map], "RK-ENV-002") == []  # optional: may be absent


@pytest.mark.parametrize(
    ("value", "valid"),
    [("", True), ("a" * 63, True), ("a" * 64, False), ("v1.2_b-3", True), ("a b", False),
     ("-a", False), ("a/", False), (3, False)],
)  # fmt: skip
def test_label_values_follow_the_api_grammar(value, valid):
    assert (label_value_problem(value) is None) is valid


def test_template_label_values_are_checked_too(good_deployment):
    good_deployment["spec"]["template"]["metadata"]["labels"]["version"] = "1.0 beta"
    [message] = found([good_deployment], "RK-META-002")
    assert message.startswith("template labels version: '1.0 beta' must be")


@pytest.mark.parametrize(
    ("name", "valid"),
    [("http", True), ("h2c-1", True), ("abcdefghijklmno", True), ("abcdefghijklmnop", False),
     ("HTTP", False), ("8080", False), ("a--b", False), ("-a", False)],
)  # fmt: skip
def test_port_names_are_iana_service_names(name, valid):
    assert (port_name_problem(name) is None) is valid


def test_service_target_port_names_are_checked():
    service = {
        "kind": "Service",
        "metadata": {"name": "s", "namespace": "shop"},
        "spec": {"ports": [{"port": 80, "targetPort": "Web_Port"}, {"port": 81, "targetPort": 81}]},
    }
    assert found([service], "RK-PORT-002") == [
        "targetPort 'Web_Port' must be lower-case letters, digits and single inner '-'"
    ]


def _ingress(annotations: dict[str, str]) -> dict[str, Any]:
    return {
        "kind": "Ingress",
        "metadata": {"name": "web", "namespace": "shop", "annotations": annotations},
        "spec": {},
    }


@pytest.mark.parametrize(
    ("value", "rules"),
    [
        ("more_set_headers 'X-Frame-Options: DENY';", {"RK-ING-003"}),
        ("access_by_lua_block { ngx.exit(403) }", {"RK-ING-003", "RK-ING-004"}),
        ("lua_need_request_body on;", {"RK-ING-003", "RK-ING-004"}),
        ("proxy_pass http://kubernetes.io/;", {"RK-ING-003", "RK-ING-004"}),
        ("location /x { alias /etc/ingress-controller/; }", {"RK-ING-003", "RK-ING-005"}),
    ],
)
def test_nginx_snippets_follow_checkovs_three_checks(value, rules):
    ingress = _ingress({"nginx.ingress.kubernetes.io/configuration-snippet": value})
    report = audit([ingress], rules=["RK-ING-003", "RK-ING-004", "RK-ING-005"])
    assert {f.rule_id for f in report.findings} == rules


def test_ingress_without_snippets_passes():
    plain = _ingress({"nginx.ingress.kubernetes.io/rewrite-target": "/lua_x"})
    assert audit([plain], rules=["RK-ING-003", "RK-ING-004", "RK-ING-005"]).findings == []


def _monitor(selector: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": {"name": "m", "namespace": "mon"},
        "spec": {"selector": selector, "endpoints": [{"port": "http"}], **spec},
    }


def test_service_monitor_must_select_a_service_in_its_namespaces():
    service = {
        "kind": "Service",
        "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"}},
    }
    selector = {"matchLabels": {"app": "web"}}
    assert found([service, _monitor(selector)], "RK-MON-001") == [
        "ServiceMonitor 'm' selects no Service in mon"
    ]
    shop = {"matchNames": ["shop"]}
    assert found([service, _monitor(selector, namespaceSelector=shop)], "RK-MON-001") == []
    anywhere = {"any": True}
    assert found([service, _monitor(selector, namespaceSelector=anywhere)], "RK-MON-001") == []
    typo = {"matchLabels": {"app": "webb"}}
    assert len(found([service, _monitor(typo, namespaceSelector=anywhere)], "RK-MON-001")) == 1


def _statefulset(good: dict[str, Any], claim: dict[str, Any]) -> dict[str, Any]:
    sts = copy.deepcopy(good)
    sts["kind"] = "StatefulSet"
    sts["spec"]["volumeClaimTemplates"] = [{"metadata": {"name": "data"}, "spec": claim}]
    return sts


def test_claim_templates_need_storage_and_read_write_once(good_deployment):
    ok = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "10Gi"}}}
    assert found([_statefulset(good_deployment, ok)], "RK-STS-001") == []
    assert found([_statefulset(good_deployment, ok)], "RK-STS-002") == []
    shared = {"accessModes": ["ReadWriteMany"]}
    assert found([_statefulset(good_deployment, shared)], "RK-STS-001") == [
        "volumeClaimTemplate 'data' requests no storage"
    ]
    assert found([_statefulset(good_deployment, shared)], "RK-STS-002") == [
        "volumeClaimTemplate 'data' access modes are ReadWriteMany"
    ]


def test_recreate_strategy_and_dns_policy(good_deployment):
    assert found([good_deployment], "RK-AVAIL-012") == []
    good_deployment["spec"]["strategy"] = {"type": "Recreate"}
    assert found([good_deployment], "RK-AVAIL-012") == ["strategy.type is Recreate"]
    pod(good_deployment)["dnsPolicy"] = "Default"  # the node's resolver: ndots does not apply
    assert found([good_deployment], "RK-DNS-001") == []


def test_daemonsets_need_no_priority_class(good_deployment):
    good_deployment["kind"] = "DaemonSet"
    assert found([good_deployment], "RK-SCHED-002") == []


def test_instance_label_must_equal_the_name(good_deployment):
    good_deployment["metadata"]["labels"] = {"app.kubernetes.io/instance": "good"}
    assert found([good_deployment], "RK-META-003") == []
    good_deployment["metadata"]["labels"]["app.kubernetes.io/instance"] = "good-v2"
    assert found([good_deployment], "RK-META-003") == [
        "label app.kubernetes.io/instance is 'good-v2', not 'good'"
    ]


def test_resource_ranges_are_checked_only_when_configured(good_deployment):
    assert found([good_deployment], "RK-RES-007") == []  # nothing configured
    # requests 100m / 128Mi, limits 500m / 256Mi in the good Deployment
    ranges = (("requests.cpu", 0.25, 4.0), ("limits.memory", 0, 512 * 2**20))
    assert found([good_deployment], "RK-RES-007", AuditConfig(resource_ranges=ranges)) == [
        "container 'app' requests.cpu 100m is outside [0.25, 4]"
    ]
    with pytest.raises(ParameterError, match=r"requests\.gpu"):
        found(
            [good_deployment], "RK-RES-007", AuditConfig(resource_ranges=(("requests.gpu", 0, 1),))
        )
