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
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    conda += [d for d in pip if not d.startswith("-")]
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


def test_readme_exit_code_table_is_the_one_the_commands_use() -> None:
    from rknb.report import EXIT_CODES

    readme = (REPO / "README.md").read_text()
    rows = re.findall(r"^\| (\d) \| (.+) \|$", readme, flags=re.M)
    assert {int(code): text for code, text in rows} == EXIT_CODES


def test_readme_shows_the_two_commands() -> None:
    readme = (REPO / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme
    makefile = (REPO / "Makefile").read_text()
    assert "\ndemo:" in makefile and "\ntest:" in makefile
