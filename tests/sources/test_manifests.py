from __future__ import annotations

from pathlib import Path

import pytest

from rknb.errors import ManifestError, ParameterError
from rknb.sources.manifests import SOURCE_ANNOTATION, ManifestSource

DATA = Path(__file__).resolve().parents[1] / "data" / "sources" / "manifests"


def source_of(obj):
    return obj["metadata"]["annotations"][SOURCE_ANNOTATION]


@pytest.fixture
def seed(shared) -> Path:
    if shared is None or not (shared / "seed").is_dir():
        pytest.skip("../shared/seed is not present")
    return shared / "seed"


def test_seed_network_policy_without_namespace_gets_default(seed):
    source = ManifestSource(seed)
    (policy,) = source.list("NetworkPolicy")
    assert policy["metadata"]["namespace"] == "default"
    assert source.list("NetworkPolicy", "reasonkit") == []


def test_seed_objects_remember_file_and_line(seed):
    source = ManifestSource(str(seed))
    (deployment,) = source.list("Deployment", "reasonkit")
    (service,) = source.list("Service", "reasonkit")
    (hpa,) = source.list("HorizontalPodAutoscaler", "reasonkit")
    assert source_of(deployment) == f"{seed}/reasonkit-pro.yaml:1"
    assert source_of(service) == f"{seed}/reasonkit-pro.yaml:61"
    assert source_of(hpa) == f"{seed}/reasonkit-pro.yaml:75"
    assert deployment["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}


def test_seed_rules_file_becomes_a_prometheus_rule(seed):
    source = ManifestSource(str(seed))
    (rule,) = source.list("PrometheusRule")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["metadata"] == {
        "name": "alerts",
        "namespace": "default",
        "annotations": {SOURCE_ANNOTATION: f"{seed}/alerts.yml"},
    }
    alerts = [r["alert"] for r in rule["spec"]["groups"][0]["rules"]]
    assert alerts == ["HighErrorRate", "HighLatency"]


def test_seed_folder_loads_five_objects_in_sorted_file_order(seed):
    kinds = [o["kind"] for o in ManifestSource(seed).all_objects()]
    # alerts.yml < network-policy.yaml < reasonkit-pro.yaml
    assert kinds == [
        "PrometheusRule",
        "NetworkPolicy",
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
    ]


def test_kubectl_list_is_flattened_with_each_item_line():
    source = ManifestSource(DATA / "mixed" / "list.yaml")
    (config,) = source.list("ConfigMap", "shop")
    (node,) = source.list("Node")
    assert source_of(config).endswith("list.yaml:6")
    assert source_of(node).endswith("list.yaml:23")


def test_cluster_scoped_objects_get_no_namespace():
    source = ManifestSource(DATA / "mixed")
    (node,) = source.list("Node", "shop")  # namespace is ignored for cluster-scoped kinds
    (namespace,) = source.list("Namespace")
    assert "namespace" not in node["metadata"]
    assert "namespace" not in namespace["metadata"]


def test_typed_json_list_items_get_kind_and_default_namespace():
    source = ManifestSource(DATA / "mixed" / "deployments.json", default_namespace="staging")
    names = {(d["metadata"]["namespace"], d["metadata"]["name"]) for d in source.list("Deployment")}
    assert names == {("shop", "web"), ("staging", "worker")}
    assert {d["apiVersion"] for d in source.list("Deployment")} == {"apps/v1"}


def test_secret_values_are_stripped_but_key_names_kept():
    source = ManifestSource(DATA / "mixed")
    (secret,) = source.list("Secret", "shop")
    assert "data" not in secret
    assert "stringData" not in secret
    assert secret["dataKeys"] == ["password", "token"]
    assert "plain-text-token-value" not in repr(source.all_objects())


def test_unknown_kinds_are_skipped_with_a_reason():
    source = ManifestSource(DATA / "mixed")
    (skipped,) = source.skipped
    assert (skipped.kind, skipped.name, skipped.line) == ("ServiceMonitor", "web", 4)
    assert "ServiceMonitor" in skipped.reason


def test_prometheus_alert_templates_are_not_mistaken_for_helm():
    source = ManifestSource(DATA / "mixed" / "extras.yml")
    (rule,) = source.list("PrometheusRule", "shop")
    assert rule["metadata"]["name"] == "web-rules"


def test_unrendered_helm_templates_are_skipped():
    source = ManifestSource(DATA / "helm")
    assert source.all_objects() == []
    assert [Path(s.path).name for s in source.skipped] == ["deployment.yaml", "service.yaml"]
    assert all("Helm" in s.reason for s in source.skipped)


def test_bad_yaml_names_the_line():
    with pytest.raises(ManifestError) as caught:
        ManifestSource(DATA / "bad" / "syntax.yaml")
    assert caught.value.line == 7
    assert caught.value.path.endswith("syntax.yaml")


def test_non_mapping_document_names_file_and_line():
    with pytest.raises(ManifestError) as caught:
        ManifestSource(DATA / "bad" / "scalar.yaml")
    assert (Path(caught.value.path).name, caught.value.line) == ("scalar.yaml", 6)
    assert "mapping" in str(caught.value)


def test_bad_json_names_the_line():
    with pytest.raises(ManifestError) as caught:
        ManifestSource(DATA / "bad" / "broken.json")
    assert caught.value.line == 4


def test_missing_path_is_a_manifest_error(tmp_path):
    with pytest.raises(ManifestError):
        ManifestSource(tmp_path / "nope")


def test_unknown_kind_name_lists_the_supported_kinds():
    source = ManifestSource(DATA / "mixed" / "list.yaml")
    with pytest.raises(ParameterError) as caught:
        source.list("Deployments")
    assert "HorizontalPodAutoscaler" in str(caught.value)


def test_list_returns_copies():
    source = ManifestSource(DATA / "mixed" / "list.yaml")
    source.list("ConfigMap")[0]["data"]["LOG_LEVEL"] = "debug"
    assert source.list("ConfigMap")[0]["data"]["LOG_LEVEL"] == "info"
