# %% [markdown]
# # HPA tuning
#
# For whoever owns the autoscaler: what would this HorizontalPodAutoscaler, or a
# candidate config, have done on the recorded load, and which config costs the fewest
# replica-hours while keeping demand under the Ready pods' capacity at the target? Every
# decision comes from an exact re-implementation of the autoscaling/v2 controller
# (integer utilization, unready pods, tolerance, stabilization, rate policies), replayed
# every sync period with pods that take their real start-up time to become Ready.

# %% tags=["parameters"]
prometheus: str = "demo"  # metrics: "demo", "demo:SEED", a Prometheus URL or a bundle folder
cluster: str = "demo"  # objects: "demo", manifests, a bundle, "in-cluster" or a kube context
namespace: str = "reasonkit"  # namespace of the workload and its HPA
workload: str = "reasonkit-pro-mcp"  # Deployment the HPA scales
report_time: str = ""  # the instant "now" means (ISO 8601 with offset); empty: the source's own
start: str = "now-14d"  # window start: ISO 8601 with offset, or relative to report_time
end: str = "now"  # window end
step: str = "30s"  # query resolution of the demand (the replay decides every sync period)
candidate_target: float = 0.6  # candidate target CPU utilization, a fraction (0 keeps the HPA's)
candidate_min_replicas: int = 0  # candidate minReplicas (0 keeps the HPA's)
candidate_max_replicas: int = 0  # candidate maxReplicas (0 keeps the HPA's)
candidate_scale_down_window: str = ""  # candidate scale-down window (empty keeps the HPA's)
max_time_above_target: float = 0.05  # search: largest fraction of time above target allowed
max_lag: str = "10m"  # search: longest lag allowed (demand above capacity at target)
startup: str = ""  # pod start-up to Ready; empty: from pod ages or the readiness probe
metrics_window: str = "60s"  # CPU rate window as the HPA reads it (two 30 s scrapes); empty: 5m

# %%
import yaml

import rknb.notebook as nb
from rknb import capacity, hpa, plots, widgets
from rknb.catalog import get_query
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
own_pods = [
    p for p in run.list("Pod") if capacity.workload_of_pod(p["metadata"]["name"]) == workload
]
startups = hpa.observed_startup_s(own_pods)
pods = hpa.pod_model_from_deployment(deployment, observed_startup_s=startups)
if startup:
    pods = hpa.PodModel(
        pods.capacity_per_replica, parse_duration(startup, name="startup"), pods.metric_window_s,
        pods.cpu_limit_cores,
    )  # fmt: skip
# The HPA reads metrics-server's short window, not the catalog's 5-minute rate: the replay
# and the search decide on the CPU over `metrics_window`; the 5-minute figure is kept.
window = parse_duration(metrics_window, name="metrics_window") if metrics_window else None
demand_window_s = window if window is not None else get_query("container_cpu_cores").window_s
demand = capacity.workload_demand(
    run.query_range("container_cpu_cores", window_s=window), workload=workload
)
demand_5m = capacity.workload_demand(run.query_range("container_cpu_cores"), workload=workload)
replicas = run.query_range("deployment_replicas").set_index("timestamp")["value"]
desired = run.query_range(
    "hpa_desired_replicas",
    workload=None,
    labels={"horizontalpodautoscaler": autoscaler["metadata"]["name"]},
).set_index("timestamp")["value"]
observed = hpa.scale_events(desired)
first = int(replicas.iloc[0])

# %% [markdown]
# ## The answer

# %%
current_config = hpa.HpaConfig.from_object(autoscaler)
reference = current_config.target_utilization
candidates = hpa.grid(
    current_config,
    targets=[0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8],
    min_replicas=sorted({max(1, current_config.min_replicas - 1), current_config.min_replicas}),
    scale_down_windows_s=[60, 300, 600],
)
table = hpa.search(
    demand, candidates, pods=pods, initial_replicas=first, reference_target=reference
)
choice = hpa.recommend(
    table,
    candidates,
    max_time_above_target=max_time_above_target,
    max_lag_s=parse_duration(max_lag, name="max_lag"),
)
current = hpa.replay(demand, config=current_config, pods=pods, initial_replicas=first)
current_summary = hpa.summarize(current, config=current_config, pods=pods)
nb.show(
    f"**Current HPA ({current_config.label()}), replayed with the exact controller:** "
    f"{current_summary.replica_hours:,.0f} replica-hours, "
    f"{current_summary.fraction_above_target:.1%} of the time above its {reference:.0%} target, "
    f"worst lag {current_summary.lag_worst_s:,.0f} s. Candidates are measured against the same "
    f"{reference:.0%}: time above it, and lag until Ready capacity at it catches up.\n\n"
    + choice.markdown() + "\n\n" + hpa.trade_off(current_summary, choice)
)

# %%
if choice.config is not None:
    patch = hpa.manifest_patch(
        choice.config, name=autoscaler["metadata"]["name"], namespace=namespace
    )
    nb.show("Patch (`kubectl patch hpa --type merge -p ...`):\n\n```yaml\n"
            + yaml.safe_dump(patch, sort_keys=False) + "```")  # fmt: skip

# %%
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
candidate = hpa.replay(
    demand, config=candidate_config, pods=pods, initial_replicas=first, engine="fast"
)
candidate_summary = hpa.summarize(
    candidate, config=candidate_config, pods=pods, reference_target=reference
)
nb.show(
    hpa.headline(
        current_summary,
        candidate_summary,
        observed,
        current_config=current_config,
        candidate_config=candidate_config,
    )
)
recommended = choice.row
nb.record(
    observed_scale_ups=int((observed["direction"] == "up").sum()),
    observed_scale_downs=int((observed["direction"] == "down").sum()),
    observed_peak_replicas=int(desired.max()),
    observed_min_replicas=int(desired.min()),
    observed_replica_hours=float(replicas.sum() * run.window.step_s / 3600),
    replica_hours=current_summary.replica_hours,
    fraction_above_target=current_summary.fraction_above_target,
    lag_worst_s=current_summary.lag_worst_s,
    lag_p95_s=current_summary.lag_p95_s,
    risk_windows=current_summary.risk_windows,
    peak_replicas=current_summary.peak_replicas,
    flaps=current_summary.flaps,
    scale_ups=current_summary.scale_ups,
    scale_downs=current_summary.scale_downs,
    time_at_max_s=current_summary.time_at_max_s,
    pod_startup_s=pods.startup_s,
    metrics_window_s=demand_window_s,
    demand_peak_cores=float(demand.max()),
    demand_5m_peak_cores=float(demand_5m.max()),
    candidate_replica_hours=candidate_summary.replica_hours,
    candidate_fraction_above_target=candidate_summary.fraction_above_target,
    candidate_peak_replicas=candidate_summary.peak_replicas,
    candidate_flaps=candidate_summary.flaps,
    candidates_searched=len(candidates),
    recommended=recommended.get("candidate", ""),
    recommended_replica_hours=recommended.get("replica_hours"),
    recommended_fraction_above_target=recommended.get("fraction_above_target"),
    recommended_lag_worst_s=recommended.get("lag_worst_s"),
)
hpa.compare(current_summary, candidate_summary).rename(
    columns={"a": "current", "b": "candidate"}
).round(3)

# %% [markdown]
# ## Demand, Ready capacity and replicas


# %%
def chart(frame, config):
    """Demand against Ready capacity (top) and replicas with scale events (bottom)."""
    series = frame.set_index("timestamp")
    ready = series["ready_replicas"] * pods.capacity_per_replica
    moves = series[series["desired"] != series["replicas"]]
    events = [(t, "") for t in moves.index[:200]]
    fig, axes = plots.new_figure(rows=2)
    plots.time_series(
        {"demand": series["demand"], "Ready capacity at target": ready * reference,
         "Ready capacity at 100 %": ready},
        title=f"{workload}: CPU demand and Ready capacity ({config.label()})", ylabel="cores",
        ax=axes[0],
    )  # fmt: skip
    plots.time_series(
        {"replicas": series["desired"], "Ready": series["ready_replicas"]},
        title="Replicas (scale events marked, first 200)", ylabel="replicas", ax=axes[1],
        step=True, events=events,
    )  # fmt: skip
    return fig


chart(current, current_config);

# %% [markdown]
# ## Cost against risk: the Pareto front

# %%
fig, ax = plots.new_figure()
front = table[table["pareto"]].sort_values("replica_hours")
ax.scatter(table["replica_hours"], table["fraction_above_target"] * 100, color="#bbbbbb",
           label="candidate")
ax.plot(front["replica_hours"], front["fraction_above_target"] * 100, "o-", label="Pareto front")
if choice.config is not None:
    ax.scatter([recommended["replica_hours"]], [recommended["fraction_above_target"] * 100],
               s=120, facecolors="none", edgecolors="black", label="recommended")
ax.set(title=f"Cost against risk ({len(table)} candidates)", xlabel="replica-hours",
       ylabel=f"% of time above {reference:.0%}")
ax.legend();

# %%
table.sort_values("replica_hours")[
    ["candidate", "replica_hours", "fraction_above_target", "lag_worst_s", "lag_p95_s",
     "flaps", "risk_windows", "pareto"]
].round(4)  # fmt: skip

# %% [markdown]
# ## Explorer
#
# In JupyterLab, sliders re-run the replay and redraw; in a report this is the chart of
# the current config.

# %%
explorer = widgets.hpa_explorer(
    demand, current_config, pods=pods, initial_replicas=first, render=chart
)
explorer.widget if explorer.widget is not None else explorer.figure

# %% [markdown]
# ## The exact controller against the recorded decisions
#
# The recorded desired replicas (for the demo: the scenario's own, simpler controller
# model) compared with the exact replay at each recorded sample. Each difference is
# decided again from the exact controller's own state with its rules replaced, one after
# another, by the simpler model's version: the first replacement that gives the recorded
# count names the rule. A difference no rule explains is put down to the state (the two
# models already had different replicas: downstream of the difference that started the
# run), to the metric each read, or to the Ready pods; what is left is unexplained.

# %%
available = run.query_range("deployment_replicas_available").set_index("timestamp")["value"]
decisions = hpa.attribute_decisions(
    demand, desired, config=current_config, pods=pods, initial_replicas=first,
    other_ready=available, demand_window_s=demand_window_s,
)  # fmt: skip
causes = hpa.explain_differences(decisions)
agreement = float((decisions["difference"] == 0).mean())
counts = hpa.cause_counts(decisions)
unexplained = float((decisions["origin"] == "other").mean())
origins = decisions[decisions["difference"] != 0].groupby("origin").size()
fast = hpa.replay(demand, config=current_config, pods=pods, initial_replicas=first, engine="fast")
nb.record(
    decision_agreement=agreement,
    decisions_compared=len(decisions),
    unexplained_share=unexplained,
    largest_origin=str(origins.idxmax()) if len(origins) else "",
    fast_path_agrees=bool((fast["desired"].to_numpy() == current["desired"].to_numpy()).all()),
    attribution_agrees=bool(
        (hpa.compare_decisions(current, desired)["exact"] == decisions["exact"]).all()
    ),
    **{f"differences_{cause}": n for cause, n in counts.items()},
)
lead = str(origins.idxmax()) if len(origins) else ""
nb.show(
    f"The exact replay agrees with the recorded desired replicas at {agreement:.1%} of "
    f"{len(decisions):,} samples; {unexplained:.2%} of the samples differ for no reason "
    "found. **Trust the exact controller:** it passes every upstream conformance vector "
    "(`rknb conformance hpa`), while the scenario's model is a deliberate simplification "
    "(fractional utilization, the ratio times all replicas, no readiness rules, no legacy "
    "scale-up limit, one decision per 30 s)."
    + (f" Most differing samples ({origins.max() / origins.sum():.0%}) trace back to "
       f"**{lead}** ({hpa.CAUSE_TEXT[lead]}). A difference lasts while both counts sit "
       "inside the tolerance band (the downstream rows)." if lead else "")
    + (f" Here the demand is a {demand_window_s:.0f} s rate of the CPU counter, which "
       "smooths the short peaks the scenario's controller reacted to; set `metrics_window` to "
       "the HPA's own window." if lead == "metric" else "")
)  # fmt: skip
causes[["cause", "origin", "samples", "share", "time_s", "example_time", "example_demand",
        "example_utilization", "example_exact", "example_other", "example_redecided",
        "why"]].round({"share": 5, "example_demand": 3})  # fmt: skip

# %%
fig, ax = plots.new_figure(height=4.0)
plots.time_series(
    {"recorded (scenario's model)": desired,
     "exact replay": decisions.set_index("time")["exact"]},
    title="Desired replicas: where the two models differ, by the cause that started it",
    ylabel="replicas", ax=ax, step=True,
)  # fmt: skip
differing = decisions[decisions["difference"] != 0]
for i, (origin, group) in enumerate(differing.groupby("origin")):
    ax.scatter(group["time"].dt.tz_localize(None), group["exact"], s=6, zorder=3,
               color=plots.PALETTE[(i + 2) % len(plots.PALETTE)],
               label=f"differs: {origin} ({len(group)})")  # fmt: skip
ax.legend(loc="upper left", fontsize=8, frameon=False, ncol=3);

# %% [markdown]
# ## Method
#
# - **Demand** is the workload's total CPU (`rate` of cAdvisor's CPU-seconds counter,
#   summed over its pods) over `metrics_window` (60 s: the shortest rate two 30 s scrapes
#   give, near the short window metrics-server hands the HPA; the catalog's 5-minute rate
#   smooths away the peaks the HPA reacts to); the metric at a decision is the last sample
#   at or before it.
# - **Pods**: one pod's request comes from the Deployment's template; a new pod is Ready
#   after the start-up time (median creation-to-Ready of the pods the cluster shows, else
#   the readiness probe's first success), Ready pods share the demand equally, and a
#   scale-down removes the youngest pods.
# - **Controller**: every sync period (15 s) the exact autoscaling/v2 decision: integer
#   utilization of the counted pods, tolerance 10 % (inclusive), pods not Ready or younger
#   than one metric window in the CPU initialization period counted as 0 on scale-up,
#   the proposal over the pods counted, the legacy path (highest recommendation of 5
#   minutes, scale-up at most max(2 x current, 4)) without `behavior`, stabilization
#   windows and rate policies with it. It passes every upstream conformance vector.
# - **Risk**: time above target and lag use the current HPA's target for every
#   candidate; a risk window is demand above the Ready pods' full request.
# - Candidates of the search set `behavior` (their windows live there).

# %%
nb.finish()
