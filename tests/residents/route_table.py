"""What tests/access/test_every_route.py needs to call the phone app's routes: their table
entries and the objects they act on (made fresh per call through the API, as the root)."""

from __future__ import annotations

import itertools
from typing import Any

import httpx

from xueliang.access.policy import Action

A = Action
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
_n = itertools.count(1)
OPEN = {
    ("POST", "/api/v1/residents/join"): "residents join with an invitation code (80 random bits, stored hashed; "
                                        "rate-limited per client and overall: tests/residents)",
    ("GET", "/m/"): "the phone app's page (static)",
    ("GET", "/m/{rest:path}"): "the phone app's page for its client-side routes, its manifest and service worker (static)",
}
#: The report's form fields, sent as multipart parts (the photo among them).
REPORT = {"category": (None, "治安"), "longitude": (None, "117.2"), "latitude": (None, "31.8"),
          "description": (None, "路灯坏了"), "photo": ("p.png", PNG, "image/png")}


def table(N: Any) -> dict[tuple[str, str], Any]:
    """The phone app's routes and what each needs (``N`` is the table's constructor)."""
    M = A.RESIDENTS_MANAGE
    return {
        ("POST", "/api/v1/residents/codes"): N(M, ok=(201,), body={"division_code": "340200000001", "place": "小区"}),
        ("GET", "/api/v1/residents/codes"): N(M),
        ("DELETE", "/api/v1/residents/codes/{code_id}"): N(M, ok=(204,), make="resident_code"),
        ("GET", "/api/v1/residents/cameras"): N(A.LIVE_VIEW),
        ("POST", "/api/v1/mobile/reports"): N(A.INCIDENTS_REPORT, ok=(201,), make="resident_report"),
        ("GET", "/api/v1/mobile/reports"): N(A.INCIDENTS_REPORT),
        ("PUT", "/api/v1/mobile/position"): N(A.GRID_POSITION, body={"longitude": 117.2, "latitude": 31.8}),
        ("GET", "/api/v1/mobile/positions"): N(A.INCIDENTS_MANAGE),
    }


def make(e: Any, what: str) -> tuple[dict[str, Any], Any, Any]:
    """Path values, a body and files for a call."""
    n = next(_n)
    if what == "resident_code":
        r = httpx.post(e.base + "/api/v1/residents/codes", headers=e.root(), timeout=20,
                       json={"division_code": "340200000001", "place": f"小区{n}"})
        assert r.status_code == 201, r.text
        return {"code_id": r.json()["id"]}, None, None
    if what == "resident_report":
        return {}, None, dict(REPORT)
    raise AssertionError(what)
