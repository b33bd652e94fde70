import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest

from rknb.conformance import run_area
from rknb.conformance.hpa import evaluate_case

HERE = Path(__file__).resolve().parent
VECTORS = HERE.parent / "data" / "conformance" / "hpa" / "vectors.json"
SHARED = HERE.parents[2] / "shared" / "conformance" / "hpa" / "vectors.json"


def vectors() -> list[dict]:
    return json.loads(VECTORS.read_text())


def test_copy_of_vectors_still_matches_the_shared_file() -> None:
    if not SHARED.exists():
        pytest.skip(f"{SHARED} is not present (a clone or wheel alone)")
    assert VECTORS.read_bytes() == SHARED.read_bytes()


def test_every_hpa_vector_passes() -> None:
    summary = run_area("hpa", [VECTORS])
    assert [r.line() for r in summary.failures()] == []
    assert summary.passed == len(vectors())
    assert summary.closing_line() == f"{len(vectors())} passed, 0 failed"


def test_the_command_prints_the_closing_line_and_exits_zero() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "rknb.cli", "conformance", "hpa", str(VECTORS)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == f"{len(vectors())} passed, 0 failed"


def test_a_wrong_expected_replica_count_fails_with_both_values() -> None:
    case = copy.deepcopy(next(c for c in vectors() if c["name"] == "ctl_missing_reports"))
    case["expected"]["desired_replicas"] = 4  # the naive answer: 2 x spec.replicas / 2
    result = evaluate_case(case)
    assert result.status == "failed"
    assert result.actual["desired_replicas"] == 2
    assert "ctl_missing_reports" in result.line()


def test_an_expected_error_must_be_raised() -> None:
    case = copy.deepcopy(next(c for c in vectors() if c["name"] == "rc_resource_empty_metrics"))
    assert evaluate_case(case).status == "passed"
    case["expected"] = {"error": "some other failure"}
    assert evaluate_case(case).status == "failed"
