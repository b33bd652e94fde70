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
    assert settings.history_duration_h == 336  # 14 days
    assert settings.timeframe_duration_s == 75
    assert settings.use_oomkill_data is False
    assert settings.oom_memory_buffer_percentage == 25


def test_simple_with_oom_data_raises_memory_to_the_killed_limit_plus_25_percent() -> None:
    pod = "web-7c9f8d6b5-abcde"
    cpu = usage_frame({("ns", pod, "app"): [0.1] * 100})
    memory = usage_frame({("ns", pod, "app"): [400 * MIB] * 100})
    current = pd.DataFrame(
        [
            {
                "namespace": "ns",
                "workload": "web",
                "container": "app",
                "cpu_request_cores": 0.1,
                "cpu_limit_cores": math.nan,
                "memory_request_bytes": 256 * MIB,
                "memory_limit_bytes": 512 * MIB,
            }
        ]
    )
    kills = pd.DataFrame([{"namespace": "ns", "pod": pod, "container": "app", "time": T0}])
    # Off by default, as in KRR: 400 MiB x 1.15 = 460 MiB.
    off = capacity.recommend("simple", cpu, memory, oom_kills=kills, current=current).iloc[0]
    assert off.memory_request_bytes == 460 * MIB
    # On: max(460 MiB, the 512 MiB limit x 1.25 = 640 MiB).
    on = capacity.recommend(
        "simple", cpu, memory, oom_kills=kills, current=current, use_oomkill_data=True
    ).iloc[0]
    assert on.memory_request_bytes == on.memory_limit_bytes == 640 * MIB
    assert on["info"] == "OOMKill detected"


def test_simple_reads_only_its_history_duration() -> None:
    pod = "web-7c9f8d6b5-abcde"
    # 200 minutes: the first 100 at 2 cores, the last 100 at 0.1 core.
    cpu = usage_frame({("ns", pod, "app"): [2.0] * 100 + [0.1] * 100})
    memory = usage_frame({("ns", pod, "app"): [200 * MIB] * 200})
    whole = capacity.recommend("simple", cpu, memory).iloc[0]
    assert whole.cpu_request_cores == 2.0
    # The last 100 minutes (samples after 199 - 100 = 99 minutes) are all at 0.1 core.
    recent = capacity.recommend("simple", cpu, memory, history_duration_h=100 / 60).iloc[0]
    assert recent.cpu_request_cores == 0.1
    assert recent.cpu_samples == 100


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
    with pytest.raises(ParameterError, match="choose one of: simple, vpa"):
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


GROWTH = 1.01  # per day


def seasonal_demand(days: int, noise: float = 0.0, seed: int = 7) -> tuple[pd.Series, pd.Series]:
    """Return (30-min samples, their hourly peaks) from T0, a Monday.

    Peaks are 10 x 1.01 ** (h / 24), x 1.5 from 12:00 to 17:59, x 0.6 on Saturday and
    Sunday, times log-normal noise; the half-hour samples are 10 % under the peak.
    """
    hours = pd.date_range(T0, periods=days * 24, freq="1h")
    h = np.arange(len(hours))
    afternoon = np.where((hours.hour >= 12) & (hours.hour <= 17), 1.5, 1.0)
    weekend = np.where(hours.day_of_week >= 5, 0.6, 1.0)
    rng = np.random.default_rng(seed)
    peaks = 10 * GROWTH ** (h / 24) * afternoon * weekend * np.exp(rng.normal(0, noise, len(h)))
    samples = pd.concat(
        [
            pd.Series(peaks, index=hours),
            pd.Series(peaks * 0.9, index=hours + pd.Timedelta(minutes=30)),
        ]
    ).sort_index()
    return samples, pd.Series(peaks, index=hours)


def test_forecast_recovers_growth_and_the_daily_and_weekly_shape() -> None:
    demand, peaks = seasonal_demand(21)
    forecast = capacity.forecast_peak(demand, horizon_days=28)
    assert forecast.seasonality == "daily and weekly"
    assert forecast.growth_per_week == pytest.approx(GROWTH**7 - 1)
    # The horizon is days 21 .. 48 (h 504 .. 1175); its last weekday is day 46, a Friday,
    # whose 17:00 is h = 46 x 24 + 17 = 1121.
    assert forecast.peak_time == T0 + pd.Timedelta(hours=1121)
    assert forecast.peak == pytest.approx(10 * GROWTH ** (1121 / 24) * 1.5)
    assert forecast.residual_std == pytest.approx(0.0, abs=1e-9)
    assert forecast.lower == pytest.approx(forecast.peak) == forecast.upper
    # Trend per day at the last week's level: its mean peak x 1 %.
    assert forecast.trend_per_day == pytest.approx(peaks.iloc[-168:].mean() * 0.01)
    assert len(forecast.forecast) == 28 * 24
    # Saturday of the first forecast week (day 26) at 15:00: x 1.5 x 0.6.
    saturday = T0 + pd.Timedelta(hours=26 * 24 + 15)
    assert forecast.forecast[saturday] == pytest.approx(10 * GROWTH ** (26 + 15 / 24) * 0.9)


def test_forecast_interval_covers_about_95_percent_of_what_follows() -> None:
    demand, _ = seasonal_demand(35, noise=0.05)
    history = demand[demand.index < T0 + pd.Timedelta(days=28)]
    forecast = capacity.forecast_peak(history, horizon_days=7)
    assert 0.04 < forecast.residual_std < 0.06
    # Log-normal residuals of 5 %: the interval is about x exp(+-1.96 x 0.05) = x 1.10.
    assert 1.09 < forecast.upper / forecast.peak < 1.14
    assert forecast.lower / forecast.peak == pytest.approx(forecast.peak / forecast.upper, rel=0.01)
    # Fresh draws of the last week fall inside the hourly intervals about 95 % of the time
    # (12 draws of 168 hours; this fit's residual std came out a little under the true 5 %).
    covered = []
    for seed in range(8, 20):
        _, truth = seasonal_demand(35, noise=0.05, seed=seed)
        actual = truth[truth.index >= T0 + pd.Timedelta(days=28)]
        covered.append(
            (actual >= forecast.interval["lower"]) & (actual <= forecast.interval["upper"])
        )
    assert 0.92 <= float(np.mean(covered)) <= 0.97
    assert forecast.growth_per_week == pytest.approx(GROWTH**7 - 1, abs=0.01)


def test_forecast_uses_daily_seasonality_until_a_weekday_repeats() -> None:
    demand, _ = seasonal_demand(7)
    assert capacity.forecast_peak(demand, horizon_days=1).seasonality == "daily"
    demand, _ = seasonal_demand(8)
    assert capacity.forecast_peak(demand, horizon_days=1).seasonality == "daily and weekly"
    with pytest.raises(NoDataError, match="at least 2 days"):
        capacity.forecast_peak(seasonal_demand(1)[0])


def test_backtest_beats_the_naive_forecast_on_growth() -> None:
    demand, _ = seasonal_demand(28)
    origin = T0 + pd.Timedelta(days=21)
    result = capacity.backtest(demand, [origin], horizon_days=7)
    assert (result.points, result.origins, result.naive_daily_origins) == (168, 1, 0)
    assert result.mape == pytest.approx(0.0, abs=1e-9)
    # Same hour last week is low by a week's growth at every hour: 1 - 1.01 ** -7.
    assert result.naive_mape == pytest.approx(1 - GROWTH**-7)
    assert result.beats_naive


def test_naive_forecast_repeats_last_week_or_yesterday() -> None:
    hours = pd.date_range(T0, periods=10 * 24, freq="1h")
    history = pd.Series(np.arange(len(hours), dtype=float), index=hours)
    ahead = pd.date_range(hours[-1] + pd.Timedelta(hours=1), periods=9 * 24, freq="1h")
    week = capacity.naive_forecast(history, ahead)
    # Hour 240 is hour 72 one week later; hour 240 + 168 goes back two weeks to 72 again.
    assert week.iloc[0] == 240 - 168
    assert week.iloc[168] == 240 - 168
    short = capacity.naive_forecast(history.iloc[:72], ahead[:48] - pd.Timedelta(hours=168))
    # Three days of history: hour 72 is yesterday's hour 48, hour 96 is hour 48 again.
    assert short.iloc[0] == 48
    assert short.iloc[24] == 48


def test_backtest_falls_back_to_yesterday_before_a_week_of_history() -> None:
    demand, _ = seasonal_demand(6)
    result = capacity.backtest_rolling(demand, horizon_days=1, min_history_days=3)
    # Origins on days 3 and 4 (a day 5 origin would leave no whole day after it); the
    # history is then shorter than a week, so the naive forecast is yesterday's.
    assert (result.origins, result.naive_daily_origins) == (2, 2)
    assert result.points == 2 * 24
    assert result.mape == pytest.approx(0.0, abs=1e-9)
    assert result.naive_mape == pytest.approx(1 - GROWTH**-1)


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
