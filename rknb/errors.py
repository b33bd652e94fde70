"""The one exception tree of rknb.

Catch :class:`RknbError` for anything rknb raises on purpose; catch a
subclass to handle one kind of failure. Messages are one sentence: what was
wrong, the offending value, and what to do about it. Library exceptions are
chained as ``__cause__``.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "BundleError",
    "ClusterError",
    "ManifestError",
    "NoDataError",
    "ParameterError",
    "QueryError",
    "RknbError",
    "RunError",
    "SafetyError",
    "ScenarioError",
    "SourceError",
]


class RknbError(Exception):
    """Base class of every error rknb raises on purpose."""

    def __reduce__(self) -> tuple[Any, ...]:
        # The subclasses' __init__ take other arguments than the message they store, so the
        # default (calling the class with self.args) fails: a worker process could not send
        # its error back. Rebuild from the stored message and attributes instead.
        return (_rebuilt, (type(self), self.args, dict(vars(self))))


def _rebuilt(cls: type[RknbError], args: tuple[Any, ...], state: dict[str, Any]) -> RknbError:
    error = cls.__new__(cls, *args)
    Exception.__init__(error, *args)
    vars(error).update(state)
    return error


class ParameterError(RknbError, ValueError):
    """A notebook or command parameter has a bad name, type or value."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"parameter {name!r}: {message}")
        self.name = name


class SourceError(RknbError):
    """A data source could not be opened or answered badly."""


class QueryError(SourceError):
    """A metrics query failed; carries the query text and the HTTP status."""

    def __init__(self, message: str, *, query: str = "", status: int | None = None) -> None:
        super().__init__(message)
        self.query = query
        self.status = status


class NoDataError(SourceError):
    """A query answered with no series for the selector and window."""

    def __init__(self, message: str, *, selector: str = "", window: str = "") -> None:
        super().__init__(message)
        self.selector = selector
        self.window = window


class ClusterError(SourceError):
    """A Kubernetes API call failed; carries the HTTP status and reason."""

    def __init__(self, message: str, *, status: int | None = None, reason: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


class ManifestError(SourceError):
    """A manifest file could not be read; carries the file and line."""

    def __init__(self, message: str, *, path: str = "", line: int | None = None) -> None:
        where = f"{path}:{line}" if line is not None else path
        super().__init__(f"{where}: {message}" if where else message)
        self.path = path
        self.line = line


class BundleError(SourceError):
    """A recorded bundle is missing, damaged, or lacks an answer it was asked for."""


class ScenarioError(RknbError):
    """The demo scenario was asked for something it does not model."""


class SafetyError(RknbError):
    """A change to a cluster was refused by a safety check."""


class RunError(RknbError):
    """A notebook run failed; carries the exit code the CLI should use."""

    def __init__(self, message: str, *, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code
