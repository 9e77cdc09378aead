"""Command lines as the real CLIs parse them: cobra commands with pflag flags (kind, helm, docker, compose).

A :class:`Command` lists a subcommand's flags (its own and its parents' persistent ones) and how many
positional arguments it takes; :func:`parse` reads an argv the way pflag does (``--name value``,
``--name=value``, ``-n value``, ``-nvalue``, grouped boolean shorthands, ``--``, flags after arguments)
and raises :class:`UsageError` with pflag's and cobra's own wording for what they refuse.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any


class Failure(Exception):
    """The stand-in refuses or fails a call: ``message`` for stderr, ``code`` to exit with."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class UsageError(Failure):
    """A command line the real CLI's parser refuses (unknown flag, missing argument, bad value)."""

    def __init__(self, message: str, command: Command | None = None) -> None:
        super().__init__(message)
        self.command = command


@dataclass(frozen=True)
class Flag:
    """One flag: ``kind`` is pflag's type (bool, string, strings, stringArray, int, duration, stringToString)."""

    name: str
    kind: str = "string"
    short: str = ""
    default: Any = None

    @property
    def display(self) -> str:
        """How pflag names the flag in an "invalid argument" message."""
        return f"-{self.short}, --{self.name}" if self.short else f"--{self.name}"


def flags(spec: str) -> tuple[Flag, ...]:
    """Flags from a compact spec, one per whitespace-separated word: ``name[/short][:kind]`` (kind: string)."""
    out = []
    for word in spec.split():
        head, _, kind = word.partition(":")
        name, _, short = head.partition("/")
        out.append(Flag(name, kind or "string", short))
    return tuple(out)


@dataclass(frozen=True)
class Command:
    """A (sub)command: its path (``kind create cluster``), usage line, flags and positional argument count."""

    path: str
    usage: str
    flags: tuple[Flag, ...] = ()
    min_args: int = 0
    max_args: int | None = 0

    def flag(self, name: str) -> Flag | None:
        return next((f for f in self.flags if f.name == name), None)

    def short(self, letter: str) -> Flag | None:
        return next((f for f in self.flags if f.short == letter), None)


@dataclass
class Parsed:
    """What :func:`parse` read: flag values by name (only the flags given) and the positional arguments."""

    command: Command
    values: dict[str, Any] = field(default_factory=dict)
    args: list[str] = field(default_factory=list)

    def get(self, name: str, default: Any = None) -> Any:
        return self.values.get(name, default)

    def __getitem__(self, name: str) -> Any:
        return self.values[name]

    def __contains__(self, name: str) -> bool:
        return name in self.values


_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def go_duration(text: str) -> float:
    """Seconds in a Go duration (``5m``, ``1h30m``, ``300s``, ``0``); ValueError with Go's message otherwise."""
    if text in ("0", "+0", "-0"):
        return 0.0
    body = text.lstrip("+-")
    if not body:
        raise ValueError(f'time: invalid duration "{text}"')
    total, pos = 0.0, 0
    for match in re.finditer(r"(\d*\.?\d*)([a-zµ]*)", body):
        if match.start() != pos or not match.group(0):
            break
        number, unit = match.groups()
        if not number or number == ".":
            raise ValueError(f'time: invalid duration "{text}"')
        if not unit:
            raise ValueError(f'time: missing unit in duration "{text}"')
        if unit not in _DURATION_UNITS:
            raise ValueError(f'time: unknown unit "{unit}" in duration "{text}"')
        total += float(number) * _DURATION_UNITS[unit]
        pos = match.end()
    if pos != len(body):
        raise ValueError(f'time: invalid duration "{text}"')
    return -total if text.startswith("-") else total


def _convert(flag: Flag, text: str, previous: Any) -> Any:
    try:
        if flag.kind == "bool":
            lowered = {"1": True, "t": True, "T": True, "true": True, "TRUE": True, "True": True,
                       "0": False, "f": False, "F": False, "false": False, "FALSE": False, "False": False}
            if text not in lowered:
                raise ValueError(f'strconv.ParseBool: parsing "{text}": invalid syntax')
            return lowered[text]
        if flag.kind == "int":
            if not re.fullmatch(r"[+-]?\d+", text):
                raise ValueError(f'strconv.ParseInt: parsing "{text}": invalid syntax')
            return int(text)
        if flag.kind == "duration":
            return go_duration(text)
        if flag.kind == "strings":
            return [*(previous or []), *(text.split(",") if text else [])]
        if flag.kind == "stringArray":
            return [*(previous or []), text]
        if flag.kind == "stringToString":
            pairs = dict(previous or {})
            for item in text.split(","):
                key, sep, value = item.partition("=")
                if not sep:
                    raise ValueError(f"{item} must be formatted as key=value")
                pairs[key] = value
            return pairs
        return text
    except ValueError as err:
        raise UsageError(f'invalid argument "{text}" for "{flag.display}" flag: {err}') from None


def parse(command: Command, argv: list[str]) -> Parsed:
    """Read ``argv`` (what follows the command path) as pflag and cobra do."""
    parsed = Parsed(command)
    i = 0

    def take(flag: Flag, inline: str | None, shown: str) -> None:
        nonlocal i
        if inline is None and flag.kind != "bool":
            if i + 1 >= len(argv):
                raise UsageError(f"flag needs an argument: {shown}", command)
            i += 1
            inline = argv[i]
        parsed.values[flag.name] = _convert(flag, "true" if inline is None else inline, parsed.values.get(flag.name))

    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            parsed.args.extend(argv[i + 1:])
            break
        if arg.startswith("--") and len(arg) > 2:
            name, eq, value = arg[2:].partition("=")
            flag = command.flag(name)
            if flag is None:
                raise UsageError(f"unknown flag: --{name}", command)
            take(flag, value if eq else None, f"--{name}")
        elif arg.startswith("-") and len(arg) > 1:
            letters = arg[1:]
            for j, letter in enumerate(letters):
                flag = command.short(letter)
                if flag is None:
                    raise UsageError(f"unknown shorthand flag: '{letter}' in -{letters[j:]}", command)
                rest = letters[j + 1:]
                if flag.kind == "bool":
                    if rest.startswith("="):
                        take(flag, rest[1:], f"'{letter}' in -{letters[j:]}")
                        break
                    take(flag, None, "")
                    continue
                take(flag, (rest[1:] if rest.startswith("=") else rest) or None, f"'{letter}' in -{letter}")
                break
        else:
            parsed.args.append(arg)
        i += 1
    n = len(parsed.args)
    if n < command.min_args or (command.max_args is not None and n > command.max_args):
        raise UsageError(_args_message(command, parsed.args), command)
    return parsed


def _args_message(command: Command, args: list[str]) -> str:
    if command.max_args == 0 and args:
        return f'unknown command "{args[0]}" for "{command.path}"'
    if command.min_args == command.max_args:
        n = command.min_args
        return f'"{command.path}" requires {n} argument{"s" if n != 1 else ""}'
    if len(args) < command.min_args:
        n = command.min_args
        return f'"{command.path}" requires at least {n} argument{"s" if n != 1 else ""}'
    return f'"{command.path}" accepts at most {command.max_args} argument{"s" if command.max_args != 1 else ""}'


def subcommand(table: dict[str, Command], root: str, argv: list[str], persistent: tuple[Flag, ...] = ()
               ) -> tuple[Command, list[str]]:
    """Find the subcommand of ``root`` that ``argv`` names (cobra's lookup: the first words that are not flags).

    ``table`` maps a subcommand path without the root (``create cluster``) to its :class:`Command`;
    returns that command and the rest of argv (flags may precede the words)."""
    words: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg.startswith("-"):
            rest.append(arg)
            flag = _persistent(persistent, arg)
            if flag is not None and flag.kind != "bool" and "=" not in arg and i + 1 < len(argv):
                rest.append(argv[i + 1])
                i += 1
        elif " ".join([*words, arg]) in table or any(p.startswith(" ".join([*words, arg]) + " ") for p in table):
            words.append(arg)
        else:
            rest.extend(argv[i:])
            break
        i += 1
    key = " ".join(words)
    if key not in table:
        bad = next((a for a in argv if not a.startswith("-") and a not in words), None)
        where = " ".join([root, *words])
        if bad is None:
            raise UsageError(f'"{where}" requires a subcommand')
        raise UsageError(f'unknown command "{bad}" for "{where}"')
    return table[key], rest


def _persistent(persistent: tuple[Flag, ...], arg: str) -> Flag | None:
    if arg.startswith("--"):
        return next((f for f in persistent if f.name == arg[2:].partition("=")[0]), None)
    return next((f for f in persistent if len(arg) == 2 and f.short == arg[1]), None)
