"""The README's main job and the promises DESIGN.md makes about its reports."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import nbformat
import pytest

from rknb.report import inspect_parameters, list_notebooks, validate_results
from rknb.scenario import build_scenario

from .conftest import read_results, run_demo_cli

REPO = Path(__file__).resolve().parents[2]
SEED = REPO.parent / "shared" / "seed"
COMMON = ["prometheus", "cluster", "namespace", "workload", "report_time", "start", "end", "step"]


def rknb(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rknb.cli", *args],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        cwd=cwd,
    )


def report_files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != "index.html"
    }


def test_shipped_notebooks_are_built_from_their_sources() -> None:
    built = subprocess.run(
        [sys.executable, str(REPO / "notebooks-src" / "build.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert built.returncode == 0, built.stdout


@pytest.mark.parametrize("name", sorted(list_notebooks()))
def test_every_parameter_line_is_declared_with_a_type_and_help(name: str) -> None:
    path = list_notebooks()[name]
    cell = next(
        c
        for c in nbformat.read(path, as_version=4).cells
        if "parameters" in c.metadata.get("tags", [])
    )
    assigned = [line.split(":")[0] for line in cell.source.splitlines() if line.strip()]
    declared = inspect_parameters(path)
    assert list(declared) == assigned  # a line papermill cannot parse would be missing
    assert assigned[: len(COMMON)] == COMMON
    assert all(p.help for p in declared.values())


def test_the_demo_writes_five_reports_with_charts_and_no_errors(demo_run: Any) -> None:
    output, completed = demo_run
    assert completed.returncode == 0, completed.stderr
    results = read_results(output)
    assert sorted(results) == sorted(list_notebooks())
    for name, document in results.items():
        validate_results(document)
        assert document["status"] == "ok"
        run_dir = output / name / document["run_id"]
        html = (run_dir / f"{name}.html").read_text()
        assert "data:image/png;base64" in html, f"{name} has no chart"
        executed = nbformat.read(run_dir / f"{name}.ipynb", as_version=4)
        for cell in executed.cells:
            if cell.cell_type != "code":
                continue
            assert cell.execution_count is not None
            for out in cell.outputs:
                assert out.output_type != "error", f"{name}: {out.get('evalue')}"
                assert not (out.output_type == "stream" and out.name == "stderr"), (
                    f"{name} wrote to stderr: {out.text[:200]}"
                )
    assert (output / "index.html").is_file()


def test_reports_load_nothing_from_the_network(demo_run: Any) -> None:
    output, _ = demo_run
    for html in output.rglob("*.html"):
        text = html.read_text()
        assert "<script src" not in text, html
        assert '<link rel="stylesheet" href="http' not in text, html
        assert "cdn." not in text.lower(), html


def test_running_the_demo_twice_gives_byte_identical_reports(demo_run: Any, tmp_path: Path) -> None:
    first, _ = demo_run
    again = run_demo_cli(tmp_path / "again")
    assert again.returncode == 0, again.stderr
    a, b = report_files(first), report_files(tmp_path / "again")
    assert sorted(a) == sorted(b)
    different = [name for name in a if a[name] != b[name]]
    assert different == []


def test_planted_secrets_appear_in_no_report_or_output(demo_run: Any) -> None:
    output, completed = demo_run
    sc = build_scenario()
    secrets = [str(sc.fact(f).value) for f in ("secret.api_key", "secret.db_password")]
    assert all(len(s) >= 12 for s in secrets)
    for path in output.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            for secret in secrets:
                assert secret.encode() not in data, f"{secret[:4]}... leaked into {path}"
    for secret in secrets:
        assert secret not in completed.stdout and secret not in completed.stderr


def test_a_lower_slo_target_changes_the_budget_not_the_measurements(
    demo_results: dict[str, Any], tmp_path: Path
) -> None:
    completed = rknb(
        "run", "latency_analysis", "-p", "slo_target", "0.99", "--output", str(tmp_path)
    )
    assert completed.returncode == 0, completed.stderr  # 0.99 is met: exit 0
    lower = read_results(tmp_path)["latency_analysis"]
    default = demo_results["latency_analysis"]
    for name in ("error_budget", "burn_rate", "budget_remaining"):
        assert lower["figures"][name] != pytest.approx(default["figures"][name])
    assert lower["figures"]["burn_rate"] == pytest.approx(default["figures"]["burn_rate"] / 10)
    assert (default["verdict"]["status"], lower["verdict"]["status"]) == ("fail", "pass")
    for name in ("p95_s", "error_ratio"):
        assert lower["figures"][name] == default["figures"][name]


def test_an_unknown_parameter_fails_fast_naming_it(tmp_path: Path) -> None:
    began = time.monotonic()
    completed = rknb("run", "latency_analysis", "-p", "bogus", "1", "--output", str(tmp_path))
    elapsed = time.monotonic() - began
    assert completed.returncode == 2
    assert "bogus" in completed.stderr
    assert elapsed < 2.0, f"took {elapsed:.2f} s"
    assert not any(tmp_path.rglob("*.ipynb"))  # no kernel ran, nothing was written


def test_a_value_out_of_range_is_refused_under_the_name_the_user_typed(tmp_path: Path) -> None:
    completed = rknb(
        "run", "latency_analysis", "-p", "slo_target", "1.0", "--output", str(tmp_path)
    )
    assert completed.returncode == 2  # bad usage, though a cell found it
    assert "parameter 'slo_target': must be a fraction between 0 and 1" in completed.stdout


def test_a_value_of_the_wrong_type_names_the_parameter_and_type(tmp_path: Path) -> None:
    completed = rknb(
        "run", "latency_analysis", "-p", "slo_target", "high", "--output", str(tmp_path)
    )
    assert completed.returncode == 2
    assert "slo_target" in completed.stderr and "float" in completed.stderr


@pytest.mark.skipif(not SEED.is_dir(), reason="../shared/seed is not beside this clone")
def test_the_audit_reads_the_seed_manifests_and_flags_its_latency_alert(tmp_path: Path) -> None:
    completed = rknb(
        "run", "deployment_audit", "-p", "cluster", str(SEED), "--output", str(tmp_path)
    )
    assert completed.returncode == 1, completed.stderr  # high findings: a failed verdict
    document = read_results(tmp_path)["deployment_audit"]
    alerts = {f["alert"] for f in document["findings"] if f["rule_id"] == "RK-PROM-001"}
    assert alerts == {"reasonkit_alerts/HighLatency"}
    rules = {f["rule_id"] for f in document["findings"] if f["name"] == "reasonkit-pro-mcp"}
    assert {"RK-AVAIL-002", "RK-NET-001", "RK-SEC-001"} <= rules


@pytest.mark.skipif(not SEED.is_dir(), reason="../shared/seed is not beside this clone")
def test_the_drill_predicts_the_seed_rollout_without_history(tmp_path: Path) -> None:
    # A relative path, as a user types it: it resolves where the command runs.
    completed = rknb(
        "run",
        "rollback_drill",
        "-p",
        "cluster",
        "../shared/seed",
        "--output",
        str(tmp_path),
        cwd=REPO,
    )
    assert completed.returncode == 0, completed.stderr
    got = read_results(tmp_path)["rollback_drill"]["figures"]
    assert got["history_available"] is False
    assert (got["replicas"], got["surge"], got["max_unavailable"]) == (3, 1, 0)
    assert (got["waves"], got["min_available"]) == (3, 3)
    # Readiness probe: initialDelaySeconds 5 + periodSeconds 10 = 15 s a wave.
    assert got["rollout_duration_s"] == 45


def test_capacity_forecast_holds_its_own_against_naive_without_growth(tmp_path: Path) -> None:
    # Without growth the naive "same hour last week" is hard to beat: the method must
    # stay within 10 % of it, and the report says which held.
    spec = "demo:nogrowth"
    completed = rknb(
        "run",
        "capacity_planning",
        "-p",
        "prometheus",
        spec,
        "-p",
        "cluster",
        spec,
        "--output",
        str(tmp_path),
    )
    assert completed.returncode == 0, completed.stderr
    got = read_results(tmp_path)["capacity_planning"]["figures"]
    assert got["backtest_within_10_percent"] is True
    assert got["backtest_mape"] <= 1.1 * got["naive_mape"]
