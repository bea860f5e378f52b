"""Protocols that adapters implement, and the plain data they exchange with services."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal, Protocol

from revflow.domain.clock import Clock

__all__ = [
    "BILLING_FIELDS",
    "ChargeRequest",
    "ChargeResult",
    "ChargeStatus",
    "Clock",
    "ConnectorError",
    "CrmChange",
    "CrmChangePage",
    "CrmCompany",
    "CrmConnector",
    "CrmDeal",
    "CrmWebhookSource",
    "DocumentLine",
    "DocumentParty",
    "EmailMessage",
    "EmailSender",
    "GatewayError",
    "GatewayEvent",
    "GatewayEventType",
    "GatewayPayment",
    "GatewayUnavailable",
    "InvoiceDocument",
    "PaymentGateway",
    "PaymentMethodInfo",
    "PdfRenderer",
    "QuoteDocument",
    "RateLimitStatus",
    "RateLimited",
    "RefundResult",
    "SecretBox",
    "SecretUnreadable",
    "SetupSession",
    "UrlNotAllowed",
    "WebhookRequest",
    "WebhookResponse",
    "WebhookSender",
    "WebhookSignatureError",
]


@dataclass(frozen=True, slots=True)
class DocumentParty:
    """Seller or buyer as printed on a document."""

    name: str
    email: str | None = None
    address_lines: tuple[str, ...] = ()  # already formatted: street lines, "postal city", region, country
    tax_ids: tuple[str, ...] = ()  # e.g. "EU VAT DE123456789"


@dataclass(frozen=True, slots=True)
class DocumentLine:
    description: str
    quantity: Decimal
    unit_amount_decimal: Decimal  # minor units, may be fractional
    amount: int  # minor units
    period: tuple[datetime, datetime] | None = None


@dataclass(frozen=True, slots=True)
class InvoiceDocument:
    """Everything an invoice PDF shows. Amounts are integer minor units of ``currency``."""

    title: str  # "Invoice" or "Draft invoice"
    number: str | None  # None while draft
    status: str
    currency: str  # ISO 4217 code
    locale: str  # e.g. "en_US", "de_DE"
    issue_date: date | None
    due_date: date | None
    seller: DocumentParty
    buyer: DocumentParty
    lines: tuple[DocumentLine, ...]
    subtotal: int
    discount: int
    tax: int
    total: int
    applied_balance: int
    amount_paid: int
    amount_remaining: int
    memo: str | None = None
    footer: str | None = None
    extra: dict[str, str] = field(default_factory=dict)


class PdfRenderer(Protocol):
    """Renders documents to PDF bytes."""

    def render_invoice(self, doc: InvoiceDocument) -> bytes: ...

    def render_quote(self, doc: QuoteDocument) -> bytes: ...


@dataclass(frozen=True, slots=True)
class QuoteDocument:
    """Everything a quote PDF shows. Amounts are integer minor units of ``currency``; ``lines`` carry the
    negotiated unit prices and the amount of one billing period."""

    title: str  # "Quote" or "Draft quote"
    number: str | None  # None while draft
    status: str
    currency: str  # ISO 4217 code
    locale: str  # e.g. "en_US", "de_DE"
    issue_date: date | None  # when finalized
    valid_until: date | None
    start: date | None  # None: on acceptance
    term: str  # e.g. "12 months, renews automatically"
    seller: DocumentParty
    buyer: DocumentParty
    lines: tuple[DocumentLine, ...]
    discount_description: str | None  # e.g. "20% off for the first 12 months"
    first_invoice_subtotal: int
    first_invoice_discount: int
    first_invoice_total: int
    renewal_total: int | None  # None: nothing renews
    trial: str | None = None  # e.g. "14 days"
    memo: str | None = None
    footer: str | None = None
    extra: dict[str, str] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------------------
# Payments: the gateway port. Adapters: ``adapters/payments/sandbox`` and ``adapters/payments/stripe``.
# Amounts are integer minor units; currencies are lower-case-insensitive ISO 4217 codes (adapters normalise).
# ---------------------------------------------------------------------------------------------------------

#: Outcome of a charge as the gateway reports it. ``unknown``: the request timed out or the connection broke
#: after sending; the caller must resolve it with ``find_charge`` before any retry.
ChargeStatus = Literal["succeeded", "processing", "failed", "requires_action", "unknown"]


class GatewayError(Exception):
    """The gateway refused a request that is not a payment outcome (bad token, unknown object, auth)."""

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None):
        super().__init__(message)
        self.code = code
        self.status = status


class GatewayUnavailable(GatewayError):
    """The gateway could not be reached, or the outcome of the request is unknown (timeout)."""


@dataclass(frozen=True, slots=True)
class PaymentMethodInfo:
    """A saved payment method as Revflow keeps it: a gateway token plus what a person needs to recognise it.
    Never a card number."""

    token: str  # gateway id, e.g. "pm_..."
    type: Literal["card", "us_bank_account"]
    customer_ref: str | None = None  # gateway customer it is attached to
    brand: str | None = None  # card: "visa", "mastercard", ...
    last4: str | None = None
    exp_month: int | None = None
    exp_year: int | None = None
    bank_name: str | None = None  # us_bank_account


@dataclass(frozen=True, slots=True)
class SetupSession:
    """A gateway-side flow that collects a payment method without Revflow seeing it (SetupIntent or
    Checkout in setup mode). The front end completes it with ``client_secret`` or by visiting ``url``."""

    id: str
    client_secret: str | None = None
    url: str | None = None
    status: str | None = None


@dataclass(frozen=True, slots=True)
class ChargeRequest:
    customer_ref: str
    payment_method: str  # token
    amount: int  # minor units, > 0
    currency: str
    #: Derived from Revflow ids (invoice id + attempt number): the same key never charges twice.
    idempotency_key: str
    description: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)  # carries revflow_invoice_id, revflow_payment_id
    #: The saved method's type ("card" | "us_bank_account"); lets the gateway confine the charge to it, so
    #: its events name the type even when they do not carry the method itself (Stripe's ACH settlement).
    payment_method_type: str | None = None


@dataclass(frozen=True, slots=True)
class ChargeResult:
    status: ChargeStatus
    gateway_ref: str | None  # e.g. PaymentIntent id; None when nothing was created
    amount: int
    currency: str
    failure_code: str | None = None  # e.g. "card_declined", "expired_card", "insufficient_funds"
    decline_code: str | None = None  # e.g. "stolen_card", "generic_decline"
    failure_message: str | None = None
    #: True when retrying the same payment method cannot succeed (stolen/lost card, closed account, fraud)
    hard_decline: bool = False
    payment_method_type: str | None = None  # "card" | "us_bank_account"


@dataclass(frozen=True, slots=True)
class RefundResult:
    gateway_ref: str  # e.g. "re_..."
    status: Literal["succeeded", "pending", "failed"]
    amount: int
    currency: str


@dataclass(frozen=True, slots=True)
class GatewayPayment:
    """One payment as the gateway records it, for reconciliation."""

    gateway_ref: str
    amount: int
    amount_refunded: int
    currency: str
    status: ChargeStatus
    created: datetime
    metadata: dict[str, str] = field(default_factory=dict)


GatewayEventType = Literal[
    "payment.succeeded",
    "payment.failed",
    "payment.processing",
    "charge.refunded",
    "refund.updated",
    "dispute.created",
    "dispute.updated",
    "dispute.closed",
    "payment_method.attached",
    "payment_method.detached",
    "payment_method.updated",
    "other",
]


@dataclass(frozen=True, slots=True)
class GatewayEvent:
    """An inbound gateway webhook, verified and normalised. ``id`` is the gateway's event id (dedupe key)."""

    id: str
    type: GatewayEventType
    raw_type: str  # e.g. "payment_intent.succeeded"
    created: datetime
    object_ref: str  # id of the object the event is about (pi_..., ch_..., dp_..., pm_...)
    charge: ChargeResult | None = None  # payment.* events
    payment_method: PaymentMethodInfo | None = None  # payment_method.* events
    refund: RefundResult | None = None  # charge.refunded (the latest refund)
    amount_refunded: int | None = None  # charge.refunded: total refunded on the payment so far
    payment_ref: str | None = None  # charge.refunded / dispute.created: the PaymentIntent id
    dispute_reason: str | None = None
    dispute_amount: int | None = None
    dispute_status: str | None = None  # dispute.*: e.g. needs_response, under_review, won, lost
    metadata: dict[str, str] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)  # the raw object, for the record


class WebhookSignatureError(Exception):
    """The webhook's signature is missing, wrong or outside the timestamp tolerance (answer 400)."""


class PaymentGateway(Protocol):
    """What Revflow asks of a payment gateway. Every call that moves money takes an idempotency key."""

    name: str  # "sandbox" | "stripe"

    def ensure_customer(
        self, *, customer_id: str, email: str | None, name: str | None, existing_ref: str | None
    ) -> str:
        """Return the gateway customer for Revflow's ``customer_id``, creating it when ``existing_ref`` is
        None (idempotently, keyed on ``customer_id``)."""
        ...

    def create_setup_session(self, *, customer_ref: str, method_types: Sequence[str]) -> SetupSession: ...

    def attach_payment_method(self, *, customer_ref: str, token: str) -> PaymentMethodInfo:
        """Attach an already tokenised payment method (e.g. after a SetupIntent succeeded)."""
        ...

    def get_payment_method(self, token: str) -> PaymentMethodInfo: ...

    def detach_payment_method(self, token: str) -> None: ...

    def charge(self, request: ChargeRequest) -> ChargeResult:
        """Charge off-session. Declines are results (status ``failed``), not exceptions; a timeout is a
        result with status ``unknown``."""
        ...

    def find_charge(
        self, *, idempotency_key: str, customer_ref: str, metadata: Mapping[str, str]
    ) -> ChargeResult | None:
        """Ask the gateway what became of a charge whose outcome is unknown; None when it never arrived."""
        ...

    def retrieve_charge(self, gateway_ref: str) -> ChargeResult: ...

    def refund(
        self, *, gateway_ref: str, amount: int, idempotency_key: str, reason: str | None = None
    ) -> RefundResult: ...

    def list_payments(self, *, since: datetime) -> Iterator[GatewayPayment]:
        """Every payment created at or after ``since`` (pages through the gateway's list)."""
        ...

    def parse_webhook(self, payload: bytes, headers: Mapping[str, str]) -> GatewayEvent:
        """Verify the signature (raises WebhookSignatureError) and normalise the event (raises ValueError for
        malformed JSON)."""
        ...


# ---------------------------------------------------------------------------------------------------------
# CRM: one Protocol per role. Adapters: ``adapters/crm/hubspot`` and ``adapters/crm/salesforce``, one package
# per vendor (client.py, mapping.py, webhooks.py, consts.py). Revflow customers map to CRM companies/accounts,
# subscriptions to deals/opportunities; the mapping itself lives in Revflow's entity-mapping table.
# ---------------------------------------------------------------------------------------------------------


class ConnectorError(Exception):
    """A vendor call failed. ``retryable`` tells the sync job whether to try again later."""

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None, retryable: bool):
        super().__init__(message)
        self.code = code
        self.status = status
        self.retryable = retryable


class RateLimited(ConnectorError):
    """The vendor answered 429 (or its equivalent); try again after ``retry_after`` seconds."""

    def __init__(self, message: str, *, retry_after: float, status: int | None = 429):
        super().__init__(message, code="rate_limited", status=status, retryable=True)
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class RateLimitStatus:
    """What the vendor's last answer said about the caller's remaining budget (None: not reported)."""

    limit: int | None = None
    remaining: int | None = None
    window_seconds: float | None = None


@dataclass(frozen=True, slots=True)
class CrmCompany:
    """A HubSpot company / Salesforce Account. ``properties`` carries the billing fields Revflow maintains,
    by Revflow's names (see ``BILLING_FIELDS``); adapters translate them to the vendor's property names."""

    external_id: str | None
    name: str
    domain: str | None = None
    properties: dict[str, str] = field(default_factory=dict)
    updated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class CrmDeal:
    """A HubSpot deal / Salesforce Opportunity."""

    external_id: str | None
    name: str
    company_external_id: str | None = None
    stage: str | None = None  # the vendor's stage id, e.g. "closedwon" / "Closed Won"
    won: bool = False  # the stage counts as closed-won
    closed: bool = False  # the stage is closed (won or lost); closed and not won is closed-lost
    plan_code: str | None = None  # Revflow plan code, from the deal's plan property
    amount: Decimal | None = None
    currency: str | None = None
    properties: dict[str, str] = field(default_factory=dict)
    updated_at: datetime | None = None


#: Billing fields Revflow pushes to CRM companies and deals (Revflow's names; values are strings, amounts in
#: major units with a "." decimal separator, dates ISO 8601). ``last_invoice_*`` describe the latest
#: finalized invoice of the subscription: its number, total and status (open, paid, void, uncollectible).
BILLING_FIELDS = (
    "revflow_id",
    "plan",
    "mrr",
    "currency",
    "status",
    "next_renewal",
    "payment_status",
    "overdue_balance",
    "last_invoice_number",
    "last_invoice_total",
    "last_invoice_status",
)


@dataclass(frozen=True, slots=True)
class CrmChange:
    """An inbound change notification (webhook) about one CRM object; ``event_id`` is the dedupe key."""

    event_id: str
    object_type: Literal["company", "deal"]
    external_id: str
    change: Literal["created", "updated", "deleted"]
    occurred_at: datetime
    property_name: str | None = None
    property_value: str | None = None


@dataclass(frozen=True, slots=True)
class CrmChangePage:
    """Objects modified since a cursor (polling), oldest first, and the cursor to continue from."""

    companies: list[CrmCompany]
    deals: list[CrmDeal]
    cursor: str | None  # opaque; None when the vendor returned nothing new (keep the old cursor)
    has_more: bool = False


class CrmConnector(Protocol):
    """Outbound and polling sync with a CRM. Calls raise ConnectorError / RateLimited; never return None for
    an object that should exist."""

    system: str  # "hubspot" | "salesforce"

    def upsert_company(self, company: CrmCompany) -> str:
        """Create (``external_id`` None) or update the company; returns its external id. Creating is
        idempotent on ``properties["revflow_id"]``: a retry after a lost answer finds the one created."""
        ...

    def upsert_deal(self, deal: CrmDeal) -> str:
        """Create or update the deal, associated with ``company_external_id``; same idempotency rule."""
        ...

    def get_company(self, external_id: str) -> CrmCompany: ...

    def get_deal(self, external_id: str) -> CrmDeal: ...

    def changes_since(self, cursor: str | None, *, limit: int = 100) -> CrmChangePage:
        """Companies and deals modified after ``cursor`` (None: from the beginning)."""
        ...

    def rate_limit(self) -> RateLimitStatus:
        """Budget reported by the vendor's last answer."""
        ...


class CrmWebhookSource(Protocol):
    """A CRM that pushes change notifications (HubSpot webhooks v3)."""

    def parse_webhook(
        self, payload: bytes, headers: Mapping[str, str], *, method: str, url: str
    ) -> list[CrmChange]:
        """Verify the signature (raises WebhookSignatureError, also for a stale timestamp) and parse (raises
        ValueError for a malformed body)."""
        ...


# Email: dunning reminders and other notices. Adapters: ``adapters/email/smtp`` and ``adapters/email/stored``.
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EmailMessage:
    to: str
    subject: str
    body: str  # plain text
    sender: str
    message_id: str  # Revflow's email id; lets a receiver drop a duplicate of an at-least-once delivery


class EmailSender(Protocol):
    """Delivers one email; raises on failure (the outbox retries)."""

    #: ``sent`` when it left for a mail server, ``stored`` when it is only kept (listed in the API).
    delivered_status: str

    def send(self, message: EmailMessage) -> None: ...


# --- Outbound webhooks (integration hub) ---------------------------------------------------------------


class UrlNotAllowed(Exception):
    """A webhook URL that must not be called: bad scheme, unresolvable, or resolving to a private,
    loopback, link-local or reserved address (SSRF)."""


@dataclass(frozen=True, slots=True)
class WebhookRequest:
    """One signed POST to an endpoint: ``body`` is sent byte for byte as signed."""

    url: str
    body: str
    headers: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class WebhookResponse:
    """What one attempt got: a status (None when no response came), the first 1 KB of the body, the
    latency, a transport error, and the ``Retry-After`` seconds the receiver asked for."""

    status: int | None
    body: str | None
    latency_ms: int
    error: str | None = None
    retry_after: int | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class WebhookSender(Protocol):
    """Sends webhooks over HTTP with timeouts, refusing URLs that resolve to non-public addresses."""

    def check_url(self, url: str) -> None:
        """Raise UrlNotAllowed when ``url`` may not be called (checked at endpoint creation)."""
        ...

    def send(self, request: WebhookRequest) -> WebhookResponse:
        """POST ``request``; never raises for network errors or refused URLs (``error`` says why)."""
        ...


class SecretUnreadable(Exception):
    """A sealed secret that cannot be opened (sealed with another key, or damaged)."""


class SecretBox(Protocol):
    """Seals secrets that must be stored and read back (webhook signing secrets, connector credentials)."""

    def seal(self, plaintext: str) -> str:
        """The ciphertext to store for ``plaintext``."""
        ...

    def open(self, sealed: str) -> str:
        """The plaintext of a value from :meth:`seal`; raises SecretUnreadable."""
        ...
