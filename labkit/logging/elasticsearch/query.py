"""The query DSL, compiled to a function of a document: its score when it matches, None when it does not.

Text fields are analysed as the ``standard`` analyzer does (lower-cased word tokens); ``keyword`` fields and
``x.keyword`` sub-fields compare whole values; ``date`` fields compare epoch milliseconds (date math in ``range``).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Sequence
from typing import Any

from . import datemath
from . import vectors as vec
from .errors import not_supported, parsing
from .fields import comparable, field_type, tokens, values
from .store import Doc, Index

Scorer = Callable[[Doc, Index], float | None]  # may carry a ``vector`` (see ``vectors``)


def fields_matching(index: Index, patterns: list[str]) -> list[str]:
    out = []
    for p in patterns:
        p = p.split("^")[0]
        out += [f for f in index.types if fnmatch.fnmatchcase(f, p)] if "*" in p else [p]
    return out


def compile_query(q: dict[str, Any] | None) -> Scorer:
    if not q:
        return vec.attach(lambda d, i: 1.0, vec.everything(1.0))
    if not isinstance(q, dict) or len(q) != 1:
        raise parsing("[_na] query malformed, must start with start_object" if not isinstance(q, dict)
                      else f"[{next(iter(q))}] malformed query, expected [END_OBJECT] but found [FIELD_NAME]")
    kind, body = next(iter(q.items()))
    builder = BUILDERS.get(kind)
    if builder is None:
        if kind in KNOWN_UNSUPPORTED:
            raise not_supported(f"the [{kind}] query")
        raise parsing(f"unknown query [{kind}]", 1, 10)
    return builder(body)


def single_field(kind: str, body: Any, key: str = "value") -> tuple[str, dict[str, Any]]:
    if not isinstance(body, dict) or not body:
        raise parsing(f"[{kind}] query malformed, no start_object after query name")
    (name, spec), *rest = body.items()
    if rest:
        raise parsing(f"[{kind}] query doesn't support multiple fields, found [{name}] and [{rest[0][0]}]")
    return name, spec if isinstance(spec, dict) else {key: spec}


def term_matcher(name: str, wanted: list[Any], case_insensitive: bool = False) -> Scorer:
    def score(doc: Doc, index: Index) -> float | None:
        kind = field_type(index, name)
        vals = values(doc, index, name)
        if kind in ("text", "match_only_text"):
            have = {t for v in vals for t in tokens(v)}
            return 1.0 if any(str(w) in have for w in wanted) else None
        targets = {comparable(w, kind) for w in wanted}
        if case_insensitive:
            targets = {str(t).lower() for t in targets}
            return 1.0 if any(str(comparable(v, kind)).lower() in targets for v in vals) else None
        return 1.0 if any(comparable(v, kind) in targets for v in vals) else None
    return vec.attach(score, vec.terms(name, wanted, case_insensitive))


def q_term(body: Any) -> Scorer:
    name, spec = single_field("term", body)
    return boosted(term_matcher(name, [spec.get("value")], bool(spec.get("case_insensitive"))), spec)


def q_terms(body: Any) -> Scorer:
    body = {k: v for k, v in body.items() if k != "boost"}
    if len(body) != 1:
        raise parsing("[terms] query does not support multiple fields")
    name, wanted = next(iter(body.items()))
    if not isinstance(wanted, list):
        raise parsing("[terms] query does not support [" + name + "]")
    return term_matcher(name, wanted)


def match_field(name: str, query: Any, operator: str = "or", phrase: bool = False, slop: int = 0,
                minimum: Any = None) -> Scorer:
    wanted = tokens(query)

    def score(doc: Doc, index: Index) -> float | None:
        kind = field_type(index, name) or ("text" if not name.endswith(".keyword") else "keyword")
        vals = values(doc, index, name)
        if kind not in ("text", "match_only_text"):
            target = comparable(query, kind)
            return 1.0 if any(comparable(v, kind) == target for v in vals) else None
        if not wanted:
            return None
        best = 0.0
        for v in vals:
            have = tokens(v)
            if phrase:
                if contains_phrase(have, wanted, slop):
                    best = max(best, float(len(wanted)))
                continue
            hits = sum(1 for w in wanted if w in have)
            need = len(wanted) if operator.lower() == "and" else min_should(minimum, len(wanted))
            if hits >= need:
                best = max(best, hits / len(wanted) + hits * 0.1)
        return best or None
    return vec.attach(score, vec.equals(name, query))


def contains_phrase(have: list[str], wanted: list[str], slop: int = 0) -> bool:
    n = len(wanted)
    for i, t in enumerate(have):
        if t != wanted[0]:
            continue
        pos, ok = i, True
        for w in wanted[1:]:
            window = have[pos + 1: pos + 2 + slop]
            if w not in window:
                ok = False
                break
            pos = pos + 1 + window.index(w)
        if ok and n:
            return True
    return False


def min_should(spec: Any, n: int) -> int:
    if spec is None:
        return 1
    text = str(spec)
    if text.endswith("%"):
        pct = int(text[:-1])
        return max(1, int(n * pct / 100)) if pct > 0 else max(1, n + int(n * pct / 100))
    k = int(text)
    return k if k > 0 else max(1, n + k)


def q_match(body: Any) -> Scorer:
    name, spec = single_field("match", body, "query")
    unknown = set(spec) - {"query", "operator", "minimum_should_match", "boost", "lenient", "analyzer",
                           "zero_terms_query", "auto_generate_synonyms_phrase_query"}
    if unknown:
        raise parsing(f"[match] query does not support [{sorted(unknown)[0]}]")
    return boosted(match_field(name, spec.get("query"), spec.get("operator", "or"),
                               minimum=spec.get("minimum_should_match")), spec)


def q_match_phrase(body: Any) -> Scorer:
    name, spec = single_field("match_phrase", body, "query")
    return boosted(match_field(name, spec.get("query"), phrase=True, slop=int(spec.get("slop", 0))), spec)


def q_multi_match(body: Any) -> Scorer:
    patterns = body.get("fields") or ["*"]
    kind = body.get("type", "best_fields")
    if kind not in ("best_fields", "most_fields", "phrase", "cross_fields"):
        raise not_supported(f"multi_match type [{kind}]")
    query, operator = body.get("query"), body.get("operator", "or")

    def score(doc: Doc, index: Index) -> float | None:
        names = [f for f in fields_matching(index, patterns) if field_type(index, f) != "date" or "*" not in
                 "".join(patterns)]
        scores = [s for f in names if (s := match_field(f, query, operator, phrase=kind == "phrase")(doc, index))]
        if not scores:
            return None
        return sum(scores) if kind == "most_fields" else max(scores)
    return boosted(score, body)


def q_range(body: Any) -> Scorer:
    name, spec = single_field("range", body)
    bounds = {k: v for k, v in spec.items() if k in ("gt", "gte", "lt", "lte", "from", "to")}
    unknown = set(spec) - {"gt", "gte", "lt", "lte", "from", "to", "format", "time_zone", "boost", "relation",
                           "include_lower", "include_upper"}
    if unknown:
        raise parsing(f"[range] query does not support [{sorted(unknown)[0]}]")
    if "time_zone" in spec and spec["time_zone"] not in ("Z", "UTC", "+00:00"):
        raise not_supported("a range query's time_zone other than UTC")
    cache: dict[str, Any] = {}

    def bound(key: str, kind: str) -> Any:
        if (key, kind) not in cache:
            v = bounds[key]
            cache[(key, kind)] = (datemath.parse(v, round_up=key in ("lte", "gt")) if kind == "date"
                                  else comparable(v, kind))
        return cache[(key, kind)]

    def score(doc: Doc, index: Index) -> float | None:
        kind = field_type(index, name) or "keyword"
        for raw in values(doc, index, name):
            v = comparable(raw, kind)
            if v is None:
                continue
            if kind in ("text", "match_only_text", "keyword"):
                v = str(v)
            if "gt" in bounds and not v > bound("gt", kind):
                continue
            if "gte" in bounds and not v >= bound("gte", kind):
                continue
            if "lt" in bounds and not v < bound("lt", kind):
                continue
            if "lte" in bounds and not v <= bound("lte", kind):
                continue
            return 1.0
        return None
    return boosted(vec.attach(score, vec.within(name, bounds, bound)), spec)


def q_exists(body: Any) -> Scorer:
    name = body.get("field")
    if not name:
        raise parsing("[exists] must be provided with a [field]")

    def score(doc: Doc, index: Index) -> float | None:
        if "*" in name:
            return 1.0 if any(fnmatch.fnmatchcase(f, name) for f in doc.fields) else None
        if values(doc, index, name):
            return 1.0
        prefix = name + "."
        return 1.0 if any(f.startswith(prefix) for f in doc.fields) else None
    return vec.attach(score, vec.exists(name))


def pattern_matcher(kind: str, body: Any) -> Scorer:
    name, spec = single_field(kind, body)
    value = str(spec.get("value", spec.get("wildcard", "")))
    insensitive = bool(spec.get("case_insensitive"))
    glob = value + "*" if kind == "prefix" else value
    regex = re.compile(fnmatch.translate(glob), re.IGNORECASE if insensitive else 0)

    def score(doc: Doc, index: Index) -> float | None:
        ftype = field_type(index, name)
        for v in values(doc, index, name):
            candidates = tokens(v) if ftype in ("text", "match_only_text") else [str(v)]
            if any(regex.match(c) for c in candidates):
                return 1.0
        return None
    return boosted(score, spec)


def bool_scorer(must: Sequence[Scorer], should: Sequence[Scorer] = (), filt: Sequence[Scorer] = (),
                must_not: Sequence[Scorer] = (), need: int = 0, unscored: float = 0.0) -> Scorer:
    """A bool query's matching and scoring: every ``must`` and ``filt`` matches, no ``must_not`` does, at least
    ``need`` of ``should``; the score sums the scoring clauses' (``unscored`` when there are none)."""

    def score(doc: Doc, index: Index) -> float | None:
        total = 0.0
        for q in must:
            s = q(doc, index)
            if s is None:
                return None
            total += s
        for q in filt:
            if q(doc, index) is None:
                return None
        for q in must_not:
            if q(doc, index) is not None:
                return None
        hits = 0
        for q in should:
            s = q(doc, index)
            if s is not None:
                hits += 1
                total += s
        if hits < need:
            return None
        return total if (must or should) else unscored
    return vec.attach(score, vec.boolean(must, should, filt, must_not, need, unscored),
                      vec.restricting([*must, *filt], must_not))


def q_bool(body: Any) -> Scorer:
    unknown = set(body) - {"must", "should", "filter", "must_not", "minimum_should_match", "boost"}
    if unknown:
        raise parsing(f"[bool] query does not support [{sorted(unknown)[0]}]")

    def many(key: str) -> list[Scorer]:
        v = body.get(key, [])
        return [compile_query(x) for x in (v if isinstance(v, list) else [v])]

    must, should, filt, must_not = many("must"), many("should"), many("filter"), many("must_not")
    need = min_should(body["minimum_should_match"], len(should)) if "minimum_should_match" in body else \
        (1 if should and not (must or filt) else 0)

    return boosted(bool_scorer(must, should, filt, must_not, need), body)


def q_ids(body: Any) -> Scorer:
    wanted = set(body.get("values", []))
    return lambda d, i: 1.0 if d.id in wanted else None


def q_constant_score(body: Any) -> Scorer:
    inner = compile_query(body.get("filter"))
    boost = float(body.get("boost", 1.0))
    return vec.attach(lambda d, i: boost if inner(d, i) is not None else None, vec.constant(inner, boost),
                      vec.restricting([inner], []))


def q_query_string(body: Any) -> Scorer:
    from .lucene import compile_lucene
    unknown = set(body) - {"query", "default_field", "fields", "default_operator", "analyze_wildcard", "boost",
                           "lenient", "time_zone", "allow_leading_wildcard"}
    if unknown:
        raise parsing(f"[query_string] unknown token [VALUE_STRING] after [{sorted(unknown)[0]}]")
    fields = body.get("fields") or [body.get("default_field", "*")]
    return compile_lucene(str(body.get("query", "")), fields, body.get("default_operator", "or"))


def boosted(scorer: Scorer, spec: dict[str, Any]) -> Scorer:
    boost = float(spec.get("boost", 1.0)) if isinstance(spec, dict) else 1.0
    if boost == 1.0:
        return scorer
    return vec.attach(lambda d, i: None if (s := scorer(d, i)) is None else s * boost, vec.scaled(scorer, boost),
                      getattr(scorer, "prefilter", None))


BUILDERS: dict[str, Callable[[Any], Scorer]] = {
    "match_all": lambda b: vec.attach(lambda d, i: float(b.get("boost", 1.0)) if isinstance(b, dict) else 1.0,
                                      vec.everything(float(b.get("boost", 1.0)) if isinstance(b, dict) else 1.0)),
    "match_none": lambda b: vec.attach(lambda d, i: None, vec.nothing),
    "match": q_match, "match_phrase": q_match_phrase, "multi_match": q_multi_match,
    "term": q_term, "terms": q_terms, "range": q_range, "exists": q_exists,
    "prefix": lambda b: pattern_matcher("prefix", b), "wildcard": lambda b: pattern_matcher("wildcard", b),
    "bool": q_bool, "ids": q_ids, "constant_score": q_constant_score, "query_string": q_query_string,
}
KNOWN_UNSUPPORTED = {"fuzzy", "regexp", "nested", "has_child", "has_parent", "geo_distance", "geo_bounding_box",
                     "more_like_this", "script", "script_score", "function_score", "dis_max", "boosting",
                     "simple_query_string", "match_bool_prefix", "match_phrase_prefix", "intervals", "span_term",
                     "combined_fields", "knn", "percolate", "rank_feature", "distance_feature", "pinned", "wrapper"}
