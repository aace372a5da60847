"""Rate limits, security headers, HSTS on HTTPS, secrets kept out of logs."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest

from xueliang.access.redact import RedactingFilter, redact


@pytest.fixture
def access_config() -> dict[str, Any]:
    return {"totp_required_roles": [], "login_burst": 3, "login_refill_seconds": 60, "api_burst": 40, "api_rate": 1}


async def test_login_and_api_rate_limits(client: httpx.AsyncClient, platform) -> None:  # type: ignore[no-untyped-def]
    codes = [(await client.post("/api/v1/auth/login", json={"username": "x", "password": "y"})).status_code
             for _ in range(5)]
    assert codes[:3] == [401, 401, 401] and codes[3:] == [429, 429]
    r = await client.post("/api/v1/auth/login", json={"username": "x", "password": "y"})
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
    assert r.headers["content-type"].startswith("application/problem+json")
    codes = [(await client.get("/api/v1/channels")).status_code for _ in range(40)]
    assert 429 in codes and codes[0] == 401
    await platform.access.audit.flush()
    from sqlalchemy import func, select

    from xueliang.db.tables import AuditRecord

    async with platform.sessions() as s:
        n = await s.scalar(select(func.count()).select_from(AuditRecord).where(AuditRecord.action == "http.rate_limited"))
    assert n == 2  # once per address and kind per minute, not once per refusal


async def test_security_headers(client: httpx.AsyncClient) -> None:
    r = await client.get("/healthz")
    assert "default-src 'self'" in r.headers["content-security-policy"]
    assert r.headers["x-content-type-options"] == "nosniff"
    assert "strict-transport-security" not in r.headers
    r = await client.get("/api/v1/channels")
    assert r.headers["cache-control"] == "no-store"
    r = await client.get("/api/v1/docs")
    assert "script-src 'self';" in r.headers["content-security-policy"]  # its own: no CDN (test_docs_local)
    https = httpx.AsyncClient(transport=client._transport, base_url="https://test")
    async with https:
        r = await https.get("/healthz")
    assert r.headers["strict-transport-security"].startswith("max-age=31536000")


def test_secrets_are_redacted(caplog: pytest.LogCaptureFixture) -> None:
    assert "abc.def" not in redact("Authorization: Bearer abc.defghijklmnop")
    assert redact("GET /x?token=eyJabc.sig&y=1") == "GET /x?token=***&y=1"
    assert "s3cret" not in redact('{"username": "a", "password": "s3cret"}')
    assert "xlt_1_" not in redact("token xlt_12_AbCdEfGhIjKlMnOpQrStUvWxYz")
    log = logging.getLogger("xueliang.test")
    h = logging.StreamHandler()
    h.addFilter(RedactingFilter())
    rec = log.makeRecord("x", logging.INFO, __file__, 1, "login with password=%s", ("hunter2",), None)
    h.filter(rec)
    assert "hunter2" not in rec.getMessage()
