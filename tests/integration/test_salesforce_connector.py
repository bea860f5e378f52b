"""SalesforceConnector against the fake Salesforce, through simple-salesforce. No database: these run once."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from revflow.adapters.crm.salesforce import SalesforceConnector
from revflow.services.ports import (
    ConnectorError,
    CrmCompany,
    CrmConnector,
    CrmDeal,
    RateLimited,
    RateLimitStatus,
)
from tests.fakes.salesforce import FakeSalesforce

T0 = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
TODAY = date(2026, 3, 2)


@pytest.fixture
def fake() -> Iterator[FakeSalesforce]:
    with FakeSalesforce(hang_seconds=6.0) as f:
        yield f


def _password_connector(fake: FakeSalesforce, **kw: object) -> SalesforceConnector:
    return SalesforceConnector(
        username=fake.username,
        password=fake.password,
        security_token=fake.security_token,
        login_url=fake.login_url,
        ca_file=fake.ca_file,
        timeout=1.5,  # generous: the machine is shared; the fake holds timeout faults for 6 s
        today=lambda: TODAY,
        **kw,  # type: ignore[arg-type]
    )


@pytest.fixture
def crm(fake: FakeSalesforce) -> SalesforceConnector:
    return _password_connector(fake, settle_seconds=0)


def _company(revflow_id: str = "cus_1", **properties: str) -> CrmCompany:
    return CrmCompany(
        external_id=None,
        name="Acme",
        domain="acme.example",
        properties={"revflow_id": revflow_id, **properties},
    )


def _deal(account: str, revflow_id: str = "sub_1", **kw: object) -> CrmDeal:
    return CrmDeal(
        external_id=None,
        name="Acme — Pro",
        company_external_id=account,
        plan_code="pro",
        amount=Decimal("1198.80"),
        currency="EUR",
        properties={"revflow_id": revflow_id, "mrr": "99.90"},
        **kw,  # type: ignore[arg-type]
    )


class TestConstruction:
    def test_is_a_crm_connector(self, crm: SalesforceConnector) -> None:
        port: CrmConnector = crm

        assert port.system == "salesforce"
        assert repr(crm) == "SalesforceConnector(...)"

    def test_needs_a_session_or_credentials(self) -> None:
        with pytest.raises(ValueError, match="session_id"):
            SalesforceConnector(username="someone@example.com")

    def test_session_id_and_instance_url(self, fake: FakeSalesforce) -> None:
        crm = SalesforceConnector(instance_url=fake.url, session_id=fake.session_id, ca_file=fake.ca_file)

        account = crm.upsert_company(_company())

        assert crm.get_company(account).name == "Acme"
        assert fake.logins == 0

    def test_logs_in_lazily_once(self, fake: FakeSalesforce, crm: SalesforceConnector) -> None:
        assert fake.logins == 0

        crm.upsert_company(_company("cus_1"))
        crm.upsert_company(_company("cus_2"))

        assert fake.logins == 1

    def test_wrong_password_is_not_retryable(self, fake: FakeSalesforce) -> None:
        crm = SalesforceConnector(
            username=fake.username,
            password="wrong",
            security_token=fake.security_token,
            login_url=fake.login_url,
            ca_file=fake.ca_file,
        )

        with pytest.raises(ConnectorError) as exc:
            crm.get_company("001000000000000AAA")

        assert (exc.value.code, exc.value.retryable) == ("INVALID_LOGIN", False)

    def test_tls_is_verified_against_the_system_store_by_default(self, fake: FakeSalesforce) -> None:
        crm = SalesforceConnector(instance_url=fake.url, session_id=fake.session_id)

        with pytest.raises(ConnectorError) as exc:
            crm.get_company("001000000000000AAA")

        assert (exc.value.code, exc.value.retryable) == ("tls_error", False)
        assert fake.requests == []


class TestCompanies:
    def test_upsert_creates_once_keyed_on_the_revflow_id(
        self, fake: FakeSalesforce, crm: SalesforceConnector
    ) -> None:
        first = crm.upsert_company(
            _company(plan="pro", mrr="99.90", currency="eur", next_renewal="2026-04-01")
        )
        again = crm.upsert_company(_company(plan="enterprise", status="active"))

        (record,) = fake.records("Account")
        assert first == again == record["Id"]
        assert (record["Name"], record["Website"], record["Revflow_Id__c"]) == (
            "Acme",
            "acme.example",
            "cus_1",
        )
        assert (record["Revflow_Plan__c"], record["Revflow_MRR__c"], record["CurrencyIsoCode"]) == (
            "enterprise",
            Decimal("99.90"),
            "EUR",
        )
        assert (record["Revflow_Next_Renewal__c"], record["Revflow_Status__c"]) == ("2026-04-01", "active")
        assert [r.path.rsplit("/", 2)[-2:] for r in fake.requests if r.method == "PATCH"] == [
            ["Revflow_Id__c", "cus_1"],
            ["Revflow_Id__c", "cus_1"],
        ]

    def test_known_external_id_updates_by_id(self, fake: FakeSalesforce, crm: SalesforceConnector) -> None:
        account = crm.upsert_company(_company())

        same = crm.upsert_company(
            CrmCompany(
                external_id=account,
                name="Acme Inc",
                properties={"payment_status": "past_due", "overdue_balance": "120.00"},
            )
        )

        assert same == account
        record = fake.record("Account", account)
        assert record is not None
        assert (
            record["Name"],
            record["Revflow_Payment_Status__c"],
            record["Revflow_Overdue_Balance__c"],
        ) == (
            "Acme Inc",
            "past_due",
            120,
        )
        assert fake.requests[-1].path.endswith(f"/sobjects/Account/{account}")

    def test_get_company_reads_billing_fields_back(self, crm: SalesforceConnector) -> None:
        account = crm.upsert_company(
            _company(plan="pro", mrr="99.90", overdue_balance="0", next_renewal="2026-04-01")
        )

        company = crm.get_company(account)

        assert company.external_id == account
        assert (company.name, company.domain) == ("Acme", "acme.example")
        assert company.properties == {
            "revflow_id": "cus_1",
            "plan": "pro",
            "mrr": "99.9",
            "currency": "USD",
            "next_renewal": "2026-04-01",
            "overdue_balance": "0",
        }
        assert company.updated_at is not None and company.updated_at.tzinfo is not None

    def test_unmapped_property_or_bad_value_sends_nothing(
        self, fake: FakeSalesforce, crm: SalesforceConnector
    ) -> None:
        with pytest.raises(ConnectorError) as unknown:
            crm.upsert_company(_company(seats="3"))
        with pytest.raises(ConnectorError) as bad_number:
            crm.upsert_company(_company(mrr="ninety"))
        with pytest.raises(ConnectorError) as no_key:
            crm.upsert_company(CrmCompany(external_id=None, name="Acme"))

        assert [e.value.code for e in (unknown, bad_number, no_key)] == [
            "unmappable_value",
            "unmappable_value",
            "missing_revflow_id",
        ]
        assert not any(e.value.retryable for e in (unknown, bad_number, no_key))
        assert fake.requests == []

    def test_missing_account_is_not_found(self, crm: SalesforceConnector) -> None:
        with pytest.raises(ConnectorError) as exc:
            crm.get_company("001000000000000AAA")

        assert (exc.value.code, exc.value.status, exc.value.retryable) == ("NOT_FOUND", 404, False)

    def test_malformed_id_never_reaches_salesforce(
        self, fake: FakeSalesforce, crm: SalesforceConnector
    ) -> None:
        with pytest.raises(ConnectorError) as exc:
            crm.get_company("../limits")

        assert exc.value.code == "MALFORMED_ID"
        assert fake.requests == []

    def test_single_currency_org(self, fake: FakeSalesforce) -> None:
        fake.state.multi_currency = False
        writes_currency = _password_connector(fake)
        plain = _password_connector(fake, multi_currency=False)

        with pytest.raises(ConnectorError) as exc:
            writes_currency.upsert_company(_company(currency="EUR"))
        account = plain.upsert_company(_company(currency="EUR", mrr="10"))

        assert (exc.value.code, exc.value.status, exc.value.retryable) == ("INVALID_FIELD", 400, False)
        assert plain.get_company(account).properties == {"revflow_id": "cus_1", "mrr": "10"}

    def test_api_version_before_46_finds_the_id_after_a_204(self, fake: FakeSalesforce) -> None:
        crm = _password_connector(fake, api_version="45.0")

        first = crm.upsert_company(_company())
        again = crm.upsert_company(_company(plan="pro"))

        assert first == again
        assert [r.status for r in fake.requests if r.path.startswith("/services/data")] == [201, 204, 200]


class TestDeals:
    def test_new_opportunity_gets_stage_and_close_date_only_when_created(
        self, fake: FakeSalesforce, crm: SalesforceConnector
    ) -> None:
        account = crm.upsert_company(_company())

        deal = crm.upsert_deal(_deal(account))
        fake.edit("Opportunity", deal, CloseDate="2026-06-30", StageName="Negotiation/Review")
        again = crm.upsert_deal(_deal(account))

        record = fake.record("Opportunity", deal)
        assert record is not None and again == deal
        assert (record["CloseDate"], record["StageName"]) == ("2026-06-30", "Negotiation/Review")
        assert (
            record["AccountId"],
            record["Revflow_Plan__c"],
            record["Amount"],
            record["CurrencyIsoCode"],
        ) == (
            account,
            "pro",
            Decimal("1198.80"),
            "EUR",
        )
        assert len(fake.records("Opportunity")) == 1
        statuses = [(r.method, r.status) for r in fake.requests if "/Opportunity/" in r.path]
        assert statuses == [
            ("PATCH", 400),
            ("PATCH", 201),
            ("PATCH", 200),
        ]  # REQUIRED_FIELD_MISSING, then defaults

    def test_won_deal_and_read_back(self, crm: SalesforceConnector) -> None:
        account = crm.upsert_company(_company())

        deal_id = crm.upsert_deal(_deal(account, won=True))
        deal = crm.get_deal(deal_id)

        assert (deal.stage, deal.won, deal.plan_code) == ("Closed Won", True, "pro")
        assert (deal.amount, deal.currency, deal.company_external_id) == (Decimal("1198.8"), "EUR", account)
        assert deal.properties == {"revflow_id": "sub_1", "plan": "pro", "mrr": "99.9", "currency": "EUR"}

    def test_unknown_account_is_refused_without_retry(self, crm: SalesforceConnector) -> None:
        with pytest.raises(ConnectorError) as exc:
            crm.upsert_deal(_deal("001000000000000AAA"))

        assert (exc.value.code, exc.value.retryable) == ("INVALID_CROSS_REFERENCE_KEY", False)


class TestFaults:
    @pytest.mark.parametrize("kind", ["timeout", "malformed"])
    def test_lost_answer_then_retry_creates_once(
        self, fake: FakeSalesforce, crm: SalesforceConnector, kind: str
    ) -> None:
        fake.fail_next(kind, path="/sobjects/Account")  # type: ignore[arg-type]

        with pytest.raises(ConnectorError) as exc:
            crm.upsert_company(_company())
        retried = crm.upsert_company(_company(plan="pro"))

        assert exc.value.retryable is True
        assert exc.value.code == {"timeout": "timeout", "malformed": "malformed_response"}[kind]
        (record,) = fake.records("Account")
        assert (record["Id"], record["Revflow_Plan__c"]) == (retried, "pro")

    @pytest.mark.parametrize(("kind", "status"), [("500", 500), ("503", 503), ("timeout_before", None)])
    def test_failures_before_the_work_are_retryable(
        self, fake: FakeSalesforce, crm: SalesforceConnector, kind: str, status: int | None
    ) -> None:
        fake.fail_next(kind, path="/sobjects/Account")  # type: ignore[arg-type]

        with pytest.raises(ConnectorError) as exc:
            crm.upsert_company(_company())
        nothing = fake.records("Account")
        crm.upsert_company(_company())

        assert (exc.value.retryable, exc.value.status) == (True, status)
        assert nothing == []
        assert len(fake.records("Account")) == 1

    def test_request_limit_exceeded_is_rate_limited(
        self, fake: FakeSalesforce, crm: SalesforceConnector
    ) -> None:
        fake.fail_next("REQUEST_LIMIT_EXCEEDED")

        with pytest.raises(RateLimited) as exc:
            crm.upsert_company(_company())

        assert (exc.value.retry_after, exc.value.status, exc.value.retryable) == (3600.0, 403, True)
        assert exc.value.code == "rate_limited"
        assert fake.records("Account") == []

    def test_exhausted_daily_allowance_is_rate_limited(
        self, fake: FakeSalesforce, crm: SalesforceConnector
    ) -> None:
        crm.upsert_company(_company())
        fake.set_api_usage(used=15000)

        with pytest.raises(RateLimited):
            crm.changes_since(None)

    def test_expired_session_logs_in_again_once(self, fake: FakeSalesforce, crm: SalesforceConnector) -> None:
        crm.upsert_company(_company("cus_1"))
        fake.expire_sessions()

        crm.upsert_company(_company("cus_2"))
        fake.fail_next("expired_session")
        crm.upsert_company(_company("cus_3"))

        assert fake.logins == 3
        assert sorted(r["Revflow_Id__c"] for r in fake.records("Account")) == ["cus_1", "cus_2", "cus_3"]

    def test_session_expiring_again_after_login_is_not_retried_forever(
        self, fake: FakeSalesforce, crm: SalesforceConnector
    ) -> None:
        fake.fail_next("expired_session", count=2)

        with pytest.raises(ConnectorError) as exc:
            crm.upsert_company(_company())

        assert (exc.value.code, exc.value.status, exc.value.retryable) == ("INVALID_SESSION_ID", 401, False)
        assert fake.logins == 2
        assert fake.records("Account") == []

    def test_expired_token_without_credentials_is_not_retryable(self, fake: FakeSalesforce) -> None:
        crm = SalesforceConnector(instance_url=fake.url, session_id=fake.session_id, ca_file=fake.ca_file)
        fake.expire_sessions()

        with pytest.raises(ConnectorError) as exc:
            crm.get_company("001000000000000AAA")

        assert (exc.value.code, exc.value.retryable) == ("INVALID_SESSION_ID", False)


class TestRateLimit:
    def test_reports_the_last_sforce_limit_info(self, fake: FakeSalesforce, crm: SalesforceConnector) -> None:
        before = crm.rate_limit()
        fake.set_api_usage(used=4000, limit=5000)

        crm.upsert_company(_company())

        assert before == RateLimitStatus()
        assert crm.rate_limit() == RateLimitStatus(limit=5000, remaining=999, window_seconds=86400.0)


class TestPolling:
    def test_first_poll_returns_everything_oldest_first(
        self, fake: FakeSalesforce, crm: SalesforceConnector
    ) -> None:
        fake.freeze_clock(T0)
        account = crm.upsert_company(_company())
        fake.advance_clock(1)
        deal = crm.upsert_deal(_deal(account))
        fake.advance_clock(1)

        page = crm.changes_since(None)
        again = crm.changes_since(page.cursor)

        assert [c.external_id for c in page.companies] == [account]
        assert [d.external_id for d in page.deals] == [deal]
        assert page.has_more is False and page.cursor is not None
        assert again == type(again)(companies=[], deals=[], cursor=None, has_more=False)

    def test_same_second_records_across_pages_are_neither_skipped_nor_repeated(
        self, fake: FakeSalesforce, crm: SalesforceConnector
    ) -> None:
        fake.freeze_clock(T0)
        fake.batch_size = 2  # SOQL pages of 2 as well as connector pages of 2
        ids = [crm.upsert_company(_company(f"cus_{i}")) for i in range(5)]
        fake.advance_clock(1)

        seen: list[str] = []
        cursor, pages = None, 0
        while True:
            page = crm.changes_since(cursor, limit=2)
            if page.cursor is None:
                break
            seen += [c.external_id or "" for c in page.companies]
            cursor, pages = page.cursor, pages + 1

        assert seen == ids
        assert pages == 3

    def test_edit_in_the_second_already_read_is_not_skipped(
        self, fake: FakeSalesforce, crm: SalesforceConnector
    ) -> None:
        fake.freeze_clock(T0)
        low, high = crm.upsert_company(_company("cus_low")), crm.upsert_company(_company("cus_high"))
        fake.advance_clock(10)
        cursor = crm.changes_since(None).cursor

        fake.edit("Account", high, Revflow_Plan__c="enterprise")  # 09:30:10
        during = crm.changes_since(cursor)  # Salesforce answers within 09:30:10: not settled yet
        fake.edit("Account", low, Revflow_Plan__c="enterprise")  # the same second, a lower Id
        fake.advance_clock(1)
        after = crm.changes_since(cursor)

        assert low < high
        assert during.companies == [] and during.cursor is None
        assert [(c.external_id, c.properties["plan"]) for c in after.companies] == [
            (low, "enterprise"),
            (high, "enterprise"),
        ]

    def test_settle_window_waits_for_late_commits(self, fake: FakeSalesforce) -> None:
        crm = _password_connector(fake)  # default 5 seconds
        fake.freeze_clock(T0)
        crm.upsert_company(_company())

        fake.advance_clock(5)
        early = crm.changes_since(None)
        fake.advance_clock(1)
        settled = crm.changes_since(None)

        assert early.companies == []
        assert len(settled.companies) == 1

    def test_limit_spans_both_objects_in_time_order(
        self, fake: FakeSalesforce, crm: SalesforceConnector
    ) -> None:
        fake.freeze_clock(T0)
        a1 = crm.upsert_company(_company("cus_1"))
        fake.advance_clock(1)
        d1 = crm.upsert_deal(_deal(a1, "sub_1"))
        fake.advance_clock(1)
        a2 = crm.upsert_company(_company("cus_2"))
        fake.advance_clock(1)

        first = crm.changes_since(None, limit=2)
        second = crm.changes_since(first.cursor, limit=2)

        assert ([c.external_id for c in first.companies], [d.external_id for d in first.deals]) == (
            [a1],
            [d1],
        )
        assert first.has_more is True
        assert ([c.external_id for c in second.companies], second.deals, second.has_more) == ([a2], [], False)

    def test_an_object_with_more_rows_holds_the_other_back(
        self, fake: FakeSalesforce, crm: SalesforceConnector
    ) -> None:
        fake.freeze_clock(T0)
        a1 = crm.upsert_company(_company("cus_1"))
        fake.advance_clock(1)
        a2 = crm.upsert_company(_company("cus_2"))
        fake.advance_clock(1)
        d1 = crm.upsert_deal(_deal(a1, "sub_1"))
        fake.advance_clock(1)
        a3 = crm.upsert_company(_company("cus_3"))
        fake.advance_clock(1)

        first = crm.changes_since(None, limit=2)
        second = crm.changes_since(first.cursor, limit=2)

        assert ([c.external_id for c in first.companies], first.deals, first.has_more) == ([a1, a2], [], True)
        assert [c.external_id for c in second.companies] == [a3]
        assert [d.external_id for d in second.deals] == [d1]
        assert second.has_more is False

    def test_faults_while_polling_lose_nothing(self, fake: FakeSalesforce, crm: SalesforceConnector) -> None:
        fake.freeze_clock(T0)
        fake.batch_size = 2
        ids = [crm.upsert_company(_company(f"cus_{i}")) for i in range(4)]
        fake.advance_clock(1)
        fake.fail_next("503", path="/query/")  # the second SOQL page
        fake.fail_next("REQUEST_LIMIT_EXCEEDED", path="/query")

        errors: list[str] = []
        seen: list[str] = []
        cursor = None
        for _ in range(10):
            try:
                page = crm.changes_since(cursor, limit=3)
            except ConnectorError as exc:
                assert exc.retryable
                errors.append(exc.code or "")
                continue
            if page.cursor is None:
                break
            seen += [c.external_id or "" for c in page.companies]
            cursor = page.cursor

        assert errors == ["rate_limited", "SERVER_UNAVAILABLE"]
        assert seen == ids

    def test_bad_cursor_is_refused(self, crm: SalesforceConnector) -> None:
        with pytest.raises(ConnectorError) as exc:
            crm.changes_since('{"Account": ["yesterday", "x"]}')

        assert (exc.value.code, exc.value.retryable) == ("invalid_cursor", False)
