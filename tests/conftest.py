"""Suite-wide fixtures: no test may reach a real cluster or Prometheus by accident."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Fixture notebooks (some raise, some kill their kernel) are data, not tests for nbval.
collect_ignore_glob = ["data/*"]

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"

_LIVE_ENV = (
    "KUBECONFIG",
    "KUBERNETES_SERVICE_HOST",
    "KUBERNETES_SERVICE_PORT",
    "PROMETHEUS_URL",
    "PROMETHEUS_TOKEN",
    "RKNB_CATALOG",
    "RKNB_PROMQL_SEMANTICS",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "http_proxy",
    "https_proxy",
)


@pytest.fixture(autouse=True)
def _no_live_endpoints(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    for name in _LIVE_ENV:
        monkeypatch.delenv(name, raising=False)
    # An empty kubeconfig, so a default-context lookup cannot find a real cluster.
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("KUBECONFIG", str(home / "no-such-kubeconfig"))
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    os.environ.setdefault("PYTHONHASHSEED", "0")


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def shared() -> Path | None:
    return SHARED if SHARED.is_dir() else None
