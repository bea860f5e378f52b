"""The fake HubSpot answers the official ``hubspot-api-client`` SDK as HubSpot's CRM v3 API does: every answer
parses into the SDK's typed models, every refusal into its ``ApiException`` with HubSpot's status and error
body. No database: these run once, not per storage backend."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import urllib3
from hubspot.crm import companies, deals, properties
from hubspot.crm.associations import v4 as assoc_v4
from hubspot.utils.signature import Signature

from tests.fakes.hubspot import FakeHubSpot, sign_v3

HOOK_URL = "https://revflow.example.com/v1/webhooks/hubspot"


@pytest.fixture
def fake() -> Iterator[FakeHubSpot]:
    with FakeHubSpot(hang_seconds=1.5, webhook_url=HOOK_URL) as f:
        yield f


@pytest.fixture
def sdk(fake: FakeHubSpot) -> Any:
    return fake.sdk(retry=False)


def _company(sdk: Any, **props: str) -> Any:
    body = companies.SimplePublicObjectInputForCreate(properties={"name": "Acme", **props})
    return sdk.crm.companies.basic_api.create(body)


def _error(exc: pytest.ExceptionInfo[Any]) -> dict[str, Any]:
    body = json.loads(exc.value.body)
    assert body["status"] == "error" and body["correlationId"]
    return dict(body)


class TestObjects:
    def test_create_answers_201_with_a_typed_simple_public_object(self, sdk: Any) -> None:
        body = companies.SimplePublicObjectInputForCreate(properties={"name": "Acme", "domain": "acme.io"})

        created, status, _ = sdk.crm.companies.basic_api.create_with_http_info(body)

        assert status == 201
        assert isinstance(created, companies.SimplePublicObject)
        assert created.id.isdigit() and created.archived is False
        assert isinstance(created.created_at, datetime) and created.created_at == created.updated_at
        assert created.properties["name"] == "Acme" and created.properties["domain"] == "acme.io"
        assert created.properties["hs_object_id"] == created.id
        assert created.properties["createdate"] == created.properties["hs_lastmodifieddate"]
        assert created.properties["createdate"].endswith("Z")

    def test_get_answers_default_or_requested_properties(self, sdk: Any) -> None:
        created = _company(sdk, city="Lyon", revflow_plan="pro")

        default = sdk.crm.companies.basic_api.get_by_id(created.id)
        asked = sdk.crm.companies.basic_api.get_by_id(
            created.id, properties=["city", "revflow_mrr", "no_such_property"]
        )

        assert isinstance(default, companies.SimplePublicObjectWithAssociations)
        assert set(default.properties) == {
            "createdate",
            "domain",
            "hs_lastmodifieddate",
            "hs_object_id",
            "name",
        }
        assert default.properties["domain"] is None
        assert asked.properties == {
            "city": "Lyon",
            "createdate": created.properties["createdate"],
            "hs_lastmodifieddate": created.properties["hs_lastmodifieddate"],
            "hs_object_id": created.id,
            "revflow_mrr": None,
        }

    def test_patch_updates_clears_and_bumps_last_modified(self, fake: FakeHubSpot, sdk: Any) -> None:
        created = _company(sdk, city="Lyon")
        fake.advance_time(1500)

        updated = sdk.crm.companies.basic_api.update(
            created.id, companies.SimplePublicObjectInput(properties={"name": "Acme SA", "city": ""})
        )

        assert isinstance(updated, companies.SimplePublicObject)
        assert updated.properties["name"] == "Acme SA" and "city" not in updated.properties
        assert (updated.updated_at - updated.created_at).total_seconds() >= 1.5
        assert fake.get("companies", created.id)["properties"]["name"] == "Acme SA"  # type: ignore[index]

    def test_read_and_update_by_a_unique_property(self, sdk: Any) -> None:
        created = _company(sdk, revflow_id="cus_42")

        found = sdk.crm.companies.basic_api.get_by_id("cus_42", id_property="revflow_id")
        sdk.crm.companies.basic_api.update(
            "cus_42", companies.SimplePublicObjectInput(properties={"city": "Oslo"}), id_property="revflow_id"
        )

        assert found.id == created.id
        assert (
            sdk.crm.companies.basic_api.get_by_id(created.id, properties=["city"]).properties["city"]
            == "Oslo"
        )

    def test_list_pages_with_after_cursor(self, sdk: Any) -> None:
        ids = [_company(sdk, name=f"c{i}").id for i in range(5)]

        first = sdk.crm.companies.basic_api.get_page(limit=2)
        second = sdk.crm.companies.basic_api.get_page(limit=2, after=first.paging.next.after)
        everything = sdk.crm.companies.get_all()

        assert [c.id for c in first.results] == ids[:2]
        assert first.paging.next.after == ids[2]
        assert first.paging.next.link.endswith(f"after={ids[2]}")
        assert [c.id for c in second.results] == ids[2:4]
        assert [c.id for c in everything] == ids

    def test_list_limit_above_100_is_refused(self, sdk: Any) -> None:
        with pytest.raises(companies.ApiException) as exc:
            sdk.crm.companies.basic_api.get_page(limit=101)

        assert exc.value.status == 400
        assert _error(exc)["category"] == "VALIDATION_ERROR"


class TestSearch:
    def test_filters_sorts_and_pages(self, fake: FakeHubSpot, sdk: Any) -> None:
        start = fake.freeze_time()
        made = []
        for i in range(5):
            made.append(_company(sdk, name=f"c{i}", revflow_plan="pro" if i % 2 == 0 else "basic").id)
            fake.advance_time(1000)
        request = companies.PublicObjectSearchRequest(
            filter_groups=[
                {
                    "filters": [
                        {
                            "propertyName": "hs_lastmodifieddate",
                            "operator": "GTE",
                            "value": str(start + 1000),
                        },
                        {"propertyName": "revflow_plan", "operator": "EQ", "value": "PRO"},
                    ]
                }
            ],
            sorts=[{"propertyName": "hs_lastmodifieddate", "direction": "DESCENDING"}],
            properties=["revflow_plan"],
            limit=1,
        )

        first = sdk.crm.companies.search_api.do_search(request)
        request.after = first.paging.next.after
        second = sdk.crm.companies.search_api.do_search(request)

        assert isinstance(first, companies.CollectionResponseWithTotalSimplePublicObjectForwardPaging)
        assert first.total == 2
        assert [c.id for c in first.results] == [made[4]]
        assert first.results[0].properties["revflow_plan"] == "pro"
        assert first.paging.next.after == "1"
        assert [c.id for c in second.results] == [made[2]] and second.paging is None

    def test_gt_excludes_the_timestamp_and_groups_are_ored(self, fake: FakeHubSpot, sdk: Any) -> None:
        at = fake.freeze_time()
        tied = [_company(sdk, name=f"t{i}").id for i in range(2)]
        fake.advance_time(1)
        later = _company(sdk, name="later", city="Paris").id
        gt = {"propertyName": "hs_lastmodifieddate", "operator": "GT", "value": str(at)}
        city = {"propertyName": "city", "operator": "EQ", "value": "paris"}

        after = sdk.crm.companies.search_api.do_search(
            companies.PublicObjectSearchRequest(filter_groups=[{"filters": [gt]}])
        )
        either = sdk.crm.companies.search_api.do_search(
            companies.PublicObjectSearchRequest(
                filter_groups=[
                    {"filters": [city]},
                    {"filters": [{"propertyName": "name", "operator": "EQ", "value": "t0"}]},
                ]
            )
        )

        assert [c.id for c in after.results] == [later]
        assert sorted(c.id for c in either.results) == sorted([tied[0], later])

    def test_limits_are_hubspots(self, sdk: Any) -> None:
        too_many = companies.PublicObjectSearchRequest(limit=201)
        bad_property = companies.PublicObjectSearchRequest(
            filter_groups=[{"filters": [{"propertyName": "nope", "operator": "EQ", "value": "x"}]}]
        )

        with pytest.raises(companies.ApiException) as limit_exc:
            sdk.crm.companies.search_api.do_search(too_many)
        with pytest.raises(companies.ApiException) as prop_exc:
            sdk.crm.companies.search_api.do_search(bad_property)
        page = sdk.crm.companies.search_api.do_search(companies.PublicObjectSearchRequest(limit=200))

        assert limit_exc.value.status == 400 and _error(limit_exc)["category"] == "VALIDATION_ERROR"
        assert prop_exc.value.status == 400 and "nope" in _error(prop_exc)["message"]
        assert page.total == 0 and page.results == []

    def test_search_can_trail_writes_while_reads_by_id_do_not(self) -> None:
        with FakeHubSpot(search_lag_ms=2000) as fake:
            sdk = fake.sdk()
            fake.freeze_time()
            created = _company(sdk, revflow_id="cus_lag")

            early = sdk.crm.companies.search_api.do_search(companies.PublicObjectSearchRequest())
            by_id = sdk.crm.companies.basic_api.get_by_id("cus_lag", id_property="revflow_id")
            fake.advance_time(2000)
            later = sdk.crm.companies.search_api.do_search(companies.PublicObjectSearchRequest())

        assert early.total == 0 and by_id.id == created.id
        assert [c.id for c in later.results] == [created.id]

    def test_search_answers_carry_no_rate_limit_headers(self, sdk: Any) -> None:
        _company(sdk)

        _, _, search_headers = sdk.crm.companies.search_api.do_search_with_http_info(
            companies.PublicObjectSearchRequest()
        )
        _, _, list_headers = sdk.crm.companies.basic_api.get_page_with_http_info()

        assert "X-HubSpot-RateLimit-Max" not in search_headers
        assert list_headers["X-HubSpot-RateLimit-Max"] == "190"


class TestDealsAndAssociations:
    def test_deal_created_with_a_company_association(self, fake: FakeHubSpot, sdk: Any) -> None:
        company = _company(sdk)
        spec = deals.AssociationSpec(association_category="HUBSPOT_DEFINED", association_type_id=341)
        body = deals.SimplePublicObjectInputForCreate(
            properties={"dealname": "Acme Pro", "dealstage": "contractsent", "amount": "1200.50"},
            associations=[
                deals.PublicAssociationsForObject(to=deals.PublicObjectId(id=company.id), types=[spec])
            ],
        )

        deal = sdk.crm.deals.basic_api.create(body)
        read = sdk.crm.deals.basic_api.get_by_id(deal.id, associations=["companies"])
        back = sdk.crm.companies.basic_api.get_by_id(company.id, associations=["deals"])

        assert isinstance(deal, deals.SimplePublicObject)
        assert deal.properties["pipeline"] == "default" and deal.properties["hs_is_closed_won"] == "false"
        assert read.properties["amount"] == "1200.50" and read.properties["dealstage"] == "contractsent"
        assert [(a.id, a.type) for a in read.associations["companies"].results] == [
            (company.id, "deal_to_company_unlabeled")
        ]
        assert [(a.id, a.type) for a in back.associations["deals"].results] == [
            (deal.id, "company_to_deal_unlabeled")
        ]

    def test_v4_default_association(self, sdk: Any) -> None:
        company = _company(sdk)
        deal = sdk.crm.deals.basic_api.create(
            deals.SimplePublicObjectInputForCreate(properties={"dealname": "D"})
        )

        result = sdk.crm.associations.v4.basic_api.create_default("deals", deal.id, "companies", company.id)
        again = sdk.crm.associations.v4.basic_api.create_default("deals", deal.id, "companies", company.id)
        read = sdk.crm.deals.basic_api.get_by_id(deal.id, associations=["companies"])

        assert isinstance(result, assoc_v4.BatchResponsePublicDefaultAssociation)
        assert result.status == "COMPLETE"
        assert result.results[0].association_spec.association_type_id == 341
        assert again.results[0].to.id == company.id
        assert [a.id for a in read.associations["companies"].results] == [company.id]

    def test_v4_batch_read_names_each_deals_companies_and_207s_the_rest(self, sdk: Any) -> None:
        company = _company(sdk)
        spec = deals.AssociationSpec(association_category="HUBSPOT_DEFINED", association_type_id=5)
        linked = sdk.crm.deals.basic_api.create(
            deals.SimplePublicObjectInputForCreate(
                properties={"dealname": "L"},
                associations=[
                    deals.PublicAssociationsForObject(to=deals.PublicObjectId(id=company.id), types=[spec])
                ],
            )
        )
        alone = sdk.crm.deals.basic_api.create(
            deals.SimplePublicObjectInputForCreate(properties={"dealname": "A"})
        )

        page, status, _ = _batch_read(sdk, [linked.id, alone.id])

        assert status == 207
        assert isinstance(page, assoc_v4.BatchResponsePublicAssociationMultiWithLabelWithErrors)
        (result,) = page.results
        assert result._from.id == linked.id and result.to[0].to_object_id == company.id
        assert [(a.category, a.type_id, a.label) for a in result.to[0].association_types] == [
            ("HUBSPOT_DEFINED", 5, "Primary")
        ]
        assert page.num_errors == 1 and page.errors[0].context == {"fromObjectId": [alone.id]}

    def test_association_to_a_missing_company_is_refused(self, sdk: Any) -> None:
        spec = deals.AssociationSpec(association_category="HUBSPOT_DEFINED", association_type_id=341)
        body = deals.SimplePublicObjectInputForCreate(
            properties={"dealname": "D"},
            associations=[deals.PublicAssociationsForObject(to=deals.PublicObjectId(id="999"), types=[spec])],
        )

        with pytest.raises(deals.ApiException) as exc:
            sdk.crm.deals.basic_api.create(body)

        assert exc.value.status == 400 and _error(exc)["category"] == "VALIDATION_ERROR"


class TestErrors:
    def test_bad_token_is_401_invalid_authentication(self, fake: FakeHubSpot) -> None:
        import hubspot

        sdk = hubspot.HubSpot(access_token="pat-na1-wrong", host=fake.url)

        with pytest.raises(companies.ApiException) as exc:
            sdk.crm.companies.basic_api.get_page()

        assert isinstance(exc.value, companies.exceptions.UnauthorizedException)
        assert exc.value.status == 401 and _error(exc)["category"] == "INVALID_AUTHENTICATION"

    def test_missing_object_is_404_object_not_found(self, sdk: Any) -> None:
        with pytest.raises(deals.ApiException) as exc:
            sdk.crm.deals.basic_api.get_by_id("123")

        assert isinstance(exc.value, deals.exceptions.NotFoundException)
        assert _error(exc)["category"] == "OBJECT_NOT_FOUND"

    def test_unknown_property_and_bad_values_are_400_validation_errors(self, sdk: Any) -> None:
        body = deals.SimplePublicObjectInputForCreate(
            properties={"dealname": "D", "plan_tier": "x", "dealstage": "won", "amount": "12,5"}
        )

        with pytest.raises(deals.ApiException) as exc:
            sdk.crm.deals.basic_api.create(body)

        error = _error(exc)
        assert exc.value.status == 400 and error["category"] == "VALIDATION_ERROR"
        assert error["message"].startswith("Property values were not valid: ")
        problems = json.loads(error["message"].removeprefix("Property values were not valid: "))
        assert {(p["name"], p["error"]) for p in problems} == {
            ("plan_tier", "PROPERTY_DOESNT_EXIST"),
            ("dealstage", "INVALID_OPTION"),
            ("amount", "INVALID_DECIMAL"),
        }

    def test_unique_value_conflict_is_409_with_the_existing_id(self, sdk: Any) -> None:
        first = _company(sdk, revflow_id="cus_1")

        with pytest.raises(companies.ApiException) as exc:
            _company(sdk, revflow_id="cus_1")

        error = _error(exc)
        assert exc.value.status == 409 and error["category"] == "OBJECT_ALREADY_EXISTS"
        assert error["message"] == f"Company already exists. Existing ID: {first.id}"
        assert error["errors"][0]["in"] == "revflow_id"


class TestProperties:
    def test_create_property_201_then_409(self, fake: FakeHubSpot, sdk: Any) -> None:
        fake.reset_properties()
        body = properties.PropertyCreate(
            name="revflow_plan",
            label="Revflow plan",
            type="string",
            field_type="text",
            group_name="dealinformation",
        )

        created, status, _ = sdk.crm.properties.core_api.create_with_http_info("deals", body)
        with pytest.raises(properties.ApiException) as exc:
            sdk.crm.properties.core_api.create("deals", body)
        listed = sdk.crm.properties.core_api.get_all("deals")
        one = sdk.crm.properties.core_api.get_by_name("deals", "revflow_plan")

        assert status == 201 and isinstance(created, properties.ModelProperty)
        assert created.name == "revflow_plan" and created.hubspot_defined is None
        assert exc.value.status == 409 and _error(exc)["category"] == "OBJECT_ALREADY_EXISTS"
        assert "revflow_plan" in {p.name for p in listed.results} and "dealstage" in {
            p.name for p in listed.results
        }
        assert one.type == "string" and one.group_name == "dealinformation"

    def test_a_property_exists_only_once_created(self, fake: FakeHubSpot, sdk: Any) -> None:
        fake.reset_properties()

        with pytest.raises(companies.ApiException) as exc:
            _company(sdk, revflow_plan="pro")

        assert exc.value.status == 400 and "PROPERTY_DOESNT_EXIST" in _error(exc)["message"]
        assert "revflow_plan" not in fake.property_names("companies")


class TestRateLimits:
    def test_answers_carry_hubspots_rate_limit_headers(self, sdk: Any) -> None:
        _, _, headers = sdk.crm.companies.basic_api.create_with_http_info(
            companies.SimplePublicObjectInputForCreate(properties={"name": "A"})
        )

        assert headers["X-HubSpot-RateLimit-Max"] == "190"
        assert headers["X-HubSpot-RateLimit-Remaining"] == "189"
        assert headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "10000"
        assert (
            int(headers["X-HubSpot-RateLimit-Daily-Remaining"])
            == int(headers["X-HubSpot-RateLimit-Daily"]) - 1
        )

    def test_spent_budget_is_429_rate_limits_with_retry_after(self, fake: FakeHubSpot, sdk: Any) -> None:
        fake.freeze_time()
        fake.set_rate_limit(remaining=1)
        _company(sdk)

        with pytest.raises(companies.ApiException) as exc:
            _company(sdk)
        fake.advance_time(10_000)
        after_window = _company(sdk, name="later")

        error = _error(exc)
        assert exc.value.status == 429 and error["category"] == "RATE_LIMITS"
        assert error["policyName"] == "TEN_SECONDLY_ROLLING"
        assert exc.value.headers["Retry-After"] == "10"
        assert exc.value.headers["X-HubSpot-RateLimit-Remaining"] == "0"
        assert [c["properties"]["name"] for c in fake.objects("companies")] == ["Acme", "later"]
        assert after_window.properties["name"] == "later"


class TestFaults:
    def test_injected_429_and_500_then_normal_service(self, fake: FakeHubSpot, sdk: Any) -> None:
        fake.inject_fault("429", retry_after=7)
        fake.inject_fault("500", method="POST")

        with pytest.raises(companies.ApiException) as limited:
            _company(sdk)
        with pytest.raises(companies.ApiException) as failed:
            _company(sdk)
        created = _company(sdk)

        assert limited.value.status == 429 and limited.value.headers["Retry-After"] == "7"
        assert isinstance(failed.value, companies.exceptions.ServiceException)
        assert [c["id"] for c in fake.objects("companies")] == [created.id]
        assert [r.fault for r in fake.requests] == ["429", "500", None]

    def test_timeout_after_the_write_loses_only_the_answer(self, fake: FakeHubSpot, sdk: Any) -> None:
        fake.inject_fault("timeout", path="/crm/v3/objects/companies")
        body = companies.SimplePublicObjectInputForCreate(properties={"name": "Lost answer"})

        with pytest.raises(urllib3.exceptions.HTTPError):
            sdk.crm.companies.basic_api.create(body, _request_timeout=0.5)

        assert [c["properties"]["name"] for c in fake.objects("companies")] == ["Lost answer"]
        assert fake.requests[-1].status is None

    def test_timeout_before_the_write_does_nothing(self, fake: FakeHubSpot, sdk: Any) -> None:
        fake.inject_fault("timeout_before")

        with pytest.raises(urllib3.exceptions.HTTPError):
            _company_with_timeout(sdk)

        assert fake.objects("companies") == []

    def test_malformed_body_parses_into_an_empty_object(self, fake: FakeHubSpot, sdk: Any) -> None:
        fake.inject_fault("malformed")

        garbled, status, headers = sdk.crm.companies.basic_api.create_with_http_info(
            companies.SimplePublicObjectInputForCreate(properties={"name": "x"})
        )

        # The SDK does not refuse an HTML body: it hands back a model whose every field is None, so the
        # adapter must check what it gets.
        assert status == 201 and headers["Content-Type"] == "text/html"
        assert garbled.id is None and garbled.properties is None
        assert len(fake.objects("companies")) == 1  # the write happened; only the answer is garbled


def _batch_read(sdk: Any, ids: list[str]) -> Any:
    body = assoc_v4.BatchInputPublicFetchAssociationsBatchRequest(
        inputs=[assoc_v4.PublicFetchAssociationsBatchRequest(id=i) for i in ids]
    )
    return sdk.crm.associations.v4.batch_api.get_page_with_http_info("deals", "companies", body)


def _company_with_timeout(sdk: Any) -> Any:
    body = companies.SimplePublicObjectInputForCreate(properties={"name": "x"})
    return sdk.crm.companies.basic_api.create(body, _request_timeout=0.5)


class TestUserEditsAndWebhooks:
    def test_edit_records_the_change_and_queues_subscribed_events(self, fake: FakeHubSpot) -> None:
        fake.subscribe("deal.propertyChange", "dealstage")
        fake.subscribe("deal.propertyChange", "revflow_plan")
        fake.subscribe("deal.creation")
        deal = fake.create(
            "deals", {"dealname": "Acme", "dealstage": "contractsent", "revflow_plan": "basic"}
        )
        fake.advance_time(10)

        edited = fake.edit("deals", deal["id"], dealstage="closedwon", revflow_plan="pro", amount="99")
        events = fake.pending_webhooks()

        assert edited["properties"]["hs_is_closed_won"] == "true"
        assert edited["updatedAt"] > deal["updatedAt"]
        assert [(e["subscriptionType"], e.get("propertyName"), e.get("propertyValue")) for e in events] == [
            ("deal.creation", None, None),
            ("deal.propertyChange", "dealstage", "contractsent"),
            ("deal.propertyChange", "revflow_plan", "basic"),
            ("deal.propertyChange", "dealstage", "closedwon"),
            ("deal.propertyChange", "revflow_plan", "pro"),
        ]
        last = events[-1]
        assert last["objectId"] == int(deal["id"]) and last["portalId"] == fake.portal_id
        assert last["changeSource"] == "CRM_UI" and last["attemptNumber"] == 0
        assert isinstance(last["eventId"], int) and isinstance(last["occurredAt"], int)
        assert len({e["eventId"] for e in events}) == 5

    def test_sign_produces_hubspots_v3_signature(self, fake: FakeHubSpot) -> None:
        fake.subscribe("company.propertyChange", "name")
        company = fake.create("companies", {"name": "A"})
        fake.edit("companies", company["id"], name="B")

        body, headers = fake.sign()

        ts = headers["X-HubSpot-Request-Timestamp"]
        expected = base64.b64encode(
            hmac.new(
                fake.client_secret.encode(), b"POST" + HOOK_URL.encode() + body + ts.encode(), hashlib.sha256
            ).digest()
        ).decode()
        assert headers["X-HubSpot-Signature-v3"] == expected
        assert Signature.is_valid(
            headers["X-HubSpot-Signature-v3"],
            fake.client_secret,
            body.decode(),
            HOOK_URL,
            "POST",
            signature_version="v3",
            timestamp=ts,
        )
        assert (
            headers["X-HubSpot-Signature"] == hashlib.sha256(fake.client_secret.encode() + body).hexdigest()
        )
        assert [e["propertyValue"] for e in json.loads(body)] == ["A", "B"]
        assert len(fake.pending_webhooks()) == 2  # signing sends nothing

    def test_signature_uses_the_decoded_uri(self) -> None:
        encoded = "https://x.example/hook?a=b%3Ac"

        headers = sign_v3(b"[]", "s", url=encoded, timestamp_ms=1)

        assert headers == sign_v3(b"[]", "s", url="https://x.example/hook?a=b:c", timestamp_ms=1)

    def test_failed_delivery_stays_queued_and_is_retried_with_attempt_number(self, fake: FakeHubSpot) -> None:
        fake.subscribe("deal.creation")
        fake.create("deals", {"dealname": "A"})
        seen: list[list[dict[str, Any]]] = []

        def down(body: bytes, headers: dict[str, str]) -> int:
            seen.append(json.loads(body))
            return 503

        def up(body: bytes, headers: dict[str, str]) -> int:
            seen.append(json.loads(body))
            return 204

        first = fake.deliver_webhooks(down)
        second = fake.deliver_webhooks(up)

        assert [d.status for d in first + second] == [503, 204]
        assert [batch[0]["attemptNumber"] for batch in seen] == [0, 1]
        assert seen[0][0]["eventId"] == seen[1][0]["eventId"]
        assert fake.pending_webhooks() == []

    def test_batches_hold_at_most_100_events(self, fake: FakeHubSpot) -> None:
        fake.subscribe("company.creation")
        for i in range(150):
            fake.create("companies", {"name": f"c{i}"})

        sizes: list[int] = []
        fake.deliver_webhooks(lambda body, headers: sizes.append(len(json.loads(body))) or 200)

        assert sizes == [100, 50]

    def test_delivers_to_the_target_url_over_http(self) -> None:
        received: list[tuple[str, bytes, dict[str, str]]] = []

        class Receiver(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                data = self.rfile.read(int(self.headers["Content-Length"]))
                received.append((self.path, data, {k.lower(): v for k, v in self.headers.items()}))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_address[1]}/v1/webhooks/hubspot"
        try:
            with FakeHubSpot(webhook_url=url) as fake:
                fake.subscribe("deal.creation")
                fake.create("deals", {"dealname": "A"})

                deliveries = fake.deliver_webhooks()
        finally:
            server.shutdown()
            server.server_close()

        ((path, body, headers),) = received
        assert deliveries[0].status == 200 and path == "/v1/webhooks/hubspot"
        assert Signature.is_valid(
            headers["x-hubspot-signature-v3"],
            "fake-hubspot-client-secret",
            body.decode(),
            url,
            "POST",
            signature_version="v3",
            timestamp=headers["x-hubspot-request-timestamp"],
        )


# ----------------------------------------------------------------------------------------------------
# Conformance with HubSpot's published OpenAPI descriptions, as generated into the SDK: every operation the
# fake answered exists there with that method and success status, and every body uses only the fields of the
# model the SDK declares for it (errors: the Error model, plus fields HubSpot's rate-limit errors document).
# ----------------------------------------------------------------------------------------------------

_SDK_PACKAGES = ("crm.companies", "crm.deals", "crm.properties", "crm.associations.v4")
_OPERATION = re.compile(
    r'response_types_map = \{(?P<map>[^}]*)\}\s+return self\.api_client\.call_api\(\s+"(?P<path>[^"]+)",\s+'
    r'"(?P<method>[A-Z]+)"'
)
#: Fields HubSpot's error bodies carry beyond the generated Error model: "status" on every error, and
#: "errorType"/"policyName" on 429s (https://developers.hubspot.com/docs/api/usage-details).
_ERROR_EXTRAS = {"status", "errorType", "policyName"}


@dataclass(frozen=True)
class _Operation:
    package: str
    method: str
    pattern: re.Pattern[str]
    statuses: dict[int, str]


def _sdk_operations() -> list[_Operation]:
    import hubspot

    root = Path(hubspot.__file__).parent
    out = []
    for package in _SDK_PACKAGES:
        for source in sorted((root / package.replace(".", "/") / "api").glob("*_api.py")):
            for m in _OPERATION.finditer(source.read_text()):
                statuses = {int(k): v for k, v in re.findall(r'(\d+): "(\w+)"', m["map"])}
                regex = "^" + re.sub(r"\{[A-Za-z]+\}", "[^/]+", m["path"]) + "$"
                out.append(_Operation(package, m["method"], re.compile(regex), statuses))
    return out


def _check_shape(body: Any, type_name: str, models: Any, where: str) -> list[str]:
    """Fields of ``body`` that the SDK model ``type_name`` (or its nested models) does not declare."""
    if body is None:
        return []
    inner = re.fullmatch(r"list\[(.+)\]", type_name)
    if inner:
        return [
            p for i, item in enumerate(body) for p in _check_shape(item, inner[1], models, f"{where}[{i}]")
        ]
    inner = re.fullmatch(r"dict\(str, (.+)\)|dict\[str, (.+)\]", type_name)
    if inner:
        sub = inner[1] or inner[2]
        return [p for k, v in body.items() for p in _check_shape(v, sub, models, f"{where}.{k}")]
    model = getattr(models, type_name, None)
    if model is None:  # a primitive: str, int, bool, datetime, object
        return []
    json_to_attr = {v: k for k, v in model.attribute_map.items()}
    problems = []
    for key, value in body.items():
        if key not in json_to_attr:
            problems.append(f"{where}.{key} is not a field of {type_name}")
            continue
        problems += _check_shape(value, model.openapi_types[json_to_attr[key]], models, f"{where}.{key}")
    return problems


def _exercise(fake: FakeHubSpot, sdk: Any) -> None:
    """Every route the fake serves, successes and refusals."""
    fake.reset_properties()
    prop = properties.PropertyCreate(
        name="revflow_id",
        label="Revflow ID",
        type="string",
        field_type="text",
        group_name="companyinformation",
    )
    prop.has_unique_value = True
    sdk.crm.properties.core_api.create("companies", prop)
    sdk.crm.properties.core_api.get_all("companies")
    sdk.crm.properties.core_api.get_by_name("companies", "revflow_id")
    company = _company(sdk, revflow_id="cus_1")
    sdk.crm.companies.basic_api.update(
        company.id, companies.SimplePublicObjectInput(properties={"city": "Oslo"})
    )
    sdk.crm.companies.basic_api.get_by_id("cus_1", id_property="revflow_id", associations=["deals"])
    sdk.crm.companies.basic_api.get_page(limit=1, properties=["city"])
    sdk.crm.companies.search_api.do_search(companies.PublicObjectSearchRequest(limit=1, properties=["city"]))
    deal = sdk.crm.deals.basic_api.create(
        deals.SimplePublicObjectInputForCreate(properties={"dealname": "D"})
    )
    sdk.crm.associations.v4.basic_api.create_default("deals", deal.id, "companies", company.id)
    sdk.crm.deals.basic_api.get_by_id(deal.id, associations=["companies"])
    sdk.crm.deals.basic_api.get_page(associations=["companies"])
    _batch_read(sdk, [deal.id, "1"])
    sdk.crm.deals.search_api.do_search(deals.PublicObjectSearchRequest())
    sdk.crm.deals.basic_api.archive(deal.id)
    import hubspot

    stranger = hubspot.HubSpot(access_token="pat-na1-wrong", host=fake.url)
    for call in (
        lambda: sdk.crm.deals.basic_api.get_by_id("1"),
        lambda: _company(sdk, revflow_id="cus_1"),
        lambda: _company(sdk, nope="x"),
        lambda: sdk.crm.properties.core_api.create("companies", prop),
        lambda: stranger.crm.companies.basic_api.get_page(),
        lambda: (fake.inject_fault("429"), sdk.crm.companies.basic_api.get_page()),
    ):
        with pytest.raises(Exception, match=r"\(4\d\d\)"):
            call()


class TestConformanceWithTheSdk:
    def test_every_answer_is_a_published_operation_status_and_shape(
        self, fake: FakeHubSpot, sdk: Any
    ) -> None:
        import importlib

        operations = _sdk_operations()
        _exercise(fake, sdk)

        problems = []
        answered = set()
        for request in fake.requests:
            (op,) = [o for o in operations if o.method == request.method and o.pattern.match(request.path)]
            models = importlib.import_module(f"hubspot.{op.package}.models")
            assert request.status is not None
            if request.status >= 400:
                missing = {"message", "correlationId", "category"} - set(request.response)
                problems += [f"{request.path}: error lacks {m}" for m in sorted(missing)]
                extras = {k: v for k, v in request.response.items() if k not in _ERROR_EXTRAS}
                problems += _check_shape(extras, "Error", models, f"{request.method} {request.path} error")
                continue
            answered.add((request.method, op.pattern.pattern))
            if not op.statuses:
                assert request.status == 204 and request.response is None
                continue
            assert request.status in op.statuses, f"{request.method} {request.path} answered {request.status}"
            problems += _check_shape(
                request.response, op.statuses[request.status], models, f"{request.method} {request.path}"
            )

        assert problems == []
        assert len(answered) == 15  # properties 3, v4 associations 2, companies 5, deals 5
