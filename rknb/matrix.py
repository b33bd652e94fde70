"""Fleet runs: the notebooks over clusters x namespaces x notebooks, in parallel processes.

A matrix file names each cluster once (its kubeconfig context, its Prometheus
and where that Prometheus's credentials live), the namespaces and the
notebooks, and the parameters every run shares. :func:`run_matrix` expands it
into one run per combination, runs them in parallel processes (each run's
papermill and kernel in their own children, as ``rknb run`` does; threads
here only wait on them), isolates failures (a failing
cell fails that run, not the matrix), appends every run to the report root's
``history.jsonl`` and rewrites ``index.html`` from it.

Credentials are never parameter values (papermill copies every parameter into
the report): a cluster names a kubeconfig file, a token file or an environment
variable, and the run's kernel receives those references as environment variables
(:data:`ENV_KUBECONFIG` and the ``RKNB_PROMETHEUS_*`` names below).

Headline figures can leave as Prometheus metrics, as a node-exporter textfile
(:func:`write_textfile`) or pushed to a Pushgateway (:func:`push_metrics`), so
that an alert can fire on a report's verdict.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import quote, urlsplit

from rknb import report
from rknb.errors import ParameterError, RknbError, RunError
from rknb.yamlfile import load_yaml_parameter_file

__all__ = [
    "COMMON_PARAMETERS",
    "ENV_KUBECONFIG",
    "ENV_PROMETHEUS_BEARER_TOKEN_ENV",
    "ENV_PROMETHEUS_BEARER_TOKEN_FILE",
    "ENV_PROMETHEUS_HEADERS",
    "HISTORY_FILE",
    "Cluster",
    "Matrix",
    "MatrixRun",
    "RunSpec",
    "expand",
    "load_matrix",
    "metrics_text",
    "parse_matrix",
    "push_metrics",
    "read_history",
    "run_matrix",
    "write_textfile",
]

logger = logging.getLogger(__name__)

#: The parameters the matrix sets itself from a cluster and a namespace.
COMMON_PARAMETERS = ("prometheus", "cluster", "namespace")

HISTORY_FILE = report.HISTORY_FILE

ENV_KUBECONFIG = "KUBECONFIG"
# The variables rknb.config reads for every Prometheus endpoint (see its docstring).
#: Extra HTTP headers for the cluster's Prometheus (the tenant header): ``Name=value;...``.
ENV_PROMETHEUS_HEADERS = "RKNB_PROMETHEUS_HEADERS"
#: A file holding the bearer token for the cluster's Prometheus.
ENV_PROMETHEUS_BEARER_TOKEN_FILE = "RKNB_PROMETHEUS_TOKEN_FILE"
#: The name of an environment variable holding that bearer token.
ENV_PROMETHEUS_BEARER_TOKEN_ENV = "RKNB_PROMETHEUS_TOKEN_ENV"

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
_TOP_KEYS = {"clusters", "namespaces", "notebooks", "parameters", "notebook_parameters", "jobs"}
_CLUSTER_KEYS = {
    "name",
    "context",
    "kubeconfig",
    "prometheus",
    "tenant",
    "tenant_header",
    "headers",
    "bearer_token_file",
    "bearer_token_env",
}
_SCALARS = (str, int, float, bool)


@dataclass(frozen=True)
class Cluster:
    """One cluster of a matrix: its context, Prometheus and credential references."""

    name: str
    context: str
    kubeconfig: str | None = None
    prometheus: str = "demo"
    headers: tuple[tuple[str, str], ...] = ()
    bearer_token_file: str | None = None
    bearer_token_env: str | None = None

    def environment(self) -> dict[str, str]:
        """Return the environment variables a run on this cluster gets (no secret values)."""
        env: dict[str, str] = {}
        if self.kubeconfig:
            env[ENV_KUBECONFIG] = self.kubeconfig
        if self.headers:
            env[ENV_PROMETHEUS_HEADERS] = ";".join(
                f"{name}={value}" for name, value in sorted(self.headers)
            )
        if self.bearer_token_file:
            env[ENV_PROMETHEUS_BEARER_TOKEN_FILE] = self.bearer_token_file
        if self.bearer_token_env:
            env[ENV_PROMETHEUS_BEARER_TOKEN_ENV] = self.bearer_token_env
        return env


@dataclass(frozen=True)
class Matrix:
    """A parsed matrix file: clusters, namespaces, notebooks and shared parameters."""

    clusters: tuple[Cluster, ...]
    namespaces: tuple[str, ...]
    notebooks: tuple[str, ...]
    parameters: dict[str, Any] = field(default_factory=dict)
    notebook_parameters: dict[str, dict[str, Any]] = field(default_factory=dict)
    jobs: int | None = None


@dataclass(frozen=True)
class RunSpec:
    """One cell of the matrix: which notebook, on which cluster and namespace, with what."""

    cluster: Cluster
    namespace: str
    notebook: str
    parameters: dict[str, Any]

    @property
    def notebook_name(self) -> str:
        """The notebook's name: a shipped notebook's, or the stem of an ``.ipynb`` path."""
        return Path(self.notebook).stem if self.notebook.endswith(".ipynb") else self.notebook

    @property
    def label(self) -> str:
        """``cluster/namespace/notebook``, for progress lines and the index."""
        return f"{self.cluster.name}/{self.namespace or '*'}/{self.notebook_name}"


@dataclass
class MatrixRun:
    """What one matrix run produced: a history entry per run, the index and the exit code."""

    started_at: str
    entries: list[dict[str, Any]]
    index: Path
    exit_code: int


# --------------------------------------------------------------------------- the file


def _where(source: str, key: str) -> str:
    return f"{key} in {source}"


def _name(value: Any, what: str) -> str:
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise ParameterError(
            what,
            f"{value!r} is not a name (letters, digits, '.', '_' or '-', at most 63); rename it",
        )
    return value


def _scalar_mapping(value: Any, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ParameterError(what, f"must be a mapping of name: value, got {type(value).__name__}")
    for key, item in value.items():
        if not isinstance(item, _SCALARS):
            raise ParameterError(
                f"{what}.{key}", f"must be a string, number or boolean, got {item!r}"
            )
    return {str(k): v for k, v in value.items()}


def _parse_cluster(raw: Any, position: int, source: str) -> Cluster:
    what = f"clusters[{position}] in {source}"
    if not isinstance(raw, dict):
        raise ParameterError(what, f"must be a mapping with at least 'name', got {raw!r}")
    unknown = sorted(set(raw) - _CLUSTER_KEYS)
    if unknown:
        raise ParameterError(
            what, f"has unknown keys {unknown}; known keys: {', '.join(sorted(_CLUSTER_KEYS))}"
        )
    name = _name(raw.get("name"), f"{what}.name")
    context = str(raw.get("context") or name)
    prometheus = str(raw.get("prometheus") or "demo")
    if "@" in urlsplit(prometheus).netloc:
        raise ParameterError(
            f"{what}.prometheus",
            "the URL carries user:password@, which would be copied into every report; "
            "use bearer_token_file or bearer_token_env instead",
        )

    headers = {str(k): str(v) for k, v in _scalar_mapping(raw.get("headers"), what).items()}
    if raw.get("tenant") is not None:
        headers[str(raw.get("tenant_header") or "X-Scope-OrgID")] = str(raw["tenant"])
    if any(h.lower() in ("authorization", "proxy-authorization") for h in headers):
        raise ParameterError(
            f"{what}.headers",
            "an Authorization header would put a credential in the matrix file; "
            "use bearer_token_file or bearer_token_env instead",
        )
    if raw.get("bearer_token_file") and raw.get("bearer_token_env"):
        raise ParameterError(what, "give bearer_token_file or bearer_token_env, not both")

    kubeconfig = raw.get("kubeconfig")
    if kubeconfig is not None:
        path = Path(os.path.expanduser(str(kubeconfig)))
        if not path.is_absolute():
            path = (Path(source).parent / path) if source != "<matrix>" else path
        kubeconfig = str(path)
    return Cluster(
        name=name,
        context=context,
        kubeconfig=kubeconfig,
        prometheus=prometheus,
        headers=tuple(sorted(headers.items())),
        bearer_token_file=raw.get("bearer_token_file"),
        bearer_token_env=raw.get("bearer_token_env"),
    )


def _string_list(value: Any, what: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise ParameterError(what, f"must be a non-empty list, got {value!r}")
    items = tuple("" if v is None else str(v) for v in value)
    if len(set(items)) != len(items):
        raise ParameterError(what, f"lists {sorted(items)} with a repeat; name each once")
    return items


def parse_matrix(data: Any, *, source: str = "<matrix>") -> Matrix:
    """Return the matrix a parsed YAML/JSON document describes, checked.

    Parameters
    ----------
    data
        The document: a mapping with ``clusters``, ``namespaces``, ``notebooks``
        and optional ``parameters``, ``notebook_parameters`` and ``jobs``.
    source
        The file it came from, for error messages and relative kubeconfig paths.
    """
    if not isinstance(data, dict):
        raise ParameterError("matrix", f"{source} must hold a mapping, got {type(data).__name__}")
    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        raise ParameterError(
            "matrix", f"{source} has unknown keys {unknown}; known: {', '.join(sorted(_TOP_KEYS))}"
        )
    raw_clusters = data.get("clusters")
    if not isinstance(raw_clusters, list) or not raw_clusters:
        raise ParameterError(_where(source, "clusters"), "must be a non-empty list of clusters")
    clusters = tuple(_parse_cluster(c, i, source) for i, c in enumerate(raw_clusters))
    names = [c.name for c in clusters]
    if len(set(names)) != len(names):
        raise ParameterError(_where(source, "clusters"), f"repeat a name in {names}")

    namespaces = _string_list(data.get("namespaces", [""]), _where(source, "namespaces"))
    notebooks = _string_list(data.get("notebooks"), _where(source, "notebooks"))
    parameters = _scalar_mapping(data.get("parameters"), _where(source, "parameters"))
    taken = sorted(set(parameters) & set(COMMON_PARAMETERS))
    if taken:
        raise ParameterError(
            _where(source, "parameters"),
            f"sets {taken}, which the matrix sets from each cluster and namespace; remove them",
        )
    per_notebook_raw = data.get("notebook_parameters") or {}
    if not isinstance(per_notebook_raw, dict):
        raise ParameterError(_where(source, "notebook_parameters"), "must map notebook: mapping")
    per_notebook = {
        str(nb): _scalar_mapping(values, _where(source, f"notebook_parameters.{nb}"))
        for nb, values in per_notebook_raw.items()
    }
    stray = sorted(set(per_notebook) - set(notebooks))
    if stray:
        raise ParameterError(
            _where(source, "notebook_parameters"), f"names {stray}, which are not in notebooks"
        )
    jobs = data.get("jobs")
    if jobs is not None and (not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1):
        raise ParameterError(_where(source, "jobs"), f"must be a whole number >= 1, got {jobs!r}")
    return Matrix(clusters, namespaces, notebooks, parameters, per_notebook, jobs)


def load_matrix(path: str | os.PathLike[str]) -> Matrix:
    """Return the matrix of a YAML (or JSON) file."""
    text_path = os.fspath(path)
    return parse_matrix(load_yaml_parameter_file(text_path, parameter="matrix"), source=text_path)


def expand(
    matrix: Matrix, *, declared: Callable[[str], Mapping[str, report.Param]] | None = None
) -> list[RunSpec]:
    """Return one run per cluster x namespace x notebook, in that nesting order.

    Shared ``parameters`` go to each notebook that declares them, and each must
    be declared by at least one notebook (a typo fails here, not in a kernel);
    ``notebook_parameters`` go to their notebook and must all be declared by it.

    Parameters
    ----------
    matrix
        The parsed matrix.
    declared
        Returns a notebook's declared parameters by notebook name; reads the
        shipped notebooks when None.
    """
    if declared is None:

        def declared(name: str) -> Mapping[str, report.Param]:
            return report.inspect_parameters(report.resolve_notebook(name))

    params_of = {nb: dict(declared(nb)) for nb in matrix.notebooks}
    for name in matrix.parameters:
        if not any(name in params for params in params_of.values()):
            raise ParameterError(
                name, f"is a shared matrix parameter that none of {list(matrix.notebooks)} declares"
            )
    for nb, values in matrix.notebook_parameters.items():
        report.coerce_parameters(params_of[nb], values)  # raises on unknown names and types

    specs: list[RunSpec] = []
    for cluster in matrix.clusters:
        for namespace in matrix.namespaces:
            for nb in matrix.notebooks:
                params = {k: v for k, v in matrix.parameters.items() if k in params_of[nb]}
                params |= matrix.notebook_parameters.get(nb, {})
                common = {
                    "prometheus": cluster.prometheus,
                    "cluster": cluster.context,
                    "namespace": namespace,
                }
                params |= {k: v for k, v in common.items() if k in params_of[nb]}
                specs.append(RunSpec(cluster, namespace, nb, params))
    return specs


# --------------------------------------------------------------------------- running


def _run_one(spec: RunSpec, output: str, timeout_s: float | None) -> dict[str, Any]:
    """Run one matrix cell (its kernel in a child process); return its history entry."""
    entry: dict[str, Any] = {
        "cluster": spec.cluster.name,
        "context": spec.cluster.context,
        "namespace": spec.namespace,
        "notebook": spec.notebook_name,
    }
    # The cluster's variables replace the caller's: a run never sees another cluster's.
    environment: dict[str, str | None] = dict.fromkeys(_CLUSTER_ENV)
    environment |= spec.cluster.environment()
    started = time.monotonic()
    try:
        result = report.run_notebook(
            spec.notebook,
            spec.parameters,
            output_dir=output,
            timeout_s=timeout_s,
            environment=environment,
        )
    except RknbError as exc:
        code = exc.exit_code if isinstance(exc, RunError) else report.EXIT_USAGE
        entry |= {"run_id": None, "status": "failed", "exit_code": code, "verdict": None}
        entry |= {"figures": {}, "error": str(exc), "report": None}
    except Exception as exc:  # one broken run must not end the matrix
        entry |= {"run_id": None, "status": "failed", "exit_code": report.EXIT_INFRASTRUCTURE}
        entry |= {"verdict": None, "figures": {}, "report": None}
        entry["error"] = f"{type(exc).__name__}: {exc}"
        logger.warning("matrix run %s failed outside its kernel", spec.label, exc_info=True)
    else:
        error = result.error
        entry |= {
            "run_id": result.run_id,
            "report_time": result.report_time,
            "status": result.status,
            "exit_code": result.exit_code,
            "verdict": result.verdict,
            "figures": result.figures,
            "error": f"{error['ename']}: {error['evalue']}" if error else None,
            "report": f"{result.notebook}/{result.run_id}/{result.notebook}.html",
        }
    entry["duration_s"] = round(time.monotonic() - started, 1)
    return entry


_CLUSTER_ENV = (
    ENV_KUBECONFIG,
    ENV_PROMETHEUS_HEADERS,
    ENV_PROMETHEUS_BEARER_TOKEN_FILE,
    ENV_PROMETHEUS_BEARER_TOKEN_ENV,
)


def _bar(done: int, total: int, width: int = 24) -> str:
    filled = width * done // total if total else width
    return "[" + "#" * filled + "-" * (width - filled) + f"] {done}/{total}"


def _entry_line(entry: Mapping[str, Any]) -> str:
    verdict = entry.get("verdict")
    what = (
        f"verdict {verdict.get('status')}"
        if isinstance(verdict, dict)
        else f"{entry['status']} (exit {entry['exit_code']})"
    )
    if entry.get("error"):
        what += f": {entry['error']}"
    label = f"{entry['cluster']}/{entry['namespace'] or '*'}/{entry['notebook']}"
    return f"{label}: {what}"


def run_matrix(
    matrix: Matrix,
    *,
    output_dir: str | os.PathLike[str] = "reports",
    jobs: int | None = None,
    timeout_s: float | None = None,
    progress: TextIO | None = None,
    now: datetime | None = None,
    declared: Callable[[str], Mapping[str, report.Param]] | None = None,
) -> MatrixRun:
    """Run every cell of the matrix in parallel processes; return the history entries and index.

    A run that fails (a cell error, a dead kernel, a bad context) is recorded
    with its status and exit code; the others go on. The exit code is the
    worst of the runs' codes.

    Parameters
    ----------
    matrix
        The parsed matrix.
    output_dir
        The report root: runs land in ``<root>/<notebook>/<run-id>/``, the
        history in ``<root>/history.jsonl``, the index in ``<root>/index.html``.
    jobs
        Runs at once; the matrix file's ``jobs``, else the number of CPUs.
    timeout_s
        Limit on each run, in seconds.
    progress
        Where the progress bar goes (a text stream); none when None.
    now
        The wall-clock time stamped on this matrix run's entries (for tests).
    declared
        Returns a notebook's declared parameters by name (see :func:`expand`).
    """
    specs = expand(matrix, declared=declared)
    root = Path(output_dir)
    started_at = (now or datetime.now(UTC)).replace(microsecond=0)
    stamp = started_at.isoformat().replace("+00:00", "Z")
    workers = max(1, min(jobs or matrix.jobs or os.cpu_count() or 1, len(specs)))
    logger.info("matrix: %d runs, %d at a time, into %s", len(specs), workers, root)

    entries: list[dict[str, Any] | None] = [None] * len(specs)
    done = 0
    if progress is not None:
        print(_bar(0, len(specs)), file=progress, flush=True)
    # Threads only wait: each run's kernel and papermill work in their own child processes.
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="rknb-matrix") as pool:
        futures: dict[Future[dict[str, Any]], int] = {
            pool.submit(_run_one, spec, str(root), timeout_s): i for i, spec in enumerate(specs)
        }
        for future in as_completed(futures):
            position = futures[future]
            entry = future.result()
            entry["matrix_started_at"] = stamp
            entries[position] = entry
            done += 1
            if progress is not None:
                line = f"{_bar(done, len(specs))} {_entry_line(entry)}"
                print(line, file=progress, flush=True)

    finished = [e for e in entries if e is not None]
    _append_history(root, finished)
    index = report.update_index(root)
    worst = max((int(e["exit_code"]) for e in finished), default=report.EXIT_OK)
    return MatrixRun(stamp, finished, index, worst)


def _append_history(root: Path, entries: Iterable[Mapping[str, Any]]) -> None:
    root.mkdir(parents=True, exist_ok=True)
    lines = "".join(json.dumps(dict(e), sort_keys=True, allow_nan=False) + "\n" for e in entries)
    try:
        with open(root / HISTORY_FILE, "a", encoding="utf-8") as handle:
            handle.write(lines)
    except OSError as exc:
        raise RunError(
            f"cannot append to {root / HISTORY_FILE}: {exc.strerror}; check the folder is writable",
            exit_code=report.EXIT_INFRASTRUCTURE,
        ) from exc


def read_history(output_dir: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Return the matrix history of a report root, oldest first (unreadable lines skipped)."""
    return report.read_history(output_dir)


# --------------------------------------------------------------------------- signals out


def _label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(labels: Mapping[str, str]) -> str:
    return "{" + ",".join(f'{k}="{_label_value(v)}"' for k, v in labels.items()) + "}"


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    return None


def _format_number(value: float) -> str:
    return repr(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)


def metrics_text(entries: Sequence[Mapping[str, Any]]) -> str:
    """Return the runs as Prometheus text exposition (for node-exporter or a Pushgateway).

    Per run (labels ``cluster``, ``namespace``, ``notebook``):
    ``rknb_run_success`` (1 when the run completed), ``rknb_run_exit_code``,
    ``rknb_verdict_pass`` (1 pass, 0 fail; absent without a verdict) and
    ``rknb_figure`` with a ``figure`` label for each numeric headline figure
    (booleans as 0/1, text figures left out).
    """
    families: dict[str, tuple[str, list[str]]] = {
        "rknb_run_success": ("1 when the report run completed, 0 when it failed.", []),
        "rknb_run_exit_code": ("Exit code of the report run (see rknb --help).", []),
        "rknb_verdict_pass": ("1 when the report's verdict passed, 0 when it failed.", []),
        "rknb_figure": ("A headline figure of the report, unit in the figure's name.", []),
    }
    for entry in entries:
        base = {
            "cluster": str(entry.get("cluster", "")),
            "namespace": str(entry.get("namespace", "")),
            "notebook": str(entry.get("notebook", "")),
        }
        families["rknb_run_success"][1].append(
            f"rknb_run_success{_labels(base)} {1 if entry.get('status') == 'ok' else 0}"
        )
        families["rknb_run_exit_code"][1].append(
            f"rknb_run_exit_code{_labels(base)} {int(entry.get('exit_code', 0))}"
        )
        verdict = entry.get("verdict")
        if isinstance(verdict, dict) and verdict.get("status") in ("pass", "fail"):
            passed = 1 if verdict["status"] == "pass" else 0
            families["rknb_verdict_pass"][1].append(f"rknb_verdict_pass{_labels(base)} {passed}")
        for figure, value in sorted((entry.get("figures") or {}).items()):
            number = _number(value)
            if number is not None:
                labels = _labels(base | {"figure": str(figure)})
                families["rknb_figure"][1].append(f"rknb_figure{labels} {_format_number(number)}")

    lines: list[str] = []
    for name, (help_text, samples) in families.items():
        if samples:
            lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge", *samples]
    return "\n".join(lines) + "\n" if lines else ""


def write_textfile(path: str | os.PathLike[str], entries: Sequence[Mapping[str, Any]]) -> Path:
    """Write the runs' metrics for node-exporter's textfile collector, atomically; return it."""
    target = Path(path)
    if target.suffix != ".prom":
        raise ParameterError(
            "textfile", f"{os.fspath(path)!r} must end in .prom, or node-exporter ignores it"
        )
    try:
        report._write_atomic(target, metrics_text(entries))
    except OSError as exc:
        raise RunError(
            f"cannot write {target}: {exc.strerror}; check the folder is writable",
            exit_code=report.EXIT_INFRASTRUCTURE,
        ) from exc
    return target


def push_metrics(
    url: str, entries: Sequence[Mapping[str, Any]], *, job: str = "rknb", timeout_s: float = 10.0
) -> None:
    """Push the runs' metrics to a Pushgateway, replacing that job's previous group.

    Parameters
    ----------
    url
        The Pushgateway's base URL (``http://pushgateway:9091``).
    entries
        The runs, as :func:`run_matrix` returns them.
    job
        The ``job`` grouping label.
    timeout_s
        Seconds to wait for the Pushgateway.
    """
    import requests

    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ParameterError("pushgateway", f"expected an http(s):// URL, got {url!r}")
    if parts.username is not None or parts.password is not None:
        raise ParameterError("pushgateway", "the URL carries user:password@; remove it")
    target = f"{url.rstrip('/')}/metrics/job/{quote(job, safe='')}"
    try:
        response = requests.put(
            target,
            data=metrics_text(entries).encode(),
            headers={"Content-Type": "text/plain; version=0.0.4"},
            timeout=timeout_s,
        )
    except requests.RequestException as exc:
        raise RunError(
            f"cannot push metrics to {target} ({type(exc).__name__}); check the Pushgateway URL",
            exit_code=report.EXIT_INFRASTRUCTURE,
        ) from exc
    if response.status_code >= 300:
        raise RunError(
            f"the Pushgateway at {target} answered {response.status_code}: "
            f"{response.text.strip()[:200]}; check the URL and job name",
            exit_code=report.EXIT_INFRASTRUCTURE,
        )
