"""The generated burn-rate rules, checked by promtool at the times rknb predicts.

The input series are the demo scenario's raw request counters around its
planted incident, shifted to start at 0 as ``promtool test rules`` wants.
rknb predicts the firing history from the same samples with Prometheus 2.x
range semantics (the installed promtool is 2.42); promtool evaluates the
rules and must list exactly the predicted firing alerts at every checked
evaluation.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from rknb.audit import audit
from rknb.catalog import Selector, get_query
from rknb.scenario import SCRAPE_INTERVAL_S, build_scenario
from rknb.slo import (
    ALERT_NAME,
    alert_pairs,
    alert_timeline,
    availability_rules,
    window_error_ratios,
)
from rknb.times import format_duration
from rknb.tsdb import SeriesStore, evaluate_range, select_series
from rknb.yamlfile import dump_yaml

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool is not installed")

SELECTOR = Selector(namespace="reasonkit", workload="reasonkit-pro-mcp")
TARGET = 0.999
PERIOD_S = 30 * 86400.0


def _incident_store(seed: int | None) -> tuple[SeriesStore, float, float, Any]:
    """Return the request counters from 90 min before the incident to 30 min after it."""
    scenario = build_scenario(seed)
    start = scenario.fact("regression.start").when.timestamp()
    end = scenario.fact("regression.end").when.timestamp()
    t0 = float(np.floor((start - 5400) / SCRAPE_INTERVAL_S) * SCRAPE_INTERVAL_S)
    t1 = float(np.ceil((end + 1800) / SCRAPE_INTERVAL_S) * SCRAPE_INTERVAL_S)
    query = get_query("request_rate")
    store = SeriesStore()
    for series in select_series(
        scenario.store, query.selector_matchers(SELECTOR), metric=query.metric
    ):
        keep = (series.t_s >= t0) & (series.t_s <= t1)
        if keep.any():
            store.add(series.name, dict(series.labels), series.t_s[keep], series.values[keep])
    return store, t0, t1, scenario


def _predict(store: SeriesStore, t0: float, t1: float) -> pd.DataFrame:
    pairs = alert_pairs(PERIOD_S)
    windows = {w for p in pairs for w in (p.long_window_s, p.short_window_s)}
    increase = get_query("request_increase")
    frames = {
        w: evaluate_range(
            store, increase, SELECTOR, t0, t1, SCRAPE_INTERVAL_S, window_s=w, semantics=2
        )
        for w in windows
    }
    return alert_timeline(
        window_error_ratios(frames), pairs, target=TARGET, require_full_windows=False
    )


def _input_series(store: SeriesStore, t0: float, t1: float) -> list[dict[str, str]]:
    slots = round((t1 - t0) / SCRAPE_INTERVAL_S) + 1
    out = []
    for series in store:
        values = ["_"] * slots
        for t, v in zip(series.t_s, series.values, strict=True):
            offset = (float(t) - t0) / SCRAPE_INTERVAL_S
            assert offset == int(offset), "the scenario scrapes on a 30 s grid"
            values[int(offset)] = repr(float(v))
        labels = ", ".join(f'{k}="{v}"' for k, v in sorted(series.labels))
        out.append({"series": f"{series.name}{{{labels}}}", "values": " ".join(values)})
    return out


def _firing_at(timeline: pd.DataFrame, moment: pd.Timestamp) -> pd.DataFrame:
    fired = timeline["fired_at"].notna() & (timeline["fired_at"] <= moment)
    open_ = timeline["cleared_at"].isna() | (timeline["cleared_at"] > moment)
    return timeline[fired & open_]


def _write_rules(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    rules = availability_rules(
        "mcp-availability", target=TARGET, period_s=PERIOD_S, selector=SELECTOR
    )
    path = tmp_path / "slo.rules.yaml"
    path.write_text(dump_yaml(rules))
    return path, rules


def test_thirty_day_factors_are_the_workbooks_and_sloths() -> None:
    factors = {p.name: p.factor for p in alert_pairs(PERIOD_S)}
    assert factors == {
        "page-quick": 14.4,
        "page-slow": 6.0,
        "ticket-quick": 3.0,
        "ticket-slow": 1.0,
    }
    assert [p.name for p in alert_pairs(PERIOD_S, workbook_only=True)] == [
        "page-quick",
        "page-slow",
        "ticket-slow",
    ]


def test_twenty_eight_day_factors_scale_as_sloth_scales_them() -> None:
    factors = [p.factor for p in alert_pairs(28 * 86400.0)]
    assert factors == pytest.approx([13.44, 5.6, 2.8, 0.93333333], rel=1e-8)


def test_generated_rules_pass_rknbs_own_rule_lint(tmp_path: Path) -> None:
    _, rules = _write_rules(tmp_path)
    obj = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "mcp-slo", "namespace": "reasonkit"},
        "spec": rules,
    }
    report = audit([obj], rules=["RK-PROM"])
    assert report.findings == []
    alerts = [r for r in rules["groups"][0]["rules"] if "alert" in r]
    assert [a["for"] for a in alerts] == ["2m", "15m", "1h", "3h"]
    # One recording rule per distinct window: 5m 30m 1h 2h 6h 1d 3d.
    assert len(rules["groups"][0]["rules"]) == 7 + 4


@needs_promtool
def test_generated_rules_pass_promtool_check_rules(tmp_path: Path) -> None:
    path, _ = _write_rules(tmp_path)
    done = subprocess.run(
        [PROMTOOL, "check", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "11 rules found" in done.stdout


@needs_promtool
@pytest.mark.parametrize("seed", [None, 7])
def test_promtool_fires_the_alerts_when_rknb_predicted(tmp_path: Path, seed: int | None) -> None:
    store, t0, t1, _ = _incident_store(seed)
    timeline = _predict(store, t0, t1)
    pages = timeline[(timeline["alert"] == "page-quick") & timeline["fired_at"].notna()]
    assert len(pages) >= 1, "the planted incident burns fast enough to page"

    rules_path, rules = _write_rules(tmp_path)
    annotations = {
        (r["labels"]["long"], r["labels"]["short"]): r["annotations"]
        for r in rules["groups"][0]["rules"]
        if "alert" in r
    }
    start = pd.Timestamp(t0, unit="s", tz="UTC")
    step = pd.Timedelta(seconds=SCRAPE_INTERVAL_S)

    # Check each transition and the evaluation before it, plus a quiet moment at the start.
    moments = {start + step}
    for column in ("fired_at", "cleared_at"):
        for moment in timeline[column].dropna():
            moments |= {moment, moment - step}
    cases = []
    for moment in sorted(moments):
        expected = []
        for _, row in _firing_at(timeline, moment).iterrows():
            labels = {
                "slo": "mcp-availability",
                "severity": row["severity"],
                "long": format_duration(row["long_window_s"]),
                "short": format_duration(row["short_window_s"]),
            }
            expected.append(
                {
                    "exp_labels": labels,
                    "exp_annotations": annotations[(labels["long"], labels["short"])],
                }
            )
        cases.append(
            {
                "eval_time": format_duration((moment - start).total_seconds()),
                "alertname": ALERT_NAME,
                "exp_alerts": expected,
            }
        )
    test = {
        "rule_files": [rules_path.name],
        "evaluation_interval": "30s",
        "tests": [
            {
                "interval": "30s",
                "input_series": _input_series(store, t0, t1),
                "alert_rule_test": cases,
            }
        ],
    }
    test_path = tmp_path / "slo.test.yaml"
    test_path.write_text(dump_yaml(test))
    done = subprocess.run(
        [PROMTOOL, "test", "rules", test_path.name],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    assert "SUCCESS" in done.stdout
