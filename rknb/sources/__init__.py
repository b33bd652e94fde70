"""Where data comes from: Prometheus, clusters, manifests, bundles and the demo.

Notebooks take a source *spec*, the string a parameter holds, and open it
here: ``prometheus`` is ``demo`` (or ``demo:SEED``), an ``http(s)://`` URL or
a bundle folder; ``cluster`` is ``demo``, a bundle folder, a manifest file or
folder, ``in-cluster``, or a kubeconfig context name. Credentials are never
part of a spec.

While :data:`~rknb.sources.bundle.RECORD_ENV` names a bundle folder (``rknb
record`` sets it for each notebook's kernel), every source opened here is
wrapped in a recorder that appends each answer to that bundle.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rknb.credentials import redact
from rknb.errors import ParameterError
from rknb.sources.base import (
    SUPPORTED_KINDS,
    KubeObject,
    MetricsSource,
    ObjectSource,
    Window,
    empty_frame,
)
from rknb.sources.cluster import ClusterSource
from rknb.sources.demo import open_demo
from rknb.sources.manifests import ManifestSource, SkippedDocument
from rknb.sources.objects import ObjectListSource

if TYPE_CHECKING:
    from rknb.sources.bundle import (
        RECORD_ENV,
        BundleMetricsSource,
        BundleObjectSource,
        BundleRecorder,
        finish_bundle,
        open_bundle,
        start_bundle,
    )
    from rknb.sources.prometheus import PrometheusSource, live_prometheus

__all__ = [
    "RECORD_ENV",
    "SUPPORTED_KINDS",
    "BundleMetricsSource",
    "BundleObjectSource",
    "BundleRecorder",
    "ClusterSource",
    "KubeObject",
    "ManifestSource",
    "MetricsSource",
    "ObjectListSource",
    "ObjectSource",
    "PrometheusSource",
    "SkippedDocument",
    "Window",
    "empty_frame",
    "finish_bundle",
    "live_prometheus",
    "open_bundle",
    "open_demo",
    "open_metrics",
    "open_objects",
    "redact",
    "reference_time_of",
    "start_bundle",
]

# The bundle and Prometheus modules load numpy and pandas: they are imported on first use,
# so that `rknb audit` (which reads manifests through this package) starts without them.
_LAZY = {
    "RECORD_ENV": "rknb.sources.bundle",
    "BundleMetricsSource": "rknb.sources.bundle",
    "BundleObjectSource": "rknb.sources.bundle",
    "BundleRecorder": "rknb.sources.bundle",
    "bundle_recorded_at": "rknb.sources.bundle",
    "finish_bundle": "rknb.sources.bundle",
    "is_bundle": "rknb.sources.bundle",
    "open_bundle": "rknb.sources.bundle",
    "recording_target": "rknb.sources.bundle",
    "start_bundle": "rknb.sources.bundle",
    "PrometheusSource": "rknb.sources.prometheus",
    "live_prometheus": "rknb.sources.prometheus",
}


def __getattr__(name: str) -> Any:
    """Return a name of the bundle or Prometheus module, importing it on first use."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


_MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")


NO_GROWTH = "nogrowth"


def _demo_seed(spec: str, seed: int | None, name: str) -> tuple[bool, int | None, bool]:
    """Return whether the spec names the demo, its seed, and whether traffic grows.

    ``demo``, ``demo:SEED``, ``demo:nogrowth`` and ``demo:SEED:nogrowth`` (the same
    history with the level held flat, which the capacity backtest compares against).
    """
    if spec == "demo":
        return True, seed, True
    if not spec.startswith("demo:"):
        return False, None, True
    parts = spec.removeprefix("demo:").split(":")
    growth = True
    if parts and parts[-1] == NO_GROWTH:
        growth = False
        parts = parts[:-1]
    if not parts:
        return True, seed, growth
    try:
        (text,) = parts
        return True, int(text), growth
    except ValueError:
        raise ParameterError(
            name,
            f"expected 'demo', 'demo:SEED', 'demo:nogrowth' or 'demo:SEED:nogrowth' with an "
            f"integer seed, got {spec!r}",
        ) from None


def _is_url(spec: str) -> bool:
    return spec.startswith(("http://", "https://"))


def open_metrics(
    spec: str,
    *,
    seed: int | None = None,
    cluster: str | None = None,
    report_time: datetime | None = None,
) -> MetricsSource:
    """Return the metrics source a ``prometheus`` parameter names (recording when asked).

    While ``RKNB_RECORD_BUNDLE`` names a bundle folder, the source is wrapped
    in a :class:`BundleRecorder` that appends every answer to that bundle.

    Parameters
    ----------
    spec
        ``demo``, ``demo:SEED``, an ``http(s)://`` URL, a bundle folder, an
        endpoint named in the configuration (:mod:`rknb.config`), or
        ``config`` for the endpoint the configuration maps ``cluster`` to.
    seed
        The demo scenario's seed when the spec is plain ``demo``.
    cluster
        The ``cluster`` parameter (a kubeconfig context), for ``config``.
    report_time
        The instant a live source's relative times count from.
    """
    return _recorded_metrics(_open_metrics(spec, seed, cluster, report_time), report_time)


def _open_metrics(
    spec: str, seed: int | None, cluster: str | None, report_time: datetime | None
) -> MetricsSource:
    from rknb.sources.bundle import is_bundle, open_bundle
    from rknb.sources.prometheus import live_prometheus

    spec = str(spec).strip()
    is_demo, demo_seed, growth = _demo_seed(spec, seed, "prometheus")
    if is_demo:
        return open_demo(demo_seed, growth=growth)[0]
    if spec and not _is_url(spec) and is_bundle(spec):
        return open_bundle(spec)[0]
    live = live_prometheus(spec, cluster=cluster, report_time=report_time)
    if live is not None:
        return live
    if spec and is_bundle(spec):
        return open_bundle(spec)[0]
    if spec and Path(spec).exists():
        raise ParameterError(
            "prometheus", f"{spec!r} exists but holds no bundle.json, so it is not a bundle folder"
        )
    raise ParameterError(
        "prometheus",
        f"expected 'demo', 'demo:SEED', an http(s):// URL or a bundle folder, got {redact(spec)!r}",
    )


def _recording_into(source: MetricsSource | ObjectSource, name: str) -> Path | None:
    from rknb.sources.bundle import (
        RECORD_ENV,
        BundleMetricsSource,
        BundleObjectSource,
        recording_target,
    )

    target = recording_target()
    if target is None:
        return None
    if (
        isinstance(source, BundleMetricsSource | BundleObjectSource)
        and source.path.resolve() == target.resolve()
    ):
        raise ParameterError(
            name,
            f"replays the bundle {target} that {RECORD_ENV} records into; record into "
            "another folder",
        )
    return target


def _recorded_metrics(source: MetricsSource, report_time: datetime | None) -> MetricsSource:
    target = _recording_into(source, "prometheus")
    if target is None:
        return source
    from rknb.sources.bundle import BundleRecorder

    return BundleRecorder(source, None, target, report_time=report_time, append=True).metrics


def _recorded_objects(source: ObjectSource) -> ObjectSource:
    target = _recording_into(source, "cluster")
    if target is None:
        return source
    from rknb.sources.bundle import BundleRecorder

    return BundleRecorder(None, source, target, append=True).objects


def _kube_contexts(kubeconfig: str | None = None) -> list[str] | None:
    from kubernetes import config

    try:
        contexts, _ = config.list_kube_config_contexts(config_file=kubeconfig)
    except (config.ConfigException, OSError):
        return None
    return [str(c.get("name")) for c in contexts or []]


def open_objects(
    spec: str, *, namespace: str | None = None, kubeconfig: str | None = None
) -> ObjectSource:
    """Return the object source a ``cluster`` parameter names (recording when asked).

    While ``RKNB_RECORD_BUNDLE`` names a bundle folder, the source is wrapped
    in a :class:`BundleRecorder` that appends every object list to that bundle.

    Parameters
    ----------
    spec
        ``demo``, ``demo:SEED``, a bundle folder, a manifest file or folder,
        ``in-cluster``, or a kubeconfig context name.
    namespace
        The namespace a cluster source reads when a call names none.
    kubeconfig
        The kubeconfig file for a context name; ``$KUBECONFIG`` or
        ``~/.kube/config`` when omitted.
    """
    return _recorded_objects(_open_objects(spec, namespace, kubeconfig))


def _open_objects(spec: str, namespace: str | None, kubeconfig: str | None) -> ObjectSource:
    from rknb.sources.bundle import is_bundle, open_bundle

    spec = str(spec).strip()
    is_demo, demo_seed, growth = _demo_seed(spec, None, "cluster")
    if is_demo:
        return open_demo(demo_seed, growth=growth)[1]
    if not spec:
        raise ParameterError("cluster", "is empty; give 'demo', a manifest path or a context name")
    if _is_url(spec):
        raise ParameterError(
            "cluster",
            f"{redact(spec)!r} is a URL; name a kubeconfig context that points at the cluster",
        )
    if is_bundle(spec):
        return open_bundle(spec)[1]
    if Path(spec).exists():
        return ManifestSource(spec)
    if spec == "in-cluster":
        return ClusterSource("in-cluster", namespace=namespace)
    if os.sep in spec or spec.endswith(_MANIFEST_SUFFIXES):
        raise ParameterError("cluster", f"{spec!r} looks like a path but does not exist")

    contexts = _kube_contexts(kubeconfig)
    if contexts is not None and spec not in contexts:
        known = ", ".join(contexts) or "none"
        raise ParameterError(
            "cluster",
            f"{spec!r} is not 'demo', 'in-cluster', a bundle, an existing manifest path or a "
            f"kubeconfig context (contexts: {known})",
        )
    if contexts is None:
        raise ParameterError(
            "cluster",
            f"{spec!r} is not 'demo', 'in-cluster', a bundle or an existing manifest path, and "
            "no kubeconfig was found to look it up as a context",
        )
    return ClusterSource(spec, kubeconfig=kubeconfig, namespace=namespace)


def reference_time_of(spec: str) -> datetime | None:
    """Return a source's reference time without building any data (None for live sources)."""
    spec = str(spec).strip()
    if spec == "demo" or spec.startswith("demo:"):
        _demo_seed(spec, None, "source")
        from rknb.scenario import END

        return END
    from rknb.sources.bundle import bundle_recorded_at, is_bundle

    if spec and not _is_url(spec) and is_bundle(spec):
        return bundle_recorded_at(spec)
    return None
