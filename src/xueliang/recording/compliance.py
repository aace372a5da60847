"""Storage compliance (存储达标率) from what the platform really recorded, beside the survey's claim.

For each camera: the days of video actually kept (from its oldest segment in the index to now),
the days required (its own requirement, never below the programme's 30, or 90 at key sites),
and whether it complies: enough days kept, and — unless it records only on event — a segment in
the last day (a camera that stopped recording weeks ago does not keep its last 30 days). Next to
it, what the survey forms claim: the retention days of the unit's recording platform
(``platforms.retention_days``), the basis of the registry statistics' storage rate.

Rates are given overall, by point class, for key sites, and by child division; the caller's scope
narrows the cameras (as the statistics do).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from xueliang.config import MIN_KEY_SITE_RETENTION_DAYS, MIN_RETENTION_DAYS
from xueliang.db.tables import Channel, Platform, Recording, RecordingPlan
from xueliang.recording.channel_plans import spec_of
from xueliang.recording.plans import Policy
from xueliang.registry.models import ChannelFilter
from xueliang.registry.service import channel_conditions
from xueliang.registry.stats import Rate

DAY = 86400.0
#: A camera that records (not only on event) has a segment this recent, or it is not recording.
CURRENT = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Kept:
    channel_id: str
    name: str
    point_class: int | None
    key_site: bool
    division_code: str
    department: str | None
    mode: str
    days_required: int
    days_kept: float
    oldest: datetime | None
    newest: datetime | None
    compliant: bool
    claimed_days: int | None

    @property
    def claimed_compliant(self) -> bool | None:
        return None if self.claimed_days is None else self.claimed_days >= self.days_required

    def as_dict(self) -> dict[str, Any]:
        return {"channel_id": self.channel_id, "name": self.name, "point_class": self.point_class,
                "key_site": self.key_site, "division_code": self.division_code, "department": self.department,
                "mode": self.mode, "days_required": self.days_required, "days_kept": self.days_kept,
                "oldest": self.oldest, "newest": self.newest, "compliant": self.compliant,
                "claimed_days": self.claimed_days, "claimed_compliant": self.claimed_compliant}


def required_days(own: int | None, key_site: bool) -> int:
    floor = MIN_KEY_SITE_RETENTION_DAYS if key_site else MIN_RETENTION_DAYS
    return max(own or 0, floor)


def summary(items: Iterable[Kept]) -> dict[str, Any]:
    rows = list(items)
    claimed = [k for k in rows if k.claimed_days is not None]
    return {
        "points": len(rows),
        "recorded": Rate.of(sum(1 for k in rows if k.oldest is not None), len(rows)).model_dump(),
        "compliance": Rate.of(sum(1 for k in rows if k.compliant), len(rows)).model_dump(),
        "claimed": Rate.of(sum(1 for k in claimed if k.claimed_compliant), len(claimed)).model_dump(),
        "average_days_kept": round(sum(k.days_kept for k in rows) / len(rows), 2) if rows else None,
    }


def child_length(division: str | None) -> int:
    """The code length of the divisions just below ``division`` (as the statistics break down)."""
    if not division:
        return 6
    n = len(division)
    for size in (4, 6, 9, 12):
        if size > n:
            return size
    return n + 3


async def kept(sessions: async_sessionmaker[AsyncSession], policy: Policy, now: datetime, *,
               division: str | None = None, department: str | None = None,
               extra: Sequence[Any] = ()) -> list[Kept]:
    """Every camera in the filters (and ``extra``: the caller's scope), with what it keeps."""
    # one index probe per camera (channel_id, start), not a scan of millions of segments
    oldest = select(func.min(Recording.start)).where(Recording.channel_id == Channel.id).scalar_subquery()
    newest = select(func.max(Recording.start)).where(Recording.channel_id == Channel.id).scalar_subquery()
    claimed = (select(Platform.unit_id, func.max(Platform.retention_days).label("days"))
               .group_by(Platform.unit_id).subquery())
    where = [Channel.kind == "camera", *channel_conditions(ChannelFilter(division=division, department=department)),
             *extra]
    stmt = (select(Channel.id, Channel.name, Channel.point_class, Channel.key_site, Channel.division_code,
                   Channel.department, Channel.retention_days_required, oldest.label("oldest"),
                   newest.label("newest"), claimed.c.days)
            .select_from(Channel).outerjoin(claimed, claimed.c.unit_id == Channel.unit_id)
            .where(*where).order_by(Channel.id))
    async with sessions() as s:
        rows = (await s.execute(stmt)).all()
        own = {r.channel_id: spec_of(r) for r in (await s.scalars(
            select(RecordingPlan).where(RecordingPlan.channel_id.in_(
                select(Channel.id).where(*where))))).all()}
    out: list[Kept] = []
    for cid, name, pc, ks, div, dept, req, first, last, claim in rows:
        plan = policy.plan(cid, pc, bool(ks), div or "", own.get(cid))
        need = required_days(req, bool(ks))
        days = round(max(0.0, (now - first).total_seconds() / DAY), 2) if first is not None else 0.0
        current = last is not None and (plan.mode == "event" or last >= now - CURRENT)
        out.append(Kept(cid, name, pc, bool(ks), div or "", dept, plan.mode, need, days, first, last,
                        first is not None and days >= need and current, claim))
    return out


async def compliance(sessions: async_sessionmaker[AsyncSession], policy: Policy, now: datetime, *,
                     division: str | None = None, department: str | None = None, extra: Sequence[Any] = (),
                     limit: int = 100, after: str | None = None) -> dict[str, Any]:
    """The rates overall, by class, for key sites and by child division; and a page of cameras."""
    items = await kept(sessions, policy, now, division=division, department=department, extra=extra)
    by_class: dict[str, list[Kept]] = {"1": [], "2": [], "3": [], "unknown": []}
    for k in items:
        by_class[str(k.point_class) if k.point_class in (1, 2, 3) else "unknown"].append(k)
    size = child_length(division)
    by_div: dict[str, list[Kept]] = {}
    for k in items:
        by_div.setdefault(k.division_code[:size], []).append(k)
    page = [k for k in items if after is None or k.channel_id > after][:limit]
    return {
        "at": now, "division": division, "department": department,
        **summary(items),
        "by_class": {c: summary(v) for c, v in by_class.items()},
        "key_sites": summary(k for k in items if k.key_site),
        "by_division": [{"code": code, **summary(v)} for code, v in sorted(by_div.items())],
        "items": [k.as_dict() for k in page],
        "next_after": page[-1].channel_id if len(page) == limit else None,
    }
