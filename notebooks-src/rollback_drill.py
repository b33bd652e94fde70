# %% [markdown]
# # Rollback drill (plan)
#
# For whoever holds the pager during a release: what `kubectl rollout undo` would do to
# this Deployment. It reads the rollout history from the Deployment's ReplicaSets the
# way `kubectl rollout history` does, shows what the rollback changes in the pod
# template, and predicts the rolling update: how long it takes and whether available
# replicas dip below the desired count on the way. This notebook only reads; it prints
# the commands to run, and the commands that undo them.

# %% tags=["parameters"]
prometheus: str = "demo"  # metrics (unused in plan mode; kept so schedules set it uniformly)
cluster: str = "demo"  # objects: "demo", manifests, a bundle, "in-cluster" or a kube context
namespace: str = "reasonkit"  # namespace of the Deployment
workload: str = "reasonkit-pro-mcp"  # the Deployment to roll back
report_time: str = ""  # the instant "now" means (ISO 8601 with offset); empty: the source's own
start: str = "now-14d"  # window start (unused in plan mode)
end: str = "now"  # window end (unused in plan mode)
step: str = "5m"  # resolution (unused in plan mode)
to_revision: int = 0  # revision to roll back to; 0 means the previous one, as kubectl
pod_ready: str = ""  # time from pod creation to ready (e.g. "40s"); empty: from the readiness probe

# %%
import rknb.notebook as nb
from rknb import plots, rollout
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
deployment = rollout.find_deployment(run.list("Deployment"), workload, namespace)
plan = rollout.plan_rollback(
    deployment,
    run.list("ReplicaSet"),
    to_revision,
    pod_ready_s=parse_duration(pod_ready, name="pod_ready") if pod_ready else None,
)

# %% [markdown]
# ## The answer

# %%
nb.show(rollout.headline(plan))
timeline = plan.timeline
nb.record(
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
# ## Commands
#
# Run these only after reviewing the plan; the restore commands return to the revision
# the drill started from.

# %%
print("\n".join(["# rollback", *plan.commands, "", "# restore", *plan.restore_commands]))

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

# %%
nb.finish()
