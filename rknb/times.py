"""Times and durations as notebooks and commands take them.

Times are ISO 8601 with an explicit offset (``2026-11-30T12:00:00Z``) or
relative to the report time (``now``, ``now-14d``, ``now+2h``). A time without
an offset is refused: read as local time it would silently shift every
window by the machine's UTC offset. Durations use Prometheus's units
(``30s``, ``5m``, ``1h30m``, ``14d``, ``2w``) or a plain number of seconds.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from rknb.errors import ParameterError

__all__ = ["format_duration", "format_time", "parse_duration", "parse_time", "to_unix"]

_UNITS_S = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)")
_RELATIVE = re.compile(r"^now(?:\s*([+-])\s*(.+))?$")


def parse_duration(value: str | int | float, *, name: str = "duration") -> float:
    """Return a duration in seconds from ``5m``, ``1h30m``, ``14d`` or a number."""
    if isinstance(value, bool):
        raise ParameterError(name, f"expected a duration such as '5m', got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        text = str(value).strip()
        try:
            seconds = float(text)
        except ValueError:
            parts = _DURATION_PART.findall(text)
            if not parts or "".join(n + u for n, u in parts) != text:
                raise ParameterError(
                    name,
                    f"expected a duration such as '30s', '5m', '1h30m' or '14d', got {value!r}",
                ) from None
            seconds = sum(float(n) * _UNITS_S[u] for n, u in parts)
    if seconds < 0:
        raise ParameterError(name, f"a duration cannot be negative, got {value!r}")
    return seconds


def parse_time(
    value: str | datetime | int | float, *, now: datetime | None = None, name: str = "time"
) -> datetime:
    """Return an aware UTC datetime from ISO 8601 with offset, ``now-14d`` or Unix seconds.

    Parameters
    ----------
    value
        The time as given by the user.
    now
        The report time that ``now`` refers to; required for relative times.
    name
        The parameter's name, used in error messages.
    """
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ParameterError(name, f"{value!r} has no UTC offset; give one, e.g. '+00:00'")
        return value.astimezone(UTC)
    if isinstance(value, bool):
        raise ParameterError(name, f"expected a time, got {value!r}")
    if isinstance(value, int | float):
        return datetime.fromtimestamp(float(value), UTC)

    text = str(value).strip()
    relative = _RELATIVE.match(text)
    if relative:
        if now is None:
            raise ParameterError(name, f"{text!r} is relative but no report time is known")
        sign, amount = relative.groups()
        if sign is None:
            return now.astimezone(UTC)
        offset = timedelta(seconds=parse_duration(amount, name=name))
        return (now + offset if sign == "+" else now - offset).astimezone(UTC)

    try:
        parsed = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        raise ParameterError(
            name,
            f"expected ISO 8601 with an offset (2026-11-30T12:00:00Z) or 'now-14d', got {text!r}",
        ) from None
    if parsed.tzinfo is None:
        raise ParameterError(
            name, f"{text!r} has no UTC offset; add 'Z' or '+hh:mm' so it is not read as local time"
        )
    return parsed.astimezone(UTC)


def format_duration(seconds: float) -> str:
    """Return the shortest Prometheus-style spelling of a duration (``90`` → ``1m30s``)."""
    if seconds != int(seconds):
        return f"{round(seconds * 1000)}ms"
    remaining = int(seconds)
    if remaining == 0:
        return "0s"
    out = []
    for unit in ("w", "d", "h", "m", "s"):
        size = int(_UNITS_S[unit])
        if remaining >= size:
            out.append(f"{remaining // size}{unit}")
            remaining %= size
    return "".join(out)


def format_time(moment: datetime) -> str:
    """Return an ISO 8601 UTC spelling with a ``Z`` suffix, to the second."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def to_unix(moment: datetime) -> float:
    """Return Unix seconds of an aware datetime."""
    if moment.tzinfo is None:
        raise ValueError(f"{moment!r} has no UTC offset")
    return moment.timestamp()
