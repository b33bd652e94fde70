from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

DATA = Path(__file__).resolve().parent.parent / "data" / "audit"
SEED = DATA / "seed"
SHARED_SEED = Path(__file__).resolve().parents[3] / "shared" / "seed"


def load_seed(default_namespace: str = "default") -> list[dict[str, Any]]:
    """Load the seed files the way the manifest source does (kubectl's default namespace)."""
    objects = []
    for path in sorted(SEED.glob("*.y*ml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if not doc:
                continue
            if "groups" in doc and "kind" not in doc:
                doc = {
                    "apiVersion": "monitoring.coreos.com/v1",
                    "kind": "PrometheusRule",
                    "metadata": {
                        "name": path.stem,
                        "namespace": default_namespace,
                        "annotations": {"rknb.io/source": str(path)},
                    },
                    "spec": {"groups": doc["groups"]},
                }
            doc.setdefault("metadata", {}).setdefault("namespace", default_namespace)
            objects.append(doc)
    return objects


@pytest.fixture
def seed() -> list[dict[str, Any]]:
    return load_seed()


@pytest.fixture
def good_deployment() -> dict[str, Any]:
    return copy.deepcopy(yaml.safe_load((DATA / "good-deployment.yaml").read_text()))
