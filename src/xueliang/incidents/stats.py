"""Statistics of the incident centre for any date range (by the day a case was taken in):
intake by source, category and division; closure rate (结案率); on-time rate of the
departments' feedback; time to close; the reporters' satisfaction.

One pass over the cases taken in during the range (grouped by source, category and division
prefix, with the closure and rating sums alongside) and one over the dispatches made during it,
grouped by department: a department's on-time rate for March is that of the cases dispatched to
it in March. The dispatches are joined to their cases only when the caller's scope is the
cases' (a centre of one district); a department's scope is its own dispatches.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import case, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from xueliang.db.tables import Incident, IncidentDispatch


def _pct(n: float, d: float) -> float | None:
    return round(100.0 * n / d, 2) if d else None


async def statistics(sessions: async_sessionmaker[AsyncSession], visibility: Sequence[Any], since: datetime,
                     until: datetime, level: int, *, department: str | None = None) -> dict[str, Any]:
    """``level``: the division code's length to group by (2 province … 12 village, or more for grids).
    ``department``: a department's own figures (its dispatches only)."""
    closed = func.sum(case((Incident.status == "closed", 1), else_=0))
    merged = func.sum(case((Incident.status == "merged", 1), else_=0))
    div = func.substr(func.coalesce(Incident.division_code, ""), 1, level)
    stmt = (select(Incident.source, Incident.category, div, func.count(), closed, merged,
                   func.sum(Incident.close_seconds), func.count(Incident.close_seconds),
                   func.sum(Incident.rating), func.count(Incident.rating),
                   func.sum(case((Incident.rating >= 4, 1), else_=0)),
                   func.sum(case((Incident.flagged.is_(True), 1), else_=0)))
            .where(Incident.created_at >= since, Incident.created_at < until, *visibility)
            .group_by(Incident.source, Incident.category, div))
    now = datetime.now(UTC)
    dq = (select(IncidentDispatch.department, func.count(),
                 func.sum(case((IncidentDispatch.on_time.is_(True), 1), else_=0)),
                 func.sum(case((IncidentDispatch.on_time.is_(False), 1), else_=0)),
                 func.sum(case(((IncidentDispatch.status.in_(("dispatched", "handling")))
                                & (IncidentDispatch.deadline < now), 1), else_=0)))
          .where(IncidentDispatch.dispatched_at >= since, IncidentDispatch.dispatched_at < until,
                 IncidentDispatch.status.not_in(("reassigned", "returned")))
          .group_by(IncidentDispatch.department))
    if department is not None:
        dq = dq.where(IncidentDispatch.department == department)
    elif visibility:
        dq = dq.join(Incident, Incident.id == IncidentDispatch.incident_id).where(*visibility)
    async with sessions() as s, s.begin():
        if (await s.connection()).dialect.name == "postgresql":
            # A year groups thousands of (source, category, division) rows: in memory, not in
            # sorted runs on disk (the default 4 MB), and without JIT compiling (slower here).
            await s.execute(text("SET LOCAL work_mem = '64MB'"))
            await s.execute(text("SET LOCAL jit = off"))
        rows = (await s.execute(stmt)).all()
        drows = (await s.execute(dq)).all()
    by_source: dict[str, int] = {}
    by_category: dict[str, int] = {}
    by_division: dict[str, int] = {}
    total = n_closed = n_merged = flagged = rated = satisfied = 0
    close_sum = close_n = 0
    rating_sum = 0
    for src, cat, dv, n, c, m, cs, cn, rs, rn, sat, fl in rows:
        n = int(n)
        total += n
        by_source[src] = by_source.get(src, 0) + n
        by_category[cat] = by_category.get(cat, 0) + n
        by_division[dv or ""] = by_division.get(dv or "", 0) + n
        n_closed += int(c or 0)
        n_merged += int(m or 0)
        close_sum += int(cs or 0)
        close_n += int(cn or 0)
        rating_sum += int(rs or 0)
        rated += int(rn or 0)
        satisfied += int(sat or 0)
        flagged += int(fl or 0)
    departments = []
    on_time = late = overdue = dispatched = 0
    for dept, n, ok, bad, od in sorted(drows, key=lambda r: -int(r[1])):
        ok, bad, od = int(ok or 0), int(bad or 0), int(od or 0)
        departments.append({"department": dept, "dispatched": int(n), "on_time": ok, "late": bad, "overdue": od,
                            "on_time_rate": _pct(ok, ok + bad + od)})
        dispatched += int(n)
        on_time, late, overdue = on_time + ok, late + bad, overdue + od
    return {
        "from": since, "to": until, "level": level,
        "intake": total,
        "by_source": dict(sorted(by_source.items(), key=lambda kv: -kv[1])),
        "by_category": dict(sorted(by_category.items(), key=lambda kv: -kv[1])),
        "by_division": [{"division": k or None, "count": v}
                        for k, v in sorted(by_division.items(), key=lambda kv: (-kv[1], kv[0]))],
        "closed": n_closed, "merged": n_merged, "flagged": flagged,
        # Duplicates merged into another case are not cases of their own.
        "closure_rate": _pct(n_closed, total - n_merged),
        "dispatched": dispatched, "on_time": on_time, "late": late, "overdue": overdue,
        "on_time_rate": _pct(on_time, on_time + late + overdue),
        "time_to_close_hours": round(close_sum / close_n / 3600.0, 2) if close_n else None,
        "rated": rated,
        "satisfaction": round(rating_sum / rated, 2) if rated else None,
        "satisfied_rate": _pct(satisfied, rated),
        "departments": departments,
    }


__all__ = ["statistics"]
