"""A worker killed between the gateway call and storing its result charges exactly once after a restart;
payment methods; card numbers are refused before anything reads, logs or stores them."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
from datetime import timedelta

import pytest
from sqlalchemy import inspect, select, text

from revflow.adapters.payments.stripe import StripeGateway
from revflow.bootstrap import ConfigurationError, Container, build
from revflow.config import Settings
from revflow.jobs.worker import collect_payments
from revflow.storage.models import Base, Invoice, Payment
from tests.conftest import Tenant
from tests.integration.payment_helpers import customer, open_invoice, sandbox_charges


def _run(db_url: str, failpoint: str | None) -> subprocess.CompletedProcess[str]:
    """One cycle of a real ``revflow worker`` process."""
    env = {
        **os.environ,
        "REVFLOW_DATABASE_URL": db_url,
        "REVFLOW_PAYMENT_LEASE_SECONDS": "0",
        "REVFLOW_LOG_LEVEL": "WARNING",
    }
    env.pop("REVFLOW_FAILPOINT", None)
    if failpoint is not None:
        env["REVFLOW_FAILPOINT"] = failpoint
    cmd = [sys.executable, "-m", "revflow.cli.main", "worker", "--once"]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)


def _collected(run: subprocess.CompletedProcess[str]) -> str:
    return next(
        line.split("=")[1] for line in run.stdout.splitlines() if line.startswith("collect_payments=")
    )


def _payments(container: Container, invoice_id: str) -> list[tuple[str, int | None]]:
    with container.sessions() as s:
        rows = s.scalars(select(Payment).where(Payment.invoice_id == invoice_id))
        return sorted((p.status, p.attempt_number) for p in rows)


class TestKillSafeCharging:
    @pytest.mark.parametrize(
        ("failpoint", "charges_at_crash"),
        [("payments.after_gateway_call:1", 1), ("payments.before_gateway_call:1", 0)],
    )
    def test_a_worker_killed_around_the_gateway_call_charges_exactly_once_after_restart(
        self, tenant: Tenant, container: Container, db_url: str, failpoint: str, charges_at_crash: int
    ) -> None:
        inv = open_invoice(tenant, customer(tenant))

        crash = _run(db_url, failpoint)
        at_crash = (_payments(container, inv), sandbox_charges(container))
        rerun = _run(db_url, None)
        again = _run(db_url, None)

        assert crash.returncode == 97, crash.stderr  # died at the failpoint, as kill -9 would
        assert at_crash == ([("sending", 1)], charges_at_crash)
        assert (rerun.returncode, again.returncode) == (0, 0), rerun.stderr + again.stderr
        assert (_collected(rerun), _collected(again)) == ("1", "0")  # attempts handled by each cycle
        assert _payments(container, inv) == [("succeeded", 1)]
        assert sandbox_charges(container) == 1
        with container.sessions() as s:
            invoice = s.get_one(Invoice, inv)
            assert (invoice.status, invoice.amount_paid) == ("paid", 5000)


class TestPaymentMethods:
    def test_attach_list_set_default_and_remove(self, tenant: Tenant) -> None:
        cus = customer(tenant)
        bank = tenant.post(
            f"/v1/customers/{cus}/payment_methods", {"token": "pm_usBankAccount", "set_default": False}
        ).json()
        setup = tenant.post(
            f"/v1/customers/{cus}/setup_sessions", {"method_types": ["card", "us_bank_account"]}
        )

        before = tenant.get(f"/v1/customers/{cus}/payment_methods").json()["data"]
        made_default = tenant.post(f"/v1/customers/{cus}/payment_methods/{bank['id']}/default")
        after = tenant.get(f"/v1/customers/{cus}/payment_methods").json()["data"]
        removed = tenant.delete(f"/v1/customers/{cus}/payment_methods/{before[0]['id']}")

        assert setup.status_code == 201 and setup.json()["client_secret"].startswith("seti_sbx_")
        assert [(m["brand"], m["last4"], m["is_default"]) for m in before] == [
            ("visa", "4242", True),
            (None, "6789", False),
        ]
        assert before[0]["exp_month"] == 12 and before[1]["bank_name"] == "STRIPE TEST BANK"
        assert made_default.status_code == 200
        assert [(m["type"], m["is_default"]) for m in after] == [("us_bank_account", True), ("card", False)]
        assert (removed.status_code, removed.json()["status"]) == (200, "detached")
        assert [m["id"] for m in tenant.get(f"/v1/customers/{cus}/payment_methods").json()["data"]] == [
            bank["id"]
        ]

    def test_another_customers_payment_method_answers_404(self, tenant: Tenant) -> None:
        alice, bob = customer(tenant), customer(tenant)
        bobs = tenant.get(f"/v1/customers/{bob}/payment_methods").json()["data"][0]["id"]

        r = tenant.post(f"/v1/customers/{alice}/payment_methods/{bobs}/default")
        d = tenant.delete(f"/v1/customers/{alice}/payment_methods/{bobs}")
        bad = tenant.post(f"/v1/customers/{alice}/payment_methods", {"token": "pm_nonexistent"})

        assert [(x.status_code, x.json()["code"]) for x in (r, d, bad)] == [(404, "resource_missing")] * 3


CARD = "4242 4242 4242 4242"


class TestCardData:
    @pytest.mark.parametrize(
        ("path", "body"),
        [
            ("/v1/customers", {"name": "Eve", "metadata": {"note": CARD}}),
            ("/v1/customers", {"name": "Eve", "description": "card 4000-0566-5566-5556 exp 12/30"}),
            ("/v1/customers/cus_x/payment_methods", {"token": "5555555555554444"}),
        ],
    )
    def test_a_card_number_is_refused_and_never_logged_or_stored(
        self,
        tenant: Tenant,
        container: Container,
        caplog: pytest.LogCaptureFixture,
        capsys: pytest.CaptureFixture[str],
        path: str,
        body: dict[str, object],
    ) -> None:
        caplog.set_level(logging.DEBUG)
        digits = [
            "".join(ch for ch in v if ch.isdigit())
            for v in _strings(body)
            if sum(ch.isdigit() for ch in v) >= 13
        ]

        r = tenant.post(path, body)

        assert (r.status_code, r.json()["code"]) == (422, "card_data_not_accepted")
        out = capsys.readouterr()
        logged = caplog.text + out.out + out.err + r.text
        for number in digits:
            assert number not in logged.replace(" ", "").replace("-", "")
        assert tenant.get("/v1/customers").json()["data"] == []
        assert not _stored_anywhere(container, digits)

    def test_ordinary_numbers_pass(self, tenant: Tenant) -> None:
        r = tenant.post(
            "/v1/customers", {"name": "Ada", "metadata": {"order": "1234567890123", "ts": "1700000000000"}}
        )

        assert r.status_code == 201, r.text


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    return []


def _stored_anywhere(container: Container, numbers: list[str]) -> bool:
    """Whether any column of any table holds one of ``numbers`` (digits, separators ignored)."""
    with container.engine.connect() as conn:
        tables = set(inspect(conn).get_table_names()) & set(Base.metadata.tables)
        for table in tables:
            for row in conn.execute(text(f'SELECT * FROM "{table}"')):
                flat = "".join(str(v) for v in row).replace(" ", "").replace("-", "")
                if any(n in flat for n in numbers):
                    return True
    return False


class TestConcurrentWorkers:
    @pytest.mark.postgres_only
    def test_three_workers_charge_every_invoice_exactly_once(
        self, tenant: Tenant, container: Container
    ) -> None:
        invoices = [open_invoice(tenant, customer(tenant), amount=1000 + i) for i in range(12)]
        errors: list[BaseException] = []

        def worker() -> None:
            try:
                collect_payments(container)
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=worker) for _ in range(3)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()

        assert errors == []
        assert sandbox_charges(container) == 12
        for inv in invoices:
            assert _payments(container, inv) == [("succeeded", 1)]


class TestGatewayConfiguration:
    def test_stripe_without_an_api_key_is_a_clear_configuration_error(self, db_url: str) -> None:
        with pytest.raises(ConfigurationError, match="REVFLOW_STRIPE_API_KEY"):
            build(Settings(database_url=db_url, payment_gateway="stripe"), auto_migrate=False)

    def test_stripe_settings_build_the_stripe_adapter(self, db_url: str) -> None:
        c = build(
            Settings(
                database_url=db_url,
                payment_gateway="stripe",
                stripe_api_key="sk_test_123",
                stripe_webhook_secret="whsec_abc",
                stripe_api_base="http://127.0.0.1:9",
            ),
            auto_migrate=False,
        )
        try:
            assert isinstance(c.gateway, StripeGateway) and c.gateway.name == "stripe"
        finally:
            c.close()

    def test_the_sandbox_keeps_its_books_across_a_restart(
        self, tenant: Tenant, container: Container, db_url: str
    ) -> None:
        inv = open_invoice(tenant, customer(tenant))
        collect_payments(container)
        with container.sessions() as s:
            p = s.scalars(select(Payment).where(Payment.invoice_id == inv)).one()
        restarted = build(Settings(database_url=db_url), auto_migrate=False)
        try:
            found = restarted.gateway.find_charge(
                idempotency_key=p.idempotency_key or "", customer_ref="", metadata={}
            )
            listed = [
                g.gateway_ref for g in restarted.gateway.list_payments(since=p.created_at - timedelta(days=1))
            ]
        finally:
            restarted.close()

        assert found is not None
        assert (found.status, found.gateway_ref, found.amount) == ("succeeded", p.gateway_ref, 5000)
        assert listed == [p.gateway_ref]
