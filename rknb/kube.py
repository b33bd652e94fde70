"""The Kubernetes API's small value types, parsed once for every module.

Resource quantities (``250m``, ``256Mi``, ``1e3``) and int-or-percent fields
(``maxSurge: 25%``) appear in capacity planning, HPA replay, rollout
arithmetic and the audit alike; they are parsed here so that every module
reads them the same way.
"""

from __future__ import annotations

import math
import re
from typing import Any

from rknb.errors import ParameterError

__all__ = ["parse_int_or_percent", "parse_quantity"]

_BINARY_SUFFIXES = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL_SUFFIXES = {
    "n": 1e-9,
    "u": 1e-6,
    "m": 1e-3,
    "": 1.0,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "P": 1e15,
    "E": 1e18,
}
_QUANTITY = re.compile(
    r"^(?P<number>[+-]?(?:\d+\.?\d*|\.\d+))"
    r"(?:(?P<exponent>[eE][+-]?\d+)|(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE])?)$"
)
_PERCENT = re.compile(r"-?\d+")


def parse_quantity(value: str | int | float, *, name: str = "quantity") -> float:
    """Return a Kubernetes resource quantity as a float in base units (cores, bytes).

    Accepts the API's grammar: a signed decimal number followed by a binary
    suffix (``Ki`` … ``Ei``), a decimal suffix (``n u m k M G T P E``) or a
    decimal exponent (``1e3``, ``5E-2``).
    """
    if isinstance(value, bool):
        raise ParameterError(name, f"expected a quantity such as '250m' or '256Mi', got {value!r}")
    if isinstance(value, int | float):
        return _finite(float(value), value, name)
    match = _QUANTITY.match(str(value).strip())
    if match is None:
        raise ParameterError(
            name, f"expected a Kubernetes quantity such as '250m', '0.5' or '256Mi', got {value!r}"
        )
    number = float(match["number"])
    try:
        if match["exponent"]:
            return _finite(number * 10.0 ** int(match["exponent"][1:]), value, name)
    except OverflowError:
        return _finite(math.inf, value, name)
    suffix = match["suffix"] or ""
    if suffix in _BINARY_SUFFIXES:
        return _finite(number * _BINARY_SUFFIXES[suffix], value, name)
    return _finite(number * _DECIMAL_SUFFIXES[suffix], value, name)


def _finite(number: float, value: Any, name: str) -> float:
    # The API server keeps a quantity in a 64-bit integer: past 9.2e18 it cannot hold one.
    if not math.isfinite(number) or abs(number) > 9.2e18:
        raise ParameterError(name, f"{value!r} is out of range for a Kubernetes quantity")
    return number


def parse_int_or_percent(value: int | str, total: int, *, round_up: bool) -> int:
    """Return a Kubernetes int-or-percent value scaled to ``total``.

    An int is taken as is; a string must be a whole percentage such as
    ``"25%"``, scaled to ``total`` and rounded up or down.

    Parameters
    ----------
    value
        The int-or-string field as the API holds it (``1``, ``"25%"``).
    total
        The count a percentage refers to (usually ``spec.replicas``).
    round_up
        Round a percentage up (maxSurge) rather than down (maxUnavailable).
    """
    if isinstance(value, bool):
        raise ParameterError("int-or-percent", f"expected an int or 'N%', got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        text = value.strip()
        if text.endswith("%") and _PERCENT.fullmatch(text[:-1]):
            scaled = int(text[:-1]) * total
            return -(-scaled // 100) if round_up else scaled // 100
        raise ParameterError(
            "int-or-percent",
            f"{value!r} is neither an integer nor a whole percentage; write 1 or '25%'",
        )
    raise ParameterError("int-or-percent", f"expected an int or 'N%', got {value!r}")
