"""The rule registry: every rule registers itself here by id, and audits pick rules by id."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any, Literal

from rknb.audit.model import CATEGORIES, SEVERITIES, Category, Rule, Severity, Violation
from rknb.errors import ParameterError

__all__ = ["RULES", "get_rules", "rule"]

#: Every registered rule by id, in registration order.
RULES: dict[str, Rule] = {}

_RULE_ID = re.compile(r"^RK-[A-Z]+-\d{3}$")


def rule(
    id: str,
    *,
    title: str,
    category: Category,
    severity: Severity,
    kinds: Iterable[str],
    rationale: str,
    remediation: str,
    scope: Literal["object", "set"] = "object",
    equivalent: Iterable[str] = (),
    divergent: Iterable[str] = (),
    optional: bool = False,
) -> Callable[[Callable[..., Iterable[Violation]]], Callable[..., Iterable[Violation]]]:
    """Return a decorator that registers a check function as a rule (the function is unchanged)."""
    if not _RULE_ID.match(id):
        raise ValueError(f"rule id {id!r} is not of the form RK-AREA-001")
    if id in RULES:
        raise ValueError(f"rule id {id!r} is registered twice")
    if category not in CATEGORIES or severity not in SEVERITIES:
        raise ValueError(f"rule {id}: bad category {category!r} or severity {severity!r}")

    def register(check: Callable[..., Iterable[Violation]]) -> Callable[..., Iterable[Violation]]:
        RULES[id] = Rule(
            id=id,
            title=title,
            category=category,
            severity=severity,
            kinds=tuple(kinds),
            rationale=rationale,
            remediation=remediation,
            check=check,
            scope=scope,
            equivalent=tuple(equivalent),
            divergent=tuple(divergent),
            optional=optional,
        )
        return check

    return register


def get_rules(select: Iterable[str] | None = None) -> list[Rule]:
    """Return the registered rules, or those whose id or id prefix (``RK-SEC``) is selected."""
    _load_rules()
    if select is None:
        return list(RULES.values())
    chosen: list[Rule] = []
    for wanted in select:
        matched = [r for r in RULES.values() if r.id == wanted or r.id.startswith(wanted + "-")]
        if not matched:
            raise ParameterError(
                "rules", f"{wanted!r} names no rule; valid ids are {', '.join(sorted(RULES))}"
            )
        chosen.extend(r for r in matched if r not in chosen)
    return chosen


def _load_rules() -> Any:
    # Importing the rule modules registers their rules.
    from rknb.audit import rules

    return rules
