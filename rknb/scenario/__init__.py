"""The embedded demo: a deterministic, seeded 14-day history of the seed service.

With no parameters every notebook runs on this scenario. It is ground truth:
:attr:`Scenario.facts` lists what was planted, and tests check that the
notebooks find it from the raw series and objects alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from rknb.scenario import model
from rknb.scenario.export import write_manifests, write_openmetrics
from rknb.scenario.facts import Fact, build_facts, find_fact
from rknb.scenario.objects import build_objects
from rknb.tsdb import SeriesStore

__all__ = [
    "DAYS",
    "DEFAULT_SEED",
    "END",
    "SCRAPE_INTERVAL_S",
    "Fact",
    "Scenario",
    "build_scenario",
    "clear_cache",
    "write_manifests",
    "write_openmetrics",
]

DEFAULT_SEED = 42
END = datetime(2026, 11, 30, 0, 0, tzinfo=UTC)  # a Monday, 00:00 UTC
SCRAPE_INTERVAL_S = 30
DAYS = 14


@dataclass(frozen=True)
class Scenario:
    """The scenario for one seed: raw series, objects at the end, and the planted facts."""

    seed: int
    start: datetime
    end: datetime
    store: SeriesStore
    objects: list[dict[str, Any]]
    facts: list[Fact]

    def fact(self, fact_id: str) -> Fact:
        """Return the planted fact with this id (``ScenarioError`` lists the known ids)."""
        return find_fact(self.facts, fact_id)


def build_scenario(seed: int | None = DEFAULT_SEED, *, growth: bool = True) -> Scenario:
    """Return the scenario for a seed; the same seed always gives the same scenario.

    The result is cached and shared: treat its store and objects as read-only.

    Parameters
    ----------
    seed
        Seed of ``numpy.random.default_rng``; it moves times and magnitudes within ranges.
        ``None`` means :data:`DEFAULT_SEED`.
    growth
        Whether traffic grows about 4 % a week; without it the level stays at the end's.

    Returns
    -------
    Scenario
        The raw series, the objects at the end, and the planted facts.
    """
    return _build(DEFAULT_SEED if seed is None else int(seed), growth)


def clear_cache() -> None:
    """Forget every built scenario (tests use it to check that a rebuild is identical)."""
    _build.cache_clear()


@lru_cache(maxsize=4)
def _build(seed: int, growth: bool) -> Scenario:
    start = END - timedelta(days=DAYS)
    plan = model.draw_plan(
        seed, growth, int(start.timestamp()), int(END.timestamp()), SCRAPE_INTERVAL_S
    )
    sim = model.simulate(plan)
    store = SeriesStore()
    other_pods = model.build_series(sim, store)
    objects = build_objects(sim, other_pods)
    facts = build_facts(sim, store, other_pods)
    return Scenario(seed, start, END, store, objects, facts)
