"""Bundles: a recording of every answer a notebook got, replayable offline.

A bundle is a folder that can be attached to an incident ticket. It holds
``bundle.json`` (format version, the recording's reference time, what was
recorded from, an index of answers) and one JSON file per answer under
``metrics/`` and ``objects/``. Replaying it gives the same frames (values,
dtypes, row order) and the same objects, so a notebook run on the bundle
reproduces the live run's outputs. Secret values are never written: objects
pass through :func:`rknb.sources.objects.strip_secret` on the way in.

Answers are keyed by a hash of the question (query name, selector, window or
instant), so the same question always maps to the same file.

``rknb record`` records several notebooks, each in its own kernel, into one
bundle: it starts the bundle with :func:`start_bundle` and names it in the
environment variable :data:`RECORD_ENV` for the kernels only; the source
openers (:func:`rknb.sources.open_metrics`, :func:`rknb.sources.open_objects`)
then wrap what they open in a :class:`BundleRecorder` that appends to it.
Appending recorders merge their answers into ``bundle.json`` under a file
lock, so kernels may record side by side.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rknb.catalog import Selector
from rknb.errors import BundleError, ParameterError
from rknb.sources.base import KubeObject, MetricsSource, ObjectSource, Window
from rknb.sources.objects import check_kind, strip_secret
from rknb.times import format_time, parse_time

__all__ = [
    "BUNDLE_FORMAT_VERSION",
    "RECORD_ENV",
    "BundleMetricsSource",
    "BundleObjectSource",
    "BundleRecorder",
    "bundle_recorded_at",
    "finish_bundle",
    "is_bundle",
    "open_bundle",
    "recording_target",
    "start_bundle",
]

logger = logging.getLogger(__name__)

BUNDLE_FORMAT_VERSION = 1
_INDEX = "bundle.json"
_LOCK = ".bundle.lock"

#: Names the bundle folder the source openers record into (set by ``rknb record`` for a run).
RECORD_ENV = "RKNB_RECORD_BUNDLE"


# -- keys ----------------------------------------------------------------------------------


def _selector_dict(selector: Selector) -> dict[str, Any]:
    return {
        "namespace": selector.namespace,
        "workload": selector.workload,
        "container": selector.container,
        "labels": [list(pair) for pair in selector.labels],
    }


def _range_question(
    query: str, selector: Selector, window: Window, window_s: float | None = None
) -> dict[str, Any]:
    question: dict[str, Any] = {
        "type": "range",
        "query": query,
        "selector": _selector_dict(selector),
        "start_unix": window.start.timestamp(),
        "end_unix": window.end.timestamp(),
        "step_s": float(window.step_s),
    }
    if window_s is not None:  # absent otherwise, so keys of earlier bundles stay valid
        question["window_s"] = float(window_s)
    return question


def _instant_question(
    query: str, selector: Selector, time: datetime, window_s: float | None
) -> dict[str, Any]:
    return {
        "type": "instant",
        "query": query,
        "selector": _selector_dict(selector),
        "time": format_time(time),
        "time_unix": time.timestamp(),
        "window_s": float(window_s) if window_s is not None else None,
    }


def _objects_question(kind: str, namespace: str | None) -> dict[str, Any]:
    return {"type": "objects", "kind": kind, "namespace": namespace}


def _key(question: dict[str, Any]) -> str:
    canonical = json.dumps(question, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:20]


def _describe(question: dict[str, Any]) -> str:
    if question["type"] == "objects":
        return f"objects of kind {question['kind']} in namespace {question['namespace'] or '*'}"
    sel = question["selector"]
    labels = " ".join(f"{k}={v}" for k, v in sel["labels"])
    selector = f"{sel['namespace'] or '*'}/{sel['workload'] or '*'}"
    if sel["container"]:
        selector += f" container={sel['container']}"
    if labels:
        selector += " " + labels
    if question["type"] == "range":
        start = datetime.fromtimestamp(question["start_unix"], UTC)
        end = datetime.fromtimestamp(question["end_unix"], UTC)
        when = f"{format_time(start)}..{format_time(end)} step {question['step_s']:g}s"
        if question.get("window_s") is not None:
            when += f" over {question['window_s']:g}s"
    else:
        when = f"at {question['time']}"
        if question["window_s"] is not None:
            when += f" over {question['window_s']:g}s"
    return f"query {question['query']!r} for {selector} {when}"


# -- frames as JSON ------------------------------------------------------------------------


def _is_datetime(series: pd.Series) -> bool:
    return isinstance(series.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(series)


def _text_values(values: Sequence[Any]) -> list[str | None]:
    return [None if v is None or v is pd.NA or v != v else str(v) for v in values]


def _frame_to_json(frame: pd.DataFrame) -> dict[str, Any]:
    columns: dict[str, Any] = {}
    dtypes: dict[str, str] = {}
    categories: dict[str, Any] = {}
    for name in frame.columns:
        series = frame[name]
        dtypes[str(name)] = str(series.dtype)
        if isinstance(series.dtype, pd.CategoricalDtype):
            # The categories and their order are part of the answer: a groupby over a
            # categorical column yields its groups in category order.
            cats = series.cat.categories
            categories[str(name)] = {
                "values": _text_values(cats.tolist()),
                "dtype": str(cats.dtype),
                "ordered": bool(series.cat.ordered),
            }
            columns[str(name)] = series.cat.codes.astype("int64").tolist()
        elif _is_datetime(series):
            ns = series.dt.tz_convert("UTC") if series.dt.tz is not None else series
            columns[str(name)] = ns.astype("datetime64[ns, UTC]").astype("int64").tolist()
        elif pd.api.types.is_float_dtype(series) or pd.api.types.is_integer_dtype(series):
            columns[str(name)] = series.tolist()
        elif pd.api.types.is_bool_dtype(series):
            columns[str(name)] = [bool(v) for v in series.tolist()]
        else:
            columns[str(name)] = _text_values(series.tolist())
    payload = {"columns": [str(c) for c in frame.columns], "dtypes": dtypes, "data": columns}
    if categories:
        payload["categories"] = categories
    return payload


def _frame_from_json(payload: dict[str, Any]) -> pd.DataFrame:
    data: dict[str, pd.Series] = {}
    categories = payload.get("categories", {})
    for name in payload["columns"]:
        dtype = payload["dtypes"][name]
        values = payload["data"][name]
        if name in categories:
            spec = categories[name]
            cats = pd.Index(spec["values"], dtype=spec["dtype"])
            codes = np.asarray(values, dtype=np.int64)
            series = pd.Series(
                pd.Categorical.from_codes(codes, categories=cats, ordered=spec["ordered"])
            )
        elif dtype.startswith("datetime64"):
            stamps = np.asarray(values, dtype=np.int64).view("datetime64[ns]")
            series = pd.Series(stamps).dt.tz_localize("UTC")
            if dtype != "datetime64[ns, UTC]":
                series = series.astype(dtype)
        elif dtype == "object":
            series = pd.Series(values, dtype=object)
        else:
            series = pd.Series(values).astype(dtype)
        data[name] = series
    return pd.DataFrame(data, columns=payload["columns"])


# -- writing -------------------------------------------------------------------------------


def _write_json(path: Path, payload: Any) -> None:
    # Write then rename, so a bundle interrupted mid-recording never holds half a file.
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(payload, indent=None, sort_keys=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


@contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """Hold an exclusive lock on the bundle folder (kernels recording side by side)."""
    try:
        import fcntl
    except ImportError:  # no flock (Windows): recordings into one bundle must not overlap
        yield
        return
    with open(directory / _LOCK, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def recording_target() -> Path | None:
    """Return the bundle folder :data:`RECORD_ENV` names for this process, or None."""
    value = os.environ.get(RECORD_ENV, "").strip()
    return Path(value) if value else None


def start_bundle(
    directory: str | os.PathLike[str],
    recorded_at: datetime,
    *,
    description: str,
    metrics_source: str | None = None,
    objects_source: str | None = None,
    force: bool = False,
) -> Path:
    """Create an empty bundle that recorders append to; return its folder.

    Parameters
    ----------
    directory
        The bundle folder: new, empty, or (with ``force``) an earlier bundle.
    recorded_at
        The recording's "now", the reference time a replay starts from.
    description
        Free text stored in ``bundle.json``.
    metrics_source
        What the metrics are recorded from, safe to print.
    objects_source
        What the objects are recorded from, safe to print.
    force
        Replace a bundle the folder already holds (only its bundle files are removed).

    Raises
    ------
    BundleError
        When the folder holds a bundle and ``force`` is not set, or holds other files.
    """
    folder = Path(directory)
    if is_bundle(folder):
        if not force:
            raise BundleError(
                f"{folder} already holds a bundle (recorded at "
                f"{_read_index(folder).get('recorded_at')}); choose another folder or pass "
                "--force to replace it"
            )
        for part in ("metrics", "objects"):
            shutil.rmtree(folder / part, ignore_errors=True)
        (folder / _INDEX).unlink()
    elif folder.is_dir() and any(p.name != _LOCK for p in folder.iterdir()):
        raise BundleError(
            f"{folder} holds files but no {_INDEX}; record into a new or empty folder"
        )
    when = parse_time(recorded_at, name="report_time")
    (folder / "metrics").mkdir(parents=True, exist_ok=True)
    (folder / "objects").mkdir(parents=True, exist_ok=True)
    _write_json(
        folder / _INDEX,
        {
            "format": "rknb-bundle",
            "version": BUNDLE_FORMAT_VERSION,
            "recorded_at": format_time(when),
            "description": description,
            "metrics_source": metrics_source,
            "objects_source": objects_source,
            # Until finish_bundle() removes it: a replay refuses a recording that never ended.
            "recording": True,
            "metrics": {},
            "objects": {},
        },
    )
    return folder


def finish_bundle(directory: str | os.PathLike[str]) -> None:
    """Mark a bundle started by :func:`start_bundle` as complete, so that it can be replayed.

    A bundle whose recording was killed (SIGTERM, a crash) before this call keeps its
    ``recording`` mark, and :func:`open_bundle` refuses it instead of replaying part of
    the answers.
    """
    folder = Path(directory)
    with _locked(folder):
        index = _read_index(folder)
        index.pop("recording", None)
        _write_json(folder / _INDEX, index)


class BundleRecorder:
    """Answers like the sources it wraps and records every answer into a bundle folder.

    Parameters
    ----------
    metrics
        The metrics source to record from, or ``None``.
    objects
        The object source to record from, or ``None``.
    directory
        The bundle folder; created if missing.
    report_time
        The instant the run treats as "now"; the sources' reference time when
        omitted (required for live sources, which have none).
    description
        Free text stored in ``bundle.json``.
    append
        Add to the bundle the folder holds (made by :func:`start_bundle` or an
        earlier recorder), keeping its recording time, instead of starting afresh.
    """

    def __init__(
        self,
        metrics: MetricsSource | None,
        objects: ObjectSource | None,
        directory: str | os.PathLike[str],
        *,
        report_time: datetime | None = None,
        description: str | None = None,
        append: bool = False,
    ) -> None:
        self.directory = Path(directory)
        self._metrics = metrics
        self._objects = objects
        self._append = append
        if append and is_bundle(self.directory):
            self._join(self._check_report_time(report_time))
            return
        recorded_at = report_time
        for source in (metrics, objects):
            if recorded_at is None and source is not None:
                recorded_at = source.reference_time
        if recorded_at is None:
            raise ParameterError(
                "report_time",
                "live sources have no reference time; pass report_time= to fix the bundle's 'now'",
            )
        self.recorded_at = parse_time(recorded_at, name="report_time")
        (self.directory / "metrics").mkdir(parents=True, exist_ok=True)
        (self.directory / "objects").mkdir(parents=True, exist_ok=True)
        sources = [s.description for s in (metrics, objects) if s is not None]
        self.description = description or "recording of " + " and ".join(sources)
        self.reference_time: datetime | None = self.recorded_at
        self._index: dict[str, Any] = {
            "format": "rknb-bundle",
            "version": BUNDLE_FORMAT_VERSION,
            "recorded_at": format_time(self.recorded_at),
            "description": self.description,
            "metrics_source": metrics.description if metrics is not None else None,
            "objects_source": objects.description if objects is not None else None,
            "metrics": {},
            "objects": {},
        }
        self._write_index()

    def _check_report_time(self, report_time: datetime | None) -> datetime:
        recorded_at = bundle_recorded_at(self.directory)
        if report_time is not None and parse_time(report_time, name="report_time") != recorded_at:
            raise BundleError(
                f"the bundle {self.directory} was started for {format_time(recorded_at)}, but "
                f"this run's report_time is {format_time(report_time)}; record every notebook "
                "of one bundle with the same report_time"
            )
        return recorded_at

    def _join(self, recorded_at: datetime) -> None:
        index = _read_index(self.directory)
        self.recorded_at = recorded_at
        self.reference_time = recorded_at
        self.description = str(index.get("description") or "")
        self._index = index
        for role, source in (("metrics_source", self._metrics), ("objects_source", self._objects)):
            if source is not None and not index.get(role):
                index[role] = source.description
        self._write_index()

    def _write_index(self) -> None:
        # Merge with what other recorders (other kernels) wrote since: entries only grow.
        with _locked(self.directory):
            path = self.directory / _INDEX
            if self._append and path.is_file():
                on_disk = _read_index(self.directory)
                for section in ("metrics", "objects"):
                    self._index[section] = {**on_disk.get(section, {}), **self._index[section]}
                for role in ("metrics_source", "objects_source"):
                    self._index[role] = self._index.get(role) or on_disk.get(role)
                self._index.pop("recording", None)
                if on_disk.get("recording"):
                    self._index["recording"] = True
            _write_json(path, self._index)

    def _need(self, source: Any, what: str) -> Any:
        if source is None:
            raise ParameterError(what, f"this recorder wraps no {what} source")
        return source

    def query_range(
        self, query: str, selector: Selector, window: Window, *, window_s: float | None = None
    ) -> pd.DataFrame:
        """Return the wrapped source's answer, recording it."""
        source = self._need(self._metrics, "metrics")
        if window_s is None:  # a source written before the parameter existed still records
            frame = source.query_range(query, selector, window)
        else:
            frame = source.query_range(query, selector, window, window_s=window_s)
        self._record_frame(_range_question(query, selector, window, window_s), frame)
        return frame

    def query_instant(
        self, query: str, selector: Selector, time: datetime, *, window_s: float | None = None
    ) -> pd.DataFrame:
        """Return the wrapped source's answer, recording it."""
        source = self._need(self._metrics, "metrics")
        frame = source.query_instant(query, selector, time, window_s=window_s)
        self._record_frame(_instant_question(query, selector, time, window_s), frame)
        return frame

    def list(self, kind: str, namespace: str | None = None) -> list[KubeObject]:
        """Return the wrapped source's objects, recording them without Secret values."""
        objects = [
            strip_secret(o) for o in self._need(self._objects, "objects").list(kind, namespace)
        ]
        question = _objects_question(kind, namespace)
        key = _key(question)
        _write_json(self.directory / "objects" / f"{key}.json", objects)
        self._index["objects"][key] = {**question, "file": f"objects/{key}.json"}
        self._write_index()
        logger.debug("recorded %s", _describe(question))
        return objects

    def _record_frame(self, question: dict[str, Any], frame: pd.DataFrame) -> None:
        key = _key(question)
        _write_json(self.directory / "metrics" / f"{key}.json", _frame_to_json(frame))
        self._index["metrics"][key] = {**question, "file": f"metrics/{key}.json"}
        self._write_index()
        logger.debug("recorded %s (%d rows)", _describe(question), len(frame))

    @property
    def metrics(self) -> _RecorderMetrics:
        """The recorder seen as a metrics source."""
        return _RecorderMetrics(self)

    @property
    def objects(self) -> _RecorderObjects:
        """The recorder seen as an object source."""
        return _RecorderObjects(self)


class _RecorderMetrics:
    def __init__(self, recorder: BundleRecorder) -> None:
        self._recorder = recorder
        self.description = recorder.description
        self.reference_time = recorder.reference_time
        self.query_range = recorder.query_range
        self.query_instant = recorder.query_instant


class _RecorderObjects:
    def __init__(self, recorder: BundleRecorder) -> None:
        self._recorder = recorder
        self.description = recorder.description
        self.reference_time = recorder.reference_time
        self.list = recorder.list


# -- replaying -----------------------------------------------------------------------------


def is_bundle(path: str | os.PathLike[str]) -> bool:
    """Return whether a path is a bundle folder (holds ``bundle.json``)."""
    return (Path(path) / _INDEX).is_file()


def _read_index(path: Path) -> dict[str, Any]:
    index_path = path / _INDEX
    try:
        index = json.loads(index_path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise BundleError(f"{path} holds no {_INDEX}; it is not a bundle folder") from exc
    except (OSError, ValueError) as exc:
        raise BundleError(f"{index_path} cannot be read ({exc}); record the bundle again") from exc
    if not isinstance(index, dict) or index.get("format") != "rknb-bundle":
        raise BundleError(f"{index_path} is not an rknb bundle index")
    if index.get("version") != BUNDLE_FORMAT_VERSION:
        raise BundleError(
            f"{index_path} has format version {index.get('version')!r}; this rknb reads "
            f"version {BUNDLE_FORMAT_VERSION}, record it again or use a matching rknb"
        )
    return index


def bundle_recorded_at(path: str | os.PathLike[str]) -> datetime:
    """Return a bundle's recording time (its reference time) from ``bundle.json`` alone."""
    index = _read_index(Path(path))
    return parse_time(index["recorded_at"], name="recorded_at")


class _Replay:
    def __init__(self, path: Path, index: dict[str, Any]) -> None:
        self.path = path
        self._index = index
        self.reference_time: datetime | None = parse_time(index["recorded_at"], name="recorded_at")
        self.description = f"bundle {path} ({index.get('description', '')})"

    def _load(self, section: str, question: dict[str, Any]) -> Any:
        key = _key(question)
        entry = self._index.get(section, {}).get(key)
        if entry is None:
            raise BundleError(
                f"bundle {self.path} has no recorded answer for {_describe(question)}; record "
                "the bundle again with the same parameters, or run on a live source"
            )
        name = entry.get("file") if isinstance(entry, dict) else None
        file = (self.path / name).resolve() if isinstance(name, str) else None
        # A bundle comes attached to tickets: its index may only name files inside it.
        if file is None or not file.is_relative_to(self.path.resolve()):
            raise BundleError(
                f"bundle {self.path}: the answer for {_describe(question)} names the file "
                f"{name!r}, which is not inside the bundle; the bundle is damaged or was edited"
            )
        try:
            return json.loads(file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise BundleError(f"{file} cannot be read ({exc}); the bundle is damaged") from exc


class BundleMetricsSource(_Replay):
    """Replays recorded metrics answers (the MetricsSource protocol)."""

    def query_range(
        self, query: str, selector: Selector, window: Window, *, window_s: float | None = None
    ) -> pd.DataFrame:
        """Return the recorded answer, or raise BundleError when it was not recorded."""
        question = _range_question(query, selector, window, window_s)
        return _frame_from_json(self._load("metrics", question))

    def query_instant(
        self, query: str, selector: Selector, time: datetime, *, window_s: float | None = None
    ) -> pd.DataFrame:
        """Return the recorded answer, or raise BundleError when it was not recorded."""
        question = _instant_question(query, selector, time, window_s)
        return _frame_from_json(self._load("metrics", question))

    def recorded(self) -> Sequence[dict[str, Any]]:
        """Return the index entries of every recorded metrics answer."""
        return list(self._index.get("metrics", {}).values())


class BundleObjectSource(_Replay):
    """Replays recorded object lists (the ObjectSource protocol)."""

    def list(self, kind: str, namespace: str | None = None) -> list[KubeObject]:
        """Return the recorded objects, or raise BundleError when they were not recorded."""
        check_kind(kind)
        objects = self._load("objects", _objects_question(kind, namespace))
        return [strip_secret(o) for o in objects]


def open_bundle(path: str | os.PathLike[str]) -> tuple[BundleMetricsSource, BundleObjectSource]:
    """Return the metrics and object sources that replay a bundle folder."""
    folder = Path(path)
    index = _read_index(folder)
    if index.get("recording"):
        raise BundleError(
            f"{folder} is an unfinished recording: rknb record stopped before its runs ended "
            "(it was killed, or a run failed); record it again"
        )
    return BundleMetricsSource(folder, index), BundleObjectSource(folder, index)
