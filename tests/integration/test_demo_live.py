"""``rknb demo --live``: the five notebooks against a local Prometheus over the scenario."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from rknb.scenario.export import find_prometheus

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_demo_live_runs_all_five_notebooks_against_a_local_server(tmp_path):
    if find_prometheus() is None:
        if os.environ.get("RKNB_REQUIRE_PROMETHEUS") == "1":
            pytest.fail("RKNB_REQUIRE_PROMETHEUS=1 but prometheus/promtool are not on PATH")
        pytest.skip("Debian's prometheus and promtool are not on PATH")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "rknb.cli",
            "demo",
            "--live",
            "--jobs",
            "2",
            "--output",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode in (0, 1), done.stderr  # 1: a verdict failed, as on the demo
    assert "Prometheus at http://127.0.0.1:" in done.stdout
    results = {
        p.parent.parent.name: json.loads(p.read_text()) for p in tmp_path.glob("*/*/results.json")
    }
    assert sorted(results) == [
        "capacity_planning",
        "deployment_audit",
        "hpa_tuning",
        "latency_analysis",
        "rollback_drill",
    ]
    latency = results["latency_analysis"]
    assert latency["parameters"]["prometheus"].startswith("http://127.0.0.1:")
    assert latency["figures"]["regression_revision"] == 3
    assert latency["verdict"]["status"] == "fail"  # the demo misses its 99.9 % SLO
