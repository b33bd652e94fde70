"""``rknb record`` against the real server and the fake cluster, then an offline replay.

Four notebooks are recorded (the three that read metrics and the audit) and
three replayed (all but the HPA notebook, for time). A replay of the bundle
must give the live run's ``results.json`` and every cell's outputs, the
injected parameters cell aside; only the run id and the ``prometheus`` and
``cluster`` specs (a URL and a context live, the bundle's path on replay) may
differ. The replay is given no ``report_time``: the bundle's recording time
must bring back the live run's.
"""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from liveruns import (
    RECORDED_NOTEBOOKS,
    REPLAYED_NOTEBOOKS,
    REPORT_TIME,
    SEMANTICS_ENV,
    Recording,
    cell_outputs,
    comparable_results,
)

from rknb.report import run_notebook
from rknb.scenario import build_scenario

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def replays(recording: Recording, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    output = tmp_path_factory.mktemp("replay")
    bundle = str(recording.bundle)

    def one(notebook: str) -> tuple[str, Path]:
        parameters = {"prometheus": bundle, "cluster": bundle}
        result = run_notebook(notebook, parameters, output_dir=output, environment=SEMANTICS_ENV)
        return notebook, result.run_dir

    recorded = [n for n in REPLAYED_NOTEBOOKS if _live_status(recording, n) == "ok"]
    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(pool.map(one, recorded))


def _live_status(recording: Recording, notebook: str) -> str:
    try:
        return str(json.loads((recording.run_dir(notebook) / "results.json").read_text())["status"])
    except ValueError:
        return f"no live report ({recording.stderr[-1000:]})"


def _live_run(recording: Recording, notebook: str) -> Path:
    status = _live_status(recording, notebook)
    assert status == "ok", f"{notebook} failed live, so there is nothing to replay: {status}"
    return recording.run_dir(notebook)


def test_record_reports_progress_for_every_notebook(recording):
    assert recording.returncode in (0, 1), recording.stderr
    lines = recording.stdout.splitlines()
    assert lines[0] == f"recording into {recording.bundle} (report_time {REPORT_TIME})"
    for notebook in RECORDED_NOTEBOOKS:
        assert f"    {notebook}: running ..." in lines
    done = [line for line in lines if line.startswith("[")]
    assert [line.split("]")[0] for line in done] == ["[1/4", "[2/4", "[3/4", "[4/4"]
    assert sorted(line.split("] ")[1].split(":")[0] for line in done) == sorted(RECORDED_NOTEBOOKS)


def test_bundle_index_names_the_live_sources_and_the_report_time(recording, prometheus_server):
    index = json.loads((recording.bundle / "bundle.json").read_text())
    assert index["recorded_at"] == REPORT_TIME
    assert index["metrics_source"] == prometheus_server.url
    assert index["objects_source"] == "fake"
    kinds = {entry["kind"] for entry in index["objects"].values()}
    assert {"Deployment", "ReplicaSet", "Pod", "HorizontalPodAutoscaler", "Secret"} <= kinds
    queries = {entry["query"] for entry in index["metrics"].values()}
    asked = {"request_duration_bucket_rate", "container_cpu_cores", "hpa_desired_replicas"}
    assert asked <= queries
    for entry in [*index["metrics"].values(), *index["objects"].values()]:
        assert (recording.bundle / entry["file"]).is_file()


@pytest.mark.parametrize("notebook", REPLAYED_NOTEBOOKS)
def test_replay_gives_the_live_results_json(recording, replays, notebook):
    live = comparable_results(_live_run(recording, notebook))
    replayed = comparable_results(replays[notebook])
    assert live["report_time"] == REPORT_TIME
    assert replayed == live


@pytest.mark.parametrize("notebook", REPLAYED_NOTEBOOKS)
def test_replay_gives_the_live_cell_outputs(recording, replays, notebook):
    live = cell_outputs(_live_run(recording, notebook))
    replayed = cell_outputs(replays[notebook])
    assert [index for index, _ in replayed] == [index for index, _ in live]
    assert sum(1 for _, outputs in live if outputs) >= 5  # tables, figures, Markdown, records
    for (index, expected), (_, got) in zip(live, replayed, strict=True):
        assert got == expected, f"cell {index} of {notebook}"


def test_bundle_holds_no_secret_value_and_no_token(recording):
    secrets = [o for o in build_scenario(42).objects if o["kind"] == "Secret"]
    values = [v for s in secrets for v in (s.get("data") or {}).values()]
    assert values  # the scenario plants a Secret with data
    for file in recording.bundle.rglob("*"):
        if file.is_file():
            text = file.read_text(encoding="utf-8")
            assert recording.token not in text, file
            assert not any(value in text for value in values), file


def test_record_refuses_a_folder_that_holds_a_bundle(recording):
    before = (recording.bundle / "bundle.json").read_bytes()
    command = [sys.executable, "-m", "rknb.cli", "record", str(recording.bundle)]
    refused = subprocess.run(
        [*command, "deployment_audit"], capture_output=True, text=True, timeout=120, check=False
    )
    assert refused.returncode == 2
    assert "already holds a bundle" in refused.stderr and "--force" in refused.stderr
    assert (recording.bundle / "bundle.json").read_bytes() == before
