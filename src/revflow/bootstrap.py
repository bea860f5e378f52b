"""The composition root: builds storage, clock and adapters from settings and hands them out."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from revflow.adapters.crypto import FernetSecretBox
from revflow.adapters.pdf import ReportlabPdfRenderer
from revflow.adapters.webhooks import HttpWebhookSender
from revflow.config import Settings
from revflow.domain.clock import Clock, SystemClock
from revflow.services.ports import PdfRenderer, SecretBox, WebhookSender
from revflow.storage.engine import make_engine, make_session_factory, migrate

__all__ = ["Container", "build"]


@dataclass
class Container:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    clock: Clock
    pdf: PdfRenderer = field(default_factory=ReportlabPdfRenderer)
    webhook_sender: WebhookSender = field(default_factory=HttpWebhookSender)
    secret_box: SecretBox = field(default_factory=lambda: FernetSecretBox(Settings().secret_key))

    def close(self) -> None:
        close_sender = getattr(self.webhook_sender, "close", None)
        if close_sender is not None:
            close_sender()
        self.engine.dispose()


def build(settings: Settings, *, clock: Clock | None = None, auto_migrate: bool | None = None) -> Container:
    """Build the container. On the embedded SQLite default the schema is migrated automatically."""
    if auto_migrate is None:
        auto_migrate = settings.database_url.startswith("sqlite")
    if auto_migrate:
        migrate(settings.database_url)
    engine = make_engine(settings.database_url)
    return Container(
        settings=settings,
        engine=engine,
        sessions=make_session_factory(engine),
        clock=clock or SystemClock(),
        secret_box=FernetSecretBox(
            settings.secret_key, tuple(k for k in settings.secret_key_previous.split(",") if k)
        ),
        webhook_sender=HttpWebhookSender(
            allow_private=settings.webhook_allow_private,
            connect_timeout=settings.webhook_connect_timeout,
            read_timeout=settings.webhook_read_timeout,
        ),
    )
