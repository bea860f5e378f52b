"""HubSpotConnector against the fake HubSpot, through the official SDK. No database: these run once."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from decimal import Decimal

import pytest

from revflow.adapters.crm.hubspot import HubSpotConnector
from revflow.adapters.crm.hubspot.mapping import property_definitions
from revflow.services.ports import (
    BILLING_FIELDS,
    ConnectorError,
    CrmCompany,
    CrmConnector,
    CrmDeal,
    CrmWebhookSource,
    RateLimited,
    WebhookSignatureError,
)
from tests.fakes.hubspot import FakeHubSpot, sign_v3

HOOK_URL = "https://revflow.example.com/v1/webhooks/hubspot"


@pytest.fixture
def fake() -> Iterator[FakeHubSpot]:
    with FakeHubSpot(hang_seconds=1.5, webhook_url=HOOK_URL) as f:
        yield f


@pytest.fixture
def hs(fake: FakeHubSpot) -> HubSpotConnector:
    return HubSpotConnector(
        fake.access_token, client_secret=fake.client_secret, api_base=fake.url, timeout=0.5
    )


def _company(revflow_id: str = "cus_1", name: str = "Acme", **fields: str) -> CrmCompany:
    props = {"revflow_id": revflow_id, "plan": "pro", "mrr": "99.00", "currency": "EUR", **fields}
    return CrmCompany(external_id=None, name=name, domain="acme.io", properties=props)


def _deal(company_id: str | None, revflow_id: str = "sub_1", **kw: object) -> CrmDeal:
    base: dict[str, object] = {
        "external_id": None,
        "name": "Acme Pro",
        "company_external_id": company_id,
        "stage": "contractsent",
        "plan_code": "pro",
        "amount": Decimal("1188.00"),
        "properties": {"revflow_id": revflow_id, "status": "active", "next_renewal": "2027-01-31"},
    }
    base.update(kw)
    return CrmDeal(**base)  # type: ignore[arg-type]


class TestSetup:
    def test_is_a_crm_connector_and_webhook_source(self, hs: HubSpotConnector) -> None:
        connector: CrmConnector = hs
        source: CrmWebhookSource = hs

        assert connector.system == "hubspot"
        assert source.parse_webhook is not None

    def test_ensure_properties_creates_what_is_missing_once(
        self, fake: FakeHubSpot, hs: HubSpotConnector
    ) -> None:
        fake.reset_properties()

        created = hs.ensure_properties()
        again = hs.ensure_properties()

        names = [d["name"] for d in property_definitions("deals")]
        assert len(names) == len(BILLING_FIELDS)
        assert created == [f"companies.{n}" for n in names] + [f"deals.{n}" for n in names]
        assert again == []
        assert set(names) <= set(fake.property_names("companies"))
        unique = {n for n, d in fake.state.properties["deals"].items() if d["hasUniqueValue"]}
        assert unique == {"revflow_id"}
        assert fake.state.properties["deals"]["revflow_mrr"]["type"] == "number"


class TestUpsertCompany:
    def test_creates_with_billing_properties_and_reads_back(
        self, fake: FakeHubSpot, hs: HubSpotConnector
    ) -> None:
        ident = hs.upsert_company(_company(next_renewal="2027-01-31", overdue_balance="12.50"))

        read = hs.get_company(ident)

        (stored,) = fake.objects("companies")
        assert stored["id"] == ident
        assert (
            stored["properties"]["revflow_plan"] == "pro" and stored["properties"]["revflow_mrr"] == "99.00"
        )
        assert stored["properties"]["revflow_next_renewal"] == "2027-01-31"
        assert read.external_id == ident and read.name == "Acme" and read.domain == "acme.io"
        assert read.properties == {
            "revflow_id": "cus_1",
            "plan": "pro",
            "mrr": "99.00",
            "currency": "EUR",
            "next_renewal": "2027-01-31",
            "overdue_balance": "12.50",
        }
        assert read.updated_at is not None

    def test_is_idempotent_on_revflow_id(self, fake: FakeHubSpot, hs: HubSpotConnector) -> None:
        first = hs.upsert_company(_company())

        second = hs.upsert_company(_company(mrr="149.00", plan="business"))
        by_id = hs.upsert_company(
            CrmCompany(external_id=first, name="Acme SA", properties={"revflow_id": "cus_1", "mrr": "150"})
        )

        assert second == by_id == first
        (stored,) = fake.objects("companies")
        assert stored["properties"]["name"] == "Acme SA"
        assert (
            stored["properties"]["revflow_plan"] == "business"
            and stored["properties"]["revflow_mrr"] == "150"
        )

    def test_a_company_created_meanwhile_is_updated_not_duplicated(
        self, fake: FakeHubSpot, hs: HubSpotConnector
    ) -> None:
        other: list[str] = []
        # Another worker creates the same company between our lookup and our create: HubSpot answers 409.
        fake.before_next(
            "POST",
            "/crm/v3/objects/companies",
            lambda f: other.append(f.create("companies", {"name": "Acme", "revflow_id": "cus_1"})["id"]),
        )

        ident = hs.upsert_company(_company())

        assert [ident] == other
        (stored,) = fake.objects("companies")
        assert stored["properties"]["revflow_plan"] == "pro"
        assert [r.status for r in fake.requests if r.method == "POST"] == [409]

    def test_creating_needs_a_revflow_id(self, fake: FakeHubSpot, hs: HubSpotConnector) -> None:
        with pytest.raises(ConnectorError) as exc:
            hs.upsert_company(CrmCompany(external_id=None, name="Anon"))

        assert exc.value.retryable is False and exc.value.code == "missing_revflow_id"
        assert fake.requests == []

    def test_a_field_that_is_not_a_billing_field_is_refused(
        self, fake: FakeHubSpot, hs: HubSpotConnector
    ) -> None:
        with pytest.raises(ConnectorError) as exc:
            hs.upsert_company(_company(favourite_colour="blue"))

        assert exc.value.retryable is False and exc.value.code == "invalid_field"
        assert fake.objects("companies") == []


class TestFaults:
    def test_lost_201_then_retry_makes_exactly_one_company(
        self, fake: FakeHubSpot, hs: HubSpotConnector
    ) -> None:
        fake.inject_fault("timeout", method="POST", path="/crm/v3/objects/companies")

        with pytest.raises(ConnectorError) as exc:
            hs.upsert_company(_company())
        retried = hs.upsert_company(_company())

        assert exc.value.retryable is True and exc.value.code == "timeout"
        (stored,) = fake.objects("companies")
        assert stored["id"] == retried

    def test_429_is_rate_limited_with_retry_after_and_nothing_lost(
        self, fake: FakeHubSpot, hs: HubSpotConnector
    ) -> None:
        fake.inject_fault("429", method="POST", retry_after=7)

        with pytest.raises(RateLimited) as exc:
            hs.upsert_company(_company())
        retried = hs.upsert_company(_company())

        assert exc.value.retry_after == 7.0 and exc.value.retryable is True and exc.value.status == 429
        assert hs.rate_limit().remaining is not None and hs.rate_limit().remaining > 0
        assert [c["id"] for c in fake.objects("companies")] == [retried]

    def test_500_and_timeout_before_are_retryable(self, fake: FakeHubSpot, hs: HubSpotConnector) -> None:
        fake.inject_fault("500")
        fake.inject_fault("timeout_before")

        with pytest.raises(ConnectorError) as server:
            hs.upsert_company(_company())
        with pytest.raises(ConnectorError) as silent:
            hs.upsert_company(_company())
        hs.upsert_company(_company())

        assert (server.value.retryable, server.value.status, server.value.code) == (
            True,
            500,
            "internal_error",
        )
        assert (silent.value.retryable, silent.value.code) == (True, "timeout")
        assert len(fake.objects("companies")) == 1

    def test_malformed_answer_is_retryable_and_the_retry_finds_the_write(
        self, fake: FakeHubSpot, hs: HubSpotConnector
    ) -> None:
        fake.inject_fault("malformed", method="POST")

        with pytest.raises(ConnectorError) as exc:
            hs.upsert_company(_company())
        retried = hs.upsert_company(_company())

        assert exc.value.retryable is True and exc.value.code == "malformed_response"
        assert [c["id"] for c in fake.objects("companies")] == [retried]

    def test_validation_401_and_404_are_not_retryable(self, fake: FakeHubSpot, hs: HubSpotConnector) -> None:
        bad_token = HubSpotConnector("pat-na1-wrong", api_base=fake.url, timeout=0.5)

        with pytest.raises(ConnectorError) as invalid:
            hs.upsert_deal(_deal(None, stage="signed"))
        with pytest.raises(ConnectorError) as unauthorized:
            bad_token.get_company("1")
        with pytest.raises(ConnectorError) as missing:
            hs.get_deal("999")

        assert (invalid.value.retryable, invalid.value.status, invalid.value.code) == (
            False,
            400,
            "validation_error",
        )
        assert "INVALID_OPTION" in str(invalid.value)
        assert (unauthorized.value.retryable, unauthorized.value.status) == (False, 401)
        assert unauthorized.value.code == "invalid_authentication"
        assert (missing.value.retryable, missing.value.status, missing.value.code) == (
            False,
            404,
            "object_not_found",
        )
        assert fake.objects("deals") == []

    def test_rate_limit_reports_the_last_answers_headers(
        self, fake: FakeHubSpot, hs: HubSpotConnector
    ) -> None:
        fake.freeze_time()
        fake.set_rate_limit(remaining=3)
        before = hs.rate_limit()

        hs.upsert_company(_company())  # lookup (404) + create: 2 requests
        after_write = hs.rate_limit()
        hs.changes_since(None)  # search answers carry no rate-limit headers
        after_search = hs.rate_limit()
        with pytest.raises(RateLimited) as exc:
            hs.get_company(fake.objects("companies")[0]["id"])
            hs.get_company(fake.objects("companies")[0]["id"])

        assert before.limit is None and before.remaining is None
        assert (after_write.limit, after_write.remaining, after_write.window_seconds) == (190, 1, 10.0)
        assert after_search == after_write
        assert hs.rate_limit().remaining == 0
        assert exc.value.retry_after == 10.0


class TestDeals:
    def test_creates_a_deal_associated_with_its_company(
        self, fake: FakeHubSpot, hs: HubSpotConnector
    ) -> None:
        company = hs.upsert_company(_company())

        ident = hs.upsert_deal(_deal(company))
        read = hs.get_deal(ident)

        assert read.external_id == ident and read.company_external_id == company
        assert read.stage == "contractsent" and read.won is False
        assert read.plan_code == "pro" and read.amount == Decimal("1188.00")
        assert read.properties == {
            "revflow_id": "sub_1",
            "plan": "pro",
            "status": "active",
            "next_renewal": "2027-01-31",
        }
        (stored,) = fake.objects("deals")
        assert stored["associations"] == [("companies", company)]

    def test_upsert_is_idempotent_and_adds_a_missing_association(
        self, fake: FakeHubSpot, hs: HubSpotConnector
    ) -> None:
        first = hs.upsert_deal(_deal(None))
        company = hs.upsert_company(_company())

        again = hs.upsert_deal(_deal(company, plan_code="business"))
        once_more = hs.upsert_deal(_deal(company, plan_code="business"))

        assert first == again == once_more
        (stored,) = fake.objects("deals")
        assert stored["properties"]["revflow_plan"] == "business"
        assert stored["associations"] == [("companies", company)]
        assert sum(1 for r in fake.requests if r.method == "PUT") == 1

    def test_lost_201_on_a_deal_then_retry_makes_one_deal(
        self, fake: FakeHubSpot, hs: HubSpotConnector
    ) -> None:
        company = hs.upsert_company(_company())
        fake.inject_fault("timeout", method="POST", path="/crm/v3/objects/deals")

        with pytest.raises(ConnectorError):
            hs.upsert_deal(_deal(company))
        ident = hs.upsert_deal(_deal(company))

        assert [d["id"] for d in fake.objects("deals")] == [ident]
        assert hs.get_deal(ident).company_external_id == company

    def test_a_user_moving_the_deal_to_closed_won_is_read_as_won(
        self, fake: FakeHubSpot, hs: HubSpotConnector
    ) -> None:
        ident = hs.upsert_deal(_deal(hs.upsert_company(_company())))

        fake.edit("deals", ident, dealstage="closedwon", revflow_plan="enterprise")
        read = hs.get_deal(ident)

        assert read.won is True and read.stage == "closedwon" and read.plan_code == "enterprise"


class TestChangesSince:
    def test_pages_through_everything_once_in_modification_order(
        self, fake: FakeHubSpot, hs: HubSpotConnector
    ) -> None:
        company_ids = []
        for i in range(3):
            company_ids.append(hs.upsert_company(_company(f"cus_{i}", name=f"c{i}")))
            fake.advance_time(5)
        deal = hs.upsert_deal(_deal(company_ids[0]))
        before = len(fake.requests)

        first = hs.changes_since(None, limit=2)
        calls = [(r.method, r.path) for r in fake.requests[before:]]
        second = hs.changes_since(first.cursor, limit=2)
        third = hs.changes_since(second.cursor, limit=2)

        assert [c.external_id for c in first.companies] == company_ids[:2]
        assert [d.external_id for d in first.deals] == [deal]
        assert first.deals[0].company_external_id == company_ids[0]
        assert first.deals[0].plan_code == "pro" and first.deals[0].amount == Decimal("1188.00")
        assert first.has_more is True
        assert [c.external_id for c in second.companies] == company_ids[2:]
        assert second.deals == [] and second.has_more is False
        assert third.cursor is None and third.companies == [] and third.deals == []
        assert calls == [
            ("POST", "/crm/v3/objects/companies/search"),
            ("POST", "/crm/v3/objects/deals/search"),
            ("POST", "/crm/v4/associations/deals/companies/batch/read"),
        ]

    def test_ties_at_one_millisecond_are_neither_lost_nor_repeated(
        self, fake: FakeHubSpot, hs: HubSpotConnector
    ) -> None:
        fake.freeze_time()
        made = [hs.upsert_company(_company(f"cus_{i}", name=f"c{i}")) for i in range(5)]
        assert len({c["updatedAt"] for c in fake.objects("companies")}) == 1

        seen: list[str] = []
        cursor = None
        for _ in range(5):
            page = hs.changes_since(cursor, limit=2)
            if page.cursor is None:
                break
            seen += [str(c.external_id) for c in page.companies]
            cursor = page.cursor
        fake.advance_time(1)
        fake.edit("companies", made[1], name="renamed")
        after_edit = hs.changes_since(cursor, limit=2)

        assert sorted(seen) == sorted(made) and len(seen) == 5
        assert [(c.external_id, c.name) for c in after_edit.companies] == [(made[1], "renamed")]

    def test_an_object_changed_after_the_cursor_comes_back(
        self, fake: FakeHubSpot, hs: HubSpotConnector
    ) -> None:
        ident = hs.upsert_deal(_deal(hs.upsert_company(_company())))
        cursor = hs.changes_since(None).cursor
        fake.advance_time(1000)

        fake.edit("deals", ident, dealstage="closedwon")
        page = hs.changes_since(cursor)

        assert page.companies == []
        assert [(d.external_id, d.won, d.plan_code) for d in page.deals] == [(ident, True, "pro")]
        assert page.cursor is not None and page.cursor != cursor

    def test_search_lag_delays_but_loses_nothing(self) -> None:
        with FakeHubSpot(search_lag_ms=1000) as fake:
            hs = HubSpotConnector(fake.access_token, api_base=fake.url, timeout=0.5)
            fake.freeze_time()
            made, seen = [], []
            cursor = None
            for i in range(6):
                made.append(hs.upsert_company(_company(f"cus_{i}", name=f"c{i}")))
                assert (
                    hs.upsert_company(_company(f"cus_{i}", name=f"c{i}")) == made[-1]
                )  # lookup is not search
                fake.advance_time(400)
                page = hs.changes_since(cursor, limit=2)
                seen += [str(c.external_id) for c in page.companies]
                cursor = page.cursor or cursor
            fake.advance_time(1000)
            while (page := hs.changes_since(cursor, limit=2)).cursor is not None:
                seen += [str(c.external_id) for c in page.companies]
                cursor = page.cursor

        assert seen == made
        assert len(fake.objects("companies")) == 6

    def test_a_garbled_cursor_is_refused(self, hs: HubSpotConnector) -> None:
        with pytest.raises(ConnectorError) as exc:
            hs.changes_since("not-json")

        assert exc.value.retryable is False and exc.value.code == "invalid_cursor"


class TestWebhooks:
    @pytest.fixture(autouse=True)
    def _subscriptions(self, fake: FakeHubSpot) -> None:
        fake.subscribe("deal.propertyChange", "dealstage")
        fake.subscribe("deal.propertyChange", "revflow_plan")
        fake.subscribe("deal.creation")

    def test_verified_events_become_crm_changes(self, fake: FakeHubSpot, hs: HubSpotConnector) -> None:
        deal = fake.create("deals", {"dealname": "Acme", "dealstage": "contractsent"})
        fake.edit("deals", deal["id"], dealstage="closedwon", revflow_plan="pro")

        changes = hs.parse_webhook(*fake.sign(), method="POST", url=HOOK_URL)

        assert [(c.object_type, c.change, c.property_name, c.property_value) for c in changes] == [
            ("deal", "created", None, None),
            ("deal", "updated", "stage", "contractsent"),
            ("deal", "updated", "stage", "closedwon"),
            ("deal", "updated", "plan", "pro"),
        ]
        assert {c.external_id for c in changes} == {deal["id"]}
        assert len({c.event_id for c in changes}) == 4
        assert changes[-1].occurred_at.tzinfo is not None

    def test_a_redelivery_carries_the_same_event_ids(self, fake: FakeHubSpot, hs: HubSpotConnector) -> None:
        fake.create("deals", {"dealname": "Acme"})
        bodies: list[tuple[bytes, dict[str, str]]] = []

        fake.deliver_webhooks(lambda body, headers: bodies.append((body, headers)) or 500)
        fake.deliver_webhooks(lambda body, headers: bodies.append((body, headers)) or 200)
        first, second = (hs.parse_webhook(b, h, method="POST", url=HOOK_URL) for b, h in bodies)

        assert json.loads(bodies[1][0])[0]["attemptNumber"] == 1
        assert [c.event_id for c in first] == [c.event_id for c in second]

    def test_out_of_order_batches_keep_their_occurrence_times(
        self, fake: FakeHubSpot, hs: HubSpotConnector
    ) -> None:
        deal = fake.create("deals", {"dealname": "Acme"})
        fake.advance_time(1000)
        fake.edit("deals", deal["id"], revflow_plan="basic")
        fake.advance_time(1000)
        fake.edit("deals", deal["id"], revflow_plan="pro")
        events = fake.pending_webhooks()

        late = hs.parse_webhook(*fake.sign([events[2]]), method="POST", url=HOOK_URL)
        early = hs.parse_webhook(*fake.sign([events[1]]), method="POST", url=HOOK_URL)

        assert late[0].property_value == "pro" and early[0].property_value == "basic"
        assert late[0].occurred_at > early[0].occurred_at

    def test_bad_signatures_are_refused(self, fake: FakeHubSpot, hs: HubSpotConnector) -> None:
        fake.create("deals", {"dealname": "Acme"})
        body, headers = fake.sign()
        stale_body, stale_headers = fake.sign(timestamp_ms=int((time.time() - 301) * 1000))
        _, forged = fake.sign(secret="not-the-secret")
        no_secret = HubSpotConnector(fake.access_token, api_base=fake.url)

        refused = [
            lambda: hs.parse_webhook(body + b" ", headers, method="POST", url=HOOK_URL),
            lambda: hs.parse_webhook(body, headers, method="POST", url=HOOK_URL + "?x=1"),
            lambda: hs.parse_webhook(body, headers, method="PUT", url=HOOK_URL),
            lambda: hs.parse_webhook(stale_body, stale_headers, method="POST", url=HOOK_URL),
            lambda: hs.parse_webhook(body, forged, method="POST", url=HOOK_URL),
            lambda: hs.parse_webhook(body, {}, method="POST", url=HOOK_URL),
            lambda: no_secret.parse_webhook(body, headers, method="POST", url=HOOK_URL),
        ]
        for call in refused:
            with pytest.raises(WebhookSignatureError):
                call()

        assert len(hs.parse_webhook(body, headers, method="POST", url=HOOK_URL)) == 1

    def test_header_names_are_case_insensitive(self, fake: FakeHubSpot, hs: HubSpotConnector) -> None:
        fake.create("deals", {"dealname": "Acme"})
        body, headers = fake.sign()

        changes = hs.parse_webhook(
            body, {k.lower(): v for k, v in headers.items()}, method="post", url=HOOK_URL
        )

        assert [c.change for c in changes] == ["created"]

    def test_signed_but_malformed_bodies_are_value_errors(
        self, fake: FakeHubSpot, hs: HubSpotConnector
    ) -> None:
        for events in ({"not": "a list"}, [{"subscriptionType": "deal.creation"}], ["x"], "{"):
            body = (events if isinstance(events, str) else json.dumps(events)).encode()
            headers = sign_v3(body, fake.client_secret, url=HOOK_URL)

            with pytest.raises(ValueError):
                hs.parse_webhook(body, headers, method="POST", url=HOOK_URL)

    def test_other_object_types_are_skipped(self, fake: FakeHubSpot, hs: HubSpotConnector) -> None:
        event = {
            "eventId": 1,
            "subscriptionId": 2,
            "portalId": 3,
            "occurredAt": 1_700_000_000_000,
            "subscriptionType": "contact.propertyChange",
            "objectId": 4,
            "propertyName": "email",
            "propertyValue": "a@example.com",
            "attemptNumber": 0,
        }
        body = json.dumps([event]).encode()

        changes = hs.parse_webhook(
            body, sign_v3(body, fake.client_secret, url=HOOK_URL), method="POST", url=HOOK_URL
        )

        assert changes == []
