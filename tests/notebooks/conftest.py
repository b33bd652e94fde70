"""Runs of the shipped notebooks, shared by the tests that read their reports.

Each demo seed is run once per session (all five notebooks, two at a time:
the machines have two cores) and the tests read the reports' results.json.
"""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from rknb.report import list_notebooks, run_notebook

NOTEBOOKS = sorted(list_notebooks())
OTHER_SEEDS = (7, 1234)


def run_seed(seed: int, output: Path) -> dict[str, dict[str, Any]]:
    """Run every notebook on one demo seed; return each notebook's results.json."""
    spec = f"demo:{seed}"

    def one(name: str) -> tuple[str, dict[str, Any]]:
        result = run_notebook(name, {"prometheus": spec, "cluster": spec}, output_dir=output)
        assert result.status == "ok", f"{name} on {spec}: {result.message}"
        return name, json.loads(result.results_path.read_text())

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(pool.map(one, NOTEBOOKS))


def run_demo_cli(output: Path) -> subprocess.CompletedProcess[str]:
    """Run ``rknb demo`` (the README's main job) into a folder."""
    return subprocess.run(
        [sys.executable, "-m", "rknb.cli", "demo", "--output", str(output)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def read_results(root: Path) -> dict[str, dict[str, Any]]:
    """Return each notebook's results.json found under a reports folder."""
    found = {}
    for path in sorted(root.glob("*/*/results.json")):
        document = json.loads(path.read_text())
        found[document["notebook"]] = document
    return found


@pytest.fixture(scope="session")
def demo_run(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, subprocess.CompletedProcess[str]]:
    output = tmp_path_factory.mktemp("demo")
    return output, run_demo_cli(output)


@pytest.fixture(scope="session")
def demo_results(demo_run: tuple[Path, subprocess.CompletedProcess[str]]) -> dict[str, Any]:
    output, completed = demo_run
    assert completed.returncode == 0, completed.stderr
    return read_results(output)


@pytest.fixture(scope="session", params=OTHER_SEEDS, ids=lambda s: f"seed{s}")
def seed_results(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[int, dict[str, Any]]:
    seed = request.param
    return seed, run_seed(seed, tmp_path_factory.mktemp(f"seed{seed}"))
