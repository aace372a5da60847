"""Availability (在线率), intact (完好率) and picture (出图率) rates over the daily rows.

availability = (online + fault seconds) / scheduled seconds; intact = online seconds /
scheduled seconds (scheduled: the whole day; unknown time counts against both); picture rate =
attempts that got a picture / attempts. By point class, division, department, owner unit,
maintenance team, day or point, for any range of days, within what the caller may see.

Two sources, the same sums: the group rows (per day, township, class, department, unit and team)
answer whatever they can express — a city, a county or a township over a month in a few
thousand rows; the channel rows answer the rest (a village, one point, grouping by point, a
scope that only a join to the channels can express).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Table, and_, false, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from xueliang.db.tables import Channel, DailyHealth, DailyHealthGroup
from xueliang.health.rollup import GROUP_DIGITS

_DAY: Table = DailyHealth.__table__  # type: ignore[assignment]
_GRP: Table = DailyHealthGroup.__table__  # type: ignore[assignment]
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


@dataclass(frozen=True, slots=True)
class DimScope:
    """A caller's scope as conditions on the rows' own columns (division subtrees, departments,
    classes): evaluated on the rows without a join. None fields: no condition."""

    ranges: tuple[tuple[str, str], ...] | None = None
    departments: frozenset[str] | None = None
    classes: frozenset[int] | None = None


def rate(part: int | float, whole: int | float) -> float | None:
    return round(100.0 * part / whole, 3) if whole else None


def _conditions(t: Table, f: RateFilter, dims: DimScope | None) -> list[Any]:
    c: list[Any] = [t.c.day >= f.start, t.c.day <= f.end]
    if t is _DAY:
        c.append(t.c.rolled.is_(True))
    if f.division:
        c += [t.c.division_code >= f.division, t.c.division_code < f.division + ":"]
    if f.point_class is not None:
        c.append(t.c.point_class == f.point_class)
    if f.department is not None:
        c.append(t.c.department == f.department)
    if f.unit_id is not None:
        c.append(t.c.unit_id == f.unit_id)
    if f.team_id is not None:
        c.append(t.c.team_id == f.team_id)
    if f.channel_id is not None:
        c.append(t.c.channel_id == f.channel_id)
    if dims is not None:
        if dims.ranges is not None:
            c.append(or_(*(and_(t.c.division_code >= lo, t.c.division_code < hi) for lo, hi in dims.ranges))
                     if dims.ranges else false())
        if dims.departments is not None:
            c.append(t.c.department.in_(sorted(dims.departments)))
        if dims.classes is not None:
            c.append(t.c.point_class.in_(sorted(dims.classes)))
    return c


def _key(t: Table, group: str, division_digits: int) -> Any:
    if group == "channel":
        return t.c.channel_id
    return {
        "class": t.c.point_class, "department": t.c.department, "unit": t.c.unit_id,
        "team": t.c.team_id, "day": t.c.day,
        "division": func.substr(t.c.division_code, 1, division_digits),
    }[group]


def _sums(t: Table, days: bool = True) -> list[Any]:
    """The sums of a set of rows; ``days`` False: no count of distinct days (a grouped query
    takes the range's from its total: counting them per group would sort every group)."""
    point_days = func.sum(t.c.points) if t is _GRP else func.count()
    return [
        func.count(func.distinct(t.c.day)) if days else func.min(0), point_days, func.sum(t.c.online_s),
        func.sum(t.c.fault_s), func.sum(t.c.offline_s), func.sum(t.c.unknown_s),
        func.sum(t.c.attempts), func.sum(t.c.pictures),
    ]


def _out(row: Any, range_days: int | None = None) -> dict[str, Any]:
    days, point_days, on, fault, off, unknown, attempts, pictures = (int(x or 0) for x in row)
    if range_days is not None:
        days = range_days
    total = on + fault + off + unknown
    return {
        # Points: the average number of points a day over the range.
        "points": round(point_days / days) if days else 0, "point_days": point_days, "days": days,
        "availability": rate(on + fault, total), "intact": rate(on, total),
        "picture_rate": rate(pictures, attempts), "attempts": attempts, "pictures": pictures,
        "unknown_share": rate(unknown, total),
        "seconds": {"online": on, "fault": fault, "offline": off, "unknown": unknown},
    }


def _use_groups(f: RateFilter, scope: list[Any], group: str | None, division_digits: int,
                dims: DimScope | None) -> bool:
    if scope and dims is None:
        return False  # only a join to the channels expresses this scope
    if f.channel_id is not None or group == "channel":
        return False
    if f.division is not None and len(f.division) > GROUP_DIGITS:
        return False
    if group == "division" and division_digits > GROUP_DIGITS:
        return False
    return dims is None or dims.ranges is None or all(len(lo) <= GROUP_DIGITS for lo, _ in dims.ranges)


async def rates(sessions: async_sessionmaker[AsyncSession], f: RateFilter, *, scope: list[Any],
                teams: frozenset[int] | None, group: str | None = None, division_digits: int = 6,
                limit: int = 1000, dims: DimScope | None = None) -> dict[str, Any]:
    """Totals and, with ``group``, one line per group. ``scope``: the caller's channel scope as
    SQL over ``channels`` (empty: unrestricted); ``dims``: the same scope on the rows' own
    columns when it can be said so (then ``scope`` is not joined); ``teams``: only these
    teams' points (a maintenance team member), None: any."""
    t = _GRP if _use_groups(f, scope, group, division_digits, dims) else _DAY
    cond = _conditions(t, f, dims)
    if teams is not None:
        cond.append(t.c.team_id.in_(sorted(teams)) if teams else false())
    join = bool(scope) and dims is None

    def base(*cols: Any) -> Any:
        stmt = select(*cols).select_from(t)
        if join:
            stmt = stmt.join(Channel, Channel.id == t.c.channel_id).where(*scope)
        return stmt.where(*cond)

    async with sessions() as s:
        total = (await s.execute(base(*_sums(t)))).one()
        out: dict[str, Any] = {"from": f.start, "to": f.end, "total": _out(total)}
        if group is not None:
            key = _key(t, group, division_digits)
            rows = (await s.execute(base(key, *_sums(t, days=False)).group_by(key).order_by(key).limit(limit))).all()
            out["group"] = group
            days = out["total"]["days"]
            out["groups"] = [{"key": r[0], **_out(r[1:], 1 if group == "day" else days)} for r in rows]
    if not out["total"]["point_days"]:
        out["note"] = "no data for this range"
    return out


async def worst_points(sessions: async_sessionmaker[AsyncSession], f: RateFilter, limit: int = 20) -> list[dict[str, Any]]:
    """The points with the lowest availability over the range (then intact rate), worst first:
    ranked in the database, so a city's month costs one aggregate, not 100,000 rows sent."""
    d = _DAY.c
    total = d.online_s + d.fault_s + d.offline_s + d.unknown_s
    avail = func.sum(d.online_s + d.fault_s) * 1.0 / func.nullif(func.sum(total), 0)
    intact = func.sum(d.online_s) * 1.0 / func.nullif(func.sum(total), 0)
    stmt = (select(d.channel_id, avail, intact).where(*_conditions(_DAY, f, None)).group_by(d.channel_id)
            .order_by(avail, intact, d.channel_id).limit(limit))
    async with sessions() as s:
        rows = (await s.execute(stmt)).all()
    return [{"key": c, "availability": None if a is None else round(100.0 * float(a), 3),
             "intact": None if i is None else round(100.0 * float(i), 3)} for c, a, i in rows]
