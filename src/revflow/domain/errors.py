"""The root of every anticipated Revflow error.

Each error carries a stable snake_case ``code`` that the API returns in its problem+json body, so clients
can branch on it. Errors specific to one area live in that area's module and subclass these.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "Conflict",
    "InvalidInput",
    "InvalidTransition",
    "NotFound",
    "RevflowError",
]


class RevflowError(Exception):
    """Root of every error Revflow anticipates. ``status`` is the HTTP status the API answers with."""

    code: str = "revflow_error"
    status: int = 400

    def __init__(self, message: str, *, code: str | None = None, details: list[dict[str, Any]] | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details or []


class InvalidInput(RevflowError):
    """The request is well-formed but its values break a business rule (422)."""

    code = "invalid_input"
    status = 422


class NotFound(RevflowError):
    """The object does not exist in the caller's organization (404)."""

    code = "resource_missing"
    status = 404


class Conflict(RevflowError):
    """The request conflicts with the object's current state (409)."""

    code = "conflict"
    status = 409


class InvalidTransition(Conflict):
    """A state machine was asked for a transition its table does not allow (409 ``invalid_state``)."""

    code = "invalid_state"
