"""Writing the scenario out: OpenMetrics text for promtool, and YAML manifests.

The OpenMetrics file is what ``promtool tsdb create-blocks-from openmetrics``
backfills into a real Prometheus, so the rules it is strict about are kept
here: timestamps in seconds, every series in increasing time order, no blank
line, ``# EOF`` last. Values are written so that they parse back to the
exact float64 in the store.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rknb.tsdb import RawSeries
from rknb.yamlfile import dump_yaml

if TYPE_CHECKING:
    from rknb.scenario import Scenario

__all__ = ["family_of", "openmetrics_lines", "write_manifests", "write_openmetrics"]

#: Metric families and their OpenMetrics types; the family name drops the sample suffix.
_FAMILIES: dict[str, tuple[str, str]] = {
    "mcp_requests_total": ("mcp_requests", "counter"),
    "mcp_request_duration_seconds_bucket": ("mcp_request_duration_seconds", "histogram"),
    "mcp_request_duration_seconds_sum": ("mcp_request_duration_seconds", "histogram"),
    "mcp_request_duration_seconds_count": ("mcp_request_duration_seconds", "histogram"),
    "container_cpu_usage_seconds_total": ("container_cpu_usage_seconds", "counter"),
    "kube_pod_container_status_restarts_total": (
        "kube_pod_container_status_restarts",
        "counter",
    ),
}


def family_of(metric: str) -> tuple[str, str]:
    """Return the OpenMetrics family name and type of a sample's metric name."""
    return _FAMILIES.get(metric, (metric, "gauge"))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _format_values(values: np.ndarray) -> list[str]:
    """Return each value as the shortest text that parses back to the same float64."""
    finite = bool(np.all(np.isfinite(values)))
    if finite and np.all(values == np.floor(values)) and np.all(np.abs(values) < 2**53):
        return [str(v) for v in values.astype(np.int64).tolist()]
    return [repr(v) for v in values.tolist()]


def _series_text(series: RawSeries, ts_text: dict[int, str]) -> str:
    """Return the sample lines of one series, oldest first."""
    labels = ",".join(f'{k}="{_escape(v)}"' for k, v in series.labels)
    prefix = f"{series.name}{{{labels}}} " if labels else f"{series.name} "
    values = _format_values(series.values)
    stamps = [ts_text[t] for t in series.t_s.tolist()]
    return "".join([f"{prefix}{v} {t}\n" for v, t in zip(values, stamps, strict=True)])


def openmetrics_lines(series: Iterable[RawSeries]) -> Iterator[str]:
    """Yield OpenMetrics text chunks for the series: a TYPE line per family, then ``# EOF``."""
    by_family: dict[str, list[RawSeries]] = {}
    types: dict[str, str] = {}
    for s in series:
        family, kind = family_of(s.name)
        by_family.setdefault(family, []).append(s)
        types[family] = kind
    ts_text: dict[int, str] = {}
    for family in sorted(by_family):
        yield f"# TYPE {family} {types[family]}\n"
        members = sorted(by_family[family], key=lambda s: (s.labels, s.name))
        for s in members:
            for t in s.t_s.tolist():
                if t not in ts_text:
                    ts_text[t] = str(t)
            yield _series_text(s, ts_text)
    yield "# EOF\n"


def write_openmetrics(scenario: Scenario, path: str | os.PathLike[str]) -> int:
    """Write the scenario's series as OpenMetrics text for promtool; return the bytes written."""
    written = 0
    with open(path, "w", encoding="utf-8", newline="\n") as out:
        for chunk in openmetrics_lines(scenario.store):
            out.write(chunk)
            written += len(chunk.encode("utf-8")) if not chunk.isascii() else len(chunk)
    return written


_KIND_FILES = {
    "Namespace": "namespaces",
    "Node": "nodes",
    "Secret": "secrets",
    "Deployment": "deployments",
    "ReplicaSet": "replicasets",
    "Pod": "pods",
    "Service": "services",
    "HorizontalPodAutoscaler": "horizontalpodautoscalers",
    "PodDisruptionBudget": "poddisruptionbudgets",
    "NetworkPolicy": "networkpolicies",
    "PrometheusRule": "prometheusrules",
}


def write_manifests(scenario: Scenario, directory: str | os.PathLike[str]) -> list[Path]:
    """Write every object as multi-document YAML, one file per kind; return the files written."""
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for obj in scenario.objects:
        by_kind.setdefault(obj["kind"], []).append(obj)
    written = []
    for kind, objects in by_kind.items():
        name = _KIND_FILES.get(kind, kind.lower() + "s")
        path = folder / f"{name}.yaml"
        path.write_text("---\n".join(dump_yaml(o) for o in objects), encoding="utf-8")
        written.append(path)
    return written
