"""labkit: start and drive the MSA Lab workshop (``from labkit import Lab``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"
__all__ = ["Lab", "__version__"]

if TYPE_CHECKING:
    from .lab import Lab


def __getattr__(name: str) -> object:
    # Lazy, so that the lab daemon does not import pandas when it starts.
    if name == "Lab":
        from .lab import Lab

        return Lab
    raise AttributeError(name)
