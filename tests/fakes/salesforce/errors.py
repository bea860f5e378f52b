"""Salesforce REST error bodies: a JSON array of ``{"message", "errorCode"[, "fields"]}``.

Request-level errors (session, limits, unknown field or resource, malformed query) carry no ``fields``; DML
errors on a record (required field missing, duplicate value, bad value) list the fields concerned, as
Salesforce answers them (https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/errorcodes.htm).
"""

from __future__ import annotations

from typing import Any

__all__ = ["SalesforceApiError", "dml_error"]


class SalesforceApiError(Exception):
    """An answer other than success: HTTP ``status`` and the error array Salesforce sends."""

    def __init__(self, status: int, error_code: str, message: str, *, fields: list[str] | None = None):
        super().__init__(f"{error_code}: {message}")
        self.status = status
        self.error_code = error_code
        self.message = message
        self.fields = fields

    def body(self) -> list[dict[str, Any]]:
        err: dict[str, Any] = {"message": self.message, "errorCode": self.error_code}
        if self.fields is not None:
            err["fields"] = list(self.fields)
        return [err]


def dml_error(error_code: str, message: str, fields: list[str]) -> SalesforceApiError:
    """A 400 about a record's values (``fields`` may be empty, as for DUPLICATE_VALUE)."""
    return SalesforceApiError(400, error_code, message, fields=fields)


def invalid_field(message: str) -> SalesforceApiError:
    return SalesforceApiError(400, "INVALID_FIELD", message)


def not_found() -> SalesforceApiError:
    return SalesforceApiError(404, "NOT_FOUND", "The requested resource does not exist")


def invalid_session() -> SalesforceApiError:
    return SalesforceApiError(401, "INVALID_SESSION_ID", "Session expired or invalid")


def request_limit_exceeded() -> SalesforceApiError:
    return SalesforceApiError(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")


def malformed_query(message: str) -> SalesforceApiError:
    return SalesforceApiError(400, "MALFORMED_QUERY", message)
