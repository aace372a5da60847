from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from xueliang.app import Platform
from xueliang.config import Settings
from xueliang.maps import basemap
from xueliang.sim import city

ADMIN = ("root", "Root-pass-1")


@pytest.fixture(scope="session")
def demo_divisions() -> list[dict[str, object]]:
    return city.generate().divisions


@pytest.fixture(scope="session")
def small_basemap(tmp_path_factory: pytest.TempPathFactory, demo_divisions: list[dict[str, object]]) -> Path:
    """The demo city's basemap at zooms 10-12 (quick to draw: the same code as the demo's)."""
    path = tmp_path_factory.mktemp("basemap") / "city.mbtiles"
    basemap.generate(path, demo_divisions, min_zoom=10, max_zoom=12)
    return path


@asynccontextmanager
async def map_platform(db_url: str, var_dir: Path, basemap_file: Path) -> AsyncIterator[Platform]:
    """A platform serving ``basemap_file``, SIP and media off, the admin bootstrapped."""
    settings = Settings(
        database={"url": db_url}, storage={"var_dir": var_dir}, secret_key="test-secret-0123456789abcdef",
        bootstrap_admin=ADMIN[0], bootstrap_password=ADMIN[1], sip={"enabled": False}, media={"enabled": False},
        access={"totp_required_roles": []}, map={"basemap": str(basemap_file)},
    )
    p = Platform(settings)
    await p.start(migrate=False)
    try:
        yield p
    finally:
        await p.stop()


@asynccontextmanager
async def api_client(platform: Platform) -> AsyncIterator[httpx.AsyncClient]:
    from xueliang.api.main import create_app

    app = create_app(platform, manage_lifecycle=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as c:
        yield c


@pytest.fixture
async def platform(db_url: str, tmp_path: Path, small_basemap: Path) -> AsyncIterator[Platform]:
    async with map_platform(db_url, tmp_path, small_basemap) as p:
        yield p


@pytest.fixture
async def client(platform: Platform) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(platform) as c:
        yield c


async def login(client: httpx.AsyncClient, user: str, password: str) -> dict[str, str]:
    r = await client.post("/api/v1/auth/login", json={"username": user, "password": password})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


@pytest.fixture
async def admin(client: httpx.AsyncClient) -> dict[str, str]:
    return await login(client, *ADMIN)
