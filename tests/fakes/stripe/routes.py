"""The HTTP surface: Stripe's paths, the parameters each accepts, and which handler answers."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import invalid_request
from .state import Obj, State

__all__ = ["ROUTES", "Route", "match"]

Handler = Callable[[State, list[str], Obj], Obj]

_PAGE = {"limit", "starting_after", "ending_before"}
_LIST = _PAGE | {"created"}
_CUSTOMER = {
    "address", "balance", "description", "email", "invoice_settings", "metadata", "name", "phone",
    "preferred_locales", "shipping", "tax_exempt", "payment_method",
}  # fmt: skip
_PI = {
    "allowed_payment_method_types",
    "amount", "currency", "customer", "payment_method", "payment_method_types", "confirm", "off_session",
    "description", "metadata", "receipt_email", "setup_future_usage", "statement_descriptor",
    "statement_descriptor_suffix", "capture_method", "confirmation_method", "error_on_requires_action",
    "mandate", "mandate_data", "return_url", "payment_method_options", "automatic_payment_methods",
}  # fmt: skip
_PI_CONFIRM = {
    "payment_method", "off_session", "mandate", "mandate_data", "return_url", "error_on_requires_action",
    "payment_method_options", "receipt_email", "setup_future_usage",
}  # fmt: skip
_SI = {
    "allowed_payment_method_types",
    "customer", "payment_method_types", "usage", "metadata", "description", "payment_method", "confirm",
    "mandate_data", "return_url", "payment_method_options", "automatic_payment_methods",
}  # fmt: skip


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    params: frozenset[str]
    handler: Handler
    list_url: Callable[[list[str]], str] | None = None  # list endpoints: the envelope's ``url``


def _r(
    method: str,
    path: str,
    params: set[str],
    handler: Handler,
    list_url: Callable[[list[str]], str] | None = None,
) -> Route:
    regex = "^" + re.sub(r"\{[a-z_]+\}", r"([^/]+)", path) + "$"
    expandable = set() if method == "DELETE" else {"expand"}  # Stripe's deletes return no expandable object
    return Route(method, re.compile(regex), frozenset(params | expandable), handler, list_url)


def _listed(coll_items: Callable[[State, list[str], Obj], list[Obj]]) -> Handler:
    def handler(state: State, args: list[str], p: Obj) -> Obj:
        raise AssertionError("list handlers are wrapped by the server")  # pragma: no cover

    handler.items = coll_items  # type: ignore[attr-defined]
    return handler


def _events(state: State, _: list[str], p: Obj) -> list[Obj]:
    items = list(state.objects["event"].values())
    if p.get("type"):
        pattern = re.compile("^" + re.escape(str(p["type"])).replace(r"\*", ".*") + "$")
        items = [e for e in items if pattern.match(e["type"])]
    if p.get("types"):
        wanted = set(p["types"]) if isinstance(p["types"], list) else {p["types"]}
        items = [e for e in items if e["type"] in wanted]
    return items


ROUTES: list[Route] = [
    # customers
    _r("POST", "/v1/customers", _CUSTOMER, lambda s, a, p: s.create_customer(p)),
    _r(
        "GET",
        "/v1/customers/search",
        {"query", "limit", "page"},
        lambda s, a, p: s.search_envelope("customer", "/v1/customers/search", p),
    ),
    _r(
        "GET",
        "/v1/customers",
        _LIST | {"email", "test_clock"},
        _listed(lambda s, a, p: s.list_customers(p)),
        lambda a: "/v1/customers",
    ),
    _r(
        "GET",
        "/v1/customers/{id}/payment_methods",
        _PAGE | {"type"},
        _listed(lambda s, a, p: s.customer_payment_methods(a[0], p)),
        lambda a: f"/v1/customers/{a[0]}/payment_methods",
    ),
    _r("GET", "/v1/customers/{id}", set(), lambda s, a, p: s.get("customer", a[0])),
    _r(
        "POST",
        "/v1/customers/{id}",
        _CUSTOMER - {"payment_method"},
        lambda s, a, p: s.update_customer(a[0], p),
    ),
    _r("DELETE", "/v1/customers/{id}", set(), lambda s, a, p: s.delete_customer(a[0])),
    # payment methods
    _r(
        "GET",
        "/v1/payment_methods",
        _PAGE | {"customer", "type"},
        _listed(lambda s, a, p: s.customer_payment_methods(str(p.get("customer") or ""), p)),
        lambda a: "/v1/payment_methods",
    ),
    _r("GET", "/v1/payment_methods/{id}", set(), lambda s, a, p: s.materialize(a[0], param="payment_method")),
    _r(
        "POST",
        "/v1/payment_methods/{id}/attach",
        {"customer"},
        lambda s, a, p: s.attach_payment_method(a[0], p),
    ),
    _r("POST", "/v1/payment_methods/{id}/detach", set(), lambda s, a, p: s.detach_payment_method(a[0])),
    _r(
        "POST",
        "/v1/payment_methods/{id}",
        {"billing_details", "card", "metadata"},
        lambda s, a, p: s.update_payment_method(a[0], p),
    ),
    # setup intents
    _r("POST", "/v1/setup_intents", _SI, lambda s, a, p: s.create_setup_intent(p)),
    _r("GET", "/v1/setup_intents/{id}", {"client_secret"}, lambda s, a, p: s.get("setup_intent", a[0])),
    _r(
        "POST",
        "/v1/setup_intents/{id}/confirm",
        {"payment_method", "mandate_data", "return_url", "payment_method_options"},
        lambda s, a, p: s.confirm_setup_intent(a[0], p),
    ),
    _r(
        "GET",
        "/v1/setup_intents",
        _LIST | {"customer", "payment_method"},
        _listed(
            lambda s, a, p: [
                o
                for o in s.objects["setup_intent"].values()
                if not p.get("customer") or o["customer"] == p["customer"]
            ]
        ),
        lambda a: "/v1/setup_intents",
    ),
    # payment intents
    _r("POST", "/v1/payment_intents", _PI, lambda s, a, p: s.create_payment_intent(p)),
    _r(
        "GET",
        "/v1/payment_intents/search",
        {"query", "limit", "page"},
        lambda s, a, p: s.search_envelope("payment_intent", "/v1/payment_intents/search", p),
    ),
    _r(
        "GET",
        "/v1/payment_intents",
        _LIST | {"customer"},
        _listed(lambda s, a, p: s.list_payment_intents(p)),
        lambda a: "/v1/payment_intents",
    ),
    _r("GET", "/v1/payment_intents/{id}", {"client_secret"}, lambda s, a, p: s.get("payment_intent", a[0])),
    _r(
        "POST",
        "/v1/payment_intents/{id}/confirm",
        _PI_CONFIRM,
        lambda s, a, p: s.confirm_payment_intent(a[0], p),
    ),
    _r(
        "POST",
        "/v1/payment_intents/{id}/cancel",
        {"cancellation_reason"},
        lambda s, a, p: s.cancel_payment_intent(a[0], p),
    ),
    _r(
        "POST",
        "/v1/payment_intents/{id}",
        {"metadata", "description"},
        lambda s, a, p: s.update_payment_intent(a[0], p),
    ),
    # charges
    _r(
        "GET",
        "/v1/charges",
        _LIST | {"customer", "payment_intent", "transfer_group"},
        _listed(lambda s, a, p: s.list_charges(p)),
        lambda a: "/v1/charges",
    ),
    _r(
        "GET",
        "/v1/charges/{id}/refunds",
        _PAGE,
        _listed(lambda s, a, p: s.list_refunds({"charge": s.get("charge", a[0])["id"]})),
        lambda a: f"/v1/charges/{a[0]}/refunds",
    ),
    _r("GET", "/v1/charges/{id}", set(), lambda s, a, p: s.get("charge", a[0])),
    # refunds
    _r(
        "POST",
        "/v1/refunds",
        {"charge", "payment_intent", "amount", "reason", "metadata", "instructions_email"},
        lambda s, a, p: s.create_refund(p),
    ),
    _r(
        "GET",
        "/v1/refunds",
        _LIST | {"charge", "payment_intent"},
        _listed(lambda s, a, p: s.list_refunds(p)),
        lambda a: "/v1/refunds",
    ),
    _r("GET", "/v1/refunds/{id}", set(), lambda s, a, p: s.get("refund", a[0])),
    # disputes
    _r(
        "GET",
        "/v1/disputes",
        _LIST | {"charge", "payment_intent"},
        _listed(
            lambda s, a, p: [
                d
                for d in s.objects["dispute"].values()
                if all(not p.get(k) or d[k] == p[k] for k in ("charge", "payment_intent"))
            ]
        ),
        lambda a: "/v1/disputes",
    ),
    _r("GET", "/v1/disputes/{id}", set(), lambda s, a, p: s.get("dispute", a[0])),
    _r(
        "POST",
        "/v1/disputes/{id}",
        {"evidence", "metadata", "submit"},
        lambda s, a, p: s.update_dispute(a[0], p),
    ),
    _r("POST", "/v1/disputes/{id}/close", set(), lambda s, a, p: s.close_dispute(a[0])),
    # events
    _r(
        "GET",
        "/v1/events",
        _LIST | {"type", "types", "delivery_success"},
        _listed(_events),
        lambda a: "/v1/events",
    ),
    _r("GET", "/v1/events/{id}", set(), lambda s, a, p: s.get("event", a[0])),
]


def match(method: str, path: str) -> tuple[Route, list[str]] | None:
    for route in ROUTES:
        if route.method != method:
            continue
        m = route.pattern.match(path)
        if m is not None:
            return route, list(m.groups())
    return None


def check_params(route: Route, params: dict[str, Any]) -> None:
    """Stripe refuses any parameter an endpoint does not define (``parameter_unknown``)."""
    for key in params:
        if key not in route.params:
            raise invalid_request(f"Received unknown parameter: {key}", code="parameter_unknown", param=key)
