"""Drill settings that could only fail once a rollback is under way are refused up front."""

from __future__ import annotations

import pytest

from rknb import drill
from rknb.errors import ParameterError

ALLOW = ["fake/shop"]


@pytest.mark.parametrize(
    ("settings", "parameter"),
    [
        ({"mode": "rollback"}, "mode"),
        ({"probe_interval_s": -1.0}, "probe_interval_s"),
        ({"probe_interval_s": 0.0}, "probe_interval_s"),
        ({"timeout_s": -5.0}, "timeout_s"),
        ({"max_recovery_s": 0.0}, "max_recovery_s"),
        ({"max_probe_error_ratio": 1.5}, "max_probe_error_ratio"),
        ({"min_available": -2}, "min_available"),
        ({"probe_url": "ftp://example.org/health"}, "probe_url"),
        ({"probe_query": "sum(up)"}, "probe_query"),
        ({"probe_url": "http://127.0.0.1:9/", "probe_query": "up < 1"}, "probe_query"),
    ],
)
def test_a_bad_drill_setting_is_refused_naming_its_parameter(settings, parameter):
    with pytest.raises(ParameterError) as caught:
        drill.check_parameters(**{"mode": "execute", **settings})
    assert f"parameter {parameter!r}" in str(caught.value)


def test_good_settings_pass_in_every_mode():
    for mode in drill.MODES:
        drill.check_parameters(
            mode=mode, probe_query="sum(rate(errors[1m])) < 0.01", probe_interval_s=0.5
        )


def test_execute_with_a_negative_probe_interval_changes_nothing(cluster_with_history, tmp_path):
    fake, source, _ = cluster_with_history
    report_dir = tmp_path / "report"
    report_dir.mkdir()
    before = [r for r in fake.requests if r.verb == "patch"]
    with pytest.raises(ParameterError, match="probe_interval_s"):
        drill.execute(
            source,
            "shop",
            "web",
            execute=True,
            confirm="web",
            allowlist=ALLOW,
            report_dir=report_dir,
            interval_s=-1.0,
        )
    assert [r for r in fake.requests if r.verb == "patch"] == before
    assert list(report_dir.iterdir()) == []  # not even the starting state was written
