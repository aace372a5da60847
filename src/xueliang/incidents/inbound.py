"""What callers send: a case pushed by an emergency system (the documented inbound schema,
docs/api.md) and a case the duty operator enters. Strict: unknown fields, wrong types and
out-of-range values are refused with the field named; the category is checked against the
configured list by the service."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

Priority = Literal["urgent", "high", "normal", "low"]
#: Printable text without control characters.
_REF = r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,63}$"


def _text(v: str) -> str:
    if any((ord(c) < 32 and c not in "\n\t") or ord(c) == 127 for c in v):
        raise ValueError("must not hold control characters")
    v = v.strip()
    if not v:
        raise ValueError("must not be empty")
    return v


class Reporter(BaseModel):
    """Who reported it; absent, the reporter stays anonymous."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, max_length=64)
    phone: str | None = Field(default=None, max_length=32, pattern=r"^[0-9+\- ()]{1,32}$")


class Point(BaseModel):
    model_config = ConfigDict(extra="forbid")
    longitude: float = Field(ge=-180, le=180)
    latitude: float = Field(ge=-90, le=90)

    @field_validator("longitude", "latitude")
    @classmethod
    def _finite(cls, v: float) -> float:
        if not math.isfinite(v):
            raise ValueError("must be a finite number")
        return v


class CaseIn(Point):
    """A case taken in by the centre (hotline entry)."""

    category: str = Field(min_length=1, max_length=32)
    description: str = Field(min_length=1, max_length=4000)
    address: str | None = Field(default=None, max_length=400)
    priority: Priority = "normal"
    reporter: Reporter | None = None
    #: The division, when the operator knows it better than the map (GB/T 2260 code or a grid's).
    division_code: str | None = Field(default=None, pattern=r"^[0-9]{2,20}$")

    @field_validator("description", "category", "address")
    @classmethod
    def _clean(cls, v: str | None) -> str | None:
        return None if v is None else _text(v)


class InboundCase(CaseIn):
    """A case pushed by an emergency system (110/119/120/122): its own reference makes the push
    idempotent (the same reference again answers with the case already made)."""

    reference: str = Field(pattern=_REF)
    reported_at: datetime | None = None
    division_code: None = None  # the platform finds the division itself


def parse_inbound(body: bytes) -> InboundCase:
    """The body as an InboundCase; ValidationError or ValueError (not JSON) otherwise."""
    return InboundCase.model_validate_json(body)


def explain(exc: ValidationError) -> str:
    """One line naming each bad field (for the problem's detail)."""
    parts = []
    for e in exc.errors()[:10]:
        where = ".".join(str(x) for x in e.get("loc", ())) or "body"
        parts.append(f"{where}: {e.get('msg', 'invalid')}")
    return "; ".join(parts)
