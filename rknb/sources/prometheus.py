"""A metrics source over a live Prometheus HTTP API (Prometheus, Thanos, Mimir, VictoriaMetrics).

``prometheus-api-client`` only configures the connection: its ``requests``
Session carries TLS settings, with the library's own urllib3 retries turned
off so that an error keeps the server's text. rknb sends the calls itself,
as POST form bodies (a long selector cannot overflow a URL), with aware UTC
times as Unix seconds, and parses the JSON into the long frame of
:mod:`rknb.sources.base` with numpy, which costs a fifth of the client's own
frame conversion. Range queries longer than the server's 11,000 points per
series are split into chunks; timeouts, connection errors, 5xx and 429 are
retried with exponential backoff, a 4xx ``bad_data`` is not.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import math
import os
import time
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import pandas as pd

from rknb.catalog import Query, Selector, get_query, load_catalog, render_promql
from rknb.errors import ParameterError, QueryError
from rknb.sources.base import Window, empty_frame
from rknb.sources.credentials import redact
from rknb.times import format_time, to_unix

__all__ = ["MAX_POINTS_PER_SERIES", "PrometheusSource", "parse_matrix", "parse_vector"]

logger = logging.getLogger(__name__)

#: Prometheus refuses a range query whose (end - start) / step exceeds this.
MAX_POINTS_PER_SERIES = 11_000

_RETRY_STATUS = frozenset({429, 500, 502, 503, 504})


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
    labels = [dict(item.get("metric") or {}) for item in result]
    if key == "values":
        pairs = [np.asarray(item.get("values") or [], dtype=np.float64) for item in result]
    else:
        pairs = [np.asarray([item["value"]], dtype=np.float64) for item in result]
    return labels, [p.reshape(-1, 2) for p in pairs]


def _frame(labels: list[dict[str, str]], pairs: list[np.ndarray]) -> pd.DataFrame:
    """Return the long frame of series, shaped as :func:`rknb.tsdb.series_frame` shapes it.

    Columns: ``timestamp`` (UTC, to the millisecond), one per label (sorted;
    a label a series lacks is ``""``, as in PromQL), ``value``; rows sorted by
    labels, then time; NaN samples dropped. Labels are repeated per series
    with numpy rather than written row by row, which is what keeps a million
    samples under a second.
    """
    names = sorted({name for series_labels in labels for name in series_labels})
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
        per_series = np.array(
            [series_labels.get(name, "") for series_labels, _ in kept], dtype=object
        )
        columns[name] = pd.Series(np.repeat(per_series, lengths), dtype=object)
    columns["value"] = pd.Series(stacked[:, 1], dtype=np.float64)
    return pd.DataFrame(columns)


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
    ca_file
        A PEM bundle to verify the server's certificate with.
    insecure
        Skip TLS verification (for test servers only).
    timeout_s
        Seconds to wait for one HTTP call.
    max_retries
        Retries of a call after a timeout, connection error, 5xx or 429.
    catalog
        The query catalog; :func:`rknb.catalog.load_catalog` when omitted.
    backoff_s
        The first retry's delay in seconds; it doubles at each retry.
    """

    def __init__(
        self,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        bearer_token_file: str | os.PathLike[str] | None = None,
        bearer_token_env: str | None = None,
        ca_file: str | os.PathLike[str] | None = None,
        insecure: bool = False,
        timeout_s: float = 60.0,
        max_retries: int = 3,
        catalog: Mapping[str, Query] | None = None,
        backoff_s: float = 0.5,
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

        self.url = urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))
        self.description = self.url
        self.reference_time: datetime | None = None
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.catalog = dict(catalog) if catalog is not None else load_catalog()

        self._headers: dict[str, str] = dict(headers or {})
        token = self._read_token(bearer_token_file, bearer_token_env)
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        if _is_loopback(parts.hostname):
            # gzip costs most of the time of a large answer on loopback.
            self._headers.setdefault("Accept-Encoding", "identity")

        from prometheus_api_client import PrometheusConnect
        from urllib3.util.retry import Retry

        self._client = PrometheusConnect(
            url=self.url, headers=self._headers, disable_ssl=insecure, retry=Retry(total=0)
        )
        self._session = self._client._session
        if ca_file is not None and not insecure:
            self._session.verify = os.fspath(ca_file)

    @staticmethod
    def _read_token(token_file: str | os.PathLike[str] | None, token_env: str | None) -> str | None:
        if token_file is not None:
            try:
                return Path(token_file).read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ParameterError(
                    "bearer_token_file", f"cannot read {os.fspath(token_file)!r} ({exc.strerror})"
                ) from exc
        if token_env is not None:
            value = os.environ.get(token_env)
            if not value:
                raise ParameterError(
                    "bearer_token_env", f"environment variable {token_env!r} is not set or empty"
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

    def query_range(self, query: str, selector: Selector, window: Window) -> pd.DataFrame:
        """Return the query's series over the window, one row per sample."""
        promql = self.render(query, selector)
        start_s, end_s = to_unix(window.start), to_unix(window.end)
        step_s = window.step_s
        chunk_s = MAX_POINTS_PER_SERIES * step_s
        chunks = max(1, math.ceil((end_s - start_s) / chunk_s))

        labels_of: dict[tuple[tuple[str, str], ...], int] = {}
        labels: list[dict[str, str]] = []
        pieces: list[list[np.ndarray]] = []
        previous_end: float | None = None
        for index in range(chunks):
            chunk_start = start_s + index * chunk_s
            chunk_end = min(start_s + (index + 1) * chunk_s, end_s)
            form = {
                "query": promql,
                "start": _num(chunk_start),
                "end": _num(chunk_end),
                "step": _num(step_s),
            }
            data = self._post("/api/v1/query_range", form, promql, f"{index + 1}/{chunks}")
            result = _result(data, "matrix", promql)
            result_labels, result_pairs = _groups(result, "values", promql)
            for series_labels, pairs in zip(result_labels, result_pairs, strict=True):
                if previous_end is not None:
                    # Adjacent chunks share their boundary point; keep the first chunk's.
                    pairs = pairs[pairs[:, 0] > previous_end + 1e-9]
                key = tuple(sorted(series_labels.items()))
                if key not in labels_of:
                    labels_of[key] = len(labels)
                    labels.append(series_labels)
                    pieces.append([])
                pieces[labels_of[key]].append(pairs)
            previous_end = chunk_end

        pairs_per_series = [np.concatenate(p) if p else np.empty((0, 2)) for p in pieces]
        return _frame(labels, pairs_per_series)

    def query_instant(
        self, query: str, selector: Selector, time: datetime, *, window_s: float | None = None
    ) -> pd.DataFrame:
        """Return the query's value per series at one instant."""
        promql = self.render(query, selector, window_s=window_s)
        form = {"query": promql, "time": _num(to_unix(time))}
        data = self._post("/api/v1/query", form, promql, format_time(time))
        return _frame(*_groups(_result(data, "vector", promql), "value", promql))

    # -- HTTP ------------------------------------------------------------------------------

    def _post(self, endpoint: str, form: dict[str, str], promql: str, note: str) -> Any:
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
            except (requests.Timeout, requests.ConnectionError) as exc:
                failure = f"{type(exc).__name__}"
                retry = True
                cause: BaseException | None = exc
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
            delay = self.backoff_s * (2**attempt)
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
            body = json.loads(content)
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
