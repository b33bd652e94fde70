"""What a notebook calls first and last: parameters in, sources open, results out.

Every notebook starts with :func:`start`, which validates the common
parameters, fixes the report time, opens the metrics and object sources and
sets up logging and plotting so that two runs of the same inputs give the
same bytes. Headline figures and the verdict are recorded with
:func:`record` as ``display_data`` outputs of rknb's own MIME type, which the
report runner (:mod:`rknb.report`) collects into ``results.json``; the last
cell calls :func:`finish`, whose sentinel tells the runner that every cell
ran.
"""

from __future__ import annotations

import logging
import math
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import pandas as pd

from rknb.catalog import Selector
from rknb.errors import ParameterError
from rknb.sources import open_metrics, open_objects
from rknb.sources.base import MetricsSource, ObjectSource, Window
from rknb.times import format_time, parse_duration, parse_time

__all__ = [
    "RESULTS_MIME",
    "SENTINEL_MIME",
    "Run",
    "finish",
    "record",
    "require",
    "show",
    "start",
]

RESULTS_MIME = "application/vnd.rknb.results+json"
SENTINEL_MIME = "application/vnd.rknb.sentinel+json"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Run:
    """The opened sources and the resolved window of one notebook run."""

    metrics: MetricsSource
    objects: ObjectSource
    selector: Selector
    window: Window
    report_time: datetime
    prometheus: str
    cluster: str

    def query_range(
        self, query: str, *, window_s: float | None = None, **selector: Any
    ) -> pd.DataFrame:
        """Return a catalog query over the run's window, for the run's selector or another.

        ``window_s`` replaces the catalog entry's range at every step.
        """
        return self.metrics.query_range(
            query, self._selector(selector), self.window, window_s=window_s
        )

    def query_instant(
        self,
        query: str,
        *,
        at: datetime | None = None,
        window_s: float | None = None,
        **selector: Any,
    ) -> pd.DataFrame:
        """Return a catalog query at one instant (the window's end by default)."""
        moment = at if at is not None else self.window.end
        return self.metrics.query_instant(
            query, self._selector(selector), moment, window_s=window_s
        )

    def list(self, kind: str, namespace: str | Literal["*"] | None = None) -> list[dict[str, Any]]:
        """Return objects of a kind in the run's namespace, or in all (``"*"``)."""
        if namespace == "*":
            return self.objects.list(kind, None)
        return self.objects.list(kind, namespace or self.selector.namespace)

    def _selector(self, overrides: Mapping[str, Any]) -> Selector:
        if not overrides:
            return self.selector
        labels = overrides.get("labels", self.selector.labels)
        if isinstance(labels, Mapping):
            labels = tuple(sorted(labels.items()))
        return Selector(
            namespace=overrides.get("namespace", self.selector.namespace),
            workload=overrides.get("workload", self.selector.workload),
            container=overrides.get("container", self.selector.container),
            labels=labels,
        )


def start(
    *,
    prometheus: str = "demo",
    cluster: str = "demo",
    namespace: str = "",
    workload: str = "",
    report_time: str = "",
    start: str = "now-14d",
    end: str = "now",
    step: str = "5m",
) -> Run:
    """Return the run: sources opened, window resolved, logging and plots configured.

    Parameters
    ----------
    prometheus
        ``demo``, ``demo:SEED``, a Prometheus URL or a bundle folder.
    cluster
        ``demo``, a manifest file or folder, a bundle folder, ``in-cluster`` or a
        kubeconfig context name.
    namespace
        The namespace the analysis is about (empty: all namespaces).
    workload
        The Deployment the analysis is about (empty: every workload).
    report_time
        The instant ``now`` refers to; empty means the sources' own reference time
        (the demo's fixed end, a bundle's recording time, the wall clock when live).
    start
        The window's start, ISO 8601 with an offset or relative (``now-14d``).
    end
        The window's end, same forms.
    step
        The resolution of range queries (``5m``).
    """
    _configure_logging()
    _configure_plots()
    _configure_tables()

    given_time = parse_time(report_time, name="report_time") if report_time else None
    metrics = open_metrics(prometheus, cluster=cluster, report_time=given_time)
    objects = open_objects(cluster)
    now = _resolve_report_time(report_time, metrics, objects)
    window = Window(
        start=parse_time(start, now=now, name="start"),
        end=parse_time(end, now=now, name="end"),
        step_s=parse_duration(step, name="step"),
    )
    if window.step_s < 1:
        raise ParameterError("step", f"must be at least 1s, got {step!r}")
    log.info(
        "window %s .. %s step %ss",
        format_time(window.start),
        format_time(window.end),
        window.step_s,
    )
    selector = Selector(namespace=namespace or None, workload=workload or None)
    return Run(metrics, objects, selector, window, now, prometheus, cluster)


def _resolve_report_time(text: str, metrics: MetricsSource, objects: ObjectSource) -> datetime:
    if text:
        return parse_time(text, name="report_time")
    for source in (metrics, objects):
        if source.reference_time is not None:
            return source.reference_time
    # Only live sources: the wall clock is the one reference there is.
    return datetime.now(UTC).replace(microsecond=0)


def record(
    *,
    verdict: Literal["pass", "fail", "none"] | None = None,
    summary: str = "",
    findings: list[dict[str, Any]] | None = None,
    **figures: float | int | str | bool | None,
) -> None:
    """Record headline figures (and a verdict) for ``results.json``.

    Parameters
    ----------
    verdict
        ``pass`` or ``fail`` where the notebook has a verdict.
    summary
        One sentence explaining the verdict.
    findings
        Structured findings (the audit's), already free of secret values.
    **figures
        Headline figures by name, with the unit in the name (``p95_s``).
    """
    payload: dict[str, Any] = {"figures": {k: _json_scalar(k, v) for k, v in figures.items()}}
    if verdict is not None:
        if verdict not in ("pass", "fail", "none"):
            raise ParameterError("verdict", f"must be 'pass', 'fail' or 'none', got {verdict!r}")
        payload["verdict"] = {"status": verdict, "summary": summary}
    if findings is not None:
        payload["findings"] = findings
    _display({RESULTS_MIME: payload})


def require(condition: bool, parameter: str, expected: str, value: Any) -> None:
    """Refuse a parameter's value, naming the parameter, unless the condition holds.

    A notebook checks its own parameters first with this, so a bad value fails in
    the first cells with the name the user typed, not deep inside an analysis
    function under the name that function gives it.
    """
    if not condition:
        raise ParameterError(parameter, f"must be {expected}, got {value!r}")


def show(markdown: str) -> None:
    """Display Markdown text (a notebook's headline)."""
    try:
        from IPython.display import Markdown, display
    except ImportError:
        print(markdown)
        return
    display(Markdown(markdown))


def finish() -> None:
    """Mark the run complete: the report runner requires this sentinel in the last cell."""
    _display({SENTINEL_MIME: {"complete": True}})


def _json_scalar(name: str, value: Any) -> float | int | str | bool | None:
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return value
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ParameterError(
            name, f"a recorded figure must be a number or text, got {value!r}"
        ) from None
    if math.isnan(number) or math.isinf(number):
        return None
    return int(number) if isinstance(value, int) else number


def _display(data: dict[str, Any]) -> None:
    try:
        from IPython.display import display
    except ImportError:  # outside IPython there is nobody to record for
        return
    display(data, raw=True)


def _configure_logging() -> None:
    # Notebook output goes to stdout: a stderr stream would read as an error in the report.
    root = logging.getLogger("rknb")
    if not any(getattr(h, "_rknb", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        handler._rknb = True  # type: ignore[attr-defined]
        root.addHandler(handler)
        root.setLevel(logging.WARNING)


def _configure_tables() -> None:
    # Findings and reasons are sentences: show them whole, and keep long tables short.
    pd.set_option("display.max_colwidth", 300)
    pd.set_option("display.max_rows", 60)
    pd.set_option("display.precision", 4)


def _configure_plots() -> None:
    import matplotlib

    matplotlib.rcParams["svg.hashsalt"] = "rknb"
    try:
        from matplotlib_inline.backend_inline import set_matplotlib_formats
    except ImportError:
        return
    set_matplotlib_formats("png")
