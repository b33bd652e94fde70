"""Run a notebook headlessly and write a reproducible report of it.

A run coerces the parameters strictly (before any kernel starts), executes the
notebook with papermill in a child process that a whole-run timeout can stop,
and writes ``<output>/<notebook>/<run-id>/`` holding the executed notebook
(normalized so that the same inputs give the same bytes), a self-contained
HTML rendering and ``results.json`` (schema ``rknb.results/v1``).

papermill's own outcome is not trusted alone (``sys.exit(0)`` in a cell
"succeeds", a dead kernel leaves cells marked completed): a run is a success
only when papermill returned, every code cell ran without an error output,
and the last cell displayed the completion sentinel.

Exit codes, shared by every ``rknb`` command:

====  ==========================================================================
code  meaning
====  ==========================================================================
0     success: the run completed and its verdict, if any, passed
1     the run completed but its verdict failed, or it reported findings at or
      above the ``fail_on`` severity
2     bad usage: unknown notebook or parameter, a value of the wrong type, a
      bad option
3     a cell raised an exception (``sys.exit()`` included); the partial
      notebook is kept with the failing cell marked
4     the kernel died (out of memory, ``os._exit``, a crash): an
      infrastructure failure to retry or alert on, not an analysis result
5     timeout: one cell, or the whole run, took longer than allowed
6     incomplete: no cell raised, but a code cell never ran or the completion
      sentinel is missing (a notebook bug)
7     the run could not be started or recorded: no such kernel, papermill
      failed, the results did not match the schema, an output not writable
====  ==========================================================================
"""

from __future__ import annotations

import ast
import contextlib
import copy
import difflib
import hashlib
import html
import json
import logging
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import nbformat

from rknb.audit.model import FAIL_ON_SEVERITIES
from rknb.credentials import redact
from rknb.errors import ParameterError, RunError
from rknb.times import format_time, parse_time

__all__ = [
    "EXIT_CELL_ERROR",
    "EXIT_CODES",
    "EXIT_FINDINGS",
    "EXIT_INCOMPLETE",
    "EXIT_INFRASTRUCTURE",
    "EXIT_KERNEL_DIED",
    "EXIT_OK",
    "EXIT_TIMEOUT",
    "EXIT_USAGE",
    "HISTORY_FILE",
    "RESULTS_MIME",
    "RESULTS_SCHEMA_ID",
    "SENTINEL_MIME",
    "SEVERITIES",
    "Param",
    "RunResult",
    "coerce_parameters",
    "exit_code_table",
    "inspect_parameters",
    "list_notebooks",
    "normalize_notebook",
    "read_history",
    "read_results",
    "resolve_notebook",
    "resolve_report_time",
    "results_schema",
    "run_id_of",
    "run_notebook",
    "update_index",
    "validate_results",
]

logger = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_USAGE = 2
EXIT_CELL_ERROR = 3
EXIT_KERNEL_DIED = 4
EXIT_TIMEOUT = 5
EXIT_INCOMPLETE = 6
EXIT_INFRASTRUCTURE = 7

EXIT_CODES: dict[int, str] = {
    EXIT_OK: "success: the run completed and its verdict, if any, passed",
    EXIT_FINDINGS: "the verdict failed, or findings at or above --fail-on were reported",
    EXIT_USAGE: "bad usage: unknown notebook or parameter, wrong type or refused value, bad option",
    EXIT_CELL_ERROR: "a cell raised (sys.exit() included); the partial notebook is kept",
    EXIT_KERNEL_DIED: "the kernel died (out of memory, os._exit, crash): retry or alert",
    EXIT_TIMEOUT: "timeout: a cell or the whole run took longer than allowed",
    EXIT_INCOMPLETE: "incomplete: a code cell never ran or the completion sentinel is missing",
    EXIT_INFRASTRUCTURE: "could not start or record the run (kernel, papermill, schema, disk)",
}

RESULTS_MIME = "application/vnd.rknb.results+json"
SENTINEL_MIME = "application/vnd.rknb.sentinel+json"
RESULTS_SCHEMA_ID = "rknb.results/v1"

#: Finding severities from least to most severe; ``fail_on`` names one of them.
SEVERITIES = FAIL_ON_SEVERITIES  # one list with `rknb audit --fail-on`

PARAM_TYPES = ("str", "int", "float", "bool")

INJECTED_TAG = "injected-parameters"
ERROR_MARKER_TAG = "papermill-error-cell-tag"
TEMPLATE_NAME = "rknb"

_INT = re.compile(r"[+-]?(?:0|[1-9][0-9]*)")
_FLOAT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_TRUE = {"true", "yes", "1"}
_FALSE = {"false", "no", "0"}
_IPYKERNEL_TMP = re.compile(r"(?:/[^\s'\"]*)?/ipykernel_\d+/")
_NOISE = ("Kernel is running over TCP without encryption",)
_PAPERMILL_CLOCK_KEYS = ("start_time", "end_time", "duration", "input_path", "output_path")
_WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


def exit_code_table() -> str:
    """Return the exit codes as aligned text lines, for help screens."""
    return "\n".join(f"  {code}  {meaning}" for code, meaning in EXIT_CODES.items())


# --------------------------------------------------------------------------- parameters


@dataclass(frozen=True)
class Param:
    """One declared notebook parameter: name, type name, default value and help text."""

    name: str
    type: str
    default: str | int | float | bool
    help: str


def _package_notebooks() -> Path:
    return Path(str(resources.files("rknb"))) / "notebooks"


def list_notebooks() -> dict[str, Path]:
    """Return the notebooks shipped with rknb, by name, in name order."""
    folder = _package_notebooks()
    if not folder.is_dir():
        return {}
    return {path.stem: path for path in sorted(folder.glob("*.ipynb"))}


def resolve_notebook(name_or_path: str | os.PathLike[str]) -> Path:
    """Return the notebook file for a shipped notebook's name or a path to an ``.ipynb``."""
    text = os.fspath(name_or_path)
    path = Path(text)
    if path.suffix == ".ipynb" or os.sep in text:
        if not path.is_file():
            raise RunError(
                f"notebook file {text!r} does not exist; give an existing .ipynb path or the name "
                "of a shipped notebook (see 'rknb list')",
                exit_code=EXIT_USAGE,
            )
        return path.resolve()

    known = list_notebooks()
    if text in known:
        return known[text]
    close = difflib.get_close_matches(text, list(known), n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise RunError(
        f"no notebook named {text!r}; {hint}known notebooks: {', '.join(known) or 'none'}",
        exit_code=EXIT_USAGE,
    )


def inspect_parameters(notebook_path: str | os.PathLike[str]) -> dict[str, Param]:
    """Return the parameters a notebook declares in its ``parameters`` cell, in order.

    Raises :class:`ParameterError` when a parameter has no type annotation or a
    default that is not a literal of its type: both are bugs in the notebook.
    """
    import papermill

    path = Path(notebook_path)
    try:
        raw = papermill.inspect_notebook(str(path))
    except Exception as exc:
        raise RunError(
            f"cannot read the parameters of {path.name}: {exc}; check it is a valid notebook",
            exit_code=EXIT_USAGE,
        ) from exc

    declared: dict[str, Param] = {}
    for name, info in raw.items():
        type_name = str(info.get("inferred_type_name"))
        if type_name not in PARAM_TYPES:
            raise ParameterError(
                name,
                f"has no supported type annotation in {path.name} (got {type_name!r}); "
                f"declare it as '{name}: str = ...' with one of {', '.join(PARAM_TYPES)}",
            )
        source = str(info.get("default"))
        try:
            default = ast.literal_eval(source)
        except (ValueError, SyntaxError) as exc:
            raise ParameterError(
                name, f"default {source!r} in {path.name} is not a literal; write a plain value"
            ) from exc
        if not _matches_type(default, type_name):
            raise ParameterError(
                name, f"default {default!r} in {path.name} is not a {type_name}; fix the notebook"
            )
        declared[name] = Param(name, type_name, default, str(info.get("help") or ""))
    return declared


def _matches_type(value: object, type_name: str) -> bool:
    if type_name == "bool":
        return isinstance(value, bool)
    if type_name == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if type_name == "float":
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, str)


def _coerce_one(param: Param, value: object) -> str | int | float | bool:
    expected = {"str": "a string", "int": "an integer", "float": "a number", "bool": "a boolean"}
    wrong = f"expected {expected[param.type]} ({param.type}), got {value!r}"

    if not isinstance(value, str):
        # Typed values come from a YAML parameters file.
        if param.type == "str":
            raise ParameterError(param.name, f"{wrong}; quote it in the YAML file so it stays text")
        if not _matches_type(value, param.type):
            raise ParameterError(param.name, wrong)
        if param.type == "float":
            number = float(value)  # type: ignore[arg-type]
            if not math.isfinite(number):
                raise ParameterError(param.name, f"{wrong}; give a finite number")
            return number
        return value  # type: ignore[return-value]

    text = value.strip()
    if param.type == "str":
        return value
    if param.type == "int":
        if not _INT.fullmatch(text):
            raise ParameterError(param.name, f"{wrong}; write digits only, e.g. 3")
        return int(text)
    if param.type == "float":
        if not _FLOAT.fullmatch(text):
            raise ParameterError(param.name, f"{wrong}; write a decimal number, e.g. 0.5")
        return float(text)
    lowered = text.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ParameterError(param.name, f"{wrong}; write true/false, yes/no or 1/0")


def coerce_parameters(
    declared: Mapping[str, Param], given: Mapping[str, object]
) -> dict[str, str | int | float | bool]:
    """Return the given parameters converted to their declared types, strictly.

    Strings from the command line are parsed (``true/false/yes/no/1/0`` for a
    bool; digits for an int; a decimal for a float; a str stays exactly as
    given, so ``1.20`` is not turned into a number). Typed values, from a
    YAML file, must already have the declared type.
    """
    coerced: dict[str, str | int | float | bool] = {}
    for name, value in given.items():
        if name not in declared:
            known = ", ".join(declared) or "none"
            close = difflib.get_close_matches(name, list(declared), n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ParameterError(name, f"is not a parameter of this notebook; {hint}known: {known}")
        coerced[name] = _coerce_one(declared[name], value)
        _refuse_credentials(name, coerced[name])
    return coerced


def _refuse_credentials(name: str, value: object) -> None:
    """Refuse a parameter that carries a credential: papermill copies parameters into reports."""
    if isinstance(value, str) and redact(value, environ={}) != value:
        raise ParameterError(
            name,
            "carries a credential (a user:password@ or token in a URL, or a token= or "
            "password= value), and parameters are copied into every report; give "
            "credentials by file or environment variable instead "
            "(RKNB_PROMETHEUS_TOKEN_FILE, RKNB_PROMETHEUS_TOKEN_ENV or the configuration file)",
        )


def _is_offline(spec: str, notebook_dir: Path) -> bool:
    if spec == "demo" or spec.startswith("demo:"):
        return True
    if spec.startswith(("http://", "https://")):
        return False
    path = Path(spec).expanduser()
    return path.exists() or (notebook_dir / path).exists()


def resolve_report_time(
    declared: Mapping[str, Param],
    effective: Mapping[str, object],
    *,
    notebook_dir: Path,
    now: datetime | None = None,
) -> str:
    """Return the report time a run uses, as ISO 8601 UTC with ``Z``, or ``""`` for none.

    A given ``report_time`` is checked and kept. Otherwise, when every source
    (``prometheus``, ``cluster``) is offline, the first reference time those
    sources know (the demo's fixed instant, a bundle's recording time); when a
    live source is involved, the wall clock (``now``, for tests).

    Parameters
    ----------
    declared
        The notebook's declared parameters.
    effective
        Defaults overlaid with the given values.
    notebook_dir
        The folder relative paths in source specs are also looked up in.
    now
        The wall clock to use for live sources; the current time when None.

    Returns
    -------
    str
        The report time, or ``""`` when the notebook or its sources have none.

    Raises
    ------
    ParameterError
        When a given ``report_time`` is relative or not ISO 8601 with an offset.
    """
    if "report_time" not in declared:
        return ""
    given = str(effective.get("report_time") or "").strip()
    if given:
        if given.startswith("now"):
            raise ParameterError(
                "report_time", f"{given!r} is relative; give an ISO 8601 time with an offset"
            )
        return format_time(parse_time(given, name="report_time"))

    specs = [str(effective[name]) for name in ("prometheus", "cluster") if name in effective]
    if not specs:
        return ""
    if not all(_is_offline(spec, notebook_dir) for spec in specs):
        return format_time(now or datetime.now(UTC))

    from rknb import sources

    for spec in specs:
        moment = sources.reference_time_of(spec)
        if moment is not None:
            return format_time(moment)
    return ""


def run_id_of(notebook: str, effective: Mapping[str, object], report_time: str) -> str:
    """Return the run id: 12 hex digits of sha256 over notebook, parameters and report time."""
    payload = json.dumps(
        {"notebook": notebook, "parameters": dict(effective), "report_time": report_time},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


# --------------------------------------------------------------------------- results


@dataclass
class RunResult:
    """What one run produced: where its files are, its status, exit code and headline."""

    notebook: str
    run_id: str
    run_dir: Path
    parameters: dict[str, Any]
    report_time: str
    status: str
    exit_code: int
    verdict: dict[str, Any] | None
    figures: dict[str, Any]
    findings: list[Any]
    error: dict[str, Any] | None
    message: str = ""
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def notebook_path(self) -> Path:
        """The executed, normalized notebook."""
        return self.run_dir / f"{self.notebook}.ipynb"

    @property
    def html_path(self) -> Path:
        """The HTML report."""
        return self.run_dir / f"{self.notebook}.html"

    @property
    def results_path(self) -> Path:
        """The ``results.json`` file."""
        return self.run_dir / "results.json"


@cache
def results_schema() -> dict[str, Any]:
    """Return the ``rknb.results/v1`` JSON Schema shipped in the package."""
    text = (resources.files("rknb") / "schemas" / "results.v1.json").read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def validate_results(document: Mapping[str, Any]) -> None:
    """Check a results document against the schema; raise :class:`RunError` if it breaks it."""
    import jsonschema  # slow to import (about 1 s): only when results are written

    validator = jsonschema.Draft202012Validator(results_schema())
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    if errors:
        first = errors[0]
        where = "/".join(str(p) for p in first.absolute_path) or "(top level)"
        raise RunError(
            f"results do not match {RESULTS_SCHEMA_ID} at {where}: {first.message}; "
            "fix what the notebook records",
            exit_code=EXIT_INFRASTRUCTURE,
        )


def read_results(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Return the ``results.json`` of a run folder, parsed."""
    data: dict[str, Any] = json.loads(Path(run_dir, "results.json").read_text(encoding="utf-8"))
    return data


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _collect_results(nb: nbformat.NotebookNode) -> tuple[dict[str, Any], Any, Any, bool]:
    figures: dict[str, Any] = {}
    verdict: Any = None
    findings: Any = []
    sentinel = False
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if SENTINEL_MIME in data and (data[SENTINEL_MIME] or {}).get("complete") is True:
                sentinel = True
            record = data.get(RESULTS_MIME)
            if not isinstance(record, dict):
                continue
            figures.update(record.get("figures") or {})
            if "verdict" in record:
                verdict = record["verdict"]
            if "findings" in record:
                findings = record["findings"]
    return figures, verdict, findings, sentinel


def _source_cells(nb: nbformat.NotebookNode) -> Iterator[tuple[int, nbformat.NotebookNode]]:
    """Yield (index in the notebook as written, cell), skipping cells papermill added."""
    index = 0
    for cell in nb.cells:
        tags = cell.get("metadata", {}).get("tags", [])
        if INJECTED_TAG in tags or ERROR_MARKER_TAG in tags:
            continue
        yield index, cell
        index += 1


def _ran(cell: nbformat.NotebookNode) -> bool:
    return cell.cell_type != "code" or not cell.source.strip() or cell.execution_count is not None


def _judge(
    nb: nbformat.NotebookNode, outcome: Mapping[str, Any], timeout_s: float | None
) -> tuple[int, dict[str, Any] | None]:
    """Return the exit code and error of a run from papermill's outcome and the notebook."""
    kind = outcome.get("kind", "ok")
    cells = list(_source_cells(nb))
    not_run = [i for i, cell in cells if not _ran(cell)]
    running = [
        i
        for i, cell in cells
        if cell.get("metadata", {}).get("papermill", {}).get("status") == "running"
    ]
    errors = [
        (i, out)
        for i, cell in cells
        for out in cell.get("outputs", [])
        if out.get("output_type") == "error"
    ]

    if kind == "run_timeout":
        at = running[0] if running else (not_run[0] if not_run else None)
        return EXIT_TIMEOUT, {
            "cell_index": at,
            "ename": "RunTimeout",
            "evalue": f"the whole run exceeded {timeout_s:g} s and was stopped",
        }
    if kind == "cell_timeout":
        at = errors[0][0] if errors else (running[0] if running else None)
        return EXIT_TIMEOUT, {
            "cell_index": at,
            "ename": "CellTimeoutError",
            "evalue": str(outcome.get("evalue") or "a cell exceeded the per-cell timeout"),
        }
    if kind == "dead_kernel":
        # The dying cell is the last one papermill started; it may or may not have a count.
        started = [
            i
            for i, cell in cells
            if cell.cell_type == "code"
            and cell.get("metadata", {}).get("papermill", {}).get("start_time")
        ]
        at = started[-1] if started else (not_run[0] if not_run else None)
        return EXIT_KERNEL_DIED, {
            "cell_index": at,
            "ename": "DeadKernelError",
            "evalue": str(outcome.get("evalue") or "the kernel died"),
        }
    if kind not in ("ok", "cell_error"):
        return EXIT_INFRASTRUCTURE, {
            "cell_index": None,
            "ename": str(outcome.get("ename") or kind),
            "evalue": str(outcome.get("evalue") or ""),
        }
    if errors:
        index, out = errors[0]
        # A notebook refusing a parameter's value is bad usage, as a wrong type is.
        code = EXIT_USAGE if out.get("ename") == "ParameterError" else EXIT_CELL_ERROR
        return code, {
            "cell_index": index,
            "ename": str(out.get("ename", "")),
            "evalue": str(out.get("evalue", "")),
        }
    if kind == "cell_error":
        return EXIT_CELL_ERROR, {
            "cell_index": None,
            "ename": str(outcome.get("ename") or "Error"),
            "evalue": str(outcome.get("evalue") or ""),
        }
    if not_run:
        return EXIT_INCOMPLETE, {
            "cell_index": not_run[0],
            "ename": "Incomplete",
            "evalue": "this code cell never ran although no cell raised",
        }
    _, _, _, sentinel = _collect_results(nb)
    if not sentinel:
        return EXIT_INCOMPLETE, {
            "cell_index": None,
            "ename": "Incomplete",
            "evalue": f"the last cell did not display {SENTINEL_MIME}",
        }
    return EXIT_OK, None


def _findings_fail(findings: list[Any], fail_on: str | None) -> bool:
    if fail_on is None:
        return False
    threshold = SEVERITIES.index(fail_on)
    for finding in findings:
        severity = finding.get("severity") if isinstance(finding, dict) else None
        # A finding whose severity is unknown counts: better a false alarm than a miss.
        if severity not in SEVERITIES or SEVERITIES.index(severity) >= threshold:
            return True
    return False


# --------------------------------------------------------------------------- normalizing


def _scrubber(paths: Mapping[str, str]) -> Callable[[str], str]:
    """Return a function replacing absolute paths (longest first) and ipykernel temp folders."""
    replacements = sorted(paths.items(), key=lambda item: -len(item[0]))

    def scrub(text: str) -> str:
        for path, placeholder in replacements:
            text = text.replace(path, placeholder)
        return _IPYKERNEL_TMP.sub("<ipykernel>/", text)

    return scrub


def normalize_notebook(
    nb: nbformat.NotebookNode, *, paths: Mapping[str, str] | None = None
) -> nbformat.NotebookNode:
    """Return a copy of an executed notebook without run-to-run churn.

    Drops papermill and nbclient clock times, durations and input/output
    paths, widget state, gives papermill's cells fixed ids, and replaces the
    absolute paths in ``paths`` (path → placeholder) and ipykernel's temporary
    folders inside outputs.
    """
    nb = copy.deepcopy(nb)
    scrub = _scrubber(paths or {})

    meta = nb.metadata.get("papermill")
    if isinstance(meta, dict):
        for key in _PAPERMILL_CLOCK_KEYS:
            meta.pop(key, None)
    nb.metadata.pop("widgets", None)

    markers = 0
    for cell in nb.cells:
        cell_meta = cell.setdefault("metadata", {})
        cell_meta.pop("execution", None)
        pm_meta = cell_meta.get("papermill")
        if isinstance(pm_meta, dict):
            for key in ("start_time", "end_time", "duration"):
                pm_meta.pop(key, None)
        tags = cell_meta.get("tags", [])
        if INJECTED_TAG in tags:
            cell["id"] = INJECTED_TAG
        elif ERROR_MARKER_TAG in tags:
            markers += 1
            cell["id"] = f"papermill-error-{markers}"
        if cell.cell_type != "code":
            continue
        for output in cell.get("outputs", []):
            if "text" in output:
                output["text"] = scrub(output["text"])
            if "traceback" in output:
                output["traceback"] = [scrub(line) for line in output["traceback"]]
            if "evalue" in output:
                output["evalue"] = scrub(output["evalue"])
            data = output.get("data")
            if isinstance(data, dict):
                data.pop(_WIDGET_MIME, None)
                for mime in ("text/plain", "text/html", "text/markdown"):
                    if isinstance(data.get(mime), str):
                        data[mime] = scrub(data[mime])
    return nb


# --------------------------------------------------------------------------- writing


def _write_atomic(path: Path, text: str) -> None:
    """Write text through a temporary file in the same folder and rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _json_text(document: Any) -> str:
    return (
        json.dumps(document, sort_keys=True, indent=2, allow_nan=False, ensure_ascii=False) + "\n"
    )


def _templates_dir() -> Path:
    return Path(str(resources.files("rknb"))) / "templates"


def _rknb_only(output: Mapping[str, Any]) -> bool:
    data = output.get("data")
    return isinstance(data, dict) and bool(data) and set(data) <= {RESULTS_MIME, SENTINEL_MIME}


def _render_html(nb: nbformat.NotebookNode, results: Mapping[str, Any], show_code: bool) -> str:
    from nbconvert import HTMLExporter
    from nbconvert.preprocessors import TagRemovePreprocessor

    exporter = HTMLExporter(
        template_name=TEMPLATE_NAME,
        extra_template_basedirs=[str(_templates_dir())],
        exclude_input=not show_code,
        exclude_input_prompt=not show_code,
        exclude_output_prompt=True,
        embed_images=True,
    )
    remover = TagRemovePreprocessor(remove_cell_tags={INJECTED_TAG})
    exporter.register_preprocessor(remover, enabled=True)

    # rknb's own outputs are shown in the header, not as cells nbconvert cannot render.
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.get("outputs", []) if not _rknb_only(o)]

    # Hidden code: drop cells whose only content is code, so no empty boxes remain.
    if not show_code:
        nb.cells = [c for c in nb.cells if c.cell_type != "code" or c.get("outputs")]
    view = {
        "figures": [(name, _figure_text(value)) for name, value in results["figures"].items()],
        "show_code": show_code,
    }
    body, _ = exporter.from_notebook_node(
        nb,
        resources={
            "rknb": dict(results),
            "rknb_view": view,
            "metadata": {"name": results["notebook"]},
        },
    )
    body = body.replace(_TOC_MARKER, _table_of_contents(body), 1)
    return body if body.endswith("\n") else body + "\n"


_TOC_MARKER = "<!-- rknb:toc -->"
_HEADING = re.compile(r'<h([1-3]) id="([^"]+)">(.*?)(?:<a class="anchor-link"|</h\1>)', re.S)


def _figure_text(value: Any) -> str:
    """Return a headline figure as a reader sees it: 4 significant digits, yes/no, a dash."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if not math.isfinite(value) or abs(value) >= 1e15:
            return f"{value:.4g}"
        return f"{value:,.0f}" if value.is_integer() or abs(value) >= 1000 else f"{value:.4g}"
    return str(value)


def _table_of_contents(body: str) -> str:
    """Return a ``<nav>`` listing the report's section headings (h1 to h3), linked."""
    items = []
    for level, anchor, inner in _HEADING.findall(body):
        text = html.unescape(re.sub(r"<[^>]+>", "", inner)).strip()
        if text:
            items.append(
                f'<li class="rknb-toc-{level}"><a href="#{anchor}">{html.escape(text)}</a></li>'
            )
    if not items:
        return ""
    return (
        '<nav class="rknb-toc" id="rknb-toc" aria-label="Contents">\n'
        "<strong>Contents</strong>\n<ol>\n" + "\n".join(items) + "\n</ol>\n</nav>"
    )


# --------------------------------------------------------------------------- executing


def _descendants(pid: int) -> list[int]:
    """Return the process ids below ``pid`` (children first), read from /proc."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rpartition(")")[2].split()[1])
        parents.setdefault(ppid, []).append(int(entry.name))
    found: list[int] = []
    queue = [pid]
    while queue:
        for child in parents.get(queue.pop(), []):
            found.append(child)
            queue.append(child)
    return found


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop the worker and the kernel it launched (the kernel runs in its own session)."""
    victims = _descendants(proc.pid)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in [proc.pid, *victims]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        try:
            proc.wait(timeout=3)
        except subprocess.TimeoutExpired:
            continue
        if sig == signal.SIGTERM:
            time.sleep(0.2)


def _worker_environment(extra: Mapping[str, str | None] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    for name, value in (extra or {}).items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    env["PYTHONHASHSEED"] = "0"
    env["MATPLOTLIBRC"] = str(_templates_dir() / "matplotlibrc")
    env["SOURCE_DATE_EPOCH"] = "0"
    env["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"
    env["JUPYTER_PLATFORM_DIRS"] = "1"
    env.pop("MPLBACKEND", None)
    return env


def _execute(
    job: dict[str, Any],
    work: Path,
    timeout_s: float | None,
    environment: Mapping[str, str | None] | None = None,
) -> dict[str, Any]:
    """Run papermill in a child process; return its outcome, or a run timeout."""
    job_path = work / "job.json"
    outcome_path = work / "outcome.json"
    job_path.write_text(json.dumps(job), encoding="utf-8")
    log_path = work / "worker.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-c", _WORKER_CODE, str(job_path)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=_worker_environment(environment),
            start_new_session=True,
        )
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            _stop(proc)
            return {"kind": "run_timeout"}

    for line in log_path.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.strip() and not any(noise in line for noise in _NOISE):
            logger.debug("papermill: %s", line)
    if not outcome_path.is_file():
        return {
            "kind": "internal",
            "ename": "WorkerDied",
            "evalue": f"the papermill process exited with status {proc.returncode}",
        }
    outcome: dict[str, Any] = json.loads(outcome_path.read_text(encoding="utf-8"))
    return outcome


# The worker skips jsonschema's slow optional IRI grammar, as the CLI does (see rknb.cli).
_WORKER_CODE = (
    "import sys; sys.modules.setdefault('rfc3987_syntax', None); "
    "import rknb.report as r; r._worker_main()"
)


def _kernelspec_dir(root: Path) -> Path:
    """Write a ``python3`` kernelspec that starts this interpreter; return the Jupyter path."""
    spec = root / "kernels" / "python3"
    spec.mkdir(parents=True, exist_ok=True)
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "Python 3 (ipykernel)",
                "language": "python",
            }
        ),
        encoding="utf-8",
    )
    return root


def _worker_main() -> None:
    """Entry point of the child process: run papermill as the job file says."""
    job = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
    outcome_path = Path(sys.argv[1]).with_name("outcome.json")
    kernel_name = job["kernel"]
    if kernel_name is None:
        os.environ["JUPYTER_PATH"] = str(_kernelspec_dir(Path(job["work"]) / "jupyter"))
        kernel_name = "python3"

    import papermill
    from jupyter_client.kernelspec import NoSuchKernel
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    outcome: dict[str, Any]
    try:
        papermill.execute_notebook(
            job["input"],
            job["output"],
            parameters=job["parameters"],
            kernel_name=kernel_name,
            cwd=job["cwd"],
            record_timing=False,
            progress_bar=False,
            log_output=False,
            execution_timeout=job["cell_timeout_s"],
            start_timeout=job["start_timeout_s"],
        )
        outcome = {"kind": "ok"}
    except papermill.PapermillExecutionError as exc:
        outcome = {"kind": "cell_error", "ename": exc.ename, "evalue": exc.evalue}
    except CellTimeoutError as exc:
        outcome = {"kind": "cell_timeout", "evalue": str(exc).strip().splitlines()[0]}
    except DeadKernelError as exc:
        outcome = {"kind": "dead_kernel", "evalue": str(exc)}
    except NoSuchKernel as exc:
        outcome = {"kind": "no_kernel", "ename": "NoSuchKernel", "evalue": str(exc)}
    except Exception as exc:
        outcome = {"kind": "internal", "ename": type(exc).__name__, "evalue": str(exc)}
    outcome_path.write_text(json.dumps(outcome), encoding="utf-8")


def run_notebook(
    name_or_path: str | os.PathLike[str],
    parameters: Mapping[str, object] | None = None,
    *,
    output_dir: str | os.PathLike[str] | None = None,
    timeout_s: float | None = None,
    cell_timeout_s: float | None = None,
    start_timeout_s: float = 180.0,
    show_code: bool = False,
    kernel: str | None = None,
    fail_on: str | None = None,
    environment: Mapping[str, str | None] | None = None,
) -> RunResult:
    """Run a notebook with papermill and write its report; return what it produced.

    Bad usage (unknown notebook or parameter, wrong type) raises before any
    kernel starts. A failed run does not raise: it returns a result with
    ``status == "failed"`` and the exit code of the table above, after writing
    the partial notebook, its HTML and ``results.json``.

    Parameters
    ----------
    name_or_path
        A shipped notebook's name or a path to an ``.ipynb`` file.
    parameters
        Parameter values by name: strings (parsed strictly) or typed values.
    output_dir
        The report root; ``reports`` in the current folder when None.
    timeout_s
        Limit on the whole run in seconds, kernel start included; None for none.
    cell_timeout_s
        Limit on each cell in seconds; None for none.
    start_timeout_s
        Limit on the kernel's start, in seconds: a cold start on a busy two-core node
        (first imports, no bytecode cache yet) was seen to take over 60 s.
    show_code
        Keep code cells' input in the HTML report.
    kernel
        A kernelspec name; None starts a kernel from the running interpreter.
    fail_on
        The least severity (one of :data:`SEVERITIES`) of a finding that fails the run.
    environment
        Environment variables set (or, with None, removed) for the kernel's
        process only, such as ``KUBECONFIG`` for one cluster of a matrix.

    Returns
    -------
    RunResult
        The run's files, status, exit code, verdict, figures and error.

    Raises
    ------
    ParameterError
        When a parameter or option is unknown or has the wrong type.
    RunError
        When the notebook does not exist or the report folder cannot be written.
    """
    if fail_on is not None and fail_on not in SEVERITIES:
        raise ParameterError("fail_on", f"{fail_on!r} is not one of {', '.join(SEVERITIES)}")
    for label, limit in (("timeout", timeout_s), ("cell timeout", cell_timeout_s)):
        if limit is not None and not limit > 0:
            raise ParameterError(label, f"must be a positive number of seconds, got {limit!r}")

    notebook_path = resolve_notebook(name_or_path)
    name = notebook_path.stem
    declared = inspect_parameters(notebook_path)
    given = coerce_parameters(declared, parameters or {})
    effective: dict[str, Any] = {p.name: p.default for p in declared.values()} | given
    # The kernel runs where the user ran the command, so relative paths given as
    # parameters (``-p cluster ../manifests``) mean what they meant in the shell.
    cwd = Path.cwd()
    report_time = resolve_report_time(declared, effective, notebook_dir=cwd)
    if "report_time" in declared:
        effective["report_time"] = report_time
        if report_time:
            given["report_time"] = report_time
    run_id = run_id_of(name, effective, report_time)

    root = Path(output_dir if output_dir is not None else "reports")
    run_dir = (root / name / run_id).resolve()
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=".work-", dir=run_dir.parent))
    except OSError as exc:
        raise RunError(
            f"cannot create the report folder {run_dir}: {exc.strerror}; choose another --output",
            exit_code=EXIT_INFRASTRUCTURE,
        ) from exc

    logger.info("running %s (run %s) into %s", name, run_id, run_dir)
    try:
        output_nb = work / f"{name}.ipynb"
        job = {
            "input": str(notebook_path),
            "output": str(output_nb),
            "parameters": given,
            "cwd": str(cwd),
            "kernel": kernel,
            "work": str(work),
            "cell_timeout_s": cell_timeout_s,
            "start_timeout_s": start_timeout_s,
        }
        # A notebook that writes files of its own (the drill's starting state) puts
        # them beside its report.
        kernel_environment = {"RKNB_REPORT_DIR": str(run_dir), **(environment or {})}
        outcome = _execute(job, work, timeout_s, kernel_environment)
        if output_nb.is_file():
            executed = nbformat.read(output_nb, as_version=4)
        else:
            # papermill failed before writing anything: report the notebook as written.
            executed = nbformat.read(notebook_path, as_version=4)

        paths = {
            str(work): "<run>",
            str(run_dir): "<run>",
            str(notebook_path.parent): ".",
            str(cwd): ".",
            str(Path.home()): "~",
        }
        normalized = normalize_notebook(executed, paths=paths)
        # Judge the raw notebook: papermill's per-cell start times tell which cell was running.
        exit_code, error = _judge(executed, outcome, timeout_s)
        if error is not None:
            error["evalue"] = _scrubber(paths)(error["evalue"])
        figures, verdict, findings, _ = _collect_results(normalized)
        if exit_code == EXIT_OK and (
            (isinstance(verdict, dict) and verdict.get("status") == "fail")
            or _findings_fail(findings if isinstance(findings, list) else [], fail_on)
        ):
            exit_code = EXIT_FINDINGS

        status = "ok" if exit_code in (EXIT_OK, EXIT_FINDINGS) else "failed"
        document = _finite(
            {
                "schema": RESULTS_SCHEMA_ID,
                "notebook": name,
                "run_id": run_id,
                "parameters": effective,
                "report_time": report_time,
                "status": status,
                "verdict": verdict,
                "figures": figures,
                "findings": findings,
                "error": error,
            }
        )

        _write_atomic(run_dir / f"{name}.ipynb", _notebook_text(normalized))
        _write_atomic(run_dir / f"{name}.html", _render_html(normalized, document, show_code))
        validate_results(document)
        _write_atomic(run_dir / "results.json", _json_text(document))
    except OSError as exc:
        raise RunError(
            f"cannot write the report into {run_dir}: {exc}; check the folder is writable",
            exit_code=EXIT_INFRASTRUCTURE,
        ) from exc
    finally:
        shutil.rmtree(work, ignore_errors=True)

    result = RunResult(
        notebook=name,
        run_id=run_id,
        run_dir=run_dir,
        parameters=document["parameters"],
        report_time=report_time,
        status=status,
        exit_code=exit_code,
        verdict=document["verdict"],
        figures=document["figures"],
        findings=document["findings"],
        error=error,
        message=_summary(name, exit_code, document),
    )
    result.files = {
        "notebook": result.notebook_path,
        "html": result.html_path,
        "results": result.results_path,
    }
    log = logger.info if exit_code in (EXIT_OK, EXIT_FINDINGS) else logger.warning
    log("%s", result.message)
    return result


def _notebook_text(nb: nbformat.NotebookNode) -> str:
    text = nbformat.writes(nb, version=4)
    return text if text.endswith("\n") else text + "\n"


def _summary(name: str, exit_code: int, document: Mapping[str, Any]) -> str:
    error = document.get("error")
    if error:
        where = f" in cell {error['cell_index']}" if error.get("cell_index") is not None else ""
        return f"{name}: failed{where}: {error['ename']}: {error['evalue']}".rstrip(": ")
    verdict = document.get("verdict")
    if isinstance(verdict, dict):
        return f"{name}: verdict {verdict.get('status')}: {verdict.get('summary', '')}".rstrip()
    if exit_code == EXIT_FINDINGS:
        return f"{name}: findings at or above the threshold"
    return f"{name}: completed, no verdict"


# --------------------------------------------------------------------------- index

_INDEX_STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; }
th, td { border-bottom: 1px solid #ddd; padding: 4px 10px; text-align: left; vertical-align: top; }
th { background: #f4f4f4; }
.ok { color: #1a7f37; } .failed, .fail { color: #b42318; font-weight: bold; }
code { font-size: 12px; }
"""


def _headline(figures: Mapping[str, Any], limit: int = 6) -> str:
    items = list(figures.items())[:limit]
    text = ", ".join(f"{k}={v}" for k, v in items)
    return text + (", …" if len(figures) > limit else "")


HISTORY_FILE = "history.jsonl"
_HISTORY_ROWS = 500


def read_history(output_dir: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Return the matrix run history of a report root, oldest first.

    ``rknb run-matrix`` appends one JSON line per run to ``history.jsonl``;
    lines that are not JSON objects (a write cut short) are skipped.
    """
    path = Path(output_dir) / HISTORY_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise RunError(
            f"cannot read {path}: {exc.strerror}; check the folder is readable",
            exit_code=EXIT_INFRASTRUCTURE,
        ) from exc
    entries: list[dict[str, Any]] = []
    for line in text.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict):
            entries.append(entry)
    return entries


def _verdict_cell(verdict: Any) -> str:
    if not isinstance(verdict, dict):
        return "<td></td>"
    status = str(verdict.get("status") or "")
    text = " ".join(part for part in (status, verdict.get("summary")) if part)
    return f'<td class="{html.escape(status)}">{html.escape(text)}</td>'


def _history_rows(entries: list[dict[str, Any]]) -> list[str]:
    # Newest matrix run first; inside one, in cluster, namespace, notebook order.
    ordered = sorted(
        entries,
        key=lambda e: (
            str(e.get("cluster", "")),
            str(e.get("namespace", "")),
            str(e.get("notebook", "")),
        ),
    )
    ordered.sort(key=lambda e: str(e.get("matrix_started_at", "")), reverse=True)
    rows = []
    for entry in ordered[:_HISTORY_ROWS]:
        status = str(entry.get("status", ""))
        link = entry.get("report")
        run_id = html.escape(str(entry.get("run_id") or "—"))
        run = (
            f'<a href="{html.escape(str(link), quote=True)}"><code>{run_id}</code></a>'
            if link
            else f"<code>{run_id}</code>"
        )
        error = f" {entry['error']}" if entry.get("error") else ""
        rows.append(
            f"<tr><td>{html.escape(str(entry.get('matrix_started_at', '')))}</td>"
            f"<td>{html.escape(str(entry.get('cluster', '')))}</td>"
            f"<td>{html.escape(str(entry.get('namespace') or '*'))}</td>"
            f"<td>{html.escape(str(entry.get('notebook', '')))}</td>"
            f"<td>{run}</td>"
            f'<td class="{html.escape(status)}">{html.escape(status + error)}</td>'
            f"{_verdict_cell(entry.get('verdict'))}"
            f"<td>{html.escape(_headline(entry.get('figures') or {}))}</td></tr>"
        )
    return rows


def update_index(output_dir: str | os.PathLike[str]) -> Path:
    """Write ``index.html`` in the report root listing every run, newest report time first.

    Returns the index's path. Run folders whose ``results.json`` is missing or
    unreadable are listed as such rather than skipped silently. When the root
    holds a matrix history (``history.jsonl``), the index also lists it, newest
    matrix run first: the index is the one report file that changes between runs.
    """
    root = Path(output_dir)
    rows: list[tuple[str, str, str, dict[str, Any] | None]] = []
    for results in sorted(root.glob("*/*/results.json")):
        run_dir = results.parent
        try:
            data: dict[str, Any] | None = json.loads(results.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = None
        rows.append((run_dir.parent.name, run_dir.name, (data or {}).get("report_time", ""), data))

    # Newest report time first; runs without one last; then by notebook and run id.
    rows.sort(key=lambda r: (r[0], r[1]))
    rows.sort(key=lambda r: r[2] or "", reverse=True)

    lines = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        "<title>rknb reports</title>",
        f"<style>{_INDEX_STYLE}</style>",
        "</head>",
        "<body>",
        "<h1>rknb reports</h1>",
        f"<p>{len(rows)} run(s).</p>",
        "<table>",
        "<tr><th>notebook</th><th>run</th><th>cluster</th><th>namespace</th>"
        "<th>report time</th><th>status</th><th>verdict</th><th>headline figures</th></tr>",
    ]
    for notebook, run_id, report_time, data in rows:
        link = html.escape(f"{notebook}/{run_id}/{notebook}.html", quote=True)
        params = (data or {}).get("parameters") or {}
        cluster = str(params.get("cluster", "")) if isinstance(params, dict) else ""
        namespace = str(params.get("namespace", "")) if isinstance(params, dict) else ""
        if data is None:
            status, verdict_cell, figures = "unreadable", '<td class="failed"></td>', ""
        else:
            status = str(data.get("status", ""))
            verdict_cell = _verdict_cell(data.get("verdict"))
            figures = _headline(data.get("figures") or {})
        lines.append(
            f"<tr><td>{html.escape(notebook)}</td>"
            f'<td><a href="{link}"><code>{html.escape(run_id)}</code></a></td>'
            f"<td>{html.escape(cluster)}</td><td>{html.escape(namespace or '*')}</td>"
            f"<td>{html.escape(report_time or '—')}</td>"
            f'<td class="{html.escape(status)}">{html.escape(status)}</td>'
            f"{verdict_cell}"
            f"<td>{html.escape(figures)}</td></tr>"
        )
    lines.append("</table>")

    history = read_history(root)
    if history:
        lines += [
            "<h2>Matrix history</h2>",
            f"<p>{len(history)} run(s) recorded by rknb run-matrix, newest first"
            f"{f' (the latest {_HISTORY_ROWS} shown)' if len(history) > _HISTORY_ROWS else ''}."
            "</p>",
            "<table>",
            "<tr><th>matrix run</th><th>cluster</th><th>namespace</th><th>notebook</th>"
            "<th>run</th><th>status</th><th>verdict</th><th>headline figures</th></tr>",
            *_history_rows(history),
            "</table>",
        ]
    lines += ["</body>", "</html>"]

    index = root / "index.html"
    try:
        _write_atomic(index, "\n".join(lines) + "\n")
    except OSError as exc:
        raise RunError(
            f"cannot write {index}: {exc.strerror}; check the folder is writable",
            exit_code=EXIT_INFRASTRUCTURE,
        ) from exc
    return index
