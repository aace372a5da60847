from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.api.conftest import login
from xueliang.api.main import OPEN_ROUTES, create_app


async def test_every_route_needs_a_token(client: httpx.AsyncClient, platform) -> None:  # type: ignore[no-untyped-def]
    """Walk the OpenAPI document: every operation outside OPEN_ROUTES answers 401 without a token."""
    spec = (await client.get("/api/v1/openapi.json")).json()
    checked = 0
    for path, ops in spec["paths"].items():
        if path in OPEN_ROUTES:
            continue
        url = path.replace("{", "").replace("}", "")
        for method in ops:
            r = await client.request(method.upper(), url)
            assert r.status_code == 401, (method, path, r.status_code)
            assert r.headers["content-type"].startswith("application/problem+json")
            checked += 1
    assert checked > 30
    forged = {"Authorization": "Bearer eyJ1IjoxfQ.AAAA"}
    assert (await client.get("/api/v1/channels", headers=forged)).status_code == 401


async def test_login_lockout_and_problem_json(client: httpx.AsyncClient) -> None:
    for _ in range(5):
        r = await client.post("/api/v1/auth/login", json={"username": "root", "password": "wrong"})
        assert r.status_code == 401
    r = await client.post(
        "/api/v1/auth/login", json={"username": "root", "password": "Root-pass-1"}
    )
    assert r.status_code == 401 and "locked" in r.json()["detail"]
    assert r.json()["status"] == 401 and r.json()["title"] == "Unauthorized"


async def test_registry_crud_and_filters(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    h = admin
    for code, name in [("34", "省"), ("3401", "市"), ("340102", "区")]:
        assert (
            await client.put(
                f"/api/v1/divisions/{code}", json={"code": code, "name": name}, headers=h
            )
        ).status_code == 200
    r = await client.post(
        "/api/v1/units",
        json={
            "name": "一中",
            "category": "公共服务行业",
            "department": "教育局",
            "division_code": "340102",
        },
        headers=h,
    )
    assert r.status_code == 201 and r.json()["category"] == "public_service"
    unit_id = r.json()["id"]
    r = await client.post(
        "/api/v1/channels",
        json={
            "id": "34010200001320000001",
            "name": "校门",
            "unit_id": unit_id,
            "division_code": "340102",
            "point_class": 2,
            "tier": "street",
            "longitude": 117.2,
            "latitude": 31.8,
        },
        headers=h,
    )
    assert r.status_code == 201, r.text
    bad = await client.post("/api/v1/channels", json={"id": "123", "name": "x"}, headers=h)
    assert bad.status_code == 422 and "20 digits" in bad.json()["detail"]
    swapped = await client.post(
        "/api/v1/channels",
        json={"id": "34010200001320000002", "name": "x", "longitude": 31.8, "latitude": 117.2},
        headers=h,
    )
    assert swapped.status_code == 422 and "swapped" in swapped.json()["detail"]
    dup = await client.post(
        "/api/v1/channels", json={"id": "34010200001320000001", "name": "x"}, headers=h
    )
    assert dup.status_code == 409
    r = await client.get(
        "/api/v1/channels", params={"division": "3401", "class": 2, "with_total": True}, headers=h
    )
    assert r.json()["total"] == 1 and r.json()["items"][0]["department"] == "教育局"
    r = await client.patch(
        "/api/v1/channels/34010200001320000001", json={"status": "ON"}, headers=h
    )
    assert r.json()["status"] == "ON"
    assert (await client.get("/api/v1/channels/34010200001320000009", headers=h)).status_code == 404
    r = await client.get("/api/v1/statistics", params={"division": "3401"}, headers=h)
    assert (
        r.status_code == 200
        and r.json()["points"] == 1
        and r.json()["geo_labelling"]["rate"] == 1.0
    )
    r = await client.get("/api/v1/statistics.xlsx", headers=h)
    assert r.status_code == 200 and r.content[:2] == b"PK"
    assert (
        await client.delete("/api/v1/channels/34010200001320000001", headers=h)
    ).status_code == 204


async def test_department_user_sees_only_its_department(
    client: httpx.AsyncClient, admin: dict[str, str], platform
) -> None:  # type: ignore[no-untyped-def]
    h = admin
    await client.put("/api/v1/divisions/34", json={"code": "34", "name": "省"}, headers=h)
    a = (
        await client.post("/api/v1/units", json={"name": "学校", "department": "教育局"}, headers=h)
    ).json()["id"]
    b = (
        await client.post("/api/v1/units", json={"name": "医院", "department": "卫健委"}, headers=h)
    ).json()["id"]
    await client.post(
        "/api/v1/channels",
        json={"id": "34000000001320000001", "name": "学校门", "unit_id": a},
        headers=h,
    )
    await client.post(
        "/api/v1/channels",
        json={"id": "34000000001320000002", "name": "医院门", "unit_id": b},
        headers=h,
    )
    await platform.users.create("edu", "School-pass-12", "department_user", department="教育局")
    e = await login(client, "edu", "School-pass-12")
    items = (await client.get("/api/v1/channels", headers=e)).json()["items"]
    assert [i["id"] for i in items] == ["34000000001320000001"]
    assert (await client.get("/api/v1/channels/34000000001320000002", headers=e)).status_code == 404
    assert (await client.post("/api/v1/units", json={"name": "x"}, headers=e)).status_code == 403
    # units, their systems and devices: only those whose cameras the user may see
    assert [u["id"] for u in (await client.get("/api/v1/units", headers=e)).json()["items"]] == [a]
    # Out of scope answers exactly as a unit that does not exist.
    r, nope = await client.get(f"/api/v1/units/{b}", headers=e), await client.get("/api/v1/units/99999", headers=e)
    assert r.status_code == nope.status_code == 404
    assert r.json()["detail"].replace(str(b), "?") == nope.json()["detail"].replace("99999", "?")
    assert (await client.get(f"/api/v1/units/{a}", headers=e)).status_code == 200
    for unit, dev in ((a, "34000000001180000001"), (b, "34000000001180000002")):
        assert (await client.post("/api/v1/platforms", json={"unit_id": unit}, headers=h)).status_code == 201
        assert (await client.post("/api/v1/devices", json={"id": dev, "unit_id": unit}, headers=h)).status_code == 201
    await client.patch("/api/v1/channels/34000000001320000001", json={"device_id": "34000000001180000001"}, headers=h)
    await client.patch("/api/v1/channels/34000000001320000002", json={"device_id": "34000000001180000002"}, headers=h)
    assert [d["id"] for d in (await client.get("/api/v1/devices", headers=e)).json()["items"]] == ["34000000001180000001"]
    assert (await client.get("/api/v1/devices/34000000001180000002", headers=e)).status_code == 404
    assert [x["unit_id"] for x in (await client.get("/api/v1/platforms", headers=e)).json()["items"]] == [a]
    assert len((await client.get("/api/v1/units", headers=h)).json()["items"]) == 2  # administrators see all


async def test_healthz_open_and_metrics_guarded(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    assert (await client.get("/healthz")).json()["database"] == "ok"
    assert (await client.get("/metrics")).status_code == 401
    r = await client.get("/metrics", headers=admin)
    assert r.status_code == 200 and "xueliang_http_requests_total" in r.text


@pytest.mark.parametrize("limit", [0, 5000])
async def test_limits_are_validated(
    client: httpx.AsyncClient, admin: dict[str, str], limit: int
) -> None:
    r = await client.get("/api/v1/channels", params={"limit": limit}, headers=admin)
    assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json")


def test_app_builds_without_subsystems(platform) -> None:  # type: ignore[no-untyped-def]
    assert create_app(platform, manage_lifecycle=False).title == "xueliang"


async def test_console_points_near_and_config(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    h = admin
    await client.put("/api/v1/divisions/34", json={"code": "34", "name": "省"}, headers=h)
    for i, (tier, dlon) in enumerate([("high", 0.001), ("building", 0.002), ("street", 0.0005), ("street", 0.5)]):
        r = await client.post("/api/v1/channels", json={"id": f"3400000000131000000{i}", "name": f"p{i}", "tier": tier,
                                                        "longitude": 117.0 + dlon, "latitude": 31.0}, headers=h)
        assert r.status_code == 201, r.text
    pts = (await client.get("/api/v1/channels/points", headers=h | {"Accept-Encoding": "gzip"})).json()
    assert pts["fields"][:4] == ["id", "name", "longitude", "latitude"] and pts["total"] == 4
    near = (await client.get("/api/v1/channels/near", params={"lon": 117.0, "lat": 31.0, "radius": 500},
                             headers=h)).json()
    assert [c["tier"] for c in near["high"]] == ["high"] and len(near["street"]) == 1  # the far one is out
    assert near["street"][0]["distance"] < 100
    cfg = (await client.get("/api/v1/console/config", headers=h)).json()
    assert cfg["tile_url"] is None and cfg["zoom"] == 11
    # the console's date pickers count the city's days, as the rates do (UTC+8 by default)
    assert cfg["utc_offset_hours"] == 8.0


async def test_console_points_changed_since(client: httpx.AsyncClient, admin: dict[str, str], platform) -> None:  # type: ignore[no-untyped-def]
    """The map keeps current by asking what changed: a device going offline turns its points OFF."""
    from datetime import datetime, timedelta

    from sqlalchemy import insert, update

    from xueliang.db.tables import Channel, Device
    from xueliang.gb28181.persist import SignallingWriter

    await client.put("/api/v1/divisions/34", json={"code": "34", "name": "省"}, headers=admin)
    ids = [f"3400000000131000001{i}" for i in range(3)]
    for i, cid in enumerate(ids):
        r = await client.post("/api/v1/channels", json={"id": cid, "name": f"p{i}", "longitude": 117.0 + i / 100,
                                                        "latitude": 31.0}, headers=admin)
        assert r.status_code == 201, r.text
    async with platform.sessions() as s, s.begin():
        await s.execute(insert(Device).values(id="34000000001180000001", name="nvr", type_code="118"))
        await s.execute(update(Channel).where(Channel.id == ids[1]).values(device_id="34000000001180000001",
                                                                           status="ON"))
    first = (await client.get("/api/v1/channels/points", headers=admin)).json()
    as_of = datetime.fromisoformat(first["as_of"])
    assert {r[0]: r[4] for r in first["items"]}[ids[1]] == "ON"
    nothing = (await client.get("/api/v1/channels/points", params={"changed_after": first["as_of"]},
                                headers=admin)).json()
    assert nothing["items"] == []
    await asyncio.sleep(0.01)
    w = SignallingWriter(platform.sessions)
    w.device_offline("34000000001180000001")  # what the signalling service does on a keepalive timeout
    await w.flush()
    changed = (await client.get("/api/v1/channels/points", params={"changed_after": first["as_of"]},
                                headers=admin)).json()
    assert [(r[0], r[4]) for r in changed["items"]] == [(ids[1], "OFF")]
    # Times leave the platform with their zone on every backend (SQLite keeps none): a browser
    # shows them in its local time, not hours off.
    r = await client.post("/api/v1/patrols", json={"name": "p", "channel_ids": ids[:2]}, headers=admin)
    assert r.status_code == 201, r.text
    read_back = (await client.get("/api/v1/patrols", headers=admin)).json()[0]["updated_at"]
    assert datetime.fromisoformat(read_back).utcoffset() == timedelta(0)
    assert datetime.fromisoformat(changed["as_of"]) > as_of
    overlap = (as_of - timedelta(minutes=5)).isoformat()
    assert len((await client.get("/api/v1/channels/points", params={"changed_after": overlap},
                                 headers=admin)).json()["items"]) == 3


async def test_healthz_answers_within_the_probes_timeout_when_the_database_host_is_silent(
    client: httpx.AsyncClient, platform  # type: ignore[no-untyped-def]
) -> None:
    """A database host that accepts and never answers (or drops packets) must not hold the
    probe past its 3 s timeout: the process would be restarted for nothing."""
    import asyncio
    import time

    from sqlalchemy.ext.asyncio import create_async_engine

    held: list[asyncio.StreamWriter] = []

    async def silent(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        held.append(w)  # accepts, says nothing

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    real = platform.engine
    platform.engine = create_async_engine(f"postgresql+asyncpg://x:y@127.0.0.1:{port}/z")
    try:
        t0 = time.monotonic()
        r = await client.get("/healthz")
        took = time.monotonic() - t0
        assert r.status_code == 200 and r.json()["status"] == "degraded", r.text
        assert "no answer" in r.json()["database"] and took < 3.0, (r.text, took)
    finally:
        await platform.engine.dispose()
        platform.engine = real
        for w in held:
            w.close()
        server.close()
    assert (await client.get("/healthz")).json()["database"] == "ok"
