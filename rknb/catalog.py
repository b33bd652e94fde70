"""The catalog of named queries: the contract between notebooks and sources.

Notebooks ask a metrics source for a query *by name*, for a selector and a
time range. A live source renders the catalog entry to PromQL; the demo
scenario and bundles answer the same entry from their own data. Every query
is therefore a small structure (metric, matchers, range function, window,
aggregation) rather than a PromQL string, so that it can be both rendered
and evaluated, and so that a site whose metrics are named differently
overrides one entry here instead of five notebooks.

Overrides come from a YAML file named by ``RKNB_CATALOG`` (or passed to
:func:`load_catalog`): a mapping of query name to the fields to replace, for
example ``container_memory_bytes: {metric: container_memory_rss}``, or a
``promql`` template for live sources only.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal

from rknb.errors import ParameterError
from rknb.times import format_duration

__all__ = [
    "CATALOG",
    "Matcher",
    "Query",
    "Selector",
    "escape_label_value",
    "get_query",
    "load_catalog",
    "render_promql",
]

MatchOp = Literal["=", "!=", "=~", "!~"]
Function = Literal["rate", "increase", "last", "max_over_time"]


@dataclass(frozen=True)
class Matcher:
    """One label matcher, as in ``{pod=~"web-.*"}``."""

    label: str
    op: MatchOp
    value: str

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Return whether a series with these labels satisfies the matcher."""
        actual = labels.get(self.label, "")
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        # PromQL regexes are fully anchored.
        found = re.fullmatch(self.value, actual) is not None
        return found if self.op == "=~" else not found


@dataclass(frozen=True)
class Selector:
    """What a query is about: a namespace, a workload, a container, extra labels.

    ``workload`` is a Deployment name; its pods are matched by the name
    pattern the Deployment controller gives them (``<workload>-<hash>-<id>``).
    """

    namespace: str | None = None
    workload: str | None = None
    container: str | None = None
    labels: tuple[tuple[str, str], ...] = ()

    def describe(self) -> str:
        """Return a short human spelling such as ``reasonkit/reasonkit-pro-mcp``."""
        parts = [self.namespace or "*", self.workload or "*"]
        text = "/".join(parts)
        if self.container:
            text += f" container={self.container}"
        for key, value in self.labels:
            text += f" {key}={value}"
        return text


_REGEX_META = re.compile(r"([.^$*+?()\[\]{}|\\])")


def regex_escape(text: str) -> str:
    """Return text with RE2's metacharacters escaped (hyphens stay readable)."""
    return _REGEX_META.sub(r"\\\1", text)


def pod_pattern(workload: str) -> str:
    """Return the regex that matches the names of a Deployment's pods."""
    return regex_escape(workload) + r"-[a-z0-9]{5,10}-[a-z0-9]{5}"


def replicaset_pattern(workload: str) -> str:
    """Return the regex that matches the names of a Deployment's ReplicaSets."""
    return regex_escape(workload) + r"-[a-z0-9]{5,10}"


@dataclass(frozen=True)
class Query:
    """A named, documented query over standard metric names."""

    name: str
    help: str
    unit: str
    metric: str
    function: Function
    window_s: float = 300.0
    matchers: tuple[Matcher, ...] = ()
    by: tuple[str, ...] | None = None
    aggregation: Literal["sum", "max"] = "sum"
    workload_label: str | None = "pod"
    workload_match: Literal["pod", "replicaset", "exact"] = "pod"
    container_label: str | None = "container"
    promql: str | None = field(default=None, compare=False)

    def selector_matchers(self, selector: Selector) -> tuple[Matcher, ...]:
        """Return the static matchers plus those the selector adds."""
        out = list(self.matchers)
        if selector.namespace:
            out.append(Matcher("namespace", "=", selector.namespace))
        if selector.workload and self.workload_label:
            if self.workload_match == "exact":
                out.append(Matcher(self.workload_label, "=", selector.workload))
            elif self.workload_match == "replicaset":
                pattern = replicaset_pattern(selector.workload)
                out.append(Matcher(self.workload_label, "=~", pattern))
            else:
                out.append(Matcher(self.workload_label, "=~", pod_pattern(selector.workload)))
        if selector.container and self.container_label:
            out.append(Matcher(self.container_label, "=", selector.container))
        out.extend(Matcher(key, "=", value) for key, value in selector.labels)
        return tuple(out)


def escape_label_value(value: str) -> str:
    """Return a label value escaped for a double-quoted PromQL string."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render_promql(query: Query, selector: Selector, *, window_s: float | None = None) -> str:
    """Return the PromQL text of a catalog query for a selector."""
    window = format_duration(window_s if window_s is not None else query.window_s)
    matchers = query.selector_matchers(selector)
    body = ", ".join(f'{m.label}{m.op}"{escape_label_value(m.value)}"' for m in matchers)
    series = f"{query.metric}{{{body}}}"
    if query.promql is not None:
        return query.promql.format(selector=body, window=window, series=series)

    if query.function in ("rate", "increase", "max_over_time"):
        expr = f"{query.function}({series}[{window}])"
    else:
        expr = series
    if query.by is not None:
        expr = f"{query.aggregation} by ({', '.join(query.by)}) ({expr})"
    return expr


_POD = ("namespace", "pod", "container")
_CONTAINER = (Matcher("container", "!=", ""), Matcher("container", "!=", "POD"))

CATALOG: dict[str, Query] = {
    q.name: q
    for q in [
        Query(
            "container_cpu_cores",
            "CPU used per container, from cAdvisor's CPU-seconds counter.",
            "cores",
            "container_cpu_usage_seconds_total",
            "rate",
            matchers=_CONTAINER,
            by=_POD,
        ),
        Query(
            "container_memory_bytes",
            "Working-set memory per container (what the OOM killer and kubelet eviction see).",
            "bytes",
            "container_memory_working_set_bytes",
            "last",
            matchers=_CONTAINER,
            by=_POD,
            aggregation="max",
        ),
        Query(
            "container_memory_peak_bytes",
            "Highest working-set memory per container within each 5-minute window: a "
            "range query at a 5-minute step sees every sample, so no peak falls between steps.",
            "bytes",
            "container_memory_working_set_bytes",
            "max_over_time",
            matchers=_CONTAINER,
            by=_POD,
            aggregation="max",
        ),
        Query(
            "container_cpu_request_cores",
            "CPU request per container, from kube-state-metrics.",
            "cores",
            "kube_pod_container_resource_requests",
            "last",
            matchers=(Matcher("resource", "=", "cpu"),),
            by=_POD,
        ),
        Query(
            "container_memory_request_bytes",
            "Memory request per container, from kube-state-metrics.",
            "bytes",
            "kube_pod_container_resource_requests",
            "last",
            matchers=(Matcher("resource", "=", "memory"),),
            by=_POD,
        ),
        Query(
            "container_cpu_limit_cores",
            "CPU limit per container, from kube-state-metrics.",
            "cores",
            "kube_pod_container_resource_limits",
            "last",
            matchers=(Matcher("resource", "=", "cpu"),),
            by=_POD,
        ),
        Query(
            "container_memory_limit_bytes",
            "Memory limit per container, from kube-state-metrics.",
            "bytes",
            "kube_pod_container_resource_limits",
            "last",
            matchers=(Matcher("resource", "=", "memory"),),
            by=_POD,
        ),
        Query(
            "container_restarts",
            "Container restarts counted by the kubelet (a raw counter per container).",
            "restarts",
            "kube_pod_container_status_restarts_total",
            "last",
            by=_POD,
        ),
        Query(
            "container_oom_killed",
            "1 while a container's last termination was an OOM kill, from kube-state-metrics.",
            "boolean",
            "kube_pod_container_status_last_terminated_reason",
            "last",
            matchers=(Matcher("reason", "=", "OOMKilled"),),
            by=_POD,
        ),
        Query(
            "deployment_replicas",
            "Replicas the Deployment has (all ReplicaSets), from kube-state-metrics.",
            "replicas",
            "kube_deployment_status_replicas",
            "last",
            by=("namespace", "deployment"),
            workload_label="deployment",
            workload_match="exact",
            container_label=None,
        ),
        Query(
            "deployment_replicas_available",
            "Available replicas of the Deployment, from kube-state-metrics.",
            "replicas",
            "kube_deployment_status_replicas_available",
            "last",
            by=("namespace", "deployment"),
            workload_label="deployment",
            workload_match="exact",
            container_label=None,
        ),
        Query(
            "replicaset_ready_replicas",
            "Ready replicas per ReplicaSet of the workload, from kube-state-metrics.",
            "replicas",
            "kube_replicaset_status_ready_replicas",
            "last",
            by=("namespace", "replicaset"),
            workload_label="replicaset",
            workload_match="replicaset",
            container_label=None,
        ),
        Query(
            "hpa_desired_replicas",
            "Replicas the HorizontalPodAutoscaler asked for, from kube-state-metrics.",
            "replicas",
            "kube_horizontalpodautoscaler_status_desired_replicas",
            "last",
            by=("namespace", "horizontalpodautoscaler"),
            workload_label=None,
            container_label=None,
        ),
        Query(
            "request_rate",
            "Requests per second by status, from the service's own counter.",
            "requests/s",
            "mcp_requests_total",
            "rate",
            by=("status",),
            container_label=None,
        ),
        Query(
            "request_increase",
            "Requests counted by status over the window, from the service's own counter.",
            "requests",
            "mcp_requests_total",
            "increase",
            by=("status",),
            container_label=None,
        ),
        Query(
            "request_duration_bucket_rate",
            "Per-second rate of the request-duration histogram's buckets, summed by le.",
            "requests/s",
            "mcp_request_duration_seconds_bucket",
            "rate",
            by=("le",),
            container_label=None,
        ),
        Query(
            "request_duration_bucket_increase",
            "Increase of the request-duration histogram's buckets over the window, by le.",
            "requests",
            "mcp_request_duration_seconds_bucket",
            "increase",
            by=("le",),
            container_label=None,
        ),
    ]
}

_OVERRIDABLE = {f.name for f in fields(Query)} - {"name"}


def load_catalog(path: str | os.PathLike[str] | None = None) -> dict[str, Query]:
    """Return the catalog with the overrides of a YAML file applied.

    Parameters
    ----------
    path
        A YAML mapping of query name to replaced fields; ``RKNB_CATALOG`` when
        omitted, and the built-in catalog when neither is set.
    """
    path = path or os.environ.get("RKNB_CATALOG")
    if not path:
        return dict(CATALOG)

    from rknb.yamlfile import load_yaml_file  # the one YAML loader

    documents = load_yaml_file(Path(path))
    overrides: Any = documents[0] if documents else {}
    if not isinstance(overrides, dict):
        raise ParameterError("RKNB_CATALOG", f"{path} must hold a mapping of query names")
    catalog = dict(CATALOG)
    for name, changes in overrides.items():
        if name not in catalog:
            known = ", ".join(sorted(catalog))
            raise ParameterError("RKNB_CATALOG", f"{path}: unknown query {name!r}; known: {known}")
        if not isinstance(changes, dict) or not set(changes) <= _OVERRIDABLE:
            allowed = ", ".join(sorted(_OVERRIDABLE))
            raise ParameterError(
                "RKNB_CATALOG", f"{path}: {name!r} may only set these fields: {allowed}"
            )
        if "matchers" in changes:
            changes = dict(changes)
            changes["matchers"] = tuple(Matcher(**m) for m in changes["matchers"])
        catalog[name] = replace(catalog[name], **changes)
    return catalog


def get_query(name: str, catalog: Mapping[str, Query] | None = None) -> Query:
    """Return the catalog entry called ``name``, or say which names exist."""
    catalog = catalog if catalog is not None else CATALOG
    try:
        return catalog[name]
    except KeyError:
        known = ", ".join(sorted(catalog))
        raise ParameterError("query", f"unknown query {name!r}; known queries: {known}") from None
