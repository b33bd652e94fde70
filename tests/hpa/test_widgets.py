import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pandas as pd
import pytest

from rknb import hpa, widgets

T0 = pd.Timestamp("2026-01-05T00:00:00Z")
HISTORY = pd.Series([2.0] * 4 + [0.5] * 8, index=pd.date_range(T0, periods=12, freq="15s"))
MODEL = hpa.PodModel(1.0, startup_s=30)


def render(frame: pd.DataFrame, config: hpa.HpaConfig) -> plt.Figure:
    fig, ax = plt.subplots()
    ax.step(frame["timestamp"], frame["desired"])
    ax.set_title(config.label())
    return fig


def test_headless_explorer_is_the_static_chart_of_the_default_config(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    assert widgets.widgets_available() is False
    config = hpa.HpaConfig(1, 10, 0.5)
    explorer = widgets.hpa_explorer(HISTORY, config, pods=MODEL, initial_replicas=2, render=render)
    assert explorer.widget is None
    assert explorer.figure.axes[0].get_title() == "50% 1..10 (no behavior)"
    assert explorer.frame["desired"].tolist()[:4] == [4, 4, 4, 4]


def test_live_explorer_redraws_when_a_slider_moves() -> None:
    pytest.importorskip("ipywidgets")
    drawn: list[hpa.HpaConfig] = []

    def recording(frame: pd.DataFrame, config: hpa.HpaConfig) -> plt.Figure:
        drawn.append(config)
        return render(frame, config)

    config = hpa.HpaConfig(1, 10, 0.5)
    explorer = widgets.hpa_explorer(
        HISTORY, config, pods=MODEL, initial_replicas=2, render=recording, interactive=True
    )
    target = explorer.widget.children[0].children[0]
    assert target.description == "target"
    target.value = 0.25
    # The static figure, the first live draw, then the redraw for the moved slider; an
    # unchanged window keeps the legacy path.
    assert [(c.target_utilization, c.behavior) for c in drawn] == [
        (0.5, False),
        (0.5, False),
        (0.25, False),
    ]
