from __future__ import annotations

import json
from pathlib import Path

import pytest

from rknb.audit import (
    audit,
    findings_frame,
    get_rules,
    parse_promql,
    score_of,
    severity_counts,
    to_json,
    to_text,
)
from rknb.audit.exprs import Aggregation, Call, VectorSelector, tokenize, walk
from rknb.errors import ParameterError

SEED = Path(__file__).resolve().parent.parent / "data" / "audit" / "seed"
SHARED_SEED = Path(__file__).resolve().parents[3] / "shared" / "seed"


def test_seed_copies_match_the_shared_seed():
    if not SHARED_SEED.is_dir():
        pytest.skip("shared/seed is not present in this checkout")
    for path in SHARED_SEED.glob("*.y*ml"):
        assert (SEED / path.name).read_bytes() == path.read_bytes(), path.name


def test_seed_findings(seed):
    report = audit(seed)
    found = {(f.rule_id, f.kind, f.name) for f in report.findings}
    deployment = ("Deployment", "reasonkit-pro-mcp")
    assert found == {
        ("RK-AVAIL-002", *deployment),  # no PDB
        ("RK-NET-001", *deployment),  # the policy landed in `default`
        ("RK-SEC-001", *deployment),  # no runAsNonRoot
        ("RK-SEC-002", *deployment),  # readOnlyRootFilesystem missing
        ("RK-SEC-003", *deployment),  # allowPrivilegeEscalation unset
        ("RK-PROM-001", "PrometheusRule", "alerts"),  # HighLatency without rate
        ("RK-AVAIL-006", *deployment),  # 3 replicas, no anti-affinity
        ("RK-AVAIL-007", *deployment),  # replicas: 3 although the HPA scales it
        ("RK-IMG-002", *deployment),  # :v1.0.0 with no pull policy -> IfNotPresent
        ("RK-SEC-008", *deployment),  # no capabilities dropped
        ("RK-SEC-009", *deployment),
        ("RK-SEC-010", *deployment),  # no pod securityContext
        ("RK-SEC-011", *deployment),  # no container securityContext
        ("RK-SEC-012", *deployment),  # no seccomp profile
        ("RK-SEC-013", *deployment),  # no runAsUser
        ("RK-SEC-014", *deployment),  # API_KEY from a secretKeyRef
        ("RK-SEC-015", *deployment),  # the default ServiceAccount token is mounted
        ("RK-NET-003", "NetworkPolicy", "reasonkit-pro-network-policy"),  # selects nothing
        # HighErrorRate compares errors per second with 0.01 instead of an error ratio.
        ("RK-PROM-009", "PrometheusRule", "alerts"),
    }
    net = next(f for f in report.findings if f.rule_id == "RK-NET-001")
    assert "default/reasonkit-pro-network-policy" in net.message
    prom = next(f for f in report.findings if f.rule_id == "RK-PROM-001")
    assert prom.alert == "reasonkit_alerts/HighLatency"
    assert "mcp_request_duration_seconds" in prom.message
    # The seed's API_KEY comes from a secretKeyRef: not a literal secret.
    assert not any(f.rule_id == "RK-SEC-005" for f in report.findings)


def test_seed_policy_in_the_right_namespace_selects_the_pods(seed):
    for obj in seed:
        if obj["kind"] == "NetworkPolicy":
            obj["metadata"]["namespace"] = "reasonkit"
    assert not any(f.rule_id == "RK-NET-001" for f in audit(seed).findings)


def _planted() -> dict:
    return {
        "kind": "Deployment",
        "metadata": {"name": "leaky", "namespace": "shop"},
        "spec": {
            "replicas": 2,
            "template": {
                "metadata": {"labels": {"app": "leaky"}},
                "spec": {
                    "containers": [
                        {
                            "name": "app",
                            "image": "x:1",
                            "env": [
                                {"name": "DB_PASSWORD", "value": "planted-pw-4711"},
                                {"name": "GITHUB_TOKEN", "value": "ghp_plantedtoken0815"},
                            ],
                        }
                    ]
                },
            },
        },
    }


def test_secret_values_never_reach_any_output():
    report = audit([_planted()])
    secrets = [f for f in report.findings if f.rule_id == "RK-SEC-005"]
    assert {f.message.split(" env ")[1].split()[0] for f in secrets} == {
        "DB_PASSWORD",
        "GITHUB_TOKEN",
    }
    outputs = [to_text(report), to_json(report), findings_frame(report).to_csv(), repr(report)]
    for text in outputs:
        assert "planted-pw-4711" not in text and "ghp_plantedtoken0815" not in text


def test_ignore_annotation_suppresses_with_its_reason():
    obj = _planted()
    obj["metadata"]["annotations"] = {"rknb.io/ignore": "RK-SEC-005,RK-SEC-002 test fixture only"}
    report = audit([obj])
    assert not any(f.rule_id in ("RK-SEC-005", "RK-SEC-002") for f in report.findings)
    reasons = {(f.rule_id, f.suppressed_reason) for f in report.suppressed}
    assert ("RK-SEC-002", "rknb.io/ignore: test fixture only") in reasons
    assert all(f.suppressed for f in report.suppressed)


def test_config_ignore_names_one_object():
    other = _planted()
    other["metadata"]["name"] = "other"
    report = audit(
        [_planted(), other],
        rules=["RK-SEC-002"],
        config={"ignore": ["RK-SEC-002 Deployment/shop/leaky -- scratch space"]},
    )
    assert [f.name for f in report.findings] == ["other"]
    assert report.suppressed[0].suppressed_reason == "config ignore: scratch space"


def test_unknown_kinds_helm_templates_and_owned_pods_are_skipped():
    objects = [
        {"kind": "Certificate", "apiVersion": "cert-manager.io/v1", "metadata": {"name": "c"}},
        {"kind": "Deployment", "metadata": {"name": "{{ .Release.Name }}-web"}, "spec": {}},
        {
            "kind": "Pod",
            "metadata": {
                "name": "p",
                "ownerReferences": [{"kind": "ReplicaSet", "name": "web-1", "controller": True}],
            },
            "spec": {},
        },
    ]
    report = audit(objects)
    reasons = [s.reason for s in report.skipped]
    assert "custom resource" in reasons[0]
    assert "Helm" in reasons[1]
    assert "ReplicaSet/web-1" in reasons[2]
    assert report.findings == []


def test_prometheus_templates_are_not_mistaken_for_helm():
    obj = {
        "kind": "PrometheusRule",
        "metadata": {"name": "r", "namespace": "m"},
        "spec": {
            "groups": [
                {
                    "name": "g",
                    "rules": [
                        {
                            "alert": "A",
                            "expr": "up == 0",
                            "annotations": {
                                "summary": "{{ $labels.instance }} {{ if gt $value 1.0 }}x{{ end }}"
                            },
                        }
                    ],
                }
            ]
        },
    }
    report = audit([obj])
    assert report.skipped == []
    # No `for` and no severity label; the summary template is read as Prometheus', not Helm's.
    assert [f.rule_id for f in report.findings] == ["RK-PROM-003", "RK-PROM-004"]


def test_score_weighs_failed_checks_by_severity():
    assert score_of([]) == 100.0
    # one high failed (5) out of high 5 + medium 3 + low 1 + critical 10 = 19
    assert score_of([("high", False), ("medium", True), ("low", True), ("critical", True)]) == 73.7
    assert score_of([("info", False)]) == 100.0


def test_seed_score_and_breakdown(seed):
    report = audit(seed)
    summary = {(o.kind, o.name): o for o in report.objects}
    deployment = summary[("Deployment", "reasonkit-pro-mcp")]
    # Every default rule for Deployments is one check (54 when this was written, and more as
    # rules are added); 16 of them fail (see test_seed_findings).
    applicable = [r for r in get_rules() if "Deployment" in r.kinds and not r.optional]
    assert len(applicable) >= 54
    assert (deployment.checks, deployment.failed) == (len(applicable), 16)
    assert deployment.findings == {"high": 4, "medium": 5, "low": 7}
    assert 0 < report.score < 100


def test_outputs_are_stable_and_complete(seed):
    report = audit(seed)
    first, second = to_json(report), to_json(audit(list(reversed(seed))))
    assert first == second
    document = json.loads(first)
    assert document["severity_counts"] == {
        "critical": 0,
        "high": 5,
        "medium": 7,
        "low": 7,
        "info": 0,
    }
    assert severity_counts(report)["high"] == 5
    frame = findings_frame(report)
    assert list(frame["severity"])[:5] == ["high"] * 5
    assert "RK-PROM-001" in to_text(report)


def test_unknown_rule_id_lists_the_valid_ones():
    with pytest.raises(ParameterError, match="RK-PROBE-001"):
        audit([], rules=["RK-NOPE-001"])


def test_tokenizer_reads_ranges_strings_and_operators():
    tokens = tokenize('rate(x{a=~"b.*"}[5m]) >= bool 1')
    assert [t.type for t in tokens] == [
        "ident",
        "punct",
        "ident",
        "punct",
        "ident",
        "op",
        "string",
        "punct",
        "range",
        "punct",
        "op",
        "ident",
        "number",
    ]


def test_parser_finds_calls_aggregations_and_selectors():
    tree = parse_promql(
        'histogram_quantile(0.9, sum(rate(x_bucket{job="a"}[5m])) by (le)) > on(job) group_left y'
    )
    nodes = list(walk(tree))
    calls = [n.name for n in nodes if isinstance(n, Call)]
    assert calls == ["histogram_quantile", "rate"]
    [aggregation] = [n for n in nodes if isinstance(n, Aggregation)]
    assert (aggregation.op, aggregation.grouping, aggregation.labels) == ("sum", "by", ("le",))
    selectors = [n for n in nodes if isinstance(n, VectorSelector)]
    assert [(s.metric, s.range) for s in selectors] == [("x_bucket", "5m"), ("y", None)]
    assert selectors[0].matchers == (("job", "=", "a"),)


def test_parser_names_the_bad_expression():
    with pytest.raises(ParameterError, match="rate"):
        parse_promql("rate(x[5m]")
