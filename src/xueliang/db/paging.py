"""Keyset pagination: the cursor is the sort key of the last row, so page 10,000 costs what
page 1 costs (an index seek), unlike OFFSET."""

from __future__ import annotations

import base64
import json
from typing import Any

from sqlalchemy import Select, tuple_
from sqlalchemy.orm import InstrumentedAttribute

from xueliang.errors import Invalid


def encode_cursor(values: list[Any]) -> str:
    return (
        base64.urlsafe_b64encode(json.dumps(values, separators=(",", ":")).encode())
        .decode()
        .rstrip("=")
    )


def decode_cursor(cursor: str, n: int) -> list[Any]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Invalid("malformed cursor") from exc
    if not isinstance(values, list) or len(values) != n:
        raise Invalid("malformed cursor")
    return values


def keyset(
    stmt: Select[Any], keys: list[InstrumentedAttribute[Any]], cursor: str | None, limit: int
) -> Select[Any]:
    """Order ``stmt`` by ``keys`` and start after ``cursor``; fetch one extra row to know if there is more."""
    if cursor:
        values = decode_cursor(cursor, len(keys))
        if len(keys) == 1:
            stmt = stmt.where(keys[0] > values[0])
        else:
            stmt = stmt.where(tuple_(*keys) > tuple_(*values))
    return stmt.order_by(*keys).limit(limit + 1)


def page_of(rows: list[Any], keys: list[str], limit: int) -> tuple[list[Any], str | None]:
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        return rows, encode_cursor([getattr(last, k) for k in keys])
    return rows, None
