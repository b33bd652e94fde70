"""The audit's data: rules, findings, the object index cross-object rules read, and the report."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from itertools import repeat
from typing import Any, Literal

from rknb.errors import ParameterError

__all__ = [
    "CATEGORIES",
    "FAIL_ON_SEVERITIES",
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
    "Verdicts",
    "Violation",
    "config_from_mapping",
    "object_namespace",
    "selector_matches",
]

Severity = Literal["critical", "high", "medium", "low", "info"]
Category = Literal["reliability", "security", "efficiency"]

SEVERITIES: tuple[Severity, ...] = ("critical", "high", "medium", "low", "info")
#: The thresholds ``fail_on`` takes, least severe first: the words ``rknb run --fail-on`` takes
#: (``rknb.report.SEVERITIES``). No rule has severity ``warning`` or ``error``: as thresholds
#: they sit where run places them, so ``warning`` fails on medium or worse and ``error`` on
#: critical only.
FAIL_ON_SEVERITIES = ("info", "low", "warning", "medium", "high", "error", "critical")
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
    #: ``path:line`` of the document, when it came from a file.
    source: str | None = None


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
    verdicts: Mapping[tuple[str, str], bool] = field(repr=False, default_factory=dict)
    #: Fields the rules could not read and rules that failed, one per object and problem.
    errors: list[ObjectError] = field(default_factory=list)


class Verdicts(Mapping[tuple[str, str], bool]):
    """Whether each check passed, by (rule id, object key), made into a dict on first use.

    An audit of 10,000 objects runs some 225,000 checks. Only the JUnit report and the
    conformance runner read them one by one, so the text, JSON and SARIF reports do not pay
    for the dict (80 ms of the command's serial part). Checks are added a rule at a time;
    for a key added twice under one rule, the last verdict added wins.
    """

    def __init__(self) -> None:
        self._pending: list[tuple[str, Sequence[str], bool]] = []
        self._made: dict[tuple[str, str], bool] = {}

    def add(self, rule_id: str, keys: Sequence[str], passed: bool) -> None:
        """Record one rule's verdict on the objects with these keys (kept, not copied)."""
        self._pending.append((rule_id, keys, passed))

    def _verdicts(self) -> dict[tuple[str, str], bool]:
        if self._pending:
            for rule_id, keys, passed in self._pending:
                self._made.update(dict.fromkeys(zip(repeat(rule_id), keys), passed))
            self._pending = []
        return self._made

    def __getitem__(self, check: tuple[str, str]) -> bool:
        return self._verdicts()[check]

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._verdicts())

    def __len__(self) -> int:
        return len(self._verdicts())


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
    match_labels = selector.get("matchLabels") or {}
    expressions = selector.get("matchExpressions") or []
    if not isinstance(match_labels, Mapping) or not isinstance(expressions, list):
        return False  # a selector of the wrong shape selects nothing
    for key, value in match_labels.items():
        if labels.get(key) != value:
            return False
    for expression in expressions:
        if not isinstance(expression, Mapping):
            return False
        key = expression.get("key")
        op = expression.get("operator")
        values = expression.get("values") or []
        if not isinstance(values, list) or not isinstance(key, str):
            return False
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


# --------------------------------------------------------------------------- settings
#
# One check for the settings, whether they come as a mapping (a notebook's
# ``audit(objects, config={...})``) or from a ``--config`` file: unknown keys, wrong types
# and rule ids that name no rule are refused with the key and, where one is close, a
# suggestion.

#: Metric types ``metric_types`` may name (OpenMetrics' types).
METRIC_TYPES = ("counter", "gauge", "histogram", "gaugehistogram", "summary", "info", "stateset")

_RULE_LISTS = {
    "disabled": "[RK-IMG-001]",
    "enabled": "['*'] or [RK-IMG]",
    "ignore": "['RK-NET-001 Deployment/shop/web -- reason']",
}


def config_from_mapping(values: Any, *, parameter: str = "config", where: str = "") -> AuditConfig:
    """Return the :class:`AuditConfig` of a mapping of its fields, every value checked.

    Lists may stand for tuples, and ``metric_types``, ``alert_labels`` and
    ``alert_annotations`` may be mappings (name -> type or value pattern).

    Parameters
    ----------
    values
        The settings by field name (``min_replicas``, ``disabled``, ...).
    parameter
        The name the :class:`~rknb.errors.ParameterError` gives (``config``, ``--config``).
    where
        Where the settings came from (a file name), said first in an error.
    """
    prefix = f"{where} " if where else ""
    known = [f.name for f in fields(AuditConfig)]
    if not isinstance(values, Mapping):
        raise ParameterError(
            parameter,
            f"{prefix}must be a mapping of settings ({', '.join(known)}), "
            f"not {type(values).__name__}",
        )
    checked: dict[str, Any] = {}
    for key, value in values.items():
        if key not in known:
            from difflib import get_close_matches

            close = get_close_matches(str(key), known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; the settings are {known}"
            raise ParameterError(parameter, f"{prefix}has no setting {key!r}{hint}")
        checked[key] = _setting(key, value, lambda text: ParameterError(parameter, prefix + text))
    return AuditConfig(**checked)


def _setting(key: str, value: Any, bad: Callable[[str], ParameterError]) -> Any:
    # The value of one setting as AuditConfig holds it, or the error ``bad`` makes.
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if key == "min_replicas":
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise bad(f"min_replicas is {value!r}; give a whole number (2)")
        return value
    if key in _RULE_LISTS:
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise bad(f"{key} is {value!r}; give a list of strings ({_RULE_LISTS[key]})")
        for text in value:
            _check_rule_id(key, text, bad)
        return tuple(value)
    if key in ("scrape_interval_s", "alert_for_min_s", "alert_for_max_s"):
        if value is None and key == "alert_for_max_s":
            return None
        if (
            not number
            or not math.isfinite(value)
            or value < 0
            or (key == "scrape_interval_s" and value == 0)
        ):
            raise bad(f"{key} is {value!r}; give a number of seconds (30)")
        return float(value)
    if key == "metric_types":
        pairs = _pairs(key, value, bad, "{up: gauge}")
        for name, kind in pairs:
            if kind not in METRIC_TYPES:
                raise bad(
                    f"metric_types {name!r} is {kind!r}; give one of {', '.join(METRIC_TYPES)}"
                )
        return tuple(sorted(pairs))
    if key in ("alert_labels", "alert_annotations"):
        pairs = _pairs(key, value, bad, "{severity: 'critical|warning'}")
        for name, pattern in pairs:
            try:
                re.compile(pattern)
            except re.error as error:
                raise bad(
                    f"{key} {name!r} pattern {pattern!r} is no regular expression ({error})"
                ) from error
        return tuple(pairs)
    if key == "resource_ranges":
        return _resource_ranges(value, bad)
    return value


def _pairs(key: str, value: Any, bad: Callable[[str], ParameterError], example: str) -> list[Any]:
    # (name, text) pairs from a mapping or a list of two-item lists.
    items = list(value.items()) if isinstance(value, Mapping) else value
    if not isinstance(items, list | tuple) or not all(
        isinstance(item, list | tuple) and len(item) == 2 and all(isinstance(v, str) for v in item)
        for item in items
    ):
        raise bad(f"{key} is {value!r}; give a mapping of names to strings ({example})")
    return [tuple(item) for item in items]


def _resource_ranges(value: Any, bad: Callable[[str], ParameterError]) -> tuple[Any, ...]:
    from rknb.audit.rules.pods import _RANGE_KEYS

    example = "[[requests.cpu, 0.05, 4], [limits.memory, 67108864, 8589934592]]"
    ranges = []
    for entry in value if isinstance(value, list | tuple) else [value]:
        shaped = isinstance(entry, list | tuple) and len(entry) == 3
        numbers = shaped and all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in entry[1:]
        )
        if not numbers or entry[0] not in _RANGE_KEYS or entry[1] > entry[2]:
            raise bad(
                f"resource_ranges entry {entry!r} is not [{' | '.join(sorted(_RANGE_KEYS))}, "
                f"lowest, highest] in cores or bytes ({example})"
            )
        ranges.append((entry[0], float(entry[1]), float(entry[2])))
    return tuple(ranges)


def _check_rule_id(key: str, text: str, bad: Callable[[str], ParameterError]) -> None:
    # Refuses an entry of disabled/enabled/ignore that names no rule (prefixes only in enabled).
    from difflib import get_close_matches

    from rknb.audit.registry import RULES, get_rules

    get_rules()  # registers the rules
    words = text.split("--")[0].split()
    if key == "ignore" and (not words or len(words) > 2):
        raise bad(f"ignore entry {text!r} is not 'RULE-ID [Kind/namespace/name] [-- reason]'")
    wanted = words[0] if words else text
    if wanted in RULES or (key == "enabled" and wanted == "*"):
        return
    if key == "enabled" and any(r.startswith(wanted + "-") for r in RULES):
        return
    close = get_close_matches(wanted, sorted(RULES), n=1)
    hint = (
        f"; did you mean {close[0]!r}?" if close else "; see `rknb audit --help` or docs/rules.md"
    )
    raise bad(f"{key} names {wanted!r}, which is no rule{hint}")
