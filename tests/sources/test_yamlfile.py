from __future__ import annotations

import pytest

from rknb.errors import ManifestError
from rknb.yamlfile import dump_yaml, load_yaml_documents, load_yaml_file


def test_documents_carry_the_line_they_start_on():
    text = "a: 1\n---\n# comment\n\nb: 2\n---\n"
    assert load_yaml_documents(text, path="x.yaml") == [({"a": 1}, 1), ({"b": 2}, 5), (None, 7)]


def test_syntax_error_names_file_and_line():
    text = "a: 1\nb: [1, 2\nc: 3\n"
    with pytest.raises(ManifestError) as caught:
        load_yaml_documents(text, path="conf/x.yaml")
    assert caught.value.path == "conf/x.yaml"
    assert caught.value.line == 3
    assert str(caught.value).startswith("conf/x.yaml:3: ")


def test_safe_loader_refuses_python_tags():
    with pytest.raises(ManifestError):
        load_yaml_documents("!!python/object/apply:os.system ['true']\n", path="evil.yaml")


def test_yes_and_no_stay_yaml_1_1_booleans_like_kubectl_reads_them():
    # PyYAML's SafeLoader follows YAML 1.1; documented so nobody is surprised.
    assert load_yaml_documents("x: yes\n", path="p") == [({"x": True}, 1)]


def test_missing_file_is_a_manifest_error(tmp_path):
    with pytest.raises(ManifestError) as caught:
        load_yaml_file(tmp_path / "absent.yaml")
    assert caught.value.path.endswith("absent.yaml")


def test_dump_keeps_key_order_in_block_style():
    text = dump_yaml({"kind": "Deployment", "apiVersion": "apps/v1", "spec": {"replicas": 3}})
    assert text == "kind: Deployment\napiVersion: apps/v1\nspec:\n  replicas: 3\n"
