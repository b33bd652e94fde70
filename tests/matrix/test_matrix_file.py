from __future__ import annotations

import pytest

from rknb import matrix
from rknb.errors import ParameterError
from rknb.report import Param

DECLARED = {
    "audit": {
        "prometheus": Param("prometheus", "str", "demo", ""),
        "cluster": Param("cluster", "str", "demo", ""),
        "namespace": Param("namespace", "str", "", ""),
        "fail_on": Param("fail_on", "str", "high", ""),
        "step": Param("step", "str", "5m", ""),
    },
    "latency": {
        "prometheus": Param("prometheus", "str", "demo", ""),
        "namespace": Param("namespace", "str", "", ""),
        "step": Param("step", "str", "5m", ""),
        "slo_target": Param("slo_target", "float", 0.999, ""),
    },
}


def _declared(name):
    return DECLARED[name]


def _doc(**extra):
    doc = {
        "clusters": [
            {"name": "prod-eu", "context": "gke_eu", "prometheus": "https://prom.eu:9090"},
            {"name": "prod-us"},
        ],
        "namespaces": ["shop", "pay"],
        "notebooks": ["audit", "latency"],
    }
    doc.update(extra)
    return doc


def test_expand_nests_clusters_then_namespaces_then_notebooks():
    specs = matrix.expand(matrix.parse_matrix(_doc()), declared=_declared)
    assert [s.label for s in specs] == [
        "prod-eu/shop/audit",
        "prod-eu/shop/latency",
        "prod-eu/pay/audit",
        "prod-eu/pay/latency",
        "prod-us/shop/audit",
        "prod-us/shop/latency",
        "prod-us/pay/audit",
        "prod-us/pay/latency",
    ]


def test_cluster_sets_context_prometheus_and_namespace_only_where_declared():
    specs = matrix.expand(matrix.parse_matrix(_doc()), declared=_declared)
    audit, latency = specs[0], specs[1]
    assert audit.parameters == {
        "prometheus": "https://prom.eu:9090",
        "cluster": "gke_eu",
        "namespace": "shop",
    }
    # latency declares no ``cluster`` parameter, so none is passed
    assert latency.parameters == {"prometheus": "https://prom.eu:9090", "namespace": "shop"}
    # a cluster without context or prometheus: its name is the context, the demo its metrics
    assert specs[4].parameters["cluster"] == "prod-us"
    assert specs[4].parameters["prometheus"] == "demo"


def test_shared_parameters_go_to_notebooks_that_declare_them():
    parsed = matrix.parse_matrix(
        _doc(
            parameters={"fail_on": "medium", "step": "1m"},
            notebook_parameters={"latency": {"slo_target": 0.99}},
        )
    )
    audit, latency = matrix.expand(parsed, declared=_declared)[:2]
    assert audit.parameters["fail_on"] == "medium" and audit.parameters["step"] == "1m"
    assert "fail_on" not in latency.parameters
    assert latency.parameters["slo_target"] == 0.99 and latency.parameters["step"] == "1m"


def test_a_shared_parameter_no_notebook_declares_is_refused():
    parsed = matrix.parse_matrix(_doc(parameters={"fial_on": "high"}))
    with pytest.raises(ParameterError, match="fial_on"):
        matrix.expand(parsed, declared=_declared)


def test_a_notebook_parameter_of_the_wrong_type_is_refused_before_any_run():
    parsed = matrix.parse_matrix(_doc(notebook_parameters={"latency": {"slo_target": "high"}}))
    with pytest.raises(ParameterError, match="slo_target"):
        matrix.expand(parsed, declared=_declared)


@pytest.mark.parametrize("name", ["cluster", "namespace", "prometheus"])
def test_parameters_the_matrix_sets_itself_are_refused(name):
    with pytest.raises(ParameterError, match=name):
        matrix.parse_matrix(_doc(parameters={name: "x"}))


def test_tenant_becomes_the_scope_header_and_reaches_the_environment():
    doc = _doc()
    doc["clusters"][0] |= {"tenant": "team-a", "bearer_token_file": "/var/run/token"}
    doc["clusters"][1] |= {"tenant": "t2", "tenant_header": "X-Tenant", "bearer_token_env": "T"}
    eu, us = matrix.parse_matrix(doc).clusters
    assert eu.environment() == {
        "RKNB_PROMETHEUS_HEADERS": "X-Scope-OrgID=team-a",
        "RKNB_PROMETHEUS_TOKEN_FILE": "/var/run/token",
    }
    assert us.environment() == {
        "RKNB_PROMETHEUS_HEADERS": "X-Tenant=t2",
        "RKNB_PROMETHEUS_TOKEN_ENV": "T",
    }


@pytest.mark.parametrize(
    ("cluster", "words"),
    [
        ({"name": "a", "prometheus": "https://u:pw@prom:9090"}, "user:password"),
        ({"name": "a", "headers": {"Authorization": "Bearer x"}}, "Authorization"),
        ({"name": "a", "bearer_token_file": "/t", "bearer_token_env": "T"}, "not both"),
        ({"name": "a b"}, "not a name"),
        ({"name": "a", "contxt": "x"}, "unknown keys"),
    ],
)
def test_cluster_entries_that_would_leak_or_are_wrong_are_refused(cluster, words):
    with pytest.raises(ParameterError, match=words):
        matrix.parse_matrix(_doc(clusters=[cluster]))


def test_repeated_cluster_names_are_refused():
    with pytest.raises(ParameterError, match="repeat"):
        matrix.parse_matrix(_doc(clusters=[{"name": "a"}, {"name": "a", "context": "b"}]))


def test_relative_kubeconfig_is_read_next_to_the_matrix_file(tmp_path):
    path = tmp_path / "fleet" / "matrix.yaml"
    path.parent.mkdir()
    path.write_text(
        "clusters:\n  - {name: east, kubeconfig: kube/east.yaml}\n"
        "namespaces: [shop]\nnotebooks: [audit]\n"
    )
    (cluster,) = matrix.load_matrix(path).clusters
    assert cluster.kubeconfig == str(tmp_path / "fleet" / "kube" / "east.yaml")
    assert cluster.context == "east"


def test_namespaces_default_to_all_namespaces():
    doc = _doc()
    del doc["namespaces"]
    assert matrix.parse_matrix(doc).namespaces == ("",)


ALIAS_BOMB = "".join(
    [
        "a: &a [x, x, x, x, x, x, x, x, x]\n",
        *(
            f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
            for p, c in zip("abcdefgh", "bcdefghi", strict=True)
        ),
    ]
)


def test_an_alias_bomb_in_a_matrix_file_is_refused_quickly(tmp_path):
    path = tmp_path / "fleet.yaml"
    path.write_text(
        "clusters: [{name: east}]\nnamespaces: [shop]\nnotebooks: [audit]\n"
        "parameters:\n  bomb:\n" + "".join("    " + line + "\n" for line in ALIAS_BOMB.splitlines())
    )
    with pytest.raises(ParameterError, match="alias bomb"):
        matrix.load_matrix(path)


def test_a_matrix_file_of_two_documents_is_refused(tmp_path):
    path = tmp_path / "fleet.yaml"
    path.write_text("clusters: [{name: east}]\n---\nclusters: [{name: west}]\n")
    with pytest.raises(ParameterError, match="2 YAML documents"):
        matrix.load_matrix(path)
