"""Reports from the phone app (上报): grid members (source ``grid``) and residents (source
``resident``) take a case in with a category, a place (the phone's GPS), a few words and a
photo; and see what became of their own reports.

A resident sees only their own reports, and of those only what the centre would tell a caller:
the category, the state and when it changed (not the departments, steps or notes). A resident
may stay anonymous to the centre too. Residents' reports are rate-limited per person (abuse
controls: a burst, then a steady rate); grid members', whose work it is, far more loosely.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from xueliang.access.policy import Action, Principal, check_role
from xueliang.access.ratelimit import Limiter, RateLimited, TokenBuckets
from xueliang.db.tables import Incident, IncidentAttachment
from xueliang.errors import Invalid
from xueliang.health.service import PHOTO_KINDS
from xueliang.incidents.inbound import CaseIn, Reporter
from xueliang.incidents.service import ATTACHMENTS, IncidentService

A = Action
#: Residents: 5 reports at once, then one per 10 minutes.
RESIDENT_RATE = (1 / 600, 5.0)
#: Grid members: 30 at once, then one a minute.
GRID_RATE = (1 / 60, 30.0)


class ReportIn(BaseModel):
    """What the phone sends (form fields of a multipart request)."""

    model_config = ConfigDict(extra="forbid")
    category: str = Field(min_length=1, max_length=32)
    description: str = Field(default="", max_length=1000)
    longitude: float = Field(ge=-180, le=180)
    latitude: float = Field(ge=-90, le=90)
    address: str | None = Field(default=None, max_length=400)
    #: A resident may keep their name from the centre too.
    anonymous: bool = False
    #: The phone's own reference of the report (made when the report is made): the same
    #: reference again from the same reporter answers with the case made the first time.
    ref: str | None = Field(default=None, min_length=8, max_length=48, pattern=r"^[A-Za-z0-9_-]+$")

    @field_validator("longitude", "latitude")
    @classmethod
    def _finite(cls, v: float) -> float:
        if not math.isfinite(v):
            raise ValueError("must be a finite number")
        return v


def photo_type(data: bytes) -> str:
    """The photo's content type, judged by its bytes; Invalid unless JPEG or PNG."""
    ext = next((e for magic, e in PHOTO_KINDS.items() if data.startswith(magic)), None)
    if ext is None:
        raise Invalid("the photo must be a JPEG or PNG image")
    return "image/png" if ext == ".png" else "image/jpeg"


def mine_out(i: Incident) -> dict[str, Any]:
    return {"id": i.id, "source": i.source, "category": i.category, "status": i.status,
            "description": i.description, "created_at": i.created_at, "updated_at": i.updated_at,
            "closed_at": i.closed_at}


class ReportService:
    def __init__(self, incidents: IncidentService, *,
                 limiter: Callable[[str, float, float], Limiter] | None = None) -> None:
        """``limiter(name, rate, burst)`` makes the rate limiters (shared in Redis in a cluster)."""
        self.incidents = incidents
        make = limiter or (lambda _name, rate, burst: TokenBuckets(rate, burst))
        self.residents: Limiter = make("resident-report", *RESIDENT_RATE)
        self.grid: Limiter = make("grid-report", *GRID_RATE)

    @staticmethod
    def source_of(p: Principal) -> str:
        """Grid members (who report their position) report as ``grid``; everyone else as ``resident``."""
        return "grid" if A.GRID_POSITION in p.actions else "resident"

    async def _repeat(self, p: Principal, ref: str) -> dict[str, Any] | None:
        async with self.incidents.sessions() as s:
            i = await s.scalar(select(Incident).where(
                Incident.created_by == p.username, Incident.external_ref == ref, Incident.link_id.is_(None),
                Incident.source.in_(("grid", "resident"))))
            if i is None:
                return None
            photo = await s.scalar(select(IncidentAttachment.id).where(
                IncidentAttachment.incident_id == i.id, IncidentAttachment.kind == "photo").limit(1))
        return {**mine_out(i), "photo": photo is not None, "repeat": True}

    async def report(self, p: Principal, body: ReportIn, photo: bytes | None, display_name: str) -> dict[str, Any]:
        """A case from the phone; ``repeat`` True when the phone's ``ref`` was taken in before
        (nothing new is made, and no report is counted against the rate)."""
        check_role(p, A.INCIDENTS_REPORT)
        svc = self.incidents
        svc._category(body.category)
        if photo is not None:
            if len(photo) > svc.cfg.attachment_max_bytes:
                raise Invalid(f"a photo is at most {svc.cfg.attachment_max_bytes} bytes")
            ctype = photo_type(photo)
        ref = f"phone:{body.ref}" if body.ref else None
        if ref is not None and (seen := await self._repeat(p, ref)) is not None:
            return seen
        source = self.source_of(p)
        buckets = self.grid if source == "grid" else self.residents
        wait = await buckets.take(f"report:{p.user_id}")
        if wait:
            raise RateLimited(f"too many reports: the next one in {int(wait) + 1} s", retry_after=int(wait) + 1)
        text = body.description.strip() or body.category
        reporter = None if body.anonymous and source == "resident" else Reporter(name=display_name[:64] or p.username)
        try:
            case = CaseIn(category=body.category, description=text, longitude=body.longitude, latitude=body.latitude,
                          address=body.address or None, reporter=reporter,
                          division_code=p.division_code if source == "resident" and p.division_code else None)
        except ValueError as exc:
            raise Invalid(f"the report does not make a case: {exc}") from None
        try:
            out = await svc.take_in(case, source=source, by=p.username, reference=ref)
        except IntegrityError:  # the same report sent twice at once: the first stands
            seen = await self._repeat(p, ref) if ref is not None else None
            if seen is None:
                raise
            return seen
        if photo is not None:
            key = f"{ATTACHMENTS}{out['id']}/{secrets.token_hex(8)}{'.png' if ctype == 'image/png' else '.jpg'}"
            await svc.objects.put(key, photo)
            async with svc.sessions() as s, s.begin():
                s.add(IncidentAttachment(incident_id=out["id"], kind="photo", key=key, content_type=ctype,
                                         size=len(photo), at=datetime.now(UTC), by=p.username, department=None))
        return {**{k: out[k] for k in ("id", "source", "category", "status", "description", "created_at")},
                "photo": photo is not None, "repeat": False}

    async def mine(self, p: Principal, before: int | None, limit: int) -> dict[str, Any]:
        """The caller's own reports, newest first."""
        check_role(p, A.INCIDENTS_REPORT)
        stmt = select(Incident).where(Incident.created_by == p.username, Incident.source.in_(("grid", "resident")))
        if before is not None:
            stmt = stmt.where(Incident.id < before)
        async with self.incidents.sessions() as s:
            rows = list((await s.scalars(stmt.order_by(Incident.id.desc()).limit(limit))).all())
        return {"items": [mine_out(i) for i in rows], "next_before": rows[-1].id if len(rows) == limit else None,
                "categories": self.incidents.cfg.categories}
