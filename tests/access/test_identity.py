"""Identity: forged, expired and misused tokens; logout of one token and of all; API tokens
with scopes; TOTP enrollment and login; password change."""

from __future__ import annotations

import time

import httpx

from tests.access.conftest import HOSPITAL, PW, SCHOOL, login, user
from xueliang.access import totp
from xueliang.access.tokens import TokenSigner

ME = "/api/v1/auth/me"


async def test_forged_expired_and_misused_tokens(client: httpx.AsyncClient, platform) -> None:  # type: ignore[no-untyped-def]
    good = await login(client)
    assert (await client.get(ME, headers=good)).status_code == 200
    token = good["Authorization"].split()[1]
    body, sig = token.split(".")
    # Another user id with the old signature; a token signed with another key; garbage.
    import base64
    import json

    claims = json.loads(base64.urlsafe_b64decode(body + "=="))
    claims["u"] = 999
    forged_body = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    other_key = TokenSigner(b"another-secret-0123456789").issue(1, 0, 3600)
    expired = platform.signer.issue(1, 0, ttl=-10)
    setup = platform.signer.issue(1, 0, 600, kind="totp-setup")
    media = platform.signer.issue(1, 0, 600, kind="media", scope="/api/v1/channels/x/")
    for bad in (f"{forged_body}.{sig}", other_key, expired, "not-a-token", "a.b.c", "", setup, media, "xlt_1_" + "x" * 40):
        r = await client.get(ME, headers={"Authorization": f"Bearer {bad}"})
        assert r.status_code == 401, (bad, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
    # A media token opens only its own URL prefix, through ?token=.
    r = await client.get(ME, params={"token": media})
    assert r.status_code == 401 and "URL" in r.json()["detail"]


async def test_logout_one_and_everywhere(client: httpx.AsyncClient, platform) -> None:  # type: ignore[no-untyped-def]
    a = await login(client)
    b = await login(client)
    assert (await client.post("/api/v1/auth/logout", headers=a)).status_code == 204
    assert (await client.get(ME, headers=a)).status_code == 401
    assert (await client.get(ME, headers=b)).status_code == 200
    # Another process would learn the revocation from the table.
    platform.users.revoked.clear()
    await platform.users.load_revoked()
    assert (await client.get(ME, headers=a)).status_code == 401
    assert (await client.post("/api/v1/auth/logout-everywhere", headers=b)).status_code == 204
    assert (await client.get(ME, headers=b)).status_code == 401


async def test_disabling_or_changing_a_user_revokes_tokens(client: httpx.AsyncClient, platform) -> None:  # type: ignore[no-untyped-def]
    admin = await login(client)
    h = await user(platform, "edu", "department_user", department="教育局")
    me = (await client.get(ME, headers=h)).json()
    r = await client.patch(f"/api/v1/users/{me['id']}", json={"department": "卫健委"}, headers=admin)
    assert r.status_code == 200 and r.json()["department"] == "卫健委"
    assert (await client.get(ME, headers=h)).status_code == 401
    h2 = await login(client, "edu", PW)
    assert (await client.get(ME, headers=h2)).json()["department"] == "卫健委"
    await client.patch(f"/api/v1/users/{me['id']}", json={"disabled": True}, headers=admin)
    assert (await client.get(ME, headers=h2)).status_code == 401
    r = await client.post("/api/v1/auth/login", json={"username": "edu", "password": PW})
    assert r.status_code == 401 and "disabled" in r.json()["detail"]


async def test_api_tokens_with_scopes(client: httpx.AsyncClient, platform) -> None:  # type: ignore[no-untyped-def]
    admin = await login(client)
    r = await client.post(
        "/api/v1/users",
        json={"username": "dispatch120", "password": "Dispatch-pass-1", "role": "system",
              "department": "卫健委", "is_system": True},
        headers=admin,
    )
    uid = r.json()["id"]
    # A token never widens its owner's role.
    r = await client.post("/api/v1/access/tokens", json={"user_id": uid, "name": "x", "scopes": ["registry.manage"]},
                          headers=admin)
    assert r.status_code == 422
    r = await client.post("/api/v1/access/tokens", json={"username": "dispatch120", "name": "120 dispatch",
                                                        "scopes": ["registry.read"]}, headers=admin)
    assert r.status_code == 201, r.text
    secret = r.json()["token"]
    tid = r.json()["id"]
    assert secret.startswith("xlt_")
    listed = (await client.get("/api/v1/access/tokens", headers=admin)).json()
    assert all("token" not in t and "hash" not in str(t) for t in listed)
    t = {"Authorization": f"Bearer {secret}"}
    me = (await client.get(ME, headers=t)).json()
    assert me["actions"] == ["registry.read"] and me["api_token"] == tid
    # Its owner's scope applies: the hospital's camera, not the school's.
    assert (await client.get(f"/api/v1/channels/{HOSPITAL}", headers=t)).status_code == 200
    assert (await client.get(f"/api/v1/channels/{SCHOOL}", headers=t)).status_code == 404
    # stats.read is in the role but not in the token's scopes.
    assert (await client.get("/api/v1/statistics", headers=t)).status_code == 403
    assert (await client.get("/metrics", headers=t)).status_code == 403
    wrong = secret[:-4] + ("AAAA" if not secret.endswith("AAAA") else "BBBB")
    assert (await client.get(ME, headers={"Authorization": f"Bearer {wrong}"})).status_code == 401
    assert (await client.delete(f"/api/v1/access/tokens/{tid}", headers=admin)).status_code == 204
    assert (await client.get(ME, headers=t)).status_code == 401
    # Expired.
    from datetime import UTC, datetime, timedelta

    row, secret2 = await platform.access.api_tokens.create(uid, "short", ["registry.read"],
                                                           expires_at=datetime.now(UTC) + timedelta(seconds=1))
    assert (await client.get(ME, headers={"Authorization": f"Bearer {secret2}"})).status_code == 200
    platform.access.api_tokens._cache[row.id].expires = time.time() - 1
    assert (await client.get(ME, headers={"Authorization": f"Bearer {secret2}"})).status_code == 401
    # Stored hashed: the secret is nowhere in the table.
    from sqlalchemy import select

    from xueliang.db.tables import ApiToken

    async with platform.sessions() as s:
        hashes = (await s.scalars(select(ApiToken.token_hash))).all()
    assert all(secret.split("_", 2)[2] not in h for h in hashes)


def test_totp_rfc6238_vectors() -> None:
    import base64

    secret = base64.b32encode(b"12345678901234567890").decode()
    for t, code in [(59, "94287082"), (1111111109, "07081804"), (1234567890, "89005924"), (2000000000, "69279037")]:
        assert totp.hotp(secret, t // 30, digits=8) == code
    s = totp.new_secret()
    now = 1_700_000_000.0
    step = totp.match(s, totp.code_at(s, now), now)
    assert step == int(now // 30)
    assert totp.match(s, totp.code_at(s, now), now, after_step=step) is None  # used once
    assert totp.match(s, totp.code_at(s, now - 30), now) is not None  # one step of drift
    assert totp.match(s, totp.code_at(s, now - 90), now) is None
    assert totp.match(s, "12345", now) is None and totp.match(s, "abcdef", now) is None
    uri = totp.provisioning_uri(s, "root", "xueliang")
    assert uri.startswith("otpauth://totp/xueliang%3Aroot?secret=") and "issuer=xueliang" in uri
