"""``rknb conformance promql`` as users run it: one line per failing case, then the count."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

VECTORS = Path(__file__).resolve().parents[1] / "data" / "conformance" / "promql" / "vectors.json"


def conformance(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rknb.cli", "conformance", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_every_vector_passes_under_both_semantics() -> None:
    for semantics in ("2", "3"):
        done = conformance("promql", str(VECTORS), "--semantics", semantics)
        assert done.returncode == 0, done.stdout + done.stderr
        lines = done.stdout.strip().splitlines()
        assert lines[-1] == f"{lines[-1].split()[0]} passed, 0 failed"
        assert int(lines[-1].split()[0]) >= 41


def test_a_wrong_expectation_is_printed_and_fails_the_run(tmp_path: Path) -> None:
    data = json.loads(VECTORS.read_text())
    case = next(c for c in data["cases"] if not c.get("expect_error") and c["expected"])
    case["expected"][0]["value"] = "12345.5"
    broken = tmp_path / "vectors.json"
    broken.write_text(json.dumps(data))
    done = conformance("promql", str(broken), "--semantics", "2")
    assert done.returncode == 1
    lines = done.stdout.strip().splitlines()
    assert any(case["id"] in line and "12345.5" in line for line in lines[:-1])
    assert lines[-1].endswith("1 failed")
