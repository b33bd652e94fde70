"""Latency and SLO analysis: quantiles, error ratio, error budget, burn rate, deploys.

Definitions follow the SRE Workbook's "Alerting on SLOs": the error budget
is ``1 − target``, the burn rate over a window is the window's error ratio
divided by the budget, and the budget consumed in a window is
``burn rate × window / period``. Period compliance is request-weighted (from
counter increases), as Pyrra computes it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from rknb.errors import ParameterError
from rknb.promql import Semantics, histogram_quantiles

__all__ = [
    "REVISION_ANNOTATION",
    "REVISION_HISTORY_ANNOTATION",
    "WORKBOOK_PAGE_PAIRS",
    "WORKBOOK_TICKET_PAIRS",
    "BurnRatePair",
    "Incident",
    "Marker",
    "Regression",
    "SloReport",
    "around",
    "attribute",
    "bucket_density",
    "budget_exhaustion",
    "burn_rate",
    "deploy_markers",
    "error_ratio",
    "evaluate_availability_slo",
    "find_error_regressions",
    "find_incidents",
    "find_regressions",
    "headline",
    "hpa_for_workload",
    "latency_quantiles",
    "marker_events",
    "marker_groups",
    "multiwindow_alerts",
    "recovery",
    "refine_incident",
    "refine_start",
    "refinement_times",
    "regressions_frame",
    "request_totals",
    "restart_markers",
    "scale_markers",
    "verdict_sentence",
]

logger = logging.getLogger(__name__)

REVISION_ANNOTATION = "deployment.kubernetes.io/revision"
REVISION_HISTORY_ANNOTATION = "deployment.kubernetes.io/revision-history"
CHANGE_CAUSE_ANNOTATION = "kubernetes.io/change-cause"


# --------------------------------------------------------------------------- quantiles


def latency_quantiles(
    bucket_rate: pd.DataFrame,
    quantiles: Sequence[float] = (0.5, 0.95, 0.99),
    *,
    semantics: Semantics | None = None,
) -> pd.DataFrame:
    """Return latency quantiles over time: columns ``timestamp, quantile, value_s``.

    Each quantile is PromQL's ``histogram_quantile`` (:mod:`rknb.promql`) of the
    bucket rates at each timestamp, summed by ``le`` over any other label;
    NaN where there was no traffic.

    Parameters
    ----------
    bucket_rate
        A ``request_duration_bucket_rate`` answer (columns ``timestamp, le, value``).
    quantiles
        Fractions in [0, 1].
    semantics
        Prometheus generation (2 or 3) whose rules apply; the default when omitted.
    """
    parts = []
    for q in quantiles:
        if not 0.0 <= q <= 1.0:
            raise ParameterError("quantiles", f"{q!r} is not a fraction in [0, 1]")
        frame = histogram_quantiles(bucket_rate, q, by=(), semantics=semantics)
        parts.append(
            pd.DataFrame(
                {
                    "timestamp": frame["timestamp"].to_numpy(),
                    "quantile": float(q),
                    "value_s": frame["value"].to_numpy(dtype=float),
                }
            )
        )
    if not parts:
        return pd.DataFrame(
            {
                "timestamp": pd.Series([], dtype="datetime64[ns, UTC]"),
                "quantile": pd.Series([], dtype=float),
                "value_s": pd.Series([], dtype=float),
            }
        )
    out = pd.concat(parts, ignore_index=True)
    out["timestamp"] = pd.to_datetime(out["timestamp"], utc=True)
    return out.sort_values(["quantile", "timestamp"], ignore_index=True)


def bucket_density(bucket_rate: pd.DataFrame) -> pd.DataFrame:
    """Return requests per second in each bucket (not cumulative), one column per upper bound.

    Rows are timestamps; columns are the finite ``le`` bounds in seconds,
    ascending, then ``inf`` for requests slower than the highest bound. Each
    value is the bucket's cumulative rate minus the one below, summed over
    every other label, and never negative (a dip from float noise reads 0).
    """
    from rknb.promql import parse_bucket_bound

    bounds = [parse_bucket_bound(str(le)) for le in bucket_rate["le"]]
    frame = bucket_rate.assign(bound=pd.Series(bounds, index=bucket_rate.index, dtype=float))
    frame = frame[frame["bound"].notna()]
    wide = frame.pivot_table(index="timestamp", columns="bound", values="value", aggfunc="sum")
    wide = wide.sort_index(axis=1)
    density = wide.diff(axis=1)
    density.iloc[:, 0] = wide.iloc[:, 0]
    return density.clip(lower=0.0)


# --------------------------------------------------------------------------- error ratio


def _rates(
    request_rate: pd.DataFrame, error_statuses: Iterable[str]
) -> tuple[pd.Series, pd.Series]:
    """Return (total rate, error rate) per timestamp, summed over every other label."""
    missing = {"timestamp", "status", "value"} - set(request_rate.columns)
    if missing:
        raise ParameterError(
            "request_rate",
            f"the frame lacks columns {sorted(missing)}; pass a request_rate answer",
        )
    bad = request_rate["status"].isin(list(error_statuses))
    total = request_rate.groupby("timestamp")["value"].sum()
    errors = (
        request_rate[bad].groupby("timestamp")["value"].sum().reindex(total.index, fill_value=0)
    )
    return total, errors


def error_ratio(
    request_rate: pd.DataFrame, *, error_statuses: Sequence[str] = ("error",)
) -> pd.Series:
    """Return errors / all requests per timestamp (index ``timestamp``; NaN without traffic)."""
    total, errors = _rates(request_rate, error_statuses)
    ratio = (errors / total.where(total > 0)).rename("error_ratio")
    return ratio


# --------------------------------------------------------------------------- SLO report


@dataclass(frozen=True)
class SloReport:
    """An availability SLO evaluated over a history no longer than its period.

    Fractions are plain (0.999, not 99.9). "Of the budget" means of the error
    budget of the whole period: 0.25 = a quarter of the period's allowance.
    """

    target: float
    period_s: float
    history_s: float
    requests: float
    errors: float
    #: Good requests / all requests over the history (NaN without traffic).
    attainment: float
    #: The allowed bad fraction, 1 − target.
    error_budget: float
    #: Share of the period's budget the history used: burn rate × history / period.
    budget_consumed: float
    #: 1 − budget_consumed; negative once the SLO is missed.
    budget_remaining: float
    #: Whether the history met the target (attainment ≥ target, i.e. burn rate ≤ 1):
    #: a history that burns faster than the budget allows is not on track, even
    #: while some of the period's budget remains.
    met: bool
    #: Whether the history already used more than the whole period's budget.
    budget_exhausted: bool
    #: Mean burn rate over the history: error ratio / error budget.
    burn_rate: float


def evaluate_availability_slo(
    request_increase_total: float,
    errors: float,
    *,
    target: float,
    period_s: float,
    history_s: float,
) -> SloReport:
    """Return attainment, error budget and burn rate of an availability SLO.

    Parameters
    ----------
    request_increase_total
        Requests counted over the history (all statuses), from ``request_increase``.
    errors
        The bad ones among them.
    target
        The SLO target as a fraction (0.999).
    period_s
        The SLO period (30 days = 2592000).
    history_s
        How much of it the counts cover; at most ``period_s``.
    """
    if not 0 < target < 1:
        raise ParameterError("target", f"must be a fraction in (0, 1) such as 0.999, got {target}")
    if period_s <= 0 or not 0 < history_s <= period_s:
        raise ParameterError(
            "history_s",
            f"{history_s} s must be positive and at most the period ({period_s} s); "
            "query the increase over one period or less",
        )
    if request_increase_total < 0 or not 0 <= errors <= request_increase_total:
        raise ParameterError(
            "errors",
            f"{errors} errors out of {request_increase_total} requests is impossible; "
            "pass counts from one increase query",
        )
    budget = 1.0 - target
    if request_increase_total == 0:
        ratio, attainment = 0.0, math.nan
    else:
        ratio = errors / request_increase_total
        attainment = 1.0 - ratio
    burn = ratio / budget
    consumed = burn * history_s / period_s
    return SloReport(
        target=target,
        period_s=period_s,
        history_s=history_s,
        requests=float(request_increase_total),
        errors=float(errors),
        attainment=attainment,
        error_budget=budget,
        budget_consumed=consumed,
        budget_remaining=1.0 - consumed,
        # 1 − 0.999 is not exactly 0.001: allow float noise at the boundary.
        met=burn <= 1.0 + 1e-9,
        budget_exhausted=consumed > 1.0 + 1e-9,
        burn_rate=burn,
    )


def budget_exhaustion(
    budget_remaining: float, burn_rate: float, *, period_s: float, now: datetime
) -> datetime | None:
    """Return when the error budget runs out at a constant burn rate, or None if never.

    At burn rate b the budget of a period P lasts P / b, so a remaining share R
    lasts R × P / b. An exhausted budget (R ≤ 0) returns ``now``; a burn rate
    of 0 (or NaN) returns None.
    """
    if budget_remaining <= 0:
        return now
    if not burn_rate > 0:
        return None
    return now + timedelta(seconds=budget_remaining * period_s / burn_rate)


# --------------------------------------------------------------------------- burn rate


def burn_rate(
    request_rate: pd.DataFrame,
    *,
    target: float,
    window_s: float,
    step_s: float,
    error_statuses: Sequence[str] = ("error",),
) -> pd.Series:
    """Return the burn rate over a trailing window at each timestamp.

    The window's error ratio is approximated from the per-step rates: the sum of
    the error rates of the samples in ``(t − window_s, t]`` over the sum of the
    total rates, which weighs each step by its traffic as
    ``increase(errors[w]) / increase(total[w])`` does. Each per-step rate
    itself covers the catalog's rate window (5 m), so the effective window is
    that much longer than ``window_s``, and a missing sample simply drops out.
    NaN until a full window of samples exists and where the window has no
    traffic.

    Parameters
    ----------
    request_rate
        A ``request_rate`` answer (``timestamp, status, value``).
    target
        The SLO target as a fraction (0.999).
    window_s
        The trailing window, at least one step.
    step_s
        The sample spacing of ``request_rate``.
    error_statuses
        Values of the ``status`` label that count as bad.
    """
    if not 0 < target < 1:
        raise ParameterError("target", f"must be a fraction in (0, 1) such as 0.999, got {target}")
    if step_s <= 0 or window_s < step_s:
        raise ParameterError("window_s", f"{window_s} s must be at least one step ({step_s} s)")
    total, errors = _rates(request_rate, error_statuses)
    window = pd.Timedelta(seconds=window_s)
    total_sum = total.rolling(window).sum()
    error_sum = errors.rolling(window).sum()

    # Only windows whose first sample is a full window behind count.
    if total.empty:
        return pd.Series([], index=total.index, dtype=float, name="burn_rate")
    full = total.index >= total.index[0] + pd.Timedelta(seconds=window_s - step_s)
    ratio = error_sum / total_sum.where(total_sum > 0)
    out = (ratio / (1.0 - target)).where(full)
    return out.rename("burn_rate")


@dataclass(frozen=True)
class BurnRatePair:
    """One multiwindow alert: both windows must burn faster than ``factor``."""

    long_window_s: float
    short_window_s: float
    factor: float
    severity: str = "page"


#: The SRE Workbook's paging pairs for a 30-day period: 1 h/5 m at 14.4, 6 h/30 m at 6.
WORKBOOK_PAGE_PAIRS = (
    BurnRatePair(3600, 300, 14.4, "page"),
    BurnRatePair(21600, 1800, 6.0, "page"),
)
#: The workbook's ticket pair: 3 d/6 h at 1.
WORKBOOK_TICKET_PAIRS = (BurnRatePair(259200, 21600, 1.0, "ticket"),)


def multiwindow_alerts(
    request_rate: pd.DataFrame,
    *,
    target: float,
    step_s: float,
    pairs: Sequence[BurnRatePair] = WORKBOOK_PAGE_PAIRS,
    error_statuses: Sequence[str] = ("error",),
) -> pd.DataFrame:
    """Return the intervals during which each multiwindow burn-rate alert would fire.

    A pair fires at a sample when the burn rate over its long window **and**
    over its short window are both above its factor (strictly, as
    ``error_ratio > factor × budget``). Columns: ``severity, long_window_s,
    short_window_s, factor, start, end, peak_burn_rate``, where ``start`` is
    the first sample that fires, ``end`` the last one, and
    ``peak_burn_rate`` the highest long-window burn rate inside. The alerts of
    a severity are the union (OR) of its pairs' intervals.

    Parameters
    ----------
    request_rate
        A ``request_rate`` answer (``timestamp, status, value``).
    target
        The SLO target as a fraction (0.999).
    step_s
        The sample spacing of ``request_rate``.
    pairs
        The window pairs and factors (default: the workbook's page pairs).
    error_statuses
        Values of the ``status`` label that count as bad.
    """
    rows: list[dict[str, Any]] = []
    for pair in pairs:
        common: dict[str, Any] = {
            "target": target,
            "step_s": step_s,
            "error_statuses": error_statuses,
        }
        long = burn_rate(request_rate, window_s=pair.long_window_s, **common)
        short = burn_rate(request_rate, window_s=pair.short_window_s, **common)
        firing = ((long > pair.factor) & (short > pair.factor)).to_numpy()
        for first, last in _runs(firing):
            rows.append(
                {
                    "severity": pair.severity,
                    "long_window_s": float(pair.long_window_s),
                    "short_window_s": float(pair.short_window_s),
                    "factor": float(pair.factor),
                    "start": long.index[first],
                    "end": long.index[last],
                    "peak_burn_rate": float(long.iloc[first : last + 1].max()),
                }
            )
    columns = [
        "severity",
        "long_window_s",
        "short_window_s",
        "factor",
        "start",
        "end",
        "peak_burn_rate",
    ]
    return pd.DataFrame(rows, columns=columns)


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Return (first, last) positions of each run of True."""
    padded = np.concatenate([[False], mask.astype(bool), [False]])
    edges = np.flatnonzero(np.diff(padded.astype(int)))
    return [(int(a), int(b) - 1) for a, b in zip(edges[::2], edges[1::2], strict=True)]


# --------------------------------------------------------------------------- regressions


@dataclass(frozen=True)
class Regression:
    """An interval where a series stayed above ``factor`` × its baseline."""

    #: First sample above the threshold.
    start: pd.Timestamp
    #: First sample back at or under it (or one step past the last sample).
    end: pd.Timestamp
    peak_value: float
    peak_time: pd.Timestamp
    #: The rolling median just before ``start``, held for the whole interval.
    baseline_value: float
    threshold: float

    @property
    def duration_s(self) -> float:
        """Seconds from start to end."""
        return (self.end - self.start).total_seconds()


def find_regressions(
    p95: pd.Series, *, baseline_window_s: float, min_duration_s: float, factor: float
) -> list[Regression]:
    """Return the intervals where a latency quantile rose above factor × its baseline.

    The baseline at each sample is the median of the samples in the
    preceding ``baseline_window_s`` (the sample itself excluded), defined
    only once a full window lies behind it. When a sample rises above
    ``factor × baseline`` an interval starts, and the threshold is frozen at
    that sample's baseline until a sample falls back to or under it, so that
    a long regression does not raise its own baseline. Intervals shorter than
    ``min_duration_s`` are dropped. NaN samples end an interval.

    Parameters
    ----------
    p95
        A quantile series in seconds (for example p95) indexed by UTC timestamps.
    baseline_window_s
        Length of the preceding window whose median is the baseline.
    min_duration_s
        Shortest interval reported (end − start).
    factor
        How many times the baseline counts as a regression (1.5 = 50 % slower).
    """
    return _find_above(p95, baseline_window_s, min_duration_s, factor, floor=0.0)


def find_error_regressions(
    ratio: pd.Series,
    *,
    baseline_window_s: float,
    min_duration_s: float,
    factor: float = 2.0,
    min_error_ratio: float = 0.01,
) -> list[Regression]:
    """Return the intervals where the error ratio rose above its baseline, like latency.

    The threshold is ``max(factor × baseline, min_error_ratio)``: an error
    ratio's baseline is often 0, and any single error would otherwise count.

    Parameters
    ----------
    ratio
        An :func:`error_ratio` series.
    baseline_window_s
        Length of the preceding window whose median is the baseline.
    min_duration_s
        Shortest interval reported (end − start).
    factor
        How many times the baseline counts as a regression.
    min_error_ratio
        The lowest threshold, as a fraction of requests (0.01 = 1 %).
    """
    return _find_above(ratio, baseline_window_s, min_duration_s, factor, floor=min_error_ratio)


def _find_above(
    series: pd.Series,
    baseline_window_s: float,
    min_duration_s: float,
    factor: float,
    *,
    floor: float,
) -> list[Regression]:
    if baseline_window_s <= 0:
        raise ParameterError("baseline_window_s", f"must be positive, got {baseline_window_s}")
    if factor <= 0:
        raise ParameterError("factor", f"must be positive, got {factor}")
    data = series.sort_index()
    if data.empty:
        return []
    window = pd.Timedelta(seconds=baseline_window_s)
    baseline = data.rolling(window, closed="left").median()
    baseline = baseline.where(data.index >= data.index[0] + window)

    times = pd.DatetimeIndex(data.index)
    values = data.to_numpy(dtype=float)
    base = baseline.to_numpy(dtype=float)
    # Not asi8: its unit follows the index's resolution under pandas 3.
    spacing_s = np.diff(np.asarray((times - times[0]) / pd.Timedelta(seconds=1), dtype=float))
    step = pd.Timedelta(seconds=float(np.median(spacing_s))) if len(spacing_s) else pd.Timedelta(0)

    found: list[Regression] = []
    i = 0
    while i < len(values):
        threshold = max(factor * base[i], floor)
        if math.isnan(base[i]) or not values[i] > threshold:
            i += 1
            continue
        j = i
        while j < len(values) and values[j] > threshold:
            j += 1
        end = times[j] if j < len(values) else times[-1] + step
        peak_at = i + int(np.argmax(values[i:j]))
        candidate = Regression(
            start=times[i],
            end=end,
            peak_value=float(values[peak_at]),
            peak_time=times[peak_at],
            baseline_value=float(base[i]),
            threshold=float(threshold),
        )
        if candidate.duration_s >= min_duration_s:
            found.append(candidate)
        i = j
    return found


# --------------------------------------------------------------------------- deploys


_MARKER_COLUMNS = ["first_ready", "revision", "replicaset", "images", "change_cause", "created"]


def deploy_markers(replicasets: Sequence[Mapping[str, Any]], ready: pd.DataFrame) -> pd.DataFrame:
    """Return one row per ReplicaSet revision that became ready inside the range.

    Columns: ``first_ready`` (the first sample with ready replicas > 0 after
    0 or no sample, from ``replicaset_ready_replicas``), ``revision`` (int),
    ``replicaset``, ``images`` (tuple of the template's container images),
    ``change_cause`` (``kubernetes.io/change-cause`` or ""), ``created``
    (``creationTimestamp``). A ReplicaSet ready from the first sample of the
    range has no marker for that period. Sorted by ``first_ready``.

    A ReplicaSet brought back by ``kubectl rollout undo`` has a new revision
    number and the old ones in ``deployment.kubernetes.io/revision-history``;
    each of its ready periods gets the revision it had then, the latest period
    the current one and earlier periods the history's numbers, newest first.

    Parameters
    ----------
    replicasets
        ReplicaSet objects of the Deployment, as API-JSON dicts.
    ready
        A ``replicaset_ready_replicas`` answer (``timestamp, [namespace], replicaset, value``).
    """
    if ready.empty:
        return _empty_markers()
    range_start = ready["timestamp"].min()
    # The same template in two namespaces gives the same ReplicaSet name in both.
    by_namespace = "namespace" in ready.columns
    keys = ["namespace", "replicaset"] if by_namespace else ["replicaset"]
    series: dict[Any, pd.DataFrame] = {}
    for group_key, group in ready.groupby(keys):
        # A list of keys always gives tuples; one key is looked up by the bare name.
        series[group_key if by_namespace else group_key[0]] = group.sort_values("timestamp")

    rows = []
    for rs in replicasets:
        meta = rs.get("metadata") or {}
        name = str(meta.get("name"))
        key = (meta.get("namespace"), name) if by_namespace else name
        if key not in series:
            continue
        annotations = meta.get("annotations") or {}
        revisions = _revisions(annotations, name)
        starts = _ready_starts(series[key], range_start)
        containers = (((rs.get("spec") or {}).get("template") or {}).get("spec") or {}).get(
            "containers"
        ) or []
        images = tuple(str(c.get("image", "")) for c in containers)
        created = meta.get("creationTimestamp")
        # Newest period gets the current revision; earlier periods walk back the history.
        for k, start in enumerate(reversed(starts)):
            revision = revisions[max(len(revisions) - 1 - k, 0)]
            rows.append(
                {
                    "first_ready": start,
                    "revision": revision,
                    "replicaset": name,
                    "images": images,
                    "change_cause": str(annotations.get(CHANGE_CAUSE_ANNOTATION, "")),
                    "created": pd.Timestamp(created) if created else pd.NaT,
                }
            )
    if not rows:
        return _empty_markers()
    out = pd.DataFrame(rows, columns=_MARKER_COLUMNS)
    out["created"] = pd.to_datetime(out["created"], utc=True)
    out["first_ready"] = pd.to_datetime(out["first_ready"], utc=True)
    return out.sort_values(["first_ready", "revision"], ignore_index=True)


def _empty_markers() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "first_ready": pd.Series([], dtype="datetime64[ns, UTC]"),
            "revision": pd.Series([], dtype=int),
            "replicaset": pd.Series([], dtype=object),
            "images": pd.Series([], dtype=object),
            "change_cause": pd.Series([], dtype=object),
            "created": pd.Series([], dtype="datetime64[ns, UTC]"),
        }
    )


def _revisions(annotations: Mapping[str, Any], name: str) -> list[int]:
    """Return the ReplicaSet's revisions, oldest first, the current one last."""
    try:
        current = int(annotations[REVISION_ANNOTATION])
        history_text = str(annotations.get(REVISION_HISTORY_ANNOTATION, "")).strip()
        history = [int(r) for r in history_text.split(",") if r.strip()]
    except (KeyError, ValueError) as exc:
        raise ParameterError(
            "replicasets",
            f"ReplicaSet {name!r} has no integer {REVISION_ANNOTATION} annotation; "
            "pass the ReplicaSets a Deployment owns",
        ) from exc
    return [*sorted(history), current]


def _ready_starts(samples: pd.DataFrame, range_start: pd.Timestamp) -> list[pd.Timestamp]:
    """Return the samples where ready replicas went from 0 (or no sample) to > 0."""
    values = samples["value"].to_numpy(dtype=float)
    times = list(samples["timestamp"])
    starts = []
    for i, value in enumerate(values):
        if not value > 0:
            continue
        if i == 0:
            if times[0] > range_start:
                starts.append(times[0])
        elif not values[i - 1] > 0:
            starts.append(times[i])
    return starts


@dataclass(frozen=True)
class Marker:
    """The revision that was live at an instant, and how long it had been live."""

    revision: int
    replicaset: str
    images: tuple[str, ...]
    change_cause: str
    created: pd.Timestamp
    first_ready: pd.Timestamp
    #: Seconds from ``first_ready`` to the event.
    delay_s: float


def attribute(event_time: datetime | pd.Timestamp, markers: pd.DataFrame) -> Marker | None:
    """Return the newest marker whose first-ready time is at or before the event, or None."""
    moment = pd.Timestamp(event_time)
    if moment.tzinfo is None:
        raise ParameterError("event_time", f"{event_time!r} has no UTC offset; give one")
    before = markers[markers["first_ready"] <= moment]
    if before.empty:
        return None
    row = before.sort_values("first_ready").iloc[-1]
    return Marker(
        revision=int(row["revision"]),
        replicaset=str(row["replicaset"]),
        images=tuple(row["images"]),
        change_cause=str(row["change_cause"]),
        created=row["created"],
        first_ready=row["first_ready"],
        delay_s=(moment - row["first_ready"]).total_seconds(),
    )


def recovery(incident: Incident, markers: pd.DataFrame) -> Marker | None:
    """Return the first revision that became ready after the incident began, with its delay.

    For a bad release rolled back, that is the rollback's revision, and
    ``delay_s`` is the recovery time: from its first ready pod to the
    incident's end. None when no revision became ready inside the incident.
    """
    after = markers[
        (markers["first_ready"] > incident.start) & (markers["first_ready"] <= incident.end)
    ]
    if after.empty:
        return None
    row = after.sort_values("first_ready").iloc[0]
    return Marker(
        revision=int(row["revision"]),
        replicaset=str(row["replicaset"]),
        images=tuple(row["images"]),
        change_cause=str(row["change_cause"]),
        created=row["created"],
        first_ready=row["first_ready"],
        delay_s=(incident.end - row["first_ready"]).total_seconds(),
    )


# --------------------------------------------------------------------------- incidents


@dataclass(frozen=True)
class Incident:
    """An interval where latency, errors or both regressed, merged from both signals."""

    start: pd.Timestamp
    end: pd.Timestamp
    #: Which signals regressed: ``"latency"``, ``"errors"`` or both.
    signals: tuple[str, ...]
    peak_p95_s: float
    peak_error_ratio: float
    baseline_p95_s: float
    baseline_error_ratio: float

    @property
    def duration_s(self) -> float:
        """Seconds from start to end."""
        return (self.end - self.start).total_seconds()


def find_incidents(
    p95: pd.Series,
    ratio: pd.Series,
    *,
    factor: float,
    baseline_window_s: float,
    min_duration_s: float,
    min_error_ratio: float = 0.002,
) -> list[Incident]:
    """Return latency and error regressions merged where they overlap, earliest first.

    An error burst and a latency rise caused by the same release usually start
    minutes apart; reporting them as one incident that starts at the earlier
    signal is what an on-call engineer wants to read.

    Parameters
    ----------
    p95
        The p95 latency series in seconds.
    ratio
        The error-ratio series (:func:`error_ratio`).
    factor
        How many times its rolling baseline a signal must reach.
    baseline_window_s
        Length of the preceding window whose median is the baseline.
    min_duration_s
        Shortest regression reported per signal.
    min_error_ratio
        The error-ratio threshold's floor (a baseline of 0 would flag any error).
    """
    found: list[tuple[str, Regression]] = [
        ("latency", r)
        for r in find_regressions(
            p95, baseline_window_s=baseline_window_s, min_duration_s=min_duration_s, factor=factor
        )
    ]
    found += [
        ("errors", r)
        for r in find_error_regressions(
            ratio,
            baseline_window_s=baseline_window_s,
            min_duration_s=min_duration_s,
            factor=factor,
            min_error_ratio=min_error_ratio,
        )
    ]
    found.sort(key=lambda item: item[1].start)

    merged: list[list[Any]] = []  # [start, end, signals, [regressions]]
    for signal, reg in found:
        if merged and reg.start <= merged[-1][1]:
            last = merged[-1]
            last[1] = max(last[1], reg.end)
            last[2].add(signal)
            last[3].append((signal, reg))
        else:
            merged.append([reg.start, reg.end, {signal}, [(signal, reg)]])

    incidents = []
    for begin, finish, signals, members in merged:
        inside_p95 = p95[(p95.index >= begin) & (p95.index < finish)]
        inside_ratio = ratio[(ratio.index >= begin) & (ratio.index < finish)]
        baselines = {sig: reg.baseline_value for sig, reg in members}
        incidents.append(
            Incident(
                start=begin,
                end=finish,
                signals=tuple(sorted(signals)),
                peak_p95_s=float(inside_p95.max()) if len(inside_p95) else math.nan,
                peak_error_ratio=float(inside_ratio.max()) if len(inside_ratio) else math.nan,
                baseline_p95_s=baselines.get("latency", math.nan),
                baseline_error_ratio=baselines.get("errors", math.nan),
            )
        )
    return incidents


def refinement_times(
    coarse_start: pd.Timestamp,
    *,
    interval_s: float = 30.0,
    lookback_s: float = 600.0,
    lookahead_s: float = 60.0,
) -> list[pd.Timestamp]:
    """Return scrape-grid instants around a coarse detection, for one-interval queries.

    The instants run every ``interval_s`` (on the Unix-epoch grid) from
    ``lookback_s`` before ``coarse_start`` to ``lookahead_s`` after it. Query
    each with a window of 1.5 intervals, which holds the last two samples
    under both Prometheus 2.x and 3.x range rules, so each answer covers the
    one scrape interval that ends there.

    Parameters
    ----------
    coarse_start
        The start found at the notebook's step.
    interval_s
        The scrape interval.
    lookback_s
        How far before ``coarse_start`` to look.
    lookahead_s
        How far after it to look.
    """
    if not interval_s > 0:
        raise ParameterError("interval_s", f"must be positive, got {interval_s}")
    moment = pd.Timestamp(coarse_start)
    first_s = math.floor((moment.timestamp() - lookback_s) / interval_s) * interval_s
    last_s = moment.timestamp() + lookahead_s
    count = int((last_s - first_s) // interval_s) + 1
    return [pd.Timestamp(first_s + k * interval_s, unit="s", tz="UTC") for k in range(count)]


def refine_start(
    fine: pd.Series, *, threshold: float, coarse_start: pd.Timestamp
) -> pd.Timestamp | None:
    """Return where the scrape interval that first crossed ``threshold`` begins, or None.

    ``fine`` holds one value per scrape interval, indexed by the interval's
    end. The last value at or under the threshold no later than
    ``coarse_start`` closes the quiet period; the next interval, which starts
    at that value's time, is the first one above. When the partly regressed
    interval already crosses, the answer is its start, at most one interval
    before the true start; otherwise the first fully regressed interval's
    start, at most one interval after. None when no quiet interval lies in
    ``fine`` or the interval after the quiet one is not above the threshold.
    """
    data = fine.sort_index().dropna()
    moment = pd.Timestamp(coarse_start)
    quiet = data[(data.index <= moment) & ~(data > threshold)]
    if quiet.empty:
        return None
    last_quiet = quiet.index[-1]
    after = data[data.index > last_quiet]
    if after.empty or not after.iloc[0] > threshold:
        return None
    return pd.Timestamp(last_quiet)


def refine_incident(
    incident: Incident,
    fine_p95: pd.Series,
    fine_ratio: pd.Series,
    *,
    factor: float,
    min_error_ratio: float = 0.002,
) -> Incident:
    """Return the incident with its start moved to the first scrape interval that regressed.

    Each regressed signal is refined with :func:`refine_start` against the
    threshold that detected it (``factor`` × its baseline, and for errors at
    least ``min_error_ratio``); the earliest refined start wins. A signal that
    cannot be refined leaves the coarse start in place.

    Parameters
    ----------
    incident
        One of :func:`find_incidents`'s answers.
    fine_p95
        p95 per scrape interval (seconds), indexed by the interval's end.
    fine_ratio
        Error ratio per scrape interval, indexed the same way.
    factor
        The regression factor :func:`find_incidents` used.
    min_error_ratio
        The error threshold's floor :func:`find_incidents` used.
    """
    candidates = []
    if "latency" in incident.signals and not math.isnan(incident.baseline_p95_s):
        threshold = factor * incident.baseline_p95_s
        candidates.append(refine_start(fine_p95, threshold=threshold, coarse_start=incident.start))
    if "errors" in incident.signals and not math.isnan(incident.baseline_error_ratio):
        threshold = max(factor * incident.baseline_error_ratio, min_error_ratio)
        candidates.append(
            refine_start(fine_ratio, threshold=threshold, coarse_start=incident.start)
        )
    found = [c for c in candidates if c is not None]
    if not found:
        return incident
    return replace(incident, start=min(found))


def request_totals(
    request_increase: pd.DataFrame, *, error_statuses: Sequence[str] = ("error",)
) -> tuple[float, float]:
    """Return (requests, errors) from an instant ``request_increase`` answer by status."""
    if request_increase.empty:
        return 0.0, 0.0
    values = request_increase.groupby("status")["value"].sum()
    errors = float(values[values.index.isin(list(error_statuses))].sum())
    return float(values.sum()), errors


def marker_events(markers: pd.DataFrame) -> list[tuple[pd.Timestamp, str]]:
    """Return (time, label) pairs for charting deploy markers (``rev 3``)."""
    return [
        (pd.Timestamp(moment), f"rev {revision}")
        for moment, revision in zip(markers["first_ready"], markers["revision"], strict=True)
    ]


def hpa_for_workload(hpas: Sequence[Mapping[str, Any]], workload: str) -> str | None:
    """Return the name of the HorizontalPodAutoscaler that scales Deployment ``workload``."""
    for hpa in hpas:
        target = (hpa.get("spec") or {}).get("scaleTargetRef") or {}
        if target.get("kind", "Deployment") == "Deployment" and target.get("name") == workload:
            return str((hpa.get("metadata") or {}).get("name"))
    return None


def scale_markers(desired: pd.DataFrame, *, hpa: str | None = None) -> pd.DataFrame:
    """Return one row per change of the HPA's desired replicas inside the range.

    Columns: ``time`` (the first sample with the new count), ``from_replicas``,
    ``to_replicas``, ``direction`` (``up`` or ``down``). Missing samples are
    skipped, not read as zero, so a scrape gap is no scale event.

    Parameters
    ----------
    desired
        An ``hpa_desired_replicas`` answer (``timestamp, [horizontalpodautoscaler], value``).
    hpa
        Keep only this HPA's series (the namespace may hold several); all summed when None.
    """
    frame = desired
    if hpa is not None and "horizontalpodautoscaler" in frame.columns:
        frame = frame[frame["horizontalpodautoscaler"].astype(str) == hpa]
    counts = frame.groupby("timestamp")["value"].sum().sort_index() if len(frame) else None
    if counts is None or counts.empty:
        return pd.DataFrame(
            {
                "time": pd.Series([], dtype="datetime64[ns, UTC]"),
                "from_replicas": pd.Series([], dtype=int),
                "to_replicas": pd.Series([], dtype=int),
                "direction": pd.Series([], dtype=object),
            }
        )
    previous = counts.shift(1)
    changed = counts[previous.notna() & (counts != previous)]
    before = previous[changed.index]
    return pd.DataFrame(
        {
            "time": pd.to_datetime(changed.index, utc=True),
            "from_replicas": before.astype(int).to_numpy(),
            "to_replicas": changed.astype(int).to_numpy(),
            "direction": np.where(changed.to_numpy() > before.to_numpy(), "up", "down"),
        }
    ).reset_index(drop=True)


def restart_markers(restarts: pd.DataFrame) -> pd.DataFrame:
    """Return one row per sample at which a container's restart counter went up.

    Columns: ``time``, ``pod``, ``container``, ``restarts`` (how many restarts
    between the previous sample and this one). A series that first appears
    with restarts already counted is not a restart inside the range.

    Parameters
    ----------
    restarts
        A ``container_restarts`` answer (``timestamp, namespace, pod, container, value``),
        the raw ``kube_pod_container_status_restarts_total`` per container.
    """
    keys = [c for c in ("namespace", "pod", "container") if c in restarts.columns]
    rows: list[dict[str, Any]] = []
    if len(restarts) and keys:
        for key, group in restarts.sort_values("timestamp").groupby(keys, observed=True):
            labels = dict(zip(keys, key if isinstance(key, tuple) else (key,), strict=True))
            values = group["value"].to_numpy(dtype=float)
            times = group["timestamp"]
            grew = np.flatnonzero(np.diff(values) > 0) + 1
            rows.extend(
                {
                    "time": pd.Timestamp(times.iloc[i]),
                    "pod": str(labels.get("pod", "")),
                    "container": str(labels.get("container", "")),
                    "restarts": int(values[i] - values[i - 1]),
                }
                for i in grew
            )
    out = pd.DataFrame(rows, columns=["time", "pod", "container", "restarts"])
    out["time"] = pd.to_datetime(out["time"], utc=True)
    out["restarts"] = out["restarts"].astype(int)
    return out.sort_values(["time", "pod", "container"], ignore_index=True)


def marker_groups(
    deploys: pd.DataFrame, scales: pd.DataFrame, restarts: pd.DataFrame
) -> dict[str, list[tuple[pd.Timestamp, str]]]:
    """Return chart markers by kind: deploys (``rev 3``), HPA scale events, pod restarts.

    Scale events are labelled with their new replica count (``→4``); restarts
    with the pod's name suffix. The keys are the legend's entries.
    """
    return {
        "deploy": marker_events(deploys),
        "HPA scale": [
            (pd.Timestamp(t), f"\u2192{n}")
            for t, n in zip(scales["time"], scales["to_replicas"], strict=True)
        ],
        "pod restart": [
            (pd.Timestamp(t), str(pod).rsplit("-", 1)[-1])
            for t, pod in zip(restarts["time"], restarts["pod"], strict=True)
        ],
    }


def regressions_frame(incidents: Sequence[Incident], markers: pd.DataFrame) -> pd.DataFrame:
    """Return one row per incident with the revision live at its start."""
    rows = []
    for incident in incidents:
        culprit = attribute(incident.start, markers)
        rows.append(
            {
                "start": incident.start,
                "end": incident.end,
                "minutes": round(incident.duration_s / 60, 1),
                "signals": ", ".join(incident.signals),
                "peak p95 (s)": round(incident.peak_p95_s, 3),
                "peak error ratio": round(incident.peak_error_ratio, 4),
                "revision live at start": culprit.revision if culprit else None,
                "minutes after it became ready": (
                    round(culprit.delay_s / 60, 1) if culprit else None
                ),
            }
        )
    return pd.DataFrame(rows)


def verdict_sentence(slo: SloReport) -> str:
    """Return one sentence saying whether the SLO was met, with the numbers."""
    verb = "met" if slo.met else "missed"
    return (
        f"Availability SLO {slo.target:.3%} {verb}: attainment {slo.attainment:.3%} "
        f"over the window, burn rate {slo.burn_rate:.2f}."
    )


def headline(
    slo: SloReport,
    overall: pd.Series,
    incidents: Sequence[Incident],
    culprit: Marker | None,
    exhaustion: datetime | None,
) -> str:
    """Return the notebook's headline as Markdown: verdict, latency, budget, incident."""
    lines = [f"**{verdict_sentence(slo)}**", ""]
    lines.append(
        f"- Latency over the window: p50 {overall.get(0.5, math.nan) * 1000:.0f} ms, "
        f"p95 {overall.get(0.95, math.nan) * 1000:.0f} ms, "
        f"p99 {overall.get(0.99, math.nan) * 1000:.0f} ms."
    )
    lines.append(
        f"- {slo.errors:,.0f} errors in {slo.requests:,.0f} requests; error budget "
        f"{slo.error_budget:.3%} of requests, {slo.budget_consumed:.0%} of the period's budget "
        f"consumed, {slo.budget_remaining:.0%} remaining."
    )
    if slo.history_s < slo.period_s:
        lines.append(
            f"- The window covers {slo.history_s / 86400:.1f} of the SLO period's "
            f"{slo.period_s / 86400:.0f} days: attainment is the window's, and the remaining "
            "budget is the period's budget minus what the window consumed."
        )
    if exhaustion is not None:
        lines.append(f"- At this burn rate the budget runs out on {exhaustion:%Y-%m-%d %H:%M} UTC.")
    if incidents:
        first = incidents[0]
        text = (
            f"- {len(incidents)} regression(s). The first began {first.start:%Y-%m-%d %H:%M} UTC "
            f"and lasted {first.duration_s / 60:.0f} min ({', '.join(first.signals)}): "
            f"p95 up to {first.peak_p95_s * 1000:.0f} ms, error ratio up to "
            f"{first.peak_error_ratio:.2%}."
        )
        if culprit is not None:
            images = ", ".join(culprit.images)
            text += (
                f" It started {culprit.delay_s / 60:.1f} min after revision {culprit.revision} "
                f"({images}) became ready."
            )
        lines.append(text)
    else:
        lines.append("- No latency or error regression stood out from its baseline.")
    return "\n".join(lines)


def around(frame: pd.DataFrame, incident: Incident, *, margin_s: float) -> pd.DataFrame:
    """Return the rows of a time-indexed frame from ``margin_s`` before to after an incident."""
    margin = pd.Timedelta(seconds=margin_s)
    index = pd.DatetimeIndex(frame.index)
    return frame[(index >= incident.start - margin) & (index <= incident.end + margin)]
