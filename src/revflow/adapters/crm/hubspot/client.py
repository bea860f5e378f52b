"""Thin calls to HubSpot's CRM API through the official ``hubspot-api-client`` SDK.

One SDK client per connector (pointed at ``api_base`` when given), the configured timeout on every request, no
SDK retries (the sync job retries, honouring ``Retry-After``), the rate-limit headers of each answer kept, and
SDK errors translated at this boundary into the port's ``ConnectorError`` / ``RateLimited``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

import hubspot
import urllib3
from hubspot.crm.associations import v4 as assoc_v4
from hubspot.crm.companies import ApiException as CompaniesApiException
from hubspot.crm.companies import PublicObjectSearchRequest as CompanySearch
from hubspot.crm.companies import SimplePublicObjectInput as CompanyInput
from hubspot.crm.companies import SimplePublicObjectInputForCreate as CompanyCreate
from hubspot.crm.deals import ApiException as DealsApiException
from hubspot.crm.deals import AssociationSpec, PublicAssociationsForObject, PublicObjectId
from hubspot.crm.deals import PublicObjectSearchRequest as DealSearch
from hubspot.crm.deals import SimplePublicObjectInput as DealInput
from hubspot.crm.deals import SimplePublicObjectInputForCreate as DealCreate
from hubspot.crm.properties import ApiException as PropertiesApiException
from hubspot.crm.properties import PropertyCreate

from revflow.adapters.crm.hubspot.consts import DEAL_TO_COMPANY_DEFAULT, RATE_LIMIT_HEADERS
from revflow.services.ports import ConnectorError, RateLimited, RateLimitStatus

__all__ = ["HubSpotApi", "rate_limit_from_headers", "translate_errors"]

T = TypeVar("T")

_API_EXCEPTIONS = (
    CompaniesApiException,
    DealsApiException,
    PropertiesApiException,
    assoc_v4.ApiException,
)


def _header(headers: Mapping[str, str] | None, name: str) -> str | None:
    if not headers:
        return None
    lowered = name.lower()
    return next((str(v) for k, v in headers.items() if k.lower() == lowered), None)


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def rate_limit_from_headers(headers: Mapping[str, str] | None) -> RateLimitStatus | None:
    """The ``X-HubSpot-RateLimit-*`` headers as the port's status (None when the answer carried none, as
    search answers do not)."""
    limit = _int(_header(headers, RATE_LIMIT_HEADERS["max"]))
    remaining = _int(_header(headers, RATE_LIMIT_HEADERS["remaining"]))
    interval = _int(_header(headers, RATE_LIMIT_HEADERS["interval_ms"]))
    if limit is None and remaining is None:
        return None
    return RateLimitStatus(
        limit=limit, remaining=remaining, window_seconds=interval / 1000 if interval is not None else None
    )


def _error_body(raw: Any) -> dict[str, Any]:
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    try:
        body = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


@contextmanager
def translate_errors(action: str, on_headers: Callable[[Mapping[str, str] | None], None]) -> Iterator[None]:
    """SDK and transport errors → the port's: 429 → RateLimited(retry_after); 5xx, timeouts, broken
    connections and unreadable answers → retryable ConnectorError; any other refusal (400 validation, 401,
    403, 404, 409) → ConnectorError(retryable=False) with HubSpot's category as ``code``."""
    try:
        yield
    except _API_EXCEPTIONS as exc:
        status = int(exc.status or 0)
        headers = exc.headers if isinstance(exc.headers, Mapping) else None
        on_headers(headers)
        body = _error_body(exc.body)
        message = f"HubSpot {action}: {status} {body.get('message') or exc.reason or ''}".rstrip()
        category = str(body.get("category") or "").lower() or None
        if status == 429:
            retry_after = _int(_header(headers, "Retry-After"))
            if retry_after is None:
                interval = _int(_header(headers, RATE_LIMIT_HEADERS["interval_ms"]))
                retry_after = max(1, interval // 1000) if interval else 10
            raise RateLimited(message, retry_after=float(retry_after)) from exc
        if status == 0 or status >= 500:
            raise ConnectorError(
                message, code=category or "unavailable", status=status or None, retryable=True
            ) from exc
        raise ConnectorError(
            message, code=category or f"http_{status}", status=status, retryable=False
        ) from exc
    except urllib3.exceptions.HTTPError as exc:  # timeouts, refused or dropped connections
        timeout = isinstance(exc, urllib3.exceptions.TimeoutError) or isinstance(
            getattr(exc, "reason", None), urllib3.exceptions.TimeoutError
        )
        raise ConnectorError(
            f"HubSpot {action}: {'timed out' if timeout else 'unreachable'} ({exc})",
            code="timeout" if timeout else "unavailable",
            retryable=True,
        ) from exc
    except (ValueError, TypeError, AttributeError) as exc:  # a 2xx whose body the SDK cannot read
        raise ConnectorError(
            f"HubSpot {action}: unreadable answer ({exc})", code="malformed_response", retryable=True
        ) from exc


class HubSpotApi:
    """The few HubSpot endpoints Revflow uses; each returns the SDK's typed object. ``last_rate_limit`` holds
    the rate-limit headers of the latest answer that carried them."""

    def __init__(self, access_token: str, *, api_base: str | None, timeout: float):
        config: dict[str, Any] = {"access_token": access_token, "retry": False}
        if api_base:
            config["host"] = api_base.rstrip("/")
        client = hubspot.HubSpot(**config)
        self.timeout = timeout
        self.companies = client.crm.companies.basic_api
        self.companies_search = client.crm.companies.search_api
        self.deals = client.crm.deals.basic_api
        self.deals_search = client.crm.deals.search_api
        self.properties = client.crm.properties.core_api
        self.associations = client.crm.associations.v4.basic_api
        self.associations_batch = client.crm.associations.v4.batch_api
        self.last_rate_limit = RateLimitStatus()

    def __repr__(self) -> str:  # never print the token
        return "HubSpotApi(...)"

    def _keep(self, headers: Mapping[str, str] | None) -> None:
        status = rate_limit_from_headers(headers)
        if status is not None:
            self.last_rate_limit = status

    def call(self, action: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``fn`` is an SDK ``*_with_http_info`` method: its data is returned, its headers kept."""
        with translate_errors(action, self._keep):
            data, status, headers = fn(*args, _request_timeout=self.timeout, **kwargs)
        self._keep(headers)
        # The SDK turns an unreadable body (or a status it does not expect) into None or into a model whose
        # fields are all None, without complaint: refuse both here.
        if data is None or getattr(data, "id", "") is None or getattr(data, "results", []) is None:
            raise ConnectorError(
                f"HubSpot {action}: unreadable {status} answer", code="malformed_response", retryable=True
            )
        return data

    # companies ----------------------------------------------------------------------------------------
    def get_company(self, ident: str, properties: list[str], *, id_property: str | None = None) -> Any:
        kw: dict[str, Any] = {"properties": properties, "archived": False}
        if id_property:
            kw["id_property"] = id_property
        return self.call("get company", self.companies.get_by_id_with_http_info, ident, **kw)

    def create_company(self, properties: dict[str, str]) -> Any:
        body = CompanyCreate(properties=properties, associations=[])
        return self.call("create company", self.companies.create_with_http_info, body)

    def update_company(self, ident: str, properties: dict[str, str]) -> Any:
        body = CompanyInput(properties=properties)
        return self.call("update company", self.companies.update_with_http_info, ident, body)

    def search_companies(self, request: dict[str, Any]) -> Any:
        return self.call(
            "search companies", self.companies_search.do_search_with_http_info, CompanySearch(**request)
        )

    # deals --------------------------------------------------------------------------------------------
    def get_deal(self, ident: str, properties: list[str], *, id_property: str | None = None) -> Any:
        kw: dict[str, Any] = {"properties": properties, "associations": ["companies"], "archived": False}
        if id_property:
            kw["id_property"] = id_property
        return self.call("get deal", self.deals.get_by_id_with_http_info, ident, **kw)

    def create_deal(self, properties: dict[str, str], company_id: str | None) -> Any:
        associations = []
        if company_id:
            spec = AssociationSpec(
                association_category="HUBSPOT_DEFINED", association_type_id=DEAL_TO_COMPANY_DEFAULT
            )
            associations.append(PublicAssociationsForObject(to=PublicObjectId(id=company_id), types=[spec]))
        body = DealCreate(properties=properties, associations=associations)
        return self.call("create deal", self.deals.create_with_http_info, body)

    def update_deal(self, ident: str, properties: dict[str, str]) -> Any:
        return self.call(
            "update deal", self.deals.update_with_http_info, ident, DealInput(properties=properties)
        )

    def search_deals(self, request: dict[str, Any]) -> Any:
        return self.call("search deals", self.deals_search.do_search_with_http_info, DealSearch(**request))

    def associate_deal_with_company(self, deal_id: str, company_id: str) -> Any:
        """The default (unlabeled) deal → company association; idempotent."""
        return self.call(
            "associate deal",
            self.associations.create_default_with_http_info,
            "deals",
            deal_id,
            "companies",
            company_id,
        )

    def companies_of_deals(self, deal_ids: list[str]) -> dict[str, list[tuple[str, list[int]]]]:
        """One v4 batch read: each deal's associated companies with their association type ids (deals without
        any are absent). At most 1,000 deals a call."""
        body = assoc_v4.BatchInputPublicFetchAssociationsBatchRequest(
            inputs=[assoc_v4.PublicFetchAssociationsBatchRequest(id=i) for i in deal_ids]
        )
        page = self.call(
            "read deal associations",
            self.associations_batch.get_page_with_http_info,
            "deals",
            "companies",
            body,
        )
        return {
            str(r._from.id): [
                (str(t.to_object_id), [int(a.type_id) for a in t.association_types]) for t in r.to
            ]
            for r in page.results
        }

    # properties ---------------------------------------------------------------------------------------
    def property_names(self, object_type: str) -> set[str]:
        page = self.call(
            f"list {object_type} properties", self.properties.get_all_with_http_info, object_type
        )
        return {str(p.name) for p in page.results}

    def create_property(self, object_type: str, definition: dict[str, Any]) -> Any:
        body = PropertyCreate(
            name=definition["name"],
            label=definition["label"],
            type=definition["type"],
            field_type=definition["fieldType"],
            group_name=definition["groupName"],
            description=definition.get("description"),
            has_unique_value=definition.get("hasUniqueValue", False),
            form_field=definition.get("formField", False),
        )
        return self.call(
            f"create {object_type} property", self.properties.create_with_http_info, object_type, body
        )
