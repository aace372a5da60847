"""A platform for the incident tests (SQLite and PostgreSQL), served over real HTTP when asked."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.health import test_notify
from tests.health.test_notify import serve
from xueliang.app import Platform
from xueliang.config import Settings
from xueliang.db.tables import Channel, Unit

PW = "Harbour-Lamp-42"
#: A real SMTP receiver on loopback (aiosmtpd), the health notification tests' own.
smtp = test_notify.smtp


def settings(db_url: str, tmp_path: Path, *, objects: dict[str, Any] | None = None, **kw: Any) -> Settings:
    storage: dict[str, Any] = {"var_dir": tmp_path, **({"objects": objects} if objects else {})}
    base: dict[str, Any] = {"sip": {"enabled": False}, "media": {"enabled": False}, "scheduler": {"enabled": False},
                            "access": {"totp_required_roles": []}}
    return Settings(database={"url": db_url}, storage=storage, secret_key="test-secret-0123456789abcdef",
                    bootstrap_admin="root", bootstrap_password="Root-pass-1", **{**base, **kw})


@pytest.fixture(autouse=True)
def cheap_passwords(monkeypatch: pytest.MonkeyPatch) -> None:
    """Users are made by the dozen here: argon2 with its smallest cost (what is tested is who
    sees which case, not the hashing, which tests/access covers)."""
    from argon2 import PasswordHasher

    from xueliang.access import passwords

    monkeypatch.setattr(passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))


@pytest.fixture
async def platform(db_url: str, tmp_path: Path) -> AsyncIterator[Platform]:
    p = Platform(settings(db_url, tmp_path, incidents={"supervisor_emails": ["boss@example.org"]}))
    await p.start(migrate=False)
    p.access.api_limiter.rate = p.access.api_limiter.burst = 1e9
    yield p
    await p.stop()


@pytest.fixture
async def http(platform: Platform) -> AsyncIterator[httpx.AsyncClient]:
    """A real HTTP server (uvicorn on loopback) and a client of it."""
    from xueliang.api.main import create_app

    srv, task, port = await serve(create_app(platform, manage_lifecycle=False))
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=20) as c:
        yield c
    srv.should_exit = True
    await task


async def headers(platform: Platform, client: httpx.AsyncClient, name: str, role: str, **kw: Any) -> dict[str, str]:
    """A bearer token of user ``name`` (made with ``role`` the first time), issued directly: the
    login route's rate limit is not what these tests are about."""
    from xueliang.errors import NotFound

    try:
        u = await platform.users.by_name(name)
    except NotFound:
        u = await platform.users.create(name, PW, role, **kw)
    return {"Authorization": f"Bearer {platform.users.issue(u)}"}


#: Cameras of the little city: (id, lon, lat, department, division)
CAMERAS = [
    ("34020000001310000001", 117.2300, 31.8200, "城管局", "340102001"),  # at the case
    ("34020000001310000002", 117.2330, 31.8200, "公安局", "340102001"),  # ~280 m east
    ("34020000001310000003", 117.2300, 31.8240, "城管局", "340102002"),  # ~445 m north
    ("34020000001310000004", 117.2600, 31.8200, "城管局", "340102003"),  # ~2.8 km away
]


async def city(platform: Platform) -> None:
    async with platform.sessions() as s, s.begin():
        u = Unit(name="单位", department="城管局", division_code="340102")
        s.add(u)
        await s.flush()
        for cid, lon, lat, dept, div in CAMERAS:
            s.add(Channel(id=cid, name=cid[-4:], kind="camera", unit_id=u.id, department=dept, division_code=div,
                          longitude=lon, latitude=lat, status="ON", tier="street"))
