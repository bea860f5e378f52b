"""The fake Salesforce answers ``simple-salesforce`` as a Salesforce org does: every answer parses through the
SDK, and every error arrives as the SDK's own exception with Salesforce's error body. No database: these run
once, not per storage backend."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceError,
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)
from simple_salesforce.login import SalesforceLogin

from tests.fakes.salesforce import FakeSalesforce, SalesforceApiError

T0 = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


@pytest.fixture
def fake() -> Iterator[FakeSalesforce]:
    with FakeSalesforce(hang_seconds=6.0) as f:
        yield f


@pytest.fixture
def sf(fake: FakeSalesforce) -> Salesforce:
    return fake.sdk()


def _error(exc: SalesforceError) -> dict[str, Any]:
    assert isinstance(exc.content, list) and len(exc.content) == 1
    error: dict[str, Any] = exc.content[0]
    return error


class TestTransport:
    def test_serves_tls_that_only_the_fake_ca_verifies(self, fake: FakeSalesforce) -> None:
        untrusted = requests.Session()
        untrusted.trust_env = False  # the system CA store, which does not know the fake's CA

        with pytest.raises(requests.exceptions.SSLError):
            untrusted.get(f"{fake.url}/services/data/v59.0/limits", timeout=5)
        answer = fake.http_session().get(
            f"{fake.url}/services/data/v59.0/limits",
            headers={"Authorization": f"Bearer {fake.session_id}"},
            timeout=5,
        )

        assert fake.url.startswith("https://127.0.0.1:")
        assert answer.status_code == 200
        assert answer.json()["DailyApiRequests"]["Max"] == 15000

    def test_unknown_api_version_and_path_are_not_found(self, fake: FakeSalesforce, sf: Salesforce) -> None:
        old = fake.sdk()
        old.base_url = old.base_url.replace("v59.0", "v12.0")

        with pytest.raises(SalesforceResourceNotFound) as version:
            old.limits()
        with pytest.raises(SalesforceResourceNotFound) as path:
            sf.restful("sobjects/Lead/00Q000000000001")

        assert _error(version.value) == {
            "message": "The requested resource does not exist",
            "errorCode": "NOT_FOUND",
        }
        assert _error(path.value)["errorCode"] == "NOT_FOUND"


class TestLogin:
    def test_soap_username_password_login(self, fake: FakeSalesforce) -> None:
        session_id, instance = SalesforceLogin(
            username=fake.username,
            password=fake.password,
            security_token=fake.security_token,
            session=fake.http_session(),
            scratch_url=fake.login_url,
        )
        sf = Salesforce(session_id=session_id, instance=instance, session=fake.http_session())

        assert instance == fake.url.removeprefix("https://")
        assert session_id.startswith("00D") and "!" in session_id
        assert sf.query("SELECT Id FROM Account")["totalSize"] == 0
        assert fake.logins == 1

    def test_wrong_password_is_an_invalid_login_fault(self, fake: FakeSalesforce) -> None:
        with pytest.raises(SalesforceAuthenticationFailed) as exc:
            SalesforceLogin(
                username=fake.username,
                password="wrong",
                security_token=fake.security_token,
                session=fake.http_session(),
                scratch_url=fake.login_url,
            )

        assert exc.value.code == "INVALID_LOGIN"
        assert exc.value.auth_message == "Invalid username, password, security token; or user locked out."
        assert fake.logins == 0

    def test_expired_sessions_answer_401_invalid_session_id(
        self, fake: FakeSalesforce, sf: Salesforce
    ) -> None:
        fake.expire_sessions()

        with pytest.raises(SalesforceExpiredSession) as exc:
            sf.query("SELECT Id FROM Account")
        fresh = fake.sdk()  # the fake's current session id is a new one

        assert exc.value.status == 401
        assert _error(exc.value) == {
            "message": "Session expired or invalid",
            "errorCode": "INVALID_SESSION_ID",
        }
        assert fresh.query("SELECT Id FROM Account")["done"] is True


class TestRecords:
    def test_create_get_update_delete(self, fake: FakeSalesforce, sf: Salesforce) -> None:
        created = sf.Account.create({"Name": "Acme", "Website": "acme.example", "Revflow_MRR__c": "99.50"})

        fetched = sf.Account.get(created["id"])
        updated = sf.Account.update(created["id"], {"Revflow_Plan__c": "pro"})
        after = sf.Account.get(created["id"])
        deleted = sf.Account.delete(created["id"])

        assert created == {"id": created["id"], "success": True, "errors": []}
        assert created["id"].startswith("001") and len(created["id"]) == 18
        assert fetched["attributes"] == {
            "type": "Account",
            "url": f"/services/data/v59.0/sobjects/Account/{created['id']}",
        }
        assert (fetched["Id"], fetched["Name"], fetched["Website"]) == (created["id"], "Acme", "acme.example")
        assert fetched["Revflow_MRR__c"] == 99.5
        assert fetched["LastModifiedDate"].endswith(".000+0000")
        assert (updated, deleted) == (204, 204)
        assert after["Revflow_Plan__c"] == "pro"
        assert fake.record("Account", created["id"]) is None

    def test_get_with_fields_and_by_15_character_id(self, sf: Salesforce) -> None:
        created = sf.Account.create({"Name": "Acme"})

        short = sf.restful(f"sobjects/Account/{created['id'][:15]}", params={"fields": "Id,Name"})

        assert short == {
            "attributes": {
                "type": "Account",
                "url": f"/services/data/v59.0/sobjects/Account/{created['id']}",
            },
            "Id": created["id"],
            "Name": "Acme",
        }

    def test_missing_record_is_not_found(self, sf: Salesforce) -> None:
        with pytest.raises(SalesforceResourceNotFound) as exc:
            sf.Account.get("001000000000000AAA")

        assert exc.value.status == 404
        assert _error(exc.value)["errorCode"] == "NOT_FOUND"

    def test_unknown_field_is_invalid_field(self, fake: FakeSalesforce, sf: Salesforce) -> None:
        with pytest.raises(SalesforceMalformedRequest) as exc:
            sf.Account.create({"Name": "Acme", "Revflow_Seats__c": 3})

        assert exc.value.status == 400
        assert _error(exc.value) == {
            "message": "No such column 'Revflow_Seats__c' on sobject of type Account",
            "errorCode": "INVALID_FIELD",
        }
        assert fake.records("Account") == []

    def test_read_only_and_missing_required_fields(self, sf: Salesforce) -> None:
        with pytest.raises(SalesforceMalformedRequest) as readonly:
            sf.Opportunity.create(
                {"Name": "Deal", "StageName": "Prospecting", "CloseDate": "2026-04-01", "IsWon": True}
            )
        with pytest.raises(SalesforceMalformedRequest) as missing:
            sf.Opportunity.create({"Name": "Deal"})

        assert _error(readonly.value)["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"
        assert _error(readonly.value)["fields"] == ["IsWon"]
        assert _error(missing.value) == {
            "message": "Required fields are missing: [StageName, CloseDate]",
            "errorCode": "REQUIRED_FIELD_MISSING",
            "fields": ["StageName", "CloseDate"],
        }

    def test_bad_values_are_refused(self, sf: Salesforce) -> None:
        account = sf.Account.create({"Name": "Acme"})["id"]
        close = {"Name": "D", "StageName": "Prospecting", "CloseDate": "2026-04-01"}
        cases = [
            ({**close, "StageName": "Won-ish"}, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"),
            ({**close, "CloseDate": "April"}, "JSON_PARSER_ERROR"),
            ({**close, "Amount": "lots"}, "JSON_PARSER_ERROR"),
            ({**close, "CurrencyIsoCode": "XXX"}, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"),
            ({**close, "AccountId": "bad"}, "MALFORMED_ID"),
            ({**close, "AccountId": account[:-4] + "9AAA"}, "INVALID_CROSS_REFERENCE_KEY"),
        ]

        codes = []
        for values, _ in cases:
            with pytest.raises(SalesforceMalformedRequest) as exc:
                sf.Opportunity.create(values)
            codes.append(_error(exc.value)["errorCode"])

        assert codes == [code for _, code in cases]

    def test_opportunity_derives_won_closed_and_probability_from_its_stage(self, sf: Salesforce) -> None:
        account = sf.Account.create({"Name": "Acme"})["id"]
        opp = sf.Opportunity.create(
            {
                "Name": "Acme Pro",
                "AccountId": account,
                "StageName": "Negotiation/Review",
                "CloseDate": "2026-04-01",
                "Amount": 1200,
            }
        )["id"]

        before = sf.Opportunity.get(opp)
        sf.Opportunity.update(opp, {"StageName": "Closed Won"})
        after = sf.Opportunity.get(opp)

        assert (before["IsWon"], before["IsClosed"], before["Probability"]) == (False, False, 90)
        assert (after["IsWon"], after["IsClosed"], after["Probability"], after["ForecastCategory"]) == (
            True,
            True,
            100,
            "Closed",
        )
        assert (after["AccountId"], after["Amount"], after["CloseDate"], after["CurrencyIsoCode"]) == (
            account,
            1200,
            "2026-04-01",
            "USD",
        )

    def test_unique_external_id_refuses_duplicates(self, sf: Salesforce) -> None:
        first = sf.Account.create({"Name": "Acme", "Revflow_Id__c": "cus_1"})["id"]

        with pytest.raises(SalesforceMalformedRequest) as exc:
            sf.Account.create({"Name": "Acme again", "Revflow_Id__c": "cus_1"})

        assert _error(exc.value) == {
            "message": f"duplicate value found: Revflow_Id__c duplicates value on record with id: {first}",
            "errorCode": "DUPLICATE_VALUE",
            "fields": [],
        }


class TestUpsert:
    def test_creates_201_then_updates_200_with_created_flag(
        self, fake: FakeSalesforce, sf: Salesforce
    ) -> None:
        created = sf.Account.upsert("Revflow_Id__c/cus_1", {"Name": "Acme"}, raw_response=True)
        updated = sf.Account.upsert("Revflow_Id__c/cus_1", {"Name": "Acme Inc"}, raw_response=True)
        by_external_id = sf.Account.get_by_custom_id("Revflow_Id__c", "cus_1")

        assert created.status_code == 201
        assert created.json() == {"id": created.json()["id"], "success": True, "errors": [], "created": True}
        assert updated.status_code == 200
        assert updated.json() == {"id": created.json()["id"], "success": True, "errors": [], "created": False}
        assert (by_external_id["Id"], by_external_id["Name"]) == (created.json()["id"], "Acme Inc")
        assert [r["Revflow_Id__c"] for r in fake.records("Account")] == ["cus_1"]

    def test_before_api_46_an_update_answers_204(self, fake: FakeSalesforce) -> None:
        sf = Salesforce(
            instance_url=fake.url, session_id=fake.session_id, session=fake.http_session(), version="45.0"
        )

        created = sf.Account.upsert("Revflow_Id__c/cus_1", {"Name": "Acme"}, raw_response=True)
        updated = sf.Account.upsert("Revflow_Id__c/cus_1", {"Name": "Acme Inc"}, raw_response=True)

        assert (created.status_code, created.json()) == (
            201,
            {"id": created.json()["id"], "success": True, "errors": []},
        )
        assert (updated.status_code, updated.content) == (204, b"")

    def test_external_id_in_the_body_or_a_non_external_field_is_refused(self, sf: Salesforce) -> None:
        with pytest.raises(SalesforceMalformedRequest) as body:
            sf.Account.upsert("Revflow_Id__c/cus_1", {"Name": "Acme", "Revflow_Id__c": "cus_1"})
        with pytest.raises(SalesforceResourceNotFound) as field:
            sf.Account.upsert("Name/Acme", {"Website": "acme.example"})

        assert _error(body.value)["errorCode"] == "INVALID_FIELD"
        assert _error(field.value) == {
            "message": "Provided external ID field does not exist or is not accessible: Name",
            "errorCode": "NOT_FOUND",
        }


class TestQuery:
    def test_records_carry_attributes_and_only_the_selected_fields(self, sf: Salesforce) -> None:
        created = sf.Account.create({"Name": "Acme", "Revflow_Id__c": "cus_1"})["id"]

        result = sf.query("SELECT Id, Name FROM Account WHERE Revflow_Id__c = 'cus_1'")

        assert result == {
            "totalSize": 1,
            "done": True,
            "records": [
                {
                    "attributes": {
                        "type": "Account",
                        "url": f"/services/data/v59.0/sobjects/Account/{created}",
                    },
                    "Id": created,
                    "Name": "Acme",
                }
            ],
        }

    def test_pages_with_next_records_url(self, fake: FakeSalesforce, sf: Salesforce) -> None:
        fake.batch_size = 2
        ids = [sf.Account.create({"Name": f"A{i}"})["id"] for i in range(5)]

        first = sf.query("SELECT Id FROM Account ORDER BY Id")
        everything = sf.query_all("SELECT Id FROM Account ORDER BY Id")

        assert (first["totalSize"], first["done"], len(first["records"])) == (5, False, 2)
        assert first["nextRecordsUrl"].startswith("/services/data/v59.0/query/01g")
        assert [r["Id"] for r in everything["records"]] == ids

    def test_keyset_on_last_modified_date_and_id(self, fake: FakeSalesforce, sf: Salesforce) -> None:
        fake.freeze_clock(T0)
        same_second = [sf.Account.create({"Name": f"A{i}"})["id"] for i in range(3)]
        fake.advance_clock(1)
        later = sf.Account.create({"Name": "later"})["id"]

        result = sf.query_all(
            "SELECT Id, LastModifiedDate FROM Account WHERE (LastModifiedDate > 2026-03-02T09:30:00Z OR "
            f"(LastModifiedDate = 2026-03-02T09:30:00Z AND Id > '{same_second[0]}'))"
            " ORDER BY LastModifiedDate, Id LIMIT 10"
        )

        assert [r["Id"] for r in result["records"]] == [*same_second[1:], later]
        assert result["records"][0]["LastModifiedDate"] == "2026-03-02T09:30:00.000+0000"

    @pytest.mark.parametrize(
        ("soql", "status", "code"),
        [
            ("SELECT Id FROM Account WHERE Name = 'a' AND Name = 'b' OR Name = 'c'", 400, "MALFORMED_QUERY"),
            ("SELECT Id, Seats__c FROM Account", 400, "INVALID_FIELD"),
            ("SELECT Id FROM Lead", 400, "INVALID_TYPE"),
            (
                "SELECT Id FROM Account WHERE LastModifiedDate > '2026-01-01T00:00:00Z'",
                400,
                "MALFORMED_QUERY",
            ),
            ("SELECT Id FROM Account LIMIT", 400, "MALFORMED_QUERY"),
        ],
    )
    def test_bad_queries(self, sf: Salesforce, soql: str, status: int, code: str) -> None:
        with pytest.raises(SalesforceMalformedRequest) as exc:
            sf.query(soql)

        assert exc.value.status == status
        assert _error(exc.value)["errorCode"] == code


class TestLimits:
    def test_limits_resource_and_usage_header(self, fake: FakeSalesforce, sf: Salesforce) -> None:
        fake.set_api_usage(used=100, limit=5000)

        limits = sf.limits()
        sf.query("SELECT Id FROM Account")

        assert limits["DailyApiRequests"] == {"Max": 5000, "Remaining": 4899}
        assert sf.api_usage["api-usage"].used == 102
        assert sf.api_usage["api-usage"].total == 5000

    def test_exhausted_daily_limit_is_request_limit_exceeded(
        self, fake: FakeSalesforce, sf: Salesforce
    ) -> None:
        fake.set_api_usage(used=5000, limit=5000)

        with pytest.raises(SalesforceRefusedRequest) as exc:
            sf.Account.create({"Name": "Acme"})

        assert exc.value.status == 403
        assert _error(exc.value) == {
            "message": "TotalRequests Limit exceeded.",
            "errorCode": "REQUEST_LIMIT_EXCEEDED",
        }
        assert fake.records("Account") == []


class TestFaults:
    def test_server_errors(self, fake: FakeSalesforce, sf: Salesforce) -> None:
        fake.fail_next("500")
        fake.fail_next("503")

        with pytest.raises(SalesforceGeneralError) as e500:
            sf.Account.create({"Name": "Acme"})
        with pytest.raises(SalesforceGeneralError) as e503:
            sf.Account.create({"Name": "Acme"})
        sf.Account.create({"Name": "Acme"})

        assert (e500.value.status, _error(e500.value)["errorCode"]) == (500, "UNKNOWN_EXCEPTION")
        assert (e503.value.status, _error(e503.value)["errorCode"]) == (503, "SERVER_UNAVAILABLE")
        assert len(fake.records("Account")) == 1
        assert [r.status for r in fake.requests] == [500, 503, 201]

    def test_injected_limit_and_session_faults(self, fake: FakeSalesforce, sf: Salesforce) -> None:
        fake.fail_next("REQUEST_LIMIT_EXCEEDED", path="/query")
        fake.fail_next("expired_session", method="POST")

        with pytest.raises(SalesforceRefusedRequest):
            sf.query("SELECT Id FROM Account")
        with pytest.raises(SalesforceExpiredSession):
            sf.Account.create({"Name": "Acme"})

        assert sf.query("SELECT Id FROM Account")["totalSize"] == 0

    def test_timeout_after_the_work_was_done(self, fake: FakeSalesforce) -> None:
        sf = fake.sdk()
        fake.fail_next("timeout", path="/sobjects/Account")

        with pytest.raises(requests.exceptions.ReadTimeout):
            sf.session.post(
                f"{sf.base_url}sobjects/Account/", json={"Name": "Acme"}, headers=sf.headers, timeout=1.5
            )

        assert [r["Name"] for r in fake.records("Account")] == ["Acme"]
        assert fake.requests[-1].status is None

    def test_timeout_before_the_work(self, fake: FakeSalesforce) -> None:
        sf = fake.sdk()
        fake.fail_next("timeout_before")

        with pytest.raises(requests.exceptions.ReadTimeout):
            sf.session.post(
                f"{sf.base_url}sobjects/Account/", json={"Name": "Acme"}, headers=sf.headers, timeout=1.5
            )

        assert fake.records("Account") == []

    def test_malformed_body_after_the_work(self, fake: FakeSalesforce, sf: Salesforce) -> None:
        fake.fail_next("malformed")

        with pytest.raises(requests.exceptions.JSONDecodeError):
            sf.Account.create({"Name": "Acme"})

        assert len(fake.records("Account")) == 1


class TestControls:
    def test_user_edit_moves_last_modified_date(self, fake: FakeSalesforce, sf: Salesforce) -> None:
        fake.freeze_clock(T0)
        created = sf.Account.create({"Name": "Acme"})["id"]
        fake.advance_clock(90)

        edited = fake.edit("Account", created, Revflow_Plan__c="enterprise")

        assert edited["CreatedDate"] == "2026-03-02T09:30:00.000+0000"
        assert edited["LastModifiedDate"] == edited["SystemModstamp"] == "2026-03-02T09:31:30.000+0000"
        assert edited["LastModifiedById"] != edited["CreatedById"]  # a person, not the integration user
        assert sf.Account.get(created)["Revflow_Plan__c"] == "enterprise"

    def test_user_edit_is_validated(self, fake: FakeSalesforce) -> None:
        created = fake.create("Account", Name="Acme")

        with pytest.raises(SalesforceApiError) as exc:
            fake.edit("Account", created["Id"], Seats__c=3)

        assert exc.value.error_code == "INVALID_FIELD"

    def test_requests_are_recorded(self, fake: FakeSalesforce, sf: Salesforce) -> None:
        sf.Account.upsert("Revflow_Id__c/cus_1", {"Name": "Acme"})

        (recorded,) = fake.requests

        assert (recorded.method, recorded.path, recorded.body, recorded.status) == (
            "PATCH",
            "/services/data/v59.0/sobjects/Account/Revflow_Id__c/cus_1",
            {"Name": "Acme"},
            201,
        )
        assert recorded.session_id == fake.session_id

    def test_clock_follows_date_header(self, fake: FakeSalesforce) -> None:
        fake.freeze_clock(T0)

        answer = fake.http_session().get(
            f"{fake.url}/services/data/v59.0/limits",
            headers={"Authorization": f"Bearer {fake.session_id}"},
            timeout=5,
        )

        assert answer.headers["Date"] == "Mon, 02 Mar 2026 09:30:00 GMT"
        assert fake.now() == T0
        assert fake.advance_clock(5) == T0 + timedelta(seconds=5)
