"""The replay's fast path: the exact controller specialised to the replay's pod model.

:func:`rknb.hpa.replay` runs :func:`rknb._hpa_controller.reconcile` once per
sync period over explicit pods; this module computes the same decisions for
many configs in one compiled loop, using that every pod of the replay has the
same request and every ready pod the same share of the demand. Each
comparison is written in the same form and order as in the controller so that
float64 rounding is the same, and a property test holds the two paths equal
decision for decision. Stored recommendations and scale events are kept per
decision index: the controller overwrites only recommendations older than
both windows, which it never reads again. Scale events are kept as the
controller keeps them (an up event past the longest scale-up period is
overwritten even while a longer scale-down period would still count it).

numba compiles the loop when it is installed; without it the same code runs
as plain Python (correct, about a thousand times slower).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np


def _plain(*_args: Any, **_kwargs: Any) -> Callable[[Any], Any]:
    def wrap(function: Any) -> Any:
        return function

    return wrap


try:  # pragma: no cover - exercised by whichever environment runs the tests
    from numba import njit

    _njit: Callable[..., Callable[[Any], Any]] = njit
    HAVE_NUMBA = True
except ImportError:  # pragma: no cover
    _njit = _plain
    HAVE_NUMBA = False


MAX_INT32 = 2147483647
MIN_INT32 = -2147483648

#: Metric kinds of the replay.
KIND_CPU = 0
KIND_PODS = 1

#: Policy encoding: type 0 = Pods, 1 = Percent; select 0 = Max, 1 = Min, 2 = Disabled.
MAX_POLICIES = 4

#: Columns of the per-config parameter matrix.
P_MIN, P_MAX, P_TARGET, P_BEHAVIOR, P_UP_WINDOW, P_DOWN_WINDOW = 0, 1, 2, 3, 4, 5
P_TOL_UP, P_TOL_DOWN, P_UP_SELECT, P_DOWN_SELECT, P_UP_COUNT, P_DOWN_COUNT = 6, 7, 8, 9, 10, 11
P_POLICIES = 12  # then MAX_POLICIES x (type, value, period) for scale-up, then scale-down
#: The second (Pods AverageValue) metric's target in milli-units; 0 = no second metric.
P_SECOND_TARGET = P_POLICIES + 6 * MAX_POLICIES
N_PARAMS = P_SECOND_TARGET + 1


@_njit(cache=True)
def _int32_ceil(x: float) -> int:
    value = math.ceil(x)
    if value >= MAX_INT32:
        return MAX_INT32
    if value <= MIN_INT32:
        return MIN_INT32
    return int(value)


@_njit(cache=True)
def _int32_trunc(x: float) -> int:
    if x >= MAX_INT32:
        return MAX_INT32
    if x <= MIN_INT32:
        return MIN_INT32
    return int(x)


@_njit(cache=True)
def _changed_within(times: np.ndarray, changes: np.ndarray, count: int, cutoff: float) -> int:
    total = 0
    for i in range(count):
        if times[i] > cutoff:
            total += changes[i]
    return total


@_njit(cache=True)
def _store_event(
    times: np.ndarray,
    changes: np.ndarray,
    outdated: np.ndarray,
    count: int,
    now: float,
    longest_s: float,
    change: int,
) -> int:
    """Store an event as ``storeScaleEvent`` does; return the new length of the list.

    Events older than the direction's longest period are marked outdated and
    the last outdated one is overwritten. Those left behind are still counted
    by the other direction's policies, whose periods can be longer.
    """
    cutoff = now - longest_s
    last = -1
    for i in range(count):
        if times[i] < cutoff:
            outdated[i] = True
        if outdated[i]:
            last = i
    if last < 0:
        last = count
        count += 1
    times[last] = now
    changes[last] = change
    outdated[last] = False
    return count


@_njit(cache=True)
def _policy_limit(
    p: np.ndarray,
    base: int,
    up: bool,
    current: int,
    now: float,
    up_times: np.ndarray,
    up_changes: np.ndarray,
    up_count: int,
    down_times: np.ndarray,
    down_changes: np.ndarray,
    down_count: int,
) -> int:
    select = p[P_UP_SELECT] if up else p[P_DOWN_SELECT]
    count = int(p[P_UP_COUNT] if up else p[P_DOWN_COUNT])
    if select == 2:
        return current
    pick_min = select == 1
    # Max starts from the lowest value when scaling up, Min from the highest; the reverse down.
    result = MIN_INT32 if pick_min != up else MAX_INT32
    for q in range(count):
        kind = int(p[base + 3 * q])
        value = int(p[base + 3 * q + 1])
        period = p[base + 3 * q + 2]
        cutoff = now - period
        added = _changed_within(up_times, up_changes, up_count, cutoff)
        removed = _changed_within(down_times, down_changes, down_count, cutoff)
        start = current - added + removed
        if up:
            if kind == 0:
                proposed = start + value
            else:
                proposed = _int32_ceil(float(start) * (1 + float(value) / 100))
            result = min(result, proposed) if pick_min else max(result, proposed)
        else:
            if kind == 0:
                proposed = start - value
            else:
                proposed = _int32_trunc(float(start) * (1 - float(value) / 100))
            result = max(result, proposed) if pick_min else min(result, proposed)
    return result


@_njit(cache=True)
def _within(ratio: float, tol_up: float, tol_down: float) -> bool:
    return (1.0 - tol_down) <= ratio <= (1.0 + tol_up)


@_njit(cache=True)
def replay_grid_kernel(
    t: np.ndarray,
    demand_m: np.ndarray,
    second_m: np.ndarray,
    params: np.ndarray,
    kind: int,
    initial_replicas: int,
    request_m: int,
    limit_m: int,
    startup_s: float,
    window_s: float,
    init_period_s: float,
    readiness_delay_s: float,
    tolerance_flag: float,
    downscale_window_s: float,
    up_factor: float,
    up_minimum: float,
    replicas_out: np.ndarray,
    ready_out: np.ndarray,
) -> None:
    """Fill ``replicas_out[c, k]`` (k = 0..K) and ``ready_out[c, k]`` for every config c.

    ``second_m`` is the total of a second, Pods AverageValue metric at each
    decision (used by configs whose ``P_SECOND_TARGET`` is above 0): the
    proposal is then the larger of the two, as ``computeReplicasForMetrics``
    takes it, and a failed CPU metric with a lower Pods proposal scales nothing.
    """
    n_configs = params.shape[0]
    n_steps = t.shape[0]
    initial_created = t[0] - 1e9
    for c in range(n_configs):
        p = params[c]
        min_r = int(p[P_MIN])
        max_r = int(p[P_MAX])
        target = int(p[P_TARGET])
        behavior = p[P_BEHAVIOR] > 0
        second_target = int(p[P_SECOND_TARGET])
        up_window = p[P_UP_WINDOW]
        down_window = p[P_DOWN_WINDOW]
        tol_up = tolerance_flag
        tol_down = tolerance_flag
        if behavior:
            if p[P_TOL_UP] >= 0:
                tol_up = p[P_TOL_UP]
            if p[P_TOL_DOWN] >= 0:
                tol_down = p[P_TOL_DOWN]

        capacity = max(max_r, initial_replicas) + 1
        created = np.empty(capacity, dtype=np.float64)
        n = initial_replicas
        for i in range(n):
            created[i] = initial_created
        recs = np.full(n_steps, -1, dtype=np.int64)
        up_times = np.empty(n_steps + 1, dtype=np.float64)
        up_changes = np.empty(n_steps + 1, dtype=np.int64)
        up_outdated = np.zeros(n_steps + 1, dtype=np.bool_)
        down_times = np.empty(n_steps + 1, dtype=np.float64)
        down_changes = np.empty(n_steps + 1, dtype=np.int64)
        down_outdated = np.zeros(n_steps + 1, dtype=np.bool_)
        up_count = 0
        down_count = 0
        up_longest = 0.0
        for q in range(int(p[P_UP_COUNT])):
            up_longest = max(up_longest, p[P_POLICIES + 3 * q + 2])
        down_longest = 0.0
        for q in range(int(p[P_DOWN_COUNT])):
            down_longest = max(down_longest, p[P_POLICIES + 3 * MAX_POLICIES + 3 * q + 2])
        seed = n
        seed_t = t[0]

        for k in range(n_steps):
            now = t[k]
            current = n
            replicas_out[c, k] = current

            # Pods: Ready once their start-up time has passed; ready pods share the demand.
            serving = 0
            for i in range(n):
                if now >= created[i] + startup_s:
                    serving += 1
            ready_out[c, k] = serving

            if current == 0:
                continue
            if current > max_r:
                desired = max_r
            elif current < min_r:
                desired = min_r
            else:
                share = 0
                if serving > 0:
                    share = demand_m[k] // serving
                    if limit_m > 0 and share > limit_m:
                        share = limit_m
                proposal = -1
                if kind == KIND_CPU:
                    counted = 0
                    counted_usage = 0
                    for i in range(n):
                        is_serving = now >= created[i] + startup_s
                        ltt = created[i] + startup_s if is_serving else created[i]
                        if created[i] + init_period_s > now:
                            unready = (not is_serving) or now < ltt + window_s
                        else:
                            unready = (not is_serving) and (created[i] + readiness_delay_s > ltt)
                        if not unready:
                            counted += 1
                            if is_serving:
                                counted_usage += share
                    if counted > 0:
                        util = (counted_usage * 100) // (counted * request_m)
                        ratio = util / target
                        n_unready = n - counted
                        if not (n_unready > 0 and ratio > 1.0):
                            if _within(ratio, tol_up, tol_down):
                                proposal = current
                            else:
                                proposal = _int32_ceil(ratio * counted)
                        else:
                            new_util = (counted_usage * 100) // (n * request_m)
                            new_ratio = new_util / target
                            flipped = (ratio < 1.0 and new_ratio > 1.0) or (
                                ratio > 1.0 and new_ratio < 1.0
                            )
                            if _within(new_ratio, tol_up, tol_down) or flipped:
                                proposal = current
                            else:
                                m = _int32_ceil(new_ratio * n)
                                if (new_ratio < 1.0 and m > current) or (
                                    new_ratio > 1.0 and m < current
                                ):
                                    proposal = current
                                else:
                                    proposal = m
                else:
                    usage = (share * serving) // n
                    ratio = usage / target
                    if _within(ratio, tol_up, tol_down):
                        proposal = current
                    else:
                        proposal = _int32_ceil(ratio * n)

                if second_target > 0:
                    # Every pod reports it (not Ready: 0), without the CPU readiness rules.
                    share_2 = second_m[k] // serving if serving > 0 else 0
                    ratio_2 = ((share_2 * serving) // n) / second_target
                    if _within(ratio_2, tol_up, tol_down):
                        proposal_2 = current
                    else:
                        proposal_2 = _int32_ceil(ratio_2 * n)
                    if proposal == -1:
                        if proposal_2 >= current:
                            proposal = proposal_2
                    elif proposal_2 > proposal:
                        proposal = proposal_2

                if proposal == -1:
                    # No metric: the controller keeps the count and stores nothing.
                    continue
                desired = max(0, proposal)
                recs[k] = desired

                if not behavior:
                    stabilized = desired
                    cutoff = now - downscale_window_s
                    if seed_t >= cutoff and seed > stabilized:
                        stabilized = seed
                    j = k - 1
                    while j >= 0 and t[j] >= cutoff:
                        if recs[j] > stabilized:
                            stabilized = recs[j]
                        j -= 1
                    limit = _int32_trunc(max(up_factor * float(current), up_minimum))
                    upper = limit if max_r > limit else max_r
                    if stabilized < min_r:
                        desired = min_r
                    elif stabilized > upper:
                        desired = upper
                    else:
                        desired = stabilized
                else:
                    up_cut = now - up_window
                    down_cut = now - down_window
                    low = desired
                    high = desired
                    if seed_t > up_cut:
                        low = min(low, seed)
                    if seed_t > down_cut:
                        high = max(high, seed)
                    j = k - 1
                    while j >= 0 and (t[j] > up_cut or t[j] > down_cut):
                        if recs[j] >= 0:
                            if t[j] > up_cut:
                                low = min(low, recs[j])
                            if t[j] > down_cut:
                                high = max(high, recs[j])
                        j -= 1
                    stabilized = current
                    if stabilized < low:
                        stabilized = low
                    if stabilized > high:
                        stabilized = high
                    desired = stabilized
                    if stabilized > current:
                        limit = _policy_limit(
                            p,
                            P_POLICIES,
                            True,
                            current,
                            now,
                            up_times,
                            up_changes,
                            up_count,
                            down_times,
                            down_changes,
                            down_count,
                        )
                        limit = max(limit, current)
                        upper = limit if max_r > limit else max_r
                        if stabilized > upper:
                            desired = upper
                    elif stabilized < current:
                        limit = _policy_limit(
                            p,
                            P_POLICIES + 3 * MAX_POLICIES,
                            False,
                            current,
                            now,
                            up_times,
                            up_changes,
                            up_count,
                            down_times,
                            down_changes,
                            down_count,
                        )
                        limit = min(limit, current)
                        lower = limit if min_r < limit else min_r
                        if stabilized < lower:
                            desired = lower

            if desired != current:
                if behavior:
                    if desired > current:
                        up_count = _store_event(
                            up_times,
                            up_changes,
                            up_outdated,
                            up_count,
                            now,
                            up_longest,
                            desired - current,
                        )
                    else:
                        down_count = _store_event(
                            down_times,
                            down_changes,
                            down_outdated,
                            down_count,
                            now,
                            down_longest,
                            current - desired,
                        )
                if desired > current:
                    if desired > capacity:
                        grown = np.empty(desired + 1, dtype=np.float64)
                        grown[:n] = created[:n]
                        created = grown
                        capacity = desired + 1
                    for i in range(n, desired):
                        created[i] = now
                n = desired
        replicas_out[c, n_steps] = n
