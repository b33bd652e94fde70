"""Prometheus's own arithmetic, restated over numpy arrays.

rknb computes quantiles and rates offline (the demo scenario, bundles, the
conformance runner) and must give the numbers a Prometheus server would.
Two server generations disagree in small ways: 2.x (Debian ships 2.42)
selects range windows closed on both ends and caps the zero-point
extrapolation of ``rate`` before its threshold test; 3.x opens windows on
the left, tests the threshold first, and tolerates float noise between
histogram buckets. :data:`Semantics` names the generation; every function
takes it, and :func:`default_semantics` reads ``RKNB_PROMQL_SEMANTICS``.

The rules are those of ``/work/shared/prometheus/SEMANTICS.md``. Every
function works on whole arrays of evaluation times, never one time at a
time, so a 14-day range at a one-minute step costs a few array passes.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

import numpy as np
import pandas as pd

from rknb.errors import ParameterError, QueryError

__all__ = [
    "LOOKBACK_S",
    "SEMANTICS_ENV",
    "NativeBucket",
    "NativeHistogram",
    "Semantics",
    "default_semantics",
    "extrapolated_rate",
    "histogram_quantile",
    "histogram_quantiles",
    "increase",
    "instant_value",
    "irate",
    "max_over_time",
    "native_histogram_quantile",
    "parse_bucket_bound",
    "parse_native_histogram",
    "resets",
    "resolve_semantics",
]

#: 2 for Prometheus 2.x (closed range windows, zero cap before the threshold
#: test), 3 for 3.x (left-open windows, threshold test first, 1e-12 bucket
#: tolerance in ``histogram_quantile``).
Semantics = Literal[2, 3]

#: The environment variable that sets the default semantics ("2" or "3").
SEMANTICS_ENV = "RKNB_PROMQL_SEMANTICS"

#: Prometheus's default lookback delta for instant selectors, in seconds.
LOOKBACK_S = 300.0

# 3.x treats neighbouring bucket counts this close (relative) as equal.
_SMALL_DELTA_TOLERANCE = 1e-12
_MIN_NORMAL = 2.2250738585072014e-308
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_HEX = re.compile(r"[+-]?0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)[pP][+-]?[0-9]+")
_INF = re.compile(r"[+-]?(?:inf|infinity)", re.IGNORECASE)


def default_semantics() -> Semantics:
    """Return the semantics named by ``RKNB_PROMQL_SEMANTICS`` (3 when unset)."""
    raw = os.environ.get(SEMANTICS_ENV)
    if raw is None or raw.strip() == "":
        return 3
    text = raw.strip()
    if text not in ("2", "3"):
        raise ParameterError(
            SEMANTICS_ENV,
            f"expected 2 (Prometheus 2.x) or 3 (Prometheus 3.x), got {raw!r}; "
            "set it to 2 or 3, or unset it for 3",
        )
    return cast(Semantics, int(text))


def resolve_semantics(semantics: int | None) -> Semantics:
    """Return ``semantics`` checked, or the default when it is ``None``."""
    if semantics is None:
        return default_semantics()
    if isinstance(semantics, bool) or semantics not in (2, 3):
        raise ParameterError(
            "semantics", f"expected 2 (Prometheus 2.x) or 3 (Prometheus 3.x), got {semantics!r}"
        )
    return cast(Semantics, int(semantics))


def parse_bucket_bound(text: str) -> float | None:
    """Return an ``le`` label value as Go's ``strconv.ParseFloat`` reads it, or ``None``.

    Accepts ``+Inf``, ``inf``, ``1e0``, ``.2``, ``-0.1``, ``NaN`` and hex floats;
    refuses what Go refuses (spaces, underscores, ``+NaN``, values out of range).
    """
    if _DECIMAL.fullmatch(text):
        value = float(text)
        return None if math.isinf(value) else value
    if _INF.fullmatch(text):
        return -math.inf if text.startswith("-") else math.inf
    if text.lower() == "nan":
        return math.nan
    if _HEX.fullmatch(text):
        try:
            return float.fromhex(text)
        except OverflowError:
            return None
    return None


# --------------------------------------------------------------------------
# histogram_quantile


def _almost_equal(a: np.ndarray, b: np.ndarray, tolerance: float) -> np.ndarray:
    """Return where a and b are equal within a relative tolerance (Go's almost.Equal)."""
    with np.errstate(invalid="ignore", over="ignore"):
        abs_sum = np.abs(a) + np.abs(b)
        diff = np.abs(a - b)
        tiny = (a == 0) | (b == 0) | (abs_sum < _MIN_NORMAL)
        relative = diff / np.minimum(abs_sum, np.finfo(np.float64).max)
        close = np.where(tiny, diff < tolerance * _MIN_NORMAL, relative < tolerance)
    return (a == b) | (np.isnan(a) & np.isnan(b)) | close


def _make_monotonic(counts: np.ndarray, semantics: Semantics) -> np.ndarray:
    """Return bucket counts with decreases removed, row by row (columns sorted by bound)."""
    out = counts.copy()
    if out.shape[1] == 0:
        return out
    if semantics == 2:
        # Raise every count to the running maximum; NaN counts stay NaN.
        running = np.fmax.accumulate(out, axis=1)
        return np.where(np.isnan(out), out, running)

    # 3.x compares each count with the last *accepted* one and also absorbs
    # differences within 1e-12 in either direction, so walk the columns.
    prev = out[:, 0].copy()
    for i in range(1, out.shape[1]):
        curr = out[:, i]
        same = curr == prev
        absorb = ~same & (_almost_equal(prev, curr, _SMALL_DELTA_TOLERANCE) | (curr < prev))
        out[:, i] = np.where(absorb, prev, curr)
        prev = np.where(same | absorb, prev, curr)
    return out


def _quantile_rows(
    q: float, bounds: np.ndarray, counts: np.ndarray, semantics: Semantics
) -> np.ndarray:
    """Return the quantile of each row of ``counts`` over strictly increasing ``bounds``.

    Parameters
    ----------
    q
        The quantile, normally in [0, 1].
    bounds
        Distinct upper bounds, sorted ascending (equal bounds already merged).
    counts
        One row per histogram, one column per bound: cumulative bucket counts.
    semantics
        2 or 3, for the monotonicity rule.
    """
    rows = counts.shape[0]
    if math.isnan(q):
        return np.full(rows, np.nan)
    if q < 0:
        return np.full(rows, -np.inf)
    if q > 1:
        return np.full(rows, np.inf)
    if len(bounds) == 0 or not (math.isinf(bounds[-1]) and bounds[-1] > 0):
        return np.full(rows, np.nan)

    fixed = _make_monotonic(counts, semantics)
    if len(bounds) < 2:
        return np.full(rows, np.nan)

    total = fixed[:, -1]
    rank = q * total
    finite = fixed[:, :-1]
    # The first bucket below +Inf whose count reaches the rank (binary search
    # over monotonic counts); len(bounds) - 1 when the rank lies in +Inf.
    with np.errstate(invalid="ignore"):
        b = np.sum(~(finite >= rank[:, None]), axis=1)
    n_finite = len(bounds) - 1
    safe_b = np.minimum(b, n_finite - 1)
    index = np.arange(rows)
    upper = bounds[safe_b]
    count_here = fixed[index, safe_b]
    below_b = np.maximum(safe_b - 1, 0)
    has_below = safe_b > 0
    lower = np.where(has_below, bounds[below_b], 0.0)
    count_below = np.where(has_below, fixed[index, below_b], 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        interpolated = lower + (upper - lower) * ((rank - count_below) / (count_here - count_below))

    result = interpolated
    result = np.where((safe_b == 0) & (bounds[0] <= 0), bounds[0], result)
    result = np.where(b >= n_finite, bounds[n_finite - 1], result)
    with np.errstate(invalid="ignore"):
        result = np.where(total == 0, np.nan, result)
    return result.astype(np.float64)


def histogram_quantile(
    q: float, buckets: Sequence[tuple[float, float]], *, semantics: Semantics | None = None
) -> float:
    """Return the q-quantile of one classic histogram, as Prometheus computes it.

    Parameters
    ----------
    q
        The quantile (0.99 for p99); NaN, below 0 and above 1 follow Prometheus.
    buckets
        ``(upper_bound, cumulative_count)`` pairs in any order; ``+Inf`` must be
        one of them. Equal bounds are merged by adding their counts.
    semantics
        2 or 3; :func:`default_semantics` when omitted.
    """
    mode = resolve_semantics(semantics)
    if not buckets:
        return math.nan
    raw_bounds = np.array([float(b) for b, _ in buckets], dtype=np.float64)
    raw_counts = np.array([float(c) for _, c in buckets], dtype=np.float64)
    bounds, inverse = np.unique(raw_bounds, return_inverse=True)
    counts = np.zeros((1, len(bounds)))
    np.add.at(counts[0], inverse, raw_counts)
    return float(_quantile_rows(float(q), bounds, counts, mode)[0])


def histogram_quantiles(
    frame: pd.DataFrame,
    q: float,
    *,
    by: Sequence[str] | None = None,
    semantics: Semantics | None = None,
) -> pd.DataFrame:
    """Return the q-quantile per timestamp and histogram of a long frame of bucket samples.

    Parameters
    ----------
    frame
        Columns ``timestamp``, ``le`` (label values as Prometheus stores them,
        such as ``"0.25"`` or ``"+Inf"``), any other labels, and ``value``.
    q
        The quantile (0.99 for p99).
    by
        ``None`` groups like Prometheus: one histogram per set of all labels
        but ``le`` and ``__name__``. A sequence first sums the buckets by
        ``le`` and these labels, as ``histogram_quantile(q, sum by (le, ...))``.
    semantics
        2 or 3; :func:`default_semantics` when omitted.
    """
    mode = resolve_semantics(semantics)
    for column in ("timestamp", "le", "value"):
        if column not in frame.columns:
            raise ParameterError(
                "frame",
                f"histogram_quantiles needs a {column!r} column, got {list(frame.columns)}",
            )
    if by is None:
        keys = [c for c in frame.columns if c not in ("timestamp", "le", "value")]
    else:
        keys = [c for c in by if c not in ("le", "__name__")]
        missing = [c for c in keys if c not in frame.columns]
        if missing:
            raise ParameterError("by", f"labels {missing} are not columns of the frame")
    out_keys = [c for c in keys if c != "__name__"]

    # Rows whose le does not parse are not buckets; Prometheus skips them.
    le_text = frame["le"].astype(str)
    parsed = {text: parse_bucket_bound(text) for text in le_text.unique()}
    valid = le_text.map(lambda text: parsed[text] is not None).to_numpy(dtype=bool)
    good = frame.loc[valid]
    if len(good) == 0:
        return _empty_quantiles(frame, out_keys)
    bound_values = le_text[valid].map(parsed).to_numpy(dtype=np.float64)

    # One row per (histogram, timestamp); one column per distinct bound.
    row_keys = [*keys, "timestamp"]
    row_codes, row_index = _factorize_rows(good, row_keys)
    bounds, bound_codes = np.unique(bound_values, return_inverse=True)
    n_rows, n_bounds = len(row_index), len(bounds)
    flat = row_codes * n_bounds + bound_codes
    values = good["value"].to_numpy(dtype=np.float64)
    counts = np.bincount(flat, weights=values, minlength=n_rows * n_bounds).reshape(
        n_rows, n_bounds
    )
    # A NaN sample makes its bucket NaN, as in Prometheus; presence is counted apart.
    present = np.bincount(flat, minlength=n_rows * n_bounds).reshape(n_rows, n_bounds) > 0

    # Histograms that miss some buckets are computed with the buckets they have.
    result = np.full(n_rows, np.nan)
    patterns, pattern_of_row = np.unique(present, axis=0, return_inverse=True)
    pattern_of_row = pattern_of_row.reshape(-1)
    for p, pattern in enumerate(patterns):
        rows = np.nonzero(pattern_of_row == p)[0]
        columns = np.nonzero(pattern)[0]
        result[rows] = _quantile_rows(
            float(q), bounds[columns], counts[np.ix_(rows, columns)], mode
        )

    out = row_index.copy()
    if "__name__" in out.columns:
        out = out.drop(columns="__name__")
        if out.duplicated(subset=[*out_keys, "timestamp"]).any():
            raise QueryError(
                "histogram_quantile: vector cannot contain metrics with the same labelset "
                "once __name__ is dropped; select one metric name",
                query="histogram_quantile",
            )
    out["value"] = result
    out = out[["timestamp", *out_keys, "value"]]
    return out.sort_values([*out_keys, "timestamp"], kind="stable").reset_index(drop=True)


def _factorize_rows(frame: pd.DataFrame, keys: list[str]) -> tuple[np.ndarray, pd.DataFrame]:
    """Return a code per row for the combination of ``keys``, and one row per code."""
    if len(keys) == 1:
        single, uniques = pd.factorize(frame[keys[0]], sort=False)
        return single.astype(np.int64), pd.DataFrame({keys[0]: uniques})
    grouped = frame.groupby(keys, sort=False, dropna=False)
    codes = grouped.ngroup().to_numpy(dtype=np.int64)
    first = np.zeros(grouped.ngroups, dtype=np.int64)
    first[codes[::-1]] = np.arange(len(codes))[::-1]
    index = frame.iloc[first][keys].reset_index(drop=True)
    return codes, index


def _empty_quantiles(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Return an empty quantile frame with the columns of ``frame``'s groups."""
    columns: dict[str, pd.Series] = {"timestamp": frame["timestamp"].iloc[:0]}
    for key in keys:
        columns[key] = frame[key].iloc[:0]
    columns["value"] = pd.Series([], dtype="float64")
    return pd.DataFrame(columns).reset_index(drop=True)


# --------------------------------------------------------------------------
# Native histograms


@dataclass(frozen=True)
class NativeBucket:
    """One bucket of a native histogram as the HTTP API writes it (non-cumulative count)."""

    #: 0: (lower, upper], 1: [lower, upper), 2: (lower, upper), 3: [lower, upper].
    boundary_rule: int
    lower: float
    upper: float
    count: float

    @property
    def is_zero_bucket(self) -> bool:
        """Return whether this is a standard schema's zero bucket ``[-threshold, threshold]``."""
        return self.boundary_rule == 3 and self.lower == -self.upper and math.isfinite(self.upper)


@dataclass(frozen=True)
class NativeHistogram:
    """One native-histogram sample: observation count, sum and its non-empty buckets.

    ``custom_buckets`` is True for a histogram with custom bucket bounds (NHCB,
    schema -53, as converted from classic ``le`` buckets), False for the
    standard exponential schemas. The API does not say which: read it with
    :func:`parse_native_histogram`, which infers it from the bounds.
    """

    count: float
    sum: float
    #: Sorted by lower bound; only non-empty buckets (the API leaves empty ones out).
    buckets: tuple[NativeBucket, ...]
    custom_buckets: bool = False

    @property
    def has_positive_buckets(self) -> bool:
        """Return whether a bucket other than the zero bucket lies above zero."""
        return any(b.lower >= 0 and not b.is_zero_bucket for b in self.buckets)

    @property
    def has_negative_buckets(self) -> bool:
        """Return whether a bucket other than the zero bucket lies below zero."""
        return any(b.upper <= 0 and not b.is_zero_bucket for b in self.buckets)


def _api_float(value: Any, what: str) -> float:
    if isinstance(value, bool):
        raise ParameterError("histogram", f"{what} is {value!r}, not a number")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        parsed = parse_bucket_bound(value)
        if parsed is not None:
            return parsed
    raise ParameterError(
        "histogram", f"{what} is {value!r}, not a number as the Prometheus HTTP API writes it"
    )


def _fits_exponential_schema(buckets: Sequence[NativeBucket]) -> bool:
    """Return whether every bucket lies on one standard schema's grid (bounds 2^(k·2^-s))."""
    widths: set[int] = set()
    for b in buckets:
        if b.is_zero_bucket:
            continue
        if b.lower > 0 and b.boundary_rule == 0:
            low, high = b.lower, b.upper
        elif b.upper < 0 and b.boundary_rule == 1:
            low, high = -b.upper, -b.lower
        else:
            return False
        width = math.log2(high) - math.log2(low)
        if not width > 0:
            return False
        schema = round(-math.log2(width))
        if not -4 <= schema <= 8 or abs(width - 2.0**-schema) > 1e-9 * max(1.0, width):
            return False
        index = math.log2(high) * 2.0**schema
        if abs(index - round(index)) > 1e-6:
            return False
        widths.add(schema)
    return len(widths) <= 1


def parse_native_histogram(
    obj: Mapping[str, Any], *, custom_buckets: bool | None = None
) -> NativeHistogram:
    """Return a native histogram from the HTTP API's JSON ``{count, sum, buckets}`` object.

    Each bucket is ``[boundary_rule, "lower", "upper", "count"]``; the API
    writes only non-empty buckets.

    Parameters
    ----------
    obj
        The second element of a ``histogram`` pair (or of each ``histograms`` pair).
    custom_buckets
        Whether the histogram uses custom bounds; inferred when ``None``: custom
        when a bound is infinite or the bounds are not on one exponential schema's grid.
    """
    if not isinstance(obj, Mapping) or "count" not in obj:
        raise ParameterError(
            "histogram", f"expected an object with count, sum and buckets, got {obj!r}"
        )
    count = _api_float(obj.get("count"), "the histogram's count")
    total = _api_float(obj.get("sum", "0"), "the histogram's sum")
    raw = obj.get("buckets") or []
    buckets = []
    for item in raw:
        if not isinstance(item, Sequence) or isinstance(item, str) or len(item) != 4:
            raise ParameterError(
                "histogram", f"a bucket is {item!r}, not [boundary_rule, lower, upper, count]"
            )
        rule = item[0]
        if isinstance(rule, bool) or rule not in (0, 1, 2, 3):
            raise ParameterError("histogram", f"boundary rule {rule!r} is not 0, 1, 2 or 3")
        lower = _api_float(item[1], "a bucket's lower bound")
        upper = _api_float(item[2], "a bucket's upper bound")
        if not lower <= upper:
            raise ParameterError("histogram", f"a bucket's bounds {lower}..{upper} are reversed")
        buckets.append(NativeBucket(int(rule), lower, upper, _api_float(item[3], "a count")))
    buckets.sort(key=lambda b: (b.lower, b.upper))
    if custom_buckets is None:
        infinite = any(math.isinf(b.lower) or math.isinf(b.upper) for b in buckets)
        custom_buckets = infinite or not _fits_exponential_schema(buckets)
    return NativeHistogram(count, total, tuple(buckets), bool(custom_buckets))


def native_histogram_quantile(
    q: float, histogram: NativeHistogram, *, semantics: Semantics | None = None
) -> float:
    """Return the q-quantile of one native histogram, as Prometheus computes it.

    3.x (``promql/quantile.go`` at d15adb9, the same rule since v3.0.0): for
    q ≥ 0.5 the rank is counted down from the top; a rank in the zero bucket,
    or in a custom bucket, is interpolated linearly, and in an exponential
    bucket on a log2 scale (mirrored for negative buckets). The zero bucket
    starts at 0 when the histogram has only positive buckets and ends at 0
    when it has only negative ones. Custom buckets: the lowest, open
    downwards, gives its upper bound if it is ≤ 0 and otherwise runs from 0;
    the highest, open upwards, gives its lower bound. A rank never reached
    gives NaN when the sum is NaN (NaN observations), else the last bucket's
    upper bound. 2.x (v2.42) counts up from the bottom and interpolates
    linearly everywhere. q < 0 gives −Inf, q > 1 +Inf; an empty histogram NaN.
    """
    mode = resolve_semantics(semantics)
    h = histogram
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    if h.count == 0 or math.isnan(q):
        return math.nan

    forward = mode == 2 or math.isnan(h.sum) or q < 0.5
    rank = q * h.count if forward else (1 - q) * h.count
    ordered = h.buckets if forward else tuple(reversed(h.buckets))
    bucket = NativeBucket(0, 0.0, 0.0, 0.0)
    seen = 0.0
    for candidate in ordered:
        if mode == 3 and candidate.count == 0:
            continue
        bucket = candidate
        seen += candidate.count
        if seen >= rank:
            break
    lower, upper = bucket.lower, bucket.upper
    custom = h.custom_buckets and mode == 3
    if not custom and lower < 0 < upper:
        if h.has_positive_buckets and not h.has_negative_buckets:
            lower = 0.0
        elif h.has_negative_buckets and not h.has_positive_buckets:
            upper = 0.0
    elif custom:
        if lower == -math.inf:
            if upper <= 0:
                return upper
            lower = 0.0
        elif upper == math.inf:
            return lower
    seen = min(seen, h.count)
    if seen < rank:
        return math.nan if mode == 3 and math.isnan(h.sum) else upper
    rank = rank - (seen - bucket.count) if forward else seen - rank
    with np.errstate(invalid="ignore", divide="ignore"):
        fraction = float(np.float64(rank) / np.float64(bucket.count))
    if mode == 2 or custom or (lower <= 0 <= upper):
        return lower + (upper - lower) * fraction
    log_lower, log_upper = math.log2(abs(lower)), math.log2(abs(upper))
    if lower > 0:
        return float(2.0 ** (log_lower + (log_upper - log_lower) * fraction))
    return float(-(2.0 ** (log_upper + (log_lower - log_upper) * (1 - fraction))))


# --------------------------------------------------------------------------
# Range windows


def _as_ms(seconds: np.ndarray | Sequence[float] | float) -> np.ndarray:
    """Return times in integer milliseconds, as Prometheus stores them."""
    return np.round(np.asarray(seconds, dtype=np.float64) * 1000.0).astype(np.int64)


def _window_bounds(
    t_ms: np.ndarray,
    eval_ms: np.ndarray,
    range_ms: int,
    offset_ms: int,
    semantics: Semantics,
) -> tuple[np.ndarray, np.ndarray]:
    """Return ``lo, hi`` sample indices (``hi`` exclusive) of each evaluation's window."""
    end = eval_ms - offset_ms
    start = end - range_ms
    # 2.x includes a sample exactly at the window start; 3.x does not.
    lo = np.searchsorted(t_ms, start, side="left" if semantics == 2 else "right")
    hi = np.searchsorted(t_ms, end, side="right")
    return lo, hi


def _prepare(
    t_s: np.ndarray | Sequence[float], values: np.ndarray | Sequence[float]
) -> tuple[np.ndarray, np.ndarray]:
    t_ms = _as_ms(t_s)
    v = np.asarray(values, dtype=np.float64)
    if t_ms.shape != v.shape or t_ms.ndim != 1:
        raise ValueError(f"timestamps {t_ms.shape} and values {v.shape} differ in shape")
    return t_ms, v


def _windows(
    t_s: np.ndarray | Sequence[float],
    values: np.ndarray | Sequence[float],
    eval_t_s: np.ndarray | Sequence[float] | float,
    range_s: float,
    offset_s: float,
    semantics: Semantics | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return samples (ms, values), an all-NaN answer per evaluation, and each window's bounds."""
    mode = resolve_semantics(semantics)
    t_ms, v = _prepare(t_s, values)
    eval_ms = np.atleast_1d(_as_ms(eval_t_s))
    lo, hi = _window_bounds(t_ms, eval_ms, round(range_s * 1000), round(offset_s * 1000), mode)
    return t_ms, v, np.full(eval_ms.shape, np.nan), lo, hi


def extrapolated_rate(
    t_s: np.ndarray | Sequence[float],
    values: np.ndarray | Sequence[float],
    eval_t_s: np.ndarray | Sequence[float] | float,
    range_s: float,
    *,
    is_rate: bool,
    offset_s: float = 0.0,
    semantics: Semantics | None = None,
) -> np.ndarray:
    """Return ``rate`` (or ``increase``) of one counter at each evaluation time; NaN when absent.

    Parameters
    ----------
    t_s
        Sample times in Unix seconds, strictly increasing.
    values
        The counter's raw samples, resets included.
    eval_t_s
        Evaluation times in Unix seconds.
    range_s
        The range selector's length (``[5m]`` is 300).
    is_rate
        True for ``rate`` (per second over ``range_s``), False for ``increase``.
    offset_s
        The selector's ``offset`` in seconds.
    semantics
        2 or 3; :func:`default_semantics` when omitted.
    """
    mode = resolve_semantics(semantics)
    t_ms, v = _prepare(t_s, values)
    eval_ms = np.atleast_1d(_as_ms(eval_t_s))
    range_ms = round(range_s * 1000)
    out = np.full(eval_ms.shape, np.nan)
    if len(t_ms) < 2:
        return out
    lo, hi = _window_bounds(t_ms, eval_ms, range_ms, round(offset_s * 1000), mode)
    ok = hi - lo >= 2
    if not np.any(ok):
        return out
    lo, last = lo[ok], hi[ok] - 1

    # A drop is a counter reset to 0: add back the value before it. The
    # cumulative array lets every window sum its own resets in O(1).
    dropped = np.zeros(len(v))
    dropped[1:] = np.where(v[1:] < v[:-1], v[:-1], 0.0)
    added_back = np.cumsum(dropped)
    first_v, last_v = v[lo], v[last]
    delta = last_v - first_v + (added_back[last] - added_back[lo])

    end_ms = eval_ms[ok] - round(offset_s * 1000)
    start_ms = end_ms - range_ms
    to_start = (t_ms[lo] - start_ms) / 1000.0
    to_end = (end_ms - t_ms[last]) / 1000.0
    sampled = (t_ms[last] - t_ms[lo]) / 1000.0
    average = sampled / (last - lo)
    threshold = average * 1.1

    # Counters cannot go below zero: do not extrapolate past the zero point.
    with np.errstate(divide="ignore", invalid="ignore"):
        to_zero = sampled * (first_v / delta)
    can_cap = (delta > 0) & (first_v >= 0)
    if mode == 2:
        to_start = np.where(can_cap & (to_zero < to_start), to_zero, to_start)
        to_start = np.where(to_start < threshold, to_start, average / 2)
    else:
        to_start = np.where(to_start < threshold, to_start, average / 2)
        to_start = np.where(can_cap & (to_zero < to_start), to_zero, to_start)
    to_end = np.where(to_end < threshold, to_end, average / 2)

    with np.errstate(divide="ignore", invalid="ignore"):
        factor = (sampled + to_start + to_end) / sampled
    if is_rate:
        factor = factor / range_s
    out[ok] = delta * factor
    return out


def increase(
    t_s: np.ndarray | Sequence[float],
    values: np.ndarray | Sequence[float],
    eval_t_s: np.ndarray | Sequence[float] | float,
    range_s: float,
    *,
    offset_s: float = 0.0,
    semantics: Semantics | None = None,
) -> np.ndarray:
    """Return ``increase`` of one counter at each evaluation time; NaN when absent."""
    return extrapolated_rate(
        t_s, values, eval_t_s, range_s, is_rate=False, offset_s=offset_s, semantics=semantics
    )


def irate(
    t_s: np.ndarray | Sequence[float],
    values: np.ndarray | Sequence[float],
    eval_t_s: np.ndarray | Sequence[float] | float,
    range_s: float,
    *,
    offset_s: float = 0.0,
    semantics: Semantics | None = None,
) -> np.ndarray:
    """Return ``irate`` (from the window's last two samples) at each evaluation time."""
    t_ms, v, out, lo, hi = _windows(t_s, values, eval_t_s, range_s, offset_s, semantics)
    if len(t_ms) < 2:
        return out
    ok = hi - lo >= 2
    last = hi[ok] - 1
    previous = last - 1
    step_s = (t_ms[last] - t_ms[previous]) / 1000.0
    # After a reset the last value is the whole increase since it.
    change = np.where(v[last] < v[previous], v[last], v[last] - v[previous])
    out[ok] = change / step_s
    return out


def resets(
    t_s: np.ndarray | Sequence[float],
    values: np.ndarray | Sequence[float],
    eval_t_s: np.ndarray | Sequence[float] | float,
    range_s: float,
    *,
    offset_s: float = 0.0,
    semantics: Semantics | None = None,
) -> np.ndarray:
    """Return ``resets`` (decreases between samples) at each evaluation time; NaN if empty."""
    t_ms, v, out, lo, hi = _windows(t_s, values, eval_t_s, range_s, offset_s, semantics)
    if len(t_ms) == 0:
        return out
    ok = hi - lo >= 1
    drops = np.zeros(len(v), dtype=np.int64)
    drops[1:] = v[1:] < v[:-1]
    counted = np.cumsum(drops)
    out[ok] = (counted[hi[ok] - 1] - counted[lo[ok]]).astype(np.float64)
    return out


def max_over_time(
    t_s: np.ndarray | Sequence[float],
    values: np.ndarray | Sequence[float],
    eval_t_s: np.ndarray | Sequence[float] | float,
    range_s: float,
    *,
    offset_s: float = 0.0,
    semantics: Semantics | None = None,
) -> np.ndarray:
    """Return ``max_over_time`` at each evaluation time; NaN when the window is empty."""
    t_ms, v, out, lo, hi = _windows(t_s, values, eval_t_s, range_s, offset_s, semantics)
    if len(t_ms) == 0:
        return out
    ok = hi - lo >= 1
    lo, hi = lo[ok], hi[ok]

    # A sparse table answers the maximum of any index range in two lookups.
    # Prometheus ignores NaN samples unless the window holds nothing else.
    filled = np.where(np.isnan(v), -np.inf, v)
    levels = [filled]
    width = 1
    while 2 * width <= len(filled):
        prev = levels[-1]
        levels.append(np.maximum(prev[:-width], prev[width:]))
        width *= 2
    length = hi - lo
    k = np.floor(np.log2(length)).astype(np.int64)
    best = np.empty(len(lo))
    for level in np.unique(k):
        sel = k == level
        table = levels[level]
        span = 1 << int(level)
        best[sel] = np.maximum(table[lo[sel]], table[hi[sel] - span])
    numbers = np.cumsum(np.concatenate([[0], ~np.isnan(v)]))
    all_nan = numbers[hi] - numbers[lo] == 0
    out[ok] = np.where(all_nan, np.nan, best)
    return out


def instant_value(
    t_s: np.ndarray | Sequence[float],
    values: np.ndarray | Sequence[float],
    eval_t_s: np.ndarray | Sequence[float] | float,
    lookback_s: float = LOOKBACK_S,
    *,
    semantics: Semantics | None = None,
) -> np.ndarray:
    """Return an instant selector's value (newest sample within the lookback) at each time.

    2.x takes samples in ``[t - lookback, t]``; 3.x excludes the left end,
    ``(t - lookback, t]``. NaN where no sample qualifies.

    Parameters
    ----------
    t_s
        Sample times in Unix seconds, strictly increasing.
    values
        The samples.
    eval_t_s
        Evaluation times in Unix seconds.
    lookback_s
        The lookback delta (Prometheus's ``--query.lookback-delta``, 5 minutes).
    semantics
        2 or 3; :func:`default_semantics` when omitted.
    """
    mode = resolve_semantics(semantics)
    t_ms, v = _prepare(t_s, values)
    eval_ms = np.atleast_1d(_as_ms(eval_t_s))
    out = np.full(eval_ms.shape, np.nan)
    if len(t_ms) == 0:
        return out
    newest = np.searchsorted(t_ms, eval_ms, side="right") - 1
    has = newest >= 0
    newest_t = t_ms[np.maximum(newest, 0)]
    oldest_allowed = eval_ms - round(lookback_s * 1000)
    inside = newest_t >= oldest_allowed if mode == 2 else newest_t > oldest_allowed
    ok = has & inside
    out[ok] = v[newest[ok]]
    return out
