"""The composition root: builds storage, clock and adapters from settings and hands them out."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from revflow.adapters.crm.hubspot import HubSpotConnector
from revflow.adapters.crm.salesforce import SalesforceConnector
from revflow.adapters.crypto import FernetSecretBox
from revflow.adapters.email import SmtpEmailSender, StoredEmailSender
from revflow.adapters.payments import SandboxGateway
from revflow.adapters.payments.stripe import StripeGateway
from revflow.adapters.pdf import ReportlabPdfRenderer
from revflow.adapters.webhooks import HttpWebhookSender
from revflow.config import Settings
from revflow.domain.clock import Clock, SystemClock
from revflow.domain.errors import RevflowError
from revflow.services.ports import (
    CrmConnector,
    EmailSender,
    PaymentGateway,
    PdfRenderer,
    SecretBox,
    WebhookSender,
)
from revflow.storage.connector_models import Integration
from revflow.storage.engine import make_engine, make_session_factory, migrate

__all__ = [
    "ConfigurationError",
    "Container",
    "build",
    "build_crm_connector",
    "build_email",
    "build_gateway",
]


class ConfigurationError(RevflowError):
    """The settings name something that cannot be built."""

    code = "configuration_error"


@dataclass
class Container:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    clock: Clock
    gateway: PaymentGateway
    email: EmailSender
    pdf: PdfRenderer = field(default_factory=ReportlabPdfRenderer)
    webhook_sender: WebhookSender = field(default_factory=HttpWebhookSender)
    secret_box: SecretBox = field(default_factory=lambda: FernetSecretBox(Settings().secret_key))
    _extra_engines: list[Engine] = field(default_factory=list)
    #: Per CRM system, keyword arguments added to its adapter (tests point ``api_base`` / ``login_url`` and
    #: ``ca_file`` at the fakes); never settable through the API.
    crm_overrides: dict[str, dict[str, Any]] = field(default_factory=dict)

    def crm_connector(self, integration: Integration, credentials: dict[str, str]) -> CrmConnector:
        """The adapter of ``integration`` (the sync jobs' ConnectorFactory)."""
        return build_crm_connector(integration, credentials, self.crm_overrides.get(integration.system, {}))

    def close(self) -> None:
        for extra in self._extra_engines:
            extra.dispose()
        close_sender = getattr(self.webhook_sender, "close", None)
        if close_sender is not None:
            close_sender()
        self.engine.dispose()


def _sandbox_sessions(settings: Settings, engine: Engine) -> tuple[sessionmaker[Session], Engine | None]:
    """The sandbox's books: on SQLite a file of their own (a request holds Revflow's file locked while it
    calls the gateway), on PostgreSQL Revflow's database."""
    url = settings.sandbox_database_url
    if not url and engine.dialect.name != "sqlite":
        return make_session_factory(engine), None
    if not url:
        main = settings.database_url
        url = main[: -len(".db")] + ".sandbox.db" if main.endswith(".db") else main + ".sandbox"
    from revflow.storage.models import Base
    from revflow.storage.payment_models import (
        SandboxCharge,
        SandboxCustomer,
        SandboxEvent,
        SandboxPaymentMethod,
        SandboxRefund,
    )

    own = make_engine(url)
    models = (SandboxCustomer, SandboxPaymentMethod, SandboxCharge, SandboxRefund, SandboxEvent)
    tables = [m.__table__ for m in models]

    class _TablesOnFirstUse(sessionmaker[Session]):
        # Created on first use, not at build: a container must build (and /readyz answer 503) while the
        # database is unreachable.
        ready = False

        def __call__(self, **local_kw: Any) -> Session:
            if not self.ready:
                Base.metadata.create_all(own, tables=tables)  # type: ignore[arg-type]
                type(self).ready = True
            return super().__call__(**local_kw)

    return _TablesOnFirstUse(bind=own, expire_on_commit=False), own


def build_gateway(settings: Settings, engine: Engine, clock: Clock) -> tuple[PaymentGateway, Engine | None]:
    """The payment gateway named by ``REVFLOW_PAYMENT_GATEWAY``."""
    if settings.payment_gateway == "sandbox":
        sessions, own = _sandbox_sessions(settings, engine)
        return SandboxGateway(sessions, clock, webhook_secret=f"sandbox:{settings.secret_key}"), own
    if settings.payment_gateway == "stripe":
        if not settings.stripe_api_key:
            raise ConfigurationError(
                "REVFLOW_PAYMENT_GATEWAY=stripe needs REVFLOW_STRIPE_API_KEY (a secret key, sk_test_... or "
                "sk_live_...) and REVFLOW_STRIPE_WEBHOOK_SECRET (whsec_...); see docs/integrations/stripe.md"
            )
        gateway = StripeGateway(
            api_key=settings.stripe_api_key,
            webhook_secret=settings.stripe_webhook_secret or None,
            api_base=settings.stripe_api_base or None,
        )
        return gateway, None
    raise ConfigurationError(f"unknown payment gateway {settings.payment_gateway!r}")


def build_crm_connector(
    integration: Integration, credentials: dict[str, str], overrides: dict[str, Any] | None = None
) -> CrmConnector:
    """The CRM adapter of an integration record, from its opened credentials."""
    extra = dict(overrides or {})
    if integration.system == "hubspot":
        return HubSpotConnector(
            credentials["access_token"],
            client_secret=credentials.get("client_secret"),
            api_base=extra.pop("api_base", None),
            **extra,
        )
    if integration.system == "salesforce":
        return SalesforceConnector(
            username=credentials.get("username"),
            password=credentials.get("password"),
            security_token=credentials.get("security_token"),
            instance_url=credentials.get("instance_url"),
            session_id=credentials.get("session_id"),
            domain=credentials.get("domain") or "login",
            **extra,
        )
    raise ConfigurationError(f"unknown CRM system {integration.system!r}")


def build_email(settings: Settings) -> EmailSender:
    """The email adapter named by ``REVFLOW_EMAIL_BACKEND``."""
    if settings.email_backend == "smtp":
        return SmtpEmailSender(
            host=settings.smtp_host,
            port=settings.smtp_port,
            username=settings.smtp_username,
            password=settings.smtp_password,
            starttls=settings.smtp_starttls,
        )
    return StoredEmailSender()


def build(settings: Settings, *, clock: Clock | None = None, auto_migrate: bool | None = None) -> Container:
    """Build the container. On the embedded SQLite default the schema is migrated automatically."""
    if auto_migrate is None:
        auto_migrate = settings.database_url.startswith("sqlite")
    if auto_migrate:
        migrate(settings.database_url)
    engine = make_engine(settings.database_url)
    clock = clock or SystemClock()
    gateway, own = build_gateway(settings, engine, clock)
    return Container(
        settings=settings,
        engine=engine,
        sessions=make_session_factory(engine),
        clock=clock,
        gateway=gateway,
        email=build_email(settings),
        _extra_engines=[own] if own is not None else [],
        secret_box=FernetSecretBox(
            settings.secret_key, tuple(k for k in settings.secret_key_previous.split(",") if k)
        ),
        webhook_sender=HttpWebhookSender(
            allow_private=settings.webhook_allow_private,
            connect_timeout=settings.webhook_connect_timeout,
            read_timeout=settings.webhook_read_timeout,
        ),
    )
