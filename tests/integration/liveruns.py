"""What the recording and agreement tests share: the recorded live runs and how to compare runs.

One ``rknb record`` run against the backfilled server (and the fake cluster
holding the scenario's objects) gives the live side of both the agreement
tests (live figures equal the demo's) and the round trip tests (a replay of
the bundle equals the live run), so no notebook runs live twice.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat

#: The scenario's end: the backfilled data lies in the past, so every run fixes "now" there.
REPORT_TIME = "2026-11-30T00:00:00Z"

#: The notebooks that query metrics; the audit and the drill take ``prometheus`` but ignore it.
METRIC_NOTEBOOKS = ("capacity_planning", "hpa_tuning", "latency_analysis")

#: Recorded live: the metric notebooks and the audit (the notebook that lists the most kinds).
RECORDED_NOTEBOOKS = (*METRIC_NOTEBOOKS, "deployment_audit")

#: Replayed from the bundle: all recorded but the HPA notebook, the slowest by far (~35 s
#: of CPU a run), whose questions are of the kinds capacity planning asks too.
REPLAYED_NOTEBOOKS = ("capacity_planning", "latency_analysis", "deployment_audit")

#: The demo evaluator follows 2.x semantics here, as Debian's server does; kernels get it.
SEMANTICS_ENV = {"RKNB_PROMQL_SEMANTICS": "2"}


@dataclass
class Recording:
    """One ``rknb record`` run: its bundle, live reports, output and the fake's token."""

    bundle: Path
    reports: Path
    returncode: int
    stdout: str
    stderr: str
    token: str

    def run_dir(self, notebook: str) -> Path:
        """Return the live run's report folder of a notebook."""
        (found,) = (self.reports / notebook).glob("*/results.json")
        return found.parent


def comparable_results(run_dir: Path) -> dict[str, Any]:
    """Return ``results.json`` without what names the run or its sources (run id, specs)."""
    document = json.loads((run_dir / "results.json").read_text(encoding="utf-8"))
    document.pop("run_id")
    for name in ("prometheus", "cluster"):
        document["parameters"].pop(name)
    return document


def cell_outputs(run_dir: Path) -> list[tuple[int, Any]]:
    """Return (index, outputs) of every code cell but papermill's injected parameters cell."""
    (path,) = run_dir.glob("*.ipynb")
    notebook = nbformat.read(path, as_version=4)
    return [
        (index, cell.get("outputs"))
        for index, cell in enumerate(notebook.cells)
        if cell.cell_type == "code" and "injected-parameters" not in cell.metadata.get("tags", [])
    ]
