# ruff: noqa: E501  (Salesforce's own messages are quoted verbatim)
"""The SOQL subset the fake answers: ``SELECT f, ... FROM Account|Opportunity [WHERE cond] [ORDER BY f [ASC|DESC],
...] [LIMIT n] [OFFSET n]`` where a condition compares a field with a literal (``= != < <= > >=``, ``IN (...)``),
combined with AND / OR / NOT and parentheses. As in Salesforce, AND and OR cannot be mixed at one level without
parentheses, datetime literals are unquoted (``2026-01-01T00:00:00Z``) and strings are single-quoted.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from .errors import SalesforceApiError, malformed_query
from .state import ID_RE, OrgState

__all__ = ["Query", "parse"]

Obj = dict[str, Any]
Pred = Callable[[Obj], bool]

_TOKEN = re.compile(
    r"""\s*(?:
    (?P<str>'(?:[^'\\]|\\.)*')
    |(?P<dt>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,3})?(?:Z|[+-]\d{2}:\d{2}))
    |(?P<date>\d{4}-\d{2}-\d{2})
    |(?P<num>-?\d+(?:\.\d+)?)
    |(?P<op><=|>=|!=|<>|=|<|>)
    |(?P<punct>[(),])
    |(?P<word>[A-Za-z_][A-Za-z0-9_.]*)
    )""",
    re.VERBOSE,
)
_KEYWORDS = {
    "SELECT",
    "FROM",
    "WHERE",
    "AND",
    "OR",
    "NOT",
    "ORDER",
    "BY",
    "ASC",
    "DESC",
    "LIMIT",
    "OFFSET",
    "IN",
    "NULLS",
    "FIRST",
    "LAST",
    "NULL",
    "TRUE",
    "FALSE",
}


@dataclass
class Query:
    sobject: str
    fields: list[str]
    where: Pred | None
    order: list[tuple[str, bool, bool]]  # field, descending, nulls last
    limit: int | None
    offset: int

    def run(self, state: OrgState) -> list[Obj]:
        rows = [r for r in state.records[self.sobject].values() if self.where is None or self.where(r)]
        for name, desc, nulls_last in reversed(self.order):
            present = [r for r in rows if r.get(name) is not None]
            absent = [r for r in rows if r.get(name) is None]
            present.sort(key=lambda r, n=name: _sort_key(r[n]), reverse=desc)
            rows = present + absent if nulls_last else absent + present
        rows = rows[self.offset :]
        return rows if self.limit is None else rows[: self.limit]


def _sort_key(value: Any) -> Any:
    return value


class _Parser:
    def __init__(self, text: str, state: OrgState):
        self.state = state
        self.tokens: list[tuple[str, str]] = []
        pos = 0
        text = text.strip()
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            if m is None or m.end() == pos:
                raise malformed_query(f"unexpected token: '{text[pos:].split()[0]}'")
            kind = m.lastgroup or ""
            value = m.group(kind)
            if kind == "word" and value.upper() in _KEYWORDS:
                kind, value = "kw", value.upper()
            self.tokens.append((kind, value))
            pos = m.end()
            while pos < len(text) and text[pos].isspace():
                pos += 1
        self.i = 0
        self.sobject = ""

    def peek(self) -> tuple[str, str]:
        return self.tokens[self.i] if self.i < len(self.tokens) else ("end", "")

    def take(self, kind: str, value: str | None = None) -> str:
        k, v = self.peek()
        if k != kind or (value is not None and v != value):
            shown = v or "<EOF>"
            raise malformed_query(f"unexpected token: '{shown}'")
        self.i += 1
        return v

    def accept(self, kind: str, value: str | None = None) -> bool:
        k, v = self.peek()
        if k == kind and (value is None or v == value):
            self.i += 1
            return True
        return False

    def parse(self) -> Query:
        self.take("kw", "SELECT")
        names = [self.take("word")]
        while self.accept("punct", ","):
            names.append(self.take("word"))
        self.take("kw", "FROM")
        self.sobject = self.take("word")
        if self.sobject not in self.state.records:
            raise SalesforceApiError(
                400,
                "INVALID_TYPE",
                f"sObject type '{self.sobject}' is not supported. If you are attempting to use a custom object, "
                "be sure to append the '__c' after the entity name.",
            )
        fields = [self.column(n) for n in names]
        where = None
        if self.accept("kw", "WHERE"):
            where = self.condition()
        order: list[tuple[str, bool, bool]] = []
        if self.accept("kw", "ORDER"):
            self.take("kw", "BY")
            while True:
                name = self.column(self.take("word"))
                desc = self.accept("kw", "DESC") or (self.accept("kw", "ASC") and False)
                nulls_last = desc
                if self.accept("kw", "NULLS"):
                    nulls_last = self.accept("kw", "LAST") or not self.take("kw", "FIRST")
                order.append((name, desc, nulls_last))
                if not self.accept("punct", ","):
                    break
        limit = int(self.take("num")) if self.accept("kw", "LIMIT") else None
        offset = int(self.take("num")) if self.accept("kw", "OFFSET") else 0
        if self.peek()[0] != "end":
            raise malformed_query(f"unexpected token: '{self.peek()[1]}'")
        return Query(self.sobject, fields, where, order, limit, offset)

    def column(self, name: str) -> str:
        fields = self.state.fields(self.sobject)
        for known in fields:
            if known.lower() == name.lower():
                return known
        raise SalesforceApiError(
            400,
            "INVALID_FIELD",
            f"No such column '{name}' on entity '{self.sobject}'. If you are attempting to use a custom field, "
            "be sure to append the '__c' after the custom field name. Please reference your WSDL or the "
            "describe call for the appropriate names.",
        )

    def condition(self) -> Pred:
        first = self.unary()
        k, v = self.peek()
        if k != "kw" or v not in ("AND", "OR"):
            return first
        joiner = v
        parts = [first]
        while self.accept("kw", joiner):
            parts.append(self.unary())
        k, v = self.peek()
        if k == "kw" and v in ("AND", "OR"):
            raise malformed_query(f"unexpected token: '{v}'")  # mixing AND/OR needs parentheses
        if joiner == "AND":
            return lambda r: all(p(r) for p in parts)
        return lambda r: any(p(r) for p in parts)

    def unary(self) -> Pred:
        if self.accept("kw", "NOT"):
            inner = self.unary()
            return lambda r: not inner(r)
        if self.accept("punct", "("):
            inner = self.condition()
            self.take("punct", ")")
            return inner
        return self.comparison()

    def comparison(self) -> Pred:
        name = self.column(self.take("word"))
        f = self.state.field(self.sobject, name)
        if self.accept("kw", "IN"):
            self.take("punct", "(")
            values = [self.literal(f.type)]
            while self.accept("punct", ","):
                values.append(self.literal(f.type))
            self.take("punct", ")")
            return lambda r: _norm(r.get(name), f.type) in values
        op = self.take("op")
        value = self.literal(f.type)
        if value is None and op not in ("=", "!=", "<>"):
            raise malformed_query("null can only be compared with = or !=")

        def pred(r: Obj) -> bool:
            left = _norm(r.get(name), f.type)
            if op == "=":
                return bool(left == value)
            if op in ("!=", "<>"):
                return bool(left != value)
            if left is None:
                return False
            return bool({"<": left < value, "<=": left <= value, ">": left > value, ">=": left >= value}[op])

        return pred

    def literal(self, field_type: str) -> Any:
        kind, value = self.peek()
        self.i += 1
        if kind == "kw" and value == "NULL":
            return None
        if kind == "kw" and value in ("TRUE", "FALSE"):
            if field_type != "boolean":
                raise malformed_query(f"value of filter criterion for field must be of type {field_type}")
            return value == "TRUE"
        if kind == "str":
            if field_type in ("datetime", "date", "currency", "double", "percent", "int", "boolean"):
                raise malformed_query(
                    f"value of filter criterion for field must be of type {field_type} and should not be enclosed in quotes"
                )
            text = re.sub(r"\\(.)", r"\1", value[1:-1])
            if field_type in ("id", "reference") and text and not ID_RE.match(text):
                raise SalesforceApiError(400, "INVALID_QUERY_FILTER_OPERATOR", f"invalid ID field: {text}")
            return text[:15] if field_type in ("id", "reference") else text
        if kind == "dt":
            if field_type != "datetime":
                raise malformed_query(f"value of filter criterion for field must be of type {field_type}")
            return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
        if kind == "date":
            if field_type != "date":
                raise malformed_query(f"value of filter criterion for field must be of type {field_type}")
            return date.fromisoformat(value)
        if kind == "num" and field_type in ("currency", "double", "percent", "int"):
            return Decimal(value)
        raise malformed_query(f"unexpected token: '{value or '<EOF>'}'")


def _norm(value: Any, field_type: str) -> Any:
    if value is not None and field_type in ("id", "reference"):
        return str(value)[:15]  # ids compare by their case-sensitive 15-character form
    return value


def parse(text: str, state: OrgState) -> Query:
    """Parse ``text`` against the org's schema. Raises SalesforceApiError (MALFORMED_QUERY, INVALID_FIELD,
    INVALID_TYPE) as Salesforce does."""
    return _Parser(text, state).parse()
