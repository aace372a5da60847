"""Fixtures for access tests: a platform with a small city, users of each kind, and a client
over the whole API (signalling and media off: a request that passes authorization then answers
503 or 404, one that does not answers 403 or, for a resource out of scope, 404)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import insert

from xueliang.app import Platform
from xueliang.config import Settings
from xueliang.db.tables import Channel, Device, Division, Unit

PW = "Test-pass-123"

SCHOOL = "34010200011320000001"  # 教育局, township 340102001, class II street
SCHOOL_KEY = "34010200021320000002"  # 教育局, township 340102002, class I key site, building
HOSPITAL = "34010200021320000003"  # 卫健委, township 340102002, class II
LOOKOUT = "34010300001320000004"  # 公安局, county 340103, class I, high lookout
VILLAGE = "34010200011320000005"  # no department, village 340102001001, class III public (A)
GROUPED = "34010300001320000006"  # 公安局, in catalog group G1 (under G0)
DEV_SCHOOL = "34010200011180000001"  # NVR of the school (unit 1, township 340102001)
DEV_HOSPITAL = "34010200021180000002"  # NVR of the hospital (unit 2, township 340102002)
G0 = "34010300002150000001"
G1 = "34010300002160000002"


@pytest.fixture
def access_config() -> dict[str, Any]:
    return {"totp_required_roles": []}


@pytest.fixture
async def platform(db_url: str, tmp_path: Path, access_config: dict[str, Any]) -> AsyncIterator[Platform]:
    settings = Settings(
        database={"url": db_url},
        storage={"var_dir": tmp_path},
        secret_key="test-secret-0123456789abcdef",
        bootstrap_admin="root",
        bootstrap_password="Root-pass-1",
        sip={"enabled": False},
        media={"enabled": False},
        access=access_config,
    )
    p = Platform(settings)
    await p.start(migrate=False)
    await seed(p)
    yield p
    await p.stop()


async def seed(p: Platform) -> None:
    divs = [
        ("34", "省", "province", None), ("3401", "市", "city", "34"),
        ("340102", "甲区", "county", "3401"), ("340103", "乙区", "county", "3401"),
        ("340102001", "一镇", "township", "340102"), ("340102002", "二镇", "township", "340102"),
        ("340102001001", "一村", "village", "340102001"),
    ]
    async with p.sessions() as s, s.begin():
        await s.execute(insert(Division), [dict(code=c, name=n, level=lv, parent_code=pa) for c, n, lv, pa in divs])
        await s.execute(insert(Unit), [
            {"id": 1, "name": "一中", "department": "教育局", "division_code": "340102001"},
            {"id": 2, "name": "医院", "department": "卫健委", "division_code": "340102002"},
            {"id": 3, "name": "公安", "department": "公安局", "division_code": "340103"},
        ])
        await s.execute(insert(Device), [
            {"id": DEV_SCHOOL, "name": "学校NVR", "unit_id": 1},
            {"id": DEV_HOSPITAL, "name": "医院NVR", "unit_id": 2},
        ])
        base = {"kind": "camera", "coverage": "B", "tier": "street", "key_site": False, "status": "ON",
                "networked": True, "retention_days_required": 30, "parent_id": None, "unit_id": None}
        rows = [
            {**base, "id": SCHOOL, "name": "校门", "unit_id": 1, "department": "教育局",
             "division_code": "340102001", "point_class": 2},
            {**base, "id": SCHOOL_KEY, "name": "二中门", "unit_id": 1, "department": "教育局",
             "division_code": "340102002", "point_class": 1, "key_site": True, "tier": "building"},
            {**base, "id": HOSPITAL, "name": "医院门", "unit_id": 2, "department": "卫健委",
             "division_code": "340102002", "point_class": 2},
            {**base, "id": LOOKOUT, "name": "高点", "unit_id": 3, "department": "公安局",
             "division_code": "340103", "point_class": 1, "tier": "high"},
            {**base, "id": VILLAGE, "name": "村口", "department": None,
             "division_code": "340102001001", "point_class": 3, "coverage": "A"},
            {**base, "id": GROUPED, "name": "分组", "unit_id": 3, "department": "公安局",
             "division_code": "340103", "point_class": 2, "parent_id": G1},
            {**base, "id": G0, "name": "业务分组", "kind": "group", "department": "公安局",
             "division_code": "340103"},
            {**base, "id": G1, "name": "虚拟组织", "kind": "group", "department": "公安局",
             "division_code": "340103", "parent_id": G0},
        ]
        await s.execute(insert(Channel), rows)


@pytest.fixture
async def client(platform: Platform) -> AsyncIterator[httpx.AsyncClient]:
    from xueliang.api.main import create_app

    app = create_app(platform, manage_lifecycle=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as c:
        yield c


async def login(client: httpx.AsyncClient, user: str = "root", password: str = "Root-pass-1") -> dict[str, str]:
    r = await client.post("/api/v1/auth/login", json={"username": user, "password": password})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


async def user(platform: Platform, name: str, role: str, **kw: Any) -> dict[str, str]:
    """Create a user and return bearer headers for it (no login round trip)."""
    u = await platform.users.create(name, PW, role, **kw)
    return {"Authorization": f"Bearer {platform.users.issue(u)}"}


async def principal(platform: Platform, headers: dict[str, str]) -> Any:
    await platform.access.ready()
    return await platform.users.principal_for_token(headers["Authorization"].split(" ", 1)[1])


def purpose(text: str, case: str | None = None) -> dict[str, str]:
    from urllib.parse import quote

    h = {"X-Purpose": quote(text)}
    if case:
        h["X-Case"] = quote(case)
    return h
