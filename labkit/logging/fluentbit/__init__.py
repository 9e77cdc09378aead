"""A Fluent Bit for the sim: one collector per node, run from a real Fluent Bit configuration (``collector``)."""

from .collector import Collector
from .config import ConfigError

__all__ = ["Collector", "ConfigError"]
