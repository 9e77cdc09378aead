"""KQL (Kibana Query Language) → Elasticsearch query DSL, as Kibana's Discover translates its query bar.

Supported: ``field: value``, ``field: "a phrase"``, ``field: (a or b)``, ``field: *`` (exists), wildcards
(``svc-*``), ranges (``status >= 500``), free text (all fields), ``and`` / ``or`` / ``not`` with Kibana's
precedence (not > and > or) and parentheses. Nested-field queries (``items:{ name: x }``) are not supported by the
labkit simulator and raise :class:`KQLSyntaxError`, as bad syntax does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

Query = dict[str, Any]

TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<lparen>\()
  | (?P<rparen>\))
  | (?P<lbrace>\{)
  | (?P<range><=|>=|<|>)
  | (?P<colon>:)
  | (?P<quoted>"(?:[^"\\]|\\.)*")
  | (?P<word>(?:[^\s():<>"\\{}]|\\.)+)
""", re.VERBOSE)
KEYWORDS = {"and", "or", "not"}
RANGE_OPS = {"<": "lt", "<=": "lte", ">": "gt", ">=": "gte"}


class KQLSyntaxError(ValueError):
    """A query Kibana would refuse, with the position of the problem."""


@dataclass(frozen=True)
class Token:
    kind: str  # lparen rparen range colon quoted word and or not
    text: str
    pos: int


def tokenize(text: str) -> list[Token]:
    """The query's tokens (``and``/``or``/``not`` as keywords, case-insensitive)."""
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        m = TOKEN.match(text, pos)
        if not m:
            raise KQLSyntaxError(f"KQL syntax error: unexpected {text[pos]!r} at position {pos}")
        kind = m.lastgroup or ""
        if kind == "lbrace":
            raise KQLSyntaxError("KQL nested field queries ({ }) are not supported by the labkit simulator")
        if kind != "ws":
            value = m.group()
            if kind == "word" and value.lower() in KEYWORDS:
                kind = value.lower()
            tokens.append(Token(kind, value, pos))
        pos = m.end()
    return tokens


def unescape(word: str) -> str:
    return re.sub(r"\\(.)", r"\1", word)


def unquote(quoted: str) -> str:
    return unescape(quoted[1:-1])


def has_wildcard(word: str) -> bool:
    return bool(re.search(r"(?<!\\)\*", word))


class Parser:
    """Recursive descent over the tokens: or-expr → and-expr → not-expr → primary."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0

    def peek(self, offset: int = 0) -> Token | None:
        j = self.i + offset
        return self.tokens[j] if j < len(self.tokens) else None

    def take(self, kind: str) -> Token:
        token = self.peek()
        if token is None or token.kind != kind:
            where = f"at position {token.pos}" if token else "at the end of the query"
            raise KQLSyntaxError(f"KQL syntax error: expected {kind} {where}")
        self.i += 1
        return token

    def parse(self) -> Query:
        if not self.tokens:
            return {"match_all": {}}
        query = self.or_expr(field=None)
        if self.peek() is not None:
            token = self.peek()
            assert token is not None
            raise KQLSyntaxError(f"KQL syntax error: unexpected {token.text!r} at position {token.pos}")
        return query

    def or_expr(self, field: str | None) -> Query:
        parts = [self.and_expr(field)]
        while (t := self.peek()) and t.kind == "or":
            self.i += 1
            parts.append(self.and_expr(field))
        return parts[0] if len(parts) == 1 else {"bool": {"should": parts, "minimum_should_match": 1}}

    def and_expr(self, field: str | None) -> Query:
        parts = [self.not_expr(field)]
        while (t := self.peek()) and t.kind == "and":
            self.i += 1
            parts.append(self.not_expr(field))
        return parts[0] if len(parts) == 1 else {"bool": {"filter": parts}}

    def not_expr(self, field: str | None) -> Query:
        if (t := self.peek()) and t.kind == "not":
            self.i += 1
            return {"bool": {"must_not": self.not_expr(field)}}
        return self.primary(field)

    def primary(self, field: str | None) -> Query:
        token = self.peek()
        if token is None:
            raise KQLSyntaxError("KQL syntax error: expected a value at the end of the query")
        if token.kind == "lparen":
            self.i += 1
            inner = self.or_expr(field)
            self.take("rparen")
            return inner
        if token.kind not in ("word", "quoted"):
            raise KQLSyntaxError(f"KQL syntax error: unexpected {token.text!r} at position {token.pos}")
        nxt = self.peek(1)
        if field is None and token.kind == "word" and nxt is not None and nxt.kind == "colon":
            self.i += 2
            name = unescape(token.text)
            value = self.peek()
            if value is not None and value.kind == "lparen":
                self.i += 1
                inner = self.or_expr(field=name)
                self.take("rparen")
                return inner
            return self.value(name)
        if field is None and token.kind == "word" and nxt is not None and nxt.kind == "range":
            self.i += 2
            bound = self.peek()
            if bound is None or bound.kind not in ("word", "quoted"):
                raise KQLSyntaxError(f"KQL syntax error: expected a value after {nxt.text!r}")
            self.i += 1
            text = unquote(bound.text) if bound.kind == "quoted" else unescape(bound.text)
            return {"range": {unescape(token.text): {RANGE_OPS[nxt.text]: text}}}
        return self.value(field)

    def value(self, field: str | None) -> Query:
        token = self.peek()
        if token is None or token.kind not in ("word", "quoted"):
            where = f"at position {token.pos}" if token else "at the end of the query"
            raise KQLSyntaxError(f"KQL syntax error: expected a value {where}")
        self.i += 1
        if token.kind == "quoted":
            text = unquote(token.text)
            if field is None:
                return {"multi_match": {"type": "phrase", "query": text, "lenient": True}}
            return {"match_phrase": {field: text}}
        text = token.text
        if field is not None and text == "*":
            return {"exists": {"field": field}}
        if has_wildcard(text):
            return {"query_string": {"fields": [field or "*"], "query": text}}
        text = unescape(text)
        if field is None:
            return {"multi_match": {"type": "best_fields", "query": text, "lenient": True}}
        return {"match": {field: text}}


def kql_to_dsl(query: str) -> Query:
    """The query DSL for a KQL query (an empty query matches everything)."""
    return Parser(query).parse()


def lucene_to_dsl(query: str) -> Query:
    """The query DSL for Lucene syntax, as Kibana sends it: a ``query_string`` query."""
    return {"query_string": {"query": query, "analyze_wildcard": True}} if query.strip() else {"match_all": {}}
