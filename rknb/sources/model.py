"""A metrics source that answers catalog queries from raw series held in memory.

The demo scenario (and anything else that can fill a
:class:`~rknb.tsdb.SeriesStore`) answers notebooks through this source, with
the same window, extrapolation and lookback rules a Prometheus server would
apply (:mod:`rknb.promql`). It evaluates the catalog's structures only: a
catalog entry overridden with PromQL text is refused, since no offline
source evaluates arbitrary PromQL.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime

import pandas as pd

from rknb.catalog import Query, Selector, get_query, render_promql
from rknb.errors import QueryError
from rknb.promql import Semantics, resolve_semantics
from rknb.sources.base import Window
from rknb.times import format_duration, format_time, to_unix
from rknb.tsdb import SeriesStore, evaluate_instant, evaluate_range

__all__ = ["StoreMetricsSource"]

logger = logging.getLogger(__name__)


class StoreMetricsSource:
    """Answers catalog queries over a :class:`~rknb.tsdb.SeriesStore` (the MetricsSource protocol).

    Parameters
    ----------
    store
        The raw series to evaluate over.
    reference_time
        The instant the data ends at (aware UTC); ``report_time`` defaults to it.
    description
        A short description safe to print, such as ``demo scenario (seed 7)``.
    catalog
        The query catalog to look names up in; the built-in one when omitted.
    semantics
        Prometheus 2 or 3 rules; ``RKNB_PROMQL_SEMANTICS`` (default 3) when omitted.
    """

    def __init__(
        self,
        store: SeriesStore,
        *,
        reference_time: datetime,
        description: str,
        catalog: Mapping[str, Query] | None = None,
        semantics: Semantics | None = None,
    ) -> None:
        if reference_time.tzinfo is None:
            raise ValueError(f"reference_time {reference_time!r} must carry a UTC offset")
        self.store = store
        self.reference_time: datetime | None = reference_time
        self.description = description
        self.catalog = catalog
        self.semantics: Semantics = resolve_semantics(semantics)

    def __repr__(self) -> str:
        return f"StoreMetricsSource({self.description!r}, {len(self.store)} series)"

    def _lookup(self, name: str, selector: Selector, window_s: float | None) -> Query:
        query = get_query(name, self.catalog)
        if query.promql is not None:
            raise QueryError(
                f"query {name!r} is overridden with PromQL text, which {self.description} "
                "cannot evaluate offline; remove the 'promql' override or use a Prometheus source",
                query=render_promql(query, selector, window_s=window_s),
            )
        return query

    def query_range(
        self, query: str, selector: Selector, window: Window, *, window_s: float | None = None
    ) -> pd.DataFrame:
        """Return the query's series over the window, one row per sample.

        ``window_s`` replaces the catalog entry's range (``increase(x[1h])``) at every step.
        """
        entry = self._lookup(query, selector, window_s)
        frame = evaluate_range(
            self.store,
            entry,
            selector,
            to_unix(window.start),
            to_unix(window.end),
            window.step_s,
            window_s=window_s,
            semantics=self.semantics,
        )
        logger.info(
            "%s: %s for %s over %s..%s step %s: %d rows",
            self.description,
            query,
            selector.describe(),
            format_time(window.start),
            format_time(window.end),
            format_duration(window.step_s),
            len(frame),
        )
        return frame

    def query_instant(
        self, query: str, selector: Selector, time: datetime, *, window_s: float | None = None
    ) -> pd.DataFrame:
        """Return the query's value per series at one instant.

        ``window_s`` replaces the catalog entry's range (``increase(x[14d])``).
        """
        entry = self._lookup(query, selector, window_s)
        frame = evaluate_instant(
            self.store,
            entry,
            selector,
            to_unix(time),
            window_s=window_s,
            semantics=self.semantics,
        )
        window = format_duration(window_s if window_s is not None else entry.window_s)
        logger.info(
            "%s: %s for %s at %s window %s: %d series",
            self.description,
            query,
            selector.describe(),
            format_time(time),
            window,
            len(frame),
        )
        return frame
