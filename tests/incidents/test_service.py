"""The incident centre's service: deadlines that survive a restart and escalate once (督办, the
supervisors told by a real SMTP server), rules that open cases from alarms on the bus, the
division of a place (boundaries, else the nearest camera), statistics over a range."""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select, update

from tests.health.test_notify import due_now
from tests.incidents.conftest import CAMERAS, city, settings
from xueliang.access.policy import Principal
from xueliang.app import Platform
from xueliang.bus import BusEvent
from xueliang.db.tables import (
    AuditRecord,
    Division,
    Incident,
    IncidentDispatch,
    IncidentStep,
    Notification,
)
from xueliang.incidents.inbound import CaseIn

ROOT = Principal(user_id=1, username="root", role="administrator")
DUTY = Principal(user_id=2, username="duty", role="operator")
CG = Principal(user_id=3, username="cg", role="department_user", department="城管局")


def case(**kw: Any) -> CaseIn:
    return CaseIn(**{"category": "安全隐患", "description": "井盖缺失", "longitude": 117.2301, "latitude": 31.8201,
                     **kw})


async def test_an_overdue_dispatch_is_escalated_once_after_a_restart(db_url: str, tmp_path: Path, smtp: Any) -> None:
    smtp_port, box = smtp
    cfg = settings(db_url, tmp_path, incidents={"supervisor_emails": ["boss@example.org"], "check_seconds": 0.2},
                   health={"smtp_host": "127.0.0.1", "smtp_port": smtp_port})
    first = Platform(cfg)
    await first.start(migrate=False)
    await city(first)
    made = await first.incidents.take_in_hotline(DUTY, case())
    out = await first.incidents.dispatch(DUTY, made["id"], [("城管局", None)], "请处置")
    assert out["dispatches"][0]["deadline"] > datetime.now(UTC) + timedelta(hours=71)  # normal: 72 h
    async with first.sessions() as s, s.begin():  # the deadline passes while the platform is down
        await s.execute(update(IncidentDispatch).values(deadline=datetime.now(UTC) - timedelta(minutes=1)))
    await first.stop()
    second = Platform(cfg.model_copy(update={"scheduler": cfg.scheduler.model_copy(update={"enabled": True})}))
    await second.start(migrate=False)
    try:
        for _ in range(100):
            async with second.sessions() as s:
                i = await s.get(Incident, made["id"])
            if i is not None and i.flagged:
                break
            await asyncio.sleep(0.1)
        assert i is not None and i.flagged and i.escalated_at is not None
        assert await second.incidents.check_deadlines() == 0  # once
        async with second.sessions() as s:
            steps = (await s.scalars(select(IncidentStep.step).where(IncidentStep.incident_id == i.id))).all()
            notes = (await s.scalars(select(Notification).where(Notification.key.like(f"incident-{i.id}-%")))).all()
        assert steps.count("escalate") == 1
        assert {n.channel for n in notes} == {"console", "email"}
        for _ in range(100):  # the scheduler's notification job sends the e-mail
            if box.messages:
                break
            await due_now(second.sessions)
            await asyncio.sleep(0.1)
        assert box.messages and box.messages[0].rcpt_tos == ["boss@example.org"]
        mail = email.message_from_bytes(box.messages[0].content, policy=email.policy.default)
        assert "督办" in str(mail["Subject"]) and f"incident {i.id}" in str(mail["Subject"])
        body = json.loads(mail.get_content())  # type: ignore[attr-defined]
        assert body["event"] == "supervise" and body["incident"]["id"] == i.id
        await second.access.audit.flush()
        async with second.sessions() as s:
            rec = (await s.scalars(select(AuditRecord).where(AuditRecord.action == "incident.escalate"))).all()
        assert len(rec) == 1 and rec[0].actor == "platform" and rec[0].resource_id == str(i.id)
        flagged = await second.incidents.find(DUTY, flagged=True)
        assert [c["id"] for c in flagged["items"]] == [i.id]
        overdue = await second.incidents.find(DUTY, overdue=True)
        assert [c["id"] for c in overdue["items"]] == [i.id]
    finally:
        await second.stop()


async def test_rules_open_cases_from_alarms_once(platform: Platform) -> None:
    await city(platform)
    svc = platform.incidents
    await svc.add_rule(DUTY, name="入侵", alarm_types=["2"], division="340102", category="治安", priority="urgent")
    await svc.add_rule(DUTY, name="别处", alarm_types=[], division="350", category="其他", priority="low")
    cam = CAMERAS[2]
    platform.bus.publish("alarm", cam[0], alarm_type="2", description="越界", device="d")
    for _ in range(100):
        async with platform.sessions() as s:
            rows = (await s.scalars(select(Incident))).all()
        if rows:
            break
        await asyncio.sleep(0.05)
    assert len(rows) == 1
    i = rows[0]
    assert (i.source, i.category, i.priority, i.division_code) == ("rule", "治安", "urgent", cam[4])
    assert (i.longitude, i.latitude, i.alarm_channel_id) == (cam[1], cam[2], cam[0])
    # the bus delivers at least once: the same alarm again opens nothing
    ev = BusEvent("alarm", CAMERAS[0][0], {"alarm_type": "2"}, at=1_700_000_000.0)
    assert await svc.apply_rules(ev) is not None
    assert await svc.apply_rules(ev) is None
    # another type: no rule matches
    assert await svc.apply_rules(BusEvent("alarm", CAMERAS[0][0], {"alarm_type": "5"})) is None
    await platform.access.audit.flush()
    async with platform.sessions() as s:
        rec = (await s.scalars(select(AuditRecord).where(AuditRecord.action == "incident.receive"))).all()
    assert len(rec) == 2 and {json.dumps(r.detail, ensure_ascii=False).count("入侵") for r in rec} == {1}


async def test_the_division_of_a_place(platform: Platform) -> None:
    await city(platform)
    square = {"type": "Polygon", "coordinates": [[[117.22, 31.81], [117.24, 31.81], [117.24, 31.83],
                                                  [117.22, 31.83], [117.22, 31.81]]]}
    small = {"type": "Polygon", "coordinates": [[[117.229, 31.819], [117.231, 31.819], [117.231, 31.821],
                                                 [117.229, 31.821], [117.229, 31.819]]]}
    svc = platform.incidents
    # no boundary anywhere: the nearest camera's division, and how far it is
    code, basis, metres = await svc.place(117.2302, 31.8201)  # ~19 m east and ~11 m north of camera 1
    assert (code, basis) == ("340102001", "nearest_channel") and metres is not None and 21 < metres < 23
    assert await svc.place(118.5, 32.5) == (None, "none", None)
    async with platform.sessions() as s, s.begin():
        s.add(Division(code="340102009", name="街道", level="township", boundary=json.dumps(square)))
        s.add(Division(code="340102009001001", name="网格", level="grid", boundary=json.dumps(small)))
    svc._areas = (0.0, [])  # boundaries are cached for a minute
    assert await svc.place(117.2301, 31.8201) == ("340102009001001", "boundary", None)  # the smallest
    assert await svc.place(117.235, 31.825) == ("340102009", "boundary", None)
    out = await svc.take_in_hotline(DUTY, case(longitude=117.235, latitude=31.825))
    assert (out["division_code"], out["division_basis"]) == ("340102009", "boundary")


async def test_statistics_over_a_range(platform: Platform) -> None:
    await city(platform)
    svc = platform.incidents
    ids = [(await svc.take_in_hotline(DUTY, case(category=c)))["id"] for c in ("治安", "治安", "交通", "环境")]
    # 1: dispatched, fed back on time, closed after, rated 5; 2: fed back late, closed, rated 2;
    # 3: overdue, not fed back; 4: merged into 1
    d = {}
    for i in ids[:3]:
        d[i] = (await svc.dispatch(DUTY, i, [("城管局", None)], ""))["dispatches"][0]["id"]
    await svc.department_step(CG, ids[0], d[ids[0]], "feedback", "已办")
    async with platform.sessions() as s, s.begin():
        await s.execute(update(IncidentDispatch).where(IncidentDispatch.id.in_([d[ids[1]], d[ids[2]]]))
                        .values(deadline=datetime.now(UTC) - timedelta(hours=1)))
    await svc.department_step(CG, ids[1], d[ids[1]], "feedback", "晚了")
    for i, r in ((ids[0], 5), (ids[1], 2)):
        await svc.close(DUTY, i, "已结")
        await svc.rate(DUTY, i, r, "")
    await svc.merge(DUTY, ids[3], ids[0], "重复")
    async with platform.sessions() as s, s.begin():  # case 1 took two hours to close
        await s.execute(update(Incident).where(Incident.id == ids[0]).values(close_seconds=7200))
        await s.execute(update(Incident).where(Incident.id == ids[1]).values(close_seconds=3600))
    now = datetime.now(UTC)
    st = await svc.stats(DUTY, now - timedelta(days=1), now + timedelta(minutes=1), 9)
    assert st["intake"] == 4 and st["by_category"] == {"治安": 2, "交通": 1, "环境": 1}
    assert st["by_source"] == {"hotline": 4} and st["by_division"] == [{"division": "340102001", "count": 4}]
    assert st["closed"] == 2 and st["merged"] == 1 and st["closure_rate"] == round(100 * 2 / 3, 2)
    assert (st["on_time"], st["late"], st["overdue"]) == (1, 1, 1) and st["on_time_rate"] == round(100 / 3, 2)
    assert st["time_to_close_hours"] == 1.5
    assert st["satisfaction"] == 3.5 and st["satisfied_rate"] == 50.0
    assert st["departments"] == [{"department": "城管局", "dispatched": 3, "on_time": 1, "late": 1, "overdue": 1,
                                  "on_time_rate": round(100 / 3, 2)}]
    # a range before any case: nothing, and rates that are not made up
    empty = await svc.stats(DUTY, now - timedelta(days=30), now - timedelta(days=29), 6)
    assert empty["intake"] == 0 and empty["closure_rate"] is None and empty["on_time_rate"] is None
    # the department's own figures: the three dispatched to it (the merged one never was)
    mine = await svc.stats(CG, now - timedelta(days=1), now + timedelta(minutes=1), 6)
    assert mine["intake"] == 3


def test_without_health_the_centre_keeps_its_own_outbox(tmp_path: Path) -> None:
    """health.enabled = false: the supervisors and the emergency systems are still told, through
    an outbox of the centre's own that a scheduler job of its own sends."""
    on = Platform(settings(f"sqlite+aiosqlite:///{tmp_path}/a.db", tmp_path, scheduler={"enabled": True}))
    off = Platform(settings(f"sqlite+aiosqlite:///{tmp_path}/b.db", tmp_path, scheduler={"enabled": True},
                            health={"enabled": False}))
    assert on.health is not None and on.incidents.notifier is on.health.notifier
    assert on.scheduler is not None and "incidents.notify" not in on.scheduler.jobs
    assert off.health is None and off.incidents.notifier is not None
    assert "emergency" in off.incidents.notifier.channels and "email" in off.incidents.notifier.channels
    assert off.scheduler is not None and {"incidents.notify", "incidents.deadlines"} <= set(off.scheduler.jobs)
