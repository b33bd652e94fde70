# %% [markdown]
# # Capacity planning
#
# For capacity reviews: what each container really uses against what it requests,
# what it should request, how much CPU the service will need at its peak a few weeks
# out, and how many replicas and nodes that takes with headroom for losing a node and
# for a rolling update's surge.

# %% tags=["parameters"]
prometheus: str = "demo"  # metrics: "demo", "demo:SEED", a Prometheus URL or a bundle folder
cluster: str = "demo"  # objects: "demo", manifests, a bundle, "in-cluster" or a kube context
namespace: str = ""  # namespace to right-size; empty: every namespace
workload: str = "reasonkit-pro-mcp"  # Deployment whose peak demand is forecast
report_time: str = ""  # the instant "now" means (ISO 8601 with offset); empty: the source's own
start: str = "now-14d"  # window start: ISO 8601 with offset, or relative to report_time
end: str = "now"  # window end
step: str = "5m"  # resolution of the usage series
strategy: str = "simple"  # right-sizing strategy (KRR's "simple")
forecast_weeks: int = 4  # how far ahead the peak is forecast, in weeks
spare_nodes: int = 1  # nodes kept spare so losing that many still fits every pod (N+1)

# %%
import pandas as pd

import rknb.notebook as nb
from rknb import capacity, hpa, plots

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
cpu = run.query_range("container_cpu_cores", workload=None)
memory = run.query_range("container_memory_peak_bytes", workload=None)
restarts = run.query_range("container_restarts", workload=None)
oom_flags = run.query_range("container_oom_killed", workload=None)
workloads = run.list("Deployment") + run.list("StatefulSet") + run.list("DaemonSet")
target = next(d for d in run.list("Deployment", "*") if d["metadata"]["name"] == workload)
hpas = [
    h
    for h in run.list("HorizontalPodAutoscaler", target["metadata"]["namespace"])
    if h["spec"]["scaleTargetRef"]["name"] == workload
]
nodes = run.list("Node")
pods = run.list("Pod", "*")

# %% [markdown]
# ## Right-sizing

# %%
usage = pd.concat(
    [
        capacity.usage_percentiles(cpu, resource="cpu"),
        capacity.usage_percentiles(memory, resource="memory"),
    ]
)
current = capacity.requests_and_limits(workloads)
recommended = capacity.recommend(strategy, cpu, memory)
sizing = capacity.rightsizing(usage, current, recommended)
restarts_seen = capacity.restart_events(restarts, oom_flags)
kills = restarts_seen[restarts_seen.reason == "OOMKilled"]
nb.show(capacity.sizing_headline(sizing, kills))
capacity.sizing_table(sizing)

# %%
plots.bar_chart(
    [f"{r.workload}/{r.container}" for r in sizing.itertuples()],
    {
        "CPU p95 used": sizing["cpu_p95_cores"],
        "CPU requested": sizing["cpu_request_cores_current"],
        "recommended": sizing["cpu_request_cores_recommended"],
    },
    title="CPU: used (p95) against requested and recommended",
    ylabel="cores",
    horizontal=True,
);

# %%
plots.bar_chart(
    [f"{r.workload}/{r.container}" for r in sizing.itertuples()],
    {
        "memory peak": sizing["memory_max_bytes"] / 2**20,
        "requested": sizing["memory_request_bytes_current"] / 2**20,
        "limit": sizing["memory_limit_bytes_current"] / 2**20,
    },
    title="Memory: peak working set against request and limit",
    ylabel="MiB",
    horizontal=True,
);

# %%
plots.time_series(
    capacity.pod_envelope(memory, workload=workload),
    title=f"{workload}: working set across its pods",
    ylabel="bytes",
    threshold=float(current.loc[current.workload == workload, "memory_limit_bytes"].max()),
    threshold_label="memory limit",
    events=[(k.time, f"OOM {k.pod[-5:]}") for k in kills.itertuples()],
)
restarts_seen

# %% [markdown]
# ## Peak demand and replicas

# %%
demand = capacity.workload_demand(cpu, workload=workload)
forecast = capacity.forecast_peak(demand, horizon_days=7 * forecast_weeks)
check = capacity.backtest_rolling(demand, horizon_days=2)
autoscaler = hpa.HpaConfig.from_object(hpas[0]) if hpas else None
request_cores = float(current.loc[current.workload == workload, "cpu_request_cores"].sum())
plan = capacity.replica_plan(
    forecast,
    cpu_request_cores=request_cores,
    current_replicas=target["spec"].get("replicas", 1),
    target_utilization=autoscaler.target_utilization if autoscaler else 0.7,
    max_replicas=autoscaler.max_replicas if autoscaler else None,
)
nb.show(capacity.forecast_headline(forecast, plan, check, weeks=forecast_weeks))

# %%
plots.time_series(
    {"hourly peak (observed)": forecast.hourly_peaks, "forecast": forecast.forecast},
    title=f"{workload}: CPU demand, hourly peaks and forecast",
    ylabel="cores",
    threshold=plan.capacity_cores,
    threshold_label="capacity at maxReplicas",
);

# %% [markdown]
# ## Nodes

# %%
shape = capacity.node_shape(nodes)
nodes_plan = capacity.node_plan(
    capacity.pod_requests(pods),
    shape,
    target=target,
    extra_replicas=plan.replicas - plan.current_replicas,
    spare_nodes=spare_nodes,
    nodes_today=len(nodes),
)
nb.show(capacity.nodes_headline(nodes_plan, shape))

# %%
over = sizing[sizing.verdict == "over-provisioned"]
nb.record(
    containers=len(sizing),
    over_provisioned=len(over),
    over_provisioned_workloads=", ".join(sorted(set(over.workload))),
    at_risk=int((sizing.verdict == "at-risk").sum()),
    restarts=int(restarts_seen.restarts.sum()),
    restarted_pods=", ".join(sorted(set(restarts_seen.pod))),
    oom_kills=len(kills),
    oom_killed_pods=", ".join(sorted(set(kills.pod))),
    memory_peak_of_limit=float(capacity.peak_of_limit(sizing, workload)),
    forecast_peak_cores=forecast.peak,
    forecast_peak_time=forecast.peak_time.isoformat(),
    forecast_lower_cores=forecast.lower,
    forecast_upper_cores=forecast.upper,
    trend_cores_per_day=forecast.trend_per_day,
    backtest_mape=check.mape,
    naive_mape=check.naive_mape,
    replicas_at_peak=plan.replicas,
    max_replicas=plan.max_replicas,
    max_replicas_run_out=plan.runs_out.isoformat() if plan.runs_out is not None else None,
    nodes_today=len(nodes),
    nodes_needed=nodes_plan.nodes_needed,
    nodes_run_out=nodes_plan.short_by > 0,
)

# %% [markdown]
# ## Method
#
# - **Usage** is the CPU-seconds counter's 5-minute rate and the working-set memory
#   gauge per container, pooled over all pods of a workload.
# - **Right-sizing** (`strategy="simple"`, as KRR's simple strategy): CPU request = the
#   95th percentile of usage, no CPU limit; memory request = limit = the peak plus 15 %.
#   A container is over-provisioned when its CPU p95 or memory peak is under half its
#   request, at risk when its memory peak is above 90 % of its limit.
# - **Forecast**: hourly peaks of the workload's total CPU, fitted by least squares to a
#   linear trend plus one level per hour of the week, with a ±1.96σ residual interval;
#   the backtest fits on the history before several origins and scores the next two
#   days against the naive "same hour last week".
# - **Replicas** at the forecast peak keep utilization at the HPA's target; **nodes** come
#   from first-fit-decreasing bin packing of every pod's requests (plus the extra replicas
#   and one rolling-update surge) onto the most common node shape, plus spare nodes.

# %%
nb.finish()
