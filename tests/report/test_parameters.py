from __future__ import annotations

import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from rknb import report
from rknb.errors import ParameterError, RunError

DATA = Path(__file__).parents[1] / "data" / "report"


@pytest.fixture(scope="module")
def declared() -> dict[str, report.Param]:
    return report.inspect_parameters(DATA / "ok.ipynb")


def test_inspect_reads_types_defaults_and_help_in_order(declared):
    assert list(declared) == ["label", "replicas", "ratio", "passed", "version", "report_time"]
    assert declared["replicas"] == report.Param("replicas", "int", 3, "replica count to report")
    assert declared["version"].default == "1.20"
    assert declared["passed"].default is True


def test_untyped_parameter_is_a_notebook_bug():
    with pytest.raises(ParameterError, match=r"'window'.*no supported type annotation"):
        report.inspect_parameters(DATA / "untyped.ipynb")


def test_str_parameter_keeps_version_text_exactly(declared):
    assert report.coerce_parameters(declared, {"version": "1.20"}) == {"version": "1.20"}
    assert report.coerce_parameters(declared, {"label": " 007 "}) == {"label": " 007 "}


@pytest.mark.parametrize(
    ("text", "expected"),
    [("true", True), ("Yes", True), ("1", True), ("FALSE", False), ("no", False), ("0", False)],
)
def test_bool_parses_the_six_spellings(declared, text, expected):
    assert report.coerce_parameters(declared, {"passed": text})["passed"] is expected


@pytest.mark.parametrize("text", ["on", "y", "2", "", "True!"])
def test_bool_rejects_other_words(declared, text):
    with pytest.raises(ParameterError, match=r"'passed'.*expected a boolean"):
        report.coerce_parameters(declared, {"passed": text})


@pytest.mark.parametrize("text", ["3.0", "1_000", "0123", "3e2", "three", ""])
def test_int_refuses_what_papermill_would_guess(declared, text):
    with pytest.raises(ParameterError) as caught:
        report.coerce_parameters(declared, {"replicas": text})
    message = str(caught.value)
    assert "'replicas'" in message and repr(text) in message and "(int)" in message


def test_int_and_float_parse_plain_numbers(declared):
    got = report.coerce_parameters(declared, {"replicas": "-12", "ratio": "1e-3"})
    assert got == {"replicas": -12, "ratio": 0.001}
    assert isinstance(report.coerce_parameters(declared, {"ratio": "2"})["ratio"], float)


@pytest.mark.parametrize("text", ["nan", "inf", "1,5", "0x10"])
def test_float_refuses_non_decimal_text(declared, text):
    with pytest.raises(ParameterError, match=r"'ratio'.*expected a number"):
        report.coerce_parameters(declared, {"ratio": text})


def test_typed_yaml_values_must_already_have_the_declared_type(declared):
    assert report.coerce_parameters(declared, {"replicas": 4, "ratio": 1}) == {
        "replicas": 4,
        "ratio": 1.0,
    }
    with pytest.raises(ParameterError, match="quote it"):
        report.coerce_parameters(declared, {"version": 1.2})
    with pytest.raises(ParameterError, match="'replicas'"):
        report.coerce_parameters(declared, {"replicas": True})


def test_unknown_parameter_names_it_suggests_and_lists_known(declared):
    with pytest.raises(ParameterError) as caught:
        report.coerce_parameters(declared, {"replica": "3"})
    message = str(caught.value)
    assert "'replica'" in message
    assert "did you mean 'replicas'?" in message
    assert "label, replicas, ratio, passed, version, report_time" in message


def test_bad_parameter_fails_fast_without_starting_a_process(tmp_path, monkeypatch):
    def no_process(*args, **kwargs):
        raise AssertionError("a process was started")

    monkeypatch.setattr(subprocess, "Popen", no_process)
    started = time.monotonic()
    with pytest.raises(ParameterError):
        report.run_notebook(DATA / "ok.ipynb", {"replicas": "many"}, output_dir=tmp_path)
    assert time.monotonic() - started < 2
    assert list(tmp_path.iterdir()) == []


def test_unknown_notebook_name_is_usage_error():
    with pytest.raises(RunError) as caught:
        report.resolve_notebook("no_such_notebook")
    assert caught.value.exit_code == report.EXIT_USAGE


def test_run_id_is_12_hex_of_sha256_over_sorted_inputs():
    a = report.run_id_of("ok", {"b": 1, "a": "x"}, "2026-11-30T12:00:00Z")
    b = report.run_id_of("ok", {"a": "x", "b": 1}, "2026-11-30T12:00:00Z")
    assert a == b and len(a) == 12 and int(a, 16) >= 0
    # sha256 of the canonical JSON, computed by hand with hashlib
    import hashlib

    text = '{"notebook":"ok","parameters":{"a":"x","b":1},"report_time":"2026-11-30T12:00:00Z"}'
    assert a == hashlib.sha256(text.encode()).hexdigest()[:12]
    assert report.run_id_of("ok", {"a": "x", "b": 1}, "") != a


def _declare(*names: str) -> dict[str, report.Param]:
    return {n: report.Param(n, "str", "", "") for n in names}


def test_given_report_time_is_normalized_to_utc_z():
    declared = _declare("report_time")
    got = report.resolve_report_time(
        declared, {"report_time": "2026-11-30T13:00:00+01:00"}, notebook_dir=Path(".")
    )
    assert got == "2026-11-30T12:00:00Z"


def test_relative_report_time_is_refused():
    with pytest.raises(ParameterError, match="relative"):
        report.resolve_report_time(
            _declare("report_time"), {"report_time": "now-1d"}, notebook_dir=Path(".")
        )


def test_offline_sources_take_the_sources_reference_time(monkeypatch):
    from rknb import sources

    seen = []

    def reference_time_of(spec):
        seen.append(spec)
        return None if spec == "demo" else datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)

    monkeypatch.setattr(sources, "reference_time_of", reference_time_of, raising=False)
    declared = _declare("prometheus", "cluster", "report_time")
    got = report.resolve_report_time(
        declared,
        {"prometheus": "demo", "cluster": str(DATA), "report_time": ""},
        notebook_dir=DATA,
    )
    assert got == "2026-01-02T03:04:05Z"
    assert seen == ["demo", str(DATA)]


def test_a_live_source_takes_the_wall_clock():
    declared = _declare("prometheus", "cluster", "report_time")
    now = datetime(2026, 12, 4, 10, 0, 0, 500000, tzinfo=UTC)
    got = report.resolve_report_time(
        declared,
        {"prometheus": "https://prom.example:9090", "cluster": "demo", "report_time": ""},
        notebook_dir=DATA,
        now=now,
    )
    assert got == "2026-12-04T10:00:00Z"


@pytest.mark.parametrize(
    "value",
    [
        "https://admin:hunter3@prometheus.example:9090/",
        "http://127.0.0.1:9090/?access_token=QSLEAK1",
        "token=abc123",
    ],
)
def test_a_credential_in_a_parameter_is_refused_without_echoing_it(declared, value):
    with pytest.raises(ParameterError) as caught:
        report.coerce_parameters(declared, {"label": value})
    message = str(caught.value)
    assert "'label'" in message and "credential" in message
    assert "hunter3" not in message and "QSLEAK1" not in message and "abc123" not in message


def test_a_credential_parameter_writes_no_report(tmp_path, monkeypatch):
    monkeypatch.setattr(subprocess, "Popen", lambda *a, **k: pytest.fail("a process was started"))
    with pytest.raises(ParameterError):
        report.run_notebook(
            DATA / "ok.ipynb", {"label": "https://u:pw1234@h.example/"}, output_dir=tmp_path
        )
    assert list(tmp_path.iterdir()) == []


def test_plain_urls_and_promql_are_not_taken_for_credentials(declared):
    for value in ("https://prometheus.example:9090/", 'sum(rate(x{job="api"}[5m])) < 0.01'):
        assert report.coerce_parameters(declared, {"label": value}) == {"label": value}
