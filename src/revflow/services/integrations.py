"""Integrations: the CRMs an organization connects, with sealed credentials, an owner and settings.

Credentials are write-only: they are sealed with the SecretBox (``REVFLOW_SECRET_KEY``) on the way in and
opened only to build the adapter (:func:`open_credentials`). Creating an integration also creates its
recurring ``poll`` sync job, so inbound changes are polled as a fallback to webhooks, and its recurring
``reconcile`` job (Revflow compared with the CRM, see ``crm_reconciliation``).
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select

from revflow.domain.errors import InvalidInput
from revflow.domain.ids import new_id
from revflow.services.context import Ctx
from revflow.services.pagination import filtered
from revflow.services.ports import SecretBox
from revflow.services.recorder import diff, record
from revflow.storage.connector_models import Integration, SyncJob

__all__ = [
    "CREDENTIAL_FIELDS",
    "DEFAULT_SETTINGS",
    "SYSTEMS",
    "create_integration",
    "delete_integration",
    "open_credentials",
    "update_integration",
]

SYSTEMS = ("hubspot", "salesforce")

#: Credentials each system needs (required, optional).
CREDENTIAL_FIELDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "hubspot": (("access_token",), ("client_secret",)),
    "salesforce": (("username", "password"), ("security_token", "domain", "instance_url", "session_id")),
}

DEFAULT_SETTINGS: dict[str, Any] = {
    #: Upgrades coming from the CRM: invoice the proration at once (Stripe's ``always_invoice``).
    "proration_behavior": "always_invoice",
    #: Seconds between two polls of the CRM's changes.
    "poll_interval_seconds": 300,
    #: Where a customer-success notice goes when a CRM deal upgrades a subscription (None: nowhere).
    "customer_success_email": None,
    #: Push customers/subscriptions to the CRM when they change.
    "push": True,
    #: Hours between two reconciliations (Revflow vs the CRM, every mapped object).
    "reconcile_interval_hours": 24,
}
_PRORATIONS = ("always_invoice", "create_prorations", "none")


def _snapshot(i: Integration) -> dict[str, Any]:
    return {
        "system": i.system,
        "description": i.description,
        "owner": i.owner,
        "enabled": i.enabled,
        "settings": dict(i.settings),
    }


def _check_credentials(system: str, credentials: dict[str, str]) -> dict[str, str]:
    required, optional = CREDENTIAL_FIELDS[system]
    missing = [f for f in required if not credentials.get(f)]
    unknown = [f for f in credentials if f not in required + optional]
    if missing or unknown:
        details = [{"field": f"credentials.{f}", "code": "missing"} for f in missing]
        details += [{"field": f"credentials.{f}", "code": "unknown"} for f in unknown]
        raise InvalidInput(
            f"{system} credentials need {', '.join(required)} (optional: {', '.join(optional)})",
            code="invalid_credentials",
            details=details,
        )
    return {k: str(v) for k, v in credentials.items() if v is not None}


def _check_settings(settings: dict[str, Any]) -> dict[str, Any]:
    merged = {**DEFAULT_SETTINGS, **settings}
    if merged["proration_behavior"] not in _PRORATIONS:
        raise InvalidInput(
            f"proration_behavior must be one of {', '.join(_PRORATIONS)}",
            details=[{"field": "settings.proration_behavior", "code": "invalid"}],
        )
    interval = merged["poll_interval_seconds"]
    if not isinstance(interval, int) or isinstance(interval, bool) or interval < 10:
        raise InvalidInput(
            "poll_interval_seconds must be an integer of at least 10",
            details=[{"field": "settings.poll_interval_seconds", "code": "invalid"}],
        )
    hours = merged["reconcile_interval_hours"]
    if not isinstance(hours, int) or isinstance(hours, bool) or not 1 <= hours <= 24 * 7:
        raise InvalidInput(
            "reconcile_interval_hours must be an integer from 1 to 168",
            details=[{"field": "settings.reconcile_interval_hours", "code": "invalid"}],
        )
    return merged


def create_integration(
    ctx: Ctx,
    *,
    box: SecretBox,
    system: str,
    credentials: dict[str, str],
    owner: str,
    description: str,
    enabled: bool = True,
    settings: dict[str, Any] | None = None,
) -> Integration:
    """Connect a CRM; returns the integration (and schedules its first poll). Raises InvalidInput for an
    unknown system, missing or unknown credentials, or bad settings."""
    if system not in SYSTEMS:
        raise InvalidInput(f"Unknown system {system!r}: one of {', '.join(SYSTEMS)}", code="unknown_system")
    creds = _check_credentials(system, credentials)
    now = ctx.now()
    integration = Integration(
        id=new_id("intg"),
        org_id=ctx.org_id,
        system=system,
        description=description,
        owner=owner,
        enabled=enabled,
        credentials=box.seal(json.dumps(creds, sort_keys=True)),
        settings=_check_settings(settings or {}),
        created_at=now,
        updated_at=now,
    )
    ctx.session.add(integration)
    first_reconcile = now + timedelta(hours=int(integration.settings["reconcile_interval_hours"]))
    for kind, due in (("poll", now), ("reconcile", first_reconcile)):
        ctx.session.add(
            SyncJob(
                id=new_id("sjob"),
                org_id=ctx.org_id,
                integration_id=integration.id,
                kind=kind,
                direction="inbound",
                object_type=None,
                object_id=None,
                status="pending",
                attempts=0,
                next_run_at=due,
                dedupe_key=kind,
                payload={},
                result={},
                created_at=now,
                updated_at=now,
            )
        )
    ctx.session.flush()
    record(
        ctx,
        action="create",
        object_type="integration",
        object_id=integration.id,
        changes=diff({}, _snapshot(integration)),
        event_type="integration.created",
        data={"id": integration.id, "system": system, "owner": owner},
    )
    return integration


def update_integration(
    ctx: Ctx, integration_id: str, *, box: SecretBox, changes: dict[str, Any]
) -> Integration:
    """Change description, owner, enabled, settings (merged) or credentials (replaced); returns it."""
    integration = ctx.get(Integration, integration_id, for_update=True, label="integration")
    before = _snapshot(integration)
    if "credentials" in changes and changes["credentials"] is not None:
        creds = _check_credentials(integration.system, changes["credentials"])
        integration.credentials = box.seal(json.dumps(creds, sort_keys=True))
    for name in ("description", "owner", "enabled"):
        if changes.get(name) is not None:
            setattr(integration, name, changes[name])
    if changes.get("settings") is not None:
        integration.settings = _check_settings({**integration.settings, **changes["settings"]})
    integration.updated_at = ctx.now()
    ctx.session.flush()
    record(
        ctx,
        action="update",
        object_type="integration",
        object_id=integration.id,
        changes={
            **diff(before, _snapshot(integration)),
            **({"credentials": "replaced"} if "credentials" in changes else {}),
        },
        event_type="integration.updated",
        data={"id": integration.id},
    )
    return integration


def delete_integration(ctx: Ctx, integration_id: str) -> str:
    """Disconnect: the integration and its sync jobs go (entity mappings stay); returns its id."""
    integration = ctx.get(Integration, integration_id, for_update=True, label="integration")
    ctx.session.execute(delete(SyncJob).where(SyncJob.integration_id == integration.id))
    ctx.session.delete(integration)
    ctx.session.flush()
    record(
        ctx,
        action="delete",
        object_type="integration",
        object_id=integration_id,
        changes={},
        event_type="integration.deleted",
        data={"id": integration_id},
    )
    return integration_id


def open_credentials(box: SecretBox, integration: Integration) -> dict[str, str]:
    """The integration's credentials in the clear (for the adapter factory only)."""
    opened: dict[str, str] = json.loads(box.open(integration.credentials))
    return opened


def enabled_integrations(
    session: Any, *, org_id: str | None = None, system: str | None = None
) -> list[Integration]:
    """Enabled integrations, optionally of one organization or system, oldest first."""
    stmt = filtered(
        select(Integration).where(Integration.enabled.is_(True)).order_by(Integration.created_at),
        (Integration.org_id, org_id),
        (Integration.system, system),
    )
    return list(session.scalars(stmt))
