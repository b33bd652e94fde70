"""The notebooks that read metrics give the demo's headline figures against the real server.

Counts, strings, booleans and times must be equal; floats (all of them
derived from ``rate``/``increase`` or quantiles of them) agree within 0.5 %
relative, the issue's bound for ``rate`` extrapolation at window edges.
Measured on seed 42 they agree to 3e-15. The demo evaluator follows 2.x
semantics here (``RKNB_PROMQL_SEMANTICS=2``), as the server does.

The live side is the session's ``rknb record`` run (the real server for
metrics, the fake cluster holding the scenario's objects for objects), so
these runs also prove that recording leaves a notebook's answers unchanged.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from liveruns import METRIC_NOTEBOOKS, REPORT_TIME, SEMANTICS_ENV, Recording

from rknb.report import run_notebook

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def both_runs(
    recording: Recording, tmp_path_factory: pytest.TempPathFactory
) -> dict[tuple[str, str], dict[str, Any]]:
    output = tmp_path_factory.mktemp("agreement")

    def demo(notebook: str) -> tuple[tuple[str, str], dict[str, Any]]:
        parameters = {"prometheus": "demo", "cluster": "demo", "report_time": REPORT_TIME}
        result = run_notebook(notebook, parameters, output_dir=output, environment=SEMANTICS_ENV)
        if result.status != "ok":
            return ("demo", notebook), {"failed": f"{notebook} on demo: {result.message}"}
        return ("demo", notebook), json.loads(result.results_path.read_text())

    runs: dict[tuple[str, str], dict[str, Any]] = {}
    for notebook in METRIC_NOTEBOOKS:
        try:
            live = json.loads((recording.run_dir(notebook) / "results.json").read_text())
        except ValueError:  # no report: the recording failed before this notebook ran
            live = {"failed": f"{notebook} recorded live: {recording.stderr[-2000:]}"}
        if live.get("status") not in (None, "ok"):
            live = {"failed": f"{notebook} recorded live: {live.get('error')}"}
        runs[("live", notebook)] = live
    with ThreadPoolExecutor(max_workers=2) as pool:
        runs.update(pool.map(demo, METRIC_NOTEBOOKS))
    return runs


@pytest.mark.parametrize("notebook", METRIC_NOTEBOOKS)
def test_live_headline_figures_equal_the_demo_figures(both_runs, notebook):
    live = both_runs[("live", notebook)]
    demo = both_runs[("demo", notebook)]
    assert "failed" not in demo, demo.get("failed")
    assert "failed" not in live, live.get("failed")
    assert live["figures"].keys() == demo["figures"].keys()
    assert len(live["figures"]) >= 10
    for name, expected in demo["figures"].items():
        got = live["figures"][name]
        if isinstance(expected, float) and not isinstance(expected, bool):
            assert got == pytest.approx(expected, rel=5e-3), name
        else:
            assert got == expected, name
    assert live["verdict"] == demo["verdict"]
