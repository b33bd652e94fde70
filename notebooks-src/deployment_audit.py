# %% [markdown]
# # Deployment audit
#
# For service owners and platform reviewers: which workloads break reliability or
# security rules (probes, requests and limits, image tags, security context, replicas
# and disruption budgets, rollout strategy, network policies, literal secrets, alert
# rules), how bad each finding is, and how to fix it. Runs on the demo, a live cluster
# or manifests on disk (`-p cluster path/to/manifests`).

# %% tags=["parameters"]
prometheus: str = "demo"  # metrics (unused by the audit; kept so schedules set it uniformly)
cluster: str = "demo"  # objects: "demo", manifests, a bundle, "in-cluster" or a kube context
namespace: str = ""  # namespace to audit; empty: every namespace
workload: str = ""  # unused: the audit covers every workload in the namespace
report_time: str = ""  # the instant "now" means (ISO 8601 with offset); empty: the source's own
start: str = "now-14d"  # window start (unused by the audit)
end: str = "now"  # window end (unused by the audit)
step: str = "5m"  # resolution (unused by the audit)
fail_on: str = "high"  # the verdict fails on a finding at this severity or worse

# %%
import rknb.notebook as nb
from rknb import audit, plots
from rknb.sources.base import SUPPORTED_KINDS

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
objects = [obj for kind in SUPPORTED_KINDS for obj in run.list(kind)]
report = audit.audit(objects)

# %% [markdown]
# ## The answer

# %%
status, summary = audit.verdict(report, fail_on)
nb.show(audit.headline(report, fail_on))
counts = audit.severity_counts(report)
nb.record(
    verdict=status,
    summary=summary,
    score=report.score,
    findings_total=len(report.findings),
    suppressed=len(report.suppressed),
    skipped=len(report.skipped),
    objects_checked=len(report.objects),
    fail_on=fail_on,
    **{f"findings_{s}": n for s, n in counts.items()},
    findings=[audit.finding_record(f) for f in report.findings],
)

# %% [markdown]
# ## Findings, worst first

# %%
audit.findings_table(report)

# %%
breakdown = audit.objects_frame(report)
failing = breakdown[breakdown.failed > 0]
plots.bar_chart(
    [f"{r.kind}/{r.name}" for r in failing.itertuples()],
    {s: failing[s] for s in audit.SEVERITIES if failing[s].any()},
    title="Findings per object, by severity",
    ylabel="findings",
    horizontal=True,
);

# %% [markdown]
# ## Every object

# %%
breakdown

# %% [markdown]
# ## Suppressed and skipped

# %%
audit.findings_frame(report, include_suppressed=True).query("suppressed")[
    ["rule_id", "kind", "namespace", "name", "suppressed_reason"]
]

# %%
audit.skipped_frame(report, getattr(run.objects, "skipped", []))

# %% [markdown]
# ## Method
#
# Each rule is a small tested function with a stable id, a category (reliability,
# security, efficiency) and a severity; `rknb.audit.RULES` lists them with their
# rationale and the peer checks (kube-score, Polaris, kube-linter, Checkov, kubesec)
# they correspond to. Cross-object rules look at the whole set: Services whose selector
# matches no pod template, workloads without a PodDisruptionBudget or NetworkPolicy in
# their namespace, HPAs against PDBs. A finding is suppressed by the annotation
# `rknb.io/ignore: RULE-ID[,RULE-ID] reason` on the object. The score is
# `100 × (1 − failed weight / total weight)` over every (rule, object) check, with
# weights critical 10, high 5, medium 3, low 1. Secret values never appear: a literal
# secret in an environment variable is reported by name only.

# %%
nb.finish()
