"""Sample objects for tests that drive the fake API's Deployment controller."""

from __future__ import annotations

from typing import Any


def web_deployment(image: str = "example.org/web:1", *, deadline_s: int = 600) -> dict[str, Any]:
    """Return Deployment ``shop/web``: 3 replicas, maxSurge 1, maxUnavailable 0."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop", "annotations": {}},
        "spec": {
            "replicas": 3,
            "progressDeadlineSeconds": deadline_s,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
            },
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": image}]},
            },
        },
    }
