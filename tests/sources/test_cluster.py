from __future__ import annotations

import json
import logging
import threading
import time
import urllib.error
import urllib.request

import pytest

from rknb.errors import ClusterError, ParameterError
from rknb.sources.cluster import ClusterSource


def deployment(name: str, namespace: str = "shop") -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"replicas": 1},
    }


@pytest.fixture
def cluster(fake_kube):
    source = ClusterSource("fake", kubeconfig=str(fake_kube.kubeconfig), page_size=3)
    yield source
    source.close()


def raw_get(fake, path: str, *, token: str | None = None, method: str = "GET"):
    request = urllib.request.Request(fake.url + path, method=method)
    request.add_header("Authorization", f"Bearer {token or fake.token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


# -- the source ------------------------------------------------------------------------


def test_list_follows_continue_tokens_over_several_pages(fake_kube, cluster):
    fake_kube.add(*[deployment(f"web-{i:02d}") for i in range(8)])
    fake_kube.add(deployment("other", namespace="elsewhere"))

    names = [d["metadata"]["name"] for d in cluster.list("Deployment", "shop")]

    assert names == [f"web-{i:02d}" for i in range(8)]
    calls = [r for r in fake_kube.requests if r.verb == "list"]
    assert len(calls) == 3  # 3 + 3 + 2 objects with limit=3
    assert [r.query.get("limit") for r in calls] == ["3", "3", "3"]
    assert "continue" not in calls[0].query and "continue" in calls[1].query


def test_listed_objects_look_like_manifests(fake_kube, cluster):
    fake_kube.add(deployment("web"))
    (obj,) = cluster.list("Deployment", "shop")
    assert obj["apiVersion"] == "apps/v1"
    assert obj["kind"] == "Deployment"
    assert obj["spec"] == {"replicas": 1}
    assert obj["metadata"]["resourceVersion"].isdigit()


def test_all_namespaces_list_uses_the_cluster_wide_path(fake_kube, cluster):
    fake_kube.add(deployment("a", "one"), deployment("b", "two"))
    assert len(cluster.list("Deployment")) == 2
    assert fake_kube.requests[-1].path == "/apis/apps/v1/deployments"


def test_cluster_scoped_kind_ignores_the_namespace(fake_kube, cluster):
    fake_kube.add({"kind": "Node", "metadata": {"name": "node-a"}})
    (node,) = cluster.list("Node", "shop")
    assert node["metadata"]["name"] == "node-a"
    assert fake_kube.requests[-1].path == "/api/v1/nodes"


def test_secret_data_is_never_returned(fake_kube, cluster):
    fake_kube.add(
        {
            "kind": "Secret",
            "metadata": {"name": "db", "namespace": "shop"},
            "data": {"password": "aHVudGVyMg=="},
            "stringData": {"token": "plain"},
        }
    )
    listed = cluster.list("Secret", "shop")
    got = cluster.get("Secret", "shop", "db")
    for secret in (*listed, got):
        assert "data" not in secret and "stringData" not in secret
        assert secret["dataKeys"] == ["password", "token"]
        assert "aHVudGVyMg==" not in json.dumps(secret)


def test_forbidden_list_is_a_cluster_error_naming_the_permission(fake_kube, cluster):
    fake_kube.forbid("Pod", verbs=("list",), namespace="shop")
    with pytest.raises(ClusterError) as caught:
        cluster.list("Pod", "shop")
    assert caught.value.status == 403
    assert caught.value.reason == "Forbidden"
    message = str(caught.value)
    assert "list" in message and "pods" in message and "'shop'" in message


def test_missing_object_is_a_cluster_error_with_not_found(fake_kube, cluster):
    with pytest.raises(ClusterError) as caught:
        cluster.get("Deployment", "shop", "absent")
    assert (caught.value.status, caught.value.reason) == (404, "NotFound")
    assert "'absent'" in str(caught.value)


def test_wrong_token_is_a_cluster_error_401(fake_kube, tmp_path):
    fake_kube.token = "another-token"
    source = ClusterSource("fake", kubeconfig=str(fake_kube.kubeconfig))
    with pytest.raises(ClusterError) as caught:
        source.list("Pod", "shop")
    assert (caught.value.status, caught.value.reason) == (401, "Unauthorized")
    assert "fake-token" not in str(caught.value)


def test_expired_continue_token_restarts_the_list(fake_kube, cluster):
    fake_kube.add(*[deployment(f"web-{i}") for i in range(5)])
    original = fake_kube.handlers["list"]
    compacted = []

    def compact_after_first_page(request):
        reply = original(request)
        if not compacted:
            compacted.append(True)
            fake_kube.compact()
        return reply

    fake_kube.handlers["list"] = compact_after_first_page
    names = [d["metadata"]["name"] for d in cluster.list("Deployment", "shop")]
    assert names == [f"web-{i}" for i in range(5)]
    codes = [r.code for r in fake_kube.requests if r.verb == "list"]
    assert codes == [200, 410, 200, 200]


def test_unknown_kind_is_a_parameter_error(cluster):
    with pytest.raises(ParameterError):
        cluster.list("Gizmo")


def test_unknown_context_is_a_cluster_error(fake_kube):
    with pytest.raises(ClusterError) as caught:
        ClusterSource("nope", kubeconfig=str(fake_kube.kubeconfig))
    assert "'nope'" in str(caught.value)


def test_one_info_line_per_call_without_token(fake_kube, cluster, caplog):
    fake_kube.add(*[deployment(f"web-{i}") for i in range(4)])
    with caplog.at_level(logging.INFO, logger="rknb.sources.cluster"):
        cluster.list("Deployment", "shop")
    lines = [r.getMessage() for r in caplog.records if r.name == "rknb.sources.cluster"]
    assert len(lines) == 2
    assert all(fake_kube.token not in line and "Bearer" not in line for line in lines)


def test_description_names_context_and_server_only(fake_kube, cluster):
    assert cluster.description == f"cluster fake ({fake_kube.url})"
    assert cluster.reference_time is None


# -- watch -----------------------------------------------------------------------------


def test_watch_yields_changes_after_the_list(fake_kube, cluster):
    fake_kube.add(deployment("web"))

    def change_later():
        time.sleep(0.2)
        fake_kube.add(deployment("api"))
        fake_kube.delete("Deployment", "shop", "web")

    threading.Thread(target=change_later, daemon=True).start()
    events = [
        (e["type"], e["object"]["metadata"]["name"])
        for e in cluster.watch("Deployment", "shop", timeout_s=1)
    ]
    assert events == [("ADDED", "api"), ("DELETED", "web")]


def test_watch_ending_with_410_lists_again_and_reports_the_difference(fake_kube, cluster):
    fake_kube.add(deployment("web"), deployment("old"))
    fake_kube.expire_next_watches("Deployment")
    initial_rv = fake_kube.resource_version

    original = fake_kube.handlers["watch"]

    def change_while_expired(request):
        # The changes land between the 410 and the re-list, so only the re-list can see them.
        if request.query.get("resourceVersion") == str(initial_rv):
            reply = original(request)
            events = list(reply.stream or [])
            fake_kube.add(deployment("new"))
            fake_kube.delete("Deployment", "shop", "old")
            web = fake_kube.objects("Deployment")[-1]
            web["spec"]["replicas"] = 4
            fake_kube.update(web)
            reply.stream = iter(events)
            return reply
        return original(request)

    fake_kube.handlers["watch"] = change_while_expired
    events = [
        (e["type"], e["object"]["metadata"]["name"])
        for e in cluster.watch("Deployment", "shop", timeout_s=1)
    ]
    assert sorted(events) == [("ADDED", "new"), ("DELETED", "old"), ("MODIFIED", "web")]
    watch_calls = [r for r in fake_kube.requests if r.verb == "watch"]
    assert len(watch_calls) >= 2
    assert [r.verb for r in fake_kube.requests].count("list") == 2


def test_watch_gives_up_after_repeated_410(fake_kube, cluster):
    fake_kube.expire_next_watches("Deployment", count=50)
    with pytest.raises(ClusterError) as caught:
        list(cluster.watch("Deployment", "shop", timeout_s=5))
    assert caught.value.status == 410


# -- the fake's own strictness ---------------------------------------------------------


def test_fake_unknown_path_is_a_404_status(fake_kube):
    code, body = raw_get(fake_kube, "/apis/apps/v1/widgets")
    assert code == 404
    assert body["kind"] == "Status" and body["apiVersion"] == "v1"
    assert (body["status"], body["reason"], body["code"]) == ("Failure", "NotFound", 404)


def test_fake_unsupported_verb_is_a_405(fake_kube):
    code, body = raw_get(fake_kube, "/apis/apps/v1/namespaces/shop/deployments/web", method="PUT")
    assert code == 405 and body["reason"] == "MethodNotAllowed"


def test_fake_requires_the_bearer_token(fake_kube):
    code, body = raw_get(fake_kube, "/api/v1/pods", token="wrong")
    assert code == 401 and body["reason"] == "Unauthorized"


def test_fake_list_pages_carry_resource_version_and_remaining_count(fake_kube):
    fake_kube.add(*[deployment(f"d{i}") for i in range(5)])
    code, page = raw_get(fake_kube, "/apis/apps/v1/namespaces/shop/deployments?limit=2")
    assert code == 200
    assert page["kind"] == "DeploymentList"
    assert page["metadata"]["remainingItemCount"] == 3
    assert page["metadata"]["resourceVersion"] == str(fake_kube.resource_version)


def test_fake_stale_continue_token_is_410_expired(fake_kube):
    fake_kube.add(*[deployment(f"d{i}") for i in range(5)])
    _, page = raw_get(fake_kube, "/apis/apps/v1/namespaces/shop/deployments?limit=2")
    fake_kube.compact()
    token = page["metadata"]["continue"]
    code, body = raw_get(
        fake_kube, f"/apis/apps/v1/namespaces/shop/deployments?limit=2&continue={token}"
    )
    assert (code, body["reason"]) == (410, "Expired")


def test_fake_forbidden_status_names_user_and_resource(fake_kube):
    fake_kube.forbid("Deployment")
    code, body = raw_get(fake_kube, "/apis/apps/v1/deployments")
    assert code == 403
    assert body["details"] == {"group": "apps", "kind": "deployments"}
    assert (
        'cannot list resource "deployments" in API group "apps" at the cluster scope'
        in body["message"]
    )
