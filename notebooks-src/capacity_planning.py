# %% [markdown]
# # Capacity planning
#
# For capacity reviews: what each container really uses against what it requests,
# what it should request, how much CPU the service will need at its peak a few weeks
# out, and how many replicas and nodes that takes with headroom for losing a node and
# for a rolling update's surge. The summary comes first, the evidence after, the method
# last.

# %% tags=["parameters"]
prometheus: str = "demo"  # metrics: "demo", "demo:SEED", a Prometheus URL or a bundle folder
cluster: str = "demo"  # objects: "demo", manifests, a bundle, "in-cluster" or a kube context
namespace: str = ""  # namespace to right-size; empty: every namespace
workload: str = "reasonkit-pro-mcp"  # Deployment whose peak demand is forecast
report_time: str = ""  # the instant "now" means (ISO 8601 with offset); empty: the source's own
start: str = "now-14d"  # window start: ISO 8601 with offset, or relative to report_time
end: str = "now"  # window end
step: str = "5m"  # resolution of the usage series
strategy: str = "simple"  # right-sizing: "simple" (KRR's simple) or "vpa" (VPA recommender)
forecast_weeks: int = 4  # how far ahead the peak is forecast, in weeks
backtest_days: int = 2  # days forecast after each backtest origin
spare_nodes: int = 1  # nodes kept spare so losing that many still fits every pod (N-1)
node_cpu_cores: float = 0.0  # node allocatable CPU in cores; 0: the cluster's common shape
node_memory_gib: float = 0.0  # node allocatable memory in GiB; 0: the cluster's common shape
price_core_hour: float = 0.0  # price of one requested core for an hour; 0: no cost figures
price_gib_hour: float = 0.0  # price of one requested GiB of memory for an hour
export_dir: str = ""  # folder to write recommendations.csv and patch.yaml; empty: none

# %%
from pathlib import Path

import pandas as pd

import rknb.notebook as nb
from rknb import capacity, hpa, plots
from rknb.yamlfile import dump_yaml

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

# %%
usage = pd.concat(
    [
        capacity.usage_percentiles(cpu, resource="cpu"),
        capacity.usage_percentiles(memory, resource="memory"),
    ]
)
current = capacity.requests_and_limits(workloads)
restarts_seen = capacity.restart_events(restarts, oom_flags)
kills = restarts_seen[restarts_seen.reason == "OOMKilled"]
recommended = capacity.recommend(strategy, cpu, memory, oom_kills=kills, current=current)
sizing = capacity.rightsizing(usage, current, recommended)

demand = capacity.workload_demand(cpu, workload=workload)
forecast = capacity.forecast_peak(demand, horizon_days=7 * forecast_weeks)
check = capacity.backtest_rolling(demand, horizon_days=backtest_days)
autoscaler = hpa.HpaConfig.from_object(hpas[0]) if hpas else None
request_cores = float(current.loc[current.workload == workload, "cpu_request_cores"].sum())
utilization = autoscaler.target_utilization if autoscaler else 0.7
plan = capacity.replica_plan(
    forecast,
    cpu_request_cores=request_cores,
    current_replicas=target["spec"].get("replicas", 1),
    target_utilization=utilization,
    max_replicas=autoscaler.max_replicas if autoscaler else None,
)

shape = (
    (node_cpu_cores, node_memory_gib * 2**30)
    if node_cpu_cores > 0 and node_memory_gib > 0
    else capacity.node_shape(nodes)
)
requests_today = capacity.pod_requests(pods)
nodes_plan = capacity.node_plan(
    requests_today,
    shape,
    target=target,
    extra_replicas=plan.replicas - plan.current_replicas,
    spare_nodes=spare_nodes,
    nodes_today=len(nodes),
)
hourly_replicas = capacity.replicas_over_time(
    forecast, cpu_request_cores=request_cores, target_utilization=utilization
)
nodes_date = capacity.nodes_run_out(
    hourly_replicas,
    requests_today,
    shape,
    target=target,
    spare_nodes=spare_nodes,
    nodes_today=len(nodes),
)

# %% [markdown]
# ## Summary

# %%
nb.show(capacity.sizing_headline(sizing, kills))
capacity.summary_table(current, recommended)

# %%
nb.show(capacity.forecast_headline(forecast, plan, check, weeks=forecast_weeks))
nb.show(capacity.nodes_headline(nodes_plan, shape))
nb.show(capacity.runs_out_headline(plan, nodes_date, nodes_today=len(nodes), weeks=forecast_weeks))

# %%
cost = None
if price_core_hour > 0 or price_gib_hour > 0:
    key = (target["metadata"]["namespace"], workload)
    cost = capacity.costs(
        current,
        recommended,
        capacity.workload_replicas(workloads),
        price_core_hour=price_core_hour,
        price_gib_hour=price_gib_hour,
        peak_replicas={key: plan.replicas},
    )
    nb.show("**Cost of the requests** (per hour and per 730-hour month):")
else:
    nb.show("No prices given (`price_core_hour`, `price_gib_hour`): no cost figures.")
cost.round(2) if cost is not None else None

# %% [markdown]
# ## Evidence: usage against requests and limits

# %%
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
        "recommended": sizing["memory_request_bytes_recommended"] / 2**20,
    },
    title="Memory: peak working set against request, limit and recommendation",
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
# ## Evidence: peak demand forecast

# %%
plots.time_series(
    {
        "hourly peak (observed)": forecast.hourly_peaks,
        "forecast": forecast.forecast,
        "95 % interval, upper": forecast.interval["upper"],
        "95 % interval, lower": forecast.interval["lower"],
    },
    title=f"{workload}: CPU demand, hourly peaks and forecast",
    ylabel="cores",
    threshold=plan.capacity_cores,
    threshold_label="capacity at maxReplicas",
);

# %% [markdown]
# ## Evidence: node packing at the forecast peak

# %%
per_replica = capacity.pod_requests([{"spec": target["spec"]["template"]["spec"]}])[0]
at_peak = [*requests_today, *[per_replica] * (nodes_plan.extra_replicas + nodes_plan.surge_pods)]
fill = capacity.node_fill(at_peak, shape)
plots.bar_chart(
    [f"node {i + 1}" for i in range(len(fill))],
    {"CPU requested": fill["cpu_share"] * 100, "memory requested": fill["memory_share"] * 100},
    title=f"First-fit decreasing at the peak, before {spare_nodes} spare node(s)",
    ylabel="% of allocatable",
);

# %% [markdown]
# ## Export: recommendations and a manifest patch

# %%
csv_text = capacity.recommendations_csv(current, recommended)
patch_text = "---\n".join(
    dump_yaml(p) for p in capacity.manifest_patch(recommended, workloads)
)
if export_dir:
    folder = Path(export_dir)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "recommendations.csv").write_text(csv_text, encoding="utf-8")
    (folder / "patch.yaml").write_text(patch_text, encoding="utf-8")
nb.show(
    "Recommendations as CSV:\n\n```\n" + csv_text + "```\n\n"
    "Strategic-merge patches (apply one per workload with `kubectl patch deployment NAME -n "
    "NAMESPACE --patch-file FILE`):\n\n```yaml\n" + patch_text + "```"
)

# %%
over = sizing[sizing.verdict == "over-provisioned"]
nb.record(
    strategy=strategy,
    containers=len(sizing),
    over_provisioned=len(over),
    over_provisioned_workloads=", ".join(sorted(set(over.workload))),
    at_risk=int((sizing.verdict == "at-risk").sum()),
    restarts=int(restarts_seen.restarts.sum()),
    restarted_pods=", ".join(sorted(set(restarts_seen.pod))),
    oom_kills=len(kills),
    oom_killed_pods=", ".join(sorted(set(kills.pod))),
    memory_peak_of_limit=float(capacity.peak_of_limit(sizing, workload)),
    recommended_memory_bytes=float(
        recommended.loc[recommended.workload == workload, "memory_request_bytes"].max()
    ),
    recommended_cpu_cores=float(
        recommended.loc[recommended.workload == workload, "cpu_request_cores"].max()
    ),
    forecast_peak_cores=forecast.peak,
    forecast_peak_time=forecast.peak_time.isoformat(),
    forecast_lower_cores=forecast.lower,
    forecast_upper_cores=forecast.upper,
    trend_cores_per_day=forecast.trend_per_day,
    growth_per_week=forecast.growth_per_week,
    forecast_seasonality=forecast.seasonality,
    backtest_mape=check.mape,
    naive_mape=check.naive_mape,
    backtest_origins=check.origins,
    backtest_beats_naive=check.beats_naive,
    backtest_within_10_percent=check.within_10_percent_of_naive,
    replicas_at_peak=plan.replicas,
    max_replicas=plan.max_replicas,
    max_replicas_run_out=plan.runs_out.isoformat() if plan.runs_out is not None else None,
    nodes_today=len(nodes),
    nodes_needed=nodes_plan.nodes_needed,
    nodes_run_out=nodes_plan.short_by > 0,
    nodes_run_out_time=nodes_date.isoformat() if nodes_date is not None else None,
    cost_today_per_hour=float(cost.loc["today", "per_hour"]) if cost is not None else None,
    cost_recommended_per_hour=(
        float(cost.loc["recommended", "per_hour"]) if cost is not None else None
    ),
    cost_at_peak_per_hour=(
        float(cost.loc["at the forecast peak", "per_hour"]) if cost is not None else None
    ),
)

# %% [markdown]
# ## Method
#
# - **Usage** is the CPU-seconds counter's 5-minute rate and the highest working-set
#   memory in each 5-minute window, per container.
# - **Right-sizing, `strategy="simple"`** (KRR's simple strategy with its defaults): CPU
#   request = the 95th percentile of each pod's usage, the highest over pods, no CPU limit;
#   memory request = limit = the peak plus 15 %; rounded up to 1m and 1Mi, at least 10m
#   and 100Mi; at least 100 samples; the last 14 days. KRR itself samples every 75 s;
#   here the samples come at the report's step.
# - **Right-sizing, `strategy="vpa"`** (the VPA recommender's algorithm and defaults): the
#   last 8 days; CPU samples in a histogram of 5 % wider buckets whose weights halve every
#   24 h; memory as one peak per pod per day in a like histogram, with an OOM kill adding
#   max(+100 MiB, x1.2) of the memory used; target = the 90th percentile, bounds the 50th
#   and 95th, each +15 %, the bounds widened while under a day or so of history;
#   at least 25m and 250Mi per pod. Limits keep today's ratio to the request.
# - **Verdicts**: a container is over-provisioned when its CPU p95 or memory peak is under
#   half its request, at risk when its memory peak is above 90 % of its limit.
#   **Confidence** is high from 7 days of history (VPA: its own confidence), medium
#   from 1 day.
# - **Forecast**: hourly peaks of the workload's total CPU, fitted by ordinary least
#   squares (statsmodels) on the log scale to a linear trend, an hour-of-day profile and,
#   from 8 days of history, weekday levels and a weekend profile; the 95 % band is the
#   regression's prediction interval. The backtest fits on the history before each
#   midnight from the 8th day on and scores the next days' hourly peaks against the naive
#   forecast "same hour last week" ("same hour yesterday" under a week of history).
# - **Replicas** at the forecast peak keep utilization at the HPA's target; **nodes** come
#   from first-fit-decreasing bin packing of every pod's requests, the extra replicas and
#   one rolling-update surge onto the most common node shape (or the one given), plus
#   spare nodes so that losing one still fits every pod. A run-out date is the first
#   forecast hour that needs more than today's maxReplicas or nodes.

# %%
nb.finish()
