"""What every source promises: the two protocols notebooks program against.

A *metrics source* answers catalog queries (:mod:`rknb.catalog`) for a
selector, over a range or at an instant, as a long DataFrame with the
columns ``timestamp`` (tz-aware UTC), one column per label of the result,
and ``value`` (float64). Rows are sorted by labels, then time. An answer
with no series is an empty frame with those columns, never an error: the
caller decides whether missing data is fatal.

An *object source* lists Kubernetes objects by kind and namespace as plain
dicts shaped like the API's JSON (``apiVersion``, ``kind``, ``metadata``,
``spec``, ``status``). Secret objects are returned without ``data`` and
``stringData``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from rknb.catalog import Selector

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "SUPPORTED_KINDS",
    "KubeObject",
    "MetricsSource",
    "ObjectSource",
    "Window",
    "empty_frame",
]

KubeObject = dict[str, Any]

SUPPORTED_KINDS = (
    "Namespace",
    "Node",
    "Pod",
    "Deployment",
    "ReplicaSet",
    "StatefulSet",
    "DaemonSet",
    "Job",
    "CronJob",
    "Service",
    "Ingress",
    "HorizontalPodAutoscaler",
    "PodDisruptionBudget",
    "NetworkPolicy",
    "ConfigMap",
    "Secret",
    "ServiceAccount",
    "PrometheusRule",
)


@dataclass(frozen=True)
class Window:
    """A query range: start and end (aware UTC) and a step in seconds."""

    start: datetime
    end: datetime
    step_s: float

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("window times must carry a UTC offset")
        if self.end < self.start:
            raise ValueError(f"window ends ({self.end}) before it starts ({self.start})")
        if self.step_s <= 0:
            raise ValueError(f"window step must be positive, got {self.step_s}")

    @property
    def duration_s(self) -> float:
        """The window's length in seconds."""
        return (self.end - self.start).total_seconds()


@runtime_checkable
class MetricsSource(Protocol):
    """Answers catalog queries over a range or at an instant."""

    #: A short description safe to print (no credentials).
    description: str

    #: The instant offline data ends at; ``None`` for live sources.
    reference_time: datetime | None

    def query_range(
        self, query: str, selector: Selector, window: Window, *, window_s: float | None = None
    ) -> pd.DataFrame:
        """Return the query's series over the window, one row per sample.

        ``window_s`` replaces the catalog entry's range (``increase(x[1h])``) at every step.
        """
        ...

    def query_instant(
        self, query: str, selector: Selector, time: datetime, *, window_s: float | None = None
    ) -> pd.DataFrame:
        """Return the query's value per series at one instant.

        ``window_s`` replaces the catalog entry's range (``increase(x[14d])``).
        """
        ...


@runtime_checkable
class ObjectSource(Protocol):
    """Lists Kubernetes objects by kind, shaped like the API's JSON."""

    description: str
    reference_time: datetime | None

    def list(self, kind: str, namespace: str | None = None) -> list[KubeObject]:
        """Return the objects of a kind, in one namespace or (``None``) all of them."""
        ...


def empty_frame(labels: tuple[str, ...] = ()) -> pd.DataFrame:
    """Return an answer with no series but the right columns and dtypes."""
    import pandas as pd

    columns: dict[str, Any] = {"timestamp": pd.Series([], dtype="datetime64[ns, UTC]")}
    for label in labels:
        columns[label] = pd.Series([], dtype="object")
    columns["value"] = pd.Series([], dtype="float64")
    return pd.DataFrame(columns)
