"""Maintenance organisation (运维): teams and companies, what each answers for, who works in it.

"Who builds it maintains it" (谁建设谁维护): a team answers for units, platforms or division
subtrees. A point's team is its platform's, else its unit's, else that of the narrowest division
above it; a point no team answers for has none (its tickets go to the duty centre).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from xueliang.db.tables import (
    Channel,
    Device,
    MaintenanceDuty,
    MaintenanceMember,
    MaintenanceTeam,
    User,
)
from xueliang.errors import Conflict, Invalid, NotFound

DUTY_KINDS = ("unit", "platform", "division")


class Contact(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=100)
    phone: str = Field(default="", max_length=40)
    email: str = Field(default="", max_length=200)


class Duty(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: str
    ref: str = Field(min_length=1, max_length=20)

    @field_validator("kind")
    @classmethod
    def _kind(cls, v: str) -> str:
        if v not in DUTY_KINDS:
            raise ValueError(f"kind must be one of {', '.join(DUTY_KINDS)}")
        return v

    @field_validator("ref")
    @classmethod
    def _ref(cls, v: str) -> str:
        if not (v.isascii() and v.isdigit()):
            raise ValueError("a unit or platform id, or a division code: digits 0-9 only")
        return v


class TeamIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    company: str = Field(default="", max_length=200)
    contacts: list[Contact] = Field(default_factory=list, max_length=50)
    email: str | None = Field(default=None, max_length=200)
    supervisor_email: str | None = Field(default=None, max_length=200)
    webhook_url: str | None = Field(default=None, max_length=1000)
    duties: list[Duty] = Field(default_factory=list, max_length=10_000)
    members: list[int] = Field(default_factory=list, max_length=1000)

    @field_validator("webhook_url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v and not v.startswith(("http://", "https://")):
            raise ValueError("a webhook is an http:// or https:// URL")
        return v or None


@dataclass(slots=True)
class Resolver:
    """A point's team from its platform, unit and division (memory; rebuilt on changes)."""

    by_platform: dict[int, int]
    by_unit: dict[int, int]
    by_division: dict[str, int]

    def team(self, platform_id: int | None, unit_id: int | None, division_code: str | None) -> int | None:
        if platform_id is not None and platform_id in self.by_platform:
            return self.by_platform[platform_id]
        if unit_id is not None and unit_id in self.by_unit:
            return self.by_unit[unit_id]
        code = division_code or ""
        for n in range(len(code), 1, -1):
            t = self.by_division.get(code[:n])
            if t is not None:
                return t
        return None


async def load_resolver(s: AsyncSession) -> Resolver:
    r = Resolver({}, {}, {})
    for team_id, kind, ref in (await s.execute(select(MaintenanceDuty.team_id, MaintenanceDuty.kind,
                                                      MaintenanceDuty.ref))).all():
        if kind == "platform":
            r.by_platform[int(ref)] = team_id
        elif kind == "unit":
            r.by_unit[int(ref)] = team_id
        else:
            r.by_division[ref] = team_id
    return r


def channel_columns() -> Sequence[Any]:
    """What team resolution needs of a channel (join devices for the platform)."""
    return (Channel.id, Device.platform_id, Channel.unit_id, Channel.division_code)


class MaintenanceService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def resolver(self) -> Resolver:
        async with self.sessions() as s:
            return await load_resolver(s)

    async def team_of_channel(self, channel_id: str) -> int | None:
        async with self.sessions() as s:
            row = (await s.execute(select(*channel_columns()).outerjoin(Device, Device.id == Channel.device_id)
                                   .where(Channel.id == channel_id))).first()
            if row is None:
                return None
            r = await load_resolver(s)
        return r.team(row[1], row[2], row[3])

    async def teams_of_user(self, user_id: int) -> frozenset[int]:
        async with self.sessions() as s:
            return frozenset((await s.scalars(select(MaintenanceMember.team_id)
                                              .where(MaintenanceMember.user_id == user_id))).all())

    async def list(self) -> list[dict[str, Any]]:
        async with self.sessions() as s:
            teams = (await s.scalars(select(MaintenanceTeam).order_by(MaintenanceTeam.name))).all()
            duties = (await s.execute(select(MaintenanceDuty.team_id, MaintenanceDuty.kind, MaintenanceDuty.ref))).all()
            members = (await s.execute(select(MaintenanceMember.team_id, MaintenanceMember.user_id))).all()
        return [self._out(t, duties, members) for t in teams]

    async def get(self, team_id: int) -> dict[str, Any]:
        async with self.sessions() as s:
            t = await s.get(MaintenanceTeam, team_id)
            if t is None:
                raise NotFound(f"no maintenance team {team_id}")
            duties = (await s.execute(select(MaintenanceDuty.team_id, MaintenanceDuty.kind, MaintenanceDuty.ref)
                                      .where(MaintenanceDuty.team_id == team_id))).all()
            members = (await s.execute(select(MaintenanceMember.team_id, MaintenanceMember.user_id)
                                       .where(MaintenanceMember.team_id == team_id))).all()
        return self._out(t, duties, members)

    @staticmethod
    def _out(t: MaintenanceTeam, duties: Iterable[Any], members: Iterable[Any]) -> dict[str, Any]:
        return {
            "id": t.id, "name": t.name, "company": t.company, "contacts": t.contacts or [], "email": t.email,
            "supervisor_email": t.supervisor_email, "webhook_url": t.webhook_url,
            "duties": [{"kind": k, "ref": r} for tid, k, r in duties if tid == t.id],
            "members": sorted(u for tid, u in members if tid == t.id),
        }

    async def save(self, data: TeamIn, team_id: int | None = None) -> dict[str, Any]:
        """Create (``team_id`` None) or replace a team with its duties and members, at once."""
        try:
            async with self.sessions() as s, s.begin():
                if team_id is None:
                    t = MaintenanceTeam(name=data.name)
                    s.add(t)
                else:
                    found = await s.get(MaintenanceTeam, team_id)
                    if found is None:
                        raise NotFound(f"no maintenance team {team_id}")
                    t = found
                t.name, t.company, t.email = data.name, data.company, data.email
                t.supervisor_email, t.webhook_url = data.supervisor_email, data.webhook_url
                t.contacts = [c.model_dump() for c in data.contacts]
                await s.flush()
                if data.members:
                    roles = dict((await s.execute(select(User.id, User.role).where(User.id.in_(data.members)))).all())
                    bad = [u for u in data.members if roles.get(u) is None]
                    if bad:
                        raise Invalid(f"no users {bad}")
                await s.execute(delete(MaintenanceDuty).where(MaintenanceDuty.team_id == t.id))
                await s.execute(delete(MaintenanceMember).where(MaintenanceMember.team_id == t.id))
                seen: set[tuple[str, str]] = set()
                for d in data.duties:
                    if (d.kind, d.ref) in seen:
                        raise Invalid(f"duty {d.kind} {d.ref} given twice")
                    seen.add((d.kind, d.ref))
                    s.add(MaintenanceDuty(team_id=t.id, kind=d.kind, ref=d.ref))
                for u in sorted(set(data.members)):
                    s.add(MaintenanceMember(team_id=t.id, user_id=u))
                tid = t.id
        except IntegrityError as exc:
            raise Conflict(f"a team named {data.name!r} exists, or one of its duties is another team's") from exc
        return await self.get(tid)

    async def delete(self, team_id: int) -> None:
        async with self.sessions() as s, s.begin():
            t = await s.get(MaintenanceTeam, team_id)
            if t is None:
                raise NotFound(f"no maintenance team {team_id}")
            await s.delete(t)
