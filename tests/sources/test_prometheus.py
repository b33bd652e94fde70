from __future__ import annotations

import logging
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest
from promstub import PromStub, error, matrix

from rknb.catalog import Selector
from rknb.errors import ParameterError, QueryError
from rknb.sources.base import Window
from rknb.sources.prometheus import MAX_POINTS_PER_SERIES, PrometheusSource

START = datetime(2024, 1, 1, tzinfo=UTC)  # 1704067200
SELECTOR = Selector(namespace="reasonkit", workload="reasonkit-pro-mcp")


@pytest.fixture
def stub_factory():
    stubs = []

    def make(answer):
        stub = PromStub(answer).start()
        stubs.append(stub)
        return stub

    yield make
    for stub in stubs:
        stub.stop()


def source_for(stub, **kwargs) -> PrometheusSource:
    kwargs.setdefault("backoff_s", 0.001)
    return PrometheusSource(stub.url, **kwargs)


def grid_answer(request):
    # Every step of the requested (closed) range, as Prometheus evaluates it; value = time.
    start, end, step = (float(request.form[k]) for k in ("start", "end", "step"))
    if (end - start) / step > MAX_POINTS_PER_SERIES:
        return error(400, "bad_data", "exceeded maximum resolution of 11,000 points per timeseries")
    times = np.arange(start, end + step / 2, step)
    return matrix([({"pod": "p-1"}, [(t, t) for t in times])])


def test_503_keeps_prometheus_error_text_after_retries(stub_factory):
    stub = stub_factory(lambda r: error(503, "timeout", "query timed out in expression evaluation"))
    source = source_for(stub, max_retries=2)
    window = Window(START, START.replace(hour=1), 60)
    with pytest.raises(QueryError) as caught:
        source.query_range("container_cpu_cores", SELECTOR, window)
    assert caught.value.status == 503
    assert "query timed out in expression evaluation" in str(caught.value)
    assert caught.value.query.startswith("sum by (namespace, pod, container) (rate(")
    assert len(stub.requests) == 3  # the first try and two retries


def test_5xx_then_success_is_retried(stub_factory):
    answers = [error(502, "unavailable", "bad gateway"), None]

    def answer(request):
        first = answers.pop(0)
        return first if first is not None else grid_answer(request)

    stub = stub_factory(answer)
    frame = source_for(stub).query_range("request_rate", SELECTOR, Window(START, START, 30))
    assert len(stub.requests) == 2
    assert frame["value"].tolist() == [1704067200.0]


def test_400_bad_data_is_not_retried(stub_factory):
    stub = stub_factory(lambda r: error(400, "bad_data", 'parse error at char 5: unexpected "}"'))
    with pytest.raises(QueryError) as caught:
        source_for(stub, max_retries=3).query_instant("request_rate", SELECTOR, START)
    assert caught.value.status == 400
    assert 'bad_data: parse error at char 5: unexpected "}"' in str(caught.value)
    assert len(stub.requests) == 1


def test_long_range_is_chunked_under_the_point_limit_without_duplicates(stub_factory):
    stub = stub_factory(grid_answer)
    steps = 25_000  # 25,001 points at 60 s: three chunks of at most 11,000 steps
    end = datetime.fromtimestamp(START.timestamp() + steps * 60, UTC)

    frame = source_for(stub).query_range("request_rate", SELECTOR, Window(START, end, 60))

    assert len(stub.requests) == 3
    for request in stub.requests:
        span = float(request.form["end"]) - float(request.form["start"])
        assert span / float(request.form["step"]) <= MAX_POINTS_PER_SERIES
    # Adjacent chunks overlap at their boundary; each boundary sample is kept once.
    assert stub.requests[1].form["start"] == stub.requests[0].form["end"]
    assert len(frame) == steps + 1
    assert frame["timestamp"].is_monotonic_increasing and frame["timestamp"].is_unique
    assert frame["value"].iloc[-1] == START.timestamp() + steps * 60


def test_queries_are_post_forms_with_unix_seconds(stub_factory):
    stub = stub_factory(grid_answer)
    end = START.replace(minute=10)
    source_for(stub).query_range("request_rate", SELECTOR, Window(START, end, 30))
    (request,) = stub.requests
    assert request.method == "POST" and request.path == "/api/v1/query_range"
    assert request.form["start"] == "1704067200"
    assert request.form["end"] == "1704067800"
    assert request.form["step"] == "30"
    assert request.form["query"] == (
        'sum by (status) (rate(mcp_requests_total{namespace="reasonkit", '
        'pod=~"reasonkit-pro-mcp-[a-z0-9]{5,10}-[a-z0-9]{5}"}[5m]))'
    )


def test_frame_has_utc_timestamps_label_columns_and_sorted_series(stub_factory):
    answer = matrix(
        [
            ({"status": "ok"}, [(1704067200, 2.0), (1704067230, 3.0)]),
            ({"status": "error"}, [(1704067230, 0.5)]),
        ]
    )
    stub = stub_factory(lambda r: answer)
    window = Window(START, START.replace(second=30), 30)
    frame = source_for(stub).query_range("request_rate", SELECTOR, window)
    assert list(frame.columns) == ["timestamp", "status", "value"]
    assert str(frame["timestamp"].dtype) == "datetime64[ns, UTC]"
    assert frame["value"].dtype == np.float64
    assert frame["status"].tolist() == ["error", "ok", "ok"]
    assert frame["value"].tolist() == [0.5, 2.0, 3.0]
    assert frame["timestamp"].iloc[0] == pd.Timestamp("2024-01-01T00:00:30Z")


def test_instant_query_sends_time_and_parses_a_vector(stub_factory):
    body = {
        "status": "success",
        "data": {
            "resultType": "vector",
            "result": [{"metric": {"le": "0.5"}, "value": [1704067200, "7"]}],
        },
    }
    stub = stub_factory(lambda r: (200, body))
    frame = source_for(stub).query_instant(
        "request_duration_bucket_increase", SELECTOR, START, window_s=14 * 86400
    )
    (request,) = stub.requests
    assert request.path == "/api/v1/query" and request.form["time"] == "1704067200"
    assert "[2w]" in request.form["query"]
    assert frame["le"].tolist() == ["0.5"] and frame["value"].tolist() == [7.0]


def test_empty_answer_is_an_empty_frame(stub_factory):
    stub = stub_factory(lambda r: matrix([]))
    frame = source_for(stub).query_range("request_rate", SELECTOR, Window(START, START, 30))
    assert frame.empty and list(frame.columns) == ["timestamp", "value"]


def test_url_with_user_and_password_is_refused():
    with pytest.raises(ParameterError) as caught:
        PrometheusSource("https://alice:s3cret@prometheus.example:9090")
    assert "s3cret" not in str(caught.value)
    assert "bearer_token_file" in str(caught.value)


def test_token_env_sets_authorization_and_loopback_asks_for_identity(
    stub_factory, monkeypatch, caplog
):
    monkeypatch.setenv("PROM_TEST_TOKEN", "tok-123456")
    stub = stub_factory(grid_answer)
    source = source_for(stub, bearer_token_env="PROM_TEST_TOKEN")
    with caplog.at_level(logging.DEBUG, logger="rknb"):
        source.query_range("request_rate", SELECTOR, Window(START, START, 30))
    (request,) = stub.requests
    assert request.headers["authorization"] == "Bearer tok-123456"
    assert request.headers["accept-encoding"] == "identity"
    assert all("tok-123456" not in r.getMessage() for r in caplog.records)


def test_description_drops_query_string_and_trailing_slash():
    source = PrometheusSource("https://prom.example:9090/prefix/?tenant=a")
    assert source.description == "https://prom.example:9090/prefix"
    assert source.reference_time is None


def test_connection_refused_is_a_query_error_after_retries():
    source = PrometheusSource("http://127.0.0.1:9", max_retries=1, backoff_s=0.001, timeout_s=2)
    with pytest.raises(QueryError) as caught:
        source.query_instant("request_rate", SELECTOR, START)
    assert caught.value.status is None
    assert "ConnectionError" in str(caught.value)


def test_parsed_frame_follows_the_store_sources_conventions():
    from rknb.sources.prometheus import parse_matrix
    from rknb.tsdb import series_frame

    result = [
        {"metric": {"b": "2"}, "values": [[10.5, "1"], [11, "NaN"], [12, "3"]]},
        {"metric": {"a": "x", "b": "1"}, "values": [[11, "4"]]},
    ]
    expected = series_frame(
        [
            ({"b": "2"}, np.array([1.0, np.nan, 3.0])),
            ({"a": "x", "b": "1"}, np.array([np.nan, 4.0, np.nan])),
        ],
        np.array([10.5, 11.0, 12.0]),
    )
    frame = parse_matrix(result)
    pd.testing.assert_frame_equal(frame, expected)
    # Sorted by labels: ("", "2") sorts before ("x", "1"); the NaN sample is dropped.
    assert frame["a"].tolist() == ["", "", "x"]
