"""Errors as RFC 9457 ``application/problem+json`` with a stable snake_case ``code``."""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from revflow.api.schemas import DOMAIN_VALIDATION_CODES
from revflow.domain.errors import RevflowError

__all__ = ["install_handlers", "problem", "validation_problem"]

PROBLEM_JSON = "application/problem+json"

_HTTP_CODES = {
    400: "bad_request",
    401: "authentication_required",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "request_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    500: "internal_error",
}


def problem(
    status: int,
    code: str,
    message: str,
    details: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """A problem+json response: type, title, status, code, detail and per-field ``errors``."""
    body = {
        "type": f"https://revflow.dev/errors/{code}",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "code": code,
        "detail": message,
        "errors": details or [],
    }
    return Response(json.dumps(body), status_code=status, media_type=PROBLEM_JSON, headers=headers)


def error_response(exc: RevflowError) -> Response:
    return problem(exc.status, exc.code, exc.message, exc.details)


def _loc(loc: tuple[Any, ...]) -> str:
    parts = [p for p in loc if p not in ("body", "query", "path", "header")]
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "body"


def validation_problem(exc: RequestValidationError) -> Response:
    errors = exc.errors()
    not_an_object = any(
        e.get("type") == "model_attributes_type" and tuple(e.get("loc", ())) == ("body",) for e in errors
    )
    if not_an_object or any(e.get("type") == "json_invalid" for e in errors):
        return problem(
            400,
            "invalid_json",
            "The request body must be a JSON object.",
            [{"field": "body", "code": "invalid_json", "message": str(errors[0].get("msg"))}],
        )
    details = [
        {"field": _loc(tuple(e.get("loc", ()))), "code": str(e.get("type")), "message": str(e.get("msg"))}
        for e in errors
    ]
    first = details[0]
    codes = {d["code"] for d in details}
    code = (
        first["code"] if len(codes) == 1 and first["code"] in DOMAIN_VALIDATION_CODES else "validation_error"
    )
    return problem(422, code, f"Invalid request: {first['field']}: {first['message']}", details)


def install_handlers(app: FastAPI) -> None:
    """Map every error the API can raise to problem+json."""

    @app.exception_handler(RevflowError)
    async def _revflow(_: Request, exc: RevflowError) -> Response:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> Response:
        return validation_problem(exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> Response:
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        return problem(exc.status_code, code, str(exc.detail), headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _crash(_: Request, exc: Exception) -> Response:
        return problem(
            500, "internal_error", "Something went wrong on our side; the request changed nothing."
        )
