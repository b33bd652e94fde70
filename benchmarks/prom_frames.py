"""prom_frames: a query_range answer of about 1,000,000 samples turned into a DataFrame.

One local Prometheus (Debian's 2.42, backfilled with generated gauges) serves
the same answer to each contender in the same run:

* rknb: ``PrometheusSource.query_range`` end to end (HTTP, parse, frame);
* rknb's frame building alone (parse included): :func:`rknb.sources.prometheus.parse_matrix_bytes`
  on the raw body;
* the bare ``orjson.loads`` of the body;
* prometheus-api-client: ``custom_query_range`` then ``MetricRangeDataFrame``
  with the client's defaults (gzip), and again with ``Accept-Encoding: identity``.

Times are the minimum of ``repeat`` runs. Frame memory is
``memory_usage(deep=True)`` of each frame.
"""

from __future__ import annotations

import gc
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

START_S = 1_704_067_200  # 2024-01-01T00:00:00Z
STEP_S = 15
LABELS = ("cluster", "namespace", "pod", "container", "instance")


def _write_history(path: Path, series: int, points: int) -> None:
    with open(path, "w", encoding="utf-8") as out:
        out.write("# TYPE bench_gauge gauge\n")
        for i in range(series):
            labels = (
                f'cluster="c{i % 3}",namespace="ns-{i % 7}",pod="web-{i:04d}-abcde",'
                f'container="app",instance="10.0.{i // 250}.{i % 250}:9100"'
            )
            lines = [
                f"bench_gauge{{{labels}}} {((i * 7919 + k * 104729) % 100003) / 1000} "
                f"{START_S + k * STEP_S}\n"
                for k in range(points)
            ]
            out.write("".join(lines))
        out.write("# EOF\n")


def _best(repeat: int, run: Callable[[], Any]) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(repeat):
        gc.collect()
        began = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - began)
    return best, result


def bench_prom_frames(smoke: bool) -> dict[str, object]:
    """Return the benchmark's JSON record (see benchmarks/run.py)."""
    import orjson
    from prometheus_api_client import MetricRangeDataFrame, PrometheusConnect

    from rknb.catalog import Query, Selector
    from rknb.scenario.export import LocalPrometheus, backfill, find_prometheus
    from rknb.sources.base import Window
    from rknb.sources.prometheus import PrometheusSource, parse_matrix_bytes

    found = find_prometheus()
    if found is None:
        return {"name": "prom_frames", "skipped": "prometheus/promtool not on PATH"}
    series, points = (10, 1_001) if smoke else (100, 10_001)
    repeat = 1 if smoke else 3
    end_s = START_S + (points - 1) * STEP_S

    with tempfile.TemporaryDirectory(prefix="rknb-prom-frames-") as tmp:
        folder = Path(tmp)
        _write_history(folder / "bench.om", series, points)
        backfill(folder / "bench.om", folder / "data", promtool=found[1], max_block_duration="54h")
        with LocalPrometheus(folder / "data", binary=found[0]) as server:
            form = {"query": "bench_gauge", "start": START_S, "end": end_s, "step": STEP_S}
            request = urllib.request.Request(
                server.url + "/api/v1/query_range",
                data=urllib.parse.urlencode(form).encode(),
                headers={"Accept-Encoding": "identity"},
            )
            with urllib.request.urlopen(request, timeout=60) as answer:
                body = answer.read()

            query = Query("bench", "gauge", "1", "bench_gauge", "last", promql="bench_gauge")
            catalog = {"bench": query}
            source = PrometheusSource(server.url, catalog=catalog)
            window = Window(
                datetime.fromtimestamp(START_S, UTC), datetime.fromtimestamp(end_s, UTC), STEP_S
            )
            rknb_s, frame = _best(repeat, lambda: source.query_range("bench", Selector(), window))
            frame_s, _ = _best(repeat, lambda: parse_matrix_bytes(body))
            loads_s, _ = _best(repeat, lambda: orjson.loads(body))

            start_dt = datetime.fromtimestamp(START_S, UTC)
            end_dt = datetime.fromtimestamp(end_s, UTC)

            def client_path(headers: dict[str, str] | None) -> tuple[float, float, Any]:
                client = PrometheusConnect(url=server.url, headers=headers)
                query_s, result = _best(
                    repeat,
                    lambda: client.custom_query_range("bench_gauge", start_dt, end_dt, str(STEP_S)),
                )
                mrdf_s, mrdf = _best(repeat, lambda: MetricRangeDataFrame(result))
                return query_s, mrdf_s, mrdf

            peer_query_s, peer_frame_s, mrdf = client_path(None)
            identity_query_s, identity_frame_s, _ = client_path({"Accept-Encoding": "identity"})

    samples = len(frame)
    rknb_mb = float(frame.memory_usage(deep=True).sum()) / 2**20
    mrdf_mb = float(mrdf.memory_usage(deep=True).sum()) / 2**20
    peer_s = peer_query_s + peer_frame_s
    ratio = peer_s / rknb_s
    from resource import RUSAGE_SELF, getrusage

    return {
        "name": "prom_frames-smoke" if smoke else "prom_frames",
        "rknb_s": round(rknb_s, 3),
        "peer": "prometheus-api-client custom_query_range + MetricRangeDataFrame (defaults)",
        "peer_s": round(peer_s, 3),
        "ratio": round(ratio, 2),
        "goal": ">= 5",
        "peak_rss_mb": round(getrusage(RUSAGE_SELF).ru_maxrss / 1024, 1),
        "goals": {
            "samples": samples,
            "series": series,
            "body_bytes": len(body),
            "ratio_at_least_5": {"value": round(ratio, 2), "met": ratio >= 5},
            "frame_within_1_5x_of_orjson_loads": {
                "frame_s": round(frame_s, 3),
                "orjson_loads_s": round(loads_s, 3),
                "value": round(frame_s / loads_s, 2),
                "met": frame_s <= 1.5 * loads_s,
            },
            "frame_memory_at_most_a_quarter": {
                "rknb_mb": round(rknb_mb, 1),
                "metric_range_dataframe_mb": round(mrdf_mb, 1),
                "value": round(rknb_mb / mrdf_mb, 3),
                "met": rknb_mb <= mrdf_mb / 4,
            },
            "peer_query_s": round(peer_query_s, 3),
            "peer_frame_s": round(peer_frame_s, 3),
            "peer_identity_query_s": round(identity_query_s, 3),
            "peer_identity_frame_s": round(identity_frame_s, 3),
        },
    }
