"""Reading a CI YAML file as GitLab does: YAML 1.1 with anchors and merge keys, the ``!reference`` tag, syntax
errors worded as Ruby's Psych words them (``(<unknown>): … at line L column C``), and the line of every top-level
key and of the keys one level below (so an error about a job can point at its line)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

_Loader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class Reference:
    """A ``!reference [job, key, …]`` tag, resolved after ``extends``."""

    path: tuple[str, ...]


class CiYamlLoader(_Loader):  # type: ignore[misc, valid-type]
    """The safe loader plus ``!reference``."""


def _reference(loader: yaml.Loader, node: yaml.Node) -> Reference:
    if not isinstance(node, yaml.SequenceNode):
        raise yaml.constructor.ConstructorError(None, None, "!reference takes a sequence", node.start_mark)
    return Reference(tuple(str(item) for item in loader.construct_sequence(node, deep=True)))


CiYamlLoader.add_constructor("!reference", _reference)


class YamlSyntaxError(ValueError):
    """The file is not YAML; the message is Psych's, as GitLab shows it."""

    def __init__(self, message: str, line: int | None):
        super().__init__(message)
        self.line = line


@dataclass
class YamlDoc:
    """A loaded file: its data and where its keys are (1-based lines)."""

    data: Any
    path: str
    lines: dict[tuple[str, ...], int] = field(default_factory=dict)


def psych_message(err: yaml.YAMLError, text: str = "") -> tuple[str, int | None]:
    """Psych's wording of a libyaml error (``(<unknown>): <problem> <context> at line L column C``) and the
    line of the problem itself."""
    if isinstance(err, yaml.composer.ComposerError) and err.problem and err.problem.startswith("found undefined alias"):
        # not a syntax error to Psych: the loader's own error (Psych 5, the Ruby GitLab runs on)
        mark = err.problem_mark
        alias = re.match(r"\*([^\s,\[\]{}]+)", text[mark.index:]) if mark is not None else None
        name = alias.group(1) if alias else str(err.problem).removeprefix("found undefined alias").strip(" '")
        line = mark.line + 1 if mark is not None else None
        return f"An alias referenced an unknown anchor: {name}", line
    if isinstance(err, yaml.MarkedYAMLError):
        mark = err.context_mark or err.problem_mark
        text = " ".join(p for p in (err.problem, err.context) if p)
        # Psych names the context's place; the problem's is where the attendee has to look
        where = err.problem_mark or mark
        line = where.line + 1 if where is not None else None
        if mark is not None:
            return f"(<unknown>): {text} at line {mark.line + 1} column {mark.column + 1}", line
        return f"(<unknown>): {text}", line
    return f"(<unknown>): {err}", None


def _key_lines(node: yaml.Node | None) -> dict[tuple[str, ...], int]:
    lines: dict[tuple[str, ...], int] = {}
    if not isinstance(node, yaml.MappingNode):
        return lines
    for key, value in node.value:
        if not isinstance(key, yaml.ScalarNode):
            continue
        lines[(key.value,)] = key.start_mark.line + 1
        if isinstance(value, yaml.MappingNode):
            for sub, _ in value.value:
                if isinstance(sub, yaml.ScalarNode):
                    lines[(key.value, sub.value)] = sub.start_mark.line + 1
    return lines


def load(text: str, path: str = ".gitlab-ci.yml") -> YamlDoc:
    """The file's data and key lines; ``YamlSyntaxError`` with Psych's message when it is not YAML."""
    try:
        data = yaml.load(text, Loader=CiYamlLoader)
        node = yaml.compose(text, Loader=CiYamlLoader)
    except yaml.YAMLError as err:
        message, line = psych_message(err, text)
        if line is not None:  # a problem at the end of the stream is on the last line
            line = max(1, min(line, len(text.splitlines())))
        raise YamlSyntaxError(message, line) from err
    return YamlDoc(data, path, _key_lines(node))


def dump(data: Any) -> str:
    """YAML as GitLab's ``merged_yaml`` shows it (``---`` first, keys in file order)."""

    def plain(value: Any) -> Any:
        if isinstance(value, Reference):
            return list(value.path)
        if isinstance(value, dict):
            return {str(k): plain(v) for k, v in value.items()}
        if isinstance(value, list):
            return [plain(v) for v in value]
        return value

    return "---\n" + yaml.safe_dump(plain(data), sort_keys=False, default_flow_style=False, allow_unicode=True)
