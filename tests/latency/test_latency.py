from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rknb import latency
from rknb.errors import ParameterError

DATA = Path(__file__).resolve().parent.parent / "data" / "latency"
T0 = pd.Timestamp("2026-01-05T00:00:00Z")
DAY_S = 86400.0


def request_rate(success: list[float], errors: list[float], step_s: int = 60) -> pd.DataFrame:
    rows = []
    for i, (good, bad) in enumerate(zip(success, errors, strict=True)):
        at = T0 + pd.Timedelta(seconds=i * step_s)
        rows.append({"timestamp": at, "status": "success", "value": float(good)})
        rows.append({"timestamp": at, "status": "error", "value": float(bad)})
    return pd.DataFrame(rows)


def series(values: list[float], step_s: int = 60) -> pd.Series:
    return pd.Series(values, index=pd.date_range(T0, periods=len(values), freq=f"{step_s}s"))


# ---------------------------------------------------------------- quantiles and error ratio


def test_latency_quantiles_interpolate_inside_the_bucket() -> None:
    # Cumulative rates: 5 req/s under 0.1 s, 10 under 0.2 s, 10 in all.
    # p50: rank 5 -> top of the first bucket, 0.1 s. p75: rank 7.5 -> 0.1 + 0.1 x 2.5/5 = 0.15 s.
    # p99: rank 9.9 -> 0.1 + 0.1 x 4.9/5 = 0.198 s. A second timestamp with no traffic: NaN.
    rows = []
    for at, counts in ((T0, (5, 10, 10)), (T0 + pd.Timedelta(minutes=1), (0, 0, 0))):
        for le, value in zip(("0.1", "0.2", "+Inf"), counts, strict=True):
            rows.append({"timestamp": at, "le": le, "value": float(value)})
    out = latency.latency_quantiles(pd.DataFrame(rows), (0.5, 0.75, 0.99))
    assert list(out.columns) == ["timestamp", "quantile", "value_s"]
    first = out[out["timestamp"] == T0].set_index("quantile")["value_s"]
    assert first.loc[0.5] == pytest.approx(0.1)
    assert first.loc[0.75] == pytest.approx(0.15)
    assert first.loc[0.99] == pytest.approx(0.198)
    assert out[out["timestamp"] > T0]["value_s"].isna().all()


def test_error_ratio_is_nan_without_traffic() -> None:
    frame = request_rate([9, 0, 5], [1, 0, 0])
    ratio = latency.error_ratio(frame)
    assert ratio.iloc[0] == pytest.approx(0.1)
    assert math.isnan(ratio.iloc[1])
    assert ratio.iloc[2] == 0.0
    assert ratio.index[0] == T0


# ---------------------------------------------------------------- SLO report


def test_slo_over_half_a_period_reports_the_share_of_the_period_budget() -> None:
    # 300 errors in 1e6 requests: error ratio 0.0003, burn rate 0.0003 / 0.001 = 0.3;
    # over 15 of 30 days that spends 0.3 x 0.5 = 15 % of the period's budget.
    report = latency.evaluate_availability_slo(
        1_000_000, 300, target=0.999, period_s=30 * DAY_S, history_s=15 * DAY_S
    )
    assert report.attainment == pytest.approx(0.9997)
    assert report.error_budget == pytest.approx(0.001)
    assert report.burn_rate == pytest.approx(0.3)
    assert report.budget_consumed == pytest.approx(0.15)
    assert report.budget_remaining == pytest.approx(0.85)
    assert report.met is True


def test_slo_over_a_full_period_is_missed_at_burn_rate_two() -> None:
    report = latency.evaluate_availability_slo(
        1_000_000, 2000, target=0.999, period_s=30 * DAY_S, history_s=30 * DAY_S
    )
    assert report.burn_rate == pytest.approx(2.0)
    assert report.budget_consumed == pytest.approx(2.0)
    assert report.budget_remaining == pytest.approx(-1.0)
    assert report.met is False


def test_slo_burning_faster_than_budget_is_missed_though_budget_remains() -> None:
    # 1500 errors in 1e6 requests over 14 of 30 days: burn 1.5, consumed 1.5 x 14/30 = 0.7.
    report = latency.evaluate_availability_slo(
        1_000_000, 1500, target=0.999, period_s=30 * DAY_S, history_s=14 * DAY_S
    )
    assert report.burn_rate == pytest.approx(1.5)
    assert report.budget_remaining == pytest.approx(0.3)
    assert report.met is False
    assert report.budget_exhausted is False


def test_slo_exactly_at_target_is_met_despite_float_noise() -> None:
    # 1 - 0.999 is 0.0010000000000000009 in float64; one error in 1000 is exactly at target.
    report = latency.evaluate_availability_slo(
        1000, 1, target=0.999, period_s=30 * DAY_S, history_s=30 * DAY_S
    )
    assert report.met is True
    assert report.budget_consumed == pytest.approx(1.0)


def test_slo_refuses_impossible_counts_and_a_history_longer_than_the_period() -> None:
    with pytest.raises(ParameterError, match="impossible"):
        latency.evaluate_availability_slo(10, 11, target=0.99, period_s=DAY_S, history_s=DAY_S)
    with pytest.raises(ParameterError, match="at most the period"):
        latency.evaluate_availability_slo(10, 1, target=0.99, period_s=DAY_S, history_s=2 * DAY_S)


def test_budget_exhaustion_at_a_constant_burn_rate() -> None:
    now = datetime(2026, 1, 5, tzinfo=UTC)
    # Half the budget left at burn rate 2 over a 30-day period: 0.5 x 30 d / 2 = 7.5 days.
    assert latency.budget_exhaustion(0.5, 2.0, period_s=30 * DAY_S, now=now) == now + timedelta(
        days=7.5
    )
    assert latency.budget_exhaustion(0.5, 0.0, period_s=30 * DAY_S, now=now) is None
    assert latency.budget_exhaustion(-0.2, 3.0, period_s=30 * DAY_S, now=now) == now


# ---------------------------------------------------------------- burn rate and alerts


def test_burn_rate_sums_rates_over_the_trailing_window() -> None:
    # 10 req/s in all; 1 error/s at steps 5 and 6. Window 5 steps, target 0.9 (budget 0.1).
    errors = [0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0]
    frame = request_rate([10 - e for e in errors], errors)
    burn = latency.burn_rate(frame, target=0.9, window_s=300, step_s=60)
    # Steps 0-3 have no full window. Step 4: 0/50. Step 5: 1/50 = 0.02 -> 0.2. Steps 6-9:
    # 2/50 = 0.04 -> 0.4. Step 10: only step 6's error is left -> 0.2. Step 11: 0.
    assert burn.iloc[:4].isna().all()
    assert burn.iloc[4:].tolist() == pytest.approx([0, 0.2, 0.4, 0.4, 0.4, 0.4, 0.2, 0.0])


def test_page_fires_on_the_second_erroring_step_and_clears_with_the_short_window() -> None:
    # Two hours at 10 req/s, 60 s steps; half of the requests fail for 10 steps from t0 = 60.
    n, t0 = 120, 60
    errors = [5.0 if t0 <= i < t0 + 10 else 0.0 for i in range(n)]
    frame = request_rate([10 - e for e in errors], errors)
    alerts = latency.multiwindow_alerts(frame, target=0.999, step_s=60)
    # 1 h / 14.4: threshold error ratio 0.0144. The 60-step long window holds k erroring
    # steps at ratio 0.5k/60: k = 1 gives 0.0083, k = 2 gives 0.0167, so it fires at t0 + 1.
    # The 5-step short window still holds an erroring step at t0 + 13 (steps 69..73) and
    # none at t0 + 14. The 6 h / 30 m pair never has a full 6 h window.
    assert len(alerts) == 1
    row = alerts.iloc[0]
    assert (row.long_window_s, row.short_window_s, row.factor) == (3600, 300, 14.4)
    assert row.start == T0 + pd.Timedelta(minutes=t0 + 1)
    assert row.end == T0 + pd.Timedelta(minutes=t0 + 13)
    # Peak long-window burn: 10 x 0.5 / 60 / 0.001 = 83.3.
    assert row.peak_burn_rate == pytest.approx(83.333, rel=1e-4)
    assert latency.WORKBOOK_PAGE_PAIRS[1] == latency.BurnRatePair(21600, 1800, 6.0, "page")


def test_burn_rate_needs_a_window_of_at_least_one_step() -> None:
    with pytest.raises(ParameterError, match="at least one step"):
        latency.burn_rate(request_rate([1], [0]), target=0.99, window_s=30, step_s=60)


# ---------------------------------------------------------------- regressions


def baseline_latency(n: int) -> list[float]:
    return [0.10 if i % 2 == 0 else 0.12 for i in range(n)]


def test_a_planted_regression_is_found_from_its_first_sample() -> None:
    values = baseline_latency(200)
    for i in range(100, 140):  # 40 minutes at 0.5 s, longer than half the baseline window
        values[i] = 0.5
    values[170] = values[171] = 0.9  # a 2-minute spike, under min_duration_s
    values[10] = 2.0  # before a full baseline window exists: not judged
    found = latency.find_regressions(
        series(values), baseline_window_s=1800, min_duration_s=300, factor=2.0
    )
    assert len(found) == 1
    regression = found[0]
    # Median of 30 preceding samples, half 0.10 and half 0.12: 0.11; threshold 0.22.
    assert regression.start == T0 + pd.Timedelta(minutes=100)
    assert regression.end == T0 + pd.Timedelta(minutes=140)
    assert regression.duration_s == 2400
    assert regression.baseline_value == pytest.approx(0.11)
    assert regression.threshold == pytest.approx(0.22)
    assert regression.peak_value == 0.5


def test_a_regression_running_to_the_end_ends_one_step_past_the_last_sample() -> None:
    values = baseline_latency(60) + [1.0] * 10
    found = latency.find_regressions(
        series(values), baseline_window_s=1800, min_duration_s=60, factor=2.0
    )
    assert [(r.start, r.end) for r in found] == [
        (T0 + pd.Timedelta(minutes=60), T0 + pd.Timedelta(minutes=70))
    ]


def test_error_regressions_need_the_absolute_floor_over_a_zero_baseline() -> None:
    ratio = [0.0] * 60 + [0.005] * 20 + [0.0] * 20 + [0.05] * 10 + [0.0] * 10
    found = latency.find_error_regressions(
        series(ratio), baseline_window_s=1800, min_duration_s=300
    )
    # 0.5 % stays under the 1 % floor; 5 % for 10 minutes from minute 100 is found.
    assert [(r.start, r.duration_s, r.peak_value) for r in found] == [
        (T0 + pd.Timedelta(minutes=100), 600.0, 0.05)
    ]


# ---------------------------------------------------------------- deploy markers


def load_markers() -> pd.DataFrame:
    replicasets = json.loads((DATA / "replicasets.json").read_text())["items"]
    ready = pd.read_csv(DATA / "ready.csv")
    ready["timestamp"] = pd.to_datetime(ready["timestamp"], utc=True)
    return latency.deploy_markers(replicasets, ready)


def test_deploy_markers_count_both_periods_of_a_rolled_back_replicaset() -> None:
    markers = load_markers()
    # web-6d4cf56db6 (revision 1) is ready from the range's first sample: no marker.
    # web-7f9c8b7d5c is ready at 00:01 as revision 2, web-58b9d7c6f4 at 00:04 as revision 3,
    # and web-7f9c8b7d5c again at 00:07 after the undo, renumbered 4 (history "2").
    assert markers["revision"].tolist() == [2, 3, 4]
    assert markers["replicaset"].tolist() == ["web-7f9c8b7d5c", "web-58b9d7c6f4", "web-7f9c8b7d5c"]
    assert markers["first_ready"].tolist() == [
        T0 + pd.Timedelta(minutes=1),
        T0 + pd.Timedelta(minutes=4),
        T0 + pd.Timedelta(minutes=7),
    ]
    first = markers.iloc[0]
    assert first.images == ("shop/web:1.1", "envoy:1.30")
    assert first.change_cause == "release 1.1"
    assert first.created == pd.Timestamp("2026-01-05T00:00:30Z")


def test_attribute_names_the_revision_live_at_the_event() -> None:
    markers = load_markers()
    marker = latency.attribute(T0 + pd.Timedelta(minutes=5, seconds=30), markers)
    assert marker is not None
    assert (marker.revision, marker.replicaset, marker.delay_s) == (3, "web-58b9d7c6f4", 90.0)
    # At the instant a revision becomes ready, it is the one live.
    at_undo = latency.attribute(T0 + pd.Timedelta(minutes=7), markers)
    assert at_undo is not None
    assert (at_undo.revision, at_undo.delay_s) == (4, 0.0)
    assert latency.attribute(T0, markers) is None


def test_deploy_markers_require_the_revision_annotation() -> None:
    ready = pd.DataFrame(
        {
            "timestamp": [T0, T0 + pd.Timedelta(minutes=1)],
            "replicaset": ["x", "x"],
            "value": [0, 1.0],
        }
    )
    broken = {"metadata": {"name": "x", "annotations": {}}}
    with pytest.raises(ParameterError, match=r"deployment\.kubernetes\.io/revision"):
        latency.deploy_markers([broken], ready)


def test_burn_rate_of_random_traffic_matches_a_direct_window_sum() -> None:
    rng = np.random.default_rng(3)
    total = rng.uniform(5, 15, 50)
    bad = total * rng.uniform(0, 0.05, 50)
    frame = request_rate(list(total - bad), list(bad))
    burn = latency.burn_rate(frame, target=0.99, window_s=600, step_s=60)
    i = 30
    expected = bad[i - 9 : i + 1].sum() / total[i - 9 : i + 1].sum() / (1 - 0.99)
    assert burn.iloc[i] == pytest.approx(expected)


def test_markers_keep_same_named_replicasets_of_two_namespaces_apart() -> None:
    def rs(namespace: str, revision: str) -> dict[str, object]:
        annotations = {latency.REVISION_ANNOTATION: revision}
        return {"metadata": {"name": "web-abc", "namespace": namespace, "annotations": annotations}}

    times = [T0, T0 + pd.Timedelta(minutes=1), T0 + pd.Timedelta(minutes=2)]
    ready = pd.DataFrame(
        {
            "timestamp": times * 2,
            "namespace": ["staging"] * 3 + ["prod"] * 3,
            "replicaset": ["web-abc"] * 6,
            "value": [0, 1, 1, 0, 0, 2],
        }
    )
    markers = latency.deploy_markers([rs("staging", "5"), rs("prod", "9")], ready)
    assert list(zip(markers["revision"], markers["first_ready"], strict=True)) == [
        (5, times[1]),
        (9, times[2]),
    ]


def test_documented_defaults_are_pinned() -> None:
    import inspect

    assert inspect.signature(latency.latency_quantiles).parameters["quantiles"].default == (
        0.5,
        0.95,
        0.99,
    )
    params = inspect.signature(latency.find_error_regressions).parameters
    assert (params["factor"].default, params["min_error_ratio"].default) == (2.0, 0.01)
    assert latency.WORKBOOK_PAGE_PAIRS[0] == latency.BurnRatePair(3600, 300, 14.4, "page")
    assert len(latency.WORKBOOK_TICKET_PAIRS) == 1
    assert latency.WORKBOOK_TICKET_PAIRS[0] == latency.BurnRatePair(259200, 21600, 1.0, "ticket")
