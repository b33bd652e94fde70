"""Latency SLIs, Apdex, the budget burn-down and dating a regression's start."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from rknb import latency
from rknb.slo import alert_pairs, alert_timeline, apdex, budget_burndown, latency_sli

# Cumulative counts: 60 under 0.1 s, 90 under 0.5 s, 100 in all.
BUCKETS = pd.DataFrame({"le": ["0.1", "0.5", "+Inf"], "value": [60.0, 90.0, 100.0]})


def test_latency_sli_at_a_bucket_bound_is_exact() -> None:
    sli = latency_sli(BUCKETS, 0.5)
    assert (sli.good, sli.total, sli.fraction, sli.exact) == (90.0, 100.0, 0.9, True)


def test_latency_sli_inside_a_bucket_is_interpolated_and_flagged() -> None:
    # 0.3 s is halfway through (0.1, 0.5]: 60 + 30 × 0.5 = 75.
    sli = latency_sli(BUCKETS, 0.3)
    assert sli.good == pytest.approx(75.0)
    assert not sli.exact
    assert (sli.lower_bound_s, sli.upper_bound_s) == (0.1, 0.5)


def test_apdex_counts_tolerating_requests_as_half() -> None:
    # T = 0.1 s: 60 satisfied, 4T = 0.4 s interpolates to 60 + 30 × 0.75 = 82.5.
    score, exact = apdex(BUCKETS, 0.1)
    assert score == pytest.approx((60 + (82.5 - 60) / 2) / 100)
    assert not exact


def test_budget_burndown_ends_at_one_minus_the_budget_consumed() -> None:
    times = pd.date_range("2026-01-01", periods=4, freq="60s", tz="UTC")
    frame = pd.DataFrame(
        {
            "timestamp": list(times) * 2,
            "status": ["success"] * 4 + ["error"] * 4,
            "value": [10.0] * 4 + [0.0, 0.1, 0.1, 0.0],
        }
    )
    # 2412 requests over the 4-step period: budget 2.412 requests; 12 errors spend 4.975 of it.
    remaining = budget_burndown(frame, target=0.999, period_s=240, step_s=60)
    assert remaining.iloc[-1] == pytest.approx(1 - 12 / (0.001 * 40.2 * 60))


def test_an_alert_fires_only_after_for_and_a_gap_resets_the_clock() -> None:
    times = pd.date_range("2026-01-01", periods=8, freq="60s", tz="UTC")
    pair = alert_pairs()[0]  # page-quick: 14.4 over 1h and 5m, for 2m
    hot = [1.0, 1.0, 0.0, 1.0, 1.0, 1.0, 1.0, 0.0]
    ratios = pd.DataFrame({3600.0: hot, 300.0: hot}, index=times)
    rows = alert_timeline(ratios, [pair], target=0.999, require_full_windows=False)
    assert len(rows) == 1
    row = rows.iloc[0]
    assert row["pending_at"] == times[3]  # the gap at 2 min dropped the first pending alert
    assert row["fired_at"] == times[5]
    assert row["cleared_at"] == times[7]


def test_windows_longer_than_the_history_are_not_evaluable_yet() -> None:
    times = pd.date_range("2026-01-01", periods=3, freq="60s", tz="UTC")
    ratios = pd.DataFrame({3600.0: [1.0] * 3, 300.0: [1.0] * 3}, index=times)
    rows = alert_timeline(ratios, alert_pairs()[:1], target=0.999)
    assert rows.iloc[0]["evaluable_from"] == times[0] + pd.Timedelta(hours=1)
    assert pd.isna(rows.iloc[0]["fired_at"])


def test_refine_start_returns_the_start_of_the_first_interval_above() -> None:
    ends = pd.date_range("2026-01-01 10:00", periods=6, freq="30s", tz="UTC")
    fine = pd.Series([0.1, 0.1, 0.1, 0.5, 0.5, 0.5], index=ends)
    got = latency.refine_start(fine, threshold=0.2, coarse_start=ends[-1])
    assert got == ends[2]  # the interval (10:01:00, 10:01:30] is the first above


def test_refinement_times_sit_on_the_scrape_grid() -> None:
    times = latency.refinement_times(
        pd.Timestamp("2026-01-01 10:00:10", tz="UTC"), lookback_s=60, lookahead_s=30
    )
    assert [t.strftime("%H:%M:%S") for t in times] == [
        "09:59:00",
        "09:59:30",
        "10:00:00",
        "10:00:30",
    ]
    assert not math.isnan(times[0].timestamp())
