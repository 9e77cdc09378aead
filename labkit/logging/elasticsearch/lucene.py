"""``query_string``'s Lucene syntax: terms, ``field:value``, ``"phrases"``, ``AND``/``OR``/``NOT``, ``+``/``-``,
groups, wildcards (``err*``), ranges (``[a TO b]``, ``{a TO b}``, ``>=x``), ``_exists_:field``."""

from __future__ import annotations

import re
from typing import Any

from .errors import es_error
from .query import (
    Scorer,
    bool_scorer,
    compile_query,
    field_type,
    fields_matching,
    match_field,
    pattern_matcher,
    q_exists,
    q_range,
)
from .store import Doc, Index

LEX = re.compile(r'\s*(?:(?P<op>\(|\)|\[|\]|\{|\}|:|\+|-(?=\S)|!)|(?P<phrase>"(?:[^"\\]|\\.)*")|'
                 r'(?P<cmp>[<>]=?)|(?P<word>(?:[^\s()\[\]{}:"\\<>]|\\.)+))')


class Lexer:
    def __init__(self, text: str) -> None:
        self.text, self.items, pos = text, [], 0
        while pos < len(text):
            if text[pos:].strip() == "":
                break
            m = LEX.match(text, pos)
            if not m or m.end() == pos:
                raise self.error(f"Lexical error at character {pos}")
            kind = m.lastgroup or "word"
            self.items.append((kind, m.group(kind)))
            pos = m.end()
        self.pos = 0

    def peek(self) -> tuple[str, str] | None:
        return self.items[self.pos] if self.pos < len(self.items) else None

    def take(self) -> tuple[str, str]:
        item = self.peek()
        if item is None:
            raise self.error("Encountered \"<EOF>\"")
        self.pos += 1
        return item

    def error(self, what: str) -> Exception:
        return es_error(400, "query_shard_exception", f"Failed to parse query [{self.text}]",
                        caused_by={"type": "parse_exception", "reason": f"Cannot parse '{self.text}': {what}"})


def compile_lucene(text: str, fields: list[str], default_operator: str = "or") -> Scorer:
    lex = Lexer(text)
    if not lex.items:
        return lambda d, i: None
    scorer = Parser(lex, fields, default_operator.lower() == "and").expr()
    if lex.peek() is not None:
        raise lex.error(f"Encountered \"{lex.peek()[1]}\"")  # type: ignore[index]
    return scorer


class Parser:
    def __init__(self, lex: Lexer, fields: list[str], implicit_and: bool) -> None:
        self.lex, self.fields, self.implicit_and = lex, fields, implicit_and

    def expr(self) -> Scorer:
        """Clauses joined by OR/AND/adjacency, with Lucene's occurrences (``+`` must, ``-``/NOT must not)."""
        groups: list[list[tuple[str, Scorer]]] = [[]]
        pending_or = False
        while (item := self.lex.peek()) is not None and item != ("op", ")"):
            if item == ("word", "OR") or item == ("word", "||"):
                self.lex.take()
                pending_or = True
                continue
            if item == ("word", "AND") or item == ("word", "&&"):
                self.lex.take()
                continue
            prohibits = item in (("op", "-"), ("op", "!"), ("word", "NOT"), ("op", "+"))
            if groups[-1] and (pending_or or not (self.implicit_and or prohibits or self._joined_by_and())):
                groups.append([])
            pending_or = False
            groups[-1].append(self.clause())
        if not any(groups):
            raise self.lex.error("Encountered \"<EOF>\"")
        ors = [self.combine(g) for g in groups if g]
        if len(ors) == 1:
            return ors[0]
        return lambda d, i: (sum(s for q in ors if (s := q(d, i)) is not None) or None) \
            if any(q(d, i) is not None for q in ors) else None

    def _joined_by_and(self) -> bool:
        prev = self.lex.items[self.lex.pos - 1] if self.lex.pos else None
        return prev in (("word", "AND"), ("word", "&&"))

    @staticmethod
    def combine(group: list[tuple[str, Scorer]]) -> Scorer:
        must = [q for occ, q in group if occ == "must"]
        must_not = [q for occ, q in group if occ == "not"]

        return bool_scorer(must, must_not=must_not, unscored=1.0)

    def clause(self) -> tuple[str, Scorer]:
        item = self.lex.peek()
        if item in (("op", "-"), ("op", "!"), ("word", "NOT")):
            self.lex.take()
            return "not", self.clause()[1]
        if item == ("op", "+"):
            self.lex.take()
        return "must", self.primary(self.fields)

    def primary(self, fields: list[str]) -> Scorer:
        kind, value = self.lex.take()
        if (kind, value) == ("op", "("):
            inner = self.expr()
            if self.lex.take() != ("op", ")"):
                raise self.lex.error("Encountered \"<EOF>\"")
            return inner
        if kind == "word" and self.lex.peek() == ("op", ":"):
            self.lex.take()
            if value == "_exists_":
                return q_exists({"field": self.lex.take()[1]})
            return self.primary([value.replace("\\", "")])
        if kind == "cmp":
            bound = self.lex.take()[1]
            key = {">": "gt", ">=": "gte", "<": "lt", "<=": "lte"}[value]
            return self.over(fields, lambda f: q_range({f: {key: bound}}))
        if (kind, value) in (("op", "["), ("op", "{")):
            low, to, high, close = self.lex.take()[1], self.lex.take()[1], self.lex.take()[1], self.lex.take()[1]
            if to != "TO" or close not in ("]", "}"):
                raise self.lex.error(f"Encountered \"{close}\"")
            spec: dict[str, Any] = {}
            if low != "*":
                spec["gte" if value == "[" else "gt"] = low
            if high != "*":
                spec["lte" if close == "]" else "lt"] = high
            return self.over(fields, lambda f: q_range({f: spec}))
        if kind == "phrase":
            text = value[1:-1].replace('\\"', '"')
            return self.over(fields, lambda f: match_field(f, text, phrase=True))
        if kind == "word":
            text = value.replace("\\", "")
            if "*" in text or "?" in text:
                return self.over(fields, lambda f: pattern_matcher("wildcard", {f: {"value": text.lower(),
                                                                                   "case_insensitive": True}}))
            return self.over(fields, lambda f: match_field(f, text))
        raise self.lex.error(f"Encountered \"{value}\"")

    @staticmethod
    def over(fields: list[str], build: Any) -> Scorer:
        """The clause on each field (``*``: every mapped field but sub-fields), the best score."""
        cache: dict[str, Scorer] = {}

        def score(doc: Doc, index: Index) -> float | None:
            names = fields_matching(index, fields)
            if fields == ["*"]:
                names = [n for n in names if not n.endswith(".keyword") and field_type(index, n) != "date"]
            best = None
            for n in names:
                if n not in cache:
                    cache[n] = build(n)
                s = cache[n](doc, index)
                if s is not None and (best is None or s > best):
                    best = s
            return best
        return score


__all__ = ["compile_lucene", "compile_query"]
