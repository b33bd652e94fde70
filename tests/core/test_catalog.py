from pathlib import Path

import pytest

from rknb.catalog import (
    CATALOG,
    Matcher,
    Selector,
    escape_label_value,
    get_query,
    load_catalog,
    render_promql,
)
from rknb.errors import ParameterError

SEL = Selector(namespace="reasonkit", workload="reasonkit-pro-mcp")


def test_cpu_query_renders_rate_summed_per_container() -> None:
    text = render_promql(CATALOG["container_cpu_cores"], SEL)
    assert text == (
        "sum by (namespace, pod, container) (rate(container_cpu_usage_seconds_total{"
        'container!="", container!="POD", namespace="reasonkit", '
        'pod=~"reasonkit-pro-mcp-[a-z0-9]{5,10}-[a-z0-9]{5}"}[5m]))'
    )


def test_deployment_queries_match_the_workload_name_exactly() -> None:
    text = render_promql(CATALOG["deployment_replicas"], SEL)
    assert 'deployment="reasonkit-pro-mcp"' in text
    assert "pod=" not in text


def test_window_override_changes_only_the_range() -> None:
    text = render_promql(CATALOG["request_increase"], SEL, window_s=14 * 86400)
    assert text.startswith("sum by (status) (increase(mcp_requests_total{")
    assert text.endswith("[2w]))")


def test_label_values_are_escaped_so_a_quote_cannot_break_out() -> None:
    assert escape_label_value('a"b\\c') == 'a\\"b\\\\c'
    text = render_promql(CATALOG["request_rate"], Selector(namespace='x"} or vector(1) #'))
    assert 'namespace="x\\"} or vector(1) #"' in text


@pytest.mark.parametrize(
    ("matcher", "labels", "expected"),
    [
        (Matcher("pod", "=~", "web-.*"), {"pod": "web-1"}, True),
        (Matcher("pod", "=~", "web"), {"pod": "web-1"}, False),  # anchored
        (Matcher("pod", "!~", "web-.*"), {"pod": "api-1"}, True),
        (Matcher("container", "!=", ""), {}, False),  # a missing label is the empty string
        (Matcher("status", "=", "error"), {"status": "error"}, True),
    ],
)
def test_matchers_follow_promql_rules(
    matcher: Matcher, labels: dict[str, str], expected: bool
) -> None:
    assert matcher.matches(labels) is expected


def test_unknown_query_lists_the_known_names() -> None:
    with pytest.raises(ParameterError, match=r"known queries: .*container_cpu_cores"):
        get_query("cpu")


def test_catalog_overrides_rename_a_metric_in_one_place(tmp_path: Path) -> None:
    path = tmp_path / "catalog.yaml"
    path.write_text("container_memory_bytes:\n  metric: container_memory_rss\n")
    catalog = load_catalog(path)
    assert catalog["container_memory_bytes"].metric == "container_memory_rss"
    assert catalog["container_cpu_cores"] == CATALOG["container_cpu_cores"]


def test_catalog_overrides_reject_unknown_queries_and_fields(tmp_path: Path) -> None:
    path = tmp_path / "catalog.yaml"
    path.write_text("nope:\n  metric: x\n")
    with pytest.raises(ParameterError, match="unknown query 'nope'"):
        load_catalog(path)
    path.write_text("request_rate:\n  colour: blue\n")
    with pytest.raises(ParameterError, match="may only set"):
        load_catalog(path)


def test_regex_metacharacters_in_workload_names_are_escaped() -> None:
    from rknb.catalog import pod_pattern, regex_escape

    assert regex_escape("a.b+c") == "a\\.b\\+c"
    assert pod_pattern("web.v2").startswith("web\\.v2-")
