"""The daily rollup: each channel's day as seconds in each state, one row per channel and day.

Days are the city's local days (``health.utc_offset_hours``). A channel with no interval in
a day, or part of one, has that time as unknown: never online. The channel's class, division,
department, unit and team are copied into its row as they are when the day is rolled up, so
rates by any of them over any range are sums over these rows. Idempotent: rolling a day up
again rewrites its rows (picture counts, which the recorder adds during the day, stay).
"""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Table, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from xueliang.db.tables import Channel, DailyHealth, DailyHealthGroup, Device, StateInterval
from xueliang.db.upsert import batch_size, insert_for
from xueliang.health.states import FAULT, OFFLINE, ONLINE
from xueliang.health.teams import load_resolver

_IV: Table = StateInterval.__table__  # type: ignore[assignment]
_DAY: Table = DailyHealth.__table__  # type: ignore[assignment]
_GRP: Table = DailyHealthGroup.__table__  # type: ignore[assignment]
#: Group rows keep this many digits of the division (a township).
GROUP_DIGITS = 9
DAY_SECONDS = 86400
COLUMN = {ONLINE: "online_s", FAULT: "fault_s", OFFLINE: "offline_s"}


def day_window(day: date, utc_offset_hours: float) -> tuple[datetime, datetime]:
    start = datetime(day.year, day.month, day.day, tzinfo=UTC) - timedelta(hours=utc_offset_hours)
    return start, start + timedelta(days=1)


def local_today(utc_offset_hours: float, now: float | None = None) -> date:
    t = datetime.fromtimestamp(time.time() if now is None else now, UTC)
    return (t + timedelta(hours=utc_offset_hours)).date()


def seconds_by_state(intervals: list[tuple[str, datetime, datetime | None]], start: datetime, end: datetime,
                     now: datetime) -> dict[str, int]:
    """Seconds of [start, end) spent in each state (what no interval covers is unknown)."""
    out = {"online_s": 0, "fault_s": 0, "offline_s": 0}
    covered = 0.0
    for state, a, b in intervals:
        a2 = max(a, start)
        b2 = min(b if b is not None else now, end)
        if b2 <= a2:
            continue
        secs = (b2 - a2).total_seconds()
        col = COLUMN.get(state)
        if col is not None:
            out[col] += round(secs)
        covered += secs
    total = round((end - start).total_seconds())
    known = out["online_s"] + out["fault_s"] + out["offline_s"]
    out["unknown_s"] = max(0, total - known)
    return out


async def rollup_day(sessions: async_sessionmaker[AsyncSession], day: date, utc_offset_hours: float,
                     now: datetime | None = None) -> int:
    """Roll ``day`` up for every camera channel. Returns the rows written."""
    start, end = day_window(day, utc_offset_hours)
    now = now or datetime.now(UTC)
    async with sessions() as s:
        resolver = await load_resolver(s)
        channels = (await s.execute(
            select(Channel.id, Channel.division_code, Channel.point_class, Channel.department, Channel.unit_id,
                   Device.platform_id)
            .outerjoin(Device, Device.id == Channel.device_id).where(Channel.kind == "camera")
        )).all()
        by_channel: dict[str, list[tuple[str, datetime, datetime | None]]] = {}
        result = await s.stream(
            select(_IV.c.subject, _IV.c.state, _IV.c.start, _IV.c.end)
            .where(_IV.c.subject_kind == "channel", _IV.c.start < end,
                   (_IV.c.end.is_(None)) | (_IV.c.end > start))
            .execution_options(yield_per=20_000)
        )
        async for subj, state, a, b in result:
            by_channel.setdefault(subj, []).append((state, _aware(a), _aware(b) if b is not None else None))
    rows: list[dict[str, Any]] = []
    for cid, div, cls, dept, unit, platform in channels:
        secs = seconds_by_state(by_channel.get(cid, []), start, end, now)
        rows.append({"day": day, "channel_id": cid, "division_code": div or "", "point_class": cls,
                     "department": dept, "unit_id": unit, "team_id": resolver.team(platform, unit, div),
                     "attempts": 0, "pictures": 0, "rolled": True, **secs})
    async with sessions() as s, s.begin():
        ins = insert_for(s, _DAY)
        ex = ins.excluded
        keep = ("division_code", "point_class", "department", "unit_id", "team_id", "online_s", "fault_s",
                "offline_s", "unknown_s", "rolled")
        stmt = ins.on_conflict_do_update(index_elements=["day", "channel_id"], set_={k: ex[k] for k in keep})
        n = batch_size(s, 14)
        for i in range(0, len(rows), n):
            await s.execute(stmt, rows[i:i + n])
        await regroup_day(s, day)
    return len(rows)


async def regroup_day(s: AsyncSession, day: date) -> None:
    """The day's group rows (per township, class, department, unit, team), from its channel rows."""
    d = _DAY.c
    key = (func.substr(d.division_code, 1, GROUP_DIGITS), d.point_class, d.department, d.unit_id, d.team_id)
    await s.execute(delete(_GRP).where(_GRP.c.day == day))
    await s.execute(_GRP.insert().from_select(
        ["day", "division_code", "point_class", "department", "unit_id", "team_id", "points", "online_s", "fault_s",
         "offline_s", "unknown_s", "attempts", "pictures"],
        select(d.day, *key, func.count(), func.sum(d.online_s), func.sum(d.fault_s), func.sum(d.offline_s),
               func.sum(d.unknown_s), func.sum(d.attempts), func.sum(d.pictures))
        .where(d.day == day, d.rolled.is_(True)).group_by(d.day, *key)))


def _aware(d: datetime) -> datetime:
    return d if d.tzinfo is not None else d.replace(tzinfo=UTC)
