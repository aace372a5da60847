"""The health API, adversarially: a maintainer of team A never reaches team B's points or
tickets by any route; a department sees only its own points' rates; every step is audited."""

from __future__ import annotations

import gc
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import insert, select

from tests.api.conftest import login
from xueliang.app import Platform
from xueliang.db.tables import AuditRecord, Channel, StateInterval, Unit
from xueliang.health.rollup import day_window, rollup_day

PW = "Harbour-Lamp-42"
CH_A = "34020000001310000001"
CH_B = "34020000001310000002"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


async def world(platform: Platform, client: httpx.AsyncClient, admin: dict[str, str]) -> dict[str, Any]:
    async with platform.sessions() as s, s.begin():
        ua, ub = Unit(name="甲单位", department="甲局"), Unit(name="乙单位", department="乙局")
        s.add_all([ua, ub])
        await s.flush()
        await s.execute(insert(Channel), [
            {"id": CH_A, "name": "a", "kind": "camera", "unit_id": ua.id, "department": "甲局",
             "division_code": "340102001", "point_class": 1, "status": "ON"},
            {"id": CH_B, "name": "b", "kind": "camera", "unit_id": ub.id, "department": "乙局",
             "division_code": "340102002", "point_class": 2, "status": "ON"},
        ])
        units = (ua.id, ub.id)
    users = {}
    for name, role, kw in (("ma", "maintainer", {}), ("mb", "maintainer", {}),
                           ("deptb", "department_user", {"department": "乙局"}), ("duty", "operator", {})):
        u = await platform.users.create(name, PW, role, **kw)
        users[name] = u.id
    teams = {}
    for key, unit, member in (("A", units[0], "ma"), ("B", units[1], "mb")):
        r = await client.post("/api/v1/maintenance/teams", headers=admin, json={
            "name": f"维保{key}", "company": f"{key}公司", "contacts": [{"name": "张工", "phone": "13800000000"}],
            "duties": [{"kind": "unit", "ref": str(unit)}], "members": [users[member]]})
        assert r.status_code == 201, r.text
        teams[key] = r.json()["id"]
    tickets = {}
    duty = await login(client, "duty", PW)
    for key, ch in (("A", CH_A), ("B", CH_B)):
        r = await client.post("/api/v1/tickets", headers=duty, json={"channel_id": ch, "note": "画面模糊"})
        assert r.status_code == 201, r.text
        assert r.json()["team_id"] == teams[key]
        tickets[key] = r.json()["id"]
    # A day of history: A online all day, B offline all day; rolled up.
    day = date(2026, 11, 2)
    start, end = day_window(day, platform.settings.health.utc_offset_hours)
    async with platform.sessions() as s, s.begin():
        await s.execute(insert(StateInterval), [
            {"subject": CH_A, "subject_kind": "channel", "state": "online", "start": start, "end": end},
            {"subject": CH_B, "subject_kind": "channel", "state": "offline", "start": start, "end": end},
        ])
    await rollup_day(platform.sessions, day, platform.settings.health.utc_offset_hours)
    return {"teams": teams, "tickets": tickets, "day": day, "duty": duty,
            "ma": await login(client, "ma", PW), "mb": await login(client, "mb", PW),
            "deptb": await login(client, "deptb", PW)}


async def test_a_maintainer_never_reaches_another_teams_points_or_tickets(platform, client, admin) -> None:
    w = await world(platform, client, admin)
    ma, tb, ta = w["ma"], w["tickets"]["B"], w["tickets"]["A"]
    day = w["day"].isoformat()
    # Listing, filters by team and channel: only A's.
    r = await client.get("/api/v1/tickets", headers=ma)
    assert [t["id"] for t in r.json()["items"]] == [ta]
    for q in ({"team": w["teams"]["B"]}, {"channel": CH_B}, {"status": "open"}):
        items = (await client.get("/api/v1/tickets", headers=ma, params=q)).json()["items"]
        assert tb not in [t["id"] for t in items]
    # The item, its photo, its steps: B's ticket looks missing, exactly as one that does not exist.
    for path in (f"/api/v1/tickets/{tb}", f"/api/v1/tickets/{tb}/photo"):
        mine, missing = await client.get(path, headers=ma), await client.get(path.replace(str(tb), "999999"), headers=ma)
        assert mine.status_code == missing.status_code == 404
        assert mine.json()["type"] == missing.json()["type"]
    for step in ("acknowledge", "repair"):
        assert (await client.post(f"/api/v1/tickets/{tb}/{step}", headers=ma)).status_code == 404
    r = await client.post(f"/api/v1/tickets/{tb}/resolve", headers=ma, data={"note": "x"})
    assert r.status_code == 404
    # B's point: no timeline, no rates.
    assert (await client.get(f"/api/v1/channels/{CH_B}/timeline", headers=ma)).status_code == 404
    rates = (await client.get("/api/v1/health/availability", headers=ma,
                              params={"from": day, "to": day, "group": "channel"})).json()
    assert [g["key"] for g in rates["groups"]] == [CH_A]
    rates_b = (await client.get("/api/v1/health/availability", headers=ma,
                                params={"from": day, "to": day, "team": w["teams"]["B"]})).json()
    assert rates_b["total"]["points"] == 0
    # Console notifications: A's only.
    notes = (await client.get("/api/v1/health/notifications", headers=ma)).json()
    assert notes and {n["team_id"] for n in notes} == {w["teams"]["A"]}
    # Its own ticket: acknowledge, resolve with a photo; close is the duty centre's.
    assert (await client.get(f"/api/v1/channels/{CH_A}/timeline", headers=ma)).status_code == 200
    assert (await client.post(f"/api/v1/tickets/{ta}/acknowledge", headers=ma)).json()["status"] == "acknowledged"
    r = await client.post(f"/api/v1/tickets/{ta}/resolve", headers=ma, data={"note": "清洁镜头"},
                          files={"photo": ("p.png", PNG, "image/png")})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "resolved" and r.json()["photo"] is True
    photo = await client.get(f"/api/v1/tickets/{ta}/photo", headers=ma)
    assert photo.status_code == 200 and photo.content == PNG
    assert (await client.post(f"/api/v1/tickets/{ta}/close", headers=ma, json={"note": "x"})).status_code == 403
    # Not a picture: refused, and the ticket is unchanged.
    r = await client.post(f"/api/v1/tickets/{ta}/resolve", headers=ma, data={"note": "x"},
                          files={"photo": ("p.png", b"<svg/>", "image/png")})
    assert r.status_code == 422
    # The other team's maintainer sees nothing of A.
    mb = w["mb"]
    assert (await client.get(f"/api/v1/tickets/{ta}", headers=mb)).status_code == 404
    assert [t["id"] for t in (await client.get("/api/v1/tickets", headers=mb)).json()["items"]] == [tb]
    # Every step is audited, by whom.
    await platform.access.audit.flush()
    async with platform.sessions() as s:
        recs = (await s.execute(select(AuditRecord.action, AuditRecord.actor, AuditRecord.resource_id, AuditRecord.outcome)
                                .where(AuditRecord.resource_type == "ticket"))).all()
    got = {(a, who, rid) for a, who, rid, outcome in recs if outcome == "ok"}
    assert ("ticket.open", "duty", str(ta)) in got
    assert ("ticket.acknowledge", "ma", str(ta)) in got and ("ticket.resolve", "ma", str(ta)) in got


async def test_a_department_sees_the_rates_of_its_own_points(platform, client, admin) -> None:
    w = await world(platform, client, admin)
    day = w["day"].isoformat()
    d = w["deptb"]
    r = (await client.get("/api/v1/health/availability", headers=d,
                          params={"from": day, "to": day, "group": "department"})).json()
    assert [g["key"] for g in r["groups"]] == ["乙局"] and r["total"]["availability"] == 0.0
    assert r["targets"] == {"1": 98.0, "2": 95.0, "3": 90.0}
    # Asking for another department by filter gives nothing, not its figures.
    other = (await client.get("/api/v1/health/availability", headers=d,
                              params={"from": day, "to": day, "department": "甲局"})).json()
    assert other["total"]["points"] == 0
    assert (await client.get(f"/api/v1/channels/{CH_A}/timeline", headers=d)).status_code == 404
    items = (await client.get("/api/v1/tickets", headers=d)).json()["items"]
    assert {t["channel_id"] for t in items} == {CH_B}
    # The city as a whole (administrator): both, against the targets.
    r = (await client.get("/api/v1/health/availability", headers=admin,
                          params={"from": day, "to": day, "group": "class"})).json()
    assert {g["key"]: g["availability"] for g in r["groups"]} == {1: 100.0, 2: 0.0}
    # A range with no data says so.
    empty = (await client.get("/api/v1/health/availability", headers=admin,
                              params={"from": "2020-01-01", "to": "2020-01-31"})).json()
    assert empty["note"] == "no data for this range"
    bad = await client.get("/api/v1/health/availability", headers=admin, params={"group": "colour"})
    assert bad.status_code == 422


async def test_the_timeline_shows_states_and_tickets(platform, client, admin) -> None:
    w = await world(platform, client, admin)
    r = (await client.get(f"/api/v1/channels/{CH_B}/timeline", headers=admin, params={"days": 400})).json()
    states = [i["state"] for i in r["intervals"]]
    assert "offline" in states and states[0] == "unknown"
    assert [t["id"] for t in r["tickets"]] == [w["tickets"]["B"]]
    now = datetime.now(UTC)
    assert datetime.fromisoformat(r["to"]) <= now + timedelta(seconds=5)


async def test_reports_on_demand_on_schedule_kept_and_downloadable(platform, client, admin) -> None:
    w = await world(platform, client, admin)
    duty = w["duty"]
    # what the first report of a format leaves for good (its libraries, their caches) is out of
    # the collector's full collections, as the start-up heap is (heap.py); frozen objects are no
    # longer among those it tracks. (The background scheduler may have made one already.)
    platform.health._formats_frozen.clear()
    kept = type("Kept", (), {})()
    assert any(o is kept for o in gc.get_objects())
    r = await client.post("/api/v1/reports", headers=duty, json={"kind": "daily", "date": w["day"].isoformat()})
    assert r.status_code == 201, r.text
    assert not any(o is kept for o in gc.get_objects())
    rid = r.json()["id"]
    assert r.json()["empty"] is False
    got = await client.get(f"/api/v1/reports/{rid}", headers=duty)
    assert got.status_code == 200 and got.content[:2] == b"PK"  # an xlsx (zip)
    assert (await client.get(f"/api/v1/reports/{rid}", headers=w["ma"])).status_code == 403
    assert (await client.get("/api/v1/reports/999999", headers=duty)).status_code == 404
    bad = await client.post("/api/v1/reports", headers=duty, json={"kind": "yearly", "date": "2026-11-01"})
    assert bad.status_code == 422
    # The schedule: the rollup catches up to yesterday, then yesterday's report in both formats.
    sched = platform.scheduler
    assert sched is not None
    assert await sched.run_once("health.rollup")
    assert await sched.run_once("reports.daily")
    kinds = [(x["kind"], x["format"]) for x in (await client.get("/api/v1/reports", headers=duty)).json()]
    assert kinds.count(("daily", "xlsx")) == 2 and ("daily", "pdf") in kinds
    # Run again: the marker says done; nothing new.
    assert await sched.run_once("reports.daily")
    assert len((await client.get("/api/v1/reports", headers=duty)).json()) == len(kinds)
