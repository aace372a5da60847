"""Every route authorizes: walking the OpenAPI document with a user whose role allows nothing,
every operation is refused with 403 by the one authorize function — except the few a person
needs for themselves (listed here with the reason). tests/api/test_api.py proves the other
half: nothing answers without a token."""

from __future__ import annotations

import httpx
from sqlalchemy import update

from tests.access.conftest import SCHOOL, user
from xueliang.api.main import OPEN_ROUTES
from xueliang.db.tables import User

#: Routes about the caller themself: they need a valid token, not an action.
SELF_SERVICE = {
    ("GET", "/api/v1/auth/me"),
    ("POST", "/api/v1/auth/logout"),
    ("POST", "/api/v1/auth/logout-everywhere"),
    ("POST", "/api/v1/auth/password"),
    ("POST", "/api/v1/auth/totp/setup"),
    ("GET", "/api/v1/roles"),
    ("GET", "/api/v1/access/rules"),
    ("GET", "/api/v1/access/check"),
    ("GET", "/api/v1/approvals"),  # one's own requests
    ("POST", "/api/v1/approvals"),  # asking; the role decides what may be asked
    ("GET", "/api/v1/approvals/{request_id}"),  # 404 unless one's own
    ("POST", "/api/v1/approvals/{request_id}/withdraw"),  # 404 unless one's own
    ("GET", "/api/v1/audit/transparency"),  # 403 unless auditor or the owning department
}
VALUES = {
    "channel_id": SCHOOL, "device_id": "34010200001320000001", "code": "34", "unit_id": "1",
    "platform_id": "1", "user_id": "1", "grant_id": "1", "token_id": "1", "request_id": "1",
    "name": "live/x", "resource": "init.mp4", "fmt": "csv", "ssrc": "1", "patrol_id": "1", "event_id": "1",
}

#: Routes that authorize inside (after loading the resource) need a body that validates.
WHEN = {"start": "2026-01-01T00:00:00", "end": "2026-01-01T01:00:00"}
BODIES = {
    "/api/v1/channels/{channel_id}/playback": WHEN,
    "/api/v1/channels/{channel_id}/download": WHEN,
    "/api/v1/streams/{name}/control": {"action": "pause"},
}


async def test_every_route_calls_authorize(client: httpx.AsyncClient, platform) -> None:  # type: ignore[no-untyped-def]
    h = await user(platform, "nobody", "resident", division_code="340102001001")
    async with platform.sessions() as s, s.begin():
        await s.execute(update(User).where(User.username == "nobody").values(role="no-such-role"))
    platform.users._cache.clear()
    spec = (await client.get("/api/v1/openapi.json")).json()
    checked = 0
    for path, ops in spec["paths"].items():
        if path in OPEN_ROUTES:
            continue
        url = path
        for k, v in VALUES.items():
            url = url.replace("{" + k + "}", v)
        assert "{" not in url, f"give a value for {path}"
        for method in ops:
            if (method.upper(), path) in SELF_SERVICE:
                continue
            r = await client.request(method.upper(), url, headers=h, params=WHEN, json=BODIES.get(path))
            assert r.status_code == 403, (method, path, r.status_code, r.text[:200])
            assert r.headers["content-type"].startswith("application/problem+json")
            checked += 1
    assert checked > 60
