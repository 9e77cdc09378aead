"""The base of a product's notebook view, ``lab.<product>`` (each product's ``lab.py``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..lab import Lab


class ProductView:
    """Reads and drives one product through its own protocol, the same on every backend.

    Views import pandas and the clients they use inside their methods, so that importing the product list
    (which the lab daemon does) stays cheap.
    """

    def __init__(self, lab: Lab) -> None:
        self.lab = lab

    def repair(self) -> list[str]:
        """Undo what an interrupted lesson may have left (a stopped node, a server in maintenance, ...), cheaply
        when there is nothing to undo; ``lab.chapter(n)`` calls it first. Returns what it repaired."""
        return []
