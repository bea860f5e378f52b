"""``HubSpotConnector``: the ``CrmConnector`` and ``CrmWebhookSource`` ports over HubSpot's CRM v3 companies,
deals, properties and associations, through the official SDK."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from revflow.adapters.crm.hubspot.client import HubSpotApi
from revflow.adapters.crm.hubspot.consts import (
    COMPANY_PROPERTIES,
    DEAL_PROPERTIES,
    DEAL_TO_COMPANY_PRIMARY,
    FIELD_PROPERTIES,
    SEARCH_MAX_LIMIT,
    WEBHOOK_TOLERANCE_SECONDS,
)
from revflow.adapters.crm.hubspot.mapping import (
    company_from_hubspot,
    company_to_hubspot,
    deal_from_hubspot,
    deal_to_hubspot,
    property_definitions,
)
from revflow.adapters.crm.hubspot.webhooks import parse_webhook
from revflow.services.ports import (
    ConnectorError,
    CrmChange,
    CrmChangePage,
    CrmCompany,
    CrmConnector,
    CrmDeal,
    CrmWebhookSource,
    RateLimitStatus,
)

__all__ = ["HubSpotConnector"]

_REVFLOW_PROPERTIES = tuple(FIELD_PROPERTIES.values())
_COMPANY_READ = [*COMPANY_PROPERTIES, *_REVFLOW_PROPERTIES]
_DEAL_READ = [*DEAL_PROPERTIES, *_REVFLOW_PROPERTIES]
_EXISTING_ID = re.compile(r"Existing ID: (\d+)")
_ID_PROPERTY = FIELD_PROPERTIES["revflow_id"]


class HubSpotConnector:
    """HubSpot behind Revflow's CRM ports.

    ``access_token``: a private app's token (or an OAuth access token). ``client_secret``: the app's client
    secret, which signs webhooks (needed only for ``parse_webhook``). ``api_base`` points the SDK elsewhere
    (the tests' fake); ``timeout`` bounds every request in seconds."""

    system = "hubspot"

    def __init__(
        self,
        access_token: str,
        client_secret: str | None = None,
        api_base: str | None = None,
        timeout: float = 10.0,
        *,
        webhook_tolerance: int = WEBHOOK_TOLERANCE_SECONDS,
        clock: Callable[[], float] = time.time,
    ):
        self._api = HubSpotApi(access_token, api_base=api_base, timeout=timeout)
        self._client_secret = client_secret
        self._webhook_tolerance = webhook_tolerance
        self._clock = clock

    def __repr__(self) -> str:
        return "HubSpotConnector(...)"

    # ---------------------------------------------------------------------------------------------- setup
    def ensure_properties(self) -> list[str]:
        """Create the ``revflow_*`` custom properties on companies and deals that the portal lacks (needs the
        ``crm.schemas.companies.write`` and ``crm.schemas.deals.write`` scopes). Safe to run again: returns
        the ``"objectType.property"`` names it created, empty once set up."""
        created = []
        for object_type in ("companies", "deals"):
            existing = self._api.property_names(object_type)
            for definition in property_definitions(object_type):
                if definition["name"] in existing:
                    continue
                try:
                    self._api.create_property(object_type, definition)
                except ConnectorError as exc:
                    if exc.status != 409:  # 409: created meanwhile by another process
                        raise
                created.append(f"{object_type}.{definition['name']}")
        return created

    # ------------------------------------------------------------------------------------------- outbound
    def upsert_company(self, company: CrmCompany) -> str:
        """Update the company ``external_id``, or find it by ``revflow_id`` (a unique property, read by
        ``idProperty``, which unlike search is consistent at once) and update it, or create it. A create that
        collides with one made meanwhile (409) updates that one. Returns HubSpot's id."""
        props = _properties(company_to_hubspot, company)
        if company.external_id:
            return str(self._api.update_company(company.external_id, props).id)
        revflow_id = _revflow_id(company.properties)
        existing = self._find(self._api.get_company, revflow_id)
        if existing is not None:
            return str(self._api.update_company(existing, props).id)
        try:
            return str(self._api.create_company(props).id)
        except ConnectorError as exc:
            existing = _conflicting_id(exc)
            if existing is None:
                raise
        return str(self._api.update_company(existing, props).id)

    def upsert_deal(self, deal: CrmDeal) -> str:
        """As ``upsert_company``, for a deal; a new deal is created associated with ``company_external_id``,
        an existing one gains that association (HubSpot's default deal → company association) when it lacks
        it."""
        props = _properties(deal_to_hubspot, deal)
        ident = deal.external_id or self._find(self._api.get_deal, _revflow_id(deal.properties))
        if ident is None:
            try:
                return str(self._api.create_deal(props, deal.company_external_id).id)
            except ConnectorError as exc:
                ident = _conflicting_id(exc)
                if ident is None:
                    raise
        updated = str(self._api.update_deal(ident, props).id)
        if (
            deal.company_external_id
            and self.get_deal(updated).company_external_id != deal.company_external_id
        ):
            self._api.associate_deal_with_company(updated, deal.company_external_id)
        return updated

    def _find(self, getter: Callable[..., Any], revflow_id: str) -> str | None:
        try:
            found = getter(revflow_id, ["hs_object_id"], id_property=_ID_PROPERTY)
        except ConnectorError as exc:
            if exc.status == 404:
                return None
            raise
        return str(found.id)

    # -------------------------------------------------------------------------------------------- reading
    def get_company(self, external_id: str) -> CrmCompany:
        obj = self._api.get_company(external_id, list(_COMPANY_READ))
        return company_from_hubspot(str(obj.id), obj.properties or {}, obj.updated_at)

    def get_deal(self, external_id: str) -> CrmDeal:
        obj = self._api.get_deal(external_id, list(_DEAL_READ))
        return _deal(obj)

    def changes_since(self, cursor: str | None, *, limit: int = 100) -> CrmChangePage:
        """Companies and deals whose ``hs_lastmodifieddate`` is at or after the cursor's, oldest first,
        through the search endpoints (at most ``limit`` of each).

        Ties: HubSpot timestamps have millisecond precision and several objects can share one. The cursor
        keeps, per object type, the last timestamp returned *and the ids already returned at that timestamp*;
        the next call searches ``GTE`` that timestamp and skips exactly those ids, so an object modified in
        the same millisecond as the last one returned is neither lost (as with ``GT``) nor repeated. An
        object modified again later has a newer timestamp and comes back, as it should. The cursor is opaque
        JSON."""
        state = _decode_cursor(cursor)
        companies, deals = [], []
        more = False
        advanced = False
        for object_type, search in (
            ("companies", self._api.search_companies),
            ("deals", self._api.search_deals),
        ):
            ts, seen = state.get(object_type, (None, []))
            request: dict[str, Any] = {
                "filter_groups": [
                    {
                        "filters": [
                            {"propertyName": "hs_lastmodifieddate", "operator": "GTE", "value": str(ts)}
                        ]
                    }
                ]
                if ts is not None
                else [],
                "sorts": [{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}],
                "properties": list(_COMPANY_READ if object_type == "companies" else _DEAL_READ),
                "limit": min(SEARCH_MAX_LIMIT, limit + len(seen)),
            }
            page = search(request)
            fresh = []
            for obj in page.results:
                modified = _ms(obj)
                if modified == ts and str(obj.id) in seen:
                    continue
                fresh.append((modified, obj))
            taken = fresh[:limit]
            more = (
                more or len(fresh) > limit or bool(page.paging and page.paging.next and len(taken) == limit)
            )
            if not taken:
                continue
            advanced = True
            last = taken[-1][0]
            at_last = [str(o.id) for m, o in taken if m == last]
            state[object_type] = (last, sorted({*seen, *at_last}) if last == ts else at_last)
            for _, obj in taken:
                if object_type == "companies":
                    companies.append(company_from_hubspot(str(obj.id), obj.properties or {}, obj.updated_at))
                else:
                    deals.append(_deal(obj))
        if not advanced:
            return CrmChangePage(companies=[], deals=[], cursor=None, has_more=False)
        if deals:  # search answers carry no associations: one batch read names every deal's company
            linked = self._api.companies_of_deals([str(d.external_id) for d in deals])
            deals = [
                replace(d, company_external_id=_company_of(linked.get(str(d.external_id)))) for d in deals
            ]
        return CrmChangePage(companies=companies, deals=deals, cursor=_encode_cursor(state), has_more=more)

    def rate_limit(self) -> RateLimitStatus:
        """From the ``X-HubSpot-RateLimit-*`` headers of the latest answer that carried them (search answers
        do not)."""
        return self._api.last_rate_limit

    # ------------------------------------------------------------------------------------------- webhooks
    def parse_webhook(
        self, payload: bytes, headers: Mapping[str, str], *, method: str, url: str
    ) -> list[CrmChange]:
        return parse_webhook(
            payload,
            headers,
            method=method,
            url=url,
            secret=self._client_secret,
            tolerance=self._webhook_tolerance,
            now=self._clock,
        )


def _properties(convert: Callable[[Any], dict[str, str]], obj: Any) -> dict[str, str]:
    try:
        return convert(obj)
    except ValueError as exc:
        raise ConnectorError(str(exc), code="invalid_field", retryable=False) from exc


def _revflow_id(properties: Mapping[str, str]) -> str:
    value = properties.get("revflow_id")
    if not value:
        raise ConnectorError(
            "creating a HubSpot object needs properties['revflow_id'], which makes the create idempotent",
            code="missing_revflow_id",
            retryable=False,
        )
    return value


def _conflicting_id(exc: ConnectorError) -> str | None:
    """The existing object's id in a 409 OBJECT_ALREADY_EXISTS answer (a unique ``revflow_id`` already
    taken)."""
    if exc.status != 409:
        return None
    found = _EXISTING_ID.search(str(exc))
    return found.group(1) if found else None


def _ms(obj: Any) -> int | None:
    from revflow.adapters.crm.hubspot.mapping import parse_timestamp

    stamp = parse_timestamp((obj.properties or {}).get("hs_lastmodifieddate") or obj.updated_at)
    return None if stamp is None else int(stamp.timestamp() * 1000)


def _company_of(links: list[tuple[str, list[int]]] | None) -> str | None:
    """The deal's primary company (association type 5) if it has one, else its first associated company."""
    if not links:
        return None
    primary = [company for company, types in links if DEAL_TO_COMPANY_PRIMARY in types]
    return (primary or [links[0][0]])[0]


def _deal(obj: Any) -> CrmDeal:
    company_id = None
    associations = getattr(obj, "associations", None) or {}
    linked = associations.get("companies")
    if linked is not None and linked.results:
        primary = [a for a in linked.results if a.type == "deal_to_company"]
        company_id = str((primary or linked.results)[0].id)
    return deal_from_hubspot(
        str(obj.id), obj.properties or {}, company_id=company_id, updated_at=obj.updated_at
    )


def _decode_cursor(cursor: str | None) -> dict[str, tuple[int | None, list[str]]]:
    if not cursor:
        return {}
    try:
        raw = json.loads(cursor)
        return {k: (int(v[0]) if v[0] is not None else None, [str(i) for i in v[1]]) for k, v in raw.items()}
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
        raise ConnectorError(
            f"not a HubSpot sync cursor: {cursor!r}", code="invalid_cursor", retryable=False
        ) from exc


def _encode_cursor(state: dict[str, tuple[int | None, list[str]]]) -> str:
    return json.dumps({k: [v[0], v[1]] for k, v in sorted(state.items())}, separators=(",", ":"))


if TYPE_CHECKING:  # mypy --strict proves the adapter satisfies both ports
    _crm: CrmConnector = HubSpotConnector("pat-typecheck")
    _hooks: CrmWebhookSource = HubSpotConnector("pat-typecheck")
