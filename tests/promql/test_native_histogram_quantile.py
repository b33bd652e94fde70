"""histogram_quantile over native histograms, on a recorded query answer.

The answer in ``tests/data/latency/native_histograms_instant.json`` was
written by hand from the documented HTTP API format (``histogram`` pairs of
``{count, sum, buckets: [[boundary_rule, lower, upper, count], ...]}``, only
non-empty buckets, as ``util/jsonutil.MarshalHistogram`` writes them): the
Debian 2.42 backfill cannot carry native histograms, so no server recorded it.
Every expected quantile below is worked out by hand from the rules of
``promql/quantile.go`` (3.x at d15adb9; v2.42.0 for semantics 2).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from rknb.errors import ParameterError
from rknb.promql import NativeHistogram, native_histogram_quantile, parse_native_histogram

DATA = Path(__file__).parents[1] / "data" / "latency"


def _recorded() -> dict[str, NativeHistogram]:
    body = json.loads((DATA / "native_histograms_instant.json").read_text())
    return {
        item["metric"]["pod"]: parse_native_histogram(item["histogram"][1])
        for item in body["data"]["result"]
        if "histogram" in item
    }


HISTOGRAMS = _recorded()


def test_recorded_answer_parses_counts_bounds_and_rules() -> None:
    a = HISTOGRAMS["a"]
    assert (a.count, a.sum) == (20.0, 14.1)
    assert [(b.boundary_rule, b.lower, b.upper, b.count) for b in a.buckets] == [
        (3, -0.001, 0.001, 2.0),
        (0, 0.25, 0.5, 4.0),
        (0, 0.5, 1.0, 10.0),
        (0, 1.0, 2.0, 4.0),
    ]
    assert a.buckets[0].is_zero_bucket
    assert not a.custom_buckets  # powers of two: schema 0
    assert not HISTOGRAMS["b"].custom_buckets  # powers of sqrt(2): schema 1
    assert HISTOGRAMS["d"].custom_buckets  # infinite bounds: custom buckets
    assert HISTOGRAMS["c"].buckets == ()
    assert math.isnan(HISTOGRAMS["e"].sum)


@pytest.mark.parametrize(
    ("pod", "q", "prom3", "prom2"),
    [
        # Zero bucket, only positive buckets: it runs from 0, linearly. Rank 1 of 2.
        ("a", 0.05, 0.0005, 0.0005),
        ("a", 0.0, 0.0, 0.0),
        # 3.x counts q >= 0.5 down from the top: rank 10 lands 4/10 into (0.5, 1],
        # interpolated on log2: 2^(-1 + 0.4) = 2^-0.6. 2.x: 0.5 + 0.5 * 0.4.
        ("a", 0.5, 2**-0.6, 0.7),
        # Rank 2 from the top, half-way into (1, 2]: sqrt(2) on log2, 1.5 linearly.
        ("a", 0.9, math.sqrt(2), 1.5),
        ("a", 1.0, 2.0, 2.0),
        # Negative bucket [-2, -sqrt2): rank 2.5 of 3, mirrored on log2:
        # -2^(0.5 + 0.5 * (1 - 5/6)); linearly -2 + (2 - sqrt2) * 5/6.
        ("b", 0.25, -(2 ** (0.5 + 0.5 / 6)), -2 + (2 - math.sqrt(2)) * 5 / 6),
        # The zero bucket of a histogram with negative and positive buckets keeps
        # both bounds: rank 3.8 is 0.8 into [-0.01, 0.01].
        ("b", 0.38, 0.006, 0.006),
        # Rank 5 from the top: 1/6 down from sqrt2 in (1, sqrt2]; 2^(0.5/6) on log2.
        ("b", 0.5, 2 ** (0.5 / 6), 1 + (math.sqrt(2) - 1) / 6),
        # NaN observations (sum NaN): always counted from the bottom; rank 9 of 10
        # is never reached by the 8 bucketed observations: NaN in 3.x, the top in 2.x.
        ("e", 0.9, math.nan, 2.0),
        ("e", 0.5, 2**0.25, 1.25),
    ],
)
def test_native_quantile_matches_hand_computation(
    pod: str, q: float, prom3: float, prom2: float
) -> None:
    for semantics, expected in ((3, prom3), (2, prom2)):
        got = native_histogram_quantile(q, HISTOGRAMS[pod], semantics=semantics)
        if math.isnan(expected):
            assert math.isnan(got), (semantics, got)
        else:
            assert got == pytest.approx(expected, rel=1e-12, abs=1e-15), semantics


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        # The lowest custom bucket, open downwards, runs from 0: rank 2 of 5 in [-Inf, 0.1].
        (0.1, 0.04),
        # Rank 10 from the top lands 5/10 down from 0.25 in (0.1, 0.25], linearly.
        (0.5, 0.175),
        # The highest custom bucket, open upwards, gives its lower bound.
        (0.9, 0.25),
    ],
)
def test_custom_buckets_interpolate_linearly_and_clamp_the_open_ends(
    q: float, expected: float
) -> None:
    assert native_histogram_quantile(q, HISTOGRAMS["d"], semantics=3) == pytest.approx(expected)


def test_quantile_outside_zero_one_and_empty_histogram() -> None:
    for semantics in (2, 3):
        assert native_histogram_quantile(-0.1, HISTOGRAMS["a"], semantics=semantics) == -math.inf
        assert native_histogram_quantile(1.5, HISTOGRAMS["a"], semantics=semantics) == math.inf
        assert math.isnan(native_histogram_quantile(math.nan, HISTOGRAMS["a"], semantics=semantics))
        # count 0, no buckets: NaN for every q in [0, 1]; outside it the infinities still win.
        for q in (0.0, 0.5, 1.0):
            assert math.isnan(native_histogram_quantile(q, HISTOGRAMS["c"], semantics=semantics))
        assert native_histogram_quantile(2.0, HISTOGRAMS["c"], semantics=semantics) == math.inf


def test_zero_bucket_of_an_only_negative_histogram_ends_at_zero() -> None:
    h = parse_native_histogram(
        {"count": "4", "sum": "-3", "buckets": [[1, "-1", "-0.5", "2"], [3, "-0.1", "0.1", "2"]]}
    )
    # Rank 3 of 4 from the bottom (2.x) lands half-way into the zero bucket [-0.1, 0].
    assert native_histogram_quantile(0.75, h, semantics=2) == pytest.approx(-0.05)
    # 3.x counts down from the top: rank 1 lands 1/2 down from 0 in [-0.1, 0].
    assert native_histogram_quantile(0.75, h, semantics=3) == pytest.approx(-0.05)


def test_malformed_buckets_are_refused_with_the_bad_value() -> None:
    with pytest.raises(ParameterError, match="boundary rule 4"):
        parse_native_histogram({"count": "1", "sum": "1", "buckets": [[4, "0", "1", "1"]]})
    with pytest.raises(ParameterError, match="not a number"):
        parse_native_histogram({"count": "x", "sum": "1"})
