import logging
from dataclasses import replace
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from rknb.catalog import CATALOG, Matcher, Selector
from rknb.errors import ParameterError, QueryError
from rknb.sources.base import MetricsSource, Window
from rknb.sources.model import StoreMetricsSource
from rknb.tsdb import SeriesStore, evaluate_instant, evaluate_range, evaluation_times

T = np.arange(0, 1201, 30)


def _store() -> SeriesStore:
    store = SeriesStore()

    def counter(pod, status, per_s, t=T, namespace="shop"):
        labels = {"namespace": namespace, "pod": pod, "status": status}
        store.add("mcp_requests_total", labels, t, (t - t[0]) * per_s)

    counter("web-abc12-xyz12", "200", 1.0)
    counter("web-def34-uvw34", "200", 2.0)
    counter("web-abc12-xyz12", "500", 0.5)
    counter("web-abc12-xyz12", "503", 1.0, t=T[T >= 900])
    # Neither pod name matches the anchored pattern for workload "web".
    counter("web-abc12-xyz12-extra", "200", 100.0)
    counter("xweb-abc12-xyz12", "200", 100.0)
    counter("web-abc12-xyz12", "200", 100.0, namespace="other")

    for pod, memory in [("web-abc12-xyz12", 100.0), ("web-def34-uvw34", 300.0)]:
        for container in ["app", "POD"]:
            labels = {"namespace": "shop", "pod": pod, "container": container}
            store.add("container_memory_working_set_bytes", labels, T, np.full(len(T), memory))
    return store


SELECTOR = Selector(namespace="shop", workload="web")


@pytest.mark.parametrize("semantics", [2, 3])
def test_rate_is_summed_by_status_over_matching_pods_only(semantics):
    out = evaluate_range(
        _store(), CATALOG["request_rate"], SELECTOR, 600, 1200, 300, semantics=semantics
    )
    assert list(out.columns) == ["timestamp", "status", "value"]
    assert str(out["timestamp"].dtype) == "datetime64[ns, UTC]"
    assert list(out["status"]) == ["200", "200", "200", "500", "500", "500", "503"]
    seconds = [int(ts.timestamp()) for ts in out["timestamp"]]
    assert seconds == [600, 900, 1200, 600, 900, 1200, 1200]
    np.testing.assert_allclose(out["value"], [3.0, 3.0, 3.0, 0.5, 0.5, 0.5, 1.0])


def test_group_exists_only_where_a_member_has_a_value():
    # The 503 series starts at 900: at 900 its [5m] window holds one sample.
    out = evaluate_range(_store(), CATALOG["request_rate"], SELECTOR, 900, 1200, 300, semantics=2)
    assert list(out.loc[out["status"] == "503", "timestamp"].map(lambda t: t.timestamp())) == [
        1200.0
    ]


def test_instant_increase_takes_a_window_override():
    out = evaluate_instant(
        _store(), CATALOG["request_increase"], SELECTOR, 1200, window_s=600, semantics=2
    )
    assert list(out["status"]) == ["200", "500", "503"]
    # 3 requests/s for 600 s; 0.5/s; the 503 series covers only [900, 1200].
    np.testing.assert_allclose(out["value"], [1800.0, 300.0, 300.0])
    assert {int(t.timestamp()) for t in out["timestamp"]} == {1200}


def test_last_with_max_aggregation_and_container_matchers():
    query = replace(CATALOG["container_memory_bytes"], by=("namespace",))
    out = evaluate_instant(_store(), query, SELECTOR, 1200, semantics=3)
    assert list(out["namespace"]) == ["shop"]
    assert list(out["value"]) == [300.0]


def test_no_aggregation_keeps_every_label_but_the_name():
    query = replace(CATALOG["container_memory_bytes"], by=None)
    out = evaluate_instant(_store(), query, Selector(namespace="shop"), 1200, semantics=3)
    assert list(out.columns) == ["timestamp", "container", "namespace", "pod", "value"]
    assert list(out["pod"]) == ["web-abc12-xyz12", "web-def34-uvw34"]
    assert set(out["container"]) == {"app"}


def test_regex_matchers_are_anchored():
    query = replace(
        CATALOG["request_rate"], matchers=(Matcher("pod", "=~", "web-abc12-xyz12"),), by=("pod",)
    )
    out = evaluate_instant(_store(), query, Selector(namespace="shop"), 1200, semantics=2)
    assert set(out["pod"]) == {"web-abc12-xyz12"}
    np.testing.assert_allclose(out["value"], [2.5])  # 1 + 0.5 + 1 (503)


def test_an_unknown_metric_gives_an_empty_frame_with_the_by_columns():
    query = replace(CATALOG["request_rate"], metric="nope_total")
    out = evaluate_range(_store(), query, SELECTOR, 0, 1200, 60, semantics=2)
    assert list(out.columns) == ["timestamp", "status", "value"]
    assert len(out) == 0


def test_evaluation_grid_includes_end_only_on_the_grid():
    np.testing.assert_array_equal(evaluation_times(0, 1000, 300), [0, 300, 600, 900])
    np.testing.assert_array_equal(evaluation_times(0, 900, 300), [0, 300, 600, 900])
    with pytest.raises(ParameterError):
        evaluation_times(0, 900, 0)


def _source(**kwargs):
    return StoreMetricsSource(
        _store(),
        reference_time=datetime.fromtimestamp(1200, UTC),
        description="test store",
        semantics=2,
        **kwargs,
    )


def test_store_source_answers_like_evaluate_range_and_logs_one_line(caplog):
    source = _source()
    assert isinstance(source, MetricsSource)
    window = Window(datetime.fromtimestamp(600, UTC), datetime.fromtimestamp(1200, UTC), 300)
    with caplog.at_level(logging.INFO, logger="rknb.sources.model"):
        out = source.query_range("request_rate", SELECTOR, window)
    expected = evaluate_range(
        _store(), CATALOG["request_rate"], SELECTOR, 600, 1200, 300, semantics=2
    )
    pd.testing.assert_frame_equal(out, expected)
    lines = [r.getMessage() for r in caplog.records if r.name == "rknb.sources.model"]
    assert len(lines) == 1
    assert "request_rate" in lines[0] and "shop/web" in lines[0]


def test_store_source_refuses_promql_overrides():
    catalog = dict(CATALOG)
    catalog["request_rate"] = replace(catalog["request_rate"], promql="sum(rate({series}[1m]))")
    source = _source(catalog=catalog)
    with pytest.raises(QueryError, match="PromQL"):
        source.query_instant("request_rate", SELECTOR, datetime.fromtimestamp(1200, UTC))


def test_store_source_names_the_known_queries_for_an_unknown_one():
    with pytest.raises(ParameterError, match="request_rate"):
        _source().query_instant("nope", SELECTOR, datetime.fromtimestamp(1200, UTC))
