"""HPA scale events and pod restarts as chart markers next to the deploy markers."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pandas as pd

from rknb import plots
from rknb.latency import hpa_for_workload, marker_groups, restart_markers, scale_markers

T0 = pd.Timestamp("2024-01-01T00:00:00Z")


def _at(*minutes: float) -> list[pd.Timestamp]:
    return [T0 + pd.Timedelta(minutes=m) for m in minutes]


def test_scale_markers_keep_each_change_and_skip_gaps_and_other_hpas() -> None:
    desired = pd.DataFrame(
        {
            "timestamp": _at(0, 1, 2, 4, 5) + _at(0, 1),
            "horizontalpodautoscaler": ["web"] * 5 + ["other"] * 2,
            # A missing sample at minute 3 is a gap, not a drop to zero.
            "value": [3.0, 4.0, 4.0, 4.0, 2.0, 9.0, 1.0],
        }
    )
    got = scale_markers(desired, hpa="web")
    assert got["time"].tolist() == _at(1, 5)
    assert got["from_replicas"].tolist() == [3, 4]
    assert got["to_replicas"].tolist() == [4, 2]
    assert got["direction"].tolist() == ["up", "down"]
    assert scale_markers(desired.iloc[:0]).empty


def test_restart_markers_count_counter_increases_per_container() -> None:
    restarts = pd.DataFrame(
        {
            "timestamp": _at(0, 1, 2, 3) + _at(0, 1),
            "namespace": ["ns"] * 6,
            "pod": ["web-a"] * 4 + ["web-b"] * 2,
            "container": ["app"] * 6,
            # web-a restarts once at 1 and twice by 3; web-b starts with 5 already counted.
            "value": [0.0, 1.0, 1.0, 3.0, 5.0, 5.0],
        }
    )
    got = restart_markers(restarts)
    assert list(zip(got["time"], got["pod"], got["restarts"], strict=True)) == [
        (_at(1)[0], "web-a", 1),
        (_at(3)[0], "web-a", 2),
    ]


def test_hpa_for_workload_follows_the_scale_target() -> None:
    hpas = [
        {
            "metadata": {"name": "a"},
            "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "x"}},
        },
        {
            "metadata": {"name": "b"},
            "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "y"}},
        },
    ]
    assert hpa_for_workload(hpas, "y") == "b"
    assert hpa_for_workload(hpas, "z") is None


def test_latency_chart_legend_names_each_marker_kind_with_its_count() -> None:
    deploys = pd.DataFrame({"first_ready": _at(2), "revision": [3]})
    scales = pd.DataFrame({"time": _at(1, 5), "to_replicas": [4, 2]})
    restarts = pd.DataFrame({"time": _at(3), "pod": ["web-5d9c7-abcde"]})
    kinds = marker_groups(deploys, scales, restarts)
    assert kinds["deploy"] == [(_at(2)[0], "rev 3")]
    assert kinds["HPA scale"] == [(_at(1)[0], "\u21924"), (_at(5)[0], "\u21922")]
    assert kinds["pod restart"] == [(_at(3)[0], "abcde")]
    series = pd.Series([0.1, 0.2, 0.3], index=_at(0, 3, 6))
    fig = plots.time_series({"p95": series}, title="t", ylabel="s", marker_groups=kinds)
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert legend == ["p95", "deploy (1)", "HPA scale (2)", "pod restart (1)"]
    # Two scale lines, one deploy line, one restart line, besides the p95 line.
    assert len(fig.axes[0].lines) == 5
