from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from xueliang.app import Platform
from xueliang.config import Settings


@pytest.fixture
async def platform(db_url: str, tmp_path: Path) -> AsyncIterator[Platform]:
    settings = Settings(
        database={"url": db_url},
        storage={"var_dir": tmp_path},
        secret_key="test-secret-0123456789abcdef",
        bootstrap_admin="root",
        bootstrap_password="Root-pass-1",
        sip={"enabled": False},
        media={"enabled": False},
        # Access tests turn TOTP enforcement on themselves (tests/access).
        access={"totp_required_roles": []},
    )
    p = Platform(settings)
    await p.start(migrate=False)
    yield p
    await p.stop()


@pytest.fixture
async def client(platform: Platform) -> AsyncIterator[httpx.AsyncClient]:
    from xueliang.api.main import create_app

    app = create_app(platform, manage_lifecycle=False)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as c:
        yield c


async def login(
    client: httpx.AsyncClient, user: str = "root", password: str = "Root-pass-1"
) -> dict[str, str]:
    r = await client.post("/api/v1/auth/login", json={"username": user, "password": password})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


@pytest.fixture
async def admin(client: httpx.AsyncClient) -> dict[str, str]:
    return await login(client)
