"""An in-memory store of raw series, and the evaluation of catalog queries on it.

The demo scenario writes its history here; bundles may too. Evaluating a
catalog entry (:mod:`rknb.catalog`) over these raw samples follows
Prometheus's own rules (:mod:`rknb.promql`): range windows, extrapolated
``rate``/``increase``, the 5-minute lookback of instant selectors, and
``sum``/``max by``. This is not a PromQL engine: it evaluates the catalog's
small structures and nothing else.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from rknb import promql
from rknb.catalog import Matcher, Query, Selector
from rknb.errors import ParameterError
from rknb.promql import Semantics

__all__ = [
    "Aggregation",
    "RangeFunction",
    "RawSeries",
    "SeriesStore",
    "aggregate",
    "evaluate_instant",
    "evaluate_range",
    "evaluation_times",
    "select_series",
    "series_frame",
    "series_values",
]

#: Functions :func:`series_values` applies to one series; ``last`` is a plain
#: instant selector (newest sample within the 5-minute lookback).
RangeFunction = Literal["rate", "increase", "irate", "resets", "max_over_time", "last"]

#: Aggregation operators :func:`aggregate` knows.
Aggregation = Literal["sum", "max", "min", "avg", "count"]


@dataclass(frozen=True)
class RawSeries:
    """One series: metric name, labels, and samples (Unix seconds, float64 values).

    ``t_s`` is int64 and strictly increasing; ``values`` has the same length.
    Counters carry their raw cumulative values, resets included.
    """

    name: str
    labels: tuple[tuple[str, str], ...]
    t_s: np.ndarray
    values: np.ndarray

    @property
    def label_dict(self) -> dict[str, str]:
        """The labels as a dict, with ``__name__`` included."""
        return {"__name__": self.name, **dict(self.labels)}


@dataclass
class SeriesStore:
    """Raw series indexed by metric name."""

    _by_name: dict[str, list[RawSeries]] = field(default_factory=dict)

    def add(
        self, name: str, labels: Mapping[str, str], t_s: np.ndarray, values: np.ndarray
    ) -> None:
        """Add one series; labels are sorted so that equal sets compare equal."""
        t = np.asarray(t_s, dtype=np.int64)
        v = np.asarray(values, dtype=np.float64)
        if t.shape != v.shape or t.ndim != 1:
            raise ValueError(f"{name}{dict(labels)}: timestamps and values differ in shape")
        if len(t) > 1 and not np.all(np.diff(t) > 0):
            raise ValueError(f"{name}{dict(labels)}: timestamps must increase strictly")
        series = RawSeries(name, tuple(sorted(labels.items())), t, v)
        self._by_name.setdefault(name, []).append(series)

    def extend(self, series: Iterable[RawSeries]) -> None:
        """Add series that were built elsewhere."""
        for s in series:
            self._by_name.setdefault(s.name, []).append(s)

    def names(self) -> list[str]:
        """Return the metric names, sorted."""
        return sorted(self._by_name)

    def series(self, name: str) -> list[RawSeries]:
        """Return the series of one metric name (empty when unknown)."""
        return list(self._by_name.get(name, ()))

    def __iter__(self) -> Iterator[RawSeries]:
        for name in self.names():
            yield from self._by_name[name]

    def __len__(self) -> int:
        return sum(len(v) for v in self._by_name.values())

    @property
    def sample_count(self) -> int:
        """Total number of samples over all series."""
        return sum(len(s.t_s) for s in self)


# --------------------------------------------------------------------------
# Evaluation


def select_series(
    store: SeriesStore, matchers: Sequence[Matcher], *, metric: str | None = None
) -> list[RawSeries]:
    """Return the series whose labels (``__name__`` included) satisfy every matcher.

    ``metric`` narrows the search to one metric name; without it every series
    in the store is tried, so a matcher on ``__name__`` can pick them.
    """
    candidates = store.series(metric) if metric is not None else list(store)
    return [s for s in candidates if all(m.matches(s.label_dict) for m in matchers)]


def evaluation_times(start_s: float, end_s: float, step_s: float) -> np.ndarray:
    """Return ``start + k * step`` for every k with the time at most ``end``, as query_range does.

    Times are computed in whole milliseconds, as Prometheus does, and
    returned in seconds.
    """
    if not step_s > 0 or math.isinf(step_s):
        raise ParameterError("step", f"the step must be a positive number of seconds, got {step_s}")
    if end_s < start_s:
        raise ParameterError("end", f"the range ends at {end_s} before it starts at {start_s}")
    start_ms = round(start_s * 1000)
    end_ms = round(end_s * 1000)
    step_ms = max(round(step_s * 1000), 1)
    count = (end_ms - start_ms) // step_ms + 1
    return (start_ms + step_ms * np.arange(count, dtype=np.int64)) / 1000.0


def series_values(
    series: RawSeries,
    function: RangeFunction,
    eval_t_s: np.ndarray,
    *,
    window_s: float,
    offset_s: float = 0.0,
    semantics: Semantics | None = None,
) -> np.ndarray:
    """Return one series' function value at each evaluation time; NaN where it has none.

    Parameters
    ----------
    series
        The raw series.
    function
        ``rate``, ``increase``, ``irate``, ``resets`` or ``max_over_time`` over
        a ``[window_s]`` range, or ``last`` (an instant selector with the
        5-minute lookback; ``window_s`` is then not used).
    eval_t_s
        Evaluation times in Unix seconds.
    window_s
        The range selector's length in seconds.
    offset_s
        The selector's ``offset`` in seconds.
    semantics
        2 or 3; :func:`rknb.promql.default_semantics` when omitted.
    """
    t_s = series.t_s.astype(np.float64)
    if function == "last":
        return promql.instant_value(
            t_s, series.values, np.asarray(eval_t_s) - offset_s, semantics=semantics
        )
    if function in ("rate", "increase"):
        return promql.extrapolated_rate(
            t_s,
            series.values,
            eval_t_s,
            window_s,
            is_rate=function == "rate",
            offset_s=offset_s,
            semantics=semantics,
        )
    ranged = {
        "irate": promql.irate,
        "resets": promql.resets,
        "max_over_time": promql.max_over_time,
    }
    if function not in ranged:
        known = ", ".join(["rate", "increase", *ranged, "last"])
        raise ParameterError("function", f"unknown function {function!r}; known: {known}")
    return ranged[function](
        t_s, series.values, eval_t_s, window_s, offset_s=offset_s, semantics=semantics
    )


def aggregate(
    label_sets: Sequence[Mapping[str, str]],
    values: np.ndarray,
    *,
    by: Sequence[str] | None,
    op: Aggregation = "sum",
) -> list[tuple[dict[str, str], np.ndarray]]:
    """Return ``op by (by)`` over series: one (labels, values) pair per group, sorted by labels.

    ``values`` has one row per series and one column per evaluation time,
    NaN where a series has no value. A group has a value at a time only
    where at least one member has one, as in PromQL. With ``by=None`` the
    series pass through unaggregated, minus ``__name__``.

    Parameters
    ----------
    label_sets
        The labels of each row of ``values``.
    values
        Shape (series, evaluation times).
    by
        The labels to keep; a series lacking one counts as having it empty.
    op
        ``sum``, ``max``, ``min``, ``avg`` or ``count``.
    """
    matrix = np.asarray(values, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] != len(label_sets):
        matrix = matrix.reshape(len(label_sets), -1)
    if by is None:
        rows = [
            ({k: v for k, v in labels.items() if k != "__name__"}, matrix[i])
            for i, labels in enumerate(label_sets)
        ]
        return sorted(rows, key=lambda row: sorted(row[0].items()))

    members: dict[tuple[str, ...], list[int]] = {}
    for i, labels in enumerate(label_sets):
        members.setdefault(tuple(labels.get(k, "") for k in by), []).append(i)
    out = []
    for key in sorted(members):
        block = matrix[members[key]]
        present = ~np.isnan(block)
        count = present.sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            if op == "sum":
                combined = np.nansum(block, axis=0)
            elif op == "avg":
                combined = np.nansum(block, axis=0) / count
            elif op == "max":
                combined = np.max(np.where(present, block, -np.inf), axis=0)
            elif op == "min":
                combined = np.min(np.where(present, block, np.inf), axis=0)
            elif op == "count":
                combined = count.astype(np.float64)
            else:
                raise ParameterError(
                    "aggregation", f"unknown aggregation {op!r}; known: sum, max, min, avg, count"
                )
        combined = np.where(count > 0, combined, np.nan)
        labels = {k: v for k, v in zip(by, key, strict=True) if v != ""}
        out.append((labels, combined))
    return out


def series_frame(
    groups: Sequence[tuple[Mapping[str, str], np.ndarray]],
    eval_t_s: np.ndarray,
    *,
    labels: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Return the long frame of (labels, values) pairs, NaN points dropped.

    Columns are ``timestamp`` (UTC), one per label (the given names, else
    every label seen, sorted), and ``value``; rows are sorted by labels, then
    time. A label a group lacks is the empty string, as in PromQL.
    """
    names = list(labels) if labels is not None else sorted({k for g, _ in groups for k in g})
    eval_ms = np.round(np.asarray(eval_t_s, dtype=np.float64) * 1000).astype(np.int64)
    order = sorted(range(len(groups)), key=lambda i: [groups[i][0].get(n, "") for n in names])

    times: list[np.ndarray] = []
    values: list[np.ndarray] = []
    label_columns: dict[str, list[np.ndarray]] = {n: [] for n in names}
    for i in order:
        group_labels, group_values = groups[i]
        row = np.broadcast_to(np.asarray(group_values, dtype=np.float64), eval_ms.shape)
        keep = ~np.isnan(row)
        n = int(keep.sum())
        if n == 0:
            continue
        times.append(eval_ms[keep])
        values.append(row[keep])
        for name in names:
            label_columns[name].append(np.full(n, group_labels.get(name, ""), dtype=object))

    def joined(parts: list[np.ndarray], dtype: type) -> np.ndarray:
        return np.concatenate(parts) if parts else np.array([], dtype=dtype)

    columns: dict[str, pd.Series] = {
        "timestamp": pd.Series(pd.to_datetime(joined(times, np.int64), unit="ms", utc=True)).astype(
            "datetime64[ns, UTC]"
        )
    }
    for name in names:
        columns[name] = pd.Series(joined(label_columns[name], object), dtype=object)
    columns["value"] = pd.Series(joined(values, np.float64), dtype=np.float64)
    return pd.DataFrame(columns)


def _evaluate(
    store: SeriesStore,
    query: Query,
    selector: Selector,
    eval_t_s: np.ndarray,
    window_s: float | None,
    semantics: Semantics | None,
) -> pd.DataFrame:
    mode = promql.resolve_semantics(semantics)
    window = float(window_s if window_s is not None else query.window_s)
    if not window > 0:
        raise ParameterError("window", f"a range window must be positive, got {window} s")
    chosen = select_series(store, query.selector_matchers(selector), metric=query.metric)
    if chosen:
        matrix = np.vstack(
            [
                series_values(s, query.function, eval_t_s, window_s=window, semantics=mode)
                for s in chosen
            ]
        )
    else:
        matrix = np.empty((0, len(eval_t_s)))
    groups = aggregate([s.label_dict for s in chosen], matrix, by=query.by, op=query.aggregation)
    return series_frame(groups, eval_t_s, labels=query.by)


def evaluate_range(
    store: SeriesStore,
    query: Query,
    selector: Selector,
    start_s: float,
    end_s: float,
    step_s: float,
    *,
    window_s: float | None = None,
    semantics: Semantics | None = None,
) -> pd.DataFrame:
    """Return a catalog query evaluated at every step of a range, as Prometheus's query_range.

    Parameters
    ----------
    store
        The raw series.
    query
        The catalog entry: metric, matchers, function, window, aggregation.
    selector
        Namespace, workload, container and extra labels to match.
    start_s
        First evaluation time, Unix seconds.
    end_s
        Last possible evaluation time, Unix seconds (included when on the grid).
    step_s
        Seconds between evaluation times.
    window_s
        Replaces the query's range window (``rate(x[window])``).
    semantics
        2 or 3; :func:`rknb.promql.default_semantics` when omitted.
    """
    eval_t_s = evaluation_times(start_s, end_s, step_s)
    return _evaluate(store, query, selector, eval_t_s, window_s, semantics)


def evaluate_instant(
    store: SeriesStore,
    query: Query,
    selector: Selector,
    time_s: float,
    *,
    window_s: float | None = None,
    semantics: Semantics | None = None,
) -> pd.DataFrame:
    """Return a catalog query evaluated at one instant (one row per resulting series).

    Parameters
    ----------
    store
        The raw series.
    query
        The catalog entry.
    selector
        Namespace, workload, container and extra labels to match.
    time_s
        The evaluation time, Unix seconds.
    window_s
        Replaces the query's range window (``increase(x[14d])``).
    semantics
        2 or 3; :func:`rknb.promql.default_semantics` when omitted.
    """
    eval_t_s = np.array([round(time_s * 1000) / 1000.0])
    return _evaluate(store, query, selector, eval_t_s, window_s, semantics)
