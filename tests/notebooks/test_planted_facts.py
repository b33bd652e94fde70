"""Each demo report states what the scenario planted, with the numbers, on three seeds.

The notebooks find these facts from the data: analysis code never imports
the scenario (an import-linter contract). Only the tests read the table.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from rknb.scenario import DEFAULT_SEED, Scenario, build_scenario

# The scenario names its planted faults by what is wrong; the audit's rule ids for them.
FAULT_RULES = {
    "no-probes": {"RK-PROBE-001", "RK-PROBE-002"},
    "image-latest-tag": {"RK-IMG-001"},
    "image-untagged": {"RK-IMG-001"},
    "runs-as-root": {"RK-SEC-001"},
    "no-limits": {"RK-RES-003"},
    "no-requests": {"RK-RES-001", "RK-RES-002"},
    "privileged": {"RK-SEC-004"},
    "secret-in-env": {"RK-SEC-005"},
    "service-selects-nothing": {"RK-SVC-001"},
}


def figures(results: dict[str, Any], notebook: str) -> dict[str, Any]:
    return results[notebook]["figures"]


def when(text: str) -> datetime:
    return datetime.fromisoformat(text)


def check_latency(sc: Scenario, results: dict[str, Any]) -> None:
    got = figures(results, "latency_analysis")
    planted_start = sc.fact("regression.start").when
    assert got["regressions"] >= 1
    found = when(got["regression_start"])
    # Dated to the scrape interval from one-interval increases: within one scrape interval.
    assert abs((found - planted_start).total_seconds()) <= 30
    assert got["regression_revision"] == sc.fact("rollout.bad_revision").value
    assert got["recovery_revision"] == sc.fact("rollout.rollback").details["to_revision"]
    # The regression's errors are part of the window's, and not a negligible part.
    assert 0.01 < got["regression_budget_consumed"] < got["budget_consumed"]
    assert got["latency_slo_exact"] is True  # 500 ms is a bucket bound
    # The rollback's pods replace the bad ones within minutes of the planted end.
    assert (
        abs((when(got["regression_end"]) - sc.fact("regression.end").when).total_seconds()) <= 600
    )

    availability = sc.fact("slo.availability")
    assert got["error_ratio"] == pytest.approx(1 - availability.value, rel=0.01)
    assert got["requests"] == pytest.approx(availability.details["requests"], rel=0.01)
    assert results["latency_analysis"]["verdict"]["status"] == "fail"  # 0.999 is missed
    assert got["slo_attainment"] < 0.999 < got["slo_attainment"] + 0.001
    assert got["p95_s"] == pytest.approx(sc.fact("latency.baseline_p95").value, rel=0.1)
    # Chart markers: every planted HPA scale event (read at the scrape interval) and both
    # planted restarts (the OOM kill and the failed liveness probe).
    scales = sc.fact("hpa.scale_events").details
    assert got["hpa_scale_events"] == scales["scale_ups"] + scales["scale_downs"]
    assert got["pod_restarts"] == 2


def check_capacity(sc: Scenario, results: dict[str, Any]) -> None:
    got = figures(results, "capacity_planning")
    oom = sc.fact("memory.oom_kill")
    assert got["oom_kills"] == 1
    assert got["oom_killed_pods"] == oom.details["pod"]
    assert got["restarts"] == 2
    assert sc.fact("restart.liveness").details["pod"] in got["restarted_pods"]
    assert got["memory_peak_of_limit"] == pytest.approx(1.0)  # the OOM kill reached the limit
    over = set(got["over_provisioned_workloads"].split(", "))
    planted = {f.id.rsplit(".", 1)[1] for f in sc.facts if f.id.startswith("capacity.over")}
    assert planted <= over
    assert got["nodes_today"] == sc.fact("nodes.allocatable").details["nodes"]
    assert got["backtest_mape"] < got["naive_mape"]
    assert got["backtest_beats_naive"] is True and got["backtest_origins"] >= 4
    # The planted memory pressure is recommended up, past today's limit.
    assert got["recommended_memory_bytes"] > sc.fact("memory.near_limit").details["limit_bytes"]


def check_hpa(sc: Scenario, results: dict[str, Any]) -> None:
    got = figures(results, "hpa_tuning")
    events = sc.fact("hpa.scale_events").details
    assert got["observed_scale_ups"] == events["scale_ups"]
    assert got["observed_scale_downs"] == events["scale_downs"]
    assert got["observed_peak_replicas"] == events["max_replicas"]
    assert got["observed_min_replicas"] == events["min_replicas"]
    # A lower target costs replica-hours: the candidate (60 %) runs more than the HPA (70 %).
    assert got["candidate_replica_hours"] > got["replica_hours"]
    # The compiled replay decides as the exact controller on the whole demo history.
    assert got["fast_path_agrees"] is True
    # The recommendation keeps within the notebook's default limits (5 %, 10 minutes).
    assert got["recommended"]
    assert got["recommended_fraction_above_target"] <= 0.05
    assert got["recommended_lag_worst_s"] <= 600
    # The scenario's 3 old pods become Ready 30-60 s after they start.
    assert 30 <= got["pod_startup_s"] <= 60
    # Against the scenario's simpler controller, every difference has a named cause. The
    # scenario tests tolerance as |ratio - 1| <= 0.1, so utilization at exactly 110 % of
    # target scales there and not upstream; it decides every 30 s against 15 s upstream.
    assert got["attribution_agrees"] is True
    assert got["differences_tolerance"] > 0
    assert got["differences_sync_period"] > 0
    # Its controller reads the CPU without the noise of the recorded per-pod series (5 %
    # per pod, requests counted, start-up bursts): still the largest source.
    assert got["largest_origin"] == "metric"
    # Unexplained: 0 of 40,319 samples on seeds 42, 7 and 1234. Below 0.1 %
    # (20 minutes in 14 days, less than one stabilization window a week) changes no headline.
    assert got["unexplained_share"] < 0.001
    assert 0.8 <= got["decision_agreement"] < 1.0
    # The demand is read over 60 s (two 30 s scrapes), as the HPA reads metrics-server, not
    # the catalog's 5-minute rate: agreement 94.3 / 95.4 / 95.9 % on seeds 42 / 7 / 1234
    # (85.7 / 90.5 / 90.7 % with the 5-minute rate), so 93 % fails if it smooths again. The
    # short window lets the scale-down stabilization window's rule show (27 / 23 / 12
    # samples; 0 / 1 / 0 with the 5-minute rate).
    assert got["metrics_window_s"] == 60
    assert got["demand_peak_cores"] >= got["demand_5m_peak_cores"]
    assert got["decision_agreement"] >= 0.93
    assert got["differences_stabilization"] > 0


def check_audit(sc: Scenario, results: dict[str, Any]) -> None:
    findings = results["deployment_audit"]["findings"]
    by_object: dict[tuple[str, str, str], set[str]] = {}
    for f in findings:
        by_object.setdefault((f["kind"], f["namespace"], f["name"]), set()).add(f["rule_id"])
    for fact in sc.facts:
        if not fact.id.startswith("audit."):
            continue
        key = (fact.details["kind"], fact.details["namespace"], fact.details["name"])
        rules = by_object.get(key, set())
        assert rules & FAULT_RULES[str(fact.value)], f"{fact.id}: found only {sorted(rules)}"
    assert results["deployment_audit"]["verdict"]["status"] == "fail"


def check_rollback(sc: Scenario, results: dict[str, Any]) -> None:
    got = figures(results, "rollback_drill")
    assert got["history_available"] is True
    assert got["current_revision"] == sc.fact("rollout.live_revision").value
    # Undo without a revision goes to the second-highest: the bad release, revision 3.
    assert got["target_revision"] == sc.fact("rollout.bad_revision").value
    assert got["template_changes"] == 1
    assert got["replicas"] == 3 and got["min_available"] == 3 and got["waves"] == 3
    assert got["capacity_dips"] is False
    # The demo has no API server: the drill stays in plan mode and records no verdict.
    assert got["mode"] == "plan"
    assert results["rollback_drill"].get("verdict") is None


CHECKS = [check_latency, check_capacity, check_hpa, check_audit, check_rollback]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__.removeprefix("check_"))
def test_demo_reports_state_the_planted_facts(demo_results: dict[str, Any], check: Any) -> None:
    check(build_scenario(DEFAULT_SEED), demo_results)


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__.removeprefix("check_"))
def test_other_seeds_reports_state_their_planted_facts(
    seed_results: tuple[int, dict[str, Any]], check: Any
) -> None:
    seed, results = seed_results
    check(build_scenario(seed), results)
