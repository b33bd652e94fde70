"""Benchmark ``hpa_replay``: the compiled grid replay against the per-decision exact controller.

The input is 30 days of seeded, diurnal CPU demand at a 15 s sync period
(172,800 decisions) and 100 candidate configs. The peer is rknb's own
reference, :func:`rknb.hpa.replay` with ``engine="exact"`` (the straightforward
implementation that passes ``rknb conformance hpa``); it is timed on 5 configs
and scaled linearly to 100. The fast path, :func:`rknb.hpa.replay_grid`, runs
all 100 in the same process after one warm-up call that compiles it (the
compile time is reported separately). Both paths' decisions are compared on
the configs the peer ran.
"""

from __future__ import annotations

import resource
import time

import numpy as np
import pandas as pd

from rknb import hpa

DAYS = 30
CONFIGS = 100
PEER_CONFIGS = 5
GOAL_RATIO = 50.0
GOAL_GRID_S = 10.0


def demand_history(days: float, seed: int = 20260101) -> pd.Series:
    """Return seeded CPU demand (cores) at 15 s: diurnal, weekly, noisy, with bursts."""
    rng = np.random.default_rng(seed)
    steps = int(days * 86400 / 15)
    t = np.arange(steps) * 15.0
    hour = (t % 86400) / 3600
    diurnal = 0.3 + 0.7 * (0.5 + 0.5 * np.cos(2 * np.pi * (hour - 15) / 24))
    weekly = np.where(((t // 86400) % 7) >= 5, 0.65, 1.0)
    bursts = np.where(rng.random(steps) < 0.002, rng.uniform(0.5, 1.5, steps), 0.0)
    bursts = np.convolve(bursts, np.ones(20), mode="same")
    noise = np.exp(rng.normal(0, 0.08, steps))
    cores = 1.6 * diurnal * weekly * noise + bursts
    index = pd.date_range("2026-01-01T00:00:00Z", periods=steps, freq="15s")
    return pd.Series(cores, index=index)


def candidates(count: int) -> list[hpa.HpaConfig]:
    """Return ``count`` configs from a grid of targets, minReplicas and windows."""
    base = hpa.HpaConfig(2, 12, 0.7, behavior=True)
    configs = hpa.grid(
        base,
        targets=[0.5, 0.6, 0.65, 0.7, 0.8],
        min_replicas=[1, 2, 3, 4],
        scale_down_windows_s=[0, 60, 120, 300, 600],
    )
    return configs[:count]


def bench(smoke: bool) -> dict[str, object]:
    """Run the benchmark and return its JSON line as a dict."""
    days = 0.5 if smoke else DAYS
    count = 10 if smoke else CONFIGS
    peer_count = 1 if smoke else PEER_CONFIGS
    demand = demand_history(days)
    configs = candidates(count)
    pods = hpa.PodModel(0.25, startup_s=40)
    decisions = len(demand)

    started = time.perf_counter()
    hpa.replay_grid(demand.iloc[:40], configs[:1], pods=pods, initial_replicas=3)
    compile_s = time.perf_counter() - started

    started = time.perf_counter()
    grid = hpa.replay_grid(demand, configs, pods=pods, initial_replicas=3)
    fast_s = time.perf_counter() - started

    # The peer: the per-decision controller on a few configs, scaled to the whole grid.
    step = max(1, count // peer_count)
    picked = list(range(0, count, step))[:peer_count]
    agree = True
    started = time.perf_counter()
    for c in picked:
        exact = hpa.replay(demand, config=configs[c], pods=pods, initial_replicas=3)
        agree &= exact["desired"].tolist() == grid.replicas[c, 1:].tolist()
    peer_measured_s = time.perf_counter() - started
    peer_s = peer_measured_s * count / len(picked)

    ratio = peer_s / fast_s
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    per_decision_fast_ns = fast_s / (count * decisions) * 1e9
    per_decision_peer_us = peer_measured_s / (len(picked) * decisions) * 1e6
    return {
        "name": "hpa_replay-smoke" if smoke else "hpa_replay",
        "rknb_s": round(fast_s, 3),
        "peer": f"rknb.hpa.replay(engine='exact') on {len(picked)} configs, scaled to {count}",
        "peer_s": round(peer_s, 2),
        "ratio": round(ratio, 1),
        "goal": f">= {GOAL_RATIO:g}" if not smoke else "none (smoke: half a day, 10 configs)",
        "peak_rss_mb": round(peak_mb, 1),
        "goals": {
            "decisions_per_config": decisions,
            "configs": count,
            "ratio_at_least_50": {"value": round(ratio, 1), "met": ratio >= GOAL_RATIO},
            "grid_under_10_s": {"value_s": round(fast_s, 3), "met": fast_s < GOAL_GRID_S},
            "decisions_agree": agree,
            "fast_ns_per_config_decision": round(per_decision_fast_ns, 1),
            "exact_us_per_config_decision": round(per_decision_peer_us, 1),
            "peer_measured_s": round(peer_measured_s, 2),
            "compile_s": round(compile_s, 2),
        },
    }
