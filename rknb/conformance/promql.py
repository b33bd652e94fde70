"""The ``promql`` conformance runner: Prometheus's test vectors through rknb's functions.

A vector file (see ``/work/shared/conformance/README.md``) holds datasets of
raw series and cases, each a query evaluated at one instant with the
answer Prometheus 2.42 gave. Under ``semantics=2`` a case is computed from
its ``function_input`` (what the function itself received on the live
server). Under ``semantics=3`` it is computed from the dataset with 3.x's
rules and checked against the ``prom3`` answer where the file gives one
(the ``equivalent_query`` where 3.x needs a different query), else against
the 2.42 answer.

The queries use one fixed subset: ``histogram_quantile`` over a selector,
over ``rate(...)`` of one, or over ``sum``/``avg by (le, ...)`` of that, and
``rate``, ``increase``, ``irate``, ``resets`` over a range selector. The
small parser here reads that subset into rknb's own pieces (catalog
matchers, :mod:`rknb.tsdb` windows and aggregation, :mod:`rknb.promql`); it
is not a PromQL engine and refuses anything else.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd

from rknb import promql
from rknb.catalog import Matcher, MatchOp
from rknb.conformance import CaseResult, Status, Summary
from rknb.errors import ParameterError, QueryError
from rknb.promql import Semantics
from rknb.times import parse_duration
from rknb.tsdb import (
    Aggregation,
    RangeFunction,
    SeriesStore,
    aggregate,
    select_series,
    series_values,
)

__all__ = [
    "Element",
    "compare",
    "evaluate_case",
    "evaluate_query",
    "load_vectors",
    "parse_value",
    "run",
    "store_from_dataset",
]

#: One element of an instant vector: its labels and value.
Element = tuple[dict[str, str], float]

_DEFAULT_TOLERANCE = 1e-6
_MIN_NORMAL = 2.2250738585072014e-308
_RANGE_FUNCTIONS = ("rate", "increase", "irate", "resets", "max_over_time")
_AGGREGATIONS = ("sum", "avg", "max", "min", "count")


def parse_value(text: str | float) -> float:
    """Return a sample value written as the HTTP API writes it (``"NaN"``, ``"+Inf"``)."""
    if isinstance(text, int | float):
        return float(text)
    value = promql.parse_bucket_bound(text.strip())
    if value is None:
        raise ParameterError("value", f"{text!r} is not a Prometheus sample value")
    return value


def format_value(value: float) -> str:
    """Return a value spelled as Prometheus's HTTP API does."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


# --------------------------------------------------------------------------
# The query subset


@dataclass(frozen=True)
class _Selector:
    matchers: tuple[Matcher, ...]
    range_s: float | None = None
    offset_s: float = 0.0


@dataclass(frozen=True)
class _Call:
    function: str
    args: tuple[Any, ...]


@dataclass(frozen=True)
class _Aggregate:
    op: str
    by: tuple[str, ...] | None
    expr: Any


_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
      | (?P<duration>(?:[0-9]+(?:ms|s|m|h|d|w|y))+)
      | (?P<number>(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)
      | (?P<op>=~|!~|!=|=|[(){}\[\],/*+-])
      | (?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)
    )""",
    re.VERBOSE,
)


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    text = text.rstrip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise QueryError(f"cannot read {text[pos:]!r} in query {text!r}", query=text)
        kind = cast(str, match.lastgroup)
        out.append((kind, match.group(kind)))
        pos = match.end()
    return out


class _Parser:
    """Reads the conformance subset of PromQL into small structures."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokens(text)
        self.pos = 0

    def fail(self, what: str) -> QueryError:
        return QueryError(
            f"query {self.text!r} is outside the conformance subset: {what}", query=self.text
        )

    def peek(self, offset: int = 0) -> tuple[str, str]:
        index = self.pos + offset
        return self.tokens[index] if index < len(self.tokens) else ("end", "")

    def take(self, value: str | None = None, kind: str | None = None) -> str:
        token_kind, token = self.peek()
        if (value is not None and token != value) or (kind is not None and token_kind != kind):
            raise self.fail(f"expected {value or kind!r} at {token!r}")
        self.pos += 1
        return token

    def parse(self) -> Any:
        expr = self.expr()
        if self.peek()[0] != "end":
            raise self.fail(f"unexpected {self.peek()[1]!r}")
        return expr

    def expr(self) -> Any:
        kind, token = self.peek()
        if kind == "name" and token in _AGGREGATIONS and self.peek(1)[1] in ("(", "by"):
            return self.aggregation()
        if kind == "name" and token == "histogram_quantile":
            self.take()
            self.take("(")
            q = self.scalar()
            self.take(",")
            inner = self.expr()
            self.take(")")
            return _Call("histogram_quantile", (q, inner))
        if kind == "name" and token in _RANGE_FUNCTIONS and self.peek(1)[1] == "(":
            self.take()
            self.take("(")
            selector = self.selector()
            self.take(")")
            if selector.range_s is None:
                raise self.fail(f"{token}() needs a range selector")
            return _Call(token, (selector,))
        return self.selector()

    def aggregation(self) -> _Aggregate:
        op = self.take(kind="name")
        by = self.grouping()
        self.take("(")
        inner = self.expr()
        self.take(")")
        if by is None:
            by = self.grouping()
        return _Aggregate(op, by if by is not None else (), inner)

    def grouping(self) -> tuple[str, ...] | None:
        if self.peek()[1] == "without":
            raise self.fail("'without' is not supported")
        if self.peek()[1] != "by":
            return None
        self.take("by")
        self.take("(")
        labels: list[str] = []
        while self.peek()[1] != ")":
            labels.append(self.take(kind="name"))
            if self.peek()[1] == ",":
                self.take(",")
        self.take(")")
        return tuple(labels)

    def scalar(self) -> float:
        value = self.number()
        while self.peek()[1] in ("/", "*"):
            op = self.take()
            other = self.number()
            value = value / other if op == "/" else value * other
        return value

    def number(self) -> float:
        kind, token = self.peek()
        if token in ("-", "+"):
            self.take()
            return -self.number() if token == "-" else self.number()
        if kind == "number":
            self.take()
            return float(token)
        if kind == "name" and token.lower() in ("nan", "inf"):
            self.take()
            return math.nan if token.lower() == "nan" else math.inf
        raise self.fail(f"expected a number at {token!r}")

    def selector(self) -> _Selector:
        matchers: list[Matcher] = []
        if self.peek()[0] == "name":
            matchers.append(Matcher("__name__", "=", self.take()))
        if self.peek()[1] == "{":
            self.take("{")
            while self.peek()[1] != "}":
                label = self.take(kind="name")
                op = self.take(kind="op")
                if op not in ("=", "!=", "=~", "!~"):
                    raise self.fail(f"bad matcher operator {op!r}")
                value = _unquote(self.take(kind="string"))
                matchers.append(Matcher(label, cast(MatchOp, op), value))
                if self.peek()[1] == ",":
                    self.take(",")
            self.take("}")
        if not matchers:
            raise self.fail(f"expected a series selector at {self.peek()[1]!r}")
        range_s, offset_s = None, 0.0
        if self.peek()[1] == "[":
            self.take("[")
            range_s = parse_duration(self.take(kind="duration"), name="range")
            self.take("]")
        if self.peek()[1] == "offset":
            self.take("offset")
            offset_s = parse_duration(self.take(kind="duration"), name="offset")
        return _Selector(tuple(matchers), range_s, offset_s)


def _unquote(token: str) -> str:
    body = token[1:-1]
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), body)


# --------------------------------------------------------------------------
# Evaluation from a dataset


def store_from_dataset(dataset: Mapping[str, Any]) -> SeriesStore:
    """Return a store holding a vector file's dataset (``series[]`` of labels and samples)."""
    store = SeriesStore()
    for series in dataset.get("series", []):
        labels = dict(series["labels"])
        name = labels.pop("__name__", "")
        samples = series["samples"]
        t_s = np.array([float(t) for t, _ in samples], dtype=np.float64)
        values = np.array([parse_value(v) for _, v in samples], dtype=np.float64)
        store.add(name, labels, t_s.astype(np.int64), values)
    return store


def _vector(store: SeriesStore, expr: Any, time_s: float, semantics: Semantics) -> list[Element]:
    at = np.array([time_s])
    if isinstance(expr, _Selector):
        if expr.range_s is not None:
            raise QueryError("a range selector is not an instant vector", query=str(expr))
        chosen = select_series(store, expr.matchers)
        out = []
        for s in chosen:
            value = series_values(
                s,
                "last",
                at,
                window_s=promql.LOOKBACK_S,
                offset_s=expr.offset_s,
                semantics=semantics,
            )[0]
            if not math.isnan(value):
                out.append((s.label_dict, float(value)))
        return out

    if isinstance(expr, _Aggregate):
        inner = _vector(store, expr.expr, time_s, semantics)
        values = np.array([[v] for _, v in inner], dtype=np.float64).reshape(len(inner), 1)
        groups = aggregate(
            [labels for labels, _ in inner], values, by=expr.by, op=cast(Aggregation, expr.op)
        )
        return [(labels, float(v[0])) for labels, v in groups if not math.isnan(v[0])]

    if isinstance(expr, _Call) and expr.function in _RANGE_FUNCTIONS:
        selector = cast(_Selector, expr.args[0])
        out = []
        for s in select_series(store, selector.matchers):
            value = series_values(
                s,
                cast(RangeFunction, expr.function),
                at,
                window_s=cast(float, selector.range_s),
                offset_s=selector.offset_s,
                semantics=semantics,
            )[0]
            if not math.isnan(value):
                labels = {k: v for k, v in s.label_dict.items() if k != "__name__"}
                out.append((labels, float(value)))
        return out

    if isinstance(expr, _Call) and expr.function == "histogram_quantile":
        q, inner_expr = expr.args
        inner = _vector(store, inner_expr, time_s, semantics)
        return _quantiles(float(q), inner, time_s, semantics)

    raise QueryError(f"cannot evaluate {expr!r}", query=str(expr))


def _quantiles(
    q: float, inner: Sequence[Element], time_s: float, semantics: Semantics
) -> list[Element]:
    """Return histogram_quantile over an instant vector of bucket elements."""
    names = sorted({k for labels, _ in inner for k in labels})
    rows: dict[str, list[Any]] = {name: [] for name in names}
    rows["timestamp"] = [time_s] * len(inner)
    rows["value"] = [v for _, v in inner]
    for labels, _ in inner:
        for name in names:
            rows[name].append(labels.get(name, ""))
    if "le" not in rows:
        rows["le"] = [""] * len(inner)
    frame = pd.DataFrame(rows)
    result = promql.histogram_quantiles(frame, q, semantics=semantics)
    label_names = [c for c in result.columns if c not in ("timestamp", "value")]
    out = []
    for record in result.to_dict("records"):
        labels = {k: str(record[k]) for k in label_names if str(record[k]) != ""}
        out.append((labels, float(record["value"])))
    return out


def evaluate_query(
    store: SeriesStore, query: str, time_s: float, *, semantics: Semantics
) -> list[Element]:
    """Return the instant vector of a query in the conformance subset at one time.

    Raises :class:`~rknb.errors.QueryError` where Prometheus answers with an
    error, and for queries outside the subset.
    """
    return _vector(store, _Parser(query).parse(), time_s, semantics)


# --------------------------------------------------------------------------
# Evaluation from function_input


def _from_function_input(case: Mapping[str, Any], semantics: Semantics) -> list[Element]:
    given = case["function_input"]
    function = given["function"]
    time_s = float(case["eval_time_s"])
    if function == "histogram_quantile":
        q = parse_value(given["q"])
        elements = [
            ({**group["labels"], "le": le}, parse_value(value))
            for group in given["groups"]
            for le, value in group["buckets"]
        ]
        vectorized = _quantiles(q, elements, time_s, semantics)

        # The one-histogram function must agree with the vectorized one.
        for labels, value in vectorized:
            group = next(g for g in given["groups"] if g["labels"] == labels)
            buckets = [
                (bound, parse_value(v))
                for le, v in group["buckets"]
                if (bound := promql.parse_bucket_bound(le)) is not None
            ]
            single = promql.histogram_quantile(q, buckets, semantics=semantics)
            if not _close(single, value, 1e-12):
                raise QueryError(
                    f"histogram_quantile gave {single} for {labels} but histogram_quantiles "
                    f"gave {value}",
                    query=case.get("query", ""),
                )
        return vectorized

    if function not in _RANGE_FUNCTIONS:
        raise QueryError(f"function_input names {function!r}, which rknb does not run")
    out = []
    for window in given["windows"]:
        samples = window["samples"]
        t_s = np.array([float(t) for t, _ in samples], dtype=np.float64)
        values = np.array([parse_value(v) for _, v in samples], dtype=np.float64)
        if function in ("rate", "increase"):
            value = promql.extrapolated_rate(
                t_s,
                values,
                time_s,
                float(given["range_s"]),
                is_rate=function == "rate",
                offset_s=float(given.get("offset_s", 0.0)),
                semantics=semantics,
            )[0]
        else:
            ranged = {
                "irate": promql.irate,
                "resets": promql.resets,
                "max_over_time": promql.max_over_time,
            }[function]
            value = ranged(
                t_s,
                values,
                time_s,
                float(given["range_s"]),
                offset_s=float(given.get("offset_s", 0.0)),
                semantics=semantics,
            )[0]
        if not math.isnan(value):
            out.append(({k: v for k, v in window["labels"].items() if k != "__name__"}, value))
    return out


# --------------------------------------------------------------------------
# Comparison and the runner


def _close(a: float, b: float, tolerance: float) -> bool:
    """Return whether two values agree as Prometheus's test runner compares them."""
    if math.isnan(a) and math.isnan(b):
        return True
    if a == b:
        return True
    abs_sum = abs(a) + abs(b)
    diff = abs(a - b)
    if a == 0 or b == 0 or abs_sum < _MIN_NORMAL:
        return diff < tolerance * _MIN_NORMAL
    return diff / min(abs_sum, 1.7976931348623157e308) < tolerance


def _key(labels: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, v) for k, v in labels.items() if k != "__name__"))


def compare(
    expected: Sequence[Mapping[str, Any]], actual: Sequence[Element], tolerance: float
) -> str:
    """Return why two instant vectors differ, or ``""`` when they match element for element."""
    want = {_key(e["labels"]): parse_value(e["value"]) for e in expected}
    got = {_key(labels): value for labels, value in actual}
    problems = []
    for key in sorted(set(want) - set(got)):
        problems.append(f"missing {_render_labels(key)}")
    for key in sorted(set(got) - set(want)):
        problems.append(f"unexpected {_render_labels(key)}")
    for key in sorted(set(want) & set(got)):
        if not _close(want[key], got[key], tolerance):
            problems.append(
                f"{_render_labels(key)} = {format_value(got[key])}, "
                f"expected {format_value(want[key])}"
            )
    return "; ".join(problems)


def _render_labels(key: Sequence[tuple[str, str]]) -> str:
    return "{" + ", ".join(f'{k}="{v}"' for k, v in key) + "}"


def _render_vector(elements: Sequence[Element]) -> str:
    body = ", ".join(
        f"{_render_labels(_key(labels))} {format_value(v)}"
        for labels, v in sorted(elements, key=lambda e: _key(e[0]))
    )
    return f"[{body}]"


def _render_expected(expected: Sequence[Mapping[str, Any]]) -> str:
    return _render_vector([(dict(e["labels"]), parse_value(e["value"])) for e in expected])


def evaluate_case(
    case: Mapping[str, Any],
    datasets: Mapping[str, Any],
    *,
    semantics: Semantics,
    tolerance: float = _DEFAULT_TOLERANCE,
    from_dataset: bool = False,
) -> CaseResult:
    """Return the result of one case under 2.x or 3.x semantics.

    Parameters
    ----------
    case
        One entry of the file's ``cases``.
    datasets
        The file's ``datasets``.
    semantics
        2: from ``function_input`` (the dataset when a case has none); 3: from
        the dataset against the ``prom3`` answer when given.
    tolerance
        Relative tolerance of value comparisons.
    from_dataset
        Under 2, evaluate the query from the dataset instead of the
        function's recorded input.
    """
    case_id = str(case.get("id", "?"))
    query = str(case["query"])
    expected = list(case.get("expected", []))
    expect_error = bool(case.get("expect_error", False))
    use_dataset = semantics == 3 or from_dataset or not case.get("function_input")

    prom3 = case.get("prom3") or {}
    if semantics == 3 and "computed_by_reference" in prom3:
        expected = list(prom3["computed_by_reference"])
    elif semantics == 3 and "equivalent_query" in prom3:
        query = str(prom3["equivalent_query"])
        expected = list(prom3.get("equivalent_expected_in_HEAD_testdata", []))

    try:
        if use_dataset:
            dataset = datasets.get(str(case["dataset"]))
            if dataset is None:
                raise QueryError(f"case names dataset {case['dataset']!r}, which the file lacks")
            store = store_from_dataset(dataset)
            actual = evaluate_query(store, query, float(case["eval_time_s"]), semantics=semantics)
        else:
            actual = _from_function_input(case, semantics)
    except QueryError as error:
        if expect_error:
            return CaseResult(case_id, "passed", "error", "error", str(error))
        return CaseResult(case_id, "failed", _render_expected(expected), "error", str(error))

    if expect_error:
        return CaseResult(
            case_id, "failed", "error", _render_vector(actual), f"{query}: expected an error"
        )
    problem = compare(expected, actual, tolerance)
    status: Status = "failed" if problem else "passed"
    return CaseResult(
        case_id,
        status,
        _render_expected(expected),
        _render_vector(actual),
        f"{query}: {problem}" if problem else "",
    )


def load_vectors(path: Path) -> dict[str, Any]:
    """Return a promql vector file's content (a folder means its ``vectors.json``)."""
    if path.is_dir():
        path = path / "vectors.json"
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ParameterError("path", f"cannot read promql vectors from {path}: {error}") from error
    if not isinstance(content, dict) or not isinstance(content.get("cases"), list):
        raise ParameterError(
            "path", f"{path} is not a promql vector file (no 'cases' list); see its README"
        )
    return content


def run(
    paths: Sequence[Path],
    *,
    semantics: int | str | None = 2,
    from_dataset: bool = False,
) -> Summary:
    """Return the summary of every case of the promql vector files under one semantics.

    Parameters
    ----------
    paths
        Vector files, or folders holding ``vectors.json``.
    semantics
        2 (Prometheus 2.42, the files' own answers) or 3 (the ``prom3`` answers).
    from_dataset
        Under 2, evaluate every query from its dataset rather than from the
        recorded function input (a stricter check of windows and selection).
    """
    mode = promql.resolve_semantics(int(semantics) if semantics is not None else None)
    summary = Summary("promql", label=f"semantics {mode}")
    for path in paths:
        content = load_vectors(Path(path))
        tolerance = float(content.get("tolerance", {}).get("relative", _DEFAULT_TOLERANCE))
        datasets = content.get("datasets", {})
        for case in content["cases"]:
            result = evaluate_case(
                case, datasets, semantics=mode, tolerance=tolerance, from_dataset=from_dataset
            )
            if len(paths) > 1:
                result = CaseResult(
                    f"{Path(path).name}:{result.case_id}",
                    result.status,
                    result.expected,
                    result.actual,
                    result.detail,
                )
            summary.results.append(result)
    return summary
