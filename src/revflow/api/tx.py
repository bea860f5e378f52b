"""One request, one transaction: authentication, Idempotency-Key, the handler, audit and events commit
together or not at all.

Every ``/v1`` route uses :class:`TxRoute`. It authenticates the Bearer key, opens a session, claims the
Idempotency-Key of a POST in that session, runs the endpoint inside a savepoint and stores the response in
the same transaction. Domain errors roll back the savepoint (nothing changed) and their response is stored
with the key, as Stripe does; validation errors are not stored, so a corrected retry may reuse the key.
A request without a key needs no savepoint: a domain error rolls back its whole transaction.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from datetime import timedelta
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.routing import APIRoute
from sqlalchemy.orm import Session, SessionTransaction
from sqlalchemy.pool import QueuePool
from starlette.concurrency import run_in_threadpool

from revflow.api.problems import error_response, problem
from revflow.bootstrap import Container
from revflow.domain.errors import RevflowError
from revflow.services import idempotency
from revflow.services.context import Actor, Ctx
from revflow.services.orgs import authenticate

__all__ = ["TxRoute", "get_ctx"]

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


async def get_ctx(request: Request) -> Ctx:
    """FastAPI dependency: the request's unit of work (tenant, actor, clock, session). A coroutine, so
    FastAPI calls it in the event loop: a plain function would cost every request a worker-thread hop."""
    ctx: Ctx = request.state.ctx
    return ctx


def _slots(request: Request) -> asyncio.Semaphore:
    """At most as many requests in a transaction as the pool has connections. Without it, a burst of
    requests fills the worker threads with sessions waiting for a pooled connection while the requests
    holding connections wait for a thread, until the pool times out; waiting here costs no thread."""
    state = request.app.state
    slots: asyncio.Semaphore | None = getattr(state, "tx_slots", None)
    if slots is None:
        pool = state.container.engine.pool
        size = pool.size() if isinstance(pool, QueuePool) else 32  # the pool's kept connections
        slots = state.tx_slots = asyncio.Semaphore(max(1, min(size, 32)))
    return slots


def _unauthorized(message: str, code: str) -> Response:
    return problem(401, code, message, headers={"WWW-Authenticate": 'Bearer realm="revflow"'})


class TxRoute(APIRoute):
    def get_route_handler(self) -> Handler:
        endpoint = super().get_route_handler()

        async def handler(request: Request) -> Response:
            container: Container = request.app.state.container
            header = request.headers.get("authorization", "")
            scheme, _, secret = header.partition(" ")
            if scheme.lower() != "bearer" or not secret.strip():
                return _unauthorized(
                    "Send your secret API key as 'Authorization: Bearer <key>'.", "authentication_required"
                )
            async with _slots(request):
                session = container.sessions()
                try:
                    return await _run(request, container, session, secret.strip(), endpoint)
                finally:
                    await _finish(session.close, session)

        return handler


async def _run(
    request: Request, container: Container, session: Session, secret: str, endpoint: Handler
) -> Response:
    now = container.clock.now()
    key = await run_in_threadpool(authenticate, session, secret)
    if key is None:
        await run_in_threadpool(session.rollback)
        return _unauthorized("The API key is invalid or revoked.", "invalid_api_key")
    if key.last_used_at is None or now - key.last_used_at > timedelta(minutes=1):
        key.last_used_at = now
    request_id: str = request.state.request_id
    ctx = Ctx(
        session=session,
        org_id=key.org_id,
        actor=Actor("api_key", key.id),
        clock=container.clock,
        request_id=request_id,
    )
    request.state.ctx = ctx
    idem_key = request.headers.get("idempotency-key") if request.method == "POST" else None
    if idem_key is not None:
        if not 1 <= len(idem_key) <= 255:
            await run_in_threadpool(session.rollback)
            return problem(400, "invalid_idempotency_key", "Idempotency-Key must be 1 to 255 characters.")
        body = await request.body()
        digest = idempotency.request_hash(request.method, request.url.path, body)
        try:
            replay = await run_in_threadpool(
                idempotency.claim,
                session,
                org_id=key.org_id,
                key=idem_key,
                method=request.method,
                path=request.url.path,
                digest=digest,
                now=now,
            )
        except RevflowError as exc:
            await run_in_threadpool(session.rollback)
            return error_response(exc)
        if replay is not None:
            await run_in_threadpool(session.commit)
            return Response(
                replay.body,
                status_code=replay.status,
                media_type=_media(replay.body),
                headers={"Idempotent-Replayed": "true", "Request-Id": request_id},
            )
    # The savepoint keeps the key's claim when the handler fails; without a key a failure rolls back the
    # whole transaction instead, two round trips fewer per request.
    savepoint: SessionTransaction | None = None
    if idem_key is not None:
        savepoint = await run_in_threadpool(session.begin_nested)
    try:
        response = await endpoint(request)
    except RevflowError as exc:
        await run_in_threadpool(session.rollback if savepoint is None else savepoint.rollback)
        response = error_response(exc)
    except RequestValidationError:
        await run_in_threadpool(session.rollback)
        raise
    except BaseException:
        await run_in_threadpool(session.rollback)
        raise
    else:
        if savepoint is not None and savepoint.is_active:
            await run_in_threadpool(savepoint.commit)
    if response.status_code >= 500:  # never commit half a failure, never store it under the key
        await run_in_threadpool(session.rollback)
        return response
    if idem_key is not None:
        idempotency.store_response(
            session,
            org_id=key.org_id,
            key=idem_key,
            status=response.status_code,
            body=bytes(response.body).decode(),
        )
    await _finish(session.commit, session)
    return response


async def _finish(step: Callable[[], None], session: Session) -> None:
    """Commit or close: in a worker thread when the session holds a transaction (I/O), inline when the
    endpoint already ended it (nothing to send; a thread hop would cost more than the call)."""
    if session.in_transaction():
        await run_in_threadpool(step)
    else:
        step()


def _media(body: str) -> str:
    return (
        "application/problem+json"
        if body.startswith('{"type": "https://revflow.dev/errors/')
        else "application/json"
    )
