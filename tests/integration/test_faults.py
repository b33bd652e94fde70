"""Faults between rknb and the real server: each is retried to success or fails clearly."""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import timedelta

import pandas as pd
import pytest
from faultproxy import MAX_URL_BYTES, FaultProxy
from promserver import Server

from rknb.catalog import Selector
from rknb.errors import QueryError
from rknb.scenario import END
from rknb.sources.base import Window
from rknb.sources.prometheus import PrometheusSource

pytestmark = pytest.mark.integration

SELECTOR = Selector(namespace="reasonkit", workload="reasonkit-pro-mcp")
# Two days at 15 s: 11,521 points, so two chunks, and every fault hits a chunk.
WINDOW = Window(END - timedelta(days=2), END, 15)


@pytest.fixture
def proxy(prometheus_server: Server) -> Iterator[FaultProxy]:
    running = FaultProxy(prometheus_server.url, delay_s=1.5).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def expected(prometheus_server: Server) -> pd.DataFrame:
    direct = PrometheusSource(prometheus_server.url)
    return direct.query_range("deployment_replicas", SELECTOR, WINDOW)


def _source(proxy: FaultProxy, **kwargs: object) -> PrometheusSource:
    options: dict[str, object] = {"backoff_s": 0.01, "max_retries": 2, "concurrency": 1}
    options.update(kwargs)
    return PrometheusSource(proxy.url, **options)  # type: ignore[arg-type]


@pytest.mark.parametrize("fault", ["delay", "503", "reset", "truncate"])
def test_one_transient_fault_is_retried_to_the_complete_frame(proxy, expected, fault):
    proxy.faults = [fault]
    frame = _source(proxy, timeout_s=0.75).query_range("deployment_replicas", SELECTOR, WINDOW)
    assert len(expected) == 11_521
    pd.testing.assert_frame_equal(frame, expected)
    assert proxy.seen == [fault, None, None]  # the retry, then the second chunk


@pytest.mark.parametrize(
    ("fault", "text"),
    [
        ("delay", "Timeout"),
        ("503", "query timed out in query execution"),
        ("reset", "ConnectionError"),
        ("truncate", "ChunkedEncodingError"),
    ],
)
def test_a_fault_that_persists_is_a_query_error_not_a_partial_frame(proxy, fault, text):
    # The first chunk passes; the second fails on every attempt.
    proxy.faults = [None, fault, fault, fault]
    source = _source(proxy, timeout_s=0.75)
    with pytest.raises(QueryError, match="after 3 attempts") as caught:
        source.query_range("deployment_replicas", SELECTOR, WINDOW)
    assert text in str(caught.value)
    assert caught.value.query.startswith("sum by (namespace, deployment)")
    assert len(proxy.seen) == 4


def test_422_raises_at_once_with_the_server_message(proxy):
    proxy.faults = ["422"]
    with pytest.raises(QueryError) as caught:
        _source(proxy).query_range("deployment_replicas", SELECTOR, WINDOW)
    assert caught.value.status == 422
    assert "would load too many samples into memory" in str(caught.value)
    assert proxy.seen == ["422"]


def test_long_query_goes_in_the_post_body_where_a_get_would_get_414(proxy, expected):
    # 200 extra matchers make the query too long for a URL through this proxy.
    long_selector = Selector(
        namespace="reasonkit", workload="reasonkit-pro-mcp", labels=(("absent_label", ""),) * 200
    )
    source = _source(proxy)
    promql = source.render("deployment_replicas", long_selector)
    assert len(promql) > MAX_URL_BYTES
    url = proxy.url + "/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(url, timeout=10)
    assert refused.value.code == 414

    frame = source.query_range("deployment_replicas", long_selector, WINDOW)
    pd.testing.assert_frame_equal(frame, expected)
