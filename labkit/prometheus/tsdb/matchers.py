"""Label matchers (``=``, ``!=``, ``=~``, ``!~``) with Prometheus' semantics: regexes fully anchored, an absent
label equal to the empty string."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

OPS = ("=", "!=", "=~", "!~")


@lru_cache(maxsize=4096)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(f"(?:{pattern})\\Z", re.DOTALL)


@dataclass(frozen=True)
class Matcher:
    """One matcher of a selector: ``name op value``."""

    name: str
    op: str
    value: str
    _rx: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.op not in OPS:
            raise ValueError(f"unknown matcher operator {self.op!r}")
        if self.op in ("=~", "!~"):
            object.__setattr__(self, "_rx", _regex(self.value))

    def matches(self, value: str) -> bool:
        """Whether a label value (``""`` when the label is absent) satisfies the matcher."""
        if self.op == "=":
            return value == self.value
        if self.op == "!=":
            return value != self.value
        hit = self._rx.match(value) is not None  # type: ignore[union-attr]
        return hit if self.op == "=~" else not hit

    @property
    def matches_empty(self) -> bool:
        """Whether series without this label match (then the index cannot narrow by it)."""
        return self.matches("")


def match_series(matchers: list[Matcher], labels: dict[str, str]) -> bool:
    """Whether a series' labels satisfy every matcher."""
    return all(m.matches(labels.get(m.name, "")) for m in matchers)
