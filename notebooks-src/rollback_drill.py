# %% [markdown]
# # Rollback drill
#
# For whoever holds the pager during a release: what `kubectl rollout undo` does to this
# Deployment, rehearsed safely. It reads the rollout history from the Deployment's
# ReplicaSets the way `kubectl rollout history` does, shows what the rollback changes in
# the pod template, and predicts the rolling update: how long it takes and whether
# available replicas dip below the desired count on the way.
#
# Four modes, from reading to changing: **plan** (the default, reads only), **dry-run**
# (sends the exact patch with server-side dry run: nothing is stored), **execute** (rolls
# back, watches the rollout and measures it against the objectives) and **restore**
# (rolls forward to the revision the drill started from). Execute and restore need
# `execute=True`, `confirm` equal to the Deployment's name, and the context and namespace
# on the allowlists; they need a live cluster (a kubeconfig context), not the demo.

# %% tags=["parameters"]
prometheus: str = "demo"  # metrics: "demo" or the Prometheus URL the probe query goes to
cluster: str = "demo"  # objects: "demo", manifests, a bundle, "in-cluster" or a kube context
namespace: str = "reasonkit"  # namespace of the Deployment
workload: str = "reasonkit-pro-mcp"  # the Deployment to roll back
report_time: str = ""  # the instant "now" means (ISO 8601 with offset); empty: the source's own
start: str = "now-14d"  # window start (unused by the drill)
end: str = "now"  # window end (unused by the drill)
step: str = "5m"  # resolution (unused by the drill)
to_revision: int = 0  # revision to roll back to; 0 means the previous one, as kubectl
pod_ready: str = ""  # time from pod creation to ready (e.g. "40s"); empty: from readiness probes
mode: str = "plan"  # plan, dry-run, execute or restore
execute: bool = False  # must be True for execute and restore to change the cluster
confirm: str = ""  # must equal the Deployment's name for execute and restore
allowed_contexts: str = ""  # comma-separated kube contexts the drill may change
allowed_namespaces: str = ""  # comma-separated namespaces the drill may change
max_recovery_s: float = 300.0  # objective: the rollout completes within this many seconds
min_available: int = -1  # objective: available replicas never below this; -1: its own floor
max_probe_error_ratio: float = 0.01  # objective: probe errors over samples stay below this
probe_url: str = ""  # HTTP URL probed during the rollout (2xx/3xx counts as success); empty: none
probe_query: str = ""  # PromQL with its healthy bound (e.g. "error_ratio < 0.01"); empty: none
probe_interval_s: float = 1.0  # seconds between probes
timeout_s: float = 0.0  # stop watching after this many seconds; 0: progress deadline + margin
state_dir: str = ""  # folder for the state files; empty: the report folder or ./drill-state
restore_replicaset: str = ""  # restore: ReplicaSet to roll forward to; empty: from state_dir

# %%
import json

import rknb.notebook as nb
from rknb import drill, plots, rollout
from rknb.times import parse_duration

# Every drill setting is checked before anything is read from or sent to the cluster.
drill.check_parameters(
    mode=mode, probe_url=probe_url, probe_query=probe_query, probe_interval_s=probe_interval_s,
    timeout_s=timeout_s, max_recovery_s=max_recovery_s,
    max_probe_error_ratio=max_probe_error_ratio, min_available=min_available,
)
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
# Modes other than plan need a live cluster; the demo and files are refused here, clearly.
source = drill.cluster_for(run.objects, mode) if mode != "plan" else None

# %%
deployment = rollout.find_deployment(run.list("Deployment"), workload, namespace)
pod_ready_s = parse_duration(pod_ready, name="pod_ready") if pod_ready else None
replicasets = run.list("ReplicaSet")
plan = rollout.plan_rollback(deployment, replicasets, to_revision, pod_ready_s=pod_ready_s)

# %% [markdown]
# ## The plan

# %%
nb.show(rollout.headline(plan))
timeline = plan.timeline
nb.record(
    mode=mode,
    history_available=plan.history_available,
    revisions=len(plan.history),
    current_revision=plan.current.revision if plan.current else None,
    target_revision=plan.target.revision if plan.target else None,
    template_changes=len(plan.diff),
    result=plan.result,
    rollout_duration_s=timeline.duration_s,
    waves=timeline.waves,
    surge=timeline.surge,
    max_unavailable=timeline.unavailable,
    min_available=timeline.min_available,
    replicas=timeline.replicas,
    capacity_dips=timeline.min_available < timeline.replicas,
    within_progress_deadline=timeline.within_progress_deadline,
)

# %% [markdown]
# ## Rollout history

# %%
rollout.history_frame(plan.history, now=run.report_time)

# %% [markdown]
# ## What the rollback changes

# %%
rollout.diff_frame(plan.diff)

# %% [markdown]
# ## Predicted timeline

# %%
steps = timeline.to_frame()
series = rollout.timeline_series(steps, start=run.report_time)
plots.time_series(
    series,
    title="Replicas during the predicted rollout",
    ylabel="pods",
    step=True,
    threshold=timeline.replicas,
    threshold_label="desired replicas",
)
steps

# %% [markdown]
# ## The drill
#
# Dry-run sends the rollback's JSON Patch with `dryRun=All`. Execute and restore write the
# starting state to the state folder first, patch with a resourceVersion precondition (a
# Deployment changed by someone else meanwhile answers 409 and stops the drill), then watch
# the Deployment, its ReplicaSets and pods until the rollout completes or the deadline.

# %%
drilled = None
if source is not None:
    folder = drill.state_folder(state_dir, str(source.context or ""), namespace, workload)
    probe = None
    if probe_url:
        probe = drill.http_probe(probe_url)
    elif probe_query:
        probe = drill.prometheus_probe(prometheus, probe_query, cluster=cluster)
    options = dict(
        execute=execute,
        confirm=confirm,
        report_dir=folder,
        probe=probe,
        interval_s=probe_interval_s,
        timeout_s=timeout_s or None,
        pod_ready_s=pod_ready_s,
        objectives=drill.Objectives(
            max_recovery_s=max_recovery_s,
            min_available=None if min_available < 0 else min_available,
            max_probe_error_ratio=max_probe_error_ratio,
        ),
    )
    if mode == "dry-run":
        dry = drill.dry_run(source, namespace, workload, to_revision)
        nb.show(
            f"Dry run: revision {dry.from_revision} to revision {dry.target_revision}: "
            f"{dry.result}; the server accepted the patch and stored nothing."
        )
        nb.record(
            verdict="none",
            summary=f"dry run of the rollback to revision {dry.target_revision}: {dry.result}",
            drill_result=dry.result,
            drill_from_revision=dry.from_revision,
            drill_to_revision=dry.target_revision,
            patch_operations=len(dry.patch or []),
        )
        print(json.dumps(dry.patch, indent=1))
    else:
        drill.check_confirmation(execute, confirm, workload)
        context = str(source.context or "")
        allow = drill.check_scope(context, namespace, allowed_contexts, allowed_namespaces)
        if mode == "execute":
            drilled = drill.execute(
                source, namespace, workload, to_revision, allowlist=allow, **options
            )
        else:
            replicaset = restore_replicaset or drill.starting_replicaset(folder)
            drilled = drill.restore(
                source, namespace, workload, replicaset, allowlist=allow, **options
            )
        nb.show(drill.report_markdown(drilled))
        nb.record(
            verdict="pass" if drilled.passed else "fail",
            summary=f"{drilled.mode} {drilled.outcome}: {drilled.result}",
            drill_result=drilled.result,
            drill_outcome=drilled.outcome,
            drill_context=drilled.context,
            drill_started_at=drilled.started_at,
            drill_from_revision=drilled.from_revision,
            drill_to_revision=drilled.to_revision,
            recovery_s=drilled.recovery_s,
            predicted_duration_s=drilled.predicted_duration_s,
            min_available_observed=drilled.min_available_observed,
            min_available_predicted=drilled.min_available_predicted,
            min_available_objective=drilled.min_available_floor,
            probe_samples=drilled.probe_samples,
            probe_errors=drilled.probe_errors,
            probe_error_ratio=drilled.probe_error_ratio,
            watch_restarts=drilled.watch_restarts,
            starting_state=drilled.starting_state,
        )
else:
    print("mode 'plan' reads only; set mode to dry-run, execute or restore with a live cluster")

# %% [markdown]
# ## Outcome against the objectives

# %%
drill.objectives_frame(drilled) if drilled is not None else "no drill in this mode"

# %% [markdown]
# ## Measured against predicted

# %%
drill.comparison_frame(drilled) if drilled is not None else "no drill in this mode"

# %% [markdown]
# ## Timeline
#
# Ready (dotted) and available (solid) replicas of each ReplicaSet as the watches saw
# them, with the predicted available replicas dashed and probe errors marked with a red x.

# %%
if drilled is not None:
    drill.timeline_chart(drilled);

# %% [markdown]
# ## Commands
#
# The commands that repeat the drill from its starting state and the ones that undo it.
# Every rollback renumbers the revision it goes to (max+1): check `kubectl rollout history`
# before repeating.

# %%
if drilled is not None:
    lines = ["# repeat", *drilled.repeat_commands, "", "# undo", *drilled.restore_commands]
else:
    lines = ["# rollback", *plan.commands, "", "# restore", *plan.restore_commands]
print("\n".join(lines))

# %% [markdown]
# ## Method
#
# - **History**: the ReplicaSets the Deployment owns, ordered by their
#   `deployment.kubernetes.io/revision` annotation; `--to-revision=0` picks the
#   second-highest revision, as kubectl does. A rollback copies the target ReplicaSet's
#   pod template (without its `pod-template-hash` label), and Kubernetes renumbers it
#   to the next revision.
# - **Timeline**: maxSurge is resolved rounding up and maxUnavailable rounding down
#   (both zero means one unavailable), as the Deployment controller does; new pods
#   become available `pod_ready` after creation (from the readiness probe's initial
#   delay and period unless given), plus `minReadySeconds`.
# - **Measurement**: recovery is the time from the patch to `kubectl rollout status`'s
#   "successfully rolled out"; availability is the Deployment's `availableReplicas` once
#   the controller observed the new generation; the probe runs every `probe_interval_s`.

# %%
nb.finish()
