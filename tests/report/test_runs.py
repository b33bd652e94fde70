from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import nbformat
import pytest

from rknb import report
from rknb.errors import RunError


def _files(result: report.RunResult) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(result.run_dir.iterdir())}


def test_successful_run_writes_three_files_and_merges_results(fixture_runs):
    ok = fixture_runs["ok"]
    assert ok.exit_code == report.EXIT_OK and ok.status == "ok"
    assert sorted(_files(ok)) == ["ok.html", "ok.ipynb", "results.json"]
    data = report.read_results(ok.run_dir)
    # second results output overrides ratio (0.5 * 2) and adds label; None stays null
    assert data["figures"] == {
        "label": "capacity",
        "missing": None,
        "ratio": 1.0,
        "replicas": 3,
        "version": "1.20",
    }
    assert data["verdict"] == {"status": "pass", "summary": "3 replicas at 50%"}
    assert data["parameters"]["version"] == "1.20"
    assert data["error"] is None
    assert ok.run_dir.name == ok.run_id == data["run_id"]


def test_results_json_is_sorted_indented_with_trailing_newline(fixture_runs):
    text = fixture_runs["ok"].results_path.read_text()
    assert text.endswith("}\n")
    assert text == json.dumps(json.loads(text), sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def test_same_inputs_give_byte_identical_reports(fixture_runs):
    first, second = fixture_runs["ok"], fixture_runs["ok_again"]
    assert first.run_id == second.run_id
    assert _files(first) == _files(second)


def test_kernel_hash_seed_is_fixed(fixture_runs):
    nb = nbformat.read(fixture_runs["ok"].notebook_path, as_version=4)
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    # the order of a set of str under PYTHONHASHSEED=0, as CPython 3.11 prints it
    import subprocess
    import sys

    expected = subprocess.run(
        [sys.executable, "-c", 'print(list({"alpha", "beta", "gamma", "delta"}))'],
        env={"PYTHONHASHSEED": "0"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert f"hash order {expected}" in text


def test_notebook_has_no_clock_times_paths_or_random_ids(fixture_runs):
    result = fixture_runs["ok"]
    raw = result.notebook_path.read_text()
    nb = json.loads(raw)
    for key in ("start_time", "end_time", "duration", "input_path", "output_path"):
        assert key not in nb["metadata"]["papermill"]
        assert f'"{key}"' not in raw
    assert '"execution"' not in raw
    assert str(Path.home()) not in raw and "/tmp/" not in raw
    assert str(result.run_dir) not in raw
    # no parameter given and an empty report time: nothing is injected
    assert not any("injected-parameters" in c["metadata"].get("tags", []) for c in nb["cells"])
    given = json.loads(fixture_runs["fail_verdict"].notebook_path.read_text())
    injected = [c for c in given["cells"] if "injected-parameters" in c["metadata"]["tags"]]
    assert [c["id"] for c in injected] == ["injected-parameters"]


def test_verdict_fail_exits_1_with_status_ok(fixture_runs):
    failed = fixture_runs["fail_verdict"]
    assert failed.exit_code == report.EXIT_FINDINGS
    assert failed.status == "ok"
    assert failed.verdict == {"status": "fail", "summary": "3 replicas at 50%"}
    assert failed.report_time == "2026-11-30T12:00:00Z"
    assert failed.parameters["passed"] is False
    nb = nbformat.read(failed.notebook_path, as_version=4)
    injected = next(c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", []))
    assert 'report_time = "2026-11-30T12:00:00Z"' in injected.source
    assert "passed = False" in injected.source


def test_failing_cell_keeps_partial_notebook_and_exits_3(fixture_runs):
    run = fixture_runs["raises"]
    assert run.exit_code == report.EXIT_CELL_ERROR and run.status == "failed"
    # cell 3 of the notebook as written (title, params, count, check)
    assert run.error == {
        "cell_index": 3,
        "ename": "ValueError",
        "evalue": "5 items exceed the limit of 2",
    }
    nb = nbformat.read(run.notebook_path, as_version=4)
    marked = [c for c in nb.cells if "papermill-error-cell-tag" in c.metadata.get("tags", [])]
    assert len(marked) == 2
    after = next(c for c in nb.cells if c.get("id") == "after")
    assert after.execution_count is None and after.outputs == []
    assert run.html_path.is_file()
    assert report.read_results(run.run_dir)["status"] == "failed"


def test_a_value_the_notebook_refuses_is_bad_usage_exit_2(fixture_runs):
    run = fixture_runs["refuses"]
    assert run.exit_code == report.EXIT_USAGE and run.status == "failed"
    assert run.error["ename"] == "ParameterError"
    assert "parameter 'limit': must be 0 or more, got -1" in run.error["evalue"]


def test_sys_exit_zero_is_a_failure_not_a_success(fixture_runs):
    run = fixture_runs["sysexit"]
    assert run.exit_code == report.EXIT_CELL_ERROR
    assert run.error["ename"] == "SystemExit" and run.error["cell_index"] == 2


def test_kernel_death_exits_4(fixture_runs):
    run = fixture_runs["dies"]
    assert run.exit_code == report.EXIT_KERNEL_DIED
    assert run.error["ename"] == "DeadKernelError" and run.error["cell_index"] == 2


def test_whole_run_timeout_stops_the_run_and_exits_5(fixture_runs):
    run = fixture_runs["sleeps"]
    assert run.exit_code == report.EXIT_TIMEOUT
    assert run.error["ename"] == "RunTimeout" and run.error["cell_index"] == 3
    nb = nbformat.read(run.notebook_path, as_version=4)
    start = next(c for c in nb.cells if c.get("id") == "start")
    assert start.outputs[0]["text"] == "started\n"  # the partial notebook was kept


def test_missing_sentinel_is_incomplete(fixture_runs):
    run = fixture_runs["nosentinel"]
    assert run.exit_code == report.EXIT_INCOMPLETE
    assert run.error["ename"] == "Incomplete"


def test_html_hides_code_and_injected_cell(fixture_runs):
    html = fixture_runs["ok"].html_path.read_text()
    assert "ax.set_title" not in html and "import matplotlib" not in html
    assert "# Parameters" not in html
    assert "data:image/png;base64," in html
    assert "3 replicas at 50%" in html


def test_html_shows_code_when_asked(fixture_runs, tmp_path):
    result = report.run_notebook(
        Path(__file__).parents[1] / "data" / "report" / "nosentinel.ipynb",
        {"value": "7"},
        output_dir=tmp_path,
        show_code=True,
    )
    html = result.html_path.read_text()
    assert "print(value)" in re.sub(r"<[^>]+>", "", html)
    assert "value = 7" not in html  # the injected cell is still removed


_RESOURCE = re.compile(
    r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//|url\(\s*["']?\s*(?:https?:)?//|@import""",
    re.IGNORECASE,
)


@pytest.mark.parametrize("label", ["ok", "raises", "dies"])
def test_html_loads_nothing_from_the_network(fixture_runs, label):
    html = fixture_runs[label].html_path.read_text()
    assert "<script src" not in html.lower()
    links = re.findall(r"<a [^>]*href=\"https://[^\"]*\"", html)
    # the only absolute URL is the markdown link in ok.ipynb, which loads nothing
    assert _RESOURCE.findall(re.sub(r"<a [^>]*>", "<a>", html)) == []
    assert len(links) == (1 if label == "ok" else 0)


def test_results_validate_against_the_schema(fixture_runs):
    for run in fixture_runs.values():
        report.validate_results(report.read_results(run.run_dir))


@pytest.mark.parametrize(
    ("change", "where"),
    [
        (lambda d: d.update(status="done"), "status"),
        (lambda d: d.update(run_id="XYZ"), "run_id"),
        (lambda d: d["figures"].update(bad=[1, 2]), "figures/bad"),
        (lambda d: d.update(error=None, status="failed"), "error"),
        (lambda d: d.pop("schema"), "(top level)"),
        (lambda d: d.update(report_time="2026-11-30 12:00"), "report_time"),
    ],
)
def test_broken_results_do_not_validate(fixture_runs, change, where):
    data = copy.deepcopy(report.read_results(fixture_runs["raises"].run_dir))
    data["status"], data["error"] = "ok", None
    report.validate_results(data)  # the base document is valid
    change(data)
    with pytest.raises(RunError, match=re.escape(where)):
        report.validate_results(data)


def test_schema_documents_every_field():
    schema = report.results_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert set(schema["required"]) == set(schema["properties"])
    assert all(p.get("description") for p in schema["properties"].values())
