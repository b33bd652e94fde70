"""Writing the scenario out: OpenMetrics text for promtool, YAML manifests, a local server.

The OpenMetrics file is what ``promtool tsdb create-blocks-from openmetrics``
backfills into a real Prometheus, so the rules it is strict about are kept
here: timestamps in seconds, every series in increasing time order, no blank
line, ``# EOF`` last. Values are written so that they parse back to the
exact float64 in the store.

:func:`backfill` and :class:`LocalPrometheus` turn that file into a real
Prometheus on loopback (for the integration tests and ``rknb demo --live``):
promtool with a maximum block duration longer than the history, because its
default of 2 h blocks re-reads the whole file once per block (20 times
slower); no scrape targets and a retention of 100 years, because retention is
measured from the newest block, and any current sample would expire the
history.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rknb.errors import SourceError
from rknb.tsdb import RawSeries
from rknb.yamlfile import dump_yaml

if TYPE_CHECKING:
    from rknb.scenario import Scenario

__all__ = [
    "MAX_BLOCK_DURATION",
    "LocalPrometheus",
    "backfill",
    "family_of",
    "find_prometheus",
    "openmetrics_lines",
    "write_manifests",
    "write_openmetrics",
]

logger = logging.getLogger(__name__)

#: promtool rounds the block duration down to 2 h x 3^n; 486 h (20 days) holds the 14-day history.
MAX_BLOCK_DURATION = "486h"

_CONFIG = "global:\n  scrape_interval: 30s\nscrape_configs: []\n"

#: Metric families and their OpenMetrics types; the family name drops the sample suffix.
_FAMILIES: dict[str, tuple[str, str]] = {
    "mcp_requests_total": ("mcp_requests", "counter"),
    "mcp_request_duration_seconds_bucket": ("mcp_request_duration_seconds", "histogram"),
    "mcp_request_duration_seconds_sum": ("mcp_request_duration_seconds", "histogram"),
    "mcp_request_duration_seconds_count": ("mcp_request_duration_seconds", "histogram"),
    "container_cpu_usage_seconds_total": ("container_cpu_usage_seconds", "counter"),
    "kube_pod_container_status_restarts_total": (
        "kube_pod_container_status_restarts",
        "counter",
    ),
}


def family_of(metric: str) -> tuple[str, str]:
    """Return the OpenMetrics family name and type of a sample's metric name."""
    return _FAMILIES.get(metric, (metric, "gauge"))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _format_values(values: np.ndarray) -> list[str]:
    """Return each value as the shortest text that parses back to the same float64."""
    finite = bool(np.all(np.isfinite(values)))
    if finite and np.all(values == np.floor(values)) and np.all(np.abs(values) < 2**53):
        return [str(v) for v in values.astype(np.int64).tolist()]
    return [repr(v) for v in values.tolist()]


def _series_text(series: RawSeries, ts_text: dict[int, str]) -> str:
    """Return the sample lines of one series, oldest first."""
    labels = ",".join(f'{k}="{_escape(v)}"' for k, v in series.labels)
    prefix = f"{series.name}{{{labels}}} " if labels else f"{series.name} "
    values = _format_values(series.values)
    stamps = [ts_text[t] for t in series.t_s.tolist()]
    return "".join([f"{prefix}{v} {t}\n" for v, t in zip(values, stamps, strict=True)])


def openmetrics_lines(series: Iterable[RawSeries]) -> Iterator[str]:
    """Yield OpenMetrics text chunks for the series: a TYPE line per family, then ``# EOF``."""
    by_family: dict[str, list[RawSeries]] = {}
    types: dict[str, str] = {}
    for s in series:
        family, kind = family_of(s.name)
        by_family.setdefault(family, []).append(s)
        types[family] = kind
    ts_text: dict[int, str] = {}
    for family in sorted(by_family):
        yield f"# TYPE {family} {types[family]}\n"
        members = sorted(by_family[family], key=lambda s: (s.labels, s.name))
        for s in members:
            for t in s.t_s.tolist():
                if t not in ts_text:
                    ts_text[t] = str(t)
            yield _series_text(s, ts_text)
    yield "# EOF\n"


def write_openmetrics(scenario: Scenario, path: str | os.PathLike[str]) -> int:
    """Write the scenario's series as OpenMetrics text for promtool; return the bytes written."""
    written = 0
    with open(path, "w", encoding="utf-8", newline="\n") as out:
        for chunk in openmetrics_lines(scenario.store):
            out.write(chunk)
            written += len(chunk.encode("utf-8")) if not chunk.isascii() else len(chunk)
    return written


_KIND_FILES = {
    "Namespace": "namespaces",
    "Node": "nodes",
    "Secret": "secrets",
    "Deployment": "deployments",
    "ReplicaSet": "replicasets",
    "Pod": "pods",
    "Service": "services",
    "HorizontalPodAutoscaler": "horizontalpodautoscalers",
    "PodDisruptionBudget": "poddisruptionbudgets",
    "NetworkPolicy": "networkpolicies",
    "PrometheusRule": "prometheusrules",
}


def write_manifests(scenario: Scenario, directory: str | os.PathLike[str]) -> list[Path]:
    """Write every object as multi-document YAML, one file per kind; return the files written."""
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for obj in scenario.objects:
        by_kind.setdefault(obj["kind"], []).append(obj)
    written = []
    for kind, objects in by_kind.items():
        name = _KIND_FILES.get(kind, kind.lower() + "s")
        path = folder / f"{name}.yaml"
        path.write_text("---\n".join(dump_yaml(o) for o in objects), encoding="utf-8")
        written.append(path)
    return written


def find_prometheus() -> tuple[str, str] | None:
    """Return the paths of ``prometheus`` and ``promtool`` on PATH, or None if one is missing."""
    server, tool = shutil.which("prometheus"), shutil.which("promtool")
    if server is None or tool is None:
        return None
    return server, tool


def backfill(
    openmetrics: str | os.PathLike[str],
    data_dir: str | os.PathLike[str],
    *,
    promtool: str = "promtool",
    max_block_duration: str = MAX_BLOCK_DURATION,
) -> float:
    """Write TSDB blocks for an OpenMetrics file into a data folder; return the seconds taken."""
    Path(data_dir).mkdir(parents=True, exist_ok=True)
    command = [
        promtool,
        "tsdb",
        "create-blocks-from",
        "openmetrics",
        f"--max-block-duration={max_block_duration}",
        "-q",
        os.fspath(openmetrics),
        os.fspath(data_dir),
    ]
    began = time.monotonic()
    try:
        done = subprocess.run(command, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise SourceError(
            f"cannot run {promtool!r} ({exc.strerror}); install Debian's prometheus package"
        ) from exc
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip()[-400:]
        raise SourceError(f"promtool could not backfill {os.fspath(openmetrics)!r}: {tail}")
    elapsed = time.monotonic() - began
    logger.info("backfilled %s in %.1f s", os.fspath(openmetrics), elapsed)
    return elapsed


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class LocalPrometheus:
    """A Prometheus server on 127.0.0.1 over a backfilled data folder, stopped by its pid.

    Parameters
    ----------
    data_dir
        The TSDB folder; the server writes into it, so never a shared or checked-in one.
    binary
        The ``prometheus`` executable.
    ready_timeout_s
        Seconds to wait for ``/-/ready`` after each start attempt.
    """

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        *,
        binary: str = "prometheus",
        ready_timeout_s: float = 30.0,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.binary = binary
        self.ready_timeout_s = ready_timeout_s
        self.port: int | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self.log_path = self.data_dir.parent / f"{self.data_dir.name}.prometheus.log"

    @property
    def url(self) -> str:
        """Return the server's base URL."""
        if self.port is None:
            raise SourceError("the local Prometheus is not started; call start() first")
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        """Return the server's process id while it runs."""
        return self._process.pid if self._process is not None else None

    def start(self) -> LocalPrometheus:
        """Start the server on a free loopback port and wait until it is ready; return self."""
        config = self.data_dir.parent / f"{self.data_dir.name}.prometheus.yml"
        config.write_text(_CONFIG, encoding="utf-8")
        # Binding port 0 and releasing it is racy: retry when another process takes it first.
        for _attempt in range(5):
            port = _free_port()
            command = [
                self.binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={self.data_dir}",
                "--storage.tsdb.retention.time=100y",
                f"--web.listen-address=127.0.0.1:{port}",
            ]
            with open(self.log_path, "wb") as log:
                try:
                    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
                except OSError as exc:
                    raise SourceError(
                        f"cannot run {self.binary!r} ({exc.strerror}); install Debian's "
                        "prometheus package"
                    ) from exc
            self._process, self.port = process, port
            if self._wait_ready():
                logger.info("local Prometheus ready at %s (pid %d)", self.url, process.pid)
                return self
            self.stop()
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
            if "address already in use" not in text:
                raise SourceError(
                    f"the local Prometheus did not become ready within {self.ready_timeout_s} s; "
                    f"its log ends: {text.strip()[-400:]}"
                )
        raise SourceError("no free loopback port could be bound for the local Prometheus")

    def _wait_ready(self) -> bool:
        assert self._process is not None
        deadline = time.monotonic() + self.ready_timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                return False
            try:
                with urllib.request.urlopen(self.url + "/-/ready", timeout=1) as answer:
                    if answer.status == 200:
                        return True
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.05)
        return False

    def stop(self) -> None:
        """Stop the server by its pid (SIGTERM, then SIGKILL after 10 s)."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

    def __enter__(self) -> LocalPrometheus:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
