"""What the integration tests share: the edge-case histograms and the running server's handle."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Edge-case histograms live two years before the scenario, in blocks of their own.
EDGE_T0 = 1_704_067_200  # 2024-01-01T00:00:00Z
EDGE_TIMES = (EDGE_T0, EDGE_T0 + 30, EDGE_T0 + 60)

#: case -> the cumulative bucket counts per upper bound, one list per sample time.
EDGE_CASES: dict[str, dict[str, list[float]]] = {
    "normal": {"0.1": [1, 4, 10], "0.5": [3, 9, 20], "1": [5, 9, 30], "+Inf": [6, 12, 31]},
    "empty": {"0.1": [0, 0, 0], "0.5": [0, 0, 0], "+Inf": [0, 0, 0]},
    "inf_only": {"+Inf": [0, 5, 9]},
    "in_inf_bucket": {"0.25": [1, 1, 2], "0.5": [1, 2, 2], "+Inf": [10, 20, 40]},
    "non_monotonic": {"0.1": [5, 6, 8], "0.5": [3, 4, 7], "1": [9, 9, 9], "+Inf": [10, 10, 12]},
    "negative_bound": {"-1": [1, 2, 2], "0": [4, 4, 5], "2": [8, 9, 10], "+Inf": [8, 10, 10]},
    "nan_bucket": {"0.1": [1, float("nan"), 2], "0.5": [3, 4, 5], "+Inf": [4, 5, 6]},
    "no_inf": {"0.1": [1, 2, 3], "0.5": [2, 4, 6]},
}


def _number(value: float) -> str:
    return "NaN" if value != value else repr(float(value))


def write_edge_histograms(path: Path) -> None:
    """Write the edge-case histograms as OpenMetrics gauges (raw buckets, no rate)."""
    lines = ["# TYPE rknb_edge_seconds_bucket gauge\n"]
    for case, buckets in sorted(EDGE_CASES.items()):
        for le, counts in buckets.items():
            for t, count in zip(EDGE_TIMES, counts, strict=True):
                lines.append(f'rknb_edge_seconds_bucket{{case="{case}",le="{le}"}} ')
                lines.append(f"{_number(count)} {t}\n")
    lines.append("# EOF\n")
    path.write_text("".join(lines), encoding="utf-8")


@dataclass
class Server:
    """The running server and what it was built from."""

    url: str
    pid: int
    seed: int
    export_bytes: int
    export_s: float
    backfill_s: float

    def api(self, endpoint: str, **form: str) -> Any:
        """Return the ``data`` of a successful API call (POST form), failing the test otherwise."""
        body = urllib.parse.urlencode(form).encode()
        request = urllib.request.Request(self.url + endpoint, data=body, method="POST")
        with urllib.request.urlopen(request, timeout=30) as answer:
            document = json.loads(answer.read())
        assert document["status"] == "success", document
        return document["data"]
