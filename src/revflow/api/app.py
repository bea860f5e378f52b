"""The FastAPI application."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

import revflow
from revflow.api.card_guard import CardDataGuard
from revflow.api.problems import install_handlers, problem
from revflow.api.routers import (
    account,
    alerts,
    catalog,
    credit_notes,
    crm_webhooks,
    customers,
    discounts,
    entity_mappings,
    gateway_webhooks,
    integrations,
    invoices,
    organization,
    payments,
    quotes,
    subscriptions,
    test_clocks,
    usage,
    webhooks,
)
from revflow.bootstrap import Container

__all__ = ["create_app"]

DESCRIPTION = """Revflow's REST API. Authenticate with `Authorization: Bearer <secret key>`.
Amounts are integers in the currency's minor unit; errors are `application/problem+json` with a stable `code`.
See docs/api.md for the conventions."""

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class BodyLimit:
    """Answers 413 ``request_too_large`` to bodies over ``limit`` bytes, declared or streamed."""

    def __init__(self, app: ASGIApp, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._too_large(scope, receive, send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise _TooLarge
            return message

        try:
            await self.app(scope, limited, send)
        except _TooLarge:
            await self._too_large(scope, receive, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        # built when needed: a problem response costs more than the rest of this middleware
        await problem(413, "request_too_large", f"The request body exceeds {self.limit} bytes.")(
            scope, receive, send
        )


class _TooLarge(Exception):
    pass


class RequestId:
    """Gives every request an id (the client's ``X-Request-Id`` or a new one), echoed as ``Request-Id``."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")[:64]
        request_id = given or uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id

        async def stamped(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"request-id"]
                message["headers"] = [*headers, (b"request-id", request_id.encode("latin-1"))]
            await send(message)

        await self.app(scope, receive, stamped)


def create_app(container: Container, *, start_worker: bool = False) -> FastAPI:
    """Build the API around ``container``; with ``start_worker`` the background worker runs in-process."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        worker = None
        if start_worker:
            from revflow.jobs.worker import Worker

            worker = Worker(container)
            worker.start_thread()
        try:
            yield
        finally:
            if worker is not None:
                worker.stop()

    app = FastAPI(
        title="Revflow",
        version=revflow.__version__,
        description=DESCRIPTION,
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.container = container
    install_handlers(app)
    for module in (
        usage,  # first: routes are matched in order and usage events are the highest-rate requests
        customers,
        invoices,
        credit_notes,
        catalog,
        subscriptions,
        discounts,
        test_clocks,
        account,
        quotes,
        alerts,
        organization,
        payments,
        gateway_webhooks,
        webhooks,
        entity_mappings,
        integrations,
        crm_webhooks,
    ):
        app.include_router(module.api)

    @app.get("/healthz", tags=["operations"], summary="Liveness")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"], summary="Readiness: the database answers")
    async def readyz() -> Response:
        def ping() -> None:
            with container.engine.connect() as conn:
                conn.execute(text("SELECT 1"))

        try:
            await run_in_threadpool(ping)
        except Exception:
            return problem(503, "database_unavailable", "The database does not answer.")
        return Response('{"status": "ready"}', media_type="application/json")

    @app.get("/metrics", tags=["operations"], summary="Prometheus metrics")
    async def metrics() -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST

        from revflow.api.metrics import render

        try:
            body = await run_in_threadpool(render, container)
        except Exception:
            return problem(503, "database_unavailable", "The database does not answer.")
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    app.add_middleware(CardDataGuard)  # inside BodyLimit: reads at most max_body_bytes
    app.add_middleware(BodyLimit, limit=container.settings.max_body_bytes)
    app.add_middleware(RequestId)
    return app
