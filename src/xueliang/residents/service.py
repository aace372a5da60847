"""Residents' invitation codes and joining with one; the cameras a resident may watch.

- The centre of a division (``residents.manage``) makes codes for places in its own division
  subtree: a place is a division (village, compound or grid code) with the name residents see,
  a number of uses and an expiry. The code is shown once; only its digest is kept (codes.py).
- Joining (``POST /residents/join``, no token) takes a use of a live code atomically and makes a
  ``resident`` account of that place: its scope is the place's division subtree, public (coverage
  A) cameras marked ``resident_visible`` only (access/scope.py, ``base_selector``), whatever
  else is stored for it. A code unknown, expired, used up or revoked is refused with one answer.
- Guessing is rate-limited per client address and over all clients together.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from xueliang.access.passwords import check_policy
from xueliang.access.policy import Action, Principal, check_role, scope_conditions
from xueliang.access.ratelimit import Limiter, RateLimited, TokenBuckets
from xueliang.access.users import UserService
from xueliang.db.tables import Channel, GridPosition, ResidentCode, User
from xueliang.errors import Forbidden, Invalid, NotFound
from xueliang.residents import codes

A = Action
#: Tries at joining per client address: a burst of 10, then one every 12 s.
JOIN_PER_CLIENT = (1 / 12, 10.0)
#: Tries at joining over all clients together (a guesser spreading over many addresses).
JOIN_ALL = (2.0, 60.0)
REFUSED = "the invitation code is not valid (unknown, expired, used up or revoked)"


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(d: datetime) -> datetime:
    return d if d.tzinfo is not None else d.replace(tzinfo=UTC)


def code_out(c: ResidentCode, now: datetime | None = None) -> dict[str, Any]:
    now = now or _now()
    state = ("revoked" if c.revoked_at is not None else "expired" if _aware(c.expires_at) <= now
             else "used_up" if c.uses >= c.max_uses else "active")
    return {"id": c.id, "division_code": c.division_code, "place": c.place, "max_uses": c.max_uses, "uses": c.uses,
            "expires_at": c.expires_at, "created_by": c.created_by, "created_at": c.created_at,
            "revoked_at": c.revoked_at, "state": state}


class ResidentService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], users: UserService, *,
                 limiter: Callable[[str, float, float], Limiter] | None = None) -> None:
        """``limiter(name, rate, burst)`` makes the rate limiters (shared in Redis in a cluster)."""
        self.sessions = sessions
        self.users = users
        make = limiter or (lambda _name, rate, burst: TokenBuckets(rate, burst))
        self.per_client: Limiter = make("resident-join", *JOIN_PER_CLIENT)
        self.everyone: Limiter = make("resident-join-all", *JOIN_ALL)

    # ---- codes -------------------------------------------------------------------------------
    @staticmethod
    def _in_area(p: Principal, division_code: str) -> bool:
        return not p.division_code or p.division_code <= division_code < p.division_code + ":"

    async def make_code(self, p: Principal, *, division_code: str, place: str, max_uses: int,
                        valid_hours: float) -> dict[str, Any]:
        check_role(p, A.RESIDENTS_MANAGE)
        if not division_code.isdigit() or not 6 <= len(division_code) <= 20:
            raise Invalid("division_code is the place's division code (6-20 digits: a village, compound or grid)")
        if not self._in_area(p, division_code):
            raise Forbidden(f"{division_code} is outside your division {p.division_code}")
        code = codes.new_code()
        now = _now()
        async with self.sessions() as s, s.begin():
            row = ResidentCode(code_hash=codes.digest(codes.canonical(code)), division_code=division_code,
                               place=place.strip(), max_uses=max_uses, uses=0,
                               expires_at=now + timedelta(hours=valid_hours), created_by=p.username, created_at=now)
            s.add(row)
            await s.flush()
            out = code_out(row, now)
        return {**out, "code": code, "bits": codes.BITS}

    async def list_codes(self, p: Principal, limit: int = 200) -> list[dict[str, Any]]:
        check_role(p, A.RESIDENTS_MANAGE)
        stmt = select(ResidentCode)
        if p.division_code:
            stmt = stmt.where(ResidentCode.division_code >= p.division_code,
                              ResidentCode.division_code < p.division_code + ":")
        async with self.sessions() as s:
            rows = (await s.scalars(stmt.order_by(ResidentCode.id.desc()).limit(limit))).all()
        now = _now()
        return [code_out(r, now) for r in rows]

    async def revoke_code(self, p: Principal, code_id: int) -> dict[str, Any]:
        check_role(p, A.RESIDENTS_MANAGE)
        async with self.sessions() as s, s.begin():
            row = await s.get(ResidentCode, code_id)
            if row is None or not self._in_area(p, row.division_code):
                raise NotFound(f"invitation code {code_id} not found")
            if row.revoked_at is None:
                row.revoked_at = _now()
            return code_out(row)

    # ---- joining -----------------------------------------------------------------------------
    async def _limit(self, client: str) -> None:
        for buckets, key in ((self.per_client, f"join:{client}"), (self.everyone, "join:*")):
            wait = await buckets.take(key)
            if wait:
                raise RateLimited(f"too many tries at joining: try again in {int(wait) + 1} s",
                                  retry_after=int(wait) + 1)

    async def join(self, typed: str, *, name: str, phone: str, password: str, client: str) -> tuple[User, str, str]:
        """A resident account of the code's place: (the user, a login token, the place's name)."""
        await self._limit(client)
        try:
            canon = codes.canonical(typed)
        except codes.BadCode as exc:
            raise Invalid(str(exc)) from None
        who = (name or phone).strip()
        if not who:
            raise Invalid("give a name or a phone number")
        username = "r-" + secrets.token_hex(5)
        try:
            check_policy(password, username)
        except ValueError as exc:
            raise Invalid(str(exc)) from None
        now = _now()
        h = codes.digest(canon)
        async with self.sessions() as s, s.begin():
            # One use taken atomically: two people joining with the last use cannot both get in.
            res = await s.execute(
                update(ResidentCode)
                .where(ResidentCode.code_hash == h, ResidentCode.revoked_at.is_(None), ResidentCode.expires_at > now,
                       ResidentCode.uses < ResidentCode.max_uses)
                .values(uses=ResidentCode.uses + 1))
            if getattr(res, "rowcount", 0) != 1:
                raise Forbidden(REFUSED)
            row = await s.scalar(select(ResidentCode).where(ResidentCode.code_hash == h))
            assert row is not None
            division, place, code_id = row.division_code, row.place, row.id
        try:
            u = await self.users.create(username, password, "resident", division_code=division,
                                        display_name=who[:200], scope={"resident_visible": True})
        except Exception:
            async with self.sessions() as s, s.begin():  # give the use back
                await s.execute(update(ResidentCode).where(ResidentCode.id == code_id)
                                .values(uses=ResidentCode.uses - 1))
            raise
        return u, self.users.issue(u), place

    # ---- what a resident watches ---------------------------------------------------------------
    async def cameras(self, p: Principal, limit: int = 500) -> list[dict[str, Any]]:
        """The cameras ``p`` may watch live (for a resident: the place's resident-visible ones)."""
        check_role(p, A.LIVE_VIEW)
        stmt = (select(Channel.id, Channel.name, Channel.status, Channel.address)
                .where(Channel.kind == "camera", *scope_conditions(p, A.LIVE_VIEW))
                .order_by(Channel.name, Channel.id).limit(limit))
        async with self.sessions() as s:
            rows = (await s.execute(stmt)).all()
        return [{"id": i, "name": n, "status": st, "address": a} for i, n, st, a in rows]

    # ---- grid members' positions -------------------------------------------------------------
    async def report_position(self, p: Principal, lon: float, lat: float, accuracy: float | None) -> dict[str, Any]:
        check_role(p, A.GRID_POSITION)
        now = _now()
        async with self.sessions() as s, s.begin():
            row = await s.get(GridPosition, p.user_id)
            if row is None:
                row = GridPosition(user_id=p.user_id, username=p.username, longitude=lon, latitude=lat, at=now)
                s.add(row)
            row.username, row.department, row.division_code = p.username, p.department, p.division_code
            row.longitude, row.latitude, row.accuracy, row.at = lon, lat, accuracy, now
        return {"longitude": lon, "latitude": lat, "accuracy": accuracy, "at": now}

    async def positions(self, p: Principal, since_minutes: float) -> list[dict[str, Any]]:
        """Grid members' last positions (the map's layer), of the centre's own division subtree."""
        check_role(p, A.INCIDENTS_MANAGE)
        stmt = select(GridPosition).where(GridPosition.at >= _now() - timedelta(minutes=since_minutes))
        if p.division_code:
            stmt = stmt.where(GridPosition.division_code >= p.division_code,
                              GridPosition.division_code < p.division_code + ":")
        async with self.sessions() as s:
            rows = (await s.scalars(stmt.order_by(GridPosition.username).limit(10_000))).all()
        return [{"user_id": r.user_id, "username": r.username, "department": r.department,
                 "division_code": r.division_code, "longitude": r.longitude, "latitude": r.latitude,
                 "accuracy": r.accuracy, "at": r.at} for r in rows]
