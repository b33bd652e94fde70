"""Write the fixture notebooks of tests/report (run it after changing one)."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).parent

RESULTS = "application/vnd.rknb.results+json"
SENTINEL = "application/vnd.rknb.sentinel+json"

SENTINEL_CELL = (
    "from IPython.display import display\n\n"
    f'display({{"{SENTINEL}": {{"complete": True}}}}, raw=True)'
)


def code(source: str, cell_id: str, tags: list[str] | None = None) -> nbformat.NotebookNode:
    cell = new_code_cell(source, id=cell_id)
    if tags:
        cell.metadata["tags"] = tags
    return cell


def notebook(title: str, params: str, *cells: nbformat.NotebookNode) -> nbformat.NotebookNode:
    nb = new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }
    nb.metadata["language_info"] = {"name": "python"}
    nb.cells = [
        new_markdown_cell(f"# {title}\n\nA fixture notebook for rknb's report tests.", id="title"),
        code(params, "params", ["parameters"]),
        *cells,
    ]
    return nb


def write(name: str, nb: nbformat.NotebookNode) -> None:
    nbformat.validate(nb)
    nbformat.write(nb, HERE / name)


OK_PARAMS = """\
label: str = "capacity"  # a label shown in the headline
replicas: int = 3  # replica count to report
ratio: float = 0.5  # a utilization ratio (0..1)
passed: bool = True  # whether the verdict passes
version: str = "1.20"  # a Kubernetes version, kept as text
report_time: str = ""  # the instant the report describes (empty: none)
"""

OK_BODY = f"""\
import matplotlib.pyplot as plt
from IPython.display import display

fig, ax = plt.subplots(figsize=(3, 2))
ax.plot([0, 1, 2], [replicas, replicas * ratio, replicas])
ax.set_title(label)
plt.show()

display(
    {{
        "{RESULTS}": {{
            "figures": {{
                "replicas": replicas,
                "ratio": ratio,
                "version": version,
                "missing": None,
            }},
        }}
    }},
    raw=True,
)
display(
    {{
        "{RESULTS}": {{
            "figures": {{"ratio": ratio * 2, "label": label}},
            "verdict": {{
                "status": "pass" if passed else "fail",
                "summary": f"{{replicas}} replicas at {{ratio:.0%}}",
            }},
            "findings": [{{"rule": "demo", "severity": "warning", "object": label}}],
        }}
    }},
    raw=True,
)
print("report_time =", repr(report_time))
print("hash order", list({{"alpha", "beta", "gamma", "delta"}}))
"""


def main() -> None:
    write(
        "ok.ipynb",
        notebook(
            "Succeeds",
            OK_PARAMS,
            code(OK_BODY, "body"),
            new_markdown_cell("See [the docs](https://example.org/docs) for more.", id="note"),
            code(SENTINEL_CELL, "sentinel"),
        ),
    )
    write(
        "raises.ipynb",
        notebook(
            "Raises in a cell",
            "limit: int = 2  # how many items to accept\n",
            code("items = list(range(5))\nprint(len(items))", "count"),
            code(
                "if len(items) > limit:\n"
                "    raise ValueError(f'{len(items)} items exceed the limit of {limit}')",
                "check",
            ),
            code("print('never reached')", "after"),
            code(SENTINEL_CELL, "sentinel"),
        ),
    )
    write(
        "refuses.ipynb",
        notebook(
            "Refuses a parameter value in a cell",
            "limit: int = -1  # how many items to accept\n",
            code(
                "from rknb.errors import ParameterError\n"
                "if limit < 0:\n"
                "    raise ParameterError('limit', f'must be 0 or more, got {limit}')",
                "check",
            ),
            code(SENTINEL_CELL, "sentinel"),
        ),
    )
    write(
        "sysexit.ipynb",
        notebook(
            "Calls sys.exit(0)",
            'reason: str = "early"  # why it stops\n',
            code("import sys\n\nsys.exit(0)", "exit"),
            code("print('never reached')", "after"),
            code(SENTINEL_CELL, "sentinel"),
        ),
    )
    write(
        "dies.ipynb",
        notebook(
            "Kills its kernel",
            "code: int = 1  # the exit status the kernel dies with\n",
            code("import os\n\nos._exit(code)", "die"),
            code("print('never reached')", "after"),
            code(SENTINEL_CELL, "sentinel"),
        ),
    )
    write(
        "sleeps.ipynb",
        notebook(
            "Sleeps past a timeout",
            "sleep_s: float = 60.0  # how long the second cell sleeps, in seconds\n",
            code("print('started')", "start"),
            code("import time\n\ntime.sleep(sleep_s)", "sleep"),
            code(SENTINEL_CELL, "sentinel"),
        ),
    )
    write(
        "nosentinel.ipynb",
        notebook(
            "Forgets the sentinel",
            "value: int = 1  # any number\n",
            code("print(value)", "body"),
        ),
    )
    write(
        "untyped.ipynb",
        notebook(
            "Has an untyped parameter",
            "window = 5  # minutes, but no annotation\n",
            code(SENTINEL_CELL, "sentinel"),
        ),
    )


if __name__ == "__main__":
    main()
