"""The ``hpa`` conformance runner: upstream's HPA test tables through rknb's controller.

A vector file (schema in ``/work/shared/conformance/hpa/SPEC.md`` §18) is a
JSON list of cases, each naming the upstream function it pins and giving its
inputs and expected answer. Times in vectors are seconds before "now"; here
"now" is 0 and every timestamp is ``-age``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from rknb import _hpa_controller as ctl
from rknb.conformance import CaseResult, Status, Summary
from rknb.errors import ParameterError

__all__ = ["evaluate_case", "load_vectors", "run"]

_NOW = 0.0


def load_vectors(path: Path) -> list[dict[str, Any]]:
    """Return the cases of one vector file (or of every ``*.json`` in a folder)."""
    files = sorted(path.glob("*.json")) if path.is_dir() else [path]
    cases: list[dict[str, Any]] = []
    for file in files:
        try:
            data = json.loads(file.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ParameterError("paths", f"cannot read HPA vectors {file}: {exc}") from exc
        if not isinstance(data, list):
            raise ParameterError("paths", f"{file} is not a JSON list of HPA vectors")
        cases.extend(data)
    return cases


def _at(age_s: float | None) -> float | None:
    return None if age_s is None else _NOW - float(age_s)


def _container(raw: Mapping[str, Any]) -> ctl.Container:
    return ctl.Container(
        name=raw["name"],
        requests_m=dict(raw.get("requests_m") or {}),
        restartable=raw.get("restart_policy") == "Always",
    )


def _pod(raw: Mapping[str, Any]) -> ctl.Pod:
    return ctl.Pod(
        name=raw["name"],
        phase=raw.get("phase", "Running"),
        deleted=bool(raw.get("deleted", False)),
        ready=raw.get("ready"),
        ready_transition_s=_at(raw.get("ready_transition_ago_s", 0)) or 0.0,
        start_s=_at(raw.get("start_ago_s")),
        containers=tuple(_container(c) for c in raw.get("containers", [])),
        init_containers=tuple(_container(c) for c in raw.get("init_containers", [])),
        pod_requests_m=raw.get("pod_requests_m"),
    )


def _pods(inputs: Mapping[str, Any]) -> list[ctl.Pod]:
    return [_pod(p) for p in inputs.get("pods") or []]


def _items(raw: Sequence[Mapping[str, Any]]) -> list[ctl.ResourceMetricsItem]:
    return [
        ctl.ResourceMetricsItem(
            pod=m["pod"],
            timestamp_s=_at(m.get("timestamp_ago_s", 0)) or 0.0,
            window_s=float(m.get("window_s", 60)),
            containers=tuple(
                ctl.ContainerUsage(c["name"], dict(c.get("usage_m") or {}))
                for c in m.get("containers", [])
            ),
        )
        for m in raw
    ]


def _pod_metrics(raw: Sequence[Mapping[str, Any]]) -> dict[str, ctl.PodMetric]:
    return {
        m["pod"]: ctl.PodMetric(
            int(m["value_m"]),
            _at(m.get("timestamp_ago_s", 0)) or 0.0,
            float(m.get("window_s") or 60),
        )
        for m in raw
    }


def _tol(inputs: Mapping[str, Any]) -> ctl.Tolerances:
    raw = inputs.get("tolerance") or {}
    return ctl.Tolerances(float(raw.get("scale_up", 0.1)), float(raw.get("scale_down", 0.1)))


def _config(inputs: Mapping[str, Any]) -> ctl.ControllerConfig:
    return ctl.ControllerConfig(
        cpu_initialization_period_s=float(inputs.get("cpu_initialization_period_s", 300)),
        initial_readiness_delay_s=float(inputs.get("initial_readiness_delay_s", 30)),
    )


def _rules(raw: Mapping[str, Any] | None) -> ctl.ScalingRules | None:
    if raw is None:
        return None
    window = raw.get("stabilization_window_s")
    tolerance = raw.get("tolerance")
    return ctl.ScalingRules(
        stabilization_window_s=None if window is None else int(window),
        select_policy=raw.get("select_policy", "Max"),
        policies=tuple(
            ctl.Policy(p["type"], int(p["value"]), int(p["period_s"]))
            for p in raw.get("policies", [])
        ),
        tolerance=None if tolerance is None else float(tolerance),
    )


def _events(raw: Sequence[Mapping[str, Any]] | None) -> list[ctl.ScaleEvent]:
    return [
        ctl.ScaleEvent(int(e["replica_change"]), _NOW - float(e["age_s"]), bool(e.get("outdated")))
        for e in raw or []
    ]


def _recs(raw: Sequence[Mapping[str, Any]]) -> list[ctl.Recommendation]:
    return [ctl.Recommendation(int(r["replicas"]), _NOW - float(r["age_s"])) for r in raw]


def _failure(exc: ctl.MetricError) -> dict[str, Any]:
    return {"error": str(exc)}


# ---------------------------------------------------------------- per function


def _resource(i: Mapping[str, Any]) -> dict[str, Any]:
    container = i.get("container") or ""
    try:
        metrics = ctl.resource_pod_metrics(_items(i["resource_metrics"]), i["resource"], container)
        replicas, util, raw = ctl.resource_replicas(
            int(i["current_replicas"]),
            int(i["target_utilization"]),
            i["resource"],
            _tol(i),
            _pods(i),
            metrics,
            container=container,
            config=_config(i),
            now=_NOW,
        )
    except ctl.MetricError as exc:
        return _failure(exc)
    return {"replicas": replicas, "utilization": util, "raw_value_m": raw}


def _plain(i: Mapping[str, Any]) -> dict[str, Any]:
    try:
        replicas, usage = ctl.plain_replicas(
            int(i["current_replicas"]),
            int(i["target_m"]),
            "",
            _tol(i),
            _pods(i),
            _pod_metrics(i["pod_metrics"]),
            config=_config(i),
            now=_NOW,
        )
    except ctl.MetricError as exc:
        return _failure(exc)
    return {"replicas": replicas, "usage_m": usage}


def _object(i: Mapping[str, Any]) -> dict[str, Any]:
    try:
        replicas, usage = ctl.object_replicas(
            int(i["current_replicas"]),
            int(i["target_m"]),
            int(i["object_metric"]["value_m"]),
            _tol(i),
            _pods(i),
        )
    except ctl.MetricError as exc:
        return _failure(exc)
    return {"replicas": replicas, "usage_m": usage}


def _external(i: Mapping[str, Any]) -> dict[str, Any]:
    try:
        replicas, usage = ctl.external_replicas(
            int(i["current_replicas"]),
            int(i["target_m"]),
            [int(v) for v in i["external_metrics"]["values_m"]],
            _tol(i),
            _pods(i),
        )
    except ctl.MetricError as exc:
        return _failure(exc)
    return {"replicas": replicas, "usage_m": usage}


def _per_pod(i: Mapping[str, Any]) -> dict[str, Any]:
    if "object_metric" in i:
        usage_m = int(i["object_metric"]["value_m"])
    else:
        usage_m = ctl.sum_capped(int(v) for v in i["external_metrics"]["values_m"])
    replicas, average = ctl.per_pod_replicas(
        int(i["current_replicas"]), int(i["target_m"]), usage_m, _tol(i)
    )
    return {"replicas": replicas, "usage_m": average}


def _grouping(i: Mapping[str, Any]) -> dict[str, Any]:
    metrics = {
        m["pod"]: ctl.PodMetric(0, _at(m.get("timestamp_ago_s", 0)) or 0.0, float(m["window_s"]))
        for m in i.get("metrics") or []
    }
    ready, unready, missing, ignored = ctl.group_pods(
        _pods(i),
        metrics,
        i["resource"],
        float(i["cpu_initialization_period_s"]),
        float(i["initial_readiness_delay_s"]),
        _NOW,
    )
    return {
        "ready_count": ready,
        "unready": sorted(unready),
        "missing": sorted(missing),
        "ignored": sorted(ignored),
    }


def _requests(i: Mapping[str, Any]) -> dict[str, Any]:
    try:
        out = ctl.calculate_requests(
            _pods(i),
            i.get("container") or "",
            i["resource"],
            pod_level_resources=bool(i.get("pod_level_resources_gate")),
        )
    except ctl.MetricError as exc:
        return _failure(exc)
    return {"requests_m": out}


def _rate_behavior(i: Mapping[str, Any]) -> dict[str, Any]:
    up, down = _rules(i["scale_up_rules"]), _rules(i["scale_down_rules"])
    assert up is not None and down is not None
    replicas, reason = ctl.rate_limit_behavior(
        int(i["current_replicas"]),
        int(i["desired_replicas"]),
        int(i["min_replicas"]),
        int(i["max_replicas"]),
        up,
        down,
        _events(i.get("scale_up_events")),
        _events(i.get("scale_down_events")),
        _NOW,
    )
    return {"replicas": replicas, "reason": reason}


def _rate_legacy(i: Mapping[str, Any]) -> dict[str, Any]:
    replicas, reason = ctl.rate_limit_legacy(
        int(i["current_replicas"]),
        int(i["desired_replicas"]),
        int(i["min_replicas"]),
        int(i["max_replicas"]),
        float(i.get("scale_up_limit_factor", 2.0)),
        float(i.get("scale_up_limit_minimum", 4.0)),
    )
    return {"replicas": replicas, "reason": reason}


def _limit(function: Callable[..., int]) -> Callable[[Mapping[str, Any]], dict[str, Any]]:
    def evaluate(i: Mapping[str, Any]) -> dict[str, Any]:
        rules = _rules(i["rules"])
        assert rules is not None
        limit = function(
            int(i["current_replicas"]),
            _events(i.get("scale_up_events")),
            _events(i.get("scale_down_events")),
            rules,
            _NOW,
        )
        return {"limit": limit}

    return evaluate


def _stabilize_legacy(i: Mapping[str, Any]) -> dict[str, Any]:
    recs = _recs(i["recommendations"])
    replicas = ctl.stabilize_legacy(recs, int(i["desired_replicas"]), float(i["window_s"]), _NOW)
    return {"replicas": replicas, "recommendations_after_count": len(recs)}


def _stabilize_behavior(i: Mapping[str, Any]) -> dict[str, Any]:
    recs = _recs(i["recommendations"])
    replicas, _ = ctl.stabilize_behavior(
        recs,
        int(i["current_replicas"]),
        int(i["desired_replicas"]),
        float(i["scale_up_window_s"]),
        float(i["scale_down_window_s"]),
        _NOW,
    )
    return {"replicas": replicas, "recommendations_after": [r.replicas for r in recs]}


def _store_event(i: Mapping[str, Any]) -> dict[str, Any]:
    rules = _rules(i["rules"])
    events = _events(i["events_before"])
    before = ctl.replicas_changed_within(events, 60, _NOW)
    history = ctl.History(recommendations=[])
    behavior: ctl.Behavior | None = None
    if rules is not None:
        behavior = ctl.Behavior(scale_up=rules, scale_down=rules)
    if i["direction"] == "up":
        history.scale_up_events = events
    else:
        history.scale_down_events = events
    ctl.store_scale_event(behavior, history, int(i["prev_replicas"]), int(i["new_replicas"]), _NOW)
    after = history.scale_up_events if i["direction"] == "up" else history.scale_down_events
    return {
        "replicas_change_last_60s_before": before,
        "events_after": [
            {"replica_change": e.replica_change, "outdated": e.outdated} for e in after
        ],
    }


def metric_spec(raw: Mapping[str, Any]) -> ctl.MetricSpec:
    """Return a vector's metric spec as the controller's :class:`MetricSpec`."""
    target = raw.get("target") or {}
    kind = raw.get("type", "")
    return ctl.MetricSpec(
        type=kind,
        name=raw.get("resource") or raw.get("metric") or "",
        container=raw.get("container") or "",
        average_utilization=target.get("average_utilization"),
        average_value_m=target.get("average_value_m"),
        value_m=target.get("value_m"),
        target_type=target.get("type", ""),
    )


def _controller(i: Mapping[str, Any]) -> dict[str, Any]:
    raw_config = i["config"]
    config = ctl.ControllerConfig(
        tolerance=float(raw_config.get("tolerance", 0.1)),
        cpu_initialization_period_s=float(raw_config.get("cpu_initialization_period_s", 300)),
        initial_readiness_delay_s=float(raw_config.get("initial_readiness_delay_s", 30)),
        downscale_stabilization_window_s=float(
            raw_config.get("downscale_stabilization_window_s", 300)
        ),
        scale_up_limit_factor=float(raw_config.get("scale_up_limit_factor", 2.0)),
        scale_up_limit_minimum=float(raw_config.get("scale_up_limit_minimum", 4.0)),
    )
    raw_gates = i.get("feature_gates") or {}
    gates = ctl.FeatureGates(
        configurable_tolerance=bool(raw_gates.get("HPAConfigurableTolerance", False)),
        scale_to_zero=bool(raw_gates.get("HPAScaleToZero", False)),
        pod_level_resources=bool(raw_gates.get("PodLevelResources", False)),
    )
    raw_hpa = i["hpa"]
    behavior = None
    if raw_hpa.get("behavior") is not None:
        up = _rules(raw_hpa["behavior"].get("scale_up")) or ctl.default_scale_up_rules()
        down = _rules(raw_hpa["behavior"].get("scale_down")) or ctl.default_scale_down_rules()
        behavior = ctl.Behavior(up, down)
    hpa = ctl.HpaSpec(
        max_replicas=int(raw_hpa["max_replicas"]),
        min_replicas=raw_hpa.get("min_replicas"),
        metrics=tuple(metric_spec(m) for m in raw_hpa.get("metrics") or []),
        behavior=behavior,
    )
    pod_metrics = _pod_metrics(i.get("pod_metrics") or [])
    names = {m.name for m in hpa.metrics}
    object_value = (i.get("object_metric") or {}).get("value_m")
    external = (i.get("external_metrics") or {}).get("values_m")
    world = ctl.World(
        pods=_pods(i),
        resource_metrics=_items(i.get("resource_metrics") or []),
        pod_metrics={n: pod_metrics for n in names},
        object_values_m={n: int(object_value) for n in names} if object_value is not None else {},
        external_values_m={n: [int(v) for v in external] for n in names} if external else {},
        failing_sources=frozenset(i.get("metric_errors") or []),
    )
    raw_history = i.get("history") or {}
    recs = raw_history.get("recommendations")
    history = ctl.History(
        recommendations=None if recs is None else _recs(recs),
        scale_up_events=_events(raw_history.get("scale_up_events")),
        scale_down_events=_events(raw_history.get("scale_down_events")),
    )
    conditions = {
        c["type"]: (c.get("status", ""), c.get("reason", ""))
        for c in i.get("status_conditions") or []
    }
    decision = ctl.reconcile(
        hpa,
        spec_replicas=int(i["scale"]["spec_replicas"]),
        status_replicas=int(i["scale"]["status_replicas"]),
        world=world,
        history=history,
        now=_NOW,
        config=config,
        gates=gates,
        status_conditions=conditions,
    )
    return {"desired_replicas": decision.desired_replicas, "conditions": decision.conditions}


_FUNCTIONS: dict[str, Callable[[Mapping[str, Any]], dict[str, Any]]] = {
    "GetResourceReplicas": _resource,
    "GetMetricReplicas": _plain,
    "GetObjectMetricReplicas": _object,
    "GetExternalMetricReplicas": _external,
    "GetObjectPerPodMetricReplicas": _per_pod,
    "GetExternalPerPodMetricReplicas": _per_pod,
    "groupPods": _grouping,
    "calculateRequests": _requests,
    "rate_limit_behavior": _rate_behavior,
    "rate_limit_legacy": _rate_legacy,
    "scale_up_limit": _limit(ctl.scale_up_limit),
    "scale_down_limit": _limit(ctl.scale_down_limit),
    "stabilize_legacy": _stabilize_legacy,
    "stabilize_behavior": _stabilize_behavior,
    "store_scale_event": _store_event,
    "reconcileAutoscaler": _controller,
}


def _matches(expected: Mapping[str, Any], actual: Mapping[str, Any]) -> bool:
    if "error" in expected:
        return "error" in actual and str(expected["error"]).lower() in actual["error"].lower()
    return all(actual.get(k) == v for k, v in expected.items())


def evaluate_case(case: Mapping[str, Any]) -> CaseResult:
    """Return the result of one vector: passed when every expected key matches."""
    name = str(case.get("name", "?"))
    function = _FUNCTIONS.get(str(case.get("function")))
    if function is None:
        return CaseResult(name, "failed", case.get("expected"), None, "unknown function")
    try:
        actual = function(case["inputs"])
    except (KeyError, TypeError, ValueError, ctl.MetricError) as exc:
        detail = f"{type(exc).__name__}: {exc}"
        return CaseResult(name, "failed", case.get("expected"), None, detail)
    expected = case["expected"]
    status: Status = "passed" if _matches(expected, actual) else "failed"
    return CaseResult(name, status, expected, actual)


def run(paths: Sequence[Path]) -> Summary:
    """Return the summary of every case in the given vector files."""
    summary = Summary(area="hpa")
    for path in paths:
        for case in load_vectors(path):
            summary.results.append(evaluate_case(case))
    return summary
