"""GitLab's CI/CD expression language (``rules:if``, ``only/except:variables``).

Lexemes as GitLab's ``Gitlab::Ci::Pipeline::Expression::Lexer`` knows them: ``$VAR`` (and ``${VAR}``), string
literals in double or single quotes, ``/regex/flags`` patterns, ``null``, ``==``, ``!=``, ``=~``, ``!~``, ``&&``,
``||`` and parentheses. ``&&`` binds tighter than ``||``, comparisons tighter than both. Values follow Ruby's
semantics: an unset variable is ``nil``, ``&&``/``||`` return an operand, and a statement is true when its value
is present (not nil, not false, not a blank string).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<var>\$(?:\{(?P<bname>\w+)\}|(?P<name>\w+)))
  | (?P<dq>"(?:[^"\\]|\\.)*")
  | (?P<sq>'(?:[^'\\]|\\.)*')
  | (?P<pattern>/(?:[^/\\]|\\.)+/[a-z]*)
  | (?P<null>null\b)
  | (?P<op>==|!=|=~|!~|&&|\|\|)
  | (?P<lp>\()
  | (?P<rp>\))
""", re.VERBOSE)

_REGEX_LITERAL = re.compile(r"\A/(?P<body>.+)/(?P<flags>[a-z]*)\Z", re.S)


class ExpressionError(ValueError):
    """The statement is not valid expression syntax."""


@dataclass(frozen=True)
class Pattern:
    """A ``/regex/flags`` literal (RE2 syntax; Python's ``re`` runs the subset CI files use)."""

    source: str
    flags: str = ""

    def compile(self) -> re.Pattern[str]:
        """The regular expression, with ``i``/``m``/``s`` flags as GitLab accepts them."""
        f = 0
        if "i" in self.flags:
            f |= re.I
        if "m" in self.flags:
            f |= re.M
        if "s" in self.flags:
            f |= re.S
        try:
            return re.compile(self.source, f)
        except re.error as err:
            raise ExpressionError(f"invalid regular expression {self.source!r}: {err}") from err


def _tokens(text: str) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise ExpressionError(f"unknown lexeme at {text[pos:]!r}")
        pos = m.end()
        kind = m.lastgroup
        if kind in ("bname", "name"):
            kind = "var"
        if kind == "ws":
            continue
        if kind == "var":
            out.append(("var", m.group("bname") or m.group("name")))
        elif kind in ("dq", "sq"):
            body = m.group(kind)[1:-1]
            out.append(("str", re.sub(r"\\(.)", r"\1", body)))
        elif kind == "pattern":
            lit = _REGEX_LITERAL.match(m.group("pattern"))
            assert lit
            pattern = Pattern(lit.group("body"), lit.group("flags"))
            pattern.compile()  # an invalid regular expression is invalid syntax, as GitLab's lexer finds it
            out.append(("pattern", pattern))
        elif kind == "null":
            out.append(("null", None))
        elif kind == "op":
            out.append(("op", m.group("op")))
        else:
            out.append((kind or "", None))
    return out


class _Parser:
    """Recursive descent: or → and → comparison → operand | ( or )."""

    def __init__(self, tokens: list[tuple[str, Any]]):
        self.tokens = tokens
        self.i = 0

    def peek(self) -> tuple[str, Any] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self) -> tuple[str, Any]:
        tok = self.peek()
        if tok is None:
            raise ExpressionError("unexpected end of expression")
        self.i += 1
        return tok

    def parse(self) -> tuple:
        if not self.tokens:
            raise ExpressionError("empty expression")
        node = self.or_()
        if self.peek() is not None:
            raise ExpressionError(f"unexpected {self.peek()}")
        return node

    def or_(self) -> tuple:
        node = self.and_()
        while self.peek() == ("op", "||"):
            self.take()
            node = ("||", node, self.and_())
        return node

    def and_(self) -> tuple:
        node = self.cmp()
        while self.peek() == ("op", "&&"):
            self.take()
            node = ("&&", node, self.cmp())
        return node

    def cmp(self) -> tuple:
        node = self.operand()
        tok = self.peek()
        if tok and tok[0] == "op" and tok[1] in ("==", "!=", "=~", "!~"):
            self.take()
            right = self.operand()
            node = (tok[1], node, right)
        return node

    def operand(self) -> tuple:
        kind, value = self.take()
        if kind == "lp":
            node = self.or_()
            if self.take()[0] != "rp":
                raise ExpressionError("missing )")
            return node
        if kind in ("var", "str", "pattern", "null"):
            return (kind, value)
        raise ExpressionError(f"unexpected {value or kind}")


def parse(statement: str) -> tuple:
    """The statement's syntax tree; ``ExpressionError`` when it is not valid."""
    if not isinstance(statement, str):
        raise ExpressionError("an expression is a string")
    return _Parser(_tokens(statement)).parse()


def valid(statement: Any) -> bool:
    """Whether GitLab's lint would accept the statement."""
    try:
        parse(statement)
    except ExpressionError:
        return False
    return True


def _as_pattern(value: Any) -> Pattern | None:
    if isinstance(value, Pattern):
        return value
    if isinstance(value, str):  # a variable holding "/regex/flags" is a pattern on the right of =~
        m = _REGEX_LITERAL.match(value)
        if m:
            return Pattern(m.group("body"), m.group("flags"))
    return None


def _eval(node: tuple, variables: Mapping[str, str]) -> Any:
    kind = node[0]
    if kind == "var":
        return variables.get(node[1])
    if kind in ("str", "pattern"):
        return node[1]
    if kind == "null":
        return None
    if kind == "&&":
        left = _eval(node[1], variables)
        return _eval(node[2], variables) if _truthy(left) else left
    if kind == "||":
        left = _eval(node[1], variables)
        return left if _truthy(left) else _eval(node[2], variables)
    left, right = _eval(node[1], variables), _eval(node[2], variables)
    if kind == "==":
        return _plain(left) == _plain(right)
    if kind == "!=":
        return _plain(left) != _plain(right)
    pattern = _as_pattern(right)
    if pattern is None:  # a variable that holds no /pattern/: GitLab compares nothing and says false
        matched = False
    else:
        matched = pattern.compile().search("" if left is None else str(_plain(left))) is not None
    return matched if kind == "=~" else not matched


def _plain(value: Any) -> Any:
    return f"/{value.source}/{value.flags}" if isinstance(value, Pattern) else value


def _truthy(value: Any) -> bool:
    """Ruby's ``present?``: not nil, not false, not a blank string."""
    if value is None or value is False:
        return False
    if isinstance(value, str):
        return value.strip() != ""
    return True


def evaluate(statement: str, variables: Mapping[str, str]) -> bool:
    """Whether the statement is true with these variables (``ExpressionError`` if it is not valid)."""
    return _truthy(_eval(parse(statement), variables))
