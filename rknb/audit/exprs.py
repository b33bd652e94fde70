"""PromQL parse trees for alert-rule checks: function calls, aggregations, selectors.

The audit needs the shape of a rule's expression (which function is applied
to which selector, which labels an aggregation keeps), not its value. When
the ``promql-parser`` package (Rust bindings of the parser Prometheus-compatible
servers use) is installed, :func:`parse` parses with it, so syntax errors are
Prometheus' own ("unclosed left parenthesis"), and converts its tree into the
small :class:`Node` classes here. Without it, a built-in recursive-descent
parser gives the same tree shape (operator precedence not modelled). It is not
an evaluator: rknb evaluates no PromQL offline.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from rknb.errors import ParameterError


@functools.cache
def _rust_parser() -> Any:
    # The maintained Rust parser (promql-parser) when installed, imported on first use: an
    # audit of manifests without alert rules does not wait the 20 ms its import takes.
    try:
        import promql_parser
    except ImportError:  # pragma: no cover - exercised where the package is missing
        return None
    return promql_parser


__all__ = [
    "AGGREGATIONS",
    "GUARANTEED",
    "IMPOSSIBLE",
    "MAX_DEPTH",
    "POSSIBLE",
    "Aggregation",
    "Binary",
    "Call",
    "Join",
    "Node",
    "Number",
    "Source",
    "String",
    "Token",
    "Unary",
    "VectorSelector",
    "depth_bound",
    "parse",
    "parse_builtin",
    "render",
    "sources",
    "tokenize",
    "value_type",
    "walk",
]

AGGREGATIONS = frozenset(
    {
        "sum",
        "avg",
        "min",
        "max",
        "count",
        "stddev",
        "stdvar",
        "group",
        "topk",
        "bottomk",
        "quantile",
        "count_values",
        "limitk",
        "limit_ratio",
    }
)
_KEYWORD_OPS = frozenset({"and", "or", "unless", "atan2"})
_MODIFIERS = frozenset({"on", "ignoring", "group_left", "group_right"})

_TOKEN = re.compile(
    r"""
    (?P<space>\s+|\#[^\n]*)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
  | (?P<range>\[[^\]]*\])
  | (?P<number>0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?(?:ms|s|m|h|d|w|y)*)
  | (?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)
  | (?P<op>==|!=|>=|<=|=~|!~|[-+*/%^<>=])
  | (?P<punct>[(){},@])
    """,
    re.VERBOSE,
)


@dataclass(frozen=True)
class Token:
    """One lexical token: its type (string, range, number, ident, op, punct) and text."""

    type: str
    text: str
    pos: int


class Node:
    """Base class of parsed expression nodes."""

    def children(self) -> list[Node]:
        """Return the direct sub-expressions."""
        return []


@dataclass(frozen=True)
class Number(Node):
    """A number literal (or a duration written as a number)."""

    text: str


@dataclass(frozen=True)
class String(Node):
    """A string literal, without its quotes."""

    value: str


@dataclass(frozen=True)
class VectorSelector(Node):
    """``metric{label="v"}[5m]``: the metric name, matchers as text, and the range if any."""

    metric: str
    matchers: tuple[tuple[str, str, str], ...] = ()
    range: str | None = None


@dataclass(frozen=True)
class Call(Node):
    """A function call such as ``rate(x[5m])``."""

    name: str
    args: tuple[Node, ...] = ()
    range: str | None = None

    def children(self) -> list[Node]:
        """Return the arguments."""
        return list(self.args)


@dataclass(frozen=True)
class Aggregation(Node):
    """``sum by (le) (...)``: the operator, ``by``/``without`` and its labels, the arguments."""

    op: str
    grouping: str | None
    labels: tuple[str, ...]
    args: tuple[Node, ...] = ()

    def children(self) -> list[Node]:
        """Return the arguments."""
        return list(self.args)


@dataclass(frozen=True)
class Binary(Node):
    """``lhs OP rhs`` (comparison, arithmetic or set operator) and its vector matching.

    ``matching`` is ``on`` or ``ignoring`` (with ``matching_labels``) when written,
    ``group`` is ``left`` or ``right`` for ``group_left``/``group_right`` (with the
    labels they copy in ``group_labels``).
    """

    op: str
    lhs: Node
    rhs: Node
    bool_modifier: bool = False
    matching: str | None = None
    matching_labels: tuple[str, ...] = ()
    group: str | None = None
    group_labels: tuple[str, ...] = ()

    def children(self) -> list[Node]:
        """Return both sides."""
        return [self.lhs, self.rhs]


@dataclass(frozen=True)
class Unary(Node):
    """``-expr`` or a parenthesised ``(expr)`` with a subquery range."""

    op: str
    expr: Node
    range: str | None = field(default=None)

    def children(self) -> list[Node]:
        """Return the operand."""
        return [self.expr]


def tokenize(expr: str) -> list[Token]:
    """Return the tokens of a PromQL expression, without whitespace and comments."""
    tokens = []
    pos = 0
    while pos < len(expr):
        match = _TOKEN.match(expr, pos)
        if match is None:
            raise ParameterError(
                "expr", f"cannot read PromQL at offset {pos} ({expr[pos : pos + 10]!r})"
            )
        kind = match.lastgroup or ""
        if kind != "space":
            tokens.append(Token(kind, match.group(), pos))
        pos = match.end()
    return tokens


class _Parser:
    def __init__(self, expr: str) -> None:
        self.expr = expr
        self.tokens = tokenize(expr)
        self.i = 0

    def peek(self, offset: int = 0) -> Token | None:
        j = self.i + offset
        return self.tokens[j] if j < len(self.tokens) else None

    def next(self) -> Token:
        token = self.peek()
        if token is None:
            self.fail("unexpected end")
        assert token is not None
        self.i += 1
        return token

    def accept(self, text: str) -> bool:
        token = self.peek()
        if token is not None and token.text == text and token.type in ("punct", "op", "ident"):
            self.i += 1
            return True
        return False

    def expect(self, text: str) -> None:
        if not self.accept(text):
            token = self.peek()
            self.fail(f"expected {text!r}, found {token.text if token else 'the end'!r}")

    def fail(self, what: str) -> None:
        raise ParameterError("expr", f"cannot parse PromQL {self.expr!r}: {what}")

    def expression(self) -> Node:
        node = self.unary()
        while True:
            token = self.peek()
            if token is None or not (
                (token.type == "op" and token.text != "=") or token.text in _KEYWORD_OPS
            ):
                return node
            self.i += 1
            bool_modifier = self.accept("bool")
            found = self.modifiers()
            node = Binary(token.text, node, self.unary(), bool_modifier, **found)

    def modifiers(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        while (token := self.peek()) is not None and token.text in _MODIFIERS:
            self.i += 1
            labels = self.label_list_rest() if self.accept("(") else ()
            if token.text in ("on", "ignoring"):
                found.update(matching=token.text, matching_labels=labels)
            else:
                found.update(group=token.text.removeprefix("group_"), group_labels=labels)
        return found

    def label_list_rest(self) -> tuple[str, ...]:
        labels = []
        while not self.accept(")"):
            token = self.next()
            if token.text != ",":
                labels.append(token.text.strip("\"'"))
        return tuple(labels)

    def unary(self) -> Node:
        token = self.peek()
        if token is not None and token.text in ("-", "+") and token.type == "op":
            self.i += 1
            return Unary(token.text, self.unary())
        return self.postfix(self.primary())

    def postfix(self, node: Node) -> Node:
        while (token := self.peek()) is not None:
            if token.type == "range":
                self.i += 1
                if isinstance(node, VectorSelector):
                    node = VectorSelector(node.metric, node.matchers, token.text[1:-1])
                else:
                    node = Unary("subquery", node, token.text[1:-1])
            elif token.text == "offset":
                self.i += 1
                self.accept("-")
                self.next()
            elif token.text == "@":
                self.i += 1
                at = self.next()
                if at.type == "ident" and self.accept("("):
                    self.expect(")")
            else:
                return node
        return node

    def primary(self) -> Node:
        token = self.next()
        if token.type == "number":
            return Number(token.text)
        if token.type == "string":
            return String(token.text[1:-1])
        if token.text == "(":
            inner = self.expression()
            self.expect(")")
            return Unary("()", inner)
        if token.text == "{":
            return VectorSelector("", self.matchers())
        if token.type != "ident":
            self.fail(f"unexpected {token.text!r}")
        name = token.text
        if name.lower() in AGGREGATIONS and self._starts_aggregation():
            return self.aggregation(name.lower())
        if self.accept("("):
            return Call(name, self.arguments())
        if self.accept("{"):
            return VectorSelector(name, self.matchers())
        return VectorSelector(name)

    def _starts_aggregation(self) -> bool:
        token = self.peek()
        return token is not None and token.text in ("(", "by", "without")

    def aggregation(self, op: str) -> Aggregation:
        grouping: str | None = None
        labels: tuple[str, ...] = ()
        if (token := self.peek()) is not None and token.text in ("by", "without"):
            self.i += 1
            grouping = token.text
            self.expect("(")
            labels = self.label_list_rest()
        self.expect("(")
        args = self.arguments()
        if (token := self.peek()) is not None and token.text in ("by", "without"):
            self.i += 1
            grouping = token.text
            self.expect("(")
            labels = self.label_list_rest()
        return Aggregation(op, grouping, labels, args)

    def arguments(self) -> tuple[Node, ...]:
        args: list[Node] = []
        if self.accept(")"):
            return ()
        while True:
            args.append(self.expression())
            if self.accept(")"):
                return tuple(args)
            self.expect(",")

    def matchers(self) -> tuple[tuple[str, str, str], ...]:
        found = []
        while not self.accept("}"):
            label = self.next()
            if label.text == ",":
                continue
            op = self.next()
            value = self.next()
            found.append((label.text.strip("\"'"), op.text, value.text[1:-1]))
        return tuple(found)


def _convert(node: Any) -> Node:
    # promql_parser's classes -> this module's nodes.
    name = type(node).__name__
    if name == "NumberLiteral":
        return Number(repr(node.val))
    if name == "StringLiteral":
        return String(str(node.val))
    if name == "VectorSelector":
        return VectorSelector(_metric_name(node), _matchers(node))
    if name == "MatrixSelector":
        selector = node.vector_selector
        return VectorSelector(
            _metric_name(selector), _matchers(selector), _rust_parser().display_duration(node.range)
        )
    if name == "Call":
        return Call(node.func.name, tuple(_convert(a) for a in node.args))
    if name == "AggregateExpr":
        grouping = None
        labels: tuple[str, ...] = ()
        if node.modifier is not None:
            grouping = "without" if str(node.modifier.type).endswith("Without") else "by"
            labels = tuple(node.modifier.labels)
        args = (
            (_convert(node.param), _convert(node.expr))
            if node.param is not None
            else (_convert(node.expr),)
        )
        return Aggregation(str(node.op).lower(), grouping, labels, args)
    if name == "BinaryExpr":
        return Binary(str(node.op), _convert(node.lhs), _convert(node.rhs), **_bin_modifier(node))
    if name == "ParenExpr":
        return Unary("()", _convert(node.expr))
    if name == "UnaryExpr":
        return Unary("-", _convert(node.expr))
    if name == "SubqueryExpr":
        return Unary("subquery", _convert(node.expr), _rust_parser().display_duration(node.range))
    raise ParameterError("expr", f"PromQL node {name} is not one rknb reads")


def _bin_modifier(node: Any) -> dict[str, Any]:
    # promql_parser's BinModifier -> Binary's bool/matching/group fields.
    modifier = node.modifier
    if modifier is None:
        return {}
    found: dict[str, Any] = {"bool_modifier": bool(modifier.return_bool)}
    if modifier.matching is not None:
        exclude = str(modifier.matching.type).endswith("Exclude")
        found["matching"] = "ignoring" if exclude else "on"
        found["matching_labels"] = tuple(modifier.matching.labels)
    card = str(modifier.card).rpartition(".")[2]
    if card in ("ManyToOne", "OneToMany"):
        found["group"] = "left" if card == "ManyToOne" else "right"
        found["group_labels"] = tuple(modifier.group_labels or ())
    return found


def _metric_name(selector: Any) -> str:
    # ``foo`` and ``{__name__="foo"}`` name the same metric; a regex names none.
    if selector.name:
        return str(selector.name)
    for matcher in selector.matchers.matchers:
        if matcher.name == "__name__" and str(matcher.op).rpartition(".")[2] == "Equal":
            return str(matcher.value)
    return ""


def _matchers(selector: Any) -> tuple[tuple[str, str, str], ...]:
    ops = {"Equal": "=", "NotEqual": "!=", "Re": "=~", "NotRe": "!~"}
    found = []
    for matcher in selector.matchers.matchers:
        op = str(matcher.op).rpartition(".")[2]
        if matcher.name != "__name__":
            found.append((matcher.name, ops.get(op, op), matcher.value))
    return tuple(found)


#: The deepest expression tree read. No rule written by hand comes near it; far deeper ones
#: (tens of thousands of nested brackets or chained operators) crash the Rust parser
#: outright (a segmentation fault, measured with promql-parser 0.5) and exceed Python's
#: recursion limit in the conversion below.
MAX_DEPTH = 400

# What can deepen a tree: brackets, and binary operators (a chain `a + b + c ...` nests one
# level per operator). Comparisons inside label matchers do not count (braces are skipped).
_STRINGS = re.compile(r""""(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`""")
_MATCHERS = re.compile(r"\{[^{}]*\}")
_OPERATORS = re.compile(r"==|!=|<=|>=|[-+*/%^<>]|\b(?:and|or|unless|atan2)\b")


def depth_bound(expr: str) -> int:
    """Return an upper bound of how deep the expression's tree nests, read from its text."""
    text = _MATCHERS.sub("{}", _STRINGS.sub('""', expr))
    depth = deepest = 0
    for char in text:
        if char in "([":
            depth += 1
            deepest = max(deepest, depth)
        elif char in ")]":
            depth -= 1
    return deepest + len(_OPERATORS.findall(text)) + 1


def parse(expr: str) -> Node:
    """Return the expression tree of a PromQL expression.

    Raises :class:`rknb.errors.ParameterError` naming the expression and the parser's
    message when it cannot be read, or when it may nest deeper than :data:`MAX_DEPTH`.
    """
    bound = depth_bound(expr)
    if bound > MAX_DEPTH:
        shown = expr if len(expr) <= 60 else expr[:57] + "..."
        raise ParameterError(
            "expr",
            f"cannot parse PromQL {shown!r}: it may nest {bound} levels deep, more than the "
            f"{MAX_DEPTH} rknb reads (Prometheus may load it, but no rule of rknb checks it)",
        )
    rust = _rust_parser()
    if rust is not None:
        try:
            tree = rust.parse(expr)
        except ValueError as error:
            raise ParameterError("expr", f"cannot parse PromQL {expr!r}: {error}") from error
        return _convert(tree)
    return parse_builtin(expr)


def parse_builtin(expr: str) -> Node:
    """Return the expression tree from the built-in parser (used without ``promql-parser``)."""
    parser = _Parser(expr)
    node = parser.expression()
    if parser.peek() is not None:
        parser.fail(f"unexpected {parser.peek().text!r}")  # type: ignore[union-attr]
    return node


def walk(node: Node) -> Iterator[Node]:
    """Yield the node and every node below it, depth first."""
    yield node
    for child in node.children():
        yield from walk(child)


# --------------------------------------------------------------------------- series sources
#
# Where an expression's series come from, as pint's "source" model describes them: each
# source is one selector (or number, or function without a series argument) followed by the
# operations applied to it, with the aggregations and binary operations that shaped its
# labels, the other sources it is joined with, and whether a condition filters it. Only what
# the alert-rule checks read is modelled (label promises, joins, conditions), not values.

#: Label promises: may be on the result, is on every result, cannot be on any result.
POSSIBLE, GUARANTEED, IMPOSSIBLE = "possible", "guaranteed", "impossible"
_SET_OPS = frozenset({"and", "or", "unless"})
_COMPARISON_OPS = frozenset({">", ">=", "<", "<=", "==", "!="})
#: Functions whose result is a scalar, or (vector) a series without labels.
_SCALAR_FUNCTIONS = frozenset(
    {"pi", "min_of", "max_of", "scalar", "time", "start", "end", "range", "step"}
)
_CLOCK_FUNCTIONS = frozenset(
    {"days_in_month", "day_of_month", "day_of_week", "day_of_year", "hour", "minute"}
    | {"month", "year"}
)
#: Functions that keep their argument's labels (pint's list; others give an unknown source).
_LABEL_KEEPING = frozenset(
    {"abs", "sgn", "acos", "acosh", "asin", "asinh", "atan", "atanh", "cos", "cosh", "sin"}
    | {"sinh", "tan", "tanh", "ceil", "floor", "round", "changes", "resets", "clamp"}
    | {"clamp_max", "clamp_min", "deg", "rad", "ln", "log10", "log2", "sqrt", "exp"}
    | {"delta", "idelta", "increase", "deriv", "irate", "rate", "sort", "sort_desc"}
    | {"sort_by_label", "sort_by_label_desc", "timestamp", "info", "holt_winters"}
    | {"double_exponential_smoothing", "predict_linear"}
    | {f"{name}_over_time" for name in ("avg", "count", "first", "last", "mad", "max")}
    | {f"{name}_over_time" for name in ("min", "present", "quantile", "stddev", "stdvar", "sum")}
    | {f"histogram_{name}" for name in ("avg", "count", "fraction", "quantile", "quantiles")}
    | {f"histogram_{name}" for name in ("stddev", "stdvar", "sum")}
    | {f"ts_of_{name}_over_time" for name in ("first", "last", "max", "min")}
)
#: Argument positions that take a scalar or a string, not series (the rest take series).
_NON_SERIES_ARGS: dict[str, frozenset[int] | None] = {
    "histogram_quantile": frozenset({0}),
    "histogram_fraction": frozenset({0, 1}),
    "quantile_over_time": frozenset({0}),
    "clamp": frozenset({1, 2}),
    "clamp_min": frozenset({1}),
    "clamp_max": frozenset({1}),
    "round": frozenset({1}),
    "predict_linear": frozenset({1}),
    "holt_winters": frozenset({1, 2}),
    "double_exponential_smoothing": frozenset({1, 2}),
    "vector": frozenset({0}),
    "label_replace": None,  # every argument after the first
    "label_join": None,
    "sort_by_label": None,
    "sort_by_label_desc": None,
}


@dataclass
class Join:
    """A source joined to another by a binary operation, and how."""

    source: Source
    op: str
    #: Labels ``group_left``/``group_right`` copy from the joined side.
    added_labels: tuple[str, ...] = ()
    #: Zero for a join on the result itself; aggregations over the join raise it.
    depth: int = 0


@dataclass
class Source:
    """One origin of an expression's series and what was done to it (pint's source model).

    ``kind`` is ``selector``, ``number``, ``string``, ``function``, ``aggregation`` or
    ``unknown``; ``returns`` is ``vector``, ``matrix``, ``scalar`` or ``string``.
    ``operations`` are the nodes applied to the series, innermost first (range and
    subquery nodes are put first, as pint does); ``labels`` maps label names to
    :data:`POSSIBLE`, :data:`GUARANTEED` or :data:`IMPOSSIBLE`, and ``fixed_labels``
    says no label outside ``labels`` can be present. ``condition`` is whether a
    comparison (or ``and`` with one) filters the series.
    """

    kind: str = "unknown"
    returns: str = "vector"
    operations: list[Node] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    fixed_labels: bool = False
    condition: bool = False
    joins: list[Join] = field(default_factory=list)
    unless: list[Source] = field(default_factory=list)
    indirect: list[Source] = field(default_factory=list)

    def operation(self) -> str:
        """Return the name of the outermost operation (aggregation or function), or ``""``."""
        return _operation_name(self.operations[-1]) if self.operations else ""

    def outermost(self, kind: type[Node], test: Any = None) -> Node | None:
        """Return the outermost operation node of this class (passing ``test``), or None."""
        for node in reversed(self.operations):
            if isinstance(node, kind) and (test is None or test(node)):
                return node
        return None

    def can_have(self, name: str) -> bool:
        """Return whether a result series can carry this label."""
        promise = self.labels.get(name)
        if promise is not None:
            return promise != IMPOSSIBLE
        return not self.fixed_labels

    def possible_labels(self) -> list[str]:
        """Return the labels marked as possibly (not certainly) present."""
        return [name for name, promise in self.labels.items() if promise == POSSIBLE]

    def walk(self) -> Iterator[Source]:
        """Yield this source and every source joined to it, unless-ed or used indirectly."""
        yield self
        for join in self.joins:
            yield from join.source.walk()
        for other in (*self.unless, *self.indirect):
            yield from other.walk()

    def _copy(self) -> Source:
        return Source(
            self.kind,
            self.returns,
            list(self.operations),
            dict(self.labels),
            self.fixed_labels,
            self.condition,
            list(self.joins),
            list(self.unless),
            list(self.indirect),
        )

    def _exclude_all(self, keep: Iterable[str] = ()) -> None:
        kept = tuple(keep)
        for name, promise in list(self.labels.items()):
            if name not in kept and promise != IMPOSSIBLE:
                self.labels[name] = IMPOSSIBLE
        for name in kept:
            if self.labels.get(name) != GUARANTEED:
                self.labels[name] = POSSIBLE if self.can_have(name) else IMPOSSIBLE
        self.fixed_labels = True

    def _include(self, name: str) -> None:
        if self.labels.get(name) != GUARANTEED:
            self.labels[name] = POSSIBLE


def _operation_name(node: Node) -> str:
    if isinstance(node, Aggregation):
        return node.op
    if isinstance(node, Call):
        return node.name
    return ""


def value_type(node: Node) -> str:
    """Return what an expression evaluates to: ``vector``, ``matrix``, ``scalar`` or ``string``."""
    if isinstance(node, Number):
        return "scalar"
    if isinstance(node, String):
        return "string"
    if isinstance(node, VectorSelector):
        return "matrix" if node.range else "vector"
    if isinstance(node, Unary):
        return "matrix" if node.op == "subquery" else value_type(node.expr)
    if isinstance(node, Call):
        return "scalar" if node.name in _SCALAR_FUNCTIONS else "vector"
    if isinstance(node, Binary):
        sides = (value_type(node.lhs), value_type(node.rhs))
        return "scalar" if sides == ("scalar", "scalar") else "vector"
    return "vector"


def sources(node: Node) -> list[Source]:
    """Return the sources of an expression's series, in the order pint lists them."""
    if isinstance(node, VectorSelector):
        return [_selector_source(node)]
    if isinstance(node, Number | String):
        scalar = isinstance(node, Number)
        source = Source("number" if scalar else "string", "scalar" if scalar else "string")
        source._exclude_all()
        return [source]
    if isinstance(node, Unary):
        found = sources(node.expr)
        if node.op == "subquery":
            for source in found:
                source.operations.insert(0, node)
                source.returns = "matrix"
        return found
    if isinstance(node, Aggregation):
        return _aggregation_sources(node)
    if isinstance(node, Call):
        return _call_sources(node)
    if isinstance(node, Binary):
        return _binary_sources(node)
    return []


def _selector_source(node: VectorSelector) -> Source:
    source = Source("selector", "matrix" if node.range else "vector")
    plain = VectorSelector(node.metric, node.matchers)
    source.operations = [node, plain] if node.range else [plain]
    for label, op, _ in node.matchers:
        if op in ("=", "=~"):
            source.labels[label] = GUARANTEED
    for label, op, value in node.matchers:
        if op == "=" and value == "":
            source.labels[label] = IMPOSSIBLE
    return source


def _aggregation_sources(node: Aggregation) -> list[Source]:
    found = sources(node.args[-1]) if node.args else []
    for source in found:
        for join in source.joins:
            join.depth += 1
        source.kind = "aggregation"
        source.returns = "vector"
        source.operations.append(node)
        if node.op in ("topk", "bottomk"):
            continue  # they pick series and keep every label
        if node.grouping == "without":
            for name in node.labels:
                source.labels[name] = IMPOSSIBLE
        else:
            source._exclude_all(node.labels)
        if node.op == "count_values" and isinstance(node.args[0], String):
            source.labels[node.args[0].value] = GUARANTEED
        if node.grouping == "without" or "__name__" not in node.labels:
            source.labels["__name__"] = IMPOSSIBLE
    return found


def _call_sources(node: Call) -> list[Source]:
    non_series = _NON_SERIES_ARGS.get(node.name, frozenset())
    series_args, indirect = [], []
    for number, arg in enumerate(node.args):
        takes_values = number > 0 if non_series is None else number in non_series
        if takes_values:
            indirect.extend(sources(arg))
        else:
            series_args.append(arg)
    found = []
    for arg in series_args:
        for source in sources(arg):
            source.kind = "function"
            source.operations.append(node)
            found.append(_function_labels(source, node))
    if not found:
        source = Source("function", operations=[node])
        found.append(_function_labels(source, node))
    for source in found:
        source.indirect.extend(indirect)
    return found


def _function_labels(source: Source, node: Call) -> Source:
    name = node.name
    source.returns = "vector"
    if name in ("absent", "absent_over_time"):
        selector = source.outermost(VectorSelector, lambda s: not s.range)
        names = []
        if isinstance(selector, VectorSelector):
            names = [label for label, op, _ in selector.matchers if op == "="]
        source._exclude_all(names)
        for label in names:
            source.labels[label] = GUARANTEED
    elif name in _CLOCK_FUNCTIONS:
        if not node.args:
            source._exclude_all()
    elif name in ("label_join", "label_replace"):
        if len(node.args) > 1 and isinstance(node.args[1], String):
            source.labels[node.args[1].value] = GUARANTEED
    elif name in _SCALAR_FUNCTIONS:
        source.returns = "scalar"
        source._exclude_all()
    elif name == "vector":
        source._exclude_all()
    elif name not in _LABEL_KEEPING:
        return Source(returns="none")  # a function pint does not model: nothing known
    return source


def _binary_sources(node: Binary) -> list[Source]:
    lhs, rhs = sources(node.lhs), sources(node.rhs)
    if "scalar" in (value_type(node.lhs), value_type(node.rhs)):
        found = []
        for left in lhs:
            for right in rhs:
                if left.returns in ("vector", "matrix"):
                    side, other = left, right
                elif right.returns in ("vector", "matrix"):
                    side, other = right, left
                else:
                    side, other = left, right
                result = side._copy()
                result.indirect.append(other)
                result.condition = result.condition or node.op in _COMPARISON_OPS
                found.append(result)
        return found
    if node.op in _SET_OPS:
        return _set_sources(node, lhs, rhs)
    added: tuple[str, ...] = ()
    if node.group is None:
        kept, joined = lhs, rhs
    elif node.group == "left":
        kept, joined, added = lhs, rhs, node.group_labels
    else:
        kept, joined, added = rhs, lhs, node.group_labels
    for source in kept:
        if node.group is None and node.matching == "on":
            source._exclude_all(node.matching_labels)
        elif node.group is None and node.matching == "ignoring":
            for name in node.matching_labels:
                source.labels[name] = IMPOSSIBLE
        elif node.group is not None:
            for name in node.group_labels:
                if source.labels.get(name) == GUARANTEED:
                    break  # pint stops at a label both sides have
                source.labels[name] = POSSIBLE
            if node.matching == "on":
                for name in node.matching_labels:
                    source._include(name)
        source.joins.extend(Join(other, node.op, added) for other in joined)
        source.labels["__name__"] = IMPOSSIBLE
        source.condition = source.condition or node.op in _COMPARISON_OPS
    return kept


def _set_sources(node: Binary, lhs: list[Source], rhs: list[Source]) -> list[Source]:
    for source in lhs:
        if node.matching == "on":
            for name in node.matching_labels:
                source._include(name)
        if node.op == "unless":
            source.unless.extend(rhs)
        elif node.op == "and":
            source.joins.extend(Join(other, "and") for other in rhs)
            if any(other.condition for other in rhs):
                source.condition = True
    return [*lhs, *rhs] if node.op == "or" else lhs


def render(node: Node) -> str:
    """Return PromQL text for a parsed expression (matchers and ranges as parsed)."""
    if isinstance(node, Number):
        text = node.text
        return text[:-2] if text.endswith(".0") else text
    if isinstance(node, String):
        return '"' + node.value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(node, VectorSelector):
        matchers = ", ".join(f'{k}{op}"{v}"' for k, op, v in node.matchers)
        text = node.metric + (f"{{{matchers}}}" if matchers or not node.metric else "")
        return text + (f"[{node.range}]" if node.range else "")
    if isinstance(node, Call):
        return f"{node.name}({', '.join(render(a) for a in node.args)})"
    if isinstance(node, Aggregation):
        grouping = f" {node.grouping} ({', '.join(node.labels)}) " if node.grouping else ""
        return f"{node.op}{grouping}({', '.join(render(a) for a in node.args)})"
    if isinstance(node, Binary):
        parts = [node.op, "bool" if node.bool_modifier else ""]
        if node.matching:
            parts.append(f"{node.matching} ({', '.join(node.matching_labels)})")
        if node.group:
            parts.append(f"group_{node.group} ({', '.join(node.group_labels)})")
        return f"{render(node.lhs)} {' '.join(p for p in parts if p)} {render(node.rhs)}"
    if isinstance(node, Unary):
        if node.op == "()":
            return f"({render(node.expr)})"
        if node.op == "subquery":
            return f"{render(node.expr)}[{node.range}]"
        return f"{node.op}{render(node.expr)}"
    return "?"
