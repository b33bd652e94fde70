from __future__ import annotations

import pytest

scenario = pytest.importorskip("rknb.scenario")
if not hasattr(scenario, "build_scenario"):
    pytest.skip("rknb.scenario.build_scenario is not there yet", allow_module_level=True)

from rknb.sources import open_demo, open_metrics, open_objects  # noqa: E402


def test_demo_sources_share_the_scenario_end_as_reference_time():
    metrics, objects = open_demo()
    assert metrics.reference_time == scenario.END
    assert objects.reference_time == scenario.END


def test_demo_objects_hold_the_seed_deployment_without_secret_values():
    objects = open_objects("demo")
    (deployment,) = [
        d
        for d in objects.list("Deployment", "reasonkit")
        if d["metadata"]["name"] == "reasonkit-pro-mcp"
    ]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"]["requests"] == {"cpu": "250m", "memory": "256Mi"}
    for secret in objects.list("Secret"):
        assert "data" not in secret and "stringData" not in secret


def test_demo_seed_spec_names_the_seed():
    assert "seed 3" in open_metrics("demo:3").description
