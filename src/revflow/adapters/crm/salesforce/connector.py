"""``SalesforceConnector``: the ``CrmConnector`` port over Salesforce Accounts and Opportunities.

Outbound writes are upserts keyed on the ``Revflow_Id__c`` External ID field, so a retry after a lost answer
updates the record the first attempt created. Inbound changes are polled with SOQL on
``(LastModifiedDate, Id)``: a keyset cursor that never skips a record modified in the same second as the last
one read, across pages and calls.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from revflow.adapters.crm.salesforce.client import SalesforceApi
from revflow.adapters.crm.salesforce.consts import (
    ACCOUNT,
    ACCOUNT_FIELDS,
    API_VERSION,
    DEFAULT_SETTLE_SECONDS,
    EXTERNAL_ID_FIELD,
    OPPORTUNITY,
    OPPORTUNITY_FIELDS,
)
from revflow.adapters.crm.salesforce.mapping import (
    UnmappableValue,
    account_fields,
    company_from_record,
    creation_defaults,
    deal_from_record,
    format_soql_datetime,
    opportunity_fields,
    parse_datetime,
)
from revflow.services.ports import (
    ConnectorError,
    CrmChangePage,
    CrmCompany,
    CrmConnector,
    CrmDeal,
    RateLimitStatus,
)

__all__ = ["SalesforceConnector"]

_ID_CHARS = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")


class SalesforceConnector:
    """Salesforce behind Revflow's ``CrmConnector`` port.

    Authenticate with ``instance_url`` + ``session_id`` (an OAuth access token), or with ``username`` +
    ``password`` + ``security_token`` (SOAP login at ``https://{domain}.salesforce.com``, or at ``login_url``
    when given, e.g. a My Domain URL); only the latter can log in again when the session expires.
    ``ca_file``: a PEM bundle to trust instead of the system store (TLS is always verified). ``timeout``
    bounds every request in seconds. ``multi_currency``: the org has multiple currencies enabled (else
    ``CurrencyIsoCode`` is neither written nor read). ``settle_seconds``: polling returns only records
    last modified at least this long before the start of the second in which Salesforce answered (see
    ``changes_since``). ``today`` gives the CloseDate of opportunities created
    without one (default: today in UTC)."""

    system = "salesforce"

    def __init__(
        self,
        *,
        instance_url: str | None = None,
        session_id: str | None = None,
        username: str | None = None,
        password: str | None = None,
        security_token: str | None = None,
        domain: str = "login",
        login_url: str | None = None,
        api_version: str = API_VERSION,
        ca_file: str | Path | None = None,
        timeout: float = 30.0,
        multi_currency: bool = True,
        settle_seconds: float = DEFAULT_SETTLE_SECONDS,
        today: Callable[[], date] | None = None,
    ):
        self._api = SalesforceApi(
            instance_url=instance_url,
            session_id=session_id,
            username=username,
            password=password,
            security_token=security_token,
            domain=domain,
            login_url=login_url,
            api_version=api_version,
            verify=str(ca_file) if ca_file is not None else True,
            timeout=timeout,
        )
        self._multi_currency = multi_currency
        self._settle = timedelta(seconds=settle_seconds)
        self._today = today or (lambda: datetime.now(UTC).date())

    def __repr__(self) -> str:
        return "SalesforceConnector(...)"

    # ------------------------------------------------------------------------------------------ writes
    def upsert_company(self, company: CrmCompany) -> str:
        """Update the Account ``external_id`` names, or else upsert on ``Revflow_Id__c`` =
        ``properties["revflow_id"]`` (created once, whatever the retries). Returns the Account id."""
        fields = self._mapped(lambda: account_fields(company, multi_currency=self._multi_currency))
        if company.external_id:
            self._api.update(ACCOUNT, _checked_id(company.external_id), fields)
            return company.external_id
        revflow_id = self._revflow_id(fields, "company")
        return self._upsert(ACCOUNT, revflow_id, fields, defaults={})

    def upsert_deal(self, deal: CrmDeal) -> str:
        """Update the Opportunity ``external_id`` names, or else upsert on ``Revflow_Id__c`` (the
        subscription id). A new Opportunity gets the default stage and today's CloseDate when Revflow
        gives none (Salesforce requires both). Returns the Opportunity id."""
        fields = self._mapped(lambda: opportunity_fields(deal, multi_currency=self._multi_currency))
        if deal.company_external_id is not None:
            _checked_id(deal.company_external_id)
        if deal.external_id:
            self._api.update(OPPORTUNITY, _checked_id(deal.external_id), fields)
            return deal.external_id
        revflow_id = self._revflow_id(fields, "deal")
        return self._upsert(OPPORTUNITY, revflow_id, fields, defaults=creation_defaults(self._today()))

    def _upsert(
        self, sobject: str, revflow_id: str, fields: dict[str, Any], *, defaults: dict[str, Any]
    ) -> str:
        try:
            record_id = self._api.upsert(sobject, EXTERNAL_ID_FIELD, revflow_id, fields)
        except ConnectorError as exc:
            missing = exc.code == "REQUIRED_FIELD_MISSING" and defaults
            if not missing:
                raise
            # Salesforce is creating the record and needs values Revflow does not own: send them once.
            record_id = self._api.upsert(sobject, EXTERNAL_ID_FIELD, revflow_id, {**defaults, **fields})
        if record_id is None:  # API versions before 46.0 answer an update with 204 and no body
            record_id = str(self._api.get_by_external_id(sobject, EXTERNAL_ID_FIELD, revflow_id)["Id"])
        return record_id

    def _revflow_id(self, fields: dict[str, Any], what: str) -> str:
        revflow_id = fields.pop(EXTERNAL_ID_FIELD, None)
        if not revflow_id:
            raise ConnectorError(
                f"a new Salesforce {what} needs properties['revflow_id'] (the upsert key)",
                code="missing_revflow_id",
                retryable=False,
            )
        return str(revflow_id)

    @staticmethod
    def _mapped(build: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        try:
            return build()
        except UnmappableValue as exc:
            raise ConnectorError(str(exc), code="unmappable_value", retryable=False) from exc

    # ------------------------------------------------------------------------------------------- reads
    def get_company(self, external_id: str) -> CrmCompany:
        record = self._api.get(ACCOUNT, _checked_id(external_id), self._fields(ACCOUNT_FIELDS))
        return company_from_record(record)

    def get_deal(self, external_id: str) -> CrmDeal:
        record = self._api.get(OPPORTUNITY, _checked_id(external_id), self._fields(OPPORTUNITY_FIELDS))
        return deal_from_record(record)

    def changes_since(self, cursor: str | None, *, limit: int = 100) -> CrmChangePage:
        """Accounts and Opportunities whose ``LastModifiedDate`` is after ``cursor``, oldest first, at most
        ``limit`` in all. The cursor holds, per object, the ``(LastModifiedDate, Id)`` of the last record
        returned; the next query asks for ``LastModifiedDate > t OR (LastModifiedDate = t AND Id > id)``
        ordered by both, so records sharing a second are neither skipped nor repeated across pages.

        A record can still be stamped with a second the cursor has already reached (modified later in
        that same second, or committed late by a long transaction), so only *settled* records are
        returned: those modified before ``floor(answer's Date) - settle_seconds``. Later ones wait for a
        later poll, and the cursor never moves past them."""
        if limit < 1:
            raise ValueError("limit must be at least 1")
        positions = _decode_cursor(cursor)
        fetched: list[tuple[datetime, str, str, dict[str, Any]]] = []
        more: dict[str, bool] = {}
        horizon: datetime | None = None  # an object with more rows: others must not run ahead of it
        for sobject, fields in ((ACCOUNT, ACCOUNT_FIELDS), (OPPORTUNITY, OPPORTUNITY_FIELDS)):
            soql = _poll_query(sobject, self._fields(fields), positions.get(sobject), limit + 1)
            rows, answered_at = self._api.query(soql)
            settled_before = answered_at.replace(microsecond=0) - self._settle
            more[sobject] = len(rows) > limit
            for row in rows[:limit]:
                modified = parse_datetime(str(row["LastModifiedDate"]))
                if modified >= settled_before:
                    more[sobject] = False  # the rest is newer still: a later poll takes it
                    break
                fetched.append((modified, sobject, str(row["Id"]), row))
            if more[sobject]:
                last = parse_datetime(str(rows[limit - 1]["LastModifiedDate"]))
                horizon = last if horizon is None else min(horizon, last)
        if horizon is not None:
            fetched = [item for item in fetched if item[0] <= horizon]
        fetched.sort(key=lambda item: (item[0], item[1]))  # stable: Salesforce's Id order within a second
        taken, left = fetched[:limit], fetched[limit:]
        if not taken:
            return CrmChangePage(companies=[], deals=[], cursor=None, has_more=False)
        new_positions = dict(positions)
        for modified, sobject, record_id, _ in taken:
            new_positions[sobject] = (modified, record_id)
        return CrmChangePage(
            companies=[company_from_record(r) for _, s, _, r in taken if s == ACCOUNT],
            deals=[deal_from_record(r) for _, s, _, r in taken if s == OPPORTUNITY],
            cursor=_encode_cursor(new_positions),
            has_more=bool(left) or any(more.values()),
        )

    def rate_limit(self) -> RateLimitStatus:
        """DailyApiRequests as the last answer's ``Sforce-Limit-Info`` reported it (empty before any call)."""
        return self._api.usage

    def _fields(self, fields: tuple[str, ...]) -> tuple[str, ...]:
        return fields if self._multi_currency else tuple(f for f in fields if f != "CurrencyIsoCode")


def _checked_id(record_id: str) -> str:
    """A Salesforce id is 15 or 18 letters and digits; anything else would change the request's path."""
    if len(record_id) not in (15, 18) or not set(record_id) <= _ID_CHARS:
        raise ConnectorError(f"not a Salesforce id: {record_id!r}", code="MALFORMED_ID", retryable=False)
    return record_id


def _poll_query(
    sobject: str, fields: tuple[str, ...], position: tuple[datetime, str] | None, limit: int
) -> str:
    where = ""
    if position is not None:
        t, last_id = format_soql_datetime(position[0]), _checked_id(position[1])
        where = f" WHERE (LastModifiedDate > {t} OR (LastModifiedDate = {t} AND Id > '{last_id}'))"
    return f"SELECT {', '.join(fields)} FROM {sobject}{where} ORDER BY LastModifiedDate, Id LIMIT {limit}"


def _encode_cursor(positions: dict[str, tuple[datetime, str]]) -> str:
    return json.dumps(
        {
            sobject: [format_soql_datetime(t), record_id]
            for sobject, (t, record_id) in sorted(positions.items())
        },
        separators=(",", ":"),
    )


def _decode_cursor(cursor: str | None) -> dict[str, tuple[datetime, str]]:
    if not cursor:
        return {}
    try:
        raw = json.loads(cursor)
        return {
            str(sobject): (parse_datetime(str(value[0])), _checked_id(str(value[1])))
            for sobject, value in raw.items()
            if sobject in (ACCOUNT, OPPORTUNITY)
        }
    except (ValueError, TypeError, AttributeError, IndexError, ConnectorError) as exc:
        raise ConnectorError(
            f"not a Salesforce sync cursor: {cursor!r}", code="invalid_cursor", retryable=False
        ) from exc


if TYPE_CHECKING:  # mypy --strict proves the adapter satisfies the port
    _port_check: CrmConnector = SalesforceConnector(
        instance_url="https://x.my.salesforce.com", session_id="x"
    )
