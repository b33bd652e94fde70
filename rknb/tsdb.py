"""An in-memory store of raw series, and the evaluation of catalog queries on it.

The demo scenario writes its history here; bundles may too. Evaluating a
catalog entry (:mod:`rknb.catalog`) over these raw samples follows
Prometheus's own rules (:mod:`rknb.promql`): range windows, extrapolated
``rate``/``increase``, the 5-minute lookback of instant selectors, and
``sum``/``max by``. This is not a PromQL engine: it evaluates the catalog's
small structures and nothing else.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

import numpy as np

__all__ = ["RawSeries", "SeriesStore"]


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

    def add(self, name: str, labels: Mapping[str, str], t_s: np.ndarray, values: np.ndarray) -> None:
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
