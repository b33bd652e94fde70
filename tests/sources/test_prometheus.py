from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from promstub import PromStub, error, matrix

from rknb.catalog import Selector
from rknb.errors import ParameterError, QueryError
from rknb.promql import native_histogram_quantile
from rknb.sources.base import Window
from rknb.sources.prometheus import (
    MAX_POINTS_PER_SERIES,
    PrometheusSource,
    parse_histogram_matrix,
    parse_histogram_vector,
)

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
    # Chunks are fetched concurrently, so the stub sees them in any order.
    requests = sorted(stub.requests, key=lambda r: float(r.form["start"]))
    for request in requests:
        span = float(request.form["end"]) - float(request.form["start"])
        assert span / float(request.form["step"]) <= MAX_POINTS_PER_SERIES
    # Adjacent chunks overlap at their boundary; each boundary sample is kept once.
    assert requests[1].form["start"] == requests[0].form["end"]
    assert requests[0].form["end"] == str(int(START.timestamp()) + 11_000 * 60)
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


def test_empty_answer_is_an_empty_frame_with_the_query_labels_and_a_warning(stub_factory, caplog):
    stub = stub_factory(lambda r: matrix([]))
    with caplog.at_level(logging.WARNING, logger="rknb.sources.prometheus"):
        frame = source_for(stub).query_range("request_rate", SELECTOR, Window(START, START, 30))
    # request_rate sums by status: the column exists even with no series.
    assert frame.empty and list(frame.columns) == ["timestamp", "status", "value"]
    assert str(frame["timestamp"].dtype) == "datetime64[ns, UTC]"
    assert "request_rate returned no samples for reasonkit/reasonkit-pro-mcp" in caplog.text


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
    # Label columns are categorical (a code per sample, not a string); the values are the same.
    assert all(isinstance(frame[c].dtype, pd.CategoricalDtype) for c in ("a", "b"))
    assert frame["b"].cat.categories.tolist() == ["1", "2"]
    pd.testing.assert_frame_equal(frame.astype({"a": object, "b": object}), expected)
    # Sorted by labels: ("", "2") sorts before ("x", "1"); the NaN sample is dropped.
    assert frame["a"].tolist() == ["", "", "x"]


def _vector(r):
    return (200, {"status": "success", "data": {"resultType": "vector", "result": []}})


def test_relative_instant_counts_from_report_time(stub_factory):
    stub = stub_factory(_vector)
    source = source_for(stub, report_time=START)
    source.query_instant("container_restarts", SELECTOR, "now-7d")
    source.query_instant("container_restarts", SELECTOR, "2024-01-01T02:00:00+02:00")
    sent = [r.form["time"] for r in stub.requests]
    assert sent == [str(1704067200 - 7 * 86400), "1704067200"]  # +02:00 is midnight UTC


def test_naive_datetime_is_refused_rather_than_read_as_local_time(stub_factory):
    stub = stub_factory(_vector)
    with pytest.raises(ParameterError, match="no UTC offset"):
        source_for(stub).query_instant("container_restarts", SELECTOR, datetime(2024, 1, 1))
    assert stub.requests == []


def test_more_series_than_the_limit_fails_with_advice_to_aggregate(stub_factory):
    many = [({"pod": f"p-{i}"}, [(1704067200.0, 1.0)]) for i in range(6)]
    stub = stub_factory(lambda r: matrix(many))
    source = source_for(stub, max_series=5)
    with pytest.raises(QueryError, match=r"6 series, over the limit of 5; aggregate"):
        source.query_range("request_rate", SELECTOR, Window(START, START, 30))


def test_a_failing_chunk_fails_the_whole_range_query(stub_factory):
    def answer(request):
        if float(request.form["start"]) > START.timestamp():
            return error(422, "execution", "query processing would load too many samples")
        return grid_answer(request)

    stub = stub_factory(answer)
    end = datetime.fromtimestamp(START.timestamp() + 25_000 * 60, UTC)
    with pytest.raises(QueryError, match="too many samples") as caught:
        source_for(stub).query_range("request_rate", SELECTOR, Window(START, end, 60))
    assert caught.value.status == 422
    # 422 is not retried: no chunk is asked for twice. (Chunks still queued when the
    # failure arrives may never be sent, so the count of requests is not fixed.)
    starts = [request.form["start"] for request in stub.requests]
    assert len(starts) == len(set(starts))
    assert any(float(start) > START.timestamp() for start in starts)


BODY = (
    b'{"status":"success","data":{"resultType":"matrix","result":['
    b'{"metric":{"pod":"a]],\\"values\\":["},"values":[[1704067200,"NaN"],[1704067215.5,"+Inf"]]},'
    b'{"metric":{},"values":[[1704067200,"-Inf"],[1704067230,"1e-3"]]}]}}'
)


def test_raw_matrix_body_parses_to_arrays_with_nan_and_infinities():
    from rknb.sources.prometheus import parse_matrix_body

    labels, pairs = parse_matrix_body(BODY)
    # The escaped quotes inside a label value do not end the metric object.
    assert labels == [{"pod": 'a]],"values":['}, {}]
    assert pairs[0][0, 0] == 1704067200 and np.isnan(pairs[0][0, 1])
    assert pairs[0][1].tolist() == [1704067215.5, float("inf")]
    assert pairs[1].tolist() == [[1704067200, float("-inf")], [1704067230, 0.001]]


def test_raw_matrix_body_with_warnings_or_an_odd_layout_falls_back_to_json():
    from rknb.sources.prometheus import parse_matrix_body

    assert parse_matrix_body(BODY[:-2] + b'},"warnings":["partial"]}') is None
    assert parse_matrix_body(BODY.replace(b'"result":[', b'"result": [')) is None
    assert parse_matrix_body(BODY[:-10]) is None  # truncated
    empty = b'{"status":"success","data":{"resultType":"matrix","result":[]}}'
    assert parse_matrix_body(empty) == ([], [])


def test_fast_and_json_paths_give_the_same_frame(stub_factory):
    import json

    from rknb.sources.prometheus import parse_matrix, parse_matrix_body

    fast = parse_matrix_body(BODY)
    assert fast is not None
    from rknb.sources.prometheus import _frame

    slow = parse_matrix(json.loads(BODY)["data"]["result"])
    pd.testing.assert_frame_equal(_frame(*fast), slow)
    assert len(slow) == 3  # the NaN sample is dropped, the infinities kept


# -- native histograms ---------------------------------------------------------------------

_NATIVE = Path(__file__).parents[1] / "data" / "latency"


def _recorded_body(name):
    # Written by hand from the documented HTTP API format (see the file's test module).
    return json.loads((_NATIVE / name).read_text())


def test_instant_float_path_leaves_native_histogram_series_out(stub_factory):
    body = _recorded_body("native_histograms_instant.json")
    stub = stub_factory(lambda r: (200, body))
    frame = source_for(stub).query_instant("request_rate", SELECTOR, START)
    # Five series answer with a histogram only; the one float series is kept.
    assert frame["value"].tolist() == [1234.0]
    assert frame["pod"].tolist() == ["a"]


def test_native_histograms_are_read_from_an_instant_answer(stub_factory):
    body = _recorded_body("native_histograms_instant.json")
    stub = stub_factory(lambda r: (200, body))
    frame = source_for(stub).query_native_histograms(
        "mcp_request_duration_seconds", "2024-01-01T00:00:00Z"
    )
    assert stub.requests[0].path == "/api/v1/query"
    assert stub.requests[0].form["time"] == "1704067200"
    assert frame["pod"].tolist() == ["a", "b", "c", "d", "e"]
    assert frame["count"].tolist() == [20.0, 10.0, 0.0, 20.0, 10.0]
    assert frame["timestamp"].iloc[0] == pd.Timestamp("2024-01-01T00:00:00Z")
    assert [b.upper for b in frame["histogram"].iloc[1].buckets] == [
        -1.4142135623730951,
        0.01,
        1.4142135623730951,
    ]


def test_range_answer_keeps_float_and_histogram_samples_apart(stub_factory):
    body = _recorded_body("native_histograms_range.json")
    stub = stub_factory(lambda r: (200, body))
    source = source_for(stub)
    window = Window(START, START.replace(second=30), 30)
    floats = source.query_range("request_rate", SELECTOR, window)
    # Series a has histograms only; b has one float sample and one histogram; c floats only.
    assert list(zip(floats["pod"], floats["value"], strict=True)) == [
        ("b", 3.0),
        ("c", 1.0),
        ("c", 2.0),
    ]
    natives = source.query_native_histograms("x", START, window=window)
    assert stub.requests[-1].path == "/api/v1/query_range"
    assert natives["pod"].tolist() == ["a", "a", "b"]
    assert natives["count"].tolist() == [4.0, 6.0, 2.0]
    second = natives["histogram"].iloc[1]
    # 3.x: rank 3 from the top is 1/4 down into (1, 2]: 2^0.25; 2.x linearly: 1.25.
    assert native_histogram_quantile(0.5, second, semantics=3) == pytest.approx(2**0.25)
    assert native_histogram_quantile(0.5, second, semantics=2) == pytest.approx(1.25)


def test_malformed_native_histogram_sample_is_a_query_error():
    with pytest.raises(QueryError, match="boundary rule 7"):
        parse_histogram_vector(
            [{"metric": {}, "histogram": [1, {"count": "1", "buckets": [[7, "0", "1", "1"]]}]}]
        )
    assert parse_histogram_matrix([]).columns.tolist() == ["timestamp", "count", "sum", "histogram"]
