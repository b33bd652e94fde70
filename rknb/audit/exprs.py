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

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from rknb.errors import ParameterError

try:  # the maintained Rust parser, when installed (pip install promql-parser)
    import promql_parser
except ImportError:  # pragma: no cover - exercised where the package is missing
    promql_parser = None  # type: ignore[assignment]

__all__ = [
    "AGGREGATIONS",
    "Aggregation",
    "Binary",
    "Call",
    "Node",
    "Number",
    "String",
    "Token",
    "Unary",
    "VectorSelector",
    "parse",
    "parse_builtin",
    "tokenize",
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
    """``lhs OP rhs`` (comparison, arithmetic or set operator)."""

    op: str
    lhs: Node
    rhs: Node
    bool_modifier: bool = False

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
            self.modifiers()
            node = Binary(token.text, node, self.unary(), bool_modifier)

    def modifiers(self) -> None:
        while (token := self.peek()) is not None and token.text in _MODIFIERS:
            self.i += 1
            if self.accept("("):
                self.label_list_rest()

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
            _metric_name(selector), _matchers(selector), promql_parser.display_duration(node.range)
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
        bool_modifier = bool(node.modifier is not None and node.modifier.return_bool)
        return Binary(str(node.op), _convert(node.lhs), _convert(node.rhs), bool_modifier)
    if name == "ParenExpr":
        return Unary("()", _convert(node.expr))
    if name == "UnaryExpr":
        return Unary("-", _convert(node.expr))
    if name == "SubqueryExpr":
        return Unary("subquery", _convert(node.expr), promql_parser.display_duration(node.range))
    raise ParameterError("expr", f"PromQL node {name} is not one rknb reads")


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


def parse(expr: str) -> Node:
    """Return the expression tree of a PromQL expression.

    Raises :class:`rknb.errors.ParameterError` naming the expression and the parser's
    message when it cannot be read.
    """
    if promql_parser is not None:
        try:
            tree = promql_parser.parse(expr)
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
