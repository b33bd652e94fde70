from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

from rknb import matrix, report

ENV_NB = str(Path(__file__).parents[1] / "data" / "matrix" / "env.ipynb")


def _matrix(**extra) -> matrix.Matrix:
    doc = {
        "clusters": [
            {"name": "east", "kubeconfig": "/cfg/east", "tenant": "team-e"},
            {"name": "west", "kubeconfig": "/cfg/west", "bearer_token_file": "/tok/west"},
        ],
        "namespaces": ["shop", "pay"],
        "notebooks": [ENV_NB],
    }
    return matrix.parse_matrix(doc | extra)


def test_a_failing_cell_fails_its_run_only_and_each_run_sees_its_own_cluster(tmp_path, monkeypatch):
    monkeypatch.setenv("RKNB_PROMETHEUS_TOKEN_FILE", "/leaked/from/caller")
    outcome = matrix.run_matrix(
        _matrix(parameters={"fail_in": "west/pay"}), output_dir=tmp_path, jobs=4
    )
    by_run = {(e["cluster"], e["namespace"]): e for e in outcome.entries}
    # entries come back in matrix order whatever order the runs finished in
    assert list(by_run) == [("east", "shop"), ("east", "pay"), ("west", "shop"), ("west", "pay")]

    failed = by_run[("west", "pay")]
    assert failed["status"] == "failed" and failed["exit_code"] == report.EXIT_CELL_ERROR
    assert failed["error"] == "RuntimeError: planted failure in west/pay"
    assert (tmp_path / failed["report"]).is_file()  # the partial report is kept and linked
    assert outcome.exit_code == report.EXIT_CELL_ERROR
    assert [by_run[k]["status"] for k in list(by_run)[:3]] == ["ok", "ok", "ok"]

    seen = {key: entry["figures"] for key, entry in by_run.items()}
    assert seen[("east", "shop")]["kubeconfig"] == "/cfg/east"
    assert seen[("east", "pay")]["headers"] == "X-Scope-OrgID=team-e"  # as rknb.config reads it
    assert seen[("east", "pay")]["token_file"] == "<unset>"  # the caller's value is removed
    assert seen[("west", "shop")]["kubeconfig"] == "/cfg/west"
    assert seen[("west", "shop")]["headers"] == "<unset>"
    assert seen[("west", "shop")]["token_file"] == "/tok/west"
    assert seen[("west", "shop")]["cluster_seen"] == "west"
    assert seen[("west", "shop")]["namespace_seen"] == "shop"


def test_history_keeps_every_matrix_run_and_the_index_shows_the_newest_first(tmp_path):
    one = _matrix(clusters=[{"name": "east"}], namespaces=["shop"])
    matrix.run_matrix(one, output_dir=tmp_path, now=datetime(2026, 12, 1, 6, tzinfo=UTC))
    progress = io.StringIO()
    matrix.run_matrix(
        one, output_dir=tmp_path, now=datetime(2026, 12, 2, 6, tzinfo=UTC), progress=progress
    )
    history = matrix.read_history(tmp_path)
    assert [e["matrix_started_at"] for e in history] == [
        "2026-12-01T06:00:00Z",
        "2026-12-02T06:00:00Z",
    ]
    # the same inputs land in the same run folder: one run, two history rows
    assert history[0]["run_id"] == history[1]["run_id"]
    index = (tmp_path / "index.html").read_text()
    assert "<p>1 run(s).</p>" in index
    assert index.index("2026-12-02T06:00:00Z") < index.index("2026-12-01T06:00:00Z")
    last = progress.getvalue().splitlines()[-1]
    assert last == "[########################] 1/1 east/shop/env: ok (exit 0)"


def test_a_truncated_history_line_is_skipped(tmp_path):
    (tmp_path / "history.jsonl").write_text('{"cluster": "a", "status": "ok"}\n{"clus')
    assert matrix.read_history(tmp_path) == [{"cluster": "a", "status": "ok"}]
