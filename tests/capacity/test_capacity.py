from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from rknb import capacity
from rknb.errors import NoDataError, ParameterError

DATA = Path(__file__).resolve().parent.parent / "data" / "capacity"
MIB = 2**20
T0 = pd.Timestamp("2026-01-05T00:00:00Z")  # a Monday


def usage_frame(series: dict[tuple[str, str, str], list[float]], step_s: int = 60) -> pd.DataFrame:
    rows = []
    for (namespace, pod, container), values in series.items():
        for i, value in enumerate(values):
            rows.append(
                {
                    "timestamp": T0 + pd.Timedelta(seconds=i * step_s),
                    "namespace": namespace,
                    "pod": pod,
                    "container": container,
                    "value": float(value),
                }
            )
    return pd.DataFrame(rows)


# ---------------------------------------------------------------- parse_quantity


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("250m", 0.25),
        ("256Mi", 256 * 2**20),
        ("1Gi", 2**30),
        ("0.5", 0.5),
        ("1e3", 1000.0),
        ("5E-2", 0.05),
        ("1.5k", 1500.0),
        ("100n", 1e-7),
        ("2E", 2e18),  # a bare E is exa, not an exponent
        ("128974848", 128974848.0),
        ("129M", 129e6),
        ("123Ki", 125952.0),
        (".5", 0.5),
        (2, 2.0),
    ],
)
def test_parse_quantity_reads_kubernetes_spellings(text: str | int, expected: float) -> None:
    assert capacity.parse_quantity(text) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("text", ["12 MB", "Mi", "1.2.3", "1mi", "", "ten"])
def test_parse_quantity_refuses_what_the_api_refuses(text: str) -> None:
    with pytest.raises(ParameterError, match="quantity"):
        capacity.parse_quantity(text)


# ---------------------------------------------------------------- workloads and percentiles


@pytest.mark.parametrize(
    ("pod", "workload"),
    [
        ("reasonkit-pro-mcp-7c9f8d6b5-x2k4q", "reasonkit-pro-mcp"),
        ("web-0", "web"),
        ("standalone", "standalone"),
    ],
)
def test_workload_of_pod_strips_generated_suffixes(pod: str, workload: str) -> None:
    assert capacity.workload_of_pod(pod) == workload


def test_usage_percentiles_pool_the_samples_of_all_pods() -> None:
    usage = usage_frame(
        {
            ("ns", "web-7c9f8d6b5-abcde", "app"): [1, 2, 3, 4],
            ("ns", "web-7c9f8d6b5-fghij", "app"): [5],
        }
    )
    table = capacity.usage_percentiles(usage, resource="cpu")
    row = table.iloc[0]
    # Pooled samples 1..5: p50 is 3; p90 sits at rank 0.9 x 4 = 3.6, between 4 and 5: 4.6.
    assert (row.namespace, row.workload, row.container, row.resource) == ("ns", "web", "app", "cpu")
    assert (row.pods, row.samples) == (2, 5)
    assert row.p50 == 3.0
    assert row.p90 == pytest.approx(4.6)
    assert row.p95 == pytest.approx(4.8)
    assert row.p100 == 5.0


def test_requests_and_limits_parse_every_container() -> None:
    workloads = list(yaml.safe_load_all((DATA / "workloads.yaml").read_text()))
    table = capacity.requests_and_limits(workloads).set_index(["workload", "container"])
    seed = table.loc[("reasonkit-pro-mcp", "mcp-server")]
    assert seed.namespace == "reasonkit"
    assert seed.cpu_request_cores == 0.25
    assert seed.cpu_limit_cores == 0.5
    assert seed.memory_request_bytes == 268435456
    assert seed.memory_limit_bytes == 536870912
    bare = table.loc[("cache", "redis")]
    assert all(math.isnan(bare[c]) for c in ["cpu_request_cores", "memory_limit_bytes"])
    exporter = table.loc[("cache", "exporter")]
    assert exporter.cpu_request_cores == 0.1
    assert exporter.memory_request_bytes == 1e8
    assert math.isnan(exporter.cpu_limit_cores)
    assert exporter.memory_limit_bytes == 2**30


# ---------------------------------------------------------------- recommend


def test_simple_strategy_defaults_are_krr_defaults() -> None:
    settings = capacity.SimpleSettings()
    assert settings.cpu_percentile == 95
    assert settings.memory_buffer_percentage == 15
    assert settings.points_required == 100
    assert settings.cpu_min_cores == 0.010
    assert settings.memory_min_bytes == 100 * MIB


def test_simple_takes_the_max_of_per_pod_p95_and_buffers_peak_memory() -> None:
    cpu = usage_frame(
        {
            # 0.01 .. 0.60: p95 at rank 0.95 x 59 = 56.05 -> 0.57 + 0.05 x 0.01 = 0.5705 -> 571 m.
            ("ns", "web-7c9f8d6b5-abcde", "app"): [0.01 * k for k in range(1, 61)],
            ("ns", "web-7c9f8d6b5-fghij", "app"): [0.3] * 60,
        }
    )
    memory = usage_frame(
        {
            ("ns", "web-7c9f8d6b5-abcde", "app"): [200 * MIB] * 60,
            ("ns", "web-7c9f8d6b5-fghij", "app"): [100 * MIB] * 59 + [300 * MIB],
        }
    )
    out = capacity.recommend("simple", cpu, memory).iloc[0]
    assert out.cpu_request_cores == pytest.approx(0.571)
    assert math.isnan(out.cpu_limit_cores)  # simple sets no CPU limit
    # 300 MiB x 1.15 = 345 MiB, request = limit.
    assert out.memory_request_bytes == 345 * MIB
    assert out.memory_limit_bytes == 345 * MIB
    assert (out.cpu_samples, out.memory_samples) == (120, 120)
    assert out["info"] == ""


def test_simple_differs_from_a_pooled_percentile() -> None:
    # Pod a: 100 samples at 0.2; pod b: 5 samples at 0.4. The pooled p95 of the 105 samples
    # is 0.2 (rank 98.8 is still among the 0.2s); KRR's simple takes the maximum of the
    # per-pod p95s, 0.4.
    cpu = usage_frame(
        {("ns", "w-abcde12-abcde", "c"): [0.2] * 100, ("ns", "w-abcde12-fghij", "c"): [0.4] * 5}
    )
    memory = usage_frame({("ns", "w-abcde12-abcde", "c"): [200 * MIB] * 105})
    out = capacity.recommend("simple", cpu, memory).iloc[0]
    # Per-pod p95 is 0.2 and 0.4; the maximum is 0.4 though pod b has only 5 of 105 samples.
    assert out.cpu_request_cores == pytest.approx(0.4)


def test_simple_refuses_too_few_samples_and_applies_floors() -> None:
    cpu = usage_frame({("ns", "a-abcde12-abcde", "c"): [0.002] * 99})
    memory = usage_frame({("ns", "a-abcde12-abcde", "c"): [50 * MIB] * 100})
    out = capacity.recommend("simple", cpu, memory).iloc[0]
    assert math.isnan(out.cpu_request_cores)
    assert "not enough CPU data (99 < 100 samples)" in out["info"]
    # 50 MiB x 1.15 = 57.5 MiB, raised to the 100 MiB floor.
    assert out.memory_request_bytes == 100 * MIB

    enough = capacity.recommend("simple", cpu, memory, points_required=50).iloc[0]
    assert enough.cpu_request_cores == 0.010  # 2 m raised to the 10 m floor


def test_recommend_names_the_valid_strategies_and_settings() -> None:
    empty = pd.DataFrame(columns=["timestamp", "namespace", "pod", "container", "value"])
    with pytest.raises(ParameterError, match="choose one of: simple"):
        capacity.recommend("vpa-ish", empty, empty)
    with pytest.raises(ParameterError, match="cpu_percentile"):
        capacity.recommend("simple", empty, empty, cpu_pct=90)
    with pytest.raises(ParameterError, match=r"\(0, 100\]"):
        capacity.recommend("simple", empty, empty, cpu_percentile=0)


# ---------------------------------------------------------------- rightsizing


def test_rightsizing_flags_memory_near_the_limit_before_idle_cpu() -> None:
    pcts = pd.DataFrame(
        [
            # web: CPU p95 0.1 of a 0.25 request (40 %), memory peak 480 Mi of 512 Mi (94 %).
            {
                "namespace": "ns",
                "workload": "web",
                "container": "c",
                "resource": "cpu",
                "p95": 0.1,
                "p100": 0.2,
            },
            {
                "namespace": "ns",
                "workload": "web",
                "container": "c",
                "resource": "memory",
                "p95": 400 * MIB,
                "p100": 480 * MIB,
            },
            # api: CPU p95 0.2 of 0.25 (80 %), memory peak 200 Mi of 256 Mi request, 512 Mi limit.
            {
                "namespace": "ns",
                "workload": "api",
                "container": "c",
                "resource": "cpu",
                "p95": 0.2,
                "p100": 0.3,
            },
            {
                "namespace": "ns",
                "workload": "api",
                "container": "c",
                "resource": "memory",
                "p95": 150 * MIB,
                "p100": 200 * MIB,
            },
            # batch: CPU p95 0.05 of 0.25 (20 %), memory 200 Mi of 256 Mi.
            {
                "namespace": "ns",
                "workload": "batch",
                "container": "c",
                "resource": "cpu",
                "p95": 0.05,
                "p100": 0.1,
            },
            {
                "namespace": "ns",
                "workload": "batch",
                "container": "c",
                "resource": "memory",
                "p95": 150 * MIB,
                "p100": 200 * MIB,
            },
        ]
    )
    current = pd.DataFrame(
        [
            {
                "namespace": "ns",
                "workload": w,
                "container": "c",
                "cpu_request_cores": 0.25,
                "cpu_limit_cores": 0.5,
                "memory_request_bytes": 256 * MIB,
                "memory_limit_bytes": 512 * MIB,
            }
            for w in ("web", "api", "batch")
        ]
    )
    recommended = current.assign(cpu_request_cores=0.1)
    table = capacity.rightsizing(pcts, current, recommended).set_index("workload")
    assert table.loc["web", "verdict"] == "at-risk"
    assert "94% of the limit" in table.loc["web", "reasons"]
    assert "CPU p95 is 40% of the request" in table.loc["web", "reasons"]
    assert table.loc["api", "verdict"] == "ok"
    assert table.loc["batch", "verdict"] == "over-provisioned"
    assert table.loc["batch", "cpu_request_cores_current"] == 0.25
    assert table.loc["batch", "cpu_request_cores_recommended"] == 0.1
    assert capacity.OVER_PROVISIONED_USAGE_RATIO == 0.5
    assert capacity.AT_RISK_MEMORY_LIMIT_RATIO == 0.9


# ---------------------------------------------------------------- forecasting


def seasonal_demand(days: int, slope_per_h: float = 0.1) -> tuple[pd.Series, pd.Series]:
    """Return (30-min samples, their hourly peaks): 10 + slope x h, plus 5 from 12:00 to 17:59."""
    hours = pd.date_range(T0, periods=days * 24, freq="1h")
    h = np.arange(len(hours))
    peaks = 10 + slope_per_h * h + np.where((hours.hour >= 12) & (hours.hour <= 17), 5.0, 0.0)
    samples = pd.concat(
        [
            pd.Series(peaks, index=hours),
            pd.Series(peaks - 1.0, index=hours + pd.Timedelta(minutes=30)),
        ]
    ).sort_index()
    return samples, pd.Series(peaks, index=hours)


def test_forecast_recovers_a_known_trend_and_weekly_profile() -> None:
    demand, _ = seasonal_demand(21)
    forecast = capacity.forecast_peak(demand, horizon_days=28)
    # 21 days of history end at h = 503; the horizon covers h = 504 .. 1175 and its highest
    # hour is the last day's 17:00, h = 1175 - 6 = 1169: 10 + 0.1 x 1169 + 5 = 131.9.
    assert forecast.trend_per_day == pytest.approx(2.4)
    assert forecast.peak == pytest.approx(131.9)
    assert forecast.peak_time == T0 + pd.Timedelta(hours=1169)
    assert forecast.residual_std == pytest.approx(0.0, abs=1e-9)
    assert forecast.lower == pytest.approx(131.9)
    assert len(forecast.forecast) == 28 * 24


def test_forecast_interval_widens_with_residual_noise() -> None:
    demand, _ = seasonal_demand(21)
    rng = np.random.default_rng(7)
    noisy = demand + rng.normal(0, 0.5, len(demand))
    forecast = capacity.forecast_peak(noisy, horizon_days=7)
    assert 0.2 < forecast.residual_std < 1.0
    assert forecast.upper - forecast.peak == pytest.approx(1.96 * forecast.residual_std)
    assert forecast.trend_per_day == pytest.approx(2.4, abs=0.1)


def test_forecast_needs_every_hour_of_a_week() -> None:
    demand, _ = seasonal_demand(6)
    with pytest.raises(NoDataError, match="144 of the 168 hours"):
        capacity.forecast_peak(demand)


def test_backtest_beats_the_naive_forecast_on_a_trend() -> None:
    demand, peaks = seasonal_demand(28)
    origin = T0 + pd.Timedelta(days=21)
    result = capacity.backtest(demand, [origin], horizon_days=7)
    assert result.points == 7 * 24
    assert result.mape == pytest.approx(0.0, abs=1e-9)
    # The naive forecast repeats last week, so every hour is low by 168 h x 0.1 = 16.8.
    actual = peaks[peaks.index >= origin]
    assert result.naive_mape == pytest.approx(float(np.mean(16.8 / actual)))


# ---------------------------------------------------------------- replicas and nodes


def test_replicas_needed_is_not_fooled_by_float_noise() -> None:
    # 1.75 / (0.25 x 0.7) is exactly 10, though float division gives 10.000000000000002.
    assert capacity.replicas_needed(1.75, cpu_request_cores=0.25, target_utilization=0.7) == 10
    assert capacity.replicas_needed(1.76, cpu_request_cores=0.25, target_utilization=0.7) == 11
    assert (
        capacity.replicas_needed(
            0.1, cpu_request_cores=0.25, target_utilization=0.7, min_replicas=3
        )
        == 3
    )


def test_surge_percentages_round_up() -> None:
    assert capacity.surge_pods(10, "25%") == 3  # 2.5 rounds up, as the Deployment controller does
    assert capacity.surge_pods(3, 1) == 1
    assert capacity.surge_pods(4, "0%") == 0
    with pytest.raises(ParameterError, match="max_surge"):
        capacity.surge_pods(3, "a lot")


def test_first_fit_decreasing_packs_big_pods_first() -> None:
    gib = 2**30
    # Sorted 3, 2, 2, 1 cores: node 1 takes 3 + 1, node 2 takes 2 + 2. First fit in the given
    # order (1, 2, 2, 3) would need three nodes: 1 + 2, 2, 3.
    pods = [(1.0, gib), (2.0, gib), (2.0, gib), (3.0, gib)]
    assert capacity.pack_nodes(pods, (4.0, 16 * gib)) == 2
    # Memory-bound: three 9 GiB pods on 16 GiB nodes need three nodes.
    assert capacity.pack_nodes([(0.1, 9 * gib)] * 3, (4.0, 16 * gib)) == 3
    # Four 0.25-core pods fill one 1-core node exactly.
    assert capacity.pack_nodes([(0.25, 1)] * 4, (1.0, 10)) == 1
    with pytest.raises(ParameterError, match="fits no node"):
        capacity.pack_nodes([(5.0, 1)], (4.0, 16 * gib))


def test_nodes_needed_adds_surge_and_spare_nodes() -> None:
    gib = 2**30
    # Six 1.5-core pods: two per 4-core node, three nodes; one surge pod needs a fourth;
    # N+1 adds a fifth.
    pods = [(1.5, gib)] * 6
    assert capacity.nodes_needed(pods, (4.0, 16 * gib), spare_nodes=0) == 3
    surge = [(1.5, gib)] * capacity.surge_pods(6, 1)
    assert capacity.nodes_needed(pods, (4.0, 16 * gib), surge_requests=surge) == 5
