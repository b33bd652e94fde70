"""The house style for charts: one look for every notebook and report.

Every chart has a title, labelled axes with units, UTC time axes, and
optional event markers (deploys, rollbacks, OOM kills) drawn the same way
everywhere. Functions return the ``Figure`` so notebooks can show it and
tests can inspect it; nothing here reads data or computes figures.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

__all__ = ["PALETTE", "bar_chart", "mark_events", "new_figure", "time_series"]

PALETTE = ["#1f5fa8", "#d95f02", "#1b9e77", "#7570b3", "#e7298a", "#66a61e", "#a6761d", "#666666"]
_EVENT_COLOR = "#b2182b"
_THRESHOLD_COLOR = "#444444"


def new_figure(*, rows: int = 1, height: float = 3.6, width: float = 10.0) -> tuple[Figure, Any]:
    """Return a figure and its axes in the house size and style."""
    fig, axes = plt.subplots(
        rows, 1, figsize=(width, height * rows), dpi=100, squeeze=True, sharex=rows > 1
    )
    for ax in axes if rows > 1 else [axes]:
        _style_axes(ax)
    return fig, axes


def time_series(
    series: Mapping[str, pd.Series],
    *,
    title: str,
    ylabel: str,
    ax: Axes | None = None,
    threshold: float | None = None,
    threshold_label: str = "",
    events: Iterable[tuple[datetime, str]] = (),
    step: bool = False,
    logy: bool = False,
) -> Figure:
    """Return a line chart of named series over UTC time, with optional threshold and events.

    Parameters
    ----------
    series
        Line label to a Series indexed by aware UTC timestamps.
    title
        The chart's title.
    ylabel
        The y axis label, with its unit.
    ax
        Axes to draw on; a new figure when omitted.
    threshold
        A horizontal reference line (a target, a limit).
    threshold_label
        The legend text of the threshold line.
    events
        (time, label) pairs drawn as vertical markers.
    step
        Draw as steps (for counts such as replicas).
    logy
        Use a logarithmic y axis.
    """
    if ax is None:
        fig, ax = new_figure()
    else:
        fig = ax.figure  # type: ignore[assignment]
    for i, (label, values) in enumerate(series.items()):
        x = _utc_naive(values.index)
        color = PALETTE[i % len(PALETTE)]
        if step:
            ax.step(x, values.to_numpy(), where="post", label=label, color=color, linewidth=1.4)
        else:
            ax.plot(x, values.to_numpy(), label=label, color=color, linewidth=1.2)
    if threshold is not None:
        ax.axhline(
            threshold,
            color=_THRESHOLD_COLOR,
            linestyle="--",
            linewidth=1,
            label=threshold_label or None,
        )
    mark_events(ax, events)
    if logy:
        ax.set_yscale("log")
    ax.set_title(title, loc="left", fontsize=11, fontweight="bold")
    ax.set_ylabel(ylabel)
    ax.set_xlabel("time (UTC)")
    locator = mdates.AutoDateLocator(minticks=4, maxticks=10)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper left", fontsize=8, frameon=False, ncol=4)
    fig.tight_layout()
    return fig


def mark_events(ax: Axes, events: Iterable[tuple[datetime, str]]) -> None:
    """Draw vertical markers with short labels at the top of the axes."""
    for moment, label in events:
        x = mdates.date2num(pd.Timestamp(moment).tz_convert("UTC").tz_localize(None))
        ax.axvline(x, color=_EVENT_COLOR, linewidth=0.9, alpha=0.8)
        ax.annotate(
            label,
            xy=(x, 1.0),
            xycoords=("data", "axes fraction"),
            rotation=90,
            fontsize=7,
            color=_EVENT_COLOR,
            ha="right",
            va="top",
            xytext=(-2, -2),
            textcoords="offset points",
        )


def bar_chart(
    labels: Sequence[str],
    groups: Mapping[str, Sequence[float]],
    *,
    title: str,
    ylabel: str,
    horizontal: bool = False,
) -> Figure:
    """Return a grouped bar chart (e.g. usage against request per container)."""
    fig, ax = new_figure(height=max(3.0, 0.35 * len(labels) + 1.2) if horizontal else 3.6)
    n = max(len(groups), 1)
    width = 0.8 / n
    positions = range(len(labels))
    for i, (name, values) in enumerate(groups.items()):
        offsets = [p + (i - (n - 1) / 2) * width for p in positions]
        if horizontal:
            ax.barh(offsets, values, height=width, label=name, color=PALETTE[i % len(PALETTE)])
        else:
            ax.bar(offsets, values, width=width, label=name, color=PALETTE[i % len(PALETTE)])
    if horizontal:
        ax.set_yticks(list(positions), labels, fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel(ylabel)
    else:
        ax.set_xticks(list(positions), labels, rotation=30, ha="right", fontsize=8)
        ax.set_ylabel(ylabel)
    ax.set_title(title, loc="left", fontsize=11, fontweight="bold")
    ax.legend(loc="best", fontsize=8, frameon=False)
    fig.tight_layout()
    return fig


def _utc_naive(index: pd.Index) -> Any:
    stamps = pd.DatetimeIndex(index)
    if stamps.tz is not None:
        stamps = stamps.tz_convert("UTC").tz_localize(None)
    return stamps.to_pydatetime()


def _style_axes(ax: Axes) -> None:
    ax.grid(True, color="#dddddd", linewidth=0.6)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
