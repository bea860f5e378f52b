"""``/metrics``: the process's counters plus gauges read from the database at scrape time."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from revflow.bootstrap import Container
from revflow.storage.connector_models import Integration, SyncJob
from revflow.storage.hub_models import OutboxEntry
from revflow.storage.models import Alert, EventDelivery

__all__ = ["DatabaseCollector", "render"]


class DatabaseCollector(Collector):
    """Gauges that must agree across every API and worker process, so they come from the database."""

    def __init__(self, container: Container):
        self.container = container

    def collect(self) -> Iterator[GaugeMetricFamily]:
        now = self.container.clock.now()
        with self.container.sessions() as s:
            by_status = dict(
                s.execute(select(EventDelivery.status, func.count()).group_by(EventDelivery.status)).all()
            )
            queued = s.scalar(select(func.count()).select_from(OutboxEntry)) or 0
            due = (
                s.scalar(
                    select(func.count())
                    .select_from(EventDelivery)
                    .where(
                        EventDelivery.status.in_(("pending", "retrying")),
                        EventDelivery.next_attempt_at <= now,
                    )
                )
                or 0
            )
            alerts = s.execute(
                select(Alert.type, func.count()).where(Alert.status == "open").group_by(Alert.type)
            ).all()
            sync_jobs = s.execute(
                select(Integration.system, SyncJob.status, func.count())
                .join(Integration, Integration.id == SyncJob.integration_id)
                .group_by(Integration.system, SyncJob.status)
            ).all()
            s.rollback()
        deliveries = GaugeMetricFamily(
            "revflow_event_deliveries", "Event deliveries by status.", labels=["status"]
        )
        for status in ("pending", "retrying", "succeeded", "dead_lettered", "paused", "canceled"):
            deliveries.add_metric([status], by_status.get(status, 0))
        yield deliveries
        yield GaugeMetricFamily(
            "revflow_outbox_backlog",
            "Events not yet fanned out plus deliveries due now: work the workers have not done yet.",
            value=queued + due,
        )
        yield GaugeMetricFamily(
            "revflow_dead_lettered_deliveries",
            "Deliveries given up after the retry window (replay them).",
            value=by_status.get("dead_lettered", 0),
        )
        open_alerts = GaugeMetricFamily("revflow_alerts_open", "Open alerts by type.", labels=["type"])
        for type_, n in alerts:
            open_alerts.add_metric([type_], n)
        yield open_alerts
        jobs = GaugeMetricFamily(
            "revflow_sync_jobs",
            "CRM sync jobs by system and status (failed, dead: see sync_failed alerts).",
            labels=["system", "status"],
        )
        for system, status, n in sync_jobs:
            jobs.add_metric([system, status], n)
        yield jobs


def render(container: Container) -> bytes:
    """The exposition text: this process's counters and histograms, then the database gauges."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DatabaseCollector(container))
    return generate_latest(REGISTRY) + generate_latest(registry)
