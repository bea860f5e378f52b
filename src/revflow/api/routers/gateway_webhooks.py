"""Inbound gateway webhooks: ``POST /v1/webhooks/stripe`` (and ``/v1/webhooks/sandbox``).

Not under API-key auth: the gateway's signature authenticates the request. The signature is verified by
the configured gateway (``parse_webhook``) before anything is read; a bad or stale one answers 400 and
nothing is stored. Each event is stored once per gateway event id and applied in the same transaction.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from revflow.api.problems import problem
from revflow.bootstrap import Container
from revflow.services import gateway_events
from revflow.services.ports import GatewayEvent, WebhookSignatureError

__all__ = ["api"]

api = APIRouter(prefix="/v1", tags=["webhooks"])


def _store(container: Container, event: GatewayEvent) -> str:
    with container.sessions() as session:
        return gateway_events.receive(
            session, gateway=container.gateway.name, event=event, now=container.clock.now()
        )


async def _receive(name: str, request: Request) -> Response:
    container: Container = request.app.state.container
    if container.gateway.name != name:
        return problem(404, "gateway_not_configured", f"The {name} gateway is not the one configured.")
    payload = await request.body()
    try:
        event = container.gateway.parse_webhook(payload, dict(request.headers))
    except WebhookSignatureError as exc:
        return problem(400, "invalid_signature", f"The webhook signature is invalid: {exc}")
    except (ValueError, KeyError, TypeError) as exc:
        return problem(400, "malformed_payload", f"The webhook body is not a valid event: {exc}")
    status = await run_in_threadpool(_store, container, event)
    return JSONResponse({"received": True, "event_id": event.id, "status": status})


@api.post("/webhooks/stripe", summary="Receive a Stripe webhook (verified with Stripe-Signature)")
async def stripe_webhook(request: Request) -> Response:
    return await _receive("stripe", request)


@api.post("/webhooks/sandbox", summary="Receive a sandbox gateway webhook")
async def sandbox_webhook(request: Request) -> Response:
    return await _receive("sandbox", request)
