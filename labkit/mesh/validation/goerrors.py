"""Errors as istiod's validation builds them in Go: one ``error`` is either a plain message or a
hashicorp ``multierror`` (a flat list, printed ``2 errors occurred:\\n\\t* a\\n\\t* b\\n\\n``).

``join`` is Istio's ``AppendErrors`` (nil stays nil, one error stays itself, two become a list) and ``collect`` is
``multierror.Append`` (always a list, even of one). The webhook's message is ``text`` of the result.
"""

from __future__ import annotations

Error = "str | Multi | None"


class Multi(list[str]):
    """A multierror: its errors, flattened."""


def _flat(err: str | Multi | None) -> list[str]:
    if err is None:
        return []
    return list(err) if isinstance(err, Multi) else [err]


def join(err: str | Multi | None, *more: str | Multi | None) -> str | Multi | None:
    """``AppendErrors(err, more...)``: nils skipped; a second error turns the result into a multierror."""
    for e in more:
        if e is None:
            continue
        err = e if err is None else Multi(_flat(err) + _flat(e))
    return err


def collect(err: str | Multi | None, *more: str | Multi | None) -> Multi:
    """``multierror.Append(err, more...)``: always a multierror."""
    return Multi(_flat(err) + [m for e in more for m in _flat(e)])


def text(err: str | Multi) -> str:
    """The error's ``Error()`` text."""
    if isinstance(err, str):
        return err
    if len(err) == 1:
        return f"1 error occurred:\n\t* {err[0]}\n\n"
    return f"{len(err)} errors occurred:\n\t" + "\n\t".join(f"* {e}" for e in err) + "\n\n"
