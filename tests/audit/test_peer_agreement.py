"""rknb's verdicts against a Checkov JSON report, and the lazily made verdict table."""

from __future__ import annotations

from typing import Any

import pytest

from rknb.audit import audit
from rknb.audit.model import AuditConfig, Verdicts
from rknb.conformance.audit import checkov_by_resource, checkov_cases


def _deployment(name: str, namespace: str, *, probes: bool) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "app", "image": "registry.example/app:1.0"}
    if probes:
        container["livenessProbe"] = {"httpGet": {"path": "/health", "port": 8080}}
        container["readinessProbe"] = {"httpGet": {"path": "/ready", "port": 8080}}
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}},
        },
    }


def _check(check_id: str, resource: str) -> dict[str, Any]:
    # The fields of a Checkov result the comparison reads, among the many Checkov writes.
    return {"check_id": check_id, "resource": resource, "check_name": "...", "file_path": "/a"}


def test_checkov_by_resource_reads_one_report_or_a_list_of_them():
    report = {
        "check_type": "kubernetes",
        "results": {
            "failed_checks": [_check("CKV_K8S_8", "Deployment.shop.web")],
            "passed_checks": [
                _check("CKV_K8S_9", "Deployment.shop.web"),
                _check("CKV_K8S_8", "Deployment.shop.api"),
            ],
        },
    }
    expected = {
        "Deployment.shop.web": {"failed": ["CKV_K8S_8"], "passed": ["CKV_K8S_9"]},
        "Deployment.shop.api": {"failed": [], "passed": ["CKV_K8S_8"]},
    }
    assert checkov_by_resource(report) == expected
    # Several frameworks print a list of reports; a report without results adds nothing.
    assert checkov_by_resource([report, {"check_type": "secrets"}]) == expected


def test_checkov_cases_judge_each_verdict_in_scope_against_rknbs():
    objects = [
        _deployment("web", "shop", probes=False),
        _deployment("api", "shop", probes=True),
    ]
    report = audit(objects)
    by_resource = {
        # Checkov: no liveness probe on web (rknb agrees: RK-PROBE-002 fails there).
        "Deployment.shop.web": {"failed": ["CKV_K8S_8"], "passed": []},
        # Checkov would say api has no readiness probe: rknb disagrees, a failed case.
        # CKV_K8S_1 is a PodSecurityPolicy check, out of scope: no case at all.
        "Deployment.shop.api": {"failed": ["CKV_K8S_9", "CKV_K8S_1"], "passed": ["CKV_K8S_8"]},
        # A resource that is not among the objects.
        "Deployment.shop.gone": {"failed": ["CKV_K8S_8"], "passed": []},
    }
    cases = {c.case_id: c for c in checkov_cases("files", by_resource, objects, report)}
    assert sorted(cases) == [
        "files:checkov:CKV_K8S_8:Deployment.shop.api",
        "files:checkov:CKV_K8S_8:Deployment.shop.gone",
        "files:checkov:CKV_K8S_8:Deployment.shop.web",
        "files:checkov:CKV_K8S_9:Deployment.shop.api",
    ]
    assert cases["files:checkov:CKV_K8S_8:Deployment.shop.web"].status == "passed"
    assert cases["files:checkov:CKV_K8S_8:Deployment.shop.api"].status == "passed"
    wrong = cases["files:checkov:CKV_K8S_9:Deployment.shop.api"]
    assert (wrong.status, wrong.expected, wrong.actual) == ("failed", "fail", "pass")
    assert wrong.detail == "rknb RK-PROBE-001"
    missing = cases["files:checkov:CKV_K8S_8:Deployment.shop.gone"]
    assert missing.status == "failed"
    assert "not found" in (missing.detail or "")


def test_checkov_cases_find_an_object_in_its_own_namespace_only():
    objects = [_deployment("web", "shop", probes=True), _deployment("web", "lab", probes=False)]
    report = audit(objects)
    by_resource = {
        "Deployment.shop.web": {"failed": [], "passed": ["CKV_K8S_8"]},
        "Deployment.lab.web": {"failed": ["CKV_K8S_8"], "passed": []},
    }
    cases = checkov_cases("files", by_resource, objects, report)
    assert [c.status for c in cases] == ["passed", "passed"]


def test_verdicts_are_made_on_first_use_and_equal_the_plain_table():
    verdicts = Verdicts()
    verdicts.add("RK-A", ["Deployment/shop/web", "Deployment/shop/api"], True)
    verdicts.add("RK-A", ["Deployment/shop/api"], False)  # the same key defined twice
    verdicts.add("RK-B", [], True)
    verdicts.add("RK-B", ["Service/shop/web"], False)
    plain = {
        ("RK-A", "Deployment/shop/web"): True,
        ("RK-A", "Deployment/shop/api"): False,
        ("RK-B", "Service/shop/web"): False,
    }
    assert verdicts == plain
    assert len(verdicts) == 3
    assert verdicts[("RK-A", "Deployment/shop/api")] is False
    assert verdicts.get(("RK-C", "Deployment/shop/web"), True) is True
    with pytest.raises(KeyError):
        verdicts[("RK-C", "Deployment/shop/web")]
    # Checks added after a first read are still seen.
    verdicts.add("RK-C", ["Deployment/shop/web"], True)
    assert verdicts[("RK-C", "Deployment/shop/web")] is True
    assert list(verdicts) == [*plain, ("RK-C", "Deployment/shop/web")]


def test_an_audit_records_a_verdict_for_every_check_it_ran():
    objects = [_deployment("web", "shop", probes=False), _deployment("api", "shop", probes=True)]
    report = audit(objects, rules=["RK-PROBE-001", "RK-PROBE-002"], config=AuditConfig())
    assert dict(report.verdicts) == {
        ("RK-PROBE-001", "Deployment/shop/web"): False,
        ("RK-PROBE-001", "Deployment/shop/api"): True,
        ("RK-PROBE-002", "Deployment/shop/web"): False,
        ("RK-PROBE-002", "Deployment/shop/api"): True,
    }
