"""The fake HubSpot portal's data: property definitions, CRM objects, associations, and the rules HubSpot's CRM
v3 API applies to them (property validation, unique values, search filters, paging).

References: https://developers.hubspot.com/docs/api/crm/understanding-the-crm (objects),
https://developers.hubspot.com/docs/api/crm/search (search), https://developers.hubspot.com/docs/api/crm/properties
(properties), https://developers.hubspot.com/docs/api/crm/associations (associations, v3 create body and v4
default associations).
"""

# ruff: noqa: E501  (HubSpot's own messages are quoted verbatim)

from __future__ import annotations

import copy
import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

__all__ = [
    "ASSOCIATION_TYPES",
    "DEAL_STAGES",
    "HubSpotError",
    "Obj",
    "PortalState",
    "iso_ms",
]

Obj = dict[str, Any]

#: The object types the fake serves, by path name; HubSpot also accepts the numeric type ids.
OBJECT_TYPES = {"companies": "companies", "0-2": "companies", "deals": "deals", "0-3": "deals"}
_SINGULAR = {"companies": "company", "deals": "deal"}

#: HubSpot-defined association type ids (https://developers.hubspot.com/docs/api/crm/associations/v4):
#: (from, to, id) → name. 5/6 are the "primary" company of a deal, 341/342 the unlabeled (default) ones.
ASSOCIATION_TYPES: dict[tuple[str, str, int], str] = {
    ("deals", "companies", 5): "deal_to_company",
    ("deals", "companies", 341): "deal_to_company_unlabeled",
    ("companies", "deals", 6): "company_to_deal",
    ("companies", "deals", 342): "company_to_deal_unlabeled",
}
_INVERSE = {5: 6, 6: 5, 341: 342, 342: 341}
DEFAULT_ASSOCIATION = {("deals", "companies"): 341, ("companies", "deals"): 342}

#: The default sales pipeline's stages (internal ids), as a new portal has them.
DEAL_STAGES = (
    "appointmentscheduled",
    "qualifiedtobuy",
    "presentationscheduled",
    "decisionmakerboughtin",
    "contractsent",
    "closedwon",
    "closedlost",
)

#: Properties a GET answers with when no ``properties`` are asked for.
DEFAULT_PROPERTIES = {
    "companies": ("createdate", "domain", "hs_lastmodifieddate", "hs_object_id", "name"),
    "deals": (
        "amount",
        "closedate",
        "createdate",
        "dealname",
        "dealstage",
        "hs_lastmodifieddate",
        "hs_object_id",
        "pipeline",
    ),
}
SYSTEM_PROPERTIES = ("createdate", "hs_lastmodifieddate", "hs_object_id")
READ_ONLY = frozenset(
    {"createdate", "hs_lastmodifieddate", "hs_object_id", "hs_is_closed_won", "hs_is_closed"}
)

SEARCH_MAX_LIMIT = 200  # "The maximum number of supported objects per page is 200."
SEARCH_MAX_RESULTS = 10_000  # search pages stop at 10,000 results
SEARCH_MAX_GROUPS = 5
SEARCH_MAX_FILTERS = 6
LIST_MAX_LIMIT = 100
_OPERATORS = {
    "EQ",
    "NEQ",
    "LT",
    "LTE",
    "GT",
    "GTE",
    "HAS_PROPERTY",
    "NOT_HAS_PROPERTY",
    "IN",
    "NOT_IN",
    "BETWEEN",
}


class HubSpotError(Exception):
    """Rendered as HubSpot's error body ``{status: "error", message, correlationId, category, ...}``."""

    def __init__(
        self,
        status: int,
        category: str,
        message: str,
        *,
        errors: list[Obj] | None = None,
        extra: Obj | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.category = category
        self.message = message
        self.errors = errors
        self.extra = extra or {}
        self.headers = headers or {}

    def body(self) -> Obj:
        out: Obj = {
            "status": "error",
            "message": self.message,
            "correlationId": str(uuid.uuid4()),
            "category": self.category,
        }
        if self.errors is not None:
            out["errors"] = self.errors
        out.update(self.extra)
        return out


def validation_error(message: str, errors: list[Obj] | None = None) -> HubSpotError:
    return HubSpotError(400, "VALIDATION_ERROR", message, errors=errors)


def iso_ms(ms: int) -> str:
    """HubSpot's timestamp format: ISO 8601, UTC, milliseconds, ``Z``."""
    dt = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def _prop(
    name: str,
    label: str,
    type: str,
    field_type: str,
    group: str,
    *,
    hubspot_defined: bool = True,
    options: list[Obj] | None = None,
    unique: bool = False,
    description: str = "",
) -> Obj:
    return {
        "name": name,
        "label": label,
        "type": type,
        "fieldType": field_type,
        "groupName": group,
        "description": description,
        "options": options or [],
        "displayOrder": -1,
        "calculated": False,
        "externalOptions": False,
        "hasUniqueValue": unique,
        "hidden": False,
        "hubspotDefined": hubspot_defined,
        "formField": False,
        "modificationMetadata": {
            "archivable": not hubspot_defined,
            "readOnlyDefinition": hubspot_defined,
            "readOnlyValue": name in READ_ONLY,
        },
        "archived": False,
    }


def _standard_properties() -> dict[str, dict[str, Obj]]:
    stages = [{"label": s, "value": s, "displayOrder": i, "hidden": False} for i, s in enumerate(DEAL_STAGES)]
    common = [
        _prop("createdate", "Create Date", "datetime", "date", "{g}"),
        _prop("hs_lastmodifieddate", "Last Modified Date", "datetime", "date", "{g}"),
        _prop("hs_object_id", "Record ID", "number", "number", "{g}"),
    ]
    companies = [
        _prop("name", "Company name", "string", "text", "companyinformation"),
        _prop("domain", "Company Domain Name", "string", "text", "companyinformation"),
        _prop("city", "City", "string", "text", "companyinformation"),
        _prop("phone", "Phone Number", "string", "text", "companyinformation"),
        _prop("industry", "Industry", "string", "text", "companyinformation"),
        _prop("description", "Description", "string", "textarea", "companyinformation"),
    ]
    deals = [
        _prop("dealname", "Deal Name", "string", "text", "dealinformation"),
        _prop("amount", "Amount", "number", "number", "dealinformation"),
        _prop("dealstage", "Deal Stage", "enumeration", "radio", "dealinformation", options=stages),
        _prop(
            "pipeline",
            "Pipeline",
            "enumeration",
            "select",
            "dealinformation",
            options=[{"label": "Sales Pipeline", "value": "default", "displayOrder": 0, "hidden": False}],
        ),
        _prop("closedate", "Close Date", "datetime", "date", "dealinformation"),
        _prop(
            "deal_currency_code",
            "Currency",
            "enumeration",
            "select",
            "dealinformation",
            options=[
                {"label": c, "value": c, "displayOrder": i, "hidden": False}
                for i, c in enumerate(("USD", "EUR", "GBP", "JPY", "CAD", "AUD"))
            ],
        ),
        _prop("description", "Deal Description", "string", "textarea", "dealinformation"),
        _prop("hs_is_closed_won", "Is Closed Won", "bool", "booleancheckbox", "dealinformation"),
        _prop("hs_is_closed", "Is Deal Closed?", "bool", "booleancheckbox", "dealinformation"),
    ]
    out: dict[str, dict[str, Obj]] = {}
    for kind, props, group in (
        ("companies", companies, "companyinformation"),
        ("deals", deals, "dealinformation"),
    ):
        defs = {p["name"]: p for p in props}
        for p in common:
            q = copy.deepcopy(p)
            q["groupName"] = group
            defs[q["name"]] = q
        out[kind] = defs
    return out


@dataclass
class Stored:
    id: str
    object_type: str
    properties: dict[str, str]
    created_ms: int
    updated_ms: int
    archived: bool = False
    # (to object type, to id) -> association type ids
    associations: dict[tuple[str, str], set[int]] = field(default_factory=dict)


@dataclass(frozen=True)
class PropertyChange:
    """One property of one object changed (what a ``*.propertyChange`` webhook reports)."""

    object_type: str
    object_id: str
    property_name: str
    value: str
    occurred_ms: int
    source: str  # HubSpot's changeSource: "CRM_UI", "INTEGRATION", "API", ...
    created: bool = False
    deleted: bool = False


class PortalState:
    """One HubSpot portal (account). Not thread-safe: the server holds its lock around every call."""

    def __init__(self, now_ms: Any):
        self.now_ms = now_ms
        self.properties = _standard_properties()
        self.objects: dict[str, dict[str, Stored]] = {"companies": {}, "deals": {}}
        self._next_id = 10_000_000_001
        self.changes: list[PropertyChange] = []
        #: HubSpot's search index trails writes by a few moments: objects changed less than this long ago are
        #: not found by search yet (reads by id are consistent at once).
        self.search_lag_ms = 0

    # ---------------------------------------------------------------------------------------- helpers
    def object_type(self, raw: str) -> str:
        kind = OBJECT_TYPES.get(raw)
        if kind is None:
            raise HubSpotError(400, "VALIDATION_ERROR", f"Unable to infer object type from: {raw}")
        return kind

    def new_id(self) -> str:
        ident = str(self._next_id)
        self._next_id += 1 + (self._next_id % 7)  # ids increase but are not consecutive, as HubSpot's
        return ident

    def lookup(
        self, kind: str, ident: str, *, id_property: str | None = None, archived: bool = False
    ) -> Stored:
        if id_property and id_property != "hs_object_id":
            definition = self.properties[kind].get(id_property)
            if definition is None or not definition["hasUniqueValue"]:
                raise validation_error(f"{id_property} is not a unique identifier property for {kind}")
            found = next(
                (
                    o
                    for o in self.objects[kind].values()
                    if o.properties.get(id_property) == ident and o.archived == archived
                ),
                None,
            )
        else:
            found = self.objects[kind].get(ident)
            if found is not None and found.archived != archived:
                found = None
        if found is None:
            raise HubSpotError(404, "OBJECT_NOT_FOUND", "resource not found")
        return found

    # ------------------------------------------------------------------------------------ properties
    def create_property(self, kind: str, body: Obj) -> Obj:
        required = ("name", "label", "type", "fieldType", "groupName")
        missing = [k for k in required if not body.get(k)]
        if missing:
            raise validation_error(
                "Invalid input JSON on line 1, column 2: Some required fields were not set: " + str(missing)
            )
        name = str(body["name"])
        if name in self.properties[kind]:
            raise HubSpotError(409, "OBJECT_ALREADY_EXISTS", f"Property named '{name}' already exists.")
        if body["type"] not in ("string", "number", "date", "datetime", "enumeration", "bool"):
            raise validation_error(f"Invalid property type: {body['type']}")
        if body["type"] == "enumeration" and not body.get("options"):
            raise validation_error("Enumeration properties must have at least one option")
        definition = _prop(
            name,
            str(body["label"]),
            str(body["type"]),
            str(body["fieldType"]),
            str(body["groupName"]),
            hubspot_defined=False,
            options=[
                {
                    "label": o["label"],
                    "value": o["value"],
                    "displayOrder": o.get("displayOrder", i),
                    "hidden": bool(o.get("hidden", False)),
                }
                for i, o in enumerate(body.get("options") or [])
            ],
            unique=bool(body.get("hasUniqueValue", False)),
            description=str(body.get("description") or ""),
        )
        definition.pop("hubspotDefined")
        now = iso_ms(self.now_ms())
        definition.update({"createdAt": now, "updatedAt": now, "createdUserId": "0", "updatedUserId": "0"})
        self.properties[kind][name] = definition
        return copy.deepcopy(definition)

    def get_property(self, kind: str, name: str) -> Obj:
        definition = self.properties[kind].get(name)
        if definition is None:
            raise HubSpotError(
                404, "OBJECT_NOT_FOUND", f"Unable to find property {name} for object type {kind}"
            )
        return copy.deepcopy(definition)

    def _check_properties(self, kind: str, props: Obj, *, exclude_id: str | None) -> dict[str, str]:
        if not isinstance(props, dict):
            raise validation_error("Invalid input JSON: properties must be an object")
        problems: list[Obj] = []
        clean: dict[str, str] = {}
        for name, raw in props.items():
            definition = self.properties[kind].get(name)
            value = "" if raw is None else (str(raw).lower() if isinstance(raw, bool) else str(raw))
            if definition is None:
                problems.append(_invalid(name, f'Property "{name}" does not exist', "PROPERTY_DOESNT_EXIST"))
                continue
            if name in READ_ONLY:
                problems.append(
                    _invalid(
                        name, f'"{name}" is a read only property; its value cannot be set.', "READ_ONLY_VALUE"
                    )
                )
                continue
            problem = _check_value(definition, value)
            if problem is not None:
                problems.append(_invalid(name, problem[0], problem[1]))
                continue
            clean[name] = value
        if problems:
            raise HubSpotError(
                400,
                "VALIDATION_ERROR",
                "Property values were not valid: " + json.dumps(problems, separators=(",", ":")),
            )
        for name, value in clean.items():
            if value and self.properties[kind][name]["hasUniqueValue"]:
                for other in self.objects[kind].values():
                    if other.id != exclude_id and not other.archived and other.properties.get(name) == value:
                        noun = _SINGULAR[kind]
                        message = f"A {noun} with {name} {value} already exists. Existing ID: {other.id}"
                        raise HubSpotError(
                            409,
                            "OBJECT_ALREADY_EXISTS",
                            f"{noun.capitalize()} already exists. Existing ID: {other.id}",
                            errors=[{"message": message, "in": name}],
                        )
        return clean

    # --------------------------------------------------------------------------------------- objects
    def create(self, kind: str, body: Obj, *, source: str) -> Stored:
        props = self._check_properties(kind, body.get("properties") or {}, exclude_id=None)
        associations = self._check_associations(kind, body.get("associations") or [])
        now = self.now_ms()
        ident = self.new_id()
        obj = Stored(ident, kind, {}, now, now)
        if kind == "deals":
            props.setdefault("pipeline", "default")
        obj.properties.update({k: v for k, v in props.items() if v != ""})
        self._derive(obj)
        self._stamp(obj, now, created=True)
        self.objects[kind][ident] = obj
        for to_kind, to_id, type_id in associations:
            self.associate(kind, ident, to_kind, to_id, type_id)
        self.changes.append(PropertyChange(kind, ident, "", "", now, source, created=True))
        for name, value in obj.properties.items():
            if name not in SYSTEM_PROPERTIES:
                self.changes.append(PropertyChange(kind, ident, name, value, now, source))
        return obj

    def update(
        self, kind: str, ident: str, body: Obj, *, source: str, id_property: str | None = None
    ) -> Stored:
        obj = self.lookup(kind, ident, id_property=id_property)
        props = self._check_properties(kind, body.get("properties") or {}, exclude_id=obj.id)
        now = self.now_ms()
        changed = []
        for name, value in props.items():
            if obj.properties.get(name, "") != value:
                changed.append(name)
                if value == "":
                    obj.properties.pop(name, None)
                else:
                    obj.properties[name] = value
        self._derive(obj)
        self._stamp(obj, now)
        for name in changed:
            self.changes.append(PropertyChange(kind, obj.id, name, obj.properties.get(name, ""), now, source))
        return obj

    def archive(self, obj: Stored, *, source: str) -> None:
        """Delete an object (HubSpot archives it: reads answer 404, ``archived=true`` lists show it)."""
        now = self.now_ms()
        obj.archived = True
        obj.updated_ms = now
        self.changes.append(PropertyChange(obj.object_type, obj.id, "", "", now, source, deleted=True))

    def _derive(self, obj: Stored) -> None:
        if obj.object_type == "deals" and "dealstage" in obj.properties:
            stage = obj.properties["dealstage"]
            obj.properties["hs_is_closed_won"] = "true" if stage == "closedwon" else "false"
            obj.properties["hs_is_closed"] = "true" if stage in ("closedwon", "closedlost") else "false"

    def _stamp(self, obj: Stored, now: int, *, created: bool = False) -> None:
        obj.updated_ms = now
        obj.properties["hs_object_id"] = obj.id
        obj.properties["hs_lastmodifieddate"] = iso_ms(now)
        if created:
            obj.properties["createdate"] = iso_ms(now)

    def _check_associations(self, kind: str, items: Any) -> list[tuple[str, str, int]]:
        out: list[tuple[str, str, int]] = []
        if not isinstance(items, list):
            raise validation_error("Invalid input JSON: associations must be an array")
        for item in items:
            try:
                to_id = str(item["to"]["id"])
                types = item["types"]
            except (KeyError, TypeError) as exc:
                raise validation_error(f"Invalid input JSON: association is missing {exc}") from exc
            for spec in types:
                type_id = int(spec.get("associationTypeId", 0))
                target = next((t for (f, t, i) in ASSOCIATION_TYPES if f == kind and i == type_id), None)
                if spec.get("associationCategory") != "HUBSPOT_DEFINED" or target is None:
                    raise validation_error(
                        f"{spec.get('associationCategory')} {type_id} is not a valid association type between {kind} and any other object"
                    )
                if to_id not in self.objects[target] or self.objects[target][to_id].archived:
                    raise validation_error(
                        f"No {_SINGULAR[target]} with ID {to_id} exists",
                        errors=[
                            {
                                "message": f"No {_SINGULAR[target]} with ID {to_id} exists",
                                "code": "INVALID_OBJECT_ID",
                            }
                        ],
                    )
                out.append((target, to_id, type_id))
        return out

    def associate(self, kind: str, ident: str, to_kind: str, to_id: str, type_id: int) -> None:
        self.objects[kind][ident].associations.setdefault((to_kind, to_id), set()).add(type_id)
        self.objects[to_kind][to_id].associations.setdefault((kind, ident), set()).add(_INVERSE[type_id])

    def associations_of(self, obj: Stored, to_kinds: list[str]) -> Obj:
        out: Obj = {}
        for raw in to_kinds:
            to_kind = OBJECT_TYPES.get(raw)
            if to_kind is None:
                continue  # "If any of the specified associations do not exist, they will be ignored."
            results = [
                {"id": to_id, "type": ASSOCIATION_TYPES[(obj.object_type, to_kind, t)]}
                for (k, to_id), types in sorted(obj.associations.items())
                if k == to_kind
                for t in sorted(types)
            ]
            if results:
                out[raw] = {"results": results}
        return out

    def render(self, obj: Stored, wanted: list[str] | None = None, *, all_set: bool = False) -> Obj:
        if all_set:
            props: dict[str, str | None] = dict(obj.properties)
        else:
            names = (
                list(wanted) + list(SYSTEM_PROPERTIES)
                if wanted
                else list(DEFAULT_PROPERTIES[obj.object_type])
            )
            props = {n: obj.properties.get(n) for n in names if n in self.properties[obj.object_type]}
        return {
            "id": obj.id,
            "properties": dict(sorted(props.items())),
            "createdAt": iso_ms(obj.created_ms),
            "updatedAt": iso_ms(obj.updated_ms),
            "archived": obj.archived,
        }

    # ---------------------------------------------------------------------------------------- listing
    def list_page(
        self, kind: str, *, limit: int, after: str | None, archived: bool
    ) -> tuple[list[Stored], str | None]:
        if limit < 1 or limit > LIST_MAX_LIMIT:
            raise validation_error(f"limit must be between 1 and {LIST_MAX_LIMIT}")
        items = sorted(
            (o for o in self.objects[kind].values() if o.archived == archived), key=lambda o: int(o.id)
        )
        if after:
            try:
                cursor = int(after)
            except ValueError as exc:
                raise validation_error(f"Invalid after value: {after}") from exc
            items = [o for o in items if int(o.id) >= cursor]
        page = items[:limit]
        next_after = items[limit].id if len(items) > limit else None
        return page, next_after

    def search(self, kind: str, body: Obj) -> tuple[list[Stored], int, int | None]:
        """Matching objects for one page, the total, and the next offset (None on the last page)."""
        limit = body.get("limit", 10)
        if not isinstance(limit, int) or limit < 0 or limit > SEARCH_MAX_LIMIT:
            raise validation_error(f"limit must be between 0 and {SEARCH_MAX_LIMIT}, got {limit}")
        try:
            offset = int(body.get("after") or 0)
        except (TypeError, ValueError) as exc:
            raise validation_error(f"Invalid after value: {body.get('after')}") from exc
        if offset + limit > SEARCH_MAX_RESULTS:
            raise validation_error(
                f"Search results are limited to {SEARCH_MAX_RESULTS} items; use a filter to narrow the results"
            )
        groups = body.get("filterGroups") or []
        if len(groups) > SEARCH_MAX_GROUPS:
            raise validation_error(f"Too many filter groups: at most {SEARCH_MAX_GROUPS} are allowed")
        for group in groups:
            if len(group.get("filters") or []) > SEARCH_MAX_FILTERS:
                raise validation_error(
                    f"Too many filters in a group: at most {SEARCH_MAX_FILTERS} are allowed"
                )
            for flt in group.get("filters") or []:
                if flt.get("operator") not in _OPERATORS:
                    raise validation_error(f"Unknown filter operator: {flt.get('operator')}")
                if flt.get("propertyName") not in self.properties[kind]:
                    raise validation_error(
                        f"There was a problem with the request: property {flt.get('propertyName')} does not exist"
                    )
        sorts = body.get("sorts") or []
        if len(sorts) > 1:
            raise validation_error("Only one sort is allowed in a search request")
        indexed_before = self.now_ms() - self.search_lag_ms
        items = [
            o
            for o in self.objects[kind].values()
            if not o.archived and (not self.search_lag_ms or o.updated_ms <= indexed_before)
        ]
        if groups:
            items = [
                o
                for o in items
                if any(all(self._matches(o, f) for f in g.get("filters") or []) for g in groups)
            ]
        query = str(body.get("query") or "").lower()
        if query:
            items = [o for o in items if any(query in v.lower() for v in o.properties.values())]
        if sorts:
            sort = sorts[0]
            if isinstance(sort, str):
                name, descending = sort.lstrip("-"), sort.startswith("-")
            else:
                name, descending = str(sort.get("propertyName")), sort.get("direction") == "DESCENDING"
            definition = self.properties[kind].get(name)
            if definition is None:
                raise validation_error(
                    f"There was a problem with the request: property {name} does not exist"
                )
            items.sort(
                key=lambda o: (_sort_key(definition, o.properties.get(name)), int(o.id)), reverse=descending
            )
        else:
            items.sort(key=lambda o: int(o.id))
        page = items[offset : offset + limit]
        next_offset = offset + limit if offset + limit < len(items) and limit else None
        return page, len(items), next_offset

    def _matches(self, obj: Stored, flt: Obj) -> bool:
        name, op = str(flt["propertyName"]), str(flt["operator"])
        definition = self.properties[obj.object_type][name]
        actual = obj.properties.get(name)
        if op == "HAS_PROPERTY":
            return actual is not None
        if op == "NOT_HAS_PROPERTY":
            return actual is None
        if op in ("IN", "NOT_IN"):
            values = {str(v).lower() for v in flt.get("values") or []}
            inside = actual is not None and actual.lower() in values
            return inside if op == "IN" else not inside
        if actual is None:
            return op == "NEQ"
        a = _sort_key(definition, actual)
        v = _sort_key(definition, str(flt.get("value", "")))
        if op == "BETWEEN":
            return v <= a <= _sort_key(definition, str(flt.get("highValue", "")))
        if op in ("EQ", "NEQ") and definition["type"] in ("string", "enumeration"):
            a, v = (
                str(actual).lower(),
                str(flt.get("value", "")).lower(),
            )  # string equality is case-insensitive
        return {
            "EQ": a == v,
            "NEQ": a != v,
            "LT": a < v,
            "LTE": a <= v,
            "GT": a > v,
            "GTE": a >= v,
        }[op]


def _invalid(name: str, message: str, error: str) -> Obj:
    return {
        "isValid": False,
        "message": message,
        "error": error,
        "name": name,
        "localizedErrorMessage": message,
    }


def _to_ms(value: str) -> int | None:
    """A datetime/date property value or filter: epoch milliseconds or ISO 8601 (HubSpot accepts both)."""
    try:
        return int(value)
    except ValueError:
        pass
    try:
        if len(value) == 10:
            d = date.fromisoformat(value)
            return int(datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp() * 1000)
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1000)


def _sort_key(definition: Obj, value: str | None) -> Any:
    if value is None or value == "":
        return (0, "")
    if definition["type"] == "number":
        try:
            return (1, Decimal(value))
        except InvalidOperation:
            return (1, Decimal(0))
    if definition["type"] in ("date", "datetime"):
        return (1, _to_ms(value) or 0)
    return (1, value.lower())


def _check_value(definition: Obj, value: str) -> tuple[str, str] | None:
    if value == "":
        return None
    kind = definition["type"]
    if kind == "number":
        try:
            Decimal(value)
        except InvalidOperation:
            return f"{value} was not a valid number.", "INVALID_DECIMAL"
    elif kind in ("date", "datetime"):
        ms = _to_ms(value)
        if ms is None:
            return f"{value} was not a valid long or ISO 8601 date.", "INVALID_DATE"
        if kind == "date" and ms % 86_400_000:
            return f"{value} is at {ms}, which is not midnight UTC.", "INVALID_DATE"
    elif kind == "enumeration":
        allowed = [o["value"] for o in definition["options"]]
        if value not in allowed:
            return f"{value} was not one of the allowed options: {allowed}", "INVALID_OPTION"
    elif kind == "bool" and value not in ("true", "false"):
        return f"{value} was not a valid boolean.", "INVALID_BOOLEAN"
    return None
