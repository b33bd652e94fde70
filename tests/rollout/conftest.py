from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

DATA = Path(__file__).resolve().parent.parent / "data"


def load(path: Path) -> list[dict[str, Any]]:
    with path.open() as handle:
        return [d for d in yaml.safe_load_all(handle) if d]


@pytest.fixture
def renumbered() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    objects = load(DATA / "rollout" / "renumbered-history.yaml")
    return objects[0], objects[1:]


@pytest.fixture
def seed_deployment() -> dict[str, Any]:
    return load(DATA / "audit" / "seed" / "reasonkit-pro.yaml")[0]


# The fake API server is a package under tests/; make it importable as ``fakekube``.
import sys  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from fakekube.controller import DeploymentController, PodTiming, wait_rolled_out  # noqa: E402
from fakekube.plugin import fake_kube  # noqa: E402,F401
from fakekube.samples import web_deployment  # noqa: E402


@pytest.fixture
def cluster_with_history(fake_kube):  # noqa: F811
    """A fake cluster whose Deployment ``shop/web`` ran image 1, then 2 (revision 2 live)."""
    from rknb.sources.cluster import MERGE_PATCH, ClusterSource

    timing = PodTiming(default_ready_s=0.1, by_image={"example.org/web:broken": None})
    controller = DeploymentController(fake_kube, tick_s=0.02, timing=timing).start()
    source = ClusterSource("fake", kubeconfig=str(fake_kube.kubeconfig))
    fake_kube.add(web_deployment())
    wait_rolled_out(fake_kube)
    patch = {
        "metadata": {"annotations": {"kubernetes.io/change-cause": "release 2"}},
        "spec": {
            "template": {"spec": {"containers": [{"name": "web", "image": "example.org/web:2"}]}}
        },
    }
    source.patch("Deployment", "shop", "web", patch, patch_type=MERGE_PATCH)
    wait_rolled_out(fake_kube)
    try:
        yield fake_kube, source, controller
    finally:
        controller.stop()
        source.close()
