"""Demo answers the capacity tests share (a module of its own, so tests can import it)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pandas as pd

from rknb import capacity
from rknb.catalog import Selector
from rknb.scenario import build_scenario
from rknb.sources.base import Window
from rknb.sources.model import StoreMetricsSource
from rknb.sources.objects import ObjectListSource


@dataclass(frozen=True)
class Demo:
    """What the capacity notebook reads from one scenario."""

    cpu: pd.DataFrame
    memory: pd.DataFrame
    current: pd.DataFrame
    kills: pd.DataFrame
    objects: list[dict[str, Any]]


def load_demo(seed: int, *, growth: bool = True) -> Demo:
    scenario = build_scenario(seed, growth=growth)
    metrics = StoreMetricsSource(scenario.store, reference_time=scenario.end, description="demo")
    objects = ObjectListSource(scenario.objects, description="demo", reference_time=scenario.end)
    window = Window(start=scenario.end - timedelta(days=14), end=scenario.end, step_s=300)
    everything = Selector()
    cpu = metrics.query_range("container_cpu_cores", everything, window)
    memory = metrics.query_range("container_memory_peak_bytes", everything, window)
    restarts = metrics.query_range("container_restarts", everything, window)
    flags = metrics.query_range("container_oom_killed", everything, window)
    workloads = [
        obj
        for kind in ("Deployment", "StatefulSet", "DaemonSet")
        for obj in objects.list(kind, None)
    ]
    return Demo(
        cpu=cpu,
        memory=memory,
        current=capacity.requests_and_limits(workloads),
        kills=capacity.oom_kills(restarts, flags),
        objects=scenario.objects,
    )
