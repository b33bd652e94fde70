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
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from rknb.audit import audit
from rknb.catalog import Matcher, Selector, get_query
from rknb.errors import ParameterError
from rknb.scenario import SCRAPE_INTERVAL_S, build_scenario
from rknb.scenario.model import BUCKET_LABELS
from rknb.slo import (
    ALERT_NAME,
    alert_pairs,
    alert_timeline,
    availability_rules,
    burn_rate_alerts,
    latency_rules,
    latency_window_error_ratios,
    threshold_bucket_label,
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


def _incident_store(
    seed: int | None, metrics: tuple[str, ...] = ("mcp_requests_total",)
) -> tuple[SeriesStore, float, float, Any]:
    """Return the raw series of ``metrics`` from 90 min before the incident to 30 min after it."""
    scenario = build_scenario(seed)
    start = scenario.fact("regression.start").when.timestamp()
    end = scenario.fact("regression.end").when.timestamp()
    t0 = float(np.floor((start - 5400) / SCRAPE_INTERVAL_S) * SCRAPE_INTERVAL_S)
    t1 = float(np.ceil((end + 1800) / SCRAPE_INTERVAL_S) * SCRAPE_INTERVAL_S)
    query = get_query("request_rate")
    store = SeriesStore()
    for metric in metrics:
        for series in select_series(
            scenario.store, query.selector_matchers(SELECTOR), metric=metric
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


def _run_promtool_test(
    tmp_path: Path,
    rules_path: Path,
    rules: dict[str, Any],
    store: SeriesStore,
    t0: float,
    t1: float,
    timeline: pd.DataFrame,
    slo_name: str,
) -> None:
    """Run ``promtool test rules``: exactly the predicted alerts fire at every transition."""
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
                "slo": slo_name,
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
    _run_promtool_test(tmp_path, rules_path, rules, store, t0, t1, timeline, "mcp-availability")


# -- latency SLO ---------------------------------------------------------------------------

# 99.9 % under 500 ms: the demo's baseline has 0.09 % slower requests and its planted
# regression 6.4 % over an hour, a burn rate of 64 (at 99 % it would page on nothing).
LATENCY_TARGET = 0.999
LATENCY_THRESHOLD_S = 0.5
HISTOGRAM = ("mcp_request_duration_seconds_bucket", "mcp_request_duration_seconds_count")


def _latency_rules() -> dict[str, Any]:
    return latency_rules(
        "mcp-latency",
        target=LATENCY_TARGET,
        period_s=PERIOD_S,
        selector=SELECTOR,
        threshold_s=LATENCY_THRESHOLD_S,
        le_values=list(BUCKET_LABELS),
    )


def _predict_latency(store: SeriesStore, t0: float, t1: float) -> pd.DataFrame:
    pairs = alert_pairs(PERIOD_S)
    windows = {w for p in pairs for w in (p.long_window_s, p.short_window_s)}
    buckets = get_query("request_duration_bucket_increase")
    good = replace(buckets, matchers=(Matcher("le", "=", "0.5"),), by=())
    total = replace(buckets, metric="mcp_request_duration_seconds_count", by=())

    def over(query: Any, w: float) -> pd.DataFrame:
        return evaluate_range(
            store, query, SELECTOR, t0, t1, SCRAPE_INTERVAL_S, window_s=w, semantics=2
        )

    ratios = latency_window_error_ratios(
        {w: over(good, w) for w in windows}, {w: over(total, w) for w in windows}
    )
    return alert_timeline(ratios, pairs, target=LATENCY_TARGET, require_full_windows=False)


def test_latency_rules_count_the_threshold_bucket_against_count() -> None:
    rules = _latency_rules()["groups"][0]["rules"]
    five = rules[0]
    assert five["record"] == "slo:sli_error:ratio_rate5m"
    assert 'mcp_request_duration_seconds_bucket{namespace="reasonkit"' in five["expr"]
    assert 'le="0.5"}[5m]' in five["expr"]
    assert five["expr"].count("sum(rate(mcp_request_duration_seconds_count{") == 2
    page = next(r for r in rules if r.get("labels", {}).get("short") == "5m")
    # Budget 0.1 %: the 14.4x page fires above 1.44 % slow requests in both windows.
    assert page["expr"].endswith(f"> {14.4 * (1 - LATENCY_TARGET)!r}")
    assert page["for"] == "2m"


def test_latency_threshold_off_the_bucket_bounds_is_refused() -> None:
    with pytest.raises(ParameterError, match=r"300ms \(0.3 s\) is not a bucket bound"):
        latency_rules(
            "mcp-latency",
            target=LATENCY_TARGET,
            period_s=PERIOD_S,
            selector=SELECTOR,
            threshold_s=0.3,
            le_values=list(BUCKET_LABELS),
        )
    # The bound is spelled as the series spell it: 1 second is le="1", not "1.0".
    assert threshold_bucket_label(1.0, BUCKET_LABELS) == "1"


def test_latency_rules_pass_rknbs_own_rule_lint() -> None:
    obj = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "mcp-latency-slo", "namespace": "reasonkit"},
        "spec": _latency_rules(),
    }
    assert audit([obj], rules=["RK-PROM"]).findings == []


@needs_promtool
def test_latency_rules_pass_promtool_check_rules(tmp_path: Path) -> None:
    path = tmp_path / "latency.rules.yaml"
    path.write_text(dump_yaml(_latency_rules()))
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
def test_promtool_fires_the_latency_alerts_when_rknb_predicted(tmp_path: Path) -> None:
    store, t0, t1, _ = _incident_store(None, HISTOGRAM)
    timeline = _predict_latency(store, t0, t1)
    fired = timeline[timeline["fired_at"].notna()]
    assert len(fired) >= 1, "the planted regression slows enough requests to alert"
    rules = _latency_rules()
    rules_path = tmp_path / "latency.rules.yaml"
    rules_path.write_text(dump_yaml(rules))
    _run_promtool_test(tmp_path, rules_path, rules, store, t0, t1, timeline, "mcp-latency")


# -- the notebook's alert timeline is the promtool-checked one ------------------------------


@pytest.mark.parametrize("seed", [None, 7])
def test_notebook_alert_timeline_fires_and_clears_when_promtool_does(seed: int | None) -> None:
    # The promtool-checked prediction, on the counters 90 min before to 30 min after.
    store, t0, t1, scenario = _incident_store(seed)
    checked = _predict(store, t0, t1)
    # The notebook's path: request_increase over each window at the 30 s rule step, over a
    # history long enough for every window (3 days and an hour before), full windows only.
    pairs = alert_pairs(PERIOD_S)
    start = t0 - 3 * 86400.0
    increase = get_query("request_increase")
    increases = {
        w: evaluate_range(
            scenario.store,
            increase,
            SELECTOR,
            start,
            t1,
            SCRAPE_INTERVAL_S,
            window_s=w,
            semantics=2,
        )
        for w in {w for p in pairs for w in (p.long_window_s, p.short_window_s)}
    }
    notebook = burn_rate_alerts(
        increases, pairs, target=TARGET, history_start=pd.Timestamp(start, unit="s", tz="UTC")
    )
    inside = notebook["fired_at"].isna() | (
        notebook["fired_at"] >= pd.Timestamp(t0, unit="s", tz="UTC")
    )
    # The 1 h/5 m page has its full windows inside the promtool input: identical times.
    for frame in (checked, notebook[inside]):
        assert (frame["alert"] == "page-quick").any()
    want = checked[checked["alert"] == "page-quick"][["fired_at", "cleared_at"]]
    got = notebook[inside & (notebook["alert"] == "page-quick")][["fired_at", "cleared_at"]]
    assert want.reset_index(drop=True).equals(got.reset_index(drop=True))
    assert want["fired_at"].notna().all()
