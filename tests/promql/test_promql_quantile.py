import math

import numpy as np
import pandas as pd
import pytest

from rknb.errors import ParameterError, QueryError
from rknb.promql import (
    default_semantics,
    histogram_quantile,
    histogram_quantiles,
    parse_bucket_bound,
)

INF = math.inf
POSITIVE = [(0.1, 50.0), (0.2, 70.0), (1.0, 110.0), (INF, 120.0)]
NEGATIVE = [(-0.2, 10.0), (-0.1, 20.0), (0.3, 20.0), (INF, 30.0)]


@pytest.mark.parametrize("semantics", [2, 3])
def test_quantile_outside_zero_one_is_infinite_before_any_bucket_check(semantics):
    # q is checked before the +Inf bucket is looked for.
    assert histogram_quantile(-0.1, [(0.1, 5.0)], semantics=semantics) == -INF
    assert histogram_quantile(1.01, [(0.1, 5.0)], semantics=semantics) == INF
    assert math.isnan(histogram_quantile(math.nan, POSITIVE, semantics=semantics))


def test_missing_inf_bucket_gives_nan():
    assert math.isnan(histogram_quantile(0.5, [(0.1, 1.0), (0.2, 2.0)], semantics=2))


def test_equal_bounds_are_merged_by_adding_counts():
    # Merged: 0.1 -> 10, 0.2 -> 20, +Inf -> 40; rank 15 falls in (0.1, 0.2].
    buckets = [(0.1, 10.0), (0.2, 10.0), (0.2, 10.0), (INF, 40.0)]
    assert histogram_quantile(0.375, buckets, semantics=2) == pytest.approx(0.15)


def test_non_monotonic_counts_are_raised_to_the_running_maximum():
    buckets = [(0.1, 20.0), (1, 10.0), (10, 50.0), (100, 40.0), (1000, 90.0), (INF, 80.0)]
    # Fixed counts 20, 20, 50, 50, 90, 90: rank 89.1 lies in (100, 1000].
    assert histogram_quantile(0.99, buckets, semantics=2) == pytest.approx(979.75)
    assert histogram_quantile(0.01, buckets, semantics=2) == pytest.approx(0.0045)


def test_semantics_3_absorbs_float_noise_between_buckets_but_2_does_not():
    noisy = 100.0 + 1e-11
    buckets = [(1.0, 50.0), (2.0, 100.0), (3.0, noisy), (INF, noisy)]
    # 2.x: the rank (== total) first reached in (2, 3] -> 3.
    assert histogram_quantile(1.0, buckets, semantics=2) == pytest.approx(3.0)
    # 3.x: 100 + 1e-11 is "equal" to 100, so the rank is reached at bound 2.
    assert histogram_quantile(1.0, buckets, semantics=3) == pytest.approx(2.0)


def test_fewer_than_two_buckets_and_zero_total_give_nan():
    assert math.isnan(histogram_quantile(0.5, [(INF, 10.0)], semantics=2))
    assert math.isnan(histogram_quantile(0.5, [(0.1, 0.0), (INF, 0.0)], semantics=2))


def test_rank_in_inf_bucket_gives_highest_finite_bound():
    assert histogram_quantile(0.5, [(0.1, 0.0), (INF, 40.0)], semantics=2) == 0.1
    assert histogram_quantile(1.0, POSITIVE, semantics=3) == 1.0


def test_lowest_bucket_at_or_below_zero_returns_its_bound():
    assert histogram_quantile(0.0, NEGATIVE, semantics=2) == -0.2
    assert histogram_quantile(0.2, NEGATIVE, semantics=2) == -0.2
    # Negative buckets above the lowest interpolate between their bounds.
    assert histogram_quantile(0.5, NEGATIVE, semantics=2) == pytest.approx(-0.15)


def test_lowest_positive_bucket_interpolates_from_zero():
    # rank 0.2 * 120 = 24 in (0, 0.1] holding 50: 0.1 * 24 / 50.
    assert histogram_quantile(0.2, POSITIVE, semantics=2) == pytest.approx(0.048)


def test_q_zero_with_empty_lowest_bucket_is_nan_and_otherwise_interpolates():
    buckets = [(0.1, 0.0), (0.2, 50.0), (INF, 100.0)]
    assert math.isnan(histogram_quantile(0.0, buckets, semantics=2))
    assert histogram_quantile(0.25, buckets, semantics=2) == pytest.approx(0.15)
    assert histogram_quantile(0.0, POSITIVE, semantics=2) == 0.0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("+Inf", INF),
        ("+inf", INF),
        ("-Inf", -INF),
        ("1e0", 1.0),
        (".2", 0.2),
        ("-0.1", -0.1),
        ("2.0e-1", 0.2),
        ("0x1p-2", 0.25),
    ],
)
def test_bucket_bounds_parse_like_go(text, expected):
    assert parse_bucket_bound(text) == expected


@pytest.mark.parametrize("text", ["", " 1", "1_0", "+NaN", "1e400", "abc", "0.1s"])
def test_bucket_bounds_go_refuses_are_not_buckets(text):
    assert parse_bucket_bound(text) is None


def test_nan_bound_parses_as_nan():
    value = parse_bucket_bound("NaN")
    assert value is not None and math.isnan(value)


def _bucket_frame():
    t1 = pd.Timestamp("2026-01-01T00:00:00Z")
    t2 = pd.Timestamp("2026-01-01T00:01:00Z")
    rows = [
        (t1, "a", "0.1", 10),
        (t1, "a", "0.5", 30),
        (t1, "a", "+Inf", 40),
        (t2, "a", "0.1", 20),
        (t2, "a", "0.5", 20),
        (t2, "a", "+Inf", 40),
        # pod b lacks the 0.5 bucket at t1 and spells it twice at t2.
        (t1, "b", "0.1", 10),
        (t1, "b", "+Inf", 40),
        (t2, "b", "0.1", 0),
        (t2, "b", "0.5", 10),
        (t2, "b", "5e-1", 10),
        (t2, "b", "+Inf", 40),
        (t2, "b", "bogus", 1000),
    ]
    return pd.DataFrame(rows, columns=["timestamp", "pod", "le", "value"])


def test_histogram_quantiles_groups_by_every_label_but_le():
    out = histogram_quantiles(_bucket_frame(), 0.5, semantics=2)
    assert list(out.columns) == ["timestamp", "pod", "value"]
    assert list(out["pod"]) == ["a", "a", "b", "b"]
    minutes = list((out["timestamp"] - pd.Timestamp("2026-01-01T00:00:00Z")).dt.seconds // 60)
    assert minutes == [0, 1, 0, 1]
    np.testing.assert_allclose(out["value"], [0.3, 0.1, 0.1, 0.5])


def test_histogram_quantiles_by_sums_buckets_first():
    out = histogram_quantiles(_bucket_frame(), 0.5, by=(), semantics=2)
    assert list(out.columns) == ["timestamp", "value"]
    # t1: 0.1 -> 20, 0.5 -> 30, +Inf -> 80: rank 40 in +Inf -> 0.5.
    # t2: 0.1 -> 20, 0.5 -> 40, +Inf -> 80: rank 40 at 0.5 -> 0.1 + 0.4 * 20/20.
    np.testing.assert_allclose(out["value"], [0.5, 0.5])


def test_histogram_quantiles_matches_the_single_histogram_function():
    rng = np.random.default_rng(3)
    bounds = ["0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "+Inf"]
    counts = np.cumsum(rng.integers(0, 20, size=(50, len(bounds))), axis=1).astype(float)
    frame = pd.DataFrame(
        {
            "timestamp": np.repeat(
                pd.date_range("2026-01-01", periods=50, freq="min", tz="UTC"), len(bounds)
            ),
            "le": bounds * 50,
            "value": counts.reshape(-1),
        }
    )
    out = histogram_quantiles(frame, 0.9, semantics=3)
    floats = [parse_bucket_bound(b) for b in bounds]
    for row, got in zip(counts, out["value"], strict=True):
        want = histogram_quantile(0.9, list(zip(floats, row, strict=True)), semantics=3)
        assert got == pytest.approx(want, nan_ok=True)


def test_same_labelset_after_dropping_name_is_an_error():
    frame = pd.DataFrame(
        {
            "timestamp": [0, 0, 0, 0],
            "__name__": ["a_bucket", "a_bucket", "b_bucket", "b_bucket"],
            "le": ["0.1", "+Inf", "0.1", "+Inf"],
            "value": [1.0, 2.0, 1.0, 2.0],
        }
    )
    with pytest.raises(QueryError, match="same labelset"):
        histogram_quantiles(frame, 0.5, semantics=2)


def test_default_semantics_is_3_and_follows_the_environment(monkeypatch):
    monkeypatch.delenv("RKNB_PROMQL_SEMANTICS", raising=False)
    assert default_semantics() == 3
    monkeypatch.setenv("RKNB_PROMQL_SEMANTICS", "2")
    assert default_semantics() == 2
    monkeypatch.setenv("RKNB_PROMQL_SEMANTICS", "2.x")
    with pytest.raises(ParameterError, match="RKNB_PROMQL_SEMANTICS"):
        default_semantics()


def test_bad_explicit_semantics_is_refused():
    with pytest.raises(ParameterError, match="semantics"):
        histogram_quantile(0.5, POSITIVE, semantics=4)  # type: ignore[arg-type]
