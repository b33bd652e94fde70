from __future__ import annotations

import pytest

from rknb.errors import ParameterError
from rknb.sources.objects import ObjectListSource, strip_secret

OBJECTS = [
    {"kind": "Pod", "metadata": {"name": "a", "namespace": "one"}},
    {"kind": "Pod", "metadata": {"name": "b", "namespace": "two"}},
    {"kind": "Node", "metadata": {"name": "n1"}},
    {
        "kind": "Secret",
        "metadata": {
            "name": "s",
            "namespace": "one",
            "annotations": {
                "kubectl.kubernetes.io/last-applied-configuration": '{"data":{"k":"dmFsdWU="}}',
                "team": "core",
            },
        },
        "data": {"k": "dmFsdWU="},
    },
]


def test_list_filters_by_kind_and_namespace():
    source = ObjectListSource(OBJECTS, description="test")
    assert [p["metadata"]["name"] for p in source.list("Pod", "two")] == ["b"]
    assert [p["metadata"]["name"] for p in source.list("Pod")] == ["a", "b"]


def test_cluster_scoped_kinds_ignore_the_namespace():
    source = ObjectListSource(OBJECTS, description="test")
    assert len(source.list("Node", "one")) == 1


def test_secret_loses_values_and_the_last_applied_copy():
    (secret,) = ObjectListSource(OBJECTS, description="test").list("Secret", "one")
    assert "data" not in secret
    assert secret["dataKeys"] == ["k"]
    assert secret["metadata"]["annotations"] == {"team": "core"}
    assert "dmFsdWU=" not in repr(secret)


def test_strip_secret_twice_keeps_the_key_names():
    once = strip_secret(OBJECTS[3])
    assert strip_secret(once)["dataKeys"] == ["k"]


def test_input_objects_are_not_modified():
    ObjectListSource(OBJECTS, description="test")
    assert OBJECTS[3]["data"] == {"k": "dmFsdWU="}


def test_unknown_kind_lists_supported_kinds():
    with pytest.raises(ParameterError) as caught:
        ObjectListSource(OBJECTS, description="test").list("pods")
    assert "'pods'" in str(caught.value) and "Deployment" in str(caught.value)


def test_get_finds_one_object_or_none():
    source = ObjectListSource(OBJECTS, description="test")
    assert source.get("Pod", "one", "a")["metadata"]["name"] == "a"
    assert source.get("Pod", "one", "b") is None


def _cronjob(env: list[dict]) -> dict:
    pod = {"containers": [{"name": "report", "env": env}]}
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {
            "name": "report",
            "namespace": "shop",
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{...s3cr3t...}"},
        },
        "spec": {"jobTemplate": {"spec": {"template": {"spec": pod}}}},
    }


def test_a_password_written_into_a_pods_env_is_redacted_and_other_values_kept():
    env = [
        {"name": "DB_PASSWORD", "value": "s3cr3t-value"},
        {"name": "api_key", "value": "k-123456"},
        {"name": "LOG_LEVEL", "value": "debug"},
        {"name": "TOKEN_FILE_FROM_REF", "valueFrom": {"secretKeyRef": {"name": "t", "key": "k"}}},
    ]
    original = _cronjob(env)
    cleaned = strip_secret(original)
    envs = cleaned["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["env"]
    assert [e.get("value") for e in envs] == ["<redacted>", "<redacted>", "debug", None]
    assert envs[3]["valueFrom"]["secretKeyRef"]["name"] == "t"
    assert "annotations" not in cleaned["metadata"] or not cleaned["metadata"]["annotations"]
    assert "s3cr3t" not in repr(cleaned)
    assert (
        original["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["env"][0][
            "value"
        ]
        == "s3cr3t-value"
    )  # the caller's object is left alone


def test_an_object_without_literal_credentials_is_returned_as_is():
    obj = _cronjob([{"name": "LOG_LEVEL", "value": "debug"}])
    assert strip_secret(obj) is obj
