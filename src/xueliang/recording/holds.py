"""Evidence holds (证据锁定): recordings of some channels over a time range, kept for a case.

Retention (recording/retention.py, the one deletion path, disk-full clean-up included) deletes
no segment that overlaps an active hold on its channel (:func:`not_held`); releasing the hold
(its own right, ``evidence.release``, audited) lets retention delete them again. An export
places a hold over its range by default.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, not_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from xueliang.access.policy import Action, Principal, scope_conditions
from xueliang.db.tables import Channel, EvidenceHold, Recording
from xueliang.errors import Conflict, Invalid, NotFound

MAX_CHANNELS = 64
#: A hold listing answers at most this many.
LIST_LIMIT = 1000


def describe(h: EvidenceHold) -> dict[str, Any]:
    return {
        "id": h.id, "case_number": h.case_number, "channel_ids": h.channel_ids, "start": h.start, "end": h.end,
        "reason": h.reason, "created_by": h.created_by, "created_at": h.created_at, "export_id": h.export_id,
        "active": h.released_at is None, "released_at": h.released_at, "released_by": h.released_by,
        "release_note": h.release_note,
    }


def check_range(channel_ids: list[str], start: datetime, end: datetime) -> list[str]:
    """The channels, deduplicated in order; Invalid for what cannot be held or exported."""
    ids = list(dict.fromkeys(channel_ids))
    if not ids or len(ids) > MAX_CHANNELS:
        raise Invalid(f"name 1 to {MAX_CHANNELS} channels")
    if start.tzinfo is None or end.tzinfo is None:
        raise Invalid("start and end need a time zone (…Z or +08:00)")
    if end <= start:
        raise Invalid("end must be after start")
    return ids


async def held_spans(s: AsyncSession) -> dict[str, list[tuple[datetime, datetime]]]:
    """Every active hold, by channel: the spans retention must keep."""
    out: dict[str, list[tuple[datetime, datetime]]] = {}
    for ids, a, b in (await s.execute(select(EvidenceHold.channel_ids, EvidenceHold.start, EvidenceHold.end)
                                      .where(EvidenceHold.released_at.is_(None)))).all():
        for cid in ids or ():
            out.setdefault(str(cid), []).append((a, b))
    return out


def not_held(spans: Iterable[tuple[datetime, datetime]]) -> list[ColumnElement[bool]]:
    """Conditions on ``recordings`` (of one channel): the segment overlaps none of ``spans``."""
    return [not_(and_(Recording.start < b, Recording.end > a)) for a, b in spans]


class HoldService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def place(self, p: Principal, case_number: str, channel_ids: list[str], start: datetime, end: datetime,
                    reason: str, *, export_id: int | None = None, s: AsyncSession | None = None) -> EvidenceHold:
        """A new active hold (the caller has checked the channels are the principal's to hold)."""
        ids = check_range(channel_ids, start, end)
        if not case_number.strip():
            raise Invalid("a hold needs its case number")
        h = EvidenceHold(case_number=case_number.strip()[:100], channel_ids=ids, start=start, end=end,
                         reason=(reason or "").strip()[:1000], created_by_id=p.user_id, created_by=p.username,
                         created_at=datetime.now(UTC), export_id=export_id)
        if s is not None:
            s.add(h)
            await s.flush()
            return h
        async with self.sessions() as own, own.begin():
            own.add(h)
        return h

    async def _visible(self, p: Principal, holds: list[EvidenceHold], action: Action) -> list[EvidenceHold]:
        """The holds every channel of which is in ``p``'s scope for ``action``."""
        if p.unrestricted:
            return holds
        ids = {c for h in holds for c in h.channel_ids}
        async with self.sessions() as s:
            seen = set((await s.scalars(select(Channel.id).where(Channel.id.in_(ids),
                                                                 *scope_conditions(p, action)))).all())
        return [h for h in holds if set(h.channel_ids) <= seen]

    async def search(self, p: Principal, *, active: bool | None = None, case_number: str | None = None,
                     ) -> list[EvidenceHold]:
        q = select(EvidenceHold).order_by(EvidenceHold.id.desc()).limit(LIST_LIMIT)
        if active is not None:
            q = q.where(EvidenceHold.released_at.is_(None) if active else EvidenceHold.released_at.is_not(None))
        if case_number:
            q = q.where(EvidenceHold.case_number == case_number)
        async with self.sessions() as s:
            holds = list((await s.scalars(q)).all())
        return await self._visible(p, holds, Action.EVIDENCE_HOLD)

    async def get(self, p: Principal, hold_id: int, action: Action) -> EvidenceHold:
        async with self.sessions() as s:
            h = await s.get(EvidenceHold, hold_id)
        if h is None or not await self._visible(p, [h], action):
            raise NotFound(f"hold {hold_id} not found")
        return h

    async def release(self, p: Principal, hold_id: int, note: str) -> EvidenceHold:
        """End a hold (one whose every channel is in the caller's scope; another looks missing)."""
        await self.get(p, hold_id, Action.EVIDENCE_RELEASE)
        async with self.sessions() as s, s.begin():
            h = await s.get(EvidenceHold, hold_id)
            if h is None:
                raise NotFound(f"hold {hold_id} not found")
            if h.released_at is not None:
                raise Conflict(f"hold {hold_id} was released at {h.released_at.isoformat()} by {h.released_by}")
            h.released_at, h.released_by = datetime.now(UTC), p.username
            h.release_note = (note or "").strip()[:1000] or None
        return h
