"""shopkit: what the shop's services share (HTTP serving, health, metrics, logs, traces, admin knobs)."""

from .app import App, HttpError, Request, Response
from .client import Upstream

__all__ = ["App", "HttpError", "Request", "Response", "Upstream"]
