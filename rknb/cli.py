"""The ``rknb`` command: list, run and demo the notebooks, run conformance vectors.

This is the only place that configures logging and turns errors into exit
codes; the codes are :data:`rknb.report.EXIT_CODES`.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Sequence
from concurrent.futures import as_completed
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

# jsonschema (imported by nbformat and papermill) builds an IRI grammar with lark on import
# when rfc3987-syntax is installed: about 1 s of every command's start for a format check
# rknb never uses. The command owns its process, so it opts out here.
sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]

from rknb.errors import ParameterError, RknbError, RunError  # noqa: E402


class _LazyReport:
    """:mod:`rknb.report`, imported on first use: it loads nbformat, which `rknb audit` skips."""

    def __getattr__(self, name: str) -> Any:
        from rknb import report as module

        return getattr(module, name)


class _LazySeverities(Sequence[str]):
    """``rknb.report.SEVERITIES``, read when ``run --fail-on`` is parsed or its help printed."""

    def __getitem__(self, index: Any) -> Any:
        return report.SEVERITIES[index]

    def __len__(self) -> int:
        return len(report.SEVERITIES)


if TYPE_CHECKING:
    from rknb import report
else:
    report = _LazyReport()

__all__ = ["build_parser", "main"]

logger = logging.getLogger(__name__)

PROG = "rknb"

#: Stands for ``rknb.report.exit_code_table()`` in an epilog until the help is printed.
_EXIT_CODE_TABLE = "\x00exit-code-table\x00"


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line and exit with the usage code."""

    def format_help(self) -> str:
        """Return the help text, with the exit code table filled in."""
        if self.epilog and _EXIT_CODE_TABLE in self.epilog:
            self.epilog = self.epilog.replace(_EXIT_CODE_TABLE, report.exit_code_table())
        return super().format_help()

    def error(self, message: str) -> NoReturn:
        if "-p" in message and "expected 2 arguments" in message:
            message = "-p takes two words, NAME VALUE (for example: -p namespace shop)"
        self.exit(report.EXIT_USAGE, f"{PROG}: error: {message} (see '{self.prog} --help')\n")


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the ``rknb`` command."""
    epilog = "exit codes:\n" + _EXIT_CODE_TABLE
    parser = _Parser(
        prog=PROG,
        description="Operational notebooks for SREs: run them headlessly and write reports.",
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    commands.add_parser(
        "list",
        help="list the notebooks and their parameters",
        description="List each shipped notebook with its parameters (name, type, default, help).",
    )

    run = commands.add_parser(
        "run",
        help="run one notebook and write its report",
        description="Run a notebook with papermill and write its report folder.",
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("notebook", metavar="NOTEBOOK", help="a notebook name or an .ipynb path")
    _add_parameters(run, "set a parameter; the value is parsed as the notebook declares its type")
    _add_output(run)
    run.add_argument(
        "--timeout", type=_positive_float, metavar="S", help="limit on the whole run, in seconds"
    )
    run.add_argument(
        "--cell-timeout", type=_positive_float, metavar="S", help="limit on each cell, in seconds"
    )
    run.add_argument("--show-code", action="store_true", help="keep the code in the HTML report")
    run.add_argument(
        "--fail-on",
        choices=_LazySeverities(),
        metavar="SEVERITY",
        help="exit 1 on a finding this severe or more (%(choices)s)",
    )
    run.add_argument("--kernel", metavar="NAME", help="a kernelspec (default: this Python)")

    demo = commands.add_parser(
        "demo",
        help="run every notebook on the demo scenario",
        description="Run all shipped notebooks on the built-in demo scenario in parallel.",
    )
    _add_output(demo)
    demo.add_argument(
        "--jobs",
        type=_positive_int,
        default=os.cpu_count() or 1,
        metavar="N",
        help="notebooks run at once (default: the number of CPUs)",
    )
    demo.add_argument(
        "--timeout", type=_positive_float, metavar="S", help="limit on each run, in seconds"
    )
    demo.add_argument(
        "--live",
        action="store_true",
        help="backfill the scenario into a local Prometheus and run the notebooks against it",
    )

    conformance = commands.add_parser(
        "conformance",
        help="check rknb against upstream conformance vectors",
        description="Run conformance vector files (or an audit fixture folder) for one area.",
    )
    conformance.add_argument("area", metavar="AREA", help="the area, e.g. hpa or promql")
    conformance.add_argument("paths", metavar="PATH", nargs="+", help="vector files or folders")
    conformance.add_argument(
        "--semantics",
        choices=("2", "3"),
        help="the Prometheus major version whose semantics to follow",
    )
    _add_run_matrix(commands)
    _add_audit(commands)
    _add_config(commands)
    _add_record(commands)
    return parser


def _add_parameters(parser: argparse.ArgumentParser, help_text: str) -> None:
    """Add ``-p NAME VALUE`` (repeatable) and ``-f FILE`` to a command."""
    parser.add_argument(
        "-p",
        "--parameter",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "VALUE"),
        help=help_text,
    )
    parser.add_argument(
        "-f", "--parameters-file", metavar="FILE", help="a YAML mapping of parameters (-p wins)"
    )


def _add_output(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--output", default="reports", metavar="DIR", help="the report folder (default: reports)"
    )


def _configure_logging(verbosity: int) -> None:
    level = logging.WARNING if verbosity == 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(f"{PROG}: %(levelname)s: %(name)s: %(message)s"))
    root = logging.getLogger("rknb")
    root.handlers = [handler]
    root.setLevel(level)
    root.propagate = False


# --------------------------------------------------------------------------- commands


def _cmd_list(_: argparse.Namespace) -> int:
    notebooks = report.list_notebooks()
    if not notebooks:
        raise RunError(
            "no notebooks are shipped with this installation", exit_code=report.EXIT_INFRASTRUCTURE
        )
    for name, path in notebooks.items():
        print(name)
        for param in report.inspect_parameters(path).values():
            default = repr(param.default) if param.type == "str" else str(param.default)
            line = f"    {param.name}: {param.type} = {default}"
            print(f"{line}  # {param.help}" if param.help else line)
    return report.EXIT_OK


def _load_parameters_file(path: str) -> dict[str, object]:
    from rknb.yamlfile import load_yaml_parameter_file

    data = load_yaml_parameter_file(path, parameter="-f")
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ParameterError("-f", f"{path!r} must hold a mapping of name: value")

    values: dict[str, object] = {}
    for name, value in data.items():
        if isinstance(value, datetime):
            # YAML reads unquoted timestamps as datetimes; parameters want the text back.
            if value.tzinfo is None:
                raise ParameterError(
                    str(name), f"{value} in {path!r} has no UTC offset; add 'Z' or '+hh:mm'"
                )
            value = value.isoformat()
        values[str(name)] = value
    return values


def _given_parameters(args: argparse.Namespace) -> dict[str, object]:
    given: dict[str, object] = {}
    if args.parameters_file:
        given.update(_load_parameters_file(args.parameters_file))
    for name, value in args.parameter:
        if "=" in name:
            left, _, right = name.partition("=")
            raise ParameterError(
                left,
                f"'-p {name}' looks like NAME=VALUE; write '-p {left} {right}' "
                "(two words; the next word was taken as the value)",
            )
        given[name] = value
    return given


def _print_result(result: report.RunResult) -> None:
    print(f"report: {result.html_path}")
    print(f"results: {result.results_path}")
    verdict = result.verdict
    if isinstance(verdict, dict):
        print(f"verdict: {verdict.get('status')}: {verdict.get('summary', '')}")
    else:
        print("verdict: none recorded")
    if result.error:
        error = result.error
        cell = f" (cell {error['cell_index']})" if error.get("cell_index") is not None else ""
        print(f"error{cell}: {error['ename']}: {error['evalue']}")
    print(f"status: {result.status} (exit {result.exit_code})")


def _cmd_run(args: argparse.Namespace) -> int:
    result = report.run_notebook(
        args.notebook,
        _given_parameters(args),
        output_dir=args.output,
        timeout_s=args.timeout,
        cell_timeout_s=args.cell_timeout,
        show_code=args.show_code,
        kernel=args.kernel,
        fail_on=args.fail_on,
    )
    report.update_index(args.output)
    _print_result(result)
    return result.exit_code


def _demo_one(name: str, output: str, timeout_s: float | None) -> dict[str, Any]:
    """Run one notebook in a worker process; return a picklable summary."""
    started = time.monotonic()
    try:
        result = report.run_notebook(name, {}, output_dir=output, timeout_s=timeout_s)
    except RknbError as exc:
        code = exc.exit_code if isinstance(exc, RunError) else report.EXIT_USAGE
        return {"name": name, "exit_code": code, "line": f"error: {exc}", "produced": False}
    verdict = result.verdict
    line = (
        f"verdict {verdict.get('status')}: {verdict.get('summary', '')}"
        if isinstance(verdict, dict)
        else result.message.removeprefix(f"{name}: ")  # the caller prints the name
    )
    return {
        "name": name,
        "exit_code": result.exit_code,
        "produced": result.status == "ok",
        "line": f"{line} ({time.monotonic() - started:.1f} s) -> {result.html_path}",
    }


def _cmd_demo(args: argparse.Namespace) -> int:
    if getattr(args, "live", False):
        return _cmd_demo_live(args)
    names = list(report.list_notebooks())
    if not names:
        raise RunError(
            "no notebooks are shipped with this installation", exit_code=report.EXIT_INFRASTRUCTURE
        )
    from concurrent.futures import ProcessPoolExecutor

    worst = report.EXIT_OK
    done = 0
    with ProcessPoolExecutor(max_workers=min(args.jobs, len(names))) as pool:
        futures = [pool.submit(_demo_one, name, args.output, args.timeout) for name in names]
        for future in as_completed(futures):
            outcome = future.result()
            done += 1
            print(f"[{done}/{len(names)}] {outcome['name']}: {outcome['line']}", flush=True)
            if not outcome["produced"]:
                worst = max(worst, int(outcome["exit_code"]))
    index = report.update_index(args.output)
    print(f"index: {index}")
    return worst


def _add_run_matrix(commands: Any) -> None:
    matrix = commands.add_parser(
        "run-matrix",
        help="run notebooks over clusters x namespaces x notebooks",
        description=(
            "Run every notebook of a matrix file on every cluster and namespace in parallel "
            "processes, append the runs to the report root's history and rewrite its index."
        ),
        epilog="exit codes: the worst of the runs' codes\n" + _EXIT_CODE_TABLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    matrix.add_argument("matrix", metavar="MATRIX", help="the matrix file (YAML)")
    _add_output(matrix)
    matrix.add_argument(
        "--jobs", type=_positive_int, metavar="N", help="runs at once (default: the file's or CPUs)"
    )
    matrix.add_argument(
        "--timeout", type=_positive_float, metavar="S", help="limit on each run, in seconds"
    )
    matrix.add_argument(
        "--textfile", metavar="FILE.prom", help="write the runs' metrics for node-exporter"
    )
    matrix.add_argument("--pushgateway", metavar="URL", help="push the runs' metrics there")


def _cmd_run_matrix(args: argparse.Namespace) -> int:
    from rknb import matrix

    loaded = matrix.load_matrix(args.matrix)
    outcome = matrix.run_matrix(
        loaded, output_dir=args.output, jobs=args.jobs, timeout_s=args.timeout, progress=sys.stdout
    )
    if args.textfile:
        print(f"metrics: {matrix.write_textfile(args.textfile, outcome.entries)}")
    if args.pushgateway:
        matrix.push_metrics(args.pushgateway, outcome.entries)
        print(f"metrics pushed to {args.pushgateway}")
    failed = sum(1 for e in outcome.entries if e["status"] != "ok")
    print(f"{len(outcome.entries)} run(s), {failed} failed; index: {outcome.index}")
    return outcome.exit_code


def _add_audit(commands: Any) -> None:
    # rknb.audit.model.FAIL_ON_SEVERITIES (run's words, rknb.report.SEVERITIES), written out:
    # importing rknb.audit would slow every command; a test keeps the three the same.
    severities = ("info", "low", "warning", "medium", "high", "error", "critical")
    audit = commands.add_parser(
        "audit",
        help="audit manifests (or a live cluster) for reliability and security rules",
        description=(
            "Audit Kubernetes manifests, kustomize output and Prometheus rule files, or a live "
            "cluster's objects, and write the findings to standard output."
        ),
        epilog="exit codes: 0 nothing at or above --fail-on; 1 findings or unreadable input; "
        "2 usage",
    )
    audit.add_argument("paths", metavar="PATH", nargs="*", help="manifest files or folders")
    audit.add_argument(
        "--format", choices=("text", "json", "sarif", "junit"), default="text", help="output"
    )
    audit.add_argument(
        "--fail-on",
        choices=severities,
        default="high",
        metavar="SEVERITY",
        help="exit 1 on a finding this severe or worse (%(choices)s; default high; warning "
        "is medium or worse, error is critical, as in `rknb run`)",
    )
    audit.add_argument(
        "--config",
        metavar="FILE",
        help="YAML settings: min_replicas, disabled, enabled, ignore, scrape_interval_s, "
        "metric_types, resource_ranges, alert_labels, ... (docs/audit.md)",
    )
    audit.add_argument(
        "--rules", metavar="IDS", help="comma-separated rule ids or prefixes (RK-SEC) to run"
    )
    audit.add_argument(
        "--kube-version",
        type=_kube_version,
        metavar="X.Y",
        help="validate objects against this version's schema (1.30; the versions "
        "kubernetes-validate carries)",
    )
    audit.add_argument(
        "--jobs",
        type=_positive_int,
        metavar="N",
        help="processes that read, validate and check inputs of 256 KB or more "
        "(default: the usable CPUs, at most 4)",
    )
    audit.add_argument("--context", metavar="NAME", help="audit this kubeconfig context's objects")
    scope = audit.add_mutually_exclusive_group()
    scope.add_argument("-n", "--namespace", help="with --context: one namespace")
    scope.add_argument(
        "-A", "--all-namespaces", action="store_true", help="with --context: every namespace"
    )


def _kube_version(text: str) -> str:
    # --kube-version is checked while the arguments are parsed: before a cluster is listed
    # or a file read, and refused with exit 2 like any other bad argument.
    from rknb.conformance.audit import schema_version

    try:
        schema_version(text, parameter="--kube-version")
    except ParameterError as error:
        message = str(error).removeprefix("parameter '--kube-version': ")
        raise argparse.ArgumentTypeError(message) from error
    return text


def _cmd_audit(args: argparse.Namespace) -> int:
    from rknb.conformance import audit as audit_cli

    objects: list[Any] = []
    if args.context:
        from rknb.audit.objects import WORKLOAD_KINDS
        from rknb.sources.cluster import ClusterSource

        source = ClusterSource(args.context)
        namespace = None if args.all_namespaces else args.namespace
        kinds = {*WORKLOAD_KINDS, "Service", "Ingress", "HorizontalPodAutoscaler"}
        kinds |= {"PodDisruptionBudget", "NetworkPolicy", "ServiceAccount", "PrometheusRule"}
        for kind in sorted(kinds - {"DeploymentConfig"}):
            objects.extend(source.list(kind, namespace))
    elif not args.paths:
        raise ParameterError("PATH", "give manifest files or folders, or --context for a cluster")
    output, code = audit_cli.audit_output(
        args.paths,
        output_format=args.format,
        fail_on=args.fail_on,
        config=audit_cli.load_config(args.config),
        rules=args.rules.split(",") if args.rules is not None else None,
        kube_version=args.kube_version,
        objects=objects,
        jobs=args.jobs,
    )
    if sys.stdout is None:  # started with standard output closed (`>&-`)
        raise RunError(
            "standard output is closed, so the report has nowhere to go; redirect it",
            exit_code=report.EXIT_INFRASTRUCTURE,
        )
    stream = getattr(sys.stdout, "buffer", None)
    try:
        if stream is None:  # a text-only stand-in for standard output
            sys.stdout.write(output.decode("utf-8"))
        else:
            sys.stdout.flush()
            stream.write(output)
            stream.flush()
    except BrokenPipeError:
        raise  # the reader went away (`| head`): handled where every command's is
    except OSError as error:  # a full disk, a quota
        raise RunError(
            f"the report could not be written to standard output ({error.strerror or error})",
            exit_code=report.EXIT_INFRASTRUCTURE,
        ) from error
    return code


def _cmd_conformance(args: argparse.Namespace) -> int:
    from rknb import conformance

    options: dict[str, Any] = {}
    if args.semantics is not None:
        options["semantics"] = int(args.semantics)
    summary = conformance.run_area(args.area, [Path(p) for p in args.paths], **options)
    for case in summary.failures():
        print(case.line())
    print(summary.closing_line())
    return report.EXIT_OK if summary.ok else report.EXIT_FINDINGS


def _cmd_demo_live(args: argparse.Namespace) -> int:
    """Run every notebook against a local Prometheus backfilled with the demo scenario."""
    import tempfile
    from concurrent.futures import ThreadPoolExecutor

    from rknb.scenario import END, build_scenario, write_openmetrics
    from rknb.scenario.export import LocalPrometheus, backfill, find_prometheus
    from rknb.times import format_time

    found = find_prometheus()
    if found is None:
        raise RunError(
            "--live needs Debian's prometheus and promtool on PATH "
            "(apt-get install --no-install-recommends prometheus); 'rknb demo' needs neither",
            exit_code=report.EXIT_INFRASTRUCTURE,
        )
    names = list(report.list_notebooks())
    with tempfile.TemporaryDirectory(prefix="rknb-live-") as tmp:
        export = Path(tmp) / "scenario.om"
        print("exporting the demo scenario as OpenMetrics ...", flush=True)
        size = write_openmetrics(build_scenario(None), export)
        elapsed = backfill(export, Path(tmp) / "data", promtool=found[1])
        export.unlink()
        print(f"backfilled {size / 1e6:.0f} MB in {elapsed:.1f} s", flush=True)
        with LocalPrometheus(Path(tmp) / "data", binary=found[0]) as server:
            print(f"Prometheus at {server.url} (pid {server.pid})", flush=True)
            parameters = {
                "prometheus": server.url,
                "cluster": "demo",
                "report_time": format_time(END),
            }

            def one(name: str) -> report.RunResult:
                return report.run_notebook(
                    name, parameters, output_dir=args.output, timeout_s=args.timeout
                )

            worst = report.EXIT_OK
            with ThreadPoolExecutor(max_workers=min(args.jobs, len(names))) as pool:
                for done, result in enumerate(pool.map(one, names), start=1):
                    print(f"[{done}/{len(names)}] {result.message}", flush=True)
                    if result.status != "ok":
                        worst = max(worst, result.exit_code)
    print(f"index: {report.update_index(args.output)}")
    return worst


def _add_config(commands: Any) -> None:
    config = commands.add_parser(
        "config",
        help="show the effective configuration",
        description=(
            "Show the configuration rknb uses (file, environment, precedence), "
            "every credential redacted."
        ),
    )
    config.add_argument("action", choices=("show",), help="what to do (show)")
    config.add_argument("--file", metavar="FILE", help="a config file instead of the default")


def _cmd_config(args: argparse.Namespace) -> int:
    from rknb.config import load_config, show_config
    from rknb.credentials import redact

    print(redact(show_config(load_config(args.file))), end="")
    return report.EXIT_OK


def _add_record(commands: Any) -> None:
    record = commands.add_parser(
        "record",
        help="run notebooks on live sources and record every answer into a bundle",
        description=(
            "Run notebooks (all of them when none is named) against live sources and record "
            "every query answer and object list they get (never Secret data) into one bundle "
            "folder, which '-p prometheus BUNDLE -p cluster BUNDLE' replays offline."
        ),
        epilog="exit codes: the worst of the runs' codes\n" + _EXIT_CODE_TABLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    record.add_argument("bundle", metavar="BUNDLE", help="the bundle folder to write")
    record.add_argument("notebooks", metavar="NOTEBOOK", nargs="*", help="notebooks to run")
    record.add_argument(
        "--prometheus", metavar="URL|NAME", help="the metrics source (default: the notebooks')"
    )
    record.add_argument(
        "--cluster", metavar="CONTEXT|PATH", help="the object source (default: the notebooks')"
    )
    _add_parameters(record, "set a parameter of the notebooks that declare it")
    _add_output(record)
    record.add_argument(
        "--timeout", type=_positive_float, metavar="S", help="limit on each run, in seconds"
    )
    record.add_argument(
        "--jobs", type=_positive_int, default=1, metavar="N", help="notebooks run at once"
    )
    record.add_argument(
        "--force", action="store_true", help="replace a bundle the folder already holds"
    )


def _cmd_record(args: argparse.Namespace) -> int:
    import json
    import threading
    from concurrent.futures import ThreadPoolExecutor
    from datetime import UTC

    from rknb.credentials import redact
    from rknb.sources import RECORD_ENV, finish_bundle, reference_time_of, start_bundle
    from rknb.times import format_time, parse_time

    names = list(args.notebooks) or list(report.list_notebooks())
    declared = {n: report.inspect_parameters(report.resolve_notebook(n)) for n in names}
    given = _given_parameters(args)
    for option in ("prometheus", "cluster"):
        if getattr(args, option) is not None:
            given[option] = getattr(args, option)
    unknown = sorted(k for k in given if not any(k in params for params in declared.values()))
    if unknown:
        raise ParameterError(unknown[0], f"is not a parameter of any of {', '.join(names)}")
    # Every value is checked before the bundle folder is touched, so a typo leaves nothing.
    for name in names:
        report.coerce_parameters(
            declared[name], {k: v for k, v in given.items() if k in declared[name]}
        )
    output = Path(args.output if args.output is not None else "reports")
    try:
        output.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunError(
            f"cannot create the report folder {output}: {exc.strerror}; choose another --output",
            exit_code=report.EXIT_INFRASTRUCTURE,
        ) from exc
    bundle = Path(args.bundle).resolve()
    for option in ("prometheus", "cluster"):
        spec = str(given.get(option, ""))
        if spec and Path(spec).expanduser().resolve() == bundle:
            raise ParameterError(option, f"names the bundle {args.bundle} being recorded into")

    # Every notebook of one bundle shares one "now": the bundle's recording time, which a
    # replay takes as its report time.
    if given.get("report_time"):
        now = parse_time(str(given["report_time"]), name="report_time")
    else:
        specs = [str(given.get(o, "demo")) for o in ("prometheus", "cluster")]
        known = [t for t in (reference_time_of(s) for s in specs) if t is not None]
        now = known[0] if known else datetime.now(UTC).replace(microsecond=0)
    given["report_time"] = format_time(now)
    try:
        start_bundle(
            bundle,
            now,
            description=f"rknb record of {', '.join(names)}",
            metrics_source=redact(str(given.get("prometheus", "demo"))),
            objects_source=redact(str(given.get("cluster", "demo"))),
            force=args.force,
        )
    except OSError as exc:
        raise RunError(
            f"cannot write the bundle folder {bundle}: {exc.strerror or exc}; "
            "name a folder that can be created and written",
            exit_code=report.EXIT_INFRASTRUCTURE,
        ) from exc
    print(f"recording into {bundle} (report_time {given['report_time']})", flush=True)

    printing = threading.Lock()  # one whole line at a time from the worker threads

    def one(name: str) -> tuple[report.RunResult, float]:
        with printing:
            print(f"    {name}: running ...", flush=True)
        started = time.monotonic()
        result = report.run_notebook(
            name,
            {k: v for k, v in given.items() if k in declared[name]},
            output_dir=args.output,
            timeout_s=args.timeout,
            environment={RECORD_ENV: str(bundle)},
        )
        return result, time.monotonic() - started

    # Kernels recording side by side append to the one bundle under its file lock.
    worst = report.EXIT_OK
    unfinished: list[str] = []
    with ThreadPoolExecutor(max_workers=min(args.jobs, len(names))) as pool:
        futures = {pool.submit(one, name): name for name in names}
        for done, future in enumerate(as_completed(futures), start=1):
            result, took = future.result()
            with printing:
                print(f"[{done}/{len(names)}] {result.message} ({took:.1f} s)", flush=True)
                print(f"    report: {result.html_path}", flush=True)
            worst = max(worst, result.exit_code)  # a failed verdict (1) counts too
            if result.exit_code > report.EXIT_FINDINGS:
                unfinished.append(futures[future])
    if unfinished:
        print(
            f"bundle left unfinished: {', '.join(sorted(unfinished))} did not run to the end, "
            "so a replay refuses the bundle; fix that and record again"
        )
    else:
        finish_bundle(bundle)
    index = json.loads((bundle / "bundle.json").read_text(encoding="utf-8"))
    print(
        f"bundle: {bundle} ({len(index['metrics'])} query answers, "
        f"{len(index['objects'])} object lists)"
    )
    print(f"replay: rknb run NOTEBOOK -p prometheus {bundle} -p cluster {bundle} (same -p)")
    print(f"index: {report.update_index(args.output)}")
    return worst


_COMMANDS = {
    "list": _cmd_list,
    "run": _cmd_run,
    "demo": _cmd_demo,
    "conformance": _cmd_conformance,
    "run-matrix": _cmd_run_matrix,
    "audit": _cmd_audit,
    "config": _cmd_config,
    "record": _cmd_record,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``rknb`` command line; return its exit code."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command == "record" and not any(e.startswith("-") for e in extra):
        args.notebooks = [*args.notebooks, *extra]  # notebooks named after the options
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    _configure_logging(args.verbose)
    try:
        return _COMMANDS[args.command](args)
    except RunError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except RknbError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return report.EXIT_USAGE
    except KeyboardInterrupt:
        print(f"{PROG}: error: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
