"""Inbound CRM webhooks: ``POST /v1/webhooks/hubspot``.

Not under API-key auth: HubSpot's v3 signature authenticates the request. The body is verified with the
client secret of each enabled HubSpot integration until one matches (that integration, and so that
organization, owns the events); no match answers 400 and nothing is stored. Each deal event becomes one
``inbound_change`` sync job (deduped on the event id); the worker applies it.
"""

from __future__ import annotations

from typing import Any, cast

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from revflow.api.problems import problem
from revflow.bootstrap import Container
from revflow.services import crm_sync, integrations
from revflow.services.ports import CrmWebhookSource, SecretUnreadable, WebhookSignatureError

__all__ = ["api"]

api = APIRouter(prefix="/v1", tags=["webhooks"])


def _receive(
    container: Container, payload: bytes, headers: dict[str, str], url: str
) -> tuple[int, dict[str, Any]]:
    with container.sessions() as session:
        candidates = integrations.enabled_integrations(session, system="hubspot")
        for integ in candidates:
            try:
                credentials = integrations.open_credentials(container.secret_box, integ)
            except SecretUnreadable:  # sealed with a key no longer configured: cannot be this one
                continue
            connector = container.crm_connector(integ, credentials)
            source = cast(CrmWebhookSource, connector)  # HubSpot's adapter is both
            try:
                changes = source.parse_webhook(payload, headers, method="POST", url=url)
            except WebhookSignatureError:
                continue
            except (ValueError, KeyError, TypeError) as exc:
                return 400, {"code": "malformed_payload", "detail": f"The webhook body is not valid: {exc}"}
            created = crm_sync.receive_changes(session, integ, changes, now=container.clock.now())
            session.commit()
            return 200, {"received": len(changes), "queued": created}
    return 400, {
        "code": "invalid_signature",
        "detail": "The webhook signature is invalid for every HubSpot integration.",
    }


@api.post("/webhooks/hubspot", summary="Receive HubSpot webhooks (verified with X-HubSpot-Signature-v3)")
async def hubspot_webhook(request: Request) -> Response:
    container: Container = request.app.state.container
    payload = await request.body()
    status, body = await run_in_threadpool(
        _receive, container, payload, dict(request.headers), str(request.url)
    )
    if status != 200:
        return problem(status, body["code"], body["detail"])
    return JSONResponse(body)
