"""A real Prometheus over the backfilled demo scenario, once per test session.

The scenario (seed 42) is exported as OpenMetrics, backfilled with promtool
together with a few hand-made edge-case histograms, and served by Debian's
``prometheus`` on a free loopback port until the session ends. Without the
binaries the tests skip, unless ``RKNB_REQUIRE_PROMETHEUS=1`` (CI) makes that
a failure.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest
from promserver import Server, write_edge_histograms

from rknb.scenario import build_scenario, write_openmetrics
from rknb.scenario.export import LocalPrometheus, backfill, find_prometheus


def _binaries() -> tuple[str, str]:
    found = find_prometheus()
    if found is None:
        reason = "Debian's prometheus and promtool are not on PATH (apt-get install prometheus)"
        if os.environ.get("RKNB_REQUIRE_PROMETHEUS") == "1":
            pytest.fail(f"RKNB_REQUIRE_PROMETHEUS=1 but {reason}", pytrace=False)
        pytest.skip(reason)
    return found


@pytest.fixture(scope="session")
def prometheus_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
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

    local = LocalPrometheus(data, binary=server_binary).start()
    try:
        assert local.pid is not None
        yield Server(local.url, local.pid, 42, export_bytes, export_s, backfill_s)
    finally:
        local.stop()
