"""The phone app's routes (issue 16, section 5): residents' invitation codes and joining; the
cameras a resident may watch; reports from grid members and residents and their own reports'
status; grid members' positions. Thin over residents/service.py and incidents/reports.py.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Query, Response, UploadFile
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from xueliang.access import context
from xueliang.access.policy import Action, Principal
from xueliang.api.deps import LiveViewer, PlatformDep, require
from xueliang.errors import Invalid
from xueliang.incidents.inbound import explain
from xueliang.incidents.reports import ReportIn, ReportService
from xueliang.residents.service import ResidentService

router = APIRouter(tags=["residents"])
A = Action
CodeManager = Annotated[Principal, Depends(require(A.RESIDENTS_MANAGE))]
Reporter = Annotated[Principal, Depends(require(A.INCIDENTS_REPORT))]
GridMember = Annotated[Principal, Depends(require(A.GRID_POSITION))]
Centre = Annotated[Principal, Depends(require(A.INCIDENTS_MANAGE))]


def _svc(platform: Any) -> ResidentService:
    svc: ResidentService = platform.residents
    return svc


def _reports(platform: Any) -> ReportService:
    svc: ReportService = platform.reports
    return svc


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CodeIn(_In):
    #: The place: a village, compound or grid (its division code) and the name residents see.
    division_code: str = Field(min_length=6, max_length=20, pattern=r"^[0-9]+$")
    place: str = Field(min_length=1, max_length=200)
    max_uses: int = Field(default=50, ge=1, le=10_000)
    valid_hours: float = Field(default=168.0, gt=0, le=24 * 90)


class JoinIn(_In):
    code: str = Field(min_length=1, max_length=64)
    name: str = Field(default="", max_length=64)
    phone: str = Field(default="", max_length=32, pattern=r"^[0-9+\- ()]*$")
    password: str = Field(min_length=1, max_length=256)


class PositionIn(_In):
    longitude: float = Field(ge=-180, le=180)
    latitude: float = Field(ge=-90, le=90)
    accuracy: float | None = Field(default=None, ge=0, le=100_000)

    @field_validator("longitude", "latitude")
    @classmethod
    def _finite(cls, v: float) -> float:
        if not math.isfinite(v):
            raise ValueError("must be a finite number")
        return v


# --------------------------------------------------------------------------- invitation codes


@router.post("/residents/codes", status_code=201)
async def make_code(body: CodeIn, platform: PlatformDep, p: CodeManager) -> dict[str, Any]:
    """A new invitation code for a place in the caller's division: shown in this answer only."""
    out = await _svc(platform).make_code(p, division_code=body.division_code, place=body.place,
                                         max_uses=body.max_uses, valid_hours=body.valid_hours)
    context.describe("residents.code.create", "resident_code", out["id"], division=body.division_code,
                     max_uses=body.max_uses)
    return out


@router.get("/residents/codes")
async def list_codes(platform: PlatformDep, p: CodeManager) -> dict[str, Any]:
    return {"items": await _svc(platform).list_codes(p)}


@router.delete("/residents/codes/{code_id}", status_code=204)
async def revoke_code(code_id: int, platform: PlatformDep, p: CodeManager) -> Response:
    await _svc(platform).revoke_code(p, code_id)
    context.describe("residents.code.revoke", "resident_code", code_id)
    return Response(status_code=204)


@router.post("/residents/join", status_code=201)
async def join(body: JoinIn, platform: PlatformDep) -> dict[str, Any]:
    """Join a village or compound with its invitation code: a resident account and a login
    token. Rate-limited per client and overall; every refusal answers alike."""
    ctx = context.current()
    u, token, place = await _svc(platform).join(body.code, name=body.name, phone=body.phone,
                                                password=body.password, client=ctx.ip if ctx is not None else "")
    context.describe("residents.join", "user", u.id, division=u.division_code)
    return {"access_token": token, "token_type": "bearer", "expires_in": platform.settings.api.token_ttl,
            "user": {"id": u.id, "username": u.username, "role": u.role, "department": None,
                     "division_code": u.division_code, "display_name": u.display_name},
            "place": place}


@router.get("/residents/cameras")
async def my_cameras(platform: PlatformDep, p: LiveViewer) -> dict[str, Any]:
    """The cameras the caller may watch live: for a resident, the place's resident-visible ones."""
    return {"items": await _svc(platform).cameras(p)}


# --------------------------------------------------------------------------- reports (上报)


@router.post("/mobile/reports", status_code=201)
async def report(platform: PlatformDep, p: Reporter, response: Response,
                 category: Annotated[str, Form(max_length=32)],
                 longitude: Annotated[float, Form()], latitude: Annotated[float, Form()],
                 description: Annotated[str, Form(max_length=1000)] = "",
                 address: Annotated[str | None, Form(max_length=400)] = None,
                 anonymous: Annotated[bool, Form()] = False,
                 ref: Annotated[str | None, Form(max_length=64)] = None,
                 photo: Annotated[UploadFile | None, File()] = None) -> dict[str, Any]:
    """A report from the phone (multipart form; the photo optional): a case with source
    ``grid`` (grid members) or ``resident``. With ``ref`` (the phone's own reference of the
    report) it is idempotent: the same ``ref`` again answers 200 with the case made the first
    time (``repeat``: true) and makes nothing."""
    try:
        body = ReportIn(category=category, description=description, longitude=longitude, latitude=latitude,
                        address=address, anonymous=anonymous, ref=ref or None)
    except ValidationError as exc:
        raise Invalid(explain(exc)) from None
    svc = _reports(platform)
    data = await photo.read(svc.incidents.cfg.attachment_max_bytes + 1) if photo is not None else None
    me = await platform.users.get(p.user_id)
    out = await svc.report(p, body, data or None, me.display_name)
    if out["repeat"]:
        response.status_code = 200
        context.describe("incident.report.repeat", "incident", out["id"], source=out["source"])
    else:
        context.describe("incident.report", "incident", out["id"], source=out["source"], photo=out["photo"])
    return out


@router.get("/mobile/reports")
async def my_reports(platform: PlatformDep, p: Reporter, before: int | None = None,
                     limit: Annotated[int, Query(ge=1, le=200)] = 50) -> dict[str, Any]:
    """The caller's own reports and what became of them."""
    return await _reports(platform).mine(p, before, limit)


# --------------------------------------------------------------------------- grid members' positions


@router.put("/mobile/position")
async def put_position(body: PositionIn, platform: PlatformDep, p: GridMember) -> dict[str, Any]:
    """A grid member's own position (the phone's GPS), kept as the last one only."""
    return await _svc(platform).report_position(p, body.longitude, body.latitude, body.accuracy)


@router.get("/mobile/positions")
async def positions(platform: PlatformDep, p: Centre,
                    since_minutes: Annotated[float, Query(gt=0, le=7 * 24 * 60)] = 60.0) -> dict[str, Any]:
    """Grid members' last positions in the centre's division (the map's grid-member layer)."""
    return {"items": await _svc(platform).positions(p, since_minutes)}
