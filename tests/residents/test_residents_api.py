"""The phone app's routes on SQLite and PostgreSQL: residents join a place with an invitation
code and see exactly its resident-visible cameras, by every way there is to a camera; codes
are refused when expired, used up, revoked, of another place or guessed; residents and grid
members report; grid members handle the cases dispatched to them and report their position."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select, update

from tests.api.conftest import login
from xueliang.access.ratelimit import TokenBuckets
from xueliang.app import Platform
from xueliang.db.tables import Channel, IncidentAttachment, ResidentCode, Unit
from xueliang.residents import codes

PW = "Harbour-Lamp-42"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
PLACE_A, PLACE_B = "340102001001", "340102001002"
#: id -> (division, coverage, resident_visible)
CAMS = {
    "34020000001310000001": (PLACE_A, "A", True),    # the one a resident of A sees
    "34020000001310000002": (PLACE_A, "A", False),   # not marked for residents
    "34020000001310000003": (PLACE_A, "B", True),    # inside a unit: not public
    "34020000001310000004": (PLACE_B, "A", True),    # another place's
    "34020000001310000005": (PLACE_A + "9", "A", True),  # below place A (a building of it)
}
SEEN_BY_A = {"34020000001310000001", "34020000001310000005"}


async def city(platform: Platform) -> None:
    async with platform.sessions() as s, s.begin():
        u = Unit(name="甲小区物业", department="住建局", division_code="340102")
        s.add(u)
        await s.flush()
        for n, (cid, (div, cov, vis)) in enumerate(CAMS.items()):
            s.add(Channel(id=cid, name=f"cam{n}", kind="camera", unit_id=u.id, department="住建局",
                          division_code=div, coverage=cov, resident_visible=vis, status="ON",
                          longitude=117.23 + n * 0.001, latitude=31.82))


async def user(platform: Platform, client: httpx.AsyncClient, name: str, role: str, **kw: Any) -> dict[str, str]:
    await platform.users.create(name, PW, role, **kw)
    return await login(client, name, PW)


async def code(client: httpx.AsyncClient, h: dict[str, str], place: str = PLACE_A, **kw: Any) -> dict[str, Any]:
    r = await client.post("/api/v1/residents/codes", headers=h, json={"division_code": place, "place": "阳光小区", **kw})
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


async def join(client: httpx.AsyncClient, c: str, name: str = "王阿姨") -> httpx.Response:
    return await client.post("/api/v1/residents/join", json={"code": c, "name": name, "password": PW})


async def test_a_resident_sees_exactly_the_places_resident_visible_cameras(
        platform: Platform, client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    await city(platform)
    centre = await user(platform, client, "centre", "operator", division_code="340102")
    made = await code(client, centre)
    assert made["bits"] >= 80 and len(codes.canonical(made["code"])) == 16
    r = await join(client, made["code"].lower().replace("-", " "))  # typed leniently
    assert r.status_code == 201, r.text
    me = {"Authorization": f"Bearer {r.json()['access_token']}"}
    assert r.json()["user"]["role"] == "resident" and r.json()["user"]["division_code"] == PLACE_A
    listed = (await client.get("/api/v1/residents/cameras", headers=me)).json()["items"]
    assert {c["id"] for c in listed} == SEEN_BY_A
    for cid in CAMS:
        # by id (a media token needs no video): the visible ones open, the others are missing
        r = await client.post(f"/api/v1/channels/{cid}/media-token", headers=me)
        assert r.status_code == (200 if cid in SEEN_BY_A else 404), (cid, r.text)
        r = await client.get(f"/api/v1/channels/{cid}/snapshot.jpg", headers=me)
        assert r.status_code == (503 if cid in SEEN_BY_A else 404), (cid, r.text)  # no media here
        if cid not in SEEN_BY_A:  # by stream name: as a stream that does not exist
            r = await client.get(f"/api/v1/streams/live/{cid}/live.info", headers=me)
            missing = await client.get("/api/v1/streams/live/34020000001310000099/live.info", headers=me)
            assert r.status_code == missing.status_code and r.status_code >= 400, (cid, r.text)
        assert (await client.get(f"/api/v1/channels/{cid}", headers=me)).status_code in (403, 404)
    # not by listing, map or the linked view, and no case's cameras
    for path in ("/api/v1/channels", "/api/v1/channels/points", "/api/v1/channels/near?lon=117.23&lat=31.82",
                 "/api/v1/incidents", "/api/v1/incidents/1/cameras", "/api/v1/devices", "/api/v1/statistics/overview"):
        assert (await client.get(path, headers=me)).status_code in (403, 404), path
    # nor through a patrol shared by someone who may see every camera
    r = await client.post("/api/v1/patrols", headers=admin, json={"name": "全部", "channel_ids": list(CAMS), "shared": True})
    assert r.status_code == 201, r.text
    for patrol in (await client.get("/api/v1/patrols", headers=me)).json():
        assert {c["id"] for c in patrol["channels"]} <= SEEN_BY_A
    # the flag is set by the registry's managers only
    cid = "34020000001310000002"
    assert (await client.patch(f"/api/v1/channels/{cid}", headers=centre, json={"resident_visible": True})).status_code == 403
    r = await client.patch(f"/api/v1/channels/{cid}", headers=admin, json={"resident_visible": True})
    assert r.status_code == 200 and r.json()["resident_visible"] is True
    platform.users.forget_all()
    listed = (await client.get("/api/v1/residents/cameras", headers=me)).json()["items"]
    assert {c["id"] for c in listed} == SEEN_BY_A | {cid}
    # a resident's stored scope cannot lift the flag
    who = (await client.get("/api/v1/auth/me", headers=me)).json()["username"]
    u = await platform.users.by_name(who)
    await platform.users.update(u.id, {"scope": {"resident_visible": False}})
    me = await login(client, who, PW)  # a changed scope ends the sessions before it
    listed = (await client.get("/api/v1/residents/cameras", headers=me)).json()["items"]
    assert {c["id"] for c in listed} == SEEN_BY_A | {cid}


async def test_codes_are_refused_when_expired_used_up_revoked_or_guessed(
        platform: Platform, client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    await city(platform)
    platform.residents.per_client = TokenBuckets(1.0, 1000.0)  # many tries here: the limit has its own test
    centre = await user(platform, client, "centre", "operator", division_code="340102")
    # a code for place B gives place B's cameras, never A's
    b = await code(client, centre, PLACE_B)
    r = await join(client, b["code"])
    assert r.status_code == 201
    hb = {"Authorization": f"Bearer {r.json()['access_token']}"}
    assert {c["id"] for c in (await client.get("/api/v1/residents/cameras", headers=hb)).json()["items"]} == {
        "34020000001310000004"}
    # used up
    one = await code(client, centre, max_uses=1)
    assert (await join(client, one["code"])).status_code == 201
    r = await join(client, one["code"])
    assert r.status_code == 403 and r.headers["content-type"].startswith("application/problem+json")
    # expired
    old = await code(client, centre)
    async with platform.sessions() as s, s.begin():
        await s.execute(update(ResidentCode).where(ResidentCode.id == old["id"])
                        .values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    assert (await join(client, old["code"])).status_code == 403
    # revoked
    gone = await code(client, centre)
    assert (await client.delete(f"/api/v1/residents/codes/{gone['id']}", headers=centre)).status_code == 204
    assert (await join(client, gone["code"])).status_code == 403
    # unknown, and not the shape of a code: refused, never a 500
    assert (await join(client, codes.new_code())).status_code == 403
    for bad in ("", "x" * 65, "ABCD", "!!!!-!!!!-!!!!-!!!!", "\x00" * 16):
        r = await join(client, bad)
        assert r.status_code in (400, 422), (bad, r.text)
    # states as the centre sees them; the code itself is stored nowhere, only its digest
    states = {c["id"]: c["state"] for c in (await client.get("/api/v1/residents/codes", headers=centre)).json()["items"]}
    assert states[one["id"]] == "used_up" and states[old["id"]] == "expired" and states[gone["id"]] == "revoked"
    async with platform.sessions() as s:
        rows = (await s.scalars(select(ResidentCode))).all()
    for row in rows:
        assert len(row.code_hash) == 64 and all(codes.canonical(x["code"]) not in row.code_hash for x in (b, one))
    # a centre makes codes for its own division only, and sees and revokes only those
    other = await user(platform, client, "other", "operator", division_code="340103")
    r = await client.post("/api/v1/residents/codes", headers=other, json={"division_code": PLACE_A, "place": "x"})
    assert r.status_code == 403
    assert (await client.get("/api/v1/residents/codes", headers=other)).json()["items"] == []
    assert (await client.delete(f"/api/v1/residents/codes/{b['id']}", headers=other)).status_code == 404
    # department users may not make codes at all
    dept = await user(platform, client, "dept", "department_user", department="住建局")
    r = await client.post("/api/v1/residents/codes", headers=dept, json={"division_code": PLACE_A, "place": "x"})
    assert r.status_code == 403


async def test_guessing_codes_is_rate_limited(platform: Platform, client: httpx.AsyncClient,
                                              admin: dict[str, str]) -> None:
    answers = [(await join(client, codes.new_code())).status_code for _ in range(14)]
    assert answers[:10] == [403] * 10 and answers[-1] == 429, answers
    # another client is not blocked by the first one's guesses
    from xueliang.api.main import create_app

    app = create_app(platform, manage_lifecycle=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=("10.9.9.10", 4000)),
                                 base_url="http://test") as other:
        assert (await join(other, codes.new_code())).status_code == 403
    # and all clients together are held to an overall rate
    platform.residents.per_client = TokenBuckets(1.0, 1000.0)
    answers = [(await join(client, codes.new_code())).status_code for _ in range(70)]
    assert 429 in answers and answers.count(403) <= 60, answers


async def test_residents_report_and_see_only_their_own(platform: Platform, client: httpx.AsyncClient,
                                                       admin: dict[str, str]) -> None:
    await city(platform)
    centre = await user(platform, client, "centre", "operator", division_code="340102")
    c = await code(client, centre)
    h1 = {"Authorization": f"Bearer {(await join(client, c['code'], '甲')).json()['access_token']}"}
    h2 = {"Authorization": f"Bearer {(await join(client, c['code'], '乙')).json()['access_token']}"}
    form = {"category": "安全隐患", "longitude": "117.231", "latitude": "31.821", "description": "井盖缺失"}
    r = await client.post("/api/v1/mobile/reports", headers=h1, data=form, files={"photo": ("p.png", PNG, "image/png")})
    assert r.status_code == 201, r.text
    rep = r.json()
    assert rep["source"] == "resident" and rep["photo"] is True
    r = await client.post("/api/v1/mobile/reports", headers=h2, data={**form, "anonymous": "true"})
    assert r.status_code == 201
    # the centre's queue has both; the anonymous one without a reporter; the photo attached
    q = (await client.get("/api/v1/incidents?source=resident", headers=centre)).json()["items"]
    assert {i["id"] for i in q} == {rep["id"], r.json()["id"]}
    byid = {i["id"]: i for i in q}
    assert byid[rep["id"]]["reporter"]["name"] == "甲" and "reporter" not in byid[r.json()["id"]]
    assert byid[rep["id"]]["division_code"] == PLACE_A
    async with platform.sessions() as s:
        assert (await s.scalar(select(IncidentAttachment.size).where(IncidentAttachment.incident_id == rep["id"]))) == len(PNG)
    # each resident sees their own reports only, and no case through the centre's routes
    mine = (await client.get("/api/v1/mobile/reports", headers=h1)).json()
    assert [i["id"] for i in mine["items"]] == [rep["id"]] and "安全隐患" in mine["categories"]
    assert set(mine["items"][0]) == {"id", "source", "category", "status", "description", "created_at",
                                     "updated_at", "closed_at"}
    assert (await client.get(f"/api/v1/incidents/{rep['id']}", headers=h2)).status_code == 403
    # bad input: a clear 4xx, never a 500
    for bad in ({**form, "category": "nope"}, {**form, "longitude": "200"}, {**form, "latitude": "nan"},
                {"category": "安全隐患"}):
        r = await client.post("/api/v1/mobile/reports", headers=h1, data=bad)
        assert r.status_code in (400, 422), (bad, r.text)
    r = await client.post("/api/v1/mobile/reports", headers=h1, data=form, files={"photo": ("p.gif", b"GIF89a", "image/gif")})
    assert r.status_code in (400, 422) and "JPEG or PNG" in r.text
    # residents may not report their position (no tracking of residents)
    assert (await client.put("/api/v1/mobile/position", headers=h1, json={"longitude": 117.2, "latitude": 31.8})).status_code == 403
    # abuse control: a burst, then refused
    got = [(await client.post("/api/v1/mobile/reports", headers=h2, data=form)).status_code for _ in range(6)]
    assert got[-1] == 429 and 201 in got, got


async def test_grid_members_handle_what_is_dispatched_to_them(platform: Platform, client: httpx.AsyncClient,
                                                             admin: dict[str, str]) -> None:
    await city(platform)
    centre = await user(platform, client, "centre", "operator", division_code="340102")
    g1 = await user(platform, client, "grid1", "grid_member", department="网格一", division_code=PLACE_A)
    g2 = await user(platform, client, "grid2", "grid_member", department="网格二", division_code=PLACE_B)
    form = {"category": "环境", "longitude": "117.231", "latitude": "31.821", "description": "垃圾堆积"}
    r = await client.post("/api/v1/mobile/reports", headers=g1, data=form, files={"photo": ("p.png", PNG, "image/png")})
    assert r.status_code == 201 and r.json()["source"] == "grid"
    cid = r.json()["id"]
    # before dispatch, no grid member sees the case through the centre's routes
    assert (await client.get(f"/api/v1/incidents/{cid}", headers=g1)).status_code == 404
    r = await client.post(f"/api/v1/incidents/{cid}/dispatch", headers=centre, json={"departments": [{"department": "网格一"}]})
    assert r.status_code == 200
    did = r.json()["dispatches"][0]["id"]
    assert [i["id"] for i in (await client.get("/api/v1/incidents", headers=g1)).json()["items"]] == [cid]
    assert (await client.get("/api/v1/incidents", headers=g2)).json()["items"] == []
    assert (await client.get(f"/api/v1/incidents/{cid}", headers=g2)).status_code == 404
    assert (await client.post(f"/api/v1/incidents/{cid}/dispatches/{did}/acknowledge", headers=g2, json={})).status_code == 404
    assert (await client.post(f"/api/v1/incidents/{cid}/dispatches/{did}/acknowledge", headers=g1, json={})).status_code == 200
    att = await client.post(f"/api/v1/incidents/{cid}/attachments", headers=g1, files={"photo": ("p.png", PNG, "image/png")})
    assert att.status_code == 201
    r = await client.post(f"/api/v1/incidents/{cid}/dispatches/{did}/feedback", headers=g1,
                          json={"note": "已清理", "attachments": [att.json()["id"]]})
    assert r.status_code == 200 and r.json()["status"] == "fed_back"
    # the centre's steps are not the grid member's
    assert (await client.post(f"/api/v1/incidents/{cid}/close", headers=g1, json={"note": "x"})).status_code == 403
    # positions: the grid member's own; the centre of the division reads them, another does not
    r = await client.put("/api/v1/mobile/position", headers=g1, json={"longitude": 117.2311, "latitude": 31.8212, "accuracy": 8})
    assert r.status_code == 200
    pos = (await client.get("/api/v1/mobile/positions", headers=centre)).json()["items"]
    assert [(p["username"], p["longitude"]) for p in pos] == [("grid1", 117.2311)]
    other = await user(platform, client, "other", "operator", division_code="340103")
    assert (await client.get("/api/v1/mobile/positions", headers=other)).json()["items"] == []
    assert (await client.get("/api/v1/mobile/positions", headers=g1)).status_code == 403
    for bad in ({"longitude": 500, "latitude": 1}, {"longitude": "x", "latitude": 1}, {"latitude": 1}):
        assert (await client.put("/api/v1/mobile/position", headers=g1, json=bad)).status_code in (400, 422)
