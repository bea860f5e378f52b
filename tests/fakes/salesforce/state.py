# ruff: noqa: E501  (Salesforce's own messages are quoted verbatim)
"""The fake org's data: Account and Opportunity with their standard fields and Revflow's custom billing fields,
Salesforce-shaped ids, field validation and the audit fields (``LastModifiedDate``, ``SystemModstamp``)."""

from __future__ import annotations

import copy
import itertools
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from .errors import SalesforceApiError, dml_error, invalid_field, not_found

__all__ = ["FIELDS", "STAGES", "Field", "OrgState", "format_datetime", "salesforce_id"]

Obj = dict[str, Any]

_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"  # ASCII order: ids sort by creation
_SUFFIX = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
ID_RE = re.compile(r"^[a-zA-Z0-9]{15}(?:[a-zA-Z0-9]{3})?$")
KEY_PREFIX = {"Account": "001", "Opportunity": "006"}


def salesforce_id(prefix: str, n: int) -> str:
    """An 18-character id: 3-character key prefix, 12 base-62 characters, and Salesforce's case-safe
    checksum suffix (one character per block of 5, encoding which characters are upper case)."""
    digits = ""
    for _ in range(6):
        n, r = divmod(n, 62)
        digits = _B62[r] + digits
    short = prefix + "8d0000" + digits
    suffix = ""
    for block in range(3):
        bits = sum(1 << i for i, ch in enumerate(short[block * 5 : block * 5 + 5]) if "A" <= ch <= "Z")
        suffix += _SUFFIX[bits]
    return short + suffix


def format_datetime(value: datetime) -> str:
    """Salesforce's JSON datetime: ``2026-01-01T12:00:00.000+0000``."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}+0000"


@dataclass(frozen=True)
class Field:
    name: str
    type: str  # id string textarea url phone picklist currency double percent int date datetime boolean reference
    createable: bool = True
    updateable: bool = True
    length: int | None = None
    required: bool = False  # on create
    external_id: bool = False
    unique: bool = False
    reference_to: str | None = None


def _audit() -> list[Field]:
    ro = {"createable": False, "updateable": False}
    return [
        Field("Id", "id", **ro),
        Field("IsDeleted", "boolean", **ro),
        Field("OwnerId", "reference", reference_to="User"),
        Field("CreatedDate", "datetime", **ro),
        Field("CreatedById", "reference", reference_to="User", **ro),
        Field("LastModifiedDate", "datetime", **ro),
        Field("LastModifiedById", "reference", reference_to="User", **ro),
        Field("SystemModstamp", "datetime", **ro),
        Field("CurrencyIsoCode", "picklist", length=3),
    ]


def _billing() -> list[Field]:
    """Revflow's custom fields, as docs/integrations/salesforce.md tells admins to create them."""
    return [
        Field("Revflow_Id__c", "string", length=64, external_id=True, unique=True),
        Field("Revflow_Plan__c", "string", length=100),
        Field("Revflow_MRR__c", "currency"),
        Field("Revflow_Status__c", "string", length=40),
        Field("Revflow_Next_Renewal__c", "date"),
        Field("Revflow_Payment_Status__c", "string", length=40),
        Field("Revflow_Overdue_Balance__c", "currency"),
        Field("Revflow_Last_Invoice_Number__c", "string", length=40),
        Field("Revflow_Last_Invoice_Total__c", "currency"),
        Field("Revflow_Last_Invoice_Status__c", "string", length=40),
    ]


FIELDS: dict[str, dict[str, Field]] = {
    "Account": {
        f.name: f
        for f in [
            *_audit(),
            Field("Name", "string", length=255, required=True),
            Field("Type", "picklist", length=255),
            Field("Website", "url", length=255),
            Field("Phone", "phone", length=40),
            Field("Industry", "picklist", length=255),
            Field("Description", "textarea", length=32000),
            Field("BillingCity", "string", length=40),
            Field("BillingCountry", "string", length=80),
            Field("AnnualRevenue", "currency"),
            Field("NumberOfEmployees", "int"),
            *_billing(),
        ]
    },
    "Opportunity": {
        f.name: f
        for f in [
            *_audit(),
            Field("Name", "string", length=120, required=True),
            Field("AccountId", "reference", reference_to="Account"),
            Field("Description", "textarea", length=32000),
            Field("StageName", "picklist", length=255, required=True),
            Field("Amount", "currency"),
            Field("Probability", "percent"),
            Field("CloseDate", "date", required=True),
            Field("Type", "picklist", length=255),
            Field("IsClosed", "boolean", createable=False, updateable=False),
            Field("IsWon", "boolean", createable=False, updateable=False),
            Field("ForecastCategory", "picklist", createable=False, updateable=False),
            *_billing(),
        ]
    },
}

#: The default sales process (Setup → Opportunity Stages): stage → (probability, closed, won, forecast).
STAGES: dict[str, tuple[int, bool, bool, str]] = {
    "Prospecting": (10, False, False, "Pipeline"),
    "Qualification": (10, False, False, "Pipeline"),
    "Needs Analysis": (20, False, False, "Pipeline"),
    "Value Proposition": (50, False, False, "Pipeline"),
    "Id. Decision Makers": (60, False, False, "Pipeline"),
    "Perception Analysis": (70, False, False, "Pipeline"),
    "Proposal/Price Quote": (75, False, False, "Pipeline"),
    "Negotiation/Review": (90, False, False, "Pipeline"),
    "Closed Won": (100, True, True, "Closed"),
    "Closed Lost": (0, True, False, "Omitted"),
}

ORG_ID = "00D8d0000012345EAA"
USER_ID = "0058d000001AbCdAAK"
INTEGRATION_USER_ID = "0058d000001XyZwAAK"


@dataclass
class OrgState:
    """Records by object and id. Not thread-safe: the server holds its lock around every call."""

    currencies: tuple[str, ...] = ("USD", "EUR", "GBP", "JPY")
    corporate_currency: str = "USD"
    multi_currency: bool = True
    records: dict[str, dict[str, Obj]] = field(default_factory=lambda: {name: {} for name in FIELDS})
    frozen_at: datetime | None = None
    offset: timedelta = timedelta(0)
    _counter: itertools.count[int] = field(default_factory=lambda: itertools.count(1000))

    # ----------------------------------------------------------------------------------------------- clock
    def now(self) -> datetime:
        """The org's clock, to the second (Salesforce audit fields carry no sub-second part)."""
        base = self.frozen_at if self.frozen_at is not None else datetime.now(UTC) + self.offset
        return base.replace(microsecond=0)

    # ------------------------------------------------------------------------------------------ schema
    def fields(self, sobject: str) -> dict[str, Field]:
        fields = FIELDS.get(sobject)
        if fields is None:
            raise SalesforceApiError(404, "NOT_FOUND", "The requested resource does not exist")
        if not self.multi_currency:
            return {k: v for k, v in fields.items() if k != "CurrencyIsoCode"}
        return fields

    def field(self, sobject: str, name: str) -> Field:
        f = self.fields(sobject).get(name)
        if f is None:
            raise invalid_field(f"No such column '{name}' on sobject of type {sobject}")
        return f

    # ---------------------------------------------------------------------------------------- records
    def get(self, sobject: str, record_id: str) -> Obj:
        rec = self.find(sobject, record_id)
        if rec is None:
            raise not_found()
        return rec

    def find(self, sobject: str, record_id: str) -> Obj | None:
        table = self.records.get(sobject)
        if table is None or not ID_RE.match(record_id):
            return None
        if len(record_id) == 15:
            return next((r for i, r in table.items() if i[:15] == record_id), None)
        return table.get(record_id)

    def by_external_id(self, sobject: str, field_name: str, value: str) -> list[Obj]:
        f = self.fields(sobject).get(field_name)
        if f is None or not (f.external_id or f.name == "Id"):
            raise SalesforceApiError(
                404,
                "NOT_FOUND",
                f"Provided external ID field does not exist or is not accessible: {field_name}",
            )
        return [r for r in self.records[sobject].values() if r.get(field_name) == value]

    def create(self, sobject: str, values: Obj, *, user: str = INTEGRATION_USER_ID) -> Obj:
        clean = self._validate(sobject, values, creating=True)
        now = self.now()
        rec: Obj = {name: None for name in self.fields(sobject)}
        rec_id = salesforce_id(KEY_PREFIX[sobject], next(self._counter))
        rec.update(
            Id=rec_id,
            IsDeleted=False,
            OwnerId=user,
            CreatedDate=now,
            CreatedById=user,
            LastModifiedDate=now,
            LastModifiedById=user,
            SystemModstamp=now,
        )
        if self.multi_currency:
            rec["CurrencyIsoCode"] = self.corporate_currency
        rec.update(clean)
        self._derive(sobject, rec)
        self._check_unique(sobject, rec)
        self.records[sobject][rec_id] = rec
        return rec

    def update(self, sobject: str, record_id: str, values: Obj, *, user: str = INTEGRATION_USER_ID) -> Obj:
        rec = self.get(sobject, record_id)
        clean = self._validate(sobject, values, creating=False)
        candidate = {**rec, **clean}
        self._derive(sobject, candidate)
        self._check_unique(sobject, candidate)
        now = self.now()
        candidate.update(LastModifiedDate=now, LastModifiedById=user, SystemModstamp=now)
        rec.update(candidate)
        return rec

    def delete(self, sobject: str, record_id: str) -> None:
        rec = self.get(sobject, record_id)
        if sobject == "Account":  # deleting an account deletes its opportunities
            for opp_id in [i for i, o in self.records["Opportunity"].items() if o["AccountId"] == rec["Id"]]:
                del self.records["Opportunity"][opp_id]
        del self.records[sobject][rec["Id"]]

    def render(self, sobject: str, rec: Obj, api_version: str, names: list[str] | None = None) -> Obj:
        """A record as the REST API sends it: ``attributes`` first, then the fields (all, or ``names``)."""
        out: Obj = {
            "attributes": {
                "type": sobject,
                "url": f"/services/data/v{api_version}/sobjects/{sobject}/{rec['Id']}",
            }
        }
        for name in names if names is not None else list(self.fields(sobject)):
            out[name] = _json_value(copy.deepcopy(rec.get(name)))
        return out

    # ------------------------------------------------------------------------------------- validation
    def _validate(self, sobject: str, values: Obj, *, creating: bool) -> Obj:
        if not isinstance(values, dict):
            raise SalesforceApiError(
                400, "JSON_PARSER_ERROR", "Cannot deserialize instance of sObject from non-object value"
            )
        fields = self.fields(sobject)
        clean: Obj = {}
        readonly: list[str] = []
        for name, raw in values.items():
            if name == "attributes":
                continue
            f = fields.get(name)
            if f is None:
                raise invalid_field(f"No such column '{name}' on sobject of type {sobject}")
            if not (f.createable if creating else f.updateable):
                readonly.append(name)
                continue
            clean[name] = self._coerce(sobject, f, raw)
        if readonly:
            raise dml_error(
                "INVALID_FIELD_FOR_INSERT_UPDATE",
                f"Unable to create/update fields: {', '.join(readonly)}. Please check the security settings "
                "of this field and verify that it is read/write for your profile or permission set.",
                readonly,
            )
        if creating:
            missing = [f.name for f in fields.values() if f.required and clean.get(f.name) in (None, "")]
            if missing:
                raise dml_error(
                    "REQUIRED_FIELD_MISSING", f"Required fields are missing: [{', '.join(missing)}]", missing
                )
        else:
            emptied = [
                f.name for f in fields.values() if f.required and f.name in clean and not clean[f.name]
            ]
            if emptied:
                raise dml_error(
                    "REQUIRED_FIELD_MISSING", f"Required fields are missing: [{', '.join(emptied)}]", emptied
                )
        return clean

    def _coerce(self, sobject: str, f: Field, raw: Any) -> Any:
        if raw is None:
            return None

        def parse_error(kind: str) -> SalesforceApiError:
            token = "VALUE_STRING" if isinstance(raw, str) else type(raw).__name__.upper()
            return SalesforceApiError(
                400,
                "JSON_PARSER_ERROR",
                f"Cannot deserialize instance of {kind} from {token} value {raw} or request may be missing "
                "a required field",
            )

        if f.type in ("string", "textarea", "url", "phone", "picklist"):
            if not isinstance(raw, str):
                raise parse_error("string")
            if f.length is not None and len(raw) > f.length:
                raise dml_error(
                    "STRING_TOO_LONG",
                    f"{f.name}: data value too large: {raw[:20]} (max length={f.length})",
                    [f.name],
                )
            if f.name == "StageName" and raw not in STAGES:
                raise dml_error(
                    "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                    f"Stage: bad value for restricted picklist field: {raw}",
                    [f.name],
                )
            if f.name == "CurrencyIsoCode" and raw not in self.currencies:
                raise dml_error(
                    "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                    f"Currency ISO Code: invalid currency code: {raw}",
                    [f.name],
                )
            return raw
        if f.type in ("currency", "double", "percent", "int"):
            if isinstance(raw, bool) or not isinstance(raw, (int, float, str, Decimal)):
                raise parse_error("double")
            try:
                number = Decimal(str(raw))
            except InvalidOperation as exc:
                raise parse_error("double") from exc
            if not number.is_finite():
                raise parse_error("double")
            return int(number) if f.type == "int" else number
        if f.type == "boolean":
            if not isinstance(raw, bool):
                raise parse_error("boolean")
            return raw
        if f.type == "date":
            try:
                return date.fromisoformat(str(raw)) if isinstance(raw, str) and len(raw) == 10 else _bad()
            except ValueError as exc:
                raise parse_error("date") from exc
        if f.type == "reference":
            if not isinstance(raw, str) or not ID_RE.match(raw):
                raise dml_error("MALFORMED_ID", f"{f.name}: id value of incorrect type: {raw}", [f.name])
            if f.reference_to == "User":
                return raw
            target = self.find(f.reference_to or "", raw)
            if target is None:
                raise dml_error("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [f.name])
            return target["Id"]
        raise parse_error(f.type)

    def _derive(self, sobject: str, rec: Obj) -> None:
        if sobject == "Opportunity":
            probability, closed, won, forecast = STAGES[rec["StageName"]]
            rec.update(IsClosed=closed, IsWon=won, ForecastCategory=forecast)
            if rec.get("Probability") is None or rec.get("_stage") != rec["StageName"]:
                rec["Probability"] = Decimal(probability)
            rec["_stage"] = rec["StageName"]

    def _check_unique(self, sobject: str, rec: Obj) -> None:
        for f in self.fields(sobject).values():
            value = rec.get(f.name)
            if not f.unique or value is None:
                continue
            for other in self.records[sobject].values():
                if other["Id"] != rec["Id"] and other.get(f.name) == value:
                    raise dml_error(
                        "DUPLICATE_VALUE",
                        f"duplicate value found: {f.name} duplicates value on record with id: {other['Id']}",
                        [],
                    )


def _bad() -> Any:
    raise ValueError("not a date")


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return format_datetime(value)
    if isinstance(value, date):
        return value.isoformat()
    return value
