"""PromQL errors as the HTTP API reports them: an ``errorType`` (``bad_data`` for a bad query, ``execution`` for
a failure while evaluating, ``timeout``) and the message."""

from __future__ import annotations


class PromQLError(Exception):
    """A query error with the API's ``errorType`` and message."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type, self.message = error_type, message


def bad_data(message: str) -> PromQLError:
    return PromQLError("bad_data", message)


def execution(message: str) -> PromQLError:
    return PromQLError("execution", message)


def unsupported(what: str) -> PromQLError:
    return PromQLError("bad_data", f"{what} is not supported by the labkit simulator")
