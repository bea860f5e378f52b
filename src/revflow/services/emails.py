"""The email outbox: templated emails written in the caller's transaction, delivered by the worker.

Templates are jinja2, rendered in a sandboxed environment (they come from API users). Each email carries a
dedupe key, so a step that runs twice queues one email.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import structlog
from jinja2 import TemplateSyntaxError
from jinja2.sandbox import SandboxedEnvironment
from sqlalchemy import select
from sqlalchemy.orm import Session

from revflow.domain.errors import InvalidInput
from revflow.domain.ids import new_id
from revflow.services.context import Ctx
from revflow.services.pagination import Page, filtered, paginate
from revflow.services.ports import EmailMessage, EmailSender
from revflow.storage.payment_models import Email

__all__ = ["DEFAULT_TEMPLATES", "check_templates", "deliver_emails", "list_emails", "queue_email"]

log = structlog.get_logger("revflow.emails")

_ENV = SandboxedEnvironment(autoescape=False, keep_trailing_newline=True)

#: Built-in dunning templates; a policy's ``templates`` override any of them.
DEFAULT_TEMPLATES: dict[str, dict[str, str]] = {
    "retry": {
        "subject": "Payment of invoice {{ invoice.number }} failed",
        "body": (
            "Hello {{ customer.name }},\n\n"
            "We could not collect {{ amount }} for invoice {{ invoice.number }}"
            "{% if failure %} ({{ failure }}){% endif %}.\n"
            "We will try again on {{ next_retry }}. Attempt {{ attempt }} of {{ max_attempts }}.\n"
            "To avoid an interruption, please update your payment method.\n"
        ),
    },
    "ach_failed": {
        "subject": "Bank debit for invoice {{ invoice.number }} was returned",
        "body": (
            "Hello {{ customer.name }},\n\n"
            "Your bank returned the debit of {{ amount }} for invoice {{ invoice.number }}"
            "{% if failure %} ({{ failure }}){% endif %}.\n"
            "We do not debit the account again: please add a new payment method by {{ deadline }}.\n"
        ),
    },
    "overdue": {
        "subject": "Invoice {{ invoice.number }} is overdue",
        "body": (
            "Hello {{ customer.name }},\n\n"
            "Invoice {{ invoice.number }} for {{ amount }} was due on {{ due_date }} and is still unpaid.\n"
            "{% if next_reminder %}Please pay it before {{ next_reminder }}.\n{% endif %}"
        ),
    },
    "final": {
        "subject": "Invoice {{ invoice.number }} remains unpaid",
        "body": (
            "Hello {{ customer.name }},\n\n"
            "{% if mode == 'send_invoice' %}Invoice {{ invoice.number }} for {{ amount }} is still unpaid"
            " {{ days_overdue }} days after its due date.\n"
            "{% else %}We could not collect {{ amount }} for invoice {{ invoice.number }}"
            " after {{ attempt }} attempts.\n{% endif %}"
            "{{ final_action_text }}\n"
        ),
    },
    "customer_success_upgrade": {
        "subject": "Upgrade: {{ customer.name }} moved to {{ to_plan }}",
        "body": "{{ customer.name }} ({{ customer.id }}) changed plan from {{ from_plan }} to {{ to_plan }} "
        "in {{ system }}.\nMRR: {{ mrr_before }} -> {{ mrr_after }}.\nSubscription: {{ subscription }}\n",
    },
    "recovered": {
        "subject": "Payment received for invoice {{ invoice.number }}",
        "body": "Hello {{ customer.name }},\n\nThank you: we received {{ amount }} for invoice "
        "{{ invoice.number }}.\n",
    },
}


def check_templates(templates: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """Validate user templates; returns them. Raises InvalidInput ``invalid_template``."""
    out: dict[str, dict[str, str]] = {}
    for key, spec in templates.items():
        if key not in DEFAULT_TEMPLATES or not isinstance(spec, Mapping):
            raise InvalidInput(
                f"templates.{key}: known templates are {sorted(DEFAULT_TEMPLATES)}, each {{subject, body}}",
                code="invalid_template",
                details=[{"field": f"templates.{key}", "code": "invalid_template"}],
            )
        part: dict[str, str] = {}
        for field_name in ("subject", "body"):
            source = spec.get(field_name)
            if source is None:
                continue
            try:
                _ENV.parse(str(source))
            except TemplateSyntaxError as exc:
                raise InvalidInput(
                    f"templates.{key}.{field_name}: {exc.message}",
                    code="invalid_template",
                    details=[{"field": f"templates.{key}.{field_name}", "code": "invalid_template"}],
                ) from exc
            part[field_name] = str(source)
        out[key] = part
    return out


def queue_email(
    ctx: Ctx,
    *,
    template: str,
    to: str | None,
    context: dict[str, Any],
    dedupe_key: str,
    overrides: Mapping[str, Mapping[str, str]] | None = None,
    object_type: str | None = None,
    object_id: str | None = None,
) -> Email:
    """Render ``template`` with ``context`` and add it to the outbox (once per ``dedupe_key``)."""
    existing = ctx.session.scalar(
        select(Email).where(Email.org_id == ctx.org_id, Email.dedupe_key == dedupe_key)
    )
    if existing is not None:
        return existing
    spec = {**DEFAULT_TEMPLATES[template], **dict((overrides or {}).get(template, {}))}
    subject = _ENV.from_string(spec["subject"]).render(**context).strip()
    body = _ENV.from_string(spec["body"]).render(**context)
    email = Email(
        id=new_id("em"),
        org_id=ctx.org_id,
        to=to,
        subject=subject[:500],
        body=body,
        template=template,
        object_type=object_type,
        object_id=object_id,
        status="queued" if to else "skipped",
        attempts=0,
        last_error=None if to else "the customer has no email address",
        dedupe_key=dedupe_key,
        created_at=ctx.now(),
    )
    ctx.session.add(email)
    return email


def deliver_emails(
    sessions: Callable[[], Session],
    sender: EmailSender,
    *,
    now: datetime,
    sender_address: str,
    limit: int = 50,
) -> int:
    """Deliver queued emails (claimed with SKIP LOCKED); a failure stays queued for the next cycle, and
    after 5 attempts the email is ``failed``. Returns how many were delivered."""
    delivered = 0
    with sessions() as session:
        rows = list(
            session.scalars(
                select(Email)
                .where(Email.status == "queued")
                .order_by(Email.created_at, Email.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        )
        for email in rows:
            email.attempts += 1
            try:
                sender.send(
                    EmailMessage(
                        to=email.to or "",
                        subject=email.subject,
                        body=email.body,
                        sender=sender_address,
                        message_id=email.id,
                    )
                )
            except Exception as exc:  # recorded and retried, never swallowed
                email.last_error = f"{type(exc).__name__}: {exc}"
                if email.attempts >= 5:
                    email.status = "failed"
                log.warning("email_failed", email=email.id, error=email.last_error)
                continue
            email.status, email.sent_at = sender.delivered_status, now
            delivered += 1
        session.commit()
    return delivered


def list_emails(
    ctx: Ctx,
    *,
    limit: int = 10,
    starting_after: str | None = None,
    ending_before: str | None = None,
    object_id: str | None = None,
) -> Page[Email]:
    """One page of emails, newest first, optionally about one object (e.g. an invoice)."""
    stmt = filtered(select(Email).where(Email.org_id == ctx.org_id), (Email.object_id, object_id))
    return paginate(ctx, stmt, Email, limit=limit, starting_after=starting_after, ending_before=ending_before)
