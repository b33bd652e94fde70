"""Build the shipped notebooks from their percent-format sources.

Each ``notebooks-src/<name>.py`` is the reviewable, diffable source of
``rknb/notebooks/<name>.ipynb``: ``# %%`` starts a code cell, ``# %% [markdown]``
a markdown cell, and ``# %% tags=["parameters"]`` tags one. The notebooks are
written without outputs and with stable cell ids, so a rebuild of unchanged
sources gives the same bytes (``tests/notebooks`` checks that they are in step).

Run: ``python notebooks-src/build.py`` (``--check`` exits 1 if anything is stale).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
OUT = HERE.parent / "rknb" / "notebooks"
_HEADER = re.compile(r"^# %%(?:\s*\[(?P<kind>markdown)\])?(?:\s*tags=(?P<tags>\[.*\]))?\s*$")


def build(source: Path) -> str:
    """Return the notebook JSON text for one percent-format source."""
    cells: list[nbformat.NotebookNode] = []
    kind, tags, lines = None, [], []

    def flush() -> None:
        if kind is None:
            return
        text = "\n".join(lines).strip("\n")
        if kind == "markdown":
            text = "\n".join(
                line[2:] if line.startswith("# ") else line.lstrip("#")
                for line in text.splitlines()
            )
            cell = nbformat.v4.new_markdown_cell(text)
        else:
            cell = nbformat.v4.new_code_cell(text)
        if tags:
            cell.metadata["tags"] = tags
        cell.id = f"{source.stem[:12]}-{len(cells):02d}"
        cells.append(cell)

    for line in source.read_text().splitlines():
        header = _HEADER.match(line)
        if header:
            flush()
            kind = header.group("kind") or "code"
            tags = json.loads(header.group("tags")) if header.group("tags") else []
            lines = []
        elif kind is not None:
            lines.append(line)
    flush()

    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
    nbformat.validate(nb)
    return nbformat.writes(nb) + "\n"


def main() -> int:
    """Write (or with ``--check`` verify) every notebook."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if a notebook is stale")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    stale = []
    for source in sorted(HERE.glob("*.py")):
        if source.name == "build.py":
            continue
        target = OUT / f"{source.stem}.ipynb"
        text = build(source)
        if target.exists() and target.read_text() == text:
            continue
        stale.append(target.name)
        if not args.check:
            target.write_text(text)
    if args.check and stale:
        print("stale notebooks (run python notebooks-src/build.py):", ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
