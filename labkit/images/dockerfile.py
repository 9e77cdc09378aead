"""Dockerfile parsing for the labkit image builder: instructions, flags, exec form, variable expansion.

Follows the Dockerfile reference: parser directives (``# syntax=``, ``# escape=``) at the top, line
continuation with the escape character, comment lines (also inside a continuation), ``--flag=value``
options, the JSON (exec) form, and the shell-like word processing that ``ENV``, ``ARG``, ``COPY``, ...
apply: quotes, escapes, ``$VAR``, ``${VAR}``, ``${VAR:-word}``, ``${VAR:+word}``, ``${VAR-word}``,
``${VAR+word}``, ``${VAR:?msg}``. Heredocs (``RUN <<EOF``) are not supported and say so.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

_DIRECTIVE = re.compile(r"^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.*?)\s*$")
_FLAG = re.compile(r"^--([a-zA-Z][a-zA-Z0-9-]*)(?:=(\S*))?(?:\s+|$)")
_HEREDOC = re.compile(r"<<-?\s*['\"]?[A-Za-z_]")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class BuildError(Exception):
    """A build failure; ``str()`` is ``Dockerfile:7: message`` when it concerns one line."""

    def __init__(self, message: str, file: str = "", line: int | None = None) -> None:
        self.file, self.line, self.message = file, line, message
        super().__init__(f"{file}:{line}: {message}" if file and line else message)


@dataclass(frozen=True)
class Instruction:
    """One instruction: its keyword, ``--flags``, the argument text and where it starts."""

    line: int
    keyword: str
    args: str
    flags: dict[str, str] = field(default_factory=dict)
    original: str = ""

    @property
    def exec_form(self) -> list[str] | None:
        """The JSON array form (``["python", "-m", "app"]``), or None for the shell form."""
        text = self.args.strip()
        if not text.startswith("["):
            return None
        try:
            value = json.loads(text)
        except ValueError:
            return None  # Docker treats an invalid JSON array as the shell form
        return value if isinstance(value, list) and all(isinstance(v, str) for v in value) else None


def parse(text: str, file: str = "Dockerfile") -> list[Instruction]:
    """The instructions of a Dockerfile, with the line each one starts on."""
    lines = text.splitlines()
    escape, start = "\\", 0
    for i, raw in enumerate(lines):  # parser directives: only before any other line
        m = _DIRECTIVE.match(raw.strip())
        if not m:
            break
        if m[1].lower() == "escape":
            if m[2] not in ("\\", "`"):
                raise BuildError(f"invalid escape directive {m[2]!r}: it must be \\ or `", file, i + 1)
            escape = m[2]
        start = i + 1
    out: list[Instruction] = []
    i = start
    while i < len(lines):
        stripped = lines[i].strip()
        if not stripped or stripped.startswith("#"):
            i += 1
            continue
        first, parts = i + 1, []
        while True:
            line = lines[i].rstrip()
            continued = line.endswith(escape)
            parts.append(line[:-1] if continued else line)
            i += 1
            if not continued:
                break
            while i < len(lines) and (not lines[i].strip() or lines[i].strip().startswith("#")):
                i += 1  # comment and empty lines inside a continuation are dropped
            if i >= len(lines):
                break
        out.append(_instruction("".join(parts).strip(), first, file))
    return out


def _instruction(text: str, line: int, file: str) -> Instruction:
    keyword, _, rest = text.partition(" ") if " " in text else text.partition("\t")
    keyword, rest = keyword.upper(), rest.strip()
    flags: dict[str, str] = {}
    while m := _FLAG.match(rest):
        flags[m[1]] = m[2] if m[2] is not None else ""
        rest = rest[m.end():]
    if keyword in ("RUN", "COPY", "ADD") and _HEREDOC.search(rest):
        raise BuildError(f"{keyword} with a heredoc (<<) is not supported by the labkit image builder", file, line)
    return Instruction(line, keyword, rest, flags, text)


# -- word processing -----------------------------------------------------------------------------------


class _Lexer:
    """The Dockerfile shell-word lexer: quote removal, escapes and variable expansion."""

    def __init__(self, text: str, env: dict[str, str], escape: str = "\\") -> None:
        self.text, self.env, self.escape, self.pos = text, env, escape, 0

    def words(self, split: bool) -> list[str]:
        words: list[str] = []
        current, started = "", False
        while self.pos < len(self.text):
            ch = self.text[self.pos]
            if split and ch.isspace():
                if started:
                    words.append(current)
                current, started = "", False
                self.pos += 1
                continue
            started = True
            if ch == "'":
                end = self.text.find("'", self.pos + 1)
                end = len(self.text) if end < 0 else end
                current += self.text[self.pos + 1:end]
                self.pos = end + 1
            elif ch == '"':
                current += self._double_quoted()
            elif ch == self.escape and self.pos + 1 < len(self.text):
                current += self.text[self.pos + 1]
                self.pos += 2
            elif ch == "$":
                current += self._variable()
            else:
                current += ch
                self.pos += 1
        if started:
            words.append(current)
        return words

    def _double_quoted(self) -> str:
        out = ""
        self.pos += 1
        while self.pos < len(self.text) and self.text[self.pos] != '"':
            ch = self.text[self.pos]
            if ch == self.escape and self.pos + 1 < len(self.text) and self.text[self.pos + 1] in '"$\\`':
                out += self.text[self.pos + 1]
                self.pos += 2
            elif ch == "$":
                out += self._variable()
            else:
                out += ch
                self.pos += 1
        self.pos += 1
        return out

    def _variable(self) -> str:
        text, pos = self.text, self.pos + 1
        if pos < len(text) and text[pos] == "{":
            end = _matching_brace(text, pos)
            self.pos = end + 1
            return self._braced(text[pos + 1:end])
        m = _NAME.match(text, pos)
        if not m:
            self.pos = pos
            return "$"
        self.pos = m.end()
        return self.env.get(m[0], "")

    def _braced(self, body: str) -> str:
        m = _NAME.match(body)
        if not m:
            raise ValueError(f"bad substitution ${{{body}}}")
        name, op, word = m[0], "", body[m.end():]
        for candidate in (":-", ":+", ":?", "-", "+", "?"):
            if word.startswith(candidate):
                op, word = candidate, word[len(candidate):]
                break
        if word and not op:
            raise ValueError(f"unsupported substitution ${{{body}}}")
        value = self.env.get(name)
        is_set, non_empty = value is not None, bool(value)
        expanded = lambda: "".join(_Lexer(word, self.env, self.escape).words(split=False))  # noqa: E731
        if op == ":-":
            return value if non_empty else expanded()  # type: ignore[return-value]
        if op == "-":
            return value if is_set else expanded()  # type: ignore[return-value]
        if op == ":+":
            return expanded() if non_empty else ""
        if op == "+":
            return expanded() if is_set else ""
        if op in (":?", "?") and not (non_empty if op == ":?" else is_set):
            raise ValueError(f"{name}: {expanded() or 'parameter not set'}")
        return value or ""


def _matching_brace(text: str, start: int) -> int:
    depth = 0
    for i in range(start, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
    raise ValueError(f"missing '}}' in {text[start - 1:]!r}")


def words(text: str, env: dict[str, str]) -> list[str]:
    """Split ``text`` into words the way the Dockerfile does, removing quotes and expanding variables."""
    return _Lexer(text, env).words(split=True)


def expand(text: str, env: dict[str, str]) -> str:
    """``text`` as one word: quotes removed, variables expanded (WORKDIR, USER, FROM, ...)."""
    return "".join(_Lexer(text, env).words(split=False))


def key_values(inst: Instruction, env: dict[str, str]) -> list[tuple[str, str]]:
    """``ENV``/``LABEL`` pairs: ``k=v k2="v 2"``, or the legacy ``ENV key the value``.

    Every value is expanded with the variables as they were before this instruction."""
    items = words(inst.args, env)
    if items and "=" not in items[0]:
        if inst.keyword != "ENV" or len(items) < 2:
            raise ValueError(f"{inst.keyword} needs key=value pairs")
        key, _, rest = inst.args.strip().partition(" ")
        return [(key, expand(rest.strip(), env))]
    pairs = []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"{inst.keyword} needs key=value pairs, got {item!r}")
        pairs.append((key, value))
    return pairs
