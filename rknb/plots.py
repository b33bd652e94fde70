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

__all__ = [
    "PALETTE",
    "bar_chart",
    "bucket_heatmap",
    "interval_timeline",
    "mark_event_groups",
    "mark_events",
    "new_figure",
    "time_series",
]

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
    marker_groups: Mapping[str, Sequence[tuple[datetime, str]]] | None = None,
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
    marker_groups
        Kinds of markers (deploys, HPA scale events, pod restarts) to draw each
        in its own style, with one legend entry per kind and its count.
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
    if marker_groups:
        mark_event_groups(ax, marker_groups)
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
        x = _event_x(moment)
        ax.axvline(x, color=_EVENT_COLOR, linewidth=0.9, alpha=0.8)
        _label_event(ax, x, label, _EVENT_COLOR)


def _event_x(moment: datetime) -> float:
    return float(mdates.date2num(pd.Timestamp(moment).tz_convert("UTC").tz_localize(None)))


def _label_event(ax: Axes, x: float, label: str, color: str) -> None:
    """Write a marker's label upright along its line, at the top of the axes."""
    ax.annotate(
        label,
        xy=(x, 1.0),
        xycoords=("data", "axes fraction"),
        rotation=90,
        fontsize=7,
        color=color,
        ha="right",
        va="top",
        xytext=(-2, -2),
        textcoords="offset points",
    )


#: How each kind of marker is drawn: colour and line style; other kinds cycle the palette.
_MARKER_STYLES: dict[str, tuple[str, str]] = {
    "deploy": (_EVENT_COLOR, "-"),
    "HPA scale": ("#2c7fb8", ":"),
    "pod restart": ("#e08214", "--"),
}


def mark_event_groups(ax: Axes, groups: Mapping[str, Sequence[tuple[datetime, str]]]) -> None:
    """Draw each kind of marker in its own colour and line style, with a legend entry per kind.

    The legend says how many markers of the kind there are (``HPA scale (94)``);
    labels are written only for kinds with at most 20 markers, so a busy kind
    stays readable.
    """
    for i, (kind, events) in enumerate(groups.items()):
        color, style = _MARKER_STYLES.get(kind, (PALETTE[i % len(PALETTE)], "-."))
        labelled = len(events) <= 20
        for k, (moment, label) in enumerate(events):
            x = _event_x(moment)
            ax.axvline(
                x,
                color=color,
                linestyle=style,
                linewidth=0.8,
                alpha=0.7,
                label=f"{kind} ({len(events)})" if k == 0 else None,
            )
            if labelled and label:
                _label_event(ax, x, label, color)


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


def bucket_heatmap(
    density: pd.DataFrame,
    *,
    title: str,
    events: Iterable[tuple[datetime, str]] = (),
    threshold_s: float | None = None,
    marker_groups: Mapping[str, Sequence[tuple[datetime, str]]] | None = None,
) -> Figure:
    """Return a heatmap of requests per bucket over time (log colour), latency on a log axis.

    Parameters
    ----------
    density
        Rows per timestamp, columns per bucket upper bound in seconds (``inf`` last),
        values in requests/s, as :func:`rknb.latency.bucket_density` returns.
    title
        The chart's title.
    events
        (time, label) pairs drawn as vertical markers.
    threshold_s
        A latency threshold drawn as a horizontal line (the SLO's).
    marker_groups
        Kinds of markers drawn each in its own style, with a legend (see :func:`time_series`).
    """
    import matplotlib.colors as mcolors
    import numpy as np

    fig, ax = new_figure(height=4.0)
    bounds = [float(b) for b in density.columns]
    finite = [b for b in bounds if b != float("inf")]
    # The +Inf bucket is drawn one bucket-ratio above the highest finite bound.
    top = finite[-1] * (finite[-1] / finite[-2] if len(finite) > 1 else 2.0)
    edges_y = [finite[0] / 2 if finite[0] > 0 else 1e-3, *finite]
    if len(bounds) > len(finite):
        edges_y.append(top)
    x = mdates.date2num(_utc_naive(density.index))
    step = float(np.median(np.diff(x))) if len(x) > 1 else 1 / 1440
    edges_x = np.append(x, x[-1] + step) if len(x) else x
    values = density.to_numpy(dtype=float).T[: len(edges_y) - 1]
    positive = values[values > 0]
    norm = (
        mcolors.LogNorm(vmin=max(positive.min(), 1e-3), vmax=positive.max())
        if len(positive)
        else None
    )
    mesh = ax.pcolormesh(
        edges_x, edges_y, np.where(values > 0, values, np.nan), norm=norm, cmap="viridis"
    )
    fig.colorbar(mesh, ax=ax, label="requests/s in bucket", pad=0.01)
    ax.set_yscale("log")
    if threshold_s is not None:
        ax.axhline(threshold_s, color="#ffffff", linestyle="--", linewidth=1, label="SLO threshold")
    mark_events(ax, events)
    if marker_groups:
        mark_event_groups(ax, marker_groups)
    if marker_groups:
        # Marker lines in several colours need a legend on its own light box.
        ax.legend(loc="lower left", fontsize=8, frameon=True, framealpha=0.85, ncol=4)
    elif threshold_s is not None:
        ax.legend(loc="upper left", fontsize=8, frameon=False, labelcolor="#ffffff")
    ax.set_title(title, loc="left", fontsize=11, fontweight="bold")
    ax.set_ylabel("latency bucket upper bound (s)")
    ax.set_xlabel("time (UTC)")
    ax.xaxis_date()
    locator = mdates.AutoDateLocator(minticks=4, maxticks=10)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    fig.tight_layout()
    return fig


def interval_timeline(
    rows: Sequence[tuple[str, datetime, datetime | None, str]],
    *,
    lanes: Sequence[str],
    title: str,
    start: datetime,
    end: datetime,
    events: Iterable[tuple[datetime, str]] = (),
) -> Figure:
    """Return one horizontal lane per name with a bar for each (lane, start, end, colour key).

    Parameters
    ----------
    rows
        (lane, start, end, kind) per bar; ``end`` None runs to ``end``; ``kind`` picks the
        colour (``page``, ``ticket``, ``incident``, ``not evaluable`` or any other word).
    lanes
        The lanes from top to bottom (alerts, incidents).
    title
        The chart's title.
    start
        Left edge of the time axis.
    end
        Right edge of the time axis.
    events
        (time, label) pairs drawn as vertical markers.
    """
    colours = {
        "page": "#b2182b",
        "ticket": "#d95f02",
        "incident": "#1f5fa8",
        "not evaluable": "#cccccc",
    }
    fig, ax = new_figure(height=max(2.0, 0.45 * len(lanes) + 1.2))
    left = mdates.date2num(pd.Timestamp(start).tz_convert("UTC").tz_localize(None))
    right = mdates.date2num(pd.Timestamp(end).tz_convert("UTC").tz_localize(None))
    for lane, begin, finish, kind in rows:
        y = len(lanes) - 1 - list(lanes).index(lane)
        a = mdates.date2num(pd.Timestamp(begin).tz_convert("UTC").tz_localize(None))
        b = (
            mdates.date2num(pd.Timestamp(finish).tz_convert("UTC").tz_localize(None))
            if finish is not None
            else right
        )
        ax.broken_barh(
            [(a, max(b - a, (right - left) / 800))],
            (y - 0.35, 0.7),
            color=colours.get(kind, PALETTE[3]),
        )
    ax.set_yticks(range(len(lanes)), list(reversed(list(lanes))), fontsize=8)
    ax.set_xlim(left, right)
    mark_events(ax, events)
    ax.set_title(title, loc="left", fontsize=11, fontweight="bold")
    ax.set_xlabel("time (UTC)")
    ax.xaxis_date()
    locator = mdates.AutoDateLocator(minticks=4, maxticks=10)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    fig.tight_layout()
    return fig
