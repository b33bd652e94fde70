"""The demo scenario's model: seeded numbers, the controller simulation, and the raw series.

Everything here derives from one ``numpy.random.default_rng(seed)``, drawn in a
fixed order, so that a seed always gives the same history. The controller
model (a small HPA plus the Deployment's rolling update) is deliberately
simple and lives only here; the analysis code has its own exact HPA and must
find what this model did from the series alone.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field

import numpy as np

from rknb.tsdb import SeriesStore

__all__ = ["Plan", "PodLife", "Simulation", "build_series", "draw_plan", "simulate"]

DAY_S = 86400
HOUR_S = 3600
MIB = 1024 * 1024

#: The alphabet Kubernetes uses for generated name suffixes (no vowels, no 0/1/3).
NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"

#: Upper bounds of the request-duration histogram's buckets, in seconds.
BUCKETS_S = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
#: The ``le`` label values as the service's Rust client writes them.
BUCKET_LABELS = ("0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "+Inf")

SERVICE_NAMESPACE = "reasonkit"
SERVICE_DEPLOYMENT = "reasonkit-pro-mcp"
SERVICE_CONTAINER = "mcp-server"
SERVICE_HPA = "reasonkit-pro-hpa"
CPU_REQUEST_CORES = 0.25
CPU_LIMIT_CORES = 0.5
MEMORY_REQUEST_BYTES = 256 * MIB
MEMORY_LIMIT_BYTES = 512 * MIB
HPA_MIN_REPLICAS = 3
HPA_MAX_REPLICAS = 10
HPA_TARGET_UTILIZATION = 0.70
HPA_TOLERANCE = 0.10
HPA_DOWNSCALE_STABILIZATION_S = 300
MAX_SURGE = 1

#: Release keys of the service's ReplicaSets, oldest first.
RELEASES = ("v0.9.0", "v1.0.0", "v1.1.0")


@dataclass(frozen=True)
class Plan:
    """Every seeded number of the scenario, drawn once; the facts table reads these."""

    seed: int
    growth: bool
    start_s: int
    end_s: int
    step_s: int
    # traffic
    peak_rps_end: float
    growth_per_week: float
    trough_ratio: float
    weekend_ratio: float
    peak_hour_utc: float
    noise_sigma: float
    # load model
    cpu_base_cores: float
    cpu_per_request_core_s: float
    ready_delay_s: tuple[int, int]
    # latency and errors
    latency_median_s: float
    latency_sigma: float
    baseline_error_ratio: float
    regression_latency_factor: float
    regression_error_ratio: float
    regression_delay_s: int
    # release history
    release_s: int
    rollback_s: int
    rev1_created_s: int
    rev2_created_s: int
    deployment_created_s: int
    # memory
    memory_base_bytes: float
    memory_plateau_ratio: float
    memory_leak_s: float
    oom_s: int
    oom_ramp_s: int
    liveness_restart_s: int
    # the other workloads
    indexer_cpu_cores: float
    indexer_memory_bytes: float
    cache_cpu_cores: float
    cache_memory_bytes: float
    legacy_cpu_cores: float
    legacy_memory_bytes: float
    debug_cpu_cores: float
    debug_memory_bytes: float
    api_key: str
    db_password: str


def _token(rng: np.random.Generator, length: int) -> str:
    """Return a random string over the Kubernetes name alphabet."""
    picks = rng.integers(0, len(NAME_ALPHABET), size=length)
    return "".join(NAME_ALPHABET[int(i)] for i in picks)


def _secret(rng: np.random.Generator, length: int) -> str:
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    picks = rng.integers(0, len(alphabet), size=length)
    return "".join(alphabet[int(i)] for i in picks)


def draw_plan(seed: int, growth: bool, start_s: int, end_s: int, step_s: int) -> Plan:
    """Return the scenario's seeded numbers, drawn in a fixed order from ``default_rng(seed)``."""
    rng = np.random.default_rng(seed)
    u = rng.uniform

    peak_rps_end = float(u(120.0, 180.0))
    growth_per_week = float(u(0.035, 0.045)) if growth else 0.0
    trough_ratio = float(u(0.22, 0.28))
    weekend_ratio = float(u(0.60, 0.70))
    peak_hour_utc = float(u(14.0, 16.0))

    # The per-request CPU cost is chosen so that the daily peak at the end needs
    # 6-8 replicas at the HPA's 70 % target (a smaller cost means fewer pods).
    peak_replicas = float(u(5.6, 6.6))
    cpu_base = 0.02
    target_cores = CPU_REQUEST_CORES * HPA_TARGET_UTILIZATION
    cpu_per_request = (peak_replicas * (target_cores - cpu_base)) / peak_rps_end

    # Release on day 9, 10 or 11 (Tuesday to Thursday) in business hours, on a scrape.
    release_day = int(rng.integers(8, 11))
    release_tod = int(u(10 * HOUR_S, 15 * HOUR_S)) // step_s * step_s
    release_s = start_s + release_day * DAY_S + release_tod + 1
    rollback_s = release_s + int(u(40 * 60, 70 * 60)) // step_s * step_s
    regression_delay_s = int(rng.integers(60, 181))

    rev2_created_s = start_s - int(u(4 * DAY_S, 6 * DAY_S))
    rev1_created_s = rev2_created_s - int(u(20 * DAY_S, 40 * DAY_S))
    deployment_created_s = rev1_created_s - int(u(10 * DAY_S, 30 * DAY_S))

    # The OOM kill happens on day 13 (after the rollback, on a long-lived pod); the
    # liveness restart on day 3-7, before the release.
    oom_s = start_s + 12 * DAY_S + int(u(2 * HOUR_S, 20 * HOUR_S)) // step_s * step_s
    liveness_day = int(rng.integers(2, 7))
    liveness_restart_s = (
        start_s + liveness_day * DAY_S + int(u(1 * HOUR_S, 23 * HOUR_S)) // step_s * step_s + 1
    )

    return Plan(
        seed=seed,
        growth=growth,
        start_s=start_s,
        end_s=end_s,
        step_s=step_s,
        peak_rps_end=peak_rps_end,
        growth_per_week=growth_per_week,
        trough_ratio=trough_ratio,
        weekend_ratio=weekend_ratio,
        peak_hour_utc=peak_hour_utc,
        noise_sigma=0.03,
        cpu_base_cores=cpu_base,
        cpu_per_request_core_s=cpu_per_request,
        ready_delay_s=(35, 45),
        latency_median_s=float(u(0.038, 0.042)),
        latency_sigma=0.80,
        # Above a 99.9 % SLO's budget, inside a 99 % one: the demo misses 0.999. Drawn from
        # its own stream so that adding it moved none of the other draws.
        baseline_error_ratio=float(np.random.default_rng([seed, 2]).uniform(0.00105, 0.0014)),
        regression_latency_factor=float(u(3.0, 5.0)),
        regression_error_ratio=float(u(0.03, 0.06)),
        regression_delay_s=regression_delay_s,
        release_s=release_s,
        rollback_s=rollback_s,
        rev1_created_s=rev1_created_s,
        rev2_created_s=rev2_created_s,
        deployment_created_s=deployment_created_s,
        memory_base_bytes=float(u(150, 170)) * MIB,
        memory_plateau_ratio=float(u(0.80, 0.95)),
        memory_leak_s=float(u(20 * HOUR_S, 30 * HOUR_S)),
        oom_s=oom_s,
        oom_ramp_s=2 * HOUR_S,
        liveness_restart_s=liveness_restart_s,
        indexer_cpu_cores=float(u(0.05, 0.10)),
        indexer_memory_bytes=float(u(280, 320)) * MIB,
        cache_cpu_cores=float(u(0.025, 0.035)),
        cache_memory_bytes=float(u(570, 630)) * MIB,
        legacy_cpu_cores=float(u(0.05, 0.15)),
        legacy_memory_bytes=float(u(180, 260)) * MIB,
        debug_cpu_cores=0.002,
        debug_memory_bytes=float(u(8, 16)) * MIB,
        api_key="rk_live_" + _secret(rng, 32),
        db_password="s3cr3t-" + _secret(rng, 16),
    )


def template_hash(seed: int, key: str) -> str:
    """Return a 10-character pod-template-hash for a template, stable for a seed."""
    digest = hashlib.sha256(f"rknb-scenario/{seed}/{key}".encode()).digest()
    number = int.from_bytes(digest[:8], "big")
    chars = []
    for _ in range(10):
        number, rest = divmod(number, len(NAME_ALPHABET))
        chars.append(NAME_ALPHABET[rest])
    return "".join(chars)


@dataclass
class PodLife:
    """One pod of a workload over the scenario: when it was created, ready, deleted, restarted."""

    name: str
    namespace: str
    workload: str
    container: str
    release: str
    template_hash: str
    created_s: int
    ready_s: int
    deleted_s: int | None = None
    #: (time, reason, ready again at) of each container restart
    restarts: list[tuple[int, str, int]] = field(default_factory=list)

    def is_ready(self, t: int) -> bool:
        """Return whether the pod serves traffic at ``t``."""
        if t < self.ready_s or (self.deleted_s is not None and t >= self.deleted_s):
            return False
        return not any(at <= t < back for at, _, back in self.restarts)


@dataclass
class Simulation:
    """What the controller model did: the pods, the replica counts, the scale events."""

    plan: Plan
    t_s: np.ndarray
    rps: np.ndarray
    pods: list[PodLife]
    hpa_desired: np.ndarray
    scale_events: list[tuple[int, int, int]]  # (time, from, to)
    rs_created_s: dict[str, int]
    first_ready_s: dict[str, int]
    last_deleted_s: dict[str, int]


def traffic_rps(plan: Plan, t_s: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Return requests per second to the service at each sample (before noise it is smooth)."""
    hour = (t_s % DAY_S) / HOUR_S
    diurnal_shape = 0.5 + 0.5 * np.cos(2 * np.pi * (hour - plan.peak_hour_utc) / 24)
    diurnal = plan.trough_ratio + (1 - plan.trough_ratio) * diurnal_shape
    # 1970-01-01 was a Thursday: day 2 and 3 of the week counted from it are Sat, Sun.
    weekday = ((t_s // DAY_S) + 3) % 7  # Monday = 0
    weekly = np.where(weekday >= 5, plan.weekend_ratio, 1.0)
    weeks_to_end = (plan.end_s - t_s) / (7 * DAY_S)
    growth = (1 + plan.growth_per_week) ** (-weeks_to_end)
    noise = np.exp(rng.normal(0.0, plan.noise_sigma, size=len(t_s)))
    return plan.peak_rps_end * diurnal * weekly * growth * noise


def simulate(plan: Plan) -> Simulation:
    """Run the controller model over the window and return the pods' lifetimes."""
    rng = np.random.default_rng([plan.seed, 1])
    step = plan.step_s
    t_s = np.arange(plan.start_s, plan.end_s + 1, step, dtype=np.int64)
    rps = traffic_rps(plan, t_s, rng)
    hashes = {r: template_hash(plan.seed, f"{SERVICE_DEPLOYMENT}/{r}") for r in RELEASES}

    pods: list[PodLife] = []
    names: set[str] = set()

    def new_pod(release: str, at: int) -> PodLife:
        while True:
            name = f"{SERVICE_DEPLOYMENT}-{hashes[release]}-{_token(rng, 5)}"
            if name not in names:
                break
        names.add(name)
        delay = int(rng.integers(plan.ready_delay_s[0], plan.ready_delay_s[1] + 1))
        pod = PodLife(
            name, SERVICE_NAMESPACE, SERVICE_DEPLOYMENT, SERVICE_CONTAINER,
            release, hashes[release], at, at + delay,
        )  # fmt: skip
        pods.append(pod)
        return pod

    # The window opens on a Monday night: three v1.0.0 pods that have run for days.
    for i in range(HPA_MIN_REPLICAS):
        new_pod("v1.0.0", plan.rev2_created_s + 60 * i)

    replicas = HPA_MIN_REPLICAS
    template = "v1.0.0"
    recent: list[tuple[int, int]] = []
    desired = np.empty(len(t_s), dtype=np.float64)
    desired[0] = replicas
    events: list[tuple[int, int, int]] = []
    rs_created = {"v0.9.0": plan.rev1_created_s, "v1.0.0": plan.rev2_created_s}
    k_oom = int((plan.oom_s - plan.start_s) // step)
    k_live = int((plan.liveness_restart_s - 1 - plan.start_s) // step)

    for k, t in enumerate(t_s.tolist()):
        at = t + 1  # controllers act just after the scrape at t
        alive = [p for p in pods if p.deleted_s is None]

        # Planted container restarts, on the longest-running pods.
        if k in (k_oom, k_live):
            oldest = sorted(alive, key=lambda p: p.created_s)[:HPA_MIN_REPLICAS]
            victim = oldest[int(rng.integers(0, len(oldest)))]
            reason = "OOMKilled" if k == k_oom else "Error"
            back = at + int(rng.integers(plan.ready_delay_s[0], plan.ready_delay_s[1] + 1))
            victim.restarts.append((at, reason, back))

        if t + 1 == plan.release_s:
            template = "v1.1.0"
            rs_created["v1.1.0"] = at
        if t + 1 == plan.rollback_s:
            template = "v1.0.0"

        # The HPA: ratio of mean utilization to the target, with tolerance.
        ready = [p for p in alive if p.is_ready(t)]
        n_ready = max(len(ready), 1)
        cpu_cores = plan.cpu_base_cores * n_ready + plan.cpu_per_request_core_s * rps[k]
        utilization = cpu_cores / (n_ready * CPU_REQUEST_CORES)
        ratio = utilization / HPA_TARGET_UTILIZATION
        proposal = replicas if abs(ratio - 1) <= HPA_TOLERANCE else math.ceil(replicas * ratio)
        proposal = min(max(proposal, HPA_MIN_REPLICAS), HPA_MAX_REPLICAS)
        recent = [(tt, r) for tt, r in recent if tt > t - HPA_DOWNSCALE_STABILIZATION_S]
        recent.append((t, proposal))
        # Scale up at once; scale down only to the highest proposal of the last 300 s.
        highest = max(r for _, r in recent)
        new_replicas = proposal if proposal > replicas else min(replicas, highest)
        if new_replicas != replicas:
            events.append((at, replicas, new_replicas))
            replicas = new_replicas
        if k + 1 < len(t_s):
            desired[k + 1] = replicas

        # The Deployment controller: RollingUpdate with maxSurge 1, maxUnavailable 0.
        current = [p for p in alive if p.release == template]
        old = [p for p in alive if p.release != template]
        if old:
            available = sum(p.is_ready(t) for p in alive)
            removable = max(0, available - replicas)
            unready_old = [p for p in old if not p.is_ready(t)]
            for p in unready_old + sorted(
                (p for p in old if p.is_ready(t)), key=lambda p: -p.created_s
            ):
                if p in unready_old or removable > 0:
                    if p not in unready_old:
                        removable -= 1
                    p.deleted_s = at
            total = sum(p.deleted_s is None for p in alive)
            room = replicas + MAX_SURGE - total
            for _ in range(max(0, min(room, replicas - len(current)))):
                new_pod(template, at)
        elif len(current) < replicas:
            for _ in range(replicas - len(current)):
                new_pod(template, at)
        elif len(current) > replicas:
            # A ReplicaSet scales down its newest pods first.
            for p in sorted(current, key=lambda p: -p.created_s)[: len(current) - replicas]:
                p.deleted_s = at

    first_ready: dict[str, int] = {}
    last_deleted: dict[str, int] = {}
    for p in pods:
        if p.created_s >= plan.start_s:
            first_ready[p.release] = min(first_ready.get(p.release, p.ready_s), p.ready_s)
        if p.deleted_s is not None:
            last_deleted[p.release] = max(last_deleted.get(p.release, 0), p.deleted_s)
    return Simulation(plan, t_s, rps, pods, desired, events, rs_created, first_ready, last_deleted)


# ----------------------------------------------------------------------------- series


def _norm_cdf(x: np.ndarray) -> np.ndarray:
    """Return the standard normal CDF (Abramowitz & Stegun 7.1.26, error below 1.5e-7)."""
    z = np.abs(x) / math.sqrt(2)
    t = 1.0 / (1.0 + 0.3275911 * z)
    poly = t * (
        0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429)))
    )
    erf = 1.0 - poly * np.exp(-z * z)
    return 0.5 * (1.0 + np.sign(x) * erf)


def bucket_probabilities(median_s: np.ndarray, sigma: float) -> np.ndarray:
    """Return per-bucket (not cumulative) probabilities of a log-normal duration, shape (n, 8)."""
    bounds = np.log(np.asarray(BUCKETS_S))
    cdf = _norm_cdf((bounds[None, :] - np.log(median_s)[:, None]) / sigma)
    cdf = np.concatenate([np.zeros((len(median_s), 1)), cdf, np.ones((len(median_s), 1))], axis=1)
    return np.diff(cdf, axis=1)


def _overlap(a0: np.ndarray, a1: np.ndarray, b0: float, b1: float) -> np.ndarray:
    """Return the length of each interval [a0, a1) inside [b0, b1)."""
    return np.clip(np.minimum(a1, b1) - np.maximum(a0, b0), 0, None)


def _pod_fractions(pod: PodLife, t_s: np.ndarray, step: int) -> tuple[np.ndarray, np.ndarray]:
    """Return the fraction of each scrape interval (t-step, t] the pod served, and ran."""
    lo = (t_s - step).astype(np.float64)
    hi = t_s.astype(np.float64)
    end = float(pod.deleted_s) if pod.deleted_s is not None else math.inf
    served = _overlap(lo, hi, pod.ready_s, end)
    running = _overlap(lo, hi, pod.created_s, end)
    for at, _, back in pod.restarts:
        served -= _overlap(lo, hi, at, min(back, end))
    return np.clip(served / step, 0, 1), running / step


def _sample_range(pod: PodLife, t_s: np.ndarray) -> tuple[int, int]:
    """Return the first and one-past-last sample index at which the pod is scraped."""
    k0 = int(np.searchsorted(t_s, pod.created_s, side="left"))
    if pod.deleted_s is None:
        return k0, len(t_s)
    return k0, int(np.searchsorted(t_s, pod.deleted_s, side="right"))


def _segment_cumsum(increments: np.ndarray, resets: list[int], start: np.ndarray) -> np.ndarray:
    """Return cumulative sums along axis 0 that restart from zero at each reset index."""
    out = np.cumsum(increments, axis=0) + start
    for r in resets:
        out[r:] -= out[r - 1] if r > 0 else 0
    return out


def _pod_requests(
    plan: Plan,
    pod: PodLife,
    ts: np.ndarray,
    expected: np.ndarray,
    regression_start: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return one pod's requests, bucket counts, duration sums and errors per scrape interval."""
    step = plan.step_s
    requests = rng.poisson(expected).astype(np.float64)

    # Log-normal latency, slower with utilization, x3-5 on v1.1.0 once the regression starts.
    cores = plan.cpu_base_cores + plan.cpu_per_request_core_s * requests / step
    utilization = cores / CPU_REQUEST_CORES
    median = plan.latency_median_s * (1 + 0.4 * np.clip(utilization - 0.5, 0, None))
    if pod.release == "v1.1.0":
        lo = (ts - step).astype(np.float64)
        regressed = _overlap(lo, ts.astype(np.float64), regression_start, math.inf) / step
    else:
        regressed = np.zeros(len(ts))
    sigma = plan.latency_sigma
    factor = plan.regression_latency_factor
    p_good = bucket_probabilities(median, sigma)
    p_bad = bucket_probabilities(median * factor, sigma)
    pvals = p_good * (1 - regressed)[:, None] + p_bad * regressed[:, None]
    pvals /= pvals.sum(axis=1, keepdims=True)
    buckets = rng.multinomial(requests.astype(np.int64), pvals).astype(np.float64)

    mean_s = median * math.exp(sigma**2 / 2) * ((1 - regressed) + regressed * factor)
    duration_sum = requests * mean_s * np.exp(rng.normal(0, 0.02, size=len(ts)))
    error_ratio = (
        plan.baseline_error_ratio * (1 - regressed) + plan.regression_error_ratio * regressed
    )
    errors = rng.binomial(requests.astype(np.int64), error_ratio).astype(np.float64)
    return requests, buckets, duration_sum, errors


@dataclass
class _Workload:
    """A constant-size workload other than the service (for cpu and memory series)."""

    namespace: str
    deployment: str
    container: str
    replicas: int
    cpu_cores: float
    memory_bytes: float
    requests: dict[str, float]
    limits: dict[str, float]


def build_series(sim: Simulation, store: SeriesStore) -> list[PodLife]:
    """Fill the store with every raw series of the scenario; return the other workloads' pods."""
    plan = sim.plan
    rng = np.random.default_rng([plan.seed, 2])
    t_s = sim.t_s
    step = plan.step_s
    n = len(t_s)
    pods = sim.pods

    # How the service's traffic splits over the pods that were ready in each interval.
    served = np.zeros((len(pods), n))
    running = np.zeros((len(pods), n))
    for i, pod in enumerate(pods):
        served[i], running[i] = _pod_fractions(pod, t_s, step)
    share = served / np.maximum(served.sum(axis=0), 1e-9)
    regression_start = sim.first_ready_s.get("v1.1.0", plan.end_s) + plan.regression_delay_s

    service_ns = {"namespace": SERVICE_NAMESPACE}
    for i, pod in enumerate(pods):
        k0, k1 = _sample_range(pod, t_s)
        if k1 <= k0:
            continue
        ts = t_s[k0:k1]
        expected = share[i, k0:k1] * sim.rps[k0:k1] * step
        if k0 == 0:
            expected[0] = 0.0
        requests, buckets, duration_sum, errors = _pod_requests(
            plan, pod, ts, expected, regression_start, rng
        )

        # CPU: a base, the requests, a start-up burst, capped at the limit.
        run = running[i, k0:k1]
        starting = np.clip(run - served[i, k0:k1], 0, 1)
        cpu = run * plan.cpu_base_cores + plan.cpu_per_request_core_s * requests / step
        cpu = cpu + 0.15 * starting
        cpu = np.minimum(cpu * np.exp(rng.normal(0, 0.05, size=len(ts))), CPU_LIMIT_CORES)
        resets = [int(np.searchsorted(ts, at)) for at, _, _ in pod.restarts]
        resets = [r for r in resets if 0 < r < len(ts)]
        pod_labels = {**service_ns, "pod": pod.name}
        container_labels = {**pod_labels, "container": pod.container}

        # Pods that ran before the window carry what they counted until then.
        prior_s = max(0, plan.start_s - pod.created_s)
        prior = np.zeros(len(BUCKET_LABELS))
        prior_errors = prior_sum = prior_cpu = 0.0
        if prior_s:
            prior_requests = round(prior_s * float(np.mean(sim.rps)) / HPA_MIN_REPLICAS)
            base_p = bucket_probabilities(np.array([plan.latency_median_s]), plan.latency_sigma)[0]
            prior = np.floor(prior_requests * base_p)
            prior_errors = float(np.floor(prior.sum() * plan.baseline_error_ratio))
            prior_sum = (
                float(prior.sum()) * plan.latency_median_s * math.exp(plan.latency_sigma**2 / 2)
            )
            prior_cpu = prior_s * (plan.cpu_base_cores + 0.03)

        cum_buckets = np.cumsum(_segment_cumsum(buckets, resets, prior[None, :]), axis=1)
        for b, le in enumerate(BUCKET_LABELS):
            store.add(
                "mcp_request_duration_seconds_bucket",
                {**pod_labels, "le": le},
                ts,
                cum_buckets[:, b],
            )
        total = cum_buckets[:, -1]
        store.add("mcp_request_duration_seconds_count", pod_labels, ts, total)
        cum_sum = _segment_cumsum(duration_sum, resets, np.array(prior_sum))
        store.add("mcp_request_duration_seconds_sum", pod_labels, ts, np.round(cum_sum, 3))
        cum_err = _segment_cumsum(errors, resets, np.array(prior_errors))
        store.add("mcp_requests_total", {**pod_labels, "status": "error"}, ts, cum_err)
        store.add("mcp_requests_total", {**pod_labels, "status": "success"}, ts, total - cum_err)

        cum_cpu = _segment_cumsum(cpu * step, resets, np.array(prior_cpu))
        store.add("container_cpu_usage_seconds_total", container_labels, ts, np.round(cum_cpu, 3))
        store.add(
            "container_memory_working_set_bytes",
            container_labels,
            ts,
            _service_memory(plan, pod, ts, rng),
        )
        _add_pod_state(store, pod, ts, container_labels, MEMORY_REQUEST_BYTES, MEMORY_LIMIT_BYTES)

    _add_workload_state(store, sim)
    others = _other_pods(plan)
    for pod, workload in others:
        _add_other_pod(store, plan, pod, workload, t_s, rng)
    for w in other_workloads(plan):
        labels = {"namespace": w.namespace, "deployment": w.deployment}
        count = np.full(n, float(w.replicas))
        store.add("kube_deployment_status_replicas", labels, t_s, count)
        store.add("kube_deployment_status_replicas_available", labels, t_s, count)
        rs_name = f"{w.deployment}-{template_hash(plan.seed, f'{w.deployment}/1')}"
        rs_labels = {"namespace": w.namespace, "replicaset": rs_name}
        store.add("kube_replicaset_status_ready_replicas", rs_labels, t_s, count)
    return [p for p, _ in others]


def _service_memory(
    plan: Plan, pod: PodLife, ts: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Return the working set of a service container: a slow leak that the OOM kill resets."""
    started = np.full(len(ts), float(pod.created_s))
    for at, _, _ in pod.restarts:
        started[ts >= at] = at
    uptime = ts - started
    plateau = plan.memory_plateau_ratio * MEMORY_LIMIT_BYTES
    leak = np.minimum(uptime / plan.memory_leak_s, 1.0)
    memory = plan.memory_base_bytes + (plateau - plan.memory_base_bytes) * leak
    memory = memory + rng.normal(0, 1.5 * MIB, size=len(ts))
    memory = np.minimum(memory, plateau + 2 * MIB)
    for at, reason, _ in pod.restarts:
        if reason != "OOMKilled":
            continue
        # A burst of allocation drives the working set to the limit at the OOM kill.
        oom_at = at - 1
        ramp = np.clip((ts - (oom_at - plan.oom_ramp_s)) / plan.oom_ramp_s, 0, 1) * (ts <= oom_at)
        memory = memory + (MEMORY_LIMIT_BYTES - memory) * ramp
    memory = np.floor(memory / 4096) * 4096
    for at, reason, _ in pod.restarts:
        if reason == "OOMKilled":
            memory[ts == at - 1] = MEMORY_LIMIT_BYTES
    return memory


def _add_pod_state(
    store: SeriesStore,
    pod: PodLife,
    ts: np.ndarray,
    labels: dict[str, str],
    memory_request: float | None,
    memory_limit: float | None,
    cpu_request: float | None = CPU_REQUEST_CORES,
    cpu_limit: float | None = CPU_LIMIT_CORES,
) -> None:
    """Add a pod container's kube-state-metrics series: restarts, reasons, requests, limits."""
    restarts = np.zeros(len(ts))
    for at, reason, _ in pod.restarts:
        after = ts >= at
        restarts[after] += 1
        if after.any():
            first = int(np.argmax(after))
            store.add(
                "kube_pod_container_status_last_terminated_reason",
                {**labels, "reason": reason},
                ts[first:],
                np.ones(len(ts) - first),
            )
    store.add("kube_pod_container_status_restarts_total", labels, ts, restarts)
    for metric, resource, unit, value in (
        ("kube_pod_container_resource_requests", "cpu", "core", cpu_request),
        ("kube_pod_container_resource_requests", "memory", "byte", memory_request),
        ("kube_pod_container_resource_limits", "cpu", "core", cpu_limit),
        ("kube_pod_container_resource_limits", "memory", "byte", memory_limit),
    ):
        if value is not None:
            store.add(
                metric, {**labels, "resource": resource, "unit": unit}, ts, np.full(len(ts), value)
            )


def _add_workload_state(store: SeriesStore, sim: Simulation) -> None:
    """Add the service's Deployment, ReplicaSet and HPA series from kube-state-metrics."""
    plan = sim.plan
    t_s = sim.t_s
    replicas = np.zeros(len(t_s))
    available = np.zeros(len(t_s))
    ready_by_release = {r: np.zeros(len(t_s)) for r in RELEASES}
    for pod in sim.pods:
        end = pod.deleted_s if pod.deleted_s is not None else math.inf
        exists = (t_s >= pod.created_s) & (t_s < end)
        ready = np.array([pod.is_ready(int(t)) for t in t_s[exists]], dtype=bool)
        replicas[exists] += 1
        idx = np.flatnonzero(exists)[ready]
        available[idx] += 1
        ready_by_release[pod.release][idx] += 1

    labels = {"namespace": SERVICE_NAMESPACE, "deployment": SERVICE_DEPLOYMENT}
    store.add("kube_deployment_status_replicas", labels, t_s, replicas)
    store.add("kube_deployment_status_replicas_available", labels, t_s, available)
    for release in RELEASES:
        created = sim.rs_created_s.get(release)
        if created is None:
            continue
        k0 = int(np.searchsorted(t_s, created, side="left"))
        name = f"{SERVICE_DEPLOYMENT}-{template_hash(plan.seed, f'{SERVICE_DEPLOYMENT}/{release}')}"
        store.add(
            "kube_replicaset_status_ready_replicas",
            {"namespace": SERVICE_NAMESPACE, "replicaset": name},
            t_s[k0:],
            ready_by_release[release][k0:],
        )
    store.add(
        "kube_horizontalpodautoscaler_status_desired_replicas",
        {"namespace": SERVICE_NAMESPACE, "horizontalpodautoscaler": SERVICE_HPA},
        t_s,
        sim.hpa_desired,
    )


OTHER_WORKLOADS = ("reasonkit-indexer", "reasonkit-cache", "legacy-report", "debug-shell")


def other_workloads(plan: Plan) -> list[_Workload]:
    """Return the workloads besides the service, with their usage and resources."""
    gib = 1024 * MIB
    return [
        _Workload("reasonkit", "reasonkit-indexer", "indexer", 2, plan.indexer_cpu_cores,
                  plan.indexer_memory_bytes, {"cpu": 1.0, "memory": 2 * gib},
                  {"cpu": 2.0, "memory": 4 * gib}),
        _Workload("reasonkit-data", "reasonkit-cache", "cache", 1, plan.cache_cpu_cores,
                  plan.cache_memory_bytes, {"cpu": 0.5, "memory": 4 * gib},
                  {"cpu": 1.0, "memory": 4 * gib}),
        _Workload("reasonkit", "legacy-report", "report", 1, plan.legacy_cpu_cores,
                  plan.legacy_memory_bytes, {"cpu": 0.1, "memory": 256 * MIB}, {}),
        _Workload("reasonkit", "debug-shell", "shell", 1, plan.debug_cpu_cores,
                  plan.debug_memory_bytes, {}, {}),
    ]  # fmt: skip


def _other_pods(plan: Plan) -> list[tuple[PodLife, _Workload]]:
    """Return the pods of the other workloads; they run through the whole window."""
    rng = np.random.default_rng([plan.seed, 3])
    out = []
    for w in other_workloads(plan):
        pod_hash = template_hash(plan.seed, f"{w.deployment}/1")
        created = plan.start_s - int(rng.integers(3 * DAY_S, 20 * DAY_S))
        for _ in range(w.replicas):
            name = f"{w.deployment}-{pod_hash}-{_token(rng, 5)}"
            delay = int(rng.integers(5, 30))
            pod = PodLife(name, w.namespace, w.deployment, w.container, "1", pod_hash,
                          created, created + delay)  # fmt: skip
            out.append((pod, w))
    return out


def _add_other_pod(
    store: SeriesStore,
    plan: Plan,
    pod: PodLife,
    w: _Workload,
    t_s: np.ndarray,
    rng: np.random.Generator,
) -> None:
    """Add the cpu, memory and kube-state-metrics series of one pod of another workload."""
    labels = {"namespace": pod.namespace, "pod": pod.name, "container": pod.container}
    hour = (t_s % DAY_S) / HOUR_S
    diurnal = 0.8 + 0.2 * np.cos(2 * np.pi * (hour - plan.peak_hour_utc) / 24)
    cores = w.cpu_cores * diurnal * np.exp(rng.normal(0, 0.15, size=len(t_s)))
    prior = (plan.start_s - pod.created_s) * w.cpu_cores
    cpu = np.round(prior + np.cumsum(cores * plan.step_s), 3)
    store.add("container_cpu_usage_seconds_total", labels, t_s, cpu)
    memory = w.memory_bytes * np.exp(rng.normal(0, 0.01, size=len(t_s)))
    store.add("container_memory_working_set_bytes", labels, t_s, np.floor(memory / 4096) * 4096)
    _add_pod_state(
        store, pod, t_s, labels,
        w.requests.get("memory"), w.limits.get("memory"),
        w.requests.get("cpu"), w.limits.get("cpu"),
    )  # fmt: skip
