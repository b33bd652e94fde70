# %% [markdown]
# # HPA tuning
#
# For whoever owns the autoscaler: what did the HorizontalPodAutoscaler do on the
# recorded load, what would it have done with a candidate configuration, and which of
# the two costs fewer replica-hours for how much time above the utilization target.
# The replay runs the controller's ratio rule (with tolerance), the min/max clamp and
# the stabilization windows over the workload's measured CPU demand.

# %% tags=["parameters"]
prometheus: str = "demo"  # metrics: "demo", "demo:SEED", a Prometheus URL or a bundle folder
cluster: str = "demo"  # objects: "demo", manifests, a bundle, "in-cluster" or a kube context
namespace: str = "reasonkit"  # namespace of the workload and its HPA
workload: str = "reasonkit-pro-mcp"  # Deployment the HPA scales
report_time: str = ""  # the instant "now" means (ISO 8601 with offset); empty: the source's own
start: str = "now-14d"  # window start: ISO 8601 with offset, or relative to report_time
end: str = "now"  # window end
step: str = "30s"  # replay resolution: one decision per step (the scrape interval)
candidate_target: float = 0.6  # candidate target CPU utilization, a fraction (0 keeps the HPA's)
candidate_min_replicas: int = 0  # candidate minReplicas (0 keeps the HPA's)
candidate_max_replicas: int = 0  # candidate maxReplicas (0 keeps the HPA's)
candidate_scale_down_window: str = ""  # candidate scale-down window (empty keeps the HPA's)

# %%
import rknb.notebook as nb
from rknb import capacity, hpa, plots
from rknb.times import parse_duration

run = nb.start(
    prometheus=prometheus,
    cluster=cluster,
    namespace=namespace,
    workload=workload,
    report_time=report_time,
    start=start,
    end=end,
    step=step,
)

# %%
autoscaler = next(
    h
    for h in run.list("HorizontalPodAutoscaler")
    if h["spec"]["scaleTargetRef"]["name"] == workload
)
deployment = next(d for d in run.list("Deployment") if d["metadata"]["name"] == workload)
request_cores = float(capacity.requests_and_limits([deployment])["cpu_request_cores"].sum())
demand = capacity.workload_demand(run.query_range("container_cpu_cores"), workload=workload)
replicas = run.query_range("deployment_replicas").set_index("timestamp")["value"]
desired = run.query_range(
    "hpa_desired_replicas",
    workload=None,
    labels={"horizontalpodautoscaler": autoscaler["metadata"]["name"]},
)
observed = hpa.scale_events(desired.set_index("timestamp")["value"])

# %% [markdown]
# ## The answer

# %%
current_config = hpa.HpaConfig.from_object(autoscaler)
candidate_config = hpa.with_changes(
    current_config,
    min_replicas=candidate_min_replicas,
    max_replicas=candidate_max_replicas,
    target_utilization=candidate_target,
    scale_down_stabilization_s=(
        parse_duration(candidate_scale_down_window, name="candidate_scale_down_window")
        if candidate_scale_down_window
        else -1.0
    ),
)
first = int(replicas.iloc[0])
current = hpa.replay(
    demand, cpu_request_cores=request_cores, config=current_config, initial_replicas=first
)
candidate = hpa.replay(
    demand, cpu_request_cores=request_cores, config=candidate_config, initial_replicas=first
)
current_summary = hpa.summarize(current, config=current_config, step_s=run.window.step_s)
candidate_summary = hpa.summarize(candidate, config=candidate_config, step_s=run.window.step_s)
nb.show(
    hpa.headline(
        current_summary,
        candidate_summary,
        observed,
        current_config=current_config,
        candidate_config=candidate_config,
    )
)
nb.record(
    observed_scale_ups=int((observed["direction"] == "up").sum()),
    observed_scale_downs=int((observed["direction"] == "down").sum()),
    observed_peak_replicas=int(desired["value"].max()),
    observed_min_replicas=int(desired["value"].min()),
    observed_replica_hours=float(replicas.sum() * run.window.step_s / 3600),
    replica_hours=current_summary.replica_hours,
    fraction_above_target=current_summary.fraction_above_target,
    peak_replicas=current_summary.peak_replicas,
    flaps=current_summary.flaps,
    scale_ups=current_summary.scale_ups,
    scale_downs=current_summary.scale_downs,
    time_at_max_s=current_summary.time_at_max_s,
    candidate_replica_hours=candidate_summary.replica_hours,
    candidate_fraction_above_target=candidate_summary.fraction_above_target,
    candidate_peak_replicas=candidate_summary.peak_replicas,
    candidate_flaps=candidate_summary.flaps,
)
hpa.compare(current_summary, candidate_summary).rename(
    columns={"a": "current", "b": "candidate"}
).round(3)

# %% [markdown]
# ## Replicas against demand

# %%
fig, axes = plots.new_figure(rows=2)
plots.time_series(
    {
        "observed": replicas,
        "replay, current": current.set_index("timestamp")["replicas"],
        "replay, candidate": candidate.set_index("timestamp")["replicas"],
    },
    title="Replicas",
    ylabel="replicas",
    ax=axes[0],
    step=True,
)
plots.time_series(
    {
        "current": current.set_index("timestamp")["utilization"],
        "candidate": candidate.set_index("timestamp")["utilization"],
    },
    title="CPU utilization of the requests",
    ylabel="utilization (fraction)",
    ax=axes[1],
    threshold=current_config.target_utilization,
    threshold_label="current target",
);

# %%
plots.time_series(
    {"CPU demand": demand}, title=f"{workload}: CPU used by all pods", ylabel="cores"
);

# %% [markdown]
# ## Scale events seen

# %%
observed

# %% [markdown]
# ## Method
#
# - **Demand** is the workload's total CPU (`rate` of cAdvisor's CPU-seconds counter,
#   summed over its pods); one replica's request comes from the Deployment's template.
# - **Replay**: at each step utilization = demand / (replicas × request); the desired
#   count is `ceil(replicas × utilization / target)` unless the ratio is within the
#   tolerance (10 %); it is clamped to min/max, scale-downs take the highest
#   recommendation of the stabilization window (300 s by default) and the decision
#   applies at the next step. Pod start-up time, rate policies and unready pods are not
#   modelled yet, so the replay leads the real controller slightly.
# - **Observed** scale events are the changes of the HPA's desired replicas
#   (`kube_horizontalpodautoscaler_status_desired_replicas`); the observed replica count
#   also includes the surge pods of rolling updates.

# %%
nb.finish()
