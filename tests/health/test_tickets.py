"""Fault tickets: opened after the grace, one per episode, worked, verified, reopened, escalated."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from xueliang.bus import BusEvent, EventBus
from xueliang.config import HealthConfig
from xueliang.db.tables import MaintenanceDuty, MaintenanceTeam, Ticket, TicketStep
from xueliang.errors import Invalid
from xueliang.health.history import HistoryRecorder
from xueliang.health.tickets import TicketService


class Who:
    def __init__(self, name: str) -> None:
        self.username = name


def cfg(**kw: Any) -> HealthConfig:
    return HealthConfig(ticket_after_seconds=600, episode_gap_seconds=300, verify_seconds=1800,
                        reopen_seconds=7 * 86400, **kw)


async def setup(sessions: Any, city: dict[str, Any], **kw: Any) -> tuple[HistoryRecorder, TicketService, list[Any], int]:
    async with sessions() as s, s.begin():
        team = MaintenanceTeam(name="甲维保", contacts=[])
        s.add(team)
        await s.flush()
        s.add(MaintenanceDuty(team_id=team.id, kind="unit", ref=str(city["unit_a"])))
        tid = team.id
    audit: list[Any] = []
    rec = HistoryRecorder(sessions, EventBus(), episode_gap=300)
    await rec.load_channels()
    svc = TicketService(sessions, cfg(**kw), audit=lambda *a: audit.append(a))
    return rec, svc, audit, tid


async def tickets(sessions: Any) -> list[Ticket]:
    async with sessions() as s:
        return list((await s.scalars(select(Ticket).order_by(Ticket.id))).all())


async def test_a_flapping_point_gets_one_ticket_after_the_grace(sessions, city) -> None:
    rec, svc, audit, team_id = await setup(sessions, city)
    dev = city["devices"][0]
    t = time.time() - 3600
    evs = [BusEvent("device.online", dev, {}, t)]
    for i in range(60):  # flapping every 5 s for 10 minutes
        evs += [BusEvent("device.offline", dev, {}, t + 100 + 10 * i), BusEvent("device.online", dev, {}, t + 105 + 10 * i)]
    evs.append(BusEvent("device.offline", dev, {}, t + 800))
    await rec._handle(evs)
    # Before the grace is over (measured from the episode's start): nothing.
    r = await svc.check(datetime.fromtimestamp(t + 650, UTC))
    assert r.opened == 0
    r = await svc.check(datetime.fromtimestamp(t + 900, UTC))
    assert r.opened == 2  # the device's two cameras: one ticket each
    again = await svc.check(datetime.fromtimestamp(t + 1000, UTC))
    assert again.opened == 0
    ts = await tickets(sessions)
    assert {x.channel_id for x in ts} == set(city["by_device"][dev])
    assert all(x.team_id == team_id and x.kind == "offline" and x.status == "open" for x in ts)
    assert abs(ts[0].fault_since.timestamp() - (t + 100)) < 1e-3
    assert [a[0] for a in audit] == ["ticket.open", "ticket.open"]


async def test_steps_verify_close_reopen_and_repeat(sessions, city) -> None:
    rec, svc, _audit, _ = await setup(sessions, city, repeat_tickets=3, repeat_days=30)
    dev = city["devices"][0]
    ch = city["by_device"][dev][0]
    t0 = time.time() - 7200
    await rec._handle([BusEvent("device.online", dev, {}, t0), BusEvent("device.offline", dev, {}, t0 + 10)])
    await svc.check(datetime.fromtimestamp(t0 + 700, UTC))
    tk = next(x for x in await tickets(sessions) if x.channel_id == ch)
    who = Who("mnt")
    with pytest.raises(Invalid):
        await svc.step(who, tk.id, "resolve")  # a note is needed
    with pytest.raises(Invalid):
        await svc.step(who, tk.id, "reopen", note="x")  # not from open
    assert (await svc.step(who, tk.id, "acknowledge"))["status"] == "acknowledged"
    assert (await svc.step(who, tk.id, "repair"))["status"] == "repairing"
    out = await svc.step(who, tk.id, "resolve", note="换了电源", photo="p.jpg")
    assert out["status"] == "resolved" and out["photo"] is True
    # The point comes back; verified only once good for verify_seconds after the repair.
    back = time.time() - 60
    await rec._handle([BusEvent("device.online", dev, {}, back)])
    r = await svc.check(datetime.now(UTC))
    assert r.verified == 0
    r = await svc.check(datetime.now(UTC) + timedelta(seconds=1900))
    assert r.verified == 1  # the resolved ticket; the other camera's stays open
    tk2 = next(x for x in await tickets(sessions) if x.id == tk.id)
    assert tk2.status == "closed" and tk2.verified_at is not None
    # The fault returns within the reopen time: the same ticket reopens.
    await rec._handle([BusEvent("device.offline", dev, {}, time.time())])
    r = await svc.check(datetime.now(UTC) + timedelta(seconds=700))
    assert r.reopened == 1
    tk3 = next(x for x in await tickets(sessions) if x.id == tk.id)
    assert tk3.status == "open" and tk3.reopened == 1
    async with sessions() as s:
        steps = [x.step for x in (await s.scalars(select(TicketStep).where(TicketStep.ticket_id == tk.id)
                                                  .order_by(TicketStep.id))).all()]
    assert steps == ["open", "acknowledge", "repair", "resolve", "verify", "close", "reopen"]


async def test_escalation_once_when_the_service_level_is_breached(sessions, city) -> None:
    rec, svc, audit, _ = await setup(sessions, city)
    dev = city["devices"][0]
    t0 = time.time() - 3600
    await rec._handle([BusEvent("device.online", dev, {}, t0), BusEvent("device.offline", dev, {}, t0 + 1)])
    await svc.check(datetime.now(UTC))
    ts = await tickets(sessions)
    assert ts and all(x.point_class == 1 for x in ts)
    # Class I: acknowledge within 2 h (default service levels).
    assert (await svc.check(datetime.now(UTC) + timedelta(hours=1))).escalated == 0
    assert (await svc.check(datetime.now(UTC) + timedelta(hours=2, minutes=1))).escalated == len(ts)
    assert (await svc.check(datetime.now(UTC) + timedelta(hours=3))).escalated == 0  # once
    assert all(x.escalated_at is not None for x in await tickets(sessions))
    assert [a[0] for a in audit].count("ticket.escalate") == len(ts)
    assert await svc.find(scope=[], teams=None, overdue=True) == []  # not overdue yet (real time)
    assert len(await svc.find(scope=[], teams=None, overdue=False)) == len(ts)


async def test_a_duty_operator_opens_a_ticket_by_hand_once(sessions, city) -> None:
    _, svc, _, team_id = await setup(sessions, city)
    ch = city["channels"][0]
    out = await svc.open_by_hand(Who("duty"), ch, "画面模糊")
    assert out["kind"] == "manual" and out["team_id"] == team_id and out["opened_by"] == "duty"
    with pytest.raises(Invalid):
        await svc.open_by_hand(Who("duty"), ch, "again")


@pytest.mark.serial
async def test_ten_thousand_points_down_give_one_ticket_each_in_batches(sessions) -> None:
    from tests.health.conftest import make_city

    c = await make_city(sessions, devices=10_000, per_device=1)
    rec = HistoryRecorder(sessions, EventBus())
    await rec.load_channels()
    t = time.time() - 3600
    await rec._handle([BusEvent("device.online", d, {}, t) for d in c["devices"]])
    await rec._handle([BusEvent("device.offline", d, {"reason": "power"}, t + 5) for d in c["devices"]])
    svc = TicketService(sessions, cfg())
    t0 = time.perf_counter()
    r = await svc.check(datetime.now(UTC))
    took = time.perf_counter() - t0
    assert r.opened == 10_000
    assert (await svc.check(datetime.now(UTC))).opened == 0
    assert len({x.channel_id for x in await tickets(sessions)}) == 10_000
    assert took < 60
