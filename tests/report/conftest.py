from __future__ import annotations

import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from rknb import report

DATA = Path(__file__).parents[1] / "data" / "report"


@pytest.fixture(scope="session")
def fixture_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, report.RunResult]:
    """Run every fixture notebook once (two at a time) and keep the results by label."""
    out = tmp_path_factory.mktemp("reports")
    again = tmp_path_factory.mktemp("reports-again")
    jobs = {
        "ok": ("ok.ipynb", {}, out, {}),
        "ok_again": ("ok.ipynb", {}, again, {}),
        "fail_verdict": (
            "ok.ipynb",
            {"passed": "no", "report_time": "2026-11-30T12:00:00Z"},
            out,
            {},
        ),
        "raises": ("raises.ipynb", {}, out, {}),
        "refuses": ("refuses.ipynb", {}, out, {}),
        "sysexit": ("sysexit.ipynb", {}, out, {}),
        "dies": ("dies.ipynb", {}, out, {}),
        "sleeps": ("sleeps.ipynb", {}, out, {"timeout_s": 6.0}),
        "nosentinel": ("nosentinel.ipynb", {}, out, {}),
    }

    def run(job: tuple) -> report.RunResult:
        name, params, folder, options = job
        return report.run_notebook(DATA / name, params, output_dir=folder, **options)

    with ThreadPoolExecutor(max_workers=3) as pool:
        results = dict(zip(jobs, pool.map(run, jobs.values()), strict=True))
    yield results
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(again, ignore_errors=True)
