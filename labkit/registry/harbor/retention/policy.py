"""Tag retention rules as Harbor evaluates them: which artifacts of a repository a policy keeps.

A policy (algorithm ``or``) holds rules; each rule picks repositories (``scope_selectors``), then artifacts
by tag (``tag_selectors``, doublestar ``matches``/``excludes``; untagged artifacts per ``extras``), and its
template keeps some of those (``latestPushedK``, ``latestPulledN``, ``nDaysSinceLastPush``, ...). An artifact
is retained if any rule keeps it; every other artifact of the repository is deleted, unless a tag
immutability rule protects it. Rules without tag selectors keep nothing (as in Harbor's OR processor).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from ....core.errors import ApiError
from .. import schedule
from ..selectors import matches as doublestar

ALGORITHM = "or"
MAX_RULES = 15
DAY = 86400


@dataclass(frozen=True)
class Candidate:
    """An artifact as the rules see it (times in Unix seconds; a tag's newer push or pull counts)."""

    namespace: str  # the project
    repository: str  # the repository's name inside the project (``catalog`` for ``shop/catalog``)
    digest: str
    tags: tuple[str, ...]
    labels: tuple[str, ...]
    pushed: float
    pulled: float
    created: float

    @property
    def repo(self) -> str:
        return f"{self.namespace}/{self.repository}"


def matches(pattern: str, value: str) -> bool:
    """doublestar.Match; an empty pattern matches everything (as Harbor's selector does)."""
    return not pattern or doublestar(pattern, value)


def _untagged(selector: dict[str, Any]) -> bool:
    """Whether a tag selector takes untagged artifacts: ``extras`` ``{"untagged": ...}``, else the default."""
    default = selector.get("decoration") != "excludes"
    try:
        extras = json.loads(selector.get("extras") or "")
    except ValueError:
        return default
    return bool(extras.get("untagged", default)) if isinstance(extras, dict) else default


def tag_selected(selector: dict[str, Any], candidate: Candidate) -> bool:
    pattern = selector.get("pattern") or ""
    if not candidate.tags:
        return _untagged(selector)
    if selector.get("decoration") == "excludes":
        return any(not matches(pattern, t) for t in candidate.tags)
    return any(matches(pattern, t) for t in candidate.tags)


def repo_selected(selectors: Iterable[dict[str, Any]], repository: str) -> bool:
    """A repository (name inside its project) passes every ``repoMatches``/``repoExcludes`` selector."""
    for s in selectors:
        hit = matches(s.get("pattern") or "", repository)
        if hit == (s.get("decoration") == "repoExcludes"):
            return False
    return True


# -- rule templates ------------------------------------------------------------------------
def _param(rule: dict[str, Any], default: int) -> int:
    value = (rule.get("params") or {}).get(rule["template"])
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0 else default


def _latest(key: Callable[[Candidate], float], default: int) -> Callable[[dict[str, Any], list[Candidate]],
                                                                         list[Candidate]]:
    def keep(rule: dict[str, Any], items: list[Candidate]) -> list[Candidate]:
        return sorted(items, key=key, reverse=True)[:_param(rule, default)]
    return keep


def _within(key: Callable[[Candidate], float]) -> Callable[[dict[str, Any], list[Candidate]], list[Candidate]]:
    def keep(rule: dict[str, Any], items: list[Candidate]) -> list[Candidate]:
        cutoff = time.time() - _param(rule, 30) * DAY
        return [c for c in items if key(c) >= cutoff]
    return keep


def _active(c: Candidate) -> float:
    return max(c.pushed, c.pulled)


TEMPLATES: dict[str, tuple[str, Callable[[dict[str, Any], list[Candidate]], list[Candidate]]]] = {
    "latestPushedK": ("the most recently pushed # artifacts", _latest(lambda c: c.pushed, 10)),
    "latestPulledN": ("the most recently pulled # artifacts", _latest(lambda c: c.pulled, 10)),
    "latestActiveK": ("the most recently active # artifacts", _latest(_active, 10)),
    "nDaysSinceLastPush": ("pushed within the last # days", _within(lambda c: c.pushed)),
    "nDaysSinceLastPull": ("pulled within the last # days", _within(lambda c: c.pulled)),
    "lastXDays": ("pushed within the last # days", _within(lambda c: c.pushed)),
    "always": ("always", lambda rule, items: list(items)),
    "nothing": ("none", lambda rule, items: []),
}
_PARAMETERISED = {"latestPushedK": "COUNT", "latestPulledN": "COUNT", "nDaysSinceLastPush": "DAYS",
                  "nDaysSinceLastPull": "DAYS"}


def metadata() -> dict[str, Any]:
    """``GET /retentions/metadatas``: the rule templates and selectors the UI offers."""
    templates = [{"rule_template": name, "display_text": TEMPLATES[name][0], "action": "retain",
                  "params": [{"type": "int", "unit": unit, "required": True}] if (unit := _PARAMETERISED.get(name))
                  else []} for name in ("latestPushedK", "latestPulledN", "nDaysSinceLastPush",
                                        "nDaysSinceLastPull", "always")]
    return {"templates": templates,
            "scope_selectors": [{"display_text": "Repositories", "kind": "doublestar",
                                 "decorations": ["repoMatches", "repoExcludes"]}],
            "tag_selectors": [{"display_text": "Tags", "kind": "doublestar", "decorations": ["matches", "excludes"]}]}


def retained(rules: list[dict[str, Any]], candidates: list[Candidate]) -> set[str]:
    """The digests the rules (OR) keep among one repository's candidates."""
    keep: set[str] = set()
    for rule in rules:
        if rule.get("disabled") or not rule.get("tag_selectors"):
            continue
        items = list(candidates)
        for selector in rule["tag_selectors"]:
            items = [c for c in items if tag_selected(selector, c)]
        keep |= {c.digest for c in TEMPLATES[rule["template"]][1](rule, items)}
    return keep


def rules_for(rules: list[dict[str, Any]], repository: str) -> list[dict[str, Any]]:
    """The enabled rules whose scope selectors take ``repository`` (its name inside the project)."""
    return [r for r in rules if not r.get("disabled")
            and repo_selected((r.get("scope_selectors") or {}).get("repository") or [], repository)]


# -- validation ------------------------------------------------------------------------------
def _bad(message: str) -> ApiError:
    return ApiError(400, "BAD_REQUEST", message)


def validate(body: Any) -> dict[str, Any]:
    """A policy as posted, checked as Harbor checks it; returns it normalized (ids and priorities set)."""
    if not isinstance(body, dict):
        raise _bad("the policy must be a JSON object")
    if body.get("algorithm") != ALGORITHM:
        raise _bad("Algorithm: Algorithm must be 'or'")
    trigger, scope, rules = body.get("trigger"), body.get("scope"), body.get("rules") or []
    if not isinstance(trigger, dict) or not trigger.get("kind"):
        raise _bad("Trigger: Can not be empty")
    if not isinstance(scope, dict) or not scope.get("level") or not scope.get("ref"):
        raise _bad("Scope: Can not be empty")
    if scope["level"] != "project":
        raise _bad(f"scope {scope['level']} is not support")
    if not isinstance(rules, list) or len(rules) > MAX_RULES:
        raise _bad(f"only {MAX_RULES} rules are allowed at most")
    settings = trigger.get("settings") or {}
    if trigger["kind"] == "Schedule":
        if "cron" not in settings:
            raise _bad("Trigger.Settings.cron: Can not be empty")
        if not isinstance(settings["cron"], str):
            raise _bad("invalid cron type for scheduled tag retention: must be a string")
        problem = schedule.check(settings["cron"]) if settings["cron"] else None
        if problem:
            raise _bad(f"invalid cron string for scheduled tag retention: {settings['cron']}, error: {problem}")
    seen: dict[str, int] = {}
    out_rules = []
    for n, rule in enumerate(rules):
        out_rules.append(_rule(rule, n))
        key = json.dumps({k: v for k, v in out_rules[-1].items() if k != "id"}, sort_keys=True)
        if key in seen:
            raise ApiError(409, "CONFLICT", f"rule {n} is conflict with rule {seen[key]}")
        seen[key] = n
    return {"algorithm": ALGORITHM, "rules": out_rules,
            "trigger": {"kind": trigger["kind"], "settings": settings, "references": trigger.get("references") or {}},
            "scope": {"level": "project", "ref": int(scope["ref"])}}


def _rule(rule: Any, n: int) -> dict[str, Any]:
    if not isinstance(rule, dict):
        raise _bad(f"rule {n} must be an object")
    template = rule.get("template")
    if template not in TEMPLATES:
        raise _bad(f"Parameters: rule template {template} not found")
    if (rule.get("action") or "retain") != "retain":
        raise _bad(f"Action: {rule.get('action')} is not a retention action (only retain)")
    params = rule.get("params") or {}
    if not isinstance(params, dict):
        raise _bad("Parameters: must be an object")
    value = params.get(template)
    if template in _PARAMETERISED and value is not None:
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise _bad(f"Parameters: {template} type error")
        if value < 0:
            raise _bad(f"Parameters: {template} is less than zero")
        limit = 32767 if _PARAMETERISED[template] == "COUNT" else 20190904
        if value >= limit:
            raise _bad(f"Parameters: {template} is too large")
    tags = rule.get("tag_selectors") or []
    scopes = rule.get("scope_selectors") or {}
    for s in tags:
        _selector(s, ("matches", "excludes"))
    if not isinstance(scopes, dict):
        raise _bad("ScopeSelectors: must be an object")
    for kind, selectors in scopes.items():
        if kind != "repository":
            raise _bad(f"ScopeSelectors: {kind} selectors are not supported in a project policy")
        for s in selectors or []:
            _selector(s, ("repoMatches", "repoExcludes"))
    return {"id": n + 1, "priority": int(rule.get("priority") or 0), "disabled": bool(rule.get("disabled")),
            "action": "retain", "template": template, "params": params, "tag_selectors": tags,
            "scope_selectors": scopes}


def _selector(s: Any, decorations: tuple[str, ...]) -> None:
    if not isinstance(s, dict) or s.get("kind") != "doublestar":
        raise _bad("Kind: Kind must be 'doublestar'")
    if s.get("decoration") not in decorations:
        raise _bad(f"Decoration: {s.get('decoration')} is not one of {', '.join(decorations)}")
    if not s.get("pattern") or not isinstance(s["pattern"], str):
        raise _bad("Pattern: Can not be empty")
