"""ipywidgets explorers: sliders that re-run an analysis and redraw its chart.

An explorer needs a live frontend. Under papermill (or any headless run) a
widget would render as nothing useful, and its random model ids would break
byte-identical reports, so every explorer falls back to the static chart of
its default values. ``interactive=None`` decides by the environment: widgets
are shown only when ipywidgets imports and the kernel was started by a
Jupyter server (``JPY_SESSION_NAME`` is set); pass True or False to force it.

Explorers draw through a ``render`` callback that the notebook builds from
:mod:`rknb.plots`, so the house chart style stays in one place.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from rknb import hpa

__all__ = ["HpaExplorer", "hpa_explorer", "widgets_available"]

logger = logging.getLogger(__name__)

Render = Callable[[pd.DataFrame, hpa.HpaConfig], Figure]


def widgets_available() -> bool:
    """Return True when ipywidgets imports and a Jupyter server started this kernel."""
    if not os.environ.get("JPY_SESSION_NAME"):
        return False
    try:
        import ipywidgets  # noqa: F401
    except ImportError:
        return False
    return True


@dataclass
class HpaExplorer:
    """What :func:`hpa_explorer` built: the static figure and, when live, the widget box."""

    figure: Figure
    frame: pd.DataFrame
    widget: Any = None


def hpa_explorer(
    demand: pd.Series,
    config: hpa.HpaConfig,
    *,
    pods: hpa.PodModel,
    initial_replicas: int,
    render: Render,
    interactive: bool | None = None,
) -> HpaExplorer:
    """Return an explorer of HPA settings over a demand history.

    Sliders set the target utilization, minReplicas, maxReplicas and the two
    stabilization windows; each change replays the demand with the compiled
    exact controller (:func:`rknb.hpa.replay` with ``engine="fast"``) and
    redraws. Without a live frontend only the default config's figure is made.

    Parameters
    ----------
    demand
        The demand history, as :func:`rknb.hpa.replay` takes it.
    config
        The config the sliders start from.
    pods
        The pod model.
    initial_replicas
        Pods running at the first decision.
    render
        Draws a replay frame for a config and returns the figure.
    interactive
        Force widgets on or off; None decides by the environment.
    """
    frame = hpa.replay(
        demand, config=config, pods=pods, initial_replicas=initial_replicas, engine="fast"
    )
    figure = render(frame, config)
    live = widgets_available() if interactive is None else interactive
    if not live:
        return HpaExplorer(figure, frame)

    import ipywidgets as w
    import matplotlib.pyplot as plt
    from IPython.display import display

    sliders = {
        "target": w.FloatSlider(
            value=config.target_utilization, min=0.2, max=0.95, step=0.05, description="target"
        ),
        "min": w.IntSlider(value=config.min_replicas, min=1, max=50, description="min"),
        "max": w.IntSlider(value=config.max_replicas, min=1, max=100, description="max"),
        "down": w.IntSlider(
            value=int(config.scale_down_stabilization_s),
            min=0,
            max=1800,
            step=15,
            description="down window s",
        ),
        "up": w.IntSlider(
            value=int(config.scale_up_stabilization_s),
            min=0,
            max=600,
            step=15,
            description="up window s",
        ),
    }
    output = w.Output()
    plt.close(figure)

    def redraw(_change: object = None) -> None:
        low, high = sliders["min"].value, max(sliders["min"].value, sliders["max"].value)
        # An unchanged window stays unset, so a legacy HPA stays on the legacy path.
        down, up = sliders["down"].value, sliders["up"].value
        candidate = hpa.with_changes(
            config,
            min_replicas=low,
            max_replicas=high,
            target_utilization=sliders["target"].value,
            scale_down_stabilization_s=-1 if down == config.scale_down_stabilization_s else down,
            scale_up_stabilization_s=-1 if up == config.scale_up_stabilization_s else up,
        )
        replayed = hpa.replay(
            demand, config=candidate, pods=pods, initial_replicas=initial_replicas, engine="fast"
        )
        with output:
            output.clear_output(wait=True)
            fig = render(replayed, candidate)
            display(fig)
            plt.close(fig)

    for slider in sliders.values():
        slider.observe(redraw, names="value")
    box = w.VBox([w.HBox(list(sliders.values())[:3]), w.HBox(list(sliders.values())[3:]), output])
    redraw()
    return HpaExplorer(figure, frame, box)
