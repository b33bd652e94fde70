from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

# The fake API server is a package under tests/; make it importable as ``fakekube``.
_TESTS = str(Path(__file__).resolve().parents[1])
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)

from fakekube import FakeKube  # noqa: E402

from rknb.yamlfile import dump_yaml, load_yaml_file  # noqa: E402

DATA = Path(__file__).parents[1] / "data" / "matrix"
REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = ["deployment_audit", "capacity_planning", "latency_analysis"]


@dataclass
class Fleet:
    """Two fake clusters, east and west, and the outcome of one run-matrix over them."""

    fakes: dict[str, FakeKube]
    matrix_file: Path
    output: Path
    textfile: Path
    proc: subprocess.CompletedProcess[str]


def start_fakes(folder: Path, names: tuple[str, ...] = ("east", "west")) -> dict[str, FakeKube]:
    fakes: dict[str, FakeKube] = {}
    for name in names:
        fake = FakeKube()
        fake.start()
        for manifest in sorted((DATA / name).glob("*.yaml")):
            fake.add(*[doc for doc in load_yaml_file(manifest) if doc])
        fake.write_kubeconfig(folder / f"kubeconfig-{name}", context=name)
        fakes[name] = fake
    return fakes


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    """Run ``rknb run-matrix`` once: 2 contexts x 1 namespace x 3 notebooks, on fake APIs."""
    folder = tmp_path_factory.mktemp("fleet")
    fakes = start_fakes(folder)
    matrix = {
        "clusters": [
            # kubeconfig paths relative to the matrix file, as an operator would write them
            {"name": name, "context": name, "kubeconfig": f"kubeconfig-{name}", "tenant": name}
            for name in fakes
        ],
        "namespaces": ["reasonkit"],
        "notebooks": NOTEBOOKS,
        "parameters": {"report_time": "2026-11-30T00:00:00Z"},
        "jobs": 3,
    }
    matrix_file = folder / "matrix.yaml"
    matrix_file.write_text(dump_yaml(matrix), encoding="utf-8")
    output = folder / "reports"
    textfile = folder / "textfile" / "rknb.prom"
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(folder),
        "PYTHONHASHSEED": "0",
        "NO_PROXY": "127.0.0.1,localhost",
        "KUBECONFIG": str(folder / "no-such-kubeconfig"),
    }
    proc = subprocess.run(
        [
            str(REPO / ".venv" / "bin" / "rknb"),
            "run-matrix",
            str(matrix_file),
            "--output",
            str(output),
            "--textfile",
            str(textfile),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=folder,
        timeout=180,
    )
    try:
        yield Fleet(fakes, matrix_file, output, textfile, proc)
    finally:
        for fake in fakes.values():
            fake.stop()
