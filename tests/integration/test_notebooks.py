"""The notebooks that read metrics give the demo's headline figures against the real server.

Counts, strings, booleans and times must be equal; floats (all of them
derived from ``rate``/``increase`` or quantiles of them) agree within 0.5 %
relative, the issue's bound for ``rate`` extrapolation at window edges.
Measured on seed 42 they agree to 3e-15. The demo evaluator follows 2.x
semantics here (``RKNB_PROMQL_SEMANTICS=2``), as the server does.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from promserver import Server

from rknb.report import run_notebook

pytestmark = pytest.mark.integration

#: The notebooks that query metrics; the audit and the drill take ``prometheus`` but ignore it.
METRIC_NOTEBOOKS = ("capacity_planning", "hpa_tuning", "latency_analysis")
REPORT_TIME = "2026-11-30T00:00:00Z"


@pytest.fixture(scope="module")
def both_runs(
    prometheus_server: Server, tmp_path_factory: pytest.TempPathFactory
) -> dict[tuple[str, str], dict[str, Any]]:
    output = tmp_path_factory.mktemp("agreement")
    jobs = [(nb, spec) for nb in METRIC_NOTEBOOKS for spec in ("demo", prometheus_server.url)]

    def one(job: tuple[str, str]) -> tuple[tuple[str, str], dict[str, Any]]:
        notebook, spec = job
        parameters = {"prometheus": spec, "cluster": "demo", "report_time": REPORT_TIME}
        where = "demo" if spec == "demo" else "live"
        result = run_notebook(notebook, parameters, output_dir=output / where)
        if result.status != "ok":
            return (where, notebook), {"failed": f"{notebook} on {spec}: {result.message}"}
        return (where, notebook), json.loads(result.results_path.read_text())

    previous = os.environ.get("RKNB_PROMQL_SEMANTICS")
    os.environ["RKNB_PROMQL_SEMANTICS"] = "2"  # the kernels inherit it through the runner
    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            return dict(pool.map(one, jobs))
    finally:
        if previous is None:
            os.environ.pop("RKNB_PROMQL_SEMANTICS", None)
        else:
            os.environ["RKNB_PROMQL_SEMANTICS"] = previous


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
