from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rknb import cli, report

DATA = Path(__file__).parents[1] / "data" / "report"
OK = str(DATA / "ok.ipynb")


def rknb(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rknb.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def test_unknown_parameter_exits_2_in_one_line_fast(tmp_path):
    started = time.monotonic()
    done = rknb("run", OK, "-p", "replica", "3", "--output", str(tmp_path))
    assert time.monotonic() - started < 2
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "rknb: error: parameter 'replica': is not a parameter of this notebook; did you mean "
        "'replicas'? known: label, replicas, ratio, passed, version, report_time"
    ]
    assert list(tmp_path.iterdir()) == []


def test_wrong_type_names_parameter_value_and_type(tmp_path):
    done = rknb("run", OK, "-p", "replicas", "3.0", "--output", str(tmp_path))
    assert done.returncode == 2
    assert "'replicas'" in done.stderr and "'3.0'" in done.stderr and "(int)" in done.stderr
    assert "Traceback" not in done.stderr


def test_name_equals_value_is_rejected_with_the_right_spelling(tmp_path):
    done = rknb("run", OK, "-p", "replicas=3", "x", "--output", str(tmp_path))
    assert done.returncode == 2
    assert "write '-p replicas 3'" in done.stderr


def test_p_with_one_word_explains_two_words():
    done = rknb("run", OK, "-p", "replicas")
    assert done.returncode == 2
    assert done.stderr.startswith("rknb: error: -p takes two words, NAME VALUE")
    assert len(done.stderr.splitlines()) == 1


def test_unknown_notebook_is_usage_error():
    done = rknb("run", "no_such_notebook")
    assert done.returncode == 2
    assert "no notebook named 'no_such_notebook'" in done.stderr


def test_help_lists_the_exit_code_table():
    done = rknb("run", "--help")
    assert done.returncode == 0
    for code, meaning in report.EXIT_CODES.items():
        assert f"  {code}  {meaning}" in done.stdout


def test_failed_verdict_exits_1_and_prints_where_the_report_is(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text('passed: false\nversion: "1.20"\nreport_time: 2026-11-30T12:00:00Z\n')
    out = tmp_path / "out"
    done = rknb("run", OK, "-f", str(params), "-p", "replicas", "4", "--output", str(out))
    assert done.returncode == 1, done.stderr
    lines = done.stdout.splitlines()
    html = Path(lines[0].removeprefix("report: "))
    assert html.is_file() and html.parent.parent.parent == out
    assert "verdict: fail: 4 replicas at 50%" in lines
    results = json.loads((html.parent / "results.json").read_text())
    assert results["parameters"]["replicas"] == 4
    assert results["report_time"] == "2026-11-30T12:00:00Z"
    assert (out / "index.html").is_file()


def test_yaml_unquoted_version_is_refused(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text("version: 1.20\n")
    done = rknb("run", OK, "-f", str(params), "--output", str(tmp_path / "out"))
    assert done.returncode == 2
    assert "quote it" in done.stderr


def test_cell_error_exits_3_and_names_the_cell(tmp_path):
    done = rknb("run", str(DATA / "raises.ipynb"), "--output", str(tmp_path))
    assert done.returncode == 3
    assert "error (cell 3): ValueError: 5 items exceed the limit of 2" in done.stdout


def test_list_prints_parameters_with_types_and_help(monkeypatch, capsys):
    monkeypatch.setattr(report, "list_notebooks", lambda: {"ok": DATA / "ok.ipynb"})
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "ok"
    assert "    replicas: int = 3  # replica count to report" in out
    assert "    version: str = '1.20'  # a Kubernetes version, kept as text" in out


def test_demo_runs_every_notebook_and_writes_the_index(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(
        report, "list_notebooks", lambda: {"ok": DATA / "ok.ipynb", "raises": DATA / "raises.ipynb"}
    )
    monkeypatch.setattr(report, "resolve_notebook", lambda name: DATA / f"{name}.ipynb")
    # the worst failure code is the exit code; the verdicts are only printed
    code = cli.main(["demo", "--output", str(tmp_path), "--jobs", "2"])
    out = capsys.readouterr().out
    assert code == report.EXIT_CELL_ERROR
    assert "[1/2]" in out and "[2/2]" in out and "verdict pass" in out
    assert "raises: failed in cell 3" in out and "raises: raises" not in out  # named once
    assert (tmp_path / "index.html").is_file()


@pytest.mark.parametrize("bad", [["--jobs", "0"], ["--jobs", "two"]])
def test_demo_rejects_bad_jobs(bad):
    done = rknb("demo", *bad)
    assert done.returncode == 2 and "--jobs" in done.stderr


@pytest.fixture
def fixture_notebooks(monkeypatch):
    notebooks = {"ok": DATA / "ok.ipynb", "raises": DATA / "raises.ipynb"}
    monkeypatch.setattr(report, "list_notebooks", lambda: notebooks)
    monkeypatch.setattr(report, "resolve_notebook", lambda name: notebooks[name])


def test_record_checks_every_value_before_creating_the_bundle(fixture_notebooks, tmp_path):
    bundle = tmp_path / "bundle"
    code = cli.main(
        ["record", str(bundle), "ok", "-p", "replicas", "many", "--output", str(tmp_path)]
    )
    assert code == report.EXIT_USAGE
    assert not bundle.exists()


def test_record_takes_notebooks_named_after_the_options_and_exits_with_the_verdict(
    fixture_notebooks, tmp_path, capsys
):
    bundle = tmp_path / "bundle"
    code = cli.main(
        ["record", str(bundle), "-p", "passed", "no", "--output", str(tmp_path / "out"), "ok"]
    )
    out = capsys.readouterr().out
    assert code == report.EXIT_FINDINGS  # the verdict failed: not a success
    assert "[1/1]" in out and "raises" not in out
    assert (bundle / "bundle.json").is_file()
    # Every run reached its end (a failed verdict is an end): the bundle can be replayed.
    assert "recording" not in json.loads((bundle / "bundle.json").read_text())
    assert "unfinished" not in out


def test_record_leaves_the_bundle_unfinished_when_a_run_fails(fixture_notebooks, tmp_path, capsys):
    from rknb.errors import BundleError
    from rknb.sources import open_bundle

    bundle = tmp_path / "bundle"
    code = cli.main(["record", str(bundle), "ok", "raises", "--output", str(tmp_path / "out")])
    out = capsys.readouterr().out
    assert code == report.EXIT_CELL_ERROR
    assert "bundle left unfinished: raises did not run to the end" in out
    with pytest.raises(BundleError, match="unfinished recording"):
        open_bundle(bundle)


def test_record_into_a_file_is_a_clear_infrastructure_error(fixture_notebooks, tmp_path, capsys):
    target = tmp_path / "afile"
    target.write_text("not a folder\n")
    code = cli.main(["record", str(target), "ok", "--output", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == report.EXIT_INFRASTRUCTURE
    assert "cannot write the bundle folder" in err and "Traceback" not in err
    assert target.read_text() == "not a folder\n"


def test_an_alias_bomb_in_a_parameters_file_is_refused(tmp_path):
    lines = ["a: &a [x, x, x, x, x, x, x, x, x]"]
    lines += [
        f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]"
        for p, c in zip("abcdefgh", "bcdefghi", strict=True)
    ]
    params = tmp_path / "params.yaml"
    params.write_text("\n".join(lines) + "\n")
    started = time.monotonic()
    done = rknb("run", OK, "-f", str(params), "--output", str(tmp_path / "out"))
    assert done.returncode == 2 and "alias bomb" in done.stderr
    assert time.monotonic() - started < 30
