"""One migration history for SQLite and PostgreSQL: complete, reversible, and in step with the models."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import delete, func, select

from revflow.bootstrap import Container
from revflow.storage.engine import alembic_config
from revflow.storage.models import Base
from revflow.storage.usage_models import UsageRollup
from tests.conftest import Tenant


class TestMigrations:
    def test_the_models_match_the_migrated_schema(self, container: Container) -> None:
        with container.engine.connect() as conn:
            diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)

        assert diffs == []

    def test_downgrade_to_base_and_upgrade_again(self, db_url: str, container: Container) -> None:
        cfg = alembic_config(db_url)

        command.downgrade(cfg, "base")
        command.upgrade(cfg, "head")

        with container.engine.connect() as conn:
            assert MigrationContext.configure(conn).get_current_revision() is not None


class TestUsageRekeyMigration:
    def test_0008_moves_rollups_of_events_naming_a_subscription_to_its_key(
        self, db_url: str, container: Container, tenant: Tenant
    ) -> None:
        from tests.integration.billing_helpers import make_price
        from tests.integration.usage_helpers import batch, customer, metric

        metric(tenant, "gb", "sum", property="v")
        price = make_price(container, tenant.org_id, name="Usage", model="per_unit", unit="1", metric="gb")
        cus = customer(tenant)
        sub = tenant.post("/v1/subscriptions", {"customer_id": cus, "items": [{"price_id": price}]}).json()[
            "id"
        ]
        at = "2024-06-03T10:15:00Z"
        events = [
            {
                "transaction_id": "c1",
                "customer_id": cus,
                "metric_code": "gb",
                "timestamp": at,
                "properties": {"v": 2},
            },
            {
                "transaction_id": "s1",
                "subscription_id": sub,
                "metric_code": "gb",
                "timestamp": at,
                "properties": {"v": 5},
            },
            {
                "transaction_id": "s2",
                "subscription_id": sub,
                "metric_code": "gb",
                "timestamp": "2024-06-03T11:00:00Z",
                "properties": {"v": 1},
            },
        ]
        assert batch(tenant, events)["accepted"] == 3
        expected = _rollups(container)
        cfg = alembic_config(db_url)
        command.downgrade(cfg, "0006")
        _to_customer_keys(container, {sub: cus})  # the layout before 0008: everything under the customer

        command.upgrade(cfg, "head")

        assert (
            expected
            == {
                (cus, "gb", 1, 2_000000, 2_000000),
                (sub, "gb", 1, 5_000000, 5_000000),
                (sub, "gb", 1, 1_000000, 1_000000),
            }
            == _rollups(container)
        )


def _rollups(container: Container) -> set[tuple[str, str, int, int, int]]:
    """(key, metric, events, total, latest value) per rollup hour, shards added up."""
    with container.sessions() as s:
        rows = s.execute(
            select(
                UsageRollup.customer_id,
                UsageRollup.metric_code,
                UsageRollup.bucket,
                func.sum(UsageRollup.events),
                func.sum(UsageRollup.total),
                func.max(UsageRollup.latest_value),
            ).group_by(UsageRollup.customer_id, UsageRollup.metric_code, UsageRollup.bucket)
        ).all()
    return {(k, m, int(n), int(t), int(v)) for k, m, _b, n, t, v in rows}


def _to_customer_keys(container: Container, owners: dict[str, str]) -> None:
    with container.sessions() as s:
        merged: dict[tuple[str, str, str, object], list[object]] = {}
        for r in s.scalars(select(UsageRollup)):
            key = (r.org_id, owners.get(r.customer_id, r.customer_id), r.metric_code, r.group_key, r.bucket)
            row = merged.setdefault(key, [0, 0, None, None, None, None, None])  # type: ignore[index]
            row[0] += r.events
            row[1] += r.total
            row[2] = r.min_value if row[2] is None else min(row[2], r.min_value)
            row[3] = r.max_value if row[3] is None else max(row[3], r.max_value)
            if row[4] is None or (r.latest_at, r.latest_id) > (row[4], row[6]):
                row[4], row[5], row[6] = r.latest_at, r.latest_value, r.latest_id
        s.execute(delete(UsageRollup))
        for (org, cus, metric, group, bucket), (n, total, lo, hi, at, value, ident) in merged.items():
            s.add(
                UsageRollup(
                    org_id=org,
                    customer_id=cus,
                    metric_code=metric,
                    group_key=group,
                    bucket=bucket,
                    shard=0,
                    events=n,
                    total=total,
                    min_value=lo,
                    max_value=hi,
                    latest_at=at,
                    latest_value=value,
                    latest_id=ident,
                )
            )
        s.commit()
