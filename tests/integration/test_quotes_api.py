"""Quotes → subscriptions → invoices through the API, and contract-to-invoice matching, on test clocks."""

from __future__ import annotations

import io
from typing import Any

from pypdf import PdfReader

from revflow.bootstrap import Container
from tests.conftest import Tenant
from tests.integration.billing_helpers import make_price

YEAR_FLAT = 1_000_000  # $10,000.00 a year


def _clock(t: Tenant, at: str) -> str:
    r = t.post("/v1/test_clocks", {"frozen_time": at})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def _customer(t: Tenant, clock: str) -> str:
    r = t.post("/v1/customers", {"name": "Globex", "currency": "USD", "test_clock_id": clock})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def _advance(t: Tenant, clock: str, to: str) -> None:
    r = t.post(f"/v1/test_clocks/{clock}/advance", {"frozen_time": to})
    assert r.status_code == 200, r.text


def _invoices(t: Tenant, customer: str) -> list[dict[str, Any]]:
    data = t.get("/v1/invoices", params={"customer_id": customer, "limit": 100}).json()["data"]
    return list(reversed(data))


def _quote(t: Tenant, customer: str, lines: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    r = t.post("/v1/quotes", {"customer_id": customer, "lines": lines, **fields})
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def _finalize(t: Tenant, quote_id: str) -> dict[str, Any]:
    r = t.post(f"/v1/quotes/{quote_id}/finalize")
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def _accept(t: Tenant, quote_id: str) -> Any:
    return t.post(
        f"/v1/quotes/{quote_id}/accept",
        {"acceptor_name": "Hank Scorpio", "acceptor_email": "hank@globex.test"},
    )


def _pdf_text(t: Tenant, quote_id: str) -> str:
    r = t.get(f"/v1/quotes/{quote_id}/pdf")
    assert (r.status_code, r.headers["content-type"]) == (200, "application/pdf"), r.text
    pages = PdfReader(io.BytesIO(r.content)).pages
    return " ".join(" ".join(p.extract_text() for p in pages).replace("\xa0", " ").split())


def _problem(r: Any, status: int, code: str) -> None:
    assert (r.status_code, r.headers["content-type"]) == (status, "application/problem+json"), r.text
    assert r.json()["code"] == code, r.text


def _discrepancies(t: Tenant) -> list[dict[str, Any]]:
    r = t.get("/v1/alerts", params={"type": "quote_discrepancy", "limit": 100})
    assert r.status_code == 200, r.text
    return r.json()["data"]  # type: ignore[no-any-return]


class TestTheSeedCase:
    """Sales quotes $10,000/year with 20% off the first year; the invoices carry exactly that."""

    def test_quote_to_subscription_to_invoices_keeps_the_discount(
        self, tenant: Tenant, container: Container
    ) -> None:
        price = make_price(container, tenant.org_id, name="Platform", flat=YEAR_FLAT, interval="year")
        coupon = tenant.post("/v1/coupons", {"name": "First year", "percent_off": 20, "duration": "once"})
        clock = _clock(tenant, "2024-01-01T00:00:00Z")
        customer = _customer(tenant, clock)
        draft = _quote(
            tenant,
            customer,
            [{"price_id": price}],
            coupon_id=coupon.json()["id"],
            term_months=12,
            expires_at="2024-01-31T00:00:00Z",
        )
        draft_pdf = _pdf_text(tenant, draft["id"])

        quote = _finalize(tenant, draft["id"])
        pdf = _pdf_text(tenant, quote["id"])
        accepted = _accept(tenant, quote["id"])

        assert (draft["status"], draft["number"]) == ("draft", None)
        assert "Draft quote" in draft_pdf
        assert (quote["status"], quote["number"]) == ("open", "Q-000001")
        assert "Q-000001" in pdf
        assert "First invoice total $8,000.00" in pdf
        assert "Renewal invoice total $10,000.00" in pdf
        assert "Discount: 20% off once" in pdf
        assert "12 months, renews automatically" in pdf
        assert accepted.status_code == 200, accepted.text
        body = accepted.json()
        assert (body["status"], body["accepted_at"]) == ("accepted", "2024-01-01T00:00:00Z")
        assert (body["acceptor_name"], body["acceptor_email"]) == ("Hank Scorpio", "hank@globex.test")
        sub = tenant.get(f"/v1/subscriptions/{body['subscription_id']}").json()
        assert (sub["status"], sub["quote_id"], sub["term_months"]) == ("active", quote["id"], 12)
        assert [i["price_id"] for i in sub["items"]] == [price]
        [first] = _invoices(tenant, customer)
        assert (first["subtotal"], first["discount"], first["total"]) == (1_000_000, 200_000, 800_000)
        assert first["lines"][0]["discount_amount"] == 200_000

        _advance(tenant, clock, "2025-01-01T00:00:00Z")

        renewal = _invoices(tenant, customer)[-1]
        assert len(_invoices(tenant, customer)) == 2
        assert (renewal["subtotal"], renewal["discount"], renewal["total"]) == (1_000_000, 0, 1_000_000)
        check = tenant.post(f"/v1/subscriptions/{sub['id']}/check_quote")
        assert (check.status_code, check.json()["data"]) == (200, [])
        assert _discrepancies(tenant) == []
        events = tenant.get("/v1/events", params={"object_id": quote["id"], "limit": 100}).json()["data"]
        assert [e["type"] for e in events] == ["quote.accepted", "quote.finalized", "quote.created"]
        audit = tenant.get("/v1/audit_events", params={"object_id": quote["id"]}).json()["data"]
        assert [a["action"] for a in audit] == ["quote.accept", "quote.finalize", "quote.create"]


class TestNegotiatedPrices:
    def test_an_override_becomes_a_custom_price_that_every_invoice_carries(
        self, tenant: Tenant, container: Container
    ) -> None:
        catalog = make_price(container, tenant.org_id, name="Seats", model="per_unit", unit=1000)
        clock = _clock(tenant, "2024-06-01T00:00:00Z")
        customer = _customer(tenant, clock)
        quote = _quote(tenant, customer, [{"price_id": catalog, "quantity": 10, "unit_amount": "800"}])
        _finalize(tenant, quote["id"])

        accepted = _accept(tenant, quote["id"]).json()
        _advance(tenant, clock, "2024-07-01T00:00:00Z")

        [line] = accepted["lines"]
        assert (line["price_id"], line["quantity"], line["unit_amount"]) == (catalog, "10", "800")
        custom = tenant.get(f"/v1/prices/{line['custom_price_id']}").json()
        assert (custom["custom"], custom["model"], custom["unit_amount"]) == (True, "per_unit", "800")
        assert custom["recurring"] == {"interval": "month", "interval_count": 1}
        sub = tenant.get(f"/v1/subscriptions/{accepted['subscription_id']}").json()
        assert [(i["price_id"], i["quantity"]) for i in sub["items"]] == [(custom["id"], "10")]
        invoices = _invoices(tenant, customer)
        assert [i["total"] for i in invoices] == [8000, 8000]
        assert {li["price_id"] for i in invoices for li in i["lines"]} == {custom["id"]}
        catalog_ids = [p["id"] for p in tenant.get("/v1/prices", params={"limit": 100}).json()["data"]]
        assert catalog_ids == [catalog]  # the custom price stays out of the catalog
        check = tenant.post(f"/v1/subscriptions/{sub['id']}/check_quote")
        assert check.json()["data"] == []

    def test_a_tiered_price_cannot_be_negotiated(self, tenant: Tenant, container: Container) -> None:
        tiers = [
            {"up_to": 10, "unit_amount": "100", "flat_amount": "0"},
            {"up_to": None, "unit_amount": "50"},
        ]
        tiered = make_price(container, tenant.org_id, model="graduated", tiers=tiers)
        customer = _customer(tenant, _clock(tenant, "2024-06-01T00:00:00Z"))

        r = tenant.post(
            "/v1/quotes",
            {"customer_id": customer, "lines": [{"price_id": tiered, "quantity": 5, "unit_amount": "90"}]},
        )

        _problem(r, 422, "override_not_supported")
        assert r.json()["errors"][0]["field"] == "lines[0].unit_amount"
        assert tenant.get("/v1/quotes").json()["data"] == []


class TestBadInput:
    def test_accepting_twice_answers_409_and_changes_nothing(
        self, tenant: Tenant, container: Container
    ) -> None:
        price = make_price(container, tenant.org_id, flat=5000)
        customer = _customer(tenant, _clock(tenant, "2024-06-01T00:00:00Z"))
        quote = _quote(tenant, customer, [{"price_id": price}])
        _finalize(tenant, quote["id"])
        assert _accept(tenant, quote["id"]).status_code == 200
        before = tenant.get(f"/v1/quotes/{quote['id']}").json()

        again = _accept(tenant, quote["id"])

        _problem(again, 409, "quote_already_accepted")
        assert tenant.get(f"/v1/quotes/{quote['id']}").json() == before
        assert len(tenant.get("/v1/subscriptions").json()["data"]) == 1
        assert [i["total"] for i in _invoices(tenant, customer)] == [5000]

    def test_a_coupon_used_up_since_the_quote_fails_the_acceptance_and_changes_nothing(
        self, tenant: Tenant, container: Container
    ) -> None:
        price = make_price(container, tenant.org_id, name="Seats", model="per_unit", unit=1000)
        coupon = tenant.post(
            "/v1/coupons", {"name": "One", "percent_off": 20, "duration": "forever", "max_redemptions": 1}
        ).json()
        clock = _clock(tenant, "2024-06-01T00:00:00Z")
        customer = _customer(tenant, clock)
        quote = _quote(
            tenant,
            customer,
            [{"price_id": price, "quantity": 3, "unit_amount": "900"}],
            coupon_id=coupon["id"],
        )
        _finalize(tenant, quote["id"])
        someone = _customer(tenant, clock)
        used = tenant.post(f"/v1/customers/{someone}/discounts", {"coupon_id": coupon["id"]})
        assert used.status_code == 201, used.text
        before = tenant.get(f"/v1/quotes/{quote['id']}").json()

        r = _accept(tenant, quote["id"])

        _problem(r, 409, "coupon_redemption_limit")
        assert tenant.get(f"/v1/quotes/{quote['id']}").json() == before
        assert tenant.get("/v1/subscriptions").json()["data"] == []
        assert _invoices(tenant, customer) == []
        created = tenant.get("/v1/events", params={"type": "price.created", "limit": 100}).json()["data"]
        assert created == []

    def test_an_expired_quote_cannot_be_accepted(self, tenant: Tenant, container: Container) -> None:
        price = make_price(container, tenant.org_id, flat=5000)
        clock = _clock(tenant, "2024-06-01T00:00:00Z")
        customer = _customer(tenant, clock)
        quote = _quote(tenant, customer, [{"price_id": price}], expires_at="2024-06-11T00:00:00Z")
        _finalize(tenant, quote["id"])
        _advance(tenant, clock, "2024-06-12T00:00:00Z")

        r = _accept(tenant, quote["id"])

        _problem(r, 409, "quote_expired")
        assert tenant.get(f"/v1/quotes/{quote['id']}").json()["status"] == "open"
        assert tenant.get("/v1/subscriptions").json()["data"] == []

    def test_a_draft_or_canceled_quote_cannot_be_accepted(self, tenant: Tenant, container: Container) -> None:
        price = make_price(container, tenant.org_id, flat=5000)
        customer = _customer(tenant, _clock(tenant, "2024-06-01T00:00:00Z"))
        quote = _quote(tenant, customer, [{"price_id": price}])

        draft = _accept(tenant, quote["id"])
        canceled = tenant.post(f"/v1/quotes/{quote['id']}/cancel")
        after_cancel = _accept(tenant, quote["id"])
        cancel_again = tenant.post(f"/v1/quotes/{quote['id']}/cancel")

        _problem(draft, 409, "invalid_state")
        assert (canceled.status_code, canceled.json()["status"]) == (200, "canceled")
        assert canceled.json()["canceled_at"] == "2024-06-01T00:00:00Z"
        _problem(after_cancel, 409, "invalid_state")
        _problem(cancel_again, 409, "invalid_state")
        assert tenant.get("/v1/subscriptions").json()["data"] == []

    def test_only_a_draft_can_be_edited(self, tenant: Tenant, container: Container) -> None:
        price = make_price(container, tenant.org_id, flat=5000)
        coupon = tenant.post("/v1/coupons", {"name": "Ten", "percent_off": 10, "duration": "forever"}).json()
        customer = _customer(tenant, _clock(tenant, "2024-06-01T00:00:00Z"))
        quote = _quote(tenant, customer, [{"price_id": price}])

        edited = tenant.patch(
            f"/v1/quotes/{quote['id']}",
            {"coupon_id": coupon["id"], "term_months": 24, "lines": [{"price_id": price, "quantity": 2}]},
        )
        _finalize(tenant, quote["id"])
        frozen = tenant.patch(f"/v1/quotes/{quote['id']}", {"term_months": 12})

        assert edited.status_code == 200, edited.text
        body = edited.json()
        assert (body["coupon_id"], body["term_months"], body["lines"][0]["quantity"]) == (
            coupon["id"],
            24,
            "2",
        )
        _problem(frozen, 409, "invalid_state")
        assert tenant.get(f"/v1/quotes/{quote['id']}").json()["term_months"] == 24


class TestContractToInvoiceMatching:
    def test_a_change_to_the_catalog_price_is_recorded_as_discrepancies(
        self, tenant: Tenant, other_tenant: Tenant, container: Container
    ) -> None:
        catalog = make_price(container, tenant.org_id, name="Seats", model="per_unit", unit=1000)
        clock = _clock(tenant, "2024-06-01T00:00:00Z")
        customer = _customer(tenant, clock)
        quote = _quote(tenant, customer, [{"price_id": catalog, "quantity": 10, "unit_amount": "800"}])
        _finalize(tenant, quote["id"])
        accepted = _accept(tenant, quote["id"]).json()
        custom = accepted["lines"][0]["custom_price_id"]
        sub_id = accepted["subscription_id"]
        _advance(tenant, clock, "2024-06-16T00:00:00Z")
        change = tenant.post(
            f"/v1/subscriptions/{sub_id}/change",
            {"items": [{"price_id": catalog, "quantity": 10}], "proration_behavior": "always_invoice"},
        )
        assert change.status_code == 200, change.text
        update = _invoices(tenant, customer)[-1]
        charge = next(li for li in update["lines"] if li["price_id"] == catalog)

        checked = tenant.post(f"/v1/subscriptions/{sub_id}/check_quote")

        assert checked.status_code == 200, checked.text
        [alert] = checked.json()["data"]
        assert (alert["type"], alert["severity"], alert["status"]) == ("quote_discrepancy", "warning", "open")
        assert (alert["object_type"], alert["object_id"]) == ("invoice", update["id"])
        assert alert["details"] == {
            "quote_id": quote["id"],
            "line_id": charge["id"],
            "field": "price_id",
            "expected": custom,
            "actual": catalog,
        }
        assert [a["id"] for a in _discrepancies(tenant)] == [alert["id"]]
        by_invoice = tenant.get("/v1/alerts", params={"object_id": update["id"]}).json()["data"]
        assert [a["id"] for a in by_invoice] == [alert["id"]]

        _advance(tenant, clock, "2024-07-01T00:00:00Z")  # a full month at the catalog price
        renewal = _invoices(tenant, customer)[-1]
        rechecked = tenant.post(f"/v1/subscriptions/{sub_id}/check_quote").json()["data"]

        assert renewal["total"] == 10000
        on_renewal = {
            a["details"]["field"]: (a["details"]["expected"], a["details"]["actual"])
            for a in rechecked
            if a["object_id"] == renewal["id"]
        }
        assert on_renewal == {"price_id": (custom, catalog), "amount": (8000, 10000)}
        assert len(_discrepancies(tenant)) == 3  # checking again adds nothing for the update invoice

        acknowledged = tenant.post(f"/v1/alerts/{alert['id']}/acknowledge")
        resolved = tenant.post(f"/v1/alerts/{alert['id']}/resolve")
        back = tenant.post(f"/v1/alerts/{alert['id']}/acknowledge")

        assert acknowledged.status_code == 200, acknowledged.text
        assert acknowledged.json()["status"] == "acknowledged"
        assert acknowledged.json()["acknowledged_at"] is not None
        assert (resolved.json()["status"], resolved.json()["resolved_at"] is not None) == ("resolved", True)
        _problem(back, 409, "invalid_state")
        assert tenant.get(f"/v1/alerts/{alert['id']}").json()["status"] == "resolved"
        assert [a["id"] for a in tenant.get("/v1/alerts", params={"status": "resolved"}).json()["data"]] == [
            alert["id"]
        ]
        _problem(other_tenant.get(f"/v1/alerts/{alert['id']}"), 404, "resource_missing")
        _problem(other_tenant.post(f"/v1/alerts/{alert['id']}/resolve"), 404, "resource_missing")
        assert other_tenant.get("/v1/alerts").json()["data"] == []

    def test_a_missing_quoted_discount_and_a_foreign_coupon_are_recorded(
        self, tenant: Tenant, container: Container
    ) -> None:
        price = make_price(container, tenant.org_id, flat=5000)
        quoted = tenant.post("/v1/coupons", {"name": "Deal", "percent_off": 20, "duration": "forever"}).json()
        other = tenant.post("/v1/coupons", {"name": "Other", "percent_off": 10, "duration": "forever"}).json()
        clock = _clock(tenant, "2024-06-01T00:00:00Z")
        customer = _customer(tenant, clock)
        quote = _quote(tenant, customer, [{"price_id": price}], coupon_id=quoted["id"])
        _finalize(tenant, quote["id"])
        sub_id = _accept(tenant, quote["id"]).json()["subscription_id"]
        [discount] = tenant.get(f"/v1/subscriptions/{sub_id}/discounts").json()["data"]
        assert tenant.delete(f"/v1/discounts/{discount['id']}").status_code == 200
        applied = tenant.post(f"/v1/subscriptions/{sub_id}/discounts", {"coupon_id": other["id"]})
        assert applied.status_code == 201, applied.text
        _advance(tenant, clock, "2024-07-01T00:00:00Z")

        alerts = tenant.post(f"/v1/subscriptions/{sub_id}/check_quote").json()["data"]

        first, second = _invoices(tenant, customer)
        assert (first["discount"], second["discount"]) == (1000, 500)
        found = {
            a["details"]["field"]: (a["details"]["expected"], a["details"]["actual"], a["object_id"])
            for a in alerts
        }
        assert found == {
            "discount": (1000, 0, second["id"]),
            "coupon": (quoted["id"], [other["id"]], second["id"]),
        }

    def test_a_subscription_not_made_from_a_quote_cannot_be_checked(
        self, tenant: Tenant, container: Container
    ) -> None:
        price = make_price(container, tenant.org_id, flat=5000)
        customer = _customer(tenant, _clock(tenant, "2024-06-01T00:00:00Z"))
        sub = tenant.post(
            "/v1/subscriptions", {"customer_id": customer, "items": [{"price_id": price}]}
        ).json()

        r = tenant.post(f"/v1/subscriptions/{sub['id']}/check_quote")

        _problem(r, 422, "subscription_not_quoted")
