from __future__ import annotations

import json
from pathlib import Path

from rknb import report


def _run(root: Path, notebook: str, run_id: str, report_time: str, status: str = "ok") -> None:
    folder = root / notebook / run_id
    folder.mkdir(parents=True)
    (folder / "results.json").write_text(
        json.dumps(
            {
                "notebook": notebook,
                "run_id": run_id,
                "report_time": report_time,
                "status": status,
                "verdict": {"status": "pass", "summary": f"{notebook} <ok>"},
                "figures": {"p99_ms": 412.5},
            }
        )
    )


def test_index_lists_runs_newest_report_time_first(tmp_path):
    _run(tmp_path, "latency", "aaaaaaaaaaaa", "2026-01-01T00:00:00Z")
    _run(tmp_path, "audit", "bbbbbbbbbbbb", "2026-03-01T00:00:00Z", status="failed")
    _run(tmp_path, "capacity", "cccccccccccc", "")
    _run(tmp_path, "hpa", "dddddddddddd", "2026-02-01T00:00:00Z")
    index = report.update_index(tmp_path)
    html = index.read_text()
    order = [
        html.index(r) for r in ("bbbbbbbbbbbb", "dddddddddddd", "aaaaaaaaaaaa", "cccccccccccc")
    ]
    assert order == sorted(order)
    assert 'href="latency/aaaaaaaaaaaa/latency.html"' in html
    assert "p99_ms=412.5" in html
    assert "latency &lt;ok&gt;" in html  # escaped
    assert "http" not in html and "<script" not in html


def test_index_of_an_empty_folder_says_zero_runs(tmp_path):
    assert "<p>0 run(s).</p>" in report.update_index(tmp_path).read_text()
