"""HPA tuning: replay a CPU-utilization HPA over recorded demand and compare configs.

This is a deliberately simple replay, good enough to compare two configs on
last month's load. It differs from the real controller (see
``/work/shared/conformance/hpa/SPEC.md``) in these ways:

* one decision per demand sample, not per sync period (``sync_period_s`` is
  kept for the exact controller that will replace this core);
* utilization is demand over (replicas × request) as a float, where the
  controller truncates to an integer percent of the *pods' measured* usage;
* every replica is ready and reports metrics (no missing or unready pods, no
  CPU initialization period, no metrics-server window);
* a decision takes effect at the next sample, with no pod start-up delay;
* no scale-up or scale-down rate policies (4 pods / 100 % per 15 s) and no
  legacy ×2 scale-up limit: only tolerance, the min/max clamp and the two
  stabilization windows of the ``behavior`` path;
* one tolerance for both directions.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from rknb.errors import ParameterError

__all__ = [
    "HpaConfig",
    "ReplaySummary",
    "compare",
    "headline",
    "replay",
    "scale_events",
    "summarize",
    "with_changes",
]

logger = logging.getLogger(__name__)

#: Two scale events in opposite directions closer than this count as one flap.
FLAP_WINDOW_S = 600.0


@dataclass(frozen=True)
class HpaConfig:
    """The HPA settings the replay uses; ``target_utilization`` is a fraction (0.7 = 70 %)."""

    min_replicas: int
    max_replicas: int
    target_utilization: float
    tolerance: float = 0.1
    scale_down_stabilization_s: float = 300.0
    scale_up_stabilization_s: float = 0.0
    sync_period_s: float = 15.0

    def __post_init__(self) -> None:
        if self.min_replicas < 1:
            raise ParameterError("min_replicas", f"must be at least 1, got {self.min_replicas}")
        if self.max_replicas < self.min_replicas:
            raise ParameterError(
                "max_replicas",
                f"{self.max_replicas} is below min_replicas {self.min_replicas}; raise it",
            )
        if not self.target_utilization > 0:
            raise ParameterError(
                "target_utilization",
                f"must be a positive fraction (0.7 = 70 %), got {self.target_utilization}",
            )
        if self.tolerance < 0:
            raise ParameterError("tolerance", f"cannot be negative, got {self.tolerance}")

    @classmethod
    def from_object(cls, hpa: dict[str, Any]) -> HpaConfig:
        """Return the config of an autoscaling/v2 HorizontalPodAutoscaler object.

        Reads ``minReplicas`` (default 1), ``maxReplicas``, the Resource ``cpu``
        Utilization target (80 % when ``metrics`` is empty, as the API
        defaults it), ``behavior.scale{Up,Down}.stabilizationWindowSeconds``
        (0 s and 300 s when absent) and ``syncPeriodSeconds`` (15 s).
        """
        name = (hpa.get("metadata") or {}).get("name", "?")
        spec = hpa.get("spec") or {}
        if "maxReplicas" not in spec:
            raise ParameterError("hpa", f"HorizontalPodAutoscaler {name!r} has no spec.maxReplicas")

        metrics = spec.get("metrics") or []
        target_percent: float | None = 80.0 if not metrics else None
        for metric in metrics:
            resource = metric.get("resource") or {}
            target = resource.get("target") or {}
            if (
                metric.get("type") == "Resource"
                and resource.get("name") == "cpu"
                and target.get("type") == "Utilization"
            ):
                target_percent = float(target["averageUtilization"])
        if target_percent is None:
            raise ParameterError(
                "hpa",
                f"HorizontalPodAutoscaler {name!r} has no Resource cpu Utilization target; "
                "the replay models CPU utilization only",
            )
        if len(metrics) > 1:
            logger.warning(
                "HPA %s has %d metrics; the replay uses the CPU utilization target only",
                name,
                len(metrics),
            )

        behavior = spec.get("behavior") or {}
        up = behavior.get("scaleUp") or {}
        down = behavior.get("scaleDown") or {}
        if "tolerance" in up or "tolerance" in down:
            logger.warning(
                "HPA %s sets behavior tolerances; the replay uses the default 0.1 for both", name
            )
        return cls(
            min_replicas=int(spec.get("minReplicas", 1)),
            max_replicas=int(spec["maxReplicas"]),
            target_utilization=target_percent / 100,
            scale_down_stabilization_s=float(down.get("stabilizationWindowSeconds", 300)),
            scale_up_stabilization_s=float(up.get("stabilizationWindowSeconds", 0)),
            sync_period_s=float(spec.get("syncPeriodSeconds", 15)),
        )


def _unix_s(times: pd.DatetimeIndex) -> np.ndarray:
    # Not asi8: its unit follows the index's resolution (ns, us or s under pandas 3).
    return np.asarray((times - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1), dtype=float)


def replay(
    demand_cores: pd.Series,
    *,
    cpu_request_cores: float,
    config: HpaConfig,
    initial_replicas: int,
) -> pd.DataFrame:
    """Return what the HPA would have done at each demand sample.

    Columns: ``timestamp``; ``demand_cores``; ``replicas`` running during the
    sample; ``utilization``, demand / (replicas × request) as a fraction;
    ``desired``, the stabilized decision, which becomes ``replicas`` at the
    next sample. The raw proposal is ``ceil(replicas × utilization / target)``
    unless ``1 − tolerance ≤ utilization / target ≤ 1 + tolerance``, clamped to
    [min, max]; scale-down stabilization takes the highest proposal of the
    trailing window, scale-up stabilization the lowest, and neither moves
    past the current replicas. A NaN demand keeps the replicas.

    Parameters
    ----------
    demand_cores
        CPU cores the workload used, summed over its pods, indexed by UTC timestamps.
    cpu_request_cores
        The CPU request of one pod.
    config
        The HPA settings.
    initial_replicas
        Replicas running at the first sample (clamped to [min, max] at once,
        as the controller does).
    """
    if cpu_request_cores <= 0:
        raise ParameterError("cpu_request_cores", f"must be positive, got {cpu_request_cores}")
    if initial_replicas < 0:
        raise ParameterError("initial_replicas", f"cannot be negative, got {initial_replicas}")
    demand = demand_cores.sort_index()
    times = pd.DatetimeIndex(demand.index)
    t_s = _unix_s(times)
    values = demand.to_numpy(dtype=float)

    replicas_col = np.zeros(len(values), dtype=int)
    desired_col = np.zeros(len(values), dtype=int)
    util_col = np.full(len(values), np.nan)
    history: deque[tuple[float, int]] = deque()
    longest = max(config.scale_down_stabilization_s, config.scale_up_stabilization_s)
    replicas = initial_replicas
    for i, (now, demand_now) in enumerate(zip(t_s, values, strict=True)):
        if replicas < config.min_replicas or replicas > config.max_replicas:
            replicas = min(max(replicas, config.min_replicas), config.max_replicas)
        replicas_col[i] = replicas

        if math.isnan(demand_now):
            proposal = replicas
        else:
            utilization = demand_now / (replicas * cpu_request_cores)
            util_col[i] = utilization
            ratio = utilization / config.target_utilization
            # Both bounds inclusive and in this float form, as upstream's isWithin.
            if 1.0 - config.tolerance <= ratio <= 1.0 + config.tolerance:
                proposal = replicas
            else:
                proposal = math.ceil(replicas * ratio)
            proposal = min(max(proposal, config.min_replicas), config.max_replicas)

        # Stabilization over raw proposals, "within the last W s" strict as upstream.
        while history and history[0][0] <= now - longest:
            history.popleft()
        down = max(
            [proposal, *(p for t, p in history if t > now - config.scale_down_stabilization_s)]
        )
        up = min([proposal, *(p for t, p in history if t > now - config.scale_up_stabilization_s)])
        history.append((now, proposal))
        stabilized = max(replicas, up)
        stabilized = min(stabilized, down)
        desired_col[i] = stabilized
        replicas = stabilized

    return pd.DataFrame(
        {
            "timestamp": times,
            "demand_cores": values,
            "replicas": replicas_col,
            "desired": desired_col,
            "utilization": util_col,
        }
    )


@dataclass(frozen=True)
class ReplaySummary:
    """Headline figures of one replay."""

    #: Sum over samples of running replicas × step, in hours.
    replica_hours: float
    #: Fraction of samples (with demand) whose utilization was above the target.
    fraction_above_target: float
    #: Time spent at ``max_replicas``, in seconds.
    time_at_max_s: float
    #: Samples at which the replicas went up / down.
    scale_ups: int
    scale_downs: int
    #: Scale events whose direction reversed the previous event's within 10 minutes.
    flaps: int
    peak_replicas: int
    #: Highest utilization seen (fraction).
    peak_utilization: float


def summarize(replay_frame: pd.DataFrame, *, config: HpaConfig, step_s: float) -> ReplaySummary:
    """Return the headline figures of a :func:`replay` frame.

    Parameters
    ----------
    replay_frame
        The output of :func:`replay`.
    config
        The config it was replayed with.
    step_s
        Seconds each sample stands for (the demand's query step).
    """
    replicas = replay_frame["replicas"].to_numpy(dtype=int)
    utilization = replay_frame["utilization"].to_numpy(dtype=float)
    t_s = _unix_s(pd.DatetimeIndex(replay_frame["timestamp"]))

    change = np.diff(replicas)
    event_at = np.flatnonzero(change) + 1
    directions = np.sign(change[event_at - 1])
    flaps = 0
    for k in range(1, len(event_at)):
        reversed_ = directions[k] != directions[k - 1]
        if reversed_ and t_s[event_at[k]] - t_s[event_at[k - 1]] <= FLAP_WINDOW_S:
            flaps += 1

    with_demand = utilization[~np.isnan(utilization)]
    return ReplaySummary(
        replica_hours=float(replicas.sum() * step_s / 3600),
        fraction_above_target=(
            float(np.mean(with_demand > config.target_utilization)) if len(with_demand) else 0.0
        ),
        time_at_max_s=float(np.count_nonzero(replicas == config.max_replicas) * step_s),
        scale_ups=int(np.count_nonzero(change > 0)),
        scale_downs=int(np.count_nonzero(change < 0)),
        flaps=flaps,
        peak_replicas=int(replicas.max()) if len(replicas) else 0,
        peak_utilization=float(with_demand.max()) if len(with_demand) else math.nan,
    )


def compare(a: ReplaySummary, b: ReplaySummary) -> pd.DataFrame:
    """Return a table of both summaries, indexed by figure, with ``delta`` = b − a.

    Columns ``a``, ``b``, ``delta`` and ``better`` (``"a"``, ``"b"`` or ``"="``;
    lower is better for every figure: cost, risk and churn).
    """
    left, right = asdict(a), asdict(b)
    table = pd.DataFrame({"a": left, "b": right}, dtype=float)
    table["delta"] = table["b"] - table["a"]
    table["better"] = np.where(table["delta"] < 0, "b", np.where(table["delta"] > 0, "a", "="))
    table.index.name = "figure"
    return table


def scale_events(replicas: pd.Series) -> pd.DataFrame:
    """Return each change of a replica-count series: ``time``, ``from``, ``to``, ``direction``.

    The series is typically ``hpa_desired_replicas`` or ``deployment_replicas``
    from kube-state-metrics; missing samples are skipped, not read as zero.
    """
    values = replicas.dropna().sort_index()
    previous = values.shift(1)
    changed = values[(previous.notna()) & (values != previous)]
    return pd.DataFrame(
        {
            "time": changed.index,
            "from": previous[changed.index].astype(int).to_numpy(),
            "to": changed.astype(int).to_numpy(),
            "direction": np.where(
                changed.to_numpy() > previous[changed.index].to_numpy(), "up", "down"
            ),
        }
    )


def with_changes(
    config: HpaConfig,
    *,
    min_replicas: int = 0,
    max_replicas: int = 0,
    target_utilization: float = 0.0,
    scale_down_stabilization_s: float = -1.0,
) -> HpaConfig:
    """Return a candidate config: the given settings replaced, zero (or -1 s) meaning unchanged."""
    return HpaConfig(
        min_replicas=min_replicas or config.min_replicas,
        max_replicas=max_replicas or config.max_replicas,
        target_utilization=target_utilization or config.target_utilization,
        tolerance=config.tolerance,
        scale_down_stabilization_s=(
            scale_down_stabilization_s
            if scale_down_stabilization_s >= 0
            else config.scale_down_stabilization_s
        ),
        scale_up_stabilization_s=config.scale_up_stabilization_s,
        sync_period_s=config.sync_period_s,
    )


def headline(
    current: ReplaySummary,
    candidate: ReplaySummary,
    observed: pd.DataFrame,
    *,
    current_config: HpaConfig,
    candidate_config: HpaConfig,
) -> str:
    """Return the tuning headline as Markdown: what happened, and current vs candidate."""
    ups = int((observed["direction"] == "up").sum()) if len(observed) else 0
    downs = len(observed) - ups
    hours_delta = candidate.replica_hours - current.replica_hours
    above_delta = candidate.fraction_above_target - current.fraction_above_target
    lines = [
        f"**Observed: {ups} scale-ups and {downs} scale-downs. Replayed with the current config "
        f"(target {current_config.target_utilization:.0%}, {current_config.min_replicas}.."
        f"{current_config.max_replicas}): {current.replica_hours:,.0f} replica-hours, "
        f"{current.fraction_above_target:.1%} of the time above target, peak "
        f"{current.peak_replicas} replicas.**",
        "",
        f"- Candidate (target {candidate_config.target_utilization:.0%}, "
        f"{candidate_config.min_replicas}..{candidate_config.max_replicas}, scale-down window "
        f"{candidate_config.scale_down_stabilization_s:.0f} s): "
        f"{candidate.replica_hours:,.0f} replica-hours ({hours_delta:+,.0f}), "
        f"{candidate.fraction_above_target:.1%} above target ({above_delta:+.1%}), "
        f"{candidate.flaps} flaps against {current.flaps}, peak {candidate.peak_replicas}.",
    ]
    return "\n".join(lines)
