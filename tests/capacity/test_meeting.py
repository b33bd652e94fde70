"""Run-out dates, money and the meeting's outputs (table, CSV, manifest patch)."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from rknb import capacity
from rknb.errors import ParameterError

MIB, GIB = 2**20, 2**30
T0 = pd.Timestamp("2026-01-05T00:00:00Z")
KEYS = ["namespace", "workload", "container"]


def deployment(replicas: int, cpu: str, memory: str, *, cpu_limit: str | None = None) -> dict:
    limits = {"memory": memory} | ({"cpu": cpu_limit} if cpu_limit else {})
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {
            "replicas": replicas,
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}},
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "app",
                            "resources": {
                                "requests": {"cpu": cpu, "memory": memory},
                                "limits": limits,
                            },
                        }
                    ]
                }
            },
        },
    }


def recommendation(**values: float | str) -> pd.DataFrame:
    base: dict[str, float | str] = {
        "namespace": "shop",
        "workload": "web",
        "container": "app",
        "cpu_request_cores": math.nan,
        "cpu_limit_cores": math.nan,
        "memory_request_bytes": math.nan,
        "memory_limit_bytes": math.nan,
        "confidence": "high",
        "info": "",
    }
    return pd.DataFrame([base | values])


def test_quantities_round_up_to_a_millicore_and_a_mib() -> None:
    assert capacity.format_cpu(0.2031) == "204m"
    assert capacity.format_cpu(0.25) == "250m"
    assert capacity.format_cpu(2.0) == "2"
    assert capacity.format_cpu(math.nan) == "unset"
    assert capacity.format_memory(588.8 * MIB) == "589Mi"
    assert capacity.format_memory(2 * GIB) == "2Gi"
    assert capacity.format_memory(256 * MIB) == "256Mi"


def test_replicas_over_time_follow_the_forecast() -> None:
    hours = pd.date_range(T0, periods=3, freq="1h")
    forecast = capacity.Forecast(
        peak=1.8,
        peak_time=hours[2],
        lower=1.7,
        upper=1.9,
        trend_per_day=0.0,
        growth_per_week=0.0,
        residual_std=0.0,
        seasonality="daily",
        hourly_peaks=pd.Series(dtype=float),
        forecast=pd.Series([0.5, 1.75, 1.8], index=hours),
        interval=pd.DataFrame(),
    )
    got = capacity.replicas_over_time(forecast, cpu_request_cores=0.25, target_utilization=0.7)
    # 0.5 / 0.175 = 2.9 -> 3; 1.75 / 0.175 = 10 exactly; 1.8 / 0.175 = 10.3 -> 11.
    assert got.tolist() == [3, 10, 11]


def test_nodes_run_out_when_the_extra_replica_and_its_surge_need_a_third_node() -> None:
    target = deployment(3, "1", "1Gi")
    today = [(1.0, GIB)] * 3  # the three replicas
    hours = pd.date_range(T0, periods=5, freq="1h")
    replicas = pd.Series([3, 3, 4, 5, 4], index=hours)
    # 3 replicas + 1 surge pod = 4 cores: one 4-core node, plus one spare = 2 (today's 2).
    # 4 replicas + 1 surge = 5 cores: two nodes plus the spare = 3 > 2, first at 02:00.
    got = capacity.nodes_run_out(
        replicas, today, (4.0, 16 * GIB), target=target, spare_nodes=1, nodes_today=2
    )
    assert got == hours[2]
    assert (
        capacity.nodes_run_out(
            replicas, today, (4.0, 16 * GIB), target=target, spare_nodes=1, nodes_today=3
        )
        is None
    )


def test_costs_today_recommended_and_at_the_peak() -> None:
    current = capacity.requests_and_limits([deployment(3, "500m", "1Gi")])
    rec = recommendation(cpu_request_cores=0.25, memory_request_bytes=0.5 * GIB)
    table = capacity.costs(
        current,
        rec,
        {("shop", "web"): 3},
        price_core_hour=0.04,
        price_gib_hour=0.005,
        peak_replicas={("shop", "web"): 5},
    )
    # Today 3 x (0.5 core, 1 GiB) = 1.5 cores, 3 GiB: 0.06 + 0.015 = 0.075 an hour.
    assert table.loc["today"].tolist() == pytest.approx([1.5, 3.0, 0.075, 0.075 * 730])
    assert table.loc["recommended", "per_hour"] == pytest.approx(0.75 * 0.04 + 1.5 * 0.005)
    assert table.loc["at the forecast peak", "cpu_cores"] == pytest.approx(1.25)
    assert table.loc["at the forecast peak", "per_hour"] == pytest.approx(0.05 + 0.0125)
    with pytest.raises(ParameterError, match="negative"):
        capacity.costs(current, rec, {}, price_core_hour=-1, price_gib_hour=0)


def test_costs_keep_todays_request_where_nothing_is_recommended() -> None:
    current = capacity.requests_and_limits([deployment(2, "500m", "1Gi")])
    table = capacity.costs(
        current, recommendation(), {("shop", "web"): 2}, price_core_hour=1, price_gib_hour=0
    )
    assert table["cpu_cores"].tolist() == [1.0, 1.0, 1.0]


def test_summary_table_reads_as_quantities_and_changes() -> None:
    current = capacity.requests_and_limits([deployment(3, "250m", "256Mi")])
    rec = recommendation(
        cpu_request_cores=0.2031, memory_request_bytes=589 * MIB, confidence="medium"
    )
    table = capacity.summary_table(current, rec)
    got = table.loc[("shop/web", "app")]
    assert got["current"] == "250m / 256Mi"
    assert got["recommended"] == "204m / 589Mi"
    # (0.2031 - 0.25) / 0.25 = -19 %; (589 - 256) / 256 = +130 %.
    assert got["change"] == "CPU -19%, memory +130%"
    assert got["confidence"] == "medium"


def test_csv_has_current_and_recommended_side_by_side() -> None:
    current = capacity.requests_and_limits([deployment(3, "250m", "256Mi", cpu_limit="500m")])
    rec = recommendation(
        cpu_request_cores=0.2, memory_request_bytes=589 * MIB, memory_limit_bytes=589 * MIB
    )
    lines = capacity.recommendations_csv(current, rec).splitlines()
    assert lines[0] == (
        "namespace,workload,container,cpu_request_cores_current,cpu_request_cores_recommended,"
        "cpu_limit_cores_current,cpu_limit_cores_recommended,memory_request_bytes_current,"
        "memory_request_bytes_recommended,memory_limit_bytes_current,"
        "memory_limit_bytes_recommended,confidence,info"
    )
    assert lines[1] == ("shop,web,app,0.25,0.2,0.5,,268435456,617611264,268435456,617611264,high,")


def test_patch_sets_requests_and_drops_a_cpu_limit_krr_leaves_unset() -> None:
    rec = recommendation(
        cpu_request_cores=0.2031, memory_request_bytes=589 * MIB, memory_limit_bytes=589 * MIB
    )
    patch = capacity.manifest_patch(rec, [deployment(3, "250m", "256Mi", cpu_limit="500m")])
    assert patch == [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {
                "template": {
                    "spec": {
                        "containers": [
                            {
                                "name": "app",
                                "resources": {
                                    "requests": {"cpu": "204m", "memory": "589Mi"},
                                    "limits": {"cpu": None, "memory": "589Mi"},
                                },
                            }
                        ]
                    }
                }
            },
        }
    ]
    # Nothing recommended: no patch at all.
    assert capacity.manifest_patch(recommendation(), [deployment(3, "250m", "256Mi")]) == []


def test_node_fill_shows_what_each_node_holds() -> None:
    # Sorted 3, 2, 2, 1 cores onto 4-core nodes: node 1 takes 3 + 1, node 2 takes 2 + 2.
    fill = capacity.node_fill([(1.0, GIB), (2.0, GIB), (2.0, 4 * GIB), (3.0, GIB)], (4.0, 16 * GIB))
    assert fill["pods"].tolist() == [2, 2]
    assert fill["cpu_share"].tolist() == [1.0, 1.0]
    assert fill["memory_share"].tolist() == [2 / 16, 5 / 16]


def _plan(runs_out: pd.Timestamp | None) -> capacity.ReplicaPlan:
    return capacity.ReplicaPlan(
        replicas=8,
        replicas_upper=9,
        current_replicas=3,
        max_replicas=10,
        capacity_cores=1.75,
        runs_out=runs_out,
    )


@pytest.mark.parametrize(
    ("mape", "naive", "verdict"),
    [
        (0.014, 0.034, "the model beats it"),
        (0.0134, 0.0126, "does not beat it but stays within 10 % of it"),
        (0.02, 0.01, "loses to it by more than 10 %"),
    ],
)
def test_forecast_headline_says_which_held(mape: float, naive: float, verdict: str) -> None:
    hours = pd.date_range(T0, periods=9 * 24, freq="1h")
    demand = pd.Series(1.0 + 0.5 * (hours.hour >= 12), index=hours)
    forecast = capacity.forecast_peak(demand, horizon_days=7)
    check = capacity.BacktestResult(mape=mape, naive_mape=naive, points=96, origins=2)
    text = capacity.forecast_headline(forecast, _plan(None), check, weeks=1)
    assert verdict in text
    assert f"MAPE) {mape:.1%} against {naive:.1%}" in text
    assert "maxReplicas 10 holds" in text


def test_runs_out_headline_names_both_dates() -> None:
    text = capacity.runs_out_headline(_plan(T0), T0 + pd.Timedelta(days=3), nodes_today=4, weeks=4)
    assert text == "**Runs out within 4 weeks?** maxReplicas 10: 2026-01-05; 4 nodes: 2026-01-08."
