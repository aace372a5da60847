"""The incident centre through the API: a case's whole life (受理 → 分流 → 签收 → 反馈 → 结案,
rating), the department's view, return, reassign, redo, merge, supervise; every step a step
row and an audit record; statistics over it."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import select

from tests.api.conftest import login
from xueliang.app import Platform
from xueliang.db.tables import AuditRecord, Channel, Unit

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
CASE = {"category": "矛盾纠纷", "description": "楼上漏水，邻里纠纷", "longitude": 117.2301, "latitude": 31.8201,
        "address": "一路 1 号", "reporter": {"name": "张三", "phone": "13800000000"}}


async def city(platform: Platform) -> None:
    async with platform.sessions() as s, s.begin():
        u = Unit(name="甲单位", department="城管局", division_code="340102")
        s.add(u)
        await s.flush()
        for n, (lon, lat, dept, div) in enumerate([(117.2300, 31.8200, "城管局", "340102001"),
                                                   (117.2320, 31.8200, "公安局", "340102002"),
                                                   (117.3000, 31.9000, "城管局", "340103001")]):
            s.add(Channel(id=f"3402000000131000{n:04d}", name=f"cam{n}", kind="camera", unit_id=u.id,
                          department=dept, division_code=div, longitude=lon, latitude=lat, status="ON"))


async def user(platform: Platform, client: httpx.AsyncClient, name: str, role: str, **kw: Any) -> dict[str, str]:
    await platform.users.create(name, "Harbour-Lamp-42", role, **kw)
    return await login(client, name, "Harbour-Lamp-42")


async def test_a_case_from_intake_to_rating(platform: Platform, client: httpx.AsyncClient,
                                            admin: dict[str, str]) -> None:
    await city(platform)
    op = await user(platform, client, "duty", "operator")
    cg = await user(platform, client, "cg", "department_user", department="城管局")
    ga = await user(platform, client, "ga", "department_user", department="公安局")
    r = await client.post("/api/v1/incidents", json=CASE, headers=op)
    assert r.status_code == 201, r.text
    case = r.json()
    cid = case["id"]
    # no boundary holds the point: the nearest camera's division, and the case says so
    assert case["division_code"] == "340102001" and case["division_basis"] == "nearest_channel"
    assert case["status"] == "received" and case["source"] == "hotline"
    # a department sees nothing before dispatch: as missing, by id and in the listing
    assert (await client.get(f"/api/v1/incidents/{cid}", headers=cg)).status_code == 404
    assert (await client.get("/api/v1/incidents", headers=cg)).json()["items"] == []
    r = await client.post(f"/api/v1/incidents/{cid}/dispatch", headers=op, json={
        "departments": [{"department": "城管局"}, {"department": "公安局"}], "note": "请处置"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "dispatched"
    ds = {d["department"]: d["id"] for d in r.json()["dispatches"]}
    # each department sees the case, and only its own dispatch
    got = (await client.get(f"/api/v1/incidents/{cid}", headers=cg)).json()
    assert [d["department"] for d in got["dispatches"]] == ["城管局"]
    # a department cannot take another's step
    r = await client.post(f"/api/v1/incidents/{cid}/dispatches/{ds['公安局']}/acknowledge", headers=cg, json={})
    assert r.status_code == 404
    r = await client.post(f"/api/v1/incidents/{cid}/dispatches/{ds['城管局']}/acknowledge", headers=cg, json={})
    assert r.status_code == 200 and r.json()["status"] == "handling", r.text
    # 公安局 says it is not theirs; it no longer sees the case
    r = await client.post(f"/api/v1/incidents/{cid}/dispatches/{ds['公安局']}/return", headers=ga,
                          json={"note": "非治安案件"})
    assert r.status_code == 200, r.text
    assert (await client.get(f"/api/v1/incidents/{cid}", headers=ga)).status_code == 404
    # a photo with the feedback
    r = await client.post(f"/api/v1/incidents/{cid}/attachments", headers=cg,
                          files={"photo": ("p.png", PNG, "image/png")})
    assert r.status_code == 201, r.text
    att = r.json()["id"]
    r = await client.post(f"/api/v1/incidents/{cid}/dispatches/{ds['城管局']}/feedback", headers=cg,
                          json={"note": "已修复管道", "attachments": [att]})
    assert r.status_code == 200 and r.json()["status"] == "fed_back", r.text
    assert r.json()["dispatch"]["on_time"] is True
    # the centre sends it back once, the department feeds back again
    r = await client.post(f"/api/v1/incidents/{cid}/dispatches/{ds['城管局']}/redo", headers=op,
                          json={"note": "请附现场照片"})
    assert r.status_code == 200 and r.json()["status"] == "handling", r.text
    r = await client.post(f"/api/v1/incidents/{cid}/dispatches/{ds['城管局']}/feedback", headers=cg,
                          json={"note": "已修复并拍照", "attachments": [att]})
    assert r.status_code == 200
    r = await client.get(f"/api/v1/incidents/{cid}/attachments/{att}", headers=op)
    assert r.status_code == 200 and r.content == PNG
    # rating before closure is refused; closing needs a note
    assert (await client.post(f"/api/v1/incidents/{cid}/rating", headers=op, json={"rating": 5})).status_code == 422
    assert (await client.post(f"/api/v1/incidents/{cid}/close", headers=op, json={})).status_code == 422
    r = await client.post(f"/api/v1/incidents/{cid}/close", headers=op, json={"note": "已解决"})
    assert r.status_code == 200 and r.json()["status"] == "closed", r.text
    r = await client.post(f"/api/v1/incidents/{cid}/rating", headers=op, json={"rating": 4, "note": "满意"})
    assert r.status_code == 200 and r.json()["rating"] == 4
    detail = (await client.get(f"/api/v1/incidents/{cid}", headers=op)).json()
    steps = [s["step"] for s in detail["steps"]]
    assert steps == ["receive", "dispatch", "dispatch", "acknowledge", "return", "feedback", "redo", "feedback",
                     "close", "rate"], steps
    assert detail["steps"][5]["attachments"] == [att]
    # every step of people is an audit record naming it
    await platform.access.audit.flush()
    async with platform.sessions() as s:
        actions = (await s.scalars(select(AuditRecord.action).where(AuditRecord.resource_id == str(cid)))).all()
    for a in ("incident.receive", "incident.dispatch", "incident.acknowledge", "incident.return",
              "incident.feedback", "incident.redo", "incident.close", "incident.rate", "incident.attach"):
        assert a in actions, (a, actions)
    # statistics: one case, closed, rated 4, on time
    st = (await client.get("/api/v1/incidents/statistics", headers=op)).json()
    assert st["intake"] == 1 and st["closed"] == 1 and st["closure_rate"] == 100.0
    assert st["by_source"] == {"hotline": 1} and st["by_category"] == {"矛盾纠纷": 1}
    assert st["by_division"] == [{"division": "340102", "count": 1}]
    assert st["satisfaction"] == 4.0 and st["on_time_rate"] == 100.0
    # 公安局's statistics: the case was returned, it is not theirs
    assert (await client.get("/api/v1/incidents/statistics", headers=ga)).json()["intake"] == 0


async def test_reassign_merge_and_supervise(platform: Platform, client: httpx.AsyncClient,
                                            admin: dict[str, str]) -> None:
    await city(platform)
    op = await user(platform, client, "duty", "operator")
    ga = await user(platform, client, "ga", "department_user", department="公安局")
    a = (await client.post("/api/v1/incidents", json=CASE, headers=op)).json()
    b = (await client.post("/api/v1/incidents", json={**CASE, "reporter": None}, headers=op)).json()
    assert b["anonymous"] is True and "reporter" not in b
    r = await client.post(f"/api/v1/incidents/{a['id']}/dispatch", headers=op,
                          json={"departments": [{"department": "城管局"}]})
    d = r.json()["dispatches"][0]["id"]
    r = await client.post(f"/api/v1/incidents/{a['id']}/dispatches/{d}/reassign", headers=op,
                          json={"department": "公安局", "note": "属治安"})
    assert r.status_code == 200, r.text
    assert (await client.get(f"/api/v1/incidents/{a['id']}", headers=ga)).status_code == 200
    r = await client.post(f"/api/v1/incidents/{b['id']}/merge", headers=op, json={"into": a["id"]})
    assert r.status_code == 200 and r.json()["status"] == "merged"
    assert (await client.get(f"/api/v1/incidents/{a['id']}", headers=op)).json()["merged"] == [b["id"]]
    r = await client.post(f"/api/v1/incidents/{a['id']}/supervise", headers=op, json={"note": "尽快"})
    assert r.status_code == 200 and r.json()["flagged"] is True
    flagged = (await client.get("/api/v1/incidents", headers=op, params={"flagged": "true"})).json()["items"]
    assert [c["id"] for c in flagged] == [a["id"]]
    # a closed or merged case takes no more steps
    r = await client.post(f"/api/v1/incidents/{b['id']}/dispatch", headers=op,
                          json={"departments": [{"department": "城管局"}]})
    assert r.status_code == 422
