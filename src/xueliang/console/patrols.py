"""Patrols (轮巡) kept by the platform: the next duty shift finds the rounds the last one set up.

A patrol belongs to its owner; a shared one is seen by every user of the owner's department
(users of no department — the centre's staff — share among themselves). Whoever sees a patrol
sees only the cameras of it that are in their own scope (the others are counted, not named),
and playing them is authorized stream by stream as always. Only the owner (or an
administrator) changes or deletes a patrol, and a patrol can only be made of cameras its author
may watch.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from xueliang.access.policy import Action, Principal, scope_conditions
from xueliang.db.tables import Channel, Patrol
from xueliang.errors import Forbidden, Invalid, NotFound

LAYOUTS = (1, 4, 9, 16)
MAX_CHANNELS = 256


@dataclass(slots=True)
class PatrolIn:
    name: str
    layout: int
    interval: int
    channel_ids: list[str]
    shared: bool = False


class PatrolService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    @staticmethod
    def _seen_by(p: Principal) -> Any:
        same_department = Patrol.department.is_(None) if p.department is None else Patrol.department == p.department
        return or_(Patrol.owner_id == p.user_id, and_(Patrol.shared.is_(True), same_department))

    async def visible(self, p: Principal) -> list[dict[str, Any]]:
        async with self.sessions() as s:
            rows = list((await s.scalars(select(Patrol).where(self._seen_by(p)).order_by(Patrol.name, Patrol.id))).all())
            cameras = await self._cameras(s, p, {c for r in rows for c in r.channel_ids or []})  # one query for all
            return [self._describe(p, r, cameras) for r in rows]

    async def get(self, p: Principal, patrol_id: int) -> dict[str, Any]:
        async with self.sessions() as s:
            row = await self._find(s, p, patrol_id)
            return self._describe(p, row, await self._cameras(s, p, row.channel_ids or []))

    async def create(self, p: Principal, body: PatrolIn) -> dict[str, Any]:
        async with self.sessions() as s, s.begin():
            ids, cameras = await self._check(s, p, body)
            row = Patrol(name=body.name.strip(), owner_id=p.user_id, department=p.department, shared=body.shared,
                         layout=body.layout, interval=body.interval, channel_ids=ids)
            s.add(row)
            await s.flush()
            return self._describe(p, row, cameras)

    async def update(self, p: Principal, patrol_id: int, body: PatrolIn) -> dict[str, Any]:
        async with self.sessions() as s, s.begin():
            row = await self._own(s, p, patrol_id)
            ids, cameras = await self._check(s, p, body)
            row.name, row.layout, row.interval, row.shared = body.name.strip(), body.layout, body.interval, body.shared
            row.channel_ids = ids
            await s.flush()
            return self._describe(p, row, cameras)

    async def delete(self, p: Principal, patrol_id: int) -> None:
        async with self.sessions() as s, s.begin():
            await s.delete(await self._own(s, p, patrol_id))

    # ---- inside ---------------------------------------------------------------------------
    async def _find(self, s: AsyncSession, p: Principal, patrol_id: int) -> Patrol:
        row = await s.scalar(select(Patrol).where(Patrol.id == patrol_id, self._seen_by(p)))
        if row is None:
            raise NotFound(f"patrol {patrol_id} not found")
        return row

    async def _own(self, s: AsyncSession, p: Principal, patrol_id: int) -> Patrol:
        row = await self._find(s, p, patrol_id)
        if row.owner_id != p.user_id and p.role != "administrator":
            raise Forbidden(f"patrol {patrol_id} belongs to another user: only they change it")
        return row

    async def _check(self, s: AsyncSession, p: Principal, body: PatrolIn) -> tuple[list[str], dict[str, Any]]:
        if not body.name.strip():
            raise Invalid("a patrol needs a name")
        if body.layout not in LAYOUTS:
            raise Invalid(f"layout must be one of {LAYOUTS}")
        if not 5 <= body.interval <= 3600:
            raise Invalid("interval must be 5 to 3600 seconds")
        ids = list(dict.fromkeys(body.channel_ids))  # in order, once each
        if len(ids) > MAX_CHANNELS:
            raise Invalid(f"a patrol holds at most {MAX_CHANNELS} cameras")
        cameras = await self._cameras(s, p, ids)
        missing = [c for c in ids if c not in cameras]
        if missing:
            raise Invalid(f"not cameras you may watch: {', '.join(missing[:5])}"
                          + (f" and {len(missing) - 5} more" if len(missing) > 5 else ""))
        return ids, cameras

    @staticmethod
    async def _cameras(s: AsyncSession, p: Principal, ids: Iterable[str]) -> dict[str, Any]:
        """Of these channels, those ``p`` may watch, by ID."""
        ids = list(ids)
        found: dict[str, Any] = {}
        for i in range(0, len(ids), 1000):  # within every driver's limit of bound parameters
            rows = await s.execute(select(Channel.id, Channel.name, Channel.status, Channel.ptz_type).where(
                Channel.id.in_(ids[i:i + 1000]), *scope_conditions(p, Action.LIVE_VIEW)))
            found.update((c.id, c) for c in rows.all())
        return found

    @staticmethod
    def _describe(p: Principal, row: Patrol, found: dict[str, Any]) -> dict[str, Any]:
        ids = list(row.channel_ids or [])
        return {
            "id": row.id, "name": row.name, "layout": row.layout, "interval": row.interval, "shared": row.shared,
            "mine": row.owner_id == p.user_id, "department": row.department,
            "channels": [{"id": c.id, "name": c.name, "status": c.status, "ptz_type": c.ptz_type}
                         for cid in ids if (c := found.get(cid)) is not None],
            # Cameras of the patrol outside the viewer's scope: counted, not named.
            "hidden": sum(1 for cid in ids if cid not in found),
            "updated_at": row.updated_at,
        }
