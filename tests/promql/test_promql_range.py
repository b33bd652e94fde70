import math

import numpy as np
import pytest

from rknb.promql import extrapolated_rate, increase, instant_value, irate, max_over_time, resets

ZERO_CUTOFF_STARTS = [0, 60, 120, 180, 240, 300]


@pytest.mark.parametrize(
    ("semantics", "expected"),
    [(2, [0.5, 0.55, 0.6, 0.65, 0.7, 0.6]), (3, [0.5, 0.55, 0.6, 0.6, 0.6, 0.6])],
)
def test_zero_cap_before_threshold_in_2_and_after_in_3(semantics, expected):
    # c51: samples at 0, 4m, 8m; rate over [20m] at 10m.
    got = [
        extrapolated_rate(
            [0, 240, 480], [s, s + 240, s + 480], 600, 1200, is_rate=True, semantics=semantics
        )[0]
        for s in ZERO_CUTOFF_STARTS
    ]
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_counter_resets_are_added_back():
    t = np.arange(7) * 300
    v = [0, 1, 2, 3, 2, 3, 4]
    # 4 - 0, plus the 3 before the drop; window covers the samples exactly.
    assert increase(t, v, 1800, 1800, semantics=2)[0] == pytest.approx(7.0)


def test_reset_at_end_of_window_gives_zero_not_negative():
    assert extrapolated_rate([2700, 3000], [90, 0], 3000, 300, is_rate=True, semantics=2)[0] == 0


@pytest.mark.parametrize("semantics", [2, 3])
def test_increase_extrapolates_to_window_start_and_rate_divides_by_range(semantics):
    t = np.arange(0, 601, 60)
    # [4m30s] at 600: samples 360..600, 30 s short of the window start (< 1.1 x 60 s).
    assert increase(t, t, 600, 270, semantics=semantics)[0] == pytest.approx(270.0)
    rate = extrapolated_rate(t, t, 600, 270, is_rate=True, semantics=semantics)[0]
    assert rate == pytest.approx(1.0)


def test_large_gap_extrapolates_half_an_interval():
    # Samples at 300, 360, 420 (value = t + 1000, so the zero cap never binds),
    # window [0, 600]: both gaps exceed 66 s, so each side adds 30 s.
    got = increase([300, 360, 420], [1300, 1360, 1420], 600, 600, semantics=2)[0]
    assert got == pytest.approx(120 * (120 + 60) / 120)


def test_window_start_is_closed_in_2_and_open_in_3():
    assert increase([2700, 3000], [10, 20], 3000, 300, semantics=2)[0] == pytest.approx(10.0)
    assert math.isnan(increase([2700, 3000], [10, 20], 3000, 300, semantics=3)[0])


def test_increase_across_a_reset_differs_by_semantics():
    t = [0, 60, 120, 180, 240, 300]
    v = [100, 160, 220, 10, 70, 130]
    assert increase(t, v, 300, 300, semantics=2)[0] == pytest.approx(250.0)
    # 3.x drops the sample at 0: 130 - 160 + 220 = 190 over 240 s, extended 60 s to 300 s.
    assert increase(t, v, 300, 300, semantics=3)[0] == pytest.approx(237.5)


def test_rate_is_vectorized_over_evaluation_times_with_nan_where_absent():
    t = np.arange(0, 3001, 30)
    v = t * 2.0
    got = extrapolated_rate(t, v, [0, 15, 600, 3000, 9000], 300, is_rate=True, semantics=3)
    assert math.isnan(got[0]) and math.isnan(got[1]) and math.isnan(got[4])
    np.testing.assert_allclose(got[2:4], [2.0, 2.0])


def test_irate_uses_last_two_samples_and_handles_a_reset():
    t = [0, 60, 120, 180]
    v = [100, 160, 220, 10]
    assert irate(t, v, 180, 300, semantics=2)[0] == pytest.approx(10 / 60)
    assert irate(t, v, 120, 300, semantics=2)[0] == pytest.approx(1.0)
    assert math.isnan(irate(t, v, 0, 300, semantics=2)[0])


def test_resets_counts_decreases_inside_the_window():
    t = np.arange(6) * 60
    v = [0, 1, 2, 0, 5, 3]
    assert resets(t, v, 300, 300, semantics=2)[0] == 2
    # 3.x drops the sample at 0; the decreases are at 180 and 300 either way.
    assert resets(t, v, 300, 300, semantics=3)[0] == 2
    assert resets(t, v, 120, 60, semantics=2)[0] == 0  # samples 60, 120: no drop
    assert resets(t, v, 0, 30, semantics=2)[0] == 0  # one sample counts 0
    assert math.isnan(resets(t, v, 1000, 60, semantics=2)[0])  # empty window


def test_instant_lookback_includes_its_left_end_only_in_2():
    t, v = [0, 600], [1.0, 2.0]
    assert instant_value(t, v, 300, semantics=2)[0] == 1.0
    assert math.isnan(instant_value(t, v, 300, semantics=3)[0])
    assert instant_value(t, v, 299, semantics=3)[0] == 1.0
    assert math.isnan(instant_value(t, v, 301, semantics=2)[0])
    assert instant_value(t, v, 600, semantics=3)[0] == 2.0
    assert math.isnan(instant_value(t, v, -1, semantics=2)[0])
    assert instant_value(t, v, 660, 60, semantics=2)[0] == 2.0


def test_max_over_time_ignores_nan_and_follows_the_window_rule():
    t = [0, 60, 120, 180]
    v = [1.0, 5.0, math.nan, 3.0]
    assert max_over_time(t, v, 180, 120, semantics=2)[0] == 5.0
    assert max_over_time(t, v, 180, 120, semantics=3)[0] == 3.0
    assert math.isnan(max_over_time(t, v, 120, 30, semantics=2)[0])  # only the NaN
    np.testing.assert_allclose(max_over_time(t, v, [60, 180, 240], 600, semantics=2), [5, 5, 5])
