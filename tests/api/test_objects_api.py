"""The platform's files in object storage, through the API: reports kept in a real S3 server
(SeaweedFS), and a store that does not answer costs its routes a 503, not the platform."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.objects.seaweed import ACCESS_KEY, SECRET_KEY, SeaweedServer
from xueliang.app import Platform
from xueliang.config import Settings
from xueliang.objects.s3 import S3Objects


def _settings(db_url: str, tmp_path: Path, objects: dict[str, object]) -> Settings:
    return Settings(database={"url": db_url}, storage={"var_dir": tmp_path, "objects": objects},
                    secret_key="test-secret-0123456789abcdef", bootstrap_admin="root",
                    bootstrap_password="Root-pass-1", sip={"enabled": False}, media={"enabled": False},
                    access={"totp_required_roles": []})


async def _client(p: Platform) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, str]]]:
    from xueliang.api.main import create_app

    await p.start(migrate=False)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(p, manage_lifecycle=False)),
                                     base_url="http://test") as c:
            r = await c.post("/api/v1/auth/login", json={"username": "root", "password": "Root-pass-1"})
            assert r.status_code == 200, r.text
            yield c, {"Authorization": f"Bearer {r.json()['access_token']}"}
    finally:
        await p.stop()


@pytest.fixture
async def on_s3(db_url: str, tmp_path: Path, seaweed: SeaweedServer) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, str], S3Objects]]:
    bucket = f"xl-{uuid.uuid4().hex[:10]}"
    p = Platform(_settings(db_url, tmp_path, {"kind": "s3", "endpoint_url": seaweed.endpoint, "bucket": bucket,
                                               "access_key": ACCESS_KEY, "secret_key": SECRET_KEY}))
    async for c, h in _client(p):
        assert isinstance(p.objects, S3Objects)
        yield c, h, p.objects


async def test_reports_are_kept_in_the_bucket_and_served_from_it(on_s3: tuple[httpx.AsyncClient, dict[str, str], S3Objects],
                                                                tmp_path: Path) -> None:
    c, root, store = on_s3
    made = await c.post("/api/v1/reports", headers=root, json={"kind": "weekly", "date": "2026-11-18", "format": "xlsx"})
    assert made.status_code == 201, made.text
    # (the scheduler may have made yesterday's daily report beside it, as it does on start)
    keys = [o.key for o in await store.list("reports/")]
    assert "reports/weekly-2026-11-16.xlsx" in keys, keys
    got = await c.get(f"/api/v1/reports/{made.json()['id']}", headers=root)
    assert got.status_code == 200 and got.content == await store.get("reports/weekly-2026-11-16.xlsx")
    assert got.content[:2] == b"PK"  # an xlsx is a zip
    assert 'filename="weekly-2026-11-16.xlsx"' in got.headers["content-disposition"]
    assert not list(tmp_path.rglob("*.xlsx"))
    # Gone from the store (deleted by hand, say): a 404, not a broken download.
    await store.delete("reports/weekly-2026-11-16.xlsx")
    assert (await c.get(f"/api/v1/reports/{made.json()['id']}", headers=root)).status_code == 404


async def test_an_unreachable_store_costs_its_routes_a_503_and_nothing_else(db_url: str, tmp_path: Path) -> None:
    p = Platform(_settings(db_url, tmp_path, {"kind": "s3", "endpoint_url": "http://127.0.0.1:9", "bucket": "xueliang",
                                               "access_key": "a", "secret_key": "b", "timeout": 1}))
    async for c, root in _client(p):
        r = await c.post("/api/v1/reports", headers=root, json={"kind": "daily", "date": "2026-11-18", "format": "pdf"})
        assert r.status_code == 503, r.text
        assert "object storage" in r.json()["detail"]
        listed = await c.get("/api/v1/reports", headers=root)
        assert listed.status_code == 200 and listed.json() == []  # no report row without its file
        assert (await c.get("/api/v1/devices", headers=root)).status_code == 200
