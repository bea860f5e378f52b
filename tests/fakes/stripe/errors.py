"""Stripe's error object (https://docs.stripe.com/api/errors) as an exception the fake raises in handlers."""

from __future__ import annotations

from typing import Any

__all__ = ["ApiError", "card_error", "invalid_request", "resource_missing"]


class ApiError(Exception):
    """Rendered as ``{"error": {...}}`` with ``status``."""

    def __init__(
        self,
        status: int,
        type: str,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        decline_code: str | None = None,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.type = type
        self.message = message
        self.code = code
        self.param = param
        self.decline_code = decline_code
        self.extra = extra or {}
        self.headers = headers or {}

    def body(self, request_id: str | None = None) -> dict[str, Any]:
        err: dict[str, Any] = {"type": self.type, "message": self.message}
        if self.code is not None:
            err["code"] = self.code
            err["doc_url"] = f"https://stripe.com/docs/error-codes/{self.code.replace('_', '-')}"
        if self.decline_code is not None:
            err["decline_code"] = self.decline_code
        if self.param is not None:
            err["param"] = self.param
        if request_id is not None and self.status != 401:
            err["request_log_url"] = f"https://dashboard.stripe.com/test/logs/{request_id}"
        err.update(self.extra)
        return {"error": err}


def invalid_request(message: str, *, code: str | None = None, param: str | None = None) -> ApiError:
    return ApiError(400, "invalid_request_error", message, code=code, param=param)


def resource_missing(noun: str, ident: str, *, param: str = "id") -> ApiError:
    return ApiError(
        404, "invalid_request_error", f"No such {noun}: '{ident}'", code="resource_missing", param=param
    )


def card_error(code: str, decline_code: str | None, message: str, extra: dict[str, Any]) -> ApiError:
    return ApiError(402, "card_error", message, code=code, decline_code=decline_code, extra=extra)
