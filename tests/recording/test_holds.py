"""Evidence holds (证据锁定): retention past the window keeps every segment that overlaps an
active hold on its channel and deletes the rest; released, the hold lets retention delete
them. Through the API: placed on channels in scope only, listed to who may see every channel
of it, released once, audited. SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.api.conftest import admin, client, login, platform  # noqa: F401  (fixtures)
from xueliang.access.policy import Principal
from xueliang.app import Platform
from xueliang.db.tables import AuditRecord, Channel, Recording
from xueliang.recording.holds import HoldService
from xueliang.recording.index import segment_path
from xueliang.recording.plans import Policy
from xueliang.recording.retention import Retention
from xueliang.registry.models import ChannelIn, UnitIn

NOW = datetime(2026, 12, 4, 8, tzinfo=UTC)
CH, OTHER = "34020000001320000001", "34020000001320000002"
PW = "Harbour-Lamp-42"


def principal() -> Principal:
    return Principal(user_id=1, username="root", role="administrator")


async def test_retention_keeps_held_segments_until_the_hold_is_released(
        sessions: async_sessionmaker[AsyncSession], tmp_path: Path) -> None:
    root = tmp_path / "recordings"
    policy = Policy({1: 30, 2: 30, 3: 30}, 90, {1: True})
    async with sessions() as s, s.begin():
        for cid in (CH, OTHER):
            s.add(Channel(id=cid, name=cid, point_class=3, key_site=False))
            for minute in range(10):  # ten one-minute segments, 40 days old: beyond the 30 days
                start = NOW - timedelta(days=40) + timedelta(minutes=minute)
                rel = segment_path(cid, start)
                (root / rel).parent.mkdir(parents=True, exist_ok=True)
                (root / rel).write_bytes(b"x")
                s.add(Recording(channel_id=cid, start=start, end=start + timedelta(minutes=1), size=1, path=rel,
                                state="closed"))
            recent = NOW - timedelta(days=1)
            (root / segment_path(cid, recent)).parent.mkdir(parents=True, exist_ok=True)
            (root / segment_path(cid, recent)).write_bytes(b"x")
            s.add(Recording(channel_id=cid, start=recent, end=recent + timedelta(minutes=1), size=1,
                            path=segment_path(cid, recent), state="closed"))
    holds = HoldService(sessions)
    # minutes 2:30 to 5:00 of CH: segments 2, 3 and 4 overlap it (5 starts at its end)
    h = await holds.place(principal(), "A-1", [CH], NOW - timedelta(days=40, minutes=-2, seconds=-30),
                          NOW - timedelta(days=40, minutes=-5), "案件")
    job = Retention(policy, sessions, root)
    await job.run(None, now=NOW)

    async def left(cid: str) -> list[int]:
        async with sessions() as s:
            starts = (await s.scalars(select(Recording.start).where(Recording.channel_id == cid)
                                      .order_by(Recording.start))).all()
        return [round((t - (NOW - timedelta(days=40))).total_seconds() / 60) for t in starts]

    assert await left(CH) == [2, 3, 4, 40 * 24 * 60 - 24 * 60]  # held, and the recent one
    assert await left(OTHER) == [40 * 24 * 60 - 24 * 60]  # nothing held there: all old ones gone
    on_disk = sorted(p.name for p in (root / CH).rglob("*.mp4"))
    assert len(on_disk) == 4
    await job.run(None, now=NOW + timedelta(hours=1))  # runs again: still held
    assert len(await left(CH)) == 4
    await holds.release(principal(), h.id, "结案")
    await job.run(None, now=NOW + timedelta(hours=2))
    assert await left(CH) == [40 * 24 * 60 - 24 * 60]
    assert len(list((root / CH).rglob("*.mp4"))) == 1


async def test_holds_through_the_api_are_scoped_released_once_and_audited(
        platform: Platform, client: httpx.AsyncClient, admin: dict[str, str]) -> None:  # noqa: F811
    ua = await platform.registry.create_unit(UnitIn(name="甲单位", department="甲局"))
    ub = await platform.registry.create_unit(UnitIn(name="乙单位", department="乙局"))
    await platform.registry.create_channel(ChannelIn(id=CH, name="a", unit_id=ua.id))
    await platform.registry.create_channel(ChannelIn(id=OTHER, name="b", unit_id=ub.id))
    await platform.users.create("boss", PW, "supervisor", department="甲局")
    boss = await login(client, "boss", PW)
    body = {"case_number": "A-7", "channels": [CH], "start": "2026-11-01T00:00:00Z", "end": "2026-11-01T01:00:00Z",
            "reason": "案件证据"}
    r = await client.post("/api/v1/holds", json=body, headers=boss)
    assert r.status_code == 201, r.text
    mine = r.json()["id"]
    # another department's camera looks missing, alone or among one's own
    for channels in ([OTHER], [CH, OTHER]):
        out = await client.post("/api/v1/holds", json={**body, "channels": channels}, headers=boss)
        missing = await client.post("/api/v1/holds", json={**body, "channels": ["34020000001329999999"]}, headers=boss)
        assert out.status_code == missing.status_code == 404, out.text
    theirs = (await client.post("/api/v1/holds", json={**body, "channels": [OTHER]}, headers=admin)).json()["id"]
    assert [h["id"] for h in (await client.get("/api/v1/holds", headers=boss)).json()] == [mine]
    assert {h["id"] for h in (await client.get("/api/v1/holds", headers=admin)).json()} == {mine, theirs}
    # bad input is told
    bad = await client.post("/api/v1/holds", json={**body, "end": body["start"]}, headers=boss)
    assert bad.status_code == 422 and bad.headers["content-type"] == "application/problem+json"
    # releasing another department's hold: missing; one's own: once
    assert (await client.post(f"/api/v1/holds/{theirs}/release", json={}, headers=boss)).status_code == 404
    r = await client.post(f"/api/v1/holds/{mine}/release", json={"note": "结案"}, headers=boss)
    assert r.status_code == 200 and r.json()["active"] is False and r.json()["released_by"] == "boss", r.text
    again = await client.post(f"/api/v1/holds/{mine}/release", json={}, headers=boss)
    assert again.status_code == 409, again.text
    assert [h["id"] for h in (await client.get("/api/v1/holds", headers=admin, params={"active": "true"})).json()] == [theirs]
    await platform.access.audit.flush()
    async with platform.sessions() as s:
        recs = (await s.scalars(select(AuditRecord).where(AuditRecord.action.like("evidence.%"))
                                .order_by(AuditRecord.seq))).all()
    assert [(x.action, x.actor, x.resource_id, x.status) for x in recs if x.status in (200, 201)] == [
        ("evidence.hold", "boss", str(mine), 201), ("evidence.hold", "root", str(theirs), 201),
        ("evidence.release", "boss", str(mine), 200)]
