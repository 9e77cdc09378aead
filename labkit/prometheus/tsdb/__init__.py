"""The sim Prometheus' sample storage: series in memory for queries, a write-ahead log and compacted block files on
disk (surviving a SIGKILL), retention, and Prometheus' staleness marker."""

from .matchers import Matcher, match_series
from .stale import STALE_NAN, is_stale
from .storage import SeriesData, Storage

__all__ = ["STALE_NAN", "Matcher", "SeriesData", "Storage", "is_stale", "match_series"]
