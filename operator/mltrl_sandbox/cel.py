"""A small subset of CEL, enough for webhook `matchConditions`.

Supported: literals (strings, integers, true, false, null), the variables given (e.g.
`object`, `oldObject`, `request`), field selection (`a.b`, `a["b"]`), list indexing,
`has(a.b)`, `size(x)`, `!`, `==`, `!=`, `in`, `&&`, `||` and parentheses. Selecting a
missing field is an error, as in CEL; `&&` and `||` short-circuit left to right (CEL
also absorbs an error on the left when the right decides; the sandbox does not). Anything else is a
`CelError`, which the caller treats as CEL would: an evaluation error.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any


class CelError(ValueError):
    pass


_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
      | (?P<number>\d+)
      | (?P<op>==|!=|&&|\|\||[!.()\[\],])
      | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
    )""",
    re.VERBOSE,
)
_ESCAPES = {"n": "\n", "t": "\t", "\\": "\\", '"': '"', "'": "'"}


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str


def _tokens(source: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    while position < len(source):
        if source[position:].strip() == "":
            break
        match = _TOKEN.match(source, position)
        if match is None:
            raise CelError(f"unsupported syntax at {source[position:]!r}")
        kind = match.lastgroup or ""
        tokens.append(_Token(kind, match.group(kind)))
        position = match.end()
    return tokens


def _unquote(text: str) -> str:
    body = text[1:-1]
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), body)


# An unevaluated selection, so that has() can test presence instead of failing.
@dataclass(frozen=True)
class _Select:
    target: Any
    field: Any


Node = Callable[[Mapping[str, Any]], Any]


def _constant(value: Any) -> Node:
    return lambda _: value


def _either(left: Node, right: Node) -> Node:
    return lambda v: _truth(left(v)) or _truth(right(v))


def _both(left: Node, right: Node) -> Node:
    return lambda v: _truth(left(v)) and _truth(right(v))


def _select(target: Node, key: Node) -> Node:
    return lambda v: _Select(_value(target(v)), _value(key(v)))


class _Parser:
    """Parses into closures, so `&&` and `||` evaluate their right side only when needed."""

    def __init__(self, source: str) -> None:
        self.tokens = _tokens(source)
        self.index = 0

    def _next_is(self, *texts: str) -> bool:
        return self.index < len(self.tokens) and self.tokens[self.index].text in texts

    def take(self, text: str | None = None) -> _Token:
        token = self.tokens[self.index] if self.index < len(self.tokens) else None
        if token is None or (text is not None and token.text != text):
            raise CelError(f"expected {text or 'more'}, got {token.text if token else 'the end'}")
        self.index += 1
        return token

    def parse(self) -> Node:
        node = self.disjunction()
        if self.index < len(self.tokens):
            raise CelError(f"unexpected {self.tokens[self.index].text!r}")
        return node

    def disjunction(self) -> Node:
        node = self.conjunction()
        while self._next_is("||"):
            self.take()
            node = _either(node, self.conjunction())
        return node

    def conjunction(self) -> Node:
        node = self.relation()
        while self._next_is("&&"):
            self.take()
            node = _both(node, self.relation())
        return node

    def relation(self) -> Node:
        left = self.unary()
        if not self._next_is("==", "!=", "in"):
            return left
        operator = self.take().text
        right = self.unary()

        def compare(v: Mapping[str, Any]) -> Any:
            a, b = _value(left(v)), _value(right(v))
            if operator == "in":
                if isinstance(b, Mapping | list):
                    return a in b
                raise CelError("'in' needs a list or a map on its right")
            return (a == b) if operator == "==" else (a != b)

        return compare

    def unary(self) -> Node:
        if self._next_is("!"):
            self.take()
            inner = self.unary()
            return lambda v: not _truth(inner(v))
        return self.postfix()

    def postfix(self) -> Node:
        node = self.primary()
        while self._next_is(".", "["):
            if self.take().text == ".":
                node = _select(node, _constant(self.take().text))
            else:
                node = _select(node, self.disjunction())
                self.take("]")
        return node

    def primary(self) -> Node:
        token = self.take()
        if token.kind == "string":
            return _constant(_unquote(token.text))
        if token.kind == "number":
            return _constant(int(token.text))
        if token.text == "(":
            inner = self.disjunction()
            self.take(")")
            return inner
        if token.kind != "name":
            raise CelError(f"unexpected {token.text!r}")
        constants = {"true": True, "false": False, "null": None}
        if token.text in constants:
            return _constant(constants[token.text])
        if self._next_is("("):
            self.take("(")
            argument = self.disjunction()
            self.take(")")
            return lambda v: _call(token.text, argument(v))
        name = token.text

        def variable(v: Mapping[str, Any]) -> Any:
            if name not in v:
                raise CelError(f"undeclared reference to {name!r}")
            return v[name]

        return variable


def _value(value: Any) -> Any:
    if not isinstance(value, _Select):
        return value
    target = _value(value.target)
    if isinstance(target, Mapping):
        if value.field not in target:
            raise CelError(f"no such key: {value.field}")
        return target[value.field]
    if isinstance(target, list) and isinstance(value.field, int):
        if not 0 <= value.field < len(target):
            raise CelError(f"index out of range: {value.field}")
        return target[value.field]
    raise CelError(f"cannot select {value.field!r} from {type(target).__name__}")


def _truth(value: Any) -> bool:
    value = _value(value)
    if not isinstance(value, bool):
        raise CelError(f"expected a bool, got {type(value).__name__}")
    return value


def _call(name: str, argument: Any) -> Any:
    if name == "has":
        if not isinstance(argument, _Select):
            raise CelError("has() needs a field selection")
        target = _value(argument.target)
        return isinstance(target, Mapping) and argument.field in target
    if name == "size":
        value = _value(argument)
        if isinstance(value, str | list | Mapping):
            return len(value)
        raise CelError("size() needs a string, list or map")
    raise CelError(f"unsupported function {name}()")


def compile_expression(source: str) -> Node:
    """Parse once; raises CelError for syntax outside the subset."""
    return _Parser(source).parse()


def evaluate(source: str, variables: Mapping[str, Any]) -> Any:
    """The value of `source`; raises CelError for what the subset cannot evaluate."""
    return _value(compile_expression(source)(variables))


def evaluate_condition(source: str, variables: Mapping[str, Any]) -> bool:
    """A condition's value, which must be a bool."""
    return _truth(compile_expression(source)(variables))
