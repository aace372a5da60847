"""TOTP required for administrators and auditors: enrollment at first login, then codes."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from tests.access.conftest import PW
from xueliang.access import totp

LOGIN = "/api/v1/auth/login"


@pytest.fixture
def access_config() -> dict[str, Any]:
    return {"totp_required_roles": ["administrator", "auditor"]}


async def test_enrollment_then_login_with_codes(client: httpx.AsyncClient, platform) -> None:  # type: ignore[no-untyped-def]
    r = await client.post(LOGIN, json={"username": "root", "password": "Root-pass-1"})
    assert r.status_code == 200
    body = r.json()
    assert body["totp_setup_required"] is True and "access_token" not in body
    assert body["provisioning_uri"].startswith("otpauth://totp/")
    secret = body["secret"]
    # The setup token opens nothing but enrollment.
    setup = body["setup_token"]
    assert (await client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {setup}"})).status_code == 401
    bad = await client.post("/api/v1/auth/totp/enroll", json={"setup_token": setup, "code": "000000"})
    assert bad.status_code == 422
    code = totp.code_at(secret)
    r = await client.post("/api/v1/auth/totp/enroll", json={"setup_token": setup, "code": code})
    assert r.status_code == 200, r.text
    h = {"Authorization": f"Bearer {r.json()['access_token']}"}
    assert (await client.get("/api/v1/auth/me", headers=h)).status_code == 200
    # From now on the code is needed, and each code works once.
    r = await client.post(LOGIN, json={"username": "root", "password": "Root-pass-1"})
    assert r.status_code == 401 and r.json()["type"].endswith("totp-required")
    r = await client.post(LOGIN, json={"username": "root", "password": "Root-pass-1", "totp": code})
    assert r.status_code == 401 and "used" in r.json()["detail"]
    next_code = totp.code_at(secret, time.time() + 30)
    r = await client.post(LOGIN, json={"username": "root", "password": "Root-pass-1", "totp": next_code})
    assert r.status_code == 200 and r.json()["access_token"]
    r = await client.post(LOGIN, json={"username": "root", "password": "wrong", "totp": next_code})
    assert r.status_code == 401
    # Roles outside the list log in with a password only; an administrator can reset a lost phone.
    u = await platform.users.create("duty", PW, "operator")
    r = await client.post(LOGIN, json={"username": "duty", "password": PW})
    assert r.status_code == 200 and r.json()["access_token"]
    admin = {"Authorization": f"Bearer {r.json()['access_token']}"}
    assert (await client.delete(f"/api/v1/users/{u.id}/totp", headers=admin)).status_code == 403
    root = await platform.users.by_name("root")
    assert (await client.delete(f"/api/v1/users/{root.id}/totp", headers=h)).status_code == 204
    assert (await client.get("/api/v1/auth/me", headers=h)).status_code == 401  # sessions ended
    r = await client.post(LOGIN, json={"username": "root", "password": "Root-pass-1"})
    assert r.json()["totp_setup_required"] is True
    # Logins, failures and enrollment are in the audit.
    await platform.access.audit.flush()
    from sqlalchemy import select

    from xueliang.db.tables import AuditRecord

    async with platform.sessions() as s:
        rows = (await s.execute(select(AuditRecord.action, AuditRecord.outcome, AuditRecord.actor)
                                .where(AuditRecord.action.like("auth.%")).order_by(AuditRecord.seq))).all()
    kinds = [(a, o) for a, o, _ in rows]
    assert ("auth.totp.enroll", "failed") in kinds and ("auth.totp.enroll", "ok") in kinds
    assert ("auth.login", "partial") in kinds and ("auth.login", "failed") in kinds and ("auth.login", "ok") in kinds


async def test_voluntary_setup(client: httpx.AsyncClient, platform) -> None:  # type: ignore[no-untyped-def]
    await platform.users.create("edu", PW, "department_user", department="教育局")
    r = await client.post(LOGIN, json={"username": "edu", "password": PW})
    h = {"Authorization": f"Bearer {r.json()['access_token']}"}
    r = await client.post("/api/v1/auth/totp/setup", headers=h)
    assert r.status_code == 200
    r2 = await client.post("/api/v1/auth/totp/enroll",
                           json={"setup_token": r.json()["setup_token"], "code": totp.code_at(r.json()["secret"])})
    assert r2.status_code == 200
    assert (await client.post("/api/v1/auth/totp/setup", headers=h)).status_code == 409
    r = await client.post(LOGIN, json={"username": "edu", "password": PW})
    assert r.status_code == 401 and r.json()["totp_required"] is True


async def test_totp_secrets_are_sealed_at_rest(platform) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import select, update

    from xueliang.db.tables import User
    from xueliang.sealing import Sealer, SealError

    users = platform.users
    a = await users.create("alice", PW, "operator")
    b = await users.create("bob", PW, "operator")
    secret = await users.begin_totp(a.id)
    async with platform.sessions() as s:
        stored = await s.scalar(select(User.totp_secret).where(User.id == a.id))
    assert stored.startswith("v1:") and secret not in stored  # a database copy does not give it away
    now = time.time()
    assert await users.check_totp(a.id, totp.code_at(secret, now), confirm=True)

    # Moved to another user's row, it does not open (bound to its row); nothing crashes.
    async with platform.sessions() as s, s.begin():
        await s.execute(update(User).where(User.id == b.id).values(totp_secret=stored,
                                                                  totp_confirmed_at=User.totp_confirmed_at))
    assert not await users.check_totp(b.id, totp.code_at(secret, now), confirm=True)
    # Another platform secret cannot open it either.
    with pytest.raises(SealError):
        Sealer(b"another-secret-0123456789").open(stored, context=f"user:{a.id}:totp")

    # A secret stored in clear before sealing existed still works, and is sealed at its next code.
    plain = totp.new_secret()
    async with platform.sessions() as s, s.begin():
        await s.execute(update(User).where(User.id == b.id).values(totp_secret=plain, totp_confirmed_at=None,
                                                                  totp_last_step=None))
    assert await users.check_totp(b.id, totp.code_at(plain, now), confirm=True)
    async with platform.sessions() as s:
        resealed = await s.scalar(select(User.totp_secret).where(User.id == b.id))
    assert resealed.startswith("v1:") and plain not in resealed
    assert await users.check_totp(b.id, totp.code_at(plain, now + 30))
