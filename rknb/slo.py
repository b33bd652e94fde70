"""SLO alerting: multiwindow burn-rate pairs, their firing history, and Prometheus rules.

The window pairs are the SRE Workbook's, with the ticket pair Sloth adds
(1 d/2 h). As Sloth does, the windows stay fixed and each pair's factor is
scaled to the SLO period from the share of the period's budget the long
window may spend: ``factor = budget_fraction × period / long_window``. Each
alert carries a ``for``, as Pyrra's do, so one evaluation does not page.

The firing history is predicted the way Prometheus evaluates alerting
rules (``rules/alerting.go``): at each evaluation a pair's condition is both
windows' error ratio strictly above ``factor × (1 − target)``; a new alert is
pending from that evaluation, fires once it has been pending for ``for``,
and a pending alert whose condition is absent for one evaluation is reset.
:func:`availability_rules` writes the recording and alerting rules that
Prometheus would evaluate to the same answer, thresholds printed as the
same floats.

Latency SLIs come from histogram buckets: the good fraction is exact when
the threshold is a bucket bound, and interpolated inside the bucket (and
flagged) otherwise. Apdex uses the same reading.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from rknb.catalog import Matcher, Query, Selector, escape_label_value, get_query
from rknb.errors import ParameterError
from rknb.promql import parse_bucket_bound
from rknb.times import format_duration

__all__ = [
    "ALERT_NAME",
    "SLOTH_PAIRS",
    "AlertPair",
    "LatencySli",
    "alert_pairs",
    "alert_timeline",
    "apdex",
    "approximate_window_error_ratios",
    "availability_rules",
    "budget_burndown",
    "budget_consumed_between",
    "burn_rate_alerts",
    "latency_rules",
    "latency_sli",
    "latency_window_error_ratios",
    "ratio_rule_name",
    "supports_range_window",
    "threshold_bucket_label",
    "window_error_ratios",
]

#: The name of every burn-rate alert rknb generates; pairs differ by labels.
ALERT_NAME = "ErrorBudgetBurn"

_DAY = 86400.0


@dataclass(frozen=True)
class AlertPair:
    """One multiwindow alert: both windows must burn faster than ``factor``."""

    #: ``page-quick``, ``page-slow``, ``ticket-quick`` or ``ticket-slow``.
    name: str
    severity: str
    long_window_s: float
    short_window_s: float
    #: Share of the period's error budget the long window spends at ``factor``.
    budget_fraction: float
    #: Burn-rate threshold: error ratio / (1 − target).
    factor: float
    #: How long the condition must hold before the alert fires (Prometheus ``for``).
    for_s: float

    def threshold(self, target: float) -> float:
        """Return the error-ratio threshold ``factor × (1 − target)`` both windows must exceed."""
        return self.factor * (1.0 - target)


#: The workbook's three pairs plus Sloth's 1 d/2 h ticket, for a 30-day period, with
#: Pyrra's ``for`` durations: (name, severity, budget fraction, long, short, for).
SLOTH_PAIRS: tuple[tuple[str, str, float, float, float, float], ...] = (
    ("page-quick", "page", 0.02, 3600.0, 300.0, 120.0),
    ("page-slow", "page", 0.05, 21600.0, 1800.0, 900.0),
    ("ticket-quick", "ticket", 0.10, 86400.0, 7200.0, 3600.0),
    ("ticket-slow", "ticket", 0.10, 259200.0, 21600.0, 10800.0),
)


def alert_pairs(period_s: float = 30 * _DAY, *, workbook_only: bool = False) -> list[AlertPair]:
    """Return the burn-rate pairs with factors scaled to the SLO period, as Sloth scales them.

    For 30 days the factors are 14.4, 6, 3 and 1; for 28 days 13.44, 5.6, 2.8
    and 0.9333. ``workbook_only`` leaves out Sloth's added 1 d/2 h ticket pair.

    Parameters
    ----------
    period_s
        The SLO period in seconds (30 days = 2592000).
    workbook_only
        Return only the SRE Workbook's three pairs.
    """
    if not period_s > 0:
        raise ParameterError("slo_period", f"must be a positive duration, got {period_s} s")
    pairs = []
    for name, severity, fraction, long_s, short_s, for_s in SLOTH_PAIRS:
        if workbook_only and name == "ticket-quick":
            continue
        # Rounded as Sloth prints them: 0.02 × 720 h / 1 h is 14.4, not 14.400000000000002.
        factor = round(fraction * period_s / long_s, 10)
        pairs.append(AlertPair(name, severity, long_s, short_s, fraction, factor, for_s))
    return pairs


# --------------------------------------------------------------------------- window ratios


def _ratio_per_time(frame: pd.DataFrame, error_statuses: Sequence[str]) -> pd.Series:
    missing = {"timestamp", "status", "value"} - set(frame.columns)
    if missing:
        raise ParameterError(
            "increases",
            f"a frame lacks columns {sorted(missing)}; pass request_increase answers",
        )
    total = frame.groupby("timestamp")["value"].sum()
    bad = frame[frame["status"].isin(list(error_statuses))]
    errors = bad.groupby("timestamp")["value"].sum()
    # Prometheus's `sum(errors) / sum(total)` is empty where no error series answers.
    ratio = errors.reindex(total.index) / total.where(total > 0)
    return ratio


def window_error_ratios(
    increases: Mapping[float, pd.DataFrame], *, error_statuses: Sequence[str] = ("error",)
) -> pd.DataFrame:
    """Return the error ratio over each window at each evaluation time (columns: window_s).

    Each frame is a ``request_increase`` range answer evaluated with that
    window (``increase(total[w])`` by status) at the rule evaluation step, so
    each ratio is what ``sum(rate(errors[w])) / sum(rate(total[w]))`` gives.
    NaN where the window has no traffic or no error series.
    """
    columns = {float(w): _ratio_per_time(frame, error_statuses) for w, frame in increases.items()}
    out = pd.DataFrame(columns).sort_index()
    out.index.name = "timestamp"
    return out


def burn_rate_alerts(
    increases: Mapping[float, pd.DataFrame],
    pairs: Sequence[AlertPair],
    *,
    target: float,
    history_start: pd.Timestamp | None = None,
    require_full_windows: bool = True,
    error_statuses: Sequence[str] = ("error",),
) -> pd.DataFrame:
    """Return :func:`alert_timeline` over the exact window ratios of ``request_increase`` answers.

    ``increases[w]`` is the ``request_increase`` range answer with its range
    replaced by ``w`` at the rule evaluation step: the same numbers the
    generated recording rules give, so the fire and clear times are those
    ``promtool test rules`` checks.

    Parameters
    ----------
    increases
        Window in seconds to its ``request_increase`` range answer.
    pairs
        The pairs to evaluate (:func:`alert_pairs`).
    target
        The SLO target as a fraction (0.999).
    history_start
        Where the data starts; the first evaluation when omitted.
    require_full_windows
        Treat a condition as false until a full long window of history exists.
    error_statuses
        Values of the ``status`` label that count as bad.
    """
    ratios = window_error_ratios(increases, error_statuses=error_statuses)
    return alert_timeline(
        ratios,
        pairs,
        target=target,
        history_start=history_start,
        require_full_windows=require_full_windows,
    )


def supports_range_window(source: Any) -> bool:
    """Return whether a metrics source's ``query_range`` takes a ``window_s`` range override."""
    try:
        return "window_s" in inspect.signature(source.query_range).parameters
    except (TypeError, ValueError, AttributeError):
        return False


def approximate_window_error_ratios(
    request_rate: pd.DataFrame,
    windows_s: Sequence[float],
    *,
    step_s: float,
    error_statuses: Sequence[str] = ("error",),
) -> pd.DataFrame:
    """Return each window's error ratio from per-step rates (columns: window_s).

    The ratio over ``(t − w, t]`` is the sum of the per-step error rates over
    the sum of the total rates, which weighs each step by its traffic. Each
    per-step rate covers the catalog's rate window, so this is a smoothed
    reading of the exact ratio: use :func:`window_error_ratios` where a source
    answers windowed range queries. A window longer than one step is needed.

    Parameters
    ----------
    request_rate
        A ``request_rate`` answer (``timestamp, status, value``).
    windows_s
        The windows in seconds.
    step_s
        The sample spacing of ``request_rate``.
    error_statuses
        Values of the ``status`` label that count as bad.
    """
    if request_rate.empty:
        return pd.DataFrame({float(w): pd.Series([], dtype=float) for w in windows_s})
    total = request_rate.groupby("timestamp")["value"].sum()
    bad = request_rate[request_rate["status"].isin(list(error_statuses))]
    errors = bad.groupby("timestamp")["value"].sum().reindex(total.index, fill_value=0.0)
    columns = {}
    for w in windows_s:
        if w < step_s:
            raise ParameterError("windows_s", f"{w} s is shorter than one step ({step_s} s)")
        window = pd.Timedelta(seconds=float(w))
        total_sum = total.rolling(window).sum()
        columns[float(w)] = errors.rolling(window).sum() / total_sum.where(total_sum > 0)
    out = pd.DataFrame(columns)
    out.index.name = "timestamp"
    return out


# --------------------------------------------------------------------------- firing history


_TIMELINE_COLUMNS = [
    "alert",
    "severity",
    "factor",
    "long_window_s",
    "short_window_s",
    "for_s",
    "evaluable_from",
    "pending_at",
    "fired_at",
    "cleared_at",
    "peak_burn_rate",
]


def alert_timeline(
    ratios: pd.DataFrame,
    pairs: Sequence[AlertPair],
    *,
    target: float,
    history_start: pd.Timestamp | None = None,
    require_full_windows: bool = True,
) -> pd.DataFrame:
    """Return when each pair's alert would have fired and cleared, one row per firing.

    The evaluation times are the index of ``ratios``. Columns: ``alert``,
    ``severity``, ``factor``, ``long_window_s``, ``short_window_s``, ``for_s``,
    ``evaluable_from`` (when a full long window of history exists),
    ``pending_at`` (the evaluation that started the ``for`` clock),
    ``fired_at`` (the first firing evaluation), ``cleared_at`` (the first
    evaluation after it without the condition, NaT while still firing at the
    end) and ``peak_burn_rate`` (the highest long-window burn rate while
    firing). A pair that never fires has one row with NaT times, so that a
    timeline lists every pair and says which ones could not be evaluated yet.

    Parameters
    ----------
    ratios
        Error ratio per window (:func:`window_error_ratios`), columns in seconds.
    pairs
        The pairs to evaluate (:func:`alert_pairs`).
    target
        The SLO target as a fraction (0.999).
    history_start
        Where the data starts; the first index value when omitted.
    require_full_windows
        Treat a condition as false until a full long window of history exists.
        Prometheus itself evaluates partial windows: pass False to predict it.
    """
    if not 0 < target < 1:
        raise ParameterError("target", f"must be a fraction in (0, 1) such as 0.999, got {target}")
    times = pd.DatetimeIndex(ratios.index)
    if history_start is None and len(times):
        history_start = times[0]
    rows: list[dict[str, Any]] = []
    for pair in pairs:
        for window in (pair.long_window_s, pair.short_window_s):
            if float(window) not in ratios.columns:
                raise ParameterError(
                    "ratios", f"no column for the {format_duration(window)} window of {pair.name}"
                )
        threshold = pair.threshold(target)
        long = ratios[float(pair.long_window_s)].to_numpy(dtype=float)
        short = ratios[float(pair.short_window_s)].to_numpy(dtype=float)
        with np.errstate(invalid="ignore"):
            condition = (long > threshold) & (short > threshold)
        evaluable_from: pd.Timestamp | None = None
        if history_start is not None:
            evaluable_from = pd.Timestamp(history_start) + pd.Timedelta(seconds=pair.long_window_s)
            if require_full_windows:
                condition &= np.asarray(times >= evaluable_from)

        base = {
            "alert": pair.name,
            "severity": pair.severity,
            "factor": pair.factor,
            "long_window_s": pair.long_window_s,
            "short_window_s": pair.short_window_s,
            "for_s": pair.for_s,
            "evaluable_from": evaluable_from,
        }
        firings = _firings(times, condition, pair.for_s)
        if not firings:
            rows.append({**base, "pending_at": pd.NaT, "fired_at": pd.NaT, "cleared_at": pd.NaT})
            rows[-1]["peak_burn_rate"] = math.nan
        for pending, fired, cleared, last in firings:
            inside = long[fired : last + 1]
            rows.append(
                {
                    **base,
                    "pending_at": times[pending],
                    "fired_at": times[fired],
                    "cleared_at": times[cleared] if cleared is not None else pd.NaT,
                    "peak_burn_rate": float(np.nanmax(inside)) / (1.0 - target),
                }
            )
    out = pd.DataFrame(rows, columns=_TIMELINE_COLUMNS)
    for column in ("evaluable_from", "pending_at", "fired_at", "cleared_at"):
        out[column] = pd.to_datetime(out[column], utc=True)
    return out


def _firings(
    times: pd.DatetimeIndex, condition: np.ndarray, for_s: float
) -> list[tuple[int, int, int | None, int]]:
    """Return (pending, fired, cleared or None, last firing) positions of each firing.

    Prometheus keeps an alert's ``ActiveAt`` from its first evaluation with the
    condition; it fires at the first evaluation at least ``for`` later, and a
    pending alert is dropped at the first evaluation without the condition.
    """
    seconds = (
        np.asarray((times - times[0]) / pd.Timedelta(seconds=1), dtype=float)
        if len(times)
        else np.array([])
    )
    out: list[tuple[int, int, int | None, int]] = []
    i, n = 0, len(condition)
    while i < n:
        if not condition[i]:
            i += 1
            continue
        j = i
        while j < n and condition[j]:
            j += 1
        # [i, j) is one run of the condition; the alert fires inside it once `for` has passed.
        fired = next((k for k in range(i, j) if seconds[k] - seconds[i] >= for_s - 1e-9), None)
        if fired is not None:
            out.append((i, fired, j if j < n else None, j - 1))
        i = j
    return out


# --------------------------------------------------------------------------- budget


def _counts(
    request_rate: pd.DataFrame, step_s: float, error_statuses: Sequence[str]
) -> pd.DataFrame:
    total = request_rate.groupby("timestamp")["value"].sum() * step_s
    bad = request_rate[request_rate["status"].isin(list(error_statuses))]
    errors = bad.groupby("timestamp")["value"].sum().reindex(total.index, fill_value=0.0) * step_s
    return pd.DataFrame({"total": total, "errors": errors}).sort_index()


def budget_burndown(
    request_rate: pd.DataFrame,
    *,
    target: float,
    period_s: float,
    step_s: float,
    error_statuses: Sequence[str] = ("error",),
) -> pd.Series:
    """Return the share of the period's error budget left at each step (1 at the start).

    The period's budget is ``(1 − target)`` times the requests the period is
    expected to see, extrapolated from the history's traffic (its requests ×
    period / history); each step spends its errors (rate × step). At the end
    it equals ``1 − budget_consumed`` of the history's SLO report.

    Parameters
    ----------
    request_rate
        A ``request_rate`` answer (``timestamp, status, value``).
    target
        The SLO target as a fraction (0.999).
    period_s
        The SLO period in seconds.
    step_s
        The sample spacing of ``request_rate``.
    error_statuses
        Values of the ``status`` label that count as bad.
    """
    counts = _counts(request_rate, step_s, error_statuses)
    if counts.empty:
        return pd.Series([], dtype=float, name="budget_remaining")
    history_s = len(counts) * step_s
    budget = (1.0 - target) * counts["total"].sum() * period_s / min(history_s, period_s)
    return (1.0 - counts["errors"].cumsum() / budget).rename("budget_remaining")


def budget_consumed_between(
    request_rate: pd.DataFrame,
    start: pd.Timestamp,
    end: pd.Timestamp,
    *,
    target: float,
    period_s: float,
    step_s: float,
    error_statuses: Sequence[str] = ("error",),
) -> float:
    """Return the share of the period's error budget spent by the errors in ``[start, end)``.

    Parameters
    ----------
    request_rate
        A ``request_rate`` answer (``timestamp, status, value``).
    start
        First instant counted.
    end
        First instant no longer counted.
    target
        The SLO target as a fraction (0.999).
    period_s
        The SLO period in seconds.
    step_s
        The sample spacing of ``request_rate``.
    error_statuses
        Values of the ``status`` label that count as bad.
    """
    burndown = budget_burndown(
        request_rate,
        target=target,
        period_s=period_s,
        step_s=step_s,
        error_statuses=error_statuses,
    )
    index = pd.DatetimeIndex(burndown.index)
    spent = -burndown.diff().fillna(1.0 - burndown.iloc[0] if len(burndown) else 0.0)
    return float(spent[(index >= start) & (index < end)].sum())


# --------------------------------------------------------------------------- rules


def ratio_rule_name(window_s: float) -> str:
    """Return the recording rule name of a window's error ratio (``slo:sli_error:ratio_rate5m``)."""
    return f"slo:sli_error:ratio_rate{format_duration(window_s)}"


def _selector_text(matchers: Sequence[Matcher]) -> str:
    return ", ".join(f'{m.label}{m.op}"{escape_label_value(m.value)}"' for m in matchers)


def availability_rules(
    slo_name: str,
    *,
    target: float,
    period_s: float,
    selector: Selector,
    pairs: Sequence[AlertPair] | None = None,
    query: Query | None = None,
    error_statuses: Sequence[str] = ("error",),
    interval_s: float = 30.0,
) -> dict[str, Any]:
    """Return a Prometheus rule file (``{"groups": [...]}``) for an availability SLO.

    One group holds a recording rule per distinct window (the error ratio
    ``sum(rate(errors[w])) / sum(rate(total[w]))``), then one alerting rule per
    pair (``ErrorBudgetBurn`` with labels ``slo``, ``severity``, ``long``,
    ``short``), each with its ``for``. Recording rules come first in the same
    group, so an alert reads ratios of the same evaluation. Thresholds are
    printed as the exact floats :func:`alert_timeline` compares with.

    Parameters
    ----------
    slo_name
        The value of the ``slo`` label on every rule.
    target
        The SLO target as a fraction (0.999).
    period_s
        The SLO period in seconds; sets the factors when ``pairs`` is omitted.
    selector
        Namespace and workload whose requests count.
    pairs
        The alert pairs; :func:`alert_pairs` for the period when omitted.
    query
        The request counter's catalog entry (``request_rate`` when omitted).
    error_statuses
        Values of the ``status`` label that count as bad.
    interval_s
        The group's evaluation interval.
    """
    if not 0 < target < 1:
        raise ParameterError("target", f"must be a fraction in (0, 1) such as 0.999, got {target}")
    _check_slo_name(slo_name)
    chosen = list(pairs) if pairs is not None else alert_pairs(period_s)
    entry = query if query is not None else get_query("request_rate")
    matchers = list(entry.selector_matchers(selector))
    statuses = "|".join(_regex_literal(s) for s in error_statuses)
    total_sel = _selector_text(matchers)
    error_sel = _selector_text([*matchers, Matcher("status", "=~", statuses)])
    labels = {"slo": slo_name}

    windows = sorted({w for p in chosen for w in (p.short_window_s, p.long_window_s)})
    rules: list[dict[str, Any]] = []
    for w in windows:
        span = format_duration(w)
        rules.append(
            {
                "record": ratio_rule_name(w),
                "expr": (
                    f"sum(rate({entry.metric}{{{error_sel}}}[{span}]))\n"
                    f"/\nsum(rate({entry.metric}{{{total_sel}}}[{span}]))"
                ),
                "labels": dict(labels),
            }
        )
    rules.extend(_alerting_rules(slo_name, chosen, target=target, period_s=period_s))
    return {
        "groups": [
            {"name": f"slo-{slo_name}", "interval": format_duration(interval_s), "rules": rules}
        ]
    }


def threshold_bucket_label(threshold_s: float, le_values: Sequence[str]) -> str:
    """Return the ``le`` label value of the bucket bound equal to ``threshold_s``.

    A latency SLO's good events are the bucket at the threshold, so the
    threshold must be one of the histogram's bounds: anything else is refused
    with the bounds there are (interpolating inside a bucket is what
    :func:`latency_sli` offers for reports, never for alerting rules).

    Parameters
    ----------
    threshold_s
        The latency threshold in seconds.
    le_values
        The ``le`` label values the histogram's series carry (``"0.5"``, ``"+Inf"``).
    """
    found = [
        le
        for le in dict.fromkeys(str(v) for v in le_values)
        if (bound := parse_bucket_bound(le)) is not None
        and math.isfinite(bound)
        and math.isclose(bound, threshold_s, rel_tol=1e-12, abs_tol=0.0)
    ]
    if not found:
        bounds = sorted(
            b
            for v in dict.fromkeys(str(v) for v in le_values)
            if (b := parse_bucket_bound(v)) is not None and math.isfinite(b)
        )
        raise ParameterError(
            "latency_threshold",
            f"{format_duration(threshold_s)} ({threshold_s:g} s) is not a bucket bound of the "
            f"histogram (bounds: {', '.join(f'{b:g}' for b in bounds) or 'none'}); pick one of "
            "them, since rules can count requests exactly only at a bound",
        )
    return found[0]


def latency_rules(
    slo_name: str,
    *,
    target: float,
    period_s: float,
    selector: Selector,
    threshold_s: float,
    le_values: Sequence[str],
    pairs: Sequence[AlertPair] | None = None,
    query: Query | None = None,
    interval_s: float = 30.0,
) -> dict[str, Any]:
    """Return a Prometheus rule file (``{"groups": [...]}``) for a latency SLO.

    The bad events are the requests slower than the threshold: the error
    ratio over a window is ``(count − bucket{le="<threshold>"}) / count``, with
    ``count`` the histogram's ``_count`` series, as Pyrra writes latency SLOs.
    The recording rules and ``ErrorBudgetBurn`` alerts are otherwise those of
    :func:`availability_rules`, the budget being ``1 − target``.

    Parameters
    ----------
    slo_name
        The value of the ``slo`` label on every rule.
    target
        The share of requests that must be faster than the threshold (0.99).
    period_s
        The SLO period in seconds; sets the factors when ``pairs`` is omitted.
    selector
        Namespace and workload whose requests count.
    threshold_s
        The latency threshold in seconds; it must be a bucket bound.
    le_values
        The ``le`` values of the histogram's series (from a bucket answer), to
        check the threshold against and to spell the bucket as the series do.
    pairs
        The alert pairs; :func:`alert_pairs` for the period when omitted.
    query
        The bucket series' catalog entry (``request_duration_bucket_rate`` when omitted);
        its metric must end in ``_bucket``.
    interval_s
        The group's evaluation interval.
    """
    if not 0 < target < 1:
        raise ParameterError("target", f"must be a fraction in (0, 1) such as 0.99, got {target}")
    _check_slo_name(slo_name)
    entry = query if query is not None else get_query("request_duration_bucket_rate")
    if not entry.metric.endswith("_bucket"):
        raise ParameterError(
            "query", f"{entry.metric!r} is not a histogram's _bucket series; pass a bucket query"
        )
    le = threshold_bucket_label(threshold_s, le_values)
    chosen = list(pairs) if pairs is not None else alert_pairs(period_s)
    matchers = list(entry.selector_matchers(selector))
    count_metric = entry.metric.removesuffix("_bucket") + "_count"
    count_sel = _selector_text(matchers)
    good_sel = _selector_text([*matchers, Matcher("le", "=", le)])
    windows = sorted({w for p in chosen for w in (p.short_window_s, p.long_window_s)})
    rules: list[dict[str, Any]] = []
    for w in windows:
        span = format_duration(w)
        total = f"sum(rate({count_metric}{{{count_sel}}}[{span}]))"
        rules.append(
            {
                "record": ratio_rule_name(w),
                "expr": (f"({total} - sum(rate({entry.metric}{{{good_sel}}}[{span}]))) / {total}"),
                "labels": {"slo": slo_name},
            }
        )
    rules.extend(_alerting_rules(slo_name, chosen, target=target, period_s=period_s))
    return {
        "groups": [
            {"name": f"slo-{slo_name}", "interval": format_duration(interval_s), "rules": rules}
        ]
    }


def latency_window_error_ratios(
    good: Mapping[float, pd.DataFrame], total: Mapping[float, pd.DataFrame]
) -> pd.DataFrame:
    """Return the slow-request ratio over each window at each evaluation time (columns: window_s).

    ``good[w]`` is the increase over ``w`` of the bucket at the threshold and
    ``total[w]`` that of the histogram's ``_count``, both range answers at the
    rule evaluation step, so each ratio is what :func:`latency_rules`'
    recording rule gives: ``(total − good) / total``, NaN without requests.
    """
    columns = {}
    for w, frame in total.items():
        all_requests = frame.groupby("timestamp")["value"].sum()
        fast = good[w].groupby("timestamp")["value"].sum().reindex(all_requests.index)
        columns[float(w)] = (all_requests - fast) / all_requests.where(all_requests > 0)
    out = pd.DataFrame(columns).sort_index()
    out.index.name = "timestamp"
    return out


def _alerting_rules(
    slo_name: str, pairs: Sequence[AlertPair], *, target: float, period_s: float
) -> list[dict[str, Any]]:
    """Return one ``ErrorBudgetBurn`` alerting rule per pair over the ratio recording rules."""
    rules: list[dict[str, Any]] = []
    labels = {"slo": slo_name}
    for pair in pairs:
        threshold = repr(pair.threshold(target))
        short = f'{ratio_rule_name(pair.short_window_s)}{{slo="{slo_name}"}}'
        long = f'{ratio_rule_name(pair.long_window_s)}{{slo="{slo_name}"}}'
        budget_share = f"{pair.budget_fraction:.0%}"
        rules.append(
            {
                "alert": ALERT_NAME,
                "expr": f"{short} > {threshold}\nand\n{long} > {threshold}",
                "for": format_duration(pair.for_s),
                "labels": {
                    **labels,
                    "severity": pair.severity,
                    "long": format_duration(pair.long_window_s),
                    "short": format_duration(pair.short_window_s),
                },
                "annotations": {
                    "summary": (
                        f"SLO {slo_name} burns its error budget {pair.factor:g} times too fast "
                        f"over {format_duration(pair.long_window_s)} and "
                        f"{format_duration(pair.short_window_s)}"
                    ),
                    "description": (
                        f"At this burn rate {budget_share} of the "
                        f"{period_s / _DAY:g}-day error budget is spent in "
                        f"{format_duration(pair.long_window_s)}."
                    ),
                },
            }
        )
    return rules


def _check_slo_name(slo_name: str) -> None:
    if not slo_name or not all(c.isalnum() or c in "-_." for c in slo_name):
        raise ParameterError(
            "slo_name", f"{slo_name!r} must be letters, digits, '-', '_' or '.', as a label value"
        )


def _regex_literal(text: str) -> str:
    special = set(r"\.+*?()|[]{}^$")
    return "".join("\\" + c if c in special else c for c in text)


# --------------------------------------------------------------------------- latency SLI


@dataclass(frozen=True)
class LatencySli:
    """The share of requests faster than a threshold, read from histogram buckets."""

    threshold_s: float
    good: float
    total: float
    #: good / total (NaN without requests).
    fraction: float
    #: False when the threshold falls inside a bucket and ``good`` is interpolated.
    exact: bool
    #: The bucket bounds around the threshold (equal when exact).
    lower_bound_s: float
    upper_bound_s: float


def _cumulative(bucket_increase: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Return (bounds, cumulative counts) summed over every other label, sorted by bound."""
    if not {"le", "value"} <= set(bucket_increase.columns):
        raise ParameterError(
            "bucket_increase", "the frame lacks le or value; pass a bucket increase answer"
        )
    counts: dict[float, float] = {}
    for le, value in zip(bucket_increase["le"], bucket_increase["value"], strict=True):
        bound = parse_bucket_bound(str(le))
        if bound is None or math.isnan(bound):
            continue
        counts[bound] = counts.get(bound, 0.0) + float(value)
    if math.inf not in counts:
        raise ParameterError(
            "bucket_increase", "there is no +Inf bucket; pass every bucket of the histogram"
        )
    bounds = np.array(sorted(counts), dtype=float)
    cumulative = np.maximum.accumulate(np.array([counts[b] for b in bounds], dtype=float))
    return bounds, cumulative


def latency_sli(bucket_increase: pd.DataFrame, threshold_s: float) -> LatencySli:
    """Return the share of requests that took at most ``threshold_s``, from one instant's buckets.

    Exact when ``threshold_s`` is a bucket bound; otherwise the count is
    interpolated linearly inside the bucket that holds it (as
    ``histogram_quantile`` assumes), and ``exact`` is False. Above the highest
    finite bound every request in the +Inf bucket counts as slower.

    Parameters
    ----------
    bucket_increase
        A ``request_duration_bucket_increase`` instant answer (``le, value``).
    threshold_s
        The latency threshold in seconds.
    """
    if not threshold_s > 0:
        raise ParameterError("threshold_s", f"must be a positive latency, got {threshold_s}")
    bounds, cumulative = _cumulative(bucket_increase)
    total = float(cumulative[-1])
    finite = bounds[np.isfinite(bounds)]
    hit = np.flatnonzero(np.isclose(bounds, threshold_s, rtol=1e-12, atol=0.0))
    if len(hit):
        good, lower, upper, exact = float(cumulative[hit[0]]), threshold_s, threshold_s, True
    elif len(finite) and threshold_s > finite[-1]:
        good, lower, upper, exact = float(cumulative[len(finite) - 1]), finite[-1], math.inf, False
    else:
        k = int(np.searchsorted(bounds, threshold_s))
        lower = float(bounds[k - 1]) if k > 0 else 0.0
        below = float(cumulative[k - 1]) if k > 0 else 0.0
        upper = float(bounds[k])
        share = (threshold_s - lower) / (upper - lower)
        good, exact = below + (float(cumulative[k]) - below) * share, False
    fraction = good / total if total > 0 else math.nan
    return LatencySli(threshold_s, good, total, fraction, exact, float(lower), float(upper))


def apdex(bucket_increase: pd.DataFrame, threshold_s: float) -> tuple[float, bool]:
    """Return (Apdex score, exact) for a threshold T: (satisfied + tolerating / 2) / total.

    Satisfied requests took at most T, tolerating ones at most 4T. ``exact`` is
    True only when both T and 4T are bucket bounds.

    Parameters
    ----------
    bucket_increase
        A ``request_duration_bucket_increase`` instant answer (``le, value``).
    threshold_s
        Apdex's T in seconds.
    """
    satisfied = latency_sli(bucket_increase, threshold_s)
    tolerable = latency_sli(bucket_increase, 4 * threshold_s)
    if not satisfied.total > 0:
        return math.nan, satisfied.exact and tolerable.exact
    score = (satisfied.good + (tolerable.good - satisfied.good) / 2) / satisfied.total
    return score, satisfied.exact and tolerable.exact
