"""The embedded demo: the scenario's history as a metrics source and an object source.

The scenario is imported and built only when the demo is opened, so that
importing :mod:`rknb.sources` stays cheap; :func:`rknb.scenario.build_scenario`
caches what it builds, so opening both sources builds the history once.
"""

from __future__ import annotations

from rknb.sources.base import MetricsSource, ObjectSource
from rknb.sources.objects import ObjectListSource

__all__ = ["open_demo"]


def open_demo(
    seed: int | None = None, *, growth: bool = True
) -> tuple[MetricsSource, ObjectSource]:
    """Return the demo scenario's metrics and object sources for a seed (the default when None).

    ``growth=False`` holds the traffic level flat: the same history without its trend.
    """
    from rknb.scenario import build_scenario
    from rknb.sources.model import StoreMetricsSource

    scenario = build_scenario(seed, growth=growth)
    used_seed = getattr(scenario, "seed", seed)
    description = "demo scenario" if used_seed is None else f"demo scenario (seed {used_seed})"
    if not growth:
        description += ", no growth"
    metrics = StoreMetricsSource(
        scenario.store, reference_time=scenario.end, description=description
    )
    objects = ObjectListSource(
        scenario.objects, description=description, reference_time=scenario.end
    )
    return metrics, objects
