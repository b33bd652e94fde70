# %% [markdown]
# # Latency, errors and the SLO
#
# For the engineer on call and the service's owners: what were p50, p95 and p99
# latency over the window, did the service meet its availability SLO, how fast is
# the error budget burning, and which release moved the numbers. Latency comes from
# the service's request-duration histogram with Prometheus's own interpolation;
# releases come from the Deployment's ReplicaSet revisions.

# %% tags=["parameters"]
prometheus: str = "demo"  # metrics: "demo", "demo:SEED", a Prometheus URL or a bundle folder
cluster: str = "demo"  # objects: "demo", manifests, a bundle, "in-cluster" or a kube context
namespace: str = "reasonkit"  # namespace of the service
workload: str = "reasonkit-pro-mcp"  # Deployment whose traffic is analysed
report_time: str = ""  # the instant "now" means (ISO 8601 with offset); empty: the source's own
start: str = "now-14d"  # window start: ISO 8601 with offset, or relative to report_time
end: str = "now"  # window end
step: str = "1m"  # resolution of the time series
slo_target: float = 0.999  # availability SLO: the fraction of requests that must succeed
slo_period: str = "30d"  # the period the error budget is counted over
regression_factor: float = 2.0  # a value this many times its rolling baseline is a regression
baseline_window: str = "6h"  # how far back the rolling baseline looks
min_regression: str = "10m"  # shorter excursions are noise, not regressions
scrape_interval: str = "30s"  # the service's scrape interval; sets how finely a start is dated
latency_threshold: str = "500ms"  # latency SLO: a request slower than this is bad
latency_target: float = 0.99  # latency SLO: the fraction of requests that must be faster
apdex_threshold: str = "250ms"  # Apdex T: satisfied under T and tolerating under 4T

# %%
import pandas as pd

import rknb.notebook as nb
from rknb import latency, plots
from rknb import slo as slos
from rknb.sources.base import Window
from rknb.times import parse_duration
from rknb.yamlfile import dump_yaml

# Each setting is checked here, under the name it has above, before any data is read.
nb.require(0 < slo_target < 1, "slo_target", "a fraction between 0 and 1 (0.999)", slo_target)
nb.require(0 < latency_target < 1, "latency_target", "a fraction between 0 and 1", latency_target)
nb.require(regression_factor > 1, "regression_factor", "a factor above 1", regression_factor)
for _name, _text in (("slo_period", slo_period), ("latency_threshold", latency_threshold),
                     ("apdex_threshold", apdex_threshold), ("baseline_window", baseline_window),
                     ("min_regression", min_regression), ("scrape_interval", scrape_interval),
                     ("step", step)):
    nb.require(parse_duration(_text, name=_name) > 0, _name, "a positive duration", _text)

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
buckets = run.query_range("request_duration_bucket_rate")
requests = run.query_range("request_rate")
window_buckets = run.query_instant(
    "request_duration_bucket_increase", window_s=run.window.duration_s
)
window_requests = run.query_instant("request_increase", window_s=run.window.duration_s)
# The SLO is judged over its own period, or over the window when the history is shorter.
slo_history_s = min(run.window.duration_s, parse_duration(slo_period, name="slo_period"))
slo_requests = (
    window_requests
    if slo_history_s == run.window.duration_s
    else run.query_instant("request_increase", window_s=slo_history_s)
)
markers = latency.deploy_markers(
    run.list("ReplicaSet"), run.query_range("replicaset_ready_replicas")
)
# Scale events and restarts at the scrape interval, so two changes a minute apart both count.
scrape_s = parse_duration(scrape_interval, name="scrape_interval")
fine_window = Window(run.window.start, run.window.end, scrape_s)
scales = latency.scale_markers(
    run.metrics.query_range("hpa_desired_replicas", run.selector, fine_window),
    hpa=latency.hpa_for_workload(run.list("HorizontalPodAutoscaler"), workload),
)
restarts = latency.restart_markers(
    run.metrics.query_range("container_restarts", run.selector, fine_window)
)

# %% [markdown]
# ## The answer

# %%
quantiles = latency.latency_quantiles(buckets).pivot(
    index="timestamp", columns="quantile", values="value_s"
)
overall = latency.latency_quantiles(window_buckets).set_index("quantile")["value_s"]
ratio = latency.error_ratio(requests)
total, errors = latency.request_totals(window_requests)
slo_total, slo_errors = latency.request_totals(slo_requests)
slo = latency.evaluate_availability_slo(
    slo_total,
    slo_errors,
    target=slo_target,
    period_s=parse_duration(slo_period, name="slo_period"),
    history_s=slo_history_s,
)
exhaustion = latency.budget_exhaustion(
    slo.budget_remaining, slo.burn_rate, period_s=slo.period_s, now=run.window.end
)
regressions = latency.find_incidents(
    quantiles[0.95],
    ratio,
    factor=regression_factor,
    baseline_window_s=parse_duration(baseline_window, name="baseline_window"),
    min_duration_s=parse_duration(min_regression, name="min_regression"),
)
period_s = parse_duration(slo_period, name="slo_period")
if regressions:
    # Date the first regression to the scrape interval, from one-interval increases.
    fine_at = latency.refinement_times(regressions[0].start, interval_s=scrape_s)
    fine = {
        name: pd.concat([run.query_instant(name, at=t, window_s=1.5 * scrape_s) for t in fine_at])
        for name in ("request_duration_bucket_increase", "request_increase")
    }
    fine_p95 = latency.latency_quantiles(fine["request_duration_bucket_increase"], (0.95,))
    regressions[0] = latency.refine_incident(
        regressions[0],
        fine_p95.set_index("timestamp")["value_s"],
        latency.error_ratio(fine["request_increase"]),
        factor=regression_factor,
    )
culprit = latency.attribute(regressions[0].start, markers) if regressions else None
recovered = latency.recovery(regressions[0], markers) if regressions else None
spent = (
    slos.budget_consumed_between(
        requests,
        regressions[0].start,
        regressions[0].end,
        target=slo_target,
        period_s=period_s,
        step_s=run.window.step_s,
    )
    if regressions
    else 0.0
)
fast = slos.latency_sli(
    window_buckets, parse_duration(latency_threshold, name="latency_threshold")
)
apdex, apdex_exact = slos.apdex(
    window_buckets, parse_duration(apdex_threshold, name="apdex_threshold")
)
pairs = slos.alert_pairs(period_s)
windows_s = sorted({w for p in pairs for w in (p.long_window_s, p.short_window_s)})
# Exact: each window's increase at the rule step (the scrape interval), as the generated
# rules and promtool compute it; per-step rates only where the source has no window override.
exact_alerts = slos.supports_range_window(run.metrics)
if exact_alerts:
    alerts = slos.burn_rate_alerts(
        {w: run.metrics.query_range("request_increase", run.selector, fine_window, window_s=w)
         for w in windows_s},
        pairs, target=slo_target, history_start=pd.Timestamp(run.window.start),
    )
else:
    ratios = slos.approximate_window_error_ratios(requests, windows_s, step_s=run.window.step_s)
    alerts = slos.alert_timeline(ratios, pairs, target=slo_target)
fired = alerts[alerts["fired_at"].notna()]

nb.show(latency.headline(slo, overall, regressions, culprit, exhaustion))
nb.show(
    f"- Latency SLO: {fast.fraction:.3%} of requests took at most {latency_threshold} "
    f"(target {latency_target:.1%}, {'met' if fast.fraction >= latency_target else 'missed'}"
    f"{'' if fast.exact else '; approximate: the threshold is not a bucket bound'}). "
    f"Apdex({apdex_threshold}) {apdex:.3f}{'' if apdex_exact else ' (approximate)'}.\n"
    + (
        f"- The first regression spent {spent:.1%} of the period's error budget"
        + (
            f"; revision {recovered.revision} became ready and the service recovered "
            f"{recovered.delay_s / 60:.1f} min later."
            if recovered
            else "."
        )
        if regressions
        else ""
    )
    + f"\n- Burn-rate alerts that would have fired: {len(fired)} "
    f"({', '.join(sorted(set(fired['alert']))) or 'none'})."
)
nb.record(
    verdict="pass" if slo.met else "fail",
    summary=latency.verdict_sentence(slo),
    p50_s=overall[0.5],
    p95_s=overall[0.95],
    p99_s=overall[0.99],
    requests=total,
    errors=errors,
    error_ratio=errors / total if total else None,
    slo_target=slo.target,
    slo_attainment=slo.attainment,
    error_budget=slo.error_budget,
    budget_consumed=slo.budget_consumed,
    budget_remaining=slo.budget_remaining,
    burn_rate=slo.burn_rate,
    history_shorter_than_period=slo.history_s < slo.period_s,
    budget_exhausted_at=exhaustion.isoformat() if exhaustion else None,
    regressions=len(regressions),
    regression_start=regressions[0].start.isoformat() if regressions else None,
    regression_end=regressions[0].end.isoformat() if regressions else None,
    regression_peak_p95_s=regressions[0].peak_p95_s if regressions else None,
    regression_revision=culprit.revision if culprit else None,
    regression_delay_after_ready_s=culprit.delay_s if culprit else None,
    regression_budget_consumed=spent,
    recovery_revision=recovered.revision if recovered else None,
    recovery_after_ready_s=recovered.delay_s if recovered else None,
    latency_slo_fraction=fast.fraction,
    latency_slo_exact=fast.exact,
    latency_slo_met=fast.fraction >= latency_target,
    apdex=apdex,
    burn_rate_alerts_fired=len(fired),
    alert_timeline_exact=exact_alerts,
    hpa_scale_events=len(scales),
    pod_restarts=int(restarts["restarts"].sum()),
    first_page_at=(
        fired[fired["severity"] == "page"]["fired_at"].min().isoformat()
        if (fired["severity"] == "page").any()
        else None
    ),
)

# %% [markdown]
# ## Latency over time
#
# Quantiles of the request-duration histogram per step, interpolated inside buckets
# the way Prometheus's `histogram_quantile` does. Markers: red lines where a ReplicaSet
# revision's first pod became ready, dotted blue where the HPA changed its desired
# replicas, dashed orange where a container restarted.

# %%
events = latency.marker_events(markers)
kinds = latency.marker_groups(markers, scales, restarts)
plots.time_series(
    {f"p{int(q * 100)}": quantiles[q] for q in quantiles.columns},
    title="Request latency quantiles",
    ylabel="latency (s)",
    marker_groups=kinds,
    logy=True,
);

# %%
plots.time_series(
    {"error ratio": ratio},
    title="Error ratio (errors / requests)",
    ylabel="ratio",
    marker_groups=kinds,
    threshold=1 - slo_target,
    threshold_label=f"error budget ({1 - slo_target:.2%})",
);

# %% [markdown]
# ## Latency buckets
#
# Requests per second in each histogram bucket: a release that slows requests moves
# the mass up; the dashed line is the latency SLO's threshold.

# %%
plots.bucket_heatmap(
    latency.bucket_density(buckets),
    title="Request-duration histogram, requests per bucket",
    marker_groups=kinds,
    threshold_s=parse_duration(latency_threshold, name="latency_threshold"),
);

# %% [markdown]
# ## The first regression, close up

# %%
if regressions:
    around = latency.around(quantiles, regressions[0], margin_s=3 * 3600)
    plots.time_series(
        {f"p{int(q * 100)}": around[q] for q in around.columns},
        title="Latency quantiles around the first regression",
        ylabel="latency (s)",
        marker_groups={
            kind: [e for e in marks if around.index[0] <= e[0] <= around.index[-1]]
            for kind, marks in kinds.items()
        },
        logy=True,
    );
else:
    print("No regression to show.")

# %% [markdown]
# ## Error budget
#
# Burn rate is the error ratio divided by the budget `1 - target`: at 1 the budget
# lasts exactly the SLO period. The SRE Workbook pages when both the long and the
# short window of a pair burn faster than the pair's factor.

# %%
burn = latency.burn_rate(requests, target=slo_target, window_s=3600, step_s=run.window.step_s)
plots.time_series(
    {"burn rate (1h)": burn},
    title="Error-budget burn rate, 1 h window",
    ylabel="burn rate (x budget)",
    marker_groups=kinds,
    threshold=14.4,
    threshold_label="fast-burn page (14.4)",
);

# %%
plots.time_series(
    {"budget remaining": slos.budget_burndown(
        requests, target=slo_target, period_s=period_s, step_s=run.window.step_s
    )},
    title=f"Error budget remaining (share of the {slo_period} budget)",
    ylabel="share of budget",
    marker_groups=kinds,
    threshold=0.0,
    threshold_label="exhausted",
);

# %% [markdown]
# ## Burn-rate alerts
#
# The Workbook's pairs and Sloth's 1 d/2 h ticket, factors scaled to the SLO period,
# each with a `for`, evaluated at every scrape interval from each window's increase, as
# the generated rules are (per-step rates only for a source without a window override);
# grey bars mark where a long window did not yet fit in the history.

# %%
lanes = [*(p.name for p in pairs), "incidents"]
bars = [(r.alert, r.fired_at, None if pd.isna(r.cleared_at) else r.cleared_at, r.severity)
        for r in fired.itertuples()]
bars += [(r.alert, run.window.start, min(r.evaluable_from, run.window.end), "not evaluable")
         for r in alerts.itertuples() if r.evaluable_from > run.window.start]
bars += [("incidents", i.start, i.end, "incident") for i in regressions]
plots.interval_timeline(
    bars, lanes=lanes, title="When each burn-rate alert would have fired",
    start=run.window.start, end=run.window.end, events=events,
);

# %%
alerts

# %% [markdown]
# ## Prometheus rules for this SLO
#
# Recording and alerting rules that evaluate the same pairs, for the availability SLO and
# the latency SLO (slow requests: the `_count` minus the bucket at the threshold); they
# pass `promtool check rules` and rknb's own rule lint.

# %%
rules = slos.availability_rules(
    workload, target=slo_target, period_s=period_s, selector=run.selector
)
nb.show("```yaml\n" + dump_yaml(rules) + "```")

# %%
if fast.exact:
    latency_rules = slos.latency_rules(
        f"{workload}-latency", target=latency_target, period_s=period_s, selector=run.selector,
        threshold_s=fast.threshold_s, le_values=sorted(set(window_buckets["le"].astype(str))),
    )
    nb.show("```yaml\n" + dump_yaml(latency_rules) + "```")
else:
    nb.show(f"No latency-SLO rules: {latency_threshold} is not a bucket bound of the histogram.")

# %% [markdown]
# ## Regressions and releases

# %%
latency.regressions_frame(regressions, markers)

# %%
markers

# %% [markdown]
# ## Method
#
# - **Quantiles**: `histogram_quantile` over `sum by (le) (rate(<histogram>_bucket[5m]))`,
#   computed by rknb with Prometheus's rules (bucket interpolation, the `+Inf` bucket,
#   monotonicity repair); the window's figures use the buckets' increase over the whole
#   window.
# - **Availability**: successful requests over all requests from the service's request
#   counter by `status`, over the window. When the window is shorter than the SLO period
#   the attainment and budget consumed are those of the window, and the remaining budget
#   is the period's budget minus what the window consumed.
# - **Regressions**: a step where p95 latency or the error ratio exceeds
#   `regression_factor` times the median of the preceding `baseline_window`, for at
#   least `min_regression`; its start is then dated to the scrape interval from
#   one-interval increases. A regression is attributed to the newest revision whose
#   first pod became ready before it started.

# %%
nb.finish()
