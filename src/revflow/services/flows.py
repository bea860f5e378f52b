"""The data-flow map: which objects flow between Revflow and each connected system, in which direction,
on which trigger, who owns it, when it last succeeded and how often it fails.

``CATALOG`` is the one description of the flows the sync code implements (by sync job kind); the API
(``GET /v1/integrations/flows``) adds each integration's owner and figures computed from its sync jobs, and
``docs/data-flows.md`` is rendered from the same catalog (``revflow integrations flows --markdown``; a test
keeps the committed file equal to the output).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from revflow.storage.connector_models import Integration, SyncJob

__all__ = ["CATALOG", "Flow", "integration_flows", "render_markdown"]


@dataclass(frozen=True)
class Flow:
    revflow_object: str
    external_object: str
    #: ``outbound`` (Revflow → CRM), ``inbound`` (CRM → Revflow) or ``compare`` (reconciliation).
    direction: str
    #: ``real-time`` (on each change) or ``schedule``.
    trigger: str
    #: What sets it off and what it does.
    how: str
    #: The sync job kinds that carry it (their records give last success and error rate).
    kinds: tuple[str, ...]


_PUSH_CUSTOMER = (
    "customer.created / customer.updated events (outbox) → `push_customer` job: upsert with billing fields"
)
_PUSH_SUB = (
    "subscription.* and invoice.* events (outbox: finalized, paid, voided, ...) → `push_subscription` job: "
    "upsert with plan, MRR, status, next renewal, payment status, overdue balance and the latest finalized "
    "invoice (number, total, status); a subscription set to cancel is pushed closed-lost; linked to its "
    "company/account; a deal deleted in the CRM is not recreated"
)
_RECONCILE = (
    "every `reconcile_interval_hours` (default 24): every mapped customer and subscription compared on "
    "name, plan, MRR, status, payment status, overdue balance, latest invoice number, total and status; "
    "each mismatch a `crm_discrepancy` alert with both values, resolved when it goes away"
)
_LIFECYCLE = (
    "closed-won with a plan creates the subscription (and the customer), a plan change changes it, "
    "closed-lost cancels it at the period end, won again before that end removes the cancel; "
    "a billed deal in an open stage or with data that does not map fails the job (`sync_failed`)"
)

CATALOG: dict[str, tuple[Flow, ...]] = {
    "hubspot": (
        Flow("customer", "company", "outbound", "real-time", _PUSH_CUSTOMER, ("push_customer",)),
        Flow("subscription", "deal", "outbound", "real-time", _PUSH_SUB, ("push_subscription",)),
        Flow(
            "subscription",
            "deal",
            "inbound",
            "real-time",
            "HubSpot webhook (v3 signature) on `revflow_plan` / `dealstage` / deal creation / deletion → "
            f"`inbound_change` job: {_LIFECYCLE}; a deleted deal raises `crm_object_deleted` and "
            "never cancels",
            ("inbound_change",),
        ),
        Flow(
            "subscription",
            "deal",
            "inbound",
            "schedule",
            "every `poll_interval_seconds` (default 300): deals modified since the cursor → `inbound_change` "
            "jobs (the fallback when a webhook is lost)",
            ("poll",),
        ),
        Flow("customer, subscription", "company, deal", "compare", "schedule", _RECONCILE, ("reconcile",)),
    ),
    "salesforce": (
        Flow("customer", "account", "outbound", "real-time", _PUSH_CUSTOMER, ("push_customer",)),
        Flow("subscription", "opportunity", "outbound", "real-time", _PUSH_SUB, ("push_subscription",)),
        Flow(
            "subscription",
            "opportunity",
            "inbound",
            "schedule",
            "every `poll_interval_seconds` (default 300): opportunities modified since the "
            f"`LastModifiedDate` cursor → `inbound_change` jobs: {_LIFECYCLE}",
            ("poll", "inbound_change"),
        ),
        Flow(
            "customer, subscription",
            "account, opportunity",
            "compare",
            "schedule",
            _RECONCILE,
            ("reconcile",),
        ),
    ),
}

#: The window over which the error rate is computed.
ERROR_WINDOW = timedelta(days=7)


def _figures(session: Session, integ: Integration, kinds: tuple[str, ...], now: datetime) -> dict[str, Any]:
    jobs = SyncJob.integration_id == integ.id, SyncJob.kind.in_(kinds)
    last = session.scalar(select(func.max(SyncJob.finished_at)).where(*jobs, SyncJob.status == "succeeded"))
    recurring = list(
        session.scalars(select(SyncJob).where(*jobs, SyncJob.dedupe_key.in_(("poll", "reconcile"))))
    )
    for job in recurring:
        ok_at = job.result.get("succeeded_at")
        if ok_at and (last is None or datetime.fromisoformat(ok_at) > last):
            last = datetime.fromisoformat(ok_at)
    counts = dict(
        session.execute(
            select(SyncJob.status, func.count())
            .where(
                *jobs,
                SyncJob.updated_at >= now - ERROR_WINDOW,
                SyncJob.status.in_(("succeeded", "failed", "dead")),
            )
            .group_by(SyncJob.status)
        ).all()
    )
    errors = counts.get("failed", 0) + counts.get("dead", 0)
    finished = errors + counts.get("succeeded", 0)
    runs = sum(int(j.result.get("runs", 0)) for j in recurring)
    failures = sum(int(j.result.get("failures", 0)) for j in recurring)
    errors, finished = errors + failures, finished + runs
    pending = session.scalar(
        select(func.count()).select_from(SyncJob).where(*jobs, SyncJob.status.in_(("pending", "running")))
    )
    last_error = next((j.last_error for j in recurring if j.last_error), None)
    return {
        "last_success_at": last,
        "error_rate": round(errors / finished, 4) if finished else None,
        "finished_jobs": finished,
        "failed_jobs": errors,
        "pending_jobs": pending or 0,
        "last_error": last_error,
    }


def integration_flows(session: Session, *, org_id: str, now: datetime) -> list[dict[str, Any]]:
    """For each of the organization's integrations: its owner and its flows with their figures."""
    out = []
    for integ in session.scalars(
        select(Integration)
        .where(Integration.org_id == org_id)
        .order_by(Integration.created_at, Integration.id)
    ):
        flows = [
            {
                "revflow_object": f.revflow_object,
                "external_object": f.external_object,
                "direction": f.direction,
                "trigger": f.trigger,
                "how": f.how,
                "sync_job_kinds": list(f.kinds),
                **_figures(session, integ, f.kinds, now),
            }
            for f in CATALOG[integ.system]
        ]
        out.append(
            {
                "integration_id": integ.id,
                "system": integ.system,
                "owner": integ.owner,
                "description": integ.description,
                "enabled": integ.enabled,
                "flows": flows,
            }
        )
    return out


def render_markdown() -> str:
    """``docs/data-flows.md``: the catalog as tables, one per system."""
    lines = [
        "# Data flows",
        "",
        "<!-- Generated by `revflow integrations flows --markdown` from `revflow.services.flows.CATALOG`; "
        "do not edit by hand (tests/unit/services/test_flows.py checks it). -->",
        "",
        "Which objects flow between Revflow and each connected system, in which direction and on which",
        "trigger. Every flow is carried by sync jobs (`GET /v1/sync_jobs`); nothing moves outside them.",
        "",
        "For a running installation, `GET /v1/integrations/flows` returns the same map per integration",
        "with its **owner** (set on the integration: `POST /v1/integrations` requires one), the **last",
        "success** and the **error rate** (last 7 days; recurring jobs since creation), computed from the",
        "sync job records. Failed jobs raise `sync_failed` alerts, a vendor budget under 10 % raises",
        "`rate_limit_warning`, reconciliation mismatches raise `crm_discrepancy` alerts and a deal",
        "deleted in the CRM raises `crm_object_deleted` (`GET /v1/alerts`; counters and gauges on",
        "`/metrics`). Payments and invoices are reconciled with the payment gateway separately",
        "(`payment_discrepancy` alerts, docs/payments.md).",
        "",
    ]
    titles = {"hubspot": "HubSpot", "salesforce": "Salesforce"}
    for system, flows in CATALOG.items():
        lines += [
            f"## {titles[system]}",
            "",
            "| Revflow | " + titles[system] + " | Direction | Trigger | How | Sync jobs |",
            "|---|---|---|---|---|---|",
        ]
        for f in flows:
            arrow = {"outbound": "Revflow → CRM", "inbound": "CRM → Revflow", "compare": "compare"}[
                f.direction
            ]
            kinds = ", ".join(f"`{k}`" for k in f.kinds)
            lines.append(
                f"| {f.revflow_object} | {f.external_object} | {arrow} | {f.trigger} | {f.how} | {kinds} |"
            )
        lines.append("")
    return "\n".join(lines)
