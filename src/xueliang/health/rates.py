"""Availability (在线率), intact (完好率) and picture (出图率) rates over the daily rows.

availability = (online + fault seconds) / scheduled seconds; intact = online seconds /
scheduled seconds (scheduled: the whole day; unknown time counts against both); picture rate =
attempts that got a picture / attempts. By point class, division, department, owner unit,
maintenance team or day, for any range of days, within what the caller may see.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Table, false, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from xueliang.db.tables import Channel, DailyHealth

_DAY: Table = DailyHealth.__table__  # type: ignore[assignment]
GROUPS = ("class", "division", "department", "unit", "team", "day", "channel")


@dataclass(frozen=True, slots=True)
class RateFilter:
    start: date
    end: date  # inclusive
    division: str | None = None
    point_class: int | None = None
    department: str | None = None
    unit_id: int | None = None
    team_id: int | None = None
    channel_id: str | None = None


def rate(part: int | float, whole: int | float) -> float | None:
    return round(100.0 * part / whole, 3) if whole else None


def _conditions(f: RateFilter) -> list[Any]:
    c: list[Any] = [_DAY.c.day >= f.start, _DAY.c.day <= f.end, _DAY.c.rolled.is_(True)]
    if f.division:
        c += [_DAY.c.division_code >= f.division, _DAY.c.division_code < f.division + ":"]
    if f.point_class is not None:
        c.append(_DAY.c.point_class == f.point_class)
    if f.department is not None:
        c.append(_DAY.c.department == f.department)
    if f.unit_id is not None:
        c.append(_DAY.c.unit_id == f.unit_id)
    if f.team_id is not None:
        c.append(_DAY.c.team_id == f.team_id)
    if f.channel_id is not None:
        c.append(_DAY.c.channel_id == f.channel_id)
    return c


def _key(group: str, division_digits: int) -> Any:
    return {
        "class": _DAY.c.point_class, "department": _DAY.c.department, "unit": _DAY.c.unit_id,
        "team": _DAY.c.team_id, "day": _DAY.c.day, "channel": _DAY.c.channel_id,
        "division": func.substr(_DAY.c.division_code, 1, division_digits),
    }[group]


def _sums() -> list[Any]:
    return [
        func.count(func.distinct(_DAY.c.channel_id)), func.count(), func.sum(_DAY.c.online_s),
        func.sum(_DAY.c.fault_s), func.sum(_DAY.c.offline_s), func.sum(_DAY.c.unknown_s),
        func.sum(_DAY.c.attempts), func.sum(_DAY.c.pictures),
    ]


def _out(row: Any) -> dict[str, Any]:
    points, days, on, fault, off, unknown, attempts, pictures = (int(x or 0) for x in row)
    total = on + fault + off + unknown
    return {
        "points": points, "point_days": days, "availability": rate(on + fault, total), "intact": rate(on, total),
        "picture_rate": rate(pictures, attempts), "attempts": attempts, "pictures": pictures,
        "unknown_share": rate(unknown, total), "seconds": {"online": on, "fault": fault, "offline": off,
                                                          "unknown": unknown},
    }


async def rates(sessions: async_sessionmaker[AsyncSession], f: RateFilter, *, scope: list[Any],
                teams: frozenset[int] | None, group: str | None = None, division_digits: int = 6,
                limit: int = 1000) -> dict[str, Any]:
    """Totals and, with ``group``, one line per group. ``scope``: the caller's channel scope as
    SQL over ``channels`` (empty: unrestricted); ``teams``: only these teams' points (a
    maintenance team member), None: any."""
    cond = _conditions(f)
    if teams is not None:
        cond.append(_DAY.c.team_id.in_(sorted(teams)) if teams else false())
    base = select(*_sums()).select_from(_DAY)
    if scope:
        base = base.join(Channel, Channel.id == _DAY.c.channel_id)
        cond += scope
    async with sessions() as s:
        total = (await s.execute(base.where(*cond))).one()
        out: dict[str, Any] = {"from": f.start, "to": f.end, "total": _out(total)}
        if group is not None:
            key = _key(group, division_digits)
            stmt = select(key, *_sums()).select_from(_DAY)
            if scope:
                stmt = stmt.join(Channel, Channel.id == _DAY.c.channel_id)
            rows = (await s.execute(stmt.where(*cond).group_by(key).order_by(key).limit(limit))).all()
            out["group"] = group
            out["groups"] = [{"key": r[0], **_out(r[1:])} for r in rows]
    if not out["total"]["point_days"]:
        out["note"] = "no data for this range"
    return out
