"""API errors: an exception named as AWS names it, rendered as ``{"__type": ..., "message": ...}``."""

from __future__ import annotations


class ApiError(Exception):
    """A client-visible failure of one API call.

    ``code`` is the exception name from the service model (``ApplicationDoesNotExistException``);
    ``status`` is 400 for client faults and 5xx only for server faults.
    """

    def __init__(self, code: str, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
