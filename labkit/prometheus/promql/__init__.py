"""PromQL for the sim Prometheus: ``parse`` (the ``promql-parser`` AST), ``Engine`` (instant and range queries
over a ``Storage`` with Prometheus 2.42's semantics) and ``PromQLError`` (the API's ``errorType`` and message)."""

from .engine import Engine, parse, selector_matchers
from .errors import PromQLError

__all__ = ["Engine", "PromQLError", "parse", "selector_matchers"]
