"""Column types that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import msgspec
import orjson
from sqlalchemy import JSON, ColumnElement, DateTime, String, Text, cast, type_coerce
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

__all__ = [
    "DecimalString",
    "ExactJSON",
    "JSONType",
    "UTCDateTime",
    "decode_json",
    "exact_decoder",
    "exact_json",
]


#: JSON with every non-integer number as an exact Decimal (never a binary float): ``1.1`` stays 1.1.
def exact_decoder(type_: Any = Any) -> msgspec.json.Decoder[Any]:
    """A JSON decoder into ``type_`` that reads every non-integer number as an exact Decimal: the one place
    that says how Revflow decodes numbers it must not round (usage bodies, stored event properties)."""
    return msgspec.json.Decoder(type_, float_hook=Decimal)


_DECODER = exact_decoder()


def decode_json(raw: bytes | str) -> Any:
    """The JSON document ``raw`` with non-integer numbers as :class:`~decimal.Decimal`.

    Raises ValueError (``msgspec.DecodeError``) for a body that is not JSON.

    >>> decode_json(b'{"gb": 0.1, "n": 3}')
    {'gb': Decimal('0.1'), 'n': 3}
    """
    return _DECODER.decode(raw)


def _exact(value: Any) -> Any:
    if isinstance(value, Decimal) and value.is_finite():
        return orjson.Fragment(str(value))
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def exact_json(value: Any, *, sort_keys: bool = False) -> bytes:
    """``value`` as compact JSON, a Decimal written as the exact number it is (``Decimal('0.10')`` →
    ``0.10``); with ``sort_keys``, every object's keys in code point order (as ``json.dumps`` sorts them).
    The engines write JSON columns with it, so exact event properties are stored as numbers, digit for digit.

    >>> exact_json({"gb": Decimal("0.10"), "n": 3})
    b'{"gb":0.10,"n":3}'
    >>> exact_json({"n": 3, "gb": Decimal("0.10")}, sort_keys=True)
    b'{"gb":0.10,"n":3}'
    """
    option = orjson.OPT_NON_STR_KEYS | (orjson.OPT_SORT_KEYS if sort_keys else 0)
    return orjson.dumps(value, default=_exact, option=option)


#: JSON on SQLite, JSONB on PostgreSQL.
JSONType = JSON().with_variant(JSONB(), "postgresql")


class ExactJSON(TypeDecorator[Any]):
    """A JSON column (JSON on SQLite, JSONB on PostgreSQL) read back digit for digit: non-integer numbers
    come back as the Decimals that were written, never rounded.

    The drivers would parse the stored document themselves (PostgreSQL's jsonb loader, SQLite's
    ``json.loads``) and round numbers of more than 15-17 significant digits. So the column is selected as
    its text (``CAST(... AS TEXT)``; jsonb keeps a number's digits) and decoded by :func:`decode_json`.
    Written like any JSON column, through the engine's ``json_serializer`` (:func:`exact_json`).
    """

    impl = JSON
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        return dialect.type_descriptor(JSONB() if dialect.name == "postgresql" else JSON())

    def column_expression(self, column: ColumnElement[Any]) -> ColumnElement[Any]:
        return type_coerce(cast(column, Text), self)  # the text, then this type's result processor

    def result_processor(self, dialect: Dialect, coltype: object) -> Any:
        return _decode_or_none  # instead of the driver's JSON parsing, not after it


def _decode_or_none(value: str | None) -> Any:
    return None if value is None else decode_json(value)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC instants in, timezone-aware UTC instants out (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class DecimalString(TypeDecorator[Decimal]):
    """Exact decimals stored as canonical strings, so SQLite never turns them into binary floats."""

    impl = String(64)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        if value is None:
            return None
        if not isinstance(value, Decimal):
            raise TypeError(f"DecimalString needs a Decimal, got {type(value).__name__}")
        return format(value.normalize(), "f")

    def process_result_value(self, value: str | None, dialect: Dialect) -> Decimal | None:
        return None if value is None else Decimal(value)
