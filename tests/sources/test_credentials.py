from __future__ import annotations

from rknb.credentials import REDACTED, redact


def test_authorization_header_value_is_removed():
    assert redact("Authorization: Bearer abc.def-123", environ={}) == f"Authorization: {REDACTED}"


def test_bearer_token_alone_is_removed():
    assert redact("sent Bearer eyJhbGciOi.J9x", environ={}) == f"sent Bearer {REDACTED}"


def test_user_and_password_in_url_are_removed():
    text = redact("GET https://bob:hunter2@prom.example:9090/api/v1/query", environ={})
    assert text == f"GET https://{REDACTED}@prom.example:9090/api/v1/query"


def test_token_query_parameter_and_yaml_password_are_removed():
    assert redact("url?token=abc123&step=30", environ={}) == f"url?token={REDACTED}&step=30"
    assert redact('password: "p4ss word"', environ={}) == f"password: {REDACTED}"


def test_values_of_secret_looking_env_vars_are_removed():
    env = {"GRAFANA_API_KEY": "k-9f8e7d", "HOME": "/root", "DB_PASSWORD": "pw-1234"}
    text = redact("key k-9f8e7d pw pw-1234 home /root", environ=env)
    assert text == f"key {REDACTED} pw {REDACTED} home /root"


def test_plain_text_is_unchanged():
    text = "list deployments.apps in namespace shop -> 200"
    assert redact(text, environ={}) == text
