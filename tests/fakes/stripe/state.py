"""The fake's resources: what Stripe stores and how each endpoint changes it.

Objects are plain dicts shaped as in Stripe's ``fixtures3.json`` for API version 2023-08-16 and later (ids,
field names, nesting, ``object`` discriminators). Handlers take the decoded form parameters and return the
JSON body, or raise :class:`ApiError` exactly as Stripe answers.
"""

# ruff: noqa: E501  (Stripe's own messages are quoted verbatim)

from __future__ import annotations

import copy
import re
import secrets
import string
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import pycountry

from .errors import card_error, invalid_request, resource_missing
from .testcards import TEST_TOKENS, TestToken

__all__ = ["State", "WebhookEndpoint"]

Obj = dict[str, Any]
_ALNUM = string.ascii_letters + string.digits

#: Prefix → (collection, noun used in "No such ..." messages).
PREFIXES: dict[str, tuple[str, str]] = {
    "cus_": ("customer", "customer"),
    "pm_": ("payment_method", "PaymentMethod"),
    "seti_": ("setup_intent", "setupintent"),
    "pi_": ("payment_intent", "payment_intent"),
    "ch_": ("charge", "charge"),
    "re_": ("refund", "refund"),
    "dp_": ("dispute", "dispute"),
    "evt_": ("event", "event"),
}

REFUND_REASONS = {"duplicate", "fraudulent", "requested_by_customer"}
PAYMENT_METHOD_TYPES = {"card", "us_bank_account"}
#: Smallest charge per currency Stripe accepts (https://docs.stripe.com/currencies#minimum-and-maximum-charge-amounts).
MIN_CHARGE = {"usd": 50, "eur": 50, "gbp": 30, "cad": 50, "aud": 50, "jpy": 50, "chf": 50}


def new_id(prefix: str, long: bool = True) -> str:
    """Ids as Stripe mints them: ``cus_`` + 14 characters, the others ``1`` + 23 characters."""
    if not long:
        return prefix + "".join(secrets.choice(_ALNUM) for _ in range(14))
    return prefix + "1" + "".join(secrets.choice(_ALNUM) for _ in range(23))


@dataclass
class WebhookEndpoint:
    """A registered webhook endpoint. ``url`` None: events are queued for signing only, never POSTed."""

    id: str
    url: str | None
    secret: str
    enabled_events: tuple[str, ...] = ("*",)
    pending: list[str] = field(default_factory=list)  # event ids not yet delivered, oldest first
    deliveries: list[tuple[str, int | None]] = field(default_factory=list)  # (event id, HTTP status or None)

    def wants(self, event_type: str) -> bool:
        return "*" in self.enabled_events or event_type in self.enabled_events


@dataclass
class RequestInfo:
    id: str
    idempotency_key: str | None


class State:
    """Every object the fake holds, and the endpoint handlers. Callers hold ``lock``."""

    def __init__(self, *, api_version: str, now: Callable[[], float] = time.time):
        self.api_version = api_version
        self._now = now
        self.time_offset = 0
        self.objects: dict[str, dict[str, Obj]] = {name: {} for name, _ in PREFIXES.values()}
        self.endpoints: list[WebhookEndpoint] = []
        self.request: RequestInfo | None = None
        self._used_once: set[str] = set()  # PaymentMethods detached or used without a customer: not reusable
        self._spec_map: dict[str, TestToken] = {}  # PaymentMethod id → the test token it was made from

    # ----------------------------------------------------------------------------------------- helpers
    def now(self) -> int:
        return int(self._now()) + self.time_offset

    def lookup(self, ident: str) -> Obj | None:
        for prefix, (coll, _) in PREFIXES.items():
            if ident.startswith(prefix):
                return self.objects[coll].get(ident)
        return None

    def get(self, coll: str, ident: str, *, param: str = "id") -> Obj:
        obj = self.objects[coll].get(ident)
        if obj is None:
            noun = next(n for c, n in PREFIXES.values() if c == coll)
            raise resource_missing(noun, ident, param=param)
        return obj

    def render(self, obj: Obj, expand: Iterable[str] = ()) -> Obj:
        """A deep copy of ``obj`` with the ``expand`` paths replaced by the objects they name."""
        out = copy.deepcopy(obj)
        for path in expand:
            self._expand(out, path.split("."), path)
        return out

    def _expand(self, node: Any, parts: list[str], full: str) -> None:
        if not parts or node is None:
            return
        head, rest = parts[0], parts[1:]
        if isinstance(node, dict) and node.get("object") in ("list", "search_result") and head == "data":
            for item in node["data"]:
                self._expand(item, rest, full)
            return
        if not isinstance(node, dict) or head not in node:
            raise invalid_request(f"This property cannot be expanded ({head}).", param="expand")
        value = node[head]
        if isinstance(value, str):
            target = self.lookup(value)
            if target is None:
                raise invalid_request(f"This property cannot be expanded ({head}).", param="expand")
            node[head] = copy.deepcopy(target)
        self._expand(node[head], rest, full)

    def emit(self, type_: str, obj: Obj, previous: Obj | None = None) -> Obj:
        """Record an event whose ``data.object`` is a snapshot of ``obj``, and queue it for the endpoints."""
        data: Obj = {"object": copy.deepcopy(obj)}
        if previous is not None:
            data["previous_attributes"] = previous
        wanted = [e for e in self.endpoints if e.wants(type_)]
        event = {
            "id": new_id("evt_"),
            "object": "event",
            "api_version": self.api_version,
            "created": self.now(),
            "data": data,
            "livemode": False,
            "pending_webhooks": len(wanted),
            "request": {
                "id": self.request.id if self.request else None,
                "idempotency_key": self.request.idempotency_key if self.request else None,
            },
            "type": type_,
        }
        self.objects["event"][event["id"]] = event
        for endpoint in wanted:
            endpoint.pending.append(event["id"])
        return event

    def list_envelope(self, items: list[Obj], url: str, params: Obj, expand: Iterable[str] = ()) -> Obj:
        """Newest first; ``limit`` (1-100, default 10) with ``starting_after`` / ``ending_before`` cursors."""
        limit = _int(params.get("limit", 10), "limit")
        if not 1 <= limit <= 100:
            raise invalid_request(
                "Invalid integer: limit must be between 1 and 100",
                code="parameter_invalid_integer",
                param="limit",
            )
        items = _filter_created(items, params.get("created"))
        ordered = list(reversed(items))
        after, before = params.get("starting_after"), params.get("ending_before")
        if after and before:
            raise invalid_request(
                "You may only specify one of these parameters: ending_before, starting_after.",
                param="ending_before",
            )
        if after or before:
            cursor = after or before
            ids = [o["id"] for o in ordered]
            if cursor not in ids:
                target = self.lookup(str(cursor))
                if target is None:
                    prefix = str(cursor).split("_", 1)[0] + "_"
                    noun = PREFIXES.get(prefix, ("object", "object"))[1]
                    raise resource_missing(
                        noun, str(cursor), param="starting_after" if after else "ending_before"
                    )
                ordered_page: list[Obj] = []
                has_more = False
            else:
                i = ids.index(cursor)
                if after:
                    ordered_page, has_more = ordered[i + 1 : i + 1 + limit], len(ordered) > i + 1 + limit
                else:
                    start = max(0, i - limit)
                    ordered_page, has_more = ordered[start:i], start > 0
        else:
            ordered_page, has_more = ordered[:limit], len(ordered) > limit
        page = {
            "object": "list",
            "data": [copy.deepcopy(o) for o in ordered_page],
            "has_more": has_more,
            "url": url,
        }
        for path in expand:
            self._expand(page, path.split("."), path)
        return page

    def search_envelope(self, coll: str, url: str, params: Obj, expand: Iterable[str] = ()) -> Obj:
        """Stripe's search (``field:'value'`` clauses joined by AND; ``metadata['k']:'v'``), paged by ``page``."""
        query = params.get("query")
        if not query:
            raise invalid_request("Missing required param: query.", code="parameter_missing", param="query")
        clauses = _parse_query(str(query))
        matches = [o for o in reversed(list(self.objects[coll].values())) if all(c(o) for c in clauses)]
        limit = _int(params.get("limit", 10), "limit")
        start = _int(params.get("page") or 0, "page") if str(params.get("page") or "0").isdigit() else 0
        chunk = matches[start : start + limit]
        more = len(matches) > start + limit
        page = {
            "object": "search_result",
            "data": [copy.deepcopy(o) for o in chunk],
            "has_more": more,
            "next_page": str(start + limit) if more else None,
            "url": url,
        }
        for path in expand:
            self._expand(page, path.split("."), path)
        return page

    # ---------------------------------------------------------------------------------------- customers
    def create_customer(self, p: Obj) -> Obj:
        cus = {
            "id": new_id("cus_", long=False),
            "object": "customer",
            "address": p.get("address"),
            "balance": _int(p.get("balance", 0), "balance"),
            "created": self.now(),
            "currency": None,
            "default_source": None,
            "delinquent": False,
            "description": p.get("description") or None,
            "discount": None,
            "email": p.get("email") or None,
            "invoice_prefix": "".join(
                secrets.choice(string.ascii_uppercase + string.digits) for _ in range(8)
            ),
            "invoice_settings": {
                "custom_fields": None,
                "default_payment_method": None,
                "footer": None,
                "rendering_options": None,
            },
            "livemode": False,
            "metadata": _metadata({}, p.get("metadata")),
            "name": p.get("name") or None,
            "next_invoice_sequence": 1,
            "phone": p.get("phone") or None,
            "preferred_locales": list(p.get("preferred_locales") or []),
            "shipping": None,
            "tax_exempt": p.get("tax_exempt", "none"),
            "test_clock": None,
        }
        self.objects["customer"][cus["id"]] = cus
        self.emit("customer.created", cus)
        if p.get("payment_method"):
            self.attach_payment_method(str(p["payment_method"]), {"customer": cus["id"]})
        default_pm = (p.get("invoice_settings") or {}).get("default_payment_method")
        if default_pm:
            self._set_default_pm(cus, str(default_pm))
        return cus

    def update_customer(self, ident: str, p: Obj) -> Obj:
        cus = self.get("customer", ident)
        previous: Obj = {}
        for key in ("email", "name", "description", "phone"):
            if key in p:
                previous[key] = cus[key]
                cus[key] = p[key] or None
        if "metadata" in p:
            previous["metadata"] = copy.deepcopy(cus["metadata"])
            cus["metadata"] = _metadata(cus["metadata"], p["metadata"])
        settings = p.get("invoice_settings")
        if isinstance(settings, dict) and "default_payment_method" in settings:
            previous["invoice_settings"] = copy.deepcopy(cus["invoice_settings"])
            self._set_default_pm(cus, str(settings["default_payment_method"] or ""))
        self.emit("customer.updated", cus, previous)
        return cus

    def _set_default_pm(self, cus: Obj, pm_id: str) -> None:
        if pm_id:
            pm = self.get("payment_method", pm_id, param="invoice_settings[default_payment_method]")
            if pm["customer"] != cus["id"]:
                raise invalid_request(
                    f"No such PaymentMethod: '{pm_id}'; It's possible this PaymentMethod exists on one of your"
                    " connected accounts, in which case you should retry this request on that connected account.",
                    code="resource_missing",
                    param="invoice_settings[default_payment_method]",
                )
        cus["invoice_settings"]["default_payment_method"] = pm_id or None

    def delete_customer(self, ident: str) -> Obj:
        cus = self.get("customer", ident)
        del self.objects["customer"][ident]
        self.emit("customer.deleted", cus)
        return {"id": ident, "object": "customer", "deleted": True}

    def list_customers(self, p: Obj) -> list[Obj]:
        items = list(self.objects["customer"].values())
        if p.get("email"):
            items = [c for c in items if c["email"] == p["email"]]
        return items

    # ----------------------------------------------------------------------------------- payment methods
    def materialize(self, token: str, *, param: str = "payment_method") -> Obj:
        """A test token (``pm_card_visa``) becomes a new PaymentMethod with the token's details; an existing
        ``pm_`` id is looked up."""
        spec = TEST_TOKENS.get(token)
        if spec is None:
            return self.get("payment_method", token, param=param)
        pm = self._payment_method_from(spec)
        self.objects["payment_method"][pm["id"]] = pm
        return pm

    def _payment_method_from(self, spec: TestToken) -> Obj:
        pm: Obj = {
            "id": new_id("pm_"),
            "object": "payment_method",
            "allow_redisplay": "unspecified",
            "billing_details": {
                "address": {
                    "city": None,
                    "country": None,
                    "line1": None,
                    "line2": None,
                    "postal_code": None,
                    "state": None,
                },
                "email": None,
                "name": "Jenny Rosen" if spec.type == "us_bank_account" else None,
                "phone": None,
            },
            "created": self.now(),
            "customer": None,
            "livemode": False,
            "metadata": {},
            "type": spec.type,
        }
        if spec.type == "card":
            pm["card"] = {
                "brand": spec.brand,
                "checks": {
                    "address_line1_check": None,
                    "address_postal_code_check": None,
                    "cvc_check": "pass",
                },
                "country": spec.country,
                "display_brand": spec.brand,
                "exp_month": spec.exp_month,
                "exp_year": spec.exp_year,
                "fingerprint": spec.fingerprint,
                "funding": spec.funding,
                "generated_from": None,
                "last4": spec.last4,
                "networks": {"available": [spec.brand], "preferred": None},
                "three_d_secure_usage": {"supported": True},
                "wallet": None,
            }
        else:
            pm["us_bank_account"] = {
                "account_holder_type": "individual",
                "account_type": "checking",
                "bank_name": spec.bank_name,
                "financial_connections_account": None,
                "fingerprint": spec.fingerprint,
                "last4": spec.last4,
                "networks": {"preferred": "ach", "supported": ["ach"]},
                "routing_number": spec.routing_number,
                "status_details": {},
            }
        self._spec_map[pm["id"]] = spec
        return pm

    def spec_of(self, pm: Obj) -> TestToken | None:
        return self._spec_map.get(pm["id"])

    def attach_payment_method(self, ident: str, p: Obj) -> Obj:
        customer_id = p.get("customer")
        if not customer_id:
            raise invalid_request(
                "Missing required param: customer.", code="parameter_missing", param="customer"
            )
        cus = self.get("customer", str(customer_id), param="customer")
        spec = TEST_TOKENS.get(ident)
        if spec is not None and spec.attach_error is not None:
            code, decline, message = spec.attach_error
            raise card_error(code, decline, message, {})
        pm = self.materialize(ident, param="payment_method")
        if spec is None:
            if pm["customer"] is not None:
                raise invalid_request(
                    "The payment method you provided has already been attached to a customer.",
                    code="payment_method_unexpected_state",
                )
            if pm["id"] in self._used_once:
                raise invalid_request(
                    "This PaymentMethod was previously used without being attached to a Customer or was detached"
                    " from a Customer, and may not be used again.",
                    code="payment_method_unexpected_state",
                )
            stored_spec = self.spec_of(pm)
            if stored_spec is not None and stored_spec.attach_error is not None:
                code, decline, message = stored_spec.attach_error
                raise card_error(code, decline, message, {})
        pm["customer"] = cus["id"]
        self.emit("payment_method.attached", pm)
        return pm

    def detach_payment_method(self, ident: str) -> Obj:
        pm = self.get("payment_method", ident)
        if pm["customer"] is None:
            raise invalid_request(
                "The payment method you provided is not attached to a customer so detachment is impossible.",
                code="payment_method_unexpected_state",
            )
        previous = {"customer": pm["customer"]}
        cus = self.objects["customer"].get(pm["customer"])
        if cus is not None and cus["invoice_settings"]["default_payment_method"] == ident:
            cus["invoice_settings"]["default_payment_method"] = None
        pm["customer"] = None
        self._used_once.add(ident)
        self.emit("payment_method.detached", pm, previous)
        return pm

    def update_payment_method(self, ident: str, p: Obj) -> Obj:
        pm = self.get("payment_method", ident)
        if pm["customer"] is None:
            raise invalid_request(
                "You must save this PaymentMethod to a customer before you can update it.",
                code="payment_method_unexpected_state",
            )
        previous: Obj = {}
        card = p.get("card")
        if isinstance(card, dict):
            if pm["type"] != "card":
                raise invalid_request(
                    "Received unknown parameter: card", code="parameter_unknown", param="card"
                )
            previous["card"] = {}
            for key in ("exp_month", "exp_year"):
                if key in card:
                    previous["card"][key] = pm["card"][key]
                    pm["card"][key] = _int(card[key], f"card[{key}]")
        if "metadata" in p:
            previous["metadata"] = copy.deepcopy(pm["metadata"])
            pm["metadata"] = _metadata(pm["metadata"], p["metadata"])
        details = p.get("billing_details")
        if isinstance(details, dict):
            previous["billing_details"] = copy.deepcopy(pm["billing_details"])
            for key in ("email", "name", "phone"):
                if key in details:
                    pm["billing_details"][key] = details[key] or None
        self.emit("payment_method.updated", pm, previous)
        return pm

    def customer_payment_methods(self, customer_id: str, p: Obj) -> list[Obj]:
        self.get("customer", customer_id, param="customer")
        items = [pm for pm in self.objects["payment_method"].values() if pm["customer"] == customer_id]
        if p.get("type"):
            if p["type"] not in PAYMENT_METHOD_TYPES:
                raise invalid_request(
                    f"Invalid type: must be one of {', '.join(sorted(PAYMENT_METHOD_TYPES))}",
                    code="parameter_invalid_string",  # Stripe lists every type; the fake knows two
                    param="type",
                )
            items = [pm for pm in items if pm["type"] == p["type"]]
        return items

    # ------------------------------------------------------------------------------------- setup intents
    def create_setup_intent(self, p: Obj) -> Obj:
        customer = p.get("customer")
        if customer:
            self.get("customer", str(customer), param="customer")
        allowed = p.get("allowed_payment_method_types")
        types = _types(allowed if allowed is not None else p.get("payment_method_types"))
        si_id = new_id("seti_")
        si: Obj = {
            "id": si_id,
            "object": "setup_intent",
            "application": None,
            "automatic_payment_methods": None,
            "cancellation_reason": None,
            "client_secret": f"{si_id}_secret_{''.join(secrets.choice(_ALNUM) for _ in range(32))}",
            "created": self.now(),
            "customer": customer or None,
            "description": p.get("description") or None,
            "flow_directions": None,
            "last_setup_error": None,
            "latest_attempt": None,
            "livemode": False,
            "mandate": None,
            "metadata": _metadata({}, p.get("metadata")),
            "next_action": None,
            "on_behalf_of": None,
            "payment_method": None,
            "payment_method_configuration_details": None,
            "payment_method_options": _pm_options(types),
            "payment_method_types": types,
            "allowed_payment_method_types": types if allowed is not None else None,
            "single_use_mandate": None,
            "status": "requires_payment_method",
            "usage": p.get("usage", "off_session"),
        }
        self.objects["setup_intent"][si_id] = si
        self.emit("setup_intent.created", si)
        if _bool(p.get("confirm"), "confirm"):
            return self.confirm_setup_intent(si_id, p)
        return si

    def confirm_setup_intent(self, ident: str, p: Obj) -> Obj:
        si = self.get("setup_intent", ident)
        if si["status"] not in ("requires_payment_method", "requires_confirmation", "requires_action"):
            raise invalid_request(
                f"You cannot confirm this SetupIntent because it has a status of {si['status']}.",
                code="setup_intent_unexpected_state",
            )
        token = p.get("payment_method") or si["payment_method"]
        if not token:
            raise invalid_request(
                "You cannot confirm this SetupIntent because it's missing a payment method. Update the SetupIntent"
                " with a payment method and then confirm it again.",
                code="setup_intent_unexpected_state",
            )
        spec = TEST_TOKENS.get(str(token))
        pm = self.materialize(str(token))
        if pm["type"] not in si["payment_method_types"]:
            raise invalid_request(
                f"The provided PaymentMethod type ({pm['type']}) is not allowed for this SetupIntent. Please"
                f" attach a PaymentMethod of one of the following types: {', '.join(si['payment_method_types'])}.",
                code="payment_intent_incompatible_payment_method",
                param="payment_method",
            )
        spec = spec or self.spec_of(pm)
        si["payment_method"] = pm["id"]
        if spec is not None and spec.attach_error is not None:
            code, decline, message = spec.attach_error
            si["status"] = "requires_payment_method"
            si["last_setup_error"] = {
                "type": "card_error",
                "code": code,
                "decline_code": decline,
                "message": message,
                "payment_method": copy.deepcopy(pm),
            }
            si["payment_method"] = None
            self.emit("setup_intent.setup_failed", si)
            raise card_error(code, decline, message, {"setup_intent": copy.deepcopy(si)})
        if spec is not None and spec.requires_authentication:
            si["status"] = "requires_action"
            si["next_action"] = {
                "type": "use_stripe_sdk",
                "use_stripe_sdk": {"type": "three_d_secure_redirect"},
            }
            self.emit("setup_intent.requires_action", si)
            return si
        if si["customer"] and pm["customer"] is None:
            pm["customer"] = si["customer"]
            self.emit("payment_method.attached", pm)
        si["status"] = "succeeded"
        si["next_action"] = None
        si["last_setup_error"] = None
        self.emit("setup_intent.succeeded", si)
        return si

    # ----------------------------------------------------------------------------------- payment intents
    def create_payment_intent(self, p: Obj) -> Obj:
        for required in ("amount", "currency"):
            if p.get(required) in (None, ""):
                raise invalid_request(
                    f"Missing required param: {required}.", code="parameter_missing", param=required
                )
        amount = _int(p["amount"], "amount")
        currency = str(p["currency"]).lower()
        if pycountry.currencies.get(alpha_3=currency.upper()) is None:
            raise invalid_request(
                f"Invalid currency: {currency}.", code="parameter_invalid_string", param="currency"
            )
        if amount < MIN_CHARGE.get(currency, 1):
            raise invalid_request(
                f"Amount must be at least {MIN_CHARGE.get(currency, 1)} {currency}",
                code="amount_too_small",
                param="amount",
            )
        customer = p.get("customer") or None
        if customer:
            self.get("customer", str(customer), param="customer")
        allowed = p.get("allowed_payment_method_types")
        types = _types(allowed if allowed is not None else p.get("payment_method_types"))
        pi_id = new_id("pi_")
        pi: Obj = {
            "id": pi_id,
            "object": "payment_intent",
            "amount": amount,
            "amount_capturable": 0,
            "amount_details": {"tip": {}},
            "amount_received": 0,
            "application": None,
            "application_fee_amount": None,
            "automatic_payment_methods": None,
            "canceled_at": None,
            "cancellation_reason": None,
            "capture_method": p.get("capture_method", "automatic"),
            "client_secret": f"{pi_id}_secret_{''.join(secrets.choice(_ALNUM) for _ in range(25))}",
            "confirmation_method": p.get("confirmation_method", "automatic"),
            "created": self.now(),
            "currency": currency,
            "customer": customer,
            "description": p.get("description") or None,
            "last_payment_error": None,
            "latest_charge": None,
            "livemode": False,
            "metadata": _metadata({}, p.get("metadata")),
            "next_action": None,
            "on_behalf_of": None,
            "payment_method": None,
            "payment_method_configuration_details": None,
            "payment_method_options": _pm_options(types),
            "payment_method_types": types,
            "allowed_payment_method_types": types if allowed is not None else None,
            "processing": None,
            "receipt_email": p.get("receipt_email") or None,
            "review": None,
            "setup_future_usage": p.get("setup_future_usage") or None,
            "shipping": None,
            "statement_descriptor": p.get("statement_descriptor") or None,
            "statement_descriptor_suffix": p.get("statement_descriptor_suffix") or None,
            "status": "requires_payment_method",
            "transfer_data": None,
            "transfer_group": None,
        }
        if p.get("payment_method"):
            pm = self._payment_method_for(pi, str(p["payment_method"]))
            pi["payment_method"] = pm["id"]
            pi["status"] = "requires_confirmation"
        self.objects["payment_intent"][pi_id] = pi
        self.emit("payment_intent.created", pi)
        if _bool(p.get("confirm"), "confirm"):
            return self.confirm_payment_intent(pi_id, p)
        return pi

    def _payment_method_for(self, pi: Obj, token: str) -> Obj:
        pm = self.materialize(token)
        if pm["type"] not in pi["payment_method_types"]:
            raise invalid_request(
                f"The provided PaymentMethod type ({pm['type']}) is not allowed for this PaymentIntent. Please"
                f" attach a PaymentMethod of one of the following types: {', '.join(pi['payment_method_types'])}.",
                code="payment_intent_incompatible_payment_method",
                param="payment_method",
            )
        if pm["customer"] is not None and pm["customer"] != pi["customer"]:
            raise invalid_request(
                "The provided PaymentMethod belongs to a different Customer than the one on this PaymentIntent.",
                code="payment_method_unexpected_state" if pi["customer"] else "parameter_missing",
                param="payment_method" if pi["customer"] else "customer",
            )
        if pm["customer"] is None and pm["id"] in self._used_once:
            raise invalid_request(
                "The provided PaymentMethod was previously used with a PaymentIntent without Customer attachment,"
                " shared with a connected account without Customer attachment, or was detached from a Customer."
                " It may not be used again. To use a PaymentMethod multiple times, you must attach it to a"
                " Customer first.",
                code="payment_method_unexpected_state",
                param="payment_method",
            )
        return pm

    def confirm_payment_intent(self, ident: str, p: Obj) -> Obj:
        pi = self.get("payment_intent", ident)
        if pi["status"] not in ("requires_payment_method", "requires_confirmation", "requires_action"):
            raise invalid_request(
                f"This PaymentIntent's status is {pi['status']}, but must be one of requires_payment_method,"
                " requires_confirmation, requires_action to be confirmed.",
                code="payment_intent_unexpected_state",
            )
        if p.get("payment_method") and pi["payment_method"] != p.get("payment_method"):
            pi["payment_method"] = self._payment_method_for(pi, str(p["payment_method"]))["id"]
        if not pi["payment_method"]:
            raise invalid_request(
                "You cannot confirm this PaymentIntent because it's missing a payment method. To confirm the"
                " PaymentIntent with cus_xxx, specify a payment method attached to this customer along with the"
                " customer ID.",
                code="payment_intent_unexpected_state",
            )
        pm = self.get("payment_method", pi["payment_method"])
        if pm["customer"] is None:
            self._used_once.add(pm["id"])
        spec = self.spec_of(pm)
        off_session = _bool(p.get("off_session"), "off_session")
        pi["last_payment_error"] = None
        if spec is not None and spec.requires_authentication and not off_session:
            pi["status"] = "requires_action"
            pi["next_action"] = {
                "type": "use_stripe_sdk",
                "use_stripe_sdk": {"type": "three_d_secure_redirect", "stripe_js": ""},
            }
            self.emit("payment_intent.requires_action", pi)
            return pi
        if spec is not None and spec.charge_error is not None:
            code, decline, message = spec.charge_error
            charge = None
            if not spec.requires_authentication:
                charge = self._new_charge(pi, pm, status="failed", failure=(code, message, decline))
                pi["latest_charge"] = charge["id"]
            pi["status"] = "requires_payment_method"
            pi["last_payment_error"] = {
                "type": "card_error",
                "code": code,
                "decline_code": decline,
                "message": message,
                "doc_url": f"https://stripe.com/docs/error-codes/{code.replace('_', '-')}",
                "payment_method": copy.deepcopy(pm),
                **({"charge": charge["id"]} if charge else {}),
            }
            pi["payment_method"] = None
            if charge is not None:
                self.emit("charge.failed", charge)
            self.emit("payment_intent.payment_failed", pi)
            extra: Obj = {"payment_intent": copy.deepcopy(pi), "payment_method": copy.deepcopy(pm)}
            if charge is not None:
                extra["charge"] = charge["id"]
            raise card_error(code, decline, message, extra)
        if pm["type"] == "us_bank_account":
            charge = self._new_charge(pi, pm, status="pending")
            pi["latest_charge"] = charge["id"]
            pi["status"] = "processing"
            self.emit("charge.pending", charge)
            self.emit("payment_intent.processing", pi)
            return pi
        charge = self._new_charge(pi, pm, status="succeeded")
        pi["latest_charge"] = charge["id"]
        pi["status"] = "succeeded"
        pi["amount_received"] = pi["amount"]
        self.emit("charge.succeeded", charge)
        self.emit("payment_intent.succeeded", pi)
        return pi

    def _new_charge(
        self, pi: Obj, pm: Obj, *, status: str, failure: tuple[str, str, str | None] | None = None
    ) -> Obj:
        ch_id = new_id("ch_")
        paid = status == "succeeded"
        if pm["type"] == "card":
            details: Obj = {
                "type": "card",
                "card": {
                    "brand": pm["card"]["brand"],
                    "checks": copy.deepcopy(pm["card"]["checks"]),
                    "country": pm["card"]["country"],
                    "exp_month": pm["card"]["exp_month"],
                    "exp_year": pm["card"]["exp_year"],
                    "fingerprint": pm["card"]["fingerprint"],
                    "funding": pm["card"]["funding"],
                    "installments": None,
                    "last4": pm["card"]["last4"],
                    "mandate": None,
                    "network": pm["card"]["brand"],
                    "three_d_secure": None,
                    "wallet": None,
                },
            }
        else:
            bank = pm["us_bank_account"]
            details = {
                "type": "us_bank_account",
                "us_bank_account": {
                    "account_holder_type": bank["account_holder_type"],
                    "account_type": bank["account_type"],
                    "bank_name": bank["bank_name"],
                    "fingerprint": bank["fingerprint"],
                    "last4": bank["last4"],
                    "routing_number": bank["routing_number"],
                },
            }
        code, message, decline = failure if failure else (None, None, None)
        charge: Obj = {
            "id": ch_id,
            "object": "charge",
            "amount": pi["amount"],
            "amount_captured": pi["amount"] if paid else 0,
            "amount_refunded": 0,
            "application": None,
            "application_fee": None,
            "application_fee_amount": None,
            "balance_transaction": new_id("txn_") if paid else None,
            "billing_details": copy.deepcopy(pm["billing_details"]),
            "calculated_statement_descriptor": "REVFLOW",
            "captured": paid,
            "created": self.now(),
            "currency": pi["currency"],
            "customer": pi["customer"],
            "description": pi["description"],
            "disputed": False,
            "failure_balance_transaction": None,
            "failure_code": code,
            "failure_message": message,
            "fraud_details": {},
            "livemode": False,
            "metadata": copy.deepcopy(pi["metadata"]),
            "on_behalf_of": None,
            "outcome": _outcome(status, decline),
            "paid": paid,
            "payment_intent": pi["id"],
            "payment_method": pm["id"],
            "payment_method_details": details,
            "receipt_email": pi["receipt_email"],
            "receipt_number": None,
            "receipt_url": f"https://pay.stripe.com/receipts/payment/{ch_id}" if paid else None,
            "refunded": False,
            "refunds": {
                "object": "list",
                "data": [],
                "has_more": False,
                "url": f"/v1/charges/{ch_id}/refunds",
            },
            "review": None,
            "shipping": None,
            "source_transfer": None,
            "statement_descriptor": pi["statement_descriptor"],
            "statement_descriptor_suffix": pi["statement_descriptor_suffix"],
            "status": status,
            "transfer_data": None,
            "transfer_group": None,
        }
        self.objects["charge"][ch_id] = charge
        return charge

    def list_payment_intents(self, p: Obj) -> list[Obj]:
        items = list(self.objects["payment_intent"].values())
        if p.get("customer"):
            items = [o for o in items if o["customer"] == p["customer"]]
        return items

    def update_payment_intent(self, ident: str, p: Obj) -> Obj:
        pi = self.get("payment_intent", ident)
        if "metadata" in p:
            pi["metadata"] = _metadata(pi["metadata"], p["metadata"])
        if "description" in p:
            pi["description"] = p["description"] or None
        return pi

    def cancel_payment_intent(self, ident: str, p: Obj) -> Obj:
        pi = self.get("payment_intent", ident)
        if pi["status"] in ("succeeded", "canceled", "processing"):
            raise invalid_request(
                f"You cannot cancel this PaymentIntent because it has a status of {pi['status']}. Only a"
                " PaymentIntent with one of the following statuses may be canceled: requires_payment_method,"
                " requires_capture, requires_confirmation, requires_action.",
                code="payment_intent_unexpected_state",
            )
        pi["status"] = "canceled"
        pi["canceled_at"] = self.now()
        pi["cancellation_reason"] = p.get("cancellation_reason") or None
        self.emit("payment_intent.canceled", pi)
        return pi

    # ------------------------------------------------------------------------------------------- charges
    def list_charges(self, p: Obj) -> list[Obj]:
        items = list(self.objects["charge"].values())
        for key in ("customer", "payment_intent"):
            if p.get(key):
                items = [o for o in items if o[key] == p[key]]
        return items

    # ------------------------------------------------------------------------------------------- refunds
    def create_refund(self, p: Obj) -> Obj:
        if p.get("charge"):
            charge = self.get("charge", str(p["charge"]), param="charge")
        elif p.get("payment_intent"):
            pi = self.get("payment_intent", str(p["payment_intent"]), param="payment_intent")
            if pi["status"] not in ("succeeded",) or not pi["latest_charge"]:
                raise invalid_request(
                    f"This PaymentIntent ({pi['id']}) does not have a successful charge to refund.",
                    code="charge_not_refundable"
                    if pi["status"] != "processing"
                    else "payment_intent_unexpected_state",
                    param="payment_intent",
                )
            charge = self.get("charge", pi["latest_charge"])
        else:
            raise invalid_request(
                "One of the following params should be provided for this request: payment_intent or charge.",
                code="parameter_missing",
            )
        if charge["status"] != "succeeded":
            raise invalid_request(
                f"Charge {charge['id']} does not have a successful payment to refund.",
                code="charge_not_refundable",
            )
        remaining = charge["amount"] - charge["amount_refunded"]
        if remaining <= 0:
            raise invalid_request(
                f"Charge {charge['id']} has already been refunded.", code="charge_already_refunded"
            )
        amount = _int(p.get("amount", remaining), "amount")
        if amount <= 0:
            raise invalid_request(
                "Invalid positive integer", code="parameter_invalid_integer", param="amount"
            )
        if amount > remaining:
            raise invalid_request(
                f"Refund amount ({_fmt(amount, charge['currency'])}) is greater than unrefunded amount on charge"
                f" ({_fmt(remaining, charge['currency'])})",
                code="amount_too_large",
                param="amount",
            )
        reason = p.get("reason") or None
        if reason is not None and reason not in REFUND_REASONS:
            raise invalid_request(
                f"Invalid reason: must be one of {', '.join(sorted(REFUND_REASONS))}",
                param="reason",
            )
        is_card = charge["payment_method_details"]["type"] == "card"
        refund: Obj = {
            "id": new_id("re_"),
            "object": "refund",
            "amount": amount,
            "balance_transaction": new_id("txn_") if is_card else None,
            "charge": charge["id"],
            "created": self.now(),
            "currency": charge["currency"],
            "destination_details": {"card": {"type": "refund"}, "type": "card"}
            if is_card
            else {"type": "us_bank_transfer", "us_bank_transfer": {}},
            "metadata": _metadata({}, p.get("metadata")),
            "payment_intent": charge["payment_intent"],
            "reason": reason,
            "receipt_number": None,
            "source_transfer_reversal": None,
            "status": "succeeded" if is_card else "pending",
            "transfer_reversal": None,
        }
        self.objects["refund"][refund["id"]] = refund
        previous = {"amount_refunded": charge["amount_refunded"], "refunded": charge["refunded"]}
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] == charge["amount"]
        charge["refunds"]["data"].insert(0, copy.deepcopy(refund))
        self.emit("refund.created", refund)
        self.emit("charge.refunded", charge, previous)
        return refund

    def list_refunds(self, p: Obj) -> list[Obj]:
        items = list(self.objects["refund"].values())
        for key in ("charge", "payment_intent"):
            if p.get(key):
                items = [o for o in items if o[key] == p[key]]
        return items

    # ---------------------------------------------------------------------------------- test-mode controls
    def settle_refund(self, refund_id: str, *, succeed: bool, failure_reason: str) -> Obj:
        """A ``pending`` refund (a bank transfer back) succeeds or fails days later; a failed refund gives
        the money back to the charge (``amount_refunded`` lowered). Emits ``charge.refund.updated``."""
        refund = self.get("refund", refund_id)
        if refund["status"] != "pending":
            raise ValueError(f"{refund_id} is {refund['status']}, not pending")
        charge = self.get("charge", refund["charge"])
        refund["status"] = "succeeded" if succeed else "failed"
        if not succeed:
            refund["failure_reason"] = failure_reason
            refund["failure_balance_transaction"] = new_id("txn_")
            charge["amount_refunded"] -= refund["amount"]
            charge["refunded"] = False
        charge["refunds"]["data"] = [
            copy.deepcopy(refund) if r["id"] == refund_id else r for r in charge["refunds"]["data"]
        ]
        self.emit("refund.updated", refund, {"status": "pending"})
        self.emit("charge.refund.updated", refund, {"status": "pending"})
        return refund

    def settle(self, pi_id: str, *, succeed: bool, failure_code: str, failure_message: str) -> Obj:
        pi = self.get("payment_intent", pi_id)
        if pi["status"] != "processing":
            raise ValueError(f"{pi_id} is {pi['status']}, not processing")
        charge = self.get("charge", pi["latest_charge"])
        if succeed:
            charge.update(status="succeeded", paid=True, captured=True, amount_captured=charge["amount"])
            charge["balance_transaction"] = new_id("txn_")
            charge["outcome"] = _outcome("succeeded", None)
            pi["status"] = "succeeded"
            pi["amount_received"] = pi["amount"]
            self.emit("charge.succeeded", charge)
            self.emit("payment_intent.succeeded", pi)
        else:
            charge.update(status="failed", failure_code=failure_code, failure_message=failure_message)
            charge["outcome"] = _outcome("failed", None)
            pm = self.objects["payment_method"].get(charge["payment_method"])
            pi["status"] = "requires_payment_method"
            pi["last_payment_error"] = {
                "type": "invalid_request_error",
                "code": failure_code,
                "message": failure_message,
                "charge": charge["id"],
                "payment_method": copy.deepcopy(pm),
            }
            pi["payment_method"] = None
            self.emit("charge.failed", charge)
            self.emit("payment_intent.payment_failed", pi)
        return pi

    def create_dispute(self, ref: str, *, reason: str, amount: int | None) -> Obj:
        if ref.startswith("pi_"):
            pi = self.get("payment_intent", ref)
            ref = pi["latest_charge"] or ""
        charge = self.get("charge", ref)
        if charge["status"] != "succeeded":
            raise ValueError(f"{charge['id']} is {charge['status']}; only succeeded charges can be disputed")
        pm_type = charge["payment_method_details"]["type"]
        dispute: Obj = {
            "id": new_id("dp_"),
            "object": "dispute",
            "amount": charge["amount"] if amount is None else amount,
            "balance_transactions": [],
            "charge": charge["id"],
            "created": self.now(),
            "currency": charge["currency"],
            "evidence": {k: None for k in _EVIDENCE_FIELDS},
            "evidence_details": {
                "due_by": self.now() + 7 * 86400,
                "has_evidence": False,
                "past_due": False,
                "submission_count": 0,
            },
            "is_charge_refundable": False,
            "livemode": False,
            "metadata": {},
            "payment_intent": charge["payment_intent"],
            "payment_method_details": {
                "type": pm_type,
                **(
                    {
                        "card": {
                            "brand": charge["payment_method_details"]["card"]["brand"],
                            "network_reason_code": "10.4",
                        }
                    }
                    if pm_type == "card"
                    else {}
                ),
            },
            "reason": reason,
            "status": "needs_response",
        }
        self.objects["dispute"][dispute["id"]] = dispute
        charge["disputed"] = True
        self.emit("charge.dispute.created", dispute)
        return dispute

    def update_dispute(self, ident: str, p: Obj) -> Obj:
        """``POST /v1/disputes/{id}``: store evidence and (``submit``, true by default) submit it. As in
        Stripe's test mode, ``uncategorized_text`` of ``winning_evidence`` / ``losing_evidence`` closes the
        submitted dispute as won / lost (``charge.dispute.updated`` then ``charge.dispute.closed``)."""
        dispute = self.get("dispute", ident)
        if dispute["status"] in _DISPUTE_CLOSED:
            raise invalid_request(
                f"This dispute is already closed: {ident}", code="dispute_already_closed", param="evidence"
            )
        evidence = p.get("evidence")
        previous: Obj = {}
        if evidence is not None:
            if not isinstance(evidence, dict):
                raise invalid_request("Invalid object", code="parameter_invalid_string", param="evidence")
            for key, value in evidence.items():
                if key not in _EVIDENCE_FIELDS:
                    raise invalid_request(
                        f"Received unknown parameter: evidence[{key}]",
                        code="parameter_unknown",
                        param=f"evidence[{key}]",
                    )
                previous.setdefault("evidence", {})[key] = dispute["evidence"][key]
                dispute["evidence"][key] = value or None
            dispute["evidence_details"]["has_evidence"] = True
        if "metadata" in p:
            previous["metadata"] = copy.deepcopy(dispute["metadata"])
            dispute["metadata"] = _metadata(dispute["metadata"], p["metadata"])
        submit = "submit" not in p or _bool(p["submit"], "submit")
        if submit:
            previous["status"] = dispute["status"]
            dispute["status"] = "under_review"
            dispute["evidence_details"]["submission_count"] += 1
        self.emit("charge.dispute.updated", dispute, previous)
        outcome = {"winning_evidence": "won", "losing_evidence": "lost"}.get(
            dispute["evidence"].get("uncategorized_text") or ""
        )
        if submit and outcome is not None:
            dispute["status"] = outcome
            self.emit("charge.dispute.closed", dispute)
        return dispute

    def close_dispute(self, ident: str) -> Obj:
        """``POST /v1/disputes/{id}/close``: accept the dispute as lost (irreversible)."""
        dispute = self.get("dispute", ident)
        if dispute["status"] in _DISPUTE_CLOSED:
            raise invalid_request(f"This dispute is already closed: {ident}", code="dispute_already_closed")
        dispute["status"] = "lost"
        self.emit("charge.dispute.closed", dispute)
        return dispute


_DISPUTE_CLOSED = frozenset({"won", "lost", "warning_closed"})


_EVIDENCE_FIELDS = [
    "access_activity_log",
    "billing_address",
    "cancellation_policy",
    "cancellation_policy_disclosure",
    "cancellation_rebuttal",
    "customer_communication",
    "customer_email_address",
    "customer_name",
    "customer_purchase_ip",
    "customer_signature",
    "duplicate_charge_documentation",
    "duplicate_charge_explanation",
    "duplicate_charge_id",
    "product_description",
    "receipt",
    "refund_policy",
    "refund_policy_disclosure",
    "refund_refusal_explanation",
    "service_date",
    "service_documentation",
    "shipping_address",
    "shipping_carrier",
    "shipping_date",
    "shipping_documentation",
    "shipping_tracking_number",
    "uncategorized_file",
    "uncategorized_text",
]


def _outcome(status: str, decline: str | None) -> Obj:
    if status == "succeeded":
        return {
            "network_status": "approved_by_network",
            "reason": None,
            "risk_level": "normal",
            "risk_score": 32,
            "seller_message": "Payment complete.",
            "type": "authorized",
        }
    if status == "pending":
        return None  # type: ignore[return-value]  # Stripe leaves outcome null until a bank debit settles
    return {
        "network_status": "declined_by_network",
        "reason": decline,
        "risk_level": "normal",
        "risk_score": 41,
        "seller_message": "The bank did not return any further details with this decline.",
        "type": "issuer_declined",
    }


def _fmt(amount: int, currency: str) -> str:
    return f"${amount / 100:.2f}" if currency == "usd" else f"{amount} {currency}"


def _pm_options(types: list[str]) -> Obj:
    options: Obj = {}
    if "card" in types:
        options["card"] = {
            "installments": None,
            "mandate_options": None,
            "network": None,
            "request_three_d_secure": "automatic",
        }
    if "us_bank_account" in types:
        options["us_bank_account"] = {"verification_method": "automatic"}
    return options


def _types(value: Any) -> list[str]:
    if value in (None, ""):
        return ["card"]
    if not isinstance(value, list) or not value:
        raise invalid_request("Invalid array", code="parameter_invalid_array", param="payment_method_types")
    for t in value:
        if t not in PAYMENT_METHOD_TYPES:
            raise invalid_request(
                f"The payment method type provided: {t} is invalid. Please ensure the provided type is activated"
                " in your dashboard (https://dashboard.stripe.com/account/payments/settings) and your account is"
                " enabled for any preview features that you are trying to use.",
                code="payment_intent_invalid_parameter" if t else "parameter_invalid_empty",
                param="payment_method_types",
            )
    return [str(t) for t in value]


def _int(value: Any, param: str) -> int:
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value):
        return int(value)
    raise invalid_request("Invalid integer: " + str(value), code="parameter_invalid_integer", param=param)


def _bool(value: Any, param: str) -> bool:
    if value in (None, "", "false"):
        return False
    if value == "true":
        return True
    raise invalid_request(f"Invalid boolean: {value}", code="parameter_invalid_boolean", param=param)


def _metadata(current: Obj, update: Any) -> Obj:
    """Stripe's metadata rules: ``metadata=""`` clears all; a key set to "" is removed; 50 keys at most."""
    if update is None:
        return dict(current)
    if update == "":
        return {}
    if not isinstance(update, dict):
        raise invalid_request("Invalid hash", param="metadata")
    out = dict(current)
    for key, value in update.items():
        if len(key) > 40:
            raise invalid_request(
                f"Metadata keys can have up to 40 characters; {key!r} is longer.", param=f"metadata[{key}]"
            )
        if not isinstance(value, str):
            raise invalid_request("Invalid metadata value", param=f"metadata[{key}]")
        if len(value) > 500:
            raise invalid_request("Metadata values can have up to 500 characters.", param=f"metadata[{key}]")
        if value == "":
            out.pop(key, None)
        else:
            out[key] = value
    if len(out) > 50:
        raise invalid_request("Metadata can have up to 50 keys.", param="metadata")
    return out


def _filter_created(items: list[Obj], created: Any) -> list[Obj]:
    if created in (None, ""):
        return items
    if not isinstance(created, dict):
        ts = _int(created, "created")
        return [o for o in items if o["created"] == ts]
    ops = {
        "gt": lambda a, b: a > b,
        "gte": lambda a, b: a >= b,
        "lt": lambda a, b: a < b,
        "lte": lambda a, b: a <= b,
    }
    for op, value in created.items():
        if op not in ops:
            raise invalid_request(
                f"Received unknown parameter: created[{op}]", code="parameter_unknown", param=f"created[{op}]"
            )
        bound = _int(value, f"created[{op}]")
        items = [o for o in items if ops[op](o["created"], bound)]
    return items


_CLAUSE = re.compile(r"\s*(metadata\[['\"]([^'\"]+)['\"]\]|[a-z_]+)\s*:\s*['\"]([^'\"]*)['\"]\s*")


def _parse_query(query: str) -> list[Callable[[Obj], bool]]:
    clauses: list[Callable[[Obj], bool]] = []
    for part in re.split(r"\s+AND\s+", query.strip()):
        m = _CLAUSE.fullmatch(part)
        if m is None:
            raise invalid_request(
                f'We were unable to parse your search query. Try using the format `metadata["key"]:"value"` to'
                f' query for metadata or key:"value" to query for other fields. ({part})',
                param="query",
            )
        field_name, meta_key, value = m.group(1), m.group(2), m.group(3)
        if meta_key is not None:
            clauses.append(lambda o, k=meta_key, v=value: o.get("metadata", {}).get(k) == v)
        else:
            clauses.append(lambda o, f=field_name, v=value: str(o.get(f)) == v)
    return clauses
