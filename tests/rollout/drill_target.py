"""Where the notebook drill tests run: the loopback fake, or a real cluster on request.

By default the tests start the fake API server (``tests/fakekube``) and its
Deployment controller. With ``RKNB_DRILL_KUBECONFIG`` set (and optionally
``RKNB_DRILL_CONTEXT``, default the kubeconfig's current context), they run
against that cluster instead: they create a namespace ``rknb-drill-<random>``
holding Deployment ``web`` (3 replicas of ``registry.k8s.io/pause``, maxSurge 1,
maxUnavailable 0), roll it from revision 1 to revision 2, run the drill, and
delete the namespace afterwards. Use a throwaway kind or k3d cluster.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fakekube.controller import DeploymentController, PodTiming, wait_rolled_out
from fakekube.samples import web_deployment
from fakekube.server import FakeKube

from rknb.sources.cluster import MERGE_PATCH, ClusterSource

KUBECONFIG_ENV = "RKNB_DRILL_KUBECONFIG"
CONTEXT_ENV = "RKNB_DRILL_CONTEXT"
FAKE_READY_S = 0.1
REAL_IMAGES = ("registry.k8s.io/pause:3.9", "registry.k8s.io/pause:3.10")


@dataclass
class DrillTarget:
    """A Deployment ``web`` at revision 2 (revision 1 in its history), ready to drill."""

    kubeconfig: Path
    context: str
    namespace: str
    images: tuple[str, str]
    #: The least time a rollout of 3 replicas can take here (3 waves of pod readiness).
    min_recovery_s: float
    #: ``pod_ready`` for the prediction: the fake's readiness delay, or empty (probes).
    pod_ready: str
    stored: Callable[[], dict[str, Any]]
    fake: FakeKube | None = None


def _patch_image(source: ClusterSource, namespace: str, image: str, cause: str) -> None:
    patch = {
        "metadata": {"annotations": {"kubernetes.io/change-cause": cause}},
        "spec": {"template": {"spec": {"containers": [{"name": "web", "image": image}]}}},
    }
    source.patch("Deployment", namespace, "web", patch, patch_type=MERGE_PATCH)


@contextmanager
def fake_target(tmp_path: Path) -> Iterator[DrillTarget]:
    """Yield the fake API server with ``shop/web`` rolled from image 1 to image 2."""
    fake = FakeKube().start()
    kubeconfig = fake.write_kubeconfig(tmp_path / "kubeconfig", context="fake")
    timing = PodTiming(default_ready_s=FAKE_READY_S)
    controller = DeploymentController(fake, tick_s=0.02, timing=timing).start()
    source = ClusterSource("fake", kubeconfig=str(kubeconfig))
    images = ("example.org/web:1", "example.org/web:2")
    try:
        fake.add(web_deployment(images[0]))
        wait_rolled_out(fake)
        _patch_image(source, "shop", images[1], "release 2")
        wait_rolled_out(fake)

        def stored() -> dict[str, Any]:
            return next(d for d in fake.objects("Deployment") if d["metadata"]["name"] == "web")

        yield DrillTarget(
            kubeconfig, "fake", "shop", images, 3 * FAKE_READY_S, str(FAKE_READY_S), stored, fake
        )
    finally:
        source.close()
        controller.stop()
        fake.stop()


@contextmanager
def real_target(kubeconfig: Path, context: str | None) -> Iterator[DrillTarget]:
    """Yield a real cluster's fresh namespace with ``web`` at revision 2; delete it afterwards."""
    from kubernetes import client, config

    api = config.new_client_from_config(config_file=str(kubeconfig), context=context)
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    if context is None:
        _, active = config.list_kube_config_contexts(config_file=str(kubeconfig))
        context = active["name"]
    namespace = f"rknb-drill-{uuid.uuid4().hex[:8]}"
    core.create_namespace({"metadata": {"name": namespace}})
    source = ClusterSource(context, kubeconfig=str(kubeconfig))
    try:
        body = web_deployment(REAL_IMAGES[0])
        body["metadata"]["namespace"] = namespace
        apps.create_namespaced_deployment(namespace, body)
        _wait_real(source, namespace)
        _patch_image(source, namespace, REAL_IMAGES[1], "release 2")
        _wait_real(source, namespace)
        yield DrillTarget(
            kubeconfig,
            context,
            namespace,
            REAL_IMAGES,
            0.0,
            "",
            lambda: source.get("Deployment", namespace, "web"),
        )
    finally:
        source.close()
        core.delete_namespace(namespace)


def _wait_real(source: ClusterSource, namespace: str, timeout_s: float = 180.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        d = source.get("Deployment", namespace, "web")
        s = d.get("status") or {}
        if (
            s.get("observedGeneration") == d["metadata"].get("generation")
            and s.get("updatedReplicas") == s.get("availableReplicas") == s.get("replicas") == 3
        ):
            return
        time.sleep(1)
    raise AssertionError(f"web in {namespace} did not roll out within {timeout_s:g} s")


@contextmanager
def drill_target(tmp_path: Path) -> Iterator[DrillTarget]:
    """Yield the real cluster named by ``RKNB_DRILL_KUBECONFIG``, else the fake."""
    kubeconfig = os.environ.get(KUBECONFIG_ENV, "")
    if kubeconfig:
        with real_target(Path(kubeconfig), os.environ.get(CONTEXT_ENV) or None) as target:
            yield target
    else:
        with fake_target(tmp_path) as target:
            yield target
