"""Conformance runners: rknb's re-implementations checked case by case against upstream.

Each area (``promql`` now; ``hpa``, ``rollout`` and ``audit`` later) has a
runner module that loads vector files, runs every case through rknb's own
functions and returns a :class:`Summary` of :class:`CaseResult` values. The
``rknb conformance AREA PATH...`` command prints :meth:`CaseResult.line` for
each failing case and then :meth:`Summary.closing_line`. A runner is found
by name in :data:`RUNNERS`, so adding an area is one entry there.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

from rknb.errors import ParameterError

__all__ = [
    "RUNNERS",
    "CaseResult",
    "Status",
    "Summary",
    "format_failure",
    "run_area",
]

Status = Literal["passed", "failed", "skipped", "divergent"]

#: Area name -> ``module:function`` of its runner. The function takes
#: ``(paths, **options)`` and returns a :class:`Summary`. Modules load lazily
#: so that one area's imports do not slow the others.
RUNNERS: dict[str, str] = {
    "promql": "rknb.conformance.promql:run",
    "hpa": "rknb.conformance.hpa:run",
    "rollout": "rknb.conformance.rollout:run",
    "audit": "rknb.conformance.audit:run",
}


@dataclass(frozen=True)
class CaseResult:
    """The outcome of one conformance case: its id, status, expected and actual values."""

    case_id: str
    status: Status
    expected: Any = None
    actual: Any = None
    detail: str = ""

    def line(self) -> str:
        """Return one line naming the case, the expected and the actual value."""
        return format_failure(self)


@dataclass
class Summary:
    """The results of one run of an area's runner, with counts and the closing line.

    ``always_show`` names statuses the closing line lists even at zero (audit
    always shows ``divergent``); ``passed`` and ``failed`` are always shown.
    """

    area: str
    results: list[CaseResult] = field(default_factory=list)
    always_show: tuple[Status, ...] = ()
    label: str = ""

    def count(self, status: Status) -> int:
        """Return how many cases ended with ``status``."""
        return sum(1 for r in self.results if r.status == status)

    @property
    def passed(self) -> int:
        """Cases that gave upstream's answer."""
        return self.count("passed")

    @property
    def failed(self) -> int:
        """Cases that did not."""
        return self.count("failed")

    @property
    def skipped(self) -> int:
        """Cases that need a feature rknb does not model."""
        return self.count("skipped")

    @property
    def divergent(self) -> int:
        """Cases where upstream peers disagree and rknb documents its side."""
        return self.count("divergent")

    @property
    def ok(self) -> bool:
        """True when no case failed (the command's exit status is 0)."""
        return self.failed == 0

    def failures(self) -> list[CaseResult]:
        """Return the failing cases in run order."""
        return [r for r in self.results if r.status == "failed"]

    def closing_line(self) -> str:
        """Return ``N passed, N failed`` (then skipped / divergent counts when they apply)."""
        parts = [f"{self.passed} passed", f"{self.failed} failed"]
        extra: tuple[Status, ...] = ("skipped", "divergent")
        for status in extra:
            n = self.count(status)
            if n or status in self.always_show:
                parts.append(f"{n} {status}")
        return ", ".join(parts)


def _short(value: Any, limit: int = 300) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def format_failure(result: CaseResult) -> str:
    """Return a failing case as one line: id, expected, actual and why."""
    line = f"FAIL {result.case_id}: expected {_short(result.expected)}, got {_short(result.actual)}"
    if result.detail:
        line += f" ({result.detail})"
    return line.replace("\n", " ")


def _runner(area: str) -> Callable[..., Summary]:
    if area not in RUNNERS:
        known = ", ".join(sorted(RUNNERS))
        raise ParameterError("area", f"unknown conformance area {area!r}; valid areas: {known}")
    module_name, _, function_name = RUNNERS[area].partition(":")
    module = importlib.import_module(module_name)
    return cast(Callable[..., Summary], getattr(module, function_name))


def run_area(area: str, paths: Sequence[Path | str], **options: Any) -> Summary:
    """Return the summary of running every case in ``paths`` through the area's runner.

    Parameters
    ----------
    area
        A name in :data:`RUNNERS` (``promql``).
    paths
        Vector files (or folders holding them) of that area.
    **options
        Passed to the runner, e.g. ``semantics=3`` for ``promql``.
    """
    runner = _runner(area)
    if not paths:
        raise ParameterError("paths", f"give at least one {area} vector file to run")
    return runner([Path(p) for p in paths], **options)
