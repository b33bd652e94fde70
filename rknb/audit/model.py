"""The audit's data: rules, findings, the object index cross-object rules read, and the report."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "CATEGORIES",
    "SEVERITIES",
    "SEVERITY_WEIGHTS",
    "AuditConfig",
    "AuditReport",
    "Finding",
    "ObjectError",
    "ObjectIndex",
    "ObjectSummary",
    "Rule",
    "Skipped",
    "Violation",
    "object_namespace",
    "selector_matches",
]

Severity = Literal["critical", "high", "medium", "low", "info"]
Category = Literal["reliability", "security", "efficiency"]

SEVERITIES: tuple[Severity, ...] = ("critical", "high", "medium", "low", "info")
CATEGORIES: tuple[Category, ...] = ("reliability", "security", "efficiency")

#: The weight a failed check of each severity costs in the score (see :mod:`rknb.audit.engine`).
SEVERITY_WEIGHTS: dict[str, int] = {"critical": 10, "high": 5, "medium": 3, "low": 1, "info": 0}

CLUSTER_SCOPED = frozenset({"Namespace", "Node", "ClusterRole", "ClusterRoleBinding"})


@dataclass(frozen=True)
class Violation:
    """What a rule function reports: a message naming the offending value, and where."""

    message: str
    container: str | None = None
    alert: str | None = None
    #: Set by cross-object rules: the object the violation belongs to.
    obj: Mapping[str, Any] | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class AuditConfig:
    """Thresholds and suppressions for an audit run, as a notebook passes them.

    ``ignore`` entries are ``RULE-ID`` (everywhere) or ``RULE-ID Kind/namespace/name``
    (one object), each optionally followed by `` -- reason``.
    """

    min_replicas: int = 2
    disabled: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    #: Optional (advice) rules to run as well, by id or id prefix; ``("*",)`` runs them all.
    enabled: tuple[str, ...] = ()
    #: Prometheus' scrape interval, for alert-rule range checks (seconds).
    scrape_interval_s: float = 60.0
    #: Metric name -> type (counter, gauge, histogram, summary), e.g. from
    #: :func:`rknb.audit.rules.alerts.metric_types_from_openmetrics`; unknown names pass.
    metric_types: tuple[tuple[str, str], ...] = ()
    #: Allowed ranges for RK-RES-007: (``requests.cpu`` | ``limits.cpu`` | ``requests.memory``
    #: | ``limits.memory``, lowest, highest) in cores or bytes; empty checks nothing.
    resource_ranges: tuple[tuple[str, float, float], ...] = ()
    #: Labels every alert must carry (RK-PROM-004): (name, value regex; "" = any non-empty).
    alert_labels: tuple[tuple[str, str], ...] = (("severity", ""),)
    #: Annotations every alert must carry (RK-PROM-005), as ``alert_labels``.
    alert_annotations: tuple[tuple[str, str], ...] = (("summary", ""),)
    #: Bounds on an alert's ``for`` (RK-PROM-003), seconds; no ``for`` always fails.
    alert_for_min_s: float = 0.0
    alert_for_max_s: float | None = None


@dataclass(frozen=True)
class Rule:
    """One audit rule: its identity and the function that checks it.

    A rule of scope ``object`` is called as ``check(obj, config)`` for each
    object of its kinds; a rule of scope ``set`` as ``check(index, config)``
    once, yielding violations that name their object. ``equivalent`` lists
    the peer checks giving the same verdict (``tool:check-id``), ``divergent``
    the peer checks on the same concern that judge some case differently
    (explained in ``rationale``). An ``optional`` rule is advice: it runs only
    when selected by id or listed in :attr:`AuditConfig.enabled`.
    """

    id: str
    title: str
    category: Category
    severity: Severity
    kinds: tuple[str, ...]
    rationale: str
    remediation: str
    check: Callable[..., Iterable[Violation]] = field(repr=False, compare=False)
    scope: Literal["object", "set"] = "object"
    equivalent: tuple[str, ...] = ()
    divergent: tuple[str, ...] = ()
    optional: bool = False


@dataclass(frozen=True)
class Finding:
    """One rule broken by one object (and container or alert), with how to fix it."""

    rule_id: str
    title: str
    severity: Severity
    category: Category
    kind: str
    namespace: str | None
    name: str
    container: str | None
    alert: str | None
    message: str
    remediation: str
    source: str | None = None
    suppressed: bool = False
    suppressed_reason: str | None = None

    @property
    def object_key(self) -> str:
        """Return ``Kind/namespace/name`` (``Kind/name`` for cluster-scoped objects)."""
        return object_key_of(self.kind, self.namespace, self.name)


def object_key_of(kind: str, namespace: str | None, name: str) -> str:
    """Return ``Kind/namespace/name``, or ``Kind/name`` without a namespace."""
    return f"{kind}/{namespace}/{name}" if namespace else f"{kind}/{name}"


@dataclass(frozen=True)
class Skipped:
    """An object the audit did not check, and why."""

    kind: str | None
    namespace: str | None
    name: str | None
    reason: str


@dataclass(frozen=True)
class ObjectSummary:
    """One object's part of the report: checks run, checks failed, findings by severity, score."""

    kind: str
    namespace: str | None
    name: str
    checks: int
    failed: int
    findings: dict[str, int]
    score: float


@dataclass(frozen=True)
class ObjectError:
    """An object field the rules could not read (treated as absent), or a rule that failed on it."""

    kind: str | None
    namespace: str | None
    name: str | None
    #: ``path:line`` the object came from (its ``rknb.io/source`` annotation), if known.
    source: str | None
    message: str


@dataclass(frozen=True)
class AuditReport:
    """The audit's result: findings, suppressed findings, skipped objects, score, breakdown."""

    findings: list[Finding]
    suppressed: list[Finding]
    skipped: list[Skipped]
    score: float
    objects: list[ObjectSummary]
    rules: list[str]
    #: (rule id, object key) -> whether the check passed, for every check that ran.
    verdicts: dict[tuple[str, str], bool] = field(repr=False, default_factory=dict)
    #: Fields the rules could not read and rules that failed, one per object and problem.
    errors: list[ObjectError] = field(default_factory=list)


def object_namespace(obj: Mapping[str, Any]) -> str | None:
    """Return the namespace: ``default`` when unset (as kubectl), None for cluster-scoped kinds."""
    if obj.get("kind") in CLUSTER_SCOPED:
        return None
    return (obj.get("metadata") or {}).get("namespace") or "default"


def selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """Return whether a LabelSelector (matchLabels and matchExpressions) selects these labels.

    An empty selector ``{}`` selects everything, as in NetworkPolicies and PDBs
    (policy/v1); a missing one (``None``) selects nothing.
    """
    if selector is None:
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key = expression.get("key")
        op = expression.get("operator")
        values = expression.get("values") or []
        present = key in labels
        if op == "In" and not (present and labels[key] in values):
            return False
        if op == "NotIn" and present and labels[key] in values:
            return False
        if op == "Exists" and not present:
            return False
        if op == "DoesNotExist" and present:
            return False
        if op not in ("In", "NotIn", "Exists", "DoesNotExist"):
            return False
    return True


class ObjectIndex:
    """The objects of one audit, looked up by kind and namespace (what cross-object rules read)."""

    def __init__(self, objects: Iterable[Mapping[str, Any]]) -> None:
        self._by_kind: dict[str, list[Mapping[str, Any]]] = {}
        self._by_namespace: dict[tuple[str, str | None], list[Mapping[str, Any]]] = {}
        self._by_name: dict[tuple[str, str | None, str], Mapping[str, Any]] = {}
        #: Lookups rules build once per audit (for example HPAs by target), by name.
        self.cache: dict[str, Any] = {}
        for obj in objects:
            kind = str(obj.get("kind"))
            namespace = object_namespace(obj)
            name = str((obj.get("metadata") or {}).get("name"))
            self._by_kind.setdefault(kind, []).append(obj)
            self._by_namespace.setdefault((kind, namespace), []).append(obj)
            self._by_name.setdefault((kind, namespace, name), obj)

    def of_kind(self, kind: str, namespace: str | None = None) -> list[Mapping[str, Any]]:
        """Return the objects of a kind, in one namespace or (None) all of them."""
        if namespace is None:
            return list(self._by_kind.get(kind, []))
        return list(self._by_namespace.get((kind, namespace), []))

    def get(self, kind: str, namespace: str | None, name: str) -> Mapping[str, Any] | None:
        """Return the object of this kind, namespace and name, or None."""
        return self._by_name.get((kind, namespace, name))

    def __iter__(self) -> Iterator[Mapping[str, Any]]:
        for objects in self._by_kind.values():
            yield from objects
