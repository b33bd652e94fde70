from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest
from promstub import PromStub

from rknb.catalog import Selector
from rknb.config import load_config, show_config
from rknb.errors import ParameterError
from rknb.sources import open_metrics
from rknb.sources.prometheus import PrometheusSource

CONFIG = """\
catalog: {catalog}
prometheus:
  prod-eu:
    url: https://prometheus.eu.example
    headers: {{X-Scope-OrgID: team-a, Authorization: Bearer s3cr3t-value}}
    bearer_token_env: PROM_EU_TOKEN
    timeout_s: 20
  local:
    url: {local}
    headers: {{X-Scope-OrgID: team-b}}
clusters:
  eu-prod-1: prod-eu
  kind-local: local
"""


def _write(tmp_path, local="http://127.0.0.1:9"):
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text("container_memory_bytes: {metric: container_memory_rss}\n")
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG.format(catalog=catalog, local=local))
    return path


def test_environment_overrides_the_file_and_parameters_override_both(tmp_path):
    path = _write(tmp_path)
    env = {"RKNB_PROMETHEUS_TIMEOUT_S": "5", "RKNB_PROMETHEUS_HEADERS": "X-Scope-OrgID=ops"}
    config = load_config(path, environ=env)
    settings = config.endpoint("prod-eu")
    assert settings["timeout_s"] == 5.0  # env over the file's 20
    assert settings["headers"]["X-Scope-OrgID"] == "ops"  # env header over the file's
    assert settings["bearer_token_env"] == "PROM_EU_TOKEN"  # the file over the default
    # An explicit URL parameter wins over the endpoint's url but keeps its settings.
    by_url = config.endpoint("https://prometheus.eu.example")
    assert by_url["bearer_token_env"] == "PROM_EU_TOKEN"
    assert config.endpoint("config", cluster="eu-prod-1")["url"] == "https://prometheus.eu.example"


def test_config_file_is_found_through_rknb_config_then_xdg(tmp_path):
    path = _write(tmp_path)
    assert load_config(environ={"RKNB_CONFIG": str(path)}).source == str(path)
    (tmp_path / "xdg" / "rknb").mkdir(parents=True)
    (tmp_path / "xdg" / "rknb" / "config.yaml").write_text(path.read_text())
    assert load_config(environ={"XDG_CONFIG_HOME": str(tmp_path / "xdg")}).endpoints.keys() == {
        "prod-eu",
        "local",
    }
    assert load_config(environ={"HOME": str(tmp_path / "nohome")}).source is None


def test_literal_credentials_in_the_file_are_refused(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("prometheus:\n  a: {url: 'http://x', bearer_token: abc123}\n")
    with pytest.raises(ParameterError, match="bearer_token_file or bearer_token_env"):
        load_config(path, environ={})


def test_unknown_cluster_for_config_lists_the_known_ones(tmp_path):
    config = load_config(_write(tmp_path), environ={})
    with pytest.raises(ParameterError, match="known: eu-prod-1, kind-local"):
        config.endpoint("config", cluster="other")


def test_show_redacts_credentials_but_keeps_tenants_and_references(tmp_path):
    env = {"RKNB_PROMETHEUS_HEADERS": "Authorization=Basic dXNlcjpwYXNz"}
    text = show_config(load_config(_write(tmp_path), environ=env))
    assert "s3cr3t-value" not in text and "dXNlcjpwYXNz" not in text
    assert text.count("<redacted>") == 2
    assert "X-Scope-OrgID: team-a" in text
    assert "bearer_token_env: PROM_EU_TOKEN" in text
    assert "parameters > environment > file > defaults" in text


def test_open_metrics_applies_the_endpoint_headers_and_catalog(tmp_path, monkeypatch):
    body = {"status": "success", "data": {"resultType": "vector", "result": []}}
    stub = PromStub(lambda r: (200, body)).start()
    try:
        monkeypatch.setenv("RKNB_CONFIG", str(_write(tmp_path, local=stub.url)))
        source = open_metrics("config", cluster="kind-local")
        assert isinstance(source, PrometheusSource)
        source.query_instant(
            "container_memory_bytes", Selector(namespace="n"), datetime(2024, 1, 1, tzinfo=UTC)
        )
    finally:
        stub.stop()
    (request,) = stub.requests
    assert request.headers["x-scope-orgid"] == "team-b"
    assert "container_memory_rss{" in request.form["query"]


def test_basic_auth_password_comes_from_a_file_and_client_cert_is_set(tmp_path):
    secret = tmp_path / "password"
    secret.write_text("pa55word\n")
    body = {"status": "success", "data": {"resultType": "vector", "result": []}}
    stub = PromStub(lambda r: (200, body)).start()
    try:
        source = PrometheusSource(
            stub.url,
            basic_auth_user="reader",
            basic_auth_password_file=secret,
            cert_file=tmp_path / "client.pem",
            key_file=tmp_path / "client.key",
        )
        assert source._session.cert == (str(tmp_path / "client.pem"), str(tmp_path / "client.key"))
        source._session.cert = None  # the files do not exist; plain HTTP ignores them anyway
        source.query_instant("container_restarts", Selector(), datetime(2024, 1, 1, tzinfo=UTC))
    finally:
        stub.stop()
    (request,) = stub.requests
    expected = base64.b64encode(b"reader:pa55word").decode()
    assert request.headers["authorization"] == f"Basic {expected}"
    assert "pa55word" not in repr(source)


def test_rknb_config_show_prints_the_file_redacted(tmp_path, capsys):
    from rknb.cli import main

    assert main(["config", "show", "--file", str(_write(tmp_path))]) == 0
    out = capsys.readouterr().out
    assert "s3cr3t-value" not in out
    assert "Authorization: <redacted>" in out
    assert "eu-prod-1: prod-eu" in out
