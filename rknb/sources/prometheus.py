"""A metrics source over a live Prometheus HTTP API (Prometheus, Thanos, Mimir, VictoriaMetrics).

``prometheus-api-client`` only configures the connection: its ``requests``
Session carries TLS settings, with the library's own urllib3 retries turned
off so that an error keeps the server's text. rknb sends the calls itself,
as POST form bodies (a long selector cannot overflow a URL), with aware UTC
times as Unix seconds, and parses the JSON into the long frame of
:mod:`rknb.sources.base` with numpy, which costs a fifth of the client's own
frame conversion. Range queries longer than the server's 11,000 points per
series are split into chunks fetched a few at a time, with each shared
boundary sample kept once; timeouts, connection errors, 5xx and 429 are
retried with exponential backoff and jitter, a 4xx ``bad_data`` is not. A
chunk that still fails fails the whole query: no partial frame is returned.
"""

from __future__ import annotations

import io
import ipaddress
import json
import logging
import math
import os
import random
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import pandas as pd

from rknb.catalog import Query, Selector, get_query, load_catalog, render_promql
from rknb.credentials import redact
from rknb.errors import ParameterError, QueryError
from rknb.promql import parse_native_histogram
from rknb.sources.base import Window, empty_frame
from rknb.times import format_time, parse_time, to_unix

__all__ = [
    "MAX_POINTS_PER_SERIES",
    "PrometheusSource",
    "live_prometheus",
    "parse_histogram_matrix",
    "parse_histogram_vector",
    "parse_matrix",
    "parse_matrix_body",
    "parse_matrix_bytes",
    "parse_vector",
]

logger = logging.getLogger(__name__)

#: Prometheus refuses a range query whose (end - start) / step exceeds this.
MAX_POINTS_PER_SERIES = 11_000

_RETRY_STATUS = frozenset({429, 500, 502, 503, 504})


class _CancelledError(Exception):
    """A chunk not sent because another chunk of the same query had failed."""


# Jitter spreads the retries of concurrent chunks; it needs no reproducibility.
_JITTER = random.Random()


def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _series_groups(
    result: list[dict[str, Any]], key: str
) -> tuple[list[dict[str, str]], list[np.ndarray]]:
    # A series answered only with native-histogram samples ("histogram" or
    # "histograms") has no float samples: the float path leaves it out, and
    # parse_histogram_vector / parse_histogram_matrix read it.
    native = "histograms" if key == "values" else "histogram"
    floats = [item for item in result if key in item or native not in item]
    if len(floats) < len(result):
        logger.info(
            "%d series hold only native-histogram samples; the float frame leaves them out",
            len(result) - len(floats),
        )
    labels = [dict(item.get("metric") or {}) for item in floats]
    if key == "values":
        pairs = [np.asarray(item.get("values") or [], dtype=np.float64) for item in floats]
    else:
        pairs = [np.asarray([item["value"]], dtype=np.float64) for item in floats]
    return labels, [p.reshape(-1, 2) for p in pairs]


def _histogram_frame(result: list[dict[str, Any]], key: str) -> pd.DataFrame:
    """Return one row per native-histogram sample: timestamp, labels, count, sum, histogram."""
    rows: list[dict[str, Any]] = []
    names: set[str] = set()
    for item in result:
        metric = dict(item.get("metric") or {})
        names |= set(metric)
        samples = item.get(key) or []
        if key == "histogram":
            samples = [samples] if samples else []
        for sample in samples:
            if not isinstance(sample, list | tuple) or len(sample) != 2:
                raise QueryError(
                    f"a native-histogram sample is {sample!r}, not [timestamp, histogram]",
                    query=key,
                )
            try:
                histogram = parse_native_histogram(sample[1])
            except ParameterError as exc:
                raise QueryError(
                    f"a native-histogram sample is malformed ({exc})", query=key
                ) from exc
            rows.append(
                {
                    "metric": metric,
                    "t": float(sample[0]),
                    "histogram": histogram,
                }
            )
    ordered = sorted(names)
    rows.sort(key=lambda r: ([r["metric"].get(n, "") for n in ordered], r["t"]))
    ms = np.round(np.array([r["t"] for r in rows], dtype=np.float64) * 1000).astype(np.int64)
    columns: dict[str, Any] = {
        "timestamp": pd.Series(pd.to_datetime(ms, unit="ms", utc=True)).astype(
            "datetime64[ns, UTC]"
        )
    }
    for name in ordered:
        columns[name] = pd.Series([r["metric"].get(name, "") for r in rows], dtype=object)
    columns["count"] = pd.Series([r["histogram"].count for r in rows], dtype=np.float64)
    columns["sum"] = pd.Series([r["histogram"].sum for r in rows], dtype=np.float64)
    columns["histogram"] = pd.Series([r["histogram"] for r in rows], dtype=object)
    return pd.DataFrame(columns)


def parse_histogram_vector(result: list[dict[str, Any]]) -> pd.DataFrame:
    """Return the native-histogram samples of a ``vector`` result, one row per series.

    Columns: ``timestamp``, one per label (sorted), ``count``, ``sum`` and
    ``histogram`` (a :class:`rknb.promql.NativeHistogram`). Series with float
    samples only are left out; :func:`parse_vector` reads those.
    """
    return _histogram_frame(result, "histogram")


def parse_histogram_matrix(result: list[dict[str, Any]]) -> pd.DataFrame:
    """Return the native-histogram samples of a ``matrix`` result, one row per sample.

    The columns are :func:`parse_histogram_vector`'s; rows are sorted by labels,
    then time. A series may hold float ``values`` and ``histograms`` both (a
    metric that changed type); only its histogram samples are here.
    """
    return _histogram_frame(result, "histograms")


def _frame(
    labels: list[dict[str, str]], pairs: list[np.ndarray], first: Sequence[str] = ()
) -> pd.DataFrame:
    """Return the long frame of series, shaped as :func:`rknb.tsdb.series_frame` shapes it.

    Columns: ``timestamp`` (UTC, to the millisecond), one per label (those in
    ``first`` in that order, as the demo source orders a query's ``by``
    labels, then the rest sorted; a label a series lacks is ``""``, as in
    PromQL), ``value``; rows sorted by labels, then time; NaN samples dropped.
    Labels are repeated per series with numpy rather than written row by row,
    which is what keeps a million samples under a second.
    """
    seen = {name for series_labels in labels for name in series_labels}
    names = [n for n in first if n in seen or not labels]
    names += sorted(seen - set(names))
    order = sorted(range(len(labels)), key=lambda i: [labels[i].get(n, "") for n in names])
    kept: list[tuple[dict[str, str], np.ndarray]] = []
    for i in order:
        series = pairs[i]
        series = series[~np.isnan(series[:, 1])]
        if len(series) == 0:
            continue
        if len(series) > 1 and not bool(np.all(np.diff(series[:, 0]) > 0)):
            series = series[np.argsort(series[:, 0], kind="stable")]
        kept.append((labels[i], series))
    if not kept:
        return empty_frame(tuple(names))

    lengths = np.array([len(series) for _, series in kept])
    stacked = np.concatenate([series for _, series in kept])
    ms = np.round(stacked[:, 0] * 1000).astype(np.int64)
    timestamps = pd.Series(pd.to_datetime(ms, unit="ms", utc=True)).astype("datetime64[ns, UTC]")
    columns: dict[str, pd.Series] = {"timestamp": timestamps}
    for name in names:
        # A categorical column stores one small code per sample instead of a string per
        # sample: a twentieth of the memory of object strings for a million samples.
        codes, categories = pd.factorize(
            np.array([series_labels.get(name, "") for series_labels, _ in kept], dtype=object),
            sort=True,
        )
        columns[name] = pd.Series(
            pd.Categorical.from_codes(np.repeat(codes, lengths), categories=pd.Index(categories))
        )
    columns["value"] = pd.Series(stacked[:, 1], dtype=np.float64)
    return pd.DataFrame(columns)


_MATRIX_HEAD = b'{"status":"success","data":{"resultType":"matrix","result":['
_METRIC = b'{"metric":'
_VALUES = b',"values":['
# Everything a values array of [unix_seconds, "number"] pairs may contain.
_SAMPLE_BYTES = b'0123456789.,[]"+-eEaNIinfy'


def parse_matrix_body(content: bytes) -> tuple[list[dict[str, str]], list[np.ndarray]] | None:
    """Return the labels and ``(n, 2)`` sample arrays of a matrix answer's raw body.

    The samples go from the bytes to float64 in one pass of pandas' C CSV
    reader over all series (each ``[t,"v"]`` pair becomes one CSV row), with
    no Python object per sample; only the small ``metric`` objects go
    through a JSON parser. Returns None for anything but the exact layout
    Prometheus writes (warnings, an error, unusual spacing), and the caller
    then parses the body as ordinary JSON.
    """
    if not content.startswith(_MATRIX_HEAD):
        return None
    labels: list[dict[str, str]] = []
    segments: list[bytes] = []
    pos = len(_MATRIX_HEAD)
    size = len(content)
    if content.startswith(b"]}}", pos):
        return ([], []) if pos + 3 == size else None
    while True:
        if not content.startswith(_METRIC, pos):
            return None
        split = content.find(_VALUES, pos)
        if split < 0:
            return None
        try:
            metric = _loads(content[pos + len(_METRIC) : split])
        except ValueError:
            return None
        start = split + len(_VALUES)
        end = content.find(b"]]", start)
        if not isinstance(metric, dict) or end < 0 or content[start : start + 1] != b"[":
            return None
        # Between the outer brackets: t,"v"],[t,"v"],...,[t,"v"
        segment = content[start + 1 : end]
        if segment.translate(None, _SAMPLE_BYTES):
            return None
        labels.append(metric)
        segments.append(segment)
        pos = end + 2
        if content.startswith(b"},", pos):
            pos += 2
            continue
        if content.startswith(b"}]}}", pos) and pos + 4 == size:
            break
        return None

    counts = np.array([segment.count(b"],[") + 1 for segment in segments])
    rows = b"\n".join(segments).replace(b"],[", b"\n")
    try:
        table = pd.read_csv(
            io.BytesIO(rows),
            header=None,
            names=["t", "v"],
            dtype=np.float64,
            keep_default_na=False,
            na_values=["NaN"],
            engine="c",
        ).to_numpy()
    except (ValueError, pd.errors.ParserError):
        return None
    if len(table) != int(counts.sum()):
        return None
    return labels, np.split(table, np.cumsum(counts)[:-1])


def parse_matrix_bytes(content: bytes) -> pd.DataFrame:
    """Return the long frame of a successful ``query_range`` answer's raw body."""
    fast = parse_matrix_body(content)
    if fast is not None:
        return _frame(*fast)
    data = _loads(content).get("data") or {}
    return parse_matrix(_result(data, "matrix", ""))


def parse_matrix(result: list[dict[str, Any]]) -> pd.DataFrame:
    """Return the long frame of a ``matrix`` result (``data.result`` of a range query)."""
    return _frame(*_series_groups(result, "values"))


def parse_vector(result: list[dict[str, Any]]) -> pd.DataFrame:
    """Return the long frame of a ``vector`` result (``data.result`` of an instant query)."""
    return _frame(*_series_groups(result, "value"))


class PrometheusSource:
    """Answers catalog queries from a live Prometheus HTTP API.

    Parameters
    ----------
    url
        The server's base URL (``https://prometheus.example:9090`` or with a
        path prefix); credentials in the URL are refused.
    headers
        Extra HTTP headers sent with every call (a tenant id, say); never logged.
    bearer_token_file
        A file holding a bearer token (a mounted service-account token, say).
    bearer_token_env
        The name of an environment variable holding a bearer token.
    basic_auth_user
        The user of HTTP basic auth; its password comes from one of the next two.
    basic_auth_password_file
        A file holding the basic-auth password.
    basic_auth_password_env
        The name of an environment variable holding the basic-auth password.
    ca_file
        A PEM bundle to verify the server's certificate with.
    cert_file
        A PEM client certificate (mutual TLS), with its key in it or in ``key_file``.
    key_file
        The client certificate's PEM key.
    insecure
        Skip TLS verification (for test servers only).
    timeout_s
        Seconds to wait for one HTTP call.
    max_retries
        Retries of a call after a timeout, connection error, 5xx or 429.
    catalog
        The query catalog; :func:`rknb.catalog.load_catalog` when omitted.
    backoff_s
        The first retry's delay in seconds; it doubles at each retry, times a
        random factor between 0.5 and 1.
    max_series
        The most series one answer may hold; more fails with advice to aggregate.
    concurrency
        How many chunks of a long range query are fetched at once.
    report_time
        The instant that relative times (``now-7d``) refer to; the wall clock when omitted.
    """

    def __init__(
        self,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        bearer_token_file: str | os.PathLike[str] | None = None,
        bearer_token_env: str | None = None,
        basic_auth_user: str | None = None,
        basic_auth_password_file: str | os.PathLike[str] | None = None,
        basic_auth_password_env: str | None = None,
        ca_file: str | os.PathLike[str] | None = None,
        cert_file: str | os.PathLike[str] | None = None,
        key_file: str | os.PathLike[str] | None = None,
        insecure: bool = False,
        timeout_s: float = 60.0,
        max_retries: int = 3,
        catalog: Mapping[str, Query] | None = None,
        backoff_s: float = 0.5,
        max_series: int = 10_000,
        concurrency: int = 4,
        report_time: datetime | None = None,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ParameterError("prometheus", f"expected an http(s):// URL, got {redact(url)!r}")
        if parts.username is not None or parts.password is not None:
            raise ParameterError(
                "prometheus",
                "the URL carries user:password@, which would be copied into every report; "
                "remove it and pass bearer_token_file= or bearer_token_env= instead",
            )
        if max_retries < 0:
            raise ParameterError("max_retries", f"must be zero or more, got {max_retries}")
        if concurrency < 1:
            raise ParameterError("concurrency", f"must be one or more, got {concurrency}")
        if timeout_s <= 0:
            raise ParameterError("timeout_s", f"must be positive, got {timeout_s}")

        self.url = urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))
        self.description = self.url
        self.reference_time: datetime | None = None
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.max_series = max_series
        self.concurrency = concurrency
        self.report_time = report_time
        self.catalog = dict(catalog) if catalog is not None else load_catalog()

        self._headers: dict[str, str] = dict(headers or {})
        token = self._read_token(bearer_token_file, bearer_token_env)
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        auth: tuple[str, str] | None = None
        if basic_auth_user is not None:
            if token:
                raise ParameterError(
                    "basic_auth_user", "give either a bearer token or basic auth, not both"
                )
            password = self._read_token(
                basic_auth_password_file,
                basic_auth_password_env,
                names=("basic_auth_password_file", "basic_auth_password_env"),
            )
            auth = (basic_auth_user, password or "")
        if _is_loopback(parts.hostname):
            # gzip costs most of the time of a large answer on loopback.
            self._headers.setdefault("Accept-Encoding", "identity")

        from prometheus_api_client import PrometheusConnect
        from urllib3.util.retry import Retry

        self._client = PrometheusConnect(
            url=self.url,
            headers=self._headers,
            disable_ssl=insecure,
            retry=Retry(total=0),
            auth=auth,
        )
        self._session = self._client._session
        # The client passes auth per call; rknb's own calls take it from the Session.
        self._session.auth = auth
        if ca_file is not None and not insecure:
            self._session.verify = os.fspath(ca_file)
        if cert_file is not None:
            cert = os.fspath(cert_file)
            self._session.cert = (cert, os.fspath(key_file)) if key_file is not None else cert

    @staticmethod
    def _read_token(
        token_file: str | os.PathLike[str] | None,
        token_env: str | None,
        *,
        names: tuple[str, str] = ("bearer_token_file", "bearer_token_env"),
    ) -> str | None:
        if token_file is not None:
            try:
                return Path(token_file).read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ParameterError(
                    names[0], f"cannot read {os.fspath(token_file)!r} ({exc.strerror})"
                ) from exc
        if token_env is not None:
            value = os.environ.get(token_env)
            if not value:
                raise ParameterError(
                    names[1], f"environment variable {token_env!r} is not set or empty"
                )
            return value.strip()
        return None

    def __repr__(self) -> str:
        return f"PrometheusSource({self.description!r})"

    def close(self) -> None:
        """Release the HTTP connection pool."""
        self._session.close()

    # -- the MetricsSource protocol ------------------------------------------------------

    def render(self, query: str, selector: Selector, *, window_s: float | None = None) -> str:
        """Return the PromQL this source sends for a catalog query and selector."""
        return render_promql(get_query(query, self.catalog), selector, window_s=window_s)

    def query_range(
        self, query: str, selector: Selector, window: Window, *, window_s: float | None = None
    ) -> pd.DataFrame:
        """Return the query's series over the window, one row per sample.

        ``window_s`` replaces the catalog entry's range (``increase(x[1h])`` at
        every step), as burn-rate alert windows need.
        """
        promql = self.render(query, selector, window_s=window_s)
        by = get_query(query, self.catalog).by or ()
        start_s, end_s = to_unix(window.start), to_unix(window.end)
        step_s = window.step_s
        # A chunk of 11,000 steps holds 11,001 points, the most the server accepts.
        chunk_s = MAX_POINTS_PER_SERIES * step_s
        chunks = max(1, math.ceil((end_s - start_s) / chunk_s))

        failed = threading.Event()

        def fetch(index: int) -> tuple[list[dict[str, str]], list[np.ndarray]]:
            if failed.is_set():
                raise _CancelledError
            try:
                return fetch_chunk(index)
            except BaseException:
                failed.set()  # the chunks not yet sent are not sent at all
                raise

        def fetch_chunk(index: int) -> tuple[list[dict[str, str]], list[np.ndarray]]:
            chunk_start = start_s + index * chunk_s
            chunk_end = min(start_s + (index + 1) * chunk_s, end_s)
            form = {
                "query": promql,
                "start": _num(chunk_start),
                "end": _num(chunk_end),
                "step": _num(step_s),
            }
            content = self._post(
                "/api/v1/query_range", form, promql, f"{index + 1}/{chunks}", raw=True
            )
            fast = parse_matrix_body(content)
            if fast is not None:
                if len(fast[0]) > self.max_series:
                    raise self._too_many(len(fast[0]), promql)
                chunk_labels, chunk_pairs = fast
            else:
                data = self._decode(content, promql, 200)
                result = self._checked(_result(data, "matrix", promql), promql)
                chunk_labels, chunk_pairs = _groups(result, "values", promql)
            if index > 0:
                # Adjacent chunks share their boundary point; the earlier chunk keeps it.
                chunk_pairs = [p[p[:, 0] > chunk_start + 1e-9] for p in chunk_pairs]
            return chunk_labels, chunk_pairs

        if chunks == 1:
            answers = [fetch(0)]
        else:
            with ThreadPoolExecutor(max_workers=min(self.concurrency, chunks)) as pool:
                futures = [pool.submit(fetch, index) for index in range(chunks)]
            # The first chunk that failed on its own decides the error: never a partial frame.
            errors = [f.exception() for f in futures]
            real = [e for e in errors if e is not None and not isinstance(e, _CancelledError)]
            if real:
                raise real[0]
            answers = [f.result() for f in futures]

        labels_of: dict[tuple[tuple[str, str], ...], int] = {}
        labels: list[dict[str, str]] = []
        pieces: list[list[np.ndarray]] = []
        for chunk_labels, chunk_pairs in answers:
            for series_labels, pairs in zip(chunk_labels, chunk_pairs, strict=True):
                key = tuple(sorted(series_labels.items()))
                if key not in labels_of:
                    labels_of[key] = len(labels)
                    labels.append(series_labels)
                    pieces.append([])
                pieces[labels_of[key]].append(pairs)
        if len(labels) > self.max_series:
            raise self._too_many(len(labels), promql)

        pairs_per_series = [np.concatenate(p) if p else np.empty((0, 2)) for p in pieces]
        frame = _frame(labels, pairs_per_series, by)
        if frame.empty:
            logger.warning(
                "%s returned no samples for %s from %s to %s; check the selector, or the "
                "catalog override if this site names the metric differently",
                query,
                selector.describe(),
                format_time(window.start),
                format_time(window.end),
            )
        return frame

    def query_instant(
        self,
        query: str,
        selector: Selector,
        time: datetime | str,
        *,
        window_s: float | None = None,
    ) -> pd.DataFrame:
        """Return the query's value per series at one instant (aware, ISO 8601 or ``now-1h``)."""
        moment = self.resolve_time(time)
        promql = self.render(query, selector, window_s=window_s)
        by = get_query(query, self.catalog).by or ()
        form = {"query": promql, "time": _num(to_unix(moment))}
        data = self._post("/api/v1/query", form, promql, format_time(moment))
        result = self._checked(_result(data, "vector", promql), promql)
        series_labels, series_pairs = _groups(result, "value", promql)
        frame = _frame(series_labels, series_pairs, by)
        if frame.empty:
            logger.warning(
                "%s returned no series for %s at %s; check the selector, or the catalog "
                "override if this site names the metric differently",
                query,
                selector.describe(),
                format_time(moment),
            )
        return frame

    def instant_values(self, promql: str) -> list[float]:
        """Return the values of a PromQL expression at the server's now, one per series.

        A scalar answer is one value; a value that is not a number is NaN. For
        probes and checks that want numbers, not a catalog frame.
        """
        data = self._post("/api/v1/query", {"query": promql}, promql, "now")
        pairs: list[Any]
        if isinstance(data, dict) and data.get("resultType") == "scalar":
            pairs = [data.get("result")]
        else:
            pairs = [
                item.get("value") for item in self._checked(_result(data, "vector", promql), promql)
            ]
        values: list[float] = []
        for pair in pairs:
            try:
                values.append(float(pair[1]))
            except (TypeError, ValueError, IndexError):
                values.append(math.nan)
        return values

    def query_native_histograms(
        self, promql: str, time: datetime | str, *, window: Window | None = None
    ) -> pd.DataFrame:
        """Return the native-histogram samples of a PromQL expression at an instant or over a range.

        Catalog queries select classic ``_bucket`` series; a native histogram is
        selected by its bare name (``rate(mcp_request_duration_seconds[5m])``), so
        this takes PromQL text. The frame is :func:`parse_histogram_vector`'s
        (instant) or :func:`parse_histogram_matrix`'s (with ``window``, one
        query_range call: keep it under 11,000 steps).

        Parameters
        ----------
        promql
            The expression; it must return native histograms.
        time
            The instant (ignored with ``window``): aware, ISO 8601 or ``now-1h``.
        window
            A range to evaluate over at its step instead of one instant.
        """
        if window is None:
            moment = self.resolve_time(time)
            form = {"query": promql, "time": _num(to_unix(moment))}
            data = self._post("/api/v1/query", form, promql, format_time(moment))
            result = self._checked(_result(data, "vector", promql), promql)
            return parse_histogram_vector(result)
        start_s, end_s = to_unix(window.start), to_unix(window.end)
        if (end_s - start_s) / window.step_s > MAX_POINTS_PER_SERIES:
            raise ParameterError(
                "window",
                f"{(end_s - start_s) / window.step_s:.0f} steps exceed the server's "
                f"{MAX_POINTS_PER_SERIES}; use a coarser step or a shorter window",
            )
        form = {
            "query": promql,
            "start": _num(start_s),
            "end": _num(end_s),
            "step": _num(window.step_s),
        }
        data = self._post("/api/v1/query_range", form, promql, "histograms")
        result = self._checked(_result(data, "matrix", promql), promql)
        return parse_histogram_matrix(result)

    def resolve_time(self, value: datetime | str | float) -> datetime:
        """Return a time as aware UTC; relative forms count from ``report_time`` (else now)."""
        now = self.report_time or datetime.now(UTC)
        return parse_time(value, now=now, name="time")

    def _checked(self, result: list[dict[str, Any]], promql: str) -> list[dict[str, Any]]:
        if len(result) > self.max_series:
            raise self._too_many(len(result), promql)
        return result

    def _too_many(self, count: int, promql: str) -> QueryError:
        return QueryError(
            f"the answer holds {count} series, over the limit of {self.max_series}; aggregate "
            "it (sum by (namespace, pod) or a narrower selector) or raise max_series",
            query=promql,
        )

    # -- HTTP ------------------------------------------------------------------------------

    def _post(
        self, endpoint: str, form: dict[str, str], promql: str, note: str, *, raw: bool = False
    ) -> Any:
        """Return the answer's ``data`` (or, with ``raw``, the 200 answer's body bytes)."""
        import requests

        url = self.url + endpoint
        attempt = 0
        while True:
            began = time.monotonic()
            failure: str
            status: int | None = None
            try:
                response = self._session.post(
                    url, data=form, headers=self._headers, timeout=self.timeout_s
                )
            except (
                requests.Timeout,
                requests.ConnectionError,
                # A body cut short of its Content-Length, or gzip cut mid-stream.
                requests.exceptions.ChunkedEncodingError,
                requests.exceptions.ContentDecodingError,
            ) as exc:
                failure = f"{type(exc).__name__}"
                retry = True
                cause: BaseException | None = exc
            except requests.RequestException as exc:
                raise QueryError(
                    f"the request to {self.description} could not be sent "
                    f"({type(exc).__name__}); check the URL, TLS and proxy settings",
                    query=promql,
                ) from exc
            else:
                elapsed = time.monotonic() - began
                status = response.status_code
                logger.info(
                    "POST %s (%s) -> %d in %.2f s: %s",
                    endpoint,
                    note,
                    status,
                    elapsed,
                    redact(promql),
                )
                if status == 200:
                    if raw:
                        return response.content
                    return self._decode(response.content, promql, status)
                failure = self._error_text(response.content, status)
                retry = status in _RETRY_STATUS
                cause = None

            if not retry or attempt >= self.max_retries:
                tried = f" after {attempt + 1} attempts" if attempt else ""
                raise QueryError(
                    f"Prometheus at {self.description} failed the query{tried} ({failure}); "
                    + _advice(status),
                    query=promql,
                    status=status,
                ) from cause
            delay = self.backoff_s * (2**attempt) * _JITTER.uniform(0.5, 1.0)
            logger.warning(
                "POST %s (%s) failed (%s); retry %d of %d in %.1f s",
                endpoint,
                note,
                failure,
                attempt + 1,
                self.max_retries,
                delay,
            )
            time.sleep(delay)
            attempt += 1

    def _decode(self, content: bytes, promql: str, status: int) -> Any:
        try:
            body = _loads(content)
        except ValueError as exc:
            raise QueryError(
                f"{self.description} answered with a body that is not JSON; check that the URL "
                "points at a Prometheus HTTP API",
                query=promql,
                status=status,
            ) from exc
        if not isinstance(body, dict) or body.get("status") != "success":
            text = self._error_text(content, status)
            raise QueryError(
                f"Prometheus at {self.description} failed the query ({text})",
                query=promql,
                status=status,
            )
        for warning in body.get("warnings") or []:
            logger.warning("Prometheus warned about %s: %s", redact(promql), redact(str(warning)))
        return body.get("data") or {}

    @staticmethod
    def _error_text(content: bytes, status: int) -> str:
        try:
            body = json.loads(content)
        except ValueError:
            snippet = content[:200].decode("utf-8", "replace").strip()
            return redact(f"HTTP {status}: {snippet}" if snippet else f"HTTP {status}")
        if isinstance(body, dict) and body.get("error"):
            return redact(f"HTTP {status} {body.get('errorType', 'error')}: {body['error']}")
        return f"HTTP {status}"


def live_prometheus(
    spec: str,
    *,
    cluster: str | None = None,
    report_time: datetime | None = None,
    **settings: Any,
) -> PrometheusSource | None:
    """Return the live server a ``prometheus`` value names, or None when it names none.

    A live server is an ``http(s)://`` URL, an endpoint named in the configuration, or
    ``config`` for the endpoint the configuration maps ``cluster`` to; the endpoint's
    credentials, headers, TLS settings and catalog come with it. ``settings`` (such as
    ``timeout_s`` or ``max_retries``) override the endpoint's.
    """
    from rknb.config import load_config

    spec = str(spec).strip()
    config = load_config()
    if not (
        spec.startswith(("http://", "https://")) or spec == "config" or spec in config.endpoints
    ):
        return None
    found = config.endpoint(spec, cluster=cluster)
    url = found.pop("url")
    catalog = load_catalog(config.catalog) if config.catalog else None
    return PrometheusSource(url, catalog=catalog, report_time=report_time, **{**found, **settings})


def _loads(content: bytes) -> Any:
    """Return parsed JSON, with orjson when it is installed (three times faster)."""
    try:
        import orjson
    except ImportError:
        return json.loads(content)
    try:
        return orjson.loads(content)
    except orjson.JSONDecodeError as exc:
        raise ValueError(str(exc)) from exc


def _num(value: float) -> str:
    """Return a number as Prometheus reads it (``1704067200`` or ``1704067200.5``)."""
    return repr(float(value)).removesuffix(".0")


def _result(data: Any, expected: str, promql: str) -> list[dict[str, Any]]:
    kind = data.get("resultType") if isinstance(data, dict) else None
    if kind != expected:
        raise QueryError(
            f"expected a {expected} answer, got {kind!r}; catalog queries must select series",
            query=promql,
        )
    result = data.get("result") or []
    if not isinstance(result, list) or not all(isinstance(item, dict) for item in result):
        raise QueryError(f"the {expected} answer's result is not a list of series", query=promql)
    return result


def _groups(result: list[dict[str, Any]], key: str, promql: str) -> Any:
    try:
        return _series_groups(result, key)
    except (TypeError, ValueError, KeyError) as exc:
        raise QueryError(
            f"the answer holds a malformed sample ({exc}); check the server is a Prometheus API",
            query=promql,
        ) from exc


def _advice(status: int | None) -> str:
    if status is None:
        return "check that the server is up and the URL is right"
    if status in (401, 403):
        return "check the bearer token (bearer_token_file= or bearer_token_env=)"
    if status == 400 or status == 422:
        return "fix the query or the catalog override named in RKNB_CATALOG"
    if status in _RETRY_STATUS:
        return "the server is overloaded or timed out; shorten the window or raise its timeout"
    return "check the server's logs"
