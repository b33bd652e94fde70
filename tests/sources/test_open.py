from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from rknb.errors import ParameterError
from rknb.sources import (
    ClusterSource,
    ManifestSource,
    PrometheusSource,
    open_metrics,
    open_objects,
    reference_time_of,
)
from rknb.sources.bundle import BundleMetricsSource, BundleObjectSource, BundleRecorder
from rknb.sources.objects import ObjectListSource

MANIFESTS = Path(__file__).resolve().parents[1] / "data" / "sources" / "manifests" / "mixed"
WHEN = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


@pytest.fixture
def bundle(tmp_path) -> Path:
    objects = ObjectListSource([], description="empty", reference_time=WHEN)
    BundleRecorder(None, objects, tmp_path / "b")
    return tmp_path / "b"


def test_url_opens_a_prometheus_source():
    source = open_metrics("http://127.0.0.1:9090")
    assert isinstance(source, PrometheusSource)


def test_bundle_folder_opens_replay_sources(bundle):
    assert isinstance(open_metrics(str(bundle)), BundleMetricsSource)
    assert isinstance(open_objects(str(bundle)), BundleObjectSource)


def test_manifest_folder_opens_a_manifest_source():
    assert isinstance(open_objects(str(MANIFESTS)), ManifestSource)


def test_context_name_opens_a_cluster_source(fake_kube):
    source = open_objects("fake", kubeconfig=str(fake_kube.kubeconfig), namespace="shop")
    assert isinstance(source, ClusterSource)
    assert source.namespace == "shop"


def test_unknown_context_lists_the_known_ones(fake_kube):
    with pytest.raises(ParameterError) as caught:
        open_objects("prod-eu", kubeconfig=str(fake_kube.kubeconfig))
    assert "fake" in str(caught.value)


def test_bad_specs_are_parameter_errors(tmp_path):
    with pytest.raises(ParameterError):
        open_metrics("prometheus.example:9090")
    with pytest.raises(ParameterError):
        open_metrics(str(tmp_path))  # a folder without bundle.json
    with pytest.raises(ParameterError):
        open_metrics("demo:seven")
    with pytest.raises(ParameterError):
        open_objects("https://kube.example:6443")
    with pytest.raises(ParameterError):
        open_objects("./missing/manifests.yaml")
    with pytest.raises(ParameterError):
        open_objects("")


def test_context_name_without_any_kubeconfig_is_a_parameter_error():
    # The suite's autouse fixture points KUBECONFIG at a file that does not exist.
    with pytest.raises(ParameterError):
        open_objects("some-context")


def test_reference_time_of_bundle_and_live_specs(bundle):
    assert reference_time_of(str(bundle)) == WHEN
    assert reference_time_of("https://prom.example") is None
    assert reference_time_of(str(MANIFESTS)) is None
    assert reference_time_of("in-cluster") is None


def test_reference_time_of_demo_is_the_scenario_end():
    scenario = pytest.importorskip("rknb.scenario")
    if not hasattr(scenario, "END"):
        pytest.skip("rknb.scenario does not define END yet")
    assert reference_time_of("demo") == scenario.END
    assert reference_time_of("demo:3") == scenario.END


def test_the_demo_without_growth_is_a_source_spec() -> None:
    from rknb.sources import open_metrics, open_objects

    flat = open_metrics("demo:7:nogrowth")
    assert flat.description == "demo scenario (seed 7), no growth"
    assert open_metrics("demo:nogrowth").description.endswith("no growth")
    assert open_objects("demo:7:nogrowth").description == "demo scenario (seed 7), no growth"
    with pytest.raises(ParameterError, match="demo:SEED:nogrowth"):
        open_metrics("demo:7:flat")
