from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import ClassVar

import pytest

from rknb import matrix
from rknb.errors import ParameterError, RunError

ENTRIES = [
    {
        "cluster": "east",
        "namespace": "shop",
        "notebook": "latency_analysis",
        "status": "ok",
        "exit_code": 1,
        "verdict": {"status": "fail", "summary": "SLO missed"},
        "figures": {"p99_s": 0.412, "slo_met": False, "worst_deploy": "rev 7", "requests": 12000},
    },
    {
        "cluster": 'we"st',
        "namespace": "",
        "notebook": "capacity_planning",
        "status": "failed",
        "exit_code": 3,
        "verdict": None,
        "figures": {"nodes_needed": None},
    },
]

EXPECTED = """\
# HELP rknb_run_success 1 when the report run completed, 0 when it failed.
# TYPE rknb_run_success gauge
rknb_run_success{cluster="east",namespace="shop",notebook="latency_analysis"} 1
rknb_run_success{cluster="we\\"st",namespace="",notebook="capacity_planning"} 0
# HELP rknb_run_exit_code Exit code of the report run (see rknb --help).
# TYPE rknb_run_exit_code gauge
rknb_run_exit_code{cluster="east",namespace="shop",notebook="latency_analysis"} 1
rknb_run_exit_code{cluster="we\\"st",namespace="",notebook="capacity_planning"} 3
# HELP rknb_verdict_pass 1 when the report's verdict passed, 0 when it failed.
# TYPE rknb_verdict_pass gauge
rknb_verdict_pass{cluster="east",namespace="shop",notebook="latency_analysis"} 0
# HELP rknb_figure A headline figure of the report, unit in the figure's name.
# TYPE rknb_figure gauge
rknb_figure{cluster="east",namespace="shop",notebook="latency_analysis",figure="p99_s"} 0.412
rknb_figure{cluster="east",namespace="shop",notebook="latency_analysis",figure="requests"} 12000
rknb_figure{cluster="east",namespace="shop",notebook="latency_analysis",figure="slo_met"} 0
"""


def test_metrics_text_is_prometheus_exposition_with_escaped_labels():
    assert matrix.metrics_text(ENTRIES) == EXPECTED


def test_metrics_text_parses_with_the_prometheus_client_parser():
    parser = pytest.importorskip("prometheus_client.parser")
    families = {f.name: f for f in parser.text_string_to_metric_families(EXPECTED)}
    assert {s.labels["cluster"] for s in families["rknb_run_success"].samples} == {"east", 'we"st'}
    assert len(families["rknb_figure"].samples) == 3


def test_textfile_is_written_atomically_and_must_end_in_prom(tmp_path):
    path = matrix.write_textfile(tmp_path / "collector" / "rknb.prom", ENTRIES)
    assert path.read_text() == EXPECTED
    assert [p.name for p in path.parent.iterdir()] == ["rknb.prom"]
    with pytest.raises(ParameterError, match=r"\.prom"):
        matrix.write_textfile(tmp_path / "rknb.txt", ENTRIES)


class _Gateway(BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[str, str, bytes]]] = []
    answer = 200

    def do_PUT(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((self.path, self.headers["Content-Type"], body))
        self.send_response(self.answer)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def gateway():
    _Gateway.received = []
    _Gateway.answer = 200
    server = HTTPServer(("127.0.0.1", 0), _Gateway)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_push_replaces_the_jobs_group_on_the_pushgateway(gateway):
    url = f"http://127.0.0.1:{gateway.server_address[1]}/"
    matrix.push_metrics(url, ENTRIES, job="rknb nightly")
    ((path, content_type, body),) = _Gateway.received
    assert path == "/metrics/job/rknb%20nightly"
    assert content_type == "text/plain; version=0.0.4"
    assert body.decode() == EXPECTED


def test_push_failure_names_the_status(gateway):
    _Gateway.answer = 400
    url = f"http://127.0.0.1:{gateway.server_address[1]}"
    with pytest.raises(RunError, match="answered 400"):
        matrix.push_metrics(url, ENTRIES)


def test_push_refuses_credentials_in_the_url():
    with pytest.raises(ParameterError, match="user:password"):
        matrix.push_metrics("http://u:p@127.0.0.1:9091", ENTRIES)
