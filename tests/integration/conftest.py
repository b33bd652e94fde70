"""A real Prometheus over the backfilled demo scenario, once per test session.

The scenario (seed 42) is exported as OpenMetrics, backfilled with promtool
together with a few hand-made edge-case histograms, and served by Debian's
``prometheus`` on a free loopback port until the session ends. Without the
binaries the tests skip, unless ``RKNB_REQUIRE_PROMETHEUS=1`` (CI) makes that
a failure.

Two more session fixtures run notebooks: ``fake_cluster`` serves the
scenario's objects through the HTTP-level fake Kubernetes API, and
``recording`` runs ``rknb record`` once against both, whose live reports the
agreement tests and the replay tests share. ``rknb demo --live`` (a command of
its own, with its own backfill) starts in the background as soon as the
session's server is up and is collected by its test, sorted last, so that its
single-threaded export and backfill overlap the rest of the suite.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from liveruns import RECORDED_NOTEBOOKS, REPORT_TIME, SEMANTICS_ENV, Recording
from promserver import Server, write_edge_histograms

from rknb.scenario import build_scenario, write_openmetrics
from rknb.scenario.export import LocalPrometheus, backfill, find_prometheus

_TESTS = str(Path(__file__).resolve().parents[1])
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)  # tests/, for the ``fakekube`` package

from fakekube import FakeKube  # noqa: E402

DEMO_LIVE_TEST = "test_demo_live_runs_all_five_notebooks_against_a_local_server"
_DEMO_LIVE = pytest.StashKey[tuple[subprocess.Popen[str], Path]]()
_DEMO_LIVE_WANTED = pytest.StashKey[bool]()


def _binaries() -> tuple[str, str]:
    found = find_prometheus()
    if found is None:
        reason = "Debian's prometheus and promtool are not on PATH (apt-get install prometheus)"
        if os.environ.get("RKNB_REQUIRE_PROMETHEUS") == "1":
            pytest.fail(f"RKNB_REQUIRE_PROMETHEUS=1 but {reason}", pytrace=False)
        pytest.skip(reason)
    return found


@pytest.fixture(scope="session")
def prometheus_server(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Server]:
    server_binary, promtool = _binaries()
    folder = tmp_path_factory.mktemp("prometheus")
    scenario = build_scenario(42)

    began = time.monotonic()
    export = folder / "scenario.om"
    export_bytes = write_openmetrics(scenario, export)
    export_s = time.monotonic() - began
    edges = folder / "edges.om"
    write_edge_histograms(edges)

    data = folder / "data"
    backfill_s = backfill(export, data, promtool=promtool)
    backfill(edges, data, promtool=promtool)
    export.unlink()  # 700 MB of temporary space is not kept for the rest of the session
    # Now, not earlier: its own export and backfill would slow the one just measured.
    _start_demo_live(request.config)

    local = LocalPrometheus(data, binary=server_binary).start()
    try:
        assert local.pid is not None
        yield Server(local.url, local.pid, 42, export_bytes, export_s, backfill_s)
    finally:
        local.stop()


@pytest.fixture(scope="session")
def fake_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FakeKube, Path]]:
    """Yield the fake API server holding the scenario's objects and a kubeconfig (context fake)."""
    fake = FakeKube().start()
    try:
        fake.add(*build_scenario(42).objects)
        kubeconfig = fake.write_kubeconfig(
            tmp_path_factory.mktemp("kube") / "kubeconfig", context="fake"
        )
        yield fake, kubeconfig
    finally:
        fake.stop()


@pytest.fixture(scope="session")
def recording(
    prometheus_server: Server,
    fake_cluster: tuple[FakeKube, Path],
    tmp_path_factory: pytest.TempPathFactory,
) -> Recording:
    """Run ``rknb record`` once: four notebooks against the real server and the fake cluster."""
    fake, kubeconfig = fake_cluster
    folder = tmp_path_factory.mktemp("record")
    env = dict(os.environ, KUBECONFIG=str(kubeconfig), NO_PROXY="127.0.0.1", **SEMANTICS_ENV)
    command = [sys.executable, "-m", "rknb.cli", "record", str(folder / "bundle")]
    command += [*RECORDED_NOTEBOOKS, "--prometheus", prometheus_server.url, "--cluster", "fake"]
    command += ["-p", "report_time", REPORT_TIME, "--jobs", "2", "--output", str(folder / "live")]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=900, check=False, env=env
    )
    return Recording(
        folder / "bundle", folder / "live", done.returncode, done.stdout, done.stderr, fake.token
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run the ``rknb demo --live`` test last: its command runs in the background meanwhile."""
    items.sort(key=lambda item: item.name == DEMO_LIVE_TEST)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Note whether the ``rknb demo --live`` test is selected, so that it can start early."""
    session.config.stash[_DEMO_LIVE_WANTED] = any(
        item.name == DEMO_LIVE_TEST for item in session.items
    )


def _start_demo_live(config: pytest.Config) -> None:
    """Start ``rknb demo --live`` in the background once, if its test is selected."""
    if _DEMO_LIVE in config.stash or not config.stash.get(_DEMO_LIVE_WANTED, False):
        return
    if find_prometheus() is None:
        return
    folder = Path(tempfile.mkdtemp(prefix="rknb-demo-live-"))
    command = [sys.executable, "-m", "rknb.cli", "demo", "--live", "--jobs", "2"]
    # Files, not pipes: nobody reads the output until the test collects it.
    with open(folder / "stdout", "w") as out, open(folder / "stderr", "w") as err:
        process = subprocess.Popen(
            [*command, "--output", str(folder / "reports")],
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
            text=True,
            start_new_session=True,  # its own group: its server and kernels stop with it
        )
    config.stash[_DEMO_LIVE] = (process, folder)


@pytest.fixture
def demo_live(request: pytest.FixtureRequest) -> tuple[subprocess.Popen[str], Path]:
    """Return the background ``rknb demo --live`` process and its folder (stdout, reports)."""
    _binaries()
    _start_demo_live(request.config)  # when the session's server did not start it already
    return request.config.stash[_DEMO_LIVE]


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Stop a background ``rknb demo --live`` its test did not collect (by its pid)."""
    found = session.config.stash.get(_DEMO_LIVE, None)
    if found is None:
        return
    process, folder = found
    if process.poll() is None:
        # SIGINT first: the command stops its Prometheus and kernels on KeyboardInterrupt.
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # the group this session started
            process.wait(timeout=10)
    shutil.rmtree(folder, ignore_errors=True)
