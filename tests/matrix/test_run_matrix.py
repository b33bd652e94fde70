from __future__ import annotations

import json
import re

import pytest

from rknb import matrix, report

# Runs real notebooks end to end (about 10-20 s on an idle 2-core machine).
pytestmark = pytest.mark.slow


def _entries(fleet) -> dict[tuple[str, str], dict]:
    return {(e["cluster"], e["notebook"]): e for e in matrix.read_history(fleet.output)}


def test_run_matrix_runs_every_cluster_and_notebook_once(fleet):
    assert fleet.proc.stdout.strip().endswith(f"index: {fleet.output / 'index.html'}"), (
        fleet.proc.stdout + fleet.proc.stderr
    )
    entries = _entries(fleet)
    assert sorted(entries) == sorted(
        (c, n)
        for c in ("east", "west")
        for n in ("deployment_audit", "capacity_planning", "latency_analysis")
    )
    assert "6 run(s), 0 failed" in fleet.proc.stdout
    # The audits fail their verdict (the seed has high findings): exit 1 is the worst code.
    assert fleet.proc.returncode == report.EXIT_FINDINGS


def test_progress_bar_counts_up_to_the_number_of_runs(fleet):
    bars = re.findall(r"^\[[#-]{24}\] (\d)/6", fleet.proc.stdout, flags=re.M)
    assert bars == ["0", "1", "2", "3", "4", "5", "6"]


def test_each_cluster_is_read_through_its_own_context(fleet):
    entries = _entries(fleet)
    # west carries one extra Deployment (privileged, :latest): one critical finding more.
    east = entries[("east", "deployment_audit")]["figures"]
    west = entries[("west", "deployment_audit")]["figures"]
    assert west["findings_critical"] >= east["findings_critical"] + 1
    assert west["objects_checked"] == east["objects_checked"] + 1
    for name, fake in fleet.fakes.items():
        paths = {r.path for r in fake.requests}
        assert "/apis/apps/v1/namespaces/reasonkit/deployments" in paths, (name, paths)
        assert "/api/v1/nodes" in paths, (name, paths)


def test_run_folders_hold_the_reports_the_index_links(fleet):
    index = (fleet.output / "index.html").read_text()
    for entry in matrix.read_history(fleet.output):
        assert entry["status"] == "ok", entry
        assert (fleet.output / entry["report"]).is_file()
        assert f'href="{entry["report"]}"' in index
        data = report.read_results(fleet.output / entry["notebook"] / entry["run_id"])
        assert data["parameters"]["cluster"] == entry["cluster"]
        assert data["parameters"]["namespace"] == "reasonkit"
        assert data["report_time"] == "2026-11-30T00:00:00Z"
    assert index.count("<td>west</td>") == 6  # 3 runs and 3 history rows
    assert "Matrix history" in index


def test_textfile_carries_the_verdict_of_every_run(fleet):
    text = fleet.textfile.read_text()
    assert (
        'rknb_verdict_pass{cluster="west",namespace="reasonkit",notebook="deployment_audit"} 0'
        in text
    )
    assert (
        'rknb_run_success{cluster="east",namespace="reasonkit",notebook="capacity_planning"} 1'
        in text
    )
    critical = re.search(
        r'rknb_figure\{cluster="west",namespace="reasonkit",notebook="deployment_audit",'
        r'figure="findings_critical"\} (\S+)',
        text,
    )
    assert critical is not None and int(critical.group(1)) >= 1


def test_history_lines_are_json_with_the_matrix_start_time(fleet):
    lines = (fleet.output / "history.jsonl").read_text().splitlines()
    assert len(lines) == 6
    stamps = {json.loads(line)["matrix_started_at"] for line in lines}
    assert len(stamps) == 1 and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", stamps.pop())
