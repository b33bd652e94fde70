"""The package's metadata: one list of dependencies, spelled twice, never drifting."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]

# conda-forge spells a few packages differently from PyPI.
CONDA_NAMES = {"kubernetes": "python-kubernetes", "matplotlib": "matplotlib-base"}


def _split(requirement: str) -> tuple[str, str]:
    match = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*(.*)$", requirement)
    assert match, requirement
    name = match.group(1).lower().replace("_", "-")
    return CONDA_NAMES.get(name, name), match.group(2).replace(" ", "")


def test_environment_yml_lists_exactly_the_pyproject_dependencies() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    wanted = [*project["dependencies"]]
    for extra in ("lab", "test"):
        wanted += project["optional-dependencies"][extra]
    expected = dict(_split(r) for r in wanted)

    env = yaml.safe_load((REPO / "environment.yml").read_text())
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    got = dict(
        _split(d.replace("=", "==", 1) if re.match(r"^[\w.-]+=[^=]", d) else d)
        for d in conda
        if not d.startswith(("python=", "pip"))
    )
    assert got == expected


def test_console_script_and_packaged_notebooks_are_declared() -> None:
    meta = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert meta["project"]["scripts"] == {"rknb": "rknb.cli:main"}
    assert "notebooks/*.ipynb" in meta["tool"]["setuptools"]["package-data"]["rknb"]
