"""Faults during a drill: watches that end or expire, and what the drill leaves behind."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar
from urllib.parse import parse_qs

import pytest

from rknb import drill
from rknb.errors import ParameterError, SafetyError
from rknb.sources.manifests import ManifestSource

ALLOW = ["fake/shop"]
DATA = Path(__file__).resolve().parents[1] / "data" / "rollout"
CAUSE = "kubernetes.io/change-cause"


def _stored(fake):
    return next(o for o in fake.objects("Deployment") if o["metadata"]["name"] == "web")


def assert_whole(deployment, images_to_cause):
    """The Deployment is not paused and its template and annotations are one revision's."""
    assert not deployment["spec"].get("paused")
    images = [c["image"] for c in deployment["spec"]["template"]["spec"]["containers"]]
    assert len(images) == 1 and images[0] in images_to_cause
    assert deployment["metadata"].get("annotations", {}).get(CAUSE) == images_to_cause[images[0]]


REVISIONS = {"example.org/web:1": None, "example.org/web:2": "release 2"}


def _interrupt_when_watched(fake, kind, action):
    """Start a thread that calls ``action(kind)`` as soon as a watch of ``kind`` is open."""

    def wait_then_act():
        deadline = time.monotonic() + 10
        while fake.open_watches(kind) == 0 and time.monotonic() < deadline:
            time.sleep(0.002)
        action(kind)

    thread = threading.Thread(target=wait_then_act, daemon=True)
    thread.start()
    return thread


def _drill(source, tmp_path, **extra):
    return drill.execute(
        source,
        "shop",
        "web",
        execute=True,
        confirm="web",
        allowlist=ALLOW,
        report_dir=tmp_path,
        interval_s=0.05,
        timeout_s=15,
        **extra,
    )


def _lists(fake, plural, after):
    return [r for r in fake.requests[after:] if r.verb == "list" and r.path.endswith(plural)]


def test_a_watch_answering_410_mid_drill_is_resumed_from_a_fresh_list(
    cluster_with_history, tmp_path
):
    fake, source, _ = cluster_with_history
    before = len(fake.requests)
    thread = _interrupt_when_watched(fake, "ReplicaSet", fake.expire_open_watches)
    result = _drill(source, tmp_path)
    thread.join(timeout=5)
    assert result.outcome == "complete", result.result
    # The drill's own list, then the relist after the 410.
    assert len(_lists(fake, "/replicasets", before)) >= 2
    codes = [r.code for r in fake.requests[before:] if r.verb == "watch"]
    assert 200 in codes
    # The events after the relist still reached the timeline: the target ends fully available.
    last = {row["replicaset"]: row for row in result.replicaset_timeline}
    assert sorted((r["revision"], r["available"]) for r in last.values()) == [(2, 0), (3, 3)]
    assert_whole(_stored(fake), REVISIONS)
    assert result.min_available_observed == 3


def test_watches_that_end_mid_drill_are_restarted_from_a_fresh_list(cluster_with_history, tmp_path):
    fake, source, _ = cluster_with_history
    before = len(fake.requests)
    threads = [
        _interrupt_when_watched(fake, kind, fake.end_open_watches)
        for kind in ("Deployment", "ReplicaSet", "Pod")
    ]
    result = _drill(source, tmp_path)
    for thread in threads:
        thread.join(timeout=5)
    assert result.outcome == "complete", result.result
    assert result.watch_restarts >= 3
    for plural in ("/deployments", "/replicasets", "/pods"):
        assert len(_lists(fake, plural, before)) >= 2, plural
    assert_whole(_stored(fake), REVISIONS)


def test_a_conflict_leaves_the_other_users_change_and_no_half_patch(cluster_with_history, tmp_path):
    fake, source, _ = cluster_with_history

    def someone_annotates(_request):
        d = _stored(fake)
        d["metadata"]["annotations"]["owner"] = "someone else"
        fake.update(d)

    fake.before_next("patch", someone_annotates)
    result = _drill(source, tmp_path)
    assert result.outcome == "conflict" and result.restore_commands == []
    stored = _stored(fake)
    assert stored["metadata"]["annotations"]["owner"] == "someone else"
    assert_whole(stored, REVISIONS)
    # The starting state was written before the refused patch.
    assert (tmp_path / "drill-starting-state.json").exists()


def test_a_rollout_past_its_deadline_captures_the_state_and_prints_the_restore(
    fake_kube, tmp_path, caplog
):
    from fakekube.controller import DeploymentController, PodTiming, wait_rolled_out
    from fakekube.samples import web_deployment

    from rknb.sources.cluster import MERGE_PATCH, ClusterSource

    timing = PodTiming(default_ready_s=0.05, by_image={"example.org/web:broken": None})
    controller = DeploymentController(fake_kube, tick_s=0.02, timing=timing).start()
    source = ClusterSource("fake", kubeconfig=str(fake_kube.kubeconfig))
    try:
        fake_kube.add(web_deployment("example.org/web:broken", deadline_s=1))
        while not fake_kube.objects("ReplicaSet"):
            time.sleep(0.02)
        patch = {
            "metadata": {"annotations": {CAUSE: "fix"}},
            "spec": {
                "template": {
                    "spec": {"containers": [{"name": "web", "image": "example.org/web:2"}]}
                }
            },
        }
        source.patch("Deployment", "shop", "web", patch, patch_type=MERGE_PATCH)
        wait_rolled_out(fake_kube)
        with caplog.at_level("WARNING", logger="rknb.drill"):
            result = _drill(source, tmp_path)
    finally:
        controller.stop()
        source.close()
    assert result.outcome == "timeout"
    assert "exceeded its progress deadline" in result.result
    assert not result.passed and result.recovery_s is None
    undo = "kubectl rollout undo deployment/web -n shop --to-revision=2"
    assert result.restore_commands[0] == undo
    assert undo in caplog.text
    final = json.loads((tmp_path / result.final_state).read_text())
    progressing = next(
        c for c in final["deployment"]["status"]["conditions"] if c["type"] == "Progressing"
    )
    assert progressing["reason"] == "ProgressDeadlineExceeded"
    # Rolled back whole to the broken revision (template and its annotations), not paused.
    assert_whole(_stored(fake_kube), {"example.org/web:broken": None})
    # maxUnavailable 0: the old pods stay while the broken ones never become ready.
    assert result.min_available_observed == 3
    assert drill.objectives_frame(result)["outcome"].tolist() == ["fail", "pass"]
    report = drill.report_markdown(result)
    assert report.startswith("**FAIL**: a rollback of Deployment `web` in namespace `shop` on")
    assert "context `fake`, from revision 2 to revision 1" in report
    assert f"restore with `{undo}`" in report


def test_scope_refusals_name_the_parameter():
    assert drill.check_scope("kind-a", "shop", "kind-a, kind-b", "shop") == ["kind-a/shop"]
    with pytest.raises(SafetyError, match="'allowed_contexts' \\(kind-b\\) does not include"):
        drill.check_scope("kind-a", "shop", "kind-b", "shop")
    with pytest.raises(SafetyError, match="'allowed_namespaces' \\(empty\\)"):
        drill.check_scope("kind-a", "shop", "kind-a", "")


def test_modes_other_than_plan_refuse_a_source_that_is_no_cluster(seed_deployment, tmp_path):
    path = tmp_path / "d.yaml"
    path.write_text(json.dumps(seed_deployment))
    with pytest.raises(ParameterError, match="'mode': 'dry-run' talks to a Kubernetes API"):
        drill.cluster_for(ManifestSource(str(path)), "dry-run")
    with pytest.raises(ParameterError, match="'mode': 'Execute' is not one of plan, dry-run"):
        drill.cluster_for(ManifestSource(str(path)), "Execute")


def test_a_probe_query_must_state_its_healthy_bound():
    assert drill.parse_bound('sum(rate(x{code=~"5.."}[1m])) / sum(rate(x[1m])) <= 0.01') == (
        'sum(rate(x{code=~"5.."}[1m])) / sum(rate(x[1m]))',
        "<=",
        0.01,
    )
    assert drill.parse_bound("up > 2e0") == ("up", ">", 2.0)
    with pytest.raises(ParameterError, match=r"'probe_query'.*does not end with a bound"):
        drill.parse_bound("sum(up)")


class _Prometheus(BaseHTTPRequestHandler):
    answers: ClassVar[list[dict]] = []
    queries: ClassVar[list[str]] = []
    headers_seen: ClassVar[list[dict[str, str]]] = []

    def do_POST(self):
        form = parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
        self.queries.append(form["query"][0])
        self.headers_seen.append(dict(self.headers))
        body = json.dumps(self.answers.pop(0)).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        return


def _vector(*values):
    result = [{"metric": {"i": str(i)}, "value": [1.0, v]} for i, v in enumerate(values)]
    return {"status": "success", "data": {"resultType": "vector", "result": result}}


def test_the_prometheus_probe_counts_an_error_when_the_value_breaks_the_bound():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Prometheus)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        _Prometheus.answers[:] = [
            _vector("0.001"),
            _vector("0.001", "0.5"),  # one series breaks the bound
            _vector(),  # no data is not success
            _vector("NaN"),
            {"status": "error", "error": "bad"},
            {"status": "success", "data": {"resultType": "scalar", "result": [1.0, "0.01"]}},
        ]
        probe = drill.prometheus_probe(
            f"http://127.0.0.1:{server.server_address[1]}", "error_ratio < 0.01"
        )
        assert [probe() for _ in range(6)] == [True, False, False, False, False, False]
        assert _Prometheus.queries[0] == "error_ratio"
    finally:
        server.shutdown()
        server.server_close()
    with pytest.raises(ParameterError, match=r"'prometheus'.*needs a Prometheus URL"):
        drill.prometheus_probe("demo", "up > 0")


def test_the_prometheus_probe_sends_a_configured_endpoints_token_and_tenant(tmp_path, monkeypatch):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Prometheus)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    config = tmp_path / "config.yaml"
    config.write_text(
        "prometheus:\n"
        "  prod:\n"
        f"    url: {url}\n"
        "    bearer_token_env: PROBE_TOKEN\n"
        "    headers: {X-Scope-OrgID: team-a}\n"
        "clusters:\n"
        "  prod-eu: prod\n"
    )
    monkeypatch.setenv("RKNB_CONFIG", str(config))
    monkeypatch.setenv("PROBE_TOKEN", "t0ken-value")
    try:
        _Prometheus.headers_seen.clear()
        _Prometheus.answers[:] = [_vector("0.001"), _vector("0.001"), _vector("0.001")]
        # By the endpoint's name, by 'config' for the drill's cluster, and by its URL.
        probes = [
            drill.prometheus_probe("prod", "error_ratio < 0.01"),
            drill.prometheus_probe("config", "error_ratio < 0.01", cluster="prod-eu"),
            drill.prometheus_probe(url, "error_ratio < 0.01"),
        ]
        assert [probe() for probe in probes] == [True, True, True]
        for seen in _Prometheus.headers_seen:
            assert seen["Authorization"] == "Bearer t0ken-value"
            assert seen["X-Scope-OrgID"] == "team-a"
        # A server that stops answering is one failed probe, not a retry loop or a raise.
        server.shutdown()
        server.server_close()
        started = time.monotonic()
        assert probes[0]() is False
        assert time.monotonic() - started < 2.0
    finally:
        server.shutdown()
        server.server_close()
    with pytest.raises(ParameterError, match=r"'prometheus'.*'staging'") as refused:
        drill.prometheus_probe("staging", "up > 0")
    assert "t0ken" not in str(refused.value)


def test_the_starting_state_redacts_secret_env_values_also_inside_last_applied(tmp_path):
    container = {"name": "web", "env": [{"name": "API_TOKEN", "value": "s3cr3t-value"}]}
    template = {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [container]}}
    applied = {"kind": "Deployment", "spec": {"template": template}}
    deployment = {
        "kind": "Deployment",
        "metadata": {
            "name": "web",
            "namespace": "shop",
            "uid": "u1",
            "annotations": {
                "kubectl.kubernetes.io/last-applied-configuration": json.dumps(applied)
            },
        },
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}}, "template": template},
    }
    path = drill.write_starting_state(tmp_path, deployment, [], context="kind-a")
    text = path.read_text()
    assert "s3cr3t-value" not in text
    assert text.count("<redacted>") == 2
    assert json.loads(text)["context"] == "kind-a"
