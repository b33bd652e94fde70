"""The capacity functions find what the demo scenario planted, on its own data."""

from __future__ import annotations

import pytest
from capacity_demo import Demo, load_demo

from rknb import capacity
from rknb.scenario import build_scenario

MIB = 2**20
SERVICE = "reasonkit-pro-mcp"


def row(table, workload):  # type: ignore[no-untyped-def]
    return table[table["workload"] == workload].iloc[0]


@pytest.mark.parametrize("strategy", ["simple", "vpa"])
def test_both_strategies_raise_the_memory_that_hit_its_limit(demo: Demo, strategy: str) -> None:
    got = capacity.recommend(
        strategy, demo.cpu, demo.memory, oom_kills=demo.kills, current=demo.current
    )
    service = row(got, SERVICE)
    now = row(demo.current, SERVICE)
    assert service.memory_request_bytes > now.memory_request_bytes  # 256 MiB today
    assert service.memory_request_bytes > 0.9 * now.memory_limit_bytes


def test_simple_memory_is_the_limit_reached_plus_15_percent(demo: Demo) -> None:
    # The OOM kill reached the 512 MiB limit: 512 x 1.15 = 588.8 MiB, up to 589 MiB.
    got = capacity.recommend("simple", demo.cpu, demo.memory)
    assert row(got, SERVICE).memory_request_bytes == 589 * MIB


def test_vpa_memory_is_bumped_by_the_oom_kill(demo: Demo) -> None:
    quiet = capacity.recommend("vpa", demo.cpu, demo.memory, current=demo.current)
    bumped = capacity.recommend(
        "vpa", demo.cpu, demo.memory, oom_kills=demo.kills, current=demo.current
    )
    # The kill adds one daily peak of max(512 MiB + 100 MiB, 512 MiB x 1.2) among many pods'
    # daily peaks: the p90 target cannot fall, and the note says why it moved.
    assert row(bumped, SERVICE).memory_request_bytes >= row(quiet, SERVICE).memory_request_bytes
    assert "1 OOM kill" in row(bumped, SERVICE)["info"]


@pytest.mark.parametrize("strategy", ["simple", "vpa"])
def test_both_strategies_shrink_the_over_provisioned_workloads(demo: Demo, strategy: str) -> None:
    sc = build_scenario(42)
    got = capacity.recommend(strategy, demo.cpu, demo.memory, current=demo.current)
    for fact in sc.facts:
        if not fact.id.startswith("capacity.overprovisioned."):
            continue
        name = fact.id.rsplit(".", 1)[1]
        recommended = row(got, name)
        # At most twice the planted p95 usage, well under half of today's request.
        assert recommended.cpu_request_cores < 2 * fact.details["cpu_p95_cores"]
        assert recommended.cpu_request_cores < 0.5 * fact.details["cpu_request_cores"]
        assert recommended.memory_request_bytes < fact.details["memory_request_bytes"]


def test_the_forecast_beats_the_naive_forecast_on_the_growing_demo(demo: Demo) -> None:
    demand = capacity.workload_demand(demo.cpu, workload=SERVICE)
    result = capacity.backtest_rolling(demand, horizon_days=2)
    assert result.origins >= 4
    assert result.beats_naive
    forecast = capacity.forecast_peak(demand, horizon_days=28)
    growth = build_scenario(42).fact("traffic.peak_rps_end").details["growth_per_week"]
    # CPU carries a fixed part that does not grow, so it grows somewhat slower than traffic.
    assert 0.5 * growth < forecast.growth_per_week < 1.2 * growth


def test_the_forecast_does_not_lose_by_10_percent_without_growth() -> None:
    flat = load_demo(42, growth=False)
    demand = capacity.workload_demand(flat.cpu, workload=SERVICE)
    result = capacity.backtest_rolling(demand, horizon_days=2)
    assert result.within_10_percent_of_naive
    assert abs(capacity.forecast_peak(demand, horizon_days=7).growth_per_week) < 0.01
